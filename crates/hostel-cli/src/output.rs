//! Rendering: aligned tables for people, JSON for programs.

use crate::error::CliError;
use hostel_core::ErrorCode;
use serde::Serialize;
use std::io::Write;

/// Prints `value` as pretty JSON on stdout.
pub fn json<T: Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| {
        CliError::new(
            ErrorCode::Internal,
            format!("cannot encode JSON: {e}"),
            None,
        )
    })?;
    line(&text);
    Ok(())
}

/// Prints one line on stdout; a closed pipe (`| head`) ends the process quietly.
pub fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{text}").is_err() {
        std::process::exit(0);
    }
}

/// Prints rows under a header with columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let render = |cells: Vec<String>| {
        let last = cells.len().saturating_sub(1);
        cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c
                } else {
                    format!("{c:<w$}", w = widths.get(i).copied().unwrap_or(0))
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    line(&render(header.iter().map(|h| (*h).to_owned()).collect()));
    for row in rows {
        line(&render(row.clone()));
    }
}

/// A list as JSON (with `--json`) or as a table of `header` with one row per item.
pub fn list<T: Serialize>(
    json_out: bool,
    items: &[T],
    header: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> Result<(), CliError> {
    if json_out {
        return json(&items);
    }
    let rows: Vec<Vec<String>> = items.iter().map(row).collect();
    table(header, &rows);
    Ok(())
}

/// Progress of long commands, on stderr so stdout stays clean for `--json`.
#[derive(Debug, Clone, Copy)]
pub struct Steps;

impl hostel_service::Progress for Steps {
    fn step(&self, message: &str) {
        eprintln!("  - {message}");
    }
}

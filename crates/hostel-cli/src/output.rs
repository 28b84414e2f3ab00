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

/// Prints one line on stdout; a closed pipe (`| head`) ends the process quietly. Control
/// characters but newlines and tabs are shown escaped (see [`printable`]).
pub fn line(text: &str) {
    let text = printable(text, "\n\t");
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{text}").is_err() {
        std::process::exit(0);
    }
}

/// `text` with control characters, and the format characters that reorder text (bidi
/// overrides), escaped as `\u{1b}`, but those in `keep`: what a tenant or an outsider wrote
/// (an SSH user name, a command line, a key's comment) reaches an admin's terminal as text,
/// never as escape sequences that move the cursor, retitle the window or hide lines.
pub fn printable<'a>(text: &'a str, keep: &str) -> std::borrow::Cow<'a, str> {
    let unsafe_char = |c: char| {
        !keep.contains(c)
            && (c.is_control()
                || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
    };
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Prints rows under a header with columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    // A cell is one line: a newline in it is escaped too.
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| printable(c, "").into_owned()).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
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
        line(&render(row));
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

/// `hostel config show`: one key a line, its value as TOML writes it (`null`: unset).
pub fn settings(items: &[crate::settings::Setting]) {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|s| {
            let value = match &s.value {
                serde_json::Value::Null => "(unset)".to_owned(),
                v => v.to_string(),
            };
            vec![s.key.clone(), value, s.source.clone()]
        })
        .collect();
    table(&["KEY", "VALUE", "FROM"], &rows);
}

/// Progress of long commands, on stderr so stdout stays clean for `--json`.
#[derive(Debug, Clone, Copy)]
pub struct Steps;

impl hostel_service::Progress for Steps {
    fn step(&self, message: &str) {
        eprintln!("  - {message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (#12): terminal escapes in an SSH user name or command reached `hostel
    /// audit` and `key list` as they were.
    #[test]
    fn issue_12_control_characters_are_shown_escaped() {
        assert_eq!(printable("alice", ""), "alice");
        assert_eq!(
            printable("\u{1b}]0;pwned\u{7}\u{1b}[2Jx\ny", ""),
            "\\u{1b}]0;pwned\\u{7}\\u{1b}[2Jx\\u{a}y"
        );
        assert_eq!(printable("a\nb\tc\rd", "\n\t"), "a\nb\tc\\u{d}d");
        assert_eq!(printable("abc\u{202e}fed", ""), "abc\\u{202e}fed");
        assert_eq!(printable("naïve ünïcode ✓", ""), "naïve ünïcode ✓");
    }
}

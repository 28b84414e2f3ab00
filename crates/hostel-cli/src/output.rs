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

/// Whether progress may draw on stderr: a terminal, and no `--json`.
fn live(json_out: bool) -> bool {
    !json_out && std::io::IsTerminal::is_terminal(&std::io::stderr())
}

/// Progress of long commands, on stderr so stdout stays clean for `--json`. On a terminal, the
/// step under way is a spinner with its elapsed time and its latest output beside it, and each
/// finished step stays as a line with the time it took; elsewhere (a pipe, a log, `--json`)
/// each step and each line of output is a plain `  - ` line, as scripts expect.
#[derive(Debug)]
pub struct Steps {
    bar: Option<indicatif::ProgressBar>,
    current: std::sync::Mutex<Option<(String, std::time::Instant)>>,
}

impl Steps {
    /// A spinner on a terminal unless `json_out`, else plain lines.
    pub fn new(json_out: bool) -> Steps {
        let bar = live(json_out).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("  {spinner} {elapsed:>4} {wide_msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Steps {
            bar,
            current: std::sync::Mutex::new(None),
        }
    }

    /// Plain lines, whatever stderr is: for commands whose own output shares the terminal
    /// (exec).
    pub fn lines() -> Steps {
        Steps {
            bar: None,
            current: std::sync::Mutex::new(None),
        }
    }

    /// Ends the step under way, leaving its line with the time it took.
    fn close_step(&self, bar: &indicatif::ProgressBar) {
        let done = self.current.lock().map(|mut c| c.take()).unwrap_or(None);
        if let Some((step, started)) = done {
            bar.println(format!("  - {step} ({})", elapsed(started.elapsed())));
        }
    }
}

/// `0.4s`, `12.3s`, `2m05s`.
fn elapsed(d: std::time::Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1}s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

impl hostel_service::Progress for Steps {
    fn step(&self, message: &str) {
        let message = printable(message, "");
        let Some(bar) = &self.bar else {
            eprintln!("  - {message}");
            return;
        };
        self.close_step(bar);
        if let Ok(mut c) = self.current.lock() {
            *c = Some((message.to_string(), std::time::Instant::now()));
        }
        bar.reset_elapsed();
        bar.set_message(message.into_owned());
    }

    fn detail(&self, message: &str) {
        let message = printable(message, "");
        let Some(bar) = &self.bar else {
            eprintln!("  - {message}");
            return;
        };
        let step = self
            .current
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(|(s, _)| s.clone()))
            .unwrap_or_default();
        bar.set_message(format!("{step}  {message}"));
    }
}

impl Drop for Steps {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            self.close_step(bar);
            bar.finish_and_clear();
        }
    }
}

/// Bytes moving (`cp`): on a terminal a counter with the rate, else nothing until the result
/// line.
#[derive(Debug)]
pub struct Transfer(Option<indicatif::ProgressBar>);

impl Transfer {
    /// Starts counting `what` (`alice:notes.md -> notes.md`): the bytes so far, their rate and
    /// the time (the daemon does not say a download's size ahead).
    pub fn new(json_out: bool, what: &str) -> Transfer {
        Transfer(live(json_out).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "  {spinner} {msg} {bytes} {binary_bytes_per_sec} {elapsed}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_message(printable(what, "").into_owned());
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        }))
    }

    /// `n` more bytes moved.
    pub fn add(&self, n: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(n);
        }
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_reads_as_seconds_then_minutes() {
        use std::time::Duration;
        assert_eq!(elapsed(Duration::from_millis(420)), "0.4s");
        assert_eq!(elapsed(Duration::from_millis(59_940)), "59.9s");
        assert_eq!(elapsed(Duration::from_secs(125)), "2m05s");
    }

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

//! `GET /api/tenants/{name}/exec/ws`: an interactive command over a WebSocket, the transport of
//! the web terminal and of the remote CLI's `exec`.
//!
//! With a terminal (the default), binary frames from the client are its input, a text frame
//! `{"resize": [cols, rows]}` resizes it, and the server sends the terminal's output as binary
//! frames. With `tty=false` the streams stay apart and binary-safe: each server binary frame
//! starts with 1 (stdout) or 2 (stderr), and the client's text frame `{"eof": true}` closes the
//! command's stdin. Either way, a text frame `{"signal": "INT"}` sends the command a signal, and
//! when the command ends the server sends a text frame `{"exit_code": N}`, then closes.

use crate::auth::Caller;
use crate::json::ApiQuery;
use crate::{ApiError, AppState};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use hostel_core::{Signal, TenantName};
use hostel_runtime::ExecOutput;
use hostel_service::{Exec, ExecOptions, Quiet, ServiceError};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

/// The command and its terminal.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WsQuery {
    /// A shell command line (run with `bash -c`); default: a login shell.
    command: Option<String>,
    /// The command as a JSON array of arguments (instead of `command`).
    argv: Option<String>,
    /// Give the command a terminal (default true).
    tty: Option<bool>,
    /// Terminal columns.
    #[serde(default = "default_cols")]
    cols: u16,
    /// Terminal rows.
    #[serde(default = "default_rows")]
    rows: u16,
}

pub(crate) fn default_cols() -> u16 {
    80
}

pub(crate) fn default_rows() -> u16 {
    24
}

/// Upgrades to a WebSocket bridged to a terminal command in the workspace (waking it). It runs
/// a command, so it needs a role that may exec, although the upgrade is a GET.
#[utoipa::path(get, path = "/api/tenants/{name}/exec/ws", tag = "tenants", extensions(("x-hostel-action" = json!("exec"))),
    params(("name" = String, Path, description = "Tenant name"), WsQuery),
    responses((status = 101, description = "switched to the WebSocket protocol (see the module docs for its frames)"),
        (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn exec_ws(
    State(s): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<WsQuery>,
    caller: Option<axum::Extension<Caller>>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let name: TenantName = name.parse().map_err(ServiceError::from)?;
    let cmd = match (q.argv, q.command) {
        (Some(argv), _) => match serde_json::from_str::<Vec<String>>(&argv) {
            Ok(argv) if !argv.is_empty() => argv,
            _ => {
                return Err(ApiError::new(
                    hostel_core::ErrorCode::InvalidInput,
                    format!("argv {argv:?}: not a JSON array of strings with a command"),
                    Some(r#"e.g. argv=["ls","-l"], URL-encoded"#),
                ));
            }
        },
        (None, Some(c)) => vec!["/bin/bash".to_owned(), "-c".to_owned(), c],
        (None, None) => vec!["/bin/bash".to_owned(), "-l".to_owned()],
    };
    let actor = caller.map(|c| c.0.0);
    let size = (q.cols, q.rows);
    open(s, name, cmd, q.tty.unwrap_or(true), size, actor, upgrade).await
}

/// Starts `cmd` in the workspace (waking it) and bridges it to the WebSocket `upgrade` opens:
/// the admin API's exec and the tenant's web terminal.
pub(crate) async fn open(
    s: AppState,
    name: TenantName,
    cmd: Vec<String>,
    tty: bool,
    (cols, rows): (u16, u16),
    actor: Option<String>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let opts = ExecOptions {
        cmd,
        stdin: true,
        tty,
        env: if tty {
            vec![
                "TERM=xterm-256color".to_owned(),
                "COLORTERM=truecolor".to_owned(),
            ]
        } else {
            Vec::new()
        },
        actor: actor.clone(),
        ..ExecOptions::default()
    };
    // Started before the upgrade, so a missing tenant is a plain 404, not a closed socket.
    let session = s.hostel.exec(&name, opts, &Quiet).await?;
    if tty {
        let _ = s.hostel.exec_resize(&session.handle, cols, rows).await;
    }
    Ok(upgrade.on_upgrade(move |socket| bridge(s, session, tty, socket)))
}

/// A text frame a client sends on the exec WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// `{"eof": true}`: close the command's stdin.
    Eof,
    /// `{"resize": [cols, rows]}`: the terminal's new size (a value out of range is 0).
    Resize {
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// `{"signal": "INT"}`: send the command a signal (by its SSH name: HUP, INT, QUIT, KILL,
    /// TERM, USR1, USR2, ALRM, PIPE).
    Signal(Signal),
    /// Anything else: not JSON, no known key, or a signal not in that list.
    Ignored,
}

/// Reads a text frame of the exec WebSocket.
pub fn control(text: &str) -> Control {
    let v = serde_json::from_str::<serde_json::Value>(text).unwrap_or_default();
    if v.get("eof").and_then(serde_json::Value::as_bool) == Some(true) {
        return Control::Eof;
    }
    if let Some([c, r]) = v
        .get("resize")
        .and_then(|r| r.as_array())
        .map(Vec::as_slice)
    {
        let dim =
            |x: &serde_json::Value| x.as_u64().and_then(|n| u16::try_from(n).ok()).unwrap_or(0);
        return Control::Resize {
            cols: dim(c),
            rows: dim(r),
        };
    }
    match v
        .get("signal")
        .and_then(serde_json::Value::as_str)
        .and_then(Signal::from_name)
    {
        Some(signal) => Control::Signal(signal),
        None => Control::Ignored,
    }
}

async fn bridge(s: AppState, session: Exec, tty: bool, socket: WebSocket) {
    let (mut to_client, mut from_client) = socket.split();
    let Exec {
        mut output,
        mut input,
        handle,
    } = session;
    let hostel = s.hostel.clone();
    let control_handle = handle.clone();
    let inbound = tokio::spawn(async move {
        while let Some(Ok(msg)) = from_client.next().await {
            match msg {
                Message::Binary(b) if input.write_all(&b).await.is_err() => break,
                Message::Text(t) => match control(&t) {
                    Control::Eof => break,
                    Control::Resize { cols, rows } => {
                        let _ = hostel.exec_resize(&control_handle, cols, rows).await;
                    }
                    Control::Signal(signal) => {
                        let _ = hostel.exec_signal(&control_handle, signal).await;
                    }
                    Control::Ignored => {}
                },
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = input.shutdown().await;
    });
    while let Some(chunk) = output.next().await {
        let bytes = match chunk {
            Ok(ExecOutput::Stdout(b) | ExecOutput::Stderr(b)) if tty => b,
            Ok(ExecOutput::Stdout(b)) => [&[1u8][..], &b].concat(),
            Ok(ExecOutput::Stderr(b)) => [&[2u8][..], &b].concat(),
            Err(_) => break,
        };
        if to_client.send(Message::Binary(bytes.into())).await.is_err() {
            break;
        }
    }
    let code = s.hostel.exec_finish(&handle).await.unwrap_or(-1);
    let end = serde_json::json!({ "exit_code": code }).to_string();
    let _ = to_client.send(Message::Text(end.into())).await;
    let _ = to_client.send(Message::Close(None)).await;
    inbound.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_frames_read_eof_resize_and_signals_and_ignore_the_rest() {
        assert_eq!(control(r#"{"eof":true}"#), Control::Eof);
        assert_eq!(
            control(r#"{"resize":[120,40]}"#),
            Control::Resize {
                cols: 120,
                rows: 40
            }
        );
        assert_eq!(
            control(r#"{"resize":[70000,-1]}"#),
            Control::Resize { cols: 0, rows: 0 }
        );
        assert_eq!(control(r#"{"signal":"INT"}"#), Control::Signal(Signal::Int));
        assert_eq!(
            control(r#"{"signal":"SIGTERM"}"#),
            Control::Signal(Signal::Term)
        );
        for other in [
            "",
            "eof",
            r#"{"eof":1}"#,
            r#"{"resize":[1]}"#,
            "[]",
            "null",
            r#"{"signal":"STOP"}"#,
            r#"{"signal":9}"#,
        ] {
            assert_eq!(control(other), Control::Ignored, "{other}");
        }
    }
}

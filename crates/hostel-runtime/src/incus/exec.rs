//! Commands in an Incus instance: `POST /1.0/instances/NAME/exec`, then its WebSockets (stdin,
//! stdout, stderr and control; one terminal socket and control with a tty), as an
//! [`ExecSession`].
//!
//! Incus's rules: every socket is connected within 5 s or the command never starts; data goes
//! in binary frames and an empty text frame is EOF, both ways; closing the control socket
//! while the command runs kills it; the exit code is the operation's `return`, read at once
//! (a finished operation is forgotten 5 s later), so a task waits for it from the start.

use super::client::{Answer, Client, Operation};
use crate::{ExecControl, ExecOutput, ExecSession, RuntimeError};
use async_trait::async_trait;
use futures_util::SinkExt;
use futures_util::stream::{SplitSink, StreamExt};
use hostel_core::Signal;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;
use tokio::sync::{Mutex, mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

type Socket = WebSocketStream<UnixStream>;

/// How long output that arrives after the command's end is waited for.
const LAST_OUTPUT: std::time::Duration = std::time::Duration::from_millis(200);

/// How much of a command's input or output is held in memory on its way.
const BUFFER: usize = 64 * 1024;

/// A command to run in an instance, in Incus's terms.
#[derive(Debug, Clone, Default)]
pub struct ExecArgs {
    /// argv.
    pub cmd: Vec<String>,
    /// Environment.
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub cwd: Option<String>,
    /// User and group ids inside.
    pub uid: u32,
    /// Group id inside.
    pub gid: u32,
    /// A terminal of this size (columns, rows), or none.
    pub tty: Option<(u16, u16)>,
}

/// How many times an exec whose sockets could not all be opened is asked for again.
const SOCKET_TRIES: u32 = 2;

/// An exec's sockets: stdin (the terminal, with one), stdout and stderr (without one), and
/// control.
type Sockets = (
    WebSocketStream<UnixStream>,
    Option<(WebSocketStream<UnixStream>, WebSocketStream<UnixStream>)>,
    WebSocketStream<UnixStream>,
);

/// Opens every socket of the exec operation `op`, the command's streams first.
async fn sockets(
    client: &Client,
    op: &Operation,
    path: &str,
    tty: bool,
) -> Result<Sockets, RuntimeError> {
    let fds = op
        .metadata
        .as_ref()
        .and_then(|m| m.get("fds"))
        .cloned()
        .unwrap_or_default();
    let secret = |fd: &str| {
        fds.get(fd)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| RuntimeError::Engine {
                action: format!("POST {path}"),
                message: format!("no websocket {fd} in the exec's answer"),
            })
    };
    let stdin = client.websocket(&op.id, &secret("0")?).await?;
    let streams = if tty {
        None
    } else {
        Some((
            client.websocket(&op.id, &secret("1")?).await?,
            client.websocket(&op.id, &secret("2")?).await?,
        ))
    };
    let control = client.websocket(&op.id, &secret("control")?).await?;
    Ok((stdin, streams, control))
}

/// Starts `args` in the running instance `name`.
pub async fn exec(
    client: &Client,
    name: &str,
    args: &ExecArgs,
) -> Result<ExecSession, RuntimeError> {
    let (cols, rows) = args.tty.unwrap_or((0, 0));
    let mut body = json!({
        "command": args.cmd,
        "environment": args.env,
        "wait-for-websocket": true,
        "interactive": args.tty.is_some(),
        "width": cols,
        "height": rows,
        "user": args.uid,
        "group": args.gid,
    });
    if let (Some(cwd), Some(map)) = (&args.cwd, body.as_object_mut()) {
        map.insert("cwd".into(), Value::from(cwd.clone()));
    }
    let path = format!("/1.0/instances/{name}/exec");
    // The command starts once every socket is there, so one that cannot be opened means it
    // never ran: the exec is asked for again. Right after a start Incus has been seen to refuse
    // a socket (HTTP 500) once.
    let mut attempt = 0;
    let (op, (stdin, streams, control)) = loop {
        let op = match client.call("POST", &path, &body, "instance", name).await? {
            Answer::Async(op) => op,
            Answer::Sync(_) => {
                return Err(RuntimeError::Engine {
                    action: format!("POST {path}"),
                    message: "the exec started no operation".into(),
                });
            }
        };
        match sockets(client, &op, &path, args.tty.is_some()).await {
            Ok(s) => break (op, s),
            Err(e) if attempt < SOCKET_TRIES => {
                attempt += 1;
                tracing::warn!(instance = %name, error = %e, "an exec's socket was refused; asking again");
                let _ = client
                    .call(
                        "DELETE",
                        &format!("/1.0/operations/{}", op.id),
                        &Value::Null,
                        "operation",
                        &op.id,
                    )
                    .await;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e),
        }
    };
    let (done_tx, done) = watch::channel(None);
    let waiter = client.clone();
    let (op_id, instance) = (op.id.clone(), name.to_owned());
    tokio::spawn(async move {
        let code = match waiter.wait_end(&op_id, "instance", &instance).await {
            Ok(op) if op.status_code == 200 => Ok(op
                .metadata
                .as_ref()
                .and_then(|m| m.get("return"))
                .and_then(Value::as_i64)
                .unwrap_or(-1)),
            // No such program: what a shell answers.
            Ok(op) if op.err.contains("Command not found") => Ok(127),
            Ok(op) => Err(op.err),
            Err(e) => Err(e.to_string()),
        };
        let _ = done_tx.send(Some(code));
    });

    let (out_tx, out_rx) = mpsc::channel(32);
    let (input, feed) = tokio::io::duplex(BUFFER);
    let (stdin_sink, stdin_stream) = stdin.split();
    let (control_sink, control_stream) = control.split();
    let control_sink = Arc::new(Mutex::new(control_sink));
    // With a terminal, the daemon ends the operation once the client closes its side.
    let ended = Arc::new(tokio::sync::Notify::new());
    match streams {
        // With a terminal, socket 0 carries both ways. The daemon closes it when the command
        // ends, and ends the operation once the control socket closes too.
        None => {
            let (done, control, ended) = (done.clone(), control_sink.clone(), ended.clone());
            tokio::spawn(async move {
                let rest = read_output(stdin_stream, out_tx, ExecOutput::Stdout, done).await;
                ended.notify_one();
                let _ = control.lock().await.close().await;
                drain(rest).await;
            });
        }
        Some((stdout, stderr)) => {
            tokio::spawn(drain(stdin_stream));
            let out = read_output(stdout, out_tx.clone(), ExecOutput::Stdout, done.clone());
            tokio::spawn(async move { drain(out.await).await });
            let err = read_output(stderr, out_tx, ExecOutput::Stderr, done.clone());
            tokio::spawn(async move { drain(err.await).await });
        }
    }
    tokio::spawn(write_input(feed, stdin_sink, args.tty.map(|_| ended)));
    tokio::spawn(drain(control_stream));
    let output = futures_util::stream::unfold(out_rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed();
    Ok(ExecSession {
        output,
        input: Box::pin(input),
        control: Arc::new(IncusExec {
            op: op.id,
            control: control_sink,
            done,
        }),
    })
}

/// Reads a socket until it ends, answering the daemon's pings on the way.
async fn drain<S>(mut stream: S)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    while let Some(Ok(_)) = stream.next().await {}
}

/// Passes one output socket's binary frames on, until its EOF (a text frame), its end, or the
/// command's end: a terminal's socket gets no EOF while the daemon waits on its input side, and
/// the daemon sends all output before it records the end, so what is left is read briefly.
/// Returns the socket, to be read on (so the daemon's pings are answered) until it closes.
async fn read_output<S>(
    mut stream: S,
    tx: mpsc::Sender<Result<ExecOutput, RuntimeError>>,
    wrap: fn(Vec<u8>) -> ExecOutput,
    mut done: watch::Receiver<Option<Result<i64, String>>>,
) -> S
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut ended = false;
    loop {
        let msg = if ended {
            match tokio::time::timeout(LAST_OUTPUT, stream.next()).await {
                Ok(m) => m,
                Err(_) => break,
            }
        } else {
            tokio::select! {
                m = stream.next() => m,
                _ = done.wait_for(Option::is_some) => {
                    ended = true;
                    continue;
                }
            }
        };
        let item = match msg {
            Some(Ok(Message::Binary(b))) => Ok(wrap(b.to_vec())),
            None | Some(Ok(Message::Text(_) | Message::Close(_))) => break,
            Some(Ok(_)) => continue,
            Some(Err(e)) => Err(RuntimeError::Engine {
                action: "exec output".into(),
                message: e.to_string(),
            }),
        };
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            break;
        }
    }
    stream
}

/// Sends what the caller writes as binary frames; the caller's EOF as an empty text frame.
/// With a terminal (`ended` given), the socket stays open after EOF until the command's output
/// ends, and is closed then: the daemon ends the operation only once the client's side closes.
async fn write_input(
    mut feed: tokio::io::DuplexStream,
    mut sink: SplitSink<Socket, Message>,
    ended: Option<Arc<tokio::sync::Notify>>,
) {
    let mut buf = vec![0u8; BUFFER];
    let output_ended = async {
        match &ended {
            Some(n) => n.notified().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(output_ended);
    loop {
        let read = tokio::select! {
            r = feed.read(&mut buf) => r,
            () = &mut output_ended => {
                let _ = sink.close().await;
                return;
            }
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let chunk = buf.get(..n).unwrap_or_default().to_vec();
                if sink.send(Message::Binary(chunk.into())).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = sink.send(Message::Text(String::new().into())).await;
    if ended.is_some() {
        output_ended.await;
        let _ = sink.close().await;
    }
}

/// A command Incus runs, reached through its operation and control socket.
struct IncusExec {
    op: String,
    control: Arc<Mutex<SplitSink<Socket, Message>>>,
    done: watch::Receiver<Option<Result<i64, String>>>,
}

impl std::fmt::Debug for IncusExec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncusExec")
            .field("op", &self.op)
            .finish_non_exhaustive()
    }
}

impl IncusExec {
    async fn send(&self, message: Value, action: &str) -> Result<(), RuntimeError> {
        if self.done.borrow().is_some() {
            return Ok(());
        }
        self.control
            .lock()
            .await
            .send(Message::Text(message.to_string().into()))
            .await
            .or_else(|e| {
                // The command ended and the daemon closed its sockets: nothing to reach.
                if self.done.borrow().is_some() {
                    Ok(())
                } else {
                    Err(RuntimeError::Engine {
                        action: format!("{action} (exec {})", self.op),
                        message: e.to_string(),
                    })
                }
            })
    }
}

#[async_trait]
impl ExecControl for IncusExec {
    async fn wait(&self) -> Result<i64, RuntimeError> {
        let mut done = self.done.clone();
        let result = done
            .wait_for(Option::is_some)
            .await
            .map_err(|_| RuntimeError::Engine {
                action: format!("wait for exec {}", self.op),
                message: "the waiter ended".into(),
            })?
            .clone();
        match result {
            Some(Ok(code)) => Ok(code),
            Some(Err(message)) => Err(RuntimeError::Engine {
                action: format!("exec {}", self.op),
                message,
            }),
            None => Err(RuntimeError::Engine {
                action: format!("exec {}", self.op),
                message: "no exit status".into(),
            }),
        }
    }

    async fn signal(&self, signal: Signal) -> Result<(), RuntimeError> {
        self.send(
            json!({"command": "signal", "signal": signal.number()}),
            "signal",
        )
        .await
    }

    async fn resize(&self, cols: u16, rows: u16) -> Result<(), RuntimeError> {
        self.send(
            json!({"command": "window-resize", "args": {"width": cols.to_string(), "height": rows.to_string()}}),
            "resize",
        )
        .await
    }
}

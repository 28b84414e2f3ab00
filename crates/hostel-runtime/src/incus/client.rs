//! Incus's REST API over its Unix socket: one HTTP/1.1 connection per request, the response
//! envelope (`sync`, `async`, `error`) read into hostel's errors, background operations waited
//! for, and the operations' WebSockets opened on the same socket.
//!
//! Pitfalls this module owns (Incus 6.0): a finished operation is forgotten 5 s after it ends,
//! so it is waited for at once; `/wait` answers HTTP 200 whatever happened, so its body decides;
//! a name taken or an image missing is an operation that fails, not an HTTP status.

use crate::RuntimeError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::UnixStream;
use tokio_tungstenite::WebSocketStream;

/// Incus's socket as Debian's package makes it.
pub const DEFAULT_SOCKET: &str = "/var/lib/incus/unix.socket";

/// How long one request may take to be answered (not how long an operation may run).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The REST API of one Incus daemon.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

/// A background operation Incus started.
#[derive(Debug, Clone, Deserialize)]
pub struct Operation {
    /// Its id.
    pub id: String,
    /// 200 success, 400 failure, 401 cancelled; below 200 while it runs.
    pub status_code: u16,
    /// What it failed with.
    #[serde(default)]
    pub err: String,
    /// What it reports (an exec's `fds` and `return`, an upload's `fingerprint`).
    #[serde(default)]
    pub metadata: Option<Value>,
}

/// A successful answer: at once, or as an operation that was started.
#[derive(Debug)]
pub enum Answer {
    /// Done; what it returned.
    Sync(Value),
    /// Started; wait for it with [`Client::wait`].
    Async(Operation),
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_code: u16,
    #[serde(default)]
    metadata: Value,
}

impl Client {
    /// A client of the daemon at `socket`; nothing is contacted until the first call.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Client {
            socket: socket.into(),
        }
    }

    /// The socket it talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn unreachable(&self, e: impl std::error::Error + Send + Sync + 'static) -> RuntimeError {
        RuntimeError::EngineUnreachable {
            endpoint: self.socket.display().to_string(),
            source: Box::new(e),
        }
    }

    async fn connect(&self) -> Result<UnixStream, RuntimeError> {
        UnixStream::connect(&self.socket)
            .await
            .map_err(|e| self.unreachable(e))
    }

    /// Sends one request; `body` is JSON (or raw bytes with `content_type`).
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> Result<(u16, Envelope), RuntimeError> {
        let (status, bytes) = self.exchange(method, path, body, headers).await?;
        let envelope: Envelope = serde_json::from_slice(&bytes).map_err(|e| {
            engine(
                &format!("{method} {path}"),
                format!("HTTP {status}, not Incus's answer: {e}"),
            )
        })?;
        Ok((status, envelope))
    }

    /// Sends one request and returns the status and the raw body.
    async fn exchange(
        &self,
        method: &str,
        path: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> Result<(u16, Bytes), RuntimeError> {
        let stream = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.unreachable(e))?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "incus");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| engine(&format!("{method} {path}"), e.to_string()))?;
        let exchange = async {
            let resp = sender.send_request(req).await?;
            let status = resp.status().as_u16();
            let bytes = resp.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| engine(&format!("{method} {path}"), "no answer in 60 s".into()))?
            .map_err(|e| self.unreachable(e))?;
        Ok((status, bytes))
    }

    /// A file of an instance, as its bytes (`GET /1.0/instances/NAME/files?path=P`); `None`
    /// when the instance or the file is not there.
    pub async fn file(&self, instance: &str, path: &str) -> Result<Option<Bytes>, RuntimeError> {
        let url = format!("/1.0/instances/{instance}/files?path={path}");
        let (status, bytes) = self.exchange("GET", &url, Bytes::new(), &[]).await?;
        match status {
            200 => Ok(Some(bytes)),
            404 => Ok(None),
            _ => {
                let message = serde_json::from_slice::<Envelope>(&bytes)
                    .map(|e| e.error)
                    .unwrap_or_else(|_| format!("HTTP {status}"));
                Err(engine(&format!("GET {url}"), message))
            }
        }
    }

    /// Calls the API with a JSON body (`Value::Null`: none); `what` names the object for
    /// errors (`instance`, `image`...), `name` the one asked about.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: &Value,
        what: &'static str,
        name: &str,
    ) -> Result<Answer, RuntimeError> {
        let bytes = if body.is_null() {
            Bytes::new()
        } else {
            Bytes::from(body.to_string())
        };
        let (status, env) = self
            .send(method, path, bytes, &[("content-type", "application/json")])
            .await?;
        answer(status, env, &format!("{method} {path}"), what, name)
    }

    /// Sends raw bytes (an image upload) with these headers.
    pub async fn upload(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
        what: &'static str,
        name: &str,
    ) -> Result<Answer, RuntimeError> {
        let mut all = vec![("content-type", "application/octet-stream")];
        all.extend_from_slice(headers);
        let (status, env) = self.send("POST", path, Bytes::from(body), &all).await?;
        answer(status, env, &format!("POST {path}"), what, name)
    }

    /// Sends raw bytes of this content type (a multipart image upload).
    pub async fn upload_as(
        &self,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
        what: &'static str,
        name: &str,
    ) -> Result<Answer, RuntimeError> {
        let (status, env) = self
            .send(
                "POST",
                path,
                Bytes::from(body),
                &[("content-type", content_type)],
            )
            .await?;
        answer(status, env, &format!("POST {path}"), what, name)
    }

    /// `GET path`, which answers at once.
    pub async fn get(
        &self,
        path: &str,
        what: &'static str,
        name: &str,
    ) -> Result<Value, RuntimeError> {
        match self.call("GET", path, &Value::Null, what, name).await? {
            Answer::Sync(v) => Ok(v),
            Answer::Async(op) => Err(engine(
                &format!("GET {path}"),
                format!("answered with operation {}", op.id),
            )),
        }
    }

    /// Calls the API and, when it started an operation, waits for it to end; a failed one
    /// is an error (see [`Client::wait`]).
    pub async fn run(
        &self,
        method: &str,
        path: &str,
        body: &Value,
        what: &'static str,
        name: &str,
    ) -> Result<Value, RuntimeError> {
        match self.call(method, path, body, what, name).await? {
            Answer::Sync(v) => Ok(v),
            Answer::Async(op) => {
                let done = self.wait(&op.id, what, name).await?;
                Ok(done.metadata.unwrap_or(Value::Null))
            }
        }
    }

    /// Waits for an operation to end and returns it; one that failed is an error, read like
    /// an HTTP error (a name taken is a conflict, something missing is not found).
    pub async fn wait(
        &self,
        id: &str,
        what: &'static str,
        name: &str,
    ) -> Result<Operation, RuntimeError> {
        let op = self.wait_end(id, what, name).await?;
        finished(op, &format!("operation {id}"), what, name)
    }

    /// Waits for an operation to end and returns it as it ended, failed or not (an
    /// operation already forgotten is an error).
    pub async fn wait_end(
        &self,
        id: &str,
        what: &'static str,
        name: &str,
    ) -> Result<Operation, RuntimeError> {
        let action = format!("operation {id}");
        loop {
            let path = format!("/1.0/operations/{id}/wait?timeout=30");
            let (_, env) = self.send("GET", &path, Bytes::new(), &[]).await?;
            let env = if env.kind == "error" {
                // Incus 6.0 answers a failed or timed-out wait as an error; the operation
                // itself says which.
                let (status, env) = self
                    .send("GET", &format!("/1.0/operations/{id}"), Bytes::new(), &[])
                    .await?;
                if status == 404 {
                    return Err(op_error(&action, &env.error, what, name));
                }
                env
            } else {
                env
            };
            let op: Operation =
                serde_json::from_value(env.metadata).map_err(|e| engine(&action, e.to_string()))?;
            if op.status_code >= 200 {
                return Ok(op);
            }
        }
    }

    /// Opens an operation's WebSocket (`/1.0/operations/ID/websocket?secret=S`).
    pub async fn websocket(
        &self,
        op: &str,
        secret: &str,
    ) -> Result<WebSocketStream<UnixStream>, RuntimeError> {
        let stream = self.connect().await?;
        let url = format!("ws://incus/1.0/operations/{op}/websocket?secret={secret}");
        let (ws, _) = tokio_tungstenite::client_async(url, stream)
            .await
            .map_err(|e| {
                // Incus says why in the refusal's body.
                let message = match &e {
                    tokio_tungstenite::tungstenite::Error::Http(resp) => {
                        let body = resp.body().as_deref().unwrap_or_default();
                        let why = serde_json::from_slice::<Envelope>(body)
                            .map(|env| env.error)
                            .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned());
                        format!("HTTP {}: {why}", resp.status().as_u16())
                    }
                    e => e.to_string(),
                };
                engine(&format!("open the websocket of operation {op}"), message)
            })?;
        Ok(ws)
    }
}

fn engine(action: &str, message: String) -> RuntimeError {
    RuntimeError::Engine {
        action: action.to_owned(),
        message,
    }
}

/// A failed operation's message as hostel's error.
fn op_error(action: &str, message: &str, what: &'static str, name: &str) -> RuntimeError {
    // A name taken shows as "already exists" or, when two creates race, as the database's
    // constraint.
    if message.contains("already exists") || message.contains("UNIQUE constraint failed") {
        RuntimeError::Conflict {
            name: name.to_owned(),
            message: message.to_owned(),
        }
    } else if message.contains("not found") || message.contains("Image not provided") {
        RuntimeError::NotFound {
            what,
            name: name.to_owned(),
        }
    } else if message.contains("no space left on device") {
        RuntimeError::NoSpace {
            action: action.to_owned(),
        }
    } else {
        engine(action, message.to_owned())
    }
}

fn finished(
    op: Operation,
    action: &str,
    what: &'static str,
    name: &str,
) -> Result<Operation, RuntimeError> {
    if op.status_code == 200 {
        Ok(op)
    } else {
        Err(op_error(action, &op.err, what, name))
    }
}

/// An envelope as an answer or hostel's error.
fn answer(
    status: u16,
    env: Envelope,
    action: &str,
    what: &'static str,
    name: &str,
) -> Result<Answer, RuntimeError> {
    match env.kind.as_str() {
        "sync" => Ok(Answer::Sync(env.metadata)),
        "async" => serde_json::from_value(env.metadata)
            .map(Answer::Async)
            .map_err(|e| engine(action, e.to_string())),
        _ => {
            let code = if env.error_code == 0 {
                status
            } else {
                env.error_code
            };
            Err(match code {
                404 => RuntimeError::NotFound {
                    what,
                    name: name.to_owned(),
                },
                409 => RuntimeError::Conflict {
                    name: name.to_owned(),
                    message: env.error,
                },
                // Incus says "in use", "is running" and "is not running" with a plain 400.
                400 if env.error.contains("in use")
                    || env.error.contains("is running")
                    || env.error.contains("not running")
                    || env.error.contains("already") =>
                {
                    RuntimeError::Conflict {
                        name: name.to_owned(),
                        message: env.error,
                    }
                }
                _ => op_error(action, &env.error, what, name),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(kind: &str, code: u16, error: &str) -> Envelope {
        Envelope {
            kind: kind.into(),
            error: error.into(),
            error_code: code,
            metadata: Value::Null,
        }
    }

    #[test]
    fn incus_errors_read_as_hostels() {
        let read =
            |code, error: &str| answer(code, env("error", code, error), "x", "instance", "a");
        assert!(matches!(
            read(404, "Instance not found"),
            Err(RuntimeError::NotFound {
                what: "instance",
                ..
            })
        ));
        for conflict in [
            "Instance is running",
            "The network is currently in use",
            "The instance is already stopped",
            "Instance is not running",
        ] {
            assert!(
                matches!(read(400, conflict), Err(RuntimeError::Conflict { .. })),
                "{conflict}"
            );
        }
        assert!(matches!(
            read(409, "Alias \"x\" already exists"),
            Err(RuntimeError::Conflict { .. })
        ));
        assert!(matches!(
            read(500, "boom"),
            Err(RuntimeError::Engine { .. })
        ));
        assert!(matches!(
            op_error("create", "Instance \"a\" already exists", "instance", "a"),
            RuntimeError::Conflict { .. }
        ));
        assert!(matches!(
            op_error(
                "create",
                "Image not provided for instance creation",
                "image",
                "x"
            ),
            RuntimeError::NotFound { what: "image", .. }
        ));
    }
}

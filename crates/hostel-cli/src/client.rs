//! The HTTP client the CLI uses when a daemon serves the commands: a remote one (`--server`)
//! or the local one (so the store keeps one writer). Errors come back as the daemon's
//! `{code, message, hint, causes}` and leave the CLI with the same text and exit code as a
//! local run.

use crate::error::CliError;
use futures_util::{SinkExt, StreamExt};
use hostel_api::ErrorBody;
use hostel_core::ErrorCode;
use reqwest::{Method, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// How the client proves who it is.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// A bearer token (an API token, or the local daemon's secret).
    pub token: Option<hostel_core::Secret<String>>,
    /// Who the local CLI acts as (`cli:<user>`), sent with the local secret.
    pub actor: Option<String>,
    /// A client certificate and its key (mutual TLS).
    pub identity: Option<(PathBuf, PathBuf)>,
    /// The CA that signed the server's certificate (default: the system's roots).
    pub ca: Option<PathBuf>,
}

/// A daemon's API.
#[derive(Debug, Clone)]
pub struct Client {
    base: Url,
    http: reqwest::Client,
    tls: Option<Arc<rustls::ClientConfig>>,
    creds: Credentials,
}

fn unreachable(base: &Url, e: impl std::fmt::Display) -> CliError {
    CliError {
        code: ErrorCode::Unavailable,
        message: format!("cannot reach the hostel daemon at {base}"),
        causes: vec![e.to_string()],
        hint: Some(
            "check the address (--server or HOSTEL_SERVER) and that `hostel serve` runs there"
                .into(),
        ),
    }
}

/// The error a daemon answered with, or one made from the status when the body is not one.
fn answered(status: u16, body: &[u8]) -> CliError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => CliError {
            code: ErrorCode::from_name(&e.code).unwrap_or(ErrorCode::Internal),
            message: e.message,
            causes: e.causes,
            hint: e.hint,
        },
        Err(_) => CliError::new(
            ErrorCode::Internal,
            format!(
                "the daemon answered {status}: {}",
                String::from_utf8_lossy(body).trim()
            ),
            None,
        ),
    }
}

impl Client {
    /// A client of the daemon at `server` (`https://host:port`, or `http://` on loopback).
    pub fn new(server: &str, creds: Credentials) -> Result<Client, CliError> {
        let bad = |why: String| {
            CliError::new(
                ErrorCode::InvalidInput,
                format!("server {server:?}: {why}"),
                Some("e.g. --server https://hostel.example.com:8443".into()),
            )
        };
        let base = Url::parse(server).map_err(|e| bad(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(bad("not an http:// or https:// address".into()));
        }
        let tls = if base.scheme() == "https" {
            let identity = creds
                .identity
                .as_ref()
                .map(|(c, k)| (c.as_path(), k.as_path()));
            let config = hostel_web::tls::client_config(creds.ca.as_deref(), identity)
                .map_err(|e| {
                    CliError::new(
                        ErrorCode::InvalidInput,
                        e.to_string(),
                        Some("pass the files `hostel cert generate` wrote: --ca ca.pem --cert client.pem --cert-key client.key".into()),
                    )
                })?;
            Some(config)
        } else {
            None
        };
        let mut builder = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .no_proxy();
        if let Some(config) = &tls {
            builder = builder.tls_backend_preconfigured(config.as_ref().clone());
        }
        let http = builder.build().map_err(|e| unreachable(&base, e))?;
        Ok(Client {
            base,
            http,
            tls,
            creds,
        })
    }

    /// The server's address.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `base` with `segments` appended, each percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, url);
        if let Some(t) = &self.creds.token {
            r = r.bearer_auth(t.expose());
        }
        if let Some(a) = &self.creds.actor {
            r = r.header("x-hostel-actor", a);
        }
        r
    }

    async fn send(&self, r: reqwest::RequestBuilder) -> Result<reqwest::Response, CliError> {
        let resp = r.send().await.map_err(|e| {
            let mut err = unreachable(&self.base, &e);
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                err.causes.push(s.to_string());
                source = s.source();
            }
            err
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap_or_default();
        Err(answered(status, &body))
    }

    async fn decode<T: DeserializeOwned>(&self, resp: reqwest::Response) -> Result<T, CliError> {
        resp.json::<T>().await.map_err(|e| {
            CliError::new(
                ErrorCode::Internal,
                format!("the daemon's answer does not parse: {e}"),
                Some(
                    "the daemon may run another hostel version; compare `hostel --version` on both"
                        .into(),
                ),
            )
        })
    }

    /// `GET` a JSON answer.
    pub async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, CliError> {
        let resp = self
            .send(self.request(Method::GET, self.url(segments)))
            .await?;
        self.decode(resp).await
    }

    /// `GET` with a query string.
    pub async fn get_query<Q: Serialize, T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &Q,
    ) -> Result<T, CliError> {
        let mut url = self.url(segments);
        let text = serde_urlencoded(query)?;
        if !text.is_empty() {
            url.set_query(Some(&text));
        }
        let resp = self.send(self.request(Method::GET, url)).await?;
        self.decode(resp).await
    }

    /// A call with a JSON body and a JSON answer.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: &B,
    ) -> Result<T, CliError> {
        let resp = self
            .send(self.request(method, self.url(segments)).json(body))
            .await?;
        self.decode(resp).await
    }

    /// `POST`s a streamed body with a query string; a JSON answer.
    pub async fn post_stream<Q: Serialize, T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &Q,
        content_type: &str,
        body: futures_util::stream::BoxStream<'static, std::io::Result<Vec<u8>>>,
    ) -> Result<T, CliError> {
        let mut url = self.url(segments);
        let text = serde_urlencoded(query)?;
        if !text.is_empty() {
            url.set_query(Some(&text));
        }
        let resp = self
            .send(
                self.request(Method::POST, url)
                    .header("content-type", content_type)
                    .body(reqwest::Body::wrap_stream(body)),
            )
            .await?;
        self.decode(resp).await
    }

    /// A call whose answer has no body (or one the CLI does not need).
    pub async fn call_empty(
        &self,
        method: Method,
        segments: &[&str],
        query: Option<(&str, &str)>,
    ) -> Result<(), CliError> {
        let mut url = self.url(segments);
        if let Some((k, v)) = query {
            url.query_pairs_mut().append_pair(k, v);
        }
        self.send(self.request(method, url)).await.map(|_| ())
    }

    /// A call with a JSON body whose answer has no body.
    pub async fn call_empty_json<B: Serialize>(
        &self,
        method: Method,
        segments: &[&str],
        body: &B,
    ) -> Result<(), CliError> {
        self.send(self.request(method, self.url(segments)).json(body))
            .await
            .map(|_| ())
    }

    /// Uploads bytes.
    pub async fn put_bytes(&self, segments: &[&str], bytes: Vec<u8>) -> Result<(), CliError> {
        self.send(
            self.request(Method::PUT, self.url(segments))
                .header("content-type", "application/octet-stream")
                .body(bytes),
        )
        .await
        .map(|_| ())
    }

    /// GETs a body as a stream of chunks, with its content type: the file API's downloads,
    /// written out as they come rather than held whole.
    pub async fn get_stream(
        &self,
        segments: &[&str],
    ) -> Result<
        (
            futures_util::stream::BoxStream<'static, Result<Vec<u8>, CliError>>,
            String,
        ),
        CliError,
    > {
        let resp = self
            .send(self.request(Method::GET, self.url(segments)))
            .await?;
        let kind = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let base = self.base.clone();
        let body = futures_util::stream::unfold(Some(resp), move |resp| {
            let base = base.clone();
            async move {
                let mut resp = resp?;
                match resp.chunk().await {
                    Ok(Some(chunk)) => Some((Ok(chunk.to_vec()), Some(resp))),
                    Ok(None) => None,
                    Err(e) => Some((Err(unreachable(&base, e)), None)),
                }
            }
        })
        .boxed();
        Ok((body, kind))
    }

    /// Runs `argv` as `tenant` over the exec WebSocket without a terminal: stdin (when not a
    /// terminal) goes to the command, its stdout and stderr come back apart and byte for byte.
    /// Returns the command's exit code.
    pub async fn exec(&self, tenant: &str, argv: &[String], stdin: bool) -> Result<i64, CliError> {
        let mut url = self.url(&["api", "tenants", tenant, "exec", "ws"]);
        let argv = serde_json::to_string(argv).unwrap_or_default();
        url.query_pairs_mut()
            .append_pair("tty", "false")
            .append_pair("argv", &argv);
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        let _ = url.set_scheme(scheme);
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| unreachable(&self.base, e))?;
        let headers = request.headers_mut();
        if let Some(t) = &self.creds.token
            && let Ok(v) = format!("Bearer {}", t.expose()).parse()
        {
            headers.insert("authorization", v);
        }
        if let Some(a) = &self.creds.actor
            && let Ok(v) = a.parse()
        {
            headers.insert("x-hostel-actor", v);
        }
        let connector = self.tls.clone().map(tokio_tungstenite::Connector::Rustls);
        let (socket, _) =
            tokio_tungstenite::connect_async_tls_with_config(request, None, false, connector)
                .await
                .map_err(|e| match e {
                    tokio_tungstenite::tungstenite::Error::Http(resp) => answered(
                        resp.status().as_u16(),
                        resp.body().as_deref().unwrap_or_default(),
                    ),
                    e => unreachable(&self.base, e),
                })?;
        let (mut to_server, mut from_server) = socket.split();
        let feeder = tokio::spawn(async move {
            if stdin {
                let mut input = tokio::io::stdin();
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match input.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let chunk = buf.get(..n).unwrap_or_default().to_vec();
                            if to_server.send(Message::Binary(chunk.into())).await.is_err() {
                                return to_server;
                            }
                        }
                    }
                }
            }
            let eof = serde_json::json!({ "eof": true }).to_string();
            let _ = to_server.send(Message::Text(eof.into())).await;
            to_server
        });
        let mut stdout = std::io::stdout();
        let mut stderr = std::io::stderr();
        let mut code = None;
        while let Some(msg) = from_server.next().await {
            match msg.map_err(|e| unreachable(&self.base, e))? {
                Message::Binary(b) => match b.split_first() {
                    Some((1, out))
                        if stdout.write_all(out).and_then(|()| stdout.flush()).is_err() =>
                    {
                        code = Some(0);
                        break;
                    }
                    Some((1, _)) => {}
                    Some((2, err)) => {
                        let _ = stderr.write_all(err);
                        let _ = stderr.flush();
                    }
                    _ => {}
                },
                Message::Text(t) => {
                    let v = serde_json::from_str::<serde_json::Value>(&t).unwrap_or_default();
                    if let Some(c) = v.get("exit_code").and_then(serde_json::Value::as_i64) {
                        code = Some(c);
                    }
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
        feeder.abort();
        code.ok_or_else(|| {
            CliError::new(
                ErrorCode::Unavailable,
                format!(
                    "the connection to {} closed before the command ended",
                    self.base
                ),
                Some("the daemon may have stopped; see `hostel status`".into()),
            )
        })
    }
}

/// A query string from a serializable value (flat fields only).
fn serde_urlencoded<Q: Serialize>(query: &Q) -> Result<String, CliError> {
    let value = serde_json::to_value(query)
        .map_err(|e| CliError::new(ErrorCode::Internal, e.to_string(), None))?;
    let mut url = Url::parse("http://x/")
        .map_err(|e| CliError::new(ErrorCode::Internal, e.to_string(), None))?;
    if let serde_json::Value::Object(map) = value {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in map {
            match v {
                serde_json::Value::Null => {}
                serde_json::Value::String(s) => {
                    pairs.append_pair(&k, &s);
                }
                v => {
                    pairs.append_pair(&k, &v.to_string());
                }
            }
        }
    }
    Ok(url.query().unwrap_or_default().to_owned())
}

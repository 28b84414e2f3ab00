//! The HTTP listeners' connections and requests: what keeps one client, or a flood of them,
//! from taking the daemon down.
//!
//! - An accept error (EMFILE when the descriptors run out) pauses the listener; it never ends
//!   it.
//! - Each client address holds at most `[http] max_connections_per_ip` connections on a
//!   listener; one more is closed at once.
//! - A client has `header_timeout_secs` for its TLS handshake and each request's headers; a
//!   connection with no request in flight for `idle_timeout_secs` is closed; a request body
//!   that pauses `body_timeout_secs` fails.
//! - Every request gets an id (`x-request-id` on the response, `request_id` in a 5xx body) and
//!   a span that carries it, and runs in a task of its own: a client that hangs up part-way does
//!   not cut a create or a purge short, and a handler that panics fails its request (500), not
//!   its connection's neighbours.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request};
use axum::response::{IntoResponse, Response};
use hostel_core::config::HttpConfig;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tower::ServiceExt;

tokio::task_local! {
    /// The id of the request the current task serves.
    static REQUEST_ID: Arc<str>;
}

/// The id of the request being served, if any.
pub(crate) fn request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.to_string()).ok()
}

/// How long clients may take and how many connections one address may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// For a TLS handshake and for each request's headers.
    pub header: Duration,
    /// With no request in flight.
    pub idle: Duration,
    /// Between two pieces of a request body.
    pub body: Duration,
    /// Open connections per client address (0: no cap).
    pub per_ip: u32,
}

impl ConnLimits {
    /// The limits `[http]` sets.
    pub fn from_config(http: &HttpConfig) -> Self {
        ConnLimits {
            header: Duration::from_secs(http.header_timeout_secs),
            idle: Duration::from_secs(http.idle_timeout_secs),
            body: Duration::from_secs(http.body_timeout_secs),
            per_ip: http.max_connections_per_ip,
        }
    }
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self::from_config(&HttpConfig::default())
    }
}

/// Open connections per client address.
#[derive(Debug, Clone, Default)]
struct PerIp(Arc<Mutex<HashMap<IpAddr, u32>>>);

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
struct Slot {
    counts: PerIp,
    ip: IpAddr,
}

impl PerIp {
    fn admit(&self, ip: IpAddr, max: u32) -> Option<Slot> {
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if max > 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Serves `app` on `listener` (over TLS with `tls`) until `shutdown` completes; then stops
/// accepting, lets each connection finish the request it serves, and returns when all have
/// closed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: ConnLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let per_ip = PerIp::default();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while conns.try_join_next().is_some() {}
        let (tcp, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tokio::time::sleep(hostel_service::net::accept_pause(&e)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = per_ip.admit(peer.ip(), limits.per_ip) else {
            tracing::warn!(%peer, max = limits.per_ip, "refused: too many connections from one address");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let acceptor = acceptor.clone();
        let stop = stop_rx.clone();
        conns.spawn(async move {
            let _slot = slot;
            match acceptor {
                None => serve_io(TokioIo::new(tcp), app, peer, None, limits, stop).await,
                Some(acceptor) => {
                    let tls = match tokio::time::timeout(limits.header, acceptor.accept(tcp)).await
                    {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "tls handshake refused");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "tls handshake too slow; dropped");
                            return;
                        }
                    };
                    let cert = crate::tls::client_cert(&tls);
                    serve_io(TokioIo::new(tls), app, peer, Some(cert), limits, stop).await;
                }
            }
        });
    }
    let _ = stop_tx.send(true);
    while conns.join_next().await.is_some() {}
    Ok(())
}

/// Requests in flight on one connection, and when the last one ended.
#[derive(Debug)]
struct Activity {
    in_flight: AtomicUsize,
    last: Mutex<Instant>,
}

impl Activity {
    fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
    }

    fn end(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    fn idle_for(&self, limit: Duration) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0
            && self
                .last
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .elapsed()
                >= limit
    }
}

/// Serves one connection until it closes, goes idle, or the listener stops.
async fn serve_io<I>(
    io: TokioIo<I>,
    app: Router,
    peer: SocketAddr,
    cert: Option<crate::tls::ClientCert>,
    limits: ConnLimits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity {
        in_flight: AtomicUsize::new(0),
        last: Mutex::new(Instant::now()),
    });
    let seen = activity.clone();
    let svc = tower::service_fn(move |req: Request<hyper::body::Incoming>| {
        let mut req = req.map(|b| Body::new(tower_http::timeout::TimeoutBody::new(limits.body, b)));
        req.extensions_mut().insert(ConnectInfo(peer));
        if let Some(c) = &cert {
            req.extensions_mut().insert(c.clone());
        }
        let app = app.clone();
        let seen = seen.clone();
        seen.begin();
        async move {
            let response = app.oneshot(req).await;
            seen.end();
            response
        }
    });
    let svc = hyper_util::service::TowerToHyperService::new(svc);
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header);
    let conn = builder.serve_connection_with_upgrades(io, svc);
    tokio::pin!(conn);
    let mut look = tokio::time::interval(limits.idle.min(Duration::from_secs(1)));
    let mut closing = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(%peer, error = %e, "http connection ended with an error");
                }
                return;
            }
            _ = look.tick(), if !closing => {
                if activity.idle_for(limits.idle) {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
            _ = stop.changed(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// The outermost layer of every router: gives the request an id and a span, and runs the
/// rest in a task of its own (see the module's notes).
pub(crate) async fn request_scope(req: Request<Body>, next: axum::middleware::Next) -> Response {
    let id: Arc<str> = uuid::Uuid::new_v4().simple().to_string().into();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    // The path is not recorded: sign-in links carry their secret in it.
    let span = tracing::info_span!("http_request", request_id = %id, method = %req.method(), %peer);
    let work =
        tracing::Instrument::instrument(REQUEST_ID.scope(id.clone(), next.run(req)), span.clone());
    let mut response = match tokio::spawn(work).await {
        Ok(r) => r,
        Err(e) => {
            let _in = span.enter();
            tracing::error!(error = %e, "the request's handler panicked");
            REQUEST_ID.sync_scope(id.clone(), || {
                crate::ApiError::new(
                    hostel_core::ErrorCode::Internal,
                    "the request's handler failed",
                    None,
                )
                .into_response()
            })
        }
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_holds_at_most_its_share() {
        let per_ip = PerIp::default();
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let one = per_ip.admit(a, 2).unwrap();
        let two = per_ip.admit(a, 2).unwrap();
        assert!(per_ip.admit(a, 2).is_none());
        assert!(per_ip.admit(b, 2).is_some(), "addresses are apart");
        drop(one);
        let three = per_ip.admit(a, 2);
        assert!(three.is_some(), "a closed connection frees its place");
        drop((two, three));
        assert!(per_ip.0.lock().unwrap().is_empty(), "{:?}", per_ip.0);
        assert!((0..1000).all(|_| per_ip.admit(a, 0).is_some()), "0: no cap");
    }
}

//! `/u/{tenant}/{app}/...`: JupyterLab, VS Code and the desktop, proxied into the tenant's
//! workspace. A request needs the tenant's own browser session; the first one wakes the
//! workspace and has its supervisor start the app, later ones go straight to the port the
//! service returned (kept until a connection to it fails). Connections are opened inside the
//! workspace, to its loopback, by the service: the proxy never learns a workspace's address. HTTP and WebSocket both pass; the
//! session cookie does not (the app never sees it). An open WebSocket counts as a session of
//! the tenant, so idle-stop leaves a workspace alone while a tab uses it.

use crate::portal::{Access, tenant_access};
use crate::{ApiError, AppState};
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use hostel_core::apps::AppOrigin;
use hostel_core::{ErrorCode, TenantName, WebApp};
use hostel_service::Hostel;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// An app's port on the workspace's loopback and the tenant's incarnation it belongs to.
type Endpoint = (u16, String);

/// What in a workspace a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    /// One of hostel's apps, which the workspace's supervisor starts.
    App(WebApp),
    /// A port the tenant published and serves itself.
    Port(u16),
}

impl Target {
    fn title(self) -> String {
        match self {
            Target::App(app) => app.title().to_owned(),
            Target::Port(port) => format!("port {port}"),
        }
    }
}

/// Where each tenant's running apps listen, and the client that reaches them.
#[derive(Debug, Clone)]
pub struct AppProxy {
    client: Client<WorkspaceConnector, Body>,
    /// By tenant and app: the port, and the tenant's incarnation it belongs to.
    endpoints: Arc<Mutex<HashMap<(TenantName, Target), Endpoint>>>,
}

impl AppProxy {
    /// A proxy whose connections `hostel` opens.
    pub fn new(hostel: Arc<Hostel>) -> Self {
        AppProxy {
            client: Client::builder(TokioExecutor::new()).build(WorkspaceConnector { hostel }),
            endpoints: Arc::default(),
        }
    }

    fn known(&self, tenant: &TenantName, app: Target, incarnation: &str) -> Option<u16> {
        let map = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(tenant.clone(), app))
            .filter(|(_, i)| i == incarnation)
            .map(|(at, _)| *at)
    }

    fn remember(&self, tenant: &TenantName, app: Target, at: Option<Endpoint>) {
        let mut map = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        match at {
            Some(at) => map.insert((tenant.clone(), app), at),
            None => map.remove(&(tenant.clone(), app)),
        };
    }
}

/// Opens the proxy's connections: `http://TENANT:PORT/` is `PORT` on the loopback of the
/// tenant's workspace, reached through the service (never by an address).
#[derive(Debug, Clone)]
struct WorkspaceConnector {
    hostel: Arc<Hostel>,
}

impl tower::Service<Uri> for WorkspaceConnector {
    type Response = WorkspaceIo;
    type Error = hostel_service::ServiceError;
    type Future = futures_util::future::BoxFuture<'static, Result<WorkspaceIo, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let hostel = self.hostel.clone();
        Box::pin(async move {
            let tenant: TenantName = uri
                .host()
                .unwrap_or_default()
                .parse()
                .map_err(hostel_service::ServiceError::from)?;
            let port = uri.port_u16().unwrap_or(80);
            let conn = hostel.workspace_connect(&tenant, port).await?;
            Ok(WorkspaceIo(TokioIo::new(conn)))
        })
    }
}

/// A connection into a workspace, as the HTTP client drives it.
struct WorkspaceIo(TokioIo<hostel_runtime::Connection>);

impl Connection for WorkspaceIo {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for WorkspaceIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for WorkspaceIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Headers that belong to one hop and are not passed on (RFC 9110, 7.6.1).
const HOP_BY_HOP: [header::HeaderName; 6] = [
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// `/u/{tenant}/{app}`: the app lives at the path with the slash.
pub async fn to_slash(Path((tenant, app)): Path<(String, String)>) -> Response {
    match (tenant.parse::<TenantName>(), app.parse::<WebApp>()) {
        (Ok(t), Ok(a)) => Redirect::to(&a.prefix(t.as_str())).into_response(),
        _ => not_found(),
    }
}

fn not_found() -> Response {
    ApiError::new(
        ErrorCode::NotFound,
        "no such page",
        Some("open apps from the portal"),
    )
    .page()
}

/// `/u/{tenant}/{app}/` and below, any method.
pub async fn root(
    State(s): State<AppState>,
    Path((tenant, app)): Path<(String, String)>,
    request: Request,
) -> Response {
    proxy(s, tenant, app, request).await
}

/// `/u/{tenant}/{app}/{*rest}`, any method.
pub async fn below(
    State(s): State<AppState>,
    Path((tenant, app, _rest)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    proxy(s, tenant, app, request).await
}

async fn proxy(s: AppState, tenant: String, app: String, request: Request) -> Response {
    let mut response = proxy_inner(s, tenant, app, request).await;
    harden(response.headers_mut());
    response
}

/// Headers every answer under `/u/` gets, the app's and hostel's own error pages alike: no
/// content sniffing, and no framing by another origin. The app's own values are kept.
fn harden(h: &mut HeaderMap) {
    h.entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    h.entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("SAMEORIGIN"));
    // A second policy only narrows what the app's own allows.
    h.append(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'self'"),
    );
}

async fn proxy_inner(s: AppState, tenant: String, app: String, request: Request) -> Response {
    let Ok(app) = app.parse::<WebApp>() else {
        return not_found();
    };
    // Under `[http] domain` apps never run on hostel's own origin: each is sent to its own.
    if let (Some(domain), Ok(tenant)) = (&s.domain, tenant.parse::<TenantName>()) {
        let origin = AppOrigin::App { app, tenant };
        let path = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        return Redirect::to(&origin_url(&s, request.headers(), domain, &origin, path))
            .into_response();
    }
    // A service worker registered from an app's page would outlive it and could take over
    // every path of the shared origin; no app needs one here.
    if request
        .headers()
        .get("service-worker")
        .is_some_and(|v| v.as_bytes() == b"script")
    {
        return ApiError::new(
            ErrorCode::PermissionDenied,
            "apps may not register service workers on hostel's origin",
            None,
        )
        .page();
    }
    let tenant = match tenant_access(&s, request.headers(), &tenant, app.slug()).await {
        Ok(Access::Granted(t)) => t,
        Ok(Access::SignIn) => return Redirect::to("/login").into_response(),
        Ok(Access::Denied(r)) => return r,
        Err(e) => return e.page(),
    };
    let prefix = app.prefix(tenant.as_str());
    match forward(&s, &tenant, Target::App(app), &prefix, request).await {
        Ok(r) => r,
        Err(e) => e.page(),
    }
}

/// The session cookie of an app's own origin (host-only: no other origin gets it); over TLS
/// with the `__Host-` prefix, so no sibling origin can plant one.
fn app_cookie(s: &AppState) -> &'static str {
    if s.secure_cookies {
        "__Host-hostel_app"
    } else {
        "hostel_app"
    }
}

/// Whether a cookie name is one of hostel's own (`hostel_*`, also with a `__Host-` or
/// `__Secure-` prefix): never set by an app, never passed to one.
fn hostels_cookie(name: &str) -> bool {
    let bare = name
        .strip_prefix("__Host-")
        .or_else(|| name.strip_prefix("__Secure-"))
        .unwrap_or(name);
    bare.starts_with("hostel_")
}

/// The path on an app's origin that takes a ticket from hostel's origin and signs in there.
const TICKET_PATH: &str = "/.hostel/ticket";

/// The port in a `Host` header, with its colon (`:8080`), or nothing.
fn host_port(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.rsplit_once(':'))
        .filter(|(_, p)| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        .map(|(_, p)| format!(":{p}"))
        .unwrap_or_default()
}

/// The URL of `path` on `origin`, with the scheme and port this request came with.
pub(crate) fn origin_url(
    s: &AppState,
    headers: &HeaderMap,
    domain: &str,
    origin: &AppOrigin,
    path: &str,
) -> String {
    format!(
        "{}://{}{}{path}",
        s.scheme(),
        origin.host(domain),
        host_port(headers)
    )
}

/// Middleware (under `[http] domain`): a request whose `Host` is an app's origin goes to
/// that app; any other goes on to hostel's own routes.
pub async fn by_origin(
    State(s): State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let origin = s.domain.as_deref().and_then(|d| {
        request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .and_then(|h| AppOrigin::from_host(h, d))
    });
    match origin {
        Some(origin) => {
            let mut r = match on_origin(&s, origin, request).await {
                Ok(r) => r,
                Err(e) => e.page(),
            };
            harden(r.headers_mut());
            r
        }
        None => next.run(request).await,
    }
}

/// A request on an app's own origin: the ticket that signs in there, or the app itself for
/// its tenant's session (a public port: for anyone).
async fn on_origin(
    s: &AppState,
    origin: AppOrigin,
    request: Request,
) -> Result<Response, ApiError> {
    let domain = s.domain.as_deref().unwrap_or_default();
    let host = origin.host(domain);
    if request.uri().path() == TICKET_PATH {
        return redeem(s, &host, request);
    }
    let tenant = origin.tenant().clone();
    let mut holders = Vec::new();
    for token in crate::portal::cookie_values(request.headers(), app_cookie(s)) {
        holders.extend(s.hostel.web_session(&token)?);
    }
    let signed_in = crate::portal::sole(holders).as_ref() == Some(&tenant);
    let sign_in = || {
        let back = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let to = format!("{host}{}{back}", host_port(request.headers()));
        let query = serde_urlencoded::to_string([("to", to.as_str())]).unwrap_or_default();
        Redirect::to(&format!(
            "{}://{domain}{}/login/app?{query}",
            s.scheme(),
            host_port(request.headers())
        ))
        .into_response()
    };
    match origin {
        AppOrigin::App { app, .. } => {
            if !signed_in {
                return Ok(sign_in());
            }
            let prefix = app.prefix(tenant.as_str());
            let path = request.uri().path();
            if path == "/" || path == prefix.trim_end_matches('/') {
                return Ok(
                    Redirect::to(&format!("{prefix}{}", app.entry(tenant.as_str())))
                        .into_response(),
                );
            }
            if !path.starts_with(&prefix) {
                return Ok(not_found());
            }
            forward(s, &tenant, Target::App(app), "/", request).await
        }
        AppOrigin::Port { port, .. } => {
            let Some(published) = s.hostel.published_port(&tenant, port)? else {
                return Ok(not_found());
            };
            if !published.public && !signed_in {
                return Ok(sign_in());
            }
            forward(s, &tenant, Target::Port(port), "/", request).await
        }
    }
}

/// What a ticket URL carries.
#[derive(Debug, serde::Deserialize)]
struct TicketQuery {
    t: String,
    to: String,
}

/// `GET /.hostel/ticket?t=TICKET&to=PATH` on an app's origin: uses the ticket, sets this
/// origin's own session cookie and goes on to `PATH` (a path on this origin only).
fn redeem(s: &AppState, host: &str, request: Request) -> Result<Response, ApiError> {
    let q: TicketQuery = serde_urlencoded::from_str(request.uri().query().unwrap_or_default())
        .map_err(|_| ApiError::new(ErrorCode::InvalidInput, "a ticket URL takes t and to", None))?;
    let to = if q.to.starts_with('/') && !q.to.starts_with("//") && !q.to.contains('\\') {
        q.to
    } else {
        "/".to_owned()
    };
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    match s.hostel.redeem_app_ticket(&q.t, host, peer) {
        Ok((_, session)) => {
            let secure = if s.secure_cookies { "; Secure" } else { "" };
            let max_age = hostel_service::SESSION_HOURS * 3600;
            let cookie = HeaderValue::from_str(&format!(
                "{}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
                app_cookie(s),
                session.expose()
            ))
            .unwrap_or_else(|_| HeaderValue::from_static("hostel_app=; Max-Age=0"));
            Ok(crate::portal::redirect_setting(&to, cookie))
        }
        Err(hostel_service::ServiceError::LoginFailed) => Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "this sign-in ticket does not work: it was used, it expired, or it is another app's",
            Some("open the app again from your portal"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// What `/login/app` takes: the app origin's host (with its port) and path to sign in to.
#[derive(Debug, serde::Deserialize)]
pub struct AppLoginQuery {
    to: String,
}

/// `GET /login/app?to=HOST/PATH` on hostel's own origin: for a browser signed in here as the
/// app's tenant, a one-time ticket and a redirect that signs it in on the app's origin.
pub async fn login_for_app(
    State(s): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<AppLoginQuery>,
) -> Result<Response, ApiError> {
    let Some(domain) = s.domain.as_deref() else {
        return Ok(not_found());
    };
    let (host, path) = match q.to.find('/') {
        Some(i) => q.to.split_at(i),
        None => (q.to.as_str(), "/"),
    };
    let Some(origin) = AppOrigin::from_host(host, domain) else {
        return Ok(not_found());
    };
    let tenant = origin.tenant().clone();
    match crate::portal::tenant_access(&s, &headers, tenant.as_str(), "app origin").await? {
        crate::portal::Access::Granted(_) => {}
        crate::portal::Access::SignIn => return Ok(Redirect::to("/login").into_response()),
        crate::portal::Access::Denied(r) => return Ok(r),
    }
    let ticket = s.hostel.app_ticket(&tenant, &origin.host(domain));
    let query = serde_urlencoded::to_string([("t", ticket.expose().as_str()), ("to", path)])
        .unwrap_or_default();
    Ok(Redirect::to(&format!("{}://{host}{TICKET_PATH}?{query}", s.scheme())).into_response())
}

/// The target's address: known, or found by waking the workspace (and starting the app).
async fn endpoint(s: &AppState, tenant: &TenantName, to: Target) -> Result<u16, ApiError> {
    let incarnation = s.hostel.tenant_incarnation(tenant)?;
    if let Some(at) = s.apps.known(tenant, to, &incarnation) {
        return Ok(at);
    }
    let at = hostel_service::acting_as(format!("web:{tenant}"), async {
        match to {
            Target::App(app) => s.hostel.app_endpoint(tenant, app).await,
            Target::Port(port) => s.hostel.port_endpoint(tenant, port).await,
        }
    })
    .await?;
    s.apps.remember(tenant, to, Some((at, incarnation)));
    Ok(at)
}

/// Passes `request` on to `to` in the tenant's workspace; the answer may set cookies only
/// below `cookie_path` (the app's prefix on a shared origin, `/` on its own).
async fn forward(
    s: &AppState,
    tenant: &TenantName,
    to: Target,
    cookie_path: &str,
    mut request: Request,
) -> Result<Response, ApiError> {
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let upstream_path = match to {
        Target::App(app) if app.strips_prefix() => {
            let prefix = app.prefix(tenant.as_str());
            format!(
                "/{}",
                path_and_query.strip_prefix(&prefix).unwrap_or_default()
            )
        }
        _ => path_and_query,
    };
    let upgrade = request.headers().contains_key(header::UPGRADE);
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let (parts, body) = request.into_parts();
    let headers = upstream_headers(&parts.headers, upgrade);
    // A body is sent once: only requests without one are retried after waking the app again.
    let retryable = upgrade || matches!(parts.method.as_str(), "GET" | "HEAD" | "OPTIONS");
    let mut body = Some(body);
    let mut tries = 0;
    let response = loop {
        tries += 1;
        let port = endpoint(s, tenant, to).await?;
        let uri: Uri = format!("http://{tenant}:{port}{upstream_path}")
            .parse()
            .map_err(|e| bad_gateway(to, &format!("bad upstream URL: {e}")))?;
        let mut req = hyper::Request::builder()
            .method(parts.method.clone())
            .uri(uri)
            .version(hyper::Version::HTTP_11);
        if let Some(h) = req.headers_mut() {
            h.extend(headers.clone());
        }
        let req = req
            .body(if retryable {
                Body::empty()
            } else {
                body.take().unwrap_or_else(Body::empty)
            })
            .map_err(|e| bad_gateway(to, &e.to_string()))?;
        match s.apps.client.request(req).await {
            Ok(r) => break r,
            Err(e) if e.is_connect() && retryable && tries < 2 => {
                // The app or the workspace stopped since: start them again.
                s.apps.remember(tenant, to, None);
            }
            Err(e) => {
                s.apps.remember(tenant, to, None);
                return Err(bad_gateway(to, &e.to_string()));
            }
        }
    };
    let (mut rparts, rbody) = response.into_parts();
    if rparts.status == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return Err(bad_gateway(to, "the app switched protocols unasked"));
        };
        let upstream = hyper::Response::from_parts(rparts.clone(), rbody);
        let hostel = s.hostel.clone();
        let tenant = tenant.clone();
        tokio::spawn(async move {
            let (Ok(client), Ok(server)) =
                (client_upgrade.await, hyper::upgrade::on(upstream).await)
            else {
                return;
            };
            hostel.activity_begin(&tenant);
            let _ =
                tokio::io::copy_bidirectional(&mut TokioIo::new(client), &mut TokioIo::new(server))
                    .await;
            hostel.activity_end(&tenant);
        });
        return Ok(Response::from_parts(rparts, Body::empty()));
    }
    for h in &HOP_BY_HOP {
        rparts.headers.remove(h);
    }
    downstream_headers(&mut rparts.headers, cookie_path);
    Ok(Response::from_parts(rparts, Body::new(rbody)))
}

/// The app's answer as the browser gets it, on an origin it shares with hostel's own pages
/// and other tenants' apps: no `Service-Worker-Allowed` (a worker's scope stays within the
/// script's folder), and only the cookies the app may set: never one of hostel's (`hostel_*`),
/// never one for a path outside the app's `prefix`, never one for other hosts (`Domain`).
fn downstream_headers(h: &mut HeaderMap, prefix: &str) {
    h.remove("service-worker-allowed");
    let below = prefix.trim_end_matches('/');
    let kept: Vec<HeaderValue> = h
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|v| {
            let Ok(text) = v.to_str() else {
                return false;
            };
            let mut parts = text.split(';').map(str::trim);
            let name = parts
                .next()
                .and_then(|nv| nv.split_once('='))
                .map(|(n, _)| n.trim())
                .unwrap_or_default();
            let mut ok = !name.is_empty() && !hostels_cookie(name);
            for attr in parts {
                let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
                if k.eq_ignore_ascii_case("domain") {
                    ok = false;
                }
                if k.eq_ignore_ascii_case("path") {
                    let v = v.trim();
                    ok &= v == below || v.starts_with(&format!("{below}/"));
                }
            }
            ok
        })
        .cloned()
        .collect();
    h.remove(header::SET_COOKIE);
    for v in kept {
        h.append(header::SET_COOKIE, v);
    }
}

/// The browser's headers as the app gets them: without hop-by-hop headers (but those that
/// ask for a WebSocket) and without hostel's session cookie. `Host` stays the gateway's, so
/// the apps' own origin checks see the page's origin.
fn upstream_headers(incoming: &HeaderMap, upgrade: bool) -> HeaderMap {
    let mut h = incoming.clone();
    for name in &HOP_BY_HOP {
        if !(upgrade && *name == header::CONNECTION) {
            h.remove(name);
        }
    }
    if !upgrade {
        h.remove(header::UPGRADE);
    }
    let cookies: Vec<String> = h
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        // None of hostel's own cookies (`hostel_session`, `hostel_admin`) reaches an app.
        .filter(|c| {
            let name = c.split_once('=').map_or(*c, |(n, _)| n).trim();
            !c.is_empty() && !hostels_cookie(name)
        })
        .map(str::to_owned)
        .collect();
    h.remove(header::COOKIE);
    if !cookies.is_empty()
        && let Ok(v) = HeaderValue::from_str(&cookies.join("; "))
    {
        h.insert(header::COOKIE, v);
    }
    h
}

fn bad_gateway(to: Target, why: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Unavailable,
        format!("{} in the workspace does not answer: {why}", to.title()),
        Some("reload the page in a moment; stopping and starting the workspace restarts its apps"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_headers_drop_the_session_cookie_and_hop_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; hostel_session=secret; _xsrf=2"),
        );
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        let plain = upstream_headers(&h, false);
        assert_eq!(plain.get(header::COOKIE).unwrap(), "a=1; _xsrf=2");
        assert!(plain.get(header::CONNECTION).is_none());
        assert!(plain.get(header::UPGRADE).is_none());
        let ws = upstream_headers(&h, true);
        assert_eq!(ws.get(header::CONNECTION).unwrap(), "upgrade");
        assert_eq!(ws.get(header::UPGRADE).unwrap(), "websocket");
        assert!(ws.get(header::TE).is_none());
        h.insert(
            header::COOKIE,
            HeaderValue::from_static(
                "hostel_session=x; hostel_admin=y; __Host-hostel_session=z; __Secure-hostel_app=w",
            ),
        );
        assert!(upstream_headers(&h, false).get(header::COOKIE).is_none());
    }

    /// Regression (#12): an app's page planted cookies for `/admin` and other tenants' paths,
    /// and widened its service worker's scope to `/`, on the origin it shares with hostel.
    #[test]
    fn issue_12_an_app_sets_cookies_only_for_its_own_prefix() {
        let mut h = HeaderMap::new();
        for c in [
            "_xsrf=1; Path=/u/alice/jupyter/",
            "own=1",
            "exact=1; Path=/u/alice/jupyter",
            "admin=1; Path=/admin",
            "root=1; Path=/",
            "other=1; Path=/u/bob/jupyter/",
            "sibling=1; Path=/u/alice/jupyterx",
            "hostel_session=stolen; Path=/u/alice/jupyter/",
            "__Host-hostel_session=stolen; Path=/",
            "wide=1; Domain=hostel.test; Path=/u/alice/jupyter/",
        ] {
            h.append(header::SET_COOKIE, HeaderValue::from_static(c));
        }
        h.insert("service-worker-allowed", HeaderValue::from_static("/"));
        downstream_headers(&mut h, "/u/alice/jupyter/");
        let kept: Vec<&str> = h
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(
            kept,
            [
                "_xsrf=1; Path=/u/alice/jupyter/",
                "own=1",
                "exact=1; Path=/u/alice/jupyter"
            ]
        );
        assert!(h.get("service-worker-allowed").is_none());
        let mut page = HeaderMap::new();
        page.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        harden(&mut page);
        assert_eq!(page.get(header::X_FRAME_OPTIONS).unwrap(), "DENY");
        assert_eq!(page.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(), "nosniff");
        assert_eq!(
            page.get(header::CONTENT_SECURITY_POLICY).unwrap(),
            "frame-ancestors 'self'"
        );
    }
}

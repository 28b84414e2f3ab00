//! Bearer tokens: every `/api` call names its token, and the action its route declares
//! (`x-hostel-action` in the OpenAPI document) must be one the token's role may perform: the
//! HTTP method says nothing (a WebSocket upgrade is a GET and runs commands). A route that
//! declares no action is refused to everyone. Every call but a metadata read is audited with
//! the token that made it.

use crate::{ApiError, AppState};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use hostel_core::{Action, AuditEvent, ErrorCode, Outcome, Role};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// The name of the OpenAPI operation extension in which each route declares its action.
pub const ACTION_EXTENSION: &str = "x-hostel-action";

/// The action each API operation declares, by method and route template
/// (`/api/tenants/{name}`); `None` for an operation that declares none.
#[derive(Debug, Clone, Default)]
pub struct RouteActions(Arc<HashMap<(Method, String), Option<Action>>>);

impl RouteActions {
    /// Reads the declarations from the generated document (before its paths are rewritten
    /// for OpenAPI, so they match axum's route templates). Every handler of the API is an
    /// operation there; one without a valid declaration is kept as `None`, and refused.
    pub fn from_doc(doc: &utoipa::openapi::OpenApi) -> Self {
        let mut map = HashMap::new();
        for (path, item) in &doc.paths.paths {
            let ops = [
                (Method::GET, &item.get),
                (Method::PUT, &item.put),
                (Method::POST, &item.post),
                (Method::PATCH, &item.patch),
                (Method::DELETE, &item.delete),
            ];
            for (method, op) in ops {
                let Some(op) = op else { continue };
                let action = op
                    .extensions
                    .as_ref()
                    .and_then(|x| x.get(ACTION_EXTENSION))
                    .and_then(|v| v.as_str())
                    .and_then(|a| a.parse::<Action>().ok());
                map.insert((method, path.clone()), action);
            }
        }
        RouteActions(Arc::new(map))
    }

    /// The operation of `method` on the route template `path`, if there is one, with its
    /// action if it declares one; HEAD is a GET.
    fn of(&self, method: &Method, path: &str) -> Option<Option<Action>> {
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        self.0.get(&(method.clone(), path.to_owned())).copied()
    }
}

/// What the token check needs: the app and the routes' declared actions.
#[derive(Debug, Clone)]
pub struct Gate {
    state: AppState,
    actions: RouteActions,
}

impl Gate {
    /// The check for the API routes whose declarations are `actions`.
    pub fn new(state: AppState, actions: RouteActions) -> Self {
        Gate { state, actions }
    }
}

/// Who made the call (`api:<token name>`), for handlers that audit in the service.
#[derive(Debug, Clone)]
pub struct Caller(pub String);

/// Declares the bearer scheme in the OpenAPI document.
pub struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Who calls: the local CLI's secret, a verified client certificate, or a live token, with
/// its role. A banned address, a missing, unknown or revoked token is refused and audited;
/// a wrong token counts toward a ban.
pub(crate) fn identify(s: &AppState, request: &Request) -> Result<(String, Role), ApiError> {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    let unauthenticated = || {
        ApiError::new(
            ErrorCode::Unauthenticated,
            "missing, unknown or revoked API token",
            Some(
                "send `Authorization: Bearer <token>`; an admin makes one with `hostel token create NAME`",
            ),
        )
    };
    // The client's address, when the server was started with connection info (the daemon is).
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_else(|| "unknown".into());
    // A verified client certificate (mutual TLS) is an admin credential of its own.
    let cert = request
        .extensions()
        .get::<crate::tls::ClientCert>()
        .cloned();
    let local = s
        .local_token
        .as_ref()
        .is_some_and(|secret| !token.is_empty() && same_secret(secret.expose(), token));
    let ip = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    // A banned address gets nothing, whatever it sends (but the local CLI's secret, so an admin
    // on the host can always lift a ban).
    if let Some(ip) = ip.filter(|_| !local)
        && s.hostel.is_banned(ip)?
    {
        let ev = AuditEvent::new(
            chrono::Utc::now(),
            "api.auth",
            "api:unknown",
            Outcome::Denied,
        )
        .with("path", request.uri().path())
        .with("peer", &peer)
        .with("reason", "banned address");
        s.hostel.record(ev)?;
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            format!("address {ip} is banned after repeated failed logins"),
            Some("an admin lifts it with `hostel ban remove ADDRESS`; bans also expire"),
        ));
    }
    let caller = if local {
        Some((local_actor(request), Role::Admin))
    } else if let Some(crate::tls::ClientCert(fp)) = cert.filter(|c| !c.0.is_empty()) {
        Some((
            format!("api:cert-{}", fp.get(..16).unwrap_or(&fp)),
            Role::Admin,
        ))
    } else if token.is_empty() {
        None
    } else {
        s.hostel
            .token_verify(token)?
            .map(|r| (format!("api:{}", r.name), r.role))
    };
    let Some((actor, role)) = caller else {
        let reason = if token.is_empty() {
            "no token"
        } else {
            "unknown or revoked token"
        };
        let ev = AuditEvent::new(
            chrono::Utc::now(),
            "api.auth",
            "api:unknown",
            Outcome::Denied,
        )
        .with("path", request.uri().path())
        .with("peer", &peer)
        .with("reason", reason);
        s.hostel.record(ev)?;
        // Guessing tokens, or calling without one, counts like failed SSH logins: enough of
        // them ban the address, so what an outsider can write to the audit log is bounded.
        if let Some(ip) = ip {
            s.hostel.login_failed(ip, "api", None)?;
        }
        return Err(unauthenticated());
    };
    Ok((actor, role))
}

/// Checks the token, then has the service grant the route's action to the token's role;
/// audits every call but metadata reads with its outcome.
pub async fn require_token(
    State(Gate { state: s, actions }): State<Gate>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (actor, role) = identify(&s, &request)?;
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let template = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let call = format!("{method} {template}");
    let action = match actions.of(&method, &template) {
        Some(declared) => declared,
        // No handler for this method on the route: the router answers 405, nothing runs.
        None => return Ok(next.run(request).await),
    };
    let Some(action) = action else {
        // Fail closed: a route that forgot to declare its action serves no one.
        tracing::error!(%call, "route declares no action; refused");
        return Err(ApiError::new(
            ErrorCode::Internal,
            format!("{call} declares no action, so no role may call it"),
            None,
        ));
    };
    s.hostel.authorize(&actor, role, action, &call)?;
    let mut request = request;
    request.extensions_mut().insert(Caller(actor.clone()));
    let response = hostel_service::acting_as(actor.clone(), next.run(request)).await;
    if action.is_audited() {
        let outcome = if response.status().is_success()
            || response.status() == axum::http::StatusCode::SWITCHING_PROTOCOLS
        {
            Outcome::Ok
        } else {
            Outcome::Failed
        };
        let ev = AuditEvent::new(chrono::Utc::now(), "api.call", &actor, outcome)
            .with("method", &method)
            .with("path", &path)
            .with("action", action)
            .with("status", response.status().as_u16());
        s.hostel.record(ev)?;
    }
    Ok(response)
}

/// Whether `given` is the local CLI's secret; compares digests, so the time taken says
/// nothing about how much of it matched.
fn same_secret(secret: &str, given: &str) -> bool {
    Sha256::digest(secret.as_bytes()) == Sha256::digest(given.as_bytes())
}

/// The local CLI's caller, as it names itself (`cli:<user>`), or `cli:local`.
fn local_actor(request: &Request) -> String {
    request
        .headers()
        .get("x-hostel-actor")
        .and_then(|v| v.to_str().ok())
        .filter(|a| {
            a.strip_prefix("cli:").is_some_and(|u| {
                (1..=64).contains(&u.len())
                    && u.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            })
        })
        .unwrap_or("cli:local")
        .to_owned()
}

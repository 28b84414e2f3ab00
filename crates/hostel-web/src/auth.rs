//! Bearer tokens: every `/api` call names its token; viewers may only read. Each call that
//! changes something is audited with the token that made it.

use crate::{ApiError, AppState};
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use hostel_core::{AuditEvent, ErrorCode, Outcome, Role};
use sha2::{Digest, Sha256};
use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

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

/// Checks the token and the role; audits mutating calls with the outcome.
pub async fn require_token(
    State(s): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
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
        .as_deref()
        .is_some_and(|secret| !token.is_empty() && same_secret(secret, token));
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
        Some((local_actor(&request), Role::Admin))
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
        // Guessing tokens counts like failed SSH logins: enough of them ban the address.
        if let Some(ip) = ip.filter(|_| !token.is_empty()) {
            s.hostel.login_failed(ip, "api")?;
        }
        return Err(unauthenticated());
    };
    let writes = request.method() != Method::GET && request.method() != Method::HEAD;
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut request = request;
    request.extensions_mut().insert(Caller(actor.clone()));
    if writes && !role.can_write() {
        let ev = AuditEvent::new(chrono::Utc::now(), "api.call", &actor, Outcome::Denied)
            .with("method", &method)
            .with("path", &path)
            .with("reason", "viewer token");
        s.hostel.record(ev)?;
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            format!("{actor} is a viewer: it may only read"),
            Some("use an admin token for changes"),
        ));
    }
    let response = hostel_service::acting_as(actor.clone(), next.run(request)).await;
    if writes {
        let outcome = if response.status().is_success() {
            Outcome::Ok
        } else {
            Outcome::Failed
        };
        let ev = AuditEvent::new(chrono::Utc::now(), "api.call", &actor, outcome)
            .with("method", &method)
            .with("path", &path)
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

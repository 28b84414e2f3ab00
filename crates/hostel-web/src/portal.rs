//! The tenant's side of the web gateway: sign in with the web password (`hostel passwd`), a
//! session in a cookie (HttpOnly, SameSite=Strict, Secure over TLS), the portal page, sign out.
//! Plain server-made HTML with no script and nothing from other hosts.
//!
//! Cross-site requests: the cookie is SameSite=Strict, and a POST whose `Origin` names another
//! host than the request's `Host` is refused.

use crate::{ApiError, AppState};
use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use hostel_core::{ErrorCode, TenantName};
use hostel_service::ServiceError;
use serde::Deserialize;
use std::net::SocketAddr;

/// The session cookie's name.
pub const COOKIE: &str = "hostel_session";

/// What the sign-in form sends.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} - hostel</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}\
         label{{display:block;margin:.8rem 0 .2rem}}input{{width:100%;padding:.4rem;font-size:1rem}}\
         button{{margin-top:1rem;padding:.4rem 1rem;font-size:1rem}}\
         .error{{color:#a00}}dt{{font-weight:bold}}</style></head>\
         <body><main>{body}</main></body></html>\n"
    ))
}

fn login_page(message: Option<&str>) -> Html<String> {
    let error = message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{m}</p>"))
        .unwrap_or_default();
    page(
        "Sign in",
        &format!(
            "<h1>Sign in</h1>{error}<form method=\"post\" action=\"/login\">\
             <label for=\"name\">Tenant</label>\
             <input id=\"name\" name=\"name\" autocomplete=\"username\" required>\
             <label for=\"password\">Password</label>\
             <input id=\"password\" name=\"password\" type=\"password\" \
             autocomplete=\"current-password\" required>\
             <button type=\"submit\">Sign in</button></form>"
        ),
    )
}

/// The session token the browser sent, if any.
fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// Refuses a POST sent from a page of another site.
fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split("://").nth(1).unwrap_or_default();
    if origin_host == host {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::PermissionDenied,
        format!("a form from {origin} may not act on {host}"),
        Some("sign in from hostel's own page"),
    ))
}

fn cookie(s: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if s.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("hostel_session=; Max-Age=0"))
}

/// `GET /login`: the sign-in form.
pub async fn login_form() -> Html<String> {
    login_page(None)
}

/// `POST /login`: checks the password; on success sets the session cookie and goes to the
/// portal.
pub async fn login(
    State(s): State<AppState>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, ApiError> {
    same_origin(&headers)?;
    let ip = peer.map(|p| p.0.0.ip());
    if let Some(ip) = ip
        && s.hostel.is_banned(ip)?
    {
        return Ok((
            StatusCode::FORBIDDEN,
            login_page(Some(
                "This address is banned after repeated failed sign-ins.",
            )),
        )
            .into_response());
    }
    match s.hostel.web_login(&form.name, &form.password, ip) {
        Ok((_, token)) => {
            let max_age = hostel_service::SESSION_HOURS * 3600;
            let mut r = Redirect::to("/portal").into_response();
            r.headers_mut()
                .insert(header::SET_COOKIE, cookie(&s, &token, max_age));
            Ok(r)
        }
        Err(ServiceError::LoginFailed) => Ok((
            StatusCode::UNAUTHORIZED,
            login_page(Some("Wrong tenant name or password.")),
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}

/// `GET /login/link/{token}`: signs in with a one-time link, then goes to the portal.
pub async fn login_link(
    State(s): State<AppState>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    axum::extract::Path(token): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let ip = peer.map(|p| p.0.0.ip());
    if let Some(ip) = ip
        && s.hostel.is_banned(ip)?
    {
        return Ok((
            StatusCode::FORBIDDEN,
            login_page(Some(
                "This address is banned after repeated failed sign-ins.",
            )),
        )
            .into_response());
    }
    match s.hostel.login_with_link(&token, ip) {
        Ok((_, session)) => {
            let max_age = hostel_service::SESSION_HOURS * 3600;
            let mut r = Redirect::to("/portal").into_response();
            r.headers_mut()
                .insert(header::SET_COOKIE, cookie(&s, &session, max_age));
            Ok(r)
        }
        Err(ServiceError::LoginFailed) => Ok((
            StatusCode::UNAUTHORIZED,
            login_page(Some(
                "This sign-in link does not work: it was used, it expired, or it never existed.",
            )),
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}

/// `POST /logout`: ends the session and clears the cookie.
pub async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    same_origin(&headers)?;
    if let Some(token) = session_token(&headers) {
        s.hostel.web_logout(&token)?;
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, cookie(&s, "", 0));
    Ok(r)
}

/// The signed-in tenant, or the way to the sign-in page.
async fn signed_in(s: &AppState, headers: &HeaderMap) -> Result<Option<TenantName>, ApiError> {
    match session_token(headers) {
        Some(token) => Ok(s.hostel.web_session(&token)?),
        None => Ok(None),
    }
}

/// `GET /portal`: the tenant's workspace, quotas and usage.
pub async fn portal(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let Some(tenant) = signed_in(&s, &headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let i = s.hostel.info(&tenant).await?;
    let q = &i.summary.quota;
    let used = |b: Option<hostel_core::ByteSize>| b.map(|b| b.human()).unwrap_or("-".into());
    let body = format!(
        "<h1>{tenant}</h1><dl>\
         <dt>Workspace</dt><dd>{state}</dd>\
         <dt>CPUs</dt><dd>{cpus}</dd>\
         <dt>Memory</dt><dd>{mem_used} of {mem}</dd>\
         <dt>Disk</dt><dd>{disk_used} of {disk}</dd>\
         <dt>Processes</dt><dd>at most {pids}</dd></dl>\
         <form method=\"post\" action=\"/logout\"><button type=\"submit\">Sign out</button></form>",
        state = i.summary.state,
        cpus = q.cpus,
        mem_used = used(i.usage.as_ref().map(|u| u.memory_used)),
        mem = q.memory,
        disk_used = used(i.disk_used),
        disk = q.disk,
        pids = q.pids,
    );
    Ok(page(tenant.as_str(), &body).into_response())
}

/// `GET /`: the portal when signed in, else the sign-in form.
pub async fn home(State(s): State<AppState>, headers: HeaderMap) -> Result<Redirect, ApiError> {
    Ok(match signed_in(&s, &headers).await? {
        Some(_) => Redirect::to("/portal"),
        None => Redirect::to("/login"),
    })
}

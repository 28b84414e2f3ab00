//! The tenant's side of the web gateway: sign in with the web password (`hostel passwd`), a
//! session in a cookie (HttpOnly, SameSite=Strict, Secure over TLS), the portal page (start,
//! stop, apps, quotas), sign out; and what the tenant's other pages share: the page frame, its
//! security headers, the check that a browser is signed in as the tenant in the path. Plain
//! server-made HTML with nothing from other hosts.
//!
//! Cross-site requests: the cookie is SameSite=Strict, and a POST whose `Origin` names another
//! host than the request's `Host` is refused.

use crate::charts::{Measure, chart};
use crate::{ApiError, AppState};
use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use hostel_core::{ErrorCode, TenantName};
use hostel_service::ServiceError;
use serde::Deserialize;
use std::net::SocketAddr;

/// The session cookie's name: over TLS with the `__Host-` prefix, which the browser keeps
/// only as set by this very host (Secure, path `/`, no `Domain`), so a sibling origin cannot
/// plant one.
pub(crate) fn session_cookie(s: &AppState) -> &'static str {
    if s.secure_cookies {
        "__Host-hostel_session"
    } else {
        "hostel_session"
    }
}

/// What the sign-in form sends.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    name: String,
    password: hostel_core::Secret<String>,
}

/// A page of hostel's own: the stylesheet and scripts come from `/assets` (see
/// [`crate::assets`]), and [`headers`] keeps anything else out.
pub(crate) fn page(title: &str, body: &str) -> Html<String> {
    page_in(title, body, "")
}

/// [`page`] with a class on `<body>` (`wide` for tables).
pub(crate) fn page_in(title: &str, body: &str, class: &str) -> Html<String> {
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} - hostel</title><link rel=\"stylesheet\" href=\"/assets/hostel.css\">\
         </head><body class=\"{class}\"><main>{body}</main></body></html>\n"
    ))
}

/// Headers on every page of hostel's own (not on proxied apps): scripts, styles, frames and
/// connections only from this host, no framing by other sites, no referrer leaving the site.
pub(crate) async fn headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        // Not `no-referrer`: under it Chromium sends `Origin: null` with the pages' own forms.
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn login_page(message: Option<&str>) -> Html<String> {
    let error = message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{m}</p>"))
        .unwrap_or_default();
    page(
        "Sign in",
        &format!(
            "<h1>Sign in</h1>{error}<form class=\"stack\" method=\"post\" action=\"/login\">\
             <label for=\"name\">Tenant</label>\
             <input id=\"name\" name=\"name\" autocomplete=\"username\" required>\
             <label for=\"password\">Password</label>\
             <input id=\"password\" name=\"password\" type=\"password\" \
             autocomplete=\"current-password\" required>\
             <button type=\"submit\">Sign in</button></form>"
        ),
    )
}

/// The session tokens the browser sent.
fn session_tokens(s: &AppState, headers: &HeaderMap) -> Vec<String> {
    cookie_values(headers, session_cookie(s))
}

/// The values of the cookies named `name` the browser sent (at most 8). More than one means
/// a page of another path or a sibling origin planted some: the browser sends them all, the
/// most specific path first, so the caller must not simply take the first.
pub(crate) fn cookie_values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .take(8)
        .collect()
}

/// The one thing every valid cookie names: planted values that are no session are ignored,
/// and two sessions of different holders (one planted) name nobody.
pub(crate) fn sole<T: PartialEq>(found: impl IntoIterator<Item = T>) -> Option<T> {
    let mut found = found.into_iter();
    let first = found.next()?;
    found.all(|other| other == first).then_some(first)
}

/// The sign-in page a banned address gets instead (`403`), if `ip` is banned.
pub(crate) fn banned(
    s: &AppState,
    ip: Option<std::net::IpAddr>,
    sign_in: fn(Option<&str>) -> Html<String>,
) -> Result<Option<Response>, ApiError> {
    match ip {
        Some(ip) if s.hostel.is_banned(ip)? => Ok(Some(
            (
                StatusCode::FORBIDDEN,
                sign_in(Some(
                    "This address is banned after repeated failed sign-ins.",
                )),
            )
                .into_response(),
        )),
        _ => Ok(None),
    }
}

/// Refuses a POST or a WebSocket opened from a page of another site: its `Origin` must name
/// the `Host` it was sent to, and that must be one of hostel's own names (`[http] hosts` and
/// the listen addresses), so a rebound name of another site is refused too.
pub(crate) fn same_origin(s: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !hostel_core::config::host_allowed(host, &s.hosts) {
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            format!("{host:?} is not a name of this hostel"),
            Some("use hostel's own address, or add the name to [http] hosts in hostel.toml"),
        ));
    }
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
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        session_cookie(s)
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("hostel_session=; Max-Age=0"))
}

/// A redirect to `to` that sets (or, with an empty value, clears) a session cookie.
pub(crate) fn redirect_setting(to: &str, cookie: HeaderValue) -> Response {
    let mut r = Redirect::to(to).into_response();
    r.headers_mut().insert(header::SET_COOKIE, cookie);
    r
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
    same_origin(&s, &headers)?;
    let ip = peer.map(|p| p.0.0.ip());
    if let Some(r) = banned(&s, ip, login_page)? {
        return Ok(r);
    }
    match s.hostel.web_login(&form.name, form.password.expose(), ip) {
        Ok((_, token)) => {
            let max_age = hostel_service::SESSION_HOURS * 3600;
            Ok(redirect_setting(
                "/portal",
                cookie(&s, token.expose(), max_age),
            ))
        }
        Err(ServiceError::LoginFailed) => Ok((
            StatusCode::UNAUTHORIZED,
            login_page(Some("Wrong tenant name or password.")),
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}

/// `GET /login/link/{token}`: asks the person to confirm, and signs nobody in. A page of
/// another site could open the link in a victim's browser and sign it in as the attacker's
/// tenant (login CSRF); the confirming POST must come from hostel's own page.
pub async fn login_link_confirm(
    axum::extract::Path(token): axum::extract::Path<String>,
) -> Html<String> {
    let action: String = token
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    page(
        "Sign in",
        &format!(
            "<h1>Sign in with a link</h1>\
             <p>This one-time link signs this browser in to a tenant's portal. \
             Continue only if you asked for it.</p>\
             <form class=\"stack\" method=\"post\" action=\"/login/link/{action}\">\
             <button type=\"submit\">Sign in</button></form>"
        ),
    )
}

/// `POST /login/link/{token}`: signs in with a one-time link, from hostel's own page only.
pub async fn login_link(
    State(s): State<AppState>,
    headers: HeaderMap,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    axum::extract::Path(token): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    same_origin(&s, &headers)?;
    let ip = peer.map(|p| p.0.0.ip());
    if let Some(r) = banned(&s, ip, login_page)? {
        return Ok(r);
    }
    match s.hostel.login_with_link(&token, ip) {
        Ok((_, session)) => {
            let max_age = hostel_service::SESSION_HOURS * 3600;
            Ok(redirect_setting(
                "/portal",
                cookie(&s, session.expose(), max_age),
            ))
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
    same_origin(&s, &headers)?;
    for token in session_tokens(&s, &headers) {
        s.hostel.web_logout(&token)?;
    }
    Ok(redirect_setting("/login", cookie(&s, "", 0)))
}

/// The signed-in tenant, if any: the one tenant every valid session cookie names.
async fn signed_in(s: &AppState, headers: &HeaderMap) -> Result<Option<TenantName>, ApiError> {
    let mut tenants = Vec::new();
    for token in session_tokens(s, headers) {
        tenants.extend(s.hostel.web_session(&token)?);
    }
    Ok(sole(tenants))
}

/// What a tenant's page or socket at `/u/{tenant}/...` may do for this browser.
pub(crate) enum Access {
    /// Signed in as the tenant in the path.
    Granted(TenantName),
    /// Not signed in: go to the sign-in page.
    SignIn,
    /// Signed in as another tenant: 403.
    Denied(Response),
}

/// Checks that the browser is signed in as the tenant named in the path.
pub(crate) async fn tenant_access(
    s: &AppState,
    headers: &HeaderMap,
    path_tenant: &str,
    what: &str,
) -> Result<Access, ApiError> {
    let Some(tenant) = signed_in(s, headers).await? else {
        return Ok(Access::SignIn);
    };
    if tenant.as_str() != path_tenant {
        s.hostel.web_denied(&tenant, path_tenant, what)?;
        let body = page(
            "Not yours",
            &format!(
                "<h1>Not yours</h1><p class=\"error\" role=\"alert\">You are signed in as \
                 {tenant}; this is another tenant's workspace.</p><p><a href=\"/portal\">Back \
                 to your portal</a></p>"
            ),
        );
        return Ok(Access::Denied(
            (StatusCode::FORBIDDEN, body).into_response(),
        ));
    }
    Ok(Access::Granted(tenant))
}

/// What `/portal` shows.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PortalView {
    /// The charts' range: 1h, 24h or 7d.
    #[serde(default)]
    range: String,
}

/// `GET /portal`: the tenant's workspace with start and stop, its apps, quotas and usage.
pub async fn portal(
    State(s): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(view): axum::extract::Query<PortalView>,
) -> Result<Response, ApiError> {
    let Some(tenant) = signed_in(&s, &headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let i = s.hostel.info(&tenant).await?;
    let range: hostel_core::history::Range = view.range.parse().unwrap_or_default();
    let history = s.hostel.usage_history(&tenant, range, 120)?;
    let now = crate::charts::now_secs();
    let charts: String = [
        (
            Measure::Cpu,
            Some(i.summary.quota.cpus.as_millis() as f32 / 1000.0),
        ),
        (
            Measure::Memory,
            Some(i.summary.quota.memory.as_u64() as f32),
        ),
        (Measure::Disk, Some(i.summary.quota.disk.as_u64() as f32)),
        (Measure::Network, None),
    ]
    .iter()
    .map(|(m, ceiling)| chart(*m, &history, range, now, *ceiling))
    .collect();
    let ranges = crate::charts::range_nav("/portal", range);
    let q = &i.summary.quota;
    let used = |b: Option<hostel_core::ByteSize>| b.map(|b| b.human()).unwrap_or("-".into());
    let state = i.summary.state;
    let toggle = if state == hostel_core::WorkspaceState::Running {
        "<form class=\"inline\" method=\"post\" action=\"/portal/stop\">\
         <button type=\"submit\">Stop the workspace</button></form>"
    } else {
        "<form class=\"inline\" method=\"post\" action=\"/portal/start\">\
         <button type=\"submit\">Start the workspace</button></form>"
    };
    let mut apps = format!("<a class=\"button\" href=\"/u/{tenant}/terminal/\">Terminal</a>");
    for app in s.hostel.web_apps(&tenant).await? {
        let path = format!(
            "{}{}",
            app.prefix(tenant.as_str()),
            app.entry(tenant.as_str())
        );
        // Under `[http] domain`, each app on its own origin.
        let href = match s.domain.as_deref() {
            Some(domain) => {
                let origin = hostel_core::apps::AppOrigin::App {
                    app,
                    tenant: tenant.clone(),
                };
                crate::apps::origin_url(&s, &headers, domain, &origin, &path)
            }
            None => path,
        };
        apps.push_str(&format!(
            "<a class=\"button\" href=\"{}\">{}</a>",
            html_escape(&href),
            app.title()
        ));
    }
    let body = format!(
        "<h1>{tenant}</h1>\
         <p>Workspace: <strong id=\"state\">{state}</strong> {toggle}</p>\
         <p class=\"note\">Apps start the workspace when it is stopped.</p>\
         <nav class=\"apps\" aria-label=\"Apps\">{apps}</nav>\
         <h2>Quotas and usage</h2><dl>\
         <dt>CPUs</dt><dd>{cpus}</dd>\
         <dt>Memory</dt><dd>{mem_used} of {mem}</dd>\
         <dt>Disk</dt><dd>{disk_used} of {disk}</dd>\
         <dt>Processes</dt><dd>at most {pids}</dd>\
         <dt>Image</dt><dd>{image}</dd></dl>\
         <h2>Usage</h2><nav class=\"ranges\" aria-label=\"Range\">{ranges}</nav>\
         <div id=\"usage-charts\" class=\"charts\">{charts}</div>\
         <form method=\"post\" action=\"/logout\"><button type=\"submit\">Sign out</button></form>",
        cpus = q.cpus,
        mem_used = used(i.usage.as_ref().map(|u| u.memory_used)),
        mem = q.memory,
        disk_used = used(i.disk_used),
        disk = q.disk,
        pids = q.pids,
        image = html_escape(&i.summary.image),
    );
    Ok(page(tenant.as_str(), &body).into_response())
}

/// `POST /portal/start`: starts the signed-in tenant's workspace.
pub async fn start(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    same_origin(&s, &headers)?;
    let Some(tenant) = signed_in(&s, &headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    hostel_service::acting_as(
        format!("web:{tenant}"),
        s.hostel.start(&tenant, &hostel_service::Quiet),
    )
    .await?;
    Ok(Redirect::to("/portal").into_response())
}

/// `POST /portal/stop`: stops the signed-in tenant's workspace (the home stays).
pub async fn stop(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    same_origin(&s, &headers)?;
    let Some(tenant) = signed_in(&s, &headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    hostel_service::acting_as(format!("web:{tenant}"), s.hostel.stop(&tenant)).await?;
    Ok(Redirect::to("/portal").into_response())
}

/// Text made safe to put in HTML.
pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `GET /`: the portal when signed in, else the sign-in form.
pub async fn home(State(s): State<AppState>, headers: HeaderMap) -> Result<Redirect, ApiError> {
    Ok(match signed_in(&s, &headers).await? {
        Some(_) => Redirect::to("/portal"),
        None => Redirect::to("/login"),
    })
}

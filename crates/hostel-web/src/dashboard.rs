//! `/admin`: the admin dashboard. An admin signs in with an API token (`hostel token create`);
//! the browser then holds a session cookie of its own (`hostel_admin`, HttpOnly,
//! SameSite=Strict), and every request checks the token again, so revoking it ends the session.
//! Tenants with state and live usage (refreshed by `admin.js`), create, start, stop, delete,
//! purge, quotas, the audit log with filters, and bans. Viewer tokens see everything and
//! change nothing. Plain server-made pages and forms; every change is a POST from this origin.

use crate::charts::{Measure, chart, now_secs, range_nav};
use crate::portal::{
    banned, cookie_values, html_escape, page, page_in, redirect_setting, same_origin, sole,
};
use crate::{ApiError, AppState};
use axum::Form;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use hostel_core::history::Range;
use hostel_core::{ErrorCode, Outcome, Role, TenantName};
use hostel_service::{Quiet, ServiceError};
use serde::Deserialize;
use std::net::SocketAddr;

/// The admin session cookie's name.
const COOKIE: &str = "hostel_admin";

/// The signed-in admin: actor and role, if the session and its token still hold (and every
/// valid session cookie names the same token; see [`sole`]).
fn admin(s: &AppState, headers: &HeaderMap) -> Result<Option<(String, Role)>, ApiError> {
    let mut found = Vec::new();
    for cookie in cookie_values(headers, COOKIE) {
        found.extend(
            s.hostel
                .admin_session(&cookie)?
                .map(|r| (format!("api:{}", r.name), r.role)),
        );
    }
    Ok(sole(found))
}

fn set_cookie(s: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if s.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("hostel_admin=; Max-Age=0"))
}

fn sign_in_page(message: Option<&str>) -> axum::response::Html<String> {
    let error = message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", html_escape(m)))
        .unwrap_or_default();
    page(
        "Admin sign-in",
        &format!(
            "<h1>hostel admin</h1>{error}<form class=\"stack\" method=\"post\" \
             action=\"/admin/login\"><label for=\"token\">API token</label>\
             <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required>\
             <p class=\"note\">An admin makes one on the server with <code>hostel token create \
             NAME</code>; a viewer token only reads.</p>\
             <button type=\"submit\">Sign in</button></form>"
        ),
    )
}

/// What the sign-in form sends.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: hostel_core::Secret<String>,
}

/// `POST /admin/login`.
pub async fn login(
    State(s): State<AppState>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, ApiError> {
    same_origin(&s, &headers)?;
    let ip = peer.map(|p| p.0.0.ip());
    if let Some(r) = banned(&s, ip, sign_in_page)? {
        return Ok(r);
    }
    match s.hostel.admin_login(form.token.expose().trim(), ip) {
        Ok((_, session)) => {
            let max_age = hostel_service::ADMIN_SESSION_HOURS * 3600;
            Ok(redirect_setting(
                "/admin",
                set_cookie(&s, &session, max_age),
            ))
        }
        Err(ServiceError::LoginFailed) => Ok((
            StatusCode::UNAUTHORIZED,
            sign_in_page(Some("Unknown or revoked token.")),
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/logout`.
pub async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    same_origin(&s, &headers)?;
    for c in cookie_values(&headers, COOKIE) {
        s.hostel.admin_logout(&c)?;
    }
    Ok(redirect_setting("/admin", set_cookie(&s, "", 0)))
}

/// The dashboard's filters for the audit log.
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    /// Only this tenant's records.
    #[serde(default)]
    tenant: String,
    /// Only kinds starting with this (`web.`, `tenant.create`).
    #[serde(default)]
    kind: String,
    /// Only failed or denied actions.
    #[serde(default)]
    failed: Option<String>,
    /// A message after a change.
    #[serde(default)]
    done: String,
    /// The host charts' range: 1h, 24h or 7d.
    #[serde(default)]
    range: String,
}

/// Points of a host chart, and of a tenant's sparkline (the last hour).
const CHART_POINTS: usize = 120;
const SPARK_POINTS: usize = 60;

/// How many audit records the page shows, newest first.
const AUDIT_ROWS: usize = 100;

/// `GET /admin`.
pub async fn dashboard(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(f): Query<Filters>,
) -> Result<Response, ApiError> {
    let Some((actor, role)) = admin(&s, &headers)? else {
        return Ok(sign_in_page(None).into_response());
    };
    let tenants = s.hostel.list().await?;
    let writes = role.may(hostel_core::Action::Change);
    let disabled = if writes { "" } else { " disabled" };
    let range: Range = f.range.parse().unwrap_or_default();
    let now = now_secs();
    let host = s.hostel.host_history(range, CHART_POINTS);
    let histories = s.hostel.usage_histories(Range::Hour, SPARK_POINTS);
    let mut rows = String::new();
    for t in &tenants {
        let n = html_escape(&t.name);
        let history = histories
            .get(&t.name)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let sparks = format!(
            "{}{}",
            chart(
                Measure::Cpu,
                history,
                Range::Hour,
                now,
                Some(t.quota.cpus.as_millis() as f32 / 1000.0)
            ),
            chart(
                Measure::Memory,
                history,
                Range::Hour,
                now,
                Some(t.quota.memory.as_u64() as f32)
            ),
        );
        let toggle = if t.state == hostel_core::WorkspaceState::Running {
            "stop"
        } else {
            "start"
        };
        rows.push_str(&format!(
            "<tr data-tenant=\"{n}\"><td>{n}</td><td class=\"state\">{state}</td>\
             <td>{image}</td><td>{cpus}</td><td class=\"memory\">- / {mem}</td>\
             <td class=\"disk\">- / {disk}</td><td class=\"sparks\">{sparks}</td><td>\
             <form class=\"inline\" method=\"post\" action=\"/admin/tenants/{n}/{toggle}\">\
             <button type=\"submit\"{disabled}>{toggle_title}</button></form>\
             <form class=\"inline\" method=\"post\" action=\"/admin/tenants/{n}/delete\">\
             <button type=\"submit\"{disabled} title=\"Remove the workspace; the home stays\">\
             Delete workspace</button></form>\
             <details><summary>Quotas, purge</summary>\
             <form method=\"post\" action=\"/admin/tenants/{n}/quota\">\
             <label>CPUs <input name=\"cpus\" size=\"4\" placeholder=\"{cpus}\"></label> \
             <label>Memory <input name=\"memory\" size=\"6\" placeholder=\"{mem}\"></label> \
             <label>Disk <input name=\"disk\" size=\"6\" placeholder=\"{disk}\"></label> \
             <label>Processes <input name=\"pids\" size=\"6\" placeholder=\"{pids}\"></label> \
             <button type=\"submit\"{disabled}>Set quotas</button></form>\
             <form method=\"post\" action=\"/admin/tenants/{n}/purge\">\
             <label><input type=\"checkbox\" name=\"confirm\" value=\"{n}\" required> \
             delete {n}'s home for good</label> \
             <button type=\"submit\"{disabled}>Purge</button></form></details></td></tr>",
            state = t.state,
            image = html_escape(&t.image),
            cpus = t.quota.cpus,
            mem = t.quota.memory,
            disk = t.quota.disk,
            pids = t.quota.pids,
            toggle_title = if toggle == "stop" { "Stop" } else { "Start" },
        ));
    }
    let audit = audit_rows(&s, &f)?;
    let mut bans = String::new();
    for b in s.hostel.bans()? {
        let a = html_escape(&b.address);
        bans.push_str(&format!(
            "<tr><td>{a}</td><td>{reason}</td><td>{until}</td><td>\
             <form class=\"inline\" method=\"post\" action=\"/admin/bans/remove\">\
             <input type=\"hidden\" name=\"address\" value=\"{a}\">\
             <button type=\"submit\"{disabled}>Lift</button></form></td></tr>",
            reason = html_escape(&b.reason),
            until = b
                .expires_at
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_else(|| "until lifted".into()),
        ));
    }
    let done = if f.done.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"note\" role=\"status\">{}</p>",
            html_escape(&f.done)
        )
    };
    let body = format!(
        "<h1>hostel admin</h1><p>Signed in as {actor} ({role}). \
         <form class=\"inline\" method=\"post\" action=\"/admin/logout\">\
         <button type=\"submit\">Sign out</button></form></p>{done}\
         <h2>Host</h2><nav class=\"ranges\" aria-label=\"Range\">{ranges}</nav>\
         <div id=\"host-charts\" class=\"charts\">{host_charts}</div>\
         <h2>Tenants</h2><table id=\"tenants\"><thead><tr><th>Name</th><th>Workspace</th>\
         <th>Image</th><th>CPUs</th><th>Memory</th><th>Disk</th><th>Last hour</th>\
         <th>Actions</th></tr></thead><tbody>{rows}</tbody></table>\
         <h2>New tenant</h2><form class=\"stack\" method=\"post\" action=\"/admin/tenants\">\
         <label for=\"name\">Name</label><input id=\"name\" name=\"name\" required \
         pattern=\"[a-z0-9][a-z0-9-]{{0,31}}\" placeholder=\"alice\">\
         <label for=\"key\">SSH public key</label><textarea id=\"key\" name=\"key\" rows=\"2\" \
         cols=\"60\" required placeholder=\"ssh-ed25519 AAAA... alice@laptop\"></textarea>\
         <label for=\"image\">Image</label><select id=\"image\" name=\"image\">\
         <option value=\"\">base</option><option>dev</option><option>desktop</option></select>\
         <label for=\"cpus\">CPUs</label><input id=\"cpus\" name=\"cpus\" placeholder=\"default\">\
         <label for=\"memory\">Memory</label><input id=\"memory\" name=\"memory\" \
         placeholder=\"default, e.g. 2G\">\
         <label for=\"disk\">Disk</label><input id=\"disk\" name=\"disk\" \
         placeholder=\"default, e.g. 10G\">\
         <button type=\"submit\"{disabled}>Create</button></form>\
         <h2>Audit log</h2><form method=\"get\" action=\"/admin\">\
         <label class=\"inline\">Tenant <input name=\"tenant\" value=\"{ft}\"></label> \
         <label class=\"inline\">Kind <input name=\"kind\" value=\"{fk}\" placeholder=\"web.\"></label> \
         <label class=\"inline\"><input type=\"checkbox\" name=\"failed\" value=\"1\"{ff}> \
         failed or denied only</label> <button type=\"submit\">Filter</button></form>\
         <table id=\"audit\"><thead><tr><th>Time</th><th>Kind</th><th>Actor</th>\
         <th>Tenant</th><th>Outcome</th><th>Detail</th></tr></thead><tbody>{audit}</tbody></table>\
         <h2>Bans</h2><table id=\"bans\"><thead><tr><th>Address</th><th>Reason</th>\
         <th>Until</th><th></th></tr></thead><tbody>{bans}</tbody></table>\
         <form method=\"post\" action=\"/admin/bans\">\
         <label>Address <input name=\"address\" required></label> \
         <label>For <input name=\"duration\" size=\"5\" placeholder=\"1h\"></label> \
         <label>Reason <input name=\"reason\"></label> \
         <button type=\"submit\"{disabled}>Ban</button></form>\
         <script src=\"/assets/admin.js\"></script>",
        ranges = range_nav("/admin", range),
        host_charts = [
            Measure::Cpu,
            Measure::Memory,
            Measure::Disk,
            Measure::Network,
            Measure::Sessions
        ]
        .iter()
        .map(|m| chart(*m, &host, range, now, None))
        .collect::<String>(),
        ft = html_escape(&f.tenant),
        fk = html_escape(&f.kind),
        ff = if f.failed.is_some() { " checked" } else { "" },
    );
    Ok(page_in("Admin", &body, "wide").into_response())
}

fn audit_rows(s: &AppState, f: &Filters) -> Result<String, ApiError> {
    let tenant = if f.tenant.trim().is_empty() {
        None
    } else {
        Some(
            f.tenant
                .trim()
                .parse::<TenantName>()
                .map_err(ServiceError::from)?
                .to_string(),
        )
    };
    let filter = hostel_store::AuditFilter {
        tenant,
        since: None,
        failed: f.failed.is_some(),
    };
    let records = s
        .hostel
        .audit_log()
        .query(&filter)
        .map_err(ServiceError::from)?;
    let kind = f.kind.trim();
    let mut out = String::new();
    for r in records
        .iter()
        .rev()
        .map(|r| &r.event)
        .filter(|r| r.kind.starts_with(kind))
        .take(AUDIT_ROWS)
    {
        let detail: Vec<String> = r.detail.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            r.time.format("%Y-%m-%d %H:%M:%S"),
            html_escape(&r.kind),
            html_escape(&r.actor),
            html_escape(r.tenant.as_deref().unwrap_or("")),
            match r.outcome {
                Outcome::Ok => "ok",
                Outcome::Failed => "failed",
                Outcome::Denied => "denied",
            },
            html_escape(&detail.join(" ")),
        ));
    }
    Ok(out)
}

/// Workspaces asked about at once for `/admin/usage`, and how long it waits for them.
const LIVE_LOOKUPS: usize = 8;
const LIVE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// `GET /admin/usage`: each tenant's state, and its memory and disk use, for `admin.js`. The
/// figures are the daemon's last look (the usage history), so the engine is asked once (the
/// list of workspaces) whatever the number of tenants; only workspaces the daemon has not seen
/// running yet (just created or started) are asked about directly, a few at a time and for at
/// most two seconds in all: the others show `-` until the next look.
pub async fn usage(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    use futures_util::StreamExt;
    if admin(&s, &headers)?.is_none() {
        return Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "sign in at /admin first",
            None,
        ));
    }
    let tenants = s.hostel.list().await?;
    let latest = s.hostel.latest_usage();
    let unseen: Vec<TenantName> = tenants
        .iter()
        .filter(|t| {
            t.state == hostel_core::WorkspaceState::Running
                && latest.get(&t.name).is_none_or(|p| p.running <= 0.0)
        })
        .filter_map(|t| t.name.parse().ok())
        .collect();
    let deadline = tokio::time::Instant::now() + LIVE_WAIT;
    let live: std::collections::HashMap<String, (Option<f32>, Option<f32>)> =
        futures_util::stream::iter(unseen)
            .map(|name| {
                let hostel = &s.hostel;
                async move {
                    let figures = match tokio::time::timeout_at(deadline, hostel.info(&name)).await
                    {
                        Ok(Ok(i)) => (
                            i.usage.as_ref().map(|u| u.memory_used.as_u64() as f32),
                            i.disk_used.map(|d| d.as_u64() as f32),
                        ),
                        _ => (None, None),
                    };
                    (name.to_string(), figures)
                }
            })
            .buffer_unordered(LIVE_LOOKUPS)
            .collect()
            .await;
    let show = |v: Option<f32>| {
        v.map(|b| hostel_core::ByteSize::bytes(b as u64).human())
            .unwrap_or_else(|| "-".into())
    };
    let mut rows = Vec::with_capacity(tenants.len());
    for t in &tenants {
        let running = t.state == hostel_core::WorkspaceState::Running;
        let (memory, disk) = match (live.get(&t.name), latest.get(&t.name)) {
            (Some(figures), _) => *figures,
            (None, Some(p)) => (running.then_some(p.memory), Some(p.disk)),
            (None, None) => (None, None),
        };
        rows.push(serde_json::json!({
            "name": t.name,
            "state": t.state.to_string(),
            "memory": format!("{} / {}", show(memory), t.quota.memory),
            "disk": format!("{} / {}", show(disk), t.quota.disk),
        }));
    }
    Ok(axum::Json(rows).into_response())
}

/// Runs a change for a signed-in admin token, as that token's actor, and goes back to the
/// dashboard with `done`; a viewer, or no session, is refused.
async fn change<F, Fut>(
    s: &AppState,
    headers: &HeaderMap,
    what: &str,
    work: F,
) -> Result<Response, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<String, ApiError>>,
{
    same_origin(s, headers)?;
    let Some((actor, role)) = admin(s, headers)? else {
        return Ok(Redirect::to("/admin").into_response());
    };
    s.hostel
        .authorize(&actor, role, hostel_core::Action::Change, what)?;
    let done = hostel_service::acting_as(actor, work()).await?;
    let to = format!("/admin?done={}", url_escape(&done));
    Ok(Redirect::to(&to).into_response())
}

fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What the create form sends.
#[derive(Debug, Deserialize)]
pub struct CreateForm {
    name: String,
    key: String,
    #[serde(default)]
    image: String,
    #[serde(default)]
    cpus: String,
    #[serde(default)]
    memory: String,
    #[serde(default)]
    disk: String,
}

fn given(s: String) -> Option<String> {
    let s = s.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

/// `POST /admin/tenants`.
pub async fn create(
    State(s): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<CreateForm>,
) -> Response {
    let result = change(&s, &headers, "POST /admin/tenants", || async {
        let body = hostel_api::NewTenant {
            name: f.name.trim().to_owned(),
            keys: f
                .key
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            cpus: given(f.cpus),
            memory: given(f.memory),
            disk: given(f.disk),
            pids: None,
            gpus: None,
            disk_io: None,
            image: given(f.image),
            ttl: None,
            ephemeral: false,
            autostart: false,
            idle_stop: None,
            egress: None,
        };
        let name = body.name.clone();
        let req = body.into_request(chrono::Utc::now())?;
        s.hostel.create(req, &Quiet).await?;
        Ok(format!("created {name}"))
    })
    .await;
    result.unwrap_or_else(back_to_dashboard)
}

/// What the quota form sends.
#[derive(Debug, Deserialize)]
pub struct QuotaForm {
    #[serde(default)]
    cpus: String,
    #[serde(default)]
    memory: String,
    #[serde(default)]
    disk: String,
    #[serde(default)]
    pids: String,
}

/// What the purge form sends: the tenant's name again.
#[derive(Debug, Deserialize)]
pub struct PurgeForm {
    #[serde(default)]
    confirm: String,
}

/// `POST /admin/tenants/{name}/{action}`: start, stop, delete, quota, purge.
pub async fn tenant_action(
    State(s): State<AppState>,
    Path((name, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let result = change(
        &s,
        &headers,
        "POST /admin/tenants/{name}/{action}",
        || async {
            let name: TenantName = name.parse().map_err(ServiceError::from)?;
            match action.as_str() {
                "start" => {
                    s.hostel.start(&name, &Quiet).await?;
                    Ok(format!("started {name}"))
                }
                "stop" => {
                    s.hostel.stop(&name).await?;
                    Ok(format!("stopped {name}"))
                }
                "delete" => {
                    s.hostel.delete(&name).await?;
                    Ok(format!("deleted {name}'s workspace; the home stays"))
                }
                "quota" => {
                    let f: QuotaForm = serde_urlencoded::from_bytes(&body).map_err(bad_form)?;
                    let pids = given(f.pids)
                        .map(|p| p.parse::<u32>())
                        .transpose()
                        .map_err(|_| {
                            ApiError::new(
                                ErrorCode::InvalidInput,
                                "processes: not a whole number",
                                Some("e.g. 512"),
                            )
                        })?;
                    let p = hostel_api::TenantChange {
                        cpus: given(f.cpus),
                        memory: given(f.memory),
                        disk: given(f.disk),
                        pids,
                        ..hostel_api::TenantChange::default()
                    }
                    .into_parts()?;
                    s.hostel
                        .set(&name, p.quota, p.image.as_deref(), p.egress, p.policy)
                        .await?;
                    Ok(format!("set {name}'s quotas"))
                }
                "purge" => {
                    let f: PurgeForm = serde_urlencoded::from_bytes(&body).map_err(bad_form)?;
                    s.hostel.purge(&name, f.confirm == name.as_str()).await?;
                    Ok(format!("purged {name}"))
                }
                _ => Err(ApiError::new(
                    ErrorCode::NotFound,
                    format!("no such action: {action}"),
                    None,
                )),
            }
        },
    )
    .await;
    result.unwrap_or_else(back_to_dashboard)
}

/// What the ban forms send.
#[derive(Debug, Deserialize)]
pub struct BanForm {
    address: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    reason: String,
}

/// `POST /admin/bans`.
pub async fn ban(
    State(s): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<BanForm>,
) -> Response {
    let result = change(&s, &headers, "POST /admin/bans", || async {
        let (ip, duration, reason) = hostel_api::NewBan {
            address: f.address.trim().to_owned(),
            duration: given(f.duration),
            reason: given(f.reason),
        }
        .into_parts()?;
        s.hostel.ban(ip, &reason, duration, None)?;
        Ok(format!("banned {ip}"))
    })
    .await;
    result.unwrap_or_else(back_to_dashboard)
}

/// `POST /admin/bans/remove`.
pub async fn unban(
    State(s): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<BanForm>,
) -> Response {
    let result = change(&s, &headers, "POST /admin/bans/remove", || async {
        let address = f.address.trim().to_owned();
        let ip = address
            .parse::<std::net::IpAddr>()
            .map_err(|_| ServiceError::InvalidAddress { address })?;
        s.hostel.unban(ip)?;
        Ok(format!("lifted the ban on {ip}"))
    })
    .await;
    result.unwrap_or_else(back_to_dashboard)
}

fn bad_form(e: serde_urlencoded::de::Error) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidInput,
        format!("the form does not parse: {e}"),
        None,
    )
}

/// An error as a page that leads back to the dashboard.
fn back_to_dashboard(e: ApiError) -> Response {
    e.page_back("/admin", "Back to the dashboard")
}

//! `/api/tenants`: tenants and their workspaces; `exec` runs a command and answers with its
//! output (the sandbox case: create, run, read, delete).

use crate::json::{ApiJson, ApiQuery};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use futures_util::StreamExt;
use hostel_api::{
    Change, ExecBody, ExecResult, Key, LoginLink, NewKeys, NewLoginLink, NewPassword,
    NewPublishedPort, NewTenant, PublishedPort, Tenant, TenantChange, TenantDetail, Transition,
};
use hostel_core::lifecycle::WorkspaceState;
use hostel_core::{ErrorCode, Signal, SshPublicKey, TenantName};
use hostel_runtime::ExecOutput;
use hostel_service::{ExecOptions, Quiet, ServiceError};
use serde::Deserialize;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use utoipa::IntoParams;

fn parse_name(name: &str) -> Result<TenantName, ApiError> {
    name.parse::<TenantName>()
        .map_err(|e| ServiceError::from(e).into())
}

/// Tenants and their workspace states.
#[utoipa::path(get, path = "/api/tenants", tag = "tenants", extensions(("x-hostel-action" = json!("read_metadata"))),
    responses((status = 200, body = Vec<Tenant>), (status = 401, body = crate::error::ErrorBody)))]
pub async fn list_tenants(State(s): State<AppState>) -> Result<Json<Vec<Tenant>>, ApiError> {
    Ok(Json(
        s.hostel.list().await?.iter().map(Tenant::from).collect(),
    ))
}

/// Creates a tenant and starts its workspace; answers when a command can run in it.
#[utoipa::path(post, path = "/api/tenants", tag = "tenants", extensions(("x-hostel-action" = json!("change"))), request_body = NewTenant,
    responses((status = 201, body = TenantDetail), (status = 400, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn create_tenant(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<NewTenant>,
) -> Result<(StatusCode, Json<TenantDetail>), ApiError> {
    let req = body.into_request(chrono::Utc::now())?;
    let info = s.hostel.create(req, &Quiet).await?;
    Ok((StatusCode::CREATED, Json(s.detail(&info))))
}

/// One tenant with live usage.
#[utoipa::path(get, path = "/api/tenants/{name}", tag = "tenants", extensions(("x-hostel-action" = json!("read_metadata"))),
    params(("name" = String, Path, description = "Tenant name")),
    responses((status = 200, body = TenantDetail), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_tenant(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<TenantDetail>, ApiError> {
    let info = s.hostel.info(&parse_name(&name)?).await?;
    Ok(Json(s.detail(&info)))
}

/// `DELETE` options.
#[derive(Debug, Deserialize, IntoParams)]
pub struct DeleteQuery {
    /// Also remove the tenant, its keys and its home, for good.
    #[serde(default)]
    purge: bool,
}

/// Removes the workspace (the home and keys stay), or with `?purge=true` the whole tenant.
#[utoipa::path(delete, path = "/api/tenants/{name}", tag = "tenants", extensions(("x-hostel-action" = json!("change"))),
    params(("name" = String, Path, description = "Tenant name"), DeleteQuery),
    responses((status = 200, body = Transition, description = "the workspace is deleted"),
        (status = 204, description = "the tenant is purged"),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete_tenant(
    State(s): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let name = parse_name(&name)?;
    if q.purge {
        s.hostel.purge(&name, true).await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let was = s.hostel.delete(&name).await?;
    Ok(Json(transition(&name, was, WorkspaceState::Deleted)).into_response())
}

fn transition(name: &TenantName, was: WorkspaceState, now: WorkspaceState) -> Transition {
    Transition {
        name: name.to_string(),
        previous_state: was.to_string(),
        state: now.to_string(),
    }
}

/// Starts the workspace (re-creating it when deleted).
#[utoipa::path(post, path = "/api/tenants/{name}/start", tag = "tenants", extensions(("x-hostel-action" = json!("change"))),
    params(("name" = String, Path, description = "Tenant name")),
    responses((status = 200, body = Transition), (status = 404, body = crate::error::ErrorBody)))]
pub async fn start_tenant(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Transition>, ApiError> {
    let name = parse_name(&name)?;
    let was = s.hostel.start(&name, &Quiet).await?;
    Ok(Json(transition(&name, was, WorkspaceState::Running)))
}

/// Stops the workspace; its files stay.
#[utoipa::path(post, path = "/api/tenants/{name}/stop", tag = "tenants", extensions(("x-hostel-action" = json!("change"))),
    params(("name" = String, Path, description = "Tenant name")),
    responses((status = 200, body = Transition), (status = 404, body = crate::error::ErrorBody)))]
pub async fn stop_tenant(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Transition>, ApiError> {
    let name = parse_name(&name)?;
    let was = s.hostel.stop(&name).await?;
    let now = if was == WorkspaceState::Running {
        WorkspaceState::Stopped
    } else {
        was
    };
    Ok(Json(transition(&name, was, now)))
}

/// Changes quotas (live where possible), the image (at the next start) and lifecycle policies
/// (at once); answers with each change and when it applies.
#[utoipa::path(patch, path = "/api/tenants/{name}", tag = "tenants", extensions(("x-hostel-action" = json!("change"))), request_body = TenantChange,
    params(("name" = String, Path, description = "Tenant name")),
    responses((status = 200, body = Vec<Change>), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn set_tenant(
    State(s): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<TenantChange>,
) -> Result<Json<Vec<Change>>, ApiError> {
    let name = parse_name(&name)?;
    let p = body.into_parts()?;
    let out = s
        .hostel
        .set(&name, p.quota, p.image.as_deref(), p.egress, p.policy)
        .await?;
    Ok(Json(out.into_iter().map(Change::from).collect()))
}

/// Sets the tenant's web password (for the portal); signs out its browser sessions.
#[utoipa::path(put, path = "/api/tenants/{name}/password", tag = "tenants", extensions(("x-hostel-action" = json!("change"))),
    request_body = NewPassword,
    params(("name" = String, Path, description = "Tenant name")),
    responses((status = 204), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn set_password(
    State(s): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<NewPassword>,
) -> Result<StatusCode, ApiError> {
    s.hostel
        .set_password(&parse_name(&name)?, body.password.expose())?;
    Ok(StatusCode::NO_CONTENT)
}

/// Makes a one-time sign-in link for the tenant (for agents and first sign-ins); the answer is
/// the only time it is shown.
#[utoipa::path(post, path = "/api/tenants/{name}/login-links", tag = "tenants", extensions(("x-hostel-action" = json!("change"))),
    request_body = NewLoginLink,
    params(("name" = String, Path, description = "Tenant name")),
    responses((status = 201, body = LoginLink), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn create_login_link(
    State(s): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<NewLoginLink>,
) -> Result<(StatusCode, Json<LoginLink>), ApiError> {
    let name = parse_name(&name)?;
    let ttl = body.ttl()?;
    let token = s.hostel.login_link(&name, ttl)?;
    Ok((
        StatusCode::CREATED,
        Json(LoginLink {
            path: format!("/login/link/{}", token.expose()),
            expires_at: chrono::Utc::now() + ttl,
        }),
    ))
}

/// The tenant's SSH keys.
#[utoipa::path(get, path = "/api/tenants/{name}/keys", tag = "keys", extensions(("x-hostel-action" = json!("read_metadata"))),
    params(("name" = String, Path, description = "Tenant name")),
    responses((status = 200, body = Vec<Key>), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list_keys(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Vec<Key>>, ApiError> {
    let keys = s.hostel.key_list(&parse_name(&name)?)?;
    Ok(Json(keys.into_iter().map(Key::from).collect()))
}

/// Adds SSH keys; they work from the next connection. Answers with all the tenant's keys.
#[utoipa::path(post, path = "/api/tenants/{name}/keys", tag = "keys", extensions(("x-hostel-action" = json!("change"))), request_body = NewKeys,
    params(("name" = String, Path, description = "Tenant name")),
    responses((status = 200, body = Vec<Key>), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn add_keys(
    State(s): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<NewKeys>,
) -> Result<Json<Vec<Key>>, ApiError> {
    let name = parse_name(&name)?;
    if body.keys.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "keys is empty",
            Some(r#"e.g. {"keys": ["ssh-ed25519 AAAA... alice@laptop"]}"#),
        ));
    }
    let keys = body
        .keys
        .iter()
        .map(|k| k.parse::<SshPublicKey>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(ServiceError::from)?;
    s.hostel.key_add(&name, &keys)?;
    let keys = s.hostel.key_list(&name)?;
    Ok(Json(keys.into_iter().map(Key::from).collect()))
}

/// Removes a key by its fingerprint (`SHA256:...`, URL-encoded); it stops working at once.
#[utoipa::path(delete, path = "/api/tenants/{name}/keys/{fingerprint}", tag = "keys", extensions(("x-hostel-action" = json!("change"))),
    params(("name" = String, Path, description = "Tenant name"),
        ("fingerprint" = String, Path, description = "`SHA256:...`")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn remove_key(
    State(s): State<AppState>,
    Path((name, fingerprint)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.hostel.key_remove(&parse_name(&name)?, &fingerprint)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The ports the tenant publishes at `PORT--TENANT.<[http] domain>`.
#[utoipa::path(get, path = "/api/tenants/{name}/ports", tag = "ports", extensions(("x-hostel-action" = json!("read_metadata"))),
    params(("name" = String, Path, description = "Tenant name")),
    responses((status = 200, body = Vec<PublishedPort>), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list_ports(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Vec<PublishedPort>>, ApiError> {
    let ports = s.hostel.ports(&parse_name(&name)?)?;
    Ok(Json(ports.into_iter().map(PublishedPort::from).collect()))
}

/// Publishes a port of the tenant's workspace at `PORT--TENANT.<[http] domain>`: to the
/// tenant's own browser session, or to anyone with `public`. Publishing again changes only
/// `public`. Needs `[http] domain`.
#[utoipa::path(post, path = "/api/tenants/{name}/ports", tag = "ports", extensions(("x-hostel-action" = json!("change"))), request_body = NewPublishedPort,
    params(("name" = String, Path, description = "Tenant name")),
    responses((status = 201, body = PublishedPort), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn publish_port(
    State(s): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<NewPublishedPort>,
) -> Result<(StatusCode, Json<PublishedPort>), ApiError> {
    let p = s
        .hostel
        .port_publish(&parse_name(&name)?, body.port, body.public)?;
    Ok((StatusCode::CREATED, Json(p.into())))
}

/// Withdraws a published port; its origin answers 404 at once.
#[utoipa::path(delete, path = "/api/tenants/{name}/ports/{port}", tag = "ports", extensions(("x-hostel-action" = json!("change"))),
    params(("name" = String, Path, description = "Tenant name"),
        ("port" = u16, Path, description = "The published port")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn unpublish_port(
    State(s): State<AppState>,
    Path((name, port)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let port = port
        .parse::<u16>()
        .map_err(|_| ServiceError::InvalidPort { port })?;
    s.hostel.port_unpublish(&parse_name(&name)?, port)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The most output kept per stream.
const OUTPUT_CAP: usize = 16 << 20;

/// `exec` options.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ExecQuery {
    /// Answer with JSON lines as the command runs (`{"stdout": "..."}`, `{"stderr": "..."}`,
    /// then `{"exit_code": N, "timed_out": bool}`) instead of one object at the end.
    #[serde(default)]
    stream: bool,
}

/// Runs a command as the tenant in its workspace (waking it) and answers when it ends, or, with
/// `?stream=true`, streams its output as JSON lines as it comes.
#[utoipa::path(post, path = "/api/tenants/{name}/exec", tag = "tenants", extensions(("x-hostel-action" = json!("exec"))), request_body = ExecBody,
    params(("name" = String, Path, description = "Tenant name"), ExecQuery),
    responses((status = 200, body = ExecResult, description = "the result; with ?stream=true, \
            application/x-ndjson lines"),
        (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn exec(
    State(s): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<ExecQuery>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    ApiJson(body): ApiJson<ExecBody>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let name = parse_name(&name)?;
    if body.command.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "command is empty",
            Some(r#"e.g. {"command": ["sh", "-c", "echo hi"]}"#),
        ));
    }
    let timeout = Duration::from_secs(body.timeout_secs.unwrap_or(60).clamp(1, 3600));
    let actor = caller.map(|c| c.0.0);
    let opts = ExecOptions {
        cmd: body.command,
        stdin: body.stdin.is_some(),
        env: body.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        cwd: body.cwd,
        actor: actor.clone(),
        ..ExecOptions::default()
    };
    let session = s.hostel.exec(&name, opts, &Quiet).await?;
    if let Some(text) = body.stdin {
        let mut input = session.input;
        tokio::spawn(async move {
            let _ = input.write_all(text.as_bytes()).await;
            let _ = input.shutdown().await;
        });
    }
    let hostel = s.hostel.clone();
    let handle = session.handle;
    let mut output = session.output;
    if q.stream {
        let (tx, rx) = tokio::sync::mpsc::channel::<String>(64);
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let pump = async {
                while let Some(chunk) = output.next().await {
                    let line = match chunk {
                        Ok(ExecOutput::Stdout(b)) => {
                            serde_json::json!({"stdout": String::from_utf8_lossy(&b)})
                        }
                        Ok(ExecOutput::Stderr(b)) => {
                            serde_json::json!({"stderr": String::from_utf8_lossy(&b)})
                        }
                        Err(_) => break,
                    };
                    if tx.send(format!("{line}\n")).await.is_err() {
                        break;
                    }
                }
                hostel.exec_finish(&handle).await
            };
            let end = match tokio::time::timeout_at(deadline, pump).await {
                Ok(Ok(code)) => serde_json::json!({"exit_code": code, "timed_out": false}),
                Ok(Err(e)) => {
                    serde_json::json!({"error": e.code().as_str(), "message": e.to_string()})
                }
                Err(_) => {
                    let _ = hostel.exec_signal(&handle, Signal::Kill).await;
                    let code = hostel.exec_finish(&handle).await.unwrap_or(-1);
                    serde_json::json!({"exit_code": code, "timed_out": true})
                }
            };
            let _ = tx.send(format!("{end}\n")).await;
        });
        let lines = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|l| {
                (
                    Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(l)),
                    rx,
                )
            })
        });
        return Ok((
            [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
            axum::body::Body::from_stream(lines),
        )
            .into_response());
    }
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut truncated = false;
    // The deadline covers the output and the exit: a command that closes its output and runs
    // on is killed too. Output beyond OUTPUT_CAP per stream is dropped, not buffered.
    let run = async {
        while let Some(chunk) = output.next().await {
            let (buf, b) = match chunk {
                Ok(ExecOutput::Stdout(b)) => (&mut out, b),
                Ok(ExecOutput::Stderr(b)) => (&mut err, b),
                Err(_) => break,
            };
            let room = OUTPUT_CAP.saturating_sub(buf.len());
            truncated |= b.len() > room;
            buf.extend(b.into_iter().take(room));
        }
        hostel.exec_finish(&handle).await
    };
    let (exit_code, timed_out) = match tokio::time::timeout(timeout, run).await {
        Ok(code) => (code?, false),
        Err(_) => {
            s.hostel.exec_signal(&handle, Signal::Kill).await?;
            (s.hostel.exec_finish(&handle).await?, true)
        }
    };
    Ok(Json(ExecResult {
        exit_code,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
        timed_out,
        truncated,
    })
    .into_response())
}

/// Which part of a usage history.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct HistoryQuery {
    /// `1h` (a point per lifecycle check), `24h` or `7d` (15-minute averages) [default: 1h].
    pub range: Option<String>,
    /// At most this many points, neighbours averaged (1 to 1000) [default: 120].
    #[param(minimum = 1, maximum = 1000, nullable = false)]
    pub points: Option<u16>,
}

impl HistoryQuery {
    /// The range and the number of points, checked.
    pub(crate) fn parse(&self) -> Result<(hostel_core::history::Range, usize), ApiError> {
        let range = match self.range.as_deref() {
            None => hostel_core::history::Range::Hour,
            Some(r) => r.parse().map_err(|e: hostel_core::history::RangeError| {
                ApiError::new(
                    ErrorCode::InvalidInput,
                    e.to_string(),
                    Some("e.g. ?range=24h"),
                )
            })?,
        };
        let points = usize::from(self.points.unwrap_or(120));
        if !(1..=1000).contains(&points) {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!("points {points}: between 1 and 1000"),
                Some("e.g. ?points=60"),
            ));
        }
        Ok((range, points))
    }
}

/// A tenant's usage over a range, as the daemon's lifecycle checks saw it (no engine call).
#[utoipa::path(get, path = "/api/tenants/{name}/history", tag = "tenants", extensions(("x-hostel-action" = json!("read_metadata"))),
    params(("name" = String, Path, description = "Tenant name"), HistoryQuery),
    responses((status = 200, body = hostel_api::UsageHistory), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn tenant_history(
    State(s): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<hostel_api::UsageHistory>, ApiError> {
    let (range, points) = q.parse()?;
    let history = s.hostel.usage_history(&parse_name(&name)?, range, points)?;
    Ok(Json(hostel_api::UsageHistory {
        range: range.to_string(),
        points: history.into_iter().map(Into::into).collect(),
    }))
}

/// The host's usage over a range: the sums of its tenants'.
#[utoipa::path(get, path = "/api/history", tag = "admin", extensions(("x-hostel-action" = json!("read_metadata"))),
    params(HistoryQuery),
    responses((status = 200, body = hostel_api::UsageHistory), (status = 400, body = crate::error::ErrorBody)))]
pub async fn host_history(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<hostel_api::UsageHistory>, ApiError> {
    let (range, points) = q.parse()?;
    Ok(Json(hostel_api::UsageHistory {
        range: range.to_string(),
        points: s
            .hostel
            .host_history(range, points)
            .into_iter()
            .map(Into::into)
            .collect(),
    }))
}

//! `/api/tenants`: tenants and their workspaces; `exec` runs a command and answers with its
//! output (the sandbox case: create, run, read, delete).

use crate::json::{ApiJson, ApiQuery};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use futures_util::StreamExt;
use hostel_core::policy::Policy;
use hostel_core::{ByteSize, Cpus, ErrorCode, SshPublicKey, TenantName};
use hostel_runtime::ExecOutput;
use hostel_service::{CreateRequest, ExecOptions, Quiet, ServiceError, TenantInfo, TenantSummary};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use utoipa::{IntoParams, ToSchema};

/// A tenant as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Tenant {
    /// Name.
    name: String,
    /// `ready`, or `creating`/`purging` while a command works on it.
    status: String,
    /// `running`, `stopped` or `deleted` (no container; the home is kept).
    state: String,
    /// Image reference.
    image: String,
    /// CPUs, e.g. "1.5".
    cpus: String,
    /// Memory limit, e.g. "512MiB".
    memory: String,
    /// Home size, e.g. "5GiB".
    disk: String,
    /// Most processes.
    pids: u32,
}

impl From<&TenantSummary> for Tenant {
    fn from(t: &TenantSummary) -> Self {
        Tenant {
            name: t.name.clone(),
            status: t.status.to_string(),
            state: t.state.to_string(),
            image: t.image.clone(),
            cpus: t.quota.cpus.to_string(),
            memory: t.quota.memory.to_string(),
            disk: t.quota.disk.to_string(),
            pids: t.quota.pids,
        }
    }
}

/// A tenant with live usage.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantDetail {
    #[serde(flatten)]
    tenant: Tenant,
    /// Seconds since the workspace started, when running.
    uptime_secs: Option<i64>,
    /// Memory in use, in bytes, when running.
    memory_used_bytes: Option<u64>,
    /// Processes the OOM killer ended since start, when running.
    oom_kills: Option<u64>,
    /// Disk used in the home, in bytes.
    disk_used_bytes: Option<u64>,
    /// Number of SSH keys.
    keys: usize,
    /// When the tenant's time is up (RFC 3339), if it has a TTL.
    expires_at: Option<String>,
    /// Whether its home goes at expiry.
    ephemeral: bool,
}

impl From<&TenantInfo> for TenantDetail {
    fn from(i: &TenantInfo) -> Self {
        TenantDetail {
            tenant: Tenant::from(&i.summary),
            uptime_secs: i.uptime_secs,
            memory_used_bytes: i.usage.as_ref().map(|u| u.memory_used.as_u64()),
            oom_kills: i.usage.as_ref().map(|u| u.oom_kills),
            disk_used_bytes: i.disk_used.map(ByteSize::as_u64),
            keys: i.keys,
            expires_at: i.policy.expires_at.map(|t| t.to_rfc3339()),
            ephemeral: i.policy.ephemeral,
        }
    }
}

/// What `POST /api/tenants` takes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// Tenant name (1-32 of a-z, 0-9, '-').
    name: String,
    /// OpenSSH public keys, one per entry (at least one).
    keys: Vec<String>,
    /// CPUs, e.g. "0.5" (default from hostel.toml).
    cpus: Option<String>,
    /// Memory, e.g. "512M".
    memory: Option<String>,
    /// Home size, e.g. "1G".
    disk: Option<String>,
    /// Most processes.
    pids: Option<u32>,
    /// Image reference (default: the newest build).
    image: Option<String>,
    /// Time to live, e.g. "1h": at expiry the workspace is removed (the home too if ephemeral).
    ttl: Option<String>,
    /// Purge the tenant, home included, when its TTL is up.
    #[serde(default)]
    ephemeral: bool,
    /// Start the workspace when the daemon starts.
    #[serde(default)]
    autostart: bool,
    /// Stop the workspace after this long idle, e.g. "10m" ("0": never; default from hostel.toml).
    idle_stop: Option<String>,
}

fn parse_name(name: &str) -> Result<TenantName, ApiError> {
    name.parse::<TenantName>()
        .map_err(|e| ServiceError::from(e).into())
}

/// Tenants and their workspace states.
#[utoipa::path(get, path = "/api/tenants", tag = "tenants",
    responses((status = 200, body = Vec<Tenant>), (status = 401, body = crate::error::ErrorBody)))]
pub async fn list_tenants(State(s): State<AppState>) -> Result<Json<Vec<Tenant>>, ApiError> {
    Ok(Json(
        s.hostel.list().await?.iter().map(Tenant::from).collect(),
    ))
}

/// Creates a tenant and starts its workspace; answers when a command can run in it.
#[utoipa::path(post, path = "/api/tenants", tag = "tenants", request_body = NewTenant,
    responses((status = 201, body = TenantDetail), (status = 400, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn create_tenant(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<NewTenant>,
) -> Result<(StatusCode, Json<TenantDetail>), ApiError> {
    let name = parse_name(&body.name)?;
    let keys = body
        .keys
        .iter()
        .map(|k| k.parse::<SshPublicKey>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(ServiceError::from)?;
    let size = |v: &Option<String>| {
        v.as_deref()
            .map(str::parse::<ByteSize>)
            .transpose()
            .map_err(ServiceError::from)
    };
    let req = CreateRequest {
        name,
        keys,
        cpus: body
            .cpus
            .as_deref()
            .map(str::parse::<Cpus>)
            .transpose()
            .map_err(ServiceError::from)?,
        memory: size(&body.memory)?,
        disk: size(&body.disk)?,
        pids: body.pids,
        image: body.image,
        policy: Policy::from_settings(
            body.ttl.as_deref(),
            body.ephemeral,
            body.autostart,
            body.idle_stop.as_deref(),
            chrono::Utc::now(),
        )
        .map_err(ServiceError::from)?,
    };
    let info = s.hostel.create(req, &Quiet).await?;
    Ok((StatusCode::CREATED, Json(TenantDetail::from(&info))))
}

/// One tenant with live usage.
#[utoipa::path(get, path = "/api/tenants/{name}", tag = "tenants",
    params(("name" = String, Path, description = "Tenant name")),
    responses((status = 200, body = TenantDetail), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_tenant(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<TenantDetail>, ApiError> {
    let info = s.hostel.info(&parse_name(&name)?).await?;
    Ok(Json(TenantDetail::from(&info)))
}

/// `DELETE` options.
#[derive(Debug, Deserialize, IntoParams)]
pub struct DeleteQuery {
    /// Also remove the tenant, its keys and its home, for good.
    #[serde(default)]
    purge: bool,
}

/// Removes the workspace (the home and keys stay), or with `?purge=true` the whole tenant.
#[utoipa::path(delete, path = "/api/tenants/{name}", tag = "tenants",
    params(("name" = String, Path, description = "Tenant name"), DeleteQuery),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete_tenant(
    State(s): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    let name = parse_name(&name)?;
    if q.purge {
        s.hostel.purge(&name, true).await?;
    } else {
        s.hostel.delete(&name).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Starts the workspace (re-creating it when deleted).
#[utoipa::path(post, path = "/api/tenants/{name}/start", tag = "tenants",
    params(("name" = String, Path, description = "Tenant name")),
    responses((status = 200, body = TenantDetail), (status = 404, body = crate::error::ErrorBody)))]
pub async fn start_tenant(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<TenantDetail>, ApiError> {
    let name = parse_name(&name)?;
    s.hostel.start(&name, &Quiet).await?;
    Ok(Json(TenantDetail::from(&s.hostel.info(&name).await?)))
}

/// Stops the workspace; its files stay.
#[utoipa::path(post, path = "/api/tenants/{name}/stop", tag = "tenants",
    params(("name" = String, Path, description = "Tenant name")),
    responses((status = 200, body = TenantDetail), (status = 404, body = crate::error::ErrorBody)))]
pub async fn stop_tenant(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<TenantDetail>, ApiError> {
    let name = parse_name(&name)?;
    s.hostel.stop(&name).await?;
    Ok(Json(TenantDetail::from(&s.hostel.info(&name).await?)))
}

/// A command to run as the tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecBody {
    /// argv, e.g. ["sh", "-c", "ls"].
    command: Vec<String>,
    /// Text for the command's stdin (closed after it).
    stdin: Option<String>,
    /// Extra environment.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Working directory (default: the home).
    cwd: Option<String>,
    /// Kill the command after this many seconds (default 60, at most 3600).
    timeout_secs: Option<u64>,
}

/// How a command ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExecResult {
    /// Exit code (137 when killed, e.g. on timeout).
    exit_code: i64,
    /// stdout, as UTF-8 (invalid bytes replaced).
    stdout: String,
    /// stderr, as UTF-8 (invalid bytes replaced).
    stderr: String,
    /// Whether the timeout killed it.
    timed_out: bool,
    /// Whether output beyond 16 MiB per stream was dropped.
    truncated: bool,
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
#[utoipa::path(post, path = "/api/tenants/{name}/exec", tag = "tenants", request_body = ExecBody,
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
    let id = session.id.clone();
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
                hostel.exec_finish(&name, &id, actor.as_deref()).await
            };
            let end = match tokio::time::timeout_at(deadline, pump).await {
                Ok(Ok(code)) => serde_json::json!({"exit_code": code, "timed_out": false}),
                Ok(Err(e)) => {
                    serde_json::json!({"error": e.code().as_str(), "message": e.to_string()})
                }
                Err(_) => {
                    let _ = hostel.exec_kill(&id).await;
                    let code = hostel
                        .exec_finish(&name, &id, actor.as_deref())
                        .await
                        .unwrap_or(-1);
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
    let tenant = name.clone();
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
        hostel.exec_finish(&tenant, &id, actor.as_deref()).await
    };
    let (exit_code, timed_out) = match tokio::time::timeout(timeout, run).await {
        Ok(code) => (code?, false),
        Err(_) => {
            s.hostel.exec_kill(&session.id).await?;
            (
                s.hostel
                    .exec_finish(&name, &session.id, actor.as_deref())
                    .await?,
                true,
            )
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

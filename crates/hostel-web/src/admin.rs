//! The host's administration: images, the host check and drift repair, the audit log, bans at
//! the SSH gateway, API tokens and the daemon's own status. Admin tokens change, viewers read.

use crate::auth::Caller;
use crate::json::{ApiJson, ApiQuery};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hostel_api::{
    AuditEntry, AuditQuery, AuditVerified, Ban, Built, CheckItem, CreatedToken, DaemonStatus,
    DoctorRun, Finding, Image, ImageBuild, NewBan, NewShare, NewToken, Share, Token,
};
use hostel_core::{ErrorCode, TenantName};
use hostel_service::{Quiet, ServiceError};

/// Workspace images and the tenants using each.
#[utoipa::path(get, path = "/api/images", tag = "images", extensions(("x-hostel-action" = json!("read_metadata"))),
    responses((status = 200, body = Vec<Image>)))]
pub async fn list_images(State(s): State<AppState>) -> Result<Json<Vec<Image>>, ApiError> {
    let images = s.hostel.image_list().await?;
    Ok(Json(images.into_iter().map(Image::from).collect()))
}

/// Builds the workspace image (cached: seconds when nothing changed; a minute or more cold).
#[utoipa::path(post, path = "/api/images/build", tag = "images", extensions(("x-hostel-action" = json!("change"))), request_body = ImageBuild,
    responses((status = 200, body = Built)))]
pub async fn build_image(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<ImageBuild>,
) -> Result<Json<Built>, ApiError> {
    let profile = match body.profile.as_deref() {
        Some(p) => p.parse().map_err(ServiceError::from)?,
        None => hostel_core::ImageProfile::Base,
    };
    Ok(Json(
        s.hostel
            .image_build_profile(profile, body.force, &Quiet)
            .await?
            .into(),
    ))
}

/// Checks that the host is ready: engine, image, storage, tools, disk. Always 200: read `ok`.
#[utoipa::path(get, path = "/api/check", tag = "host", extensions(("x-hostel-action" = json!("read_metadata"))),
    responses((status = 200, body = Vec<CheckItem>)))]
pub async fn check(State(s): State<AppState>) -> Json<Vec<CheckItem>> {
    Json(
        s.hostel
            .check()
            .await
            .into_iter()
            .map(CheckItem::from)
            .collect(),
    )
}

/// Drift between the store, the engine and the homes, found but not fixed.
#[utoipa::path(get, path = "/api/doctor", tag = "host", extensions(("x-hostel-action" = json!("read_metadata"))),
    responses((status = 200, body = Vec<Finding>)))]
pub async fn doctor_find(State(s): State<AppState>) -> Result<Json<Vec<Finding>>, ApiError> {
    doctor(&s, false).await
}

/// Finds drift and, with `fix`, repairs it (never deleting data).
#[utoipa::path(post, path = "/api/doctor", tag = "host", extensions(("x-hostel-action" = json!("change"))), request_body = DoctorRun,
    responses((status = 200, body = Vec<Finding>)))]
pub async fn doctor_run(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<DoctorRun>,
) -> Result<Json<Vec<Finding>>, ApiError> {
    doctor(&s, body.fix).await
}

async fn doctor(s: &AppState, fix: bool) -> Result<Json<Vec<Finding>>, ApiError> {
    let found = s.hostel.doctor(fix).await?;
    Ok(Json(found.into_iter().map(Finding::from).collect()))
}

/// Audit records, oldest first.
#[utoipa::path(get, path = "/api/audit", tag = "audit", extensions(("x-hostel-action" = json!("read_metadata"))), params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>)))]
pub async fn audit(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let tenant = q
        .tenant
        .map(|t| t.parse::<TenantName>().map(|n| n.to_string()))
        .transpose()
        .map_err(ServiceError::from)?;
    let filter = hostel_store::AuditFilter {
        tenant,
        since: q.since,
        failed: q.failed,
    };
    let records = s
        .hostel
        .audit_log()
        .query(&filter)
        .map_err(ServiceError::from)?;
    Ok(Json(records.into_iter().map(AuditEntry::from).collect()))
}

/// Checks the audit log's hash chain from the first record to the last.
#[utoipa::path(get, path = "/api/audit/verify", tag = "audit", extensions(("x-hostel-action" = json!("read_metadata"))),
    responses((status = 200, body = AuditVerified)))]
pub async fn audit_verify(State(s): State<AppState>) -> Result<Json<AuditVerified>, ApiError> {
    let log = s.hostel.audit_log();
    let records = log.verify().map_err(ServiceError::from)?;
    Ok(Json(AuditVerified {
        path: log.path().display().to_string(),
        records,
    }))
}

/// Shared datasets: host folders mounted read-only at `/shared/<name>`.
#[utoipa::path(get, path = "/api/shares", tag = "shares", extensions(("x-hostel-action" = json!("read_metadata"))), responses((status = 200, body = Vec<Share>)))]
pub async fn list_shares(State(s): State<AppState>) -> Result<Json<Vec<Share>>, ApiError> {
    Ok(Json(
        s.hostel.shares()?.into_iter().map(Share::from).collect(),
    ))
}

/// Shares a host folder, read-only, with the tenants named (absent: every tenant); it
/// reaches each workspace at its next start.
#[utoipa::path(post, path = "/api/shares", tag = "shares", extensions(("x-hostel-action" = json!("change"))), request_body = NewShare,
    responses((status = 201, body = Share), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn add_share(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<NewShare>,
) -> Result<(StatusCode, Json<Share>), ApiError> {
    let (name, tenants) = body.parts()?;
    let made = s.hostel.share_add(&name, &body.path, tenants).await?;
    Ok((StatusCode::CREATED, Json(made.into())))
}

/// Stops sharing; it leaves each workspace at its next start. The host folder stays.
#[utoipa::path(delete, path = "/api/shares/{name}", tag = "shares", extensions(("x-hostel-action" = json!("change"))),
    params(("name" = String, Path, description = "Share name")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn remove_share(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = name
        .parse::<hostel_core::share::ShareName>()
        .map_err(ServiceError::from)?;
    s.hostel.share_remove(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Bans in force at the SSH gateway.
#[utoipa::path(get, path = "/api/bans", tag = "bans", extensions(("x-hostel-action" = json!("read_metadata"))), responses((status = 200, body = Vec<Ban>)))]
pub async fn list_bans(State(s): State<AppState>) -> Result<Json<Vec<Ban>>, ApiError> {
    Ok(Json(s.hostel.bans()?.into_iter().map(Ban::from).collect()))
}

/// Bans a client address, for a time or until removed.
#[utoipa::path(post, path = "/api/bans", tag = "bans", extensions(("x-hostel-action" = json!("change"))), request_body = NewBan,
    responses((status = 201, body = Ban), (status = 400, body = crate::error::ErrorBody)))]
pub async fn add_ban(
    State(s): State<AppState>,
    caller: Option<axum::Extension<Caller>>,
    ApiJson(body): ApiJson<NewBan>,
) -> Result<(StatusCode, Json<Ban>), ApiError> {
    let (ip, duration, reason) = body.into_parts()?;
    let actor = caller.map(|c| c.0.0);
    let ban = s.hostel.ban(ip, &reason, duration, actor.as_deref())?;
    Ok((StatusCode::CREATED, Json(ban.into())))
}

/// Lifts the ban on an address.
#[utoipa::path(delete, path = "/api/bans/{address}", tag = "bans", extensions(("x-hostel-action" = json!("change"))),
    params(("address" = String, Path, description = "IPv4 or IPv6 address")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn remove_ban(
    State(s): State<AppState>,
    Path(address): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ip = address
        .parse::<std::net::IpAddr>()
        .map_err(|_| ServiceError::InvalidAddress { address })?;
    s.hostel.unban(ip)?;
    Ok(StatusCode::NO_CONTENT)
}

/// API tokens, revoked ones included (never their secrets).
#[utoipa::path(get, path = "/api/tokens", tag = "tokens", extensions(("x-hostel-action" = json!("read_metadata"))),
    responses((status = 200, body = Vec<Token>)))]
pub async fn list_tokens(State(s): State<AppState>) -> Result<Json<Vec<Token>>, ApiError> {
    Ok(Json(
        s.hostel
            .token_list()?
            .into_iter()
            .map(Token::from)
            .collect(),
    ))
}

/// Makes a token; the answer is the only time its secret is shown.
#[utoipa::path(post, path = "/api/tokens", tag = "tokens", extensions(("x-hostel-action" = json!("change"))), request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn create_token(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let role = body.role()?;
    let token = s.hostel.token_create(&body.name, role)?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            name: body.name,
            role: role.to_string(),
            token,
        }),
    ))
}

/// Revokes a token; it stops working at once.
#[utoipa::path(delete, path = "/api/tokens/{name}", tag = "tokens", extensions(("x-hostel-action" = json!("change"))),
    params(("name" = String, Path, description = "The token's name")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn revoke_token(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.hostel.token_revoke(&name)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The daemon: its process, addresses, SSH host key and open sessions.
#[utoipa::path(get, path = "/api/status", tag = "host", extensions(("x-hostel-action" = json!("read_metadata"))),
    responses((status = 200, body = DaemonStatus)))]
pub async fn status(State(s): State<AppState>) -> Result<Json<DaemonStatus>, ApiError> {
    let Some(d) = s.daemon.as_deref() else {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "this API is not served by `hostel serve`",
            None,
        ));
    };
    let mut status = d.clone();
    status.open_sessions = s.hostel.open_total();
    Ok(Json(status))
}

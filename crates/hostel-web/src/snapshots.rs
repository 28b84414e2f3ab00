//! `/api/tenants/{name}/snapshots`: snapshots of a tenant's home (and system, where the engine
//! takes them), their schedule, and restores.

use crate::json::ApiJson;
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hostel_api::{NewSnapshot, ScheduleChange, Snapshot, SnapshotList};
use hostel_core::{SnapshotName, TenantName};
use hostel_service::{Quiet, ServiceError};

fn parse_name(name: &str) -> Result<TenantName, ApiError> {
    name.parse::<TenantName>()
        .map_err(|e| ServiceError::from(e).into())
}

fn parse_snapshot(snapshot: &str) -> Result<SnapshotName, ApiError> {
    snapshot
        .parse::<SnapshotName>()
        .map_err(|e| ServiceError::from(e).into())
}

/// The tenant's snapshots, oldest first, and its schedule.
#[utoipa::path(get, path = "/api/tenants/{name}/snapshots", tag = "snapshots", extensions(("x-hostel-action" = json!("read_metadata"))),
    params(("name" = String, Path, description = "Tenant name")),
    responses((status = 200, body = SnapshotList), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list_snapshots(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<SnapshotList>, ApiError> {
    let listed = s.hostel.snapshots(&parse_name(&name)?).await?;
    Ok(Json(SnapshotList::new(listed)))
}

/// Takes a snapshot of the tenant's home, and of its system where the engine can (Incus),
/// while the workspace runs.
#[utoipa::path(post, path = "/api/tenants/{name}/snapshots", tag = "snapshots", extensions(("x-hostel-action" = json!("change"))), request_body = NewSnapshot,
    params(("name" = String, Path, description = "Tenant name")),
    responses((status = 201, body = Snapshot), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn create_snapshot(
    State(s): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<NewSnapshot>,
) -> Result<(StatusCode, Json<Snapshot>), ApiError> {
    let snapshot = body
        .name
        .as_deref()
        .map(SnapshotName::chosen)
        .transpose()
        .map_err(ServiceError::from)?;
    let made = s
        .hostel
        .snapshot_create(&parse_name(&name)?, snapshot)
        .await?;
    Ok((StatusCode::CREATED, Json(made.into())))
}

/// Puts a snapshot back over the tenant's home (and system): the workspace stops for it and
/// starts again when it should run. What changed since the snapshot is lost.
#[utoipa::path(post, path = "/api/tenants/{name}/snapshots/{snapshot}/restore", tag = "snapshots", extensions(("x-hostel-action" = json!("change"))),
    params(("name" = String, Path, description = "Tenant name"),
        ("snapshot" = String, Path, description = "Snapshot name")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn restore_snapshot(
    State(s): State<AppState>,
    Path((name, snapshot)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.hostel
        .snapshot_restore(&parse_name(&name)?, &parse_snapshot(&snapshot)?, &Quiet)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a snapshot.
#[utoipa::path(delete, path = "/api/tenants/{name}/snapshots/{snapshot}", tag = "snapshots", extensions(("x-hostel-action" = json!("change"))),
    params(("name" = String, Path, description = "Tenant name"),
        ("snapshot" = String, Path, description = "Snapshot name")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete_snapshot(
    State(s): State<AppState>,
    Path((name, snapshot)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.hostel
        .snapshot_delete(&parse_name(&name)?, &parse_snapshot(&snapshot)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets the tenant's snapshot schedule (`every`: hourly, daily, weekly), or stops it (`off`;
/// the snapshots it took stay). The daemon takes the first at its next look.
#[utoipa::path(put, path = "/api/tenants/{name}/snapshot-schedule", tag = "snapshots", extensions(("x-hostel-action" = json!("change"))), request_body = ScheduleChange,
    params(("name" = String, Path, description = "Tenant name")),
    responses((status = 204), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn set_schedule(
    State(s): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ScheduleChange>,
) -> Result<StatusCode, ApiError> {
    s.hostel
        .snapshot_schedule(&parse_name(&name)?, body.schedule()?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

//! `/api/tenants/{name}/export` and `/api/import`: a tenant as one archive, out and in, both
//! streamed (see `hostel_service::Hostel::export`).

use crate::json::ApiQuery;
use crate::{ApiError, AppState};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, TryStreamExt};
use hostel_api::{ImportQuery, TenantDetail};
use hostel_core::TenantName;
use hostel_service::{Quiet, ServiceError};

/// The archive's media type.
pub const ARCHIVE_TYPE: &str = "application/zstd";

/// The tenant as an archive: its record, keys and policies, then its home, read from a frozen
/// copy while the workspace may go on running. Holds the tenant's keys and web password hash:
/// keep it as private as the home.
#[utoipa::path(get, path = "/api/tenants/{name}/export", tag = "tenants", extensions(("x-hostel-action" = json!("read_tenant_data"))),
    params(("name" = String, Path, description = "Tenant name")),
    responses((status = 200, description = "a zstd-compressed tar; a failure part-way cuts it short, and a cut archive fails its import", content_type = "application/zstd"),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn export_tenant(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = name.parse::<TenantName>().map_err(ServiceError::from)?;
    let export = s.hostel.export(&name).await?;
    let file = format!("attachment; filename=\"{name}.hostel.tar.zst\"");
    Ok((
        [
            (header::CONTENT_TYPE, ARCHIVE_TYPE.to_owned()),
            (header::CONTENT_DISPOSITION, file),
        ],
        Body::from_stream(export.body),
    )
        .into_response())
}

/// Makes a tenant from an archive `GET /api/tenants/{name}/export` wrote (the body), on this
/// host's engine, whatever engine wrote it; answers when its workspace runs. A cut or changed
/// archive, or one whose home does not fit, leaves nothing behind.
#[utoipa::path(post, path = "/api/import", tag = "tenants", extensions(("x-hostel-action" = json!("change"))),
    params(ImportQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the archive's bytes (any content type; the CLI sends application/zstd)"),
    responses((status = 201, body = TenantDetail), (status = 400, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn import_tenant(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ImportQuery>,
    body: Body,
) -> Result<(StatusCode, Json<TenantDetail>), ApiError> {
    let req = q.into_request()?;
    let archive = body
        .into_data_stream()
        .map_ok(|b| b.to_vec())
        .map_err(std::io::Error::other)
        .boxed();
    let info = s.hostel.import(archive, req, &Quiet).await?;
    Ok((StatusCode::CREATED, Json(s.detail(&info))))
}

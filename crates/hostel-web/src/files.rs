//! `/api/tenants/{name}/files/{path}`: upload and download files in the tenant's home, run
//! inside the workspace as the tenant (see `hostel_service::Hostel::file_put`).

use crate::{ApiError, AppState};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hostel_core::TenantName;
use hostel_service::{DownloadKind, ServiceError};

fn name(s: &str) -> Result<TenantName, ApiError> {
    s.parse::<TenantName>()
        .map_err(|e| ServiceError::from(e).into())
}

/// Writes the request body to a file in the home (folders made as needed).
#[utoipa::path(put, path = "/api/tenants/{name}/files/{*path}", tag = "files", extensions(("x-hostel-action" = json!("change"))),
    params(("name" = String, Path, description = "Tenant name"),
        ("path" = String, Path, description = "Path relative to the home")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 204), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn put_file(
    State(s): State<AppState>,
    Path((tenant, path)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    s.hostel
        .file_put(&name(&tenant)?, &path, body.to_vec())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reads a file from the home, or a folder as a tar archive.
#[utoipa::path(get, path = "/api/tenants/{name}/files/{*path}", tag = "files", extensions(("x-hostel-action" = json!("read_tenant_data"))),
    params(("name" = String, Path, description = "Tenant name"),
        ("path" = String, Path, description = "Path relative to the home")),
    responses((status = 200, description = "the file, or a tar of the folder", content_type = "application/octet-stream"),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_file(
    State(s): State<AppState>,
    Path((tenant, path)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let download = s.hostel.file_get(&name(&tenant)?, &path).await?;
    let kind = match download.kind {
        DownloadKind::File => "application/octet-stream",
        DownloadKind::Folder => "application/x-tar",
    };
    // Streamed as the workspace sends it; a failure part-way aborts the body, so the client
    // sees a truncated transfer rather than a short file.
    Ok((
        [(header::CONTENT_TYPE, kind)],
        Body::from_stream(download.body),
    )
        .into_response())
}

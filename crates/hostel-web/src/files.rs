//! `/api/tenants/{name}/files/{path}`: upload and download files in the tenant's home.
//!
//! Both run inside the workspace as the tenant (`cat`, `tar`), never as root on the host, so a
//! symlink the tenant planted can lead nowhere the tenant could not go itself, and files land
//! with the tenant's ownership. Paths are relative to the home; `..`, absolute paths and empty
//! components are refused.

use crate::{ApiError, AppState};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hostel_core::{ErrorCode, TenantName};
use hostel_runtime::ExecOutput;
use hostel_service::{ExecOptions, Quiet, ServiceError};
use tokio::io::AsyncWriteExt;

/// Checks a home-relative path: no `..`, no absolute path, no empty or `.` component.
fn home_path(path: &str) -> Result<String, ApiError> {
    let bad = |why: &str| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("path {path:?}: {why}"),
            Some("give a path inside the home, e.g. work/data.csv"),
        )
    };
    if path.is_empty() {
        return Err(bad("empty"));
    }
    if path.starts_with('/') {
        return Err(bad(
            "absolute paths are not allowed; paths are relative to the home",
        ));
    }
    for part in path.split('/') {
        match part {
            "" | "." => return Err(bad("has an empty or '.' component")),
            ".." => return Err(bad("'..' would leave the home")),
            _ => {}
        }
    }
    Ok(path.to_owned())
}

fn name(s: &str) -> Result<TenantName, ApiError> {
    s.parse::<TenantName>()
        .map_err(|e| ServiceError::from(e).into())
}

/// Runs `script` (with the path as `$1`) as the tenant; returns exit code, stdout, stderr.
async fn run(
    s: &AppState,
    tenant: &TenantName,
    script: &str,
    path: &str,
    input: Option<Bytes>,
) -> Result<(i64, Vec<u8>, Vec<u8>), ApiError> {
    let opts = ExecOptions {
        cmd: vec![
            "sh".into(),
            "-c".into(),
            script.into(),
            "sh".into(),
            path.into(),
        ],
        stdin: input.is_some(),
        ..ExecOptions::default()
    };
    let mut session = s.hostel.exec(tenant, opts, &Quiet).await?;
    if let Some(bytes) = input {
        let mut w = session.input;
        tokio::spawn(async move {
            let _ = w.write_all(&bytes).await;
            let _ = w.shutdown().await;
        });
    }
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some(chunk) = session.output.next().await {
        match chunk.map_err(ServiceError::from)? {
            ExecOutput::Stdout(b) => out.extend(b),
            ExecOutput::Stderr(b) => err.extend(b),
        }
    }
    let code = s.hostel.exec_finish(tenant, &session.id, None).await?;
    Ok((code, out, err))
}

fn failed(what: &str, path: &str, code: ErrorCode, stderr: &[u8]) -> ApiError {
    ApiError::new(
        code,
        format!(
            "{what} {path:?}: {}",
            String::from_utf8_lossy(stderr).trim()
        ),
        None,
    )
}

/// Writes the request body to a file in the home (folders made as needed).
#[utoipa::path(put, path = "/api/tenants/{name}/files/{*path}", tag = "files",
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
    let tenant = name(&tenant)?;
    let path = home_path(&path)?;
    let script = r#"mkdir -p -- "$(dirname -- "$1")" && cat > "$1""#;
    let (code, _, err) = run(&s, &tenant, script, &path, Some(body)).await?;
    if code != 0 {
        return Err(failed("cannot write", &path, ErrorCode::InvalidInput, &err));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Reads a file from the home, or a folder as a tar archive.
#[utoipa::path(get, path = "/api/tenants/{name}/files/{*path}", tag = "files",
    params(("name" = String, Path, description = "Tenant name"),
        ("path" = String, Path, description = "Path relative to the home")),
    responses((status = 200, description = "the file, or a tar of the folder", content_type = "application/octet-stream"),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_file(
    State(s): State<AppState>,
    Path((tenant, path)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let tenant = name(&tenant)?;
    let path = home_path(&path)?;
    // 3: no such file; a folder comes back as a tar, marked by a first line on stderr.
    let script = r#"if [ -d "$1" ]; then echo folder >&2; exec tar -C "$1" -cf - .; elif [ -e "$1" ]; then exec cat -- "$1"; else echo "no such file or folder" >&2; exit 3; fi"#;
    let (code, out, err) = run(&s, &tenant, script, &path, None).await?;
    match code {
        0 => {
            let folder = err.starts_with(b"folder");
            let kind = if folder {
                "application/x-tar"
            } else {
                "application/octet-stream"
            };
            Ok(([(header::CONTENT_TYPE, kind)], Body::from(out)).into_response())
        }
        3 => Err(failed("cannot read", &path, ErrorCode::NotFound, &err)),
        _ => Err(failed("cannot read", &path, ErrorCode::InvalidInput, &err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_inside_the_home_pass() {
        for ok in ["a", "work/data.csv", ".bashrc", "a/b/c..d"] {
            assert_eq!(home_path(ok).map_err(|_| ()), Ok(ok.to_owned()), "{ok}");
        }
        for bad in ["", "/etc/passwd", "../x", "a/../../b", "a//b", "./a", "a/."] {
            assert!(home_path(bad).is_err(), "{bad}");
        }
    }
}

//! The web terminal: `/u/{tenant}/terminal/` is a page running xterm.js (embedded, see
//! [`crate::assets`]), and `/u/{tenant}/terminal/ws` bridges it to a login shell in the
//! tenant's workspace, waking it like SSH does. Both need the tenant's own browser session; the
//! socket also refuses pages of other sites (`Origin`), since browsers send cookies with
//! cross-site WebSocket handshakes.

use crate::portal::{Access, page, same_origin, tenant_access};
use crate::{ApiError, AppState};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

/// `GET /u/{tenant}/terminal/`: the terminal page.
pub async fn page_handler(
    State(s): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = match tenant_access(&s, &headers, &tenant, "terminal").await? {
        Access::Granted(t) => t,
        Access::SignIn => return Ok(Redirect::to("/login").into_response()),
        Access::Denied(r) => return Ok(r),
    };
    Ok(Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Terminal - {tenant} - hostel</title>\
         <link rel=\"stylesheet\" href=\"/assets/xterm.css\">\
         <link rel=\"stylesheet\" href=\"/assets/hostel.css\"></head>\
         <body class=\"terminal\"><header><a href=\"/portal\">{tenant}</a>\
         <span id=\"status\" role=\"status\" aria-live=\"polite\">loading...</span></header>\
         <div id=\"terminal\" data-tenant=\"{tenant}\" role=\"application\" \
         aria-label=\"Terminal of {tenant}'s workspace\"></div>\
         <script src=\"/assets/xterm.js\"></script><script src=\"/assets/addon-fit.js\"></script>\
         <script src=\"/assets/terminal.js\"></script></body></html>\n"
    ))
    .into_response())
}

/// The terminal's size when the page opens the socket.
#[derive(Debug, Deserialize)]
pub struct Size {
    #[serde(default = "crate::ws::default_cols")]
    cols: u16,
    #[serde(default = "crate::ws::default_rows")]
    rows: u16,
}

/// `GET /u/{tenant}/terminal/ws`: a login shell with a terminal, as the tenant.
pub async fn socket(
    State(s): State<AppState>,
    Path(tenant): Path<String>,
    Query(size): Query<Size>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // Who asks is checked before whether it is a WebSocket at all.
    same_origin(&s, &headers)?;
    let tenant = match tenant_access(&s, &headers, &tenant, "terminal").await? {
        Access::Granted(t) => t,
        Access::SignIn => {
            return Ok((
                StatusCode::UNAUTHORIZED,
                page("Sign in", "<p>Sign in first.</p>"),
            )
                .into_response());
        }
        Access::Denied(r) => return Ok(r),
    };
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    let actor = format!("web:{tenant}");
    let shell = vec!["/bin/bash".to_owned(), "-l".to_owned()];
    let size = (size.cols.clamp(2, 1000), size.rows.clamp(1, 1000));
    crate::ws::open(s, tenant, shell, true, size, Some(actor), upgrade).await
}

/// `GET /u/{tenant}/terminal`: the page lives at the path with the slash.
pub async fn to_slash(Path(tenant): Path<String>) -> Result<Redirect, ApiError> {
    let tenant: hostel_core::TenantName =
        tenant.parse().map_err(hostel_service::ServiceError::from)?;
    Ok(Redirect::to(&format!("/u/{tenant}/terminal/")))
}

//! `/assets/{file}`: the pages' stylesheet and scripts, embedded in the binary so the gateway
//! needs no files at run time and the browser nothing from other hosts. xterm.js and its fit
//! addon come from npm (`web/package-lock.json`), vendored by `scripts/web-assets`.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// (name, content type, bytes).
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "hostel.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/hostel.css"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/admin.js"),
    ),
    (
        "terminal.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/terminal.js"),
    ),
    (
        "xterm.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/vendor/xterm.js"),
    ),
    (
        "xterm.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/vendor/xterm.css"),
    ),
    (
        "addon-fit.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/vendor/addon-fit.js"),
    ),
];

/// `GET /assets/{file}`.
pub async fn asset(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                // The binary's version is the assets' version: an hour is safe across upgrades.
                (header::CACHE_CONTROL, "public, max-age=3600"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

//! API errors: `{code, message, hint}` with the HTTP status of the code.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hostel_core::ErrorCode;
use hostel_service::ServiceError;

pub use hostel_api::ErrorBody;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    hint: Option<String>,
    causes: Vec<String>,
}

impl ApiError {
    /// An error of this code.
    pub fn new(code: ErrorCode, message: impl Into<String>, hint: Option<&str>) -> Self {
        ApiError {
            code,
            message: message.into(),
            hint: hint.map(str::to_owned),
            causes: Vec::new(),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let message = e.to_string();
        let mut causes = Vec::new();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let text = s.to_string();
            if !message.contains(&text) {
                causes.push(text);
            }
            source = s.source();
        }
        ApiError {
            code: e.code(),
            message,
            hint: e.hint(),
            causes,
        }
    }
}

fn status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::EngineUnreachable | ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    /// The error as a page, for browsers on the tenant's routes.
    pub(crate) fn page(self) -> Response {
        self.page_back("/portal", "Back to the portal")
    }

    /// The error as a page with a link back to `href`.
    pub(crate) fn page_back(self, href: &str, label: &str) -> Response {
        let status = status(self.code);
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(message = %self.message, causes = ?self.causes, "internal error on a page");
        }
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            "internal error; the daemon's log has the detail".to_owned()
        } else {
            self.message
        };
        let hint = self
            .hint
            .filter(|_| status != StatusCode::INTERNAL_SERVER_ERROR)
            .map(|h| format!("<p>{}</p>", crate::portal::html_escape(&h)))
            .unwrap_or_default();
        let body = format!(
            "<h1>{}</h1><p class=\"error\" role=\"alert\">{}</p>{hint}\
             <p><a href=\"{href}\">{label}</a></p>",
            status.canonical_reason().unwrap_or("Error"),
            crate::portal::html_escape(&message),
        );
        (status, crate::portal::page("Error", &body)).into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status(self.code);
        let request_id = status
            .is_server_error()
            .then(crate::conn::request_id)
            .flatten();
        let body = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(message = %self.message, causes = ?self.causes, "internal error in an API call");
            ErrorBody {
                code: self.code.to_string(),
                message: "internal error; the daemon's log has the detail".into(),
                hint: request_id
                    .as_ref()
                    .map(|id| format!("look for request id {id} in the daemon's log")),
                causes: Vec::new(),
                request_id,
            }
        } else {
            if status.is_server_error() {
                tracing::warn!(message = %self.message, "an API call could not be served");
            }
            ErrorBody {
                code: self.code.to_string(),
                message: self.message,
                hint: self.hint,
                causes: self.causes,
                request_id,
            }
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_status() {
        let table = [
            (ErrorCode::InvalidInput, 400),
            (ErrorCode::NotFound, 404),
            (ErrorCode::Conflict, 409),
            (ErrorCode::EngineUnreachable, 503),
            (ErrorCode::Unavailable, 503),
            (ErrorCode::PermissionDenied, 403),
            (ErrorCode::Unauthenticated, 401),
            (ErrorCode::Internal, 500),
        ];
        for (code, want) in table {
            assert_eq!(status(code).as_u16(), want, "{code}");
        }
    }
}

//! A JSON body extractor whose rejections are API errors (`{code, message, hint}`, 400), not
//! axum's plain-text ones.

use crate::ApiError;
use axum::extract::{FromRequest, Request};
use hostel_core::ErrorCode;
use serde::de::DeserializeOwned;

/// A JSON request body.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!("request body: {}", rejection.body_text()),
                Some(
                    "send JSON with `content-type: application/json`, as /api/openapi.json describes",
                ),
            )),
        }
    }
}

/// A query string, with rejections as API errors too.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(rejection) => Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!("query: {}", rejection.body_text()),
                Some("see /api/openapi.json for the parameters"),
            )),
        }
    }
}

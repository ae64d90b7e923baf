//! Error answers: a status code and a JSON body `{"error": "..."}` a person can act on.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::service::ServiceError;

/// An HTTP error answer. Every error the server sends goes through this type, so every error body
/// has the same JSON shape (the contract's "Errors" section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The status code.
    pub status: StatusCode,
    /// The message shown as `{"error": message}`.
    pub message: String,
    /// For `412`: the key's current revision, sent back as its `ETag`, so a client can retry
    /// without another read.
    pub current_revision: Option<u64>,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            current_revision: None,
        }
    }

    /// `400 Bad Request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// `404 Not Found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// `404` for a path that names no route.
    pub fn unknown_route(method: &str, path: &str) -> Self {
        Self::not_found(format!(
            "no route for {method} {path}: use /{{key}} (raftexample) or /v1/kv/{{key}}, /v1/status, /v1/members, /metrics"
        ))
    }

    /// `413 Payload Too Large`.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "value too large: the limit is {limit} bytes; send a smaller value or raise the server's limit"
            ),
        )
    }

    /// `503 Service Unavailable` for a request cut off by the server's request timeout.
    pub fn timed_out(timeout: std::time::Duration) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "request timed out after {timeout:?}: the cluster may have no leader or no quorum; a write may or may not have been applied, read it back before retrying"
            ),
        )
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        let status = match &error {
            ServiceError::NoLeader
            | ServiceError::Unavailable(_)
            | ServiceError::Timeout
            | ServiceError::Removed => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(%error, "request failed");
        }
        let current_revision = match error {
            ServiceError::PreconditionFailed { current } => current,
            _ => None,
        };
        Self {
            status,
            message: error.to_string(),
            current_revision,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message }).to_string();
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        if let Some(revision) = self.current_revision {
            response
                .headers_mut()
                .insert(header::ETAG, super::etag(revision));
        }
        response
    }
}

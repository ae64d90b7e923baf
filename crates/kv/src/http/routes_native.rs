//! The native routes: `/v1/kv/{key}` with revisions as ETags, `/v1/status`, `/v1/members`.
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/kv/{key}[?consistency=serializable]` | `200` + value + `ETag: "<revision>"`, or `404` |
//! | `PUT /v1/kv/{key}` [`If-Match: "<revision>"`] | `204` + `ETag` of the new revision; `412` on a mismatch or a missing key |
//! | `DELETE /v1/kv/{key}` | `204` |
//! | `GET /v1/status` | the node's [`Status`](crate::service::Status) as JSON |
//! | `GET /v1/members` | the [`Member`](crate::service::Member)s as a JSON list |

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::request::{Value, consistency, if_match, native_key};
use super::{ApiError, AppState, etag};
use crate::service::KvService;

/// `GET /v1/kv/{key}`.
pub(super) async fn get<S: KvService>(
    State(state): State<AppState<S>>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let key = native_key(&uri)?;
    let consistency = consistency(&uri)?;
    match state.service.get(key.clone(), consistency).await? {
        Some(found) => Ok((
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                ),
                (header::ETAG, etag(found.revision)),
            ],
            found.value,
        )
            .into_response()),
        None => Err(ApiError::not_found(format!("key {key:?} not found"))),
    }
}

/// `PUT /v1/kv/{key}`, conditional with `If-Match`.
pub(super) async fn put<S: KvService>(
    State(state): State<AppState<S>>,
    uri: Uri,
    headers: HeaderMap,
    Value(value): Value,
) -> Result<Response, ApiError> {
    let key = native_key(&uri)?;
    let if_revision = if_match(&headers)?;
    let revision = state.service.put(key, value, if_revision).await?;
    Ok((StatusCode::NO_CONTENT, [(header::ETAG, etag(revision))]).into_response())
}

/// `DELETE /v1/kv/{key}`.
pub(super) async fn delete<S: KvService>(
    State(state): State<AppState<S>>,
    uri: Uri,
) -> Result<StatusCode, ApiError> {
    let key = native_key(&uri)?;
    state.service.delete(key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/status`.
pub(super) async fn status<S: KvService>(
    State(state): State<AppState<S>>,
) -> Result<Response, ApiError> {
    Ok(Json(state.service.status().await?).into_response())
}

/// `GET /v1/members`.
pub(super) async fn members<S: KvService>(
    State(state): State<AppState<S>>,
) -> Result<Response, ApiError> {
    Ok(Json(state.service.members().await?).into_response())
}

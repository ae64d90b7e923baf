//! raftexample's routes, verbatim: the method tells a key from a member id.
//!
//! | request | answer |
//! |---|---|
//! | `PUT /{key}` | `204` once committed and applied |
//! | `GET /{key}` | `200` + value, or `404`; linearizable |
//! | `POST /{id}`, body = peer URL | `204` once the member is added |
//! | `DELETE /{id}` | `204` once the member is removed |
//!
//! Keys may contain `/` and are percent-decoded. A path under `/v1/` that no native route takes
//! reaches these handlers too; it is an unknown route (`404`), not a key.

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::request::{Value, member_id, peer_url, raftexample_key};
use super::{ApiError, AppState};
use crate::service::{Consistency, KvService};

/// The key, or the unknown-route 404 for a `/v1/...` path nobody serves.
fn key_or_unknown(method: &str, uri: &Uri) -> Result<String, ApiError> {
    raftexample_key(uri)?.ok_or_else(|| ApiError::unknown_route(method, uri.path()))
}

/// `PUT /{key}`: 204 once the write is committed and applied on this node.
pub(super) async fn put<S: KvService>(
    State(state): State<AppState<S>>,
    uri: Uri,
    Value(value): Value,
) -> Result<StatusCode, ApiError> {
    let key = key_or_unknown("PUT", &uri)?;
    state.service.put(key, value, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /{key}`: the value, linearizable.
pub(super) async fn get<S: KvService>(
    State(state): State<AppState<S>>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let key = key_or_unknown("GET", &uri)?;
    match state
        .service
        .get(key.clone(), Consistency::Linearizable)
        .await?
    {
        Some(found) => Ok((
            [(header::CONTENT_TYPE, "application/octet-stream")],
            found.value,
        )
            .into_response()),
        None => Err(ApiError::not_found(format!("key {key:?} not found"))),
    }
}

/// `POST /{id}` with the new member's peer URL as the body.
pub(super) async fn add_member<S: KvService>(
    State(state): State<AppState<S>>,
    uri: Uri,
    Value(body): Value,
) -> Result<StatusCode, ApiError> {
    if uri.path().starts_with("/v1/") {
        return Err(ApiError::unknown_route("POST", uri.path()));
    }
    let id = member_id(&uri)?;
    let url = peer_url(&body)?;
    state.service.add_member(id, url).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /{id}`; removing the leader itself is allowed (it steps down once applied).
pub(super) async fn remove_member<S: KvService>(
    State(state): State<AppState<S>>,
    uri: Uri,
) -> Result<StatusCode, ApiError> {
    if uri.path().starts_with("/v1/") {
        return Err(ApiError::unknown_route("DELETE", uri.path()));
    }
    let id = member_id(&uri)?;
    state.service.remove_member(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

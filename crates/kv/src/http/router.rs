//! The route table and the layers every request passes: the body limit and the request timeout.
//!
//! Routing is by path first, then by method. The native paths (`/v1/...`, `/metrics`) are
//! static and win over the raftexample catch-all `/{*path}`, which takes keys (`GET`, `PUT`) and
//! member ids (`POST`, `DELETE`), as raftexample does. A path with no route gets a JSON `404`; a
//! known path with a method it does not serve gets a JSON `405` with an `Allow` header.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{ApiError, AppState, HttpConfig, metrics, routes_native, routes_raftexample};
use crate::service::KvService;

/// The whole HTTP API over `service`, with `config`'s body limit and request timeout
/// (`config.listen` is not used here). Serve it with [`axum::serve()`], or use
/// [`serve`](super::serve).
pub fn router<S: KvService>(config: &HttpConfig, service: Arc<S>) -> Router {
    let state = AppState {
        service,
        max_value_bytes: config.max_value_bytes,
    };
    let raftexample = get(routes_raftexample::get::<S>)
        .put(routes_raftexample::put::<S>)
        .post(routes_raftexample::add_member::<S>)
        .delete(routes_raftexample::remove_member::<S>);
    Router::new()
        .route("/metrics", get(metrics::scrape::<S>))
        .route("/v1/status", get(routes_native::status::<S>))
        .route("/v1/members", get(routes_native::members::<S>))
        .route(
            "/v1/kv/{*key}",
            get(routes_native::get::<S>)
                .put(routes_native::put::<S>)
                .delete(routes_native::delete::<S>),
        )
        // A catch-all needs at least one character, so `/v1/kv/` and `/` get their own routes
        // with the same handlers, which answer "empty key" (or "bad id").
        .route(
            "/v1/kv/",
            get(routes_native::get::<S>)
                .put(routes_native::put::<S>)
                .delete(routes_native::delete::<S>),
        )
        .route("/", raftexample.clone())
        .route("/{*path}", raftexample)
        .fallback(unknown_route)
        // After the routes: it applies to the method routers already added.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(config.max_value_bytes))
        .layer(middleware::from_fn_with_state(
            config.request_timeout,
            request_timeout,
        ))
        .with_state(state)
}

async fn unknown_route(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::unknown_route(method.as_str(), uri.path())
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "method {method} not allowed on {}: see the Allow header",
            uri.path()
        ),
    )
}

/// Cuts off a request (reading its body included) after the timeout with a JSON `503`. The
/// handler's future is dropped, so an operation in flight may still complete on the node: the
/// message says so.
async fn request_timeout(
    State(timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let uri = request.uri().clone(); // cheap: shared bytes
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(%method, path = uri.path(), ?timeout, "request timed out");
            ApiError::timed_out(timeout).into_response()
        }
    }
}

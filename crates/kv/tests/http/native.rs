//! The native routes: `/v1/kv/{key}` (ETag, If-Match, consistency), `/v1/status`, `/v1/members`;
//! service errors to status codes.

use std::sync::Arc;

use crate::client::*;
use crate::services::*;
use hyper::{Method, StatusCode};
use raftwood_kv::http::HttpConfig;
use raftwood_kv::service::memory::MemoryService;
use raftwood_kv::service::{
    KvService, MemberRole, MetricsSnapshot, PeerProgress, Role, ServiceError, Status,
};

#[tokio::test]
async fn native_put_get_delete_with_etags() {
    let server = Server::memory().await;
    let put = server.send(Method::PUT, "/v1/kv/k", "one").await;
    assert_eq!(put.status, StatusCode::NO_CONTENT);
    let first = put.etag().to_owned();
    assert!(
        first.starts_with('"') && first.ends_with('"'),
        "strong ETag: {first}"
    );
    let revision: u64 = first.trim_matches('"').parse().unwrap();

    let get = server.send(Method::GET, "/v1/kv/k", "").await;
    assert_eq!(get.status, StatusCode::OK);
    assert_eq!(get.body, "one");
    assert_eq!(get.etag(), first);

    let second = server.send(Method::PUT, "/v1/kv/k", "two").await;
    let next: u64 = second.etag().trim_matches('"').parse().unwrap();
    assert!(next > revision, "revisions of a key only grow");

    assert_eq!(
        server.send(Method::DELETE, "/v1/kv/k", "").await.status,
        StatusCode::NO_CONTENT
    );
    let get = server.send(Method::GET, "/v1/kv/k", "").await;
    assert_eq!(get.status, StatusCode::NOT_FOUND);
    get.error();
    // Deleting a missing key is still a success.
    assert_eq!(
        server.send(Method::DELETE, "/v1/kv/k", "").await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn if_match_puts_only_at_the_given_revision() {
    let server = Server::memory().await;
    // A missing key never matches.
    let missing = server
        .send_with(Method::PUT, "/v1/kv/cas", &[("if-match", "\"1\"")], "x")
        .await;
    assert_eq!(missing.status, StatusCode::PRECONDITION_FAILED);
    assert!(missing.error().contains("does not exist"));

    let put = server.send(Method::PUT, "/v1/kv/cas", "a").await;
    let etag = put.etag().to_owned();
    let revision: u64 = etag.trim_matches('"').parse().unwrap();
    let stale = format!("\"{}\"", revision + 100);
    let mismatch = server
        .send_with(Method::PUT, "/v1/kv/cas", &[("if-match", &stale)], "b")
        .await;
    assert_eq!(mismatch.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(mismatch.etag(), etag, "a 412 carries the current revision");
    mismatch.error();
    assert_eq!(server.send(Method::GET, "/v1/kv/cas", "").await.body, "a");

    let matched = server
        .send_with(Method::PUT, "/v1/kv/cas", &[("if-match", &etag)], "c")
        .await;
    assert_eq!(matched.status, StatusCode::NO_CONTENT);
    assert_ne!(matched.etag(), etag);
    assert_eq!(server.send(Method::GET, "/v1/kv/cas", "").await.body, "c");

    let bad = server
        .send_with(Method::PUT, "/v1/kv/cas", &[("if-match", "W/\"1\"")], "d")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.error().contains("If-Match"));
}

#[tokio::test]
async fn consistency_parameter_picks_the_read_path() {
    let service = Arc::new(MemoryService::new(1, "http://127.0.0.1:12379"));
    let server = Server::start(Arc::clone(&service), HttpConfig::default()).await;
    server.send(Method::PUT, "/v1/kv/r", "v").await;
    let get = server
        .send(Method::GET, "/v1/kv/r?consistency=serializable", "")
        .await;
    assert_eq!(get.status, StatusCode::OK);
    assert_eq!(get.body, "v");
    server
        .send(Method::GET, "/v1/kv/r?consistency=linearizable", "")
        .await;
    server.send(Method::GET, "/v1/kv/r", "").await;
    let metrics = service.metrics().await;
    assert_eq!(metrics.serializable_reads, 1);
    assert_eq!(metrics.linearizable_reads, 2);

    let bad = server
        .send(Method::GET, "/v1/kv/r?consistency=eventual", "")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.error().contains("serializable"));
}

#[tokio::test]
async fn status_has_the_contract_fields() {
    let server = Server::start(canned(ServiceError::NoLeader), HttpConfig::default()).await;
    let status = server.send(Method::GET, "/v1/status", "").await;
    assert_eq!(status.status, StatusCode::OK);
    assert_eq!(status.headers["content-type"], "application/json");
    assert_eq!(
        status.json(),
        serde_json::json!({
            "id": 2, "term": 7, "commit_index": 40, "applied_index": 39, "last_index": 41,
            "snapshot_index": 30, "role": "pre-candidate", "leader": null,
        })
    );
}

#[tokio::test]
async fn status_on_the_leader_has_per_peer_progress() {
    let service = Arc::new(Canned {
        status: Status {
            role: Role::Leader,
            leader: Some(2),
            progress: vec![
                PeerProgress {
                    id: 1,
                    match_index: 41,
                    next_index: 42,
                },
                PeerProgress {
                    id: 3,
                    match_index: 12,
                    next_index: 13,
                },
            ],
            ..follower_status()
        },
        metrics: MetricsSnapshot::default(),
        error: ServiceError::NoLeader,
    });
    let server = Server::start(service, HttpConfig::default()).await;
    let json = server.send(Method::GET, "/v1/status", "").await.json();
    assert_eq!(json["role"], "leader");
    assert_eq!(json["leader"], 2);
    assert_eq!(
        json["progress"],
        serde_json::json!([
            {"id": 1, "match_index": 41, "next_index": 42},
            {"id": 3, "match_index": 12, "next_index": 13},
        ])
    );
}

#[tokio::test]
async fn every_role_is_spelled_as_the_contract_says() {
    for (role, text) in [
        (Role::Follower, "follower"),
        (Role::PreCandidate, "pre-candidate"),
        (Role::Candidate, "candidate"),
        (Role::Leader, "leader"),
    ] {
        assert_eq!(serde_json::to_value(role).unwrap(), text);
    }
    assert_eq!(
        serde_json::to_value(MemberRole::Learner).unwrap(),
        "learner"
    );
}

#[tokio::test]
async fn service_errors_map_to_status_codes_with_json_bodies() {
    for (error, status) in [
        (ServiceError::NoLeader, StatusCode::SERVICE_UNAVAILABLE),
        (
            ServiceError::Unavailable("shutting down".into()),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        (ServiceError::Timeout, StatusCode::SERVICE_UNAVAILABLE),
        (ServiceError::Removed, StatusCode::SERVICE_UNAVAILABLE),
        (
            ServiceError::NotFound("no member with id 9".into()),
            StatusCode::NOT_FOUND,
        ),
        (
            ServiceError::BadRequest("member 2 already exists".into()),
            StatusCode::BAD_REQUEST,
        ),
        (
            ServiceError::Internal("disk on fire".into()),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        (
            ServiceError::PreconditionFailed { current: Some(4) },
            StatusCode::PRECONDITION_FAILED,
        ),
    ] {
        let server = Server::start(canned(error.clone()), HttpConfig::default()).await;
        for (method, path, body) in [
            (Method::PUT, "/k", "v"),
            (Method::GET, "/k", ""),
            (Method::POST, "/4", "http://127.0.0.1:42379"),
            (Method::DELETE, "/4", ""),
            (Method::PUT, "/v1/kv/k", "v"),
            (Method::GET, "/v1/kv/k", ""),
            (Method::DELETE, "/v1/kv/k", ""),
        ] {
            let answer = server.send(method.clone(), path, body).await;
            assert_eq!(answer.status, status, "{error:?} on {method} {path}");
            assert_eq!(answer.error(), error.to_string());
        }
    }
}

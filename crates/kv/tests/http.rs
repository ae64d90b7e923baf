//! The HTTP API against in-process services, over real sockets on 127.0.0.1 (port 0): every
//! route and status code of the contract's HTTP sections.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use raftwood_kv::http::{HttpConfig, serve_on};
use raftwood_kv::service::memory::MemoryService;
use raftwood_kv::service::{
    Consistency, Histogram, KvService, Member, MemberRole, MetricsSnapshot, PeerMetrics,
    PeerProgress, Role, ServiceError, Status, Versioned,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};

/// Bound on every wait in these tests.
const WAIT: Duration = Duration::from_secs(20);

/// A server on an OS-assigned port; stops when dropped.
struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start<S: KvService>(service: Arc<S>, config: HttpConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve_on(listener, &config, service, async {
                let _ = stopped.await;
            })
            .await
        });
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn memory() -> Self {
        Self::start(
            Arc::new(MemoryService::new(1, "http://127.0.0.1:12379")),
            HttpConfig::default(),
        )
        .await
    }

    async fn send(&self, method: Method, path: &str, body: impl Into<Bytes>) -> Answer {
        self.send_with(method, path, &[], body).await
    }

    async fn send_with(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Answer {
        tokio::time::timeout(WAIT, send(self.addr, method, path, headers, body.into()))
            .await
            .expect("request did not finish in time")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A response, read whole.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    /// The `error` field of a JSON error body, checking the body's shape on the way.
    fn error(&self) -> String {
        assert_eq!(
            self.headers["content-type"], "application/json",
            "error bodies are JSON: {self:?}"
        );
        let json: serde_json::Value = serde_json::from_slice(&self.body).unwrap();
        let object = json.as_object().unwrap();
        assert_eq!(object.len(), 1, "{json}");
        let message = object["error"].as_str().unwrap().to_owned();
        assert!(!message.is_empty());
        message
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn etag(&self) -> &str {
        self.headers["etag"].to_str().unwrap()
    }
}

/// One request on a fresh connection.
async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Answer {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = sender
        .send_request(request.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body,
    }
}

/// Writes raw bytes and reads until the server closes or answers one response.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = vec![0; 64 * 1024];
    let n = tokio::time::timeout(WAIT, stream.read(&mut out))
        .await
        .expect("no answer")
        .unwrap_or(0);
    String::from_utf8_lossy(&out[..n]).into_owned()
}

// ---------------------------------------------------------------- raftexample routes

#[tokio::test]
async fn raftexample_put_then_get_returns_the_value() {
    let server = Server::memory().await;
    let put = server.send(Method::PUT, "/my-key", "hello").await;
    assert_eq!(put.status, StatusCode::NO_CONTENT);
    assert!(put.body.is_empty());
    let get = server.send(Method::GET, "/my-key", "").await;
    assert_eq!(get.status, StatusCode::OK);
    assert_eq!(get.body, "hello");
}

#[tokio::test]
async fn raftexample_get_of_a_missing_key_is_404_json() {
    let server = Server::memory().await;
    let get = server.send(Method::GET, "/nothing-here", "").await;
    assert_eq!(get.status, StatusCode::NOT_FOUND);
    assert!(get.error().contains("nothing-here"));
}

#[tokio::test]
async fn keys_hold_slashes_and_are_percent_decoded_on_both_route_families() {
    let server = Server::memory().await;
    let put = server.send(Method::PUT, "/a/b%2Fc%20d", "v1").await;
    assert_eq!(put.status, StatusCode::NO_CONTENT);
    for path in [
        "/a/b/c%20d",
        "/a%2Fb%2Fc%20d",
        "/v1/kv/a/b/c%20d",
        "/v1/kv/a%2Fb/c%20d",
    ] {
        let get = server.send(Method::GET, path, "").await;
        assert_eq!(get.status, StatusCode::OK, "{path}");
        assert_eq!(get.body, "v1", "{path}");
    }
}

#[tokio::test]
async fn values_are_arbitrary_bytes() {
    let server = Server::memory().await;
    let value: Vec<u8> = (0..=255).collect();
    let put = server.send(Method::PUT, "/bin", value.clone()).await;
    assert_eq!(put.status, StatusCode::NO_CONTENT);
    assert_eq!(server.send(Method::GET, "/bin", "").await.body, value);
}

#[tokio::test]
async fn raftexample_keys_cannot_be_native_paths() {
    let server = Server::memory().await;
    // Spelled with escapes they reach the raftexample routes, which refuse them...
    for path in ["/v1%2Fkv%2Fa", "/metric%73"] {
        let put = server.send(Method::PUT, path, "x").await;
        assert_eq!(put.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(put.error().contains("/v1/kv/"), "{path}");
    }
    // ...and the native routes take them as ordinary keys.
    for path in ["/v1/kv/v1%2Fkv%2Fa", "/v1/kv/metrics"] {
        assert_eq!(
            server.send(Method::PUT, path, "x").await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(server.send(Method::GET, path, "").await.body, "x");
    }
}

#[tokio::test]
async fn empty_keys_are_400_json() {
    let server = Server::memory().await;
    for (method, path) in [
        (Method::PUT, "/"),
        (Method::GET, "/"),
        (Method::PUT, "/v1/kv/"),
        (Method::GET, "/v1/kv/"),
        (Method::DELETE, "/v1/kv/"),
    ] {
        let answer = server.send(method.clone(), path, "x").await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{method} {path}");
        assert!(answer.error().contains("empty key"), "{method} {path}");
    }
}

#[tokio::test]
async fn keys_that_are_not_utf8_are_400_json() {
    let server = Server::memory().await;
    let answer = server.send(Method::PUT, "/%FF%FE", "x").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.error().contains("UTF-8"));
}

#[tokio::test]
async fn members_are_added_listed_and_removed() {
    let server = Server::memory().await;
    let add = server
        .send(Method::POST, "/2", "http://127.0.0.1:22379")
        .await;
    assert_eq!(add.status, StatusCode::NO_CONTENT);
    let members = server.send(Method::GET, "/v1/members", "").await;
    assert_eq!(members.status, StatusCode::OK);
    assert_eq!(members.headers["content-type"], "application/json");
    assert_eq!(
        members.json(),
        serde_json::json!([
            {"id": 1, "url": "http://127.0.0.1:12379", "role": "voter"},
            {"id": 2, "url": "http://127.0.0.1:22379", "role": "voter"},
        ])
    );
    let again = server
        .send(Method::POST, "/2", "http://127.0.0.1:22379")
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.error().contains("already"));

    assert_eq!(
        server.send(Method::DELETE, "/2", "").await.status,
        StatusCode::NO_CONTENT
    );
    let gone = server.send(Method::DELETE, "/2", "").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(gone.error().contains("no member"));
}

#[tokio::test]
async fn bad_member_ids_and_urls_are_400_json() {
    let server = Server::memory().await;
    for (method, path, body) in [
        (Method::POST, "/abc", "http://127.0.0.1:22379"),
        (Method::POST, "/0", "http://127.0.0.1:22379"),
        (Method::POST, "/", "http://127.0.0.1:22379"),
        (Method::DELETE, "/-3", ""),
        (Method::DELETE, "/a/b", ""),
        (Method::POST, "/3", "not a url"),
        (Method::POST, "/3", "127.0.0.1:22379"),
        (Method::POST, "/3", ""),
        (Method::POST, "/3", "http://127.0.0.1"),
    ] {
        let answer = server.send(method.clone(), path, body).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{method} {path} {body:?}"
        );
        let error = answer.error();
        assert!(
            error.contains("bad member id") || error.contains("bad peer URL"),
            "{error}"
        );
    }
}

// ---------------------------------------------------------------- native routes

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

/// A service with canned answers: `status`, `metrics`, and `error` for every key and member
/// operation.
struct Canned {
    status: Status,
    metrics: MetricsSnapshot,
    error: ServiceError,
}

impl KvService for Canned {
    async fn put(&self, _: String, _: Bytes, _: Option<u64>) -> Result<u64, ServiceError> {
        Err(self.error.clone())
    }
    async fn delete(&self, _: String) -> Result<(), ServiceError> {
        Err(self.error.clone())
    }
    async fn get(&self, _: String, _: Consistency) -> Result<Option<Versioned>, ServiceError> {
        Err(self.error.clone())
    }
    async fn add_member(&self, _: u64, _: String) -> Result<(), ServiceError> {
        Err(self.error.clone())
    }
    async fn remove_member(&self, _: u64) -> Result<(), ServiceError> {
        Err(self.error.clone())
    }
    async fn members(&self) -> Result<Vec<Member>, ServiceError> {
        Ok(vec![Member {
            id: 3,
            url: "http://10.0.0.3:2380".into(),
            role: MemberRole::Learner,
        }])
    }
    async fn status(&self) -> Result<Status, ServiceError> {
        Ok(self.status.clone())
    }
    async fn metrics(&self) -> MetricsSnapshot {
        self.metrics.clone()
    }
}

fn follower_status() -> Status {
    Status {
        id: 2,
        term: 7,
        commit_index: 40,
        applied_index: 39,
        last_index: 41,
        snapshot_index: 30,
        role: Role::PreCandidate,
        leader: None,
        progress: Vec::new(),
    }
}

fn canned(error: ServiceError) -> Arc<Canned> {
    Arc::new(Canned {
        status: follower_status(),
        metrics: MetricsSnapshot::default(),
        error,
    })
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

// ---------------------------------------------------------------- limits and errors

#[tokio::test]
async fn values_over_the_limit_are_413_json_on_both_route_families() {
    let config = HttpConfig {
        max_value_bytes: 1000,
        ..HttpConfig::default()
    };
    let service = Arc::new(MemoryService::new(1, "http://127.0.0.1:12379"));
    let server = Server::start(Arc::clone(&service), config).await;
    for path in ["/big", "/v1/kv/big"] {
        let at_limit = server.send(Method::PUT, path, vec![b'x'; 1000]).await;
        assert_eq!(at_limit.status, StatusCode::NO_CONTENT, "{path}");
        let over = server.send(Method::PUT, path, vec![b'x'; 1001]).await;
        assert_eq!(over.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert!(over.error().contains("1000 bytes"), "{path}");
    }
    let over = server.send(Method::POST, "/5", vec![b'x'; 1001]).await;
    assert_eq!(over.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        service.metrics().await.proposals,
        2,
        "nothing over the limit was proposed"
    );
}

#[tokio::test]
async fn chunked_bodies_over_the_limit_are_413_json() {
    let config = HttpConfig {
        max_value_bytes: 1000,
        ..HttpConfig::default()
    };
    let server = Server::start(Arc::new(MemoryService::new(1, "http://h:1")), config).await;
    for path in ["/big", "/v1/kv/big"] {
        // No Content-Length: the limit must hold while the body streams in.
        let chunk = "x".repeat(600);
        let request = format!(
            "PUT {path} HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
        );
        let answer = raw(server.addr, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        assert!(
            answer.contains("{\"error\":\"value too large"),
            "{path}: {answer}"
        );
    }
}

#[tokio::test]
async fn the_default_limit_is_one_mebibyte() {
    let server = Server::memory().await;
    let at_limit = server
        .send(Method::PUT, "/v1/kv/m", vec![0u8; 1 << 20])
        .await;
    assert_eq!(at_limit.status, StatusCode::NO_CONTENT);
    let over = server
        .send(Method::PUT, "/m", vec![0u8; (1 << 20) + 1])
        .await;
    assert_eq!(over.status, StatusCode::PAYLOAD_TOO_LARGE);
    over.error();
}

/// A service that never answers: the leader is gone and the node waits forever.
struct Stalled;

impl KvService for Stalled {
    fn put(
        &self,
        _: String,
        _: Bytes,
        _: Option<u64>,
    ) -> impl Future<Output = Result<u64, ServiceError>> + Send {
        std::future::pending()
    }
    fn delete(&self, _: String) -> impl Future<Output = Result<(), ServiceError>> + Send {
        std::future::pending()
    }
    fn get(
        &self,
        _: String,
        _: Consistency,
    ) -> impl Future<Output = Result<Option<Versioned>, ServiceError>> + Send {
        std::future::pending()
    }
    fn add_member(
        &self,
        _: u64,
        _: String,
    ) -> impl Future<Output = Result<(), ServiceError>> + Send {
        std::future::pending()
    }
    fn remove_member(&self, _: u64) -> impl Future<Output = Result<(), ServiceError>> + Send {
        std::future::pending()
    }
    fn members(&self) -> impl Future<Output = Result<Vec<Member>, ServiceError>> + Send {
        std::future::pending()
    }
    fn status(&self) -> impl Future<Output = Result<Status, ServiceError>> + Send {
        std::future::pending()
    }
    fn metrics(&self) -> impl Future<Output = MetricsSnapshot> + Send {
        std::future::pending()
    }
}

#[tokio::test]
async fn a_request_never_hangs_past_the_timeout_and_gets_503_json() {
    let timeout = Duration::from_millis(200);
    let config = HttpConfig {
        request_timeout: timeout,
        ..HttpConfig::default()
    };
    let server = Server::start(Arc::new(Stalled), config).await;
    for (method, path, body) in [
        (Method::PUT, "/k", "v"),
        (Method::GET, "/k", ""),
        (Method::POST, "/4", "http://127.0.0.1:42379"),
        (Method::DELETE, "/4", ""),
        (Method::PUT, "/v1/kv/k", "v"),
        (Method::GET, "/v1/kv/k?consistency=serializable", ""),
        (Method::DELETE, "/v1/kv/k", ""),
        (Method::GET, "/v1/status", ""),
        (Method::GET, "/v1/members", ""),
        (Method::GET, "/metrics", ""),
    ] {
        let started = Instant::now();
        let answer = server.send(method.clone(), path, body).await;
        let took = started.elapsed();
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {path}"
        );
        assert!(answer.error().contains("timed out"), "{method} {path}");
        assert!(
            took >= timeout && took < timeout * 10,
            "{method} {path} took {took:?}"
        );
    }
}

#[tokio::test]
async fn a_slow_body_is_cut_off_by_the_timeout_too() {
    let config = HttpConfig {
        request_timeout: Duration::from_millis(200),
        ..HttpConfig::default()
    };
    let server = Server::start(Arc::new(MemoryService::new(1, "http://h:1")), config).await;
    // Promises 10 bytes, sends 1, then waits.
    let answer = raw(
        server.addr,
        b"PUT /k HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\nx",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("timed out"), "{answer}");
}

#[tokio::test]
async fn unknown_routes_are_404_json() {
    let server = Server::memory().await;
    for (method, path) in [
        (Method::GET, "/v1/nope"),
        (Method::PUT, "/v1/nope/deeper"),
        (Method::POST, "/v1/nope"),
        (Method::DELETE, "/v1/nope"),
        (Method::GET, "/v1/kv"),
        (Method::GET, "/v1/status/extra"),
    ] {
        let answer = server.send(method.clone(), path, "").await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method} {path}");
        assert!(answer.error().contains("no route"), "{method} {path}");
    }
}

#[tokio::test]
async fn wrong_methods_are_405_json_with_allow() {
    let server = Server::memory().await;
    for (method, path, allowed) in [
        (Method::POST, "/v1/status", "GET"),
        (Method::PUT, "/metrics", "GET"),
        (Method::DELETE, "/v1/members", "GET"),
        (Method::POST, "/v1/kv/a", "PUT"),
        (Method::PATCH, "/a", "POST"),
    ] {
        let answer = server.send(method.clone(), path, "").await;
        assert_eq!(
            answer.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert!(answer.error().contains("not allowed"), "{method} {path}");
        let allow = answer.headers["allow"].to_str().unwrap();
        assert!(allow.contains(allowed), "{method} {path}: Allow: {allow}");
    }
}

#[tokio::test]
async fn garbage_on_the_port_does_not_stop_the_server() {
    let server = Server::memory().await;
    let mut garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    garbage.extend_from_slice(b"\r\n\r\n");
    let answer = raw(server.addr, &garbage).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    let answer = raw(server.addr, b"GET /\xff\xfe HTTP/9.9\r\n\r\n").await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
    // A connection closed mid-request.
    drop(TcpStream::connect(server.addr).await.unwrap());
    assert_eq!(
        server.send(Method::PUT, "/still", "here").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(server.send(Method::GET, "/still", "").await.body, "here");
}

/// Answers reads only once `expected` of them are in flight at the same time.
struct Gate {
    expected: usize,
    arrived: AtomicUsize,
    open: Notify,
}

impl KvService for Gate {
    async fn put(&self, _: String, _: Bytes, _: Option<u64>) -> Result<u64, ServiceError> {
        Err(ServiceError::NoLeader)
    }
    async fn delete(&self, _: String) -> Result<(), ServiceError> {
        Err(ServiceError::NoLeader)
    }
    async fn get(&self, key: String, _: Consistency) -> Result<Option<Versioned>, ServiceError> {
        let opened = self.open.notified();
        if self.arrived.fetch_add(1, Ordering::SeqCst) + 1 == self.expected {
            self.open.notify_waiters();
        } else {
            opened.await;
        }
        Ok(Some(Versioned {
            value: key.into(),
            revision: 1,
        }))
    }
    async fn add_member(&self, _: u64, _: String) -> Result<(), ServiceError> {
        Err(ServiceError::NoLeader)
    }
    async fn remove_member(&self, _: u64) -> Result<(), ServiceError> {
        Err(ServiceError::NoLeader)
    }
    async fn members(&self) -> Result<Vec<Member>, ServiceError> {
        Ok(Vec::new())
    }
    async fn status(&self) -> Result<Status, ServiceError> {
        Err(ServiceError::NoLeader)
    }
    async fn metrics(&self) -> MetricsSnapshot {
        MetricsSnapshot::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_are_served_at_once() {
    const CONNECTIONS: usize = 1000;
    let gate = Arc::new(Gate {
        expected: CONNECTIONS,
        arrived: AtomicUsize::new(0),
        open: Notify::new(),
    });
    let config = HttpConfig {
        request_timeout: WAIT,
        ..HttpConfig::default()
    };
    let server = Server::start(gate, config).await;
    let addr = server.addr;
    // No read answers before all 1000 are in flight, so all 1000 connections are open at once.
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            tokio::spawn(async move {
                send(addr, Method::GET, &format!("/key{i}"), &[], Bytes::new()).await
            })
        })
        .collect();
    let mut bodies = BTreeSet::new();
    for client in clients {
        let answer = tokio::time::timeout(WAIT, client)
            .await
            .expect("stuck")
            .unwrap();
        assert_eq!(answer.status, StatusCode::OK);
        bodies.insert(answer.body);
    }
    assert_eq!(bodies.len(), CONNECTIONS);
}

#[tokio::test]
async fn serve_returns_after_shutdown() {
    let mut server = Server::memory().await;
    assert_eq!(
        server.send(Method::PUT, "/a", "b").await.status,
        StatusCode::NO_CONTENT
    );
    server.stop.take().unwrap().send(()).unwrap();
    let result = tokio::time::timeout(WAIT, &mut server.task)
        .await
        .expect("did not stop");
    result.unwrap().unwrap();
    assert!(TcpStream::connect(server.addr).await.is_err());
}

// ---------------------------------------------------------------- metrics

/// Checks Prometheus text format 0.0.4 line by line: every sample belongs to a family declared
/// with `# TYPE` (counters and gauges by their exact name, histograms by `_bucket`, `_sum`,
/// `_count`), names and label sets are well-formed, values are numbers. Returns the samples.
fn parse_text_004(text: &str) -> BTreeMap<String, f64> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = BTreeMap::new();
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(valid_name(name), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "family declared twice: {line}"
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            assert!(valid_name(rest.split(' ').next().unwrap()), "{line}");
            continue;
        }
        assert!(
            !line.starts_with('#'),
            "0.0.4 has only HELP and TYPE comments: {line}"
        );
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let name = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').unwrap();
                for pair in labels.split(',') {
                    let (label, quoted) = pair.split_once('=').unwrap();
                    assert!(valid_name(label), "{line}");
                    assert!(
                        quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'),
                        "{line}"
                    );
                }
                name
            }
            None => series,
        };
        assert!(valid_name(name), "{line}");
        let family = [
            ("_bucket", "histogram"),
            ("_sum", "histogram"),
            ("_count", "histogram"),
        ]
        .iter()
        .find_map(|(suffix, kind)| {
            let base = name.strip_suffix(suffix)?;
            (types.get(base).map(String::as_str) == Some(*kind)).then_some(base)
        })
        .unwrap_or(name);
        assert!(types.contains_key(family), "sample without a TYPE: {line}");
        samples.insert(series.to_owned(), value);
    }
    samples
}

fn busy_metrics() -> MetricsSnapshot {
    let mut snapshot = MetricsSnapshot {
        term: 5,
        commit_index: 120,
        applied_index: 118,
        leader_changes: 3,
        proposals: 900,
        proposals_per_ready_max: 64,
        linearizable_reads: 70,
        serializable_reads: 30,
        read_index_rounds: 9,
        snapshots: 2,
        snapshot_seconds_total: 0.25,
        peers: vec![
            PeerMetrics {
                id: 2,
                messages_sent: 400,
                messages_dropped: 1,
            },
            PeerMetrics {
                id: 3,
                messages_sent: 380,
                messages_dropped: 0,
            },
        ],
        ..MetricsSnapshot::default()
    };
    for batch in [1.0, 3.0, 64.0] {
        snapshot.proposals_per_ready.observe(batch);
    }
    snapshot.wal_sync_seconds = Histogram::new(&[0.001, 0.01]);
    for seconds in [0.0005, 0.002, 0.002, 0.5] {
        snapshot.wal_sync_seconds.observe(seconds);
    }
    snapshot
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_every_family() {
    let service = Arc::new(Canned {
        status: follower_status(),
        metrics: busy_metrics(),
        error: ServiceError::NoLeader,
    });
    let server = Server::start(service, HttpConfig::default()).await;
    let answer = server.send(Method::GET, "/metrics", "").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = std::str::from_utf8(&answer.body).unwrap();
    let samples = parse_text_004(text);
    for (series, value) in [
        ("raftwood_term", 5.0),
        ("raftwood_commit_index", 120.0),
        ("raftwood_applied_index", 118.0),
        ("raftwood_leader_changes_total", 3.0),
        ("raftwood_proposals_total", 900.0),
        ("raftwood_proposals_per_ready_count", 3.0),
        ("raftwood_proposals_per_ready_sum", 68.0),
        ("raftwood_proposals_per_ready_bucket{le=\"4.0\"}", 2.0),
        ("raftwood_proposals_per_ready_max", 64.0),
        ("raftwood_reads_total{consistency=\"linearizable\"}", 70.0),
        ("raftwood_reads_total{consistency=\"serializable\"}", 30.0),
        ("raftwood_read_index_rounds_total", 9.0),
        (
            "raftwood_wal_sync_duration_seconds_bucket{le=\"0.001\"}",
            1.0,
        ),
        (
            "raftwood_wal_sync_duration_seconds_bucket{le=\"0.01\"}",
            3.0,
        ),
        (
            "raftwood_wal_sync_duration_seconds_bucket{le=\"+Inf\"}",
            4.0,
        ),
        ("raftwood_wal_sync_duration_seconds_count", 4.0),
        ("raftwood_snapshots_total", 2.0),
        ("raftwood_snapshot_duration_seconds_total", 0.25),
        ("raftwood_messages_sent_total{peer=\"2\"}", 400.0),
        ("raftwood_messages_sent_total{peer=\"3\"}", 380.0),
        ("raftwood_messages_dropped_total{peer=\"2\"}", 1.0),
    ] {
        let found = samples
            .get(series)
            .unwrap_or_else(|| panic!("{series} missing from:\n{text}"));
        assert!(
            (found - value).abs() < 1e-9,
            "{series} = {found}, want {value}"
        );
    }
    let sum = samples["raftwood_wal_sync_duration_seconds_sum"];
    assert!((sum - 0.5045).abs() < 1e-9, "{sum}");
}

#[tokio::test]
async fn metrics_are_openmetrics_when_asked() {
    let service = Arc::new(Canned {
        status: follower_status(),
        metrics: busy_metrics(),
        error: ServiceError::NoLeader,
    });
    let server = Server::start(service, HttpConfig::default()).await;
    let accept =
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let answer = server
        .send_with(Method::GET, "/metrics", &[("accept", accept)], "")
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.headers["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = std::str::from_utf8(&answer.body).unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("# TYPE raftwood_proposals counter\n"),
        "{text}"
    );
    assert!(text.contains("\nraftwood_proposals_total 900\n"), "{text}");
}

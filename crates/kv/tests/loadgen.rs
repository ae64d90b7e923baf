//! The load tool against a tiny in-test HTTP server (axum on 127.0.0.1:0) with an in-memory
//! map: the requests the tool reports are the requests the server saw, percentiles are ordered,
//! and the server's 503s show up as errors by status.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::put;
use parking_lot::Mutex;
use raftwood_kv::loadgen::{BenchError, BenchOptions, BenchReport, Consistency, run};

/// What the server saw.
#[derive(Default)]
struct Server {
    map: Mutex<HashMap<String, Bytes>>,
    puts: AtomicU64,
    gets: AtomicU64,
    serializable_gets: AtomicU64,
    /// Answer every second GET with 503 (deterministic, so both sides can be counted).
    fail_every_other_get: bool,
    /// Answer the first this-many PUTs with 503, as a cluster without a leader yet would.
    fail_first_puts: u64,
    unavailable: AtomicU64,
}

async fn put_key(
    State(server): State<Arc<Server>>,
    Path(key): Path<String>,
    body: Bytes,
) -> StatusCode {
    let n = server.puts.fetch_add(1, Ordering::Relaxed);
    if n < server.fail_first_puts {
        server.unavailable.fetch_add(1, Ordering::Relaxed);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    server.map.lock().insert(key, body);
    StatusCode::NO_CONTENT
}

async fn get_key(
    State(server): State<Arc<Server>>,
    Path(key): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Bytes, StatusCode> {
    let n = server.gets.fetch_add(1, Ordering::Relaxed);
    if query.get("consistency").map(String::as_str) == Some("serializable") {
        server.serializable_gets.fetch_add(1, Ordering::Relaxed);
    }
    if server.fail_every_other_get && n % 2 == 1 {
        server.unavailable.fetch_add(1, Ordering::Relaxed);
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    server
        .map
        .lock()
        .get(&key)
        .cloned()
        .ok_or(StatusCode::NOT_FOUND)
}

async fn serve(server: Server) -> (Arc<Server>, SocketAddr) {
    let server = Arc::new(server);
    let app = Router::new()
        .route("/v1/kv/{key}", put(put_key).get(get_key))
        .with_state(Arc::clone(&server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (server, addr)
}

fn options(addrs: &[SocketAddr], duration: Duration) -> BenchOptions {
    BenchOptions {
        urls: addrs.iter().map(|a| format!("http://{a}")).collect(),
        clients: 4,
        duration,
        keys: 50,
        value_size: 64,
        ..BenchOptions::default()
    }
}

/// Runs with a bound, so a hung tool fails the test instead of hanging it.
async fn bounded_run(options: BenchOptions) -> Result<BenchReport, BenchError> {
    tokio::time::timeout(Duration::from_secs(30), run(options))
        .await
        .expect("the load tool finished within 30 s")
}

fn assert_ordered(report: &BenchReport) {
    for kind in [&report.put, &report.get] {
        let l = kind.latency;
        assert!(l.p50_us > 0, "{l:?}");
        assert!(
            l.p50_us <= l.p99_us && l.p99_us <= l.p999_us && l.p999_us <= l.max_us,
            "{l:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reported_requests_are_the_requests_the_server_saw() {
    let (server, addr) = serve(Server::default()).await;
    let mut opts = options(&[addr], Duration::from_secs(1));
    opts.consistency = Consistency::Serializable;
    let report = bounded_run(opts).await.unwrap();

    assert_eq!(report.warmup_puts, 50);
    assert!(report.put.ok > 0 && report.get.ok > 0, "{report}");
    assert_eq!(server.puts.load(Ordering::Relaxed), 50 + report.put.ok);
    assert_eq!(server.gets.load(Ordering::Relaxed), report.get.ok);
    assert_eq!(
        server.serializable_gets.load(Ordering::Relaxed),
        report.get.ok
    );
    assert_eq!(report.total.ok, report.put.ok + report.get.ok);
    assert_eq!(report.total.errors, 0, "{report}");
    // The warm-up wrote every key, so no GET missed.
    assert_eq!(report.get.not_found, 0);
    assert!(server.map.lock().values().all(|v| v.len() == 64));
    assert!(report.elapsed_secs >= 1.0 && report.elapsed_secs < 10.0);
    assert_ordered(&report);

    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["put"]["ok"], report.put.ok);
    assert_eq!(json["consistency"], "serializable");
    assert!(json["get"]["latency"]["p999_us"].is_u64());
    let table = report.to_string();
    assert!(table.contains("PUT") && table.contains("GET") && table.contains("p99.9"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_counted_by_status() {
    let (server, addr) = serve(Server {
        fail_every_other_get: true,
        ..Server::default()
    })
    .await;
    let report = bounded_run(options(&[addr], Duration::from_millis(700)))
        .await
        .unwrap();

    let unavailable = server.unavailable.load(Ordering::Relaxed);
    assert!(unavailable > 0);
    assert_eq!(report.get.errors_by_cause.get("503"), Some(&unavailable));
    assert_eq!(report.get.errors, unavailable);
    assert_eq!(report.total.errors, unavailable);
    assert_eq!(
        report.get.ok + unavailable,
        server.gets.load(Ordering::Relaxed)
    );
    assert_eq!(report.put.errors, 0);
    assert!(report.to_string().contains("GET 503"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_spread_over_every_url_and_linearizable_gets_carry_no_query() {
    let (a, addr_a) = serve(Server::default()).await;
    let (b, addr_b) = serve(Server::default()).await;
    let report = bounded_run(options(&[addr_a, addr_b], Duration::from_millis(500)))
        .await
        .unwrap();

    for server in [&a, &b] {
        assert!(server.gets.load(Ordering::Relaxed) > 0);
        assert!(server.puts.load(Ordering::Relaxed) > 0);
        assert_eq!(server.serializable_gets.load(Ordering::Relaxed), 0);
    }
    let seen = |s: &Server| s.puts.load(Ordering::Relaxed) + s.gets.load(Ordering::Relaxed);
    assert_eq!(
        seen(&a) + seen(&b),
        report.warmup_puts + report.total.ok + report.total.errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warm_up_retries_a_node_without_a_leader_yet() {
    let (server, addr) = serve(Server {
        fail_first_puts: 3,
        ..Server::default()
    })
    .await;
    let report = bounded_run(options(&[addr], Duration::from_millis(300)))
        .await
        .unwrap();
    assert_eq!(report.warmup_puts, 50);
    assert_eq!(server.unavailable.load(Ordering::Relaxed), 3);
    assert_eq!(server.puts.load(Ordering::Relaxed), 3 + 50 + report.put.ok);
    assert_eq!(report.get.not_found, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_keeps_failing_fails_the_warm_up() {
    let (server, addr) = serve(Server {
        fail_first_puts: u64::MAX,
        ..Server::default()
    })
    .await;
    let mut opts = options(&[addr], Duration::from_millis(300));
    opts.clients = 1;
    let err = bounded_run(opts).await.unwrap_err();
    assert!(
        matches!(&err, BenchError::Warmup { reason, .. } if reason.contains("503")),
        "{err}"
    );
    // One key, every attempt made, then the run stopped.
    assert_eq!(server.puts.load(Ordering::Relaxed), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_fails_the_warm_up() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = bounded_run(options(&[addr], Duration::from_millis(200)))
        .await
        .unwrap_err();
    assert!(matches!(err, BenchError::Warmup { .. }), "{err}");
}

#[tokio::test]
async fn options_that_make_no_run_are_refused() {
    let base = options(&["127.0.0.1:1".parse().unwrap()], Duration::from_secs(1));
    for bad in [
        BenchOptions {
            clients: 0,
            ..base.clone()
        },
        BenchOptions {
            keys: 0,
            ..base.clone()
        },
        BenchOptions {
            urls: vec![],
            ..base.clone()
        },
    ] {
        assert!(matches!(run(bad).await, Err(BenchError::InvalidOptions(_))));
    }
    for url in ["https://127.0.0.1:1", "http://127.0.0.1:1/v1", "not a url"] {
        let bad = BenchOptions {
            urls: vec![url.to_owned()],
            ..base.clone()
        };
        assert!(
            matches!(run(bad).await, Err(BenchError::BadUrl { .. })),
            "{url}"
        );
    }
}

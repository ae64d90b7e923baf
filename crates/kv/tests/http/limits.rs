//! Limits and protocol errors: 413, the request timeout's 503, slow headers, 404 and 405, garbage
//! bytes, 1,000 connections, shutdown.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use crate::client::*;
use crate::services::*;
use bytes::Bytes;
use hyper::{Method, StatusCode};
use raftwood_kv::http::HttpConfig;
use raftwood_kv::service::KvService;
use raftwood_kv::service::memory::MemoryService;
use tokio::net::TcpStream;
use tokio::sync::Notify;

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
async fn slow_headers_are_cut_off_by_the_timeout_too() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = HttpConfig {
        request_timeout: Duration::from_millis(200),
        ..HttpConfig::default()
    };
    let server = Server::start(Arc::new(MemoryService::new(1, "http://h:1")), config).await;
    // Half a request line, then nothing: the request timeout (a middleware) never starts, so
    // only a header-read timeout closes the connection.
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /k HTTP/1.1\r\nhost: t\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the connection was held for 5 s");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "closed after {:?}",
        started.elapsed()
    );
    // The server keeps serving others.
    let answer = server.send(Method::GET, "/v1/status", Vec::new()).await;
    assert_eq!(answer.status, StatusCode::OK);
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

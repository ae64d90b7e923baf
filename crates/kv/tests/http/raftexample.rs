//! raftexample's routes: `PUT`/`GET /{key}`, `POST`/`DELETE /{id}`.

use crate::client::*;
use hyper::{Method, StatusCode};

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

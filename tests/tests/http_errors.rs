//! The contract's HTTP answers on a single node: limits, malformed requests, unknown routes,
//! wrong methods, compare-and-set with `If-Match`, and the JSON of every error body.

#![allow(clippy::unwrap_used)]

use raftwood_tests::{Cluster, Options, Response};

/// The value limit this file's nodes run with (`--max-value-bytes`).
const LIMIT: usize = 1024;

fn small_limit() -> Cluster {
    Cluster::start_with(
        1,
        Options {
            extra_args: vec!["--max-value-bytes".into(), LIMIT.to_string()],
            ..Options::default()
        },
    )
}

/// An error answer: the status, and a JSON body `{"error": "..."}` with a non-empty message.
fn assert_error(r: &Response, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    assert!(
        r.error_message().is_some(),
        "{what}: the body is not {{\"error\": \"...\"}}: {:?}",
        r.text()
    );
}

#[test]
fn value_over_the_limit_is_413_on_both_route_families() {
    let mut cluster = small_limit();
    let at_limit = vec![b'x'; LIMIT];
    let over = vec![b'x'; LIMIT + 1];
    assert_eq!(
        cluster.put(1, "k", &at_limit).status,
        204,
        "a value of exactly the limit"
    );
    assert_error(&cluster.put(1, "k", &over), 413, "PUT /k over the limit");
    assert_eq!(cluster.put_v1(1, "k", &at_limit, &[]).status, 204);
    assert_error(
        &cluster.put_v1(1, "k", &over, &[]),
        413,
        "PUT /v1/kv/k over the limit",
    );
    // Nothing over the limit was stored.
    assert_eq!(cluster.get_ok(1, "k"), Some(at_limit));
}

#[test]
fn default_limit_is_one_mebibyte() {
    let mut cluster = Cluster::start(1);
    let at_limit = vec![7u8; 1 << 20];
    let over = vec![7u8; (1 << 20) + 1];
    assert_eq!(cluster.put(1, "big", &at_limit).status, 204);
    assert_error(&cluster.put(1, "big", &over), 413, "PUT /big of 1 MiB + 1");
    assert_error(
        &cluster.put_v1(1, "big", &over, &[]),
        413,
        "PUT /v1/kv/big of 1 MiB + 1",
    );
    assert_eq!(cluster.get_ok(1, "big").map(|v| v.len()), Some(1 << 20));
}

#[test]
fn empty_keys_and_bad_members_are_400() {
    let cluster = small_limit();
    for (method, path, body) in [
        ("PUT", "/", &b"v"[..]),
        ("PUT", "/v1/kv/", b"v"),
        ("GET", "/v1/kv/", b""),
        ("DELETE", "/v1/kv/", b""),
        // Bad member id, bad member URL.
        ("POST", "/not-a-number", b"http://127.0.0.1:1"),
        ("POST", "/0", b"http://127.0.0.1:1"),
        ("POST", "/7", b"not a url"),
        ("DELETE", "/not-a-number", b""),
    ] {
        let r = cluster.request(1, method, path, &[], body).unwrap();
        assert_error(&r, 400, &format!("{method} {path}"));
    }
}

#[test]
fn unknown_routes_are_404_with_a_json_error() {
    let cluster = small_limit();
    for path in ["/v1/nope", "/v1/status/extra", "/v1/members/1/x", "/v1"] {
        let r = cluster.request(1, "GET", path, &[], b"").unwrap();
        assert_error(&r, 404, &format!("GET {path}"));
    }
    // A missing key is a 404 too, with the same kind of body.
    assert_error(
        &cluster.get_v1(1, "never-written", false),
        404,
        "GET /v1/kv/never-written",
    );
    assert_error(&cluster.get(1, "never-written"), 404, "GET /never-written");
}

#[test]
fn wrong_methods_are_405() {
    let cluster = small_limit();
    for (method, path) in [
        ("POST", "/v1/status"),
        ("PUT", "/v1/status"),
        ("DELETE", "/v1/members"),
        ("POST", "/v1/kv/k"),
        ("PATCH", "/my-key"),
        ("PUT", "/metrics"),
    ] {
        let r = cluster.request(1, method, path, &[], b"x").unwrap();
        assert_error(&r, 405, &format!("{method} {path}"));
    }
}

fn etag(r: &Response) -> u64 {
    let tag = r
        .header("etag")
        .unwrap_or_else(|| panic!("no ETag on a {} answer", r.status));
    let digits = tag
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or_else(|| panic!("ETag {tag:?} is not a strong, quoted tag"));
    digits
        .parse()
        .unwrap_or_else(|_| panic!("ETag {tag:?} is not a decimal revision"))
}

#[test]
fn if_match_is_compare_and_set_on_the_revision() {
    let mut cluster = small_limit();
    // If-Match on a key that does not exist: 412.
    let r = cluster.put_v1(1, "cas", b"v0", &[("If-Match", "\"1\"")]);
    assert_error(&r, 412, "If-Match on a missing key");
    let first = cluster.put_v1(1, "cas", b"v1", &[]);
    assert_eq!(first.status, 204, "{}", first.text());
    let rev1 = etag(&first);
    let stale = format!("\"{}\"", rev1 + 1000);
    assert_error(
        &cluster.put_v1(1, "cas", b"lost", &[("If-Match", &stale)]),
        412,
        "If-Match mismatch",
    );
    assert_eq!(
        cluster.get_ok(1, "cas").as_deref(),
        Some(&b"v1"[..]),
        "a failed CAS writes nothing"
    );
    let current = format!("\"{rev1}\"");
    let second = cluster.put_v1(1, "cas", b"v2", &[("If-Match", &current)]);
    assert_eq!(
        second.status,
        204,
        "If-Match with the current revision: {}",
        second.text()
    );
    let rev2 = etag(&second);
    assert!(rev2 > rev1, "revisions only grow: {rev1} then {rev2}");
    // The old revision no longer matches.
    assert_error(
        &cluster.put_v1(1, "cas", b"v3", &[("If-Match", &current)]),
        412,
        "reused revision",
    );
    assert_eq!(cluster.get_ok(1, "cas").as_deref(), Some(&b"v2"[..]));
}

#[test]
fn delete_and_keys_with_slashes_share_one_keyspace() {
    let mut cluster = small_limit();
    cluster.put_ok(1, "dir/sub key", b"spaced");
    let r = cluster.get_v1(1, "dir/sub key", false);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"spaced"[..]),
        "{}",
        r.text()
    );
    let r = cluster.get_v1(1, "dir/sub key", true);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"spaced"[..]),
        "serializable: {}",
        r.text()
    );
    assert_eq!(cluster.delete_v1(1, "dir/sub key").status, 204);
    assert_eq!(cluster.get_ok(1, "dir/sub key"), None);
    // Keys under v1/ only through the native routes.
    assert_eq!(cluster.put_v1(1, "v1/status", b"native", &[]).status, 204);
    assert_eq!(cluster.get_v1(1, "v1/status", false).body, b"native");
}

#[test]
fn status_members_and_metrics_answer_per_the_contract() {
    let mut cluster = small_limit();
    let status = cluster.status(1).unwrap();
    for field in [
        "id",
        "term",
        "commit_index",
        "applied_index",
        "last_index",
        "snapshot_index",
    ] {
        assert!(
            status[field].is_u64(),
            "status.{field} is not an integer: {status}"
        );
    }
    assert_eq!(status["id"], 1);
    assert_eq!(status["role"], "leader", "{status}");
    assert_eq!(status["leader"], 1, "{status}");
    let members = cluster.members(1);
    let list = members
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {members}"));
    assert_eq!(list.len(), 1, "{members}");
    assert_eq!(list[0]["id"], 1, "{members}");
    assert_eq!(list[0]["url"], cluster.peer_url(1).as_str(), "{members}");
    assert_eq!(list[0]["role"], "voter", "{members}");
    let metrics = cluster.request(1, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(metrics.status, 200);
    assert!(metrics.text().contains("# TYPE"), "{}", metrics.text());
}

//! `GET /metrics`: Prometheus text 0.0.4 by default, OpenMetrics when asked.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::client::*;
use crate::services::*;
use hyper::{Method, StatusCode};
use raftwood_kv::http::HttpConfig;
use raftwood_kv::service::{Histogram, MetricsSnapshot, PeerMetrics, ServiceError};

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

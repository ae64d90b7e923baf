//! `GET /metrics`: the node's [`MetricsSnapshot`] in Prometheus' text format.
//!
//! At each scrape the handler asks the service for one snapshot and encodes it through a
//! prometheus-client [`Collector`], so the node never holds a registry and a scrape shows one
//! consistent set of numbers. prometheus-client writes OpenMetrics; for a client that does not ask
//! for OpenMetrics (curl, older Prometheus) the text is turned into format 0.0.4: no `# EOF`, and
//! a counter's `# HELP`/`# TYPE` name carries the `_total` its samples have.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::{ApiError, AppState};
use crate::service::{Histogram, KvService, MetricsSnapshot};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT_004: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Counter families, named without the `_total` their samples get.
const COUNTERS: &[&str] = &[
    "raftwood_leader_changes",
    "raftwood_proposals",
    "raftwood_reads",
    "raftwood_read_index_rounds",
    "raftwood_snapshots",
    "raftwood_snapshot_duration_seconds",
    "raftwood_messages_sent",
    "raftwood_messages_dropped",
];

/// `GET /metrics`.
pub(super) async fn scrape<S: KvService>(
    State(state): State<AppState<S>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let snapshot = state.service.metrics().await;
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(prefers_openmetrics);
    let (body, content_type) = encode(snapshot, openmetrics).map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "could not encode the metrics",
        )
    })?;
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response())
}

/// Encodes one snapshot as OpenMetrics, or as text format 0.0.4; returns the body and its
/// content type.
fn encode(
    snapshot: MetricsSnapshot,
    openmetrics: bool,
) -> Result<(String, &'static str), std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotCollector(snapshot)));
    let mut text = String::new();
    if openmetrics {
        prometheus_client::encoding::text::encode(&mut text, &registry)?;
        Ok((text, OPENMETRICS))
    } else {
        prometheus_client::encoding::text::encode_registry(&mut text, &registry)?;
        Ok((to_text_004(&text), TEXT_004))
    }
}

/// Whether the `Accept` header ranks OpenMetrics above Prometheus text (Prometheus itself sends
/// `application/openmetrics-text;version=1.0.0,...,text/plain;version=0.0.4;q=0.5,*/*;q=0.1`).
fn prefers_openmetrics(accept: &str) -> bool {
    let mut openmetrics_q = 0.0_f32;
    let mut text_q = 0.0_f32;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/openmetrics-text" => openmetrics_q = openmetrics_q.max(q),
            "text/plain" | "text/*" | "*/*" => text_q = text_q.max(q),
            _ => {}
        }
    }
    openmetrics_q > 0.0 && openmetrics_q >= text_q
}

/// OpenMetrics text to Prometheus text 0.0.4, for the families this module writes.
fn to_text_004(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len() + 64);
    for line in openmetrics.lines() {
        let comment = ["# HELP ", "# TYPE "]
            .into_iter()
            .find(|prefix| line.starts_with(prefix));
        match comment {
            Some(prefix) => {
                let rest = &line[prefix.len()..];
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                out.push_str(prefix);
                out.push_str(name);
                if COUNTERS.contains(&name) {
                    out.push_str("_total");
                }
                out.push(' ');
                out.push_str(tail);
            }
            None if line.starts_with('#') => continue, // # EOF, # UNIT: not in 0.0.4
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// One snapshot, encoded family by family.
#[derive(Debug)]
struct SnapshotCollector(MetricsSnapshot);

fn gauge(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> Fmt {
    let metric = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn counter(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> Fmt {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn histogram(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, h: &Histogram) -> Fmt {
    // prometheus-client writes `le="+Inf"` for an upper bound of f64::MAX.
    let buckets: Vec<(f64, u64)> = h
        .upper_bounds()
        .iter()
        .copied()
        .chain([f64::MAX])
        .zip(h.counts().iter().copied())
        .collect();
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    metric.encode_histogram::<NoLabelSet>(h.sum(), h.count(), &buckets, None)
}

/// One counter family with a label per member: `(label value, counter value)`.
fn labelled_counters(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    values: &[(String, u64)],
) -> Fmt {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (label_value, value) in values {
        let labels = [(label, label_value.as_str())];
        ConstCounter::new(*value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

type Fmt = Result<(), std::fmt::Error>;

impl Collector for SnapshotCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> Fmt {
        let s = &self.0;
        gauge(&mut e, "raftwood_term", "Current raft term.", s.term)?;
        gauge(
            &mut e,
            "raftwood_commit_index",
            "Highest log index known committed.",
            s.commit_index,
        )?;
        gauge(
            &mut e,
            "raftwood_applied_index",
            "Highest log index applied to the state machine.",
            s.applied_index,
        )?;
        counter(
            &mut e,
            "raftwood_leader_changes",
            "Leader changes seen by this node.",
            s.leader_changes,
        )?;
        counter(
            &mut e,
            "raftwood_proposals",
            "Proposals submitted to raft by this node.",
            s.proposals,
        )?;
        histogram(
            &mut e,
            "raftwood_proposals_per_ready",
            "Proposals carried by one Ready (one WAL sync, one append round).",
            &s.proposals_per_ready,
        )?;
        gauge(
            &mut e,
            "raftwood_proposals_per_ready_max",
            "Most proposals carried by one Ready.",
            s.proposals_per_ready_max,
        )?;
        let reads = [
            ("linearizable".to_owned(), s.linearizable_reads),
            ("serializable".to_owned(), s.serializable_reads),
        ];
        labelled_counters(
            &mut e,
            "raftwood_reads",
            "Reads served, by consistency.",
            "consistency",
            &reads,
        )?;
        counter(
            &mut e,
            "raftwood_read_index_rounds",
            "ReadIndex rounds run (concurrent reads share one).",
            s.read_index_rounds,
        )?;
        histogram(
            &mut e,
            "raftwood_wal_sync_duration_seconds",
            "Duration of one WAL sync.",
            &s.wal_sync_seconds,
        )?;
        counter(
            &mut e,
            "raftwood_snapshots",
            "Snapshots taken.",
            s.snapshots,
        )?;
        let metric = ConstCounter::new(s.snapshot_seconds_total);
        metric.encode(e.encode_descriptor(
            "raftwood_snapshot_duration_seconds",
            "Total time spent taking snapshots.",
            None,
            metric.metric_type(),
        )?)?;
        let per_peer = |f: fn(&crate::service::PeerMetrics) -> u64| -> Vec<(String, u64)> {
            s.peers.iter().map(|p| (p.id.to_string(), f(p))).collect()
        };
        labelled_counters(
            &mut e,
            "raftwood_messages_sent",
            "Raft messages sent, by peer.",
            "peer",
            &per_peer(|p| p.messages_sent),
        )?;
        labelled_counters(
            &mut e,
            "raftwood_messages_dropped",
            "Raft messages dropped, by peer.",
            "peer",
            &per_peer(|p| p.messages_dropped),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_scrape_header_prefers_openmetrics() {
        assert!(prefers_openmetrics(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ));
        assert!(!prefers_openmetrics("*/*"));
        assert!(!prefers_openmetrics("text/plain;version=0.0.4"));
        assert!(!prefers_openmetrics("application/openmetrics-text;q=0"));
    }

    #[test]
    fn text_004_names_counters_with_total_and_has_no_eof() {
        let snapshot = MetricsSnapshot {
            proposals: 7,
            ..MetricsSnapshot::default()
        };
        let (text, content_type) = encode(snapshot.clone(), false).unwrap();
        assert_eq!(content_type, TEXT_004);
        assert!(
            text.contains("# TYPE raftwood_proposals_total counter\nraftwood_proposals_total 7\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"));
        let (om, content_type) = encode(snapshot, true).unwrap();
        assert_eq!(content_type, OPENMETRICS);
        assert!(
            om.contains("# TYPE raftwood_proposals counter\nraftwood_proposals_total 7\n"),
            "{om}"
        );
        assert!(om.ends_with("# EOF\n"));
    }
}

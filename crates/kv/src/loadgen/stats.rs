//! What one client measured: per kind of operation, a latency histogram of the successful
//! requests and counts of the failed ones by cause. Each client keeps its own (no sharing on the
//! hot path); the run merges them at the end. Live totals for the progress line go through
//! [`Live`]'s relaxed atomics.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use hyper::StatusCode;

/// PUT or GET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Put,
    Get,
}

/// Latencies are recorded in microseconds, from 1 µs to 60 s, with 3 significant digits.
const HISTOGRAM_MAX_US: u64 = 60_000_000;

/// One kind's measurements.
#[derive(Debug, Clone)]
pub(crate) struct KindStats {
    /// Latency of every successful request, in microseconds.
    pub(crate) latency_us: Histogram<u64>,
    /// GETs answered 404 (counted as successes: a valid answer).
    pub(crate) not_found: u64,
    /// Failed requests by cause: an HTTP status (`"503"`) or `timeout`, `connect`, `io`, `client`.
    pub(crate) errors: BTreeMap<String, u64>,
}

impl KindStats {
    fn new() -> KindStats {
        let latency_us = match Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3) {
            Ok(h) => h,
            Err(e) => panic!("invariant violated: constant histogram bounds rejected: {e}"),
        };
        KindStats {
            latency_us,
            not_found: 0,
            errors: BTreeMap::new(),
        }
    }

    fn merge(&mut self, other: &KindStats) {
        // Same bounds on both sides, so adding cannot overflow the range.
        if let Err(e) = self.latency_us.add(&other.latency_us) {
            panic!("invariant violated: merging histograms with equal bounds failed: {e}");
        }
        self.not_found += other.not_found;
        for (cause, n) in &other.errors {
            *self.errors.entry(cause.clone()).or_default() += n;
        }
    }

    /// Successful requests.
    pub(crate) fn ok(&self) -> u64 {
        self.latency_us.len()
    }

    /// Failed requests.
    pub(crate) fn failed(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// One client's (or, merged, the whole run's) measurements.
#[derive(Debug, Clone)]
pub(crate) struct Stats {
    pub(crate) put: KindStats,
    pub(crate) get: KindStats,
}

impl Stats {
    pub(crate) fn new() -> Stats {
        Stats {
            put: KindStats::new(),
            get: KindStats::new(),
        }
    }

    fn kind(&mut self, kind: Kind) -> &mut KindStats {
        match kind {
            Kind::Put => &mut self.put,
            Kind::Get => &mut self.get,
        }
    }

    /// Records an answered request. A PUT succeeds with any 2xx; a GET with 200 or 404 (the key
    /// is absent: a correct answer, counted apart so a cold key space shows).
    pub(crate) fn answered(
        &mut self,
        kind: Kind,
        status: StatusCode,
        latency: Duration,
        live: &Live,
    ) {
        let stats = self.kind(kind);
        let ok = match kind {
            Kind::Put => status.is_success(),
            Kind::Get => status == StatusCode::OK || status == StatusCode::NOT_FOUND,
        };
        if !ok {
            stats.count_error(status.as_str());
            live.errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if status == StatusCode::NOT_FOUND {
            stats.not_found += 1;
        }
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        stats.latency_us.saturating_record(micros.max(1));
        live.ok.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a request that got no answer, by cause.
    pub(crate) fn failed(&mut self, kind: Kind, cause: &str, live: &Live) {
        self.kind(kind).count_error(cause);
        live.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn merge(&mut self, other: &Stats) {
        self.put.merge(&other.put);
        self.get.merge(&other.get);
    }
}

impl KindStats {
    fn count_error(&mut self, cause: &str) {
        *self.errors.entry(cause.to_owned()).or_default() += 1;
    }
}

/// Running totals for the progress line, shared by all clients.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub(crate) ok: AtomicU64,
    pub(crate) errors: AtomicU64,
}

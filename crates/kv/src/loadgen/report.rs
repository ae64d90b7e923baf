//! What a run measured, for people (the [`Display`](std::fmt::Display) table) and for scripts
//! ([`BenchReport::to_json`]). Throughput counts successful operations only; latencies are of
//! successful requests (a fast 503 would otherwise flatter them).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::options::{BenchOptions, Consistency};
use super::stats::{KindStats, Stats};

/// The result of one `raftwood bench` run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// The target URLs.
    pub urls: Vec<String>,
    /// Concurrent clients.
    pub clients: usize,
    /// Percentage of GETs.
    pub get_percent: u8,
    /// How GETs were served.
    pub consistency: Consistency,
    /// PUT value size in bytes.
    pub value_size: usize,
    /// Size of the key space.
    pub keys: u64,
    /// PUTs made by the warm-up (not measured).
    pub warmup_puts: u64,
    /// Measured time in seconds: from the start until the last in-flight request finished.
    pub elapsed_secs: f64,
    /// Both kinds together.
    pub total: TotalReport,
    /// PUT requests.
    pub put: KindReport,
    /// GET requests.
    pub get: KindReport,
}

/// Totals over both kinds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TotalReport {
    /// Successful operations.
    pub ok: u64,
    /// Failed requests.
    pub errors: u64,
    /// Successful operations per second.
    pub ops_per_sec: f64,
}

/// One kind's numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindReport {
    /// Successful requests (PUT: 2xx; GET: 200 or 404).
    pub ok: u64,
    /// GETs answered 404 (always 0 for PUT).
    pub not_found: u64,
    /// Failed requests.
    pub errors: u64,
    /// Failed requests by cause: an HTTP status (`"503"`), or `timeout`, `connect`, `io`.
    pub errors_by_cause: BTreeMap<String, u64>,
    /// Successful requests per second.
    pub ops_per_sec: f64,
    /// Latency of successful requests.
    pub latency: LatencyReport,
}

/// Latency percentiles, in microseconds, from an HDR histogram (3 significant digits). All zero
/// when there was no successful request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyReport {
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Slowest.
    pub max_us: u64,
    /// Mean.
    pub mean_us: f64,
}

impl BenchReport {
    pub(crate) fn new(
        options: &BenchOptions,
        warmup_puts: u64,
        elapsed: Duration,
        stats: &Stats,
    ) -> BenchReport {
        let secs = elapsed.as_secs_f64();
        let put = KindReport::new(&stats.put, secs);
        let get = KindReport::new(&stats.get, secs);
        let ok = put.ok + get.ok;
        BenchReport {
            urls: options.urls.clone(),
            clients: options.clients,
            get_percent: options.get_percent,
            consistency: options.consistency,
            value_size: options.value_size,
            keys: options.keys,
            warmup_puts,
            elapsed_secs: secs,
            total: TotalReport {
                ok,
                errors: put.errors + get.errors,
                ops_per_sec: per_sec(ok, secs),
            },
            put,
            get,
        }
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        match serde_json::to_string_pretty(self) {
            Ok(json) => json,
            // Plain structs of numbers, strings and string-keyed maps always serialize.
            Err(e) => panic!("invariant violated: a bench report failed to serialize: {e}"),
        }
    }
}

impl KindReport {
    fn new(stats: &KindStats, secs: f64) -> KindReport {
        let h = &stats.latency_us;
        let latency = if h.is_empty() {
            LatencyReport {
                p50_us: 0,
                p99_us: 0,
                p999_us: 0,
                max_us: 0,
                mean_us: 0.0,
            }
        } else {
            LatencyReport {
                p50_us: h.value_at_quantile(0.50),
                p99_us: h.value_at_quantile(0.99),
                p999_us: h.value_at_quantile(0.999),
                max_us: h.max(),
                mean_us: h.mean(),
            }
        };
        KindReport {
            ok: stats.ok(),
            not_found: stats.not_found,
            errors: stats.failed(),
            errors_by_cause: stats.errors.clone(),
            ops_per_sec: per_sec(stats.ok(), secs),
            latency,
        }
    }
}

fn per_sec(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

/// Microseconds as milliseconds with three decimals.
fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

impl fmt::Display for BenchReport {
    /// A table: one line per kind and a total, then errors by cause if any.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} clients over {} URL(s), {:.1} s, {}% GET ({}), {}-byte values, {} keys, {} warm-up PUTs",
            self.clients,
            self.urls.len(),
            self.elapsed_secs,
            self.get_percent,
            match self.consistency {
                Consistency::Linearizable => "linearizable",
                Consistency::Serializable => "serializable",
            },
            self.value_size,
            self.keys,
            self.warmup_puts,
        )?;
        writeln!(
            f,
            "{:<6} {:>10} {:>11} {:>10} {:>10} {:>10} {:>10} {:>8}",
            "op", "ok", "ops/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "errors"
        )?;
        for (name, kind) in [("PUT", &self.put), ("GET", &self.get)] {
            let l = &kind.latency;
            writeln!(
                f,
                "{:<6} {:>10} {:>11.1} {:>10} {:>10} {:>10} {:>10} {:>8}",
                name,
                kind.ok,
                kind.ops_per_sec,
                ms(l.p50_us),
                ms(l.p99_us),
                ms(l.p999_us),
                ms(l.max_us),
                kind.errors
            )?;
        }
        writeln!(
            f,
            "{:<6} {:>10} {:>11.1} {:>10} {:>10} {:>10} {:>10} {:>8}",
            "total", self.total.ok, self.total.ops_per_sec, "", "", "", "", self.total.errors
        )?;
        for (name, kind) in [("PUT", &self.put), ("GET", &self.get)] {
            for (cause, n) in &kind.errors_by_cause {
                writeln!(f, "errors: {name} {cause}: {n}")?;
            }
        }
        if self.get.not_found > 0 {
            writeln!(f, "GETs answered 404: {}", self.get.not_found)?;
        }
        Ok(())
    }
}

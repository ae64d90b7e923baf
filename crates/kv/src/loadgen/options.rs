//! The load tool's command line: [`BenchOptions`] derives `clap::Args`, so the `raftwood`
//! binary embeds it as the `bench` subcommand with `#[command(flatten)]` or as a variant's
//! fields, and its defaults live in one place (the attributes below).

use std::time::Duration;

use clap::{Args, Parser, ValueEnum};
use serde::Serialize;

/// How GETs ask to be served (the contract's `?consistency=` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    /// `GET /v1/kv/{key}`: sees every write acknowledged before it started (ReadIndex).
    Linearizable,
    /// `GET /v1/kv/{key}?consistency=serializable`: the node's local state, possibly stale.
    Serializable,
}

/// What `raftwood bench` does: N clients, each on its own keep-alive HTTP/1.1 connection, issue
/// PUTs and GETs back to back over a key space for a duration, after a warm-up that PUTs every
/// key once so GETs find values.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct BenchOptions {
    /// Base URLs of the nodes' HTTP APIs, comma-separated; clients are spread over them
    /// round-robin (client i talks to URL i mod n).
    #[arg(
        long = "url",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:12380"
    )]
    pub urls: Vec<String>,
    /// Concurrent clients, one connection and one request in flight each.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// How long to measure, e.g. `10s`, `500ms`, `2m` (a bare number is seconds).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Share of operations that are GETs, in percent (the rest are PUTs).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub get_percent: u8,
    /// Size of every PUT's value, in bytes.
    #[arg(long, default_value_t = 64)]
    pub value_size: usize,
    /// Number of distinct keys; each operation picks one uniformly.
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// Prefix of the key names (`{prefix}{n}`).
    #[arg(long, default_value = "bench-")]
    pub key_prefix: String,
    /// How GETs are served.
    #[arg(long, value_enum, default_value_t = Consistency::Linearizable)]
    pub consistency: Consistency,
    /// Give up on a request after this long; it counts as a `timeout` error.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Skip the warm-up (GETs of keys never written then answer 404).
    #[arg(long)]
    pub no_warmup: bool,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl Default for BenchOptions {
    /// The command line's defaults, read from the attributes above so they cannot drift apart.
    fn default() -> BenchOptions {
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            options: BenchOptions,
        }
        match Wrapper::try_parse_from(["bench"]) {
            Ok(wrapper) => wrapper.options,
            Err(e) => panic!("invariant violated: the bench defaults do not parse: {e}"),
        }
    }
}

/// Parses `10`, `1.5s`, `500ms` or `2m` into a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try 10s, 500ms or 2m)"))?;
    Duration::try_from_secs_f64(value * scale)
        .map_err(|_| format!("{text:?} is not a non-negative duration"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn defaults_parse() {
        let o = BenchOptions::default();
        assert_eq!(o.urls, ["http://127.0.0.1:12380"]);
        assert_eq!(o.duration, Duration::from_secs(10));
        assert_eq!(o.consistency, Consistency::Linearizable);
    }

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        options: BenchOptions,
    }

    #[test]
    fn flags_parse_into_options() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let o = Cli::try_parse_from([
            "bench",
            "--url",
            "http://127.0.0.1:1,http://127.0.0.1:2",
            "--clients",
            "64",
            "--duration",
            "500ms",
            "--get-percent",
            "90",
            "--consistency",
            "serializable",
            "--json",
        ])
        .unwrap()
        .options;
        assert_eq!(o.urls.len(), 2);
        assert_eq!(o.clients, 64);
        assert_eq!(o.duration, Duration::from_millis(500));
        assert_eq!(o.get_percent, 90);
        assert_eq!(o.consistency, Consistency::Serializable);
        assert!(o.json);
        assert!(Cli::try_parse_from(["bench", "--get-percent", "101"]).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}

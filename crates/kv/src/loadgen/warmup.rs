//! The warm-up: PUT every key of the key space once before measuring, so GETs find values. The
//! keys are dealt out to the clients (client i takes keys i, i + N, i + 2N, ...), each on its own
//! connection, so the warm-up itself runs at the benchmark's concurrency.

use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use tokio::task::JoinSet;

use super::BenchError;
use super::client::Workload;
use super::stats::Kind;
use super::target::{Connection, Target};

/// Tries per key before giving up on a retryable failure.
const ATTEMPTS: u32 = 5;
/// Pause between tries: long enough for a young cluster to elect a leader in a few tries.
const BACKOFF: Duration = Duration::from_millis(200);

/// Writes every key once; returns how many PUTs succeeded (the key space's size).
pub(crate) async fn warm_up(
    targets: &[Target],
    clients: usize,
    workload: &Arc<Workload>,
) -> Result<u64, BenchError> {
    let stride = clients as u64;
    let mut tasks = JoinSet::new();
    for first in 0..stride.min(workload.keys) {
        let target = targets[first as usize % targets.len()].clone();
        tasks.spawn(warm_up_client(first, stride, target, Arc::clone(workload)));
    }
    let mut puts = 0;
    while let Some(done) = tasks.join_next().await {
        puts += done??;
    }
    Ok(puts)
}

async fn warm_up_client(
    first: u64,
    stride: u64,
    target: Target,
    workload: Arc<Workload>,
) -> Result<u64, BenchError> {
    let mut conn = None;
    let mut puts = 0;
    for n in (first..workload.keys).step_by(stride as usize) {
        put_with_retries(&target, &workload, &mut conn, n).await?;
        puts += 1;
    }
    Ok(puts)
}

/// Why one warm-up PUT failed, and whether trying again may help.
struct Failure {
    reason: String,
    retryable: bool,
}

async fn put_with_retries(
    target: &Target,
    workload: &Workload,
    conn: &mut Option<Connection>,
    n: u64,
) -> Result<(), BenchError> {
    let mut attempt = 1;
    loop {
        let failure = match put_once(target, workload, conn, n).await {
            Ok(()) => return Ok(()),
            Err(failure) => failure,
        };
        if !failure.retryable || attempt == ATTEMPTS {
            return Err(BenchError::Warmup {
                url: target.url.clone(),
                path: workload.path(Kind::Put, n),
                reason: format!("{} (attempt {attempt} of {ATTEMPTS})", failure.reason),
            });
        }
        attempt += 1;
        tokio::time::sleep(BACKOFF).await;
    }
}

async fn put_once(
    target: &Target,
    workload: &Workload,
    conn: &mut Option<Connection>,
    n: u64,
) -> Result<(), Failure> {
    if let Some(c) = conn.as_mut()
        && !c.ready().await
    {
        *conn = None;
    }
    let c = match conn {
        Some(c) => c,
        None => conn.insert(target.connect().await.map_err(|e| Failure {
            reason: format!("connect: {e}"),
            retryable: true,
        })?),
    };
    match workload.request(c, Kind::Put, n).await {
        Ok(status) if status.is_success() => Ok(()),
        Ok(status) => Err(Failure {
            reason: format!("status {status}"),
            retryable: status == StatusCode::SERVICE_UNAVAILABLE,
        }),
        Err(cause) => {
            *conn = None;
            Err(Failure {
                reason: cause.to_owned(),
                retryable: true,
            })
        }
    }
}

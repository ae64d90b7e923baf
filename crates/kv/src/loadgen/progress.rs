//! The live progress line: a spinner with elapsed time, operations, rate and errors, redrawn a
//! few times a second on stderr, and hidden when stderr is not a terminal (so logs and CI output
//! stay clean).

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;

use super::stats::Live;

/// How often the line is redrawn.
const REFRESH: Duration = Duration::from_millis(250);

/// A running progress line; [`Progress::finish`] clears it.
pub(crate) struct Progress {
    bar: ProgressBar,
    updater: JoinHandle<()>,
}

impl Progress {
    /// Starts the line for a run of `duration` whose counters are `live`.
    pub(crate) fn start(live: Arc<Live>, duration: Duration) -> Progress {
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::new_spinner()
        } else {
            ProgressBar::hidden()
        };
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
            bar.set_style(style);
        }
        let line = bar.clone();
        let updater = tokio::spawn(async move {
            let start = Instant::now();
            let mut tick = tokio::time::interval(REFRESH);
            loop {
                tick.tick().await;
                line.set_message(message(&live, start.elapsed(), duration));
                // Turns the spinner; a hidden bar ignores it.
                line.tick();
            }
        });
        Progress { bar, updater }
    }

    /// Stops updating and clears the line.
    pub(crate) fn finish(self) {
        self.updater.abort();
        self.bar.finish_and_clear();
    }
}

fn message(live: &Live, elapsed: Duration, duration: Duration) -> String {
    let ok = live.ok.load(Ordering::Relaxed);
    let errors = live.errors.load(Ordering::Relaxed);
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { ok as f64 / secs } else { 0.0 };
    format!(
        "{secs:.1}/{:.1} s  {ok} ops  {rate:.0} ops/s  {errors} errors",
        duration.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_time_ops_rate_and_errors() {
        let live = Live::default();
        live.ok.store(500, Ordering::Relaxed);
        live.errors.store(3, Ordering::Relaxed);
        let line = message(&live, Duration::from_secs(2), Duration::from_secs(10));
        assert_eq!(line, "2.0/10.0 s  500 ops  250 ops/s  3 errors");
    }
}

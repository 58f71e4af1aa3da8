//! The inference log's path off the request: handlers hand a request's rows to a bounded queue without
//! waiting, and one writer task drains it in batches with binary COPY. A full queue, a write that keeps
//! failing or a shutdown that runs out of time loses rows, and every lost row is counted
//! (`inference_log_dropped_total{reason}`), never silent.

use std::time::Duration;

use churn_config::{InferenceLogConfig, InferenceLogMode};
use churn_store::serving::{InferenceRow, copy_inference_rows};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use ulid::Ulid;

/// How often a failed COPY is tried in all before its rows are counted as lost, and the pause before
/// each retry: a database restart is survived, a lasting outage does not stall the queue for long.
const RETRY_DELAYS: [Duration; 2] = [Duration::from_millis(200), Duration::from_millis(1000)];

/// Why rows were not logged (the `reason` label of `inference_log_dropped_total`).
const QUEUE_FULL: &str = "queue_full";
const WRITE_FAILED: &str = "write_failed";
const SHUTDOWN: &str = "shutdown";
const INVALID: &str = "invalid";

/// The handlers' side of the log; cheap to clone.
#[derive(Debug, Clone)]
pub struct InferenceLog {
    sender: Option<mpsc::Sender<Vec<InferenceRow>>>,
    mode: InferenceLogMode,
}

/// The writer task; [`LogWriter::close`] flushes what is queued.
#[derive(Debug)]
pub struct LogWriter {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl InferenceLog {
    /// A log that keeps nothing (INFERENCE_LOG=off, or no database).
    pub fn off() -> Self {
        Self {
            sender: None,
            mode: InferenceLogMode::Off,
        }
    }

    /// Starts the writer (unless the log is off) on the current runtime.
    pub fn start(pool: PgPool, config: &InferenceLogConfig) -> (Self, Option<LogWriter>) {
        if config.mode == InferenceLogMode::Off {
            return (Self::off(), None);
        }
        // Registered at zero so that a scrape shows them before anything was lost.
        for reason in [QUEUE_FULL, WRITE_FAILED, SHUTDOWN, INVALID] {
            metrics::counter!("inference_log_dropped_total", "reason" => reason).absolute(0);
        }
        metrics::counter!("inference_log_written_total").absolute(0);
        metrics::counter!("inference_log_write_failures_total").absolute(0);
        metrics::counter!("inference_log_sampled_out_total").absolute(0);
        metrics::gauge!("inference_log_queue_depth").set(0.0);
        let (sender, receiver) = mpsc::channel(config.queue);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(write_batches(
            pool,
            receiver,
            stopped,
            config.batch,
            config.flush,
            config.queue,
        ));
        (
            Self {
                sender: Some(sender),
                mode: config.mode,
            },
            Some(LogWriter { stop, task }),
        )
    }

    /// Whether the request named `request_id` is logged: always with `all`, never with `off`, and with
    /// `sample:<p>` when the id's random bits fall under `p` (so a request is kept whole or not at all).
    pub fn keeps(&self, request_id: Ulid) -> bool {
        match self.mode {
            InferenceLogMode::All => true,
            InferenceLogMode::Off => false,
            InferenceLogMode::Sample(p) => {
                // 53 of the ULID's 80 random bits, as a uniform number in [0, 1).
                let bits = (request_id.random() as u64) >> 11;
                (bits as f64 / (1u64 << 53) as f64) < p
            }
        }
    }

    /// Counts `rows` rows that sampling left out.
    pub fn sampled_out(&self, rows: usize) {
        if matches!(self.mode, InferenceLogMode::Sample(_)) {
            metrics::counter!("inference_log_sampled_out_total").increment(rows as u64);
        }
    }

    /// Queues one request's rows without waiting; when the queue is full (or the writer has stopped)
    /// they are dropped and counted. A row the log's checks would refuse is dropped alone (it would
    /// fail its whole batch).
    pub fn record(&self, mut rows: Vec<InferenceRow>) {
        let Some(sender) = &self.sender else {
            return;
        };
        let before = rows.len();
        rows.retain(InferenceRow::is_valid);
        if rows.len() < before {
            dropped(INVALID, before - rows.len());
        }
        if rows.is_empty() {
            return;
        }
        match sender.try_send(rows) {
            Ok(()) => {
                let depth = sender.max_capacity() - sender.capacity();
                metrics::gauge!("inference_log_queue_depth").set(depth as f64);
            }
            Err(mpsc::error::TrySendError::Full(rows)) => dropped(QUEUE_FULL, rows.len()),
            Err(mpsc::error::TrySendError::Closed(rows)) => dropped(SHUTDOWN, rows.len()),
        }
    }
}

fn dropped(reason: &'static str, rows: usize) {
    metrics::counter!("inference_log_dropped_total", "reason" => reason).increment(rows as u64);
}

impl LogWriter {
    /// Stops taking rows and writes every row already queued, giving up after `grace` (the rows still
    /// queued then are counted as lost). Call it once the server has stopped answering, so every
    /// answered request's rows are in the queue.
    pub async fn close(self, grace: Duration) {
        let _ = self.stop.send(());
        let mut task = self.task;
        match tokio::time::timeout(grace, &mut task).await {
            Ok(_) => tracing::info!("the inference log is flushed"),
            Err(_) => {
                task.abort();
                tracing::error!(
                    grace_secs = grace.as_secs_f64(),
                    "the inference log could not be flushed within the shutdown grace; rows still \
                     queued are lost"
                );
            }
        }
    }
}

/// The writer: waits for rows, gathers more until `batch` rows or `flush` has passed since the first,
/// writes them with one COPY, and on stop drains the queue to the end.
async fn write_batches(
    pool: PgPool,
    mut receiver: mpsc::Receiver<Vec<InferenceRow>>,
    mut stop: oneshot::Receiver<()>,
    batch: usize,
    flush: Duration,
    capacity: usize,
) {
    let mut stopping = false;
    let mut pending: Vec<InferenceRow> = Vec::with_capacity(batch);
    loop {
        // Closing the receiver lets `recv` hand out what is queued, then end.
        let first = tokio::select! {
            biased;
            rows = receiver.recv() => rows,
            _ = &mut stop, if !stopping => {
                stopping = true;
                receiver.close();
                continue;
            }
        };
        let Some(rows) = first else {
            break;
        };
        pending.extend(rows);
        let deadline = Instant::now() + flush;
        while pending.len() < batch {
            tokio::select! {
                biased;
                rows = receiver.recv() => match rows {
                    Some(rows) => pending.extend(rows),
                    None => break,
                },
                _ = &mut stop, if !stopping => {
                    stopping = true;
                    receiver.close();
                }
                () = tokio::time::sleep_until(deadline), if !stopping => break,
            }
        }
        metrics::gauge!("inference_log_queue_depth").set((capacity - receiver.capacity()) as f64);
        write(&pool, &pending).await;
        pending.clear();
    }
    metrics::gauge!("inference_log_queue_depth").set(0.0);
}

/// Writes a batch, retrying a failed COPY a bounded number of times; then counts its rows as lost.
async fn write(pool: &PgPool, rows: &[InferenceRow]) {
    let mut delays = RETRY_DELAYS.iter();
    loop {
        match copy_inference_rows(pool, rows).await {
            Ok(written) => {
                metrics::counter!("inference_log_written_total").increment(written);
                return;
            }
            Err(e) => {
                metrics::counter!("inference_log_write_failures_total").increment(1);
                match delays.next() {
                    Some(delay) => {
                        tracing::warn!(error = %e, rows = rows.len(), "writing the inference log failed; retrying");
                        tokio::time::sleep(*delay).await;
                    }
                    None => {
                        tracing::error!(error = %e, rows = rows.len(), "writing the inference log failed; the rows are lost");
                        dropped(WRITE_FAILED, rows.len());
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(mode: InferenceLogMode) -> InferenceLog {
        InferenceLog { sender: None, mode }
    }

    #[test]
    fn sampling_keeps_about_p_of_the_requests_and_all_or_off_keep_all_or_none() {
        let ids: Vec<Ulid> = (0..20_000).map(|_| Ulid::generate()).collect();
        let kept = ids
            .iter()
            .filter(|id| log(InferenceLogMode::Sample(0.25)).keeps(**id))
            .count();
        assert!(
            (4_400..5_600).contains(&kept),
            "{kept} of 20000 at p = 0.25"
        );
        assert!(ids.iter().all(|id| log(InferenceLogMode::All).keeps(*id)));
        assert!(!ids.iter().any(|id| log(InferenceLogMode::Off).keeps(*id)));
        assert!(
            ids.iter()
                .all(|id| log(InferenceLogMode::Sample(1.0)).keeps(*id))
        );
    }
}

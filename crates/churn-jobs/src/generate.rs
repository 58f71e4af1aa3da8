//! The `generate` job: synthetic customers from the synthesizer, scored by the classifier, stamped with
//! monotonic ULIDs and written with their synthesis and prediction rows, one transaction per batch.
//!
//! Batches are synthesized and classified ahead of the writer (a small pipeline), and written in order by
//! one writer that assigns the ULIDs, so ids increase in insertion order. A batch whose write fails is
//! retried with the same ULIDs; after a failure whose outcome is unknown, the writer looks before writing
//! again, so a batch is never half-written and never duplicated. When the synthesizer or the classifier
//! is down the job backs off and writes nothing: no customer is stored without its prediction. A run
//! told to stop before its customers (or its run length) are done ends after its current batch as
//! interrupted, the batches it wrote counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use churn_api::{BatchPrediction, ClassifierClient, ClientError, ItemStatus, SynthesizerClient};
use churn_core::{Backoff, Customer, CustomerId};
use churn_store::ops::Rejected;
use churn_store::warehouse::{self, Classification, Synthesis};
use futures::future::BoxFuture;
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::params::InvalidParameter;
use crate::runner::{Job, JobError, Outcome, RunContext};

/// The job's name.
pub const NAME: &str = "generate";

/// How much a run writes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GenerateMode {
    /// A fixed number of customers per run (a cron tick).
    PerRun { customers: u64 },
    /// Customers at `rate` per second (0: as fast as the pipeline goes) for `run_length`, then the run
    /// ends and the next begins (one run record a minute by default).
    Continuous { rate: f64, run_length: Duration },
}

/// The job's parameters, unchecked; [`GenerateParams::check`] makes them usable.
#[derive(Debug, Clone)]
pub struct GenerateParams {
    /// Customers per batch (one synthesize call, one predict call, one transaction): 1 to 10,000.
    pub batch_size: usize,
    pub mode: GenerateMode,
    /// Batches synthesized and classified ahead of the writer: 1 to 16.
    pub in_flight: usize,
    /// Longest one call to the synthesizer or the classifier may take.
    pub request_timeout: Duration,
    /// Longest wait between attempts while a dependency is down.
    pub max_backoff: Duration,
    /// Also store the shadow model's (the challenger's) predictions, one more `churn.classified` row
    /// per customer, so live metrics compare it with the champion on the same customers.
    pub shadow: bool,
}

impl Default for GenerateParams {
    fn default() -> Self {
        Self {
            batch_size: churn_config::DEFAULT_GENERATE_BATCH_SIZE,
            mode: GenerateMode::Continuous {
                rate: churn_config::DEFAULT_GENERATE_RATE,
                run_length: Duration::from_secs(60),
            },
            in_flight: 2,
            request_timeout: Duration::from_secs(30),
            max_backoff: Duration::from_secs(5),
            shadow: true,
        }
    }
}

/// Parameters that passed [`GenerateParams::check`].
#[derive(Debug, Clone)]
pub struct ValidGenerateParams(GenerateParams);

impl GenerateParams {
    pub fn check(self) -> Result<ValidGenerateParams, GenerateError> {
        let bad = |name: &'static str, value: String, rule: &'static str| {
            Err(GenerateError::from(InvalidParameter { name, value, rule }))
        };
        if !(1..=10_000).contains(&self.batch_size) {
            return bad(
                "batch_size",
                self.batch_size.to_string(),
                "must be between 1 and 10000",
            );
        }
        if !(1..=16).contains(&self.in_flight) {
            return bad(
                "in_flight",
                self.in_flight.to_string(),
                "must be between 1 and 16",
            );
        }
        match self.mode {
            GenerateMode::PerRun { customers: 0 } => {
                return bad("customers", "0".into(), "must be at least 1");
            }
            GenerateMode::Continuous { rate, run_length } => {
                if !(rate.is_finite() && rate >= 0.0) {
                    return bad(
                        "rate",
                        rate.to_string(),
                        "must be at least 0 customers per second (0: as fast as possible)",
                    );
                }
                if run_length < Duration::from_secs(1) {
                    return bad(
                        "run_length",
                        format!("{} s", run_length.as_secs_f64()),
                        "must be at least 1 s",
                    );
                }
            }
            GenerateMode::PerRun { .. } => {}
        }
        if self.request_timeout.is_zero() {
            return bad("request_timeout", "0 s".into(), "must be at least 1 s");
        }
        Ok(ValidGenerateParams(self))
    }
}

/// Why a generate run failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    InvalidParameter(#[from] InvalidParameter),
    #[error(transparent)]
    Service(#[from] ClientError),
    #[error("writing a batch failed: {0}")]
    Database(#[from] churn_store::Error),
    #[error("{0}")]
    Inconsistent(String),
    /// A dependency was down the whole run; the next attempt may find it back.
    #[error("no customer was written: {last_error}")]
    NothingWritten { last_error: String },
    /// Told to stop before its work was done; `written` customers were committed.
    #[error("{written} customers written in {batches} batches")]
    Interrupted { written: u64, batches: u64 },
}

impl From<GenerateError> for JobError {
    fn from(e: GenerateError) -> Self {
        match &e {
            GenerateError::Service(c) if c.is_retryable() => JobError::Retryable(e.to_string()),
            GenerateError::Database(_) | GenerateError::NothingWritten { .. } => {
                JobError::Retryable(e.to_string())
            }
            GenerateError::Interrupted { .. } => JobError::Interrupted(e.to_string()),
            _ => JobError::Fatal(e.to_string()),
        }
    }
}

/// A batch ready to write: customers, who made them and every prediction.
struct Scored {
    customers: Vec<Customer>,
    synthesizer_version: i32,
    seed: u64,
    prediction: BatchPrediction,
    synthesize_seconds: f64,
    classify_seconds: f64,
}

/// The generate job.
#[derive(Debug, Clone)]
pub struct Generate {
    params: GenerateParams,
    synthesizer: SynthesizerClient,
    classifier: ClassifierClient,
    pool: PgPool,
}

impl Generate {
    pub fn new(
        params: ValidGenerateParams,
        synthesizer_url: url::Url,
        classifier_url: url::Url,
        classifier_key: Option<String>,
        pool: PgPool,
    ) -> Self {
        let params = params.0;
        Self {
            synthesizer: SynthesizerClient::new(synthesizer_url, params.request_timeout),
            classifier: ClassifierClient::new(
                classifier_url,
                classifier_key,
                params.request_timeout,
            )
            .declaring(churn_api::BatchSource::Synthetic),
            params,
            pool,
        }
    }

    /// Calls `call` until it succeeds, backing off while the error may pass; `None` once `stop` is
    /// cancelled. A call that cannot succeed (a 4xx) is returned as the error.
    async fn with_backoff<T, F, Fut>(
        &self,
        stop: &CancellationToken,
        last_error: &std::sync::Mutex<Option<String>>,
        mut call: F,
    ) -> Option<Result<T, ClientError>>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        let mut backoff = Backoff::new(Duration::from_millis(200), self.params.max_backoff);
        loop {
            let result = tokio::select! {
                r = call() => r,
                () = stop.cancelled() => return None,
            };
            match result {
                Ok(v) => return Some(Ok(v)),
                Err(e) if e.is_retryable() => {
                    let wait = backoff.next_delay();
                    metrics::counter!("generate_dependency_errors_total").increment(1);
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "backing off");
                    if let Ok(mut slot) = last_error.lock() {
                        *slot = Some(e.to_string());
                    }
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = stop.cancelled() => return None,
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// Synthesizes and classifies one batch of `n`.
    async fn score(
        &self,
        n: usize,
        stop: &CancellationToken,
        last_error: &std::sync::Mutex<Option<String>>,
    ) -> Option<Result<Scored, GenerateError>> {
        let started = Instant::now();
        let synthesized = match self
            .with_backoff(stop, last_error, || {
                self.synthesizer.synthesize(n as u64, None)
            })
            .await?
        {
            Ok(s) => s,
            Err(e) => return Some(Err(e.into())),
        };
        let synthesize_seconds = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let prediction = match self
            .with_backoff(stop, last_error, || async {
                if self.params.shadow {
                    self.classifier
                        .predict_batch_with_shadow(&synthesized.customers)
                        .await
                } else {
                    self.classifier.predict_batch(&synthesized.customers).await
                }
            })
            .await?
        {
            Ok(p) => p,
            Err(e) => return Some(Err(e.into())),
        };
        Some(Ok(Scored {
            customers: synthesized.customers,
            synthesizer_version: synthesized.model_version,
            seed: synthesized.seed,
            prediction,
            synthesize_seconds,
            classify_seconds: started.elapsed().as_secs_f64(),
        }))
    }

    /// Writes a scored batch with fresh ULIDs; returns how many customers it wrote.
    async fn write(
        &self,
        scored: Scored,
        ulids: &mut ulid::Generator,
        run_id: Uuid,
        stop: &CancellationToken,
    ) -> Result<usize, GenerateError> {
        let prediction = &scored.prediction;
        let mut customers: Vec<(CustomerId, Customer)> = Vec::with_capacity(scored.customers.len());
        let mut classifications = Vec::with_capacity(scored.customers.len());
        let mut rejected = Vec::new();
        // The shadow's rows, only when it is another version than the champion (right after a
        // promotion both may briefly be the same).
        let shadow = prediction
            .shadow
            .as_ref()
            .filter(|s| s.model_version != prediction.model_version);
        for (index, (customer, item)) in scored
            .customers
            .into_iter()
            .zip(&prediction.results)
            .enumerate()
        {
            match (
                item.status,
                item.churn_probability,
                item.predicted_churn_label,
            ) {
                (ItemStatus::Ok, Some(p), Some(label)) => {
                    let id = churn_store::warehouse::next_customer_id(ulids);
                    classifications.push(Classification {
                        customer_id: id,
                        model_name: prediction.model_name.clone(),
                        model_version: prediction.model_version,
                        churn_probability: p,
                        predicted_churn_label: label.is_yes(),
                        threshold: prediction.threshold,
                    });
                    if let Some(shadow) = shadow
                        && let Some(Some(p)) = shadow.churn_probabilities.get(index)
                    {
                        classifications.push(Classification {
                            customer_id: id,
                            model_name: shadow.model_name.clone(),
                            model_version: shadow.model_version,
                            churn_probability: *p,
                            predicted_churn_label: *p >= shadow.threshold,
                            threshold: shadow.threshold,
                        });
                    }
                    customers.push((id, customer));
                }
                _ => rejected.push(Rejected {
                    line_number: item.index as i64 + 1,
                    raw_record: serde_json::to_string(&customer).unwrap_or_default(),
                    errors: json!(item.errors),
                }),
            }
        }
        let synthesis = Synthesis {
            synthesizer_name: "synthesizer".to_owned(),
            synthesizer_version: scored.synthesizer_version,
            seed: i64::try_from(scored.seed).ok(),
        };
        let started = Instant::now();
        let ids: Vec<CustomerId> = customers.iter().map(|(id, _)| *id).collect();
        let mut backoff = Backoff::new(Duration::from_millis(100), self.params.max_backoff);
        loop {
            match warehouse::write_generated(&self.pool, &customers, &synthesis, &classifications)
                .await
            {
                Ok(()) => break,
                Err(e) => {
                    // The failure may have come after the COMMIT landed: look before writing again.
                    match warehouse::count_customers(&self.pool, &ids).await {
                        Ok(n) if n as usize == ids.len() => break,
                        Ok(0) => {}
                        Ok(n) => {
                            return Err(GenerateError::Inconsistent(format!(
                                "{n} of a batch's {} customers are stored; a batch is one transaction",
                                ids.len()
                            )));
                        }
                        Err(_) => {}
                    }
                    metrics::counter!("generate_write_retries_total").increment(1);
                    tracing::warn!(error = %e, "writing the batch failed; retrying with the same ids");
                    if stop.is_cancelled() {
                        return Err(e.into());
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
        metrics::histogram!("generate_stage_seconds", "stage" => "write")
            .record(started.elapsed().as_secs_f64());
        if !rejected.is_empty() {
            metrics::counter!("generate_rejected_total").increment(rejected.len() as u64);
            if let Err(e) = churn_store::ops::insert_rejected(
                &self.pool,
                churn_store::ops::RejectionSource::Generate,
                Some(run_id),
                None,
                &rejected,
            )
            .await
            {
                tracing::warn!(error = %e, count = rejected.len(), "cannot record rejected customers");
            }
        }
        metrics::counter!("customers_written_total").increment(customers.len() as u64);
        Ok(customers.len())
    }

    async fn run_inner(&self, ctx: RunContext) -> Result<Outcome, GenerateError> {
        let started = Instant::now();
        let batch_size = self.params.batch_size;
        let (budget, rate, run_length) = match self.params.mode {
            GenerateMode::PerRun { customers } => (Some(customers), 0.0, None),
            GenerateMode::Continuous { rate, run_length } => (None, rate, Some(run_length)),
        };
        let remaining = Arc::new(AtomicU64::new(budget.unwrap_or(u64::MAX)));
        // Producers stop when the run is told to stop or the writer is done.
        let stop = ctx.cancel.child_token();
        let last_error = Arc::new(std::sync::Mutex::new(None::<String>));
        let (tx, mut rx) =
            tokio::sync::mpsc::channel::<Result<Scored, GenerateError>>(self.params.in_flight);
        let mut producers = tokio::task::JoinSet::new();
        for _ in 0..self.params.in_flight {
            let (job, tx, stop, remaining, last_error) = (
                self.clone(),
                tx.clone(),
                stop.clone(),
                remaining.clone(),
                last_error.clone(),
            );
            producers.spawn(async move {
                loop {
                    let claimed =
                        remaining.fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                            (r > 0).then(|| r - r.min(batch_size as u64))
                        });
                    let n = match claimed {
                        Ok(before) => before.min(batch_size as u64) as usize,
                        Err(_) => return,
                    };
                    let Some(scored) = job.score(n, &stop, &last_error).await else {
                        return;
                    };
                    if tx.send(scored).await.is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);

        let mut ulids = ulid::Generator::new();
        let (mut written, mut batches) = (0u64, 0u64);
        // Customers written or rejected: the per-run budget they count against.
        let mut processed = 0u64;
        let mut versions = std::collections::BTreeSet::new();
        let mut failure = None;
        while let Some(next) = {
            let left = run_length.map(|l| l.saturating_sub(started.elapsed()));
            tokio::select! {
                item = rx.recv() => item,
                () = tokio::time::sleep(left.unwrap_or(Duration::MAX)), if left.is_some() => None,
                () = ctx.cancel.cancelled() => None,
            }
        } {
            let scored = match next {
                Ok(scored) => scored,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            metrics::histogram!("generate_stage_seconds", "stage" => "synthesize")
                .record(scored.synthesize_seconds);
            metrics::histogram!("generate_stage_seconds", "stage" => "classify")
                .record(scored.classify_seconds);
            versions.insert(scored.prediction.model_version);
            let size = scored.customers.len() as u64;
            match self
                .write(scored, &mut ulids, ctx.run_id, &ctx.cancel)
                .await
            {
                Ok(n) => {
                    written += n as u64;
                    processed += size;
                    batches += 1;
                    ctx.committed(n as i64);
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
            if rate > 0.0 {
                // Keep to the target rate: sleep until the time this many customers should take.
                let due = Duration::from_secs_f64(written as f64 / rate);
                let ahead = due.saturating_sub(started.elapsed());
                if !ahead.is_zero() {
                    tokio::select! {
                        () = tokio::time::sleep(ahead) => {}
                        () = ctx.cancel.cancelled() => break,
                    }
                }
            }
        }
        stop.cancel();
        rx.close();
        while producers.join_next().await.is_some() {}
        if let Some(e) = failure {
            return Err(e);
        }
        // A stop that came after the work was done (every customer written, or the run's length
        // reached) does not make the run interrupted.
        let done = match self.params.mode {
            GenerateMode::PerRun { customers } => processed >= customers,
            GenerateMode::Continuous { run_length, .. } => started.elapsed() >= run_length,
        };
        if ctx.cancel.is_cancelled() && !done {
            return Err(GenerateError::Interrupted { written, batches });
        }
        let seconds = started.elapsed().as_secs_f64();
        let dependency_error = last_error.lock().ok().and_then(|e| e.clone());
        if written == 0
            && let Some(e) = dependency_error.clone()
        {
            // Nothing written because a service was down the whole run: that is a failed run.
            return Err(GenerateError::NothingWritten { last_error: e });
        }
        Ok(Outcome {
            rows: written as i64,
            details: json!({
                "batches": batches,
                "batch_size": batch_size,
                "seconds": seconds,
                "customers_per_second": written as f64 / seconds.max(1e-9),
                "model_versions": versions,
                "last_dependency_error": dependency_error,
            }),
        })
    }
}

impl Job for Generate {
    fn run(&self, ctx: RunContext) -> BoxFuture<'_, Result<Outcome, JobError>> {
        Box::pin(async move { self.run_inner(ctx).await.map_err(JobError::from) })
    }
}

//! The job runner: run records, one run of a job at a time across replicas, retries with exponential
//! back-off and jitter, timeouts, pause, abandoned runs, and a shutdown that closes what it started
//! (`interrupted`, never `failed`: a restart is not a failure).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use churn_core::Backoff;
use churn_store::audit::Actor;
use churn_store::ops::{self, JobLock, JobRun, RunStatus, Trigger};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

pub use crate::job::{Job, JobError, Outcome, RunContext};
pub use crate::spec::{JobSpec, Schedule};

/// Why the runner could not start or change a job.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("there is no job named {0:?}")]
    UnknownJob(String),
    #[error("job {0:?} is running already; wait for its run to finish")]
    Busy(String),
    #[error("the scheduler is shutting down")]
    ShuttingDown,
    #[error("job {job}: {setting} is {value}: it {rule}")]
    InvalidSpec {
        job: String,
        setting: String,
        value: String,
        rule: &'static str,
    },
    #[error(transparent)]
    Store(#[from] churn_store::Error),
}

struct Registered {
    spec: JobSpec,
    job: Arc<dyn Job>,
}

/// A run in progress on this runner, for closing it when it outlives the shutdown grace.
struct Active {
    job: &'static str,
    committed: Arc<AtomicI64>,
}

struct Inner {
    pool: PgPool,
    database_url: String,
    host: String,
    jobs: BTreeMap<&'static str, Registered>,
    shutdown: CancellationToken,
    running: TaskTracker,
    active: Mutex<BTreeMap<Uuid, Active>>,
}

/// Runs registered jobs with their guarantees. Cheap to clone.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("host", &self.inner.host)
            .field("jobs", &self.inner.jobs.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// How often a running job's lock (and, for continuous jobs, the pause switch) is checked.
const WATCH_EVERY: Duration = Duration::from_millis(500);

impl Runner {
    /// A runner for `jobs`, each spec checked. `database_url` opens the connections that hold job locks;
    /// `host` names this replica in run records.
    pub fn new(
        pool: PgPool,
        database_url: &str,
        host: &str,
        jobs: Vec<(JobSpec, Arc<dyn Job>)>,
    ) -> Result<Runner, RunnerError> {
        let mut registered = BTreeMap::new();
        for (spec, job) in jobs {
            spec.check()?;
            registered.insert(spec.name, Registered { spec, job });
        }
        Ok(Runner {
            inner: Arc::new(Inner {
                pool,
                database_url: database_url.to_owned(),
                host: host.to_owned(),
                jobs: registered,
                shutdown: CancellationToken::new(),
                running: TaskTracker::new(),
                active: Mutex::new(BTreeMap::new()),
            }),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The registered jobs' specs, by name.
    pub fn specs(&self) -> impl Iterator<Item = &JobSpec> {
        self.inner.jobs.values().map(|r| &r.spec)
    }

    pub fn spec(&self, name: &str) -> Option<&JobSpec> {
        self.inner.jobs.get(name).map(|r| &r.spec)
    }

    /// Closes runs left `running` by a scheduler that died. A run is abandoned only if nobody holds its
    /// job's lock: a run of a live replica keeps its lock and is left alone.
    pub async fn close_abandoned(&self) -> Result<u64, RunnerError> {
        let mut closed = 0;
        for job in ops::jobs_with_running_runs(&self.inner.pool).await? {
            if let Some(mut lock) = JobLock::try_acquire(&self.inner.database_url, &job).await? {
                let n = ops::close_abandoned(lock.connection(), &job).await?;
                lock.release().await;
                if n > 0 {
                    tracing::warn!(
                        job,
                        runs = n,
                        "closed runs abandoned by a stopped scheduler"
                    );
                    metrics::counter!("job_runs_total", "job" => job.clone(), "status" => "failed")
                        .increment(n);
                }
                closed += n;
            }
        }
        Ok(closed)
    }

    /// Starts a run of `name` now and returns its id; the run goes on in the background.
    /// [`RunnerError::Busy`] when a run of the job is in progress here or on another replica.
    pub async fn trigger(&self, name: &str, trigger: Trigger) -> Result<Uuid, RunnerError> {
        let (run_id, done) = self.start(name, trigger, None).await?;
        drop(done);
        Ok(run_id)
    }

    /// Starts a run of `name` by hand for `actor`, who is recorded in the audit log with the run's
    /// record (one transaction); returns its id at once.
    pub async fn trigger_by(&self, name: &str, actor: &Actor) -> Result<Uuid, RunnerError> {
        let (run_id, done) = self.start(name, Trigger::Manual, Some(actor)).await?;
        drop(done);
        Ok(run_id)
    }

    /// Runs `name` now and waits for the run to end; returns its record.
    pub async fn run_now(&self, name: &str, trigger: Trigger) -> Result<JobRun, RunnerError> {
        let (run_id, done) = self.start(name, trigger, None).await?;
        let _ = done.await;
        ops::get_run(&self.inner.pool, run_id)
            .await?
            .ok_or_else(|| RunnerError::UnknownJob(name.to_owned()))
    }

    async fn start(
        &self,
        name: &str,
        trigger: Trigger,
        by: Option<&Actor>,
    ) -> Result<(Uuid, tokio::sync::oneshot::Receiver<()>), RunnerError> {
        let registered = self
            .inner
            .jobs
            .get(name)
            .ok_or_else(|| RunnerError::UnknownJob(name.to_owned()))?;
        if self.inner.shutdown.is_cancelled() {
            return Err(RunnerError::ShuttingDown);
        }
        let lock = JobLock::try_acquire(&self.inner.database_url, name)
            .await?
            .ok_or_else(|| RunnerError::Busy(name.to_owned()))?;
        let run_id = Uuid::new_v4();
        let inserted = match by {
            Some(actor) => {
                ops::insert_manual_run(&self.inner.pool, run_id, name, &self.inner.host, actor)
                    .await
            }
            None => {
                ops::insert_run(&self.inner.pool, run_id, name, trigger, &self.inner.host).await
            }
        };
        if let Err(e) = inserted {
            lock.release().await;
            return Err(e.into());
        }
        metrics::gauge!("job_running", "job" => name.to_owned()).set(1.0);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let inner = self.inner.clone();
        let spec = registered.spec.clone();
        let job = registered.job.clone();
        self.inner.running.spawn(async move {
            execute(&inner, &spec, job, lock, run_id, trigger).await;
            metrics::gauge!("job_running", "job" => spec.name).set(0.0);
            let _ = done_tx.send(());
        });
        Ok((run_id, done_rx))
    }

    /// A scheduled tick: runs the job unless it is paused, a run is in progress, or the scheduler is
    /// stopping. A tick that finds the job busy records nothing: missed ticks are not replayed.
    pub async fn tick(&self, name: &str) {
        if self.inner.shutdown.is_cancelled() {
            return;
        }
        match ops::is_paused(&self.inner.pool, name).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(job = name, error = %e, "cannot read the pause switch; skipping this tick");
                return;
            }
        }
        match self.start(name, Trigger::Schedule, None).await {
            Ok(_) => {}
            Err(RunnerError::Busy(_)) => {
                tracing::debug!(job = name, "tick skipped: a run is in progress");
            }
            Err(e) => tracing::warn!(job = name, error = %e, "tick could not start a run"),
        }
    }

    /// Runs a continuous job run after run until shutdown, waiting while it is paused or another replica
    /// runs it, and backing off after failed runs.
    pub async fn run_continuously(&self, name: &str) {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        while !self.inner.shutdown.is_cancelled() {
            let wait = match ops::is_paused(&self.inner.pool, name).await {
                Ok(true) => Some(Duration::from_secs(1)),
                Ok(false) => match self.run_now(name, Trigger::Schedule).await {
                    Ok(run) if run.status == RunStatus::Failed => Some(backoff.next_delay()),
                    Ok(_) => {
                        backoff.reset();
                        None
                    }
                    // Another replica runs it: look again shortly.
                    Err(RunnerError::Busy(_)) => Some(Duration::from_secs(1)),
                    Err(RunnerError::ShuttingDown) => None,
                    Err(e) => {
                        tracing::warn!(job = name, error = %e, "cannot start a run; retrying");
                        Some(backoff.next_delay())
                    }
                },
                Err(e) => {
                    tracing::warn!(job = name, error = %e, "cannot read the pause switch");
                    Some(backoff.next_delay())
                }
            };
            if let Some(wait) = wait {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = self.inner.shutdown.cancelled() => {}
                }
            }
        }
    }

    /// Pauses a job for every replica: ticks are skipped, and a continuous job stops after its current
    /// batch.
    pub async fn pause(&self, name: &str, by: &str) -> Result<(), RunnerError> {
        self.known(name)?;
        Ok(ops::set_paused(&self.inner.pool, name, true, by).await?)
    }

    pub async fn resume(&self, name: &str, by: &str) -> Result<(), RunnerError> {
        self.known(name)?;
        Ok(ops::set_paused(&self.inner.pool, name, false, by).await?)
    }

    /// Pauses (or resumes) a job by hand for `actor`, who is recorded in the audit log in the same
    /// transaction.
    pub async fn set_paused_by(
        &self,
        name: &str,
        paused: bool,
        actor: &Actor,
    ) -> Result<(), RunnerError> {
        self.known(name)?;
        Ok(ops::set_paused_by(&self.inner.pool, name, paused, actor).await?)
    }

    fn known(&self, name: &str) -> Result<(), RunnerError> {
        if self.inner.jobs.contains_key(name) {
            Ok(())
        } else {
            Err(RunnerError::UnknownJob(name.to_owned()))
        }
    }

    /// Stops starting runs, tells running ones to stop (they end their current batch, or a training
    /// its current fit, and record themselves `interrupted`), and waits for them within `grace`. Runs
    /// still going near its end are recorded `interrupted` here, with the retrain triggers they
    /// claimed waiting again, so a restart never leaves a run `running` for the next start to close as
    /// failed; the last quarter of the grace (at most 1 s) is kept for writing those records.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutdown.cancel();
        self.inner.running.close();
        let reserve = (grace / 4).min(Duration::from_secs(1));
        if tokio::time::timeout(grace - reserve, self.inner.running.wait())
            .await
            .is_ok()
        {
            return;
        }
        let left: Vec<(Uuid, &'static str, i64)> = self
            .inner
            .active
            .lock()
            .map(|active| {
                active
                    .iter()
                    .map(|(id, a)| (*id, a.job, a.committed.load(Ordering::Relaxed)))
                    .collect()
            })
            .unwrap_or_default();
        let why = format!(
            "the scheduler is shutting down; the run did not stop within the shutdown grace ({} s)",
            grace.as_secs_f64()
        );
        // All at once, so that many runs still fit in the reserve.
        let closing = left.into_iter().map(|(run_id, job, rows)| {
            let details = json!({ "interrupted": why });
            async move {
                let rows = (rows > 0).then_some(rows);
                let closed = tokio::time::timeout(
                    reserve.max(Duration::from_millis(200)),
                    ops::interrupt_run(&self.inner.pool, run_id, rows, &details),
                )
                .await;
                match closed {
                    Ok(Ok(true)) => {
                        tracing::warn!(job, %run_id, "run still going at the end of the shutdown grace; recorded interrupted");
                        metrics::counter!("job_runs_total", "job" => job, "status" => "interrupted")
                            .increment(1);
                    }
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => {
                        tracing::error!(job, %run_id, error = %e, "cannot record the run interrupted; the next start closes it as abandoned");
                    }
                    Err(_) => {
                        tracing::error!(job, %run_id, "recording the run interrupted took too long; the next start closes it as abandoned");
                    }
                }
            }
        });
        futures::future::join_all(closing).await;
    }

    /// A token cancelled when the runner shuts down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }
}

/// Why a run was told to stop.
type StopReason = Arc<Mutex<Option<&'static str>>>;

fn stop(reason: &StopReason, cancel: &CancellationToken, why: &'static str) {
    if let Ok(mut slot) = reason.lock() {
        slot.get_or_insert(why);
    }
    cancel.cancel();
}

/// Watches a run: its lock (a lost lock could let another replica start the same job), the pause switch
/// for continuous jobs, and shutdown. Returns the lock when the run is over.
async fn watch(
    inner: &Inner,
    spec: &JobSpec,
    mut lock: JobLock,
    cancel: CancellationToken,
    reason: StopReason,
    finished: CancellationToken,
) -> JobLock {
    loop {
        tokio::select! {
            () = finished.cancelled() => return lock,
            () = inner.shutdown.cancelled(), if !cancel.is_cancelled() => {
                stop(&reason, &cancel, "the scheduler is shutting down");
            }
            () = tokio::time::sleep(WATCH_EVERY) => {
                if cancel.is_cancelled() {
                    continue;
                }
                if !lock.is_held().await {
                    tracing::warn!(job = spec.name, "lost the job lock (its database connection dropped); stopping the run");
                    stop(&reason, &cancel, "lost the job lock");
                } else if spec.schedule == Schedule::Continuous
                    && ops::is_paused(&inner.pool, spec.name).await.unwrap_or(false)
                {
                    stop(&reason, &cancel, "paused");
                }
            }
        }
    }
}

async fn execute(
    inner: &Inner,
    spec: &JobSpec,
    job: Arc<dyn Job>,
    lock: JobLock,
    run_id: Uuid,
    trigger: Trigger,
) {
    let started = Instant::now();
    let cancel = inner.shutdown.child_token();
    let reason: StopReason = Arc::new(Mutex::new(None));
    let finished = CancellationToken::new();
    let watcher = watch(
        inner,
        spec,
        lock,
        cancel.clone(),
        reason.clone(),
        finished.clone(),
    );
    let committed = Arc::new(AtomicI64::new(0));
    if let Ok(mut active) = inner.active.lock() {
        active.insert(
            run_id,
            Active {
                job: spec.name,
                committed: committed.clone(),
            },
        );
    }
    let attempts = async {
        let mut attempt = 1u32;
        let mut failures: Vec<Value> = Vec::new();
        loop {
            let before = committed.load(Ordering::Relaxed);
            let ctx = RunContext {
                run_id,
                trigger,
                attempt,
                cancel: cancel.clone(),
                committed: committed.clone(),
            };
            let result = match tokio::time::timeout(spec.timeout, job.run(ctx)).await {
                Ok(result) => result,
                Err(_) => Err(JobError::Retryable(format!(
                    "the attempt took longer than its timeout ({} s)",
                    spec.timeout.as_secs()
                ))),
            };
            match result {
                Ok(mut outcome) => {
                    // What earlier attempts committed belongs to the run too.
                    outcome.rows += before;
                    return (attempt, Ok(outcome), failures);
                }
                Err(e) if e.retryable() && attempt <= spec.retries && !cancel.is_cancelled() => {
                    let wait = spec.backoff(attempt);
                    tracing::warn!(job = spec.name, attempt, error = %e, retry_in_secs = wait.as_secs_f64(), "attempt failed; retrying");
                    failures.push(json!({ "attempt": attempt, "error": e.to_string() }));
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = cancel.cancelled() => return (attempt, Err(e), failures),
                    }
                    attempt += 1;
                    if let Err(e) = ops::set_attempt(&inner.pool, run_id, attempt as i32).await {
                        tracing::warn!(job = spec.name, error = %e, "cannot record the attempt number");
                    }
                }
                Err(e) => return (attempt, Err(e), failures),
            }
        }
    };
    let (lock, (attempts, result, failures)) = tokio::join!(watcher, async {
        let out = attempts.await;
        finished.cancel();
        out
    });
    // The run's token is a child of the shutdown token, so a shutdown cancels it at once; the watcher may
    // then see the run finish before it sees the shutdown, and the reason must not be lost to that race.
    let stopped = reason.lock().ok().and_then(|r| *r).or_else(|| {
        cancel
            .is_cancelled()
            .then_some("the scheduler is shutting down")
    });
    let mut details = json!({ "attempts": attempts });
    if !failures.is_empty() {
        details["failed_attempts"] = json!(failures);
    }
    if let Some(why) = stopped {
        details["interrupted"] = json!(why);
    }
    let committed_rows = committed.load(Ordering::Relaxed);
    let committed_rows = (committed_rows > 0).then_some(committed_rows);
    let (status, rows, error) = match &result {
        Ok(outcome) => {
            if let Value::Object(extra) = &outcome.details {
                for (k, v) in extra {
                    details[k] = v.clone();
                }
            }
            (RunStatus::Succeeded, Some(outcome.rows), None)
        }
        // Told to stop and did not finish: whatever error the stop caused (a killed dbt, a dropped
        // request) is a consequence, not a failure, and stays in the details.
        Err(e) if stopped.is_some() || matches!(e, JobError::Interrupted(_)) => {
            match e {
                // Where the job was when it stopped (e.g. the customers it had written).
                JobError::Interrupted(what) => {
                    details["stopped"] = json!(what);
                    if stopped.is_none() {
                        details["interrupted"] = json!(what);
                    }
                }
                other => details["error"] = json!(other.to_string()),
            }
            (RunStatus::Interrupted, committed_rows, None)
        }
        Err(e) => (RunStatus::Failed, committed_rows, Some(e.to_string())),
    };
    finish(
        inner,
        spec.name,
        run_id,
        status,
        rows,
        error.as_deref(),
        &details,
    )
    .await;
    if let Ok(mut active) = inner.active.lock() {
        active.remove(&run_id);
    }
    lock.release().await;
    let seconds = started.elapsed().as_secs_f64();
    metrics::counter!("job_runs_total", "job" => spec.name, "status" => status.as_str())
        .increment(1);
    metrics::histogram!("job_run_duration_seconds", "job" => spec.name).record(seconds);
    if status == RunStatus::Succeeded {
        let now = chrono::Utc::now().timestamp() as f64;
        metrics::gauge!("job_last_success_timestamp_seconds", "job" => spec.name).set(now);
    }
    match (status, &error) {
        (RunStatus::Interrupted, _) => {
            tracing::info!(job = spec.name, %run_id, rows, seconds, why = ?stopped, "run interrupted")
        }
        (_, None) => tracing::info!(job = spec.name, %run_id, rows, seconds, "run succeeded"),
        (_, Some(e)) => tracing::warn!(job = spec.name, %run_id, error = %e, seconds, "run failed"),
    }
}

/// Closes a run's record (an interrupted one with its claimed retrain triggers released), retrying
/// for a while if the database is briefly unreachable.
async fn finish(
    inner: &Inner,
    job: &str,
    run_id: Uuid,
    status: RunStatus,
    rows: Option<i64>,
    error: Option<&str>,
    details: &Value,
) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let closed = if status == RunStatus::Interrupted {
            ops::interrupt_run(&inner.pool, run_id, rows, details)
                .await
                .map(drop)
        } else {
            ops::finish_run(&inner.pool, run_id, status, rows, error, details).await
        };
        match closed {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline => {
                tracing::warn!(job, %run_id, error = %e, "cannot close the run record yet; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(e) => {
                tracing::error!(job, %run_id, error = %e, "gave up closing the run record; the next scheduler start closes it as abandoned");
                return;
            }
        }
    }
}

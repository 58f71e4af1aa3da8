//! The runner's guarantees against a real PostgreSQL, with small test jobs: run records, retries with
//! back-off, timeouts, one run at a time across runners, abandoned runs, pause, shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use churn_jobs::{
    Job, JobError, JobSpec, Outcome, RunContext, RunStatus, Runner, RunnerError, Schedule, Trigger,
};
use churn_testkit::TestDb;
use futures::future::BoxFuture;
use serde_json::json;

/// Fails its first `failures` attempts (retryable), then succeeds with `rows`.
struct Flaky {
    failures: u32,
    calls: AtomicU32,
}

impl Job for Flaky {
    fn run(&self, ctx: RunContext) -> BoxFuture<'_, Result<Outcome, JobError>> {
        Box::pin(async move {
            let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            assert_eq!(ctx.attempt, call);
            if call <= self.failures {
                Err(JobError::Retryable(format!("attempt {call} failed")))
            } else {
                Ok(Outcome {
                    rows: 42,
                    details: json!({ "calls": call }),
                })
            }
        })
    }
}

/// Works until told to stop (or `limit` passes), counting its steps.
struct Slow {
    limit: Duration,
}

impl Job for Slow {
    fn run(&self, ctx: RunContext) -> BoxFuture<'_, Result<Outcome, JobError>> {
        Box::pin(async move {
            let started = Instant::now();
            let mut steps = 0;
            while started.elapsed() < self.limit && !ctx.cancel.is_cancelled() {
                tokio::time::sleep(Duration::from_millis(20)).await;
                steps += 1;
            }
            Ok(Outcome {
                rows: steps,
                details: json!({}),
            })
        })
    }
}

fn spec(name: &'static str) -> JobSpec {
    JobSpec {
        name,
        schedule: Schedule::OnDemand,
        enabled: true,
        timeout: Duration::from_secs(30),
        retries: 0,
        retry_delay: Duration::from_millis(50),
        max_retry_delay: Duration::from_millis(200),
    }
}

fn runner(db: &TestDb, host: &str, jobs: Vec<(JobSpec, Arc<dyn Job>)>) -> Runner {
    Runner::new(db.pool.clone(), &db.url, host, jobs).unwrap()
}

#[tokio::test]
async fn a_failing_attempt_is_retried_with_back_off_and_the_run_records_every_attempt() {
    let db = TestDb::new().await;
    let job = Arc::new(Flaky {
        failures: 2,
        calls: AtomicU32::new(0),
    });
    let runner = runner(
        &db,
        "test",
        vec![(
            JobSpec {
                retries: 3,
                ..spec("flaky")
            },
            job.clone() as Arc<dyn Job>,
        )],
    );
    let run = runner.run_now("flaky", Trigger::Manual).await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.attempt, 3);
    assert_eq!(run.rows_affected, Some(42));
    assert_eq!(run.trigger, Trigger::Manual);
    assert_eq!(run.host.as_deref(), Some("test"));
    assert_eq!(
        run.details.0["failed_attempts"].as_array().unwrap().len(),
        2
    );
    assert_eq!(run.details.0["calls"], 3);
    assert!(run.finished_at.unwrap() >= run.started_at);

    // Out of retries: the run fails with the last error.
    let hopeless = Arc::new(Flaky {
        failures: 10,
        calls: AtomicU32::new(0),
    });
    let runner = self::runner(
        &db,
        "test",
        vec![(
            JobSpec {
                retries: 1,
                ..spec("hopeless")
            },
            hopeless as Arc<dyn Job>,
        )],
    );
    let run = runner.run_now("hopeless", Trigger::Schedule).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.attempt, 2);
    assert_eq!(run.error.as_deref(), Some("attempt 2 failed"));
}

#[tokio::test]
async fn back_off_doubles_with_jitter_and_is_capped() {
    let spec = JobSpec {
        retry_delay: Duration::from_secs(2),
        max_retry_delay: Duration::from_secs(10),
        ..spec("any")
    };
    for _ in 0..50 {
        let first = spec.backoff(1);
        assert!(
            first >= Duration::from_secs(2) && first < Duration::from_secs(4),
            "{first:?}"
        );
        let second = spec.backoff(2);
        assert!(
            second >= Duration::from_secs(4) && second < Duration::from_secs(8),
            "{second:?}"
        );
        assert!(spec.backoff(6) <= Duration::from_secs(10));
    }
}

#[tokio::test]
async fn an_attempt_past_its_timeout_is_cut_and_the_run_fails_saying_so() {
    let db = TestDb::new().await;
    let runner = runner(
        &db,
        "test",
        vec![(
            JobSpec {
                timeout: Duration::from_secs(1),
                ..spec("slow")
            },
            Arc::new(Slow {
                limit: Duration::from_secs(60),
            }) as Arc<dyn Job>,
        )],
    );
    let started = Instant::now();
    let run = runner.run_now("slow", Trigger::Manual).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run.error.unwrap().contains("timeout"));
}

#[tokio::test]
async fn a_job_runs_at_most_once_at_a_time_across_runners() {
    let db = TestDb::new().await;
    let job = || {
        Arc::new(Slow {
            limit: Duration::from_secs(2),
        }) as Arc<dyn Job>
    };
    let a = runner(&db, "replica-a", vec![(spec("slow"), job())]);
    let b = runner(&db, "replica-b", vec![(spec("slow"), job())]);
    let first = a.trigger("slow", Trigger::Manual).await.unwrap();
    for other in [&a, &b] {
        let err = other.trigger("slow", Trigger::Manual).await.unwrap_err();
        assert!(matches!(err, RunnerError::Busy(_)), "{err}");
    }
    // A tick that finds the job busy records nothing.
    b.tick("slow").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let runs: Vec<(uuid::Uuid, RunStatus)> =
        sqlx::query!(r#"select job_run_id, status as "status: RunStatus" from ops.job_runs"#)
            .fetch_all(&db.pool)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.job_run_id, r.status))
            .collect();
    assert_eq!(runs, vec![(first, RunStatus::Succeeded)]);
    // Once it is over, the other runner may run it.
    let second = b.run_now("slow", Trigger::Manual).await.unwrap();
    assert_eq!(second.host.as_deref(), Some("replica-b"));
}

#[tokio::test]
async fn a_run_left_running_by_a_dead_scheduler_is_closed_as_abandoned_but_a_live_one_is_not() {
    let db = TestDb::new().await;
    let dead = uuid::Uuid::new_v4();
    sqlx::query!(
        "insert into ops.job_runs (job_run_id, job_name, status, started_at)
         values ($1, 'slow', 'running', now() - interval '1 hour')",
        dead,
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let job = Arc::new(Slow {
        limit: Duration::from_secs(3),
    }) as Arc<dyn Job>;
    let live = runner(&db, "live", vec![(spec("other"), job.clone())]);
    let live_run = live.trigger("other", Trigger::Manual).await.unwrap();
    let starting = runner(
        &db,
        "new",
        vec![(spec("slow"), job.clone()), (spec("other"), job)],
    );
    assert_eq!(starting.close_abandoned().await.unwrap(), 1);
    let closed = sqlx::query!(
        r#"select status as "status: RunStatus", error from ops.job_runs where job_run_id = $1"#,
        dead,
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(closed.status, RunStatus::Failed);
    assert!(closed.error.unwrap().contains("abandoned"));
    let status = sqlx::query_scalar!(
        r#"select status as "status: RunStatus" from ops.job_runs where job_run_id = $1"#,
        live_run,
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        status,
        RunStatus::Running,
        "a live replica's run is left alone"
    );
}

#[tokio::test]
async fn pause_skips_ticks_and_stops_a_continuous_run_and_shutdown_closes_runs() {
    let db = TestDb::new().await;
    let job = Arc::new(Slow {
        limit: Duration::from_secs(60),
    }) as Arc<dyn Job>;
    let runner = runner(
        &db,
        "test",
        vec![
            (
                JobSpec {
                    schedule: Schedule::Continuous,
                    ..spec("loop")
                },
                job.clone(),
            ),
            (spec("ticked"), job),
        ],
    );
    runner.pause("ticked", "test").await.unwrap();
    runner.tick("ticked").await;
    let looping = {
        let runner = runner.clone();
        tokio::spawn(async move { runner.run_continuously("loop").await })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    runner.pause("loop", "test").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let runs = sqlx::query!(
        r#"select job_name, status as "status: RunStatus", details from ops.job_runs
           order by started_at"#
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].job_name, "loop");
    assert_eq!(runs[0].status, RunStatus::Succeeded);
    assert_eq!(runs[0].details["interrupted"], "paused");
    // Resumed, it runs again; shutdown stops it and closes the run.
    runner.resume("loop", "test").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    runner.shutdown(Duration::from_secs(5)).await;
    looping.await.unwrap();
    let open = sqlx::query_scalar!(
        r#"select count(*) as "count!" from ops.job_runs where status = $1"#,
        RunStatus::Running as _,
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(open, 0);
    let last =
        sqlx::query_scalar!("select details from ops.job_runs order by started_at desc limit 1")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(last["interrupted"], "the scheduler is shutting down");
    let err = runner.trigger("loop", Trigger::Manual).await.unwrap_err();
    assert!(matches!(err, RunnerError::ShuttingDown), "{err}");
}

#[tokio::test]
async fn specs_that_cannot_work_are_refused_naming_the_setting() {
    let db = TestDb::new().await;
    let job = Arc::new(Slow {
        limit: Duration::ZERO,
    }) as Arc<dyn Job>;
    for (bad, setting) in [
        (
            JobSpec {
                timeout: Duration::ZERO,
                ..spec("a")
            },
            "timeout",
        ),
        (spec("Not A Name"), "name"),
        (
            JobSpec {
                retries: 1000,
                ..spec("b")
            },
            "retries",
        ),
    ] {
        let err = Runner::new(db.pool.clone(), &db.url, "t", vec![(bad, job.clone())])
            .unwrap_err()
            .to_string();
        assert!(err.contains(setting), "{err}");
    }
}

/// Works until told to stop, then fails as a stopped dependency would (a dropped connection, a killed
/// process).
struct FailsWhenStopped;

impl Job for FailsWhenStopped {
    fn run(&self, ctx: RunContext) -> BoxFuture<'_, Result<Outcome, JobError>> {
        Box::pin(async move {
            ctx.cancel.cancelled().await;
            Err(JobError::Retryable("the connection was closed".into()))
        })
    }
}

/// Claims the waiting retrain triggers, as the retrain job does, then ignores being told to stop.
struct Stubborn {
    pool: sqlx::PgPool,
}

impl Job for Stubborn {
    fn run(&self, ctx: RunContext) -> BoxFuture<'_, Result<Outcome, JobError>> {
        Box::pin(async move {
            churn_store::monitoring::claim_retrain_triggers(
                &self.pool,
                ctx.run_id,
                churn_store::monitoring::RetrainReason::Manual,
            )
            .await
            .map_err(|e| JobError::Fatal(e.to_string()))?;
            ctx.committed(7);
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(Outcome::default())
        })
    }
}

async fn status_error_details(
    db: &TestDb,
    run_id: uuid::Uuid,
) -> (String, Option<String>, serde_json::Value, Option<i64>) {
    sqlx::query_as(
        "select status, error, details, rows_affected from ops.job_runs where job_run_id = $1",
    )
    .bind(run_id)
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_run_that_errs_because_shutdown_stopped_it_is_interrupted_not_failed_and_not_retried() {
    let db = TestDb::new().await;
    let runner = runner(
        &db,
        "test",
        vec![(
            JobSpec {
                retries: 3,
                ..spec("stopped")
            },
            Arc::new(FailsWhenStopped) as Arc<dyn Job>,
        )],
    );
    let run_id = runner.trigger("stopped", Trigger::Manual).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    runner.shutdown(Duration::from_secs(5)).await;
    let (status, error, details, _) = status_error_details(&db, run_id).await;
    assert_eq!(status, "interrupted", "{details}");
    assert_eq!(error, None);
    assert_eq!(details["interrupted"], "the scheduler is shutting down");
    assert_eq!(details["error"], "the connection was closed");
    assert_eq!(details["attempts"], 1, "a stopped run is not retried");
}

#[tokio::test]
async fn a_run_still_going_at_the_end_of_the_grace_is_recorded_interrupted_and_its_triggers_wait_again()
 {
    let db = TestDb::new().await;
    let waiting: i64 = sqlx::query_scalar(
        "insert into ops.retrain_triggers (reason) values ('dataset_drift') returning trigger_id",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let runner = runner(
        &db,
        "test",
        vec![(
            spec("stubborn"),
            Arc::new(Stubborn {
                pool: db.pool.clone(),
            }) as Arc<dyn Job>,
        )],
    );
    let run_id = runner.trigger("stubborn", Trigger::Manual).await.unwrap();
    let claimed = || async {
        sqlx::query_scalar::<_, Option<uuid::Uuid>>(
            "select job_run_id from ops.retrain_triggers where trigger_id = $1",
        )
        .bind(waiting)
        .fetch_one(&db.pool)
        .await
        .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while claimed().await != Some(run_id) {
        assert!(
            Instant::now() < deadline,
            "the run never claimed the trigger"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    runner.shutdown(Duration::from_secs(2)).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let (status, error, details, rows) = status_error_details(&db, run_id).await;
    assert_eq!(status, "interrupted", "{details}");
    assert_eq!(error, None);
    assert!(
        details["interrupted"]
            .as_str()
            .unwrap()
            .contains("did not stop within the shutdown grace"),
        "{details}"
    );
    assert_eq!(rows, Some(7), "what it committed is recorded");
    assert_eq!(claimed().await, None, "the claimed trigger waits again");
    // Only what was waiting goes back: nothing of the run's own is left waiting.
    let waiting_now: i64 =
        sqlx::query_scalar("select count(*) from ops.retrain_triggers where job_run_id is null")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(waiting_now, 1);
}

//! Stopping dbt: on cancellation (the scheduler's SIGTERM) and on timeout, dbt's process group gets
//! SIGTERM, then SIGKILL after the grace period, and the call reports why it stopped.

use std::time::{Duration, Instant};

use churn_dbt::{BuildOptions, Error};

use crate::helpers::Warehouse;

#[tokio::test]
async fn a_cancelled_build_is_stopped_and_reported_as_cancelled() {
    let w = Warehouse::new(200, |p| p.kill_grace(Duration::from_secs(2))).await;
    // cancel once dbt is at work in the database, as the scheduler's SIGTERM would find it
    let cancel = w.cancel.clone();
    let pool = w.pool().clone();
    tokio::spawn(async move {
        for _ in 0..300 {
            let sessions: i64 = sqlx::query_scalar(
                "select count(*) from pg_stat_activity
                 where datname = current_database() and application_name like 'churn-dbt-%'",
            )
            .fetch_one(&pool)
            .await
            .unwrap_or(0);
            if sessions > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        cancel.cancel();
    });
    let started = Instant::now();

    let err = w
        .dbt
        .build(&BuildOptions::default(), &w.cancel)
        .await
        .expect_err("cancelled");

    assert!(matches!(err, Error::Cancelled { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(
        !w.dbt
            .params()
            .target_dir()
            .join("run_results.json")
            .exists(),
        "a stopped build reports no results"
    );
    let sessions = w
        .count(
            "select count(*) from pg_stat_activity
             where datname = current_database() and application_name like 'churn-dbt-%'",
        )
        .await;
    assert_eq!(sessions, 0, "the stopped dbt left no session behind");
    // a token cancelled before the start does not start dbt at all
    let err = w
        .dbt
        .build(&BuildOptions::default(), &w.cancel)
        .await
        .expect_err("cancelled");
    assert!(err.to_string().contains("not started"), "{err}");
}

#[tokio::test]
async fn a_build_past_its_timeout_is_stopped_and_reported_with_the_timeout() {
    let w = Warehouse::new(200, |p| {
        p.timeout(Duration::from_secs(2))
            .kill_grace(Duration::from_secs(1))
    })
    .await;
    let started = Instant::now();

    let err = w
        .dbt
        .build(&BuildOptions::default(), &w.cancel)
        .await
        .expect_err("timed out");

    let Error::TimedOut { timeout, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(*timeout, Duration::from_secs(2));
    assert!(
        err.to_string().contains("did not finish within 2s"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

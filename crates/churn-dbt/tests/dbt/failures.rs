//! Builds that fail: rows the database's own constraints allow but the dbt tests refuse, each failing
//! test named in the outcome, in the job's error and in ops; and a database dbt cannot reach.

use std::collections::BTreeSet;

use churn_dbt::{BuildOptions, DbtParams, Error, InvocationStatus, NodeStatus};

use crate::helpers::{Warehouse, dbt_executable, project_dir};

/// The failed nodes' unique ids.
fn failed(outcome: &churn_dbt::DbtOutcome) -> BTreeSet<String> {
    outcome
        .failures()
        .into_iter()
        .map(|f| f.unique_id)
        .collect()
}

/// The failed nodes ops recorded for the job run's build, with status and failing-row count.
async fn recorded_failures(w: &Warehouse) -> Vec<(String, String, Option<i64>)> {
    sqlx::query_as(
        "select r.unique_id, r.status, r.failures from ops.dbt_node_results r
         join ops.dbt_invocations i using (invocation_id)
         where i.job_run_id = $1 and i.command = 'build' and r.status in ('error', 'fail', 'runtime error')
         order by r.unique_id",
    )
    .bind(w.job_run_id)
    .fetch_all(w.pool())
    .await
    .expect("ops rows")
}

/// Two customers with some tenure and no prediction by version 1 yet.
async fn two_customers(w: &Warehouse) -> (uuid::Uuid, uuid::Uuid) {
    let ids: Vec<(uuid::Uuid,)> = sqlx::query_as(
        "select customer_id from churn.customers c
         where tenure_months > 0
           and not exists (select 1 from churn.classified k where k.customer_id = c.customer_id and k.model_version = 1)
         order by customer_id limit 2",
    )
    .fetch_all(w.pool())
    .await
    .expect("customers");
    (ids[0].0, ids[1].0)
}

#[tokio::test]
async fn broken_source_rows_the_database_allows_fail_the_tests_that_check_them_and_hold_back_the_marts()
 {
    let w = Warehouse::new(1000, |p| p).await;
    let (first, second) = two_customers(&w).await;
    // a prediction by a model version the registry has never heard of
    sqlx::query(
        "insert into churn.classified (customer_id, model_name, model_version, churn_probability,
                                       predicted_churn_label, threshold)
         values ($1, 'churn-classifier', 7, 0.7, true, 0.5)",
    )
    .bind(first)
    .execute(w.pool())
    .await
    .expect("the CHECKs allow an unregistered version");
    // a customer billed before their first month
    sqlx::query(
        "update churn.customers set tenure_months = 0, total_charges = 120 where customer_id = $1",
    )
    .bind(second)
    .execute(w.pool())
    .await
    .expect("the CHECKs allow total charges at tenure 0");

    let outcome = w
        .dbt
        .run(w.pool(), Some(w.job_run_id), &w.cancel)
        .await
        .expect("dbt ran");

    assert!(!outcome.succeeded());
    assert_eq!(outcome.build.status, InvocationStatus::Failure);
    assert_eq!(outcome.build.exit_code, Some(1));
    let expected: BTreeSet<String> = [
        "test.churn.assert_every_prediction_model_version_is_registered",
        "test.churn.assert_customers_follow_telco_business_rules",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(failed(&outcome), expected);
    let error = outcome.error_message().expect("the job fails");
    for id in &expected {
        assert!(error.contains(id.as_str()), "{error}");
    }
    assert!(error.contains("Got 1 result"), "dbt's own message: {error}");
    // dbt build's circuit breaker: what reads the broken sources is not refreshed, and is named
    assert!(
        outcome
            .skipped()
            .contains(&"model.churn.fct_churn_prediction"),
        "{error}"
    );
    assert!(error.contains("skipped as a consequence"), "{error}");

    let recorded = recorded_failures(&w).await;
    let recorded_ids: BTreeSet<String> = recorded.iter().map(|r| r.0.clone()).collect();
    assert_eq!(recorded_ids, expected);
    assert!(
        recorded.iter().all(|r| r.1 == "fail" && r.2 == Some(1)),
        "{recorded:?}"
    );
    let status: (String, Option<i32>) = sqlx::query_as(
        "select status, exit_code from ops.dbt_invocations where invocation_id = $1",
    )
    .bind(outcome.build.invocation_id)
    .fetch_one(w.pool())
    .await
    .expect("the invocation");
    assert_eq!(status, ("failure".to_owned(), Some(1)));
}

#[tokio::test]
async fn a_prediction_whose_threshold_is_not_its_versions_fails_the_threshold_test_alone() {
    let w = Warehouse::new(1000, |p| p).await;
    let (customer, _) = two_customers(&w).await;
    // label and probability agree with the row's threshold (so the CHECKs pass), but version 1 was
    // registered with 0.45
    sqlx::query(
        "insert into churn.classified (customer_id, model_name, model_version, churn_probability,
                                       predicted_churn_label, threshold)
         values ($1, 'churn-classifier', 1, 0.6, false, 0.9)",
    )
    .bind(customer)
    .execute(w.pool())
    .await
    .expect("the CHECKs allow a label consistent with a wrong threshold");

    let outcome = w
        .dbt
        .run(w.pool(), Some(w.job_run_id), &w.cancel)
        .await
        .expect("dbt ran");

    let expected =
        BTreeSet::from(["test.churn.assert_predicted_label_matches_threshold".to_owned()]);
    assert_eq!(failed(&outcome), expected);
    assert!(
        outcome.skipped().is_empty(),
        "nothing reads the fact's test: {:?}",
        outcome.skipped()
    );
    assert!(
        outcome
            .build
            .nodes_of(churn_dbt::ResourceType::Model)
            .all(|n| n.status == NodeStatus::Success)
    );
    let error = outcome.error_message().expect("the job fails");
    assert!(
        error.contains("test.churn.assert_predicted_label_matches_threshold (fail: Got 1 result"),
        "{error}"
    );
    let recorded = recorded_failures(&w).await;
    assert_eq!(
        recorded,
        vec![(
            "test.churn.assert_predicted_label_matches_threshold".to_owned(),
            "fail".to_owned(),
            Some(1)
        )]
    );
}

#[tokio::test]
async fn a_database_dbt_cannot_reach_fails_the_run_with_dbts_own_words() {
    let db = churn_testkit::TestDb::new().await;
    let target = tempfile::tempdir().expect("target");
    let params = DbtParams::new(project_dir())
        .executable(dbt_executable())
        .target_dir(target.path())
        .check()
        .expect("valid");
    let mut url = url::Url::parse(&db.url).expect("url");
    url.set_path("churn_test_no_such_database");
    let dbt = churn_dbt::Dbt::new(params, url.as_str()).expect("runner");

    let err = dbt
        .build(&BuildOptions::default(), &Default::default())
        .await
        .expect_err("no database");

    let Error::Failed {
        exit_code, tail, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(*exit_code, Some(2));
    assert!(tail.contains("churn_test_no_such_database"), "{tail}");
    assert!(tail.contains("does not exist"), "{tail}");
}

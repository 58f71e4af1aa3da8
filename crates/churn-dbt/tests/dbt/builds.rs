//! Builds that pass: the first one (every model, the snapshot and every test, recorded in ops), the
//! incremental fact growing by exactly the new predictions, and the snapshot keeping a changed customer's
//! history.

use churn_dbt::{BuildOptions, InvocationStatus, NodeStatus, ResourceType};

use crate::helpers::{CHAMPION, CHAMPION_THRESHOLD, FORMER_PREDICTIONS, Warehouse};

const FACT: &str = "model.churn.fct_churn_prediction";

type Time = chrono::DateTime<chrono::Utc>;
/// contract, actual_churn_label, dbt_valid_from, dbt_valid_to
type SnapshotRow = (String, Option<bool>, Time, Option<Time>);

#[tokio::test]
async fn a_first_build_passes_every_test_and_its_results_are_recorded_in_ops() {
    let w = Warehouse::new(3000, |p| p.generate_docs(true)).await;

    let outcome = w
        .dbt
        .run(w.pool(), Some(w.job_run_id), &w.cancel)
        .await
        .expect("dbt ran");

    assert!(outcome.succeeded(), "{:?}", outcome.error_message());
    let build = &outcome.build;
    assert_eq!(build.status, InvocationStatus::Success);
    assert!(build.nodes_of(ResourceType::Model).count() >= 20);
    assert_eq!(build.nodes_of(ResourceType::Snapshot).count(), 1);
    assert!(build.nodes_of(ResourceType::Test).count() >= 100);
    for node in &build.nodes {
        assert!(
            matches!(node.status, NodeStatus::Success | NodeStatus::Pass),
            "{} {:?}: {:?}",
            node.unique_id,
            node.status,
            node.message
        );
    }
    assert_eq!(
        build.node(FACT).and_then(|n| n.rows_affected),
        Some((3000 + FORMER_PREDICTIONS) as i64)
    );

    // the results, in ops, under the scheduler's job run
    let recorded = w
        .count(&format!(
            "select count(*) from ops.dbt_invocations where job_run_id = '{}'",
            w.job_run_id
        ))
        .await;
    assert_eq!(recorded, 2, "the freshness check and the build");
    let nodes = w
        .count(&format!(
            "select count(*) from ops.dbt_node_results where invocation_id = '{}'
               and status in ('success', 'pass')",
            build.invocation_id
        ))
        .await;
    assert_eq!(nodes, build.nodes.len() as i64);
    let fact_row: (String, String, Option<i64>) = sqlx::query_as(
        "select resource_type, status, rows_affected from ops.dbt_node_results
         where invocation_id = $1 and unique_id = $2",
    )
    .bind(build.invocation_id)
    .bind(FACT)
    .fetch_one(w.pool())
    .await
    .expect("the fact's result is recorded");
    assert_eq!(fact_row, ("model".into(), "success".into(), Some(3500)));
    let fresh = w
        .count(&format!(
            "select count(*) from ops.dbt_source_freshness where invocation_id = '{}' and status = 'pass'",
            outcome.freshness.invocation_id
        ))
        .await;
    assert_eq!(
        fresh, 6,
        "customers, synthesized, classified, model_metrics, drift, job_runs"
    );

    // the marts hold what the warehouse holds
    assert_eq!(
        w.count("select count(*) from marts.fct_churn_prediction")
            .await,
        3500
    );
    assert_eq!(
        w.count("select count(*) from marts.dim_customer").await,
        3000
    );
    assert_eq!(
        w.count("select count(*) from marts.dim_location").await,
        w.count("select count(distinct zip_code) from churn.customers")
            .await
    );
    assert_eq!(
        w.count("select count(*) from marts.dim_services").await,
        387
    );
    assert_eq!(w.count("select count(*) from marts.dim_contract").await, 24);
    assert_eq!(
        w.count("select count(*) from snapshots.customers_snapshot")
            .await,
        3000
    );
    assert_eq!(w.count("select count(*) from marts.fct_drift").await, 2);
    assert_eq!(
        w.count("select count(*) from marts.fct_model_metrics")
            .await,
        2
    );

    // champion periods: v1 from its promotion until v2's, v2 since then
    let periods: Vec<(i32, bool, i64, bool)> = sqlx::query_as(
        "select model_version, is_current_champion, champion_periods, last_champion_until is null
         from marts.dim_model_version where model_name = 'churn-classifier' order by model_version",
    )
    .fetch_all(w.pool())
    .await
    .expect("dim_model_version");
    assert_eq!(periods, vec![(1, false, 1, false), (2, true, 1, true)]);
    let v1_until_is_v2_from = w
        .count(
            "select count(*) from marts.dim_model_version v1 join marts.dim_model_version v2
               on v1.model_name = v2.model_name and v1.model_version = 1 and v2.model_version = 2
             where v1.last_champion_until = v2.first_champion_from",
        )
        .await;
    assert_eq!(v1_until_is_v2_from, 1);

    // the docs site
    assert_eq!(outcome.docs, Some(Ok(())));
    let docs = w.dbt.params().docs_dir();
    for file in [
        "index.html",
        "manifest.json",
        "catalog.json",
        "static_index.html",
    ] {
        assert!(docs.join(file).is_file(), "{file} generated");
    }
    let catalog = std::fs::read_to_string(docs.join("catalog.json")).expect("catalog");
    assert!(catalog.contains("model.churn.fct_churn_prediction"));
}

#[tokio::test]
async fn new_customers_reach_the_incremental_fact_exactly_once_and_old_rows_keep_their_load_time() {
    let mut w = Warehouse::new(2000, |p| p).await;
    let first = w
        .dbt
        .build(&BuildOptions::default(), &w.cancel)
        .await
        .expect("first build");
    assert_eq!(first.status, InvocationStatus::Success);
    let before = w
        .count("select count(*) from marts.fct_churn_prediction")
        .await;
    assert_eq!(before, (2000 + FORMER_PREDICTIONS) as i64);
    let fingerprint = "select md5(string_agg(prediction_key::text || loaded_at::text, ',' order by prediction_key))
                       from marts.fct_churn_prediction";
    let old_rows: String = sqlx::query_scalar(fingerprint)
        .fetch_one(w.pool())
        .await
        .expect("fingerprint");

    let new = w.add_customers(1000, "synthetic").await;
    w.classify(&new, CHAMPION, CHAMPION_THRESHOLD).await;
    let second = w
        .dbt
        .build(&BuildOptions::default(), &w.cancel)
        .await
        .expect("second build");

    assert_eq!(
        second.status,
        InvocationStatus::Success,
        "{:?}",
        second.nodes.iter().find(|n| n.status.is_failure())
    );
    assert_eq!(
        w.count("select count(*) from marts.fct_churn_prediction")
            .await,
        before + 1000
    );
    assert_eq!(second.node(FACT).and_then(|n| n.rows_affected), Some(1000));
    let new_in_fact: Vec<(uuid::Uuid,)> = sqlx::query_as(
        "select customer_id from marts.fct_churn_prediction
         where loaded_at > (select min(loaded_at) from marts.fct_churn_prediction) order by customer_id",
    )
    .fetch_all(w.pool())
    .await
    .expect("rows of the second build");
    let mut expected = new.clone();
    expected.sort();
    assert_eq!(
        new_in_fact.into_iter().map(|(id,)| id).collect::<Vec<_>>(),
        expected,
        "exactly the new customers' predictions, loaded by the second build"
    );
    let unchanged: String = sqlx::query_scalar(
        "select md5(string_agg(prediction_key::text || loaded_at::text, ',' order by prediction_key))
         from marts.fct_churn_prediction where loaded_at = (select min(loaded_at) from marts.fct_churn_prediction)",
    )
    .fetch_one(w.pool())
    .await
    .expect("fingerprint");
    assert_eq!(unchanged, old_rows, "old rows keep their load time");
    assert_eq!(
        w.count("select count(*) from marts.dim_customer").await,
        3000
    );

    // a late prediction inside the lookback window is caught; one older than the window is not
    let late: Vec<(uuid::Uuid,)> = sqlx::query_as(
        "select customer_id from churn.customers c
         where not exists (select 1 from churn.classified k where k.customer_id = c.customer_id and k.model_version = 1)
         order by customer_id limit 2",
    )
    .fetch_all(w.pool())
    .await
    .expect("customers without a v1 prediction");
    for ((customer,), hours_ago) in late.iter().zip([1, 30]) {
        sqlx::query(
            "insert into churn.classified (customer_id, model_name, model_version, churn_probability,
                                           predicted_churn_label, threshold, classified_at)
             values ($1, 'churn-classifier', 1, 0.5, true, 0.45, now() - make_interval(hours => $2))",
        )
        .bind(customer)
        .bind(hours_ago)
        .execute(w.pool())
        .await
        .expect("late prediction");
    }
    let third = w
        .dbt
        .build(&BuildOptions::default(), &w.cancel)
        .await
        .expect("third build");
    assert_eq!(third.status, InvocationStatus::Success);
    assert_eq!(third.node(FACT).and_then(|n| n.rows_affected), Some(1));
    let caught: Vec<(uuid::Uuid,)> = sqlx::query_as(
        "select customer_id from marts.fct_churn_prediction where model_version = 1 and customer_id = any($1)",
    )
    .bind(late.iter().map(|(id,)| *id).collect::<Vec<_>>())
    .fetch_all(w.pool())
    .await
    .expect("late rows");
    assert_eq!(
        caught,
        vec![late[0]],
        "the hour-old prediction, not the 30-hour-old one"
    );
}

#[tokio::test]
async fn a_customer_whose_contract_changes_gets_a_second_snapshot_row_and_the_first_is_closed() {
    // No lookback: every customer was written before the first build, so the second build can find the
    // changed customer only through its updated_at.
    let w = Warehouse::new(1500, |p| p.var("snapshot_lookback_hours", 0)).await;
    w.dbt
        .build(&BuildOptions::default(), &w.cancel)
        .await
        .expect("first build");
    let customer: uuid::Uuid = sqlx::query_scalar(
        "select customer_id from churn.customers where contract = 'Month-to-month' order by customer_id limit 1",
    )
    .fetch_one(w.pool())
    .await
    .expect("a month-to-month customer");
    let (loaded_at, contract_key): (Time, uuid::Uuid) = sqlx::query_as(
        "select loaded_at, contract_key from marts.fct_churn_prediction where customer_id = $1 and model_version = 2",
    )
    .bind(customer)
    .fetch_one(w.pool())
    .await
    .expect("the customer's prediction");

    // the ingest job learns the customer moved to a two-year contract and churned anyway
    sqlx::query(
        "update churn.customers set contract = 'Two year', monthly_charges = monthly_charges + 10,
                churn_label = true
         where customer_id = $1",
    )
    .bind(customer)
    .execute(w.pool())
    .await
    .expect("update");
    let second = w
        .dbt
        .build(&BuildOptions::default(), &w.cancel)
        .await
        .expect("second build");
    assert_eq!(second.status, InvocationStatus::Success);

    let history: Vec<SnapshotRow> =
        sqlx::query_as(
            "select contract, actual_churn_label, dbt_valid_from, dbt_valid_to from snapshots.customers_snapshot
             where customer_id = $1 order by dbt_valid_from",
        )
        .bind(customer)
        .fetch_all(w.pool())
        .await
        .expect("the customer's history");
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[0].0, "Month-to-month");
    assert_eq!(
        history[0].3,
        Some(history[1].2),
        "the first row is closed where the second opens"
    );
    assert_eq!(
        (history[1].0.as_str(), history[1].1, history[1].3),
        ("Two year", Some(true), None)
    );
    assert_eq!(
        w.count("select count(*) from snapshots.customers_snapshot")
            .await,
        1501,
        "no other customer changed"
    );

    // the fact follows the customer (contract and label), keeping the row's first load time
    let (loaded_after, contract_after, actual, contract): (Time, uuid::Uuid, Option<bool>, String) =
        sqlx::query_as(
            "select f.loaded_at, f.contract_key, f.actual_churn_label, c.contract
             from marts.fct_churn_prediction f join marts.dim_contract c using (contract_key)
             where f.customer_id = $1 and f.model_version = 2",
        )
        .bind(customer)
        .fetch_one(w.pool())
        .await
        .expect("the customer's prediction");
    assert_eq!(loaded_after, loaded_at);
    assert_ne!(contract_after, contract_key);
    assert_eq!((actual, contract.as_str()), (Some(true), "Two year"));
}

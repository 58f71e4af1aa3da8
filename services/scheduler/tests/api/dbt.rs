//! The dbt job through the scheduler, on rows the generate job wrote: a full build that passes with every
//! test and its results in ops, an incremental build that adds exactly the new predictions, SCD2 history
//! of a changed customer, and a broken row that fails the right test, named in the run. Real traffic: the
//! logged predictions and outcomes become facts incrementally, and a late outcome reaches its prediction.

use crate::stack::Stack;

fn dbt_executable() -> String {
    std::env::var("CHURN_DBT").unwrap_or_else(|_| {
        panic!(
            "CHURN_DBT is not set: run scripts/test, or set CHURN_DBT=$(scripts/venv --dbt)/bin/dbt"
        )
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dbt_job_builds_incrementally_keeps_history_and_names_the_test_a_broken_row_fails() {
    let stack = Stack::start().await;
    let target = tempfile::tempdir().unwrap();
    let project = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dbt");
    let dbt = dbt_executable();
    let scheduler = stack
        .scheduler(&[
            ("GENERATE_SCHEDULE", "manual"),
            ("GENERATE_CUSTOMERS_PER_RUN", "1000"),
            ("GENERATE_BATCH_SIZE", "500"),
            ("DBT_ENABLED", "true"),
            ("DBT_SCHEDULE", "manual"),
            ("DBT_RETRIES", "0"),
            ("DBT_EXECUTABLE", &dbt),
            ("DBT_PROJECT_DIR", project.to_str().unwrap()),
            ("DBT_TARGET_DIR", target.path().to_str().unwrap()),
        ])
        .await;
    for _ in 0..3 {
        assert_eq!(
            stack.run_job(&scheduler, "generate").await["status"],
            "succeeded"
        );
    }
    log_calls(&stack, 0, 300).await;
    // Outcomes for the first 100 customers by customer id, observed after their calls (one observed
    // before a call does not judge it), two of them observed twice (the later wins), and one for the whole
    // of a request. c-3's only outcome predates its call: it stays unlabelled.
    sqlx::raw_sql(
        "insert into serving.outcomes (customer_id, churned, observed_at, source, caller)
         select 'c-' || g, g % 2 = 0, now() + interval '1 hour', 'api', 'crm'
         from generate_series(1, 100) g where g <> 3;
         insert into serving.outcomes (customer_id, churned, observed_at, source, caller)
         values ('c-2', false, now() + interval '30 minutes', 'ingested', 'ingest'),
                ('c-1', true, now() + interval '2 hours', 'api', 'crm'),
                ('c-3', true, now() - interval '1 day', 'api', 'crm');
         insert into serving.outcomes (request_id, churned, observed_at, source, caller)
         select request_id, true, now(), 'api', 'crm' from serving.inference_log
         where customer_id = 'c-200';",
    )
    .execute(&stack.db.pool)
    .await
    .unwrap();

    // A first build: every model, the snapshot and every test pass; the results are in ops.
    let first = stack.run_job(&scheduler, "dbt").await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let run_id: uuid::Uuid = first["job_run_id"].as_str().unwrap().parse().unwrap();
    let commands: Vec<String> = sqlx::query_scalar(
        "select command from ops.dbt_invocations where job_run_id = $1 order by command",
    )
    .bind(run_id)
    .fetch_all(&stack.db.pool)
    .await
    .unwrap();
    assert_eq!(commands, ["build", "source freshness"]);
    let (nodes, tests, bad): (i64, i64, i64) = sqlx::query_as(
        "select count(*), count(*) filter (where r.resource_type = 'test'),
                count(*) filter (where r.status not in ('success', 'pass'))
         from ops.dbt_node_results r join ops.dbt_invocations i using (invocation_id)
         where i.job_run_id = $1 and i.command = 'build'",
    )
    .bind(run_id)
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    assert!(nodes > 50 && tests > 30, "{nodes} nodes, {tests} tests");
    assert_eq!(bad, 0);
    let facts = "select count(*) from marts.fct_churn_prediction";
    assert_eq!(stack.count(facts).await, 3000);
    let logged = "select count(*) from marts.fct_inference_log";
    let labelled =
        "select count(*) from marts.fct_inference_log where actual_churn_label is not null";
    assert_eq!(stack.count(logged).await, 300);
    assert_eq!(stack.count(labelled).await, 100);
    assert_eq!(
        stack.count("select count(*) from marts.fct_outcomes").await,
        103
    );
    let latest: Vec<(String, bool, String)> = sqlx::query_as(
        "select caller_customer_id, actual_churn_label, prediction_outcome from marts.fct_inference_log
         where caller_customer_id in ('c-1', 'c-2') order by 1",
    )
    .fetch_all(&stack.db.pool)
    .await
    .unwrap();
    let outcome = |p: f64, churned: bool| match (p >= 0.5, churned) {
        (true, true) => "true positive",
        (true, false) => "false positive",
        (false, true) => "false negative",
        (false, false) => "true negative",
    };
    // The latest observation wins: c-1 stayed in an hour and churned in two; c-2 stayed in half an hour
    // (an ingested file) and churned in an hour.
    assert_eq!(
        latest,
        [
            ("c-1".to_owned(), true, outcome(0.01, true).to_owned()),
            ("c-2".to_owned(), true, outcome(0.02, true).to_owned())
        ]
    );
    // The docs site is served.
    let docs = stack
        .client
        .get(scheduler.url("/dbt/docs/static_index.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("dbt"));

    // 1,000 new customers: the incremental fact gains exactly those.
    let loaded_before: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select max(loaded_at) from marts.fct_churn_prediction")
            .fetch_one(&stack.db.pool)
            .await
            .unwrap();
    assert_eq!(
        stack.run_job(&scheduler, "generate").await["status"],
        "succeeded"
    );
    // A known customer changes contract and charges (as an ingested update would).
    let changed: uuid::Uuid = sqlx::query_scalar(
        "update churn.customers set contract = 'Two year', monthly_charges = monthly_charges + 10
         where customer_id = (select customer_id from churn.customers where contract <> 'Two year'
                              order by customer_id limit 1)
         returning customer_id",
    )
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    // 100 more calls, and an outcome weeks late for a call the first build loaded unlabelled.
    log_calls(&stack, 300, 100).await;
    sqlx::query(
        "insert into serving.outcomes (customer_id, churned, observed_at, source, caller)
         values ('c-250', true, now(), 'api', 'crm')",
    )
    .execute(&stack.db.pool)
    .await
    .unwrap();
    let second = stack.run_job(&scheduler, "dbt").await;
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(stack.count(facts).await, 4000);
    assert_eq!(stack.count(logged).await, 400);
    assert_eq!(stack.count(labelled).await, 101);
    assert_eq!(
        stack
            .count(
                "select count(*) from marts.fct_inference_log
                 where caller_customer_id = 'c-250' and actual_churn_label and updated_at > loaded_at"
            )
            .await,
        1
    );
    let rewritten: i64 = sqlx::query_scalar(
        "select count(*) from marts.fct_churn_prediction where loaded_at > $1
           and customer_id in (select customer_id from churn.classified order by classification_id limit 3000)
           and customer_id <> $2",
    )
    .bind(loaded_before)
    .bind(changed)
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    assert_eq!(rewritten, 0, "old facts keep their load time");
    let history: Vec<(String, bool)> = sqlx::query_as(
        "select contract, dbt_valid_to is null from snapshots.customers_snapshot
         where customer_id = $1 order by dbt_valid_from",
    )
    .bind(changed)
    .fetch_all(&stack.db.pool)
    .await
    .unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(!history[0].1, "the first version is closed");
    assert_eq!(history[1], ("Two year".to_owned(), true));

    // A row the database allows but the tests refuse: a prediction by a model version that was never
    // registered. The run fails naming the test; ops records it as failed.
    sqlx::query(
        "insert into churn.classified (customer_id, model_name, model_version, churn_probability,
                                       predicted_churn_label, threshold)
         values ($1, 'churn-classifier', 99, 0.7, true, 0.5)",
    )
    .bind(changed)
    .execute(&stack.db.pool)
    .await
    .unwrap();
    let third = stack.run_job(&scheduler, "dbt").await;
    assert_eq!(third["status"], "failed", "{third}");
    let error = third["error"].as_str().unwrap();
    assert!(
        error.contains("assert_every_prediction_model_version_is_registered"),
        "{error}"
    );
    let run_id: uuid::Uuid = third["job_run_id"].as_str().unwrap().parse().unwrap();
    let failed: Vec<String> = sqlx::query_scalar(
        "select r.unique_id from ops.dbt_node_results r join ops.dbt_invocations i using (invocation_id)
         where i.job_run_id = $1 and r.status = 'fail' order by 1",
    )
    .bind(run_id)
    .fetch_all(&stack.db.pool)
    .await
    .unwrap();
    assert!(
        failed
            .iter()
            .any(|t| t.contains("assert_every_prediction_model_version_is_registered")),
        "{failed:?}"
    );
    scheduler.stop().await;
}

/// `n` single and batch calls by the champion (customer ids `c-<first + 1>`…), as the classifier logs them.
async fn log_calls(stack: &Stack, first: i32, n: i32) {
    sqlx::query(
        "insert into serving.inference_log (request_id, item, predicted_at, endpoint, source, caller,
             customer_id, features, contract, internet_service, senior_citizen, model_name, model_version,
             arm, probability, label, threshold, latency_us)
         select gen_random_uuid(), 0, now() - make_interval(secs => g),
                case when g % 2 = 0 then 'batch' else 'predict' end,
                case when g % 2 = 0 then 'batch' else 'api' end, 'crm', 'c-' || g, '{}', 'One year', 'DSL',
                false, 'churn-classifier', 1, 'champion', (g % 100) / 100.0, (g % 100) / 100.0 >= 0.5, 0.5,
                1500
         from generate_series($1 + 1, $1 + $2) as g",
    )
    .bind(first)
    .bind(n)
    .execute(&stack.db.pool)
    .await
    .unwrap();
}

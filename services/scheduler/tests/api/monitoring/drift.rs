//! The drift job against churn-monitor (itself checked against Evidently), on the warehouse and on the
//! classifier's logged traffic, with its retrain trigger and cooldown.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn the_drift_job_stores_churn_monitors_statistics_and_a_drifted_window_triggers_one_retrain()
{
    let db = TestDb::new().await;
    let s3 = TestS3::start().await;
    let v1 = register_champion(&db, &s3).await;
    let registry = Registry::new(db.pool.clone(), s3.open());
    let model = churn_automl::LoadedModel::new(champion_model()).unwrap();
    let seed = seed();
    let score = |rows: Vec<Customer>| -> Vec<(Customer, Vec<(i32, f64)>)> {
        let p = model.predict(&rows);
        rows.into_iter()
            .zip(p)
            .map(|(c, p)| (c, vec![(v1.version.get(), p)]))
            .collect()
    };
    let (requests, mut requested) = tokio::sync::mpsc::channel(1);
    let watch = RetrainWatch {
        policy: TriggerPolicy {
            model_name: MODEL.into(),
            on_drift: true,
            auc_drop: 0.0,
            auc_cohort: "day".into(),
            synthetic_triggers: false,
            auc_min_rows: 1,
            new_labels: 0,
            cooldown: Duration::from_secs(3600),
        },
        requests,
    };
    let params = DriftParams {
        min_rows: 500,
        max_rows: 1500,
        options: churn_monitor::DriftOptions::new().drift_share(0.2),
        seed_data: churn_testkit::seed_data_path(),
        ..DriftParams::default()
    };
    let job = DriftJob::new(
        params.clone().check().unwrap(),
        db.pool.clone(),
        registry.clone(),
        Some(watch.clone()),
    );

    // Too few rows: nothing is stored.
    // The seed lists churners first: spread samples over the whole file.
    let sample = |offset: usize, n: usize| -> Vec<Customer> {
        seed.iter()
            .skip(offset)
            .step_by(4)
            .take(n)
            .cloned()
            .collect()
    };
    insert_scored(&db, &score(sample(2, 300)), 0.5, Duration::ZERO).await;
    assert!(job.measure(None).await.unwrap().is_none());

    // 1,500 unshifted customers: every statistic is churn-monitor's on the same rows and reference.
    let current = sample(0, 1500);
    insert_scored(&db, &score(current.clone()), 0.5, Duration::ZERO).await;
    let (run, drift) = job.measure(None).await.unwrap().unwrap();
    let profile = churn_monitor::ReferenceProfile::from_json(
        &registry.load_profile(&v1).await.unwrap().unwrap(),
    )
    .unwrap();
    let options = params.options.check().unwrap();
    let expected = churn_monitor::data_drift(&profile, &current, &options).unwrap();
    assert_eq!(drift, expected);
    assert!(!drift.dataset_drift, "{drift:?}");
    let stored: Vec<(String, String, f64, f64, bool, f64)> = sqlx::query_as(
        "select feature, statistic, value, threshold, drifted, psi from monitoring.drift
         where run_id = $1 order by drift_id",
    )
    .bind(run.run_id)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(stored.len(), 25);
    for (row, column) in stored.iter().zip(&expected.columns) {
        assert_eq!(row.0, column.column);
        assert_eq!(row.1, column.stattest.name());
        assert_eq!(
            (row.2, row.3, row.4, row.5),
            (column.score, column.threshold, column.drifted, column.psi)
        );
    }
    let run_row: (i32, i32, bool, Option<String>) = sqlx::query_as(
        "select n_current, n_drifted, dataset_drift, prediction_statistic from monitoring.drift_runs
         where run_id = $1",
    )
    .bind(run.run_id)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(run_row.0, 1500);
    assert_eq!(run_row.1 as usize, expected.n_drifted);
    assert!(!run_row.2);
    assert!(run_row.3.is_some(), "prediction drift measured too");
    assert_eq!(watch.check_and_request(&db.pool, &registry).await, None);

    // The newest 1,500 customers shifted: the dataset drifts, one trigger is stored and one run asked for.
    insert_scored(&db, &score(shifted(&sample(1, 1500))), 0.5, Duration::ZERO).await;
    let (_, drift) = job.measure(None).await.unwrap().unwrap();
    assert!(drift.dataset_drift, "{drift:?}");
    let drifted: Vec<&str> = drift
        .columns
        .iter()
        .filter(|c| c.drifted)
        .map(|c| c.column.as_str())
        .collect();
    for column in [
        "monthly_charges",
        "tenure_months",
        "contract",
        "payment_method",
    ] {
        assert!(drifted.contains(&column), "{column} not in {drifted:?}");
    }
    let first = watch.check_and_request(&db.pool, &registry).await.unwrap();
    assert_eq!(first["reason"], "dataset_drift");
    assert_eq!(first["stored"], true);
    assert!(requested.try_recv().is_ok(), "a retrain run was requested");
    // Checked again before a run claims it: the same trigger waits, none is added.
    let again = watch.check_and_request(&db.pool, &registry).await.unwrap();
    assert_eq!(again["waiting"], true);
    assert_eq!(again["trigger_id"], first["trigger_id"]);
    // Claimed by a run, the evidence still holds, but the cooldown keeps a second trigger out.
    let run_id = Uuid::new_v4();
    sqlx::query(
        "insert into ops.job_runs (job_run_id, job_name, trigger) values ($1, 'retrain', 'event')",
    )
    .bind(run_id)
    .execute(&db.pool)
    .await
    .unwrap();
    let claimed = churn_store::monitoring::claim_retrain_triggers(
        &db.pool,
        run_id,
        churn_store::monitoring::RetrainReason::Manual,
    )
    .await
    .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        claimed[0].reason,
        churn_store::monitoring::RetrainReason::DatasetDrift
    );
    assert!(claimed[0].evidence.0["drift_run_id"].is_string());
    let cooling = watch.check_and_request(&db.pool, &registry).await.unwrap();
    assert!(cooling["cooling_down_since"].is_string(), "{cooling}");
    assert_eq!(
        churn_store::monitoring::request_retrain(
            &db.pool,
            churn_store::monitoring::RetrainReason::DatasetDrift,
            &Value::Null,
            Duration::from_secs(3600)
        )
        .await
        .unwrap(),
        match cooling["cooling_down_since"].as_str() {
            Some(since) => TriggerOutcome::CoolingDown {
                last: since.parse::<DateTime<Utc>>().unwrap()
            },
            None => unreachable!(),
        }
    );
    let triggers = sqlx::query("select count(*) as n from ops.retrain_triggers")
        .fetch_one(&db.pool)
        .await
        .unwrap()
        .get::<i64, _>("n");
    assert_eq!(triggers, 1);
}

/// Logs `rows` as the champion's predictions for callers (every other one through a batch), the newest
/// first, `age` ago: the rows the classifier writes to serving.inference_log.
async fn log_traffic(db: &TestDb, version: i32, rows: &[(Customer, f64)], age: Duration) {
    let features: Vec<Value> = rows
        .iter()
        .map(|(c, _)| serde_json::to_value(c).unwrap())
        .collect();
    let probabilities: Vec<f64> = rows.iter().map(|(_, p)| *p).collect();
    sqlx::query(
        "insert into serving.inference_log (request_id, item, predicted_at, endpoint, source, caller,
             features, contract, internet_service, senior_citizen, model_name, model_version, arm,
             probability, label, threshold, latency_us)
         select gen_random_uuid(), 0, now() - make_interval(secs => $3 + n * 0.000001),
                case when n % 2 = 0 then 'batch' else 'predict' end,
                case when n % 2 = 0 then 'batch' else 'api' end, 'crm', f, f ->> 'contract',
                f ->> 'internet_service', f ->> 'senior_citizen' = 'Yes', 'churn-classifier', $4,
                'champion', p, p >= 0.5, 0.5, 1000
         from unnest($1::jsonb[], $2::float8[]) with ordinality as logged (f, p, n)",
    )
    .bind(&features)
    .bind(&probabilities)
    .bind(age.as_secs_f64())
    .bind(version)
    .execute(&db.pool)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn logged_traffic_drifts_apart_from_the_warehouse_when_shifted_and_records_nothing_without_calls()
 {
    let db = TestDb::new().await;
    let s3 = TestS3::start().await;
    let v1 = register_champion(&db, &s3).await;
    let registry = Registry::new(db.pool.clone(), s3.open());
    let model = churn_automl::LoadedModel::new(champion_model()).unwrap();
    let score = |rows: Vec<Customer>| -> Vec<(Customer, f64)> {
        let p = model.predict(&rows);
        rows.into_iter().zip(p).collect()
    };
    let seed = seed();
    let sample = |offset: usize, n: usize| -> Vec<Customer> {
        seed.iter()
            .skip(offset)
            .step_by(4)
            .take(n)
            .cloned()
            .collect()
    };
    let params = DriftParams {
        min_rows: 500,
        max_rows: 1500,
        options: churn_monitor::DriftOptions::new().drift_share(0.2),
        seed_data: churn_testkit::seed_data_path(),
        ..DriftParams::default()
    };
    let job = DriftJob::new(
        params.clone().check().unwrap(),
        db.pool.clone(),
        registry.clone(),
        None,
    );
    let api_runs = "select count(*) from monitoring.drift_runs where source = 'api'";
    let count = |sql: &'static str| {
        let pool = db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };

    // No calls in the window (the warehouse has customers, spread over the whole seed): nothing is
    // recorded for the logged traffic, and that is no failure.
    let spread: Vec<Customer> = seed.iter().skip(5).step_by(11).take(600).cloned().collect();
    insert_scored(
        &db,
        &score(spread)
            .into_iter()
            .map(|(c, p)| (c, vec![(v1.version.get(), p)]))
            .collect::<Vec<_>>(),
        0.5,
        Duration::ZERO,
    )
    .await;
    assert!(job.measure_logged(None).await.unwrap().is_none());
    assert_eq!(count(api_runs).await, 0);
    // Calls older than the window, and too few calls in it, are not enough either.
    log_traffic(
        &db,
        v1.version.get(),
        &score(sample(1, 1500)),
        Duration::from_secs(7200),
    )
    .await;
    log_traffic(
        &db,
        v1.version.get(),
        &score(sample(2, 300)),
        Duration::from_secs(60),
    )
    .await;
    assert!(job.measure_logged(None).await.unwrap().is_none());
    assert_eq!(count(api_runs).await, 0);

    // 1,500 calls from the reference's distribution: the statistics are churn-monitor's on the customers
    // as the callers sent them, no drift, stored with source api; the prediction drift is measured on the
    // probabilities served.
    let current = sample(3, 1500);
    log_traffic(
        &db,
        v1.version.get(),
        &score(current.clone()),
        Duration::ZERO,
    )
    .await;
    let (run, drift) = job.measure_logged(None).await.unwrap().unwrap();
    let profile = churn_monitor::ReferenceProfile::from_json(
        &registry.load_profile(&v1).await.unwrap().unwrap(),
    )
    .unwrap();
    let options = params.options.check().unwrap();
    let expected = churn_monitor::data_drift(&profile, &current, &options).unwrap();
    assert_eq!(run.source, churn_store::monitoring::DriftSource::Api);
    assert_eq!(run.n_current, 1500);
    assert_eq!(drift.columns.len(), expected.columns.len());
    for (ours, theirs) in drift.columns.iter().zip(&expected.columns) {
        assert_eq!(ours.column, theirs.column);
        close(&ours.column, ours.score, theirs.score, 1e-9);
        assert_eq!(ours.drifted, theirs.drifted, "{}", ours.column);
    }
    assert!(!drift.dataset_drift, "{drift:?}");
    let stored: (String, i32, bool, Option<String>) = sqlx::query_as(
        "select source, n_current, dataset_drift, prediction_statistic from monitoring.drift_runs
         where run_id = $1",
    )
    .bind(run.run_id)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        (stored.0.as_str(), stored.1, stored.2),
        ("api", 1500, false)
    );
    assert!(stored.3.is_some(), "prediction drift measured too");
    let (newest, columns) = churn_store::monitoring::newest_drift_run(&db.pool, MODEL, run.source)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(newest.run_id, run.run_id);
    assert_eq!(columns.len(), 25);

    // The newest 1,500 calls shifted: the logged traffic drifts in the columns that moved, while the
    // warehouse's customers (unshifted) keep their own verdict under source warehouse.
    log_traffic(
        &db,
        v1.version.get(),
        &score(shifted(&sample(0, 1500))),
        Duration::ZERO,
    )
    .await;
    let (run, drift) = job.measure_logged(None).await.unwrap().unwrap();
    assert!(drift.dataset_drift, "{drift:?}");
    let drifted: Vec<&str> = drift
        .columns
        .iter()
        .filter(|c| c.drifted)
        .map(|c| c.column.as_str())
        .collect();
    for column in [
        "monthly_charges",
        "tenure_months",
        "contract",
        "payment_method",
    ] {
        assert!(drifted.contains(&column), "{column} not in {drifted:?}");
    }
    let (warehouse, warehouse_drift) = job.measure(None).await.unwrap().unwrap();
    assert_eq!(
        warehouse.source,
        churn_store::monitoring::DriftSource::Warehouse
    );
    assert!(!warehouse_drift.dataset_drift, "{warehouse_drift:?}");
    let by_source: Vec<(String, i64)> = sqlx::query_as(
        "select source, count(*) from monitoring.drift_runs group by source order by source",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        by_source,
        [("api".to_owned(), 2), ("warehouse".to_owned(), 1)]
    );
    // The retrain trigger reads the warehouse's verdict, as before.
    let latest = churn_store::monitoring::latest_drift(
        &db.pool,
        MODEL,
        v1.version,
        Utc::now() - chrono::Duration::hours(1),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(latest.0, warehouse.run_id);
    let api = churn_store::monitoring::latest_drift_of(
        &db.pool,
        MODEL,
        v1.version,
        churn_store::monitoring::DriftSource::Api,
        Utc::now() - chrono::Duration::hours(1),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!((api.0, api.1), (run.run_id, true));
}

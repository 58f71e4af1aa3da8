//! The whole loop through real services: a shifted stream triggers a retrain whose winner the classifier
//! serves within a second with no failed request, and whose loser is shadow-scored as challenger.

use super::*;

/// The seed with its labels flipped and its features shifted: a synthesizer fitted on it makes a stream
/// on which the champion (trained on the seed) is worse than useless.
async fn register_shifted_synthesizer(stack: &Stack) {
    let customers: Vec<Customer> = shifted(&seed())
        .into_iter()
        .map(|c| {
            let churned = c.churn_label.is_some_and(|l| l.is_yes());
            labelled(c, Some(!churned))
        })
        .collect();
    let model = tokio::task::spawn_blocking(move || {
        churn_synth::SynthModel::fit(&customers, churn_synth::FitOptions::default()).unwrap()
    })
    .await
    .unwrap();
    let registry = Registry::new(stack.db.pool.clone(), stack.s3.open());
    let info = churn_models::TrainingInfo {
        data_path: "shifted seed".into(),
        data_sha256: "e".repeat(64),
        train_rows: 7043,
        code_version: "test".into(),
        ..churn_models::TrainingInfo::default()
    };
    let fitted = churn_models::synthesizer::Fitted {
        model,
        seed: 0,
        fit_seconds: 0.0,
    };
    let (version, _) = churn_models::synthesizer::register(&registry, &fitted, &info)
        .await
        .unwrap();
    registry
        .set_alias(
            churn_models::synthesizer::MODEL_NAME,
            &churn_registry::Alias::CHAMPION,
            version.version,
        )
        .await
        .unwrap();
}

/// One `POST /predict` answer as the hammer saw it.
#[derive(Debug)]
struct Answer {
    status: u16,
    version: Option<i64>,
    predicted_at: Option<DateTime<Utc>>,
}

/// Calls `POST /predict` every 20 ms until `stop`, recording every answer.
fn hammer(url: String, stop: tokio_util_stop::Stop) -> tokio::task::JoinHandle<Vec<Answer>> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let customer = serde_json::to_value(&seed()[0]).unwrap();
        let mut answers = Vec::new();
        while !stop.is_set() {
            let answer = match client.post(&url).json(&customer).send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    Answer {
                        status,
                        version: body["model_version"].as_i64(),
                        predicted_at: body["predicted_at"].as_str().and_then(|t| t.parse().ok()),
                    }
                }
                Err(_) => Answer {
                    status: 0,
                    version: None,
                    predicted_at: None,
                },
            };
            answers.push(answer);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        answers
    })
}

/// A flag the hammer polls.
mod tokio_util_stop {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[derive(Clone, Default)]
    pub struct Stop(Arc<AtomicBool>);

    impl Stop {
        pub fn set(&self) {
            self.0.store(true, Ordering::SeqCst);
        }
        pub fn is_set(&self) -> bool {
            self.0.load(Ordering::SeqCst)
        }
    }
}

async fn retrain_runs(stack: &Stack) -> Vec<Value> {
    sqlx::query_scalar::<_, Value>(
        "select to_jsonb(r) from ops.job_runs r where job_name = 'retrain' order by started_at",
    )
    .fetch_all(&stack.db.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shifted_stream_retrains_and_the_winner_is_served_within_a_second_while_a_loser_is_shadow_scored()
 {
    let mut stack = Stack::start().await;
    stack.stop_synthesizer().await;
    register_shifted_synthesizer(&stack).await;
    stack.start_synthesizer().await;
    let scheduler = stack
        .scheduler(&[
            ("GENERATE_RATE", "1500"),
            ("GENERATE_BATCH_SIZE", "250"),
            ("DRIFT_MIN_ROWS", "1000"),
            ("DRIFT_MAX_ROWS", "2000"),
            ("DRIFT_SHARE", "0.15"),
            ("RETRAIN_SOURCES", "synthetic"),
            ("RETRAIN_MAX_ROWS", "2500"),
            ("RETRAIN_BUDGET_SECS", "3"),
            ("RETRAIN_PROMOTION_MARGIN", "0.01"),
        ])
        .await;
    wait_until(Duration::from_secs(60), || async {
        stack.count("select count(*) from churn.customers").await >= 2500
    })
    .await;

    let stop = tokio_util_stop::Stop::default();
    let predict = format!("http://127.0.0.1:{}/predict", stack.classifier_port);
    let answers = hammer(predict, stop.clone());

    // The drift run sees the shifted stream and triggers a retrain, which starts on its own.
    let drift = stack.run_job(&scheduler, "drift").await;
    assert_eq!(drift["status"], "succeeded", "{drift}");
    assert_eq!(drift["details"]["dataset_drift"], true, "{drift}");
    assert_eq!(
        drift["details"]["retrain_trigger"]["stored"], true,
        "{drift}"
    );
    wait_until(Duration::from_secs(20), || async {
        !retrain_runs(&stack).await.is_empty()
    })
    .await;
    let run_id = retrain_runs(&stack).await[0]["job_run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let retrain = stack.wait_for_run(&scheduler, &run_id).await;
    assert_eq!(retrain["status"], "succeeded", "{retrain}");
    assert_eq!(retrain["trigger"], "event");
    let details = &retrain["details"];
    assert_eq!(details["reasons"], serde_json::json!(["dataset_drift"]));
    assert_eq!(details["version"], 2, "{details}");
    assert_eq!(details["promoted"], true, "{details}");
    assert!(
        details["candidate_score"].as_f64().unwrap() > details["champion_score"].as_f64().unwrap()
    );
    let moved: DateTime<Utc> = sqlx::query_scalar(
        "select updated_at from registry.aliases where model_name = $1 and alias = 'champion' and version = 2",
    )
    .bind(MODEL)
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    // Keep calling for a while after the move, then look at every answer.
    let deadline = Instant::now() + Duration::from_secs(2);
    wait_until(Duration::from_secs(10), || async {
        Instant::now() > deadline
    })
    .await;

    // A worse candidate (it must beat the champion by 0.9) becomes challenger and is shadow-scored.
    let replica = stack
        .scheduler(&[
            ("GENERATE_ENABLED", "false"),
            ("RETRAIN_SOURCES", "synthetic"),
            ("RETRAIN_MAX_ROWS", "2500"),
            ("RETRAIN_BUDGET_SECS", "2"),
            ("RETRAIN_PROMOTION_MARGIN", "0.9"),
        ])
        .await;
    let lost = stack.run_job(&replica, "retrain").await;
    assert_eq!(lost["status"], "succeeded", "{lost}");
    assert_eq!(lost["details"]["version"], 3);
    assert_eq!(lost["details"]["promoted"], false);
    assert_eq!(lost["details"]["reasons"], serde_json::json!(["manual"]));
    wait_until(Duration::from_secs(30), || async {
        stack
            .count("select count(*) from churn.classified where model_version = 3")
            .await
            >= 500
    })
    .await;
    stop.set();
    let answers = answers.await.unwrap();

    // Every answer succeeded; after the alias moved, the classifier served version 2 within a second.
    let failed: Vec<&Answer> = answers.iter().filter(|a| a.status != 200).collect();
    assert!(
        failed.is_empty(),
        "failed requests during the swap: {failed:?}"
    );
    let first_v2 = answers
        .iter()
        .filter(|a| a.version == Some(2))
        .filter_map(|a| a.predicted_at)
        .min()
        .expect("version 2 was served");
    let stale: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.version == Some(1))
        .filter(|a| {
            a.predicted_at
                .is_some_and(|t| t > moved + chrono::Duration::seconds(1))
        })
        .collect();
    assert!(
        stale.is_empty(),
        "version 1 served over a second after the move: {stale:?}"
    );
    assert!(
        first_v2 - moved <= chrono::Duration::seconds(1),
        "first version-2 answer {first_v2}, alias moved {moved}"
    );

    // Shadow rows: each is beside a champion row of the same customer, never alone.
    let orphans = stack
        .count(
            "select count(*) from churn.classified s where s.model_version = 3 and not exists (
                 select 1 from churn.classified c where c.customer_id = s.customer_id and c.model_version = 2)",
        )
        .await;
    assert_eq!(orphans, 0);
    // The metrics job shows champion and challenger on the same live traffic.
    let metrics = stack.run_job(&scheduler, "metrics").await;
    assert_eq!(metrics["status"], "succeeded", "{metrics}");
    let versions: Vec<i32> = sqlx::query_scalar(
        "select distinct model_version from monitoring.model_metrics
         where metric_type = 'scheduled' and window_name = '1h' order by 1",
    )
    .fetch_all(&stack.db.pool)
    .await
    .unwrap();
    assert!(
        versions.contains(&2) && versions.contains(&3),
        "{versions:?}"
    );
    replica.stop().await;
    scheduler.stop().await;
}

//! Cohort metrics on logged predictions: outcomes fed for half the customers give figures equal to
//! scikit-learn's on the same pairs, a coverage of 50% and the right provisional flags; the latest
//! observation wins a conflict, an outcome by customer id observed before a prediction does not judge
//! it, and a final cohort is not recomputed.

use std::collections::BTreeMap;
use std::process::Command;

use chrono::{DateTime, Duration as Days, DurationRound, Utc};
use churn_store::monitoring::{self, LoggedPrediction, NewOutcome};
use serde_json::{Value, json};
use sqlx::Row;
use uuid::Uuid;

use super::*;

const CONTRACTS: [&str; 3] = ["Month-to-month", "One year", "Two year"];

/// A deterministic stream of numbers in [0, 1) (Knuth's 64-bit LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `n` logged `api` predictions of version 1 for customers `c-{first}`… at `at` plus a second each.
fn logged(first: usize, n: usize, at: DateTime<Utc>, rng: &mut Lcg) -> Vec<LoggedPrediction> {
    (first..first + n)
        .map(|i| {
            // Two decimals: ties, as real scores have.
            let probability = (rng.next() * 100.0).floor() / 100.0;
            LoggedPrediction {
                request_id: Uuid::new_v4(),
                item: 0,
                predicted_at: at + Days::seconds(i as i64 - first as i64),
                endpoint: "predict",
                source: "api",
                caller: "test".into(),
                customer_id: Some(format!("c-{i}")),
                features: json!({}),
                contract: CONTRACTS[i % 3].into(),
                internet_service: "DSL".into(),
                senior_citizen: i % 5 == 0,
                model_name: MODEL.into(),
                model_version: 1,
                arm: "champion",
                probability,
                label: probability >= 0.5,
                threshold: 0.5,
                latency_us: 100,
            }
        })
        .collect()
}

fn outcome(customer: &str, churned: bool, observed_at: DateTime<Utc>) -> NewOutcome {
    NewOutcome {
        request_id: None,
        item: None,
        customer_id: Some(customer.to_owned()),
        churned,
        observed_at,
        source: "api",
        caller: "test".into(),
    }
}

/// What scikit-learn computes on each named set of (label, probability) pairs.
fn scikit_learn(sets: &BTreeMap<String, (Vec<bool>, Vec<f64>)>) -> BTreeMap<String, Value> {
    let python = std::env::var("CHURN_PYTHON").expect(
        "CHURN_PYTHON is not set: this test checks the cohort metrics against scikit-learn in the \
         project's venv. Run scripts/test, or set CHURN_PYTHON=$(scripts/venv)/bin/python",
    );
    let input = tempfile::NamedTempFile::new().unwrap();
    let sets: BTreeMap<&String, Value> = sets
        .iter()
        .map(|(k, (l, p))| (k, json!({"labels": l, "probabilities": p})))
        .collect();
    std::fs::write(input.path(), serde_json::to_vec(&sets).unwrap()).unwrap();
    let script = r#"
import json, sys
import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score
out = {}
for key, s in json.load(open(sys.argv[1])).items():
    y, p = np.array(s["labels"], dtype=int), np.array(s["probabilities"])
    true, pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, 11)[1:-1], p), minlength=10)
    counts = counts[counts > 0]
    out[key] = {"roc_auc": roc_auc_score(y, p), "pr_auc": average_precision_score(y, p),
                "log_loss": log_loss(y, p, labels=[0, 1]), "brier": brier_score_loss(y, p),
                "ece": float(np.sum(counts / len(y) * np.abs(pred - true))), "n": len(y)}
print(json.dumps(out))
"#;
    let output = Command::new(python)
        .args(["-c", script])
        .arg(input.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn cohort_row(
    db: &TestDb,
    cohort: &str,
    start: chrono::NaiveDate,
    slice: &str,
    value: &str,
) -> sqlx::postgres::PgRow {
    sqlx::query(
        "select * from monitoring.cohort_metrics where source = 'api' and cohort = $1
         and cohort_start = $2 and slice = $3 and slice_value = $4",
    )
    .bind(cohort)
    .bind(start)
    .bind(slice)
    .bind(value)
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn cohort_metrics_equal_scikit_learn_on_matched_outcomes_and_follow_the_outcome_rules() {
    let db = TestDb::new().await;
    let s3 = TestS3::start().await;
    register_champion(&db, &s3).await;
    let today = Utc::now().duration_trunc(Days::days(1)).unwrap();
    // A day 45 days back has matured (its end + 30 days is past); one 2 days back has not.
    let (old, recent) = (
        today - Days::days(45) + Days::hours(10),
        today - Days::days(2) + Days::hours(10),
    );
    let mut rng = Lcg(24);
    let mut rows = logged(0, 600, old, &mut rng);
    rows.extend(logged(600, 600, recent, &mut rng));
    let mut conn = db.pool.acquire().await.unwrap();
    monitoring::insert_inference_log(&mut conn, &rows)
        .await
        .unwrap();

    // Outcomes for the even customers, observed after their prediction: the old ones before the
    // cohort matured, the recent ones now; churn follows the score, with noise.
    let mut outcomes = Vec::new();
    let mut truth: BTreeMap<usize, bool> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        let churned = rng.next() < r.probability;
        truth.insert(i, churned);
        outcomes.push(outcome(
            &format!("c-{i}"),
            churned,
            r.predicted_at + Days::days(3),
        ));
    }
    // A conflict: customer 600 then churned, then (observed later) did not: the latest one wins.
    outcomes.push(outcome(
        "c-600",
        true,
        rows[600].predicted_at + Days::days(4),
    ));
    outcomes.push(outcome(
        "c-600",
        false,
        rows[600].predicted_at + Days::days(5),
    ));
    truth.insert(600, false);
    // An outcome by customer id observed before the prediction judges nothing: 601 stays unlabelled.
    outcomes.push(outcome(
        "c-601",
        true,
        rows[601].predicted_at - Days::hours(1),
    ));
    // By request, observed after the outcome by customer id: the caller named the answer (no item:
    // every item of it).
    let by_request = rows[602].request_id;
    outcomes.push(NewOutcome {
        request_id: Some(by_request),
        customer_id: None,
        ..outcome("", true, rows[602].predicted_at + Days::days(4))
    });
    truth.insert(602, true);
    monitoring::insert_outcomes(&mut conn, &outcomes)
        .await
        .unwrap();

    let job = MetricsJob::new(
        MetricsParams::default().check().unwrap(),
        db.pool.clone(),
        Registry::new(db.pool.clone(), s3.open()),
        None,
    );
    let report = job.compute_cohorts(None).await.unwrap();
    assert_eq!(report.predictions, 1200);

    // The pairs the rules give, by cohort and slice, for scikit-learn.
    let mut sets: BTreeMap<String, (Vec<bool>, Vec<f64>)> = BTreeMap::new();
    for (&i, &churned) in &truth {
        let cohort = if i < 600 { "old" } else { "recent" };
        for key in [
            format!("{cohort}/all"),
            format!("{cohort}/contract/{}", CONTRACTS[i % 3]),
        ] {
            let set = sets.entry(key).or_default();
            set.0.push(churned);
            set.1.push(rows[i].probability);
        }
    }
    let expected = scikit_learn(&sets);
    let close = |what: &str, ours: Option<f64>, theirs: &Value| {
        let theirs = theirs.as_f64().unwrap();
        let ours = ours.unwrap_or_else(|| panic!("{what}: no figure stored"));
        assert!(
            (ours - theirs).abs() < 1e-9,
            "{what}: ours {ours}, scikit-learn {theirs}"
        );
    };
    for (cohort, at, provisional) in [("old", old, false), ("recent", recent, true)] {
        for kind in ["day", "week"] {
            let start = if kind == "day" {
                at.date_naive()
            } else {
                at.date_naive().week(chrono::Weekday::Mon).first_day()
            };
            for (slice, value, key) in [
                ("all", "all", format!("{cohort}/all")),
                (
                    "contract",
                    CONTRACTS[1],
                    format!("{cohort}/contract/{}", CONTRACTS[1]),
                ),
            ] {
                let row = cohort_row(&db, kind, start, slice, value).await;
                let theirs = &expected[&key];
                let what = format!("{kind} {cohort} {slice}={value}");
                assert_eq!(
                    row.get::<i32, _>("n_labelled") as u64,
                    theirs["n"].as_u64().unwrap(),
                    "{what}"
                );
                for m in ["roc_auc", "pr_auc", "log_loss", "brier", "ece"] {
                    close(&format!("{what} {m}"), row.get(m), &theirs[m]);
                }
                assert_eq!(row.get::<bool, _>("provisional"), provisional, "{what}");
                let matures: DateTime<Utc> = row.get("matures_at");
                let end = start + Days::days(if kind == "day" { 1 } else { 7 });
                assert_eq!(
                    matures,
                    end.and_time(chrono::NaiveTime::MIN).and_utc() + Days::days(30)
                );
                if slice == "all" {
                    assert_eq!(row.get::<i32, _>("n_predictions"), 600, "{what}");
                    close(
                        &format!("{what} coverage"),
                        row.get("label_coverage"),
                        &json!(0.5),
                    );
                }
            }
        }
    }

    // A later outcome flips customer 0 (old, final) and 602 (recent, provisional): only the provisional
    // cohort moves, and the final week is no longer read.
    let before_old = cohort_row(&db, "day", old.date_naive(), "all", "all").await;
    let before_recent = cohort_row(&db, "day", recent.date_naive(), "all", "all").await;
    monitoring::insert_outcomes(
        &mut conn,
        &[
            outcome("c-0", !truth[&0], Utc::now()),
            NewOutcome {
                request_id: Some(by_request),
                customer_id: None,
                ..outcome("", false, rows[602].predicted_at + Days::days(6))
            },
        ],
    )
    .await
    .unwrap();
    let report = job.compute_cohorts(None).await.unwrap();
    assert_eq!(report.predictions, 600, "the final week was read again");
    let after_old = cohort_row(&db, "day", old.date_naive(), "all", "all").await;
    let after_recent = cohort_row(&db, "day", recent.date_naive(), "all", "all").await;
    assert_eq!(
        before_old.get::<f64, _>("brier"),
        after_old.get::<f64, _>("brier")
    );
    assert_eq!(
        before_old.get::<DateTime<Utc>, _>("computed_at"),
        after_old.get::<DateTime<Utc>, _>("computed_at")
    );
    assert_eq!(
        after_recent.get::<i32, _>("n_positive"),
        before_recent.get::<i32, _>("n_positive") - 1,
        "the provisional cohort did not take the later outcome"
    );
}

/// `n` logged predictions at `at` (a second apart) with outcomes that follow the score (`informative`)
/// or run against it, observed a day later.
async fn logged_with_outcomes(
    db: &TestDb,
    first: usize,
    n: usize,
    at: DateTime<Utc>,
    informative: bool,
    rng: &mut Lcg,
) {
    let rows = logged(first, n, at, rng);
    let outcomes: Vec<NewOutcome> = rows
        .iter()
        .map(|r| {
            let u = rng.next();
            let churned = if informative {
                u < r.probability
            } else {
                u < 1.0 - r.probability
            };
            outcome(
                r.customer_id.as_deref().unwrap(),
                churned,
                r.predicted_at + Days::hours(20),
            )
        })
        .collect();
    let mut conn = db.pool.acquire().await.unwrap();
    monitoring::insert_inference_log(&mut conn, &rows)
        .await
        .unwrap();
    monitoring::insert_outcomes(&mut conn, &outcomes)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn synthetic_traffic_never_triggers_a_retrain_and_an_api_auc_drop_below_its_own_baseline_does()
 {
    let stack = Stack::start().await;
    let scheduler = stack
        .scheduler(&[
            ("GENERATE_RATE", "1000"),
            ("GENERATE_BATCH_SIZE", "200"),
            ("METRICS_MIN_SAMPLES", "50"),
            ("RETRAIN_AUC_MIN_ROWS", "200"),
        ])
        .await;
    // A fresh start: the metrics job ticks again and again on synthetic traffic alone.
    for _ in 0..20 {
        wait_until(Duration::from_secs(30), || async {
            stack.count("select count(*) from churn.classified").await >= 1000
        })
        .await;
        let run = stack.run_job(&scheduler, "metrics").await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert!(
            run["details"]["retrain_trigger"].is_null(),
            "a fresh start triggered: {run}"
        );
    }
    assert!(
        stack
            .count("select count(*) from monitoring.cohort_metrics where source = 'synthetic'")
            .await
            > 0,
        "no synthetic cohort was measured"
    );

    // Real traffic: its first cohort is the API's baseline, and alone it triggers nothing.
    let today = Utc::now().duration_trunc(Days::days(1)).unwrap();
    let mut rng = Lcg(7);
    logged_with_outcomes(&stack.db, 0, 800, today - Days::days(3), true, &mut rng).await;
    let run = stack.run_job(&scheduler, "metrics").await;
    assert!(run["details"]["retrain_trigger"].is_null(), "{run}");
    // A later cohort whose outcomes run against the scores: far below the baseline.
    logged_with_outcomes(&stack.db, 800, 800, today - Days::days(1), false, &mut rng).await;
    let run = stack.run_job(&scheduler, "metrics").await;
    assert_eq!(run["details"]["retrain_trigger"]["stored"], true, "{run}");
    assert_eq!(
        run["details"]["retrain_trigger"]["reason"], "live_auc_drop",
        "{run}"
    );
    let evidence: Vec<Value> = sqlx::query_scalar(
        "select evidence from ops.retrain_triggers where reason = 'live_auc_drop'",
    )
    .fetch_all(&stack.db.pool)
    .await
    .unwrap();
    assert_eq!(evidence.len(), 1, "{evidence:?}");
    let e = &evidence[0];
    assert_eq!(e["source"], "api", "{e}");
    assert_eq!(e["model_version"], 1, "{e}");
    assert_eq!(
        e["baseline"]["cohort_start"],
        json!((today - Days::days(3)).date_naive()),
        "{e}"
    );
    assert_eq!(
        e["current"]["cohort_start"],
        json!((today - Days::days(1)).date_naive()),
        "{e}"
    );
    let (baseline, current) = (
        e["baseline"]["roc_auc"].as_f64().unwrap(),
        e["current"]["roc_auc"].as_f64().unwrap(),
    );
    assert!(baseline - current > 0.05, "{e}");
}

//! The web console: every page renders from a populated warehouse (and from an empty one), escapes what
//! it shows, serves its assets; the model page shows real traffic's live and matured figures per source;
//! and a real headless Chromium walks it, without console errors, runs a job and promotes a version with
//! the admin token.

use std::path::PathBuf;
use std::process::Command;

use churn_service::testing::{RunningApp, TEST_ADMIN_TOKEN};
use serde_json::Value;

use crate::stack::Stack;

/// A populated warehouse: customers, predictions, live metrics and drift from the real jobs, a landed file
/// with a refused record (whose reason carries markup, to prove it is escaped).
async fn populated() -> (Stack, RunningApp) {
    let stack = Stack::start().await;
    let seed = churn_testkit::seed_data_path();
    let scheduler = stack
        .scheduler(&[
            ("GENERATE_SCHEDULE", "manual"),
            ("GENERATE_CUSTOMERS_PER_RUN", "1000"),
            ("GENERATE_BATCH_SIZE", "500"),
            ("METRICS_ENABLED", "true"),
            ("METRICS_SCHEDULE", "manual"),
            ("DRIFT_ENABLED", "true"),
            ("DRIFT_SCHEDULE", "manual"),
            ("CHURN_SEED_DATA", seed.to_str().unwrap()),
        ])
        .await;
    for job in ["generate", "generate", "metrics", "drift"] {
        let run = stack.run_job(&scheduler, job).await;
        assert_eq!(run["status"], "succeeded", "{job}: {run}");
    }
    let file_id = uuid::Uuid::new_v4();
    sqlx::query(
        "insert into ops.ingested_files (file_id, object_key, sha256, rows_total, rows_accepted, rows_rejected,
             rows_inserted, status, finished_at)
         values ($1, 'processed/customers-2026-11.csv', repeat('e', 64), 3, 2, 1, 2, 'processed', now())",
    )
    .bind(file_id)
    .execute(&stack.db.pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into ops.rejected_records (file_id, line_number, raw_record, errors, source)
         values ($1, 3, 'x', $2, 'file')",
    )
    .bind(file_id)
    .bind(serde_json::json!([{ "field": "monthly_charges", "value": "-5", "rule": "must be <b>at least</b> 0" }]))
    .execute(&stack.db.pool)
    .await
    .unwrap();
    (stack, scheduler)
}

async fn get(stack: &Stack, app: &RunningApp, path: &str) -> (u16, String, String) {
    let response = stack.client.get(app.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_renders_its_key_content_from_the_warehouse_and_escapes_what_it_shows() {
    let (stack, scheduler) = populated().await;
    let champion: i32 = sqlx::query_scalar(
        "select version from registry.aliases where model_name = 'churn-classifier' and alias = 'champion'",
    )
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    let expectations: [(&str, &[&str]); 6] = [
        (
            "/",
            &[
                "Champion",
                &format!("version {champion}"),
                "Customers written per minute",
                "generate",
            ],
        ),
        (
            "/ui/models",
            &[
                "churn-classifier",
                "champion",
                "Feature importance",
                "Promotion decisions",
            ],
        ),
        ("/ui/runs", &["AutoML leaderboard", "CV ROC AUC", "family"]),
        (
            "/ui/jobs",
            &["generate", "metrics", "drift", "Run history", "Run now"],
        ),
        (
            "/ui/drift",
            &[
                "Per-column drift over time",
                "tenure_months",
                "Latest statistics",
            ],
        ),
        (
            "/ui/data",
            &[
                "customers-2026-11.csv",
                "monthly_charges",
                "&lt;b&gt;at least&lt;/b&gt;",
            ],
        ),
    ];
    for (path, needles) in expectations {
        let (status, kind, body) = get(&stack, &scheduler, path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(kind.starts_with("text/html"), "{path}: {kind}");
        for needle in needles {
            assert!(body.contains(needle), "{path} lacks {needle:?}");
        }
        assert!(
            !body.contains("<b>at least"),
            "{path} shows unescaped markup"
        );
    }
    let (status, kind, script) = get(&stack, &scheduler, "/ui/assets/console.js").await;
    assert_eq!(
        (status, kind.as_str()),
        (200, "text/javascript; charset=utf-8")
    );
    assert!(script.contains("Authorization"));
    let (status, kind, _) = get(&stack, &scheduler, "/ui/assets/console.css").await;
    assert_eq!((status, kind.as_str()), (200, "text/css; charset=utf-8"));
    // The pages are not part of the JSON API's document.
    let (_, _, openapi) = get(&stack, &scheduler, "/openapi.json").await;
    let openapi: Value = serde_json::from_str(&openapi).unwrap();
    assert!(openapi["paths"].get("/ui/jobs").is_none());
    scheduler.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_warehouse_renders_every_page_saying_what_is_missing() {
    let stack = Stack::start().await;
    sqlx::query("delete from registry.aliases")
        .execute(&stack.db.pool)
        .await
        .unwrap();
    let scheduler = stack.scheduler(&[("GENERATE_SCHEDULE", "manual")]).await;
    let (status, _, body) = get(&stack, &scheduler, "/").await;
    assert_eq!(status, 200);
    assert!(body.contains("none yet"));
    assert!(body.contains("no customers yet"));
    for (path, needle) in [
        ("/ui/drift", "No drift run yet"),
        ("/ui/data", "No file has landed yet"),
        ("/ui/jobs", "generate"),
        ("/ui/models", "churn-classifier"),
        ("/ui/runs", "Runs"),
    ] {
        let (status, _, body) = get(&stack, &scheduler, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(body.contains(needle), "{path} lacks {needle:?}");
    }
    // An unknown job in the filter shows every job's runs rather than an error.
    let (status, _, _) = get(&stack, &scheduler, "/ui/jobs?job=%3Cscript%3E").await;
    assert_eq!(status, 200);
    // Every page and asset forbids inline code, framing and sniffing (the browser test proves the
    // pages still work under the policy: a blocked script or style is a console error there).
    for path in ["/", "/ui/jobs", "/ui/assets/console.js"] {
        let response = stack.client.get(scheduler.url(path)).send().await.unwrap();
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
    }
    scheduler.stop().await;
}

/// The cells of the live-and-matured table's row for `version` and `source` on the models page.
fn traffic_row(page: &str, version: i32, source: &str) -> String {
    let table = page
        .split("id=\"live-matured\"")
        .nth(1)
        .expect("the live-and-matured table")
        .split("</table>")
        .next()
        .unwrap();
    table
        .split("<tr data-source=\"")
        .find(|row| {
            row.starts_with(&format!("{source}\""))
                && row.contains(&format!("<td class=\"num\">{version}</td>"))
        })
        .unwrap_or_else(|| panic!("no row for v{version} {source} in {table}"))
        .split("</tr>")
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_model_page_shows_live_and_matured_figures_per_source_with_the_provisional_marked() {
    let stack = Stack::start().await;
    let scheduler = stack.scheduler(&[("GENERATE_SCHEDULE", "manual")]).await;
    let champion: i32 = sqlx::query_scalar(
        "select version from registry.aliases where model_name = 'churn-classifier' and alias = 'champion'",
    )
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    let (status, _, body) = get(&stack, &scheduler, "/ui/models").await;
    assert_eq!(status, 200);
    assert!(body.contains("No logged traffic"), "{body}");

    // The last hour: 30 single calls and 10 batch items (probabilities 0.2 and 0.6), and 5 calls two
    // hours ago that are not live any more; cohorts: api matured and provisional, batch provisional only.
    sqlx::query(
        "insert into serving.inference_log (request_id, item, predicted_at, endpoint, source, caller,
             features, contract, internet_service, senior_citizen, model_name, model_version, arm,
             probability, label, threshold, latency_us)
         select gen_random_uuid(), 0, now() - make_interval(mins => age), endpoint, source, 'crm', '{}',
                'One year', 'DSL', false, 'churn-classifier', $1, 'champion', p, p >= 0.5, 0.5, 2000
         from (values (30, 'predict', 'api', 0.2, 5), (10, 'batch', 'batch', 0.6, 5),
                      (5, 'predict', 'api', 0.9, 120)) as calls (n, endpoint, source, p, age)
         cross join lateral generate_series(1, n)",
    )
    .bind(champion)
    .execute(&stack.db.pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into monitoring.cohort_metrics (model_name, model_version, source, cohort, cohort_start,
             slice, slice_value, n_predictions, n_labelled, n_positive, label_coverage, roc_auc, provisional,
             matures_at)
         values ('churn-classifier', $1, 'api', 'day', current_date - 45, 'all', 'all', 400, 380, 90, 0.95,
                 0.813, false, now() - interval '14 days'),
                ('churn-classifier', $1, 'api', 'day', current_date - 50, 'all', 'all', 400, 390, 90, 0.975,
                 0.5, false, now() - interval '19 days'),
                ('churn-classifier', $1, 'api', 'day', current_date - 45, 'contract', 'One year', 100, 90,
                 10, 0.9, 0.5, false, now() - interval '14 days'),
                ('churn-classifier', $1, 'api', 'day', current_date, 'all', 'all', 30, 6, 2, 0.2, 0.738,
                 true, now() + interval '31 days'),
                ('churn-classifier', $1, 'batch', 'day', current_date, 'all', 'all', 10, 5, 1, 0.5, 0.6625,
                 true, now() + interval '31 days')",
    )
    .bind(champion)
    .execute(&stack.db.pool)
    .await
    .unwrap();

    let (status, _, body) = get(&stack, &scheduler, "/ui/models").await;
    assert_eq!(status, 200);
    assert!(body.contains("Live and matured, per source"));
    assert!(!body.contains("No logged traffic"));
    let api = traffic_row(&body, champion, "api");
    // Live: the last hour's 30 calls only; matured: the newest matured cohort of the whole traffic, not
    // an older one or a slice; provisional: today's, marked.
    assert!(
        api.contains("30 champion predictions, mean p 0.200"),
        "{api}"
    );
    let cells: Vec<&str> = api.split("<td").collect();
    let matured = cells
        .iter()
        .find(|c| c.starts_with(" class=\"matured\""))
        .unwrap();
    let provisional = cells
        .iter()
        .find(|c| c.starts_with(" class=\"provisional\""))
        .unwrap();
    assert!(matured.contains("0.813"), "{matured}");
    assert!(matured.contains("95 % labelled (380 of 400)"), "{matured}");
    assert!(!matured.contains("status provisional"), "{matured}");
    assert!(provisional.contains("0.738"), "{provisional}");
    assert!(
        provisional.contains("20 % labelled (6 of 30)"),
        "{provisional}"
    );
    assert!(provisional.contains("status provisional"), "{provisional}");
    let batch = traffic_row(&body, champion, "batch");
    assert!(
        batch.contains("10 champion predictions, mean p 0.600"),
        "{batch}"
    );
    let cells: Vec<&str> = batch.split("<td").collect();
    let matured = cells
        .iter()
        .find(|c| c.starts_with(" class=\"matured\""))
        .unwrap();
    assert!(matured.starts_with(" class=\"matured\">–"), "{matured}");
    assert!(batch.contains("status provisional"), "{batch}");
    scheduler.stop().await;
}

fn python() -> String {
    std::env::var("CHURN_PYTHON").expect(
        "CHURN_PYTHON must name the Python of the test venv (scripts/test sets it; scripts/venv builds it)",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn headless_chromium_walks_every_page_without_console_errors_and_runs_a_job_and_promotes_with_the_token()
 {
    let (stack, scheduler) = populated().await;
    let second = crate::mlflow::register_second_version(&stack.db, &stack.s3)
        .await
        .version
        .get();
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/console_browser.py");
    let base = scheduler.url("");
    let (python, script_path, out_path) = (python(), script.clone(), out.clone());
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script_path)
            .arg(base)
            .arg(TEST_ADMIN_TOKEN)
            .arg(out_path)
            .env("SE_OFFLINE", "true")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser walk failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["ok"], true);
    for page in [
        "overview",
        "models",
        "runs",
        "jobs",
        "drift",
        "data",
        "jobs-after-run-now",
    ] {
        let shot = out.join(format!("{page}.png"));
        assert!(
            std::fs::metadata(&shot).is_ok_and(|m| m.len() > 1000),
            "no screenshot {}",
            shot.display()
        );
    }
    let manual: i64 = sqlx::query_scalar(
        "select count(*) from ops.job_runs where job_name = 'metrics' and trigger = 'manual'",
    )
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    // One from populating, one from the browser's click.
    assert_eq!(manual, 2);
    // Promote moved the champion through the MLflow route, recorded as a manual decision.
    let (champion, reason): (i32, String) = sqlx::query_as(
        "select a.version, d.reason from registry.aliases a
         join registry.promotion_decisions d on d.model_name = a.model_name and d.candidate_version = a.version
         where a.model_name = 'churn-classifier' and a.alias = 'champion'
         order by d.decided_at desc limit 1",
    )
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    assert_eq!(champion, second, "{reason}");
    assert_eq!(report["promoted"], second.to_string());
    scheduler.stop().await;
}

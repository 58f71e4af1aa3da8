//! Observability as code, checked against the real thing: every SQL query of the Grafana dashboards, the
//! alert rules and the Metabase questions run as the read-only role on a warehouse the real jobs filled;
//! the dashboard files' static checks; and Debian's Prometheus scraping the running services with the
//! repository's configuration, answering every PromQL expression the dashboards and alerts use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde_json::Value;
use sqlx::{AssertSqlSafe, Column, Connection, PgConnection, Row};

use crate::stack::{Stack, wait_until};

const WAREHOUSE_UID: &str = "churn-warehouse";
const PROMETHEUS_UID: &str = "churn-prometheus";

/// The macros Grafana's PostgreSQL datasource expands (grafana-postgresql-datasource's macros.go, and the
/// global `$__interval` family); anything else starting with `$__` would reach PostgreSQL as written.
const GRAFANA_PG_MACROS: &[&str] = &[
    "__time",
    "__timeEpoch",
    "__timeFilter",
    "__timeFrom",
    "__timeTo",
    "__timeGroup",
    "__timeGroupAlias",
    "__unixEpochFilter",
    "__unixEpochFrom",
    "__unixEpochTo",
    "__unixEpochNanoFilter",
    "__unixEpochNanoFrom",
    "__unixEpochNanoTo",
    "__unixEpochGroup",
    "__unixEpochGroupAlias",
    "__interval",
    "__interval_ms",
    "__range",
    "__range_s",
    "__range_ms",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
}

/// A YAML file as JSON, read by PyYAML from the test venv (dbt's own YAML parser).
fn read_yaml(path: &Path) -> Value {
    let python = std::env::var("CHURN_PYTHON")
        .expect("CHURN_PYTHON is not set: run scripts/test, or set it to the venv's python");
    let out = Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} is not valid YAML: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn dashboards() -> Vec<(String, Value)> {
    let dir = repo().join("grafana/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 4, "four dashboards in {}", dir.display());
    files
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, read_json(p))
        })
        .collect()
}

fn alert_rules() -> Value {
    read_yaml(&repo().join("grafana/provisioning/alerting/rules.yaml"))
}

/// The SQL of the job-failure alert rule (`churn-job-failures`), as provisioned.
pub(crate) fn job_failure_alert_sql() -> String {
    let rules = alert_rules();
    let rule = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .find(|r| r["uid"] == "churn-job-failures")
        .expect("the job-failure alert rule is provisioned");
    rule["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["datasourceUid"] == WAREHOUSE_UID)
        .and_then(|d| d["model"]["rawSql"].as_str())
        .expect("the job-failure alert queries the warehouse")
        .to_owned()
}

/// One query a dashboard panel, an annotation, an alert rule or a Metabase question runs.
#[derive(Debug, Clone)]
struct Query {
    origin: String,
    text: String,
    /// `table` or `time_series` for SQL (a time series needs a column named time).
    format: String,
}

/// Panels, nested row panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        all.push(panel);
        if let Some(inner) = panel["panels"].as_array() {
            all.extend(inner.iter());
        }
    }
    all
}

/// Every SQL (datasource churn-warehouse) and PromQL (churn-prometheus) query of the dashboards.
fn dashboard_queries() -> (Vec<Query>, Vec<Query>) {
    let (mut sql, mut promql) = (Vec::new(), Vec::new());
    for (file, dashboard) in dashboards() {
        let mut targets: Vec<(String, &Value)> = Vec::new();
        for panel in panels(&dashboard) {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let origin = format!(
                    "{file} panel {} \"{}\" {}",
                    panel["id"],
                    panel["title"].as_str().unwrap_or(""),
                    target["refId"].as_str().unwrap_or("")
                );
                targets.push((origin, target));
            }
        }
        for annotation in dashboard["annotations"]["list"].as_array().unwrap() {
            if annotation["builtIn"] != 1 {
                let origin = format!("{file} annotation \"{}\"", annotation["name"]);
                targets.push((origin, &annotation["target"]));
            }
        }
        for (origin, target) in targets {
            if let Some(raw) = target["rawSql"].as_str() {
                sql.push(Query {
                    origin,
                    text: raw.to_owned(),
                    format: target["format"].as_str().unwrap_or("table").to_owned(),
                });
            } else if let Some(expr) = target["expr"].as_str() {
                promql.push(Query {
                    origin,
                    text: expr.to_owned(),
                    format: String::new(),
                });
            }
        }
    }
    (sql, promql)
}

/// Every SQL and PromQL query of the alert rules.
fn alert_queries() -> (Vec<Query>, Vec<Query>) {
    let (mut sql, mut promql) = (Vec::new(), Vec::new());
    for group in alert_rules()["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            for data in rule["data"].as_array().unwrap() {
                let origin = format!("alert {} {}", rule["uid"], data["refId"]);
                let model = &data["model"];
                match data["datasourceUid"].as_str().unwrap() {
                    WAREHOUSE_UID => sql.push(Query {
                        origin,
                        text: model["rawSql"].as_str().unwrap().to_owned(),
                        format: model["format"].as_str().unwrap_or("table").to_owned(),
                    }),
                    PROMETHEUS_UID => promql.push(Query {
                        origin,
                        text: model["expr"].as_str().unwrap().to_owned(),
                        format: String::new(),
                    }),
                    _ => {}
                }
            }
        }
    }
    (sql, promql)
}

/// Every Metabase question's SQL (metabase/churn-analytics.json, which `churnctl metabase provision` sends).
fn metabase_queries() -> Vec<Query> {
    let spec = read_json(&repo().join("metabase/churn-analytics.json"));
    spec["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| Query {
            origin: format!("metabase question \"{}\"", q["name"].as_str().unwrap()),
            text: q["sql"].as_str().unwrap().to_owned(),
            format: "table".to_owned(),
        })
        .collect()
}

/// One `$__name(args)` in a query.
#[derive(Debug)]
struct Macro {
    range: std::ops::Range<usize>,
    name: String,
    /// None when the macro takes no parentheses.
    args: Option<Vec<String>>,
}

/// The macros in `sql`, in order.
fn macros(sql: &str) -> Result<Vec<Macro>, String> {
    let mut found = Vec::new();
    let bytes = sql.as_bytes();
    let mut i = 0;
    while let Some(offset) = sql[i..].find("$__") {
        let start = i + offset;
        let mut end = start + 1;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let name = sql[start + 1..end].to_owned();
        let mut args = None;
        if bytes.get(end) == Some(&b'(') {
            let mut depth = 0;
            let mut quoted = false;
            let mut current = String::new();
            let mut list = Vec::new();
            let mut j = end;
            loop {
                let c = *bytes
                    .get(j)
                    .ok_or_else(|| format!("unclosed ( after ${name}"))?
                    as char;
                match c {
                    '\'' => {
                        quoted = !quoted;
                        current.push(c);
                    }
                    '(' if !quoted => {
                        depth += 1;
                        if depth > 1 {
                            current.push(c);
                        }
                    }
                    ')' if !quoted => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                        current.push(c);
                    }
                    ',' if !quoted && depth == 1 => list.push(std::mem::take(&mut current)),
                    _ => current.push(c),
                }
                j += 1;
            }
            list.push(current);
            let list: Vec<String> = list.iter().map(|a| a.trim().to_owned()).collect();
            args = Some(if list == [""] { Vec::new() } else { list });
            end = j + 1;
        }
        found.push(Macro {
            range: start..end,
            name,
            args,
        });
        i = end;
    }
    Ok(found)
}

/// Seconds in a Grafana interval such as `'1m'`.
fn interval_seconds(raw: &str) -> u64 {
    let raw = raw.trim_matches('\'');
    let (number, unit) = raw.split_at(raw.len() - 1);
    let n: u64 = number
        .parse()
        .unwrap_or_else(|_| panic!("bad interval {raw}"));
    n * match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => panic!("bad interval unit in {raw}"),
    }
}

/// `sql` with the macros expanded as Grafana's PostgreSQL datasource expands them for the range
/// `from`..`to` (RFC 3339).
fn expand(sql: &str, from: &str, to: &str) -> String {
    let mut out = String::new();
    let mut last = 0;
    for Macro { range, name, args } in macros(sql).unwrap() {
        out.push_str(&sql[last..range.start]);
        let args = args.unwrap_or_default();
        let group = |args: &[String]| {
            let s = interval_seconds(&args[1]);
            format!("floor(extract(epoch from {})/{s})*{s}", args[0])
        };
        let expanded = match name.as_str() {
            "__time" => format!("{} AS \"time\"", args[0]),
            "__timeEpoch" => format!("extract(epoch from {}) AS \"time\"", args[0]),
            "__timeFilter" => format!("{} BETWEEN '{from}' AND '{to}'", args[0]),
            "__timeFrom" => format!("'{from}'"),
            "__timeTo" => format!("'{to}'"),
            "__timeGroup" => group(&args),
            "__timeGroupAlias" => format!("{} AS \"time\"", group(&args)),
            other => panic!("${other} is a Grafana macro this test does not expand yet"),
        };
        out.push_str(&expanded);
        last = range.end;
    }
    out.push_str(&sql[last..]);
    out
}

/// A connection to the stack's database as churn_readonly, the role Grafana and Metabase use.
async fn connect_readonly(stack: &Stack) -> PgConnection {
    let mut url = url::Url::parse(&stack.db.url).unwrap();
    url.set_username("churn_readonly").unwrap();
    url.set_password(None).unwrap();
    PgConnection::connect(url.as_str()).await.unwrap()
}

fn dbt_executable() -> String {
    std::env::var("CHURN_DBT").unwrap_or_else(|_| {
        panic!("CHURN_DBT is not set: run scripts/test, or set CHURN_DBT=$(scripts/venv)/bin/dbt")
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn every_sql_of_the_dashboards_alerts_and_metabase_questions_returns_rows_as_the_readonly_role()
 {
    let stack = Stack::start().await;
    let target = tempfile::tempdir().unwrap();
    let project = repo().join("dbt");
    let dbt = dbt_executable();
    let scheduler = stack
        .scheduler(&[
            ("GENERATE_SCHEDULE", "manual"),
            ("GENERATE_CUSTOMERS_PER_RUN", "1000"),
            ("GENERATE_BATCH_SIZE", "500"),
            ("METRICS_ENABLED", "true"),
            ("METRICS_SCHEDULE", "manual"),
            ("DRIFT_ENABLED", "true"),
            ("DRIFT_SCHEDULE", "manual"),
            ("RETRAIN_ENABLED", "true"),
            ("RETRAIN_SCHEDULE", "manual"),
            // Retrains only when this test asks, and the candidate loses: it becomes the challenger.
            ("RETRAIN_ON_DRIFT", "false"),
            ("RETRAIN_AUC_DROP", "0"),
            ("RETRAIN_NEW_LABELS", "0"),
            ("RETRAIN_SOURCES", "synthetic"),
            ("RETRAIN_MAX_ROWS", "2000"),
            ("RETRAIN_BUDGET_SECS", "2"),
            ("RETRAIN_PROMOTION_MARGIN", "0.9"),
            ("DBT_ENABLED", "true"),
            ("DBT_SCHEDULE", "manual"),
            ("DBT_RETRIES", "0"),
            ("DBT_EXECUTABLE", &dbt),
            ("DBT_PROJECT_DIR", project.to_str().unwrap()),
            ("DBT_TARGET_DIR", target.path().to_str().unwrap()),
        ])
        .await;
    let succeeded = |run: &Value, job: &str| assert_eq!(run["status"], "succeeded", "{job}: {run}");

    // The pipeline as it runs: customers, a retrain whose candidate loses (the challenger, then
    // shadow-scored on new customers), live metrics of both, drift, a dbt build.
    for _ in 0..2 {
        succeeded(&stack.run_job(&scheduler, "generate").await, "generate");
    }
    let retrain = stack.run_job(&scheduler, "retrain").await;
    succeeded(&retrain, "retrain");
    assert_eq!(retrain["details"]["promoted"], false, "{retrain}");
    let challenger = retrain["details"]["version"].as_i64().unwrap();
    let challenger = i32::try_from(challenger).unwrap();
    let mut shadow = 0i64;
    for _ in 0..5 {
        succeeded(&stack.run_job(&scheduler, "generate").await, "generate");
        shadow =
            sqlx::query_scalar("select count(*) from churn.classified where model_version = $1")
                .bind(challenger)
                .fetch_one(&stack.db.pool)
                .await
                .unwrap();
        if shadow > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(shadow > 0, "the challenger was shadow-scored");
    succeeded(&stack.run_job(&scheduler, "metrics").await, "metrics");
    // Logged calls before the drift run, which measures them too (source api).
    traffic::log_real_traffic(&stack.db.pool).await;
    let drift = stack.run_job(&scheduler, "drift").await;
    succeeded(&drift, "drift");
    assert!(
        drift["details"]["api"]["drift_run_id"].is_string(),
        "{drift}"
    );
    succeeded(&stack.run_job(&scheduler, "dbt").await, "dbt");
    // A row the dbt tests refuse (a prediction by an unregistered version) makes a build fail, as a broken
    // load would: failed runs and failing tests for the panels that show them.
    sqlx::query(
        "insert into churn.classified (customer_id, model_name, model_version, churn_probability,
                                       predicted_churn_label, threshold)
         select customer_id, 'churn-classifier', 99, 0.7, true, 0.5 from churn.customers limit 1",
    )
    .execute(&stack.db.pool)
    .await
    .unwrap();
    let broken = stack.run_job(&scheduler, "dbt").await;
    assert_eq!(broken["status"], "failed", "{broken}");
    // A landed file with two refused lines, as the ingest job records one (its own tests cover how).
    sqlx::raw_sql(
        "insert into ops.ingested_files (file_id, object_key, sha256, rows_total, rows_accepted, rows_rejected,
                                         rows_inserted, status, finished_at)
         values ('00000000-0000-0000-0000-0000000000f1', 'landing/2026-11-26.csv', repeat('a', 64), 10, 8, 2,
                 8, 'processed', now());
         insert into ops.rejected_records (source, file_id, line_number, raw_record, errors)
         values ('file', '00000000-0000-0000-0000-0000000000f1', 3, 'x,y',
                 '[{\"field\": \"tenure_months\", \"value\": -1, \"rule\": \"must be between 0 and 120\"}]'),
                ('file', '00000000-0000-0000-0000-0000000000f1', 7, 'x,z',
                 '[{\"field\": \"contract\", \"value\": \"Weekly\", \"rule\": \"must be one of Month-to-month, One year, Two year\"}]');",
    )
    .execute(&stack.db.pool)
    .await
    .unwrap();

    let mut ro = connect_readonly(&stack).await;
    // dbt recreated the marts after the migration: the default privileges granted every one.
    let marts: Vec<String> = sqlx::query_scalar(
        "select table_name::text from information_schema.tables where table_schema = 'marts' order by 1",
    )
    .fetch_all(&stack.db.pool)
    .await
    .unwrap();
    assert!(marts.len() >= 10, "{marts:?}");
    for mart in &marts {
        let mut select = sqlx::QueryBuilder::new("select * from marts.");
        select
            .push(churn_store::sql::quote_ident(mart))
            .push(" limit 1");
        select
            .build()
            .fetch_all(&mut ro)
            .await
            .unwrap_or_else(|e| panic!("marts.{mart}: {e}"));
    }

    let from = (Utc::now() - chrono::Duration::days(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let to = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let (dashboard_sql, _) = dashboard_queries();
    let (alert_sql, _) = alert_queries();
    let queries: Vec<Query> = dashboard_sql
        .into_iter()
        .chain(alert_sql)
        .chain(metabase_queries())
        .collect();
    assert!(queries.len() >= 40, "{} queries", queries.len());
    let mut failures = Vec::new();
    for query in &queries {
        let sql = expand(&query.text, &from, &to);
        match sqlx::query(AssertSqlSafe(sql.clone()))
            .fetch_all(&mut ro)
            .await
        {
            Err(e) => failures.push(format!("{}: {e}\n{sql}", query.origin)),
            Ok(rows) if rows.is_empty() => {
                failures.push(format!("{}: no rows\n{sql}", query.origin))
            }
            Ok(rows) => {
                let columns: Vec<&str> = rows[0].columns().iter().map(|c| c.name()).collect();
                if query.format == "time_series" && !columns.contains(&"time") {
                    failures.push(format!(
                        "{}: a time series needs a column named time; got {columns:?}",
                        query.origin
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries failed:\n\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n\n")
    );
    ro.close().await.unwrap();
    scheduler.stop().await;
}

/// Datasource uid -> type, as provisioned.
fn provisioned_datasources() -> BTreeMap<String, String> {
    let file = read_yaml(&repo().join("grafana/provisioning/datasources/churn.yaml"));
    file["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["uid"].as_str().unwrap().to_owned(),
                d["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The names Prometheus' recording rules define.
fn recorded_series() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(repo().join("prometheus/rules")).unwrap() {
        let rules = read_yaml(&entry.unwrap().path());
        for group in rules["groups"].as_array().unwrap() {
            for rule in group["rules"].as_array().unwrap() {
                if let Some(name) = rule["record"].as_str() {
                    names.insert(name.to_owned());
                }
            }
        }
    }
    names
}

fn promtool(args: &[&str]) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool not found ({e}): scripts/test installs Debian's prometheus package")
        });
    assert!(
        out.status.success(),
        "promtool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

mod prometheus;
mod provisioning;
mod traffic;

//! The console's pages as HTML: one layout (navigation, the admin-token box), one function per page.
//! Everything is escaped by maud; actions are buttons the page script turns into API calls with the token.

use chrono::{DateTime, Utc};
use churn_registry::Alias;
use churn_store::audit::AuditEntry;
use maud::{DOCTYPE, Markup, html};
use uuid::Uuid;

use crate::data::{
    CohortFigure, Decision, DriftHistory, FileLine, JobLine, Overview, RejectionCount, RunCard,
    RunLine, TRAFFIC_WINDOW_MINUTES, Traffic, VersionCard, run_seconds,
};
use crate::svg;

/// The pages, in navigation order: (path, title).
pub const PAGES: [(&str, &str); 7] = [
    ("/", "Overview"),
    ("/ui/models", "Models"),
    ("/ui/runs", "Runs"),
    ("/ui/jobs", "Jobs"),
    ("/ui/drift", "Drift"),
    ("/ui/data", "Data"),
    ("/ui/audit", "Audit"),
];

/// Where the page script and style are served.
pub const SCRIPT_PATH: &str = "/ui/assets/console.js";
pub const STYLE_PATH: &str = "/ui/assets/console.css";

fn layout(active: &str, now: DateTime<Utc>, body: Markup) -> Markup {
    let title = PAGES
        .iter()
        .find(|p| p.0 == active)
        .map_or("Console", |p| p.1);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · churn scheduler" }
                // No favicon request (and so no 404 in the browser console).
                link rel="icon" href="data:,";
                link rel="stylesheet" href=(STYLE_PATH);
                script src=(SCRIPT_PATH) defer {}
            }
            body {
                header {
                    span.brand { "churn" b { "ops" } }
                    nav {
                        @for (path, name) in PAGES {
                            a href=(path) class=(if path == active { "active" } else { "" }) { (name) }
                        }
                        a href="/docs/" { "API" }
                        a href="/dbt/docs/index.html" { "dbt docs" }
                    }
                    form #token-form autocomplete="off" {
                        // Sent as X-Actor with each action, so the audit log names the person, not the token.
                        input #actor type="text" placeholder="your name" maxlength="64"
                            aria-label="your name, recorded in the audit log with each action"
                            title="Recorded in the audit log with each action: 1 to 64 letters, digits and . _ @ + -";
                        input #token type="password" placeholder="admin token" aria-label="admin token";
                        button type="submit" { "Use token" }
                        button #forget type="button" class="admin-only" { "Forget" }
                    }
                }
                div #flash role="status" {}
                main { (body) }
                footer { "Rendered " (now.format("%Y-%m-%d %H:%M:%S UTC")) ". Read-only without the admin token." }
            }
        }
    }
}

fn num(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
}

fn when(at: DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339()) title=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M:%S")) } }
}

fn ago(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let secs = (now - at).num_seconds().max(0);
    match secs {
        0..=119 => format!("{secs} s ago"),
        120..=7199 => format!("{} min ago", secs / 60),
        7200..=172_799 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

fn status(text: &str) -> Markup {
    html! { span class=(format!("status {text}")) { (text) } }
}

fn short(id: Uuid) -> String {
    id.simple().to_string()[..8].to_owned()
}

fn run_rows(runs: &[RunLine], with_job: bool) -> Markup {
    html! {
        table {
            thead { tr {
                @if with_job { th { "job" } }
                th { "status" } th { "trigger" } th { "attempt" } th { "started" } th.num { "seconds" }
                th.num { "rows" } th { "error" }
            } }
            tbody {
                @for run in runs {
                    tr {
                        @if with_job { td { a href=(format!("/ui/jobs?job={}", run.job_name)) { (run.job_name) } } }
                        td { (status(run.status.as_str())) }
                        td { (run.trigger.as_str()) }
                        td.num { (run.attempt) }
                        td { (when(run.started_at)) }
                        td.num { (num(run_seconds(run), 1)) }
                        td.num { (run.rows_affected.map_or("–".to_owned(), |r| r.to_string())) }
                        @if let Some(why) = interrupted_because(run) {
                            td.note { "stopped: " (why) }
                        } @else {
                            td.error { (run.error.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

/// Why an interrupted run stopped (the runner records it in the run's details); not an error.
fn interrupted_because(run: &RunLine) -> Option<&str> {
    (run.status == churn_store::ops::RunStatus::Interrupted).then(|| {
        run.details.0["interrupted"]
            .as_str()
            .unwrap_or("told to stop")
    })
}

/// `/`: the champion, throughput, freshness, the drift flag and the latest run of every job.
pub fn overview(o: &Overview, now: DateTime<Utc>) -> Markup {
    let body = html! {
        h1 { "Overview" }
        section.cards {
            div.card #champion {
                h2 { "Champion" }
                @match &o.champion {
                    Some(c) => {
                        p.big { "version " (c.version) }
                        dl {
                            dt { "family" } dd { (c.family.as_deref().unwrap_or("–")) }
                            dt { "trained" } dd { (when(c.created_at)) }
                            dt { "champion since" } dd { (when(c.champion_since)) }
                            dt { "test ROC AUC" } dd { (num(c.test_roc_auc, 3)) }
                            dt { "live ROC AUC" } dd {
                                @match &c.live {
                                    Some(l) => { (num(l.roc_auc, 3)) " (" (l.window_name.as_deref().unwrap_or("window")) ", n = " (l.n_samples) ")" }
                                    None => { "not measured yet" }
                                }
                            }
                        }
                    }
                    None => { p.big { "none yet" } p { "The scheduler trains one at start when the registry has no champion." } }
                }
            }
            div.card #freshness {
                h2 { "Freshness" }
                @match o.newest_customer {
                    Some(at) => { p.big { (ago(now, at)) } p { "newest customer " (when(at)) } }
                    None => { p.big { "no customers yet" } }
                }
            }
            div.card #drift-flag {
                h2 { "Dataset drift" }
                @match &o.drift {
                    Some(d) => {
                        p.big { @if d.dataset_drift { span.status.failed { "drifted" } } @else { span.status.succeeded { "no drift" } } }
                        p { (d.n_drifted) " of " (d.n_columns) " columns (" (format!("{:.0}", d.share_drifted * 100.0)) " %), " (d.n_current) " rows of " (d.source) " traffic, " (when(d.computed_at)) }
                    }
                    None => { p.big { "not measured yet" } }
                }
            }
        }
        section #throughput {
            h2 { "Customers written per minute" }
            @if o.per_minute.is_empty() {
                p.empty { "No generate run finished in the last hour." }
            } @else {
                (svg::bars(&o.per_minute, now, "customers written per minute, last hour"))
            }
        }
        section #latest-runs {
            h2 { "Latest run of every job" }
            (run_rows(&o.latest_runs, true))
        }
    };
    layout("/", now, body)
}

/// A cohort's figures in one cell: its day, ROC AUC, label coverage and, while provisional, when it matures.
fn cohort_cell(cohort: Option<&CohortFigure>) -> Markup {
    html! {
        @match cohort {
            None => { "–" }
            Some(c) => {
                span.cohort-auc { (num(c.roc_auc, 3)) }
                " · " (format!("{:.0} %", c.label_coverage * 100.0)) " labelled (" (c.n_labelled) " of " (c.n_predictions) ")"
                " · cohort " (c.cohort_start.format("%Y-%m-%d"))
                @if c.provisional {
                    " " span.status.provisional title=(format!("labels mature {}", c.matures_at.to_rfc3339())) { "provisional" }
                }
            }
        }
    }
}

/// The models page's real-traffic table: per version and source, the live window beside the newest
/// matured and provisional cohorts.
fn traffic_table(versions: &[VersionCard], traffic: &Traffic) -> Markup {
    let lines = traffic.lines();
    html! {
        h2 { "Live and matured, per source" }
        p {
            "Live: the predictions logged in the last " (TRAFFIC_WINDOW_MINUTES) " minutes per source (api: single calls, batch: batches and streams), "
            "and for the synthetic stream the newest window's ROC AUC. Matured: ROC AUC of the newest day cohort whose labels have matured; "
            "provisional: of the newest cohort still maturing, whose figure still moves."
        }
        @if lines.is_empty() { p.empty #no-traffic { "No logged traffic and no cohort figures yet: they appear once callers use /predict and feed outcomes back." } }
        table #live-matured {
            thead { tr {
                th.num { "version" } th { "source" } th { "live (last " (TRAFFIC_WINDOW_MINUTES) " min)" }
                th { "matured cohort" } th { "provisional cohort" }
            } }
            tbody {
                @for v in versions.iter().filter(|v| v.live.is_some()) {
                    @if let Some(live) = &v.live {
                        tr data-source="synthetic" {
                            td.num { (v.line.version) } td { "synthetic" }
                            td { "ROC AUC " (num(live.roc_auc, 3)) " (" (live.window_name.as_deref().unwrap_or("")) ", " (live.n_samples) " labelled)" }
                            td { "–" } td { "–" }
                        }
                    }
                }
                @for line in &lines {
                    tr data-source=(line.source) {
                        td.num { (line.version) }
                        td { (line.source) }
                        td {
                            @if line.served.is_empty() { "–" }
                            @for (i, s) in line.served.iter().enumerate() {
                                @if i > 0 { br; }
                                (s.predictions) " " (s.arm) " predictions, mean p " (num(s.mean_probability, 3))
                                ", p95 " (num(s.p95_latency_ms, 1)) " ms"
                            }
                        }
                        td.matured { (cohort_cell(line.matured)) }
                        td.provisional { (cohort_cell(line.provisional)) }
                    }
                }
            }
        }
    }
}

/// `/ui/models`: every version with aliases, metrics, lineage and importance; live and matured figures per
/// source; the decisions.
pub fn models(
    model_name: &str,
    versions: &[VersionCard],
    decisions: &[Decision],
    traffic: &Traffic,
    now: DateTime<Utc>,
) -> Markup {
    let body = html! {
        h1 { "Models: " (model_name) }
        table #versions {
            thead { tr {
                th { "version" } th { "aliases" } th { "family" } th { "registered" } th.num { "CV ROC AUC" }
                th.num { "test ROC AUC" } th.num { "live ROC AUC" } th { "lineage" } th.admin-only { "" }
            } }
            tbody {
                @for v in versions {
                    @let stored = v.stored_metrics();
                    tr {
                        td.num { (v.line.version) }
                        td { @for a in &v.line.aliases { span class=(format!("alias {a}")) { (a) } " " } }
                        td { (v.line.family.as_deref().unwrap_or("–")) }
                        td { (when(v.line.created_at)) }
                        td.num { (num(stored.cv_roc_auc, 3)) }
                        td.num { (num(stored.test_roc_auc, 3)) }
                        td.num { @match &v.live { Some(l) => { (num(l.roc_auc, 3)) " (" (l.window_name.as_deref().unwrap_or("")) ")" } None => { "–" } } }
                        td.lineage {
                            "data " code { (v.line.lineage.get("training_data_sha256").and_then(|s| s.as_str()).map_or("–", |s| &s[..s.len().min(12)])) }
                            ", " (v.line.lineage.get("training_rows").and_then(serde_json::Value::as_i64).map_or("–".to_owned(), |r| r.to_string())) " rows"
                            ", code " code { (v.line.lineage.get("code_version").and_then(|s| s.as_str()).unwrap_or("–")) }
                            @if let Some(p) = v.line.parent_version { ", parent v" (p) }
                        }
                        td.admin-only {
                            @if !v.line.aliases.iter().any(|a| a.as_str() == &*Alias::CHAMPION) {
                                button.action type="button" data-method="POST"
                                    data-url="/api/2.0/mlflow/registered-models/alias"
                                    data-body=(serde_json::json!({"name": model_name, "alias": Alias::CHAMPION.as_str(), "version": v.line.version.to_string()}).to_string())
                                    data-confirm=(format!("Make version {} the champion?", v.line.version)) { "Promote" }
                            }
                        }
                    }
                }
            }
        }
        (traffic_table(versions, traffic))
        h2 { "Feature importance" }
        p { "Drop in ROC AUC when the field's values are shuffled, measured at training." }
        @for (i, v) in versions.iter().enumerate() {
            @let importance = v.importance();
            details open[i == 0] {
                summary { "version " (v.line.version) " — " (v.line.description) }
                @if importance.is_empty() { p.empty { "No importance was stored for this version." } }
                @else { (svg::hbars(&importance[..importance.len().min(15)], &format!("feature importance of version {}", v.line.version))) }
                p { "artifact SHA-256 " code { (v.line.artifact_sha256) }
                    @if let Some(run) = v.line.run_id { " · run " a href=(format!("/ui/runs?run={run}")) { (short(run)) } } }
            }
        }
        h2 { "Promotion decisions" }
        @if decisions.is_empty() { p.empty { "No champion/challenger decision yet." } }
        table #decisions {
            thead { tr { th { "decided" } th.num { "candidate" } th.num { "champion" } th { "metric" } th.num { "candidate score" }
                th.num { "champion score" } th.num { "margin" } th { "promoted" } th { "reason" } th { "evidence" } } }
            tbody {
                @for d in decisions {
                    tr {
                        td { (when(d.decided_at)) }
                        td.num { (d.decision.candidate_version) }
                        td.num { (d.decision.champion_version.map_or("–".to_owned(), |v| v.to_string())) }
                        td { (d.decision.metric) }
                        td.num { (num(d.decision.candidate_score, 4)) }
                        td.num { (num(d.decision.champion_score, 4)) }
                        td.num { (num(Some(d.decision.margin), 4)) }
                        td { @if d.decision.promoted { span.status.succeeded { "yes" } } @else { span.status.skipped { "no" } } }
                        td { (d.decision.reason) }
                        td { details { summary { "evidence" } pre { (serde_json::to_string_pretty(&d.decision.evidence).unwrap_or_default()) } } }
                    }
                }
            }
        }
    };
    layout("/ui/models", now, body)
}

/// `/ui/runs`: experiment runs with parameters and metrics, and one run's AutoML leaderboard.
pub fn runs(
    cards: &[RunCard],
    selected: Option<Uuid>,
    board: &[(i64, f64)],
    now: DateTime<Utc>,
) -> Markup {
    let chosen = cards.iter().find(|c| Some(c.run_id) == selected);
    let body = html! {
        h1 { "Runs" }
        table #runs {
            thead { tr { th { "run" } th { "experiment" } th { "status" } th { "started" } th.num { "seconds" }
                th.num { "training rows" } th { "family" } th.num { "CV ROC AUC" } th.num { "test ROC AUC" } } }
            tbody {
                @for c in cards {
                    @let metric = |k: &str| c.metrics.iter().find(|m| m.0 == k).map(|m| m.1);
                    tr class=(if Some(c.run_id) == selected { "selected" } else { "" }) {
                        td { a href=(format!("/ui/runs?run={}", c.run_id)) { code { (short(c.run_id)) } } }
                        td { (c.experiment) }
                        td { (status(c.status.as_str())) }
                        td { (when(c.started_at)) }
                        td.num { (num(c.ended_at.map(|e| (e - c.started_at).num_milliseconds() as f64 / 1000.0), 1)) }
                        td.num { (c.training_rows.map_or("–".to_owned(), |r| r.to_string())) }
                        td { (c.params.iter().find(|p| p.0 == "family").map_or("–", |p| p.1.as_str())) }
                        td.num { (num(metric("cv_roc_auc"), 3)) }
                        td.num { (num(metric("test_roc_auc"), 3)) }
                    }
                }
            }
        }
        @if let Some(c) = chosen {
            section.cards {
                div.card #leaderboard {
                    h2 { "AutoML leaderboard of run " code { (short(c.run_id)) } }
                    @if board.is_empty() { p.empty { "This run logged no trials." } }
                    @else {
                        table {
                            thead { tr { th.num { "rank" } th.num { "trial" } th.num { "CV ROC AUC" } } }
                            tbody { @for (rank, (trial, auc)) in board.iter().enumerate() {
                                tr { td.num { (rank + 1) } td.num { (trial) } td.num { (format!("{auc:.4}")) } }
                            } }
                        }
                    }
                }
                div.card #params {
                    h2 { "Parameters" }
                    dl { @for (k, v) in &c.params { dt { (k) } dd { code { (v) } } } }
                    h2 { "Metrics" }
                    dl { @for (k, v) in &c.metrics { dt { (k) } dd { (format!("{v:.4}")) } } }
                }
            }
        } @else {
            p.empty { "No runs yet." }
        }
    };
    layout("/ui/runs", now, body)
}

/// `/ui/jobs`: every job's schedule and switches, actions, and the run history.
pub fn jobs(
    jobs: &[JobLine],
    history: &[RunLine],
    job: Option<&str>,
    now: DateTime<Utc>,
) -> Markup {
    let body = html! {
        h1 { "Jobs" }
        table #jobs {
            thead { tr { th { "job" } th { "schedule" } th { "enabled" } th { "paused" } th { "next run" }
                th { "last run" } th.admin-only { "" } } }
            tbody {
                @for j in jobs {
                    tr data-job=(j.name) {
                        td { a href=(format!("/ui/jobs?job={}", j.name)) { (j.name) } }
                        td { code { (j.schedule) } }
                        td { (if j.enabled { "yes" } else { "no" }) }
                        td { (if j.paused { "paused" } else { "no" }) }
                        td { @match j.next_run { Some(at) => { (when(at)) } None => { "–" } } }
                        td { @match &j.last_run { Some((st, at)) => { (status(st)) " " (ago(now, *at)) } None => { "never" } } }
                        td.admin-only.actions {
                            button.action type="button" data-method="POST" data-url=(format!("/jobs/{}/run", j.name)) { "Run now" }
                            @if j.paused {
                                button.action type="button" data-method="POST" data-url=(format!("/jobs/{}/resume", j.name)) { "Resume" }
                            } @else {
                                button.action type="button" data-method="POST" data-url=(format!("/jobs/{}/pause", j.name)) { "Pause" }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Run history" @if let Some(name) = job { " of " (name) " · " a href="/ui/jobs" { "all jobs" } } }
        div #history { (run_rows(history, true)) }
    };
    layout("/ui/jobs", now, body)
}

/// `/ui/drift`: per-column drift over the newest runs as a heat map, and the newest run's statistics.
pub fn drift(history: &DriftHistory, now: DateTime<Utc>) -> Markup {
    let mut features: Vec<String> = history.cells.iter().map(|c| c.feature.clone()).collect();
    features.sort();
    features.dedup();
    let columns: Vec<String> = history
        .runs
        .iter()
        .map(|r| format!("{} {}", r.source, r.computed_at.format("%m-%d %H:%M")))
        .collect();
    let cells: Vec<svg::Cell> = history
        .cells
        .iter()
        .filter_map(|c| {
            Some(svg::Cell {
                row: features.iter().position(|f| *f == c.feature)?,
                column: history.runs.iter().position(|r| r.run_id == c.run_id)?,
                alarm: c.drifted,
                intensity: c.psi.unwrap_or(0.0) / 0.25,
                tip: format!(
                    "{}: {} {:.4} (threshold {}), PSI {}",
                    c.feature,
                    c.statistic,
                    c.value,
                    c.threshold,
                    num(c.psi, 3)
                ),
            })
        })
        .collect();
    let newest = history.runs.last();
    let body = html! {
        h1 { "Drift" }
        @match newest {
            None => { p.empty { "No drift run yet: the drift job compares recent customers with the champion's training data." } }
            Some(run) => {
                p #verdict {
                    "Newest run " (when(run.computed_at)) " on model version " (run.model_version) " (" (run.source) "): "
                    @if run.dataset_drift { span.status.failed { "dataset drift" } } @else { span.status.succeeded { "no dataset drift" } }
                    " — " (run.n_drifted) " of " (run.n_columns) " columns drifted, " (run.n_current) " current rows."
                }
                h2 { "Per-column drift over time" }
                p { "Red: the column drifted by Evidently's rule; green shades: PSI (darker is larger)." }
                div.scroll { (svg::heat_map(&features, &columns, &cells, "per-column drift by run")) }
                h2 { "Latest statistics" }
                table #statistics {
                    thead { tr { th { "column" } th { "type" } th { "test" } th.num { "value" } th.num { "threshold" } th { "drifted" } th.num { "PSI" } } }
                    tbody {
                        @for c in history.cells.iter().filter(|c| c.run_id == run.run_id) {
                            tr {
                                td { (c.feature) } td { (c.column_type.as_deref().unwrap_or("–")) } td { (c.statistic) }
                                td.num { (format!("{:.4}", c.value)) } td.num { (format!("{:.4}", c.threshold)) }
                                td { @if c.drifted { span.status.failed { "yes" } } @else { "no" } }
                                td.num { (num(c.psi, 4)) }
                            }
                        }
                    }
                }
            }
        }
    };
    layout("/ui/drift", now, body)
}

/// `/ui/data`: landed files and why records were refused.
pub fn data(files: &[FileLine], reasons: &[RejectionCount], now: DateTime<Utc>) -> Markup {
    let body = html! {
        h1 { "Data" }
        h2 { "Ingested files" }
        @if files.is_empty() { p.empty { "No file has landed yet (drop a CSV under landing/ in the bucket)." } }
        @else {
            table #files {
                thead { tr { th { "file" } th { "status" } th.num { "rows" } th.num { "inserted" } th.num { "updated" }
                    th.num { "rejected" } th { "started" } th { "reason" } } }
                tbody { @for f in files {
                    tr {
                        td { code { (f.object_key) } } td { (status(f.status.as_str())) } td.num { (f.rows_total) }
                        td.num { (f.rows_inserted) } td.num { (f.rows_updated) } td.num { (f.rows_rejected) }
                        td { (when(f.started_at)) } td.error { (f.reason.as_deref().unwrap_or("")) }
                    }
                } }
            }
        }
        h2 { "Rejected records by reason (last 7 days)" }
        @if reasons.is_empty() { p.empty { "No record was refused in the last 7 days." } }
        @else {
            table #reasons {
                thead { tr { th { "source" } th { "field" } th { "rule" } th.num { "records" } } }
                tbody { @for r in reasons {
                    tr { td { (r.source) } td { code { (r.field) } } td { (r.rule) } td.num { (r.records) } }
                } }
            }
        }
    };
    layout("/ui/data", now, body)
}

/// `/ui/audit`: the newest manual actions (triggers, pauses, alias moves and deletes, promotions) and
/// who did them.
pub fn audit(entries: &[AuditEntry], now: DateTime<Utc>) -> Markup {
    let body = html! {
        h1 { "Audit log" }
        p { "Every manual action with its actor: the name sent in X-Actor (or HTTP Basic's user name), \
            else the scope of the token presented." }
        @if entries.is_empty() { p.empty { "No manual action yet." } }
        @else {
            table #audit {
                thead { tr { th { "when" } th { "actor" } th { "token" } th { "action" } th { "target" } th { "details" } } }
                tbody { @for e in entries {
                    tr {
                        td { (when(e.at)) } td { (e.actor) } td { (e.token_scope.as_str()) }
                        td { code { (e.action.as_str()) } } td { code { (e.target) } }
                        td { code { (e.details.0.to_string()) } }
                    }
                } }
            }
        }
    };
    layout("/ui/audit", now, body)
}

/// A page for an error: the status and what to do, never internal text.
pub fn error(message: &str, now: DateTime<Utc>) -> Markup {
    layout(
        "",
        now,
        html! { h1 { "Something went wrong" } p { (message) } p { a href="/" { "Back to the overview" } } },
    )
}

/// The page script, compiled in.
pub const SCRIPT: &str = include_str!("../assets/console.js");
/// The page style, compiled in.
pub const STYLE: &str = include_str!("../assets/console.css");

//! `churnctl metabase provision` against a Metabase contract server: Metabase itself cannot run here (no
//! registry serves its image or jar), so a local HTTP server checks every call against the request shapes
//! Metabase documents (v0.50+, /work/shared/REFERENCE.md §d): the session or API-key header, first-run
//! setup, `POST /api/database`, `POST|PUT /api/card` with a native query, `POST /api/dashboard` and
//! `PUT /api/dashboard/:id` with the whole `dashcards` list (negative ids for new cards, 24 columns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

const SPEC: &str = include_str!("../../metabase/churn-analytics.json");
const ADMIN_EMAIL: &str = "admin@churn.example";
const ADMIN_PASSWORD: &str = "a-long-admin-password-1";
const API_KEY: &str = "mb_contract_test_api_key";
const DISPLAYS: &[&str] = &[
    "table",
    "bar",
    "row",
    "line",
    "area",
    "pie",
    "scalar",
    "map",
    "scatter",
    "combo",
    "funnel",
    "progress",
    "gauge",
    "pivot",
    "waterfall",
    "smartscalar",
    "object",
];

/// What the contract server holds, as Metabase would.
#[derive(Debug, Default)]
struct Metabase {
    setup_token: Option<String>,
    has_user: bool,
    sessions: HashSet<String>,
    databases: Vec<Value>,
    cards: Vec<Value>,
    dashboards: Vec<Value>,
    next_id: i64,
    /// Every call, as "METHOD /path".
    calls: Vec<String>,
    /// Every request that broke the documented shapes.
    violations: Vec<String>,
}

type Shared = Arc<Mutex<Metabase>>;

/// A new session's answer: `{"id": "<session id>"}`.
fn new_session(state: &mut Metabase) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    state.sessions.insert(id.clone());
    Json(json!({"id": id})).into_response()
}

fn id_of(path: &str, prefix: &str) -> Option<i64> {
    path.strip_prefix(prefix)?.parse().ok()
}

fn bad(state: &mut Metabase, call: &str, why: String) -> Response {
    state.violations.push(format!("{call}: {why}"));
    (StatusCode::BAD_REQUEST, Json(json!({"message": why}))).into_response()
}

/// Whether `value` is a string with something in it.
fn non_empty(value: &Value) -> bool {
    value.as_str().is_some_and(|s| !s.trim().is_empty())
}

/// Checks a card body's documented fields (all of them on POST, those present on PUT).
fn check_card(state: &Metabase, card: &Value, creating: bool) -> Result<(), String> {
    let need = |key: &str| creating || card.get(key).is_some();
    if need("name") && !non_empty(&card["name"]) {
        return Err("name must be a non-empty string".into());
    }
    if need("type") && card["type"] != "question" {
        return Err(format!("type is {}; expected \"question\"", card["type"]));
    }
    if need("display")
        && !card["display"]
            .as_str()
            .is_some_and(|d| DISPLAYS.contains(&d))
    {
        return Err(format!(
            "display {} is not a Metabase visualization",
            card["display"]
        ));
    }
    if need("visualization_settings") && !card["visualization_settings"].is_object() {
        return Err("visualization_settings must be an object".into());
    }
    if creating && card.get("collection_id").is_none() {
        return Err("collection_id is required (null for the root collection)".into());
    }
    if need("dataset_query") {
        let query = &card["dataset_query"];
        if query["type"] != "native" {
            return Err(format!(
                "dataset_query.type is {}; expected native",
                query["type"]
            ));
        }
        let database = query["database"].as_i64();
        if !state.databases.iter().any(|d| d["id"].as_i64() == database) {
            return Err(format!(
                "dataset_query.database {} is no database",
                query["database"]
            ));
        }
        if !non_empty(&query["native"]["query"]) {
            return Err("dataset_query.native.query must be non-empty SQL".into());
        }
        if !query["native"]["template-tags"].is_object() {
            return Err("dataset_query.native.template-tags must be an object".into());
        }
    }
    Ok(())
}

fn check_database(body: &Value) -> Result<(), String> {
    if body["engine"] != "postgres" {
        return Err(format!("engine is {}; expected postgres", body["engine"]));
    }
    if !non_empty(&body["name"]) {
        return Err("name must be a non-empty string".into());
    }
    let d = &body["details"];
    for key in ["host", "dbname", "user", "password"] {
        if !non_empty(&d[key]) {
            return Err(format!("details.{key} must be a non-empty string"));
        }
    }
    if !d["port"].is_u64() || !d["ssl"].is_boolean() {
        return Err("details.port must be a number and details.ssl a boolean".into());
    }
    if d["user"] != "churn_readonly" {
        return Err(format!(
            "details.user is {}; BI tools connect as churn_readonly",
            d["user"]
        ));
    }
    Ok(())
}

/// Checks `PUT /api/dashboard/:id`'s dashcards and applies them (the list replaces the current set).
fn put_dashcards(state: &mut Metabase, index: usize, body: &Value) -> Result<(), String> {
    let cards = body["dashcards"]
        .as_array()
        .ok_or("dashcards must be an array")?;
    if !body["tabs"].is_array() {
        return Err("tabs must be sent with dashcards (an array)".into());
    }
    let current: Vec<i64> = state.dashboards[index]["dashcards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    let mut cells = HashSet::new();
    let mut applied = Vec::new();
    for d in cards {
        let id = d["id"]
            .as_i64()
            .ok_or("every dashcard needs an integer id")?;
        if id >= 0 && !current.contains(&id) {
            return Err(format!(
                "dashcard id {id} is not on this dashboard (new ones are negative)"
            ));
        }
        let card_id = d["card_id"].as_i64();
        if !state.cards.iter().any(|c| c["id"].as_i64() == card_id) {
            return Err(format!("card_id {} is no card", d["card_id"]));
        }
        let number = |k: &str| d[k].as_i64().ok_or(format!("{k} must be an integer"));
        let (row, col, w, h) = (
            number("row")?,
            number("col")?,
            number("size_x")?,
            number("size_y")?,
        );
        if row < 0 || col < 0 || w < 1 || h < 1 || col + w > 24 {
            return Err(format!(
                "dashcard at row {row} col {col} size {w}x{h} leaves the 24-column grid"
            ));
        }
        for r in row..row + h {
            for c in col..col + w {
                if !cells.insert((r, c)) {
                    return Err(format!("dashcards overlap at row {r} col {c}"));
                }
            }
        }
        if !d["series"].is_array()
            || !d["parameter_mappings"].is_array()
            || !d["visualization_settings"].is_object()
        {
            return Err("series, parameter_mappings (arrays) and visualization_settings (object) are required".into());
        }
        let mut stored = d.clone();
        if id < 0 {
            state.next_id += 1;
            stored["id"] = json!(state.next_id);
        }
        applied.push(stored);
    }
    state.dashboards[index]["dashcards"] = json!(applied);
    Ok(())
}

async fn api(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = shared.lock().unwrap();
    let path = uri.path().to_owned();
    let call = format!("{method} {path}");
    state.calls.push(call.clone());
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return bad(&mut state, &call, format!("the body is not JSON: {e}")),
        }
    };
    let public = matches!(
        (method.as_str(), path.as_str()),
        ("GET", "/api/session/properties" | "/api/health")
            | ("POST", "/api/setup" | "/api/session")
    );
    if !public {
        let session = headers
            .get("X-Metabase-Session")
            .and_then(|v| v.to_str().ok());
        let key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
        let signed_in = session.is_some_and(|s| state.sessions.contains(s)) || key == Some(API_KEY);
        if !signed_in {
            state
                .violations
                .push(format!("{call}: no valid X-Metabase-Session or x-api-key"));
            return (StatusCode::UNAUTHORIZED, "Unauthenticated").into_response();
        }
    }
    match (method.as_str(), path.as_str()) {
        ("GET", "/api/health") => Json(json!({"status": "ok"})).into_response(),
        ("GET", "/api/session/properties") => {
            Json(json!({"setup-token": state.setup_token, "has-user-setup": state.has_user}))
                .into_response()
        }
        ("POST", "/api/setup") => {
            if state.setup_token.is_none() || body["token"].as_str() != state.setup_token.as_deref()
            {
                return bad(
                    &mut state,
                    &call,
                    "the setup token is wrong or setup is done".into(),
                );
            }
            let user = &body["user"];
            for key in ["email", "password", "first_name", "last_name"] {
                if !user[key].is_string() {
                    return bad(&mut state, &call, format!("user.{key} must be a string"));
                }
            }
            if !body["prefs"]["site_name"].is_string() {
                return bad(&mut state, &call, "prefs.site_name must be a string".into());
            }
            state.setup_token = None;
            state.has_user = true;
            new_session(&mut state)
        }
        ("POST", "/api/session") => {
            if body["username"] == ADMIN_EMAIL
                && body["password"] == ADMIN_PASSWORD
                && state.has_user
            {
                new_session(&mut state)
            } else {
                (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"errors": {"password": "did not match"}})),
                )
                    .into_response()
            }
        }
        ("GET", "/api/database") => {
            Json(json!({"data": state.databases, "total": state.databases.len()})).into_response()
        }
        ("POST", "/api/database") => {
            if let Err(why) = check_database(&body) {
                return bad(&mut state, &call, why);
            }
            state.next_id += 1;
            let mut stored = body.clone();
            stored["id"] = json!(state.next_id);
            // Metabase never returns a password.
            stored["details"]["password"] = json!("**MetabasePass**");
            state.databases.push(stored.clone());
            Json(stored).into_response()
        }
        ("GET", "/api/card") => {
            if uri.query() != Some("f=all") {
                return bad(&mut state, &call, "expected ?f=all".into());
            }
            Json(json!(state.cards)).into_response()
        }
        ("POST", "/api/card") => {
            if let Err(why) = check_card(&state, &body, true) {
                return bad(&mut state, &call, why);
            }
            state.next_id += 1;
            let mut stored = body.clone();
            stored["id"] = json!(state.next_id);
            stored["archived"] = json!(false);
            state.cards.push(stored.clone());
            Json(stored).into_response()
        }
        ("GET", "/api/dashboard") => {
            let list: Vec<Value> = state
                .dashboards
                .iter()
                .map(|d| json!({"id": d["id"], "name": d["name"], "description": d["description"], "archived": false}))
                .collect();
            Json(json!(list)).into_response()
        }
        ("POST", "/api/dashboard") => {
            if !non_empty(&body["name"]) || body.get("collection_id").is_none() {
                return bad(
                    &mut state,
                    &call,
                    "name and collection_id are required".into(),
                );
            }
            state.next_id += 1;
            let mut stored = body.clone();
            stored["id"] = json!(state.next_id);
            stored["dashcards"] = json!([]);
            stored["tabs"] = json!([]);
            state.dashboards.push(stored.clone());
            Json(stored).into_response()
        }
        (verb, p) => {
            if let Some(id) = id_of(p, "/api/database/") {
                let Some(index) = state.databases.iter().position(|d| d["id"] == id) else {
                    return bad(&mut state, &call, format!("no database {id}"));
                };
                if verb != "PUT" {
                    return bad(&mut state, &call, "unexpected method".into());
                }
                if let Err(why) = check_database(&body) {
                    return bad(&mut state, &call, why);
                }
                let mut stored = body.clone();
                stored["id"] = json!(id);
                stored["details"]["password"] = json!("**MetabasePass**");
                state.databases[index] = stored.clone();
                return Json(stored).into_response();
            }
            if let Some(id) = id_of(p, "/api/card/") {
                let Some(index) = state.cards.iter().position(|c| c["id"] == id) else {
                    return bad(&mut state, &call, format!("no card {id}"));
                };
                if verb != "PUT" {
                    return bad(&mut state, &call, "unexpected method".into());
                }
                if let Err(why) = check_card(&state, &body, false) {
                    return bad(&mut state, &call, why);
                }
                for (k, v) in body.as_object().unwrap() {
                    state.cards[index][k] = v.clone();
                }
                return Json(state.cards[index].clone()).into_response();
            }
            if let Some(id) = id_of(p, "/api/dashboard/") {
                let Some(index) = state.dashboards.iter().position(|d| d["id"] == id) else {
                    return bad(&mut state, &call, format!("no dashboard {id}"));
                };
                match verb {
                    "GET" => return Json(state.dashboards[index].clone()).into_response(),
                    "PUT" => {
                        if body.get("dashcards").is_some()
                            && let Err(why) = put_dashcards(&mut state, index, &body)
                        {
                            return bad(&mut state, &call, why);
                        }
                        if let Some(description) = body.get("description") {
                            state.dashboards[index]["description"] = description.clone();
                        }
                        return Json(state.dashboards[index].clone()).into_response();
                    }
                    _ => return bad(&mut state, &call, "unexpected method".into()),
                }
            }
            bad(
                &mut state,
                &call,
                "not a route the provisioning should call".into(),
            )
        }
    }
}

/// The contract server on 127.0.0.1:0; returns its URL and state.
async fn start(fresh: bool) -> (String, Shared) {
    let shared: Shared = Arc::new(Mutex::new(Metabase {
        setup_token: fresh.then(|| "setup-token-123".to_owned()),
        has_user: !fresh,
        ..Metabase::default()
    }));
    let app = axum::Router::new().fallback(api).with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, shared)
}

/// Runs `churnctl metabase provision` against `url` with only the given variables set.
async fn provision(url: &str, auth: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_churnctl"));
    command
        .args(["metabase", "provision"])
        .env_clear()
        .env("METABASE_URL", url)
        .env("METABASE_WAREHOUSE_HOST", "postgres")
        .env("METABASE_WAREHOUSE_DB", "churn")
        .env("READONLY_DB_PASSWORD", "readonly-password-1");
    for (k, v) in auth {
        command.env(k, v);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn writes(calls: &[String]) -> Vec<&String> {
    calls
        .iter()
        .filter(|c| (c.starts_with("POST") || c.starts_with("PUT")) && *c != "POST /api/session")
        .collect()
}

/// The server holds exactly the specification: one database as churn_readonly, every question once
/// with its SQL, the dashboard with one card per question.
fn assert_matches_spec(state: &Metabase) {
    let spec: Value = serde_json::from_str(SPEC).unwrap();
    assert_eq!(state.databases.len(), 1);
    assert_eq!(state.databases[0]["details"]["user"], "churn_readonly");
    let questions = spec["questions"].as_array().unwrap();
    assert_eq!(state.cards.len(), questions.len());
    for q in questions {
        let card = state.cards.iter().find(|c| c["name"] == q["name"]).unwrap();
        assert_eq!(
            card["dataset_query"]["native"]["query"], q["sql"],
            "{}",
            q["name"]
        );
        assert_eq!(card["display"], q["display"]);
    }
    assert_eq!(state.dashboards.len(), 1);
    let board = &state.dashboards[0];
    assert_eq!(board["name"], "Churn analytics");
    let placed: HashSet<i64> = board["dashcards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["card_id"].as_i64().unwrap())
        .collect();
    let cards: HashSet<i64> = state
        .cards
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(placed, cards);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_metabase_is_set_up_and_provisioned_and_a_second_run_changes_nothing() {
    let (url, shared) = start(true).await;
    let admin = [
        ("METABASE_ADMIN_EMAIL", ADMIN_EMAIL),
        ("METABASE_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ];
    let first = provision(&url, &admin).await;
    assert!(first.status.success(), "{first:?}");
    {
        let state = shared.lock().unwrap();
        assert!(state.violations.is_empty(), "{:#?}", state.violations);
        let count = |call: &str| state.calls.iter().filter(|c| *c == call).count();
        assert_eq!(count("POST /api/setup"), 1);
        assert_eq!(count("POST /api/database"), 1);
        assert_eq!(count("POST /api/card"), 14);
        assert_eq!(count("POST /api/dashboard"), 1);
        assert_eq!(
            writes(&state.calls).len(),
            1 + 1 + 14 + 1 + 1,
            "{:#?}",
            state.calls
        );
        assert_matches_spec(&state);
    }
    let calls_before = shared.lock().unwrap().calls.len();

    let second = provision(&url, &admin).await;
    assert!(second.status.success(), "{second:?}");
    let state = shared.lock().unwrap();
    assert!(state.violations.is_empty(), "{:#?}", state.violations);
    let calls = &state.calls[calls_before..];
    assert!(
        calls.contains(&"POST /api/session".to_owned()),
        "signs in, no second setup: {calls:?}"
    );
    assert!(writes(calls).is_empty(), "the second run wrote: {calls:?}");
    let out = String::from_utf8_lossy(&second.stdout);
    assert_eq!(out.lines().count(), 16, "{out}");
    assert!(out.lines().all(|l| l.contains(": unchanged")), "{out}");
    assert_matches_spec(&state);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_question_edited_by_hand_and_a_removed_card_are_restored_with_an_api_key() {
    let (url, shared) = start(false).await;
    let key = [("METABASE_API_KEY", API_KEY)];
    assert!(provision(&url, &key).await.status.success());
    let edited = {
        let mut state = shared.lock().unwrap();
        state.cards[2]["dataset_query"]["native"]["query"] = json!("select 1");
        let dashcards = state.dashboards[0]["dashcards"].as_array_mut().unwrap();
        dashcards.pop();
        state.calls.clear();
        state.cards[2]["id"].as_i64().unwrap()
    };

    let out = provision(&url, &key).await;
    assert!(out.status.success(), "{out:?}");
    let state = shared.lock().unwrap();
    assert!(state.violations.is_empty(), "{:#?}", state.violations);
    let board = state.dashboards[0]["id"].as_i64().unwrap();
    assert_eq!(
        writes(&state.calls),
        [
            &format!("PUT /api/card/{edited}"),
            &format!("PUT /api/dashboard/{board}")
        ],
        "only the edited question and the dashboard are written"
    );
    assert_matches_spec(&state);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_api_key_or_admin_credentials_provisioning_stops_naming_the_variables() {
    let (url, shared) = start(true).await;
    let out = provision(&url, &[]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("METABASE_API_KEY") && err.contains("METABASE_ADMIN_EMAIL"),
        "{err}"
    );
    assert!(shared.lock().unwrap().calls.is_empty());
}

//! `churnctl metabase provision`: the warehouse connection, the native-SQL questions and the "Churn
//! analytics" dashboard of `metabase/churn-analytics.json`, made in Metabase through its REST API.
//!
//! Objects are found by name and updated only where they differ from the specification, so a second run
//! changes nothing. The request shapes are Metabase's documented ones (v0.50+): `POST /api/setup` or
//! `POST /api/session` (or an API key in `x-api-key`), `POST /api/database`, `POST|PUT /api/card` with a
//! native query, `POST /api/dashboard`, and `PUT /api/dashboard/:id` with the whole `dashcards` list.

use std::time::Duration;

use anyhow::{Context, bail};
use churn_config::Secret;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

/// The specification compiled in, so the binary provisions what this commit's tests checked.
const SPEC: &str = include_str!("../../metabase/churn-analytics.json");
/// The role Metabase reads the warehouse as (migration V6).
const READONLY_ROLE: &str = "churn_readonly";
/// Metabase's dashboard grid is 24 columns wide.
const GRID_COLUMNS: i64 = 24;

#[derive(Debug, Subcommand)]
pub enum MetabaseCommand {
    /// Create or update the warehouse connection, the questions and the "Churn analytics" dashboard.
    Provision(ProvisionArgs),
}

#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// Metabase's address.
    #[arg(long, env = "METABASE_URL", default_value = "http://127.0.0.1:3000")]
    pub url: String,
    /// An API key (Admin › Authentication › API keys); otherwise the admin's email and password.
    #[arg(long, env = "METABASE_API_KEY", hide_env_values = true)]
    pub api_key: Option<Secret>,
    /// The admin's email: created on a fresh Metabase (first-run setup), signed in with otherwise.
    #[arg(long, env = "METABASE_ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    #[arg(long, env = "METABASE_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<Secret>,
    /// The warehouse's host as Metabase reaches it.
    #[arg(long, env = "METABASE_WAREHOUSE_HOST", default_value = "postgres")]
    pub warehouse_host: String,
    #[arg(long, env = "METABASE_WAREHOUSE_PORT", default_value_t = 5432)]
    pub warehouse_port: u16,
    #[arg(long, env = "METABASE_WAREHOUSE_DB", default_value = "churn")]
    pub warehouse_db: String,
    /// The password of churn_readonly.
    #[arg(long, env = "READONLY_DB_PASSWORD", hide_env_values = true)]
    pub readonly_password: Secret,
    /// Send the connection details even when the visible ones are unchanged (Metabase never returns
    /// the password, so a changed password cannot be seen).
    #[arg(long)]
    pub update_database: bool,
}

pub async fn run(command: MetabaseCommand) -> anyhow::Result<()> {
    match command {
        MetabaseCommand::Provision(args) => {
            for line in provision(&args).await? {
                println!("{line}");
            }
            Ok(())
        }
    }
}

/// Metabase's REST API with one way of authenticating.
struct Metabase {
    http: reqwest::Client,
    base: String,
    auth: Option<(&'static str, String)>,
}

impl Metabase {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some((header, value)) = &self.auth {
            request = request.header(*header, value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {}{path}", self.base))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{method} {path}: Metabase answered {status}: {text}");
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .with_context(|| format!("{method} {path}: the answer is not JSON: {text}"))
    }

    /// The id field of an answer.
    fn id(answer: &Value, what: &str) -> anyhow::Result<i64> {
        answer["id"]
            .as_i64()
            .with_context(|| format!("{what}: the answer has no numeric id: {answer}"))
    }
}

/// Signs in: an API key when given, otherwise the admin's email and password (first-run setup on a fresh
/// Metabase, a session otherwise).
async fn sign_in(args: &ProvisionArgs, http: reqwest::Client) -> anyhow::Result<Metabase> {
    let base = args.url.trim_end_matches('/').to_owned();
    let mut metabase = Metabase {
        http,
        base,
        auth: None,
    };
    if let Some(key) = args
        .api_key
        .as_ref()
        .map(Secret::expose)
        .filter(|k| !k.is_empty())
    {
        metabase.auth = Some(("x-api-key", key.to_owned()));
        return Ok(metabase);
    }
    let (Some(email), Some(password)) = (
        &args.admin_email,
        args.admin_password.as_ref().map(Secret::expose),
    ) else {
        bail!(
            "METABASE_API_KEY is unset, and so is METABASE_ADMIN_EMAIL or METABASE_ADMIN_PASSWORD: \
             set an API key, or the admin's email and password"
        );
    };
    let properties = metabase
        .call(Method::GET, "/api/session/properties", None)
        .await?;
    let session = match properties["setup-token"].as_str() {
        Some(token) if properties["has-user-setup"] != true => {
            let body = json!({
                "token": token,
                "user": {"email": email, "password": password, "first_name": "Churn",
                         "last_name": "Admin", "site_name": "Churn platform"},
                "prefs": {"site_name": "Churn platform", "site_locale": "en", "allow_tracking": false},
            });
            metabase
                .call(Method::POST, "/api/setup", Some(&body))
                .await?
        }
        _ => {
            let body = json!({"username": email, "password": password});
            metabase
                .call(Method::POST, "/api/session", Some(&body))
                .await?
        }
    };
    let id = session["id"]
        .as_str()
        .context("Metabase's sign-in answer has no session id")?;
    metabase.auth = Some(("X-Metabase-Session", id.to_owned()));
    Ok(metabase)
}

/// A list answer: Metabase wraps some lists in `{"data": [...]}`.
fn list(answer: Value) -> Vec<Value> {
    match answer {
        Value::Array(items) => items,
        Value::Object(mut map) => match map.remove("data") {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// The lowest-id object named `name` (not archived).
fn find_by_name(items: &[Value], name: &str) -> Option<Value> {
    items
        .iter()
        .filter(|i| i["name"] == name && i["archived"] != true)
        .min_by_key(|i| i["id"].as_i64().unwrap_or(i64::MAX))
        .cloned()
}

/// Places cards left to right, in order, wrapping at the grid's width.
fn layout(sizes: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let (mut row, mut col, mut height) = (0, 0, 0);
    sizes
        .iter()
        .map(|&(width, h)| {
            if col + width > GRID_COLUMNS {
                row += height;
                col = 0;
                height = 0;
            }
            let at = (row, col);
            col += width;
            height = height.max(h);
            at
        })
        .collect()
}

/// Provisions everything; returns one line per object saying what happened to it.
pub async fn provision(args: &ProvisionArgs) -> anyhow::Result<Vec<String>> {
    let spec: Value = serde_json::from_str(SPEC).context("metabase/churn-analytics.json")?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let metabase = sign_in(args, http).await?;
    let mut report = Vec::new();

    // The warehouse connection, as churn_readonly.
    let db_name = spec["database"]["name"].as_str().context("database.name")?;
    let details = json!({
        "host": args.warehouse_host, "port": args.warehouse_port, "dbname": args.warehouse_db,
        "user": READONLY_ROLE, "password": args.readonly_password.expose(), "ssl": false,
    });
    let databases = list(metabase.call(Method::GET, "/api/database", None).await?);
    let database_id = match find_by_name(&databases, db_name) {
        None => {
            let body = json!({"engine": "postgres", "name": db_name, "details": details});
            let created = metabase
                .call(Method::POST, "/api/database", Some(&body))
                .await?;
            let id = Metabase::id(&created, "POST /api/database")?;
            report.push(format!("database \"{db_name}\": created (id {id})"));
            id
        }
        Some(existing) => {
            let id = Metabase::id(&existing, "GET /api/database")?;
            let visible = ["host", "port", "dbname", "user"];
            let same = existing["engine"] == "postgres"
                && visible.iter().all(|k| existing["details"][k] == details[k]);
            if same && !args.update_database {
                report.push(format!("database \"{db_name}\": unchanged (id {id})"));
            } else {
                let body = json!({"engine": "postgres", "name": db_name, "details": details});
                metabase
                    .call(Method::PUT, &format!("/api/database/{id}"), Some(&body))
                    .await?;
                report.push(format!("database \"{db_name}\": updated (id {id})"));
            }
            id
        }
    };

    // The questions: native SQL on the marts.
    let cards = list(metabase.call(Method::GET, "/api/card?f=all", None).await?);
    let questions = spec["questions"].as_array().context("questions")?;
    let mut placed = Vec::new();
    for question in questions {
        let name = question["name"].as_str().context("question name")?;
        let desired = json!({
            "name": name,
            "type": "question",
            "description": question["description"],
            "display": question["display"],
            "visualization_settings": question["visualization_settings"],
            "collection_id": null,
            "dataset_query": {
                "type": "native",
                "database": database_id,
                "native": {"query": question["sql"], "template-tags": {}},
            },
        });
        let id = match find_by_name(&cards, name) {
            None => {
                let created = metabase
                    .call(Method::POST, "/api/card", Some(&desired))
                    .await?;
                let id = Metabase::id(&created, "POST /api/card")?;
                report.push(format!("question \"{name}\": created (id {id})"));
                id
            }
            Some(existing) => {
                let id = Metabase::id(&existing, "GET /api/card")?;
                let query = &existing["dataset_query"];
                let same = ["description", "display", "visualization_settings"]
                    .iter()
                    .all(|k| existing[k] == desired[k])
                    && query["type"] == "native"
                    && query["database"] == database_id
                    && query["native"]["query"] == question["sql"];
                if same {
                    report.push(format!("question \"{name}\": unchanged (id {id})"));
                } else {
                    metabase
                        .call(Method::PUT, &format!("/api/card/{id}"), Some(&desired))
                        .await?;
                    report.push(format!("question \"{name}\": updated (id {id})"));
                }
                id
            }
        };
        let size = (
            question["size_x"].as_i64().unwrap_or(12),
            question["size_y"].as_i64().unwrap_or(6),
        );
        placed.push((id, size));
    }

    // The dashboard and its cards.
    let board_name = spec["dashboard"]["name"]
        .as_str()
        .context("dashboard.name")?;
    let description = &spec["dashboard"]["description"];
    let boards = list(
        metabase
            .call(Method::GET, "/api/dashboard?f=all", None)
            .await?,
    );
    let (board_id, created) = match find_by_name(&boards, board_name) {
        Some(existing) => (Metabase::id(&existing, "GET /api/dashboard")?, false),
        None => {
            let body =
                json!({"name": board_name, "description": description, "collection_id": null});
            let answer = metabase
                .call(Method::POST, "/api/dashboard", Some(&body))
                .await?;
            (Metabase::id(&answer, "POST /api/dashboard")?, true)
        }
    };
    let board = metabase
        .call(Method::GET, &format!("/api/dashboard/{board_id}"), None)
        .await?;
    let current = board["dashcards"].as_array().cloned().unwrap_or_default();
    let positions = layout(&placed.iter().map(|(_, s)| *s).collect::<Vec<_>>());
    let mut next_new = -1;
    let mut dashcards = Vec::new();
    let mut unchanged = current.len() == placed.len();
    for ((card_id, (size_x, size_y)), (row, col)) in placed.iter().zip(&positions) {
        let existing = current.iter().find(|d| d["card_id"] == *card_id);
        let id = match existing {
            Some(d) => Metabase::id(d, "a dashcard")?,
            None => {
                let id = next_new;
                next_new -= 1;
                id
            }
        };
        let same_place = existing.is_some_and(|d| {
            d["row"] == *row && d["col"] == *col && d["size_x"] == *size_x && d["size_y"] == *size_y
        });
        unchanged &= same_place;
        dashcards.push(json!({
            "id": id, "card_id": card_id, "row": row, "col": col, "size_x": size_x, "size_y": size_y,
            "series": [], "parameter_mappings": [], "visualization_settings": {},
        }));
    }
    unchanged &= board["description"] == *description;
    if unchanged {
        report.push(format!(
            "dashboard \"{board_name}\": unchanged (id {board_id}, {} cards)",
            placed.len()
        ));
    } else {
        let body = json!({"description": description, "dashcards": dashcards, "tabs": []});
        metabase
            .call(
                Method::PUT,
                &format!("/api/dashboard/{board_id}"),
                Some(&body),
            )
            .await?;
        let verb = if created { "created" } else { "updated" };
        report.push(format!(
            "dashboard \"{board_name}\": {verb} (id {board_id}, {} cards)",
            placed.len()
        ));
    }
    Ok(report)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn cards_are_placed_left_to_right_and_wrap_at_24_columns() {
        let at = layout(&[(12, 6), (12, 6), (24, 9), (12, 4), (8, 2), (8, 5)]);
        assert_eq!(at, [(0, 0), (0, 12), (6, 0), (15, 0), (15, 12), (19, 0)]);
    }

    #[test]
    fn the_compiled_in_specification_names_fourteen_questions_that_fit_the_grid() {
        let spec: Value = serde_json::from_str(SPEC).unwrap();
        let questions = spec["questions"].as_array().unwrap();
        assert_eq!(questions.len(), 14);
        for q in questions {
            let width = q["size_x"].as_i64().unwrap();
            assert!(width > 0 && width <= GRID_COLUMNS, "{q}");
            assert!(!q["sql"].as_str().unwrap().trim().is_empty());
        }
    }
}

//! The searches of runs, model versions and registered models in SQL: a parsed filter and ordering become
//! the WHERE, ORDER BY, LIMIT and OFFSET of one `QueryBuilder` query that selects a page of keys.
//!
//! Every value, and every tag, param or metric key, is bound; the only SQL pushed as text is this
//! module's `&'static str`s. Each field is one SQL expression that yields exactly the value the MLflow
//! shapes show for it (`RunRecord::to_mlflow`, `model_version`, `registered_model`), NULL where the
//! entity has no such field, so that the SQL keeps the in-memory semantics of `Filter::accepts` and
//! `Order::compare`:
//! - a missing field satisfies only `!=` (`is distinct from`), and sorts last either way;
//! - text compares and sorts byte-wise, as Rust's `String` does (`collate "C"`);
//! - LIKE has the wildcards `%` and `_` and no escape character (`escape ''`); ILIKE compares
//!   lower-cased text, the pattern lower-cased by Rust and the value by ICU's root locale, the one
//!   PostgreSQL collation whose `lower` agrees with Rust's `to_lowercase` beyond ASCII (final sigma, İ);
//! - timestamps are whole epoch milliseconds (floored, like `millis`), so that rows within one
//!   millisecond tie and fall through to the next key as they did in memory.

use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::filter::{Clause, Field, Op, Value};
use super::{Search, storable};
use crate::Error;

/// What a field's SQL expression yields: text, or a `double precision` (as `Value::Number`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Number,
}

/// A piece of a field's SQL expression.
#[derive(Debug)]
enum Part {
    Sql(&'static str),
    /// A tag, param or metric key: bound, never formatted into the SQL.
    Key(String),
}

/// A field's SQL expression over the searched row (`r` a run, `v` a version, `m` a model).
#[derive(Debug)]
struct Expr {
    parts: Vec<Part>,
    kind: Kind,
}

impl Expr {
    fn column(sql: &'static str, kind: Kind) -> Option<Expr> {
        Some(Expr {
            parts: vec![Part::Sql(sql)],
            kind,
        })
    }

    /// `before KEY after`, the key bound. A key holding NUL names nothing (no stored text holds NUL,
    /// and PostgreSQL refuses it as a parameter), so it is a field no row has.
    fn keyed(before: &'static str, key: &str, after: &'static str, kind: Kind) -> Option<Expr> {
        storable(key).then(|| Expr {
            parts: vec![
                Part::Sql(before),
                Part::Key(key.to_owned()),
                Part::Sql(after),
            ],
            kind,
        })
    }

    fn push(&self, query: &mut QueryBuilder<Postgres>) {
        query.push("(");
        for part in &self.parts {
            match part {
                Part::Sql(sql) => query.push(*sql),
                Part::Key(key) => query.push_bind(key.clone()),
            };
        }
        query.push(")");
    }

    /// The expression as compared and sorted: text byte-wise.
    fn push_ordered(&self, query: &mut QueryBuilder<Postgres>) {
        self.push(query);
        if self.kind == Kind::Text {
            query.push(r#" collate "C""#);
        }
    }
}

/// Maps a field to its expression; `None` for a field no row of the entity has.
type Fields = fn(&Field) -> Option<Expr>;

/// `floor(epoch milliseconds)` of a timestamp column, as `millis` computes it.
macro_rules! millis {
    ($timestamp:expr) => {
        concat!("floor(extract(epoch from ", $timestamp, ") * 1000)::float8")
    };
}

/// A run's name, as `RunRecord::to_mlflow` makes it: `{experiment}-{first 8 characters of its id}`.
const RUN_NAME: &str = "r.experiment || '-' || left(r.run_id::text, 8)";
/// A stored tag of a run, by key (the key is bound after this).
const RUN_TAG: &str =
    "select t.value from registry.run_tags as t where t.run_id = r.run_id and t.key = ";

/// A run's fields (`Run`'s search fields). Metrics are finite (`log_metrics` stores no NaN), so
/// PostgreSQL's ordering of `double precision` is Rust's.
fn run_field(field: &Field) -> Option<Expr> {
    match field {
        Field::Attribute(attribute) => match attribute.as_str() {
            // Stored lower-case, shown upper-case.
            "status" => Expr::column("upper(r.status)", Kind::Text),
            "run_name" => Expr::column(RUN_NAME, Kind::Text),
            // Lower-case and hyphenated, as `Uuid`'s `Display`.
            "run_id" => Expr::column("r.run_id::text", Kind::Text),
            "start_time" => Expr::column(millis!("r.started_at"), Kind::Number),
            "end_time" => Expr::column(millis!("r.ended_at"), Kind::Number),
            _ => None,
        },
        // The value at the largest step.
        Field::Metric(key) => Expr::keyed(
            "select m.value from registry.run_metrics as m where m.run_id = r.run_id and m.key = ",
            key,
            " order by m.step desc limit 1",
            Kind::Number,
        ),
        Field::Param(key) => Expr::keyed(
            "select p.value from registry.run_params as p where p.run_id = r.run_id and p.key = ",
            key,
            "",
            Kind::Text,
        ),
        Field::Tag(key) => run_tag(key),
    }
}

/// A run's tag: the stored one, else the tag `RunRecord::to_mlflow` derives from the run's columns (it
/// lists stored tags first, and a search sees the first tag of a key).
fn run_tag(key: &str) -> Option<Expr> {
    let derived = match key {
        "mlflow.runName" => RUN_NAME,
        "churn.code_version" => "r.code_version",
        "churn.training_rows" => "r.training_rows::text",
        "churn.training_data_sha256" => "r.training_data_sha256",
        "mlflow.parentRunId" => "r.parent_run_id::text",
        _ => return Expr::keyed(RUN_TAG, key, "", Kind::Text),
    };
    Some(Expr {
        parts: vec![
            Part::Sql("coalesce(("),
            Part::Sql(RUN_TAG),
            Part::Key(key.to_owned()),
            Part::Sql("), "),
            Part::Sql(derived),
            Part::Sql(")"),
        ],
        kind: Kind::Text,
    })
}

/// A model version's fields (`ModelVersion`'s search fields). Its tags are all derived from its
/// columns (`model_version`), so a tag key picks a column here and is never sent.
fn version_field(field: &Field) -> Option<Expr> {
    match field {
        Field::Attribute(attribute) => match attribute.as_str() {
            "name" => Expr::column("v.model_name", Kind::Text),
            "run_id" => Expr::column("v.run_id::text", Kind::Text),
            "version_number" => Expr::column("v.version::float8", Kind::Number),
            "creation_timestamp" => Expr::column(millis!("v.created_at"), Kind::Number),
            // Its creation, or the last move of an alias to it.
            "timestamp" | "last_updated_timestamp" => Expr::column(
                millis!(
                    "greatest(v.created_at, (select max(a.updated_at) from registry.aliases as a
                       where a.model_name = v.model_name and a.version = v.version))"
                ),
                Kind::Number,
            ),
            _ => None,
        },
        Field::Tag(key) => match key.as_str() {
            "churn.flavor" => Expr::column("v.flavor", Kind::Text),
            "churn.artifact_sha256" => Expr::column("v.artifact_sha256", Kind::Text),
            "churn.artifact_size" => Expr::column("v.artifact_size::text", Kind::Text),
            "churn.parent_version" => Expr::column("v.parent_version::text", Kind::Text),
            _ => None,
        },
        Field::Param(_) | Field::Metric(_) => None,
    }
}

/// A registered model's fields (`RegisteredModel`'s search fields: it has no tags).
fn model_field(field: &Field) -> Option<Expr> {
    match field {
        Field::Attribute(attribute) => match attribute.as_str() {
            "name" => Expr::column("m.name", Kind::Text),
            "creation_timestamp" => Expr::column(millis!("m.created_at"), Kind::Number),
            // Its own update, or the last move of one of its aliases.
            "timestamp" | "last_updated_timestamp" => Expr::column(
                millis!(
                    "greatest(m.updated_at, (select max(a.updated_at) from registry.aliases as a
                       where a.model_name = m.name))"
                ),
                Kind::Number,
            ),
            _ => None,
        },
        Field::Tag(_) | Field::Param(_) | Field::Metric(_) => None,
    }
}

fn truth(holds: bool) -> &'static str {
    if holds { "true" } else { "false" }
}

/// The SQL of a comparison operator (`None`: not a comparison). `!=` is `is distinct from`: a missing
/// field (NULL) satisfies it.
fn comparison(op: Op) -> Option<&'static str> {
    match op {
        Op::Eq => Some(" = "),
        Op::Ne => Some(" is distinct from "),
        Op::Lt => Some(" < "),
        Op::Le => Some(" <= "),
        Op::Gt => Some(" > "),
        Op::Ge => Some(" >= "),
        Op::Like | Op::ILike | Op::In => None,
    }
}

/// One clause as a condition. A missing field is NULL, which every condition but `!=` rejects; a value
/// of the other kind than the field's, or text holding NUL (no stored text does), decides the clause
/// for every row as `Filter::accepts` would, and is never sent.
fn push_clause(query: &mut QueryBuilder<Postgres>, clause: &Clause, fields: Fields) {
    let Some(expr) = fields(&clause.field) else {
        query.push(truth(clause.op == Op::Ne));
        return;
    };
    match (
        clause.op,
        comparison(clause.op),
        expr.kind,
        clause.values.first(),
    ) {
        (Op::In, _, Kind::Text, _) => {
            let texts: Vec<&str> = clause
                .values
                .iter()
                .filter_map(|v| match v {
                    Value::Text(t) if storable(t) => Some(t.as_str()),
                    _ => None,
                })
                .collect();
            expr.push(query);
            query.push(" = any(").push_bind(texts).push(")");
        }
        (Op::Like, _, Kind::Text, Some(Value::Text(pattern))) if storable(pattern) => {
            expr.push(query);
            query
                .push(" like ")
                .push_bind(pattern.clone())
                .push(" escape ''");
        }
        (Op::ILike, _, Kind::Text, Some(Value::Text(pattern))) if storable(pattern) => {
            query.push("lower(");
            expr.push(query);
            query
                .push(r#" collate "und-x-icu") like "#)
                .push_bind(pattern.to_lowercase())
                .push(" escape ''");
        }
        (_, Some(sql), Kind::Number, Some(Value::Number(n))) => {
            expr.push(query);
            query.push(sql).push_bind(*n);
        }
        (op, Some(sql), Kind::Text, Some(Value::Text(text))) => {
            push_text_comparison(query, &expr, (op, sql), text);
        }
        (op, ..) => {
            query.push(truth(op == Op::Ne));
        }
    }
}

/// `expr OP text`, byte-wise.
fn push_text_comparison(
    query: &mut QueryBuilder<Postgres>,
    expr: &Expr,
    (op, sql): (Op, &'static str),
    text: &str,
) {
    let Some((prefix, _)) = text.split_once('\0') else {
        expr.push_ordered(query);
        query.push(sql).push_bind(text.to_owned());
        return;
    };
    // Stored text holds no NUL: it never equals `text`, and is below `prefix\0…` exactly when it is at
    // most `prefix`.
    let sql = match op {
        Op::Lt | Op::Le => " <= ",
        Op::Gt | Op::Ge => " > ",
        _ => {
            query.push(truth(op == Op::Ne));
            return;
        }
    };
    expr.push_ordered(query);
    query.push(sql).push_bind(prefix.to_owned());
}

/// ` and CLAUSE` for each clause of the search's filter.
fn push_filter(query: &mut QueryBuilder<Postgres>, search: &Search, fields: Fields) {
    for clause in &search.filter.clauses {
        query.push(" and ");
        push_clause(query, clause, fields);
    }
}

/// ` order by` the caller's keys (missing values last either way) then `default` (a total order, so
/// that pages do not overlap), and one row more than a page, to know whether another follows.
fn push_order_and_page(
    query: &mut QueryBuilder<Postgres>,
    search: &Search,
    fields: Fields,
    default: &'static str,
) {
    query.push(" order by ");
    for (field, ascending) in &search.order.keys {
        // A field no row has orders nothing.
        let Some(expr) = fields(field) else { continue };
        expr.push_ordered(query);
        query.push(if *ascending {
            " asc nulls last, "
        } else {
            " desc nulls last, "
        });
    }
    // Both are bounded by their patterns and ranges (9 digits, 200,000), far below i64::MAX.
    query
        .push(default)
        .push(" limit ")
        .push_bind(search.limit as i64 + 1)
        .push(" offset ")
        .push_bind(search.offset as i64);
}

/// The page among `rows` (a page and maybe one more) and the next page's token when more rows follow.
fn page<T>(search: &Search, mut rows: Vec<T>) -> (Vec<T>, Option<String>) {
    let next = (rows.len() > search.limit).then(|| (search.offset + search.limit).to_string());
    rows.truncate(search.limit);
    (rows, next)
}

/// The ids of one page of `runs/search`, over the runs of `experiments` (names; all when `None`).
/// Default order: newest first, then by id (the uuid order is the order of its hyphenated text).
pub(super) async fn run_page(
    pool: &PgPool,
    experiments: Option<&[String]>,
    search: &Search,
) -> Result<(Vec<Uuid>, Option<String>), Error> {
    let mut query = QueryBuilder::new("select r.run_id from registry.runs as r where true");
    if let Some(names) = experiments {
        query
            .push(" and r.experiment = any(")
            .push_bind(names)
            .push(")");
    }
    push_filter(&mut query, search, run_field);
    push_order_and_page(
        &mut query,
        search,
        run_field,
        concat!(millis!("r.started_at"), " desc, r.run_id"),
    );
    let ids: Vec<Uuid> = query.build_query_scalar().fetch_all(pool).await?;
    Ok(page(search, ids))
}

/// The (name, version) keys of one page of `model-versions/search`. Default order: name, then newest
/// version first.
pub(super) async fn version_page(
    pool: &PgPool,
    search: &Search,
) -> Result<(Vec<(String, i32)>, Option<String>), Error> {
    let mut query = QueryBuilder::new(
        "select v.model_name, v.version from registry.model_versions as v where true",
    );
    push_filter(&mut query, search, version_field);
    push_order_and_page(
        &mut query,
        search,
        version_field,
        r#"v.model_name collate "C", v.version desc"#,
    );
    let keys: Vec<(String, i32)> = query.build_query_as().fetch_all(pool).await?;
    Ok(page(search, keys))
}

/// The names of one page of `registered-models/search`. Default order: name.
pub(super) async fn model_page(
    pool: &PgPool,
    search: &Search,
) -> Result<(Vec<String>, Option<String>), Error> {
    let mut query =
        QueryBuilder::new("select m.name from registry.registered_models as m where true");
    push_filter(&mut query, search, model_field);
    push_order_and_page(&mut query, search, model_field, r#"m.name collate "C""#);
    let names: Vec<String> = query.build_query_scalar().fetch_all(pool).await?;
    Ok(page(search, names))
}

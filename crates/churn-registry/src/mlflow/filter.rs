//! MLflow search filters, orderings and page tokens: the subset of MLflow's search grammar its clients
//! send (`name = 'x'`, `` tag.`k` != 'v' ``, `run_id IN ('a', 'b')`, `metrics.auc > 0.8`, … joined by
//! AND), each endpoint's accepted language stated as a regular expression that is also its documented
//! pattern, so what the OpenAPI document promises and what the parser accepts are the same strings.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use regex::Regex;

use crate::Error;

/// A search's text parameters as a client sent them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchRequest {
    pub filter: Option<String>,
    pub max_results: Option<i64>,
    pub order_by: Vec<String>,
    pub page_token: Option<String>,
}

// The pieces the patterns are made of. A string literal is single- or double-quoted (no escapes); a tag,
// param or metric key is a word or a back-quoted name; spaces (only) may surround symbols and must
// surround words; clauses are joined by AND in any case.
macro_rules! string_op {
    () => {
        r"(?: *(?:=|!=) *| +(?:[Ll][Ii][Kk][Ee]|[Ii][Ll][Ii][Kk][Ee]) +)(?:'[^']*'|\x22[^\x22]*\x22)"
    };
}
macro_rules! key {
    () => {
        r"\.(?:[A-Za-z0-9_]+|`[^`]+`)"
    };
}
macro_rules! number_op {
    () => {
        r" *(?:=|!=|<|<=|>|>=) *-?[0-9]{1,15}(?:\.[0-9]{1,15})?"
    };
}
macro_rules! conjunction {
    ($clause:expr) => {
        concat!(
            r"^ *(?:",
            $clause,
            r"(?: +[Aa][Nn][Dd] +",
            $clause,
            r")*)? *$"
        )
    };
}
macro_rules! ordering {
    ($key:expr) => {
        concat!(r"^ *(?:", $key, r")(?: +(?:ASC|DESC|asc|desc))? *$")
    };
}

/// `registered-models/search`: `name` and tags.
pub const REGISTERED_MODEL_FILTER: &str =
    conjunction!(concat!(r"(?:name|tags?", key!(), r")", string_op!()));
/// `model-versions/search`: `name`, `run_id` (also `IN (…)`) and tags.
pub const MODEL_VERSION_FILTER: &str = conjunction!(concat!(
    r"(?:(?:name|run_id|tags?",
    key!(),
    r")",
    string_op!(),
    r"|run_id +[Ii][Nn] *\( *(?:'[^']*'|\x22[^\x22]*\x22)(?: *, *(?:'[^']*'|\x22[^\x22]*\x22))* *\))"
));
/// `experiments/search`: `name` and tags.
pub const EXPERIMENT_FILTER: &str =
    conjunction!(concat!(r"(?:name|tags?", key!(), r")", string_op!()));
/// `runs/search`: metrics (numbers), params, tags and the attributes status, run_name, run_id (strings),
/// start_time and end_time (milliseconds).
pub const RUN_FILTER: &str = conjunction!(concat!(
    r"(?:metrics?",
    key!(),
    number_op!(),
    r"|(?:params?",
    key!(),
    r"|tags?",
    key!(),
    r"|attributes?\.(?:status|run_name|run_id))",
    string_op!(),
    r"|attributes?\.(?:start_time|end_time)",
    number_op!(),
    r")"
));

/// Orderings of `registered-models/search`.
pub const REGISTERED_MODEL_ORDER: &str =
    ordering!("name|timestamp|last_updated_timestamp|creation_timestamp");
/// Orderings of `model-versions/search`.
pub const MODEL_VERSION_ORDER: &str =
    ordering!("name|version_number|timestamp|last_updated_timestamp|creation_timestamp");
/// Orderings of `experiments/search`.
pub const EXPERIMENT_ORDER: &str = ordering!("name|experiment_id|creation_time|last_update_time");
/// Orderings of `runs/search`.
pub const RUN_ORDER: &str = ordering!(concat!(
    r"(?:attributes?\.)?(?:start_time|end_time|status|run_name|run_id)|(?:metrics?|params?|tags?)",
    key!()
));

/// Page tokens are offsets into the ordered results.
pub const PAGE_TOKEN: &str = "^[0-9]{1,9}$";

/// A value an entity exposes to filters and orderings.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Number(f64),
}

impl Value {
    fn compare(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Text(a), Value::Text(b)) => Some(a.cmp(b)),
            (Value::Number(a), Value::Number(b)) => a.partial_cmp(b),
            _ => None,
        }
    }
}

/// What a clause or an ordering looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Attribute(String),
    Tag(String),
    Param(String),
    Metric(String),
}

/// What an entity answers for a field (`None`: it has no such tag, metric, …).
pub trait Searchable {
    fn field(&self, field: &Field) -> Option<Value>;
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    In,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Clause {
    pub(super) field: Field,
    pub(super) op: Op,
    pub(super) values: Vec<Value>,
}

/// A parsed filter: every clause must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub(super) clauses: Vec<Clause>,
}

/// A parsed ordering: keys in order, each ascending or not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Order {
    pub(super) keys: Vec<(Field, bool)>,
}

fn invalid(filter: &str, reason: impl Into<String>) -> Error {
    Error::InvalidParameter {
        value: filter.to_owned(),
        reason: reason.into(),
    }
}

/// Whether `text` is in the language of `pattern` (as Python's `re.fullmatch` of the documented pattern
/// sees it: a final newline is allowed before `$`).
fn matches(pattern: &'static str, text: &str) -> bool {
    let text = text.strip_suffix('\n').unwrap_or(text);
    compiled(pattern).is_some_and(|re| re.is_match(text))
}

/// Each pattern compiled once (a `Regex` clone shares the compiled program).
fn compiled(pattern: &'static str) -> Option<Regex> {
    static CACHE: LazyLock<Mutex<HashMap<&'static str, Regex>>> = LazyLock::new(Mutex::default);
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(re) = cache.get(pattern) {
        return Some(re.clone());
    }
    let re = Regex::new(pattern).ok()?;
    cache.insert(pattern, re.clone());
    Some(re)
}

/// A tiny cursor over the filter text (the pattern has already accepted it).
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }
    fn skip_spaces(&mut self) {
        while self.rest().starts_with(' ') {
            self.at += 1;
        }
    }
    fn word(&mut self) -> &'a str {
        let rest = self.rest();
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        self.at += end;
        &rest[..end]
    }
    fn eat(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.at += s.len();
            true
        } else {
            false
        }
    }
    fn quoted(&mut self, quote: char) -> Option<&'a str> {
        let rest = self.rest();
        let body = rest.strip_prefix(quote)?;
        let end = body.find(quote)?;
        self.at += end + 2 * quote.len_utf8();
        Some(&body[..end])
    }
    fn key(&mut self) -> Option<String> {
        if !self.eat(".") {
            return None;
        }
        if self.rest().starts_with('`') {
            self.quoted('`').map(str::to_owned)
        } else {
            Some(self.word().to_owned()).filter(|w| !w.is_empty())
        }
    }
    fn string(&mut self) -> Option<String> {
        self.quoted('\'')
            .or_else(|| self.quoted('"'))
            .map(str::to_owned)
    }
    fn number(&mut self) -> Option<f64> {
        let rest = self.rest();
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
            .unwrap_or(rest.len());
        let n = rest[..end].parse().ok()?;
        self.at += end;
        Some(n)
    }
}

fn field(cursor: &mut Cursor<'_>) -> Option<Field> {
    let head = cursor.word().to_ascii_lowercase();
    Some(match head.as_str() {
        "tag" | "tags" => Field::Tag(cursor.key()?),
        "param" | "params" => Field::Param(cursor.key()?),
        "metric" | "metrics" => Field::Metric(cursor.key()?),
        "attribute" | "attributes" => Field::Attribute(cursor.key()?),
        "" => return None,
        _ => Field::Attribute(head),
    })
}

fn op(cursor: &mut Cursor<'_>) -> Option<Op> {
    cursor.skip_spaces();
    for (symbol, op) in [
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("=", Op::Eq),
        ("<", Op::Lt),
        (">", Op::Gt),
    ] {
        if cursor.eat(symbol) {
            return Some(op);
        }
    }
    match cursor.word().to_ascii_uppercase().as_str() {
        "LIKE" => Some(Op::Like),
        "ILIKE" => Some(Op::ILike),
        "IN" => Some(Op::In),
        _ => None,
    }
}

fn values(cursor: &mut Cursor<'_>, op: Op) -> Option<Vec<Value>> {
    cursor.skip_spaces();
    if op == Op::In {
        if !cursor.eat("(") {
            return None;
        }
        let mut out = Vec::new();
        loop {
            cursor.skip_spaces();
            out.push(Value::Text(cursor.string()?));
            cursor.skip_spaces();
            if cursor.eat(")") {
                return Some(out);
            }
            if !cursor.eat(",") {
                return None;
            }
        }
    }
    if let Some(s) = cursor.string() {
        return Some(vec![Value::Text(s)]);
    }
    cursor.number().map(|n| vec![Value::Number(n)])
}

impl Filter {
    /// Parses `text` when it is in the language of `pattern` (one of this module's `*_FILTER`s).
    pub fn parse(pattern: &'static str, text: Option<&str>) -> Result<Filter, Error> {
        let Some(text) = text else {
            return Ok(Filter::default());
        };
        if !matches(pattern, text) {
            return Err(invalid(
                text,
                format!("not a filter this server understands (pattern {pattern})"),
            ));
        }
        let text = text.strip_suffix('\n').unwrap_or(text);
        let mut cursor = Cursor { text, at: 0 };
        let mut clauses = Vec::new();
        loop {
            cursor.skip_spaces();
            if cursor.rest().is_empty() {
                break;
            }
            if !clauses.is_empty() {
                if !cursor.word().eq_ignore_ascii_case("and") {
                    return Err(invalid(text, "clauses are joined by AND"));
                }
                cursor.skip_spaces();
            }
            let parsed = field(&mut cursor).and_then(|field| {
                let op = op(&mut cursor)?;
                let values = values(&mut cursor, op)?;
                Some(Clause { field, op, values })
            });
            clauses
                .push(parsed.ok_or_else(|| invalid(text, "a clause is field, operator, value"))?);
        }
        Ok(Filter { clauses })
    }

    /// Whether `entity` satisfies every clause. A missing field satisfies only `!=` (so that MLflow's
    /// own "not a prompt" clause, `` tag.`mlflow.prompt.is_prompt` != 'true' ``, keeps untagged models).
    pub fn accepts(&self, entity: &impl Searchable) -> bool {
        self.clauses.iter().all(|clause| {
            let Some(actual) = entity.field(&clause.field) else {
                return clause.op == Op::Ne;
            };
            let first = &clause.values[0];
            match clause.op {
                Op::In => clause.values.contains(&actual),
                Op::Like | Op::ILike => match (&actual, first) {
                    (Value::Text(a), Value::Text(p)) if clause.op == Op::Like => like(a, p),
                    (Value::Text(a), Value::Text(p)) => like(&a.to_lowercase(), &p.to_lowercase()),
                    _ => false,
                },
                op => match actual.compare(first) {
                    Some(order) => match op {
                        Op::Eq => order.is_eq(),
                        Op::Ne => order.is_ne(),
                        Op::Lt => order.is_lt(),
                        Op::Le => order.is_le(),
                        Op::Gt => order.is_gt(),
                        _ => order.is_ge(),
                    },
                    // A number compared with text (or NaN) matches nothing but `!=`.
                    None => op == Op::Ne,
                },
            }
        })
    }
}

/// SQL LIKE: `%` any run of characters, `_` any one character.
fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    // Classic wildcard matching with backtracking on the last `%`.
    let (mut ti, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '%')
}

impl Order {
    /// Parses the `order_by` entries, each in the language of `pattern` (one of the `*_ORDER`s).
    pub fn parse(pattern: &'static str, entries: &[String]) -> Result<Order, Error> {
        let mut keys = Vec::new();
        for entry in entries {
            if !matches(pattern, entry) {
                return Err(invalid(
                    entry,
                    format!("not an ordering this server understands (pattern {pattern})"),
                ));
            }
            let entry = entry.strip_suffix('\n').unwrap_or(entry);
            let mut cursor = Cursor {
                text: entry.trim_start_matches(' '),
                at: 0,
            };
            let field =
                field(&mut cursor).ok_or_else(|| invalid(entry, "an ordering names a field"))?;
            cursor.skip_spaces();
            let ascending = !cursor.word().eq_ignore_ascii_case("desc");
            keys.push((field, ascending));
        }
        Ok(Order { keys })
    }

    /// Whether the caller gave no ordering (the endpoint's default applies).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Compares two entities by the keys in turn; a missing value sorts last.
    pub fn compare(&self, a: &impl Searchable, b: &impl Searchable) -> Ordering {
        for (field, ascending) in &self.keys {
            let order = match (a.field(field), b.field(field)) {
                (Some(x), Some(y)) => {
                    let o = x.compare(&y).unwrap_or(Ordering::Equal);
                    if *ascending { o } else { o.reverse() }
                }
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
            if order.is_ne() {
                return order;
            }
        }
        Ordering::Equal
    }
}

/// The offset a page token stands for (none: the first page).
pub fn page_offset(token: Option<&str>) -> Result<usize, Error> {
    match token {
        None => Ok(0),
        Some(t) if matches(PAGE_TOKEN, t) => t
            .trim_end_matches('\n')
            .parse()
            .map_err(|_| invalid(t, "not a page token this server gave")),
        Some(t) => Err(invalid(t, "not a page token this server gave")),
    }
}

/// Checks `max_results` against the endpoint's range; `None` is `default`.
pub fn max_results(given: Option<i64>, default: i64, max: i64) -> Result<usize, Error> {
    let n = given.unwrap_or(default);
    if (1..=max).contains(&n) {
        Ok(n as usize)
    } else {
        Err(invalid(
            &n.to_string(),
            format!("max_results must be between 1 and {max}"),
        ))
    }
}

/// One page of `items` (already filtered and ordered) and the token of the next, if any.
pub fn paginate<T>(items: Vec<T>, offset: usize, limit: usize) -> (Vec<T>, Option<String>) {
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(offset).take(limit).collect();
    let next = (offset.saturating_add(limit) < total).then(|| (offset + limit).to_string());
    (page, next)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failure should stop the test loudly
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    struct Thing(
        BTreeMap<&'static str, Value>,
        BTreeMap<&'static str, &'static str>,
    );

    impl Searchable for Thing {
        fn field(&self, field: &Field) -> Option<Value> {
            match field {
                Field::Attribute(a) => self.0.get(a.as_str()).cloned(),
                Field::Tag(t) => self.1.get(t.as_str()).map(|v| Value::Text((*v).to_owned())),
                Field::Metric(m) => self.0.get(m.as_str()).cloned(),
                Field::Param(_) => None,
            }
        }
    }

    fn model(name: &str) -> Thing {
        Thing(
            BTreeMap::from([("name", Value::Text(name.to_owned()))]),
            BTreeMap::new(),
        )
    }

    #[test]
    fn the_filters_mlflow_clients_send_parse_and_select() {
        let prompt = "tag.`mlflow.prompt.is_prompt` != 'true'";
        let with_name = format!("name='churn-classifier' AND {prompt}");
        for text in [
            prompt,
            with_name.as_str(),
            "name = 'churn-classifier'",
            "name LIKE 'churn-%'",
        ] {
            let filter = Filter::parse(REGISTERED_MODEL_FILTER, Some(text)).unwrap();
            assert!(filter.accepts(&model("churn-classifier")), "{text}");
        }
        let filter = Filter::parse(REGISTERED_MODEL_FILTER, Some(&with_name)).unwrap();
        assert!(!filter.accepts(&model("synthesizer")));
        let filter = Filter::parse(REGISTERED_MODEL_FILTER, Some("name ILIKE '%CLASS%'")).unwrap();
        assert!(filter.accepts(&model("churn-classifier")));
        let runs = Filter::parse(MODEL_VERSION_FILTER, Some("run_id IN ('a', \"b\")")).unwrap();
        let run = |id: &str| {
            Thing(
                BTreeMap::from([("run_id", Value::Text(id.to_owned()))]),
                BTreeMap::new(),
            )
        };
        assert!(runs.accepts(&run("b")));
        assert!(!runs.accepts(&run("c")));
        let metric = Filter::parse(
            RUN_FILTER,
            Some("metrics.auc >= 0.8 and attributes.status = 'FINISHED'"),
        )
        .unwrap();
        let finished = Thing(
            BTreeMap::from([
                ("auc", Value::Number(0.85)),
                ("status", Value::Text("FINISHED".into())),
            ]),
            BTreeMap::new(),
        );
        assert!(metric.accepts(&finished));
    }

    #[test]
    fn filters_outside_the_documented_language_are_refused_with_the_pattern() {
        for text in [
            "name = ",
            "nme = 'x'",
            "name = 'x' OR name = 'y'",
            "name = 'x' AND",
            "metrics.auc > 'x'",
        ] {
            let e = Filter::parse(REGISTERED_MODEL_FILTER, Some(text)).unwrap_err();
            assert!(e.to_string().contains("pattern"), "{text}: {e}");
        }
        assert!(
            Filter::parse(REGISTERED_MODEL_FILTER, Some(""))
                .unwrap()
                .clauses
                .is_empty()
        );
        assert!(Filter::parse(REGISTERED_MODEL_FILTER, Some("name = 'x'\n")).is_ok());
    }

    #[test]
    fn orderings_page_tokens_and_like_behave_as_in_mlflow() {
        let order = Order::parse(REGISTERED_MODEL_ORDER, &["name DESC".to_owned()]).unwrap();
        assert_eq!(order.compare(&model("a"), &model("b")), Ordering::Greater);
        assert!(Order::parse(REGISTERED_MODEL_ORDER, &["nonsense".to_owned()]).is_err());
        assert_eq!(page_offset(Some("20")).unwrap(), 20);
        assert!(page_offset(Some("abc")).is_err());
        let (page, next) = paginate((0..5).collect(), 2, 2);
        assert_eq!((page, next), (vec![2, 3], Some("4".to_owned())));
        assert_eq!(paginate((0..4).collect::<Vec<_>>(), 2, 2).1, None);
        assert!(like("churn-classifier", "churn-%"));
        assert!(like("abc", "a_c"));
        assert!(!like("abc", "a_"));
        assert!(max_results(Some(0), 100, 1000).is_err());
    }
}

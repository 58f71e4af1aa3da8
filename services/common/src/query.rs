//! The query-string extractor every service uses: typed parameters, and a 400 naming the parameter,
//! its value and the rule it broke.
//!
//! A route's parameters are a `Deserialize` struct that also implements [`QueryParams`], which states
//! each parameter's rule (the rejection quotes it) and any check serde cannot express (a range). An
//! unknown parameter is refused, naming the route's parameters (or ignored, for pages); a repeated one
//! takes its last value.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::ApiError;

/// A route's query parameters, with the rules the rejection quotes.
pub trait QueryParams: DeserializeOwned {
    /// Every parameter the route takes, with the rule its value follows.
    const RULES: &'static [(&'static str, &'static str)];

    /// Whether a parameter the route does not take is refused (the API's routes) or ignored (pages a
    /// browser opens, whose links may carry parameters of their own).
    const REFUSE_UNKNOWN: bool = true;

    /// Checks serde cannot state (a range); the default accepts every value that parsed.
    fn check(&self) -> Result<(), QueryError> {
        Ok(())
    }
}

/// A parameter that broke its rule: a 400 `{error, details: {parameter, value, rule}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub parameter: String,
    pub value: String,
    pub rule: String,
}

impl QueryError {
    pub fn new(
        parameter: impl Into<String>,
        value: impl Into<String>,
        rule: impl Into<String>,
    ) -> Self {
        Self {
            parameter: parameter.into(),
            value: value.into(),
            rule: rule.into(),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        let QueryError {
            parameter,
            value,
            rule,
        } = e;
        ApiError::bad_request(format!(
            "invalid query parameter {parameter}={value:?}: {rule}"
        ))
        .with_details(json!({ "parameter": parameter, "value": value, "rule": rule }))
    }
}

/// Query parameters of type `T`; a rejection is a 400 naming the parameter, its value and its rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: QueryParams> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parse(parts.uri.query(), parts.uri.path())
            .map(ApiQuery)
            .map_err(ApiError::from)
    }
}

/// Reads `raw` (the query string of a request to `route`) as `T`.
pub fn parse<T: QueryParams>(raw: Option<&str>, route: &str) -> Result<T, QueryError> {
    let raw = raw.unwrap_or_default();
    let mut pairs: Vec<(String, String)> = Vec::new();
    // Whether `raw` needs rewriting before serde reads it: it holds a repeat or an ignored parameter.
    let mut rewrite = false;
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        if !T::RULES.iter().any(|(name, _)| *name == key) {
            if !T::REFUSE_UNKNOWN {
                rewrite = true;
                continue;
            }
            return Err(QueryError::new(
                key,
                value,
                format!("unknown parameter; {route} takes only {}", names::<T>()),
            ));
        }
        // The last value of a repeated parameter wins (serde would refuse a duplicate field).
        let before = pairs.len();
        pairs.retain(|(k, _)| *k != key);
        rewrite |= pairs.len() != before;
        pairs.push((key.into_owned(), value.into_owned()));
    }
    // The common request (no query string, or each parameter once) is read as it came, unencoded again.
    let encoded = if rewrite {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish()
    } else {
        String::new()
    };
    let source = if rewrite { encoded.as_str() } else { raw };
    let deserializer =
        serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(source.as_bytes()));
    let params: T = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        // A failure outside any one field (none is expected of a flat struct) is pinned on the first.
        let (parameter, value) = pairs
            .iter()
            .find(|(k, _)| *k == path)
            .or(pairs.first())
            .cloned()
            .unwrap_or_default();
        let rule = T::RULES
            .iter()
            .find(|(name, _)| *name == parameter)
            .map_or_else(|| e.inner().to_string(), |(_, rule)| (*rule).to_owned());
        QueryError::new(parameter, value, rule)
    })?;
    params.check()?;
    Ok(params)
}

/// The parameters' names as a sentence: `a`, `a or b`, `a, b or c`.
fn names<T: QueryParams>() -> String {
    let names: Vec<&str> = T::RULES.iter().map(|(name, _)| *name).collect();
    match names.split_last() {
        None => "no parameters".to_owned(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Format {
        Json,
        Ndjson,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Params {
        n: Option<u64>,
        flag: Option<bool>,
        format: Option<Format>,
    }

    impl QueryParams for Params {
        const RULES: &'static [(&'static str, &'static str)] = &[
            ("n", "must be a whole number of at least 1"),
            ("flag", "must be true or false"),
            ("format", "must be json or ndjson"),
        ];

        fn check(&self) -> Result<(), QueryError> {
            match self.n {
                Some(0) => Err(QueryError::new("n", "0", Self::RULES[0].1)),
                _ => Ok(()),
            }
        }
    }

    #[test]
    fn typed_parameters_are_read_and_the_last_repeat_wins() {
        let p: Params = parse(Some("n=3&flag=true&format=ndjson&flag=false"), "/r").unwrap();
        assert_eq!(
            p,
            Params {
                n: Some(3),
                flag: Some(false),
                format: Some(Format::Ndjson)
            }
        );
        let none: Params = parse(None, "/r").unwrap();
        assert_eq!(none.n, None);
    }

    #[test]
    fn a_bad_value_is_refused_naming_the_parameter_value_and_rule() {
        for (raw, parameter, value, rule) in [
            ("n=ten", "n", "ten", "must be a whole number of at least 1"),
            (
                "n=-5&flag=true",
                "n",
                "-5",
                "must be a whole number of at least 1",
            ),
            (
                "flag=true&format=xml",
                "format",
                "xml",
                "must be json or ndjson",
            ),
            ("flag=maybe", "flag", "maybe", "must be true or false"),
            ("n=0", "n", "0", "must be a whole number of at least 1"),
        ] {
            let e = parse::<Params>(Some(raw), "/r").unwrap_err();
            assert_eq!(e, QueryError::new(parameter, value, rule), "{raw}");
        }
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct PageParams {
        n: Option<u64>,
    }

    impl QueryParams for PageParams {
        const RULES: &'static [(&'static str, &'static str)] = &[("n", "must be a whole number")];
        const REFUSE_UNKNOWN: bool = false;
    }

    #[test]
    fn a_page_ignores_parameters_it_does_not_take() {
        let p: PageParams = parse(Some("utm=x&n=4&utm=y"), "/page").unwrap();
        assert_eq!(p, PageParams { n: Some(4) });
        let e = parse::<PageParams>(Some("utm=x&n=four"), "/page").unwrap_err();
        assert_eq!(e, QueryError::new("n", "four", "must be a whole number"));
    }

    #[test]
    fn an_unknown_parameter_is_refused_naming_the_routes_parameters() {
        let e = parse::<Params>(Some("n=1&verbose=1"), "/r").unwrap_err();
        assert_eq!(e.parameter, "verbose");
        assert_eq!(e.rule, "unknown parameter; /r takes only n, flag or format");
        let body = ApiError::from(e);
        assert_eq!(body.status, axum::http::StatusCode::BAD_REQUEST);
        assert_eq!(body.details["value"], "1");
    }
}

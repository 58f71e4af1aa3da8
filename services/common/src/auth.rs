//! Authentication as route layers, so a caller without the right key is refused before its body is
//! read: `X-API-Key` (or a bearer token) for prediction routes, and scoped tokens for the rest:
//! ADMIN_TOKEN (jobs, ingestion), REGISTRY_TOKEN (MLflow alias writes) and READ_TOKEN (reads, when set).
//! A scoped token comes as `Authorization: Bearer <token>` or as the password of HTTP Basic (what a
//! browser prompts for, and what MLflow's client sends with MLFLOW_TRACKING_USERNAME/PASSWORD). Keys
//! are compared in constant time (as equal-length digests). A layer that lets a caller through leaves
//! its [`Actor`] in the request's extensions, for the audit log.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use churn_config::Secret;
pub use churn_store::audit::{Actor, Scope};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ApiError;

/// The header a caller names itself in (a person, a CI job), recorded with its actions.
pub const ACTOR_HEADER: &str = "x-actor";

/// What browsers are asked for when READ_TOKEN guards a page: HTTP Basic, any user name, the token as
/// the password.
pub const BASIC_CHALLENGE: &str = r#"Basic realm="churn", charset="UTF-8""#;

/// Whether `given` equals the secret, in time that depends on neither (both are hashed to 32 bytes
/// first, so their lengths leak nothing either).
pub fn same_secret(given: &str, expected: &Secret) -> bool {
    let a = Sha256::digest(given.trim().as_bytes());
    let b = Sha256::digest(expected.expose().trim().as_bytes());
    a.ct_eq(&b).into()
}

/// The token of an `Authorization: Bearer <token>` header; the scheme is matched case-insensitively.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let (scheme, token) = authorization(headers)?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token)
        .filter(|t| !t.is_empty())
}

fn authorization(headers: &HeaderMap) -> Option<(&str, &str)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(char::is_whitespace)?;
    Some((scheme, rest.trim()))
}

/// The (user, password) of an `Authorization: Basic` header.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let (scheme, encoded) = authorization(headers)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// A presented token and the name its caller gave (X-Actor, else Basic's user name).
struct Credential {
    token: String,
    name: Option<String>,
}

fn credential(headers: &HeaderMap) -> Option<Credential> {
    let (token, user) = match bearer(headers) {
        Some(token) => (token.to_owned(), None),
        None => {
            let (user, password) = basic(headers)?;
            (password, Some(user).filter(|u| !u.is_empty()))
        }
    };
    if token.trim().is_empty() {
        return None;
    }
    let named = headers
        .get(ACTOR_HEADER)
        .map(|v| v.to_str().unwrap_or("\u{fffd}").to_owned());
    Some(Credential {
        token,
        name: named.or(user),
    })
}

/// The tokens a service checks: each `None` when its variable is unset.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    pub admin: Option<Secret>,
    pub registry: Option<Secret>,
    pub read: Option<Secret>,
}

impl Tokens {
    pub fn from_config(common: &churn_config::CommonConfig) -> Self {
        Self {
            admin: common.admin_token.clone(),
            registry: common.registry_token.clone(),
            read: common.read_token.clone(),
        }
    }

    /// Only an admin token (a service with no scoped tokens).
    pub fn admin(token: Option<Secret>) -> Self {
        Self {
            admin: token,
            ..Self::default()
        }
    }

    /// The scope of `given`, strongest first (the configuration keeps the tokens distinct).
    fn scope_of(&self, given: &str) -> Option<Scope> {
        [
            (Scope::Admin, &self.admin),
            (Scope::Registry, &self.registry),
            (Scope::Read, &self.read),
        ]
        .into_iter()
        .find(|(_, token)| token.as_ref().is_some_and(|t| same_secret(given, t)))
        .map(|(scope, _)| scope)
    }
}

/// What a guarded route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A read: open while READ_TOKEN is unset; otherwise READ_TOKEN or ADMIN_TOKEN.
    Read,
    /// An MLflow read: as [`Need::Read`], REGISTRY_TOKEN accepted too.
    RegistryRead,
    /// An MLflow registry write: REGISTRY_TOKEN or ADMIN_TOKEN.
    RegistryWrite,
    /// An admin action: ADMIN_TOKEN.
    Admin,
}

impl Need {
    fn accepts(self, scope: Scope) -> bool {
        match self {
            Need::Read => matches!(scope, Scope::Read | Scope::Admin),
            Need::RegistryRead => matches!(scope, Scope::Read | Scope::Registry | Scope::Admin),
            Need::RegistryWrite => matches!(scope, Scope::Registry | Scope::Admin),
            Need::Admin => scope == Scope::Admin,
        }
    }

    fn tokens_named(self) -> &'static str {
        match self {
            Need::Read => "READ_TOKEN or ADMIN_TOKEN",
            Need::RegistryRead => "READ_TOKEN, REGISTRY_TOKEN or ADMIN_TOKEN",
            Need::RegistryWrite => "REGISTRY_TOKEN or ADMIN_TOKEN",
            Need::Admin => "ADMIN_TOKEN",
        }
    }

    fn is_read(self) -> bool {
        matches!(self, Need::Read | Need::RegistryRead)
    }
}

/// Checks a request against what the route needs. `Ok(None)`: an open read (READ_TOKEN unset, no
/// token presented). Reads answer 401 for a missing or unknown token (so a browser asks again); writes
/// answer 401 without a token, 403 with a wrong one, one of a narrower scope, or when no token that
/// could pass is configured. A bad X-Actor is a 400.
pub fn check(tokens: &Tokens, need: Need, headers: &HeaderMap) -> Result<Option<Actor>, ApiError> {
    let open = need.is_read() && tokens.read.is_none();
    let configured = match need {
        Need::Read | Need::RegistryRead => tokens.read.is_some() || tokens.admin.is_some(),
        Need::RegistryWrite => tokens.registry.is_some() || tokens.admin.is_some(),
        Need::Admin => tokens.admin.is_some(),
    };
    if !open && !configured {
        return Err(ApiError::forbidden(format!(
            "these routes are disabled: set {} on the service to enable them",
            need.tokens_named()
        )));
    }
    let Some(given) = credential(headers) else {
        if open {
            return Ok(None);
        }
        return Err(ApiError::unauthorized(format!(
            "this route needs {} as Authorization: Bearer <token> (or as the password of HTTP Basic)",
            need.tokens_named()
        )));
    };
    let scope = match tokens.scope_of(&given.token) {
        Some(scope) if need.accepts(scope) => scope,
        // An open read ignores a token it does not know, as it did before READ_TOKEN existed.
        None if open => return Ok(None),
        Some(scope) => {
            return Err(ApiError::forbidden(format!(
                "the {} token cannot do this: it needs {}",
                scope.as_str(),
                need.tokens_named()
            )));
        }
        None if need.is_read() => {
            return Err(ApiError::unauthorized(format!(
                "the token is wrong: this route needs {}",
                need.tokens_named()
            )));
        }
        None => {
            return Err(ApiError::forbidden(format!(
                "the token is wrong: this route needs {}",
                need.tokens_named()
            )));
        }
    };
    Actor::new(scope, given.name.as_deref())
        .map(Some)
        .map_err(|e| {
            ApiError::bad_request(e.to_string()).with_details(json!({
                "header": ACTOR_HEADER,
                "rule": churn_store::audit::ACTOR_RULE,
            }))
        })
}

/// Route layer: what `need` says, the caller's [`Actor`] left in the request's extensions
/// (`middleware::from_fn_with_state((tokens, need), require)`). A refused read carries a Basic
/// challenge, so a browser asks for the token.
pub async fn require(
    State((tokens, need)): State<(Tokens, Need)>,
    mut request: Request,
    next: Next,
) -> Response {
    match check(&tokens, need, request.headers()) {
        Ok(actor) => {
            if let Some(actor) = actor {
                request.extensions_mut().insert(actor);
            }
            next.run(request).await
        }
        Err(e) => refusal(e, need),
    }
}

/// The refusal of a request, with the Basic challenge on a 401 of a read.
pub fn refusal(error: ApiError, need: Need) -> Response {
    let challenge = error.status == StatusCode::UNAUTHORIZED && need.is_read();
    let mut response = error.into_response();
    if challenge {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(BASIC_CHALLENGE),
        );
    }
    response
}

/// The admin check: 401 without a token (authenticate), 403 with a wrong one or when the service has no
/// admin token configured (the route is forbidden).
pub fn check_admin(token: Option<&Secret>, headers: &HeaderMap) -> Result<(), ApiError> {
    check(&Tokens::admin(token.cloned()), Need::Admin, headers).map(|_| ())
}

/// The API-key check: passes when no key is configured; otherwise the key must come in `X-API-Key`
/// (or as a bearer token).
pub fn check_api_key(key: Option<&Secret>, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = key else {
        return Ok(());
    };
    let given = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| bearer(headers));
    match given {
        Some(g) if same_secret(g, key) => Ok(()),
        Some(_) => Err(ApiError::unauthorized("the API key is wrong")),
        None => Err(ApiError::unauthorized(
            "this service needs an API key: send it in the X-API-Key header",
        )),
    }
}

/// Route layer: `X-API-Key` when one is configured (`middleware::from_fn_with_state(key, …)`).
pub async fn require_api_key(
    State(key): State<Option<Secret>>,
    request: Request,
    next: Next,
) -> Response {
    match check_api_key(key.as_ref(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// Who called a prediction route: the name of the key it presented, or `anonymous` when the service
/// takes calls without a key. Left in the request's extensions by [`require_prediction_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub std::sync::Arc<str>);

/// The caller's name when no key is configured.
pub const ANONYMOUS: &str = "anonymous";

/// The keys the prediction routes take (PREDICT_API_KEY and PREDICT_API_KEYS), each kept as the digest
/// a presented key is compared with.
#[derive(Debug, Clone, Default)]
pub struct PredictionKeys(std::sync::Arc<Vec<(Caller, [u8; 32])>>);

impl PredictionKeys {
    pub fn new(keys: &[churn_config::NamedKey]) -> Self {
        Self(std::sync::Arc::new(
            keys.iter()
                .map(|k| {
                    let digest: [u8; 32] = Sha256::digest(k.key.expose().trim().as_bytes()).into();
                    (Caller(k.name.as_str().into()), digest)
                })
                .collect(),
        ))
    }

    /// The caller presenting `headers`' key (`X-API-Key`, or a bearer token). Every key is compared, in
    /// constant time, whichever matches.
    pub fn check(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        if self.0.is_empty() {
            return Ok(Caller(ANONYMOUS.into()));
        }
        let given = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .or_else(|| bearer(headers))
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "this service needs an API key: send it in the X-API-Key header",
                )
            })?;
        let digest = Sha256::digest(given.trim().as_bytes());
        let mut found = None;
        for (caller, key) in self.0.iter() {
            if bool::from(digest[..].ct_eq(key)) {
                found = Some(caller);
            }
        }
        found
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("the API key is wrong"))
    }
}

/// Route layer for prediction routes (`middleware::from_fn_with_state(keys, …)`): a configured key in
/// `X-API-Key`, its name left in the request's extensions as [`Caller`].
pub async fn require_prediction_key(
    State(keys): State<PredictionKeys>,
    mut request: Request,
    next: Next,
) -> Response {
    match keys.check(request.headers()) {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

/// Route layer: the admin bearer token (`middleware::from_fn_with_state(token, …)`), its [`Actor`] left
/// in the request's extensions.
pub async fn require_admin(
    State(token): State<Option<Secret>>,
    request: Request,
    next: Next,
) -> Response {
    require(State((Tokens::admin(token), Need::Admin)), request, next).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            if let Ok(value) = v.parse() {
                map.insert(*k, value);
            }
        }
        map
    }

    #[test]
    fn the_bearer_scheme_is_matched_case_insensitively_and_the_token_trimmed() {
        let token = Secret::new("admin-token-0123456789");
        for value in [
            "Bearer admin-token-0123456789",
            "bearer admin-token-0123456789",
            "BEARER   admin-token-0123456789  ",
        ] {
            assert!(check_admin(Some(&token), &headers(&[("authorization", value)])).is_ok());
        }
        for value in [
            "Basic admin-token-0123456789",
            "Bearer",
            "admin-token-0123456789",
        ] {
            assert!(check_admin(Some(&token), &headers(&[("authorization", value)])).is_err());
        }
    }

    #[test]
    fn keys_of_other_lengths_or_values_never_match() {
        let key = Secret::new("predict-key-0123456789");
        assert!(same_secret("predict-key-0123456789", &key));
        assert!(same_secret(" predict-key-0123456789 ", &key));
        assert!(!same_secret("predict-key-012345678", &key));
        assert!(!same_secret("", &key));
        assert!(!same_secret("predict-key-0123456780", &key));
    }

    fn scoped() -> Tokens {
        Tokens {
            admin: Some(Secret::new("admin-token-0123456789")),
            registry: Some(Secret::new("registry-token-0123456789")),
            read: Some(Secret::new("read-token-0123456789")),
        }
    }

    fn status(tokens: &Tokens, need: Need, pairs: &[(&'static str, &str)]) -> u16 {
        match check(tokens, need, &headers(pairs)) {
            Ok(_) => 200,
            Err(e) => e.status.as_u16(),
        }
    }

    #[test]
    fn each_need_accepts_exactly_its_scopes() {
        let tokens = scoped();
        let bearer = |t: &str| format!("Bearer {t}-token-0123456789");
        let table = [
            (Need::Read, [200, 403, 200]),
            (Need::RegistryRead, [200, 200, 200]),
            (Need::RegistryWrite, [200, 200, 403]),
            (Need::Admin, [200, 403, 403]),
        ];
        for (need, expected) in table {
            for (scope, want) in ["admin", "registry", "read"].into_iter().zip(expected) {
                let got = status(&tokens, need, &[("authorization", &bearer(scope))]);
                assert_eq!(got, want, "{need:?} with the {scope} token");
            }
            assert_eq!(status(&tokens, need, &[]), 401, "{need:?} without a token");
        }
    }

    #[test]
    fn reads_are_open_without_a_read_token_and_refused_with_a_wrong_one_when_it_is_set() {
        let open = Tokens::admin(Some(Secret::new("admin-token-0123456789")));
        assert_eq!(status(&open, Need::Read, &[]), 200);
        assert_eq!(
            status(
                &open,
                Need::Read,
                &[("authorization", "Bearer nope-nope-nope-nope")]
            ),
            200
        );
        assert_eq!(
            status(
                &scoped(),
                Need::Read,
                &[("authorization", "Bearer nope-nope-nope-nope")]
            ),
            401
        );
        assert_eq!(
            status(
                &scoped(),
                Need::Admin,
                &[("authorization", "Bearer nope-nope-nope-nope")]
            ),
            403
        );
    }

    #[test]
    fn basic_auth_carries_the_token_as_password_and_the_user_as_the_actor() {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode("alice:read-token-0123456789");
        let actor = check(
            &scoped(),
            Need::Read,
            &headers(&[("authorization", &format!("Basic {encoded}"))]),
        )
        .ok()
        .flatten();
        assert_eq!(
            actor,
            Some(Actor {
                scope: Scope::Read,
                name: "alice".into()
            })
        );
        let named = check(
            &scoped(),
            Need::Admin,
            &headers(&[
                ("authorization", "Bearer admin-token-0123456789"),
                ("x-actor", "ci-bot"),
            ]),
        );
        assert_eq!(
            named.ok().flatten().map(|a| a.name).as_deref(),
            Some("ci-bot")
        );
        let bad = check(
            &scoped(),
            Need::Admin,
            &headers(&[
                ("authorization", "Bearer admin-token-0123456789"),
                ("x-actor", "a b"),
            ]),
        );
        assert_eq!(bad.err().map(|e| e.status.as_u16()), Some(400));
    }

    #[test]
    fn a_refused_read_asks_the_browser_for_basic_credentials() {
        let response = refusal(ApiError::unauthorized("no"), Need::Read);
        assert_eq!(
            response
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok()),
            Some(BASIC_CHALLENGE)
        );
        let response = refusal(ApiError::unauthorized("no"), Need::Admin);
        assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
    }

    #[test]
    fn a_prediction_key_names_its_caller_and_no_key_means_anonymous() {
        let keys = PredictionKeys::new(&[
            churn_config::NamedKey {
                name: "default".into(),
                key: Secret::new("default-key-0123456789"),
            },
            churn_config::NamedKey {
                name: "crm".into(),
                key: Secret::new("crm-key-0123456789abc"),
            },
        ]);
        let caller = |value: &str| {
            keys.check(&headers(&[("x-api-key", value)]))
                .ok()
                .map(|c| c.0.to_string())
        };
        assert_eq!(caller("crm-key-0123456789abc").as_deref(), Some("crm"));
        assert_eq!(caller("default-key-0123456789").as_deref(), Some("default"));
        assert_eq!(caller("crm-key-0123456789ab"), None);
        assert!(keys.check(&headers(&[])).is_err());
        let open = PredictionKeys::new(&[]);
        let anonymous = open.check(&headers(&[])).ok().map(|c| c.0.to_string());
        assert_eq!(anonymous.as_deref(), Some(ANONYMOUS));
    }
}

//! Authentication as route layers, so a caller without the right key is refused before its body is
//! read: `X-API-Key` (or a bearer token) for prediction routes, `Authorization: Bearer $ADMIN_TOKEN` for
//! admin routes. Keys are compared in constant time (as equal-length digests).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use churn_config::Secret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ApiError;

/// Whether `given` equals the secret, in time that depends on neither (both are hashed to 32 bytes
/// first, so their lengths leak nothing either).
pub fn same_secret(given: &str, expected: &Secret) -> bool {
    let a = Sha256::digest(given.trim().as_bytes());
    let b = Sha256::digest(expected.expose().trim().as_bytes());
    a.ct_eq(&b).into()
}

/// The token of an `Authorization: Bearer <token>` header; the scheme is matched case-insensitively.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(char::is_whitespace)?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// The admin check: 401 without a token (authenticate), 403 with a wrong one or when the service has no
/// admin token configured (the route is forbidden).
pub fn check_admin(token: Option<&Secret>, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Err(ApiError::forbidden(
            "admin routes are disabled: set ADMIN_TOKEN on the service to enable them",
        ));
    };
    match bearer(headers) {
        Some(given) if same_secret(given, token) => Ok(()),
        Some(_) => Err(ApiError::forbidden("the admin token is wrong")),
        None => Err(ApiError::unauthorized(
            "admin routes need Authorization: Bearer <ADMIN_TOKEN>",
        )),
    }
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

/// Route layer: the admin bearer token (`middleware::from_fn_with_state(token, …)`).
pub async fn require_admin(
    State(token): State<Option<Secret>>,
    request: Request,
    next: Next,
) -> Response {
    match check_admin(token.as_ref(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
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
}

//! Which routes the concurrency limit leaves alone: the server sheds load everywhere else, and each
//! service's OpenAPI document says so for every other route.

/// Routes that must answer even when the service is saturated: probes and scrapes.
pub const UNLIMITED_ROUTES: [&str; 3] = ["/health", "/ready", "/metrics"];

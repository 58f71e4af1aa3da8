//! The dbt project and its runner against a real dbt and a real PostgreSQL: builds, the incremental fact,
//! the snapshot, failing tests named in the outcome and in ops, and stopping dbt.
//!
//! dbt is found through `CHURN_DBT` (the dbt executable; `scripts/test` sets it from the pinned venv).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod builds;
mod failures;
mod helpers;
mod stopping;

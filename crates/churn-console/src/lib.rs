//! The scheduler's web console: what each page shows (read from the warehouse in [`data`]) and how it
//! looks ([`pages`], inline SVG charts in `svg`). No HTTP here; the service maps routes to these.

pub mod data;
pub mod pages;
mod svg;

/// Why a page could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] churn_store::Error),
    #[error(transparent)]
    Registry(#[from] churn_registry::Error),
}

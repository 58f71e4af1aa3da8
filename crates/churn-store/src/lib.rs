//! Storage for the platform: the PostgreSQL pool and refinery migrations, the object store (S3, MinIO or a
//! local directory) and the pinned seed-data download.

pub mod admin;
pub mod audit;
pub mod db;
pub mod dbt_results;
pub mod ingestion;
pub mod migrate;
pub mod monitoring;
pub mod objects;
pub mod ops;
pub mod overview;
pub mod roles;
pub mod seed;
pub mod serving;
pub mod sql;
pub mod traffic_overview;
pub mod warehouse;

pub use db::{connect, connect_lazy, ping};
pub use migrate::{embedded_migrations, migrate};
pub use objects::{ObjectStoreHandle, ObjectStoreUrl};
pub use roles::{READONLY_ROLE, connected_role, set_role_passwords};

/// Everything that can go wrong talking to the database, the object store or the seed-data server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot connect to the database (check DATABASE_URL and that PostgreSQL is running): {0}"
    )]
    Connect(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("object store error: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("download of {url} failed: {reason}")]
    Download { url: String, reason: String },
    #[error(
        "checksum mismatch for {url}: expected SHA-256 {expected}, got {actual}; the file was not saved"
    )]
    ChecksumMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("actor {value:?} is not a valid name: {rule}", rule = audit::ACTOR_RULE)]
    InvalidActor { value: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

//! The object store that holds model artifacts and landed files: S3 or MinIO, or a local directory.
//!
//! Where the store is and how to reach it come from `churn_config` ([`ObjectStoreUrl`], [`S3Options`]);
//! nothing here reads the environment.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

pub use churn_config::{ObjectStoreUrl, S3Options};

use crate::Error;

/// An opened object store with the URL it came from.
#[derive(Debug, Clone)]
pub struct ObjectStoreHandle {
    pub url: ObjectStoreUrl,
    pub store: Arc<dyn ObjectStore>,
}

impl ObjectStoreHandle {
    /// Opens the store. Requests time out after a few seconds and are retried briefly, so an unreachable
    /// store is reported quickly instead of blocking a readiness probe for minutes.
    pub fn open(url: &ObjectStoreUrl, s3: &S3Options) -> Result<Self, Error> {
        let store: Arc<dyn ObjectStore> = match url {
            ObjectStoreUrl::S3 { bucket, prefix } => {
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_allow_http(s3.allow_http)
                    .with_client_options(
                        ClientOptions::new()
                            .with_timeout(Duration::from_secs(30))
                            .with_connect_timeout(Duration::from_secs(2))
                            .with_allow_http(s3.allow_http),
                    )
                    .with_retry(RetryConfig {
                        backoff: BackoffConfig::default(),
                        max_retries: 2,
                        retry_timeout: Duration::from_secs(10),
                    });
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                if let Some(key) = &s3.access_key_id {
                    builder = builder.with_access_key_id(key);
                }
                if let Some(secret) = &s3.secret_access_key {
                    builder = builder.with_secret_access_key(secret.expose());
                }
                builder = builder.with_region(s3.region.as_deref().unwrap_or("us-east-1"));
                let s3_store = builder.build()?;
                if prefix.is_empty() {
                    Arc::new(s3_store)
                } else {
                    Arc::new(PrefixStore::new(s3_store, prefix.as_str()))
                }
            }
            ObjectStoreUrl::File { dir } => {
                std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                    path: dir.display().to_string(),
                    source,
                })?;
                Arc::new(LocalFileSystem::new_with_prefix(dir)?)
            }
        };
        Ok(Self {
            url: url.clone(),
            store,
        })
    }

    /// Whether the store answers: a one-page listing of the root.
    pub async fn ping(&self) -> Result<(), Error> {
        self.store
            .list_with_delimiter(Some(&ObjectPath::from("_ping")))
            .await?;
        Ok(())
    }
}

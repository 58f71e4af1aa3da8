//! The object store that holds model artifacts and landed files: S3 or MinIO, or a local directory.
//!
//! `OBJECT_STORE_URL` is `s3://bucket[/prefix]` or `file:///dir`. For S3 the standard `AWS_*` variables
//! configure the client, read the way object_store's `AmazonS3Builder::from_env` reads them.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

use crate::Error;

/// Where objects live, parsed from `OBJECT_STORE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectStoreUrl {
    S3 { bucket: String, prefix: String },
    File { dir: std::path::PathBuf },
}

impl std::str::FromStr for ObjectStoreUrl {
    type Err = Error;

    fn from_str(raw: &str) -> Result<Self, Error> {
        let fail = |reason: &str| Error::ObjectStoreUrl {
            url: raw.to_owned(),
            reason: reason.to_owned(),
        };
        let url = url::Url::parse(raw).map_err(|e| {
            fail(&format!(
                "{e}; expected s3://bucket[/prefix] or file:///dir"
            ))
        })?;
        match url.scheme() {
            "s3" => {
                let bucket = url.host_str().unwrap_or_default();
                // S3 bucket naming rules, simplified: 3-63 of lower-case letters, digits, dots and hyphens.
                let valid = (3..=63).contains(&bucket.len())
                    && bucket.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                    });
                if !valid {
                    return Err(fail(
                        "the bucket must be 3-63 lower-case letters, digits, dots or hyphens",
                    ));
                }
                Ok(ObjectStoreUrl::S3 {
                    bucket: bucket.to_owned(),
                    prefix: url.path().trim_matches('/').to_owned(),
                })
            }
            "file" => {
                let dir = url.to_file_path().map_err(|()| {
                    fail("expected an absolute path such as file:///var/lib/churn")
                })?;
                Ok(ObjectStoreUrl::File { dir })
            }
            other => Err(fail(&format!(
                "unsupported scheme {other:?}; expected s3://bucket[/prefix] or file:///dir"
            ))),
        }
    }
}

impl std::fmt::Display for ObjectStoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ObjectStoreUrl::S3 { bucket, prefix } if prefix.is_empty() => {
                write!(f, "s3://{bucket}")
            }
            ObjectStoreUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            ObjectStoreUrl::File { dir } => write!(f, "file://{}", dir.display()),
        }
    }
}

/// S3 client settings; [`S3Options::from_env`] reads the standard `AWS_*` variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub region: Option<String>,
    pub allow_http: bool,
}

impl S3Options {
    /// Reads AWS_ENDPOINT_URL (or AWS_ENDPOINT), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and
    /// AWS_ALLOW_HTTP from the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the same variables through `get`; blank values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        Self {
            endpoint: var("AWS_ENDPOINT_URL").or_else(|| var("AWS_ENDPOINT")),
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
            allow_http: var("AWS_ALLOW_HTTP").is_some_and(|v| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "true" | "1" | "yes" | "on"
                )
            }),
        }
    }
}

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
                let mut builder = AmazonS3Builder::from_env()
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
                    builder = builder.with_secret_access_key(secret);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_parse_with_and_without_prefix() {
        assert_eq!(
            "s3://models".parse::<ObjectStoreUrl>().ok(),
            Some(ObjectStoreUrl::S3 {
                bucket: "models".into(),
                prefix: String::new()
            })
        );
        assert_eq!(
            "s3://models/churn/prod/".parse::<ObjectStoreUrl>().ok(),
            Some(ObjectStoreUrl::S3 {
                bucket: "models".into(),
                prefix: "churn/prod".into()
            })
        );
    }

    #[test]
    fn file_urls_parse_to_directories() {
        assert_eq!(
            "file:///var/lib/churn".parse::<ObjectStoreUrl>().ok(),
            Some(ObjectStoreUrl::File {
                dir: "/var/lib/churn".into()
            })
        );
    }

    #[test]
    fn bad_urls_say_what_is_expected() {
        for bad in ["http://x", "s3://A_B", "models", "s3://"] {
            let err = bad.parse::<ObjectStoreUrl>().expect_err(bad).to_string();
            assert!(err.contains(bad), "{err}");
        }
    }
}

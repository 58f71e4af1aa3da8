//! Where objects live (`OBJECT_STORE_URL`) and how to reach S3 or MinIO (the standard `AWS_*` variables).

use crate::{ConfigError, Env, Secret};

/// Where objects live, parsed from `OBJECT_STORE_URL`: `s3://bucket[/prefix]` or `file:///dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectStoreUrl {
    S3 { bucket: String, prefix: String },
    File { dir: std::path::PathBuf },
}

impl std::str::FromStr for ObjectStoreUrl {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let url = url::Url::parse(raw)
            .map_err(|e| format!("{e}; expected s3://bucket[/prefix] or file:///dir"))?;
        match url.scheme() {
            "s3" => {
                let bucket = url.host_str().unwrap_or_default();
                // S3 bucket naming rules, simplified: 3-63 of lower-case letters, digits, dots and hyphens.
                let valid = (3..=63).contains(&bucket.len())
                    && bucket.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                    });
                if !valid {
                    return Err(
                        "the bucket must be 3-63 lower-case letters, digits, dots or hyphens"
                            .into(),
                    );
                }
                Ok(ObjectStoreUrl::S3 {
                    bucket: bucket.to_owned(),
                    prefix: url.path().trim_matches('/').to_owned(),
                })
            }
            "file" => {
                let dir = url
                    .to_file_path()
                    .map_err(|()| "expected an absolute path such as file:///var/lib/churn")?;
                Ok(ObjectStoreUrl::File { dir })
            }
            other => Err(format!(
                "unsupported scheme {other:?}; expected s3://bucket[/prefix] or file:///dir"
            )),
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

impl ObjectStoreUrl {
    /// `OBJECT_STORE_URL`, or `file://<cwd>/var/objects` when unset: a local run keeps artifacts beside
    /// the checkout. A relative `file://./dir` is taken relative to the working directory.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| std::path::PathBuf::from("/tmp"));
        match env.get("OBJECT_STORE_URL") {
            Some(raw) => {
                let resolved = match raw.trim().strip_prefix("file://./") {
                    Some(rest) => format!("file://{}/{rest}", cwd.display()),
                    None => raw.trim().to_owned(),
                };
                resolved
                    .parse()
                    .map_err(|e: String| ConfigError::invalid("OBJECT_STORE_URL", &raw, e))
            }
            None => Ok(ObjectStoreUrl::File {
                dir: cwd.join("var/objects"),
            }),
        }
    }
}

/// S3 client settings from the standard `AWS_*` variables; the secret key never prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub region: Option<String>,
    pub allow_http: bool,
}

impl S3Options {
    /// Reads AWS_ENDPOINT_URL (or AWS_ENDPOINT), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION (or
    /// AWS_DEFAULT_REGION) and AWS_ALLOW_HTTP; blank values count as unset.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            endpoint: env
                .get("AWS_ENDPOINT_URL")
                .or_else(|| env.get("AWS_ENDPOINT")),
            access_key_id: env.get("AWS_ACCESS_KEY_ID"),
            secret_access_key: env.get("AWS_SECRET_ACCESS_KEY").map(Secret::new),
            region: env
                .get("AWS_REGION")
                .or_else(|| env.get("AWS_DEFAULT_REGION")),
            allow_http: env.flag("AWS_ALLOW_HTTP", false)?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
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
    fn a_relative_file_url_is_taken_from_the_working_directory() {
        let url =
            ObjectStoreUrl::from_env(&Env::from_pairs([("OBJECT_STORE_URL", "file://./var/x")]))
                .unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            url,
            ObjectStoreUrl::File {
                dir: cwd.join("var/x")
            }
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
            let err = ObjectStoreUrl::from_env(&Env::from_pairs([("OBJECT_STORE_URL", bad)]))
                .expect_err(bad)
                .to_string();
            assert!(err.starts_with("OBJECT_STORE_URL"), "{err}");
            assert!(err.contains(bad), "{err}");
        }
    }
}

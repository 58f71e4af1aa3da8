//! Secrets (tokens, keys, passwords, database URLs with a password) that never print.

use std::fmt;

/// A secret value: `Debug` and `Display` print `[redacted]`; [`Secret::expose`] is the only way in.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send or compare it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Parsing cannot fail: it lets a command-line flag (clap) hold a secret without it ever printing.
impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(value))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A PostgreSQL URL whose password, if any, never prints: `Debug` and `Display` show
/// `postgres://user:[redacted]@host:5432/db`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Checks the URL's shape: `postgres://` or `postgresql://` with a host.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = url::Url::parse(raw.trim()).map_err(|e| {
            format!("{e}; expected e.g. postgres://user:password@127.0.0.1:5432/churn")
        })?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(format!(
                "the scheme is {:?}; expected postgres://user:password@host:5432/database",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) && !raw.contains("host=") {
            return Err("the URL has no host; expected postgres://user@host:5432/database".into());
        }
        Ok(Self(raw.trim().to_owned()))
    }

    /// The URL with its password, for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The same server with another database, e.g. the server-level `postgres` database.
    pub fn with_database(&self, database: &str) -> Self {
        match url::Url::parse(&self.0) {
            Ok(mut url) => {
                url.set_path(database);
                Self(url.to_string())
            }
            Err(_) => self.clone(),
        }
    }

    /// The database name (the URL's path), if any.
    pub fn database(&self) -> Option<String> {
        url::Url::parse(&self.0)
            .ok()
            .map(|u| u.path().trim_start_matches('/').to_owned())
            .filter(|d| !d.is_empty())
    }

    /// The URL with any password replaced by `[redacted]`.
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("redacted"));
                url.to_string().replacen(":redacted@", ":[redacted]@", 1)
            }
            Ok(url) => url.to_string(),
            Err(_) => "[redacted]".to_owned(),
        }
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_prints_as_redacted() {
        let s = Secret::new("hunter2-hunter2-hunter2");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(s.to_string(), "[redacted]");
        assert_eq!(s.expose(), "hunter2-hunter2-hunter2");
    }

    #[test]
    fn a_database_url_hides_its_password_but_not_where_it_points() {
        let url = DatabaseUrl::parse("postgres://churn:s3cret-pass@db:5432/churn").unwrap();
        for shown in [format!("{url:?}"), url.to_string()] {
            assert!(!shown.contains("s3cret-pass"), "{shown}");
            assert!(shown.contains("churn:[redacted]@db:5432/churn"), "{shown}");
        }
        assert_eq!(url.expose(), "postgres://churn:s3cret-pass@db:5432/churn");
        assert_eq!(url.database().as_deref(), Some("churn"));
        assert_eq!(
            url.with_database("postgres").expose(),
            "postgres://churn:s3cret-pass@db:5432/postgres"
        );
    }

    #[test]
    fn a_database_url_of_another_kind_is_refused() {
        assert!(DatabaseUrl::parse("mysql://root@db/churn").is_err());
        assert!(DatabaseUrl::parse("not a url").is_err());
    }
}

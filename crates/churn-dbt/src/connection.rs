//! How dbt reaches PostgreSQL: the libpq variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
//! `PGDATABASE`, `PGSSLMODE`, …) that `dbt/profiles.yml` reads, derived from the services' own
//! `DATABASE_URL`. The password goes to dbt's environment only: it is never logged or shown by `Debug`.

use std::fmt;

use crate::Error;

/// The libpq environment for one database.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionEnv {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    database: String,
    ssl: Vec<(&'static str, String)>,
    url: String,
}

impl ConnectionEnv {
    /// Parses `postgres://user:password@host:port/database?sslmode=…`. A `host=` query parameter (a
    /// Unix socket directory) overrides the host; `sslmode`, `sslrootcert`, `sslcert` and `sslkey` are
    /// passed on.
    pub fn from_url(raw: &str) -> Result<Self, Error> {
        let fail = |reason: String| Error::InvalidDatabaseUrl { reason };
        let url = url::Url::parse(raw).map_err(|e| fail(format!("not a URL ({e})")))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(fail(format!(
                "the scheme is {:?}; expected postgres:// or postgresql://",
                url.scheme()
            )));
        }
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let mut host = url.host_str().unwrap_or_default().to_owned();
        let mut ssl = Vec::new();
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "host" => host = value.into_owned(),
                "sslmode" => ssl.push(("PGSSLMODE", value.into_owned())),
                "sslrootcert" => ssl.push(("PGSSLROOTCERT", value.into_owned())),
                "sslcert" => ssl.push(("PGSSLCERT", value.into_owned())),
                "sslkey" => ssl.push(("PGSSLKEY", value.into_owned())),
                _ => {}
            }
        }
        if host.is_empty() {
            host = "localhost".to_owned();
        }
        let database = decode(url.path().trim_start_matches('/'));
        if database.is_empty() {
            return Err(fail(
                "it names no database (expected …/database)".to_owned(),
            ));
        }
        let user = match url.username() {
            "" => "postgres".to_owned(),
            user => decode(user),
        };
        Ok(Self {
            host,
            port: url.port().unwrap_or(5432),
            user,
            password: url.password().map(decode),
            database,
            ssl,
            url: raw.to_owned(),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    /// The variables to set for dbt, password included.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            ("PGHOST", self.host.clone()),
            ("PGPORT", self.port.to_string()),
            ("PGUSER", self.user.clone()),
            ("PGDATABASE", self.database.clone()),
        ];
        if let Some(password) = &self.password {
            vars.push(("PGPASSWORD", password.clone()));
        }
        vars.extend(self.ssl.iter().cloned());
        vars
    }

    /// Whether a password is set (for dbt's environment; never shown).
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// The URL it came from, for the runner's own connection (cancelling a stopped dbt's queries).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

impl fmt::Debug for ConnectionEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionEnv")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("database", &self.database)
            .field("ssl", &self.ssl)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_url_becomes_libpq_variables() {
        let env = ConnectionEnv::from_url(
            "postgres://churn:s%40cret@db.internal:6543/warehouse?sslmode=require",
        )
        .expect("valid");
        assert_eq!(env.host(), "db.internal");
        assert_eq!(env.port(), 6543);
        assert_eq!(env.user(), "churn");
        assert_eq!(env.database(), "warehouse");
        let vars = env.vars();
        assert!(
            vars.contains(&("PGPASSWORD", "s@cret".to_owned())),
            "decoded"
        );
        assert!(
            vars.contains(&("PGSSLMODE", "require".to_owned())),
            "{vars:?}"
        );
        assert!(vars.contains(&("PGPORT", "6543".to_owned())), "{vars:?}");
    }

    #[test]
    fn defaults_fill_what_the_url_leaves_out() {
        let env =
            ConnectionEnv::from_url("postgresql:///churn?host=/var/run/postgresql").expect("valid");
        assert_eq!(env.host(), "/var/run/postgresql");
        assert_eq!(env.port(), 5432);
        assert_eq!(env.user(), "postgres");
        assert!(!env.has_password());
        assert!(env.vars().iter().all(|(k, _)| *k != "PGPASSWORD"));
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let env = ConnectionEnv::from_url("postgres://u:hunter2-secret@h/d").expect("valid");
        let shown = format!("{env:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn urls_dbt_cannot_use_are_refused_with_the_reason() {
        for (url, reason) in [
            ("mysql://u@h/d", "scheme"),
            ("postgres://u@h", "no database"),
            ("not a url", "not a URL"),
        ] {
            let err = ConnectionEnv::from_url(url).expect_err(url).to_string();
            assert!(err.contains(reason), "{url}: {err}");
            assert!(!err.contains("hunter2"));
        }
    }
}

//! The database `churnctl up` runs on: DATABASE_URL when a server answers there, else a PostgreSQL of its
//! own under `.churn/pg`, installed, initialised, started and stopped by this run.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use churn_config::{DatabaseUrl, Env};
use sqlx::Connection;
use tokio::process::Command;

use super::{STATE_DIR, note};

/// DATABASE_URL when a server answers there (its database is created when missing), else the embedded
/// PostgreSQL, started (and initialised on the first run) into `embedded`.
pub(super) async fn database(
    state: &Path,
    embedded: &mut Option<EmbeddedPg>,
) -> anyhow::Result<DatabaseUrl> {
    if let Some(raw) = Env::Process.get("DATABASE_URL") {
        let url = DatabaseUrl::parse(&raw).map_err(|e| anyhow!("DATABASE_URL is invalid: {e}"))?;
        match ensure_database(&url).await {
            Ok(()) => {
                note(&format!("database: {url} (DATABASE_URL)"));
                return Ok(url);
            }
            Err(e) => note(&format!(
                "no PostgreSQL answers at DATABASE_URL {url} ({e}); using an embedded one in {STATE_DIR}/pg"
            )),
        }
    }
    let pg = embedded.insert(EmbeddedPg::locate(state)?);
    pg.start().await?;
    let url = pg.url("churn");
    ensure_database(&url)
        .await
        .context("creating database churn in the embedded PostgreSQL")?;
    note(&format!(
        "database: {url} (embedded, data in {STATE_DIR}/pg)"
    ));
    Ok(url)
}

/// Connects to `url` within a few seconds; when the server answers but the database does not exist,
/// creates it.
async fn ensure_database(url: &DatabaseUrl) -> anyhow::Result<()> {
    const TIMEOUT: Duration = Duration::from_secs(3);
    let connect = |url: String| async move {
        tokio::time::timeout(TIMEOUT, sqlx::PgConnection::connect(&url))
            .await
            .map_err(|_| anyhow!("no answer within {} s", TIMEOUT.as_secs()))
    };
    match connect(url.expose().to_owned()).await? {
        Ok(conn) => {
            conn.close().await.ok();
            Ok(())
        }
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => {
            let name = url.database().unwrap_or_default();
            let mut conn = connect(url.with_database("postgres").expose().to_owned()).await??;
            note(&format!("creating database {name}"));
            churn_store::admin::create_database(&mut conn, &name)
                .await
                .with_context(|| format!("creating database {name}"))?;
            conn.close().await.ok();
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// A PostgreSQL of our own: data in `.churn/pg`, socket and server log in `.churn/pg-run`, listening on a
/// free port of 127.0.0.1 with trust authentication for `postgres`.
#[derive(Debug)]
pub(super) struct EmbeddedPg {
    bin: PathBuf,
    data: PathBuf,
    run: PathBuf,
    port: u16,
    /// PostgreSQL refuses to run as root: as root, its programs run as the `postgres` user.
    as_user: Option<(String, u32, u32)>,
    /// Started (or found running) by this run, so stopped at its end.
    started: bool,
}

impl EmbeddedPg {
    /// Stops the server a killed run left running on `.churn/pg`, if there is one.
    pub(super) async fn stop_left_running(state: &Path) {
        if state.join("pg/postmaster.pid").exists()
            && let Ok(mut pg) = Self::locate(state)
            && pg.running_port().await.is_some()
        {
            note("--fresh: stopping the embedded PostgreSQL left running in .churn/pg");
            pg.started = true;
            pg.stop().await;
        }
    }

    fn locate(state: &Path) -> anyhow::Result<Self> {
        let bin = pg_bin_dir()
            .or_else(|| install_postgres().then(pg_bin_dir).flatten())
            .ok_or_else(|| {
                anyhow!(
                    "no PostgreSQL answers and its server programs (initdb, pg_ctl) are not installed: \
                     install them (Debian/Ubuntu: sudo apt-get install postgresql), or set DATABASE_URL \
                     to a PostgreSQL that answers"
                )
            })?;
        let as_user = if is_root() {
            let (uid, gid) = user_ids("postgres").ok_or_else(|| {
                anyhow!(
                    "PostgreSQL refuses to run as root, and there is no `postgres` user to run it as: \
                     create one (useradd --system postgres), run churnctl up as another user, or set \
                     DATABASE_URL"
                )
            })?;
            Some(("postgres".to_owned(), uid, gid))
        } else {
            None
        };
        Ok(Self {
            bin,
            data: state.join("pg"),
            run: state.join("pg-run"),
            port: 0,
            as_user,
            started: false,
        })
    }

    fn url(&self, database: &str) -> DatabaseUrl {
        DatabaseUrl::parse(&format!(
            "postgres://postgres@127.0.0.1:{}/{database}",
            self.port
        ))
        .unwrap_or_else(|_| unreachable!("a literal URL parses"))
    }

    /// One of PostgreSQL's programs, as the `postgres` user when this runs as root.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut command = match &self.as_user {
            Some((user, _, _)) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        };
        // Its own process group: Ctrl-C in the terminal reaches churnctl, which stops the server last.
        command
            .process_group(0)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    async fn output(&self, program: &str, args: &[&str]) -> anyhow::Result<std::process::Output> {
        self.command(program)
            .args(args)
            .output()
            .await
            .with_context(|| format!("running {}", self.bin.join(program).display()))
    }

    /// A folder the server's user owns.
    fn own_dir(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        if let Some((user, uid, gid)) = &self.as_user {
            std::os::unix::fs::chown(dir, Some(*uid), Some(*gid))
                .with_context(|| format!("giving {} to {user}", dir.display()))?;
        }
        Ok(())
    }

    /// The port of a server already running on this data folder (a run that was killed left it).
    async fn running_port(&self) -> Option<u16> {
        let data = self.data.display().to_string();
        let status = self.output("pg_ctl", &["status", "-D", &data]).await.ok()?;
        if !status.status.success() {
            return None;
        }
        // postmaster.pid: pid, data folder, start time, port, ...
        std::fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()?
            .lines()
            .nth(3)?
            .trim()
            .parse()
            .ok()
    }

    async fn start(&mut self) -> anyhow::Result<()> {
        if let Some((user, _, _)) = &self.as_user {
            // The server's user must be able to reach the folder.
            for dir in self.data.ancestors().skip(1) {
                let mode = std::fs::metadata(dir).map(|m| m.mode()).unwrap_or(0);
                if mode & 0o001 == 0 {
                    bail!(
                        "PostgreSQL refuses to run as root, so it runs as `{user}`, which cannot enter {} \
                         (mode {:o}): run churnctl up in a folder others may enter, or set DATABASE_URL",
                        dir.display(),
                        mode & 0o777
                    );
                }
            }
        }
        let data = self.data.display().to_string();
        let run = self.run.display().to_string();
        if !self.data.join("PG_VERSION").exists() {
            note(&format!(
                "initialising the embedded PostgreSQL in {STATE_DIR}/pg ({})",
                self.bin.display()
            ));
            self.own_dir(&self.data)?;
            let out = self
                .output(
                    "initdb",
                    &[
                        "-D",
                        &data,
                        "-U",
                        "postgres",
                        "--auth=trust",
                        "-E",
                        "UTF8",
                        "--no-sync",
                    ],
                )
                .await?;
            if !out.status.success() {
                bail!(
                    "initdb failed ({}):\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        self.own_dir(&self.run)?;
        if let Some(port) = self.running_port().await {
            note(&format!(
                "the embedded PostgreSQL is already running on port {port}; using it"
            ));
            self.port = port;
            self.started = true;
            return Ok(());
        }
        self.port = free_port()?;
        let log = self.run.join("server.log");
        let options = format!("-p {} -k {run} -c listen_addresses=127.0.0.1", self.port);
        let out = self
            .output(
                "pg_ctl",
                &[
                    "start",
                    "-D",
                    &data,
                    "-l",
                    &log.display().to_string(),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    &options,
                ],
            )
            .await?;
        // From here on a server may run, even when pg_ctl reports a failure.
        self.started = true;
        if !out.status.success() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            bail!(
                "the embedded PostgreSQL did not start ({}): {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(())
    }

    /// `pg_ctl stop -m fast`: open sessions are ended, the data stays for the next run.
    pub(super) async fn stop(&self) {
        if !self.started {
            return;
        }
        let data = self.data.display().to_string();
        match self
            .output(
                "pg_ctl",
                &["stop", "-D", &data, "-m", "fast", "-w", "-t", "30"],
            )
            .await
        {
            Ok(out) if out.status.success() => note("stopped the embedded PostgreSQL"),
            Ok(out) => note(&format!(
                "stopping the embedded PostgreSQL failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => note(&format!("stopping the embedded PostgreSQL failed: {e:#}")),
        }
    }
}

/// Installs PostgreSQL from the distribution's packages when this process may (root on a machine with
/// apt-get), saying so; true when the install command succeeded. Anywhere else the caller's error says
/// what to install.
fn install_postgres() -> bool {
    let apt = Path::new("/usr/bin/apt-get");
    if !is_root() || !apt.is_file() {
        return false;
    }
    note(
        "PostgreSQL is not installed: installing it from the distribution's packages (apt-get install postgresql)",
    );
    let install = || {
        std::process::Command::new(apt)
            .args(["install", "-y", "-q", "postgresql"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    // A fresh machine's package lists may be empty or stale: update them once and try again.
    install()
        || (std::process::Command::new(apt)
            .args(["update", "-q"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            && install())
}

/// The folder of initdb and pg_ctl: on PATH, else the newest `/usr/lib/postgresql/<version>/bin`.
fn pg_bin_dir() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|dir| has_both(dir))
    {
        return Some(dir);
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let version = name
                .split('.')
                .map(str::parse)
                .collect::<Result<Vec<u32>, _>>()
                .ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| has_both(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A user's uid and gid, from /etc/passwd.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    std::fs::read_to_string("/etc/passwd")
        .ok()?
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&user) && fields.len() > 3)
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
}

fn free_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port for PostgreSQL")?;
    Ok(listener.local_addr()?.port())
}

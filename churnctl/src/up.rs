//! `churnctl up`: the whole platform on this machine without Docker. A database (DATABASE_URL when it
//! answers, else an embedded PostgreSQL under `./.churn/pg`), an object store, the seed data, a
//! synthesizer and a first champion, then the three services as child processes wired as
//! docker-compose.yml wires them, their logs followed, until Ctrl-C or SIGTERM.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use churn_config::{DatabaseUrl, Env};
use churn_models::{Holdout, TrainRequest, TrainingData, classifier, synthesizer};
use churn_registry::Registry;
use clap::Args;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sqlx::Connection;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::progress::Progress;
use crate::registry_args::RegistryArgs;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Delete ./.churn (the embedded database, the local object store, logs) first and start over.
    #[arg(long)]
    pub fresh: bool,
    /// Search budget in seconds of the first champion's training (only when the registry has none).
    #[arg(long, default_value_t = 20)]
    pub train_budget_secs: u64,
    /// How long the services may take to answer /ready, in seconds.
    #[arg(long, default_value_t = 120)]
    pub ready_timeout_secs: u64,
    /// The checkout holding dbt/ and scripts/venv [default: the working directory or an ancestor with
    /// dbt/dbt_project.yml, else the checkout churnctl was built from].
    #[arg(long)]
    pub checkout: Option<PathBuf>,
}

/// Everything `churnctl up` keeps between runs, in the working directory.
const STATE_DIR: &str = ".churn";
/// Held while `churnctl up` runs, so a second one in the same folder stops at once.
const LOCK_FILE: &str = "up.lock";
/// How long the services get to stop after SIGTERM before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(15);
/// Lines of each service's output kept to explain an early exit.
const TAIL_LINES: usize = 30;

/// One of the three services.
#[derive(Debug, Clone, Copy)]
struct Spec {
    name: &'static str,
    port_var: &'static str,
    url_var: &'static str,
    default_port: u16,
    /// ANSI colour of its `[name]` prefix.
    colour: u8,
}

/// In start order: the scheduler needs the other two.
const SERVICES: [Spec; 3] = [
    Spec {
        name: "synthesizer",
        port_var: "SYNTHESIZER_PORT",
        url_var: "SYNTHESIZER_URL",
        default_port: churn_config::SYNTHESIZER_PORT,
        colour: 35,
    },
    Spec {
        name: "classifier",
        port_var: "CLASSIFIER_PORT",
        url_var: "CLASSIFIER_URL",
        default_port: churn_config::CLASSIFIER_PORT,
        colour: 36,
    },
    Spec {
        name: "scheduler",
        port_var: "SCHEDULER_PORT",
        url_var: "SCHEDULER_URL",
        default_port: churn_config::SCHEDULER_PORT,
        colour: 33,
    },
];

/// Schedules faster than the deployment's, so a local run shows every job within minutes. Each applies
/// only when the variable is unset or empty.
const ACCELERATED: [(&str, &str); 6] = [
    ("GENERATE_SCHEDULE", "continuous"),
    ("GENERATE_RATE", "20"),
    // A batch every 2.5 s: not the 5 s the services close idle keep-alive connections after, which races
    // the next batch's request on a pooled connection.
    ("GENERATE_BATCH_SIZE", "50"),
    ("DBT_SCHEDULE", "0 * * * * *"),
    ("METRICS_SCHEDULE", "15 * * * * *"),
    ("DRIFT_SCHEDULE", "30 * * * * *"),
];

fn note(message: &str) {
    eprintln!("==> {message}");
}

/// Ctrl-C and SIGTERM, caught from the start so that no step is cut short without cleaning up.
#[derive(Debug)]
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("catching SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("catching SIGTERM")?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "Ctrl-C",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

pub async fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let mut stop = StopSignals::install()?;
    let cwd = std::env::current_dir().context("reading the working directory")?;
    let state = cwd.join(STATE_DIR);
    std::fs::create_dir_all(&state).with_context(|| format!("creating {}", state.display()))?;
    // Two runs in one folder would share (and stop) one embedded database.
    let lock = std::fs::File::create(state.join(LOCK_FILE))?;
    if lock.try_lock().is_err() {
        bail!(
            "another `churnctl up` is running in {} ({STATE_DIR}/{LOCK_FILE} is held): stop it first, or \
             run this one in another folder",
            cwd.display()
        );
    }
    if args.fresh {
        fresh(&state).await?;
    }

    let mut database = None;
    let prepared = tokio::select! {
        biased;
        signal = stop.recv() => {
            note(&format!("{signal}: stopping before the services started"));
            None
        }
        plan = prepare(&args, &cwd, &state, &mut database) => Some(plan),
    };
    let result = match prepared {
        None => Ok(ExitCode::SUCCESS),
        Some(Err(e)) => Err(e),
        Some(Ok(plan)) => supervise(&plan, &mut stop, args.ready_timeout_secs).await,
    };
    if let Some(database) = database {
        database.stop().await;
    }
    drop(lock);
    result
}

/// Empties the state folder (all but the lock this run holds), stopping an embedded PostgreSQL a killed
/// run left behind in it.
async fn fresh(state: &Path) -> anyhow::Result<()> {
    if state.join("pg/postmaster.pid").exists()
        && let Ok(mut pg) = EmbeddedPg::locate(state)
        && pg.running_port().await.is_some()
    {
        note("--fresh: stopping the embedded PostgreSQL left running in .churn/pg");
        pg.started = true;
        pg.stop().await;
    }
    note(&format!("--fresh: deleting what {} holds", state.display()));
    for entry in std::fs::read_dir(state)? {
        let path = entry?.path();
        if path.file_name() == Some(std::ffi::OsStr::new(LOCK_FILE)) {
            continue;
        }
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.with_context(|| format!("deleting {}", path.display()))?;
    }
    Ok(())
}

/// What the services are started with.
#[derive(Debug)]
struct Plan {
    cwd: PathBuf,
    state: PathBuf,
    /// The services' variables on top of the inherited environment.
    vars: Vec<(String, String)>,
    host: String,
    ports: [u16; 3],
    database: DatabaseUrl,
    objects: String,
    admin_token_file: Option<PathBuf>,
    dbt_docs: bool,
}

/// Everything before the services start: database, object store, seed data, migrations, dbt, models.
async fn prepare(
    args: &UpArgs,
    cwd: &Path,
    state: &Path,
    embedded: &mut Option<EmbeddedPg>,
) -> anyhow::Result<Plan> {
    let env = Env::Process;
    let mut ports = [0u16; 3];
    for (port, spec) in ports.iter_mut().zip(SERVICES) {
        *port = env.parse_or(spec.port_var, spec.default_port)?;
    }
    let ip = match env.parse_opt::<std::net::IpAddr>("BIND_ADDRESS")? {
        Some(ip) if !ip.is_unspecified() => ip,
        _ => std::net::IpAddr::from([127, 0, 0, 1]),
    };
    // As written in a URL.
    let host = match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    };
    // A port in use fails a service only after the long steps: say so now.
    for (port, spec) in ports.iter().zip(SERVICES) {
        if std::net::TcpListener::bind((ip, *port)).is_err() {
            bail!(
                "port {port} ({}) is in use on {host}: stop what listens there, or set {} to a free port",
                spec.port_var,
                spec.port_var
            );
        }
    }

    let database = database(state, embedded).await?;
    let objects = match env.get("OBJECT_STORE_URL") {
        Some(url) => url,
        None => {
            let dir = state.join("objects");
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            format!("file://{}", dir.display())
        }
    };
    note(&format!("object store: {objects}"));
    let seed = seed_data(state).await?;
    note(&format!("seed data: {}", seed.display()));

    let registry = RegistryArgs {
        database_url: Some(database.expose().to_owned()),
        object_store_url: Some(objects.clone()),
    }
    .open()
    .await
    .context("migrating the database and opening the registry")?;
    note("database migrated");
    let checkout = find_checkout(args.checkout.as_deref(), cwd);
    let dbt = dbt_vars(&env, checkout.as_deref(), state).await;
    ensure_models(
        &registry,
        &seed,
        Duration::from_secs(args.train_budget_secs),
    )
    .await?;

    let (admin_token, admin_token_file) = match env.get("ADMIN_TOKEN") {
        Some(token) => (token, None),
        None => {
            let file = state.join("admin-token");
            (admin_token(&file)?, Some(file))
        }
    };
    let mut vars: Vec<(String, String)> = vec![
        ("DATABASE_URL".into(), database.expose().to_owned()),
        ("OBJECT_STORE_URL".into(), objects.clone()),
        (
            churn_config::SEED_DATA_ENV.into(),
            seed.display().to_string(),
        ),
        ("ADMIN_TOKEN".into(), admin_token),
        ("DO_NOT_TRACK".into(), "1".into()),
    ];
    for (port, spec) in ports.iter().zip(SERVICES) {
        vars.push((spec.port_var.into(), port.to_string()));
        default_var(
            &env,
            &mut vars,
            spec.url_var,
            format!("http://{host}:{port}"),
        );
    }
    default_var(&env, &mut vars, "LOG_FORMAT", "text".into());
    default_var(&env, &mut vars, "RUST_LOG", "info".into());
    if !std::io::stdout().is_terminal() {
        // Plain lines in a pipe or a file: the services colour their logs otherwise.
        default_var(&env, &mut vars, "NO_COLOR", "1".into());
    }
    // The scheduler's own trainings get the same short budget: a laptop, not a server.
    for name in ["BOOTSTRAP_TRAIN_BUDGET_SECS", "RETRAIN_BUDGET_SECS"] {
        default_var(&env, &mut vars, name, args.train_budget_secs.to_string());
    }
    for (name, value) in ACCELERATED {
        default_var(&env, &mut vars, name, value.into());
    }
    let dbt_off = dbt
        .iter()
        .any(|(name, value)| name == "DBT_ENABLED" && value == "false");
    let dbt_docs = !dbt_off && env.flag("DBT_ENABLED", true).unwrap_or(true);
    for (name, value) in dbt {
        if name == "DBT_ENABLED" {
            // Off because dbt could not be found: whatever the environment says.
            vars.push((name, value));
        } else {
            default_var(&env, &mut vars, &name, value);
        }
    }
    Ok(Plan {
        cwd: cwd.to_path_buf(),
        state: state.to_path_buf(),
        vars,
        host,
        ports,
        database,
        objects,
        admin_token_file,
        dbt_docs,
    })
}

/// Adds `name=value` unless the environment sets `name` (an empty value counts as unset, as in sample.env).
fn default_var(env: &Env, vars: &mut Vec<(String, String)>, name: &str, value: String) {
    if env.get(name).is_none() {
        vars.push((name.to_owned(), value));
    }
}

/// ADMIN_TOKEN for the scheduler's mutating routes: the one kept in `file`, or a new one written there.
fn admin_token(file: &Path) -> anyhow::Result<String> {
    if let Ok(token) = std::fs::read_to_string(file)
        && token.trim().len() >= churn_config::MIN_TOKEN_LEN
    {
        return Ok(token.trim().to_owned());
    }
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("writing {}", file.display()))?;
    writeln!(out, "{token}")?;
    Ok(token)
}

// --- the database ---------------------------------------------------------------------------------------

/// DATABASE_URL when a server answers there (its database is created when missing), else the embedded
/// PostgreSQL, started (and initialised on the first run) into `embedded`.
async fn database(state: &Path, embedded: &mut Option<EmbeddedPg>) -> anyhow::Result<DatabaseUrl> {
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
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "create database \"{}\"",
                name.replace('"', "\"\"")
            )))
            .execute(&mut conn)
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
struct EmbeddedPg {
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
    async fn stop(&self) {
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

// --- seed data, dbt, models -------------------------------------------------------------------------------

/// CHURN_SEED_DATA, else shared/data/telco_customer_churn.csv in the working directory's nearest ancestor
/// that has it, else `.churn/telco_customer_churn.csv`; downloaded (SHA-256 checked) when missing.
async fn seed_data(state: &Path) -> anyhow::Result<PathBuf> {
    let path = match Env::Process.get(churn_config::SEED_DATA_ENV) {
        Some(path) => PathBuf::from(path),
        None => {
            let shared = churn_config::seed_data_path(&Env::from_pairs::<&str, &str>([]));
            if shared.is_file() {
                shared
            } else {
                state.join("telco_customer_churn.csv")
            }
        }
    };
    let path = std::path::absolute(&path)?;
    if !path.is_file() {
        note(&format!(
            "the seed data is not at {}: downloading it",
            path.display()
        ));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut progress = Progress::bytes("downloading", None);
        churn_store::seed::download_verified(
            churn_store::seed::SEED_URL,
            churn_store::seed::SEED_SHA256,
            &path,
            |done, total| {
                if let Some(total) = total {
                    progress.set_total(total);
                }
                progress.set(done);
            },
        )
        .await
        .context("downloading the seed data (or set CHURN_SEED_DATA to a copy of it)")?;
        progress.finish();
    }
    Ok(path)
}

/// The checkout with dbt/ and scripts/: `flag`, else the working directory or its nearest ancestor with a
/// dbt project, else the one this binary was built from (when it is still there).
fn find_checkout(flag: Option<&Path>, cwd: &Path) -> Option<PathBuf> {
    let is_checkout = |dir: &Path| dir.join("dbt/dbt_project.yml").is_file();
    if let Some(dir) = flag {
        return Some(dir.to_path_buf());
    }
    cwd.ancestors()
        .find(|dir| is_checkout(dir))
        .map(Path::to_path_buf)
        .or_else(|| {
            let built = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
            is_checkout(built).then(|| built.to_path_buf())
        })
}

/// The dbt job's variables: the project, and the pinned venv's dbt (`scripts/venv --dbt` builds it when
/// missing). Without a project or a dbt, the job is turned off with a note saying how to get it.
async fn dbt_vars(env: &Env, checkout: Option<&Path>, state: &Path) -> Vec<(String, String)> {
    let off = |why: String| {
        note(&format!("the dbt job is off: {why}"));
        vec![("DBT_ENABLED".to_owned(), "false".to_owned())]
    };
    if !env.flag("DBT_ENABLED", true).unwrap_or(true) {
        return Vec::new();
    }
    let project = match (env.get("DBT_PROJECT_DIR"), checkout) {
        (Some(dir), _) => PathBuf::from(dir),
        (None, Some(checkout)) => checkout.join("dbt"),
        (None, None) => {
            return off(
                "no dbt project found (run churnctl up in the checkout, pass --checkout DIR, or set \
                 DBT_PROJECT_DIR)"
                    .to_owned(),
            );
        }
    };
    let executable = match env.get("DBT_EXECUTABLE") {
        Some(dbt) => PathBuf::from(dbt),
        None => {
            let Some(script) = checkout
                .map(|c| c.join("scripts/venv"))
                .filter(|s| s.is_file())
            else {
                return off(
                    "no scripts/venv to install dbt with (set DBT_EXECUTABLE to a dbt)".to_owned(),
                );
            };
            match venv_dbt(&script).await {
                Ok(dbt) => dbt,
                Err(e) => {
                    return off(format!(
                        "{e:#} (run {} --dbt by hand, or set DBT_EXECUTABLE)",
                        script.display()
                    ));
                }
            }
        }
    };
    note(&format!(
        "dbt: {} on {}",
        executable.display(),
        project.display()
    ));
    vec![
        ("DBT_EXECUTABLE".into(), executable.display().to_string()),
        ("DBT_PROJECT_DIR".into(), project.display().to_string()),
        ("DBT_PROFILES_DIR".into(), project.display().to_string()),
        (
            "DBT_TARGET_DIR".into(),
            state.join("dbt-target").display().to_string(),
        ),
        // dbt reads it itself (profiles.yml), where an empty value is not a number.
        ("DBT_THREADS".into(), "2".into()),
    ]
}

/// Runs `scripts/venv --dbt` (quick when the venv exists; a pip install from PyPI otherwise).
async fn venv_dbt(script: &Path) -> anyhow::Result<PathBuf> {
    let mut bar = Progress::steps("dbt venv");
    bar.message(format!("{} --dbt", script.display()));
    let out = Command::new(script)
        .arg("--dbt")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("running {}", script.display()))?;
    bar.finish();
    if !out.status.success() {
        bail!(
            "{} --dbt failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let venv = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let dbt = venv.join("bin/dbt");
    if !dbt.is_file() {
        bail!("{} has no bin/dbt", venv.display());
    }
    Ok(dbt)
}

/// Fits and registers a synthesizer, and trains and registers a first champion, when there are none.
async fn ensure_models(registry: &Registry, seed: &Path, budget: Duration) -> anyhow::Result<()> {
    let code_version = format!("churnctl {}", env!("CARGO_PKG_VERSION"));
    if registry
        .by_alias(synthesizer::MODEL_NAME, &churn_registry::Alias::CHAMPION)
        .await?
        .is_none()
    {
        let mut bar = Progress::steps("synthesizer");
        bar.message("fitting the Gaussian copula on the seed data".to_owned());
        let path = seed.to_path_buf();
        let (model, mut info) = tokio::task::spawn_blocking(move || {
            synthesizer::fit_file(&path, churn_synth::FitOptions::default())
        })
        .await?
        .with_context(|| format!("fitting the synthesizer on {}", seed.display()))?;
        info.code_version.clone_from(&code_version);
        bar.message("registering".to_owned());
        let (version, _) = synthesizer::register(registry, &model, &info).await?;
        bar.println(&format!(
            "registered {} version {} (fitted on {} rows)",
            synthesizer::MODEL_NAME,
            version.version,
            info.rows
        ));
        bar.finish();
    }
    if registry
        .by_alias(classifier::MODEL_NAME, &churn_registry::Alias::CHAMPION)
        .await?
        .is_none()
    {
        note(&format!(
            "no champion yet: training one on the seed data ({} s search; --train-budget-secs)",
            budget.as_secs()
        ));
        let request = TrainRequest {
            data: TrainingData::File(seed.to_path_buf()),
            holdout: Holdout::Split {
                fraction: 0.2,
                seed: 0,
            },
            options: churn_automl::TrainOptions {
                time_budget: budget,
                threads: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
                ..churn_automl::TrainOptions::default()
            },
            promotion_margin: 0.0,
            hold_for_live: false,
            code_version,
        };
        let bar = Arc::new(Mutex::new(Progress::steps("training")));
        let shown = bar.clone();
        let outcome = churn_models::train_and_register(registry, request, move |event| {
            if let Ok(mut bar) = shown.lock() {
                crate::train::report_progress(&mut bar, event);
            }
        })
        .await
        .context("training the first champion")?;
        if let Ok(bar) = Arc::try_unwrap(bar).map(Mutex::into_inner) {
            bar.map(Progress::finish).ok();
        }
        if let Some((version, decision)) = &outcome.registered {
            note(&format!(
                "registered {} version {} ({}, test roc_auc {}): {}",
                classifier::MODEL_NAME,
                version.version,
                outcome.model.family,
                outcome
                    .test_metrics
                    .as_ref()
                    .and_then(|m| m.roc_auc)
                    .map_or_else(|| "n/a".to_owned(), |auc| format!("{auc:.4}")),
                decision.reason
            ));
        }
    }
    Ok(())
}

// --- the services ---------------------------------------------------------------------------------------

/// The last lines a service printed.
type Tail = Arc<Mutex<VecDeque<String>>>;

/// A running service.
#[derive(Debug)]
struct Child {
    spec: Spec,
    port: u16,
    pid: Pid,
    alive: bool,
    ready: bool,
    tail: Tail,
    log: PathBuf,
}

impl Child {
    fn last_lines(&self) -> String {
        let tail = self
            .tail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tail.iter()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn signal(&self, signal: Signal) {
        if self.alive {
            // The process may have exited a moment ago: then there is nothing to signal.
            let _ = kill(self.pid, signal);
        }
    }
}

/// Why the platform stopped.
enum Ending {
    Signal(&'static str),
    Exited(usize, std::io::Result<ExitStatus>),
    NotReady(usize),
}

/// Starts the services, waits for /ready, follows them until a signal or an exit, then stops them all.
async fn supervise(
    plan: &Plan,
    stop: &mut StopSignals,
    ready_timeout_secs: u64,
) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("finding the churnctl executable")?;
    let log_dir = plan.state.join("log");
    std::fs::create_dir_all(&log_dir)?;
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let (exits, mut exited) = mpsc::unbounded_channel();
    let mut children = Vec::new();
    let mut forwarders = Vec::new();
    let mut ending = None;
    for (index, (spec, port)) in SERVICES.iter().zip(plan.ports).enumerate() {
        let spawned = spawn_service(
            plan,
            &exe.with_file_name(spec.name),
            *spec,
            port,
            &log_dir,
            colour,
        );
        match spawned {
            Ok((mut child, process, streams)) => {
                forwarders.extend(streams);
                note(&format!(
                    "started {} (pid {}) on port {port}",
                    spec.name, child.pid
                ));
                let exits = exits.clone();
                tokio::spawn(async move {
                    let mut process = process;
                    let status = process.wait().await;
                    let _ = exits.send((index, status));
                });
                child.alive = true;
                children.push(child);
            }
            Err(e) => {
                ending = Some(Err(e));
                break;
            }
        }
    }

    let started = Instant::now();
    if ending.is_none() {
        ending = Some(Ok(follow(
            plan,
            stop,
            &mut exited,
            &mut children,
            started,
            ready_timeout_secs,
        )
        .await));
    }
    let ending = ending.unwrap_or_else(|| unreachable!("set above"));
    let stopping = Instant::now();
    shutdown(&mut children, &mut exited).await;
    // The last lines the services wrote are printed before churnctl says it is done.
    for forwarder in forwarders {
        let _ = tokio::time::timeout(Duration::from_secs(2), forwarder).await;
    }
    let ending = ending?;
    match ending {
        Ending::Signal(signal) => {
            note(&format!(
                "{signal}: the services stopped in {:.1} s; the data stays in {STATE_DIR} for the next run",
                stopping.elapsed().as_secs_f64()
            ));
            Ok(ExitCode::SUCCESS)
        }
        Ending::Exited(index, status) => {
            let child = &children[index];
            let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
            bail!(
                "the {} service exited on its own ({status}), so the others were stopped. Its last \
                 lines:\n{}\nits whole log: {}",
                child.spec.name,
                child.last_lines(),
                child.log.display()
            )
        }
        Ending::NotReady(index) => {
            let child = &children[index];
            bail!(
                "the {} service did not answer /ready on port {} within {ready_timeout_secs} s (raise \
                 --ready-timeout-secs on a slow machine). Its last lines:\n{}\nits whole log: {}",
                child.spec.name,
                child.port,
                child.last_lines(),
                child.log.display()
            )
        }
    }
}

/// Starts one service with its output piped to [`forward`]ers; the caller waits for the process.
fn spawn_service(
    plan: &Plan,
    binary: &Path,
    spec: Spec,
    port: u16,
    log_dir: &Path,
    colour: bool,
) -> anyhow::Result<(
    Child,
    tokio::process::Child,
    Vec<tokio::task::JoinHandle<()>>,
)> {
    if !binary.is_file() {
        bail!(
            "{} is missing: build the services beside churnctl (cargo build --release -p synthesizer -p \
             classifier -p scheduler -p churnctl, or scripts/dev)",
            binary.display()
        );
    }
    let log = log_dir.join(format!("{}.log", spec.name));
    let file = Arc::new(Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?,
    ));
    // Dropped on an error below, the process is killed (kill_on_drop).
    let mut process = Command::new(binary)
        .envs(plan.vars.iter().map(|(k, v)| (k, v)))
        .current_dir(&plan.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: Ctrl-C reaches churnctl only, which stops the services in order.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let pid = process
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw)
        .ok_or_else(|| anyhow!("{} exited as it started", spec.name))?;
    let tail: Tail = Arc::default();
    let prefix = if colour {
        format!("\x1b[{}m[{}]\x1b[0m ", spec.colour, spec.name)
    } else {
        format!("[{}] ", spec.name)
    };
    let mut streams = Vec::new();
    if let Some(out) = process.stdout.take() {
        streams.push(tokio::spawn(forward(
            out,
            prefix.clone(),
            tail.clone(),
            file.clone(),
        )));
    }
    if let Some(err) = process.stderr.take() {
        streams.push(tokio::spawn(forward(err, prefix, tail.clone(), file)));
    }
    let child = Child {
        spec,
        port,
        pid,
        alive: false,
        ready: false,
        tail,
        log,
    };
    Ok((child, process, streams))
}

/// Waits for every /ready, prints the URLs, then waits for a signal or a service's exit.
async fn follow(
    plan: &Plan,
    stop: &mut StopSignals,
    exited: &mut mpsc::UnboundedReceiver<(usize, std::io::Result<ExitStatus>)>,
    children: &mut [Child],
    started: Instant,
    ready_timeout_secs: u64,
) -> Ending {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_default();
    let deadline = started + Duration::from_secs(ready_timeout_secs);
    let mut announced = false;
    loop {
        tokio::select! {
            biased;
            signal = stop.recv() => return Ending::Signal(signal),
            exit = exited.recv() => {
                let Some((index, status)) = exit else {
                    unreachable!("every child's waiter holds a sender until it reports")
                };
                children[index].alive = false;
                return Ending::Exited(index, status);
            }
            () = tokio::time::sleep(Duration::from_millis(500)), if !announced => {
                for child in children.iter_mut().filter(|c| !c.ready) {
                    let url = format!("http://{}:{}/ready", plan.host, child.port);
                    if client.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                        child.ready = true;
                        note(&format!(
                            "{} is ready ({:.1} s)",
                            child.spec.name,
                            started.elapsed().as_secs_f64()
                        ));
                    }
                }
                if children.iter().all(|c| c.ready) {
                    announced = true;
                    print_urls(plan);
                } else if Instant::now() > deadline {
                    let index = children.iter().position(|c| !c.ready).unwrap_or_default();
                    return Ending::NotReady(index);
                }
            }
        }
    }
}

fn print_urls(plan: &Plan) {
    let url = |index: usize| format!("http://{}:{}", plan.host, plan.ports[index]);
    let (synthesizer, classifier, scheduler) = (url(0), url(1), url(2));
    let token = plan.admin_token_file.as_ref().map_or_else(
        || "$ADMIN_TOKEN".to_owned(),
        |file| {
            let shown = file.strip_prefix(&plan.cwd).unwrap_or(file);
            format!("$(cat {})", shown.display())
        },
    );
    let mut lines = vec![
        "the platform is up (Ctrl-C stops it; the data stays in .churn, --fresh starts over)"
            .to_owned(),
        format!(
            "  predict      curl -s {classifier}/predict -H 'content-type: application/json' -d @example.json"
        ),
        format!("  console      {scheduler}/ (the admin token for its actions: {token})"),
        format!("  mlflow       MLFLOW_TRACKING_URI={scheduler} MLFLOW_TRACKING_TOKEN={token}"),
        format!("  classifier   {classifier}/docs/"),
        format!("  synthesizer  {synthesizer}/docs/"),
        format!("  scheduler    {scheduler}/docs/"),
        format!("  jobs         {scheduler}/jobs (mutating routes: Authorization: Bearer {token})"),
    ];
    if plan.dbt_docs {
        lines.push(format!(
            "  dbt docs     {scheduler}/dbt/docs/static_index.html (after the first dbt run)"
        ));
    }
    lines.push(format!("  database     {}", plan.database));
    lines.push(format!("  objects      {}", plan.objects));
    lines.push(format!(
        "  logs         {}/<service>.log",
        plan.state.join("log").display()
    ));
    lines.push(format!(
        "  churnctl     DATABASE_URL={} OBJECT_STORE_URL={} ADMIN_TOKEN={token} churnctl jobs list",
        plan.database, plan.objects
    ));
    let mut out = std::io::stdout().lock();
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
}

/// SIGTERM to every service still running, up to [`STOP_GRACE`] for them to exit, then SIGKILL.
async fn shutdown(
    children: &mut [Child],
    exited: &mut mpsc::UnboundedReceiver<(usize, std::io::Result<ExitStatus>)>,
) {
    if children.iter().all(|c| !c.alive) {
        return;
    }
    note(&format!(
        "stopping the services (SIGTERM, then SIGKILL after {} s)",
        STOP_GRACE.as_secs()
    ));
    for child in children.iter() {
        child.signal(Signal::SIGTERM);
    }
    reap(children, exited, STOP_GRACE).await;
    for child in children.iter().filter(|c| c.alive) {
        note(&format!(
            "{} still runs {} s after SIGTERM: killing it",
            child.spec.name,
            STOP_GRACE.as_secs()
        ));
        child.signal(Signal::SIGKILL);
    }
    reap(children, exited, Duration::from_secs(5)).await;
}

/// Records the services' exits for up to `within`.
async fn reap(
    children: &mut [Child],
    exited: &mut mpsc::UnboundedReceiver<(usize, std::io::Result<ExitStatus>)>,
    within: Duration,
) {
    let deadline = tokio::time::Instant::now() + within;
    while children.iter().any(|c| c.alive) {
        match tokio::time::timeout_at(deadline, exited.recv()).await {
            Ok(Some((index, status))) => {
                children[index].alive = false;
                let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                note(&format!("{} stopped ({status})", children[index].spec.name));
            }
            Ok(None) | Err(_) => return,
        }
    }
}

/// Copies a service's output line by line to stdout with its prefix, to its log file, and to its tail.
async fn forward(
    stream: impl AsyncRead + Unpin,
    prefix: String,
    tail: Tail,
    file: Arc<Mutex<std::fs::File>>,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{prefix}{line}");
        }
        let plain = strip_ansi(&line);
        if let Ok(mut file) = file.lock() {
            let _ = writeln!(file, "{plain}");
        }
        let mut tail = tail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(plain);
    }
}

/// The line without ANSI colour sequences (`ESC [ … letter`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_sequences_are_stripped_from_log_lines() {
        assert_eq!(
            strip_ansi("\x1b[2m2026-01-01\x1b[0m \x1b[32m INFO\x1b[0m ready"),
            "2026-01-01  INFO ready"
        );
        assert_eq!(strip_ansi("plain"), "plain");
    }
}

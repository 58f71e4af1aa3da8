//! `churnctl up`: the whole platform on this machine without Docker. A database (DATABASE_URL when it
//! answers, else an embedded PostgreSQL under `./.churn/pg`), an object store, the seed data, a
//! synthesizer and a first champion, then the three services as child processes wired as
//! docker-compose.yml wires them, their logs followed, until Ctrl-C or SIGTERM.

mod dbt;
mod models;
mod objects;
mod postgres;
mod supervise;

use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use churn_config::{DatabaseUrl, Env};
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};

use crate::registry_args::RegistryArgs;
use postgres::EmbeddedPg;

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
        Some(Ok(plan)) => supervise::supervise(&plan, &mut stop, args.ready_timeout_secs).await,
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
    EmbeddedPg::stop_left_running(state).await;
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

    let database = postgres::database(state, embedded).await?;
    let objects = objects::object_store(&env, state)?;
    note(&format!("object store: {objects}"));
    let seed = objects::seed_data(state).await?;
    note(&format!("seed data: {}", seed.display()));

    let registry = RegistryArgs {
        database_url: Some(database.expose().to_owned()),
        object_store_url: Some(objects.clone()),
    }
    .open()
    .await
    .context("migrating the database and opening the registry")?;
    note("database migrated");
    let checkout = dbt::find_checkout(args.checkout.as_deref(), cwd);
    let dbt = dbt::dbt_vars(&env, checkout.as_deref(), state).await;
    models::ensure_models(
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

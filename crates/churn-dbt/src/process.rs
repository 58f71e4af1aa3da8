//! Running one dbt command as a subprocess: its environment (the database's libpq variables, a unique
//! application name, session options, no usage tracking), its logs (dbt's JSON log lines become
//! `tracing` events, the last ones are kept for error messages), a timeout and cancellation. Stopping dbt
//! sends SIGTERM to its process group, waits the grace period, then sends SIGKILL, and finally
//! terminates any query the stopped dbt left running on the server.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use sqlx::Connection;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::connection::ConnectionEnv;
use crate::params::ValidDbtParams;
use crate::results::DbtCommand;

/// How many of dbt's last log lines an error message quotes.
const TAIL_LINES: usize = 40;

/// A dbt process that ran to its end (whatever its exit code).
#[derive(Debug)]
pub(crate) struct Finished {
    pub exit_code: Option<i32>,
    pub tail: String,
}

/// The last lines dbt wrote, shared by the stdout and stderr readers.
#[derive(Debug, Clone, Default)]
struct Tail(Arc<Mutex<VecDeque<String>>>);

impl Tail {
    fn push(&self, line: String) {
        if let Ok(mut lines) = self.0.lock() {
            if lines.len() == TAIL_LINES {
                lines.pop_front();
            }
            lines.push_back(line);
        }
    }

    fn text(&self) -> String {
        self.0
            .lock()
            .map(|lines| lines.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }
}

/// Runs `dbt <command> <extra>` to its end, or stops it on timeout or cancellation.
pub(crate) async fn run(
    params: &ValidDbtParams,
    connection: &ConnectionEnv,
    command: DbtCommand,
    extra: &[String],
    cancel: &CancellationToken,
) -> Result<Finished, Error> {
    if cancel.is_cancelled() {
        return Err(Error::Cancelled {
            command,
            tail: "(not started)".to_owned(),
        });
    }
    let target = params.target_dir();
    let logs = params.log_dir();
    for dir in [target, logs.as_path()] {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    // A previous run's artifacts must never pass for this one's.
    for artifact in ["run_results.json", "sources.json"] {
        remove_if_present(&target.join(artifact))?;
    }

    let application_name = format!("churn-dbt-{}", uuid::Uuid::new_v4().simple());
    let mut cmd = Command::new(params.executable());
    cmd.args(command.args())
        .arg("--project-dir")
        .arg(params.project_dir())
        .arg("--profiles-dir")
        .arg(params.profiles_dir())
        .arg("--target-path")
        .arg(target)
        .arg("--log-path")
        .arg(&logs)
        .args(["--log-format", "json", "--threads"])
        .arg(params.threads().to_string());
    if !params.vars().is_empty() {
        cmd.arg("--vars")
            .arg(serde_json::Value::Object(params.vars().clone()).to_string());
    }
    cmd.args(extra)
        .current_dir(params.project_dir())
        // libpq variables the URL does not set must not leak in from the scheduler's environment
        .env_remove("PGPASSWORD")
        .env_remove("PGHOSTADDR")
        .env_remove("PGSERVICE")
        .envs(connection.vars())
        .env("PGAPPNAME", &application_name)
        .env("PGOPTIONS", params.session_options())
        .env("DO_NOT_TRACK", "1")
        .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // its own process group, so stopping it reaches anything it started
        .process_group(0)
        .kill_on_drop(true);

    tracing::info!(
        command = %command,
        project = %params.project_dir().display(),
        database = connection.database(),
        host = connection.host(),
        "starting dbt"
    );
    let mut child = cmd.spawn().map_err(|source| Error::Spawn {
        executable: params.executable().to_path_buf(),
        source,
    })?;
    let pgid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);

    let tail = Tail::default();
    let readers = [
        child
            .stdout
            .take()
            .map(|out| tokio::spawn(read_lines(out, command, tail.clone(), true))),
        child
            .stderr
            .take()
            .map(|err| tokio::spawn(read_lines(err, command, tail.clone(), false))),
    ];

    enum Stop {
        Timeout,
        Cancel,
    }
    let stop = tokio::select! {
        status = child.wait() => {
            let status = status.map_err(|source| Error::Io { path: params.executable().to_path_buf(), source })?;
            for reader in readers.into_iter().flatten() {
                let _ = reader.await;
            }
            return Ok(Finished { exit_code: status.code(), tail: tail.text() });
        }
        () = tokio::time::sleep(params.timeout()) => Stop::Timeout,
        () = cancel.cancelled() => Stop::Cancel,
    };

    terminate(&mut child, pgid, params.kill_grace(), command).await;
    for reader in readers.into_iter().flatten() {
        let _ = reader.await;
    }
    cancel_leftover_queries(connection, &application_name).await;
    Err(match stop {
        Stop::Timeout => Error::TimedOut {
            command,
            timeout: params.timeout(),
            tail: tail.text(),
        },
        Stop::Cancel => Error::Cancelled {
            command,
            tail: tail.text(),
        },
    })
}

/// SIGTERM to the process group, up to `grace` for it to exit, then SIGKILL.
async fn terminate(child: &mut Child, pgid: Option<Pid>, grace: Duration, command: DbtCommand) {
    let Some(pgid) = pgid else {
        let _ = child.kill().await;
        return;
    };
    tracing::warn!(command = %command, "stopping dbt: SIGTERM");
    let _ = killpg(pgid, Signal::SIGTERM);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        tracing::warn!(command = %command, grace_secs = grace.as_secs_f64(), "dbt ignored SIGTERM: SIGKILL");
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = child.wait().await;
    }
    // anything dbt started that outlived it
    let _ = killpg(pgid, Signal::SIGKILL);
}

/// A killed dbt cannot cancel its own queries: end them on the server, found by application name.
async fn cancel_leftover_queries(connection: &ConnectionEnv, application_name: &str) {
    let ended = async {
        let mut conn = sqlx::PgConnection::connect(connection.url()).await?;
        let n = churn_store::dbt_results::terminate_sessions(&mut conn, application_name).await?;
        let _ = conn.close().await;
        Ok::<i64, churn_store::Error>(n)
    }
    .await;
    match ended {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            sessions = n,
            "terminated the stopped dbt's database sessions"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "could not check for the stopped dbt's database sessions")
        }
    }
}

/// Logs each line through `tracing` and keeps it in the tail. dbt's stdout is JSON (`--log-format json`):
/// its level and message are used; anything else (stderr, a Python traceback) is logged as is.
async fn read_lines(
    stream: impl AsyncRead + Unpin,
    command: DbtCommand,
    tail: Tail,
    is_stdout: bool,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let parsed = is_stdout
            .then(|| serde_json::from_str::<serde_json::Value>(&line).ok())
            .flatten();
        let (level, msg) = match &parsed {
            Some(event) => (
                event["info"]["level"].as_str().unwrap_or("info").to_owned(),
                event["info"]["msg"].as_str().unwrap_or_default().to_owned(),
            ),
            None => ((if is_stdout { "info" } else { "warn" }).to_owned(), line),
        };
        let msg = msg.trim_end().to_owned();
        if msg.is_empty() {
            continue;
        }
        match level.as_str() {
            "error" => tracing::error!(target: "churn_dbt::dbt", command = %command, "{msg}"),
            "warn" => tracing::warn!(target: "churn_dbt::dbt", command = %command, "{msg}"),
            "debug" => {
                tracing::trace!(target: "churn_dbt::dbt", command = %command, "{msg}");
                continue;
            }
            _ => tracing::debug!(target: "churn_dbt::dbt", command = %command, "{msg}"),
        }
        tail.push(msg);
    }
}

fn remove_if_present(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

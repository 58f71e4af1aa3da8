//! The three services as child processes: started in order, their output prefixed, logged and tailed,
//! /ready awaited, then followed until a signal or an exit, and stopped with SIGTERM, then SIGKILL.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use super::{Plan, SERVICES, STATE_DIR, STOP_GRACE, Spec, StopSignals, TAIL_LINES, note};

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
pub(super) async fn supervise(
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

//! `churnctl up` end to end: the real binaries as child processes in a fresh folder, with DATABASE_URL at a
//! closed port (so an embedded PostgreSQL), until a prediction is served and customers are written; then
//! SIGTERM stops every child and the database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use churn_testkit::free_port;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Start-up includes initdb, fitting the synthesizer and a 5 s search for the first champion.
const STARTUP: Duration = Duration::from_secs(150);
const STOP: Duration = Duration::from_secs(20);
const SERVICES: [&str; 3] = ["synthesizer", "classifier", "scheduler"];

/// The processes whose parent is `parent`, with their command names.
fn children_of(parent: u32) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …: comm may hold spaces, so split after its closing parenthesis.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let ppid = stat[close + 1..].split_whitespace().nth(1);
        if ppid.and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
            found.push((pid, stat[open + 1..close].to_owned()));
        }
    }
    found
}

/// Gone: no such process, or a zombie waiting for its parent.
fn gone(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rfind(')')
            .and_then(|close| stat[close + 1..].split_whitespace().next())
            == Some("Z")
    })
}

/// postmaster.pid: the server's pid on the first line, its port on the fourth.
fn postmaster(data: &Path) -> Option<(i32, u16)> {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    Some((
        lines.first()?.trim().parse().ok()?,
        lines.get(3)?.trim().parse().ok()?,
    ))
}

/// `churnctl up` as a child that is stopped (SIGTERM, then SIGKILL) when the test fails before it does:
/// otherwise a failed run would leave the services and the embedded PostgreSQL running.
struct Up(std::process::Child);

impl Drop for Up {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = kill(Pid::from_raw(self.0.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + STOP;
        while Instant::now() < deadline {
            if self.0.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn output(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn up_without_a_database_serves_predictions_writes_customers_and_stops_every_child_on_sigterm()
 {
    let churnctl = PathBuf::from(env!("CARGO_BIN_EXE_churnctl"));
    for service in SERVICES {
        let binary = churnctl.with_file_name(service);
        assert!(
            binary.is_file(),
            "{} is missing: build the services first (cargo build -p synthesizer -p classifier -p \
             scheduler; scripts/test does)",
            binary.display()
        );
    }
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // As root the embedded PostgreSQL runs as `postgres`, which must be able to enter the folder.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = dir.path().join("up.log");
    let file = std::fs::File::create(&log).unwrap();
    let [synthesizer, classifier, scheduler] = [free_port(), free_port(), free_port()];
    let mut command = Command::new(&churnctl);
    command
        .args(["up", "--train-budget-secs", "5", "--checkout"])
        .arg(checkout)
        .current_dir(dir.path())
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/churn")
        .env("CHURN_SEED_DATA", churn_testkit::seed_data_path())
        .env("SYNTHESIZER_PORT", synthesizer.to_string())
        .env("CLASSIFIER_PORT", classifier.to_string())
        .env("SCHEDULER_PORT", scheduler.to_string())
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    for name in [
        "OBJECT_STORE_URL",
        "SYNTHESIZER_URL",
        "CLASSIFIER_URL",
        "SCHEDULER_URL",
        "ADMIN_TOKEN",
        "PREDICT_API_KEY",
        "BIND_ADDRESS",
    ] {
        command.env_remove(name);
    }
    // scripts/test provides a dbt; without one the job is off (a pip install is no business of a test).
    match std::env::var("CHURN_DBT") {
        Ok(dbt) => command.env("DBT_EXECUTABLE", dbt),
        Err(_) => command.env("DBT_ENABLED", "false"),
    };
    let started = Instant::now();
    let mut up = Up(command.spawn().unwrap());
    let up = &mut up.0;

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let customer = serde_json::to_value(churn_core::Customer::example()).unwrap();
    let prediction: serde_json::Value = loop {
        if let Some(status) = up.try_wait().unwrap() {
            panic!("churnctl up exited with {status}:\n{}", output(&log));
        }
        let answer = client
            .post(format!("http://127.0.0.1:{classifier}/predict"))
            .json(&customer)
            .send()
            .await;
        if let Ok(answer) = answer
            && answer.status() == 200
        {
            break answer.json().await.unwrap();
        }
        assert!(
            started.elapsed() < STARTUP,
            "no prediction within {} s:\n{}",
            STARTUP.as_secs(),
            output(&log)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let to_prediction = started.elapsed();
    let probability = prediction["churn_probability"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&probability), "{prediction}");

    let data = dir.path().join(".churn/pg");
    let (postmaster_pid, port) =
        postmaster(&data).expect("an embedded PostgreSQL runs in .churn/pg");
    let pool = churn_store::connect(&format!("postgres://postgres@127.0.0.1:{port}/churn"), 1)
        .await
        .unwrap();
    let customers = loop {
        let count: i64 = sqlx::query_scalar("select count(*) from churn.customers")
            .fetch_one(&pool)
            .await
            .unwrap();
        if count > 0 {
            break count;
        }
        assert!(
            started.elapsed() < STARTUP + Duration::from_secs(30),
            "no customers written:\n{}",
            output(&log)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    pool.close().await;

    let children = children_of(up.id());
    for service in SERVICES {
        assert!(
            children.iter().any(|(_, name)| name == service),
            "{service} is not a child of churnctl up: {children:?}"
        );
    }
    // The URLs come once all three answer /ready, which may be a poll after the first prediction.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !output(&log).contains("the platform is up") {
        assert!(
            Instant::now() < deadline,
            "no URLs printed:\n{}",
            output(&log)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = output(&log);
    assert!(
        text.contains("[classifier] "),
        "no prefixed log lines:\n{text}"
    );
    assert!(
        text.contains(&format!("http://127.0.0.1:{classifier}/docs/")),
        "{text}"
    );

    let stopping = Instant::now();
    kill(
        Pid::from_raw(i32::try_from(up.id()).unwrap()),
        Signal::SIGTERM,
    )
    .unwrap();
    let status = loop {
        if let Some(status) = up.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopping.elapsed() < STOP,
            "churnctl up still runs {} s after SIGTERM:\n{}",
            STOP.as_secs(),
            output(&log)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let stopped = stopping.elapsed();
    assert!(status.success(), "exit status {status}:\n{}", output(&log));
    for (pid, name) in &children {
        assert!(
            gone(*pid),
            "{name} (pid {pid}) still runs after churnctl up exited"
        );
    }
    // pg_ctl stop -w returns once the server removed postmaster.pid, a moment before its process ends.
    assert!(
        !data.join("postmaster.pid").exists(),
        "the embedded PostgreSQL still runs"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone(postmaster_pid) {
        assert!(
            Instant::now() < deadline,
            "the embedded PostgreSQL (pid {postmaster_pid}) still runs 5 s after churnctl up exited"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "first prediction after {:.1} s, {customers} customers written after {:.1} s, stopped {:.1} s \
         after SIGTERM",
        to_prediction.as_secs_f64(),
        (stopping - started).as_secs_f64(),
        stopped.as_secs_f64()
    );
}

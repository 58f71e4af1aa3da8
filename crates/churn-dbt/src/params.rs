//! What a dbt run needs, checked once: [`DbtParams`] is built with defaults and setters, and
//! [`DbtParams::check`] turns it into [`ValidDbtParams`] or an error naming the parameter, its value and
//! the rule it breaks, so an invalid setting stops the scheduler at start-up instead of at 3 a.m.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::Error;

/// Longest run allowed for one dbt command.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Longest wait between SIGTERM and SIGKILL.
const MAX_KILL_GRACE: Duration = Duration::from_secs(300);
const MAX_THREADS: u32 = 64;

/// Settings for running dbt, before they are checked.
#[derive(Debug, Clone, PartialEq)]
pub struct DbtParams {
    project_dir: PathBuf,
    profiles_dir: Option<PathBuf>,
    executable: PathBuf,
    target_dir: Option<PathBuf>,
    threads: u32,
    timeout: Duration,
    kill_grace: Duration,
    vars: Map<String, Value>,
    session_options: String,
    generate_docs: bool,
}

impl DbtParams {
    /// Defaults: profiles in the project directory, `dbt` from `PATH`, output in `<project>/target`,
    /// 4 threads, a 30-minute timeout per command, 10 s between SIGTERM and SIGKILL, no extra vars,
    /// sessions without JIT (`PGOPTIONS=-c jit=off`: compiling dbt's large queries costs more than
    /// running them), and docs generated after each build.
    pub fn new(project_dir: impl Into<PathBuf>) -> Self {
        Self {
            project_dir: project_dir.into(),
            profiles_dir: None,
            executable: PathBuf::from("dbt"),
            target_dir: None,
            threads: 4,
            timeout: Duration::from_secs(30 * 60),
            kill_grace: Duration::from_secs(10),
            vars: Map::new(),
            session_options: "-c jit=off".to_owned(),
            generate_docs: true,
        }
    }

    /// The directory holding `profiles.yml` (default: the project directory).
    pub fn profiles_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.profiles_dir = Some(dir.into());
        self
    }

    /// The dbt executable: a path (e.g. a venv's `bin/dbt`) or a name looked up on `PATH`.
    pub fn executable(mut self, executable: impl Into<PathBuf>) -> Self {
        self.executable = executable.into();
        self
    }

    /// Where dbt writes its artifacts, logs and the docs site (default `<project>/target`).
    pub fn target_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.target_dir = Some(dir.into());
        self
    }

    /// dbt's `--threads`: 1 to 64.
    pub fn threads(mut self, threads: u32) -> Self {
        self.threads = threads;
        self
    }

    /// How long one dbt command may run before it is stopped (at most 24 h).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long dbt gets between SIGTERM and SIGKILL when it is stopped (at most 5 min).
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// One of the project's vars, passed as `--vars` (e.g. `prediction_lookback_hours`).
    pub fn var(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// libpq's `PGOPTIONS` for dbt's sessions, e.g. `-c jit=off -c work_mem=64MB`.
    pub fn session_options(mut self, options: impl Into<String>) -> Self {
        self.session_options = options.into();
        self
    }

    /// Whether [`crate::Dbt::run`] also runs `dbt docs generate` after the build.
    pub fn generate_docs(mut self, generate: bool) -> Self {
        self.generate_docs = generate;
        self
    }

    /// Checks every parameter; paths become absolute, and a bare executable name is resolved on `PATH`.
    pub fn check(self) -> Result<ValidDbtParams, Error> {
        let invalid = |name: &'static str, value: String, rule: &str| Error::InvalidParam {
            name,
            value,
            rule: rule.to_owned(),
        };
        let project_dir = absolute(&self.project_dir, "project_dir")?;
        if !project_dir.join("dbt_project.yml").is_file() {
            return Err(invalid(
                "project_dir",
                project_dir.display().to_string(),
                "must be a directory holding dbt_project.yml",
            ));
        }
        let profiles_dir = match &self.profiles_dir {
            Some(dir) => absolute(dir, "profiles_dir")?,
            None => project_dir.clone(),
        };
        if !profiles_dir.join("profiles.yml").is_file() {
            return Err(invalid(
                "profiles_dir",
                profiles_dir.display().to_string(),
                "must be a directory holding profiles.yml",
            ));
        }
        let executable = resolve_executable(&self.executable).ok_or_else(|| {
            invalid(
                "executable",
                self.executable.display().to_string(),
                "must be an executable file, or the name of one on PATH",
            )
        })?;
        let target_dir = match &self.target_dir {
            Some(dir) => absolute(dir, "target_dir")?,
            None => project_dir.join("target"),
        };
        if target_dir.exists() && !target_dir.is_dir() {
            return Err(invalid(
                "target_dir",
                target_dir.display().to_string(),
                "must be a directory (it is created when missing)",
            ));
        }
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return Err(invalid(
                "threads",
                self.threads.to_string(),
                &format!("must be between 1 and {MAX_THREADS}"),
            ));
        }
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return Err(invalid(
                "timeout",
                format!("{:?}", self.timeout),
                "must be more than 0 and at most 24 hours",
            ));
        }
        if self.kill_grace > MAX_KILL_GRACE {
            return Err(invalid(
                "kill_grace",
                format!("{:?}", self.kill_grace),
                "must be at most 5 minutes",
            ));
        }
        if let Some(name) = self.vars.keys().find(|k| k.trim().is_empty()) {
            return Err(invalid(
                "vars",
                format!("{name:?}"),
                "var names must not be blank",
            ));
        }
        if self.session_options.contains('\n') {
            return Err(invalid(
                "session_options",
                format!("{:?}", self.session_options),
                "must be one line of libpq options, e.g. -c jit=off",
            ));
        }
        Ok(ValidDbtParams {
            project_dir,
            profiles_dir,
            executable,
            target_dir,
            threads: self.threads,
            timeout: self.timeout,
            kill_grace: self.kill_grace,
            vars: self.vars,
            session_options: self.session_options,
            generate_docs: self.generate_docs,
        })
    }
}

/// Checked settings for running dbt; only [`DbtParams::check`] makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidDbtParams {
    project_dir: PathBuf,
    profiles_dir: PathBuf,
    executable: PathBuf,
    target_dir: PathBuf,
    threads: u32,
    timeout: Duration,
    kill_grace: Duration,
    vars: Map<String, Value>,
    session_options: String,
    generate_docs: bool,
}

impl ValidDbtParams {
    pub fn project_dir(&self) -> &Path {
        &self.project_dir
    }

    pub fn profiles_dir(&self) -> &Path {
        &self.profiles_dir
    }

    pub fn executable(&self) -> &Path {
        &self.executable
    }

    pub fn target_dir(&self) -> &Path {
        &self.target_dir
    }

    /// Where dbt writes its own log file (`dbt.log`).
    pub fn log_dir(&self) -> PathBuf {
        self.target_dir.join("logs")
    }

    /// The generated documentation site: `index.html` (with `manifest.json` and `catalog.json` beside
    /// it) and `static_index.html`, a single self-contained page.
    pub fn docs_dir(&self) -> &Path {
        &self.target_dir
    }

    pub fn threads(&self) -> u32 {
        self.threads
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn kill_grace(&self) -> Duration {
        self.kill_grace
    }

    pub fn vars(&self) -> &Map<String, Value> {
        &self.vars
    }

    pub fn session_options(&self) -> &str {
        &self.session_options
    }

    pub fn generate_docs(&self) -> bool {
        self.generate_docs
    }
}

fn absolute(path: &Path, name: &'static str) -> Result<PathBuf, Error> {
    std::path::absolute(path).map_err(|e| Error::InvalidParam {
        name,
        value: path.display().to_string(),
        rule: format!("must be a usable path ({e})"),
    })
}

/// A path with a separator must be an executable file; a bare name is looked up on `PATH`.
fn resolve_executable(executable: &Path) -> Option<PathBuf> {
    let is_executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if executable.components().count() > 1 || executable.is_absolute() {
        let path = std::path::absolute(executable).ok()?;
        return is_executable(&path).then_some(path);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(executable))
        .find(|candidate| is_executable(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../dbt")
    }

    fn with_sh(params: DbtParams) -> DbtParams {
        // any executable will do for checking parameters
        params.executable("/bin/sh")
    }

    #[test]
    fn the_repository_project_checks_with_defaults() {
        let valid = with_sh(DbtParams::new(project())).check().expect("valid");
        assert!(valid.project_dir().is_absolute());
        assert_eq!(valid.profiles_dir(), valid.project_dir());
        assert_eq!(valid.target_dir(), valid.project_dir().join("target"));
        assert_eq!(valid.threads(), 4);
        assert_eq!(valid.session_options(), "-c jit=off");
    }

    #[test]
    fn a_bare_executable_name_is_found_on_path() {
        let valid = DbtParams::new(project())
            .executable("sh")
            .check()
            .expect("sh is on PATH");
        assert!(valid.executable().is_absolute(), "{:?}", valid.executable());
    }

    #[test]
    fn each_invalid_parameter_is_named_with_its_value_and_rule() {
        let cases: Vec<(DbtParams, &str, &str)> = vec![
            (
                with_sh(DbtParams::new("/nonexistent/project")),
                "project_dir",
                "/nonexistent/project",
            ),
            (
                with_sh(DbtParams::new(project()).profiles_dir("/tmp")),
                "profiles_dir",
                "/tmp",
            ),
            (
                DbtParams::new(project()).executable("/nonexistent/bin/dbt"),
                "executable",
                "/nonexistent/bin/dbt",
            ),
            (
                DbtParams::new(project()).executable("no-such-dbt-on-path"),
                "executable",
                "no-such-dbt-on-path",
            ),
            (
                with_sh(DbtParams::new(project()).threads(0)),
                "threads",
                "0",
            ),
            (
                with_sh(DbtParams::new(project()).threads(65)),
                "threads",
                "65",
            ),
            (
                with_sh(DbtParams::new(project()).timeout(Duration::ZERO)),
                "timeout",
                "0ns",
            ),
            (
                with_sh(DbtParams::new(project()).kill_grace(Duration::from_secs(600))),
                "kill_grace",
                "600s",
            ),
            (
                with_sh(DbtParams::new(project()).target_dir(project().join("dbt_project.yml"))),
                "target_dir",
                "dbt_project.yml",
            ),
            (
                with_sh(DbtParams::new(project()).var(" ", 1)),
                "vars",
                "\" \"",
            ),
        ];
        for (params, name, value) in cases {
            let err = params.check().expect_err(name);
            let Error::InvalidParam {
                name: got,
                value: v,
                ..
            } = &err
            else {
                panic!("{err}")
            };
            assert_eq!(*got, name, "{err}");
            assert!(v.contains(value), "{err}");
            let text = err.to_string();
            assert!(text.contains(name) && text.contains("must"), "{text}");
        }
    }
}

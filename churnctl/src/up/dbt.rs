//! The dbt job's settings for `churnctl up`: the checkout's dbt project and the pinned venv's dbt, or
//! the job turned off with a note saying how to get it.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};
use churn_config::Env;
use tokio::process::Command;

use super::note;
use crate::progress::Progress;

/// The checkout with dbt/ and scripts/: `flag`, else the working directory or its nearest ancestor with a
/// dbt project, else the one this binary was built from (when it is still there).
pub(super) fn find_checkout(flag: Option<&Path>, cwd: &Path) -> Option<PathBuf> {
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
pub(super) async fn dbt_vars(
    env: &Env,
    checkout: Option<&Path>,
    state: &Path,
) -> Vec<(String, String)> {
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

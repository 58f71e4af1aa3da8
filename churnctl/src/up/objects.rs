//! Where `churnctl up` keeps objects and finds the seed data: OBJECT_STORE_URL or a folder under
//! `.churn`, and the seed file (downloaded when missing).

use std::path::{Path, PathBuf};

use anyhow::Context;
use churn_config::Env;

use super::note;
use crate::progress::Progress;

/// OBJECT_STORE_URL, else a `file://` store in `.churn/objects` (created).
pub(super) fn object_store(env: &Env, state: &Path) -> anyhow::Result<String> {
    Ok(match env.get("OBJECT_STORE_URL") {
        Some(url) => url,
        None => {
            let dir = state.join("objects");
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            format!("file://{}", dir.display())
        }
    })
}

/// CHURN_SEED_DATA, else shared/data/telco_customer_churn.csv in the working directory's nearest ancestor
/// that has it, else `.churn/telco_customer_churn.csv`; downloaded (SHA-256 checked) when missing.
pub(super) async fn seed_data(state: &Path) -> anyhow::Result<PathBuf> {
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

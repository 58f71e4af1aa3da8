//! Where the seed dataset (the IBM Telco CSV) is read from.

use std::path::{Path, PathBuf};

use crate::Env;

/// The variable naming the seed dataset.
pub const SEED_DATA_ENV: &str = "CHURN_SEED_DATA";

const SHARED_RELATIVE: &str = "shared/data/telco_customer_churn.csv";

/// `CHURN_SEED_DATA`, else `shared/data/telco_customer_churn.csv` in the nearest ancestor of the working
/// directory that has one (a checkout beside `shared/`, a test running in a crate folder), else
/// `../shared/data/telco_customer_churn.csv`, where a download would put it.
pub fn seed_data_path(env: &Env) -> PathBuf {
    if let Some(path) = env.get(SEED_DATA_ENV) {
        return PathBuf::from(path);
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    find_in_ancestors(&cwd).unwrap_or_else(|| PathBuf::from("..").join(SHARED_RELATIVE))
}

fn find_in_ancestors(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(SHARED_RELATIVE))
        .find(|candidate| candidate.is_file())
}

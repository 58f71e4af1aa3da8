//! The registry seen through MLflow's REST shapes: registered models, model versions, aliases,
//! experiments, runs, metric histories and the artifacts of `models:/NAME@ALIAS`, as MLflow's clients
//! send and parse them (`mlflow/protos/model_registry.proto`, `service.proto`, `mlflow_artifacts.proto`).
//! No HTTP here: the scheduler maps these to routes.
//!
//! Mapping choices:
//! - A version's `source` (and its download URI) is `mlflow-artifacts:/models/NAME/VERSION`, which
//!   MLflow's client resolves against its tracking URI: it lists and downloads that folder through
//!   `/api/2.0/mlflow-artifacts/artifacts`, where the folder holds `model.json` (the registered
//!   artifact, every one of this platform's is JSON) and `profile.json` (its drift reference, when it has
//!   one), each read from the object store and checked against its recorded SHA-256.
//! - An experiment is a distinct `registry.runs.experiment`; its id is a stable number derived from its
//!   name (MLflow ids are strings of digits).
//! - Run ids are our UUIDs (hyphenated); run status is upper-cased (`FINISHED`); a run's metrics are the
//!   value at its largest step per key, as MLflow's `get_run` returns them.
//! - Searches of runs, model versions and registered models filter, order and page in SQL (`sql`) and
//!   load only the page; experiments, few and with ids that are hashes of their names, in memory.

pub mod filter;

mod artifacts;
mod experiments;
mod models;
mod runs;
mod shapes;
mod sql;

use chrono::{DateTime, Utc};
use churn_core::VersionNumber;
use sha2::{Digest, Sha256};

use crate::Error;
use crate::mlflow::filter::{
    Filter, Order, SearchRequest, Searchable, max_results, page_offset, paginate,
};

pub use artifacts::{list_artifacts, read_artifact};
pub use experiments::{experiment, experiment_by_name, search_experiments};
pub use models::{
    delete_alias, get_model_version, get_registered_model, model_version_by_alias,
    model_version_download_uri, search_model_versions, search_registered_models, set_alias,
};
pub use runs::{get_run, metric_history, search_runs};
pub use shapes::{
    Experiment, FileInfo, Metric, ModelVersion, Param, RegisteredModel, RegisteredModelAlias, Run,
    RunData, RunInfo, RunInputs, Tag,
};

/// The file name of a version's artifact in its MLflow artifact folder.
pub const MODEL_FILE: &str = "model.json";
/// The file name of a version's training-data profile in its MLflow artifact folder.
pub const PROFILE_FILE: &str = "profile.json";

fn tag(key: &str, value: impl Into<String>) -> Tag {
    Tag {
        key: key.to_owned(),
        value: value.into(),
    }
}

/// A page of results and the token of the next page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

/// Whether `text` can be stored at all (PostgreSQL text holds no NUL): a name that cannot be stored
/// names nothing, and is answered as missing rather than sent to the database.
fn storable(text: &str) -> bool {
    !text.contains('\0')
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A version's MLflow artifact folder (relative to the artifact root).
pub fn artifact_folder(name: &str, version: VersionNumber) -> String {
    format!("models/{name}/{version}")
}

/// What `model-versions/get-download-uri` answers, and a version's `source`.
pub fn download_uri(name: &str, version: VersionNumber) -> String {
    format!("mlflow-artifacts:/{}", artifact_folder(name, version))
}

/// The stable MLflow id of an experiment: 15 decimal digits derived from its name.
pub fn experiment_id(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    format!("{}", u64::from_be_bytes(first) % 1_000_000_000_000_000)
}

/// A version number as MLflow sends it ("3"): digits that name no version (0) are a missing version,
/// anything else an invalid parameter.
fn parse_version(name: &str, version: &str) -> Result<VersionNumber, Error> {
    let digits = version.strip_suffix('\n').unwrap_or(version);
    match digits.parse::<i32>() {
        Ok(0) if digits.bytes().all(|b| b.is_ascii_digit()) => Err(Error::VersionNotFound {
            name: name.to_owned(),
            version: 0,
        }),
        Ok(n)
            if digits.bytes().all(|b| b.is_ascii_digit())
                && let Ok(v) = VersionNumber::new(n) =>
        {
            Ok(v)
        }
        _ => Err(Error::InvalidParameter {
            value: version.to_owned(),
            reason: format!("a version of {name} is a positive integer, e.g. \"3\""),
        }),
    }
}

/// A search request parsed in its endpoint's languages: what to keep, in which order, which page.
#[derive(Debug)]
struct Search {
    filter: Filter,
    order: Order,
    limit: usize,
    offset: usize,
}

impl Search {
    /// Parses `request` with an endpoint's `(filter, order)` patterns and `(default, max)` page sizes.
    fn parse(
        request: &SearchRequest,
        patterns: (&'static str, &'static str),
        limits: (i64, i64),
    ) -> Result<Search, Error> {
        Ok(Search {
            filter: Filter::parse(patterns.0, request.filter.as_deref())?,
            order: Order::parse(patterns.1, &request.order_by)?,
            limit: max_results(request.max_results, limits.0, limits.1)?,
            offset: page_offset(request.page_token.as_deref())?,
        })
    }
}

/// Filters, orders (the default when the caller gave none) and pages `items` in memory (experiments:
/// their ids are hashes of their names, which SQL would have to recompute to filter or order by them).
fn search<T: Searchable>(
    mut items: Vec<T>,
    request: &SearchRequest,
    patterns: (&'static str, &'static str),
    default_order: impl Fn(&T, &T) -> std::cmp::Ordering,
    limits: (i64, i64),
) -> Result<Page<T>, Error> {
    let search = Search::parse(request, patterns, limits)?;
    items.retain(|item| search.filter.accepts(item));
    items.sort_by(|a, b| search.order.compare(a, b).then_with(|| default_order(a, b)));
    let (items, next_page_token) = paginate(items, search.offset, search.limit);
    Ok(Page {
        items,
        next_page_token,
    })
}

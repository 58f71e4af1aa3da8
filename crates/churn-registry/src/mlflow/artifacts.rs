//! The `mlflow-artifacts` folders of versions and runs: listing them, and reading files checked by SHA-256.

use churn_core::VersionNumber;
use uuid::Uuid;

use super::shapes::FileInfo;
use super::{MODEL_FILE, PROFILE_FILE, storable};
use crate::{Error, Registry};

/// Where an artifact path points: a version's folder, one of its files, or a run's (empty) folder.
enum ArtifactPath {
    Folder(String, VersionNumber),
    File(String, VersionNumber, &'static str),
    Run(Uuid),
}

fn artifact_path(path: &str) -> Option<ArtifactPath> {
    if !storable(path) {
        return None;
    }
    let path = path.trim_matches('/');
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["models", name, version] => Some(ArtifactPath::Folder(
            (*name).to_owned(),
            version.parse().ok()?,
        )),
        ["models", name, version, file] => {
            let file = [MODEL_FILE, PROFILE_FILE].into_iter().find(|f| f == file)?;
            Some(ArtifactPath::File(
                (*name).to_owned(),
                version.parse().ok()?,
                file,
            ))
        }
        ["runs", id] => Uuid::parse_str(id).ok().map(ArtifactPath::Run),
        _ => None,
    }
}

fn no_artifact(path: &str) -> Error {
    Error::ArtifactNotFound {
        path: path.to_owned(),
    }
}

/// `mlflow-artifacts/artifacts?path=…`: the files of a version's folder (a file's path lists nothing,
/// as MLflow's server answers).
pub async fn list_artifacts(registry: &Registry, path: &str) -> Result<Vec<FileInfo>, Error> {
    match artifact_path(path).ok_or_else(|| no_artifact(path))? {
        ArtifactPath::Folder(name, version) => {
            let v = registry.get(&name, version).await.map_err(|e| match e {
                Error::VersionNotFound { .. } => no_artifact(path),
                e => e,
            })?;
            let mut files = vec![FileInfo {
                path: MODEL_FILE.to_owned(),
                is_dir: false,
                file_size: Some(v.artifact_size),
            }];
            if v.profile_key.is_some() {
                // The profile's size is not recorded; MLflow's client needs it only for ranged
                // downloads, which this server does not offer.
                files.push(FileInfo {
                    path: PROFILE_FILE.to_owned(),
                    is_dir: false,
                    file_size: None,
                });
            }
            Ok(files)
        }
        ArtifactPath::File(name, version, _) => {
            registry
                .get(&name, version)
                .await
                .map_err(|_| no_artifact(path))?;
            Ok(Vec::new())
        }
        ArtifactPath::Run(id) => {
            registry
                .get_run(id.into())
                .await
                .map_err(|_| no_artifact(path))?;
            Ok(Vec::new())
        }
    }
}

/// `mlflow-artifacts/artifacts/{path}`: a file's bytes, read from the object store and checked against
/// the SHA-256 recorded at registration ([`Error::ChecksumMismatch`] otherwise: nothing is sent).
pub async fn read_artifact(registry: &Registry, path: &str) -> Result<Vec<u8>, Error> {
    let Some(ArtifactPath::File(name, version, file)) = artifact_path(path) else {
        return Err(no_artifact(path));
    };
    let v = registry.get(&name, version).await.map_err(|e| match e {
        Error::VersionNotFound { .. } => no_artifact(path),
        e => e,
    })?;
    if file == MODEL_FILE {
        registry.load_artifact(&v).await
    } else {
        registry
            .load_profile(&v)
            .await?
            .ok_or_else(|| no_artifact(path))
    }
}

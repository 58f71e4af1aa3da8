//! Versioned JSON artifacts: the schema version is read before anything else, so an artifact of another
//! layout is refused with a message saying so rather than with a confusing parse error.

use serde::de::DeserializeOwned;

/// Why an artifact could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactError {
    /// Not JSON, or not the expected shape.
    #[error("the artifact is invalid: {0}")]
    Invalid(String),
    /// Written by a different layout version.
    #[error(
        "the artifact has schema version {found}, this build reads version {expected}; fit or train it again with this version"
    )]
    SchemaVersion { found: u32, expected: u32 },
}

/// Parses a JSON artifact whose top-level `schema_version` must equal `expected`.
pub fn from_json<T: DeserializeOwned>(bytes: &[u8], expected: u32) -> Result<T, ArtifactError> {
    #[derive(serde::Deserialize)]
    struct Header {
        schema_version: u32,
    }
    let header: Header =
        serde_json::from_slice(bytes).map_err(|e| ArtifactError::Invalid(e.to_string()))?;
    if header.schema_version != expected {
        return Err(ArtifactError::SchemaVersion {
            found: header.schema_version,
            expected,
        });
    }
    serde_json::from_slice(bytes).map_err(|e| ArtifactError::Invalid(e.to_string()))
}

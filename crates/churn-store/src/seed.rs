//! The seed dataset: its pinned public URL and SHA-256, and a verified, atomic download.

use std::io::Write;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::Error;

/// The IBM Telco churn file, pinned to the commit that last changed it (the reference project's).
pub const SEED_URL: &str = "https://raw.githubusercontent.com/raashidsalih/churn-pipeline/64159f28abf8d1658f7407ef692537e3a5ce2903/source_data/Telco_customer_churn.csv";
/// A download larger than this is refused: the seed is about 1 MB, so anything far bigger is not it.
pub const MAX_DOWNLOAD_BYTES: u64 = 64 * 1024 * 1024;
/// How long connecting, and the whole download, may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const DOWNLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);
/// SHA-256 of the file at [`SEED_URL`].
pub const SEED_SHA256: &str = "18801d92fd128bd6374ba19a2e64304f2a42dbc1507e3b8de906226e2cb2b6ff";

/// Hex SHA-256 of a file's bytes.
pub fn sha256_file(path: &Path) -> Result<String, Error> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Downloads `url` to `dest`, verifying its SHA-256 against `expected_sha256`.
///
/// The body streams to a temporary file beside `dest` and is renamed into place only when the checksum
/// matches, so `dest` never holds a partial or wrong file. `progress(bytes_so_far, total)` is called as
/// chunks arrive.
pub async fn download_verified(
    url: &str,
    expected_sha256: &str,
    dest: &Path,
    mut progress: impl FnMut(u64, Option<u64>),
) -> Result<(), Error> {
    let fail = |reason: String| Error::Download {
        url: url.to_owned(),
        reason,
    };
    let io = |source| Error::Io {
        path: dest.display().to_string(),
        source,
    };
    let expected = expected_sha256.trim().to_ascii_lowercase();
    if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(fail(format!(
            "expected SHA-256 {expected_sha256:?} is not 64 hexadecimal digits"
        )));
    }

    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(DOWNLOAD_TIMEOUT)
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?
        .error_for_status()
        .map_err(|e| fail(e.to_string()))?;
    let total = response.content_length();
    if total.is_some_and(|t| t > MAX_DOWNLOAD_BYTES) {
        return Err(fail(format!(
            "the server announces {} bytes; at most {MAX_DOWNLOAD_BYTES} are accepted",
            total.unwrap_or_default()
        )));
    }

    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| fail(e.to_string()))?;
        hasher.update(&chunk);
        tmp.write_all(&chunk).map_err(io)?;
        received += chunk.len() as u64;
        if received > MAX_DOWNLOAD_BYTES {
            return Err(fail(format!(
                "the body exceeds {MAX_DOWNLOAD_BYTES} bytes; the download was stopped"
            )));
        }
        progress(received, total);
    }
    let actual = hex::encode(hasher.finalize());
    if actual != expected {
        return Err(Error::ChecksumMismatch {
            url: url.to_owned(),
            expected,
            actual,
        });
    }
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(dest).map_err(|e| io(e.error))?;
    Ok(())
}

/// Makes sure the seed file is at `path` with the pinned checksum, downloading it when it is missing.
///
/// A file that is present but does not match is an error, not silently replaced: it may be a user's
/// own data under the wrong name.
pub async fn ensure_seed(path: &Path) -> Result<(), Error> {
    if path.exists() {
        let actual = sha256_file(path)?;
        if actual != SEED_SHA256 {
            return Err(Error::ChecksumMismatch {
                url: path.display().to_string(),
                expected: SEED_SHA256.to_owned(),
                actual,
            });
        }
        return Ok(());
    }
    tracing::info!(url = SEED_URL, path = %path.display(), "downloading the seed dataset");
    download_verified(SEED_URL, SEED_SHA256, path, |_, _| {}).await
}

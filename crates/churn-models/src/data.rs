//! Reading labelled customer files for training: one pass over the bytes gives the rows and their SHA-256.

use std::cell::RefCell;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use churn_core::{Customer, CustomerReader};
use sha2::{Digest, Sha256};

use crate::Error;

/// Feeds every byte read through a shared hasher.
struct HashingReader<R> {
    inner: R,
    hasher: Rc<RefCell<Sha256>>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.borrow_mut().update(&buf[..n]);
        Ok(n)
    }
}

/// Every customer of a CSV and the hex SHA-256 of the file's bytes, from one read of the file.
pub fn read_customers_hashed(path: &Path) -> Result<(Vec<Customer>, String), Error> {
    let open = |source| churn_core::Error::Open {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(open)?;
    let hasher = Rc::new(RefCell::new(Sha256::new()));
    let reader = HashingReader {
        inner: std::io::BufReader::new(file),
        hasher: hasher.clone(),
    };
    let mut rows = CustomerReader::new(reader)?;
    let mut customers = Vec::new();
    for row in &mut rows {
        customers.push(row?.customer);
    }
    if customers.is_empty() {
        return Err(churn_core::Error::NoRows.into());
    }
    // The CSV reader stops at the end of the input, but drain whatever it may have left so the hash is
    // the whole file's.
    let mut rest = rows.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(open)?;
    let digest = hasher.borrow_mut().finalize_reset();
    Ok((customers, hex::encode(digest)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_read_along_equals_the_files_hash_and_every_row_is_read() {
        let path = churn_config::seed_data_path(&churn_config::Env::Process);
        let (customers, sha) = read_customers_hashed(&path).unwrap();
        assert_eq!(
            customers.len(),
            churn_core::read_customers(&path).unwrap().len()
        );
        assert_eq!(sha, churn_store::seed::sha256_file(&path).unwrap());
    }
}

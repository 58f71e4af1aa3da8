//! The ingestion of one landed file, and of every file waiting under `landing/`.

use std::sync::Arc;

use churn_store::ingestion::{self, FileStatus, IngestedFile};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::mpsc;

use crate::limits::ReadLimits;
use crate::read::{self, Parsed};
use crate::state;
use crate::workers::WorkerPool;
use crate::{Error, FAILED, LANDING, PROCESSED, QUARANTINE, name_under, quarantine};

/// How files are read and written.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Rows per statement batch (a savepoint inside the file's one transaction).
    pub batch_rows: usize,
    /// What a file may cost to read.
    pub limits: ReadLimits,
}

impl Default for IngestOptions {
    fn default() -> Self {
        // Large enough that per-statement costs vanish, small enough that a batch in flight is a few MB.
        Self {
            batch_rows: 10_000,
            limits: ReadLimits::default(),
        }
    }
}

/// What became of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Ingested now.
    Processed,
    /// These bytes were ingested before under this key (a repeated event): nothing changed.
    AlreadyProcessed,
    /// The same bytes were ingested before under another key: nothing changed.
    Duplicate { of: String },
    /// The file cannot be ingested; it is under `failed/` beside a reason file.
    Failed { reason: String },
}

/// A file's summary, as `churnctl ingest` prints it and `POST /ingest` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub object_key: String,
    pub sha256: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Where the object is now.
    pub moved_to: Option<String>,
    /// The quarantine file, when rows were rejected.
    pub quarantine_key: Option<String>,
    /// Data rows read (the header not counted).
    pub rows_in: i64,
    pub rows_accepted: i64,
    pub rows_inserted: i64,
    pub rows_updated: i64,
    pub rows_rejected: i64,
    /// Rejected rows per `field: rule`, most frequent first.
    pub rejected_by_reason: Vec<(String, i64)>,
}

/// Ingests landed files into the warehouse. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Ingestor {
    pool: PgPool,
    store: Arc<dyn ObjectStore>,
    options: IngestOptions,
    workers: WorkerPool,
}

impl Ingestor {
    pub fn new(pool: PgPool, store: Arc<dyn ObjectStore>, options: IngestOptions) -> Self {
        Self {
            pool,
            store,
            options,
            workers: WorkerPool::default(),
        }
    }

    /// The same ingestor reading files on `workers` (shared with the scorer and the webhook).
    #[must_use]
    pub fn with_workers(mut self, workers: WorkerPool) -> Self {
        self.workers = workers;
        self
    }

    /// The workers this ingestor reads files on.
    pub fn workers(&self) -> &WorkerPool {
        &self.workers
    }

    /// The bounds this ingestor reads files within.
    pub fn limits(&self) -> ReadLimits {
        self.options.limits
    }

    /// Ingests every file under `landing/`, one after the other; a file's error does not stop the others.
    pub async fn poll(&self) -> Result<Vec<(String, Result<Summary, Error>)>, Error> {
        let mut keys: Vec<String> = Vec::new();
        let mut listing = self.store.list(Some(&Path::from(LANDING)));
        while let Some(meta) = futures::TryStreamExt::try_next(&mut listing).await? {
            keys.push(meta.location.to_string());
        }
        keys.sort();
        let mut results = Vec::with_capacity(keys.len());
        for key in keys {
            let result = self.ingest(&key).await;
            if let Err(e) = &result {
                tracing::warn!(key, error = %e, "ingestion stopped; the file stays in landing/");
            }
            results.push((key, result));
        }
        Ok(results)
    }

    /// Ingests the object at `key` (under `landing/`), exactly once whatever happens around it, once one
    /// of the workers is free.
    pub async fn ingest(&self, key: &str) -> Result<Summary, Error> {
        self.workers.run(self.ingest_now(key)).await
    }

    /// The size in bytes of the landed object at `key`.
    pub async fn size(&self, key: &str) -> Result<u64, Error> {
        name_under(key, LANDING)?;
        match self.store.head(&Path::from(key)).await {
            Ok(meta) => Ok(meta.size),
            Err(object_store::Error::NotFound { .. }) => Err(Error::NotFound {
                key: key.to_owned(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Claims the object at `key` (its bytes hashed to their `ops.ingested_files` row) and ingests it in
    /// the background, on the same workers and exactly-once path as [`Ingestor::ingest`]; returns the
    /// row at once. A file the background task cannot finish (a shutdown, a lost database) leaves no rows,
    /// stays in `landing/` and is ingested whole at the next poll.
    pub async fn start(&self, key: &str) -> Result<IngestedFile, Error> {
        name_under(key, LANDING)?;
        let (sha256, _size) = match read::hash(self.store.as_ref(), &Path::from(key)).await {
            Err(Error::ObjectStore(object_store::Error::NotFound { .. })) => {
                return Err(Error::NotFound {
                    key: key.to_owned(),
                });
            }
            hashed => hashed?,
        };
        let file = ingestion::claim_file(&self.pool, key, &sha256).await?;
        let (this, key) = (self.clone(), key.to_owned());
        tokio::spawn(async move {
            match this.workers.run(this.ingest_hashed(&key, sha256)).await {
                Ok(summary) => {
                    tracing::info!(key, outcome = ?summary.outcome, "background ingestion ended")
                }
                Err(e) => {
                    tracing::warn!(key, error = %e, "background ingestion stopped; the file stays in landing/")
                }
            }
        });
        Ok(file)
    }

    async fn ingest_now(&self, key: &str) -> Result<Summary, Error> {
        name_under(key, LANDING)?;
        let path = Path::from(key);
        let (sha256, _size) = match read::hash(self.store.as_ref(), &path).await {
            Ok(hashed) => hashed,
            Err(Error::ObjectStore(object_store::Error::NotFound { .. })) => {
                // The object moved on already: an event delivered again after its file was done.
                return match ingestion::latest_file_by_key(&self.pool, key).await? {
                    Some(file) if file.status != FileStatus::Processing => {
                        self.summary(&file, Outcome::AlreadyProcessed).await
                    }
                    _ => Err(Error::NotFound {
                        key: key.to_owned(),
                    }),
                };
            }
            Err(e) => return Err(e),
        };
        self.ingest_hashed(key, sha256).await
    }

    /// Ingests the object at `key` whose bytes hash to `sha256`.
    async fn ingest_hashed(&self, key: &str, sha256: String) -> Result<Summary, Error> {
        let name = name_under(key, LANDING)?.to_owned();
        let path = Path::from(key);
        let file = ingestion::claim_file(&self.pool, key, &sha256).await?;
        match file.status {
            FileStatus::Processed => {
                let target = format!("{PROCESSED}{name}");
                self.store
                    .rename(&path, &Path::from(target.as_str()))
                    .await?;
                let outcome = if file.object_key == key {
                    // Finished earlier but not moved (a crash between the two): the move completes it.
                    Outcome::AlreadyProcessed
                } else {
                    Outcome::Duplicate {
                        of: file.object_key.clone(),
                    }
                };
                let mut summary = self.summary(&file, outcome).await?;
                summary.object_key = key.to_owned();
                summary.moved_to = Some(target);
                Ok(summary)
            }
            FileStatus::Failed => {
                let reason = file.reason.clone().unwrap_or_default();
                let target = self.fail_object(&path, &name, &reason).await?;
                let mut summary = self.summary(&file, Outcome::Failed { reason }).await?;
                summary.object_key = key.to_owned();
                summary.moved_to = Some(target);
                Ok(summary)
            }
            FileStatus::Processing => self.process(key, &name, &path, file).await,
        }
    }

    /// Reads the file from its checkpoint on, writes it batch by batch in one transaction, and moves it
    /// on; an unusable file is rolled back whole before it is marked failed.
    async fn process(
        &self,
        key: &str,
        name: &str,
        path: &Path,
        file: IngestedFile,
    ) -> Result<Summary, Error> {
        let open = read::open(self.store.clone(), path, self.options.limits).await?;
        let (tx, mut rx) = mpsc::channel(2);
        let skip = file.checkpoint_line as u64;
        let batch_rows = self.options.batch_rows.max(1);
        let parser =
            tokio::task::spawn_blocking(move || read::parse(open(), skip, batch_rows, false, &tx));

        let mut checkpoint = file.checkpoint_line;
        let mut ids = ulid::Generator::new();
        // The batches go through one pooled connection that is closed, not returned, when it is dropped:
        // a run cut off mid-file (a job timeout, a shutdown) closes it and the server rolls the file
        // back, where a returned one would go back to the pool halfway through a COPY. It counts against
        // the pool's size while held, so workers never take more connections than the pool has.
        let mut conn = self.pool.acquire().await?;
        conn.close_on_drop();
        // All or nothing: the whole file is one transaction (each batch a savepoint in it), so a file
        // that breaks part way, or a run cut off, leaves no rows behind, and a fixed copy under
        // another name cannot duplicate what a failed one wrote.
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let mut unusable = None;
        let mut data_rows = None;
        while let Some(message) = rx.recv().await {
            match message {
                Parsed::Batch(batch) => {
                    checkpoint =
                        state::commit_batch(&mut tx, &file, checkpoint, &batch, &mut ids).await?;
                    tracing::debug!(key, checkpoint, "batch written");
                }
                Parsed::Unusable(reason) => unusable = Some(reason),
                Parsed::Interrupted { line, reason } => {
                    return Err(Error::Read {
                        key: key.to_owned(),
                        line,
                        reason,
                    });
                }
                Parsed::Done { data_rows: n } => data_rows = Some(n),
                Parsed::Header(_) => {}
            }
        }
        parser.await.map_err(|e| Error::Thread(e.to_string()))?;

        let reason = match (unusable, data_rows) {
            (Some(reason), _) => Some(reason),
            (None, Some(0)) => Some(churn_core::Error::NoRows.to_string()),
            (None, Some(_)) => None,
            (None, None) => return Err(Error::Thread("the parser ended without a result".into())),
        };
        if reason.is_some() {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        drop(conn);
        let file = ingestion::file_by_id(&self.pool, file.file_id).await?;
        if let Some(reason) = reason {
            let target = format!("{FAILED}{name}");
            ingestion::finish_file(&self.pool, file.file_id, Some(&reason), &target).await?;
            self.fail_object(path, name, &reason).await?;
            let file = ingestion::file_by_id(&self.pool, file.file_id).await?;
            return self.summary(&file, Outcome::Failed { reason }).await;
        }
        if file.rows_rejected > 0 {
            quarantine::write(
                &self.pool,
                self.store.clone(),
                file.file_id,
                &quarantine_key(name),
            )
            .await?;
        }
        let target = format!("{PROCESSED}{name}");
        ingestion::finish_file(&self.pool, file.file_id, None, &target).await?;
        self.store
            .rename(path, &Path::from(target.as_str()))
            .await?;
        let file = ingestion::file_by_id(&self.pool, file.file_id).await?;
        self.summary(&file, Outcome::Processed).await
    }

    /// Moves an unusable file to `failed/` and writes its reason beside it.
    async fn fail_object(&self, path: &Path, name: &str, reason: &str) -> Result<String, Error> {
        let target = format!("{FAILED}{name}");
        self.store
            .put(
                &Path::from(format!("{target}.reason.txt")),
                PutPayload::from(format!("{reason}\n")),
            )
            .await?;
        self.store
            .rename(path, &Path::from(target.as_str()))
            .await?;
        Ok(target)
    }

    async fn summary(&self, file: &IngestedFile, outcome: Outcome) -> Result<Summary, Error> {
        let name = name_under(&file.object_key, LANDING).unwrap_or(&file.object_key);
        Ok(Summary {
            object_key: file.object_key.clone(),
            sha256: file.sha256.clone(),
            outcome,
            moved_to: file.final_key.clone(),
            quarantine_key: (file.rows_rejected > 0).then(|| quarantine_key(name)),
            rows_in: file.rows_total,
            rows_accepted: file.rows_accepted,
            rows_inserted: file.rows_inserted,
            rows_updated: file.rows_updated,
            rows_rejected: file.rows_rejected,
            rejected_by_reason: ingestion::rejected_by_reason(&self.pool, file.file_id)
                .await?
                .into_iter()
                .map(|r| (r.reason, r.rows))
                .collect(),
        })
    }
}

fn quarantine_key(name: &str) -> String {
    format!("{QUARANTINE}{name}.errors.csv")
}

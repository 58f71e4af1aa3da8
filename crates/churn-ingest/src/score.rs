//! Batch scoring back to the store: a CSV under `score/` is scored by the served champion in streaming
//! batches and written to `scored/<name>` with the probability, label, threshold and model version
//! appended; invalid rows go to `quarantine/score/<name>.errors.csv`. The same bytes are scored once per
//! model version (`ops.scored_files`).

use std::sync::Arc;

use churn_api::ClassifierClient;
use churn_core::{Category, Customer};
use churn_store::ingestion::{self, ScoredFile};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::Serialize;
use sqlx::PgPool;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::Ingestor;
use crate::limits::ReadLimits;
use crate::read::{self, Parsed};
use crate::workers::WorkerPool;
use crate::{Error, FAILED, QUARANTINE, SCORE, SCORED, name_under, quarantine};

/// Columns appended to each scored row.
pub const SCORE_COLUMNS: [&str; 4] = [
    "churn_probability",
    "predicted_churn_label",
    "threshold",
    "model_version",
];

/// What became of a file under `score/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreOutcome {
    Scored,
    /// This model version scored these bytes before: nothing was written.
    AlreadyScored,
    /// The file cannot be scored (empty, binary, wrong header); it moved to `failed/score/` beside a
    /// reason file.
    Failed {
        reason: String,
    },
}

/// A scored file's summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreSummary {
    pub object_key: String,
    pub output_key: String,
    pub outcome: ScoreOutcome,
    pub model_name: String,
    pub model_version: i32,
    pub rows_in: i64,
    pub rows_scored: i64,
    pub rows_rejected: i64,
}

/// Scores files through the classifier service (the champion it serves).
#[derive(Debug, Clone)]
pub struct Scorer {
    pool: PgPool,
    store: Arc<dyn ObjectStore>,
    classifier: ClassifierClient,
    batch_rows: usize,
    limits: ReadLimits,
    workers: WorkerPool,
}

/// Rows per request to the classifier: big enough to amortize the round trip, within its batch limit.
const SCORE_BATCH_ROWS: usize = 500;

impl Scorer {
    pub fn new(pool: PgPool, store: Arc<dyn ObjectStore>, classifier: ClassifierClient) -> Self {
        Self {
            pool,
            store,
            classifier,
            batch_rows: SCORE_BATCH_ROWS,
            limits: ReadLimits::default(),
            workers: WorkerPool::default(),
        }
    }

    /// The same scorer reading files as `ingestor` does: within its limits, on its workers (one bound
    /// for every file the service reads).
    #[must_use]
    pub fn reading_like(mut self, ingestor: &Ingestor) -> Self {
        self.limits = ingestor.limits();
        self.workers = ingestor.workers().clone();
        self
    }

    /// Scores every file under `score/` that the served model version has not scored yet.
    pub async fn poll(&self) -> Result<Vec<(String, Result<ScoreSummary, Error>)>, Error> {
        let mut keys = Vec::new();
        let mut listing = self.store.list(Some(&Path::from(SCORE)));
        while let Some(meta) = futures::TryStreamExt::try_next(&mut listing).await? {
            keys.push(meta.location.to_string());
        }
        keys.sort();
        let mut results = Vec::with_capacity(keys.len());
        for key in keys {
            let result = self.score(&key).await;
            if let Err(e) = &result {
                tracing::warn!(key, error = %e, "scoring stopped; the file stays in score/");
            }
            results.push((key, result));
        }
        Ok(results)
    }

    /// Scores the object at `key` (under `score/`) unless the served version scored its bytes before,
    /// once one of the workers is free.
    pub async fn score(&self, key: &str) -> Result<ScoreSummary, Error> {
        self.workers.run(self.score_now(key)).await
    }

    async fn score_now(&self, key: &str) -> Result<ScoreSummary, Error> {
        let name = name_under(key, SCORE)?.to_owned();
        let path = Path::from(key);
        let output_key = format!("{SCORED}{name}");
        let (sha256, _) = read::hash(self.store.as_ref(), &path).await?;
        let model = self.classifier.model().await?;
        let done =
            ingestion::scored_file(&self.pool, &sha256, &model.model_name, model.model_version)
                .await?;
        if let Some(done) = done {
            return Ok(ScoreSummary {
                object_key: key.to_owned(),
                output_key: done.output_key,
                outcome: ScoreOutcome::AlreadyScored,
                model_name: model.model_name,
                model_version: model.model_version,
                rows_in: done.rows_total,
                rows_scored: done.rows_scored,
                rows_rejected: done.rows_rejected,
            });
        }

        let open = read::open(self.store.clone(), &path, self.limits).await?;
        let (tx, mut rx) = mpsc::channel(2);
        let batch_rows = self.batch_rows;
        let parser =
            tokio::task::spawn_blocking(move || read::parse(open(), 1, batch_rows, true, &tx));
        let io = |e: std::io::Error| object_store::Error::Generic {
            store: "scored",
            source: Box::new(e),
        };
        // Written to a temporary key and copied into place at the end, so `scored/<name>` is never a
        // partial file and a failed file leaves nothing there.
        let partial = Path::from(format!("{SCORED}.partial/{name}.{}", uuid::Uuid::new_v4()));
        let mut output = BufWriter::new(self.store.clone(), partial.clone());
        let mut rejects = Vec::new();
        let (mut scored, mut rejected) = (0i64, 0i64);
        let mut failure = None;
        let mut finished = false;
        let mut out = Vec::with_capacity(1 << 16);
        while let Some(message) = rx.recv().await {
            match message {
                Parsed::Header(header) => {
                    let mut fields: Vec<&[u8]> = header.iter().collect();
                    fields.extend(SCORE_COLUMNS.iter().map(|c| c.as_bytes()));
                    csv_line(&mut out, fields);
                }
                Parsed::Batch(batch) => {
                    let customers: Vec<Customer> =
                        batch.rows.iter().map(|r| r.customer.clone()).collect();
                    if !customers.is_empty() {
                        let prediction = self.classifier.predict_batch(&customers).await?;
                        if prediction.model_version != model.model_version {
                            return Err(Error::Read {
                                key: key.to_owned(),
                                line: batch.last_line,
                                reason: format!(
                                    "the served model changed from version {} to {} while scoring; try again",
                                    model.model_version, prediction.model_version
                                ),
                            });
                        }
                        for (row, item) in batch.rows.iter().zip(&prediction.results) {
                            let (Some(p), Some(label)) =
                                (item.churn_probability, item.predicted_churn_label)
                            else {
                                rejected += 1;
                                continue;
                            };
                            let mut fields: Vec<Vec<u8>> = row
                                .raw
                                .as_ref()
                                .map(|r| r.iter().map(<[u8]>::to_vec).collect())
                                .unwrap_or_default();
                            fields.push(p.to_string().into_bytes());
                            fields.push(label.label().as_bytes().to_vec());
                            fields.push(prediction.threshold.to_string().into_bytes());
                            fields.push(prediction.model_version.to_string().into_bytes());
                            csv_line(&mut out, fields.iter().map(Vec::as_slice));
                            scored += 1;
                        }
                    }
                    for r in batch.rejected {
                        rejected += 1;
                        quarantine::line(&mut rejects, r.line as i64, &r.errors, &r.raw);
                    }
                    if out.len() >= 1 << 16 {
                        output.write_all(&out).await.map_err(io)?;
                        out.clear();
                    }
                }
                Parsed::Unusable(reason) => failure = Some(reason),
                Parsed::Interrupted { line, reason } => {
                    output.abort().await.ok();
                    return Err(Error::Read {
                        key: key.to_owned(),
                        line,
                        reason,
                    });
                }
                Parsed::Done { data_rows } => {
                    finished = true;
                    if data_rows == 0 {
                        failure = Some(churn_core::Error::NoRows.to_string());
                    }
                }
            }
        }
        parser.await.map_err(|e| Error::Thread(e.to_string()))?;
        let summary = |outcome| ScoreSummary {
            object_key: key.to_owned(),
            output_key: output_key.clone(),
            outcome,
            model_name: model.model_name.clone(),
            model_version: model.model_version,
            rows_in: scored + rejected,
            rows_scored: scored,
            rows_rejected: rejected,
        };
        if let Some(reason) =
            failure.or_else(|| (!finished).then(|| "the parser ended without a result".to_owned()))
        {
            output.abort().await.ok();
            // Moved aside with its reason, so polling does not try it again every time.
            let target = format!("{FAILED}{SCORE}{name}");
            self.store
                .put(
                    &Path::from(format!("{target}.reason.txt")),
                    PutPayload::from(format!("{reason}\n")),
                )
                .await?;
            self.store.rename(&path, &Path::from(target)).await?;
            return Ok(summary(ScoreOutcome::Failed { reason }));
        }
        output.write_all(&out).await.map_err(io)?;
        output.shutdown().await.map_err(io)?;
        self.store
            .rename(&partial, &Path::from(output_key.as_str()))
            .await?;
        if rejected > 0 {
            let mut body = quarantine::HEADER.join(",").into_bytes();
            body.push(b'\n');
            body.extend_from_slice(&rejects);
            self.store
                .put(
                    &Path::from(format!("{QUARANTINE}score/{name}.errors.csv")),
                    PutPayload::from(body),
                )
                .await?;
        }
        let record = ScoredFile {
            sha256,
            model_name: model.model_name.clone(),
            model_version: model.model_version,
            object_key: key.to_owned(),
            output_key: output_key.clone(),
            rows_total: scored + rejected,
            rows_scored: scored,
            rows_rejected: rejected,
        };
        ingestion::insert_scored_file(&self.pool, &record).await?;
        Ok(summary(ScoreOutcome::Scored))
    }
}

fn csv_line<'a>(out: &mut Vec<u8>, fields: impl IntoIterator<Item = &'a [u8]>) {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out);
    let _ = writer.write_record(fields);
    let _ = writer.flush();
}

//! The platform's wire types and typed HTTP clients: what the classifier and the synthesizer send and
//! receive, shared by the services (which serve them), the scheduler and `churnctl` (which call them).
//! No service imports another service; they share these types instead.

pub mod client;
pub mod types;

pub use client::{
    BatchSource, ClassifierClient, ClientError, SchedulerClient, Synthesized, SynthesizerClient,
};
pub use types::{
    AuditEntryBody, BATCH_LIMIT_PLACEHOLDER, BatchItem, BatchPrediction, Contribution,
    CustomerBatch, ErrorBody, FeatureImportance, IngestAccepted, IngestedFileBody, ItemStatus,
    JobInfo, JobPaused, JobRunBody, ModelInfo, Prediction, RunsPage, ShadowPrediction,
    SynthesizeAnswer, SynthesizeFormat, SynthesizeParams, TriggeredRun,
};

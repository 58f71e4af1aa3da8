//! Typed HTTP clients for the synthesizer and the classifier: one request each, errors that say which
//! service failed and whether trying again can help.

use std::time::Duration;

use churn_core::Customer;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use crate::types::{
    BatchPrediction, ErrorBody, JobInfo, JobPaused, JobRunBody, ModelInfo, Prediction, RunsPage,
    TriggeredRun,
};

/// What `Debug` shows of a credential: whether there is one, never its value.
fn redacted(secret: Option<&String>) -> Option<&'static str> {
    secret.map(|_| "[redacted]")
}

/// A failed call to another service.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the {service} at {url} could not be reached: {source}")]
    Unreachable {
        service: &'static str,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the {service} answered {status}: {message}")]
    Status {
        service: &'static str,
        status: u16,
        message: String,
        /// The `Retry-After` the service asked for, when it did.
        retry_after: Option<Duration>,
    },
    #[error("the {service} sent a body this client cannot read: {reason}")]
    Body {
        service: &'static str,
        reason: String,
    },
}

impl ClientError {
    /// Whether the same request may succeed later: the service was unreachable, overloaded, timed out or
    /// failed on its side. A 4xx other than 408/429 means the request itself is wrong.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Unreachable { .. } => true,
            ClientError::Status { status, .. } => {
                *status >= 500 || *status == 408 || *status == 429
            }
            ClientError::Body { .. } => false,
        }
    }
}

fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(2).min(timeout))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

fn join(base: &url::Url, path: &str, query: &[(&str, String)]) -> String {
    let mut url = format!("{}{path}", base.as_str().trim_end_matches('/'));
    if !query.is_empty() {
        let encoded: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        url.push('?');
        url.push_str(&encoded);
    }
    url
}

async fn send(
    service: &'static str,
    url: &str,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, ClientError> {
    let response = request
        .send()
        .await
        .map_err(|source| ClientError::Unreachable {
            service,
            url: url.to_owned(),
            source,
        })?;
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<ErrorBody>(&text)
        .map(|b| b.error)
        .unwrap_or_else(|_| {
            let mut t = text.trim().to_owned();
            t.truncate(200);
            if t.is_empty() {
                status
                    .canonical_reason()
                    .unwrap_or("no reason given")
                    .to_owned()
            } else {
                t
            }
        });
    Err(ClientError::Status {
        service,
        status: status.as_u16(),
        message,
        retry_after,
    })
}

async fn json<T: DeserializeOwned>(
    service: &'static str,
    response: reqwest::Response,
) -> Result<T, ClientError> {
    let bytes = response.bytes().await.map_err(|e| ClientError::Body {
        service,
        reason: e.to_string(),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ClientError::Body {
        service,
        reason: e.to_string(),
    })
}

/// Customers drawn by the synthesizer, with the version that drew them.
#[derive(Debug, Clone)]
pub struct Synthesized {
    pub customers: Vec<Customer>,
    /// The synthesizer's registry version (`x-model-version`).
    pub model_version: i32,
    /// The seed used (`x-seed`).
    pub seed: u64,
}

/// A client of the synthesizer service.
#[derive(Debug, Clone)]
pub struct SynthesizerClient {
    base: url::Url,
    http: reqwest::Client,
}

impl SynthesizerClient {
    const SERVICE: &'static str = "synthesizer";

    /// A client of the service at `base` (e.g. `http://synthesizer:8001`); each request is cut off after
    /// `timeout`.
    pub fn new(base: url::Url, timeout: Duration) -> Self {
        Self {
            base,
            http: http_client(timeout),
        }
    }

    /// `GET /synthesize?n=…[&seed=…]`: `n` customers as a JSON array.
    pub async fn synthesize(&self, n: u64, seed: Option<u64>) -> Result<Synthesized, ClientError> {
        let mut query = vec![("n", n.to_string())];
        if let Some(seed) = seed {
            query.push(("seed", seed.to_string()));
        }
        let url = join(&self.base, "/synthesize", &query);
        let response = send(Self::SERVICE, &url, self.http.get(&url)).await?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let model_version = header("x-model-version")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ClientError::Body {
                service: Self::SERVICE,
                reason: "the x-model-version header is missing".to_owned(),
            })?;
        let seed = header("x-seed").and_then(|v| v.parse().ok()).unwrap_or(0);
        let bytes = response.bytes().await.map_err(|e| ClientError::Body {
            service: Self::SERVICE,
            reason: e.to_string(),
        })?;
        let items: Vec<&serde_json::value::RawValue> =
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Body {
                service: Self::SERVICE,
                reason: e.to_string(),
            })?;
        let customers = items
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                Customer::from_json_slice(raw.get().as_bytes()).map_err(|e| ClientError::Body {
                    service: Self::SERVICE,
                    reason: match e {
                        churn_core::JsonInputError::Syntax(e) => format!("customer {i}: {e}"),
                        churn_core::JsonInputError::Invalid(errors) => {
                            format!("customer {i}: {errors}")
                        }
                    },
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Synthesized {
            customers,
            model_version,
            seed,
        })
    }
}

/// A client of the classifier service (its `Debug` never shows the API key).
#[derive(Clone)]
pub struct ClassifierClient {
    base: url::Url,
    http: reqwest::Client,
    api_key: Option<String>,
    /// Declared on batch calls (`source=`), so the classifier's inference log keeps the platform's own
    /// batches apart from callers' traffic.
    source: Option<&'static str>,
}

/// What the platform's own batch calls declare themselves to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSource {
    /// The generate loop's synthetic customers.
    Synthetic,
    /// The customers of a landed file, scored after ingestion.
    Ingested,
}

impl std::fmt::Debug for ClassifierClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassifierClient")
            .field("base", &self.base.as_str())
            .field("api_key", &redacted(self.api_key.as_ref()))
            .finish_non_exhaustive()
    }
}

impl ClassifierClient {
    const SERVICE: &'static str = "classifier";

    /// A client of the service at `base` (e.g. `http://classifier:8000`), sending `api_key` in
    /// `X-API-Key` when given; each request is cut off after `timeout`.
    pub fn new(base: url::Url, api_key: Option<String>, timeout: Duration) -> Self {
        Self {
            base,
            http: http_client(timeout),
            api_key,
            source: None,
        }
    }

    /// The same client, declaring its batches as `source`.
    pub fn declaring(mut self, source: BatchSource) -> Self {
        self.source = Some(match source {
            BatchSource::Synthetic => "synthetic",
            BatchSource::Ingested => "ingested",
        });
        self
    }

    fn post(&self, url: &str) -> reqwest::RequestBuilder {
        let request = self.http.post(url);
        match &self.api_key {
            Some(key) => request.header("x-api-key", key),
            None => request,
        }
    }

    /// `POST /predict`.
    pub async fn predict(
        &self,
        customer: &Customer,
        explain: bool,
    ) -> Result<Prediction, ClientError> {
        let url = join(&self.base, "/predict", &[("explain", explain.to_string())]);
        let request = self.post(&url).json(customer);
        json(Self::SERVICE, send(Self::SERVICE, &url, request).await?).await
    }

    /// `POST /predict/batch`: one result per customer, in order.
    pub async fn predict_batch(
        &self,
        customers: &[Customer],
    ) -> Result<BatchPrediction, ClientError> {
        self.batch(customers, false).await
    }

    /// `POST /predict/batch?shadow=true`: as [`ClassifierClient::predict_batch`], plus the shadow model's
    /// (the challenger's) predictions when the classifier has one loaded.
    pub async fn predict_batch_with_shadow(
        &self,
        customers: &[Customer],
    ) -> Result<BatchPrediction, ClientError> {
        self.batch(customers, true).await
    }

    async fn batch(
        &self,
        customers: &[Customer],
        shadow: bool,
    ) -> Result<BatchPrediction, ClientError> {
        let mut query = Vec::new();
        if shadow {
            query.push(("shadow", "true".to_owned()));
        }
        if let Some(source) = self.source {
            query.push(("source", source.to_owned()));
        }
        let url = join(&self.base, "/predict/batch", &query);
        let request = self.post(&url).json(customers);
        let batch: BatchPrediction =
            json(Self::SERVICE, send(Self::SERVICE, &url, request).await?).await?;
        let shadow_len = batch
            .shadow
            .as_ref()
            .map_or(customers.len(), |s| s.churn_probabilities.len());
        if batch.results.len() != customers.len() || shadow_len != customers.len() {
            return Err(ClientError::Body {
                service: Self::SERVICE,
                reason: format!(
                    "{} results ({} shadow) for {} customers",
                    batch.results.len(),
                    shadow_len,
                    customers.len()
                ),
            });
        }
        Ok(batch)
    }

    /// `GET /model`: what is being served.
    pub async fn model(&self) -> Result<ModelInfo, ClientError> {
        let url = join(&self.base, "/model", &[]);
        let request = match &self.api_key {
            Some(key) => self.http.get(&url).header("x-api-key", key),
            None => self.http.get(&url),
        };
        json(Self::SERVICE, send(Self::SERVICE, &url, request).await?).await
    }
}

/// A client of the scheduler's job API (`churnctl jobs` uses it; its `Debug` never shows the token).
#[derive(Clone)]
pub struct SchedulerClient {
    base: url::Url,
    http: reqwest::Client,
    admin_token: Option<String>,
    read_token: Option<String>,
}

impl std::fmt::Debug for SchedulerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerClient")
            .field("base", &self.base.as_str())
            .field("admin_token", &redacted(self.admin_token.as_ref()))
            .field("read_token", &redacted(self.read_token.as_ref()))
            .finish_non_exhaustive()
    }
}

impl SchedulerClient {
    const SERVICE: &'static str = "scheduler";

    /// A client of the scheduler at `base`, sending `admin_token` as a bearer token on mutating calls
    /// (and on reads, when it has no read token).
    pub fn new(base: url::Url, admin_token: Option<String>, timeout: Duration) -> Self {
        Self {
            base,
            http: http_client(timeout),
            admin_token,
            read_token: None,
        }
    }

    /// The same client sending `read_token` on reads (a scheduler with READ_TOKEN set needs one).
    #[must_use]
    pub fn with_read_token(mut self, read_token: Option<String>) -> Self {
        self.read_token = read_token;
        self
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ClientError> {
        let url = join(&self.base, path, query);
        let mut request = self.http.get(&url);
        if let Some(token) = self.read_token.as_ref().or(self.admin_token.as_ref()) {
            request = request.bearer_auth(token);
        }
        json(Self::SERVICE, send(Self::SERVICE, &url, request).await?).await
    }

    async fn post<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = join(&self.base, path, &[]);
        let mut request = self.http.post(&url);
        if let Some(token) = &self.admin_token {
            request = request.bearer_auth(token);
        }
        json(Self::SERVICE, send(Self::SERVICE, &url, request).await?).await
    }

    /// `GET /jobs`.
    pub async fn jobs(&self) -> Result<Vec<JobInfo>, ClientError> {
        self.get("/jobs", &[]).await
    }

    /// `GET /jobs/{name}/runs`.
    pub async fn runs(
        &self,
        job: &str,
        status: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<RunsPage, ClientError> {
        let mut query = vec![("limit", limit.to_string()), ("offset", offset.to_string())];
        if let Some(status) = status {
            query.push(("status", status.to_owned()));
        }
        self.get(&format!("/jobs/{job}/runs"), &query).await
    }

    /// `GET /runs/{id}`.
    pub async fn run(&self, id: uuid::Uuid) -> Result<JobRunBody, ClientError> {
        self.get(&format!("/runs/{id}"), &[]).await
    }

    /// `POST /jobs/{name}/run`.
    pub async fn trigger(&self, job: &str) -> Result<TriggeredRun, ClientError> {
        self.post(&format!("/jobs/{job}/run")).await
    }

    /// `POST /jobs/{name}/pause` or `/resume`.
    pub async fn set_paused(&self, job: &str, paused: bool) -> Result<JobPaused, ClientError> {
        let action = if paused { "pause" } else { "resume" };
        self.post(&format!("/jobs/{job}/{action}")).await
    }
}

/// Whether a status means "no such thing" (for callers that treat it as absence).
pub fn is_not_found(error: &ClientError) -> bool {
    matches!(error, ClientError::Status { status, .. } if *status == StatusCode::NOT_FOUND.as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_of_a_client_never_shows_its_key_or_token() {
        let base = url::Url::parse("http://127.0.0.1:8000").expect("a valid url");
        let key = "0123456789abcdef-secret-key".to_owned();
        let classifier =
            ClassifierClient::new(base.clone(), Some(key.clone()), Duration::from_secs(1));
        let scheduler = SchedulerClient::new(base, Some(key.clone()), Duration::from_secs(1));
        for shown in [format!("{classifier:?}"), format!("{scheduler:?}")] {
            assert!(!shown.contains(&key), "{shown}");
            assert!(shown.contains("[redacted]"), "{shown}");
            assert!(shown.contains("127.0.0.1:8000"), "{shown}");
        }
    }
}

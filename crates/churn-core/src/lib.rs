//! The customer record of the IBM Telco churn data: typed categories, validation, CSV and JSON mapping.
//!
//! # Choices worth knowing
//! - **Blank Total Charges.** The dataset leaves `Total Charges` blank on the 11 rows with
//!   `Tenure Months = 0`: these customers have not been billed yet, so a blank reads as `0.0`. A blank on
//!   a row with tenure above 0 is an error.
//! - **Names.** JSON keys and CSV headers may be snake_case (`tenure_months`), the dataset's headers
//!   (`Tenure Months`) or the original API's (`Tenure_Months`). Category values may be the dataset's
//!   labels (`Fiber optic`) or snake_case (`fiber_optic`); yes/no fields also take true/false and 1/0.
//! - **Extra keys.** Identifier and leakage columns (CustomerID, Count, Lat Long, Churn Value, Churn
//!   Score, CLTV, Churn Reason) and the original API's `model_version`/`date` are accepted and ignored.
//!   Any other unknown JSON key is an error (it is usually a typo); unknown CSV columns are skipped and
//!   listed by [`CustomerReader::unknown_columns`].
//! - **Every problem at once.** Parsing never stops at the first bad field: the error lists each field,
//!   the value received and the rule broken.

pub mod artifact;
pub mod backoff;
pub mod category;
pub mod csv_io;
pub mod customer;
pub mod field;
pub mod ids;
pub mod json_input;
pub mod metrics;
#[cfg(feature = "openapi")]
mod openapi;
pub mod validation;
pub mod version_metrics;

pub use backoff::Backoff;
pub use category::{
    AddOn, Category, Contract, Gender, InternetService, MultipleLines, PaymentMethod, YesNo,
};
pub use csv_io::{CsvRow, CustomerReader, CustomerWriter, HeaderStyle, read_customers};
pub use customer::{ADD_ON_FIELDS, Customer, Raw};
pub use field::{Field, IGNORED_KEYS, LEAKAGE_COLUMNS};
pub use ids::{CustomerId, RunId, VersionNumber};
pub use json_input::{CUSTOMER_ID_MAX_LEN, JsonInputError};
pub use validation::{FieldError, ValidationErrors};
pub use version_metrics::{Importance, VersionMetrics};

/// Environment variable naming the seed dataset (the IBM Telco CSV).
pub const SEED_DATA_ENV: &str = "CHURN_SEED_DATA";

/// Everything that can go wrong reading or writing customer data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the file is empty: expected a header row naming the columns (Tenure Months, Monthly Charges, …)"
    )]
    Empty,
    #[error("the file has a header but no data rows")]
    NoRows,
    #[error("header column {column} is not valid UTF-8 ({value:?}); save the file as UTF-8")]
    HeaderNotUtf8 { column: usize, value: String },
    #[error("the header names {field} twice: {name:?} in columns {first} and {second}; remove one")]
    DuplicateColumn {
        name: String,
        field: &'static str,
        first: usize,
        second: usize,
    },
    #[error("the header lacks required columns: {}", .0.join(", "))]
    MissingColumns(Vec<&'static str>),
    #[error("the header has {found} columns, more than the limit of {max}")]
    TooManyColumns { found: usize, max: usize },
    #[error(
        "line {line}: the row has {found} fields but the header has {expected} (truncated or misquoted row?)"
    )]
    FieldCount {
        line: u64,
        expected: usize,
        found: usize,
    },
    #[error("line {line}: {errors}")]
    InvalidRow {
        line: u64,
        customer_id: Option<String>,
        errors: ValidationErrors,
    },
    #[error("line {line}: unreadable CSV: {source}")]
    Csv { line: u64, source: csv::Error },
    #[error("cannot write CSV: {0}")]
    Write(csv::Error),
    #[error("{kind} {value:?} {rule}")]
    InvalidId {
        kind: &'static str,
        value: String,
        rule: &'static str,
    },
}

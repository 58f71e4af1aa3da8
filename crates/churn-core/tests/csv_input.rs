//! CSV loading: the real seed file, header variants, and malformed files each getting their specific error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use churn_core::{
    Customer, CustomerReader, CustomerWriter, Error, Field, HeaderStyle, InternetService,
};

const HEADER: &str = "CustomerID,Count,Country,State,City,Zip Code,Lat Long,Latitude,Longitude,Gender,Senior Citizen,Partner,Dependents,Tenure Months,Phone Service,Multiple Lines,Internet Service,Online Security,Online Backup,Device Protection,Tech Support,Streaming TV,Streaming Movies,Contract,Paperless Billing,Payment Method,Monthly Charges,Total Charges,Churn Label,Churn Value,Churn Score,CLTV,Churn Reason";
const ROW: &str = "3668-QPYBK,1,United States,California,Los Angeles,90003,\"33.964131, -118.272783\",33.964131,-118.272783,Male,No,No,No,2,Yes,No,DSL,Yes,Yes,No,No,No,No,Month-to-month,Yes,Mailed check,53.85,108.15,Yes,1,86,3239,Competitor made better offer";
const NEW_CUSTOMER_ROW: &str = "4472-LVYGI,1,United States,California,San Bernardino,92408,\"34.084909, -117.258107\",34.084909,-117.258107,Female,No,Yes,No,0,No,No phone service,DSL,Yes,No,Yes,Yes,Yes,No,Two year,Yes,Bank transfer (automatic),52.55, ,No,0,36,2578,";

fn seed_path() -> PathBuf {
    std::env::var_os("CHURN_SEED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/data/telco_customer_churn.csv")
        })
}

fn read(bytes: &[u8]) -> Result<Vec<Result<churn_core::CsvRow, Error>>, Error> {
    CustomerReader::new(bytes).map(|r| r.collect())
}

/// The single row's errors, as (field, rule) pairs.
fn row_errors(bytes: &[u8]) -> Vec<(String, String)> {
    let rows = read(bytes).expect("header is fine");
    assert_eq!(rows.len(), 1, "one data row");
    match rows.into_iter().next().unwrap() {
        Err(Error::InvalidRow { errors, .. }) => errors
            .iter()
            .map(|e| (e.field.clone(), e.rule.clone()))
            .collect(),
        other => panic!("expected an invalid row, got {other:?}"),
    }
}

/// The sample row with column `index` (0-based in HEADER) replaced by `value`.
fn with_column(index: usize, value: &str) -> String {
    let mut record = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(ROW.as_bytes());
    let fields: Vec<String> = record
        .records()
        .next()
        .unwrap()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let mut writer = csv::Writer::from_writer(Vec::new());
    let replaced: Vec<&str> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| if i == index { value } else { f.as_str() })
        .collect();
    writer.write_record(replaced).unwrap();
    format!(
        "{HEADER}\n{}",
        String::from_utf8(writer.into_inner().unwrap()).unwrap()
    )
}

fn column(header: &str) -> usize {
    HEADER.split(',').position(|h| h == header).unwrap()
}

fn assert_single_error(bytes: &[u8], field: &str, rule_part: &str) {
    let errors = row_errors(bytes);
    assert!(
        errors
            .iter()
            .any(|(f, r)| f == field && r.contains(rule_part)),
        "expected {field}: …{rule_part}…, got {errors:?}"
    );
}

#[test]
fn the_seed_file_has_7043_valid_rows() {
    let reader = CustomerReader::open(&seed_path()).expect("seed file opens");
    assert!(reader.has_label());
    let mut count = 0;
    let mut new_customers = 0;
    for row in reader {
        let row = row.unwrap_or_else(|e| panic!("{e}"));
        if row.customer.tenure_months == 0 {
            new_customers += 1;
            assert_eq!(row.customer.total_charges, 0.0);
        }
        count += 1;
    }
    assert_eq!(count, 7043);
    assert_eq!(new_customers, 11);
}

#[test]
fn a_valid_row_parses_with_its_line_number_and_id() {
    let rows = read(format!("\u{feff}{HEADER}\r\n{ROW}\r\n").as_bytes()).unwrap();
    let row = rows.into_iter().next().unwrap().unwrap();
    assert_eq!(row.line, 2);
    assert_eq!(row.customer_id.as_deref(), Some("3668-QPYBK"));
    assert_eq!(row.customer.city, "Los Angeles");
    assert_eq!(row.customer.internet_service, InternetService::Dsl);
    assert_eq!(row.customer.monthly_charges, 53.85);
}

#[test]
fn a_blank_total_charge_on_a_new_customer_reads_as_zero() {
    let rows = read(format!("{HEADER}\n{NEW_CUSTOMER_ROW}\n").as_bytes()).unwrap();
    let row = rows.into_iter().next().unwrap().unwrap();
    assert_eq!(row.customer.tenure_months, 0);
    assert_eq!(row.customer.total_charges, 0.0);
}

#[test]
fn snake_case_and_original_api_headers_are_accepted() {
    let snake: String = HEADER
        .split(',')
        .map(|h| h.to_lowercase().replace(' ', "_"))
        .collect::<Vec<_>>()
        .join(",");
    let api: String = HEADER.replace(' ', "_");
    for header in [snake, api] {
        let rows = read(format!("{header}\n{ROW}\n").as_bytes()).unwrap();
        assert!(rows[0].is_ok(), "{header}: {:?}", rows[0]);
    }
}

#[test]
fn written_csv_reads_back_to_the_same_customers() {
    let original: Vec<Customer> = CustomerReader::open(&seed_path())
        .unwrap()
        .take(500)
        .map(|r| r.unwrap().customer)
        .collect();
    for style in [HeaderStyle::Dataset, HeaderStyle::Snake] {
        let mut writer = CustomerWriter::new(Vec::new(), style, true).unwrap();
        for c in &original {
            writer.write(c).unwrap();
        }
        let bytes = writer.finish().unwrap();
        let back: Vec<Customer> = CustomerReader::new(bytes.as_slice())
            .unwrap()
            .map(|r| r.unwrap().customer)
            .collect();
        assert_eq!(back, original);
    }
}

// ---- malformed files: each gets its own specific error, none panics ----

#[test]
fn an_empty_file_is_refused_as_empty() {
    assert!(matches!(read(b""), Err(Error::Empty)));
    assert!(matches!(read(b"\n\n"), Err(Error::Empty)));
}

#[test]
fn a_header_only_file_has_no_rows() {
    let rows = read(format!("{HEADER}\n").as_bytes()).unwrap();
    assert!(rows.is_empty());
}

#[test]
fn a_missing_column_is_named() {
    let header = HEADER.replace(",Tenure Months", "");
    let row = ROW.replacen(",2,Yes,No,DSL", ",Yes,No,DSL", 1);
    match read(format!("{header}\n{row}\n").as_bytes()) {
        Err(Error::MissingColumns(missing)) => assert_eq!(missing, vec!["Tenure Months"]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_duplicate_header_is_refused_with_both_positions() {
    let header = format!("{HEADER},tenure_months");
    match read(format!("{header}\n{ROW},2\n").as_bytes()) {
        Err(Error::DuplicateColumn {
            field,
            first,
            second,
            ..
        }) => {
            assert_eq!(field, "tenure_months");
            assert_eq!((first, second), (14, 34));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_header_that_is_not_utf8_is_refused() {
    let mut bytes = b"Country,St\xffate".to_vec();
    bytes.extend_from_slice(b"\n");
    assert!(matches!(
        read(&bytes),
        Err(Error::HeaderNotUtf8 { column: 2, .. })
    ));
}

#[test]
fn an_unknown_category_lists_the_allowed_values() {
    let csv = with_column(column("Gender"), "Robot");
    assert_single_error(
        csv.as_bytes(),
        "gender",
        "must be one of \"Female\", \"Male\"",
    );
}

#[test]
fn a_negative_charge_is_out_of_range() {
    let csv = with_column(column("Monthly Charges"), "-5");
    assert_single_error(csv.as_bytes(), "monthly_charges", "must be at least 0");
}

#[test]
fn a_nan_charge_is_not_finite() {
    let csv = with_column(column("Total Charges"), "NaN");
    assert_single_error(csv.as_bytes(), "total_charges", "finite");
    let csv = with_column(column("Monthly Charges"), "inf");
    assert_single_error(csv.as_bytes(), "monthly_charges", "finite");
}

#[test]
fn a_charge_that_is_not_a_number_says_so() {
    let csv = with_column(column("Monthly Charges"), "fifty");
    assert_single_error(csv.as_bytes(), "monthly_charges", "must be a number");
}

#[test]
fn a_tenure_of_1000_months_is_out_of_range() {
    let csv = with_column(column("Tenure Months"), "1000");
    assert_single_error(csv.as_bytes(), "tenure_months", "between 0 and 120");
}

#[test]
fn a_fractional_tenure_is_not_a_whole_number() {
    let csv = with_column(column("Tenure Months"), "1.5");
    assert_single_error(csv.as_bytes(), "tenure_months", "whole number");
}

#[test]
fn an_add_on_without_internet_breaks_the_internet_rule() {
    let csv = with_column(column("Internet Service"), "No");
    let errors = row_errors(csv.as_bytes());
    // All six add-ons are "Yes"/"No" in the sample row, so each one is reported.
    assert_eq!(errors.len(), 6, "{errors:?}");
    assert!(
        errors
            .iter()
            .all(|(_, r)| r.contains("must be \"No internet service\""))
    );
}

#[test]
fn no_internet_service_on_a_dsl_customer_breaks_the_internet_rule() {
    let csv = with_column(column("Streaming TV"), "No internet service");
    assert_single_error(
        csv.as_bytes(),
        "streaming_tv",
        "must not be \"No internet service\"",
    );
}

#[test]
fn multiple_lines_without_phone_service_breaks_the_phone_rule() {
    let csv = with_column(column("Phone Service"), "No");
    assert_single_error(
        csv.as_bytes(),
        "multiple_lines",
        "must be \"No phone service\"",
    );
}

#[test]
fn non_utf8_bytes_in_a_field_are_reported_for_that_field() {
    let csv = with_column(column("City"), "Los Angeles");
    let bytes = csv.replace("Los Angeles", "Los \u{1}ngeles").into_bytes();
    // Replace the placeholder control byte with an invalid UTF-8 byte.
    let bytes: Vec<u8> = bytes
        .into_iter()
        .map(|b| if b == 1 { 0xff } else { b })
        .collect();
    let errors = row_errors(&bytes);
    assert_eq!(
        errors,
        vec![("city".to_owned(), "must be valid UTF-8 text".to_owned())]
    );
}

#[test]
fn a_truncated_row_reports_its_field_count() {
    let truncated = &ROW[..ROW.find(",Mailed check").unwrap()];
    let rows = read(format!("{HEADER}\n{ROW}\n{truncated}\n").as_bytes()).unwrap();
    assert!(rows[0].is_ok());
    match &rows[1] {
        Err(Error::FieldCount {
            line,
            expected,
            found,
        }) => {
            assert_eq!((*line, *expected, *found), (3, 33, 25));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_row_with_extra_fields_reports_its_field_count() {
    let rows = read(format!("{HEADER}\n{ROW},extra\n").as_bytes()).unwrap();
    assert!(matches!(
        rows[0],
        Err(Error::FieldCount {
            expected: 33,
            found: 34,
            ..
        })
    ));
}

#[test]
fn a_blank_total_charge_after_the_first_month_is_required() {
    let csv = with_column(column("Total Charges"), " ");
    assert_single_error(
        csv.as_bytes(),
        "total_charges",
        "is required when tenure_months is above 0",
    );
}

#[test]
fn an_implausible_latitude_is_out_of_range() {
    let csv = with_column(column("Latitude"), "200");
    assert_single_error(csv.as_bytes(), "latitude", "between -90 and 90");
}

#[test]
fn a_zip_code_must_be_five_digits() {
    let csv = with_column(column("Zip Code"), "9000A");
    assert_single_error(csv.as_bytes(), "zip_code", "5-digit");
}

#[test]
fn a_blank_required_field_is_required() {
    let csv = with_column(column("City"), "");
    assert_single_error(csv.as_bytes(), "city", "is required");
}

#[test]
fn control_characters_in_text_are_refused() {
    let csv = with_column(column("City"), "Los\u{7}Angeles");
    assert_single_error(csv.as_bytes(), "city", "control characters");
}

#[test]
fn an_unknown_churn_label_is_refused() {
    let csv = with_column(column("Churn Label"), "Maybe");
    assert_single_error(csv.as_bytes(), "churn_label", "\"Yes\" or \"No\"");
}

#[test]
fn every_problem_of_a_row_is_reported_at_once() {
    let csv = with_column(column("Tenure Months"), "-1")
        .replace("Male", "Robot")
        .replace("53.85", "-1");
    let errors = row_errors(csv.as_bytes());
    let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, vec!["gender", "tenure_months", "monthly_charges"]);
}

#[test]
fn unknown_columns_are_skipped_and_listed() {
    let csv = format!("{HEADER},Favourite Colour\n{ROW},blue\n");
    let reader = CustomerReader::new(csv.as_bytes()).unwrap();
    assert_eq!(reader.unknown_columns(), ["Favourite Colour"]);
    assert_eq!(reader.filter(Result::is_ok).count(), 1);
}

#[test]
fn a_file_without_a_label_column_still_loads() {
    let header = HEADER.replace(",Churn Label", "");
    let row = ROW.replacen(",Yes,1,86", ",1,86", 1);
    let rows = read(format!("{header}\n{row}\n").as_bytes()).unwrap();
    let row = rows.into_iter().next().unwrap().unwrap();
    assert_eq!(row.customer.churn_label, None);
}

#[test]
fn field_errors_name_field_value_and_rule() {
    let csv = with_column(column("Tenure Months"), "1000");
    let rows = read(csv.as_bytes()).unwrap();
    let message = rows[0].as_ref().unwrap_err().to_string();
    assert_eq!(
        message,
        format!(
            "line 2: {} = \"1000\": must be a whole number of months between 0 and 120",
            Field::TenureMonths
        )
    );
}

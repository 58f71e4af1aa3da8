//! Reference profiles of the seed data: exact JSON round trips, size, refusal of foreign or damaged
//! artifacts, and drift of the seed against itself.

use std::path::PathBuf;

use churn_core::Customer;
use churn_monitor::{
    ColumnSummary, DRIFT_FIELDS, Error, ReferenceProfile, StatTest, ValidDriftOptions, data_drift,
    prediction_drift,
};

fn seed_customers() -> Vec<Customer> {
    let path = std::env::var_os("CHURN_SEED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/data/telco_customer_churn.csv")
        });
    churn_core::read_customers(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the seed data at {} ({e}); set CHURN_SEED_DATA",
            path.display()
        )
    })
}

#[test]
fn a_seed_profile_round_trips_through_json_exactly_and_stays_small() {
    let seed = seed_customers();
    let probabilities: Vec<f64> = (0..seed.len())
        .map(|i| (i as f64 * 0.618_033_988_749_894_9).fract())
        .collect();
    let profile = ReferenceProfile::from_customers(&seed)
        .expect("profile")
        .with_prediction(&probabilities)
        .expect("probabilities");
    let json = profile.to_json().expect("json");
    assert_eq!(
        ReferenceProfile::from_json(&json).expect("read back"),
        profile
    );
    assert!(
        json.len() < 300 * 1024,
        "{} bytes is too large for 7,043 rows",
        json.len()
    );

    assert_eq!(profile.n_rows, 7043);
    let names: Vec<&str> = profile.columns.iter().map(|c| c.column.as_str()).collect();
    let expected: Vec<&str> = DRIFT_FIELDS.iter().map(|f| f.name()).collect();
    assert_eq!(names, expected);
    assert!(!names.contains(&"churn_label"));
    // The zip code is kept as whole numbers, as pandas reads it; the city as category counts.
    let Some(ColumnSummary::Numeric(zip)) = profile.column("zip_code").map(|c| &c.summary) else {
        panic!("zip_code must be numeric");
    };
    assert!(zip.integer && zip.n() == 7043);
    let Some(ColumnSummary::Categorical(city)) = profile.column("city").map(|c| &c.summary) else {
        panic!("city must be categorical");
    };
    assert_eq!(city.n(), 7043);
    assert!(city.counts.contains_key("Los Angeles"));
}

#[test]
fn a_profile_of_another_schema_version_is_refused_saying_so() {
    let seed = seed_customers();
    let mut profile = ReferenceProfile::from_customers(&seed[..50]).expect("profile");
    profile.schema_version = 99;
    let json = profile.to_json().expect("json");
    let error = ReferenceProfile::from_json(&json).expect_err("another version");
    let message = error.to_string();
    assert!(
        message.contains("99") && message.contains("version"),
        "{message}"
    );
}

#[test]
fn a_damaged_profile_is_refused_naming_the_column() {
    let seed = seed_customers();
    let mut profile = ReferenceProfile::from_customers(&seed[..50]).expect("profile");
    if let ColumnSummary::Numeric(s) = &mut profile.columns[4].summary {
        s.counts[0] += 1;
    }
    let error =
        ReferenceProfile::from_json(&profile.to_json().expect("json")).expect_err("damaged");
    assert!(matches!(error, Error::InvalidProfile(_)), "{error}");
    assert!(error.to_string().contains("latitude"), "{error}");
}

#[test]
fn the_seed_does_not_drift_against_itself() {
    let seed = seed_customers();
    let profile = ReferenceProfile::from_customers(&seed)
        .expect("profile")
        .with_prediction(&[0.1, 0.2, 0.3])
        .expect("probabilities");
    let drift = data_drift(&profile, &seed, &ValidDriftOptions::default()).expect("drift");
    assert_eq!(drift.n_columns, 25);
    assert_eq!((drift.n_drifted, drift.dataset_drift), (0, false));
    for c in &drift.columns {
        // Identical data: every distance and every PSI is 0 (none of the p-value tests applies to a
        // 7,043-row reference).
        assert!(!c.stattest.is_p_value(), "{}: {}", c.column, c.stattest);
        assert_eq!((c.score, c.psi), (0.0, 0.0), "{}", c.column);
        assert_eq!((c.n_reference, c.n_current), (7043, 7043));
    }
    let p = prediction_drift(&profile, &[0.3, 0.1, 0.2], &ValidDriftOptions::default())
        .expect("prediction drift");
    // Three reference rows holding three distinct values: a small reference with at most 5 values gets
    // chi-square even for a numerical column; identical samples give statistic 0 and p = 1.
    assert_eq!(
        (p.stattest, p.score, p.drifted),
        (StatTest::Chisquare, 1.0, false)
    );
}

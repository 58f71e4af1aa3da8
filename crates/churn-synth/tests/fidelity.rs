//! Fidelity and validity of 10,000 synthetic rows against the real seed data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use churn_core::Customer;
use churn_synth::{FitOptions, Sampler, SynthModel, quality};

fn real() -> &'static [Customer] {
    static REAL: OnceLock<Vec<Customer>> = OnceLock::new();
    REAL.get_or_init(|| {
        churn_core::read_customers(&churn_config::seed_data_path(&churn_config::Env::Process))
            .unwrap()
    })
}

fn sampler() -> &'static Sampler {
    static SAMPLER: OnceLock<Sampler> = OnceLock::new();
    SAMPLER.get_or_init(|| {
        Sampler::new(SynthModel::fit(real(), FitOptions::default()).unwrap()).unwrap()
    })
}

fn synthetic(n: u64, seed: u64) -> Vec<Customer> {
    let s = sampler();
    s.sample(n, seed, 2)
        .iter()
        .map(|r| s.to_customer(r))
        .collect()
}

#[test]
fn ten_thousand_rows_reach_the_quality_targets_with_every_rule_valid() {
    let report = quality(real(), &synthetic(10_000, 42));
    let mut shapes = report.column_shapes.clone();
    shapes.sort_by(|a, b| a.score.total_cmp(&b.score));
    let mut pairs = report.column_pair_trends.clone();
    pairs.sort_by(|a, b| a.score.total_cmp(&b.score));
    eprintln!(
        "overall {:.4} shapes {:.4} trends {:.4}\nworst shapes {:?}\nworst pairs {:?}\nvalidity {:?}",
        report.overall_score,
        report.column_shapes_score,
        report.column_pair_trends_score,
        &shapes[..5],
        &pairs[..10],
        report.validity
    );
    assert!(
        report.overall_score >= 0.90,
        "overall {}",
        report.overall_score
    );
    assert!(
        report.column_shapes_score >= 0.95,
        "shapes {}",
        report.column_shapes_score
    );
    let v = &report.validity;
    assert_eq!(v.rows, 10_000);
    for (rule, share) in [
        ("internet", v.internet_rule),
        ("phone", v.phone_rule),
        ("location", v.real_location),
        ("charges", v.charges_consistent),
        ("all", v.all_rules),
        ("ranges", v.in_training_ranges),
        ("domain", v.domain_valid),
    ] {
        assert_eq!(share, 1.0, "{rule}");
    }
}

#[test]
fn the_same_seed_gives_the_same_rows_whatever_the_thread_count() {
    let s = sampler();
    let one = s.sample(10_000, 99, 1);
    let two = s.sample(10_000, 99, 2);
    assert_eq!(one, two);
    // A shorter sample is a prefix of a longer one.
    assert_eq!(s.sample(100, 99, 1)[..], one[..100]);
    assert_ne!(s.sample(100, 100, 1)[..], one[..100]);
}

#[test]
fn the_artifact_round_trips_exactly() {
    let model = sampler().model().clone();
    let bytes = model.to_bytes().unwrap();
    let back = SynthModel::from_bytes(&bytes).unwrap();
    assert_eq!(back, model);
    assert_eq!(back.to_bytes().unwrap(), bytes);
    let again = Sampler::new(back).unwrap();
    assert_eq!(again.sample(1000, 5, 2), sampler().sample(1000, 5, 2));
}

#[test]
fn an_artifact_of_another_schema_version_is_refused() {
    let mut value: serde_json::Value =
        serde_json::from_slice(&sampler().model().to_bytes().unwrap()).unwrap();
    value["schema_version"] = 99.into();
    let err = SynthModel::from_bytes(&serde_json::to_vec(&value).unwrap()).unwrap_err();
    assert!(err.to_string().contains("schema version 99"), "{err}");
    let err = SynthModel::from_bytes(b"{not json").unwrap_err();
    assert!(err.to_string().contains("artifact is invalid"), "{err}");
}

#[test]
fn fitting_is_deterministic_and_reports_each_columns_family() {
    let a = SynthModel::fit(
        real(),
        FitOptions {
            seed: 3,
            ..FitOptions::default()
        },
    )
    .unwrap();
    let b = SynthModel::fit(
        real(),
        FitOptions {
            seed: 3,
            ..FitOptions::default()
        },
    )
    .unwrap();
    assert_eq!(a, b);
    let families = a.families();
    // Four observed (phone, internet) segments, three numeric columns each.
    assert_eq!(a.segments.len(), 4);
    assert_eq!(families.len(), 12);
    let known = [
        "normal",
        "truncated_normal",
        "beta",
        "gamma",
        "uniform",
        "empirical",
    ];
    assert!(families.iter().all(|f| known.contains(&f.family)));
}

#[test]
fn every_location_is_a_real_one_and_values_stay_in_training_ranges() {
    let s = sampler();
    let rows = s.sample(5000, 11, 2);
    let zips: std::collections::HashSet<&str> =
        real().iter().map(|c| c.zip_code.as_str()).collect();
    let max_monthly = real().iter().map(|c| c.monthly_charges).fold(0.0, f64::max);
    for row in &rows {
        let c = s.to_customer(row);
        assert!(zips.contains(c.zip_code.as_str()));
        assert!(c.monthly_charges <= max_monthly);
        assert!(c.tenure_months <= 72);
    }
}

#[test]
fn too_little_or_unlabelled_data_is_refused() {
    let err = SynthModel::fit(&real()[..10], FitOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("10 training rows is too few"),
        "{err}"
    );
    let mut unlabelled = real()[..100].to_vec();
    unlabelled[7].churn_label = None;
    let err = SynthModel::fit(&unlabelled, FitOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("row 7 has no churn label"),
        "{err}"
    );
}

#[test]
fn fit_options_out_of_range_are_refused_naming_the_parameter() {
    for min_rows in [0, 9, 10_000_001] {
        let err = SynthModel::fit(
            real(),
            FitOptions {
                min_rows,
                ..FitOptions::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("min_rows"), "{err}");
        assert!(err.contains(&min_rows.to_string()), "{err}");
    }
}

//! Conformance with the real Evidently: seed-derived reference and current sets are written as CSV with
//! churn-core's writer, Evidently 0.7.23's `DataDriftPreset` runs on `pd.read_csv` of them
//! (`tests/evidently_drift.py`), and every column's type, test, score, verdict and PSI, and the
//! dataset verdict, must equal ours.
//!
//! Python comes from `CHURN_PYTHON` (scripts/test sets it to the project's venv; `scripts/venv` prints
//! that venv's path). Without it the test fails, saying so: it is the acceptance test of the crate and
//! must never pass by skipping.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use churn_core::{Contract, Customer, CustomerWriter, HeaderStyle, InternetService};
use churn_monitor::{
    ColumnDrift, DRIFT_FIELDS, PREDICTION_COLUMN, ReferenceProfile, StatTest, ValidDriftOptions,
    data_drift, prediction_drift,
};
use serde::Deserialize;

/// Scores must agree to this (absolute) and PSI to this relative to max(1, |PSI|).
const TOLERANCE: f64 = 1e-6;

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

fn python() -> PathBuf {
    match std::env::var_os("CHURN_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!(
            "CHURN_PYTHON is not set: this test runs Evidently 0.7.23 in the project's Python venv. Run \
             scripts/test, or set CHURN_PYTHON=$(scripts/venv)/bin/python"
        ),
    }
}

/// A small deterministic generator (64-bit LCG, Knuth's constants) so Rust picks the same rows on
/// every run without a dependency.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn resample(from: &[Customer], n: usize, seed: u64) -> Vec<Customer> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|_| from[rng.below(from.len())].clone())
        .collect()
}

/// A population shifted on purpose: southern fibre-optic month-to-month customers, charged 10% more.
/// Location, tenure, charges, the internet add-ons and the contract all move; gender, partner and the
/// constant country and state do not.
fn shifted(seed: &[Customer], n: usize, rng_seed: u64) -> Vec<Customer> {
    let pool: Vec<Customer> = seed
        .iter()
        .filter(|c| {
            c.internet_service == InternetService::FiberOptic
                && c.contract == Contract::MonthToMonth
                && c.latitude < 35.0
        })
        .cloned()
        .collect();
    let mut rows = resample(&pool, n, rng_seed);
    for c in &mut rows {
        c.monthly_charges = (c.monthly_charges * 110.0).round() / 100.0;
    }
    rows
}

/// A mixture: `shifted_share` of the rows from the shifted population, the rest from all of them.
fn mixed(seed: &[Customer], n: usize, shifted_share: f64, rng_seed: u64) -> Vec<Customer> {
    let k = (n as f64 * shifted_share) as usize;
    let mut rows = resample(seed, n - k, rng_seed);
    rows.extend(shifted(seed, k, rng_seed + 1));
    rows
}

/// A stand-in for a model's churn probability: a fixed logistic score of a few attributes.
fn probability(c: &Customer) -> f64 {
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let z = -1.2
        + 1.1 * flag(c.contract == Contract::MonthToMonth)
        + 0.9 * flag(c.internet_service == InternetService::FiberOptic)
        - 0.035 * f64::from(c.tenure_months)
        + 0.004 * c.monthly_charges
        - 0.6 * flag(c.contract == Contract::TwoYear);
    1.0 / (1.0 + (-z).exp())
}

fn write_customers(path: &Path, rows: &[Customer]) {
    let file = std::fs::File::create(path).expect("create CSV");
    // snake_case headers name the columns as ours do; no label column, as drift never sees it.
    let mut writer = CustomerWriter::new(file, HeaderStyle::Snake, false).expect("CSV header");
    for c in rows {
        writer.write(c).expect("CSV row");
    }
    writer.finish().expect("CSV flush");
}

fn write_probabilities(path: &Path, rows: &[Customer]) -> Vec<f64> {
    let probabilities: Vec<f64> = rows.iter().map(probability).collect();
    let mut text = format!("{PREDICTION_COLUMN}\n");
    for p in &probabilities {
        // Rust's shortest round-trip form; pandas reads it back to the same double.
        text.push_str(&format!("{p}\n"));
    }
    std::fs::write(path, text).expect("write probabilities");
    probabilities
}

#[derive(Debug, Deserialize)]
struct EvidentlyColumn {
    column_type: String,
    stattest: String,
    score: f64,
    drifted: bool,
    psi: f64,
}

#[derive(Debug, Deserialize)]
struct EvidentlyResult {
    columns: BTreeMap<String, EvidentlyColumn>,
    n_drifted: usize,
    dataset_drift: bool,
}

/// What we computed for one scenario, to compare with Evidently's answer.
struct Ours {
    columns: Vec<ColumnDrift>,
    n_drifted: usize,
    dataset_drift: bool,
}

struct Scenario {
    name: String,
    reference_csv: PathBuf,
    current_csv: PathBuf,
    ours: Ours,
}

fn compare(scenario: &Scenario, theirs: &EvidentlyResult, mismatches: &mut Vec<String>) {
    let name = &scenario.name;
    let ours_names: BTreeSet<&str> = scenario
        .ours
        .columns
        .iter()
        .map(|c| c.column.as_str())
        .collect();
    let their_names: BTreeSet<&str> = theirs.columns.keys().map(String::as_str).collect();
    if ours_names != their_names {
        mismatches.push(format!(
            "{name}: columns differ: ours {ours_names:?}, Evidently's {their_names:?}"
        ));
        return;
    }
    for c in &scenario.ours.columns {
        let e = &theirs.columns[&c.column];
        let column = &c.column;
        if c.column_type.name() != e.column_type {
            mismatches.push(format!(
                "{name}/{column}: type {} vs Evidently's {}",
                c.column_type, e.column_type
            ));
        }
        if c.stattest.name() != e.stattest {
            mismatches.push(format!(
                "{name}/{column}: stattest {} vs Evidently's {}",
                c.stattest, e.stattest
            ));
        }
        if (c.score - e.score).abs() > TOLERANCE {
            mismatches.push(format!(
                "{name}/{column}: {} score {} vs Evidently's {}",
                c.stattest, c.score, e.score
            ));
        }
        if c.drifted != e.drifted {
            mismatches.push(format!(
                "{name}/{column}: drifted {} vs Evidently's {} (score {})",
                c.drifted, e.drifted, e.score
            ));
        }
        if (c.psi - e.psi).abs() > TOLERANCE * e.psi.abs().max(1.0) {
            mismatches.push(format!(
                "{name}/{column}: PSI {} vs Evidently's {}",
                c.psi, e.psi
            ));
        }
    }
    if scenario.ours.n_drifted != theirs.n_drifted
        || scenario.ours.dataset_drift != theirs.dataset_drift
    {
        mismatches.push(format!(
            "{name}: {} drifted columns, dataset drift {} vs Evidently's {} and {}",
            scenario.ours.n_drifted,
            scenario.ours.dataset_drift,
            theirs.n_drifted,
            theirs.dataset_drift
        ));
    }
}

#[test]
fn drift_matches_evidently_column_by_column_on_seed_derived_data() {
    let python = python();
    let seed = seed_customers();
    let dir = tempfile::tempdir().expect("temp dir");
    let options = ValidDriftOptions::default();

    // Two references: the whole seed (> 1000 rows: distances) and every ninth row (783 rows: p-values),
    // plus a 504-row reference against 12,000-row currents, where scipy's KS turns asymptotic.
    let large: Vec<Customer> = seed.clone();
    let small: Vec<Customer> = seed.iter().step_by(9).cloned().collect();
    let smaller: Vec<Customer> = seed.iter().step_by(14).cloned().collect();
    let cases: Vec<(&str, &[Customer], Vec<Customer>)> = vec![
        ("large_unshifted", &large, resample(&seed, 4000, 1)),
        ("large_mild", &large, mixed(&seed, 4000, 0.3, 2)),
        ("large_shifted", &large, shifted(&seed, 4000, 3)),
        ("small_unshifted", &small, resample(&seed, 3000, 4)),
        ("small_mild", &small, mixed(&seed, 3000, 0.08, 5)),
        ("small_shifted", &small, shifted(&seed, 3000, 6)),
        ("asymptotic_unshifted", &smaller, resample(&seed, 12_000, 7)),
        ("asymptotic_mild", &smaller, mixed(&seed, 12_000, 0.04, 8)),
    ];

    let mut scenarios = Vec::new();
    for (name, reference, current) in &cases {
        let reference_csv = dir.path().join(format!("{name}_reference.csv"));
        let current_csv = dir.path().join(format!("{name}_current.csv"));
        write_customers(&reference_csv, reference);
        write_customers(&current_csv, current);
        let reference_probabilities = write_probabilities(
            &dir.path().join(format!("{name}_reference_p.csv")),
            reference,
        );
        let current_probabilities =
            write_probabilities(&dir.path().join(format!("{name}_current_p.csv")), current);

        let profile = ReferenceProfile::from_customers(reference)
            .expect("profile")
            .with_prediction(&reference_probabilities)
            .expect("prediction profile");
        // The profile is used as the integrator will use it: after a round trip through its JSON.
        let profile =
            ReferenceProfile::from_json(&profile.to_json().expect("json")).expect("read back");
        let drift = data_drift(&profile, current, &options).expect("data drift");
        scenarios.push(Scenario {
            name: (*name).to_owned(),
            reference_csv,
            current_csv,
            ours: Ours {
                n_drifted: drift.n_drifted,
                dataset_drift: drift.dataset_drift,
                columns: drift.columns,
            },
        });

        let prediction =
            prediction_drift(&profile, &current_probabilities, &options).expect("prediction drift");
        scenarios.push(Scenario {
            name: format!("{name}_prediction"),
            reference_csv: dir.path().join(format!("{name}_reference_p.csv")),
            current_csv: dir.path().join(format!("{name}_current_p.csv")),
            ours: Ours {
                n_drifted: usize::from(prediction.drifted),
                // One column: the "dataset" drifts exactly when it does (share 1 or 0 against 0.5).
                dataset_drift: prediction.drifted,
                columns: vec![prediction],
            },
        });
    }

    let manifest = serde_json::json!({
        "scenarios": scenarios.iter().map(|s| serde_json::json!({
            "name": s.name,
            "reference": s.reference_csv,
            "current": s.current_csv,
        })).collect::<Vec<_>>()
    });
    let manifest_path = dir.path().join("manifest.json");
    std::fs::write(&manifest_path, manifest.to_string()).expect("write manifest");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/evidently_drift.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(&manifest_path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        output.status.success(),
        "{} {} failed: {}",
        python.display(),
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs: BTreeMap<String, EvidentlyResult> =
        serde_json::from_slice(&output.stdout).expect("Evidently's JSON answer");

    let mut mismatches = Vec::new();
    for s in &scenarios {
        // A record of what was compared (shown with --nocapture or on failure).
        let summary: Vec<String> = s
            .ours
            .columns
            .iter()
            .map(|c| {
                format!(
                    "{}:{}={:.4}{}",
                    c.column,
                    c.stattest,
                    c.score,
                    if c.drifted { "*" } else { "" }
                )
            })
            .collect();
        eprintln!(
            "{}: {} drifted, dataset drift {}; {}",
            s.name,
            s.ours.n_drifted,
            s.ours.dataset_drift,
            summary.join(" ")
        );
        let t = theirs
            .get(&s.name)
            .unwrap_or_else(|| panic!("no answer for {}", s.name));
        compare(s, t, &mut mismatches);
    }
    assert!(
        mismatches.is_empty(),
        "{} differences from Evidently:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );

    // The scenarios must exercise what they claim, or the agreement above proves little.
    let by_name: BTreeMap<&str, &Scenario> =
        scenarios.iter().map(|s| (s.name.as_str(), s)).collect();
    let tests_used: BTreeSet<StatTest> = scenarios
        .iter()
        .flat_map(|s| s.ours.columns.iter().map(|c| c.stattest))
        .collect();
    for test in [
        StatTest::Ks,
        StatTest::Chisquare,
        StatTest::Z,
        StatTest::Wasserstein,
        StatTest::Jensenshannon,
    ] {
        assert!(tests_used.contains(&test), "no column used {test}");
    }
    assert_eq!(
        by_name["large_unshifted"].ours.columns.len(),
        DRIFT_FIELDS.len()
    );
    for unshifted in ["large_unshifted", "small_unshifted", "asymptotic_unshifted"] {
        assert!(
            !by_name[unshifted].ours.dataset_drift,
            "{unshifted} should not drift"
        );
    }
    for drifting in ["large_shifted", "small_shifted"] {
        let s = by_name[drifting];
        assert!(s.ours.dataset_drift, "{drifting} should drift");
        assert!(
            s.ours.n_drifted < s.ours.columns.len(),
            "{drifting}: some columns must stay undrifted"
        );
    }
    let asymptotic = by_name["asymptotic_mild"];
    assert!(
        asymptotic
            .ours
            .columns
            .iter()
            .any(|c| c.stattest == StatTest::Ks && c.n_current > 10_000),
        "the asymptotic scenario must run KS on more than 10,000 current rows"
    );
}

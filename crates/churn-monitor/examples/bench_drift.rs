//! Drift benchmark, our side: profile the 7,043-row seed as the reference, synthesise a large current set
//! from it (resampled rows with raised charges and perturbed tenure), then time profile building and data drift
//! over all 25 attributes. Writes both sets as CSV for Evidently's side (`bench/evidently/bench_drift.py`)
//! and prints one JSON line of results. `scripts/bench-drift` runs both and prints the table.
//!
//! ```sh
//! cargo run --release -p churn-monitor --example bench_drift -- SEED.csv OUT_DIR [ROWS] [RUNS]
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use churn_core::{Customer, CustomerWriter, HeaderStyle};
use churn_monitor::{ReferenceProfile, ValidDriftOptions, data_drift};

/// splitmix64: a tiny deterministic generator, so the same rows are synthesised on every run.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in [-1, 1).
    fn signed_unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// Resampled seed rows with charges raised 10% ± 8% (so the charge columns drift) and tenure moved by up
/// to ±3 months.
fn synthesise(seed: &[Customer], n: usize) -> Vec<Customer> {
    let mut rng = SplitMix(20_261_125);
    (0..n)
        .map(|_| {
            let mut c = seed[rng.below(seed.len())].clone();
            let factor = 1.1 + 0.08 * rng.signed_unit();
            c.monthly_charges = (c.monthly_charges * factor * 100.0).round() / 100.0;
            c.total_charges = (c.total_charges * factor * 100.0).round() / 100.0;
            let shift = rng.below(7) as i64 - 3;
            c.tenure_months = (i64::from(c.tenure_months) + shift).clamp(0, 72) as u32;
            c
        })
        .collect()
}

fn write_csv(path: &Path, rows: &[Customer]) {
    let file = std::fs::File::create(path).expect("create CSV");
    let mut writer = CustomerWriter::new(std::io::BufWriter::new(file), HeaderStyle::Snake, false)
        .expect("CSV header");
    for c in rows {
        writer.write(c).expect("CSV row");
    }
    writer.finish().expect("CSV flush");
}

fn median(mut seconds: Vec<f64>) -> f64 {
    seconds.sort_by(f64::total_cmp);
    seconds[seconds.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bench_drift SEED.csv OUT_DIR [ROWS=100000] [RUNS=5]";
    let seed_path = PathBuf::from(args.get(1).expect(usage));
    let out = PathBuf::from(args.get(2).expect(usage));
    let rows: usize = args.get(3).map_or(100_000, |s| s.parse().expect(usage));
    let runs: usize = args.get(4).map_or(5, |s| s.parse().expect(usage));

    let seed = churn_core::read_customers(&seed_path).expect("seed data");
    let current = synthesise(&seed, rows);
    std::fs::create_dir_all(&out).expect("output directory");
    write_csv(&out.join("reference.csv"), &seed);
    write_csv(&out.join("current.csv"), &current);

    let options = ValidDriftOptions::default();
    let mut profile_times = Vec::new();
    let mut profile = None;
    for _ in 0..runs.max(1) * 4 {
        let start = Instant::now();
        profile = Some(ReferenceProfile::from_customers(&seed).expect("profile"));
        profile_times.push(start.elapsed().as_secs_f64());
    }
    let profile = profile.expect("at least one run");
    let json_bytes = profile.to_json().expect("json").len();

    let mut drift_times = Vec::new();
    let mut drift = None;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        drift = Some(data_drift(&profile, &current, &options).expect("drift"));
        drift_times.push(start.elapsed().as_secs_f64());
    }
    let drift = drift.expect("at least one run");
    let columns: serde_json::Map<String, serde_json::Value> = drift
        .columns
        .iter()
        .map(|c| {
            (
                c.column.clone(),
                serde_json::json!({"stattest": c.stattest, "score": c.score, "drifted": c.drifted}),
            )
        })
        .collect();
    let result = serde_json::json!({
        "reference_rows": seed.len(),
        "current_rows": current.len(),
        "profile_seconds": median(profile_times),
        "profile_json_bytes": json_bytes,
        "drift_seconds": median(drift_times),
        "n_drifted": drift.n_drifted,
        "dataset_drift": drift.dataset_drift,
        "columns": columns,
    });
    println!("{result}");
}

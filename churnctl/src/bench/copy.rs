//! `churnctl bench copy`: the warehouse write ceiling, transactions of three COPYs of synthetic customers
//! written as the generate job writes them, without HTTP or models in the way.

use std::time::Instant;

use churn_synth::{FitOptions, Sampler, SynthModel};

use super::{median, synthetic_customers};

/// Times `batches` transactions of `batch_size` customers written as the generate job writes them.
pub(super) async fn copy_ceiling(
    database_url: Option<String>,
    batch_size: usize,
    batches: usize,
) -> anyhow::Result<()> {
    use churn_store::warehouse::{Classification, Synthesis, write_generated};
    let (env, pool) = super::migrated_pool(database_url, 2).await?;
    let seed = churn_core::read_customers(&churn_config::seed_data_path(&env))?;
    let model = SynthModel::fit(&seed, FitOptions::default())?;
    let sampler = Sampler::new(model)?;
    let mut ulids = ulid::Generator::new();
    let synthesis = Synthesis {
        synthesizer_name: "bench".to_owned(),
        synthesizer_version: 1,
        seed: Some(0),
    };
    // The foreign keys of the monitoring tables are not involved; the registry needs no version here.
    let mut seconds = Vec::with_capacity(batches);
    for b in 0..batches {
        let customers = synthetic_customers(&sampler, &mut ulids, batch_size, b as u64);
        let classifications: Vec<Classification> = customers
            .iter()
            .enumerate()
            .map(|(i, (id, _))| {
                let p = (i % 100) as f64 / 100.0;
                Classification {
                    customer_id: *id,
                    model_name: "bench".to_owned(),
                    model_version: 1,
                    churn_probability: p,
                    predicted_churn_label: p >= 0.5,
                    threshold: 0.5,
                }
            })
            .collect();
        let started = Instant::now();
        write_generated(&pool, &customers, &synthesis, &classifications).await?;
        seconds.push(started.elapsed().as_secs_f64());
    }
    let total: f64 = seconds.iter().sum();
    println!(
        "| COPY ceiling: {batches} transactions of {batch_size} customers × 3 tables | {:.0} customers/s | median {:.1} ms per transaction |",
        (batches * batch_size) as f64 / total,
        median(seconds) * 1000.0
    );
    Ok(())
}

//! `churnctl bench copy`: the warehouse write ceiling, transactions of three COPYs of synthetic customers
//! written as the generate job writes them, without HTTP or models in the way.

use std::time::Instant;

use churn_core::Customer;
use churn_synth::{FitOptions, Sampler, SynthModel};

use super::median;

/// Times `batches` transactions of `batch_size` customers written as the generate job writes them.
pub(super) async fn copy_ceiling(
    database_url: Option<String>,
    batch_size: usize,
    batches: usize,
) -> anyhow::Result<()> {
    use churn_store::warehouse::{Classification, Synthesis, write_generated};
    let env = churn_config::Env::process_with(database_url.map(|u| ("DATABASE_URL", u)));
    let database = churn_config::DatabaseConfig::from_env(&env)?;
    churn_store::migrate(database.url.expose()).await?;
    let pool = churn_store::connect(database.url.expose(), 2).await?;
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
        let rows = sampler.sample(batch_size as u64, b as u64, 2);
        let customers: Vec<(uuid::Uuid, Customer)> = rows
            .iter()
            .map(|r| {
                (
                    churn_store::warehouse::next_customer_id(&mut ulids),
                    sampler.to_customer(r),
                )
            })
            .collect();
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

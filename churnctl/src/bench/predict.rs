//! `churnctl bench predict`: the classifier's per-request work in-process: parse, predict one, explain,
//! and a batch of 1,000.

use std::path::Path;
use std::time::Instant;

use churn_core::Customer;

/// Per-request costs of the classifier's work, in-process: parsing and validating a customer, one-row
/// prediction, an explanation, and a 1,000-customer batch.
pub(super) fn bench_predict(model: &churn_automl::LoadedModel, data: &Path) -> anyhow::Result<()> {
    let customers = churn_core::read_customers(data)?;
    let bodies: Vec<serde_json::Value> = customers
        .iter()
        .take(1000)
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()?;
    let per = |n: usize, mut f: Box<dyn FnMut(usize) + '_>| {
        let started = Instant::now();
        for i in 0..n {
            f(i);
        }
        started.elapsed().as_secs_f64() * 1e6 / n as f64
    };
    let parse = per(
        20_000,
        Box::new(|i| {
            let c = Customer::from_json(&bodies[i % bodies.len()]);
            std::hint::black_box(c.is_ok());
        }),
    );
    let one = per(
        20_000,
        Box::new(|i| {
            let p = model.predict(std::slice::from_ref(&customers[i % customers.len()]));
            std::hint::black_box(p);
        }),
    );
    let explain = per(
        2_000,
        Box::new(|i| {
            let e = model.explain(&customers[i % customers.len()], 5);
            std::hint::black_box(e);
        }),
    );
    let batch = per(
        200,
        Box::new(|i| {
            let start = (i * 1000) % (customers.len() - 1000);
            let p = model.predict(&customers[start..start + 1000]);
            std::hint::black_box(p);
        }),
    );
    println!("| classifier work, in-process ({}) | µs |", model.family());
    println!("|---|---|");
    println!("| parse and validate one customer (JSON value → record) | {parse:.2} |");
    println!("| predict one customer | {one:.2} |");
    println!("| explain one customer (top 5 fields) | {explain:.1} |");
    println!("| predict a batch of 1,000 customers | {batch:.0} |");
    Ok(())
}

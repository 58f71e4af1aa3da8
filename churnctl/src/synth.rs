//! `churnctl synth fit|sample|report`: fit the Gaussian-copula synthesizer, draw rows, score fidelity.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use churn_core::{Customer, HeaderStyle};
use churn_models::synthesizer;
use churn_registry::ModelRef;
use churn_synth::{CsvFormatter, FitOptions, Sampler, SynthModel, report};
use clap::{Subcommand, ValueEnum};

use crate::progress::Progress;
use crate::registry_args::{RegistryArgs, seed_or};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Header {
    /// The dataset's headers ("Tenure Months").
    Dataset,
    /// snake_case ("tenure_months").
    Snake,
}

#[derive(Debug, Subcommand)]
pub enum SynthCommand {
    /// Fit a synthesizer on a customer CSV and save the artifact.
    Fit {
        /// Training data (the IBM Telco layout).
        /// [default: $CHURN_SEED_DATA, else shared/data/telco_customer_churn.csv in an ancestor folder]
        #[arg(long)]
        data: Option<PathBuf>,
        /// Where to write the artifact (JSON).
        #[arg(long)]
        out: PathBuf,
        /// Seed of the fit's tie-breaking; the same data and seed give the same model.
        #[arg(long, default_value_t = 0x5eed)]
        seed: u64,
        /// Also register it as a new version of the `synthesizer` model (champion if there is none).
        #[arg(long)]
        register: bool,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Draw rows from a synthesizer into a CSV file.
    Sample {
        /// The artifact: a file, or registry:synthesizer@champion, registry:synthesizer/3.
        #[arg(long)]
        model: String,
        /// Number of rows.
        #[arg(short = 'n', long)]
        rows: u64,
        /// Seed; the same seed gives the same rows.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output CSV.
        #[arg(long)]
        out: PathBuf,
        /// Header names.
        #[arg(long, value_enum, default_value_t = Header::Dataset)]
        header: Header,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Score a synthesizer's fidelity against real data (SDMetrics' QualityReport definitions).
    Report {
        #[arg(long)]
        model: String,
        /// Real data to compare with.
        /// [default: $CHURN_SEED_DATA, else shared/data/telco_customer_churn.csv in an ancestor folder]
        #[arg(long)]
        data: Option<PathBuf>,
        /// Synthetic rows to draw.
        #[arg(short = 'n', long, default_value_t = 10_000)]
        rows: u64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Also score a bootstrap resample of the real data (the ceiling) and independent columns.
        #[arg(long)]
        baselines: bool,
        /// Print the whole report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

pub async fn run(command: SynthCommand) -> anyhow::Result<()> {
    match command {
        SynthCommand::Fit {
            data,
            out,
            seed,
            register,
            registry,
        } => fit(&seed_or(data), &out, seed, register.then_some(&registry)).await,
        SynthCommand::Sample {
            model,
            rows,
            seed,
            out,
            header,
            threads,
            registry,
        } => {
            let sampler = load(&model, &registry).await?;
            let style = match header {
                Header::Dataset => HeaderStyle::Dataset,
                Header::Snake => HeaderStyle::Snake,
            };
            let threads = threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
            });
            tokio::task::spawn_blocking(move || {
                sample_to_csv(&sampler, rows, seed, &out, style, threads)
            })
            .await?
        }
        SynthCommand::Report {
            model,
            data,
            rows,
            seed,
            baselines,
            json,
            registry,
        } => {
            let sampler = load(&model, &registry).await?;
            let data = seed_or(data);
            tokio::task::spawn_blocking(move || {
                print_report(&sampler, &data, rows, seed, baselines, json)
            })
            .await?
        }
    }
}

fn read_data(path: &Path) -> anyhow::Result<Vec<Customer>> {
    churn_core::read_customers(path).with_context(|| format!("reading {}", path.display()))
}

async fn fit(
    data: &Path,
    out: &Path,
    seed: u64,
    register: Option<&RegistryArgs>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let (fitted, mut info) = synthesizer::fit_file(
        data,
        FitOptions {
            seed,
            ..FitOptions::default()
        },
    )
    .with_context(|| format!("fitting on {}", data.display()))?;
    info.code_version = format!("churnctl {}", env!("CARGO_PKG_VERSION"));
    let model = &fitted.model;
    let bytes = model.to_bytes()?;
    write_atomically(out, &bytes)?;
    println!(
        "fitted on {} rows in {:.3} s ({:.3} s with reading and hashing the file); {} segments, {} locations; saved {} ({} bytes)",
        info.train_rows,
        fitted.fit_seconds,
        started.elapsed().as_secs_f64(),
        model.segments.len(),
        model.locations.len(),
        out.display(),
        bytes.len()
    );
    let mut table = crate::table::new(&["segment", "column", "family", "KS"], &[3]);
    for f in model.families() {
        table.add_row(vec![
            f.segment,
            format!("{:?}", f.column),
            f.family.to_owned(),
            format!("{:.4}", f.ks),
        ]);
    }
    println!("{table}");
    if let Some(args) = register {
        let registry = args.open().await?;
        let (version, current) = synthesizer::register(&registry, &fitted, &info).await?;
        println!(
            "registered {} version {}{}",
            synthesizer::MODEL_NAME,
            version.version,
            if current {
                " (champion: there was none)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// Loads a synthesizer from a file or a registry reference.
pub async fn load(reference: &str, registry: &RegistryArgs) -> anyhow::Result<Sampler> {
    let reference: ModelRef = reference.parse()?;
    match &reference {
        // A file needs no database.
        ModelRef::Path(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            Ok(Sampler::new(SynthModel::from_bytes(&bytes)?)?)
        }
        ModelRef::Registry { .. } => Ok(synthesizer::load(
            &registry.open_read_only().await?,
            &reference,
        )
        .await?
        .0),
    }
}

/// Writes to a temporary file beside `path`, then renames it into place.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn sample_to_csv(
    sampler: &Sampler,
    rows: u64,
    seed: u64,
    out: &Path,
    style: HeaderStyle,
    threads: usize,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    let mut file = std::io::BufWriter::with_capacity(1 << 20, tmp);
    file.write_all(&CsvFormatter::header(style))?;
    let formatter = CsvFormatter::new(sampler.model());
    let mut progress = Progress::rows("sampling", rows);
    let mut written = 0u64;
    sampler.for_each_chunk(
        rows,
        seed,
        threads,
        |chunk| (chunk.len() as u64, formatter.format_chunk(chunk)),
        |(count, bytes)| {
            file.write_all(&bytes)?;
            written += count;
            progress.set(written);
            Ok::<(), std::io::Error>(())
        },
    )?;
    let tmp = file.into_inner().map_err(|e| e.into_error())?;
    tmp.persist(out)
        .with_context(|| format!("writing {}", out.display()))?;
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    let peak = crate::util::peak_rss_mib()
        .map(|m| format!(", peak memory {m:.1} MiB"))
        .unwrap_or_default();
    println!(
        "wrote {rows} rows to {} in {secs:.3} s ({:.0} rows/s{peak})",
        out.display(),
        rows as f64 / secs.max(1e-9)
    );
    Ok(())
}

fn print_report(
    sampler: &Sampler,
    data: &Path,
    rows: u64,
    seed: u64,
    baselines: bool,
    json: bool,
) -> anyhow::Result<()> {
    let real = read_data(data)?;
    let synthetic: Vec<Customer> = sampler
        .sample(rows, seed, 2)
        .iter()
        .map(|r| sampler.to_customer(r))
        .collect();
    let result = report::quality(&real, &synthetic);
    if json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(());
    }
    println!(
        "fidelity of {rows} synthetic rows against {} real rows",
        real.len()
    );
    println!("  overall quality      {:.4}", result.overall_score);
    println!("  column shapes        {:.4}", result.column_shapes_score);
    println!(
        "  column pair trends   {:.4}",
        result.column_pair_trends_score
    );
    let v = &result.validity;
    println!("rule validity (share of rows)");
    println!("  internet add-ons     {:.4}", v.internet_rule);
    println!("  phone lines          {:.4}", v.phone_rule);
    println!("  real location        {:.4}", v.real_location);
    println!("  total ≈ monthly×tenure {:.4}", v.charges_consistent);
    println!("  all four rules       {:.4}", v.all_rules);
    println!("  in training ranges   {:.4}", v.in_training_ranges);
    println!("  domain validation    {:.4}", v.domain_valid);
    println!("column shapes");
    for c in &result.column_shapes {
        println!("  {:<20} {:<14} {:.4}", c.column, c.metric, c.score);
    }
    if baselines {
        let bootstrap = report::quality(&real, &report::bootstrap(&real, rows as usize, seed));
        let independent = report::quality(
            &real,
            &report::independent_columns(&real, rows as usize, seed),
        );
        println!("baselines (overall / shapes / pair trends / all rules)");
        for (name, r) in [
            ("bootstrap of the real rows", &bootstrap),
            ("independent columns", &independent),
        ] {
            println!(
                "  {:<28} {:.4} / {:.4} / {:.4} / {:.4}",
                name,
                r.overall_score,
                r.column_shapes_score,
                r.column_pair_trends_score,
                r.validity.all_rules
            );
        }
    }
    Ok(())
}

//! Sampling from a fitted model: deterministic for a seed, chunked, and parallel without changing rows.
//!
//! Rows are made in chunks of [`CHUNK_ROWS`]; chunk k draws from its own generator seeded by (seed, k),
//! so the same seed gives the same rows whatever the number of threads, and a shorter sample is a
//! prefix of a longer one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;

use churn_core::{
    AddOn, Contract, Customer, Gender, InternetService, MultipleLines, PaymentMethod, YesNo,
};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::marginal::ZTable;
use crate::model::{
    Column, Location, MAX_DIMENSION, SynthModel, decode, fixed_add_on, fixed_multiple_lines,
};
use crate::normal;

/// Rows per chunk: one generator seed per chunk.
pub const CHUNK_ROWS: u64 = 4096;

/// One synthetic customer in compact form; [`Sampler::to_customer`] gives the domain record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyntheticRow {
    /// Index into the model's location table.
    pub location: u32,
    pub gender: Gender,
    pub senior_citizen: YesNo,
    pub partner: YesNo,
    pub dependents: YesNo,
    pub tenure_months: u32,
    pub phone_service: YesNo,
    pub multiple_lines: MultipleLines,
    pub internet_service: InternetService,
    pub add_ons: [AddOn; 6],
    pub contract: Contract,
    pub paperless_billing: YesNo,
    pub payment_method: PaymentMethod,
    pub monthly_cents: u64,
    pub total_cents: u64,
    pub churn_label: YesNo,
}

#[derive(Debug)]
struct PreparedCategorical {
    column: Column,
    /// z thresholds between consecutive categories: Φ⁻¹ of the cumulative probabilities.
    thresholds: Vec<f64>,
    codes: Vec<u32>,
}

#[derive(Debug)]
struct PreparedNumeric {
    column: Column,
    table: ZTable,
    quantum: Option<f64>,
    low: f64,
    high: f64,
}

#[derive(Debug)]
struct PreparedSegment {
    phone_service: YesNo,
    internet_service: InternetService,
    dimension: usize,
    /// Lower-triangular Cholesky factor, row-major d×d.
    cholesky: Vec<f64>,
    categorical: Vec<PreparedCategorical>,
    numeric: Vec<PreparedNumeric>,
}

/// A model made ready for fast sampling (thresholds, quantile tables and Cholesky factors computed once).
#[derive(Debug)]
pub struct Sampler {
    model: SynthModel,
    segments: Vec<PreparedSegment>,
    /// Cumulative segment probabilities.
    segment_cumulative: Vec<f64>,
}

impl Sampler {
    pub fn new(model: SynthModel) -> Result<Self, crate::Error> {
        let total_rows: usize = model.segments.iter().map(|s| s.rows).sum();
        let mut cumulative = 0.0;
        let mut segment_cumulative = Vec::new();
        let mut segments = Vec::new();
        for s in &model.segments {
            cumulative += s.rows as f64 / total_rows as f64;
            segment_cumulative.push(cumulative);
            let d = s.dimension();
            let matrix = nalgebra::DMatrix::from_row_slice(d, d, &s.correlation);
            let cholesky = matrix
                .cholesky()
                .ok_or_else(|| {
                    crate::Error::Numerical("correlation is not positive definite".into())
                })?
                .l();
            let mut lower = vec![0.0; d * d];
            for i in 0..d {
                for j in 0..=i {
                    lower[i * d + j] = cholesky[(i, j)];
                }
            }
            let categorical = s
                .categorical
                .iter()
                .map(|c| {
                    let mut acc = 0.0;
                    let mut thresholds =
                        Vec::with_capacity(c.probabilities.len().saturating_sub(1));
                    for p in &c.probabilities[..c.probabilities.len().saturating_sub(1)] {
                        acc += p;
                        thresholds.push(normal::inverse_cdf(acc));
                    }
                    PreparedCategorical {
                        column: c.column,
                        thresholds,
                        codes: c.categories.clone(),
                    }
                })
                .collect();
            let numeric = s
                .numeric
                .iter()
                .map(|n| PreparedNumeric {
                    column: n.column,
                    table: ZTable::new(&n.fit.marginal, n.low, n.high),
                    quantum: n.quantum,
                    low: n.low,
                    high: n.high,
                })
                .collect();
            segments.push(PreparedSegment {
                phone_service: s.phone_service,
                internet_service: s.internet_service,
                dimension: d,
                cholesky: lower,
                categorical,
                numeric,
            });
        }
        if let Some(last) = segment_cumulative.last_mut() {
            *last = 1.0;
        }
        Ok(Self {
            model,
            segments,
            segment_cumulative,
        })
    }

    pub fn model(&self) -> &SynthModel {
        &self.model
    }

    pub fn location(&self, row: &SyntheticRow) -> &Location {
        &self.model.locations[row.location as usize]
    }

    /// Rows `[chunk × CHUNK_ROWS, …)` of the sample for `seed`, `count` of them (at most CHUNK_ROWS).
    pub fn sample_chunk(&self, seed: u64, chunk: u64, count: usize, out: &mut Vec<SyntheticRow>) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(mix(seed, chunk));
        let mut eps = [0.0f64; MAX_DIMENSION];
        let mut z = [0.0f64; MAX_DIMENSION];
        for _ in 0..count {
            let u: f64 = rng.random();
            let index = self
                .segment_cumulative
                .iter()
                .position(|c| u < *c)
                .unwrap_or(self.segments.len() - 1);
            let segment = &self.segments[index];
            let d = segment.dimension.min(MAX_DIMENSION);
            for e in eps.iter_mut().take(d) {
                *e = rng.sample(StandardNormal);
            }
            for i in 0..d {
                let row = &segment.cholesky[i * d..i * d + i + 1];
                z[i] = row.iter().zip(&eps[..=i]).map(|(l, e)| l * e).sum();
            }
            out.push(self.decode_row(segment, &z[..d]));
        }
    }

    fn decode_row(&self, segment: &PreparedSegment, z: &[f64]) -> SyntheticRow {
        let mut row = SyntheticRow {
            location: 0,
            gender: Gender::Female,
            senior_citizen: YesNo::No,
            partner: YesNo::No,
            dependents: YesNo::No,
            tenure_months: 0,
            phone_service: segment.phone_service,
            multiple_lines: fixed_multiple_lines(segment.phone_service),
            internet_service: segment.internet_service,
            add_ons: [fixed_add_on(segment.internet_service); 6],
            contract: Contract::MonthToMonth,
            paperless_billing: YesNo::No,
            payment_method: PaymentMethod::ElectronicCheck,
            monthly_cents: 0,
            total_cents: 0,
            churn_label: YesNo::No,
        };
        for (cat, zi) in segment.categorical.iter().zip(z) {
            let code = cat.codes[cat.thresholds.partition_point(|t| t < zi)];
            match cat.column {
                Column::Location => row.location = code,
                Column::Gender => row.gender = decode(code),
                Column::SeniorCitizen => row.senior_citizen = decode(code),
                Column::Partner => row.partner = decode(code),
                Column::Dependents => row.dependents = decode(code),
                Column::MultipleLines => row.multiple_lines = decode(code),
                Column::OnlineSecurity => row.add_ons[0] = decode(code),
                Column::OnlineBackup => row.add_ons[1] = decode(code),
                Column::DeviceProtection => row.add_ons[2] = decode(code),
                Column::TechSupport => row.add_ons[3] = decode(code),
                Column::StreamingTv => row.add_ons[4] = decode(code),
                Column::StreamingMovies => row.add_ons[5] = decode(code),
                Column::Contract => row.contract = decode(code),
                Column::PaperlessBilling => row.paperless_billing = decode(code),
                Column::PaymentMethod => row.payment_method = decode(code),
                Column::ChurnLabel => row.churn_label = decode(code),
                Column::TenureMonths | Column::MonthlyCharges | Column::ChargeRatio => {}
            }
        }
        let offset = segment.categorical.len();
        let mut monthly = 0.0;
        let mut ratio = 1.0;
        for (num, zi) in segment.numeric.iter().zip(&z[offset..]) {
            let mut v = num.table.value(*zi);
            if let Some(q) = num.quantum {
                v = ((v / q).round() * q).clamp(num.low, num.high);
            }
            match num.column {
                Column::TenureMonths => row.tenure_months = v.round().max(0.0) as u32,
                Column::MonthlyCharges => monthly = v,
                Column::ChargeRatio => ratio = v,
                _ => {}
            }
        }
        row.monthly_cents = to_cents(monthly);
        let total = if row.tenure_months == 0 {
            0.0
        } else {
            let (low, high) = self.model.total_charges_range;
            (ratio * (row.monthly_cents as f64 / 100.0) * f64::from(row.tenure_months))
                .clamp(low, high)
        };
        row.total_cents = to_cents(total);
        row
    }

    /// The first `n` rows for `seed`, made on up to `threads` threads.
    pub fn sample(&self, n: u64, seed: u64, threads: usize) -> Vec<SyntheticRow> {
        let mut rows = Vec::with_capacity(n as usize);
        let result: Result<(), std::convert::Infallible> = self.for_each_chunk(
            n,
            seed,
            threads,
            |chunk| chunk.to_vec(),
            |chunk| {
                rows.extend(chunk);
                Ok(())
            },
        );
        let Ok(()) = result;
        rows
    }

    /// Samples `n` rows in chunks on up to `threads` threads, applies `work` to each chunk on the worker
    /// and hands the results to `sink` in chunk order. Stops at the first error `sink` returns.
    pub fn for_each_chunk<T, E>(
        &self,
        n: u64,
        seed: u64,
        threads: usize,
        work: impl Fn(&[SyntheticRow]) -> T + Sync,
        mut sink: impl FnMut(T) -> Result<(), E>,
    ) -> Result<(), E>
    where
        T: Send,
    {
        let chunks = n.div_ceil(CHUNK_ROWS);
        let rows_in = |chunk: u64| (n - chunk * CHUNK_ROWS).min(CHUNK_ROWS) as usize;
        let threads = threads.clamp(1, chunks.max(1) as usize);
        if threads == 1 {
            let mut buffer = Vec::with_capacity(CHUNK_ROWS as usize);
            for chunk in 0..chunks {
                buffer.clear();
                self.sample_chunk(seed, chunk, rows_in(chunk), &mut buffer);
                sink(work(&buffer))?;
            }
            return Ok(());
        }
        let next = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::sync_channel::<(u64, T)>(threads * 2);
            for _ in 0..threads {
                let tx = tx.clone();
                let (next, stop, work) = (&next, &stop, &work);
                scope.spawn(move || {
                    let mut buffer = Vec::with_capacity(CHUNK_ROWS as usize);
                    loop {
                        let chunk = next.fetch_add(1, Ordering::Relaxed);
                        if chunk >= chunks || stop.load(Ordering::Relaxed) {
                            break;
                        }
                        buffer.clear();
                        self.sample_chunk(seed, chunk, rows_in(chunk), &mut buffer);
                        if tx.send((chunk, work(&buffer))).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            let mut pending = BTreeMap::new();
            let mut expected = 0;
            for (chunk, value) in rx.iter() {
                pending.insert(chunk, value);
                while let Some(value) = pending.remove(&expected) {
                    if let Err(e) = sink(value) {
                        stop.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                    expected += 1;
                }
            }
            Ok(())
        })
    }

    /// The domain record of a synthetic row.
    pub fn to_customer(&self, row: &SyntheticRow) -> Customer {
        let location = self.location(row);
        let [
            online_security,
            online_backup,
            device_protection,
            tech_support,
            streaming_tv,
            streaming_movies,
        ] = row.add_ons;
        Customer {
            country: location.country.clone(),
            state: location.state.clone(),
            city: location.city.clone(),
            zip_code: location.zip_code.clone(),
            latitude: location.latitude,
            longitude: location.longitude,
            gender: row.gender,
            senior_citizen: row.senior_citizen,
            partner: row.partner,
            dependents: row.dependents,
            tenure_months: row.tenure_months,
            phone_service: row.phone_service,
            multiple_lines: row.multiple_lines,
            internet_service: row.internet_service,
            online_security,
            online_backup,
            device_protection,
            tech_support,
            streaming_tv,
            streaming_movies,
            contract: row.contract,
            paperless_billing: row.paperless_billing,
            payment_method: row.payment_method,
            monthly_charges: row.monthly_cents as f64 / 100.0,
            total_charges: row.total_cents as f64 / 100.0,
            churn_label: Some(row.churn_label),
        }
    }
}

fn to_cents(value: f64) -> u64 {
    (value * 100.0).round().max(0.0) as u64
}

/// SplitMix64 finalizer over (seed, chunk): independent generator seeds per chunk.
fn mix(seed: u64, chunk: u64) -> u64 {
    let mut x = seed ^ chunk.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

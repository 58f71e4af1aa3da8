//! Time-budgeted model search with stratified k-fold cross-validation on ROC AUC.
//!
//! The plan of candidates is fixed by the seed and the budget (its size comes from a cost model
//! calibrated on the reference machine, not from a clock), so the same seed and budget give the same
//! model on any machine. The wall clock is only a safety stop at twice the budget: if a machine is far
//! slower than the cost model assumes, the search ends early and the training record says so.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use churn_core::metrics;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::estimators::{self, GbdtParams, Params};
use crate::features::Standardizer;
use crate::options::ValidTrainOptions;

/// One evaluated candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    pub number: usize,
    /// "linfa_logistic", "smartcore_logistic", "gbdt" or "ensemble".
    pub family: String,
    pub params: serde_json::Value,
    pub cv_roc_auc: f64,
    pub seconds: f64,
}

/// What the search settled on: one candidate, or a weighted ensemble of several (weights sum to 1;
/// the ensemble's score is the weighted sum of its members' log-odds).
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub members: Vec<(f64, Params)>,
}

/// Rounds of greedy ensemble selection (each adds one member, with replacement).
const ENSEMBLE_ROUNDS: usize = 12;
/// Most distinct GBDT members an ensemble may hold: each one costs prediction time.
const MAX_GBDT_MEMBERS: usize = 3;

#[derive(Debug)]
pub struct SearchOutcome {
    pub trials: Vec<Trial>,
    pub choice: Choice,
    pub cv_roc_auc: f64,
    /// Out-of-fold log-odds of the choice, for calibration and the threshold.
    pub oof_scores: Vec<f64>,
    /// True when the wall clock ended the search before its plan was done.
    pub stopped_by_clock: bool,
}

/// Seconds one GBDT tree costs per 1,000 training rows and per unit of depth on the reference machine
/// (one core), measured with `churnctl bench train`; with the linear cost below it sizes the plan.
const GBDT_SECONDS_PER_TREE_KROW_DEPTH: f64 = 0.000_11;
/// Seconds one linear fit costs per 1,000 training rows on the reference machine (one core).
const LINEAR_SECONDS_PER_KROW: f64 = 0.15;
/// Share of the budget the search may plan for; the rest is for the final refit and calibration.
const SEARCH_SHARE: f64 = 0.85;
/// Multiple of the budget after which the wall clock stops the search (and the result then depends on
/// machine speed, which the model's training record says).
const CLOCK_GUARD: f64 = 2.0;

/// Linear candidates, cheap and always evaluated.
fn linear_plan() -> Vec<Params> {
    let mut plan: Vec<Params> = [1.0, 10.0, 100.0]
        .into_iter()
        .map(|alpha| Params::LinfaLogistic { alpha })
        .collect();
    plan.extend(
        [1.0, 30.0]
            .into_iter()
            .map(|alpha| Params::SmartcoreLogistic { alpha }),
    );
    plan
}

/// GBDT candidates: two sensible defaults, then random draws from the grid.
fn gbdt_plan(
    seed: u64,
    budget: Duration,
    rows: usize,
    folds: usize,
    threads: usize,
) -> Vec<GbdtParams> {
    let mut plan = vec![
        GbdtParams::default(),
        GbdtParams {
            iterations: 500,
            learning_rate: 0.02,
            max_depth: 4,
            min_leaf_weight: 20.0,
            l2: 5.0,
            subsample: 0.8,
            colsample_bytree: 0.7,
            balanced: false,
        },
    ];
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x6764_6274);
    let cost = |p: &GbdtParams| {
        p.iterations as f64
            * (rows as f64 / 1000.0)
            * p.max_depth as f64
            * GBDT_SECONDS_PER_TREE_KROW_DEPTH
            * folds as f64
            / threads as f64
    };
    let linear_cost = linear_plan().len() as f64
        * (rows as f64 / 1000.0)
        * LINEAR_SECONDS_PER_KROW
        * folds as f64
        / threads as f64;
    let available = budget.as_secs_f64() * SEARCH_SHARE - linear_cost;
    let mut planned: f64 = plan.iter().map(cost).sum();
    loop {
        let pick = |rng: &mut Xoshiro256PlusPlus, options: &[f64]| {
            options[rng.random_range(0..options.len())]
        };
        let candidate = GbdtParams {
            iterations: pick(&mut rng, &[150.0, 300.0, 600.0]) as usize,
            learning_rate: pick(&mut rng, &[0.01, 0.02, 0.05, 0.1]) as f32,
            max_depth: pick(&mut rng, &[2.0, 3.0, 4.0, 5.0]) as usize,
            min_leaf_weight: pick(&mut rng, &[1.0, 5.0, 20.0, 50.0]) as f32,
            l2: pick(&mut rng, &[1.0, 5.0, 10.0, 25.0, 50.0]) as f32,
            subsample: pick(&mut rng, &[0.7, 0.85, 1.0]) as f32,
            colsample_bytree: pick(&mut rng, &[0.5, 0.7, 1.0]),
            balanced: rng.random_bool(0.3),
        };
        let c = cost(&candidate);
        if planned + c > available || plan.len() >= 200 {
            break;
        }
        planned += c;
        plan.push(candidate);
    }
    plan
}

/// One fold's standardized training and validation matrices.
struct Fold {
    train_x: Vec<f64>,
    train_y: Vec<bool>,
    val_x: Vec<f64>,
    val_rows: Vec<usize>,
}

fn build_folds(x: &[f64], cols: usize, y: &[bool], fold_of: &[usize], k: usize) -> Vec<Fold> {
    (0..k)
        .map(|f| {
            let (mut train_x, mut train_y, mut val_x, mut val_rows) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (i, row) in x.chunks_exact(cols).enumerate() {
                if fold_of[i] == f {
                    val_x.extend_from_slice(row);
                    val_rows.push(i);
                } else {
                    train_x.extend_from_slice(row);
                    train_y.push(y[i]);
                }
            }
            // Standardize with the fold's own training statistics: the validation rows stay unseen.
            let standardizer = Standardizer::fit(&train_x, cols);
            standardizer.apply(&mut train_x);
            standardizer.apply(&mut val_x);
            Fold {
                train_x,
                train_y,
                val_x,
                val_rows,
            }
        })
        .collect()
}

/// Out-of-fold scores of one candidate, its folds fitted on up to `threads` threads; no fold starts
/// once `stop` is raised.
fn cross_validate(
    params: &Params,
    folds: &[Fold],
    cols: usize,
    n: usize,
    seed: u64,
    threads: usize,
    stop: &AtomicBool,
) -> Result<Vec<f64>, Error> {
    let oof = Mutex::new(vec![0.0; n]);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, folds.len()) {
            scope.spawn(|| {
                loop {
                    let f = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(fold) = folds.get(f) else { break };
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    // The fitted model is scored live: no JSON dump and re-parse per fold.
                    let scores =
                        estimators::fit_live(params, &fold.train_x, cols, &fold.train_y, seed)
                            .map(|fitted| fitted.prepare().scores(&fold.val_x, cols));
                    match scores {
                        Ok(scores) => {
                            if let Ok(mut oof) = oof.lock() {
                                for (row, s) in fold.val_rows.iter().zip(scores) {
                                    oof[*row] = s;
                                }
                            }
                        }
                        Err(e) => {
                            if let Ok(mut slot) = failure.lock() {
                                slot.get_or_insert(e);
                            }
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    if stop.load(Ordering::Relaxed) {
        return Err(Error::Cancelled {
            stage: "cross-validation",
        });
    }
    oof.into_inner()
        .map_err(|_| Error::Model("a cross-validation worker panicked".into()))
}

/// Runs the search over the plan and picks the best candidate (or blend) by out-of-fold ROC AUC.
/// `x` is the raw feature matrix (row-major, `cols` columns); `on_trial` sees each trial as it ends.
/// Raising `stop` ends it with [`Error::Cancelled`] before the next fold.
pub fn search(
    x: &[f64],
    cols: usize,
    y: &[bool],
    options: &ValidTrainOptions,
    stop: &AtomicBool,
    mut on_trial: impl FnMut(&Trial, &Trial),
) -> Result<SearchOutcome, Error> {
    let started = Instant::now();
    let n = y.len();
    let fold_of = crate::split::stratified_folds(y, options.folds, options.seed);
    let folds = build_folds(x, cols, y, &fold_of, options.folds);
    let train_rows = n - n / options.folds;
    let mut plan = linear_plan();
    plan.extend(
        gbdt_plan(
            options.seed,
            options.time_budget,
            train_rows,
            options.folds,
            options.threads,
        )
        .into_iter()
        .map(Params::Gbdt),
    );
    // Only a machine far slower than the cost model assumes reaches this; on the reference machine the
    // plan takes about the planned share of the budget, so the clock never decides what is searched.
    let deadline = started + options.time_budget.mul_f64(CLOCK_GUARD);

    let mut trials: Vec<Trial> = Vec::new();
    // Every trial's parameters and out-of-fold scores, for ensemble selection.
    let mut evaluated: Vec<(Params, Vec<f64>, f64)> = Vec::new();
    let mut stopped_by_clock = false;
    for (number, params) in plan.into_iter().enumerate() {
        let have_gbdt = evaluated
            .iter()
            .any(|(p, _, _)| matches!(p, Params::Gbdt(_)));
        if options.clock_guard && Instant::now() > deadline && have_gbdt {
            stopped_by_clock = true;
            tracing::warn!(
                "the search reached twice its time budget before its plan was done; results now depend on machine speed"
            );
            break;
        }
        let trial_started = Instant::now();
        let oof = cross_validate(
            &params,
            &folds,
            cols,
            n,
            options.seed,
            options.threads,
            stop,
        )?;
        let auc = metrics::roc_auc(y, &oof).unwrap_or(0.5);
        trials.push(Trial {
            number,
            family: params.family().to_owned(),
            params: serde_json::to_value(&params).unwrap_or_default(),
            cv_roc_auc: auc,
            seconds: trial_started.elapsed().as_secs_f64(),
        });
        evaluated.push((params, oof, auc));
        report(&trials, &mut on_trial);
    }
    if evaluated.is_empty() {
        return Err(Error::Model("the search evaluated no candidates".into()));
    }

    let (weights, cv_roc_auc, oof_scores) = select_ensemble(&evaluated, y);
    let members: Vec<(f64, Params)> = weights
        .iter()
        .enumerate()
        .filter(|(_, w)| **w > 0.0)
        .map(|(i, w)| (*w, evaluated[i].0.clone()))
        .collect();
    if members.len() > 1 {
        trials.push(Trial {
            number: trials.len(),
            family: "ensemble".to_owned(),
            params: serde_json::json!(
                members
                    .iter()
                    .map(|(w, p)| serde_json::json!({ "weight": w, "member": p }))
                    .collect::<Vec<_>>()
            ),
            cv_roc_auc,
            seconds: 0.0,
        });
        report(&trials, &mut on_trial);
    }
    Ok(SearchOutcome {
        trials,
        choice: Choice { members },
        cv_roc_auc,
        oof_scores,
        stopped_by_clock,
    })
}

fn report(trials: &[Trial], on_trial: &mut impl FnMut(&Trial, &Trial)) {
    let leader = leader(trials);
    if let Some(last) = trials.last() {
        on_trial(last, &leader);
    }
}

/// Greedy ensemble selection (Caruana et al.): start from the best single candidate and repeatedly add
/// the candidate (with replacement) that most improves the out-of-fold ROC AUC of the averaged
/// log-odds, holding at most [`MAX_GBDT_MEMBERS`] distinct tree models. Returns per-candidate weights,
/// the ensemble's AUC and its out-of-fold scores.
fn select_ensemble(evaluated: &[(Params, Vec<f64>, f64)], y: &[bool]) -> (Vec<f64>, f64, Vec<f64>) {
    let n = y.len();
    let mut counts = vec![0usize; evaluated.len()];
    let best = evaluated
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.2.total_cmp(&b.1.2).then(b.0.cmp(&a.0)))
        .map_or(0, |(i, _)| i);
    counts[best] = 1;
    let mut sum = evaluated[best].1.clone();
    let mut best_auc = evaluated[best].2;
    let mut rounds = 1;
    for _ in 1..ENSEMBLE_ROUNDS {
        let gbdt_members = counts
            .iter()
            .zip(evaluated)
            .filter(|(c, (p, _, _))| **c > 0 && matches!(p, Params::Gbdt(_)))
            .count();
        let mut round_best: Option<(usize, f64)> = None;
        for (i, (params, oof, _)) in evaluated.iter().enumerate() {
            if counts[i] == 0
                && matches!(params, Params::Gbdt(_))
                && gbdt_members >= MAX_GBDT_MEMBERS
            {
                continue;
            }
            let candidate: Vec<f64> = sum
                .iter()
                .zip(oof)
                .map(|(s, o)| (s + o) / (rounds + 1) as f64)
                .collect();
            let auc = metrics::roc_auc(y, &candidate).unwrap_or(0.5);
            if round_best.is_none_or(|(_, a)| auc > a) {
                round_best = Some((i, auc));
            }
        }
        // Stop when no addition helps: more rounds would only add noise.
        let Some((i, auc)) = round_best.filter(|(_, a)| *a > best_auc) else {
            break;
        };
        counts[i] += 1;
        rounds += 1;
        for (s, o) in sum.iter_mut().zip(&evaluated[i].1) {
            *s += o;
        }
        best_auc = auc;
    }
    let weights: Vec<f64> = counts.iter().map(|c| *c as f64 / rounds as f64).collect();
    let oof: Vec<f64> = sum.iter().map(|s| s / rounds as f64).collect();
    debug_assert_eq!(oof.len(), n);
    (weights, best_auc, oof)
}

fn leader(trials: &[Trial]) -> Trial {
    trials
        .iter()
        .max_by(|a, b| {
            a.cv_roc_auc
                .total_cmp(&b.cv_roc_auc)
                .then(b.number.cmp(&a.number))
        })
        .cloned()
        .unwrap_or(Trial {
            number: 0,
            family: String::new(),
            params: serde_json::Value::Null,
            cv_roc_auc: 0.0,
            seconds: 0.0,
        })
}

//! Settings of a training run, checked once before use (linfa's `Params` → `check()` → valid params).

use std::time::Duration;

use crate::Error;

/// Settings of a training run, unchecked; [`TrainOptions::check`] (which [`crate::train`] calls first) refuses
/// values that cannot work.
#[derive(Debug, Clone, Copy)]
pub struct TrainOptions {
    /// The search budget: 1 s to 24 h.
    pub time_budget: Duration,
    pub seed: u64,
    /// Cross-validation folds: 2 to 20.
    pub folds: usize,
    /// Worker threads: 1 to 1024.
    pub threads: usize,
    /// Stop the search when the wall clock reaches twice the budget (the default). `false` runs the
    /// whole plan whatever the clock says, so the same seed and budget give the same model even on a
    /// machine far slower than the cost model assumes (a loaded CI runner, say).
    pub clock_guard: bool,
}

/// Training settings that passed [`TrainOptions::check`].
#[derive(Debug, Clone, Copy)]
pub struct ValidTrainOptions(TrainOptions);

impl std::ops::Deref for ValidTrainOptions {
    type Target = TrainOptions;

    fn deref(&self) -> &TrainOptions {
        &self.0
    }
}

impl TrainOptions {
    /// Refuses settings that cannot work, naming the parameter, its value and the allowed range.
    pub fn check(self) -> Result<ValidTrainOptions, Error> {
        let bad = |name, value: String, rule| Err(Error::InvalidParameter { name, value, rule });
        if !(Duration::from_secs(1)..=Duration::from_secs(86_400)).contains(&self.time_budget) {
            return bad(
                "time_budget",
                format!("{} s", self.time_budget.as_secs_f64()),
                "must be between 1 s and 86400 s (24 h)",
            );
        }
        if !(2..=20).contains(&self.folds) {
            return bad("folds", self.folds.to_string(), "must be between 2 and 20");
        }
        if !(1..=1024).contains(&self.threads) {
            return bad(
                "threads",
                self.threads.to_string(),
                "must be between 1 and 1024",
            );
        }
        Ok(ValidTrainOptions(self))
    }
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            time_budget: Duration::from_secs(60),
            seed: 0,
            folds: 5,
            threads: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            clock_guard: true,
        }
    }
}

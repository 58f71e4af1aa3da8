//! Labels and stratified, seeded splits: the train/test holdout and the k folds of cross-validation.
//!
//! One rule for unlabelled rows everywhere (training, `churnctl data split`, the benchmarks, the tests):
//! a split or a training set needs every row's churn label, and the first unlabelled row is an error
//! naming its position. Callers that hold unlabelled rows filter them first, on purpose.

use churn_core::Customer;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::Error;

/// Every row's churn label (true = churned); the first unlabelled row is [`Error::MissingLabel`].
pub fn labels(customers: &[Customer]) -> Result<Vec<bool>, Error> {
    customers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            c.churn_label
                .map(|l| l.is_yes())
                .ok_or(Error::MissingLabel { index: i })
        })
        .collect()
}

/// Settings of a train/test split, unchecked; [`SplitParams::check`] makes them usable.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplitParams {
    /// Share of each class that goes to the test side, in (0, 1).
    pub test_fraction: f64,
    /// Seed of the shuffle; the same rows, fraction and seed give the same split.
    pub seed: u64,
}

/// Split settings that passed [`SplitParams::check`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidSplitParams(SplitParams);

impl SplitParams {
    pub fn check(self) -> Result<ValidSplitParams, Error> {
        if !(self.test_fraction > 0.0 && self.test_fraction < 1.0) {
            return Err(Error::InvalidParameter {
                name: "test_fraction",
                value: self.test_fraction.to_string(),
                rule: "must be above 0 and below 1 (a share of the rows, e.g. 0.2)",
            });
        }
        Ok(ValidSplitParams(self))
    }
}

impl ValidSplitParams {
    pub fn test_fraction(&self) -> f64 {
        self.0.test_fraction
    }

    pub fn seed(&self) -> u64 {
        self.0.seed
    }
}

/// Splits labelled customers into (train, test), stratified by label, keeping each side in input order.
/// Every row must be labelled ([`labels`]); the rows are moved, not copied.
pub fn split_customers(
    customers: Vec<Customer>,
    params: &ValidSplitParams,
) -> Result<(Vec<Customer>, Vec<Customer>), Error> {
    let y = labels(&customers)?;
    let (_, test) = stratified_split(&y, params.test_fraction(), params.seed());
    let mut is_test = vec![false; customers.len()];
    for i in test {
        is_test[i] = true;
    }
    let (mut train_rows, mut test_rows) = (Vec::new(), Vec::new());
    for (customer, test) in customers.into_iter().zip(is_test) {
        if test {
            test_rows.push(customer);
        } else {
            train_rows.push(customer);
        }
    }
    Ok((train_rows, test_rows))
}

/// Indices of positives and negatives, each shuffled by `seed`.
fn shuffled_classes(labels: &[bool], seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut positives: Vec<usize> = (0..labels.len()).filter(|i| labels[*i]).collect();
    let mut negatives: Vec<usize> = (0..labels.len()).filter(|i| !labels[*i]).collect();
    positives.shuffle(&mut rng);
    negatives.shuffle(&mut rng);
    (positives, negatives)
}

/// Splits into (train, test) with `test_fraction` of each class in test. Indices are sorted.
/// `test_fraction` is clamped to [0, 1]; [`SplitParams::check`] is where a bad one is refused.
pub fn stratified_split(
    labels: &[bool],
    test_fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let (positives, negatives) = shuffled_classes(labels, seed);
    let mut train = Vec::new();
    let mut test = Vec::new();
    for class in [positives, negatives] {
        let n_test = ((class.len() as f64 * test_fraction.clamp(0.0, 1.0)).round() as usize)
            .min(class.len());
        test.extend_from_slice(&class[..n_test]);
        train.extend_from_slice(&class[n_test..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

/// The fold (0..k) of every row, with each class spread evenly over the folds. `k` is at least 1 here;
/// [`crate::TrainOptions::check`] is where a bad fold count is refused.
pub fn stratified_folds(labels: &[bool], k: usize, seed: u64) -> Vec<usize> {
    let k = k.max(1);
    let (positives, negatives) = shuffled_classes(labels, seed);
    let mut fold = vec![0; labels.len()];
    for class in [positives, negatives] {
        for (i, row) in class.into_iter().enumerate() {
            fold[row] = i % k;
        }
    }
    fold
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_split_fraction_outside_zero_to_one_is_refused_naming_the_parameter() {
        for bad in [0.0, 1.0, 7.0, -0.1, f64::NAN] {
            let err = SplitParams {
                test_fraction: bad,
                seed: 0,
            }
            .check()
            .expect_err("refused")
            .to_string();
            assert!(err.contains("test_fraction"), "{err}");
            assert!(err.contains(&bad.to_string()), "{err}");
        }
    }

    #[test]
    fn split_customers_moves_labelled_rows_to_two_stratified_sides_and_names_an_unlabelled_row() {
        let seed = churn_config::seed_data_path(&churn_config::Env::Process);
        let customers = churn_core::read_customers(&seed).unwrap();
        let n = customers.len();
        let params = SplitParams {
            test_fraction: 0.2,
            seed: 0,
        }
        .check()
        .unwrap();
        let y = labels(&customers).unwrap();
        let (expected_train, expected_test) = stratified_split(&y, 0.2, 0);
        let (train, test) = split_customers(customers.clone(), &params).unwrap();
        assert_eq!(train.len() + test.len(), n);
        assert_eq!(test.len(), expected_test.len());
        assert_eq!(train[0], customers[expected_train[0]]);
        assert_eq!(test[0], customers[expected_test[0]]);
        let mut unlabelled = customers;
        unlabelled[41].churn_label = None;
        let err = split_customers(unlabelled, &params)
            .unwrap_err()
            .to_string();
        assert!(err.contains("row 41 has no churn label"), "{err}");
    }

    #[test]
    fn a_stratified_split_keeps_the_class_balance_and_loses_no_row() {
        let labels: Vec<bool> = (0..1000).map(|i| i % 4 == 0).collect();
        let (train, test) = stratified_split(&labels, 0.2, 1);
        assert_eq!(train.len() + test.len(), 1000);
        assert_eq!(test.iter().filter(|i| labels[**i]).count(), 50);
        assert_eq!(test.len(), 200);
        assert_eq!(stratified_split(&labels, 0.2, 1), (train, test));
    }

    #[test]
    fn folds_spread_each_class_evenly() {
        let labels: Vec<bool> = (0..100).map(|i| i < 30).collect();
        let folds = stratified_folds(&labels, 5, 9);
        for f in 0..5 {
            let members: Vec<usize> = (0..100).filter(|i| folds[*i] == f).collect();
            assert_eq!(members.len(), 20);
            assert_eq!(members.iter().filter(|i| labels[**i]).count(), 6);
        }
    }
}

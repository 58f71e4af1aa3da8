//! Stratified, seeded splits: the train/test holdout and the k folds of cross-validation.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;

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
pub fn stratified_split(
    labels: &[bool],
    test_fraction: f64,
    seed: u64,
) -> (Vec<usize>, Vec<usize>) {
    let (positives, negatives) = shuffled_classes(labels, seed);
    let mut train = Vec::new();
    let mut test = Vec::new();
    for class in [positives, negatives] {
        let n_test = (class.len() as f64 * test_fraction).round() as usize;
        test.extend_from_slice(&class[..n_test]);
        train.extend_from_slice(&class[n_test..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

/// The fold (0..k) of every row, with each class spread evenly over the folds.
pub fn stratified_folds(labels: &[bool], k: usize, seed: u64) -> Vec<usize> {
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
mod tests {
    use super::*;

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

//! The paired bootstrap over examples (Efron & Tibshirani 1993, *An Introduction to the
//! Bootstrap*, ch. 13 and 16; Koehn 2004, *Statistical Significance Tests for Machine
//! Translation Evaluation*, for two systems scored on the same examples).
//!
//! An ablation's t interval counts seeds: it says how much a difference moves when the training
//! is drawn again, not how much it owes to which sentences happened to be scored. The bootstrap
//! answers the second question. Each side of a comparison is a set of prediction runs of the
//! same examples (one per seed, or per seed and repeat of a repeated cross-validation). A
//! resample draws `n` example indices with replacement, the same indices for every run of both
//! sides; its difference is the mean metric of side A's runs minus side B's on those examples.
//! The 95% interval is the 2.5th and 97.5th percentiles of the differences over the resamples
//! (linear interpolation between order statistics, numpy's default).
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::metrics;
use crate::model::Task;

/// How many resamples [`paired`] draws, and from which seed (the same every time, so a report
/// written twice says the same).
pub const RESAMPLES: usize = 1000;
pub const SEED: u64 = 0;

/// One run's raw outputs for every example: the value (regression) or the class probabilities
/// (classification), one row per example.
pub type Outputs = [Vec<f64>];

/// The selection metric `metric` (`rmse`, `mae`, `loss`, `pearson`, `spearman`, `accuracy`,
/// `macro_f1`) of the examples `idx` (with repeats). Classification outputs are probabilities;
/// `loss` is then their cross-entropy. An unknown metric gives NaN.
pub fn metric_of(task: &Task, metric: &str, outputs: &Outputs, targets: &[f64], idx: &[usize]) -> f64 {
    let n = idx.len() as f64;
    match task {
        Task::Regression => {
            let p: Vec<f64> = idx.iter().map(|&i| outputs[i][0]).collect();
            let t: Vec<f64> = idx.iter().map(|&i| targets[i]).collect();
            let mse = || p.iter().zip(&t).map(|(p, t)| (p - t).powi(2)).sum::<f64>() / n;
            match metric {
                "loss" => mse(),
                "rmse" => mse().sqrt(),
                "mae" => p.iter().zip(&t).map(|(p, t)| (p - t).abs()).sum::<f64>() / n,
                "pearson" => metrics::pearson(&p, &t),
                "spearman" => metrics::spearman(&p, &t),
                _ => f64::NAN,
            }
        }
        Task::Classification { labels } => {
            let truth: Vec<usize> = idx.iter().map(|&i| targets[i] as usize).collect();
            match metric {
                "loss" => idx.iter().zip(&truth).map(|(&i, &c)| -outputs[i][c].ln()).sum::<f64>() / n,
                "accuracy" | "macro_f1" => {
                    let predicted: Vec<usize> = idx.iter().map(|&i| argmax(&outputs[i])).collect();
                    metrics::classification(&predicted, &truth, labels.len()).get(metric).copied().unwrap_or(f64::NAN)
                }
                _ => f64::NAN,
            }
        }
    }
}

/// The first index of the largest value (as `torch.argmax` picks among ties).
fn argmax(row: &[f64]) -> usize {
    row.iter().enumerate().fold(0, |best, (i, v)| if *v > row[best] { i } else { best })
}

/// `count` resamples of `n` example indices drawn with replacement from `seed`.
pub fn resamples(n: usize, count: usize, seed: u64) -> impl Iterator<Item = Vec<usize>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count).map(move |_| (0..n).map(|_| rng.random_range(0..n)).collect())
}

/// For each resample, the mean metric of `a`'s runs minus the mean metric of `b`'s runs on its
/// examples.
pub fn differences(task: &Task, metric: &str, a: &[&Outputs], b: &[&Outputs], targets: &[f64], resamples: impl Iterator<Item = Vec<usize>>) -> Vec<f64> {
    let mean = |runs: &[&Outputs], idx: &[usize]| runs.iter().map(|o| metric_of(task, metric, o, targets, idx)).sum::<f64>() / runs.len() as f64;
    resamples.map(|idx| mean(a, &idx) - mean(b, &idx)).collect()
}

/// The `q` quantile (0..=1) of `values` with numpy's default linear interpolation (NaN when
/// empty or when a value is NaN).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// The paired bootstrap 95% interval of "A minus B" over the examples: [`RESAMPLES`]
/// resamples from [`SEED`]. `None` without runs on either side, with outputs that do not cover
/// the targets, or when a resample's metric is undefined (a constant prediction's correlation).
pub fn paired(task: &Task, metric: &str, a: &[&Outputs], b: &[&Outputs], targets: &[f64]) -> Option<(f64, f64)> {
    let n = targets.len();
    if a.is_empty() || b.is_empty() || n == 0 || a.iter().chain(b).any(|o| o.len() != n) {
        return None;
    }
    let diffs = differences(task, metric, a, b, targets, resamples(n, RESAMPLES, SEED));
    let interval = (quantile(&diffs, 0.025), quantile(&diffs, 0.975));
    (interval.0.is_finite() && interval.1.is_finite()).then_some(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_as_numpy() {
        // numpy.quantile([3, 1, 4, 1, 5], [0, 0.025, 0.5, 0.975, 1]) = [1, 1, 3, 4.9, 5]
        let v = [3.0, 1.0, 4.0, 1.0, 5.0];
        let q: Vec<f64> = [0.0, 0.025, 0.5, 0.975, 1.0].iter().map(|&q| quantile(&v, q)).collect();
        for (got, want) in q.iter().zip([1.0, 1.0, 3.0, 4.9, 5.0]) {
            assert!((got - want).abs() < 1e-12, "{q:?}");
        }
    }

    #[test]
    fn resamples_are_reproducible_and_in_range() {
        let a: Vec<Vec<usize>> = resamples(7, 3, 1).collect();
        assert_eq!(a, resamples(7, 3, 1).collect::<Vec<_>>());
        assert_ne!(a, resamples(7, 3, 2).collect::<Vec<_>>());
        assert!(a.iter().all(|r| r.len() == 7 && r.iter().all(|&i| i < 7)));
    }

    #[test]
    fn a_difference_of_a_mean_error_is_near_the_normal_interval() {
        // MAE is a mean over examples: the bootstrap interval of a paired MAE difference is close
        // to the normal one, mean ± 1.96 sd / sqrt(n), of the per-example differences.
        let n = 400;
        let targets: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin() * 2.0).collect();
        let a: Vec<Vec<f64>> = targets.iter().enumerate().map(|(i, t)| vec![t + (i as f64 * 1.3).cos()]).collect();
        let b: Vec<Vec<f64>> = targets.iter().enumerate().map(|(i, t)| vec![t + 0.8 * (i as f64 * 2.1).sin()]).collect();
        let d: Vec<f64> = (0..n).map(|i| (a[i][0] - targets[i]).abs() - (b[i][0] - targets[i]).abs()).collect();
        let (mean, sd) = crate::metrics::mean_std(&d);
        let half = 1.96 * sd / (n as f64).sqrt();
        let (lo, hi) = paired(&Task::Regression, "mae", &[&a], &[&b], &targets).unwrap();
        assert!((lo - (mean - half)).abs() < 0.15 * half && (hi - (mean + half)).abs() < 0.15 * half, "{lo} {hi} vs {} {}", mean - half, mean + half);
        // The same runs on both sides differ by exactly 0 in every resample.
        assert_eq!(paired(&Task::Regression, "rmse", &[&a], &[&a], &targets), Some((0.0, 0.0)));
        assert_eq!(paired(&Task::Regression, "rmse", &[&a], &[&b[..10]], &targets), None);
    }
}

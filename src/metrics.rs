//! Evaluation metrics: RMSE, MAE, Pearson and Spearman correlation for regression; accuracy
//! and macro-F1 for classification; the loss for both.
//!
//! Spearman's ρ is Pearson's r on ranks, ties getting their average rank (as
//! `scipy.stats.spearmanr`); macro-F1 is the unweighted mean of per-class F1, a class never
//! predicted nor present scoring 0 (as `sklearn.metrics.f1_score(average="macro")` over the
//! classes of the label map).
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Metric values by name (`rmse`, `mae`, `pearson`, `spearman`, `accuracy`, `macro_f1`, `loss`).
pub type Metrics = BTreeMap<String, f64>;

/// The metric that picks the best checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Loss,
    Rmse,
    Mae,
    Pearson,
    Spearman,
    Accuracy,
    MacroF1,
}

impl Metric {
    /// The name the metric has in [`Metrics`] and in the run files.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Loss => "loss",
            Metric::Rmse => "rmse",
            Metric::Mae => "mae",
            Metric::Pearson => "pearson",
            Metric::Spearman => "spearman",
            Metric::Accuracy => "accuracy",
            Metric::MacroF1 => "macro_f1",
        }
    }

    /// The default selection metric of a task: RMSE for regression, accuracy for classification.
    pub fn default_for(classification: bool) -> Metric {
        if classification { Metric::Accuracy } else { Metric::Rmse }
    }

    /// Whether `value` is better than `than` for this metric (a NaN or an infinity never is).
    pub fn improves(self, value: f64, than: Option<f64>) -> bool {
        match than {
            None => value.is_finite(),
            Some(b) if self.higher_is_better() => value > b,
            Some(b) => value < b,
        }
    }

    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::Pearson | Metric::Spearman | Metric::Accuracy | Metric::MacroF1)
    }
}

/// Pearson's correlation coefficient (NaN when either side is constant).
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    sxy / (sxx * syy).sqrt()
}

/// Ranks from 1, ties sharing their average rank.
pub fn ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut out = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            out[k] = rank;
        }
        i = j + 1;
    }
    out
}

/// Spearman's rank correlation.
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    pearson(&ranks(x), &ranks(y))
}

/// RMSE, MAE, Pearson, Spearman and the MSE loss of predictions against targets.
pub fn regression(predictions: &[f64], targets: &[f64]) -> Metrics {
    let n = predictions.len() as f64;
    let mse = predictions.iter().zip(targets).map(|(p, t)| (p - t).powi(2)).sum::<f64>() / n;
    let mae = predictions.iter().zip(targets).map(|(p, t)| (p - t).abs()).sum::<f64>() / n;
    BTreeMap::from([
        ("loss".to_string(), mse),
        ("rmse".to_string(), mse.sqrt()),
        ("mae".to_string(), mae),
        ("pearson".to_string(), pearson(predictions, targets)),
        ("spearman".to_string(), spearman(predictions, targets)),
    ])
}

/// Accuracy and macro-F1 of predicted classes against true ones, over `classes` classes.
pub fn classification(predicted: &[usize], truth: &[usize], classes: usize) -> Metrics {
    let n = predicted.len() as f64;
    let correct = predicted.iter().zip(truth).filter(|(p, t)| p == t).count() as f64;
    let mut f1_sum = 0.0;
    for c in 0..classes {
        let tp = predicted.iter().zip(truth).filter(|(p, t)| **p == c && **t == c).count() as f64;
        let fp = predicted.iter().zip(truth).filter(|(p, t)| **p == c && **t != c).count() as f64;
        let fn_ = predicted.iter().zip(truth).filter(|(p, t)| **p != c && **t == c).count() as f64;
        let denom = 2.0 * tp + fp + fn_;
        f1_sum += if denom > 0.0 { 2.0 * tp / denom } else { 0.0 };
    }
    BTreeMap::from([("accuracy".to_string(), correct / n), ("macro_f1".to_string(), f1_sum / classes as f64)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_share_their_average_rank() {
        assert_eq!(ranks(&[10.0, 20.0, 10.0, 30.0]), [1.5, 3.0, 1.5, 4.0]);
    }

    #[test]
    fn perfect_and_inverse_correlations() {
        let x = [1.0, 2.0, 3.0, 4.0];
        assert!((pearson(&x, &[2.0, 4.0, 6.0, 8.0]) - 1.0).abs() < 1e-15);
        assert!((spearman(&x, &[1.0, 10.0, 100.0, 1000.0]) - 1.0).abs() < 1e-15);
        assert!((spearman(&x, &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-15);
    }
}

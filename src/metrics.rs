//! Evaluation metrics: RMSE, MAE, Pearson and Spearman correlation for regression; accuracy,
//! macro-F1, per-class precision, recall, F1 and support, the confusion matrix and (binary
//! tasks) ROC-AUC for classification; the loss for both.
//!
//! Spearman's ρ is Pearson's r on ranks, ties getting their average rank (as
//! `scipy.stats.spearmanr`); macro-F1 is the unweighted mean of per-class F1, a class never
//! predicted nor present scoring 0 (as `sklearn.metrics.f1_score(average="macro")` over the
//! classes of the label map). The per-class scores follow
//! `sklearn.metrics.precision_recall_fscore_support(labels=range(classes))` with its default
//! `zero_division="warn"`: a ratio whose denominator is zero is 0.0. ROC-AUC is the
//! Mann-Whitney U statistic, tied scores counting one half (the average-rank formulation),
//! which is what `sklearn.metrics.roc_auc_score`'s trapezoids compute; it is undefined (NaN)
//! when the truth holds one class only. `tests/metrics_golden.rs` checks all of them against
//! scikit-learn on the cases of `scripts/reference/metrics_fixtures.py`.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Metric values by name (`rmse`, `mae`, `pearson`, `spearman`, `accuracy`, `macro_f1`, `loss`,
/// and the per-class keys of [`classification_report`]).
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

    /// Whether a dev evaluation of this task reports the metric (`loss` both; accuracy and
    /// macro-F1 classification; the rest regression).
    pub fn fits(self, classification: bool) -> bool {
        match self {
            Metric::Loss => true,
            Metric::Accuracy | Metric::MacroF1 => classification,
            Metric::Rmse | Metric::Mae | Metric::Pearson | Metric::Spearman => !classification,
        }
    }

    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::Pearson | Metric::Spearman | Metric::Accuracy | Metric::MacroF1)
    }
}

/// The mean and the sample standard deviation (0 for one value).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
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

/// Every classification metric, keyed by the class names `names` (class `c` is `names[c]`):
///
/// - `accuracy` and `macro_f1`, as [`classification`];
/// - per class: `precision.<name>`, `recall.<name>`, `f1.<name>` and `support.<name>` (the
///   number of true examples of the class), a zero denominator giving 0.0 as scikit-learn;
/// - the [`confusion_matrix`]: `confusion.<true name>.<predicted name>`, a count;
/// - for two classes, `roc_auc` of the second class's probability, `probabilities[i][1]`
///   (absent when the truth holds one class only, where [`roc_auc`] is NaN: a NaN would be
///   written as `null` in the run files).
///
/// `probabilities` has one row per example (the softmax of the logits); only binary tasks read
/// it, and without one row per example (`&[]`) there is no `roc_auc`. Pairs with a class index
/// out of range count for accuracy only.
pub fn classification_report(predicted: &[usize], truth: &[usize], probabilities: &[Vec<f64>], names: &[String]) -> Metrics {
    let classes = names.len();
    let mut m = classification(predicted, truth, classes);
    let confusion = confusion_matrix(predicted, truth, classes);
    let ratio = |num: usize, den: usize| if den > 0 { num as f64 / den as f64 } else { 0.0 };
    for (c, name) in names.iter().enumerate() {
        let tp = confusion[c][c];
        let support: usize = confusion[c].iter().sum();
        let predicted_as: usize = confusion.iter().map(|row| row[c]).sum();
        m.insert(format!("precision.{name}"), ratio(tp, predicted_as));
        m.insert(format!("recall.{name}"), ratio(tp, support));
        m.insert(format!("f1.{name}"), ratio(2 * tp, support + predicted_as));
        m.insert(format!("support.{name}"), support as f64);
        for (p, predicted_name) in names.iter().enumerate() {
            m.insert(format!("confusion.{name}.{predicted_name}"), confusion[c][p] as f64);
        }
    }
    if classes == 2 && probabilities.len() == truth.len() {
        let scores: Vec<f64> = probabilities.iter().map(|row| row.get(1).copied().unwrap_or(f64::NAN)).collect();
        let positive: Vec<bool> = truth.iter().map(|&t| t == 1).collect();
        let auc = roc_auc(&scores, &positive);
        if !auc.is_nan() {
            m.insert("roc_auc".into(), auc);
        }
    }
    m
}

/// A classifier's per-class metrics and confusion matrix as two plain-text tables (empty for
/// metrics without classes, e.g. regression).
///
/// ```text
/// class      precision  recall      f1  support
/// negative      0.8123  0.7901  0.8010      405
/// ...
/// confusion (rows: true class, columns: predicted)
///             negative  positive
/// negative         320        85
/// ```
pub fn class_report(m: &Metrics) -> String {
    let classes: Vec<&str> = m.keys().filter_map(|k| k.strip_prefix("support.")).collect();
    if classes.is_empty() {
        return String::new();
    }
    let width = classes.iter().map(|c| c.chars().count()).max().unwrap_or(0).max(8);
    let get = |k: String| m.get(&k).copied().unwrap_or(f64::NAN);
    let mut out = format!("{:<width$}  {:>9}  {:>7}  {:>7}  {:>8}\n", "class", "precision", "recall", "f1", "support");
    for c in &classes {
        out.push_str(&format!(
            "{c:<width$}  {:>9.4}  {:>7.4}  {:>7.4}  {:>8}\n",
            get(format!("precision.{c}")),
            get(format!("recall.{c}")),
            get(format!("f1.{c}")),
            get(format!("support.{c}"))
        ));
    }
    out.push_str("confusion (rows: true class, columns: predicted)\n");
    out.push_str(&format!("{:<width$}", ""));
    for c in &classes {
        out.push_str(&format!("  {c:>width$}"));
    }
    out.push('\n');
    for t in &classes {
        out.push_str(&format!("{t:<width$}"));
        for p in &classes {
            out.push_str(&format!("  {:>width$}", get(format!("confusion.{t}.{p}"))));
        }
        out.push('\n');
    }
    out
}

/// The confusion matrix: `[true class][predicted class]` counts, as
/// `sklearn.metrics.confusion_matrix(labels=range(classes))`. Pairs with a class index out of
/// range are left out.
pub fn confusion_matrix(predicted: &[usize], truth: &[usize], classes: usize) -> Vec<Vec<usize>> {
    let mut m = vec![vec![0; classes]; classes];
    for (&p, &t) in predicted.iter().zip(truth) {
        if p < classes && t < classes {
            m[t][p] += 1;
        }
    }
    m
}

/// The area under the ROC curve of `scores` for the examples marked `positive`: the
/// probability that a random positive scores above a random negative, a tie counting one half
/// (`(Σ ranks of the positives − P(P+1)/2) / (P·N)`, ties getting their average rank), as
/// `sklearn.metrics.roc_auc_score`. NaN when there are no positives or no negatives, or a
/// score is NaN.
pub fn roc_auc(scores: &[f64], positive: &[bool]) -> f64 {
    let p = positive.iter().filter(|&&y| y).count();
    let n = positive.len() - p;
    if p == 0 || n == 0 || scores.len() != positive.len() || scores.iter().any(|s| s.is_nan()) {
        return f64::NAN;
    }
    let r = ranks(scores);
    let rank_sum: f64 = r.iter().zip(positive).filter(|(_, y)| **y).map(|(r, _)| r).sum();
    let (p, n) = (p as f64, n as f64);
    (rank_sum - p * (p + 1.0) / 2.0) / (p * n)
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

    #[test]
    fn roc_auc_counts_a_tie_as_one_half() {
        assert_eq!(roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]), 0.75);
        assert_eq!(roc_auc(&[0.5, 0.5], &[false, true]), 0.5);
        assert!(roc_auc(&[0.2, 0.9], &[true, true]).is_nan());
    }

    #[test]
    fn report_keys_use_the_class_names() {
        let names = ["neg".to_string(), "pos".to_string()];
        let probs = [vec![0.9, 0.1], vec![0.3, 0.7], vec![0.6, 0.4]];
        let m = classification_report(&[0, 1, 0], &[0, 1, 1], &probs, &names);
        assert_eq!(m["confusion.pos.neg"], 1.0);
        assert_eq!(m["support.pos"], 2.0);
        assert_eq!(m["precision.neg"], 0.5);
        assert_eq!(m["roc_auc"], 1.0);
        let one_class = classification_report(&[0, 1], &[1, 1], &probs[..2], &names);
        assert!(!one_class.contains_key("roc_auc"), "undefined ROC-AUC is left out");
    }
}

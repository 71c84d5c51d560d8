//! The classification metrics against scikit-learn 1.9, on the golden values that
//! `scripts/reference/metrics_fixtures.py` wrote into `tests/fixtures/classification_metrics.json`
//! (accuracy_score, f1_score(average="macro"), precision_recall_fscore_support,
//! confusion_matrix and roc_auc_score over the classes `range(len(names))`).
mod common;

use common::fixture;
use serde_json::Value;
use tunelab::metrics::{classification_report, confusion_matrix, roc_auc};

fn cases() -> Vec<Value> {
    let text = std::fs::read_to_string(fixture("classification_metrics.json")).unwrap();
    let f: Value = serde_json::from_str(&text).unwrap();
    f["cases"].as_array().unwrap().clone()
}

fn values<T: serde::de::DeserializeOwned>(case: &Value, key: &str) -> T {
    serde_json::from_value(case[key].clone()).unwrap_or_else(|e| panic!("{}: {key}: {e}", case["name"]))
}

fn close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() <= 1e-12, "{what}: tunelab {got}, scikit-learn {want}");
}

#[test]
fn classification_report_matches_scikit_learn() {
    let cases = cases();
    assert!(cases.len() >= 8, "the fixture holds every case");
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let names: Vec<String> = values(case, "names");
        let predicted: Vec<usize> = values(case, "predicted");
        let truth: Vec<usize> = values(case, "truth");
        let probabilities: Vec<Vec<f64>> = if case.get("probabilities").is_some() { values(case, "probabilities") } else { Vec::new() };
        let m = classification_report(&predicted, &truth, &probabilities, &names);

        close(m["accuracy"], case["accuracy"].as_f64().unwrap(), &format!("{name}: accuracy"));
        close(m["macro_f1"], case["macro_f1"].as_f64().unwrap(), &format!("{name}: macro_f1"));
        let mut expected_keys = 2;
        for key in ["precision", "recall", "f1", "support"] {
            let want: Vec<f64> = values(case, key);
            for (class, want) in names.iter().zip(want) {
                let k = format!("{key}.{class}");
                close(m[&k], want, &format!("{name}: {k}"));
                expected_keys += 1;
            }
        }
        let want: Vec<Vec<usize>> = values(case, "confusion");
        assert_eq!(confusion_matrix(&predicted, &truth, names.len()), want, "{name}: confusion matrix");
        for (t, row) in names.iter().zip(&want) {
            for (p, &count) in names.iter().zip(row) {
                let k = format!("confusion.{t}.{p}");
                close(m[&k], count as f64, &format!("{name}: {k}"));
                expected_keys += 1;
            }
        }
        match case.get("roc_auc") {
            Some(Value::Null) => {
                let scores: Vec<f64> = probabilities.iter().map(|p| p[1]).collect();
                let positive: Vec<bool> = truth.iter().map(|&t| t == 1).collect();
                assert!(roc_auc(&scores, &positive).is_nan(), "{name}: scikit-learn's ROC-AUC is NaN");
                assert!(!m.contains_key("roc_auc"), "{name}: an undefined ROC-AUC is left out of the metrics");
            }
            Some(want) => {
                close(m["roc_auc"], want.as_f64().unwrap(), &format!("{name}: roc_auc"));
                expected_keys += 1;
            }
            None => assert!(!m.contains_key("roc_auc"), "{name}: ROC-AUC only for binary tasks"),
        }
        assert_eq!(m.len(), expected_keys, "{name}: no other keys than scikit-learn's: {:?}", m.keys());
    }
}

#[test]
fn the_summary_is_unchanged() {
    for case in &cases() {
        let names: Vec<String> = values(case, "names");
        let (predicted, truth): (Vec<usize>, Vec<usize>) = (values(case, "predicted"), values(case, "truth"));
        let summary = tunelab::metrics::classification(&predicted, &truth, names.len());
        let report = classification_report(&predicted, &truth, &[], &names);
        for key in ["accuracy", "macro_f1"] {
            assert_eq!(summary[key].to_bits(), report[key].to_bits(), "{}: {key}", case["name"]);
        }
    }
}

//! The paired bootstrap over examples against numpy / scipy / scikit-learn: the same resamples
//! (drawn by numpy), the same per-resample differences and the same percentile interval.
//! Regenerate the fixture with `scripts/reference/bootstrap_fixture.py`.
use serde::Deserialize;
use tunelab::bootstrap;
use tunelab::model::Task;

#[derive(Deserialize)]
struct Fixture {
    resamples: Vec<Vec<usize>>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    task: String,
    metric: String,
    targets: Vec<f64>,
    a: Vec<Vec<Vec<f64>>>,
    b: Vec<Vec<Vec<f64>>>,
    differences: Vec<f64>,
    interval: [f64; 2],
}

#[test]
fn paired_bootstrap_matches_numpy() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bootstrap.json");
    let fixture: Fixture = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(fixture.cases.len(), 8);
    for case in &fixture.cases {
        let task = match case.task.as_str() {
            "regression" => Task::Regression,
            _ => Task::Classification { labels: vec!["a".into(), "b".into(), "c".into()] },
        };
        let a: Vec<&[Vec<f64>]> = case.a.iter().map(|r| r.as_slice()).collect();
        let b: Vec<&[Vec<f64>]> = case.b.iter().map(|r| r.as_slice()).collect();
        let got = bootstrap::differences(&task, &case.metric, &a, &b, &case.targets, fixture.resamples.iter().cloned());
        assert_eq!(got.len(), case.differences.len());
        for (i, (g, w)) in got.iter().zip(&case.differences).enumerate() {
            assert!((g - w).abs() < 1e-10, "{} {}: resample {i}: {g} vs numpy {w}", case.task, case.metric);
        }
        let (lo, hi) = (bootstrap::quantile(&got, 0.025), bootstrap::quantile(&got, 0.975));
        assert!((lo - case.interval[0]).abs() < 1e-10 && (hi - case.interval[1]).abs() < 1e-10, "{} {}: [{lo}, {hi}] vs numpy {:?}", case.task, case.metric, case.interval);
    }
}

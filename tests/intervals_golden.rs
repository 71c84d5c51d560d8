//! The ablation table's paired intervals over seeds and repeats against numpy/scipy
//! (`scripts/reference/intervals_fixture.py`): the two-way random-effects interval of a repeated
//! cross-validation, Satterthwaite's fractional degrees of freedom included.
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    table: Vec<Vec<f64>>,
    mean: f64,
    low: f64,
    high: f64,
}

#[test]
fn intervals_over_seeds_and_repeats_match_scipy() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/intervals.json");
    let cases: Vec<Case> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(cases.len(), 9);
    for c in &cases {
        let (mean, ci) = tunelab::ablation::crossed(&c.table);
        let (lo, hi) = ci.unwrap();
        for (got, want) in [(mean.unwrap(), c.mean), (lo, c.low), (hi, c.high)] {
            assert!((got - want).abs() < 1e-9, "{:?}: {got} vs scipy {want}", c.table);
        }
    }
}

//! The successive-halving pruner against Optuna's `SuccessiveHalvingPruner`: the same trials,
//! reporting the same scores one after another, are pruned at the same steps
//! (`scripts/reference/pruner_fixture.py` wrote the decisions with optuna 5.0).
use serde::Deserialize;
use tunelab::search::{Rungs, SuccessiveHalving};

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    settings: serde_json::Value,
    direction: String,
    steps: Vec<usize>,
    curves: Vec<Vec<Option<f64>>>,
    pruned_at: Vec<Option<usize>>,
}

#[test]
fn pruning_decisions_equal_optunas() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pruner.json");
    let fixture: Fixture = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(fixture.cases.len(), 7);
    let mut pruned_somewhere = 0;
    for case in &fixture.cases {
        let s = &case.settings;
        let pruner = SuccessiveHalving {
            min_resource: s["min_resource"].as_u64().map(|m| m as usize),
            reduction_factor: s["reduction_factor"].as_u64().unwrap() as usize,
            min_early_stopping_rate: s.get("min_early_stopping_rate").and_then(|v| v.as_u64()).unwrap_or(0) as usize,
            bootstrap_count: s.get("bootstrap_count").and_then(|v| v.as_u64()).unwrap_or(0) as usize,
        };
        pruner.validate().unwrap();
        let minimize = case.direction == "minimize";
        let mut rungs = Rungs::default();
        let mut got = Vec::new();
        for curve in &case.curves {
            let mut rung = 0;
            let mut stop = None;
            for (&step, value) in case.steps.iter().zip(curve) {
                if pruner.should_prune(&mut rungs, &mut rung, step, value.unwrap_or(f64::NAN), minimize) {
                    stop = Some(step);
                    break;
                }
            }
            if stop.is_none() {
                rungs.completed(*case.steps.last().unwrap());
            }
            got.push(stop);
        }
        assert_eq!(got, case.pruned_at, "{}", case.name);
        pruned_somewhere += got.iter().filter(|s| s.is_some()).count();
    }
    assert!(pruned_somewhere > 50, "the cases exercise pruning: {pruned_somewhere}");
}

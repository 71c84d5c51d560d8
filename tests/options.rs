//! docs/options.md lists every key of a run specification: this test collects the keys of
//! specifications that use every optional section and every variant, and fails on any key the
//! page does not name.
mod common;

use std::collections::{BTreeMap, BTreeSet};

use tunelab::groups::{Block, LayerSet, LrLayout};
use tunelab::recipe::{Decay, Warmup};
use tunelab::schedule::DecayShape;
use tunelab::spec::{Cv, Keep};
use tunelab::techniques::{Averaging, Reinit, Swa, SwaLr, swa::At};
use tunelab::RunSpec;

fn keys(value: &serde_json::Value, at: &str, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let path = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
                // A per-group map's keys are group names, not options.
                if at.ends_with("lr.per_group") {
                    continue;
                }
                // Sections are documented through their keys; a null is a section left out here
                // (another specification of the list fills it).
                let section = v.is_object() || v.is_null() || v.as_array().is_some_and(|a| a.iter().any(|x| x.is_object()));
                if !section {
                    out.insert(path.clone());
                }
                keys(v, &path, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| keys(v, &format!("{at}[]"), out)),
        _ => {}
    }
}

/// Specifications that between them use every section and every variant.
fn maximal() -> Vec<RunSpec> {
    let mut a = RunSpec::template();
    a.data.columns.pair = Some("other".into());
    a.data.columns.id = Some("id".into());
    a.data.train_limit = Some(10);
    a.data.dev_limit = Some(10);
    a.data.test = Some("data/vader-movies/test.tsv".into());
    a.data.test_limit = Some(10);
    a.data.cv = Some(Cv { group_by: Some("source".into()), fold: Some(0), repeats: 3, repeat: Some(1), ..Cv::new(5, 1) });
    a.recipe.lr = LrLayout::Llrd { top_lr: 1e-4, decay: 0.9, head_lr: 1e-3 };
    a.recipe.warmup = Warmup::Fraction(0.1);
    a.recipe.decay = Decay::Cosine { cycles: 0.5, min_ratio: 0.0 };
    a.recipe.reinit = Some(Reinit { seed: Some(1), ..Reinit::default() });
    a.recipe.swa = Some(Swa { start: At::Step(3), averaging: Averaging::Ema { decay: 0.9 }, lr: Some(SwaLr::Flat(1e-5)), ..Swa::default() });
    a.recipe.evaluation.every = Some(10);
    a.recipe.evaluation.patience = Some(2);
    a.recipe.evaluation.select_by = Some(tunelab::metrics::Metric::Pearson);
    a.training.max_steps = Some(10);
    a.training.bucket = Some(4);
    a.training.threads = Some(2);
    a.training.keep = Some(Keep::Models);
    a.recipe.adamw.bias_correction = false;
    a.recipe.adversarial = Some(tunelab::techniques::Adversarial::Awp { lr: 1.0, epsilon: 1e-3, start: 5 });
    a.head = tunelab::model::HeadOptions { layers: Some(2), dropout: Some(0.2), samples: Some(4) };
    a.recipe.weight_decay_towards = tunelab::recipe::DecayTowards::Pretrained;
    a.recipe.loss = Some(tunelab::techniques::Loss::Huber { delta: 0.5 });
    a.recipe.freeze = Some(tunelab::techniques::Freeze { embeddings: true, bottom_layers: 1, unfreeze_every: Some(5) });
    let mut b = RunSpec::template();
    b.recipe.lr = LrLayout::Grouped { sets: vec![LayerSet { name: "low".into(), blocks: vec![Block::Embeddings], lr: 1e-5 }], head_lr: 1e-4 };
    b.recipe.decay = Decay::StableDecay { decay_fraction: 0.1, shape: DecayShape::Linear, min_ratio: 0.0 };
    b.recipe.swa = Some(Swa { lr: Some(SwaLr::PerGroup(BTreeMap::from([("low".into(), 1e-6)]))), ..Swa::default() });
    b.data.subset = tunelab::data::Subset::First;
    let mut c = RunSpec::template();
    c.recipe.decay = Decay::Polynomial { power: 2.0, end_ratio: 0.1 };
    c.recipe.swa = Some(Swa::default()); // lr: scale, start: fraction
    let mut d = RunSpec::template();
    d.recipe.decay = Decay::InverseSqrt { timescale: Some(10) };
    let mut e = RunSpec::template();
    e.recipe.decay = Decay::CosineRestarts { cycles: 2.0 };
    c.recipe.mixout = Some(0.1);
    d.recipe.adversarial = Some(tunelab::techniques::Adversarial::Fgm { epsilon: 1.0, start: 0 });
    e.recipe.loss = Some(tunelab::techniques::Loss::CrossEntropy { label_smoothing: 0.1, class_weights: Some(vec![1.0, 2.0]) });
    vec![a, b, c, d, e]
}

#[test]
fn every_specification_key_is_documented() {
    let doc = std::fs::read_to_string(common::root().join("docs/options.md")).unwrap();
    let mut all = BTreeSet::new();
    for spec in maximal() {
        keys(&serde_json::to_value(&spec).unwrap(), "", &mut all);
    }
    assert!(all.len() > 60, "{} keys: the walk found them all?", all.len());
    let missing: Vec<&String> = all.iter().filter(|k| !doc.contains(&format!("`{k}`"))).collect();
    assert!(missing.is_empty(), "docs/options.md does not document: {missing:?}");
}

#[test]
fn the_template_is_a_complete_specification() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tunelab")).args(["spec", "--defaults"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let spec = RunSpec::from_json(&text, "stdout".as_ref()).unwrap();
    assert_eq!(spec, RunSpec::template());
    for key in ["\"select_by\": null", "\"weight_decay\": 0.01", "\"clip_grad_norm\": 1.0", "\"keep\": null", "\"loss\": null", "\"freeze\": null", "\"weight_decay_towards\": \"zero\"", "\"bias_correction\": true", "\"samples\": null", "\"adversarial\": null", "\"mixout\": null"] {
        assert!(text.contains(key), "{key} in {text}");
    }
}

#[test]
fn every_sweep_option_and_distribution_is_documented() {
    let doc = std::fs::read_to_string(common::root().join("docs/options.md")).unwrap();
    let sweep = tunelab::search::Sweep {
        space: tunelab::search::Space::default(),
        sampler: tunelab::search::Sampler::Tpe,
        trials: Some(1),
        seed: 0,
        pruner: Some(tunelab::search::SuccessiveHalving { min_resource: Some(1), ..Default::default() }),
        startup: 10,
        out: "x".into(),
    };
    let mut all = BTreeSet::new();
    keys(&serde_json::to_value(&sweep).unwrap(), "", &mut all);
    all.remove("space");
    assert!(all.len() >= 9, "{all:?}");
    for sampler in ["grid", "random", "tpe"] {
        all.insert(sampler.to_string());
    }
    let missing: Vec<&String> = all.iter().filter(|k| !doc.contains(&format!("`{k}`"))).collect();
    assert!(missing.is_empty(), "docs/options.md does not document the sweep options {missing:?}");
    for d in [
        tunelab::search::Distribution::Uniform { low: 0.0, high: 1.0 },
        tunelab::search::Distribution::LogUniform { low: 0.1, high: 1.0 },
        tunelab::search::Distribution::Int { low: 0, high: 1 },
        tunelab::search::Distribution::Choice { values: vec![] },
    ] {
        let kind = serde_json::to_value(&d).unwrap()["kind"].as_str().unwrap().to_string();
        assert!(doc.contains(&format!("`{kind}(")), "docs/options.md does not document the distribution {kind}");
    }
}

//! The techniques against PyTorch and transformers, on the golden values that
//! `scripts/reference/technique_fixtures.py` wrote with torch 2.11 and transformers 4.57.
mod common;

use std::collections::BTreeMap;

use common::{fixture, golden, max_abs_diff};
use serde_json::Value;
use tch::Device;
use tunelab::groups::{GroupTable, LrLayout, ParamInfo, Role};
use tunelab::optim::AdamW;
use tunelab::recipe::{Decay, Recipe, Warmup};
use tunelab::schedule::{AnnealShape, DecayShape, Schedule};
use tunelab::techniques::swa::{At, Averaging, Swa, SwaLr, WeightAverage};
use tunelab::{Batch, HeadSpec, Model, Pooling};

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

/// `|got - want| <= 1e-12 · |want|` (zero must be exactly zero).
fn assert_rel(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() <= 1e-12 * want.abs(), "{what}: got {got:e}, transformers/PyTorch {want:e}");
}

fn num(v: &Value, key: &str, default: f64) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(default)
}

/// The recipe a researcher writes for each of transformers' schedulers.
fn decay_for(case: &Value) -> Decay {
    let p = &case["params"];
    match case["kind"].as_str().unwrap() {
        "linear" => Decay::Linear,
        "constant" | "constant_with_warmup" => Decay::Constant,
        "cosine" => Decay::Cosine { cycles: num(p, "num_cycles", 0.5), min_ratio: 0.0 },
        "cosine_with_min_lr" => Decay::Cosine { cycles: num(p, "num_cycles", 0.5), min_ratio: num(p, "min_lr_rate", 0.0) },
        "cosine_with_restarts" => Decay::CosineRestarts { cycles: num(p, "num_cycles", 1.0) },
        "polynomial" => Decay::Polynomial { power: num(p, "power", 1.0), end_ratio: num(p, "lr_end", 1e-7) },
        "inverse_sqrt" => Decay::InverseSqrt { timescale: p.get("timescale").and_then(Value::as_u64).map(|t| t as usize) },
        "warmup_stable_decay" => {
            let total = case["total"].as_f64().unwrap();
            Decay::StableDecay {
                decay_fraction: num(p, "num_decay_steps", 0.0) / total,
                shape: match p.get("decay_type").and_then(Value::as_str).unwrap_or("cosine") {
                    "linear" => DecayShape::Linear,
                    "1-sqrt" => DecayShape::OneMinusSqrt,
                    _ => DecayShape::Cosine,
                },
                min_ratio: num(p, "min_lr_ratio", 0.0),
            }
        }
        other => panic!("no mapping for {other}"),
    }
}

#[test]
fn every_schedule_kind_matches_transformers() {
    let cases = json("schedules.json");
    let cases = cases.as_array().unwrap();
    assert!(cases.len() >= 27);
    let mut kinds = std::collections::BTreeSet::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let total = case["total"].as_u64().unwrap() as usize;
        let warmup = case["warmup"].as_u64().unwrap() as usize;
        let recipe = Recipe { warmup: Warmup::Steps(warmup), decay: decay_for(case), ..Recipe::default() };
        let schedule = recipe.main_schedule(total).unwrap();
        schedule.validate().unwrap();
        let want: Vec<f64> = case["factors"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(want.len(), total + 3, "{name}: the fixture covers the run and 3 steps past its end");
        for (k, w) in want.iter().enumerate() {
            assert_rel(schedule.factor(k), *w, &format!("{name}, step {k}"));
        }
        kinds.insert(case["kind"].as_str().unwrap().to_string());
    }
    assert_eq!(kinds.len(), 9, "{kinds:?}");
}

#[test]
fn swa_phase_matches_swalr_with_per_group_swa_lrs() {
    let fixture = json("swalr.json");
    for case in fixture["swalr"].as_array().unwrap() {
        let base: Vec<f64> = serde_json::from_value(case["base"].clone()).unwrap();
        let swa: Vec<f64> = serde_json::from_value(case["swa_lr"].clone()).unwrap();
        let lrs: Vec<Vec<f64>> = serde_json::from_value(case["lrs"].clone()).unwrap();
        let steps = case["anneal_epochs"].as_u64().unwrap() as usize;
        let shape = if case["strategy"] == "cos" { AnnealShape::Cosine } else { AnnealShape::Linear };
        for g in 0..base.len() {
            let s = Schedule::Anneal { from: 1.0, to: swa[g] / base[g], steps, shape };
            for (k, row) in lrs.iter().enumerate() {
                assert_rel(base[g] * s.factor(k), row[g], &format!("SWALR {steps} {shape:?}, group {g}, step {k}"));
            }
        }
    }
}

#[test]
fn recipe_with_warmup_decay_and_swa_matches_the_pytorch_loop() {
    let c = json("swalr.json")["combined"].clone();
    let params = vec![
        ParamInfo::new("embeddings.word_embeddings.weight", Role::Embedding, 1),
        ParamInfo::new("encoder.layer.0.output.dense.weight", Role::Weight, 1),
        ParamInfo::new("head.weight", Role::Weight, 1),
    ];
    let layout = LrLayout::Llrd { top_lr: 1e-3, decay: 0.5, head_lr: 2e-3 };
    let table = GroupTable::build(&params, 1, &layout, 0.0).unwrap();
    let swa_lr: Vec<f64> = serde_json::from_value(c["swa_lr"].clone()).unwrap();
    let per_group: BTreeMap<String, f64> =
        ["embeddings", "layer.0", "head"].iter().map(|s| s.to_string()).zip(swa_lr).collect();
    let recipe = Recipe {
        lr: layout,
        warmup: Warmup::Steps(c["warmup"].as_u64().unwrap() as usize),
        decay: Decay::Linear,
        swa: Some(Swa {
            start: At::Step(c["start"].as_u64().unwrap() as usize),
            lr: Some(SwaLr::PerGroup(per_group)),
            anneal_steps: c["anneal_epochs"].as_u64().unwrap() as usize,
            anneal: AnnealShape::Cosine,
            ..Swa::default()
        }),
        ..Recipe::default()
    };
    let total = c["total"].as_u64().unwrap() as usize;
    let ours = recipe.lr_table(&table, total).unwrap();
    let want: Vec<Vec<f64>> = serde_json::from_value(c["lrs"].clone()).unwrap();
    assert_eq!(ours.base, serde_json::from_value::<Vec<f64>>(c["base"].clone()).unwrap());
    for (k, row) in want.iter().enumerate() {
        for (g, w) in row.iter().enumerate() {
            assert_rel(ours.at(k)[g], *w, &format!("{} at step {k}", ours.groups[g]));
        }
    }
}

#[test]
fn weight_averages_match_averaged_model() {
    let g = golden("averaging.safetensors");
    let names = ["0.weight", "0.bias", "1.weight", "1.bias"];
    let state = |i: usize| -> Vec<(String, tch::Tensor)> {
        names.iter().map(|n| (n.to_string(), g[&format!("state.{i}.{n}")].shallow_clone())).collect()
    };
    for (kind, averaging) in [("swa", Averaging::Swa), ("ema", Averaging::Ema { decay: 0.9 })] {
        let mut avg = WeightAverage::new(averaging, &state(0));
        for i in 0..6 {
            avg.update(&state(i));
        }
        assert_eq!(avg.n_averaged, 6);
        for (name, t) in &avg.tensors {
            let d = max_abs_diff(t, &g[&format!("{kind}.{name}")]);
            assert!(d <= 1e-6, "{kind} {name} differs by {d:e}");
        }
    }
}

#[test]
fn adamw_with_llrd_groups_and_warmup_matches_pytorch_for_20_steps() {
    let g = golden("adamw.safetensors");
    let meta = json("adamw.json");
    let model = Model::load(fixture("tiny_bert"), Some(HeadSpec::regression(Pooling::Pooler)), Device::Cpu).unwrap();
    let vars = model.variables();
    tch::no_grad(|| {
        for n in ["head.weight", "head.bias"] {
            vars[n].shallow_clone().copy_(&g[&format!("init.{n}")]);
        }
    });
    let recipe = Recipe {
        lr: LrLayout::Llrd {
            top_lr: meta["top_lr"].as_f64().unwrap(),
            decay: meta["decay"].as_f64().unwrap(),
            head_lr: meta["head_lr"].as_f64().unwrap(),
        },
        weight_decay: meta["weight_decay"].as_f64().unwrap(),
        warmup: Warmup::Steps(5),
        decay: Decay::Linear,
        ..Recipe::default()
    };
    let table = recipe.group_table(&model).unwrap();
    // 4 LR groups (embeddings, 2 layers, pooler + head at head_lr) × decay / no decay.
    let optimizer_groups: std::collections::BTreeSet<(u64, u64)> =
        table.rows.iter().map(|r| (r.lr.to_bits(), r.weight_decay.to_bits())).collect();
    assert_eq!(optimizer_groups.len() as u64, meta["groups"].as_u64().unwrap());
    let lrs = recipe.lr_table(&table, 20).unwrap();
    let mut opt = AdamW::new(&table, &vars, recipe.adamw).unwrap();

    let fixture_batch = golden("tiny_bert.safetensors");
    let batch = Batch {
        input_ids: fixture_batch["input_ids"].shallow_clone(),
        attention_mask: fixture_batch["attention_mask"].shallow_clone(),
        token_type_ids: fixture_batch["token_type_ids"].shallow_clone(),
    };
    let want_losses: Vec<f64> = Vec::try_from(&g["losses"]).unwrap();
    for (k, want) in want_losses.iter().enumerate() {
        opt.zero_grad();
        let loss = model.head.loss(&model.forward(&batch, false), &g["targets"]);
        let got = loss.double_value(&[]);
        assert!((got - want).abs() <= 1e-6 * want.abs().max(1.0), "loss at step {k}: {got} vs {want}");
        loss.backward();
        opt.set_lrs(lrs.at(k));
        opt.step();
    }
    let mut checked = 0;
    let mut worst = 0.0f64;
    for (name, t) in &vars {
        if name.ends_with("attention.self.key.bias") {
            // Softmax is invariant to a shift of every score of a query, so the true gradient
            // of the key bias is exactly zero: what autograd returns is float noise, which
            // Adam's normalised update turns into steps of size ~lr in either implementation.
            // Check that premise instead of the noise-driven values.
            let grad = t.grad().abs().max().double_value(&[]);
            assert!(grad < 1e-6, "{name}: gradient {grad:e} is not noise");
            continue;
        }
        let d = max_abs_diff(t, &g[&format!("final.{name}")]);
        assert!(d <= 1e-6, "{name} differs from PyTorch's AdamW by {d:e} after 20 steps");
        worst = worst.max(d);
        checked += 1;
    }
    assert_eq!(checked, table.rows.len() - 2, "all but the two key biases");
    eprintln!("AdamW: largest parameter difference after 20 steps {worst:e}");
    assert!(want_losses[19] < want_losses[0] * 0.5, "the run learns something: {want_losses:?}");
}

#[test]
fn metrics_match_scipy_and_scikit_learn() {
    let f = json("metrics.json");
    let close = |got: f64, want: f64, what: &str| assert!((got - want).abs() <= 1e-12 * want.abs().max(1e-300), "{what}: {got} vs {want}");
    for case in f["regression"].as_array().unwrap() {
        let p: Vec<f64> = serde_json::from_value(case["predictions"].clone()).unwrap();
        let t: Vec<f64> = serde_json::from_value(case["targets"].clone()).unwrap();
        let m = tunelab::metrics::regression(&p, &t);
        for key in ["rmse", "mae", "pearson", "spearman"] {
            close(m[key], case[key].as_f64().unwrap(), &format!("{key} over {}", p.len()));
        }
    }
    for case in f["classification"].as_array().unwrap() {
        let p: Vec<usize> = serde_json::from_value(case["predicted"].clone()).unwrap();
        let t: Vec<usize> = serde_json::from_value(case["truth"].clone()).unwrap();
        let m = tunelab::metrics::classification(&p, &t, case["classes"].as_u64().unwrap() as usize);
        for key in ["accuracy", "macro_f1"] {
            close(m[key], case[key].as_f64().unwrap(), key);
        }
    }
}

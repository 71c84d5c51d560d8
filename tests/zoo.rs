//! The literature's techniques of issue 22 inside whole runs: a run stopped half-way and
//! resumed in a fresh process is bit-identical to an uninterrupted one, frozen blocks are
//! untouched (no update, no optimizer state) until they thaw, and the CLI and rhai accept them.
mod common;

use std::path::Path;
use std::process::Command;

use common::fixture;
use tunelab::data::{Columns, TaskKind};
use tunelab::groups::LrLayout;
use tunelab::optim::AdamWConfig;
use tunelab::recipe::{DecayTowards, Eval, Recipe, Warmup};
use tunelab::techniques::{Freeze, Loss, Reinit};
use tunelab::{DataSpec, RunSpec, TrainConfig};

fn spec() -> RunSpec {
    let mut data = DataSpec::new(fixture("vader-sample/train.tsv"), fixture("vader-sample/dev.tsv"), "text", "score", TaskKind::Regression);
    data.columns = Columns::new("text", "score");
    RunSpec {
        model: fixture("tiny_bert"),
        pooling: tunelab::Pooling::Pooler,
        head: Default::default(),
        data,
        recipe: Recipe {
            lr: LrLayout::Llrd { top_lr: 1e-3, decay: 0.8, head_lr: 2e-3 },
            warmup: Warmup::Steps(3),
            reinit: Some(Reinit { top_layers: 1, ..Reinit::default() }),
            evaluation: Eval { every: Some(5), ..Eval::default() },
            adamw: AdamWConfig { bias_correction: false, ..AdamWConfig::default() },
            weight_decay_towards: DecayTowards::Pretrained,
            loss: Some(Loss::Huber { delta: 0.7 }),
            freeze: Some(Freeze { embeddings: true, bottom_layers: 1, unfreeze_every: Some(10) }),
            adversarial: Some(tunelab::techniques::Adversarial::Awp { lr: 0.5, epsilon: 1e-2, start: 5 }),
            ..Recipe::default()
        },
        training: TrainConfig { epochs: 2, batch_size: 16, seed: 3, threads: Some(1), max_length: 64, ..TrainConfig::default() },
    }
}

/// Trains in this process, one run at a time (libtorch's random generator is global).
fn run_in(s: &RunSpec, control: &tunelab::RunControl) -> tunelab::Run {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    s.run_with(control).unwrap()
}

fn tunelab(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_tunelab")).args(args).output().unwrap();
    assert!(out.status.success(), "tunelab {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn tensors(path: &Path) -> std::collections::HashMap<String, tch::Tensor> {
    tch::Tensor::read_safetensors(path).unwrap().into_iter().collect()
}

/// 30 steps straight against 15, a fresh process, and 15 more, with the layer-0 thaw (step 10)
/// before the stop and the embeddings' (step 20) after it.
#[test]
fn a_resumed_run_with_the_new_techniques_is_bit_identical() {
    let root = tempfile::tempdir().unwrap();
    let spec_path = root.path().join("spec.json");
    std::fs::write(&spec_path, spec().to_json()).unwrap();
    let (straight, resumed) = (root.path().join("straight"), root.path().join("resumed"));
    let sp = spec_path.to_str().unwrap();
    tunelab(&["train", sp, "--out", straight.to_str().unwrap(), "--quiet"]);
    tunelab(&["train", sp, "--out", resumed.to_str().unwrap(), "--quiet", "--stop-after", "15"]);
    tunelab(&["resume", resumed.to_str().unwrap(), "--quiet"]);
    for file in ["last/model/model.safetensors", "last/model/head.safetensors", "last/optimizer.safetensors", "best/model.safetensors", "log.jsonl", "eval.jsonl"] {
        let (a, b) = (std::fs::read(straight.join(file)).unwrap(), std::fs::read(resumed.join(file)).unwrap());
        assert!(a == b, "{file} differs between the straight and the resumed run");
    }
    // The optimizer checkpoint carries the pre-trained anchors.
    let opt = tensors(&straight.join("last/optimizer.safetensors"));
    assert!(opt.keys().any(|k| k.starts_with("anchor.encoder.layer.0.")), "anchors are checkpointed");
    assert!(!opt.keys().any(|k| k.starts_with("anchor.head.") || k.starts_with("anchor.encoder.layer.1.")), "the head and the re-initialised layer decay towards 0");
}

#[test]
fn a_resumed_run_with_mixout_is_bit_identical() {
    let root = tempfile::tempdir().unwrap();
    let mut s = spec();
    s.recipe.adversarial = None;
    s.recipe.mixout = Some(0.2);
    let spec_path = root.path().join("spec.json");
    std::fs::write(&spec_path, s.to_json()).unwrap();
    let (straight, resumed) = (root.path().join("straight"), root.path().join("resumed"));
    let sp = spec_path.to_str().unwrap();
    tunelab(&["train", sp, "--out", straight.to_str().unwrap(), "--quiet"]);
    tunelab(&["train", sp, "--out", resumed.to_str().unwrap(), "--quiet", "--stop-after", "12"]);
    tunelab(&["resume", resumed.to_str().unwrap(), "--quiet"]);
    for file in ["last/model/model.safetensors", "last/model/head.safetensors", "last/optimizer.safetensors", "log.jsonl", "eval.jsonl"] {
        assert!(std::fs::read(straight.join(file)).unwrap() == std::fs::read(resumed.join(file)).unwrap(), "{file} differs");
    }
    // The targets (the weights before fine-tuning) travel in the checkpoint.
    assert!(tensors(&straight.join("last/optimizer.safetensors")).contains_key("anchor.head.weight"));
    // Mixout and adversarial training together are refused, naming both.
    s.recipe.adversarial = Some(tunelab::techniques::Adversarial::Fgm { epsilon: 1.0, start: 0 });
    assert!(s.plan().unwrap_err().to_string().contains("recipe.mixout and recipe.adversarial cannot be combined"));
}

#[test]
fn frozen_blocks_do_not_move_and_get_no_optimizer_state_until_they_thaw() {
    let root = tempfile::tempdir().unwrap();
    let mut s = spec();
    s.recipe.freeze = Some(Freeze { embeddings: true, bottom_layers: 1, unfreeze_every: Some(20) });
    s.training.keep = Some(tunelab::spec::Keep::Resumable);
    // 15 steps: layer 0 (thaws at 20) and the embeddings (40) never train.
    let run = run_in(&s, &tunelab::RunControl { out: Some(root.path().join("run")), quiet: true, stop_after: Some(15), ..Default::default() });
    let pretrained = tensors(&fixture("tiny_bert/model.safetensors"));
    let trained = tensors(&run.dir.join("last/model/model.safetensors"));
    // The fixture's checkpoint names its tensors `bert.<name>`, as transformers saves them.
    let moved = |prefix: &str| trained.iter().filter(|(k, _)| k.starts_with(prefix)).any(|(k, t)| !t.equal(&pretrained[&format!("bert.{k}")]));
    assert!(trained.keys().filter(|k| k.starts_with("embeddings.") || k.starts_with("encoder.layer.0.")).count() >= 20);
    assert!(!moved("embeddings.") && !moved("encoder.layer.0."), "frozen blocks are exactly the pre-trained weights");
    assert!(moved("encoder.layer.1."), "the rest trains");
    let opt = tensors(&run.dir.join("last/optimizer.safetensors"));
    let zero = |k: &str| opt[k].abs().max().double_value(&[]) == 0.0;
    assert!(zero("exp_avg.embeddings.word_embeddings.weight") && zero("exp_avg_sq.encoder.layer.0.output.dense.weight"), "no moments for frozen blocks");
    // The log shows their LR at 0.
    let log = std::fs::read_to_string(run.dir.join("log.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().nth(5).unwrap()).unwrap();
    assert_eq!(first["lr"]["embeddings"], 0.0, "{first}");
    assert_eq!(first["lr"]["layer.0"], 0.0, "{first}");
    assert!(first["lr"]["layer.1"].as_f64().unwrap() > 0.0, "{first}");
}

#[test]
fn scripts_and_specifications_name_bad_settings() {
    let mut s = spec();
    s.recipe.loss = Some(Loss::CrossEntropy { label_smoothing: 0.1, class_weights: None });
    let err = s.plan().unwrap_err().to_string();
    assert!(err.contains("recipe.loss: cross_entropy is a classification loss"), "{err}");
    s.recipe.loss = Some(Loss::Huber { delta: 0.0 });
    assert!(s.plan().unwrap_err().to_string().contains("huber's delta must be above 0"));
    s.recipe.loss = None;
    s.recipe.freeze = Some(Freeze { bottom_layers: 3, ..Freeze::default() });
    assert!(s.plan().unwrap_err().to_string().contains("recipe.freeze.bottom_layers is 3 but the model has only 2 layers"));
    // rhai: a loss by its name alone, and the freeze map.
    let source = r#"recipe(#{ loss: "mae", freeze: #{ embeddings: true }, weight_decay_towards: "pretrained", adamw: #{ bias_correction: false } })"#;
    let value = tunelab::script::Script::from_source("zoo.rhai", source).unwrap().run(&[], &tunelab::script::ScriptSettings::plan()).unwrap().value;
    let r: Recipe = value.try_cast().expect("a recipe");
    assert_eq!((r.loss, r.freeze.map(|f| f.embeddings), r.weight_decay_towards, r.adamw.bias_correction), (Some(Loss::Mae {}), Some(true), DecayTowards::Pretrained, false));
    let bad = tunelab::script::Script::from_source("zoo.rhai", r#"recipe(#{ loss: "hubr" })"#).unwrap().run(&[], &tunelab::script::ScriptSettings::plan()).unwrap_err().to_string();
    assert!(bad.contains("hubr") && bad.contains("huber"), "{bad}");
    // A setting that the loss does not have is named, not ignored.
    let bad = tunelab::script::Script::from_source("zoo.rhai", r#"recipe(#{ loss: #{ kind: "mae", delta: 2.0 } })"#).unwrap().run(&[], &tunelab::script::ScriptSettings::plan()).unwrap_err().to_string();
    assert!(bad.contains("delta"), "{bad}");
}

#[test]
fn the_zoo_script_plans_every_technique_on_the_real_model() {
    common::minilm_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_tunelab")).current_dir(common::root()).args(["plan", "scripts/zoo.rhai", "--set", "folds=2"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for line in [
        "planned run 9 of 9",
        "Mixout 0.1: every dense weight mixed with its value before fine-tuning in each step, dropout off",
        "adversarial training: FGM on the word embeddings (epsilon 1) from step 0, one more forward and backward pass in each of 128 steps",
        "adversarial training: AWP (lr 1, epsilon 0.001) from step 10, one more forward and backward pass in each of 118 steps",
        "optimizer: Adam without bias correction",
        "weight decay 0.01 towards the pre-trained weights",
        "training loss: Huber (delta 1)",
        "training loss: MAE",
        "frozen (no gradient, LR 0): layer.2 until step 10, layer.1 until step 20, layer.0 until step 30, embeddings until step 40",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
}

#[test]
fn new_heads_are_saved_reloaded_and_predict() {
    let root = tempfile::tempdir().unwrap();
    for (pooling, options) in [
        (tunelab::Pooling::Attention, tunelab::model::HeadOptions { dropout: Some(0.2), samples: Some(3), ..Default::default() }),
        (tunelab::Pooling::WeightedLayers, tunelab::model::HeadOptions { layers: Some(2), ..Default::default() }),
        (tunelab::Pooling::Concat, tunelab::model::HeadOptions { layers: Some(2), ..Default::default() }),
    ] {
        let mut s = spec();
        s.recipe = Recipe { evaluation: Eval { every: Some(5), ..Eval::default() }, ..Recipe::default() };
        s.pooling = pooling;
        s.head = options.clone();
        s.training.max_steps = Some(6);
        let out = root.path().join(format!("{pooling:?}"));
        let run = run_in(&s, &tunelab::RunControl { out: Some(out.clone()), quiet: true, ..Default::default() });
        let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.dir.join("best/tunelab.json")).unwrap()).unwrap();
        let saved: tunelab::HeadSpec = serde_json::from_value(meta["spec"].clone()).unwrap_or_else(|_| serde_json::from_value(meta.clone()).unwrap());
        assert_eq!((saved.pooling, saved.options), (pooling, options), "{meta}");
        // Reloaded from best/, the model predicts the dev file as the run scored it.
        let best = run.metrics.best.as_ref().unwrap();
        let again = tunelab::run::evaluate_folder(&run.dir.join("best"), &s.data).unwrap();
        assert!((again["rmse"] - best.metrics["rmse"]).abs() < 1e-6, "{pooling:?}: {} vs {}", again["rmse"], best.metrics["rmse"]);
        let predictions = root.path().join(format!("{pooling:?}.tsv"));
        tunelab(&["predict", run.dir.join("best").to_str().unwrap(), fixture("vader-sample/dev.tsv").to_str().unwrap(), "--out", predictions.to_str().unwrap()]);
        assert!(std::fs::read_to_string(&predictions).unwrap().lines().count() > 10);
    }
}

#[test]
fn multi_sample_dropout_averages_the_losses_of_its_masks() {
    // Without dropout every mask is the identity: k samples train as one (up to the rounding of
    // averaging k equal losses).
    let root = tempfile::tempdir().unwrap();
    let mut s = spec();
    s.recipe = Recipe::default();
    s.training.max_steps = Some(5);
    s.head = tunelab::model::HeadOptions { dropout: Some(0.0), ..Default::default() };
    let one = run_in(&s, &tunelab::RunControl { out: Some(root.path().join("one")), quiet: true, ..Default::default() });
    s.head.samples = Some(4);
    let four = run_in(&s, &tunelab::RunControl { out: Some(root.path().join("four")), quiet: true, ..Default::default() });
    for (a, b) in one.log.iter().zip(&four.log) {
        assert!((a.loss - b.loss).abs() < 1e-6 * a.loss.abs().max(1.0), "{} vs {}", a.loss, b.loss);
    }
    // With dropout, each of the k passes draws its own mask: the outputs differ, and
    // evaluation is one pass without dropout.
    let head = tunelab::HeadSpec { options: tunelab::model::HeadOptions { dropout: Some(0.5), samples: Some(3), ..Default::default() }, ..tunelab::HeadSpec::regression(tunelab::Pooling::Cls) };
    let model = tunelab::Model::load(fixture("tiny_bert"), Some(head), tch::Device::Cpu).unwrap();
    let ids = tch::Tensor::from_slice(&[2i64, 7, 9, 3]).view([1, 4]);
    let batch = tunelab::Batch { attention_mask: ids.ones_like(), token_type_ids: ids.zeros_like(), input_ids: ids };
    let train = model.forward_samples(&batch, true);
    assert_eq!(train.len(), 3);
    assert!(!train[0].equal(&train[1]) && !train[1].equal(&train[2]));
    assert_eq!(model.forward_samples(&batch, false).len(), 1);
}

#[test]
fn a_head_that_does_not_fit_the_model_is_named_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let script = |model: &str| {
        let path = dir.path().join("h.rhai");
        let source = format!(
            "let r = plan({model}, data(#{{ train: \"{}\", dev: \"{}\", columns: #{{ text: \"text\", label: \"score\" }}, kind: \"regression\" }}), recipe(), training(#{{ max_steps: 2, max_length: 64 }}));",
            fixture("vader-sample/train.tsv").display(),
            fixture("vader-sample/dev.tsv").display()
        );
        std::fs::write(&path, source).unwrap();
        Command::new(env!("CARGO_BIN_EXE_tunelab")).args(["plan", path.to_str().unwrap()]).output().unwrap()
    };
    let tiny = fixture("tiny_bert").display().to_string();
    let out = script(&format!("model(\"{tiny}\", #{{ pooling: \"concat\", layers: 3 }})"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("head.layers is 3: the Concat pooling reads 1 to 2 layers of this model"), "{err}");
    let out = script(&format!("model(\"{tiny}\", #{{ pooling: \"attention\", layerz: 2 }})"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("layerz"), "{err}");
    let out = script(&format!("model(\"{tiny}\", #{{ pooling: \"weighted_layers\", layers: 2, samples: 4 }})"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The heads belong to the model: an ablation entry that brings its own `model(..)` is one row
/// of the same table, paired by seed with the others; the base's model named again changes
/// nothing (its manifest stays that of an ablation without models).
#[test]
fn an_ablation_entry_trains_its_own_head() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("heads");
    let script = |command: &str, entries: &str| {
        let path = dir.path().join("heads.rhai");
        let tiny = fixture("tiny_bert").display().to_string();
        let source = format!(
            r#"let m = model("{tiny}", #{{ pooling: "pooler" }});
let d = data(#{{ train: "{}", dev: "{}", columns: #{{ text: "text", label: "score" }}, kind: "regression" }});
let t = training(#{{ max_steps: 3, batch_size: 16, threads: 1, max_length: 32 }});
let r = recipe(#{{ lr: #{{ kind: "uniform", lr: 1e-3 }} }});
ablate(m, d, [{entries}], t, #{{ seeds: [1, 2], out: "{}" }});"#,
            fixture("vader-sample/train.tsv").display(),
            fixture("vader-sample/dev.tsv").display(),
            out.display()
        )
        .replace("TINY", &tiny);
        std::fs::write(&path, source).unwrap();
        let mut args = vec![command, path.to_str().unwrap()];
        if command == "run" {
            args.push("--quiet");
        }
        Command::new(env!("CARGO_BIN_EXE_tunelab")).args(&args).output().unwrap()
    };
    for (entry, expected) in [
        (r#"#{ name: "pooler", recipe: r, head: "attention" }"#, "ablate: entry 0: `head` is not an entry's key"),
        (r#"#{ name: "pooler", recipe: #{ lr: 1e-3 } }"#, "ablate: entry 0: `recipe` of `pooler` must be recipe(..)"),
        (r#"#{ name: "pooler", recipe: r, model: "TINY" }"#, "ablate: entry 0: `model` of `pooler` must be model(..)"),
        // A head the model cannot take is refused while planning, before any folder exists.
        (r#"#{ name: "pooler", recipe: r, model: model("TINY", #{ pooling: "concat", layers: 3 }) }"#, "head.layers is 3"),
    ] {
        let bad = script("run", entry);
        let err = String::from_utf8_lossy(&bad.stderr);
        assert!(!bad.status.success() && err.contains(expected) && err.lines().count() == 1, "{entry}: {err}");
        assert!(!out.exists(), "{entry}");
    }
    let entries = r#"#{ name: "pooler", recipe: r }, #{ name: "same", recipe: r, model: model("TINY", #{ pooling: "pooler" }) },
    #{ name: "+ attention", recipe: r, model: model("TINY", #{ pooling: "attention", samples: 2 }) }"#;
    // The plan shows the row's own head: the attention query is one more head tensor.
    let plan = script("plan", entries);
    let plan = String::from_utf8_lossy(&plan.stdout).into_owned();
    let attention = &plan[plan.find("run `+ attention`").expect("the attention row is planned")..];
    assert!(attention.contains("its own model:") && attention.contains("pooling Attention") && attention.contains(r#""samples":2"#), "{plan}");
    let head_tensors = |text: &str| text.lines().find(|l| l.starts_with("head ")).map(|l| l.split_whitespace().nth(2).unwrap().to_string());
    assert_eq!((head_tensors(&plan).as_deref(), head_tensors(attention).as_deref()), (Some("2"), Some("3")), "{plan}");
    let run = script("run", entries);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let read = |p: std::path::PathBuf| -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap() };
    let manifest = read(out.join("shard-0-of-1.json"));
    let models = manifest["models"].as_object().expect("the manifest names the recipes' own models");
    assert_eq!(models.keys().collect::<Vec<_>>(), ["+ attention"], "{manifest}");
    assert_eq!((models["+ attention"]["pooling"].as_str(), models["+ attention"]["head"]["samples"].as_u64()), (Some("attention"), Some(2)));
    for seed in [1, 2] {
        let own = read(out.join(format!("attention-seed{seed}/spec.json")));
        assert_eq!((&own["pooling"], &own["head"]["samples"]), (&serde_json::json!("attention"), &serde_json::json!(2)), "{own}");
        assert_eq!(read(out.join(format!("pooler-seed{seed}/spec.json")))["pooling"], "pooler");
        // The same model named again trains exactly the base's run.
        let (a, b) = (read(out.join(format!("pooler-seed{seed}/metrics.json"))), read(out.join(format!("same-seed{seed}/metrics.json"))));
        assert_eq!(a["best"]["value"], b["best"]["value"]);
    }
    let table = String::from_utf8_lossy(&tunelab(&["merge", out.to_str().unwrap(), "--each-vs-first"]).stdout).into_owned();
    assert!(table.contains("+ attention") && table.contains("vs pooler") && !table.contains("previous"), "{table}");
}

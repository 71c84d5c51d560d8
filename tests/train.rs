//! The training engine on the tiny BERT and 300 real VADER sentences.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::fixture;
use tunelab::data::{Columns, TaskKind};
use tunelab::groups::LrLayout;
use tunelab::recipe::{Eval, Recipe, Warmup};
use tunelab::techniques::{Reinit, Swa, swa::At};
use tunelab::run_dir::{EvalRecord, StepLog, Weights};
use tunelab::{DataSpec, HeadSpec, Model, Run, RunControl, RunSpec, TrainConfig};

/// Trains `spec` quietly into the folder `out`. Runs in this process take turns: libtorch's
/// random generator (dropout) is global, and the tests of this file run in parallel threads.
fn run_in(spec: &RunSpec, out: &Path) -> tunelab::Result<Run> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    spec.run_with(&RunControl { out: Some(out.to_path_buf()), quiet: true, ..RunControl::default() })
}

fn spec() -> RunSpec {
    RunSpec {
        model: fixture("tiny_bert"),
        pooling: tunelab::Pooling::Pooler,
        head: Default::default(),
        data: DataSpec {
            train: fixture("vader-sample/train.tsv"),
            dev: Some(fixture("vader-sample/dev.tsv")),
            columns: Columns::new("text", "score"),
            kind: TaskKind::Regression,
            skip_invalid: false,
            train_limit: None,
            dev_limit: None,
            subset: tunelab::data::Subset::default(),
            cv: None,
            test: None,
            test_limit: None,
        },
        recipe: Recipe {
            lr: LrLayout::Llrd { top_lr: 1e-3, decay: 0.8, head_lr: 2e-3 },
            warmup: Warmup::Steps(5),
            reinit: Some(Reinit { top_layers: 1, ..Reinit::default() }),
            swa: Some(Swa { start: At::Fraction(0.5), ..Swa::default() }),
            evaluation: Eval { every: Some(5), ..Eval::default() },
            ..Recipe::default()
        },
        training: TrainConfig {
            epochs: 2,
            batch_size: 16,
            seed: 1,
            threads: Some(1),
            max_length: 64,
            ..TrainConfig::default()
        },
    }
}

fn lines<T: for<'de> serde::Deserialize<'de>>(path: PathBuf) -> Vec<T> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn a_run_leaves_its_recipe_logs_metrics_and_models_behind() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec();
    let run = run_in(&spec, dir.path()).unwrap();
    // 240 sentences in batches of 16: 15 steps per epoch, 2 epochs.
    assert_eq!((run.metrics.steps, run.metrics.total_steps, run.metrics.finished), (30, 30, true));
    assert_eq!(RunSpec::from_file(&dir.path().join("spec.json")).unwrap(), spec);

    // log.jsonl: one line per step, every group's LR equal to the recipe's LR table.
    let log: Vec<StepLog> = lines(dir.path().join("log.jsonl"));
    assert_eq!(log.len(), 30);
    let model = Model::load(&spec.model, Some(HeadSpec::regression(spec.pooling)), tch::Device::Cpu).unwrap();
    let table = spec.recipe.group_table(&model).unwrap();
    let lrs = spec.recipe.lr_table(&table, 30).unwrap();
    for entry in &log {
        let groups: Vec<&String> = entry.lr.keys().collect();
        assert_eq!(groups, lrs.groups.iter().collect::<Vec<_>>());
        for (g, name) in lrs.groups.iter().enumerate() {
            assert_eq!(entry.lr[name], lrs.at(entry.step)[g], "{name} at step {}", entry.step);
        }
        assert!(entry.loss.is_finite());
    }
    assert_eq!(log.iter().map(|l| l.epoch).max(), Some(1));

    // eval.jsonl: every 5 steps (epoch ends coincide), the SWA weights once averaged.
    let evals: Vec<EvalRecord> = lines(dir.path().join("eval.jsonl"));
    let model_steps: Vec<usize> = evals.iter().filter(|e| e.weights == Weights::Model).map(|e| e.step).collect();
    assert_eq!(model_steps, [5, 10, 15, 20, 25, 30]);
    let swa_steps: Vec<usize> = evals.iter().filter(|e| e.weights == Weights::Swa).map(|e| e.step).collect();
    assert_eq!(swa_steps, [20, 25, 30], "SWA starts after optimizer step 15 (0-based)");
    for key in ["rmse", "mae", "pearson", "spearman", "loss"] {
        assert!(evals[0].metrics.contains_key(key), "{key}");
    }

    // metrics.json and the best model: the best is the lowest RMSE, and best/ reproduces it.
    let best = run.metrics.best.clone().unwrap();
    let lowest = evals.iter().filter(|e| e.weights == Weights::Model).map(|e| e.metrics["rmse"]).fold(f64::INFINITY, f64::min);
    assert_eq!(best.value, lowest);
    let reloaded = Model::load(dir.path().join("best"), None, tch::Device::Cpu).unwrap();
    let (_, dev) = spec.data.load().unwrap();
    let mut tok = reloaded.encoder.tokenizer.clone().unwrap();
    tok.set_max_length(spec.training.max_length).unwrap();
    let again = tunelab::train::evaluate(&reloaded, &dev.encode(&tok).unwrap(), 64);
    assert!((again["rmse"] - best.value).abs() < 1e-9, "best/ gives {} not {}", again["rmse"], best.value);
    assert!(run.metrics.swa.is_some());
    assert!(dir.path().join("swa/model.safetensors").is_file());
    assert!(dir.path().join("last/state.json").is_file());
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("metrics.json")).unwrap()).unwrap();
    assert!(m["train_samples_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(m["steps"], 30);
}

#[test]
fn the_same_seed_gives_the_same_loss_at_every_step() {
    let (a, b, c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let losses = |dir: &Path, seed: u64| -> Vec<f64> {
        let mut s = spec();
        s.training.seed = seed;
        s.training.max_steps = Some(12);
        run_in(&s, dir).unwrap().log.iter().map(|l| l.loss).collect()
    };
    let first = losses(a.path(), 3);
    assert_eq!(first, losses(b.path(), 3));
    assert_ne!(first, losses(c.path(), 4));
}

fn tunelab(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_tunelab")).args(args).output().unwrap();
    assert!(out.status.success(), "tunelab {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// 30 steps straight against 15 steps, a fresh process, and 15 more: the same bits.
#[test]
fn a_resumed_run_is_bit_identical_to_an_uninterrupted_one() {
    let root = tempfile::tempdir().unwrap();
    let spec_path = root.path().join("spec.json");
    let s = spec();
    std::fs::write(&spec_path, serde_json::to_string_pretty(&s).unwrap()).unwrap();
    let (straight, resumed) = (root.path().join("straight"), root.path().join("resumed"));
    let sp = spec_path.to_str().unwrap();
    tunelab(&["train", sp, "--out", straight.to_str().unwrap(), "--quiet"]);
    let out = tunelab(&["train", sp, "--out", resumed.to_str().unwrap(), "--quiet", "--stop-after", "15"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("stopped (resumable: tunelab resume") && stdout.contains("after 15 of 30 steps"), "{stdout}");
    assert!(!resumed.join("swa").exists(), "an unfinished run has no final SWA model");
    tunelab(&["resume", resumed.to_str().unwrap(), "--quiet"]);
    for file in [
        "last/model/model.safetensors",
        "last/model/head.safetensors",
        "last/optimizer.safetensors",
        "last/swa.safetensors",
        "swa/model.safetensors",
        "best/model.safetensors",
        "log.jsonl",
        "eval.jsonl",
    ] {
        let (a, b) = (std::fs::read(straight.join(file)).unwrap(), std::fs::read(resumed.join(file)).unwrap());
        assert!(a == b, "{file} differs between the straight and the resumed run");
    }
}

#[test]
fn a_non_finite_loss_stops_the_run_naming_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("huge.tsv");
    let mut rows = String::from("text\tscore\n");
    for i in 0..40 {
        rows.push_str(&format!("the film {i}\t1e30\n"));
    }
    std::fs::write(&data, rows).unwrap();
    let mut s = spec();
    s.data.train = data.clone();
    s.data.dev = Some(data);
    let err = run_in(&s, &dir.path().join("run")).unwrap_err().to_string();
    assert_eq!(err, "the loss became inf at optimizer step 0; the last checkpoint before it is still usable");
}

#[test]
fn classification_with_accumulation_and_bucketing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec();
    s.data.columns = Columns::new("text", "label");
    s.data.kind = TaskKind::Classification;
    s.recipe.swa = None;
    s.recipe.evaluation = Eval { every: None, epoch_end: true, ..Eval::default() };
    s.training.epochs = 1;
    s.training.batch_size = 8;
    s.training.grad_accum = 4;
    s.training.bucket = Some(4);
    let run = run_in(&s, dir.path()).unwrap();
    // 240 / 8 = 30 micro-batches, 4 per step: 8 steps (the last with 2).
    assert_eq!(run.metrics.total_steps, 8);
    let best = run.metrics.best.unwrap();
    assert_eq!(best.metric, "accuracy");
    assert!(best.metrics.contains_key("macro_f1"));
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("best/tunelab.json")).unwrap()).unwrap();
    assert_eq!(saved["task"]["labels"], serde_json::json!(["negative", "positive"]));
}

#[test]
fn bad_data_is_one_clear_line_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bad.tsv");
    std::fs::write(&data, "text\tscore\ngood film\t1.5\nbad film\tterrible\n").unwrap();
    let mut s = spec();
    s.data.train = data.clone();
    let spec_path = dir.path().join("spec.json");
    std::fs::write(&spec_path, serde_json::to_string(&s).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tunelab")).args(["train", spec_path.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr, format!("error: {}:3: column `score`: `terrible` is not a number\n", data.display()));
}

#[test]
fn a_recipe_that_does_not_fit_the_run_fails_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec();
    s.recipe.warmup = Warmup::Steps(100);
    let err = run_in(&s, dir.path()).unwrap_err().to_string();
    assert_eq!(err, "the warm-up of 100 steps is longer than the run (30 steps)");
    assert!(!dir.path().join("log.jsonl").exists(), "nothing trained");
}

#[test]
fn patience_stops_at_the_evaluation_that_exhausts_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec();
    // No improvement can beat a min_delta of 10 RMSE: the first evaluation sets the best, the
    // second (step 10) is the first without improvement, and a patience of 1 stops there.
    s.recipe.evaluation = Eval { every: Some(5), patience: Some(1), min_delta: 10.0, ..Eval::default() };
    let run = run_in(&s, dir.path()).unwrap();
    assert_eq!((run.metrics.stopped_early, run.metrics.steps, run.metrics.finished), (Some(10), 10, true));
    assert_eq!(run.log.len(), 10);
    let steps: Vec<usize> = run.evals.iter().filter(|e| e.weights == Weights::Model).map(|e| e.step).collect();
    assert_eq!(steps, [5, 10]);
    assert_eq!(run.metrics.best.unwrap().step, run.evals.iter().filter(|e| e.weights == Weights::Model).min_by(|a, b| a.metrics["rmse"].total_cmp(&b.metrics["rmse"])).unwrap().step);

    // A patience that is never exhausted runs to the end.
    let dir = tempfile::tempdir().unwrap();
    s.recipe.evaluation = Eval { every: Some(5), patience: Some(10), ..Eval::default() };
    let run = run_in(&s, dir.path()).unwrap();
    assert_eq!((run.metrics.stopped_early, run.metrics.steps), (None, 30));
}

#[test]
fn the_checkpoint_policy_decides_the_folders() {
    use tunelab::spec::Keep;
    for (keep, folders) in [(None, vec!["best", "last", "swa"]), (Some(Keep::Models), vec!["best", "swa"]), (Some(Keep::Best), vec!["best"])] {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec();
        s.training.keep = keep;
        s.training.max_steps = Some(20);
        run_in(&s, dir.path()).unwrap();
        let mut found: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().flatten().filter(|e| e.path().is_dir()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        found.sort();
        assert_eq!(found, folders, "{keep:?}");
    }
}

//! K-fold cross-validation on the tiny model: folds disjoint and covering, out-of-fold
//! predictions for every training row, the CV score equal to the metric of those predictions,
//! and sharded folds merged to the same result.
mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use tunelab::data::TaskKind;
use tunelab::spec::Cv;
use tunelab::{DataSpec, RunSpec, TrainConfig};

fn spec() -> RunSpec {
    let mut data = DataSpec::new(common::fixture("vader-sample/train.tsv"), "unused", "text", "score", TaskKind::Regression);
    data.dev = None;
    data.columns.id = Some("id".into());
    data.cv = Some(Cv::new(3, 5));
    RunSpec {
        model: common::fixture("tiny_bert"),
        pooling: tunelab::Pooling::Pooler,
        head: Default::default(),
        data,
        recipe: Default::default(),
        training: TrainConfig { epochs: 1, batch_size: 32, threads: Some(1), max_length: 64, ..TrainConfig::default() },
    }
}

fn tunelab(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tunelab")).args(args).output().unwrap();
    assert!(out.status.success(), "tunelab {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn oof(dir: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(dir.join("oof.tsv")).unwrap().lines().skip(1).map(|l| l.split('\t').map(str::to_string).collect()).collect()
}

#[test]
fn a_cross_validation_predicts_every_training_row_once() {
    let root = tempfile::tempdir().unwrap();
    let spec_path = root.path().join("cv.json");
    std::fs::write(&spec_path, spec().to_json()).unwrap();
    let whole = root.path().join("whole");
    let out = tunelab(&["train", spec_path.to_str().unwrap(), "--out", whole.to_str().unwrap(), "--quiet"]);
    assert!(out.contains("out-of-fold rmse"), "{out}");

    // Every training row once, with its id and label, in file order.
    let rows = oof(&whole);
    let source: Vec<Vec<String>> = std::fs::read_to_string(common::fixture("vader-sample/train.tsv")).unwrap().lines().skip(1).map(|l| l.split('\t').map(str::to_string).collect()).collect();
    assert_eq!(rows.len(), source.len());
    let ids: Vec<&String> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(ids, source.iter().map(|s| &s[0]).collect::<Vec<_>>());

    // The folds are disjoint and cover the rows: each fold's held-out ids, together, are all ids once.
    let mut seen = BTreeSet::new();
    for k in 0..3 {
        let fold: tunelab::cv::FoldPredictions = serde_json::from_str(&std::fs::read_to_string(whole.join(format!("fold-{k}/oof.json"))).unwrap()).unwrap();
        assert!((75..=85).contains(&fold.ids.len()), "fold {k}: {}", fold.ids.len());
        for id in fold.ids {
            assert!(seen.insert(id), "an id held out twice");
        }
        // Each fold's run trained on the other folds only.
        let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(whole.join(format!("fold-{k}/metrics.json"))).unwrap()).unwrap();
        assert_eq!(m["train_examples"].as_u64().unwrap() + m["dev_examples"].as_u64().unwrap(), 240);
        assert!(!whole.join(format!("fold-{k}/last")).exists(), "fold runs keep no resumable checkpoint by default");
    }
    assert_eq!(seen.len(), 240);

    // The CV score is the RMSE of the out-of-fold predictions.
    let result: tunelab::cv::CvResult = serde_json::from_str(&std::fs::read_to_string(whole.join("cv.json")).unwrap()).unwrap();
    let se: f64 = rows.iter().map(|r| (r[1].parse::<f64>().unwrap() - r[2].parse::<f64>().unwrap()).powi(2)).sum();
    assert!((result.oof_score - (se / 240.0).sqrt()).abs() < 1e-9, "{} vs {}", result.oof_score, (se / 240.0).sqrt());
    assert_eq!(result.fold_scores.len(), 3);

    // The same folds in two shards, then merged: the same result.
    let sharded = root.path().join("sharded");
    let first = tunelab(&["train", spec_path.to_str().unwrap(), "--out", sharded.to_str().unwrap(), "--quiet", "--shard", "1/2"]);
    assert!(first.contains("ran folds 1") && first.contains("still to run"), "{first}");
    tunelab(&["train", spec_path.to_str().unwrap(), "--out", sharded.to_str().unwrap(), "--quiet", "--shard", "0/2"]);
    let merged = tunelab(&["merge", sharded.to_str().unwrap()]);
    assert!(merged.contains(&format!("out-of-fold rmse {:.4}", result.oof_score)), "{merged}");
    assert_eq!(oof(&sharded), rows);
}

#[test]
fn the_trivial_predictor_is_scored_on_the_same_rows() {
    let train: Vec<f64> = std::fs::read_to_string(common::fixture("vader-sample/train.tsv")).unwrap().lines().skip(1).map(|l| l.split('\t').nth(1).unwrap().parse().unwrap()).collect();
    let dev: Vec<f64> = std::fs::read_to_string(common::fixture("vader-sample/dev.tsv")).unwrap().lines().skip(1).map(|l| l.split('\t').nth(1).unwrap().parse().unwrap()).collect();
    let mean = train.iter().sum::<f64>() / train.len() as f64;
    let rmse = (dev.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / dev.len() as f64).sqrt();
    let mut plain = spec();
    plain.data.cv = None;
    plain.data.dev = Some(common::fixture("vader-sample/dev.tsv"));
    let t = tunelab::ablation::Trivial::of(&plain).unwrap();
    assert_eq!((t.name.as_str(), t.metric.as_str()), ("trivial (training mean)", "rmse"));
    assert!((t.value - rmse).abs() < 1e-9, "{} vs {rmse}", t.value);
    // Out of fold: each fold predicted by the mean of the others; worse than the in-sample mean.
    let cv = tunelab::ablation::Trivial::of(&spec()).unwrap();
    let sd = (train.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / train.len() as f64).sqrt();
    assert!(cv.value >= sd && cv.value < sd * 1.05, "{} vs {sd}", cv.value);
}

#[test]
fn the_folds_models_predict_the_test_file_and_their_mean_is_scored() {
    let root = tempfile::tempdir().unwrap();
    let mut spec = spec();
    spec.data.test = Some(common::fixture("vader-sample/dev.tsv"));
    spec.data.test_limit = Some(40);
    spec.recipe.swa = Some(tunelab::techniques::Swa { start: tunelab::techniques::swa::At::Step(1), ..Default::default() });
    let control = tunelab::RunControl { out: Some(root.path().join("cv")), quiet: true, ..Default::default() };
    let outcome = tunelab::cv::run(&spec, &control, None).unwrap();
    let result = outcome.result.unwrap();
    let folds: Vec<tunelab::cv::FoldPredictions> =
        (0..3).map(|k| serde_json::from_str(&std::fs::read_to_string(outcome.dir.join(format!("fold-{k}/oof.json"))).unwrap()).unwrap()).collect();
    let rmse = |p: &[f64], t: &[f64]| (p.iter().zip(t).map(|(p, t)| (p - t).powi(2)).sum::<f64>() / p.len() as f64).sqrt();
    // The test score: the RMSE of the three folds' mean prediction, for the best and the SWA weights.
    let test = |swa: bool| -> Vec<f64> {
        (0..40)
            .map(|r| folds.iter().map(|f| { let t = f.test.as_ref().unwrap(); if swa { t.swa_outputs.as_ref().unwrap()[r][0] } else { t.outputs[r][0] } }).sum::<f64>() / 3.0)
            .collect()
    };
    let targets = &folds[0].test.as_ref().unwrap().targets;
    assert_eq!(targets.len(), 40);
    assert!((result.test_score.unwrap() - rmse(&test(false), targets)).abs() < 1e-9);
    assert!((result.swa_test_score.unwrap() - rmse(&test(true), targets)).abs() < 1e-9);
    // The SWA weights' out-of-fold score: every held-out row predicted by its fold's average.
    let (mut p, mut t) = (Vec::new(), Vec::new());
    for f in &folds {
        p.extend(f.swa_outputs.as_ref().unwrap().iter().map(|o| o[0]));
        t.extend(&f.targets);
    }
    assert!((result.swa_oof_score.unwrap() - rmse(&p, &t)).abs() < 1e-9);
    assert_ne!(result.swa_oof_score, Some(result.oof_score), "the SWA weights are other weights");
    // A plain run scores the test file with best/ and swa/ into metrics.json.
    spec.data.cv = None;
    spec.data.dev = Some(common::fixture("vader-sample/dev.tsv"));
    let run = spec.run_with(&tunelab::RunControl { out: Some(root.path().join("plain")), quiet: true, ..Default::default() }).unwrap();
    let best = tunelab::run::evaluate_folder(&run.dir.join("best"), &tunelab::DataSpec { dev: spec.data.test.clone(), dev_limit: Some(40), ..spec.data.clone() }).unwrap();
    assert!((run.metrics.test.as_ref().unwrap()["rmse"] - best["rmse"]).abs() < 1e-9);
    assert!(run.metrics.swa_test.is_some());
}

#[test]
fn a_shard_run_again_skips_the_jobs_it_already_recorded() {
    let root = tempfile::tempdir().unwrap();
    let mut base = spec();
    base.data.cv = None;
    base.data.dev = Some(common::fixture("vader-sample/dev.tsv"));
    base.training.max_steps = Some(2);
    let ablation = tunelab::ablation::Ablation { recipes: vec![("a".into(), Default::default()), ("b".into(), Default::default())], seeds: vec![1, 2], out: root.path().into(), ..Default::default() };
    // The first shard of two ran its first job (a, seed 1) and was stopped in its second.
    let done = tunelab::ablation::Row {
        recipe: "a".into(), seed: 1, metric: "rmse".into(), best: 0.5, swa: None, test: None, swa_test: None,
        steps: 2, seconds: 1.0, dir: root.path().join("a-seed1"), collapsed: false, job: Some(0), repeat_scores: Vec::new(),
    };
    tunelab::files::append_line(&root.path().join("results-0-of-2.jsonl"), &done).unwrap();
    let rows = ablation.run(&base, Some((0, 2)), &tunelab::RunControl { quiet: true, ..Default::default() }).unwrap();
    assert_eq!(rows.iter().map(|r| (r.recipe.as_str(), r.seed)).collect::<Vec<_>>(), [("a", 1), ("b", 1)]);
    assert_eq!(rows[0], done, "the recorded row is kept as it was");
    assert!(!root.path().join("a-seed1").exists(), "the recorded job did not run again");
    assert!(root.path().join("b-seed1/metrics.json").is_file());
    assert_eq!(tunelab::ablation::merge(root.path()).unwrap().len(), 2);
}

//! Repeated k-fold cross-validation (`data.cv.repeats`) and the ablation table's paired
//! bootstrap over examples (issue 21, items 3 and 4), on the tiny model.
mod common;

use std::path::Path;
use std::process::Command;

use tunelab::cv::{CvResult, FoldPredictions};
use tunelab::data::TaskKind;
use tunelab::spec::Cv;
use tunelab::{DataSpec, RunSpec, TrainConfig};

fn spec(folds: usize, repeats: usize) -> RunSpec {
    let mut data = DataSpec::new(common::fixture("vader-sample/train.tsv"), "unused", "text", "score", TaskKind::Regression);
    data.dev = None;
    data.columns.id = Some("id".into());
    data.cv = Some(Cv { repeats, ..Cv::new(folds, 5) });
    data.test = Some(common::fixture("vader-sample/dev.tsv"));
    data.test_limit = Some(30);
    RunSpec {
        model: common::fixture("tiny_bert"),
        pooling: tunelab::Pooling::Pooler,
        head: Default::default(),
        data,
        recipe: Default::default(),
        training: TrainConfig { epochs: 1, batch_size: 32, max_steps: Some(2), threads: Some(1), max_length: 64, ..TrainConfig::default() },
    }
}

fn tunelab(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tunelab")).args(args).output().unwrap();
    assert!(out.status.success(), "tunelab {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// (label, prediction) of every row of an out-of-fold file.
fn oof(path: &Path) -> Vec<(String, f64, f64)> {
    std::fs::read_to_string(path).unwrap().lines().skip(1).map(|l| {
        let c: Vec<&str> = l.split('\t').collect();
        (c[0].to_string(), c[1].parse().unwrap(), c[2].parse().unwrap())
    }).collect()
}

fn rmse(pairs: impl Iterator<Item = (f64, f64)>) -> f64 {
    let (mut se, mut n) = (0.0, 0.0);
    for (p, t) in pairs {
        se += (p - t).powi(2);
        n += 1.0;
    }
    (se / n).sqrt()
}

#[test]
fn a_repeated_cross_validation_draws_new_folds_and_averages_its_repeats() {
    let root = tempfile::tempdir().unwrap();
    let spec_path = root.path().join("cv.json");
    std::fs::write(&spec_path, spec(3, 2).to_json()).unwrap();
    let whole = root.path().join("whole");
    let out = tunelab(&["train", spec_path.to_str().unwrap(), "--out", whole.to_str().unwrap(), "--quiet"]);
    assert!(out.contains("mean of 2 repeats") && out.contains("ran folds 0.0, 0.1, 0.2, 1.0, 1.1, 1.2"), "{out}");
    assert!(!whole.join("fold-0").exists() && !whole.join("oof.tsv").exists());

    let train = spec(3, 2).data.load_train().unwrap();
    let result: CvResult = read(&whole.join("cv.json"));
    assert_eq!((result.repeats, result.repeat_scores.len(), result.fold_scores.len()), (2, 2, 6));
    let mut held_out = Vec::new();
    for r in 0..2 {
        // Repeat r holds out the folds drawn with the seed 5 + r.
        let folds = tunelab::data::assign_folds(train.len(), 3, 5 + r as u64, None, None).unwrap();
        let mut rows = Vec::new();
        for k in 0..3 {
            let dir = whole.join(format!("repeat-{r}-fold-{k}"));
            let fold: FoldPredictions = read(&dir.join("oof.json"));
            assert_eq!(fold.rows, (0..train.len()).filter(|&i| folds[i] == k).collect::<Vec<_>>(), "repeat {r} fold {k}");
            let fold_spec = RunSpec::from_file(&dir.join("spec.json")).unwrap();
            let cv = fold_spec.data.cv.unwrap();
            assert_eq!((cv.fold, cv.repeat), (Some(k), Some(r)));
            rows.push(fold.rows);
        }
        held_out.push(rows);
        // Each repeat predicts every training row once; its score is their RMSE.
        let rows = oof(&whole.join(format!("oof-repeat-{r}.tsv")));
        assert_eq!(rows.len(), train.len());
        let score = rmse(rows.iter().map(|(_, t, p)| (*p, *t)));
        assert!((result.repeat_scores[r] - score).abs() < 1e-9, "repeat {r}: {} vs {score}", result.repeat_scores[r]);
    }
    assert_ne!(held_out[0], held_out[1], "each repeat draws other folds");
    assert!((result.oof_score - (result.repeat_scores[0] + result.repeat_scores[1]) / 2.0).abs() < 1e-12);

    // The test file: the mean prediction of all six fold models.
    let folds: Vec<FoldPredictions> = (0..2).flat_map(|r| (0..3).map(move |k| (r, k))).map(|(r, k)| read(&whole.join(format!("repeat-{r}-fold-{k}/oof.json")))).collect();
    let targets = &folds[0].test.as_ref().unwrap().targets;
    let mean: Vec<f64> = (0..targets.len()).map(|i| folds.iter().map(|f| f.test.as_ref().unwrap().outputs[i][0]).sum::<f64>() / 6.0).collect();
    assert!((result.test_score.unwrap() - rmse(mean.iter().copied().zip(targets.iter().copied()))).abs() < 1e-9);

    // Four shards (jobs 0..6 spread i mod 4), then merged: the same result.
    let sharded = root.path().join("sharded");
    let second = tunelab(&["train", spec_path.to_str().unwrap(), "--out", sharded.to_str().unwrap(), "--quiet", "--shard", "1/4"]);
    assert!(second.contains("ran folds 0.1, 1.2") && second.contains("still to run"), "{second}");
    for shard in ["0/4", "2/4", "3/4"] {
        tunelab(&["train", spec_path.to_str().unwrap(), "--out", sharded.to_str().unwrap(), "--quiet", "--shard", shard]);
    }
    let merged: CvResult = read(&sharded.join("cv.json"));
    assert_eq!(merged, result);

    // The fold ensemble predicts with every repeat's models, and matches the test score.
    let predictions = root.path().join("p.tsv");
    tunelab(&["predict", whole.to_str().unwrap(), common::fixture("vader-sample/dev.tsv").to_str().unwrap(), "--out", predictions.to_str().unwrap()]);
    let header = std::fs::read_to_string(&predictions).unwrap().lines().next().unwrap().to_string();
    assert!(header.ends_with("repeat_0_fold_0\trepeat_0_fold_1\trepeat_0_fold_2\trepeat_1_fold_0\trepeat_1_fold_1\trepeat_1_fold_2"), "{header}");
}

#[test]
fn repeats_are_checked_before_anything_is_written() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("cv");
    let mut bad = spec(3, 0);
    let err = tunelab::cv::run(&bad, &tunelab::RunControl { out: Some(out.clone()), quiet: true, ..Default::default() }, None).unwrap_err().to_string();
    assert!(err.contains("data.cv.repeats is 0"), "{err}");
    bad.data.cv = Some(Cv { repeat: Some(2), repeats: 2, fold: Some(0), ..Cv::new(3, 5) });
    let err = bad.run_with(&tunelab::RunControl { out: Some(out.clone()), quiet: true, ..Default::default() }).unwrap_err().to_string();
    assert!(err.contains("data.cv.repeat is 2, but there are 2 repeats"), "{err}");
    assert!(!out.exists());
}

#[test]
fn an_ablation_pairs_seeds_and_repeats_and_bootstraps_the_examples() {
    let root = tempfile::tempdir().unwrap();
    let base = spec(2, 2);
    let mut other = base.recipe.clone();
    other.lr = tunelab::groups::LrLayout::Uniform { lr: 1e-3 };
    let ablation = tunelab::ablation::Ablation {
        recipes: vec![("baseline".into(), base.recipe.clone()), ("same".into(), base.recipe.clone()), ("other".into(), other)],
        seeds: vec![1, 2],
        out: root.path().join("ab"),
        ..Default::default()
    };
    let (rows, summaries) = ablation.run_and_report(&base, None, &tunelab::RunControl { quiet: true, ..Default::default() }).unwrap();
    let summaries = summaries.unwrap();
    assert!(rows.iter().all(|r| r.repeat_scores.len() == 2 && (r.best - (r.repeat_scores[0] + r.repeat_scores[1]) / 2.0).abs() < 1e-12));

    // The interval reads the differences seed by seed (rows) and repeat by repeat (columns).
    let of = |name: &str, seed: u64| rows.iter().find(|r| r.recipe == name && r.seed == seed).unwrap();
    let table: Vec<Vec<f64>> = [1, 2].iter().map(|&s| (0..2).map(|r| of("other", s).repeat_scores[r] - of("baseline", s).repeat_scores[r]).collect()).collect();
    let other = &summaries[2];
    assert_eq!(other.diff_seeds, 2);
    assert_eq!((other.diff_mean, other.diff_ci95), tunelab::ablation::crossed(&table));

    // The same recipe with the same seeds predicts the same: every resample differs by 0.
    assert_eq!(summaries[1].diff_boot95, Some((0.0, 0.0)));
    assert_eq!(summaries[1].test_diff_boot95, Some((0.0, 0.0)));

    // The bootstrap resamples the out-of-fold predictions that the folders' oof-repeat-<r>.tsv
    // hold, (seed, repeat) by (seed, repeat), the same resamples for both recipes.
    let predictions = |name: &str| -> (Vec<Vec<Vec<f64>>>, Vec<f64>) {
        let mut runs = Vec::new();
        let mut targets = Vec::new();
        for seed in [1, 2] {
            for r in 0..2 {
                let rows = oof(&of(name, seed).dir.join(format!("oof-repeat-{r}.tsv")));
                targets = rows.iter().map(|x| x.1).collect();
                runs.push(rows.iter().map(|x| vec![x.2]).collect());
            }
        }
        (runs, targets)
    };
    let ((a, targets), (b, _)) = (predictions("other"), predictions("baseline"));
    let a: Vec<&[Vec<f64>]> = a.iter().map(|r| r.as_slice()).collect();
    let b: Vec<&[Vec<f64>]> = b.iter().map(|r| r.as_slice()).collect();
    let want = tunelab::bootstrap::paired(&tunelab::model::Task::Regression, "rmse", &a, &b, &targets).unwrap();
    let got = other.diff_boot95.unwrap();
    assert!((got.0 - want.0).abs() < 1e-9 && (got.1 - want.1).abs() < 1e-9, "{got:?} vs {want:?}");
    assert!(other.test_diff_boot95.is_some());

    // summary.csv and the printed table carry both intervals.
    let csv = std::fs::read_to_string(root.path().join("ab/summary.csv")).unwrap();
    assert!(csv.lines().next().unwrap().contains("diff_boot95_low,diff_boot95_high,test_diff_boot95_low"), "{csv}");
    let table = tunelab::ablation::table_with(&summaries, None);
    assert!(table.contains("over examples (bootstrap)") && table.contains("[+0.0000, +0.0000] ~"), "{table}");
    let md = tunelab::ablation::table_markdown(&summaries, None);
    assert!(md.contains("vs baseline, bootstrap over examples (95%)") && md.contains("test vs baseline, bootstrap over examples (95%)"), "{md}");
}

//! K-fold cross-validation: one run per fold, out-of-fold predictions for every training row,
//! and the CV score (the metric of all out-of-fold predictions together, and the folds' mean ±
//! standard deviation), as the seed article measures its table.
//!
//! A specification with `data.cv` (`{"folds": 5, "seed": 0}`, optionally `"group_by"`) and no dev
//! file is a cross-validation. [`run`] trains fold `k` as the run `fold-<k>/` of the
//! cross-validation's folder (its specification has `cv.fold = k`: trained on the other folds,
//! evaluated and selected on fold `k`), predicts fold `k` with that run's best weights into
//! `fold-<k>/oof.json`, and, once every fold is there, writes `oof.tsv` (every training row:
//! `id`, `label`, `prediction`, class probabilities) and `cv.json` ([`CvResult`]). Folds are
//! independent jobs: a shard `(i, n)` runs the folds `k` with `k % n == i`, so that a cluster
//! spreads them, and [`assemble`] (`tunelab merge DIR`) completes the folder when the last
//! shard is done. Fold runs keep `best/` and `swa/` only unless `training.keep` says otherwise.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::files::{self, read_json, write_json};
use crate::metrics::Metrics;
use crate::model::{Model, Task};
use crate::predict::Predictions;
use crate::run::RunControl;
use crate::run_dir::{RunDir, SPEC_FILE};
use crate::spec::{Keep, RunSpec};
use crate::train::score;

/// What one fold's run left for the cross-validation (`fold-<k>/oof.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldPredictions {
    pub fold: usize,
    pub task: Task,
    /// The metric that selected the fold's best weights, and its best value on the fold.
    pub metric: String,
    pub best: f64,
    /// The held-out rows: their index among the training rows, id, target and outputs
    /// (the value for regression, the class probabilities for classification).
    pub rows: Vec<usize>,
    pub ids: Vec<String>,
    pub targets: Vec<f64>,
    pub outputs: Vec<Vec<f64>>,
    /// The held-out rows predicted by the fold's SWA weights (recipes with SWA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swa_outputs: Option<Vec<Vec<f64>>>,
    /// The test file (`data.test`) predicted by the fold's models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<TestPredictions>,
}

/// One fold's predictions of the test file: the targets, and the outputs of the best and of the
/// SWA weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestPredictions {
    pub targets: Vec<f64>,
    pub outputs: Vec<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swa_outputs: Option<Vec<Vec<f64>>>,
}

/// The result of a whole cross-validation (`cv.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvResult {
    /// The selection metric.
    pub metric: String,
    /// The selection metric of all out-of-fold predictions together.
    pub oof_score: f64,
    /// Every metric of the out-of-fold predictions.
    pub oof: Metrics,
    /// Each fold's best dev value, in fold order, and their mean and sample standard deviation.
    pub fold_scores: Vec<f64>,
    pub mean: f64,
    pub std: f64,
    /// The selection metric of the SWA weights' out-of-fold predictions (recipes with SWA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swa_oof_score: Option<f64>,
    /// The test file (`data.test`) scored by the mean prediction of the folds' best models
    /// (every metric), its selection metric, and the same for the SWA weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Metrics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swa_test_score: Option<f64>,
}

/// What [`run`] did: the folder, the folds it ran, and the result once every fold is done.
#[derive(Debug, Clone)]
pub struct CvOutcome {
    pub dir: PathBuf,
    pub folds_run: Vec<usize>,
    pub result: Option<CvResult>,
    /// The shard `(i, n)` this process ran (`(0, 1)`: all of them), and the number of folds.
    pub shard: (usize, usize),
    pub folds: usize,
}

impl CvOutcome {
    /// A shard that holds no fold (more shards than folds) says so, in words.
    pub fn idle_shard(&self) -> Option<String> {
        let (i, n) = self.shard;
        self.folds_run.is_empty().then(|| {
            format!(
                "shard {i}/{n} has no work: the cross-validation has {} folds, and shards 0 to {} of {n} run them",
                self.folds,
                self.folds.min(n) - 1
            )
        })
    }
}

/// Runs the folds of shard `(i, n)` (all for `None`) of the cross-validation `spec`.
pub fn run(spec: &RunSpec, control: &RunControl, shard: Option<(usize, usize)>) -> Result<CvOutcome> {
    let cv = spec.data.cv.as_ref().ok_or_else(|| Error::Invalid("this specification has no data.cv".into()))?;
    if cv.fold.is_some() {
        return Err(Error::Invalid("data.cv.fold is set: that is one fold's run; train it with `tunelab train` as any run".into()));
    }
    let (i, n) = shard.unwrap_or((0, 1));
    if n == 0 || i >= n {
        return Err(Error::Invalid(format!("shard {i}/{n}: expected I/N with 0 <= I < N")));
    }
    let dir = match &control.out {
        Some(d) => d.clone(),
        None if n > 1 => return Err(Error::Invalid("a sharded cross-validation needs its folder named (--out), the same for every shard".into())),
        None => RunDir::fresh_path(control.runs_root.as_deref().unwrap_or(Path::new("runs")), &spec.training.name),
    };
    validate(spec)?;
    claim(&dir, spec)?;
    let mut folds_run = Vec::new();
    for k in (0..cv.folds).filter(|k| k % n == i) {
        // Run again (after a stop, a kill, an interrupt), the folds already done are kept.
        if fold_file(&dir, k).is_file() {
            folds_run.push(k);
            continue;
        }
        if !run_fold(spec, &dir, k, control)? {
            // Interrupted (a notebook's stop button): the folds done so far stay; running the
            // cross-validation again into this folder (`resume(cv)`) continues it.
            return Ok(CvOutcome { dir, folds_run, result: None, shard: (i, n), folds: cv.folds });
        }
        folds_run.push(k);
    }
    let done = (0..cv.folds).all(|k| fold_file(&dir, k).is_file());
    let result = if done { Some(assemble(&dir)?) } else { None };
    Ok(CvOutcome { dir, folds_run, result, shard: (i, n), folds: cv.folds })
}

/// Every check a fold's run would make (the data, the folds, the model, the recipe), made before
/// the cross-validation's folder is created: a refused cross-validation leaves nothing behind.
fn validate(spec: &RunSpec) -> Result<()> {
    let mut first = spec.clone();
    if let Some(cv) = first.data.cv.as_mut() {
        cv.fold = Some(0);
    }
    first.prepare(tch::Device::Cpu).map(drop)
}

/// Makes the folder and writes the specification, or checks that the folder holds this one.
fn claim(dir: &Path, spec: &RunSpec) -> Result<()> {
    let entries: Vec<(String, bool)> = match std::fs::read_dir(dir) {
        Ok(d) => d.flatten().map(|e| (e.file_name().to_string_lossy().into_owned(), e.file_type().map(|t| t.is_dir()).unwrap_or(false))).collect(),
        Err(_) => Vec::new(),
    };
    // Only a cross-validation's own files: tunelab never writes into, nor deletes from, a folder of yours.
    let mut foreign: Vec<&str> = entries.iter().filter(|(n, is_dir)| !cv_entry(n, *is_dir)).map(|(n, _)| n.as_str()).collect();
    foreign.sort();
    if let Some(f) = foreign.first() {
        return Err(Error::Invalid(format!(
            "{} already holds files and is not a cross-validation's folder (it holds {f}, which a cross-validation does not write); nothing was changed: choose another folder",
            dir.display()
        )));
    }
    let path = dir.join(SPEC_FILE);
    if path.exists() {
        let mut stored = RunSpec::from_file(&path)?;
        // Shards may run on different devices.
        stored.training.device = spec.training.device;
        if &stored != spec {
            let what = crate::run_dir::differences(&serde_json::to_value(&stored).expect("serialises"), &serde_json::to_value(spec).expect("serialises"));
            return Err(Error::Invalid(format!(
                "{} holds another cross-validation (its spec.json differs in {}); choose another folder",
                dir.display(),
                what.join(", ")
            )));
        }
        return Ok(());
    }
    if !entries.is_empty() {
        return Err(Error::Invalid(format!("{} already holds files but no {SPEC_FILE}; nothing was changed: choose another folder", dir.display())));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    files::atomic_write(&path, spec.to_json().as_bytes())
}

/// Whether a folder entry is one a cross-validation writes (its temporary copies included).
fn cv_entry(name: &str, is_dir: bool) -> bool {
    let base = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")).unwrap_or(name);
    match base {
        SPEC_FILE | "oof.tsv" | "cv.json" => !is_dir,
        other => is_dir && name == other && other.strip_prefix("fold-").is_some_and(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_digit())),
    }
}

fn fold_file(dir: &Path, k: usize) -> PathBuf {
    dir.join(format!("fold-{k}")).join("oof.json")
}

/// Trains fold `k` and predicts it with the fold's best weights.
/// Trains fold `k` and predicts it with the fold's best weights; `false`: the fold was
/// interrupted before its end (nothing recorded for it).
fn run_fold(spec: &RunSpec, dir: &Path, k: usize, control: &RunControl) -> Result<bool> {
    let mut fold_spec = spec.clone();
    if let Some(cv) = fold_spec.data.cv.as_mut() {
        cv.fold = Some(k);
    }
    fold_spec.training.keep = fold_spec.training.keep.or(Some(Keep::Models));
    let out = dir.join(format!("fold-{k}"));
    let fold_control = RunControl { out: Some(out.clone()), force: true, stop_after: None, ..control.clone() };
    let run = fold_spec.run_with(&fold_control)?;
    if !run.metrics.finished {
        return Ok(false);
    }
    let best = run.metrics.best.clone().ok_or_else(|| Error::Invalid(format!("{}: the fold was never evaluated", out.display())))?;
    let train = fold_spec.data.load_train()?;
    let folds = fold_spec.data.folds(&train)?;
    let rows: Vec<usize> = (0..train.len()).filter(|&i| folds[i] == k).collect();
    let (_, held_out) = train.split(|i| folds[i] != k);
    let test = fold_spec.data.load_test(&train)?;
    let batch = spec.training.eval_batch_size;
    let precision = spec.training.precision;
    let device = spec.training.device.device()?;
    let outputs = |model: &Model, data: &crate::data::Dataset| crate::precision::autocast(precision, || Predictions::of(model, data, batch)).map(|p| p.outputs);
    let model = Model::load(out.join("best"), None, device)?;
    let p = crate::precision::autocast(precision, || Predictions::of(&model, &held_out, batch))?;
    let test_outputs = test.as_ref().map(|t| outputs(&model, t)).transpose()?;
    drop(model);
    let (swa_outputs, swa_test_outputs) = if spec.recipe.swa.is_some() && out.join("swa").is_dir() {
        let swa = Model::load(out.join("swa"), None, device)?;
        (Some(outputs(&swa, &held_out)?), test.as_ref().map(|t| outputs(&swa, t)).transpose()?)
    } else {
        (None, None)
    };
    let predictions = FoldPredictions {
        fold: k,
        task: p.task,
        metric: best.metric,
        best: best.value,
        rows,
        ids: p.ids,
        targets: held_out.examples.iter().map(|e| e.label).collect(),
        outputs: p.outputs,
        swa_outputs,
        test: test.as_ref().zip(test_outputs).map(|(t, outputs)| TestPredictions {
            targets: t.examples.iter().map(|e| e.label).collect(),
            outputs,
            swa_outputs: swa_test_outputs,
        }),
    };
    write_json(&fold_file(dir, k), &predictions).map(|()| true)
}

/// The metrics of raw outputs (values, or class probabilities) against their targets.
fn score_outputs(task: &Task, outputs: &[Vec<f64>], targets: &[f64]) -> Metrics {
    let raw = Tensor::from_slice2(outputs);
    // Classification outputs are probabilities: their logarithm is the logits up to a constant.
    let raw = if matches!(task, Task::Classification { .. }) { raw.log() } else { raw };
    score(task, &raw, targets)
}

/// The element-wise mean of the folds' outputs for the same rows (a fold ensemble).
fn mean_outputs(each: &[&Vec<Vec<f64>>]) -> Vec<Vec<f64>> {
    let n = each.len() as f64;
    (0..each[0].len()).map(|r| (0..each[0][r].len()).map(|c| each.iter().map(|o| o[r][c]).sum::<f64>() / n).collect()).collect()
}

/// Reads every fold's predictions of a cross-validation folder and writes `oof.tsv` and
/// `cv.json`. Missing folds are an error naming them.
pub fn assemble(dir: &Path) -> Result<CvResult> {
    let spec = RunSpec::from_file(&dir.join(SPEC_FILE))?;
    let cv = spec.data.cv.as_ref().ok_or_else(|| Error::Invalid(format!("{}: not a cross-validation (no data.cv)", dir.display())))?;
    if cv.folds < 2 {
        return Err(Error::Invalid(format!("{}: data.cv.folds is {}; a cross-validation needs at least 2", dir.join(SPEC_FILE).display(), cv.folds)));
    }
    crate::run_dir::refuse_if_written(dir, "merge the cross-validation")?;
    let missing: Vec<String> = (0..cv.folds).filter(|&k| !fold_file(dir, k).is_file()).map(|k| k.to_string()).collect();
    if !missing.is_empty() {
        return Err(Error::Invalid(format!("{}: folds {} are not done yet", dir.display(), missing.join(", "))));
    }
    let folds: Vec<FoldPredictions> = (0..cv.folds).map(|k| read_json(&fold_file(dir, k))).collect::<Result<_>>()?;
    let mut order: Vec<(usize, usize, usize)> = folds.iter().enumerate().flat_map(|(f, p)| p.rows.iter().enumerate().map(move |(j, &row)| (row, f, j))).collect();
    order.sort_unstable();
    let task = folds[0].task.clone();
    let pick = |(_, f, j): &(usize, usize, usize)| (&folds[*f], *j);
    let targets: Vec<f64> = order.iter().map(|o| pick(o).0.targets[pick(o).1]).collect();
    let outputs: Vec<Vec<f64>> = order.iter().map(|o| pick(o).0.outputs[pick(o).1].clone()).collect();
    let oof = score_outputs(&task, &outputs, &targets);
    let metric = folds[0].metric.clone();
    let fold_scores: Vec<f64> = folds.iter().map(|f| f.best).collect();
    let (mean, std) = crate::metrics::mean_std(&fold_scores);
    let oof_score = oof.get(&metric).copied().unwrap_or(f64::NAN);
    let of = |m: Metrics| m.get(&metric).copied().unwrap_or(f64::NAN);
    let swa_oof_score = folds.iter().all(|f| f.swa_outputs.is_some()).then(|| {
        let swa: Vec<Vec<f64>> = order.iter().map(|o| pick(o).0.swa_outputs.as_ref().map(|s| s[pick(o).1].clone()).unwrap_or_default()).collect();
        of(score_outputs(&task, &swa, &targets))
    });
    let tests: Option<Vec<&TestPredictions>> = folds.iter().map(|f| f.test.as_ref()).collect();
    let test = tests.as_ref().map(|t| score_outputs(&task, &mean_outputs(&t.iter().map(|t| &t.outputs).collect::<Vec<_>>()), &t[0].targets));
    let swa_test_score = tests.as_ref().and_then(|t| {
        let swa: Option<Vec<&Vec<Vec<f64>>>> = t.iter().map(|t| t.swa_outputs.as_ref()).collect();
        swa.map(|s| of(score_outputs(&task, &mean_outputs(&s), &t[0].targets)))
    });
    let test_score = test.clone().map(of);
    let result = CvResult { metric, oof_score, oof: oof.clone(), fold_scores, mean, std, swa_oof_score, test, test_score, swa_test_score };
    let truth = |t: f64| match &task {
        Task::Regression => t.to_string(),
        Task::Classification { labels } => labels[t as usize].clone(),
    };
    let all = Predictions {
        ids: order.iter().map(|o| pick(o).0.ids[pick(o).1].clone()).collect(),
        truth: Some(targets.iter().map(|&t| truth(t)).collect()),
        outputs,
        metrics: Some(oof),
        task,
    };
    all.write_tsv(&dir.join("oof.tsv"))?;
    write_json(&dir.join("cv.json"), &result)?;
    Ok(result)
}

impl std::fmt::Display for CvResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let folds: Vec<String> = self.fold_scores.iter().map(|v| format!("{v:.4}")).collect();
        write!(f, "out-of-fold {} {:.4}; folds {:.4} ± {:.4} ({})", self.metric, self.oof_score, self.mean, self.std, folds.join(", "))?;
        if let Some(s) = self.swa_oof_score {
            write!(f, "; SWA weights out of fold {s:.4}")?;
        }
        if let Some(t) = self.test_score {
            write!(f, "; test (mean of the folds' models) {t:.4}")?;
        }
        if let Some(t) = self.swa_test_score {
            write!(f, ", SWA {t:.4}")?;
        }
        writeln!(f)
    }
}

/// A cross-validation's fold models applied together to a file (the usual Kaggle submission):
/// the mean of the folds' outputs (values, or class probabilities), and each fold's.
#[derive(Debug, Clone, PartialEq)]
pub struct Ensemble {
    /// The mean prediction of every row, with the metrics of the mean when the file is labelled.
    pub mean: Predictions,
    /// Each fold's outputs, in fold order.
    pub folds: Vec<Vec<Vec<f64>>>,
}

/// Whether `dir` is a cross-validation's folder (its `spec.json` has `data.cv`).
pub fn is_cv_folder(dir: &Path) -> bool {
    RunSpec::from_file(&dir.join(SPEC_FILE)).is_ok_and(|s| s.data.cv.as_ref().is_some_and(|c| c.fold.is_none()))
}

/// Predicts `file` with the best model of every fold of the cross-validation in `dir` and
/// averages them, as `cv.json`'s `test_score` does for `data.test`. Columns not named in
/// `choice` are those the folds were trained on. Returns the ensemble and notes (a label
/// column ignored).
pub fn predict_folds(dir: &Path, file: &Path, choice: &crate::predict::ColumnChoice) -> Result<(Ensemble, Vec<String>)> {
    let spec = RunSpec::from_file(&dir.join(SPEC_FILE))?;
    let cv = spec.data.cv.as_ref().ok_or_else(|| Error::Invalid(format!("{}: not a cross-validation (no data.cv)", dir.display())))?;
    let models: Vec<PathBuf> = (0..cv.folds).map(|k| dir.join(format!("fold-{k}")).join("best")).collect();
    let missing: Vec<String> = (0..cv.folds).filter(|&k| !models[k].join("tunelab.json").is_file()).map(|k| k.to_string()).collect();
    if !missing.is_empty() {
        return Err(Error::Invalid(format!("{}: folds {} have no model yet (fold-<k>/best); run them first", dir.display(), missing.join(", "))));
    }
    let batch = spec.training.eval_batch_size;
    // The folds share one specification, so the file is read once, for fold 0's model.
    let (first_model, trained) = crate::predict::load(&models[0])?;
    let (data, notes) = crate::predict::read_input(&first_model, trained.or(Some(spec.data.columns.clone())), file, choice)?;
    let predict = |model: &Model| crate::precision::autocast(spec.training.precision, || Predictions::of(model, &data, batch));
    let first = predict(&first_model)?;
    drop(first_model);
    let mut folds = vec![first.outputs.clone()];
    for path in &models[1..] {
        folds.push(predict(&crate::predict::load(path)?.0)?.outputs);
    }
    let outputs = mean_outputs(&folds.iter().collect::<Vec<_>>());
    let targets: Vec<f64> = data.examples.iter().map(|e| e.label).collect();
    let metrics = data.labelled.then(|| score_outputs(&first.task, &outputs, &targets));
    Ok((Ensemble { mean: Predictions { outputs, metrics, ..first }, folds }, notes))
}

impl Ensemble {
    /// The mean predictions as [`Predictions::to_tsv`] writes them, then one column per fold:
    /// `fold_<k>`, that fold's value (regression) or class (classification).
    pub fn to_tsv(&self) -> String {
        let mean = self.mean.to_tsv();
        let mut lines = mean.lines();
        let mut out = lines.next().unwrap_or_default().to_string();
        for k in 0..self.folds.len() {
            out.push_str(&format!("\tfold_{k}"));
        }
        out.push('\n');
        for (i, line) in lines.enumerate() {
            out.push_str(line);
            for fold in &self.folds {
                out.push('\t');
                out.push_str(&crate::predict::predicted(&self.mean.task, &fold[i]));
            }
            out.push('\n');
        }
        out
    }

    /// Writes [`Ensemble::to_tsv`] atomically.
    pub fn write_tsv(&self, path: &Path) -> Result<()> {
        files::atomic_write(path, self.to_tsv().as_bytes())
    }
}

//! K-fold cross-validation: one run per fold, out-of-fold predictions for every training row,
//! and the CV score (the metric of all out-of-fold predictions together, and the folds' mean ±
//! standard deviation), as the seed article measures its table.
//!
//! With `data.cv.repeats = R` (repeated k-fold), the whole k-fold runs `R` times, repeat `r`
//! drawing new folds with the seed `seed + r`, in the runs `repeat-<r>-fold-<k>/`; the score is
//! the mean of the repeats' out-of-fold scores, and the test file is predicted by all `R × k`
//! models. Seeds change the training but not the folds: repeats are what shows how much a
//! score owes to one fold assignment.
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
use crate::spec::{Cv, Keep, RunSpec};
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
    /// Repeated k-fold: the number of repeats, and each repeat's out-of-fold score (the
    /// `oof_score` is their mean, `oof` the mean of each metric).
    #[serde(default = "crate::spec::one", skip_serializing_if = "crate::spec::is_one")]
    pub repeats: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repeat_scores: Vec<f64>,
}

/// One fold's run of a cross-validation: fold `fold` of repeat `repeat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FoldJob {
    pub repeat: usize,
    pub fold: usize,
    /// Whether the cross-validation repeats (its runs are then named after the repeat too).
    pub repeated: bool,
}

impl FoldJob {
    /// Every fold's run of `cv`, repeat by repeat: the order shards count them in.
    pub fn all(cv: &Cv) -> Vec<FoldJob> {
        let repeated = cv.repeats > 1;
        (0..cv.repeats).flat_map(|repeat| (0..cv.folds).map(move |fold| FoldJob { repeat, fold, repeated })).collect()
    }

    /// The run's folder in the cross-validation's: `fold-<k>`, or `repeat-<r>-fold-<k>`.
    pub fn name(&self) -> String {
        if self.repeated { format!("repeat-{}-fold-{}", self.repeat, self.fold) } else { format!("fold-{}", self.fold) }
    }
}

impl std::fmt::Display for FoldJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.repeated { write!(f, "{}.{}", self.repeat, self.fold) } else { write!(f, "{}", self.fold) }
    }
}

/// What [`run`] did: the folder, the folds it ran, and the result once every fold is done.
#[derive(Debug, Clone)]
pub struct CvOutcome {
    pub dir: PathBuf,
    pub folds_run: Vec<FoldJob>,
    pub result: Option<CvResult>,
    /// The shard `(i, n)` this process ran (`(0, 1)`: all of them), and the number of fold runs
    /// (folds × repeats).
    pub shard: (usize, usize),
    pub folds: usize,
}

impl CvOutcome {
    /// A shard that holds no fold (more shards than folds) says so, in words.
    pub fn idle_shard(&self) -> Option<String> {
        let (i, n) = self.shard;
        self.folds_run.is_empty().then(|| {
            format!(
                "shard {i}/{n} has no work: the cross-validation has {} fold runs, and shards 0 to {} of {n} run them",
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
        None => RunDir::fresh_path(control.runs_root.as_deref().unwrap_or(Path::new("runs")), &spec.training.name)?,
    };
    validate(spec)?;
    claim(&dir, spec)?;
    let jobs = FoldJob::all(cv);
    let mut folds_run = Vec::new();
    for (_, job) in jobs.iter().enumerate().filter(|(j, _)| j % n == i) {
        // Run again (after a stop, a kill, an interrupt), the folds already done are kept.
        if fold_file(&dir, job).is_file() {
            folds_run.push(*job);
            continue;
        }
        if !run_fold(spec, &dir, job, control)? {
            // Interrupted (a notebook's stop button): the folds done so far stay; running the
            // cross-validation again into this folder (`resume(cv)`) continues it.
            return Ok(CvOutcome { dir, folds_run, result: None, shard: (i, n), folds: jobs.len() });
        }
        folds_run.push(*job);
    }
    let done = jobs.iter().all(|job| fold_file(&dir, job).is_file());
    let result = if done { Some(assemble(&dir)?) } else { None };
    Ok(CvOutcome { dir, folds_run, result, shard: (i, n), folds: jobs.len() })
}

/// Every check a fold's run would make (the data, the folds, the model, the recipe), made before
/// the cross-validation's folder is created: a refused cross-validation leaves nothing behind.
fn validate(spec: &RunSpec) -> Result<()> {
    let mut first = spec.clone();
    if let Some(cv) = first.data.cv.as_mut() {
        if cv.repeat.is_some() {
            return Err(Error::Invalid("data.cv.repeat is set: that is one fold's run; train it with `tunelab train` as any run".into()));
        }
        cv.fold = Some(0);
    }
    first.prepare(tch::Device::Cpu)?;
    // Each repeat's folds are checked too (a grouped assignment can fail for one seed only).
    let cv = spec.data.cv.as_ref().expect("a cross-validation");
    if cv.repeats > 1 {
        let train = spec.data.load_train()?;
        for r in 1..cv.repeats {
            spec.data.folds_of(&train, r)?;
        }
    }
    Ok(())
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
        other if !is_dir => other.strip_prefix("oof-repeat-").and_then(|r| r.strip_suffix(".tsv")).is_some_and(number),
        other => {
            let fold = other.strip_prefix("repeat-").and_then(|r| r.split_once("-fold-")).map_or(other.strip_prefix("fold-"), |(r, k)| number(r).then_some(k));
            name == other && fold.is_some_and(number)
        }
    }
}

fn number(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

fn fold_file(dir: &Path, job: &FoldJob) -> PathBuf {
    dir.join(job.name()).join("oof.json")
}

/// Trains a fold and predicts it with the fold's best weights; `false`: the fold was
/// interrupted before its end (nothing recorded for it).
fn run_fold(spec: &RunSpec, dir: &Path, job: &FoldJob, control: &RunControl) -> Result<bool> {
    let k = job.fold;
    let mut fold_spec = spec.clone();
    if let Some(cv) = fold_spec.data.cv.as_mut() {
        cv.fold = Some(k);
        cv.repeat = job.repeated.then_some(job.repeat);
    }
    fold_spec.training.keep = fold_spec.training.keep.or(Some(Keep::Models));
    let out = dir.join(job.name());
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
    write_json(&fold_file(dir, job), &predictions).map(|()| true)
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

/// One repeat's out-of-fold predictions: every training row once, in row order.
#[derive(Debug, Clone, PartialEq)]
pub struct OutOfFold {
    pub ids: Vec<String>,
    pub targets: Vec<f64>,
    pub outputs: Vec<Vec<f64>>,
    /// The same rows predicted by each fold's SWA weights (recipes with SWA).
    pub swa_outputs: Option<Vec<Vec<f64>>>,
}

impl OutOfFold {
    /// Puts the held-out rows of one repeat's folds back in the training rows' order.
    fn of(folds: &[&FoldPredictions]) -> OutOfFold {
        let mut order: Vec<(usize, usize, usize)> = folds.iter().enumerate().flat_map(|(f, p)| p.rows.iter().enumerate().map(move |(j, &row)| (row, f, j))).collect();
        order.sort_unstable();
        let swa = folds.iter().all(|f| f.swa_outputs.is_some());
        OutOfFold {
            ids: order.iter().map(|&(_, f, j)| folds[f].ids[j].clone()).collect(),
            targets: order.iter().map(|&(_, f, j)| folds[f].targets[j]).collect(),
            outputs: order.iter().map(|&(_, f, j)| folds[f].outputs[j].clone()).collect(),
            swa_outputs: swa.then(|| order.iter().map(|&(_, f, j)| folds[f].swa_outputs.as_ref().expect("every fold has SWA outputs")[j].clone()).collect()),
        }
    }
}

/// What a finished cross-validation predicted, example by example: each repeat's out-of-fold
/// predictions and, with a test file, its targets and the mean prediction of every fold's best
/// model. The paired bootstrap over examples of an ablation reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct CvPredictions {
    pub task: Task,
    /// The selection metric.
    pub metric: String,
    pub repeats: Vec<OutOfFold>,
    pub test: Option<Labelled>,
}

/// Targets, and one output row per target.
pub type Labelled = (Vec<f64>, Vec<Vec<f64>>);

/// Reads every fold's `oof.json` of the cross-validation in `dir` (an error names the folds not
/// done yet).
fn read_folds(dir: &Path) -> Result<(Cv, Vec<(FoldJob, FoldPredictions)>)> {
    let spec = RunSpec::from_file(&dir.join(SPEC_FILE))?;
    let cv = spec.data.cv.ok_or_else(|| Error::Invalid(format!("{}: not a cross-validation (no data.cv)", dir.display())))?;
    check_counts(dir, &cv)?;
    let jobs = FoldJob::all(&cv);
    let missing: Vec<String> = jobs.iter().filter(|j| !fold_file(dir, j).is_file()).map(|j| j.to_string()).collect();
    if !missing.is_empty() {
        return Err(Error::Invalid(format!("{}: folds {} are not done yet", dir.display(), missing.join(", "))));
    }
    let folds = jobs.into_iter().map(|j| read_json(&fold_file(dir, &j)).map(|p| (j, p))).collect::<Result<_>>()?;
    Ok((cv, folds))
}

/// A folder's `spec.json` (possibly edited by hand) with at least 2 folds and 1 repeat.
fn check_counts(dir: &Path, cv: &Cv) -> Result<()> {
    if cv.folds < 2 {
        return Err(Error::Invalid(format!("{}: data.cv.folds is {}; a cross-validation needs at least 2", dir.join(SPEC_FILE).display(), cv.folds)));
    }
    if cv.repeats < 1 {
        return Err(Error::Invalid(format!("{}: data.cv.repeats is 0; a cross-validation runs at least once", dir.join(SPEC_FILE).display())));
    }
    Ok(())
}

/// Reads what the cross-validation in `dir` predicted ([`CvPredictions`]): from the folds'
/// `oof.json`, or, where those were not kept (a committed results folder), from the
/// out-of-fold files `merge` wrote and `cv.json` (no test predictions then).
pub fn predictions(dir: &Path) -> Result<CvPredictions> {
    match read_folds(dir) {
        Ok((cv, folds)) => Ok(collect(&cv, &folds)),
        Err(e) => {
            let Ok(result) = read_json::<CvResult>(&dir.join("cv.json")) else { return Err(e) };
            if result.repeats < 1 {
                return Err(e);
            }
            let names: Vec<String> = if result.repeats > 1 { (0..result.repeats).map(|r| format!("oof-repeat-{r}.tsv")).collect() } else { vec!["oof.tsv".into()] };
            let mut task = Task::Regression;
            let mut repeats = Vec::new();
            for name in names {
                let (t, o) = read_oof_tsv(&dir.join(name))?;
                task = t;
                repeats.push(o);
            }
            Ok(CvPredictions { task, metric: result.metric, repeats, test: None })
        }
    }
}

/// Reads an out-of-fold file back (`id`, `label`, `prediction`, and `p_<class>` columns for
/// classification, as [`Predictions::to_tsv`] writes them).
fn read_oof_tsv(path: &Path) -> Result<(Task, OutOfFold)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    if header.get(..3) != Some(&["id", "label", "prediction"][..]) {
        return Err(Error::Data { path: path.into(), line: Some(1), what: "expected the columns id, label, prediction".into() });
    }
    let labels: Vec<String> = header[3..].iter().filter_map(|h| h.strip_prefix("p_").map(str::to_string)).collect();
    let task = if labels.is_empty() { Task::Regression } else { Task::Classification { labels: labels.clone() } };
    let mut o = OutOfFold { ids: Vec::new(), targets: Vec::new(), outputs: Vec::new(), swa_outputs: None };
    for (i, line) in lines.enumerate() {
        let bad = |what: &str| Error::Data { path: path.into(), line: Some(i + 2), what: what.into() };
        let cells: Vec<&str> = line.split('\t').collect();
        if cells.len() != header.len() {
            return Err(bad(&format!("{} columns, the header has {}", cells.len(), header.len())));
        }
        let number = |s: &str| s.parse::<f64>().map_err(|_| bad(&format!("`{s}` is not a number")));
        o.ids.push(cells[0].to_string());
        if labels.is_empty() {
            o.targets.push(number(cells[1])?);
            o.outputs.push(vec![number(cells[2])?]);
        } else {
            let class = labels.iter().position(|l| l == cells[1]).ok_or_else(|| bad(&format!("label `{}` is not one of the p_ columns", cells[1])))?;
            o.targets.push(class as f64);
            o.outputs.push(cells[3..].iter().map(|c| number(c)).collect::<Result<_>>()?);
        }
    }
    Ok((task, o))
}

fn collect(cv: &Cv, folds: &[(FoldJob, FoldPredictions)]) -> CvPredictions {
    let repeats = (0..cv.repeats).map(|r| OutOfFold::of(&folds.iter().filter(|(j, _)| j.repeat == r).map(|(_, p)| p).collect::<Vec<_>>())).collect();
    let tests: Option<Vec<&TestPredictions>> = folds.iter().map(|(_, f)| f.test.as_ref()).collect();
    let test = tests.map(|t| (t[0].targets.clone(), mean_outputs(&t.iter().map(|t| &t.outputs).collect::<Vec<_>>())));
    CvPredictions { task: folds[0].1.task.clone(), metric: folds[0].1.metric.clone(), repeats, test }
}

/// The mean of each metric over the repeats (the metrics every repeat has).
fn mean_metrics(each: &[Metrics]) -> Metrics {
    let n = each.len() as f64;
    each[0].keys().filter_map(|k| each.iter().map(|m| m.get(k)).sum::<Option<f64>>().map(|s| (k.clone(), s / n))).collect()
}

/// Reads every fold's predictions of a cross-validation folder and writes `oof.tsv` (one
/// `oof-repeat-<r>.tsv` per repeat with `data.cv.repeats`) and `cv.json`. Missing folds are an
/// error naming them.
pub fn assemble(dir: &Path) -> Result<CvResult> {
    crate::run_dir::refuse_if_written(dir, "merge the cross-validation")?;
    let (cv, folds) = read_folds(dir)?;
    let all = collect(&cv, &folds);
    let task = all.task.clone();
    let metric = all.metric.clone();
    let of = |m: &Metrics| m.get(&metric).copied().unwrap_or(f64::NAN);
    let scored: Vec<Metrics> = all.repeats.iter().map(|o| score_outputs(&task, &o.outputs, &o.targets)).collect();
    let oof = mean_metrics(&scored);
    let repeat_scores: Vec<f64> = scored.iter().map(of).collect();
    let oof_score = repeat_scores.iter().sum::<f64>() / repeat_scores.len() as f64;
    let fold_scores: Vec<f64> = folds.iter().map(|(_, f)| f.best).collect();
    let (mean, std) = crate::metrics::mean_std(&fold_scores);
    let swa_oof_score = all.repeats.iter().map(|o| o.swa_outputs.as_ref().map(|s| of(&score_outputs(&task, s, &o.targets)))).sum::<Option<f64>>().map(|s| s / cv.repeats as f64);
    let test = all.test.as_ref().map(|(targets, outputs)| score_outputs(&task, outputs, targets));
    let swa_test_score = all.test.as_ref().and_then(|(targets, _)| {
        let swa: Option<Vec<&Vec<Vec<f64>>>> = folds.iter().map(|(_, f)| f.test.as_ref().and_then(|t| t.swa_outputs.as_ref())).collect();
        swa.map(|s| of(&score_outputs(&task, &mean_outputs(&s), targets)))
    });
    let result = CvResult {
        metric: metric.clone(),
        oof_score,
        oof,
        fold_scores,
        mean,
        std,
        swa_oof_score,
        test_score: test.as_ref().map(of),
        test,
        swa_test_score,
        repeats: cv.repeats,
        repeat_scores: if cv.repeats > 1 { repeat_scores } else { Vec::new() },
    };
    let truth = |t: f64| match &task {
        Task::Regression => t.to_string(),
        Task::Classification { labels } => labels[t as usize].clone(),
    };
    for (r, (o, m)) in all.repeats.into_iter().zip(scored).enumerate() {
        let rows = Predictions { ids: o.ids, truth: Some(o.targets.iter().map(|&t| truth(t)).collect()), outputs: o.outputs, metrics: Some(m), task: task.clone() };
        rows.write_tsv(&dir.join(if cv.repeats > 1 { format!("oof-repeat-{r}.tsv") } else { "oof.tsv".into() }))?;
    }
    write_json(&dir.join("cv.json"), &result)?;
    Ok(result)
}

impl std::fmt::Display for CvResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let folds: Vec<String> = self.fold_scores.iter().map(|v| format!("{v:.4}")).collect();
        if self.repeats > 1 {
            let each: Vec<String> = self.repeat_scores.iter().map(|v| format!("{v:.4}")).collect();
            let (_, sd) = crate::metrics::mean_std(&self.repeat_scores);
            write!(f, "out-of-fold {} {:.4} (mean of {} repeats ± {sd:.4}: {})", self.metric, self.oof_score, self.repeats, each.join(", "))?;
            write!(f, "; folds {:.4} ± {:.4}", self.mean, self.std)?;
        } else {
            write!(f, "out-of-fold {} {:.4}; folds {:.4} ± {:.4} ({})", self.metric, self.oof_score, self.mean, self.std, folds.join(", "))?;
        }
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
    /// Each fold's outputs, in fold order (repeat by repeat), and the fold's column name:
    /// `fold_<k>`, or `repeat_<r>_fold_<k>`.
    pub folds: Vec<Vec<Vec<f64>>>,
    pub names: Vec<String>,
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
    check_counts(dir, cv)?;
    let jobs = FoldJob::all(cv);
    let models: Vec<PathBuf> = jobs.iter().map(|j| dir.join(j.name()).join("best")).collect();
    let missing: Vec<String> = jobs.iter().zip(&models).filter(|(_, m)| !m.join("tunelab.json").is_file()).map(|(j, _)| j.to_string()).collect();
    if !missing.is_empty() {
        return Err(Error::Invalid(format!("{}: folds {} have no model yet (<fold>/best); run them first", dir.display(), missing.join(", "))));
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
    let names = jobs.iter().map(|j| j.name().replace('-', "_")).collect();
    Ok((Ensemble { mean: Predictions { outputs, metrics, ..first }, folds, names }, notes))
}

impl Ensemble {
    /// The mean predictions as [`Predictions::to_tsv`] writes them, then one column per fold
    /// (its name in [`Ensemble::names`]): that fold's value (regression) or class
    /// (classification).
    pub fn to_tsv(&self) -> String {
        let mean = self.mean.to_tsv();
        let mut lines = mean.lines();
        let mut out = lines.next().unwrap_or_default().to_string();
        for name in &self.names {
            out.push('\t');
            out.push_str(name);
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

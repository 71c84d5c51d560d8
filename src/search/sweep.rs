//! Sweeps: trials of a search space ([`Space`]) drawn by a [`Sampler`], each a run (or a
//! cross-validation when `data.cv` is set) scored by the selection metric, optionally stopped
//! early by successive halving ([`SuccessiveHalving`]) on the dev scores that frequent
//! evaluation produces.
//!
//! A sweep lives in one folder that any number of workers share (Slurm array tasks on a shared
//! filesystem, or processes on one machine):
//!
//! ```text
//! sweep.json            what the sweep is (space, sampler, pruner, trials, seed, base spec);
//!                       every worker checks it agrees
//! trial-0007.json       trial 7: its parameters, state (running / complete / pruned), score,
//!                       optimizer steps, where it was pruned
//! trial-0007/           its run folder (curves, metrics; the weights are not kept)
//! trial-0007.claim      held while a worker trains trial 7: "host pid", touched every 30 s
//! rungs/trial-0007.jsonl  the scores the pruner recorded for trial 7 at each rung it reached
//! min_resource.json     the pruner's first rung, when estimated from the first finished trial
//! leaderboard.csv, history.png, parameters.png, best/spec.json   (tunelab merge)
//! ```
//!
//! A worker takes the lowest-numbered trial that is neither finished nor claimed, claiming it by
//! creating its claim file (an atomic create: two workers never hold one trial). A worker
//! killed with `kill -9` leaves its claim behind; the claim is stale once its process is gone
//! (same host) or it has not been touched for [`STALE_AFTER`] (another host), and the next
//! worker to look takes it over and runs the trial again from its start. A finished trial is
//! never run again, so a sweep run again once it is complete does nothing but report. Taking a
//! stale claim over goes through `trial-<n>.takeover`, created atomically, so that of two workers
//! finding it stale only one takes it; a worker removes its claim only while it is still its own.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::pruner::{Rungs, SuccessiveHalving};
use super::sampler::{Observed, Sampler};
use super::space::{Params, Space};
use crate::error::{Error, Result};
use crate::files;
use crate::run::{EvaluationHook, RunControl};
use crate::spec::RunSpec;

/// A claim not touched for this long, by a worker on another host, is taken over.
pub const STALE_AFTER: Duration = Duration::from_secs(600);

/// How often a worker touches its claim while it trains.
const HEARTBEAT: Duration = Duration::from_secs(30);

/// A hyper-parameter sweep over the keys of a run specification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    pub space: Space,
    pub sampler: Sampler,
    /// How many trials (a grid: at most its number of points; `None`: all of them).
    pub trials: Option<usize>,
    /// The seed of the random and TPE draws.
    pub seed: u64,
    /// Successive halving on the dev scores (`None`: every trial runs to its end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruner: Option<SuccessiveHalving>,
    /// TPE: how many trials are drawn at random before it models the scores (Optuna's 10).
    #[serde(default = "default_startup")]
    pub startup: usize,
    /// The sweep's folder.
    pub out: PathBuf,
}

fn default_startup() -> usize {
    10
}

/// Where a trial stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialState {
    Running,
    Complete,
    Pruned,
    /// The run could not train with these values: it diverged (its loss exploded or became
    /// non-finite), or the values together are refused (`error` says why).
    Failed,
}

/// One trial (`trial-<n>.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    pub number: usize,
    pub params: Params,
    pub state: TrialState,
    /// The selection metric (`rmse`, `accuracy`...).
    pub metric: String,
    /// Its best dev value (a cross-validation: the out-of-fold value); a pruned trial's is the
    /// value it was stopped at.
    pub score: Option<f64>,
    /// Optimizer steps trained (every fold's, for a cross-validation): the compute it used.
    pub steps: usize,
    /// The step at which the pruner stopped it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned_at: Option<usize>,
    pub seconds: f64,
    /// Who ran it: `host pid`, and the shard (`2/8`) when given.
    pub worker: String,
    /// Why a failed trial failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How many times a worker started it (more than 1: a worker was killed while training it).
    #[serde(default)]
    pub attempts: usize,
}

impl TrialState {
    /// Its name in the records and tables (`complete`, `pruned`...).
    pub fn name(self) -> &'static str {
        match self {
            TrialState::Running => "running",
            TrialState::Complete => "complete",
            TrialState::Pruned => "pruned",
            TrialState::Failed => "failed",
        }
    }
}

/// What `sweep.json` holds: the sweep and its base specification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Manifest {
    sweep: Sweep,
    base: serde_json::Value,
    metric: String,
    higher_is_better: bool,
}

impl Sweep {
    /// How many trials the sweep runs.
    pub fn trial_count(&self) -> Result<usize> {
        match self.sampler {
            Sampler::Grid => {
                let points = self.space.grid_size()?;
                match self.trials {
                    Some(n) if n > points => Err(Error::Invalid(format!("the grid has {points} points; trials: {n} would repeat some (give at most {points}, or leave trials out)"))),
                    Some(n) => Ok(n),
                    None => Ok(points),
                }
            }
            _ => self.trials.filter(|&n| n > 0).ok_or_else(|| Error::Invalid(format!("a {} sweep needs trials: N (at least 1)", self.sampler.name()))),
        }
    }

    /// Every check, before anything is written: the space against the base specification,
    /// the trial count, the pruner's settings and what pruning needs.
    pub fn validate(&self, base: &RunSpec) -> Result<()> {
        self.trial_count()?;
        self.space.validate(base)?;
        if let Some(pruner) = &self.pruner {
            pruner.validate()?;
            if base.data.cv.is_some() {
                return Err(Error::Invalid(
                    "pruning stops a run at an evaluation, and a cross-validation's folds are separate runs: give the sweep no pruner when data.cv is set".into(),
                ));
            }
            if base.recipe.evaluation.every.is_none() {
                return Err(Error::Invalid("the pruner needs dev scores during training: set recipe.evaluation.every (e.g. #{ every: 10 })".into()));
            }
        }
        Ok(())
    }

    fn manifest(&self, base: &RunSpec) -> Result<Manifest> {
        let plan = base.plan()?;
        let metric: crate::metrics::Metric = serde_json::from_value(serde_json::Value::from(plan.metric.clone())).map_err(|e| Error::Invalid(format!("metric {}: {e}", plan.metric)))?;
        let mut base = base.clone();
        base.training.device = Default::default();
        let base: serde_json::Value = serde_json::from_str(&base.to_json()).map_err(|e| Error::Invalid(e.to_string()))?;
        // The folder is where the sweep is, not what it is: the same folder may be named otherwise.
        let sweep = Sweep { out: PathBuf::new(), ..self.clone() };
        Ok(Manifest { sweep, base, metric: plan.metric, higher_is_better: metric.higher_is_better() })
    }

    /// Runs trials until none is left to take (or `control`'s interrupt is set), and returns every
    /// trial of the folder. `shard` only names this worker in the trial records: workers share
    /// the trials through their claims, whatever their number.
    pub fn run(&self, base: &RunSpec, shard: Option<(usize, usize)>, control: &RunControl) -> Result<Vec<Trial>> {
        self.validate(base)?;
        let manifest = self.manifest(base)?;
        self.check_folder()?;
        let path = self.out.join("sweep.json");
        if !path.is_file() {
            std::fs::create_dir_all(&self.out).map_err(|e| Error::io(&self.out, e))?;
            // Created exclusively (a link from a temporary file of this process's own), so that of
            // two workers starting at once one writes it and the other reads and compares it.
            let tmp = self.out.join(format!(".sweep.json.{}.tmp", std::process::id()));
            std::fs::write(&tmp, serde_json::to_string_pretty(&manifest).map_err(|e| Error::Invalid(e.to_string()))? + "\n").map_err(|e| Error::io(&tmp, e))?;
            let linked = std::fs::hard_link(&tmp, &path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        {
            let mut theirs: Manifest = files::read_json(&path)?;
            theirs.sweep.out = PathBuf::new();
            if theirs != manifest {
                let (a, b) = (serde_json::to_value(&theirs).unwrap_or_default(), serde_json::to_value(&manifest).unwrap_or_default());
                let differ = crate::run_dir::differences(&a, &b);
                return Err(Error::Invalid(format!(
                    "{}: this folder holds another sweep (its sweep.json differs in {}); give this sweep its own folder",
                    self.out.display(),
                    differ.join(", ")
                )));
            }
        }
        let worker = match shard {
            Some((i, n)) => format!("{} shard {i}/{n}", Claim::holder()),
            None => Claim::holder(),
        };
        let total = self.trial_count()?;
        while let Some((number, claim)) = self.claim_next(total)? {
            self.run_trial(base, &manifest, number, claim, &worker, control)?;
            if control.interrupted() {
                return Err(Error::Invalid(format!(
                    "the sweep was stopped during trial {number}; run it again to continue (finished trials are kept, the stopped one starts over)"
                )));
            }
        }
        read_trials(&self.out)
    }

    /// Refuses a folder that holds files a sweep does not write (tunelab deletes only what it made).
    fn check_folder(&self) -> Result<()> {
        let Ok(entries) = std::fs::read_dir(&self.out) else { return Ok(()) };
        // Another worker starting at the same instant may be writing sweep.json (its temporary copy).
        let names: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| !files::is_temporary(n)).collect();
        if !names.is_empty() && !names.iter().any(|n| n == "sweep.json") {
            return Err(Error::Invalid(format!(
                "{} already holds files ({}...) and no sweep.json: it is not a sweep's folder; choose another",
                self.out.display(),
                names[0]
            )));
        }
        Ok(())
    }

    /// The lowest-numbered trial neither finished nor held by a live worker, claimed.
    fn claim_next(&self, total: usize) -> Result<Option<(usize, Claim)>> {
        for number in 0..total {
            if read_trial(&self.out, number)?.is_some_and(|t| t.state != TrialState::Running) {
                continue;
            }
            let Some(claim) = Claim::take(&self.out, number)? else { continue };
            // Another worker may have finished it between the look and the claim.
            if read_trial(&self.out, number)?.is_some_and(|t| t.state != TrialState::Running) {
                continue;
            }
            return Ok(Some((number, claim)));
        }
        Ok(None)
    }

    fn run_trial(&self, base: &RunSpec, manifest: &Manifest, number: usize, claim: Claim, worker: &str, control: &RunControl) -> Result<()> {
        let started = Instant::now();
        // A trial taken over from a killed worker keeps the parameters it was given.
        let (params, attempts) = match read_trial(&self.out, number)? {
            Some(t) => (t.params, t.attempts),
            None => {
                let history = observed(&read_trials(&self.out)?, manifest.higher_is_better);
                (self.sampler.suggest(&self.space, number, self.seed, &history, self.startup)?, 0)
            }
        };
        let mut trial = Trial {
            number,
            params,
            state: TrialState::Running,
            metric: manifest.metric.clone(),
            score: None,
            steps: 0,
            pruned_at: None,
            seconds: 0.0,
            worker: worker.to_string(),
            error: None,
            attempts: attempts + 1,
        };
        files::write_json(&trial_path(&self.out, number), &trial)?;
        // The trial starts over: what the pruner recorded of an earlier attempt goes.
        let rungs = rung_path(&self.out, number);
        if rungs.is_file() {
            files::remove_any(&rungs)?;
        }
        let mut spec = match self.space.apply(base, &trial.params) {
            Ok(spec) => spec,
            Err(e) => return self.finish(trial, started, Err(e), None, claim),
        };
        spec.training.name = format!("trial-{number:04}");
        let keep_models = spec.training.keep.is_some();
        spec.training.keep = spec.training.keep.or(Some(crate::spec::Keep::Best));
        let dir = self.out.join(format!("trial-{number:04}"));
        // The trial's own stop flag (the pruner's), and the caller's (a Ctrl-C) relayed to it.
        let stop = Arc::new(AtomicBool::new(false));
        let pruned_at = Arc::new(AtomicUsize::new(usize::MAX));
        let (caller, shown) = (control.interrupt.clone(), control.progress.clone());
        let progress = {
            let stop = stop.clone();
            crate::progress::ProgressHook(Arc::new(move |p: &crate::progress::Progress| {
                if caller.as_ref().is_some_and(|f| f.load(Ordering::SeqCst)) {
                    stop.store(true, Ordering::SeqCst);
                }
                // The caller's display (a notebook's live line) sees each trial's progress too.
                if let Some(hook) = &shown {
                    (hook.0)(p);
                }
            }))
        };
        let on_evaluation = self.pruner.clone().map(|pruner| {
            let (out, stop, pruned_at) = (self.out.clone(), stop.clone(), pruned_at.clone());
            let (metric, minimize) = (manifest.metric.clone(), !manifest.higher_is_better);
            let rung = Mutex::new(0usize);
            EvaluationHook(Arc::new(move |record: &crate::run_dir::EvalRecord| {
                let value = record.metrics.get(&metric).copied().unwrap_or(f64::NAN);
                let mut rung = rung.lock().unwrap_or_else(|e| e.into_inner());
                // The pruner's records cannot fail the run: a rung that cannot be read or written
                // leaves the trial running, and says so.
                match prune(&out, &pruner, number, &mut rung, record.step, value, minimize) {
                    Ok(true) => {
                        pruned_at.store(record.step, Ordering::SeqCst);
                        stop.store(true, Ordering::SeqCst);
                    }
                    Ok(false) => {}
                    Err(e) => eprintln!("warning: trial {number}: the pruner could not decide at step {}, the trial goes on: {e}", record.step),
                }
            }))
        });
        let trial_control = RunControl {
            out: Some(dir.clone()),
            force: true,
            quiet: control.quiet,
            progress_every: control.progress_every,
            progress: Some(progress),
            interrupt: Some(stop.clone()),
            on_evaluation,
            ..RunControl::default()
        };
        let outcome = if spec.data.cv.is_some() { cv_trial(&spec, &trial_control, &dir, &mut trial) } else { run_trial_once(&spec, &trial_control, &pruned_at, &mut trial) };
        self.finish(trial, started, outcome, (!keep_models).then_some(dir.as_path()), claim)
    }

    /// Records how a trial ended. A file that could not be read or written stops the worker;
    /// any other error is the trial's (it diverged, its values together are refused, the device
    /// ran out of memory): recorded as failed, and the sweep goes on. `Ok(false)`: stopped by the
    /// caller, the trial stays open for the next worker (or this one, again).
    fn finish(&self, mut trial: Trial, started: Instant, outcome: Result<bool>, weights_of: Option<&Path>, claim: Claim) -> Result<()> {
        match outcome {
            Ok(false) => return Ok(()),
            Ok(true) if trial.state == TrialState::Running => trial.state = TrialState::Complete,
            Ok(true) => {}
            Err(e @ Error::Io { .. }) => return Err(e),
            Err(e) => {
                trial.state = TrialState::Failed;
                trial.error = Some(e.to_string());
            }
        }
        trial.seconds = started.elapsed().as_secs_f64();
        if let Some(dir) = weights_of {
            for sub in weight_folders(dir) {
                files::remove_any(&sub)?;
            }
        }
        files::write_json(&trial_path(&self.out, trial.number), &trial)?;
        drop(claim);
        Ok(())
    }
}

/// A trial that is a cross-validation: its score is the out-of-fold one. `Ok(false)`: stopped.
fn cv_trial(spec: &RunSpec, control: &RunControl, dir: &Path, trial: &mut Trial) -> Result<bool> {
    let outcome = crate::cv::run(spec, control, None)?;
    let Some(result) = outcome.result else { return Ok(false) };
    trial.score = Some(result.oof_score);
    let folds = spec.data.cv.as_ref().map_or(Vec::new(), crate::cv::FoldJob::all);
    trial.steps = folds.iter().filter_map(|job| crate::run_dir::RunDir { path: dir.join(job.name()) }.read_metrics().ok()).map(|m| m.steps).sum();
    Ok(true)
}

/// A trial that is one run: its best dev score, or, pruned, the score it stopped at.
/// `Ok(false)`: stopped by the caller.
fn run_trial_once(spec: &RunSpec, control: &RunControl, pruned_at: &AtomicUsize, trial: &mut Trial) -> Result<bool> {
    let run = spec.run_with(control)?;
    trial.steps = run.metrics.steps;
    let at = pruned_at.load(Ordering::SeqCst);
    if run.metrics.finished {
        trial.score = run.metrics.best.as_ref().map(|b| b.value);
        Ok(true)
    } else if at != usize::MAX {
        trial.state = TrialState::Pruned;
        trial.pruned_at = Some(at);
        trial.score = run.evals.iter().rev().find(|e| e.step == at && e.weights == crate::run_dir::Weights::Model).and_then(|e| e.metrics.get(&trial.metric).copied());
        Ok(true)
    } else {
        Ok(false)
    }
}

/// The model folders a trial's run (or its folds) wrote: `best/`, `swa/`, `last/`.
fn weight_folders(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut visit = vec![dir.to_path_buf()];
    while let Some(d) = visit.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if matches!(name.as_str(), "best" | "swa" | "last") {
                found.push(path);
            } else if name.starts_with("fold-") || name.starts_with("repeat-") {
                visit.push(path);
            }
        }
    }
    found
}

fn trial_path(out: &Path, number: usize) -> PathBuf {
    out.join(format!("trial-{number:04}.json"))
}

fn read_trial(out: &Path, number: usize) -> Result<Option<Trial>> {
    let path = trial_path(out, number);
    if path.is_file() { files::read_json(&path).map(Some) } else { Ok(None) }
}

/// Every trial record of a sweep's folder, by number.
pub fn read_trials(out: &Path) -> Result<Vec<Trial>> {
    let mut trials = Vec::new();
    for entry in std::fs::read_dir(out).map_err(|e| Error::io(out, e))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("trial-") && name.ends_with(".json") {
            trials.push(files::read_json::<Trial>(&entry.path())?);
        }
    }
    trials.sort_by_key(|t| t.number);
    Ok(trials)
}

/// The finished trials as TPE sees them (lower is better).
fn observed(trials: &[Trial], higher_is_better: bool) -> Vec<Observed> {
    trials
        .iter()
        .filter(|t| t.state != TrialState::Running)
        .filter_map(|t| t.score.filter(|s| s.is_finite()).map(|s| Observed { params: t.params.clone(), loss: if higher_is_better { -s } else { s } }))
        .collect()
}

/// One score the pruner recorded for a trial at a rung (`rungs/trial-<n>.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RungRecord {
    rung: usize,
    /// The rung's step, and the step the score was reported at.
    at: usize,
    step: usize,
    value: f64,
}

fn rung_path(out: &Path, number: usize) -> PathBuf {
    out.join("rungs").join(format!("trial-{number:04}.jsonl"))
}

/// The first rung's step: the pruner's, or estimated once from the first finished trial and
/// kept in `min_resource.json` (created exclusively: every worker uses the same).
fn min_resource(out: &Path, pruner: &SuccessiveHalving) -> Result<Option<usize>> {
    if pruner.min_resource.is_some() {
        return Ok(pruner.min_resource);
    }
    let path = out.join("min_resource.json");
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(m) = text.trim().parse::<usize>()
    {
        return Ok(Some(m));
    }
    let Some(first) = read_trials(out)?.into_iter().find(|t| t.state == TrialState::Complete) else { return Ok(None) };
    let estimate = super::pruner::auto_min_resource(first.steps);
    let tmp = out.join(format!(".min_resource.json.{}.tmp", std::process::id()));
    std::fs::write(&tmp, format!("{estimate}\n")).map_err(|e| Error::io(&tmp, e))?;
    let _ = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    Ok(std::fs::read_to_string(&path).ok().and_then(|t| t.trim().parse().ok()).or(Some(estimate)))
}

/// The pruner's decision for trial `number` reporting `value` at `step`. The other trials'
/// scores at each rung come from their own files in `rungs/` (each written only by the worker
/// holding that trial, a torn last line of a killed worker ignored); the scores this report
/// records are appended to this trial's file.
fn prune(out: &Path, pruner: &SuccessiveHalving, number: usize, rung: &mut usize, step: usize, value: f64, minimize: bool) -> Result<bool> {
    let Some(first) = min_resource(out, pruner)? else { return Ok(false) };
    let fixed = SuccessiveHalving { min_resource: Some(first), ..pruner.clone() };
    let mut rungs = Rungs::default();
    let folder = out.join("rungs");
    for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
        let path = entry.path();
        if path == rung_path(out, number) || path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        for r in files::read_jsonl::<RungRecord>(&path)? {
            if rungs.values.len() <= r.rung {
                rungs.values.resize(r.rung + 1, Vec::new());
            }
            rungs.values[r.rung].push(r.value);
        }
    }
    let before: Vec<usize> = rungs.values.iter().map(Vec::len).collect();
    let decision = fixed.should_prune(&mut rungs, rung, step, value, minimize);
    for (k, values) in rungs.values.iter().enumerate() {
        if values.len() > before.get(k).copied().unwrap_or(0) {
            std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
            let at = first.saturating_mul(pruner.reduction_factor.saturating_pow((pruner.min_early_stopping_rate + k) as u32));
            files::append_line(&rung_path(out, number), &RungRecord { rung: k, at, step, value })?;
        }
    }
    Ok(decision)
}

/// A worker's hold on a trial: `trial-<n>.claim`, created atomically, touched every
/// [`HEARTBEAT`] by a thread of its own, and removed when dropped if it is still this worker's.
struct Claim {
    path: PathBuf,
    holder: String,
    beating: Arc<AtomicBool>,
}

impl Claim {
    /// `host pid` of this process.
    fn holder() -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok().or_else(|| std::env::var("HOSTNAME").ok()).unwrap_or_else(|| "localhost".into());
        format!("{} {}", host.trim(), std::process::id())
    }

    /// Takes trial `number`'s claim: `None` while another live worker holds it. A stale claim
    /// (its process gone, or untouched for [`STALE_AFTER`] on another host) is taken over by
    /// whoever creates `trial-<n>.takeover` first; the others leave the trial to it.
    fn take(out: &Path, number: usize) -> Result<Option<Claim>> {
        let path = out.join(format!("trial-{number:04}.claim"));
        if let Some(claim) = Claim::create(&path)? {
            return Ok(Some(claim));
        }
        if !Claim::stale(&path) {
            return Ok(None);
        }
        let takeover = out.join(format!("trial-{number:04}.takeover"));
        // A takeover file left by a worker killed in the middle of one is itself stale.
        if Claim::stale(&takeover) {
            let _ = std::fs::remove_file(&takeover);
        }
        let Some(guard) = Claim::create(&takeover)? else { return Ok(None) };
        // Under the takeover file, nobody else replaces the claim: if it is still stale, it goes.
        let taken = if Claim::stale(&path) {
            files::remove_any(&path)?;
            Claim::create(&path)?
        } else {
            None
        };
        drop(guard);
        Ok(taken)
    }

    /// Creates `path` holding this worker's name; `None` if it exists.
    fn create(path: &Path) -> Result<Option<Claim>> {
        let holder = Claim::holder();
        match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(mut f) => {
                use std::io::Write;
                f.write_all(holder.as_bytes()).map_err(|e| Error::io(path, e))?;
                let beating = Arc::new(AtomicBool::new(true));
                let (beat, touched) = (beating.clone(), path.to_path_buf());
                std::thread::spawn(move || {
                    let mut last = Instant::now();
                    while beat.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(200));
                        if last.elapsed() >= HEARTBEAT {
                            Claim::touch(&touched);
                            last = Instant::now();
                        }
                    }
                });
                Ok(Some(Claim { path: path.to_path_buf(), holder, beating }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Whether the claim at `path` is stale: its holder's process is gone (same host), or it has
    /// not been touched for [`STALE_AFTER`] (another host). A claim that is not there is stale.
    fn stale(path: &Path) -> bool {
        let Ok(holder) = std::fs::read_to_string(path) else { return true };
        let mut parts = holder.split_whitespace();
        let (host, pid) = (parts.next().unwrap_or(""), parts.next().and_then(|p| p.parse::<u32>().ok()));
        let here = Claim::holder();
        if host == here.split_whitespace().next().unwrap_or("") {
            return match pid {
                Some(pid) => !crate::run_dir::process_alive(pid),
                // Being written this instant: not stale.
                None => false,
            };
        }
        let touched = std::fs::metadata(path).and_then(|m| m.modified()).unwrap_or(SystemTime::now());
        touched.elapsed().is_ok_and(|age| age > STALE_AFTER)
    }

    fn touch(path: &Path) {
        if let Ok(f) = std::fs::OpenOptions::new().append(true).open(path) {
            let _ = f.set_modified(SystemTime::now());
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.beating.store(false, Ordering::SeqCst);
        if std::fs::read_to_string(&self.path).is_ok_and(|h| h == self.holder) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A sweep's results ([`report`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Leaderboard {
    /// The sweep's folder.
    pub out: PathBuf,
    pub metric: String,
    pub higher_is_better: bool,
    /// The searched keys, in the space's order.
    pub keys: Vec<String>,
    /// Complete trials best first, then pruned ones (best first), failed ones, those still running.
    pub trials: Vec<Trial>,
    /// How many trials the sweep has in all.
    pub total: usize,
    /// The best complete trial's specification (`best/spec.json`).
    pub best: Option<RunSpec>,
}

impl Leaderboard {
    /// Every trial's optimizer steps: the compute the sweep used so far.
    pub fn steps(&self) -> usize {
        self.trials.iter().map(|t| t.steps).sum()
    }

    /// The leaderboard as a Markdown table (for a results page).
    pub fn markdown(&self) -> String {
        let mut out = format!("| trial | state | dev {} | steps | pruned at |", self.metric);
        for k in &self.keys {
            out.push_str(&format!(" `{k}` |"));
        }
        out.push_str(&format!("\n|{}\n", "---|".repeat(5 + self.keys.len())));
        for t in &self.trials {
            let score = t.score.map(|s| format!("{s:.4}")).unwrap_or_else(|| "-".into());
            let at = t.pruned_at.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
            out.push_str(&format!("| {} | {} | {score} | {} | {at} |", t.number, t.state.name(), t.steps));
            for k in &self.keys {
                out.push_str(&format!(" {} |", t.params.get(k).map(cell).unwrap_or_default()));
            }
            out.push('\n');
        }
        out
    }

    /// The trials as rhai maps and JSON see them.
    pub fn rows(&self) -> Vec<serde_json::Value> {
        self.trials.iter().map(|t| serde_json::to_value(t).unwrap_or_default()).collect()
    }
}

/// Reads a sweep's folder and writes its report: `leaderboard.csv` (one row per trial: number,
/// state, score, steps, pruned at, seconds, then each key's value), `best/spec.json` (the best
/// complete trial's full specification, for `tunelab train`), `history.png` and
/// `parameters.png` ([`crate::plot::Chart::sweep_history`], [`crate::plot::Chart::sweep_parameters`]).
pub fn report(out: &Path) -> Result<Leaderboard> {
    let path = out.join("sweep.json");
    if !path.is_file() {
        return Err(Error::Invalid(format!("{}: not a sweep's folder (no sweep.json)", out.display())));
    }
    let manifest: Manifest = files::read_json(&path)?;
    let base = RunSpec::from_json(&manifest.base.to_string(), &path)?;
    let space = &manifest.sweep.space;
    let mut trials = read_trials(out)?;
    let rank = |t: &Trial| match t.state {
        TrialState::Complete => 0,
        TrialState::Pruned => 1,
        TrialState::Failed => 2,
        TrialState::Running => 3,
    };
    let sign = if manifest.higher_is_better { -1.0 } else { 1.0 };
    trials.sort_by(|a, b| rank(a).cmp(&rank(b)).then(f64::total_cmp(&(sign * a.score.unwrap_or(f64::INFINITY * sign)), &(sign * b.score.unwrap_or(f64::INFINITY * sign)))).then(a.number.cmp(&b.number)));
    let best = match trials.first().filter(|t| t.state == TrialState::Complete) {
        Some(t) => {
            let mut spec = space.apply(&base, &t.params)?;
            spec.training.name = "sweep-best".into();
            let folder = out.join("best");
            std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
            write_own(&folder.join("spec.json"), spec.to_json().as_bytes())?;
            Some(spec)
        }
        None => None,
    };
    let keys: Vec<String> = space.0.keys().cloned().collect();
    write_csv(&out.join("leaderboard.csv"), &keys, &trials)?;
    let mut by_number = trials.clone();
    by_number.sort_by_key(|t| t.number);
    let points: Vec<crate::plot::TrialPoint> = by_number
        .iter()
        .filter(|t| t.state != TrialState::Running)
        .map(|t| crate::plot::TrialPoint {
            number: t.number,
            score: t.score.unwrap_or(f64::NAN),
            pruned: t.state == TrialState::Pruned,
            values: space.0.iter().map(|(k, d)| t.params.get(k).and_then(|v| d.position(v)).unwrap_or(f64::NAN)).collect(),
        })
        .collect();
    let axes = space
        .0
        .iter()
        .map(|(k, d)| crate::plot::KeyAxis {
            key: k.clone(),
            log_scale: d.log_scale(),
            integer: matches!(d, super::space::Distribution::Int { .. }),
            labels: match d {
                super::space::Distribution::Choice { values } => Some(values.iter().map(plain).collect()),
                _ => None,
            },
        })
        .collect();
    write_own(&out.join("history.png"), &crate::plot::Chart::sweep_history(&manifest.metric, manifest.higher_is_better, points.clone()).png()?)?;
    write_own(&out.join("parameters.png"), &crate::plot::Chart::sweep_parameters(&manifest.metric, axes, points).png()?)?;
    let total = manifest.sweep.trial_count()?;
    Ok(Leaderboard { out: out.to_path_buf(), metric: manifest.metric, higher_is_better: manifest.higher_is_better, keys, trials, total, best })
}

/// Writes `path` through a temporary file of this process's own and a rename: workers finishing
/// together each write the whole report, and the last rename wins.
fn write_own(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

fn write_csv(path: &Path, keys: &[String], trials: &[Trial]) -> Result<()> {
    let fail = |e: csv::Error| Error::Invalid(format!("{}: {e}", path.display()));
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["trial".to_string(), "state".into(), "score".into(), "steps".into(), "pruned_at".into(), "seconds".into(), "attempts".into()];
    header.extend(keys.iter().cloned());
    w.write_record(&header).map_err(fail)?;
    for t in trials {
        let mut row = vec![
            t.number.to_string(),
            t.state.name().to_string(),
            t.score.map(|s| s.to_string()).unwrap_or_default(),
            t.steps.to_string(),
            t.pruned_at.map(|s| s.to_string()).unwrap_or_default(),
            format!("{:.1}", t.seconds),
            t.attempts.to_string(),
        ];
        row.extend(keys.iter().map(|k| t.params.get(k).map(plain).unwrap_or_default()));
        w.write_record(&row).map_err(fail)?;
    }
    let bytes = w.into_inner().map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    write_own(path, &bytes)
}

/// A parameter's value in a printed table: small or large numbers in e-notation, others to 4
/// decimals, strings without quotes.
fn cell(v: &serde_json::Value) -> String {
    match v.as_f64() {
        Some(x) if v.is_f64() && (x.abs() < 1e-2 || x.abs() >= 1e4) => format!("{x:.3e}"),
        Some(x) if v.is_f64() => format!("{x:.4}"),
        _ => plain(v),
    }
}

/// A parameter's value as a file holds it: strings without quotes.
fn plain(v: &serde_json::Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

impl std::fmt::Display for Leaderboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let done = self.trials.iter().filter(|t| t.state != TrialState::Running).count();
        let pruned = self.trials.iter().filter(|t| t.state == TrialState::Pruned).count();
        let failed = self.trials.iter().filter(|t| t.state == TrialState::Failed).count();
        let failed = if failed > 0 { format!(", {failed} diverged") } else { String::new() };
        writeln!(f, "{done} of {} trials finished ({pruned} pruned{failed}), {} optimizer steps; dev {} ({} is better)", self.total, self.steps(), self.metric, if self.higher_is_better { "higher" } else { "lower" })?;
        let mut header = format!("{:>5}  {:<8}  {:>8}  {:>6}  {:>9}", "trial", "state", self.metric, "steps", "pruned at");
        for k in &self.keys {
            header.push_str(&format!("  {k}"));
        }
        writeln!(f, "{header}")?;
        for t in &self.trials {
            let state = t.state.name();
            let score = t.score.map(|s| format!("{s:.4}")).unwrap_or_else(|| "-".into());
            let at = t.pruned_at.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
            let mut line = format!("{:>5}  {state:<8}  {score:>8}  {:>6}  {at:>9}", t.number, t.steps);
            for k in &self.keys {
                line.push_str(&format!("  {}", t.params.get(k).map(cell).unwrap_or_default()));
            }
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

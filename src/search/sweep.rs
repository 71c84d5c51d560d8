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
//! rungs.jsonl           the scores the pruner recorded at each rung, as trials reached them
//! leaderboard.csv, history.png, parameters.png, best/spec.json   (tunelab merge)
//! ```
//!
//! A worker takes the lowest-numbered trial that is neither finished nor claimed, claiming it by
//! creating its claim file (an atomic create: two workers never hold one trial). A worker
//! killed with `kill -9` leaves its claim behind; the claim is stale once its process is gone
//! (same host) or it has not been touched for [`STALE_AFTER`] (another host), and the next
//! worker to look takes it over and runs the trial again from its start. A finished trial is
//! never run again, so a sweep run again once it is complete does nothing but report.
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
    /// The run diverged (its loss became non-finite or exploded): the values are too aggressive.
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
                let points = self.space.grid()?.len();
                match self.trials {
                    Some(n) if n > points => Err(Error::Invalid(format!("the grid has {points} points; trials: {n} would repeat some (give at most {points}, or leave trials out)"))),
                    Some(n) => Ok(n),
                    None => Ok(points),
                }
            }
            _ => self.trials.filter(|&n| n > 0).ok_or_else(|| Error::Invalid(format!("a {} sweep needs trials: N (at least 1)", name(self.sampler)))),
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
        Ok(Manifest { sweep: self.clone(), base, metric: plan.metric, higher_is_better: metric.higher_is_better() })
    }

    /// Runs trials until none is left to take (or `control`'s interrupt is set), and returns every
    /// trial of the folder. `shard` only names this worker in the trial records: workers share
    /// the trials through their claims, whatever their number.
    pub fn run(&self, base: &RunSpec, shard: Option<(usize, usize)>, control: &RunControl) -> Result<Vec<Trial>> {
        self.validate(base)?;
        let manifest = self.manifest(base)?;
        self.check_folder()?;
        let path = self.out.join("sweep.json");
        if path.is_file() {
            let theirs: Manifest = files::read_json(&path)?;
            if theirs != manifest {
                let (a, b) = (serde_json::to_value(&theirs).unwrap_or_default(), serde_json::to_value(&manifest).unwrap_or_default());
                let differ = crate::run_dir::differences(&a, &b);
                return Err(Error::Invalid(format!(
                    "{}: this folder holds another sweep (its sweep.json differs in {}); give this sweep its own folder",
                    self.out.display(),
                    differ.join(", ")
                )));
            }
        } else {
            std::fs::create_dir_all(&self.out).map_err(|e| Error::io(&self.out, e))?;
            files::write_json(&path, &manifest)?;
        }
        let worker = match shard {
            Some((i, n)) => format!("{} shard {i}/{n}", Claim::holder()),
            None => Claim::holder(),
        };
        let total = self.trial_count()?;
        while !control.interrupted() {
            let Some((number, claim)) = self.claim_next(total)? else { break };
            self.run_trial(base, &manifest, number, claim, &worker, control)?;
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
        let params = match read_trial(&self.out, number)? {
            Some(t) => t.params,
            None => {
                let history = observed(&read_trials(&self.out)?, manifest.higher_is_better);
                self.sampler.suggest(&self.space, number, self.seed, &history, self.startup)?
            }
        };
        let mut trial = Trial { number, params, state: TrialState::Running, metric: manifest.metric.clone(), score: None, steps: 0, pruned_at: None, seconds: 0.0, worker: worker.to_string(), error: None };
        files::write_json(&trial_path(&self.out, number), &trial)?;
        let mut spec = self.space.apply(base, &trial.params)?;
        spec.training.name = format!("trial-{number:04}");
        let keep_models = spec.training.keep.is_some();
        spec.training.keep = spec.training.keep.or(Some(crate::spec::Keep::Best));
        let dir = self.out.join(format!("trial-{number:04}"));
        // The trial's own stop flag (the pruner's), and the caller's (a Ctrl-C) relayed to it.
        let stop = Arc::new(AtomicBool::new(false));
        let pruned_at = Arc::new(AtomicUsize::new(usize::MAX));
        let heartbeat = Mutex::new(Instant::now());
        let caller = control.interrupt.clone();
        let claim_path = claim.path.clone();
        let progress = {
            let stop = stop.clone();
            crate::progress::ProgressHook(Arc::new(move |_: &crate::progress::Progress| {
                if caller.as_ref().is_some_and(|f| f.load(Ordering::SeqCst)) {
                    stop.store(true, Ordering::SeqCst);
                }
                let mut last = heartbeat.lock().unwrap_or_else(|e| e.into_inner());
                if last.elapsed() >= HEARTBEAT {
                    Claim::touch(&claim_path);
                    *last = Instant::now();
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
                // leaves the trial running.
                if let Ok(true) = prune(&out, &pruner, number, &mut rung, record.step, value, minimize) {
                    pruned_at.store(record.step, Ordering::SeqCst);
                    stop.store(true, Ordering::SeqCst);
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
        let finished = match outcome {
            Ok(finished) => finished,
            // Values that make training diverge are a result, not a reason to stop the sweep.
            Err(e @ (Error::Diverged { .. } | Error::NonFiniteLoss { .. })) => {
                trial.state = TrialState::Failed;
                trial.error = Some(e.to_string());
                true
            }
            Err(e) => return Err(e),
        };
        if !finished {
            // Stopped by the caller: the trial stays open for the next worker (or this one, again).
            return Ok(());
        }
        if trial.state == TrialState::Running {
            trial.state = TrialState::Complete;
        }
        trial.seconds = started.elapsed().as_secs_f64();
        if !keep_models {
            for sub in weight_folders(&dir) {
                files::remove_any(&sub)?;
            }
        }
        files::write_json(&trial_path(&self.out, number), &trial)?;
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

fn name(sampler: Sampler) -> &'static str {
    match sampler {
        Sampler::Grid => "grid",
        Sampler::Random => "random",
        Sampler::Tpe => "tpe",
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

/// One score the pruner recorded at a rung (`rungs.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RungRecord {
    trial: usize,
    rung: usize,
    value: f64,
}

/// The pruner's decision for trial `number` reporting `value` at `step`: the other trials'
/// scores at each rung are read from `rungs.jsonl` (this trial's earlier records are its own
/// rung count: a trial started over records again from its first rung), the completed trials'
/// last steps from their records; the scores this report records are appended.
fn prune(out: &Path, pruner: &SuccessiveHalving, number: usize, rung: &mut usize, step: usize, value: f64, minimize: bool) -> Result<bool> {
    let path = out.join("rungs.jsonl");
    let records: Vec<RungRecord> = if path.is_file() { files::read_jsonl(&path)? } else { Vec::new() };
    let mut rungs = Rungs::default();
    let mut seen = std::collections::HashSet::new();
    for r in records.iter().filter(|r| r.trial != number) {
        if seen.insert((r.trial, r.rung)) {
            if rungs.values.len() <= r.rung {
                rungs.values.resize(r.rung + 1, Vec::new());
            }
            rungs.values[r.rung].push(r.value);
        }
    }
    for t in read_trials(out)?.iter().filter(|t| t.state == TrialState::Complete) {
        rungs.completed(t.steps);
    }
    let before: Vec<usize> = rungs.values.iter().map(Vec::len).collect();
    let decision = pruner.should_prune(&mut rungs, rung, step, value, minimize);
    let mine = records.iter().filter(|r| r.trial == number).map(|r| r.rung).collect::<std::collections::HashSet<_>>();
    for (k, values) in rungs.values.iter().enumerate() {
        if values.len() > before.get(k).copied().unwrap_or(0) && !mine.contains(&k) {
            files::append_line(&path, &RungRecord { trial: number, rung: k, value: *values.last().expect("a value was recorded") })?;
        }
    }
    Ok(decision)
}

/// A worker's hold on a trial: `trial-<n>.claim`, created atomically, removed when dropped.
struct Claim {
    path: PathBuf,
}

impl Claim {
    /// `host pid` of this process.
    fn holder() -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok().or_else(|| std::env::var("HOSTNAME").ok()).unwrap_or_else(|| "localhost".into());
        format!("{} {}", host.trim(), std::process::id())
    }

    /// Takes trial `number`'s claim: `None` while another live worker holds it. A stale claim
    /// (its process gone, or untouched for [`STALE_AFTER`] on another host) is taken over: it is
    /// renamed away first, so that of two workers taking it over only one succeeds.
    fn take(out: &Path, number: usize) -> Result<Option<Claim>> {
        let path = out.join(format!("trial-{number:04}.claim"));
        for _ in 0..2 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    use std::io::Write;
                    write!(f, "{}", Claim::holder()).map_err(|e| Error::io(&path, e))?;
                    return Ok(Some(Claim { path }));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if !Claim::stale(&path) {
                        return Ok(None);
                    }
                    let aside = out.join(format!(".trial-{number:04}.claim.stale-{}", std::process::id()));
                    match std::fs::rename(&path, &aside) {
                        Ok(()) => files::remove_any(&aside)?,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                        Err(e) => return Err(Error::io(&path, e)),
                    }
                }
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Ok(None)
    }

    fn stale(path: &Path) -> bool {
        let holder = std::fs::read_to_string(path).unwrap_or_default();
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
        let _ = std::fs::remove_file(&self.path);
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
            files::atomic_write(&folder.join("spec.json"), spec.to_json().as_bytes())?;
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
                super::space::Distribution::Choice { values } => Some(values.iter().map(|v| v.to_string().trim_matches('"').to_string()).collect()),
                _ => None,
            },
        })
        .collect();
    crate::plot::Chart::sweep_history(&manifest.metric, manifest.higher_is_better, points.clone()).save(&out.join("history.png"))?;
    crate::plot::Chart::sweep_parameters(&manifest.metric, axes, points).save(&out.join("parameters.png"))?;
    let total = manifest.sweep.trial_count()?;
    Ok(Leaderboard { out: out.to_path_buf(), metric: manifest.metric, higher_is_better: manifest.higher_is_better, keys, trials, total, best })
}

fn write_csv(path: &Path, keys: &[String], trials: &[Trial]) -> Result<()> {
    files::write_via_temp(path, |tmp| {
        let fail = |e: csv::Error| Error::Invalid(format!("{}: {e}", path.display()));
        let mut w = csv::Writer::from_path(tmp).map_err(fail)?;
        let mut header = vec!["trial".to_string(), "state".into(), "score".into(), "steps".into(), "pruned_at".into(), "seconds".into()];
        header.extend(keys.iter().cloned());
        w.write_record(&header).map_err(fail)?;
        for t in trials {
            let state = serde_json::to_value(t.state).unwrap_or_default().as_str().unwrap_or("").to_string();
            let mut row = vec![t.number.to_string(), state, t.score.map(|s| s.to_string()).unwrap_or_default(), t.steps.to_string(), t.pruned_at.map(|s| s.to_string()).unwrap_or_default(), format!("{:.1}", t.seconds)];
            row.extend(keys.iter().map(|k| t.params.get(k).map(|v| v.to_string().trim_matches('"').to_string()).unwrap_or_default()));
            w.write_record(&row).map_err(fail)?;
        }
        w.flush().map_err(|e| Error::io(path, e))
    })
}

impl std::fmt::Display for Leaderboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let done = self.trials.iter().filter(|t| t.state != TrialState::Running).count();
        let pruned = self.trials.iter().filter(|t| t.state == TrialState::Pruned).count();
        let failed = self.trials.iter().filter(|t| t.state == TrialState::Failed).count();
        let failed = if failed > 0 { format!(", {failed} diverged") } else { String::new() };
        writeln!(f, "{done} of {} trials finished ({pruned} pruned{failed}), {} optimizer steps; dev {} ({} is better)", self.total, self.steps(), self.metric, if self.higher_is_better { "higher" } else { "lower" })?;
        let value = |v: &serde_json::Value| match v.as_f64() {
            Some(x) if v.is_f64() && (x.abs() < 1e-2 || x.abs() >= 1e4) => format!("{x:.3e}"),
            Some(x) if v.is_f64() => format!("{x:.4}"),
            _ => v.to_string().trim_matches('"').to_string(),
        };
        let mut header = format!("{:>5}  {:<8}  {:>8}  {:>6}  {:>9}", "trial", "state", self.metric, "steps", "pruned at");
        for k in &self.keys {
            header.push_str(&format!("  {k}"));
        }
        writeln!(f, "{header}")?;
        for t in &self.trials {
            let state = match t.state {
                TrialState::Complete => "complete",
                TrialState::Pruned => "pruned",
                TrialState::Running => "running",
                TrialState::Failed => "failed",
            };
            let score = t.score.map(|s| format!("{s:.4}")).unwrap_or_else(|| "-".into());
            let at = t.pruned_at.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
            let mut line = format!("{:>5}  {state:<8}  {score:>8}  {:>6}  {at:>9}", t.number, t.steps);
            for k in &self.keys {
                line.push_str(&format!("  {}", t.params.get(k).map(value).unwrap_or_default()));
            }
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

//! Starting and resuming runs: a [`RunSpec`] trained into a run folder.
//!
//! [`RunSpec::run_with`] prepares the specification (every check before anything is written),
//! makes a new run folder and takes its lock, writes `spec.json`, draws the head and applies
//! re-initialisation, and runs the loop with the run-folder writer (and, in the CLI, the progress
//! bar) as observers. [`resume`] recovers a folder after a stop or a kill and continues it from
//! its checkpoint — or from the start, if the run never wrote one — refusing when the
//! specification or the thread count changed since the run started.
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::model::Model;
use crate::run_dir::{Best, CheckpointState, EvalRecord, Lock, RunDir, RunMetrics, StepLog, Weights, differences};
use crate::spec::{Keep, Prepared, RunSpec};
use crate::train::{Checkpoint, Observer, Setup, TrainState, Trainer};

/// What steers one process, as opposed to what defines the run: never written into the run.
#[derive(Debug, Clone, Default)]
pub struct RunControl {
    /// The run folder (`None`: a new `<runs_root>/<name>-<timestamp>`).
    pub out: Option<PathBuf>,
    /// Where new run folders go (`None`: `runs`).
    pub runs_root: Option<PathBuf>,
    /// Empty `out` first if it already holds files (otherwise that is an error).
    pub force: bool,
    /// Stop after this many optimizer steps, resumable (no evaluation at the stop).
    pub stop_after: Option<usize>,
    /// No progress bar (the bar needs the `cli` feature anyway).
    pub quiet: bool,
    /// Also write TensorBoard event files into the run folder (`tensorboard --logdir runs`).
    pub tensorboard: bool,
    /// Plain progress lines to stderr every this many seconds instead of a bar (`None`: a bar
    /// on a terminal, otherwise a line every 30 s).
    pub progress_every: Option<f64>,
    /// Called with the run's progress after every step (a notebook's live display), besides
    /// the bar or the lines.
    pub progress: Option<crate::progress::ProgressHook>,
    /// When this becomes true (a notebook's stop button, SIGINT), the run stops at the next step
    /// boundary with a resumable checkpoint, as `stop_after` does; `resume` continues it.
    pub interrupt: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Called with each evaluation of the weights being trained (not the averaged ones): a
    /// sweep's pruner reads the dev scores here, and stops the run through `interrupt` right
    /// after the evaluation that decided it.
    pub on_evaluation: Option<EvaluationHook>,
}

/// See [`RunControl::on_evaluation`].
#[derive(Clone)]
pub struct EvaluationHook(pub std::sync::Arc<dyn Fn(&EvalRecord) + Send + Sync>);

impl std::fmt::Debug for EvaluationHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EvaluationHook")
    }
}

impl Observer for EvaluationHook {
    fn evaluated(&mut self, record: &EvalRecord) -> Result<()> {
        if record.weights == Weights::Model {
            (self.0)(record);
        }
        Ok(())
    }
}

impl RunControl {
    /// Whether the interrupt flag is set.
    pub fn interrupted(&self) -> bool {
        self.interrupt.as_ref().is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst))
    }
}

impl RunControl {
    /// Runs quietly into new folders under `root` (what notebooks and tests want).
    pub fn quiet_under(root: impl Into<PathBuf>) -> Self {
        RunControl { runs_root: Some(root.into()), quiet: true, ..RunControl::default() }
    }
}

/// A run that trained (or stopped early).
#[derive(Debug, Clone)]
pub struct Run {
    pub dir: PathBuf,
    pub metrics: RunMetrics,
    /// What resuming had to repair (a stale lock, an interrupted checkpoint...): shown, not stored,
    /// so that a resumed run's files equal an uninterrupted run's.
    pub recovery: Vec<String>,
    pub log: Vec<StepLog>,
    pub evals: Vec<EvalRecord>,
}

impl Run {
    /// Reads a run folder back.
    pub fn open(dir: impl AsRef<Path>) -> Result<Run> {
        let folder = RunDir::open(dir.as_ref())?;
        Ok(Run { dir: folder.path.clone(), metrics: folder.read_metrics()?, recovery: Vec::new(), log: folder.read_log()?, evals: folder.read_evals()? })
    }
}

impl RunSpec {
    /// Trains into a new folder under `runs/`, quietly.
    pub fn run(&self) -> Result<Run> {
        self.run_with(&RunControl { quiet: true, ..RunControl::default() })
    }

    /// Trains as `control` says: into which folder, how far, with or without a progress bar.
    pub fn run_with(&self, control: &RunControl) -> Result<Run> {
        if self.data.cv.as_ref().is_some_and(|c| c.fold.is_none()) {
            return Err(Error::Invalid("this specification is a cross-validation (data.cv): run it with tunelab::cv::run (the CLI and scripts do)".into()));
        }
        if control.stop_after == Some(0) {
            return Err(Error::Invalid("stop after 0 steps: nothing would run (give at least 1)".into()));
        }
        if control.stop_after.is_some() && !keep(self).last() {
            return Err(Error::Invalid("stopping early needs the resumable checkpoint, but training.keep is not `resumable`".into()));
        }
        apply_threads(self)?;
        let prepared = self.prepare(device(self)?)?;
        let path = match &control.out {
            Some(p) => p.clone(),
            None => RunDir::fresh_path(control.runs_root.as_deref().unwrap_or(Path::new("runs")), &self.training.name)?,
        };
        let (dir, lock) = RunDir::create(&path, control.force)?;
        dir.write_spec(self)?;
        let recovery: Vec<String> = lock.note.iter().cloned().collect();
        execute(self, prepared, &dir, None, recovery, control, lock)
    }
}

/// How long `spec` would take on this machine: `timed` optimizer steps timed after one warm-up
/// step, and one evaluation of the dev set, extrapolated over the run's steps and evaluations.
/// Nothing is written. A cross-validation is timed on its first fold and counts its folds as runs.
pub fn estimate(spec: &RunSpec, timed: usize) -> Result<crate::spec::Estimate> {
    let mut spec = spec.clone();
    let runs = match spec.data.cv.as_mut() {
        Some(cv) if cv.fold.is_none() => {
            cv.fold = Some(0);
            cv.folds * cv.repeats
        }
        _ => 1,
    };
    apply_threads(&spec)?;
    let Prepared { mut model, train, dev, table, resolved, steps_per_epoch, .. } = spec.prepare(device(&spec)?)?;
    let tokenizer = model.tokenizer()?.clone();
    let setup = Setup::new(train.encode(&tokenizer)?, dev.encode(&tokenizer)?, &spec.recipe, resolved, &spec.training, steps_per_epoch);
    model.init_head(spec.training.seed);
    let total = setup.resolved.total_steps;
    let mut trainer = Trainer::new(&mut model, &setup, &table, &spec.recipe)?;
    let warm = 1.min(total);
    trainer.run(&setup, warm, &mut [])?;
    let before = (trainer.state.step, trainer.state.throughput.train_seconds);
    trainer.run(&setup, (warm + timed.max(1)).min(total), &mut [])?;
    let stepped = trainer.state.step - before.0;
    let step_seconds = if stepped > 0 { (trainer.state.throughput.train_seconds - before.1) / stepped as f64 } else { before.1 };
    let started = Instant::now();
    crate::precision::autocast(spec.training.precision, || crate::train::evaluate(trainer.model, &setup.dev, spec.training.eval_batch_size));
    let eval_seconds = started.elapsed().as_secs_f64();
    let swa_start = setup.resolved.swa_start.unwrap_or(usize::MAX);
    let evaluations = (1..=total).filter(|&s| setup.evaluation_due(s)).map(|s| if s > swa_start { 2 } else { 1 }).sum();
    Ok(crate::spec::Estimate { step_seconds, eval_seconds, steps: total, evaluations, runs })
}

/// Continues a stopped or killed run from its checkpoint (from its start if it wrote none).
/// A finished run (its `metrics.json` says so, whatever checkpoints it kept) is left exactly as
/// it is: nothing is written, not even the lock.
pub fn resume(dir: &Path, control: &RunControl) -> Result<Run> {
    let folder = RunDir::open(dir)?;
    if folder.read_spec().is_ok_and(|s| s.data.cv.is_some_and(|c| c.fold.is_none())) {
        return Err(Error::Invalid(format!(
            "{}: a cross-validation's folder, not a run's; continue its folds with `tunelab train {} --out {}`",
            dir.display(),
            folder.spec_path().display(),
            dir.display()
        )));
    }
    // A finished run is only read (notes of yours beside it are no obstacle).
    if let Some(run) = finished(&folder)? {
        return Ok(run);
    }
    // Resuming repairs and writes the folder: only a tunelab run's.
    if let Some(why) = RunDir::foreign_entry(dir)? {
        return Err(Error::Invalid(format!("{}: not a tunelab run folder (it {why}); resume changes only run folders, and nothing was changed", dir.display())));
    }
    let lock = Lock::acquire(dir)?;
    let spec = folder.read_spec()?;
    let trained = folder.read_log().is_ok_and(|log| !log.is_empty());
    let (state, mut recovery) = folder.recover()?;
    recovery.extend(lock.note.iter().cloned());
    if state.is_none() && trained {
        recovery.push(format!("{} holds no checkpoint (last/): the run starts over from step 0", dir.display()));
    }
    apply_threads(&spec)?;
    if let Some(state) = &state {
        let (was, is) = (serde_json::to_value(&state.spec).expect("serialises"), serde_json::to_value(&spec).expect("serialises"));
        // The device may change (another GPU, or the CPU): the run goes on, its last bits may differ.
        let changed: Vec<String> = differences(&was, &is).into_iter().filter(|k| k != "training.device").collect();
        if !changed.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: changed since the run started ({}); resuming would mix two specifications in one run: \
                 put it back, or start a new run from it with `tunelab train {}`",
                folder.spec_path().display(),
                changed.join(", "),
                folder.spec_path().display()
            )));
        }
        let threads = tch::get_num_threads() as usize;
        if state.threads != threads {
            return Err(Error::Invalid(format!(
                "{}: the run started with {} threads and this process has {threads}; results are bit-identical only with the same count: \
                 set training.threads in a new run, or resume where {} threads are available",
                dir.display(),
                state.threads,
                state.threads
            )));
        }
    }
    let prepared = spec.prepare(device(&spec)?)?;
    if let Some(state) = state.as_ref().filter(|s| s.total_steps != prepared.resolved.total_steps) {
        return Err(Error::Invalid(format!(
            "{}: the run was laid out over {} optimizer steps, but its data now gives {}: were the data files changed?",
            dir.display(),
            state.total_steps,
            prepared.resolved.total_steps
        )));
    }
    let control = RunControl { out: Some(dir.to_path_buf()), ..control.clone() };
    execute(&spec, prepared, &folder, state, recovery, &control, lock)
}

/// The run, if its folder holds a finished one (`metrics.json`, written last, says so).
fn finished(folder: &RunDir) -> Result<Option<Run>> {
    if !folder.metrics_path().is_file() {
        return Ok(None);
    }
    let metrics = folder.read_metrics()?;
    if !metrics.finished {
        return Ok(None);
    }
    let note = format!("{} had already finished: there is nothing to resume, and nothing was changed", folder.path.display());
    Ok(Some(Run { dir: folder.path.clone(), metrics, recovery: vec![note], log: folder.read_log()?, evals: folder.read_evals()? }))
}

/// What a run keeps: the setting, or `resumable`.
fn keep(spec: &RunSpec) -> Keep {
    spec.training.keep.unwrap_or(Keep::Resumable)
}

/// The device the specification asks for; with `tf32` on a GPU, fp32 matrix products may use
/// TF32 (libtorch reads the switch once, before its first CUDA matrix product).
fn device(spec: &RunSpec) -> Result<tch::Device> {
    let device = spec.training.device.device()?;
    if device.is_cuda() {
        // Set both ways (some containers set it to 1). libtorch reads it once per process, so the
        // first CUDA run of a process decides for all of them.
        // SAFETY: set before this process's first CUDA operation; tunelab reads no environment
        // variable concurrently.
        unsafe { std::env::set_var("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", if spec.training.tf32 { "1" } else { "0" }) };
    }
    Ok(device)
}

fn apply_threads(spec: &RunSpec) -> Result<()> {
    if let Some(n) = spec.training.threads {
        tch::set_num_threads(i32::try_from(n).map_err(|_| Error::Invalid(format!("training.threads: {n} is too many")))?);
    }
    Ok(())
}

/// Trains a prepared specification in its folder, from `state`'s checkpoint or from the start.
fn execute(spec: &RunSpec, prepared: Prepared, dir: &RunDir, state: Option<CheckpointState>, recovery: Vec<String>, control: &RunControl, _lock: Lock) -> Result<Run> {
    let started = Instant::now();
    let Prepared { mut model, train, dev, test, table, resolved, steps_per_epoch } = prepared;
    let tokenizer = model.tokenizer()?.clone();
    let setup = Setup::new(train.encode(&tokenizer)?, dev.encode(&tokenizer)?, &spec.recipe, resolved, &spec.training, steps_per_epoch);
    if state.is_none() {
        model.init_head(spec.training.seed);
        if let Some(reinit) = &spec.recipe.reinit {
            reinit.apply(&model, spec.training.seed)?;
        }
    }
    let mut trainer = Trainer::new(&mut model, &setup, &table, &spec.recipe)?;
    trainer.interrupt = control.interrupt.clone();
    if let Some(state) = &state {
        dir.load_checkpoint(state, trainer.model, &mut trainer.optimizer, trainer.average.as_mut())?;
        trainer.state = TrainState {
            step: state.step,
            best: state.best.clone(),
            throughput: state.throughput.clone(),
            waited: state.waited,
            stopped_early: state.stopped_early,
            evals: dir.read_evals()?,
            scaler: state.scaler.clone(),
        };
    }
    let mut writer = FolderWriter { dir, spec, threads: tch::get_num_threads() as usize, total: setup.resolved.total_steps, keep: keep(spec) };
    let stop_at = control.stop_after.unwrap_or(usize::MAX);
    let mut progress = progress_observer(control, &setup);
    let mut events = if control.tensorboard { Some(crate::tensorboard::EventWriter::new(&dir.path)?) } else { None };
    let per_step = setup.settings.batch_size * setup.settings.grad_accum;
    let mut hook = control.progress.clone().map(|h| crate::progress::HookObserver::new(h, &setup.resolved, per_step));
    let mut on_evaluation = control.on_evaluation.clone();
    let mut observers: Vec<&mut dyn Observer> = vec![&mut writer];
    if let Some(h) = on_evaluation.as_mut() {
        observers.push(h);
    }
    if let Some(h) = hook.as_mut() {
        observers.push(h);
    }
    if let Some(p) = progress.as_mut() {
        observers.push(p.as_mut());
    }
    if let Some(e) = events.as_mut() {
        observers.push(e);
    }
    trainer.run(&setup, stop_at, &mut observers)?;
    drop(observers);
    drop(hook);
    let mut metrics = summarise(&trainer.state, &setup, trainer.model, started);
    // A fold of a cross-validation leaves the test file to the cross-validation (its folds' mean).
    if let Some(test) = test.filter(|_| metrics.finished && spec.data.cv.is_none()) {
        let (best, swa) = score_test(spec, dir, &test)?;
        if let (Some(events), Some(best)) = (events.as_mut(), &best) {
            events.add_test(metrics.steps, best, swa.as_ref())?;
        }
        metrics.test = best;
        metrics.swa_test = swa;
        metrics.wall_seconds = started.elapsed().as_secs_f64();
    }
    dir.write_metrics(&metrics)?;
    Ok(Run { dir: dir.path.clone(), metrics, recovery, log: dir.read_log()?, evals: trainer.state.evals.clone() })
}

/// The test rows scored by the run's selected weights (`best/`) and its SWA weights (`swa/`), as
/// far as the run kept them.
fn score_test(spec: &RunSpec, dir: &RunDir, test: &crate::data::Dataset) -> Result<(Option<crate::metrics::Metrics>, Option<crate::metrics::Metrics>)> {
    let score = |name: &str| -> Result<Option<crate::metrics::Metrics>> {
        let path = dir.path.join(name);
        if !path.is_dir() {
            return Ok(None);
        }
        let model = Model::load(&path, None, spec.training.device.device()?)?;
        let encoded = test.encode(model.tokenizer()?)?;
        Ok(Some(crate::precision::autocast(spec.training.precision, || crate::train::evaluate(&model, &encoded, spec.training.eval_batch_size))))
    };
    Ok((score("best")?, if spec.recipe.swa.is_some() { score("swa")? } else { None }))
}

/// `metrics.json` from the loop's final state.
fn summarise(state: &TrainState, setup: &Setup, model: &Model, started: Instant) -> RunMetrics {
    let at_end = |w: Weights| state.evals.iter().rev().find(|e| e.weights == w && e.step == state.step).map(|e| e.metrics.clone());
    let t = &state.throughput;
    let per_second = |n: usize| if t.train_seconds > 0.0 { n as f64 / t.train_seconds } else { 0.0 };
    RunMetrics {
        last: at_end(Weights::Model),
        best: state.best.clone(),
        swa: at_end(Weights::Swa),
        steps: state.step,
        total_steps: setup.resolved.total_steps,
        finished: state.step == setup.resolved.total_steps || state.stopped_early.is_some(),
        stopped_early: state.stopped_early,
        train_examples: setup.train.len(),
        dev_examples: setup.dev.len(),
        wall_seconds: started.elapsed().as_secs_f64(),
        train_samples_per_second: per_second(t.samples),
        train_tokens_per_second: per_second(t.tokens),
        lr_seconds: t.lr_seconds,
        swa_seconds: t.swa_seconds,
        step_seconds: t.train_seconds,
        device: format!("{:?}", model.device()),
        precision: setup.settings.precision,
        skipped_steps: state.scaler.as_ref().map_or(0, |s| s.skipped),
        warnings: setup.resolved.warnings.clone(),
        test: None,
        swa_test: None,
    }
}

/// The observer that writes the run folder: the logs, `best/`, `last/` and `swa/`.
struct FolderWriter<'a> {
    dir: &'a RunDir,
    spec: &'a RunSpec,
    threads: usize,
    total: usize,
    keep: Keep,
}

impl Observer for FolderWriter<'_> {
    fn step(&mut self, log: &StepLog) -> Result<()> {
        self.dir.append_step(log)
    }
    fn evaluated(&mut self, record: &EvalRecord) -> Result<()> {
        self.dir.append_eval(record)
    }
    fn improved(&mut self, _best: &Best, model: &Model) -> Result<()> {
        self.dir.save_best(model, &self.spec.data.columns)
    }
    fn checkpoint(&mut self, c: &Checkpoint<'_>) -> Result<()> {
        if !self.keep.last() {
            return Ok(());
        }
        let state = CheckpointState {
            step: c.state.step,
            total_steps: self.total,
            adam_steps: c.optimizer.state().steps,
            best: c.state.best.clone(),
            swa_averaged: c.average.map_or(0, |a| a.n_averaged),
            throughput: c.state.throughput.clone(),
            waited: c.state.waited,
            stopped_early: c.state.stopped_early,
            threads: self.threads,
            spec: self.spec.clone(),
            scaler: c.state.scaler.clone(),
        };
        self.dir.save_checkpoint(c.model, c.optimizer, c.average, &state)
    }
    fn averaged(&mut self, model: &Model) -> Result<()> {
        if !self.keep.swa() {
            return Ok(());
        }
        self.dir.save_swa(model, &self.spec.data.columns)
    }
}

/// The progress a run shows: none when quiet; a bar on a terminal (the `cli` feature); otherwise
/// a plain line to stderr every `control.progress_every` seconds (30 by default).
fn progress_observer(control: &RunControl, setup: &Setup) -> Option<Box<dyn Observer>> {
    if control.quiet {
        return None;
    }
    #[cfg(feature = "cli")]
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) && control.progress_every.is_none() {
        return Some(Box::new(crate::progress::ProgressBar::new(&setup.resolved)));
    }
    let every = std::time::Duration::from_secs_f64(control.progress_every.unwrap_or(30.0).max(0.0));
    let per_step = setup.settings.batch_size * setup.settings.grad_accum;
    Some(Box::new(crate::progress::ProgressLines::new(std::io::stderr(), every, &setup.resolved, per_step)))
}

/// Scores a saved model folder (one written by a run: `best/`, `swa/`) on the dev file of `data`.
pub fn evaluate_folder(model_dir: &Path, data: &crate::spec::DataSpec) -> Result<crate::metrics::Metrics> {
    let model = Model::load(model_dir, None, tch::Device::cuda_if_available())?;
    let (_, dev) = data.load()?;
    let encoded = dev.encode(model.tokenizer()?)?;
    Ok(crate::train::evaluate(&model, &encoded, 128))
}

/// A table of runs side by side: steps, best dev score, the averaged weights' score, speed.
pub fn comparison(runs: &[Run]) -> String {
    let mut out = format!("{:<48} {:>8} {:>16} {:>10} {:>8}\n", "run", "steps", "best", "SWA", "ex/s");
    for run in runs {
        let m = &run.metrics;
        let best = m.best.as_ref();
        let swa = best.and_then(|b| m.swa.as_ref().and_then(|s| s.get(&b.metric)));
        out.push_str(&format!(
            "{:<48} {:>8} {:>16} {:>10} {:>8.1}\n",
            run.dir.display(),
            m.steps,
            best.map(|b| format!("{} {:.4}", b.metric, b.value)).unwrap_or_else(|| "-".into()),
            swa.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into()),
            m.train_samples_per_second
        ));
    }
    out
}

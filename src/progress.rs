//! Progress, as observers of the training loop: a terminal gets a bar ([`ProgressBar`], the `cli`
//! feature); anything else — a log file, Slurm, nohup, a notebook's subprocess — gets a plain line
//! every N seconds ([`ProgressLines`]): step/total, examples per second, loss, the last dev score,
//! elapsed time and the estimated time to the end.
use std::io::Write;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::recipe::Resolved;
use crate::run_dir::{EvalRecord, StepLog, Weights};
use crate::train::{Observer, TrainState};

/// Steps done, speed, the loss, the head's LR and the last dev score; warnings and each
/// evaluation printed above the bar.
#[cfg(feature = "cli")]
pub struct ProgressBar {
    bar: indicatif::ProgressBar,
    metric: &'static str,
    last_dev: Option<f64>,
}

#[cfg(feature = "cli")]
impl ProgressBar {
    pub fn new(resolved: &Resolved) -> Self {
        let bar = indicatif::ProgressBar::new(resolved.total_steps as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} steps {per_sec} {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        ProgressBar { bar, metric: resolved.select_by.name(), last_dev: None }
    }
}

#[cfg(feature = "cli")]
impl Observer for ProgressBar {
    fn started(&mut self, resolved: &Resolved, state: &TrainState) -> Result<()> {
        self.bar.set_position(state.step as u64);
        for w in &resolved.warnings {
            self.bar.println(format!("warning: {w}"));
        }
        Ok(())
    }

    fn step(&mut self, log: &StepLog) -> Result<()> {
        let head_lr = log.lr.values().last().copied().unwrap_or(0.0);
        let dev = self.last_dev.map(|v| format!(" dev {} {v:.4}", self.metric)).unwrap_or_default();
        self.bar.set_message(format!("loss {:.4} head lr {head_lr:.2e}{dev}", log.loss));
        self.bar.set_position(log.step as u64 + 1);
        Ok(())
    }

    fn evaluated(&mut self, record: &EvalRecord) -> Result<()> {
        let value = record.metrics.get(self.metric).copied().unwrap_or(f64::NAN);
        let which = match record.weights {
            Weights::Model => {
                self.last_dev = Some(value);
                ""
            }
            Weights::Swa => " (averaged weights)",
        };
        self.bar.println(format!("step {}: dev {} {value:.4}{which}", record.step, self.metric));
        Ok(())
    }
}

#[cfg(feature = "cli")]
impl Drop for ProgressBar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// Where a run stands, as the progress lines and a notebook's live display show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Progress {
    /// Optimizer steps done, of `total`.
    pub step: usize,
    pub total: usize,
    pub loss: f64,
    /// Each group's LR at the last step.
    pub lrs: indexmap::IndexMap<String, f64>,
    /// The selection metric and its last dev value.
    pub metric: String,
    pub last_dev: Option<f64>,
    pub examples_per_second: f64,
    pub elapsed_seconds: f64,
    /// Estimated seconds to the end (NaN before a step was timed).
    pub eta_seconds: f64,
    /// The run is over (its last line).
    pub done: bool,
}

impl std::fmt::Display for Progress {
    /// `step 40/250 (16%), 31.2 examples/s, loss 1.2345, dev rmse 1.4210, elapsed 1m 20s, ETA 7m 00s`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dev = self.last_dev.map(|v| format!(", dev {} {v:.4}", self.metric)).unwrap_or_default();
        let percent = 100.0 * self.step as f64 / self.total.max(1) as f64;
        let eta = if self.eta_seconds.is_finite() { duration(self.eta_seconds) } else { "unknown".into() };
        write!(
            f,
            "step {}/{} ({percent:.0}%), {:.1} examples/s, loss {:.4}{dev}, elapsed {}, ETA {eta}",
            self.step,
            self.total,
            self.examples_per_second,
            self.loss,
            duration(self.elapsed_seconds)
        )
    }
}

/// Follows the loop's events and says where the run stands ([`Progress`]).
struct Tracker {
    total: usize,
    examples_per_step: usize,
    metric: &'static str,
    last_dev: Option<f64>,
    /// When this process started stepping, and from which step (a resume starts mid-way).
    start: Option<(Instant, usize)>,
    last: Option<StepLog>,
}

impl Tracker {
    fn new(resolved: &Resolved, examples_per_step: usize) -> Self {
        Tracker { total: resolved.total_steps, examples_per_step, metric: resolved.select_by.name(), last_dev: None, start: None, last: None }
    }

    fn progress(&self, log: &StepLog, now: Instant, done: bool) -> Progress {
        let step = log.step + 1;
        let (started, from) = self.start.unwrap_or((now, 0));
        let elapsed = now.duration_since(started).as_secs_f64();
        let steps = step.saturating_sub(from);
        let per_step = if steps > 0 { elapsed / steps as f64 } else { f64::NAN };
        Progress {
            step,
            total: self.total,
            loss: log.loss,
            lrs: log.lr.clone(),
            metric: self.metric.to_string(),
            last_dev: self.last_dev,
            examples_per_second: if elapsed > 0.0 { (steps * self.examples_per_step) as f64 / elapsed } else { 0.0 },
            elapsed_seconds: elapsed,
            eta_seconds: per_step * self.total.saturating_sub(step) as f64,
            done,
        }
    }

    fn started(&mut self, state: &TrainState) {
        self.start = Some((Instant::now(), state.step));
    }

    fn evaluated(&mut self, record: &EvalRecord) {
        if record.weights == Weights::Model {
            self.last_dev = record.metrics.get(self.metric).copied();
        }
    }
}

/// A line to a writer (stderr) every `every`, and one at the end: what a run started in the
/// background shows in its log.
pub struct ProgressLines<W: Write> {
    out: W,
    every: Duration,
    tracker: Tracker,
    last_line: Option<Instant>,
    /// The step and dev score of the line written last.
    written: Option<(usize, Option<f64>)>,
}

impl<W: Write> ProgressLines<W> {
    /// Lines every `every` to `out`, for a run of `resolved` whose optimizer steps take
    /// `examples_per_step` examples (batch size × accumulation).
    pub fn new(out: W, every: Duration, resolved: &Resolved, examples_per_step: usize) -> Self {
        ProgressLines { out, every, tracker: Tracker::new(resolved, examples_per_step), last_line: None, written: None }
    }

    fn write(&mut self, log: &StepLog, now: Instant) {
        let line = self.tracker.progress(log, now, false).to_string();
        // Progress is best effort: a closed stderr does not stop the run.
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
        self.last_line = Some(now);
        self.written = Some((log.step, self.tracker.last_dev));
    }
}

pub use crate::human::duration;

impl<W: Write> Observer for ProgressLines<W> {
    fn started(&mut self, resolved: &Resolved, state: &TrainState) -> Result<()> {
        self.tracker.started(state);
        self.last_line = Some(Instant::now());
        for w in &resolved.warnings {
            let _ = writeln!(self.out, "warning: {w}");
        }
        let _ = writeln!(self.out, "training: {} optimizer steps from step {}; a progress line every {}", self.tracker.total, state.step, duration(self.every.as_secs_f64()));
        Ok(())
    }

    fn step(&mut self, log: &StepLog) -> Result<()> {
        let now = Instant::now();
        if self.last_line.is_none_or(|t| now.duration_since(t) >= self.every) {
            self.write(log, now);
        }
        self.tracker.last = Some(log.clone());
        Ok(())
    }

    fn evaluated(&mut self, record: &EvalRecord) -> Result<()> {
        self.tracker.evaluated(record);
        Ok(())
    }
}

impl<W: Write> Drop for ProgressLines<W> {
    fn drop(&mut self) {
        // The last step, unless its line was just written (a dev score since then is news).
        if let Some(log) = self.tracker.last.take()
            && self.written != Some((log.step, self.tracker.last_dev))
        {
            self.write(&log, Instant::now());
        }
    }
}

/// A function that receives the run's [`Progress`] (a notebook's live display), given to a run
/// through [`crate::RunControl::progress`].
#[derive(Clone)]
pub struct ProgressHook(pub std::sync::Arc<dyn Fn(&Progress) + Send + Sync>);

impl std::fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressHook")
    }
}

/// Calls a [`ProgressHook`] after every step and every evaluation, and once at the end.
pub struct HookObserver {
    hook: ProgressHook,
    tracker: Tracker,
}

impl HookObserver {
    pub fn new(hook: ProgressHook, resolved: &Resolved, examples_per_step: usize) -> Self {
        HookObserver { hook, tracker: Tracker::new(resolved, examples_per_step) }
    }
}

impl Observer for HookObserver {
    fn started(&mut self, _resolved: &Resolved, state: &TrainState) -> Result<()> {
        self.tracker.started(state);
        Ok(())
    }

    fn step(&mut self, log: &StepLog) -> Result<()> {
        (self.hook.0)(&self.tracker.progress(log, Instant::now(), false));
        self.tracker.last = Some(log.clone());
        Ok(())
    }

    fn evaluated(&mut self, record: &EvalRecord) -> Result<()> {
        self.tracker.evaluated(record);
        if let Some(log) = &self.tracker.last {
            (self.hook.0)(&self.tracker.progress(log, Instant::now(), false));
        }
        Ok(())
    }
}

impl Drop for HookObserver {
    fn drop(&mut self) {
        if let Some(log) = self.tracker.last.take() {
            (self.hook.0)(&self.tracker.progress(&log, Instant::now(), true));
        }
    }
}

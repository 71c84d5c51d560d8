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

/// A line to a writer (stderr) every `every`, and one at the end: what a run started in the
/// background shows in its log.
///
/// `step 40/250 (16%), 31.2 examples/s, loss 1.2345, dev rmse 1.4210, elapsed 1m 20s, ETA 7m 0s`
pub struct ProgressLines<W: Write> {
    out: W,
    every: Duration,
    total: usize,
    examples_per_step: usize,
    metric: &'static str,
    last_dev: Option<f64>,
    /// When this process started stepping, and from which step (a resume starts mid-way).
    start: Option<(Instant, usize)>,
    last_line: Option<Instant>,
    last: Option<StepLog>,
}

impl<W: Write> ProgressLines<W> {
    /// Lines every `every` to `out`, for a run of `resolved` whose optimizer steps take
    /// `examples_per_step` examples (batch size × accumulation).
    pub fn new(out: W, every: Duration, resolved: &Resolved, examples_per_step: usize) -> Self {
        ProgressLines {
            out,
            every,
            total: resolved.total_steps,
            examples_per_step,
            metric: resolved.select_by.name(),
            last_dev: None,
            start: None,
            last_line: None,
            last: None,
        }
    }

    /// The line for the state after `log` (`now`: the time it describes).
    pub fn line(&self, log: &StepLog, now: Instant) -> String {
        let done = log.step + 1;
        let (started, from) = self.start.unwrap_or((now, 0));
        let elapsed = now.duration_since(started).as_secs_f64();
        let steps = done.saturating_sub(from);
        let per_step = if steps > 0 { elapsed / steps as f64 } else { f64::NAN };
        let speed = if elapsed > 0.0 { (steps * self.examples_per_step) as f64 / elapsed } else { 0.0 };
        let eta = per_step * self.total.saturating_sub(done) as f64;
        let dev = self.last_dev.map(|v| format!(", dev {} {v:.4}", self.metric)).unwrap_or_default();
        let percent = 100.0 * done as f64 / self.total.max(1) as f64;
        format!(
            "step {done}/{} ({percent:.0}%), {speed:.1} examples/s, loss {:.4}{dev}, elapsed {}, ETA {}",
            self.total,
            log.loss,
            duration(elapsed),
            if eta.is_finite() { duration(eta) } else { "unknown".into() }
        )
    }

    fn write(&mut self, log: &StepLog, now: Instant) {
        let line = self.line(log, now);
        // Progress is best effort: a closed stderr does not stop the run.
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
        self.last_line = Some(now);
    }
}

/// `1h 02m`, `7m 05s`, `12s`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m {sec:02}s"),
        (h, m, _) => format!("{h}h {m:02}m"),
    }
}

impl<W: Write> Observer for ProgressLines<W> {
    fn started(&mut self, resolved: &Resolved, state: &TrainState) -> Result<()> {
        self.start = Some((Instant::now(), state.step));
        self.last_line = self.start.map(|s| s.0);
        for w in &resolved.warnings {
            let _ = writeln!(self.out, "warning: {w}");
        }
        let _ = writeln!(self.out, "training: {} optimizer steps from step {}; a progress line every {}", self.total, state.step, duration(self.every.as_secs_f64()));
        Ok(())
    }

    fn step(&mut self, log: &StepLog) -> Result<()> {
        let now = Instant::now();
        if self.last_line.is_none_or(|t| now.duration_since(t) >= self.every) {
            self.write(log, now);
        }
        self.last = Some(log.clone());
        Ok(())
    }

    fn evaluated(&mut self, record: &EvalRecord) -> Result<()> {
        if record.weights == Weights::Model {
            self.last_dev = record.metrics.get(self.metric).copied();
        }
        Ok(())
    }
}

impl<W: Write> Drop for ProgressLines<W> {
    fn drop(&mut self) {
        // The last step, unless its line was just written.
        if let Some(log) = self.last.take() {
            self.write(&log, Instant::now());
        }
    }
}

//! The terminal progress bar, an observer of the training loop (the `cli` feature).
use crate::error::Result;
use crate::recipe::Resolved;
use crate::run_dir::{EvalRecord, StepLog, Weights};
use crate::train::{Observer, TrainState};

/// Steps done, speed, the loss, the head's LR and the last dev score; warnings and each
/// evaluation printed above the bar.
pub struct ProgressBar {
    bar: indicatif::ProgressBar,
    metric: &'static str,
    last_dev: Option<f64>,
}

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

impl Drop for ProgressBar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

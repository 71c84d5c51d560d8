//! Asynchronous successive halving: Jamieson & Talwalkar 2016 (*Non-stochastic Best Arm
//! Identification and Hyperparameter Optimization*), in the asynchronous form of Li et al. 2020
//! (*A System for Massively Parallel Hyperparameter Tuning*, ASHA) that Optuna's
//! `SuccessiveHalvingPruner` implements — decision for decision (tests/pruner_golden.rs replays
//! Optuna's own decisions on known sequences of scores).
//!
//! Rung `k` sits at step `min_resource · η^(min_early_stopping_rate + k)`. A trial reporting a
//! score at or past its next rung's step records the score there, and continues only if it is
//! among the top `1/η` of every score recorded at that rung so far (the best one while fewer
//! than `η` are); it may climb several rungs in one report. A NaN score past a rung stops the
//! trial; with `bootstrap_count = b`, a rung holding `b` scores or fewer stops every trial that
//! reaches it. `min_resource: None` ("auto") waits for the first completed trial and then
//! takes `max(its last step / 100, 1)`, as Optuna does.
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The pruner's settings (Optuna's names and defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SuccessiveHalving {
    /// The first rung's step (`None`: estimated from the first completed trial).
    pub min_resource: Option<usize>,
    /// η: each rung keeps the top 1/η.
    pub reduction_factor: usize,
    pub min_early_stopping_rate: usize,
    pub bootstrap_count: usize,
}

impl Default for SuccessiveHalving {
    fn default() -> Self {
        SuccessiveHalving { min_resource: None, reduction_factor: 4, min_early_stopping_rate: 0, bootstrap_count: 0 }
    }
}

/// What the search knows at the rungs: every score recorded at each rung, the last step of
/// every completed trial, and the first rung's step once "auto" has fixed it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rungs {
    pub values: Vec<Vec<f64>>,
    pub completed_last_steps: Vec<usize>,
    pub min_resource: Option<usize>,
}

impl Rungs {
    /// A trial ran to its end; its last reported step counts for the "auto" first rung.
    pub fn completed(&mut self, last_step: usize) {
        self.completed_last_steps.push(last_step);
    }
}

impl SuccessiveHalving {
    /// Checks the settings (as Optuna does).
    pub fn validate(&self) -> Result<()> {
        if self.min_resource == Some(0) {
            return Err(Error::Invalid("pruner.min_resource must be at least 1 (or absent: estimated)".into()));
        }
        if self.reduction_factor < 2 {
            return Err(Error::Invalid(format!("pruner.reduction_factor must be at least 2, got {}", self.reduction_factor)));
        }
        if self.bootstrap_count > 0 && self.min_resource.is_none() {
            return Err(Error::Invalid("pruner.bootstrap_count needs pruner.min_resource".into()));
        }
        Ok(())
    }

    /// Whether a trial that reported `value` at `step` stops there. `rung` is the trial's next
    /// rung (0 at its start), advanced as it climbs; `rungs` records its scores.
    pub fn should_prune(&self, rungs: &mut Rungs, rung: &mut usize, step: usize, value: f64, minimize: bool) -> bool {
        loop {
            let min_resource = match self.min_resource.or(rungs.min_resource) {
                Some(m) => m,
                None => match rungs.completed_last_steps.iter().max() {
                    Some(&last) => *rungs.min_resource.insert(auto_min_resource(last)),
                    None => return false,
                },
            };
            let exponent = u32::try_from(self.min_early_stopping_rate + *rung).unwrap_or(u32::MAX);
            let promotion = self.reduction_factor.checked_pow(exponent).and_then(|f| f.checked_mul(min_resource)).unwrap_or(usize::MAX);
            if step < promotion {
                return false;
            }
            if value.is_nan() {
                return true;
            }
            if rungs.values.len() <= *rung {
                rungs.values.resize(*rung + 1, Vec::new());
            }
            rungs.values[*rung].push(value);
            let competing = &rungs.values[*rung];
            if competing.len() <= self.bootstrap_count {
                return true;
            }
            if !promotable(value, competing, self.reduction_factor, minimize) {
                return true;
            }
            *rung += 1;
        }
    }
}

/// Optuna's "auto" first rung: a hundredth of a completed trial's last step (at least 1).
pub fn auto_min_resource(last_step: usize) -> usize {
    (last_step / 100).max(1)
}

/// Whether `value` is among the top `1/η` of `competing` (the best one while fewer than η).
fn promotable(value: f64, competing: &[f64], reduction_factor: usize, minimize: bool) -> bool {
    let index = (competing.len() / reduction_factor).saturating_sub(1);
    let mut sorted = competing.to_vec();
    sorted.sort_by(f64::total_cmp);
    if minimize { value <= sorted[index] } else { value >= sorted[sorted.len() - 1 - index] }
}

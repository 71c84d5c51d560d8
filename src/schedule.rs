//! Learning-rate schedules as pure functions of the optimizer step.
//!
//! A [`Schedule`] maps an optimizer step (0 for the first update) to a multiplier; the learning
//! rate of parameter group `g` at step `k` is `base_lr_g × factor(k)`, the convention of
//! transformers' `optimization.py` and PyTorch's `LambdaLR`. There is no hidden state: the LR at
//! step 1000 is computed, not replayed, so plotting a schedule is `(0..n).map(|k| s.factor(k))`
//! and a checkpoint only needs to store the step.
//!
//! Warm-up ([`Schedule::Warmup`]) wraps any schedule, and [`Schedule::Phases`] switches from one
//! schedule to another at given steps (the SWA learning-rate phase uses it). Each schedule
//! counts steps from its own start, so the decay after a warm-up of `W` steps sees step `k - W`.
//!
//! ```
//! use tunelab::schedule::Schedule;
//! // transformers' get_linear_schedule_with_warmup(num_warmup_steps=50, num_training_steps=500)
//! let s = Schedule::linear_with_warmup(50, 500);
//! assert_eq!(s.factor(0), 0.0);
//! assert_eq!(s.factor(25), 0.5);
//! assert_eq!(s.factor(50), 1.0);
//! assert_eq!(s.factor(275), 0.5);
//! assert_eq!(s.factor(500), 0.0);
//! ```
use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A number of steps or a fraction of the run, as data files and scripts write it: a bare
/// integer is steps, a non-integer a fraction, or a map `{"steps": 50}` / `{"fraction": 0.1}`.
/// Warm-up lengths and the SWA start are read through it.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum StepsOrFraction {
    Steps(u64),
    Fraction(f64),
    Map(StepsOrFractionMap),
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum StepsOrFractionMap {
    Steps(u64),
    Fraction(f64),
    Step(u64),
}

impl StepsOrFraction {
    pub(crate) fn split(self) -> std::result::Result<(Option<usize>, Option<f64>), String> {
        match self {
            StepsOrFraction::Steps(s) | StepsOrFraction::Map(StepsOrFractionMap::Steps(s) | StepsOrFractionMap::Step(s)) => {
                Ok((Some(s as usize), None))
            }
            StepsOrFraction::Fraction(f) | StepsOrFraction::Map(StepsOrFractionMap::Fraction(f)) => {
                if (0.0..=1.0).contains(&f) {
                    Ok((None, Some(f)))
                } else {
                    Err(format!("{f} is neither a whole number of steps nor a fraction of the run in [0, 1]"))
                }
            }
        }
    }
}

/// The shape of a decay from 1 to 0 over a progress `t` in `[0, 1]` (used by warm-up–stable–decay).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecayShape {
    /// `1 - t`.
    Linear,
    /// `(1 + cos(2π · cycles · t)) / 2`.
    Cosine,
    /// `1 - sqrt(t)`.
    #[serde(rename = "1-sqrt")]
    OneMinusSqrt,
}

/// How the SWA phase moves from the learning rate it starts at to the SWA learning rate
/// (`anneal_strategy` of PyTorch's `SWALR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnnealShape {
    /// `alpha(t) = (1 - cos(π t)) / 2`.
    #[default]
    Cosine,
    /// `alpha(t) = t`.
    Linear,
}

impl AnnealShape {
    fn alpha(self, t: f64) -> f64 {
        match self {
            AnnealShape::Cosine => (1.0 - (PI * t).cos()) / 2.0,
            AnnealShape::Linear => t,
        }
    }
}

/// A learning-rate multiplier as a pure function of the optimizer step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// Always 1.
    Constant,
    /// From 1 at step 0 down to 0 at `steps`, then 0.
    Linear { steps: usize },
    /// Half a cosine wave per cycle over `steps`, floored at `min_ratio`
    /// (`get_cosine_schedule_with_warmup`; with `min_ratio`, `get_cosine_with_min_lr_schedule_with_warmup`).
    Cosine { steps: usize, cycles: f64, min_ratio: f64 },
    /// Cosine decays restarting from 1 `cycles` times over `steps`, then 0
    /// (`get_cosine_with_hard_restarts_schedule_with_warmup`).
    CosineRestarts { steps: usize, cycles: f64 },
    /// `(1 - end_ratio) · (1 - k/steps)^power + end_ratio`, then `end_ratio`
    /// (`get_polynomial_decay_schedule_with_warmup` with `lr_end = end_ratio · lr`).
    Polynomial { steps: usize, power: f64, end_ratio: f64 },
    /// `1 / sqrt((k + timescale) / timescale)` (`get_inverse_sqrt_schedule`).
    InverseSqrt { timescale: usize },
    /// Warm-up–stable–decay without its warm-up: 1 for `stable` steps, a decay of the given
    /// shape to `min_ratio` over `decay` steps, then `min_ratio` (`get_wsd_schedule`).
    StableDecay { stable: usize, decay: usize, shape: DecayShape, cycles: f64, min_ratio: f64 },
    /// Rises linearly from `start_ratio` (usually 0) to 1 over `steps`, then follows `then`
    /// (counting its steps from the end of the warm-up).
    Warmup { steps: usize, start_ratio: f64, then: Box<Schedule> },
    /// From `from` to `to` over `steps` with the given shape, then `to`: the SWA phase, equal to
    /// PyTorch's `SWALR` (step 0 is the step at which `SWALR` was created).
    Anneal { from: f64, to: f64, steps: usize, shape: AnnealShape },
    /// Switches schedules: each phase starts at its step (the first at 0) and counts from there.
    Phases(Vec<Phase>),
}

/// One part of [`Schedule::Phases`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub start: usize,
    pub schedule: Schedule,
}

impl Schedule {
    /// Linear warm-up over `warmup` steps, then linear decay to 0 at `total` (transformers' `"linear"`).
    pub fn linear_with_warmup(warmup: usize, total: usize) -> Self {
        Schedule::Linear { steps: total.saturating_sub(warmup) }.with_warmup(warmup)
    }

    /// Wraps `self` in a linear warm-up from 0 over `steps` (no-op for 0 steps).
    pub fn with_warmup(self, steps: usize) -> Self {
        if steps == 0 {
            self
        } else {
            Schedule::Warmup { steps, start_ratio: 0.0, then: Box::new(self) }
        }
    }

    /// The multiplier at optimizer step `step` (0 for the first update).
    pub fn factor(&self, step: usize) -> f64 {
        let k = step as f64;
        let progress = |steps: usize| k / (steps.max(1) as f64);
        match self {
            Schedule::Constant => 1.0,
            Schedule::Linear { steps } => ((*steps as f64 - k) / (*steps).max(1) as f64).max(0.0),
            Schedule::Cosine { steps, cycles, min_ratio } => {
                let f = 0.5 * (1.0 + (PI * cycles * 2.0 * progress(*steps)).cos());
                (f * (1.0 - min_ratio) + min_ratio).max(0.0)
            }
            Schedule::CosineRestarts { steps, cycles } => {
                let p = progress(*steps);
                if p >= 1.0 { 0.0 } else { (0.5 * (1.0 + (PI * ((cycles * p) % 1.0)).cos())).max(0.0) }
            }
            Schedule::Polynomial { steps, power, end_ratio } => {
                if step > *steps {
                    *end_ratio
                } else {
                    let remaining = 1.0 - progress(*steps);
                    (1.0 - end_ratio) * remaining.powf(*power) + end_ratio
                }
            }
            Schedule::InverseSqrt { timescale } => {
                let t = *timescale as f64;
                1.0 / ((k + t) / t).sqrt()
            }
            Schedule::StableDecay { stable, decay, shape, cycles, min_ratio } => {
                if step < *stable {
                    1.0
                } else if step < stable + decay {
                    let p = (step - stable) as f64 / (*decay).max(1) as f64;
                    let f = match shape {
                        DecayShape::Linear => 1.0 - p,
                        DecayShape::Cosine => 0.5 * (1.0 + (PI * cycles * 2.0 * p).cos()),
                        DecayShape::OneMinusSqrt => 1.0 - p.sqrt(),
                    };
                    (f * (1.0 - min_ratio) + min_ratio).max(0.0)
                } else {
                    *min_ratio
                }
            }
            Schedule::Warmup { steps, start_ratio, then } => {
                if step < *steps {
                    start_ratio + (1.0 - start_ratio) * progress(*steps)
                } else {
                    then.factor(step - steps)
                }
            }
            Schedule::Anneal { from, to, steps, shape } => {
                let k = if *steps == 0 { step.max(1) } else { step };
                let t = (k as f64 / (*steps).max(1) as f64).clamp(0.0, 1.0);
                let alpha = shape.alpha(t);
                to * alpha + from * (1.0 - alpha)
            }
            Schedule::Phases(phases) => match phases.iter().rev().find(|p| p.start <= step) {
                Some(p) => p.schedule.factor(step - p.start),
                None => 0.0,
            },
        }
    }

    /// The multipliers for steps `0..steps`.
    pub fn factors(&self, steps: usize) -> Vec<f64> {
        (0..steps).map(|k| self.factor(k)).collect()
    }

    /// Checks the parameters: ratios in range, phases in order, finite numbers.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::Invalid(format!("schedule: {what}")));
        match self {
            Schedule::Constant | Schedule::Linear { .. } => Ok(()),
            Schedule::Cosine { cycles, min_ratio, .. } => {
                if !(*cycles > 0.0 && cycles.is_finite()) {
                    return bad(format!("cosine cycles must be positive, got {cycles}"));
                }
                ratio("cosine min_ratio", *min_ratio)
            }
            Schedule::CosineRestarts { cycles, .. } => {
                if !(*cycles > 0.0 && cycles.is_finite()) {
                    return bad(format!("cosine restarts: cycles must be positive, got {cycles}"));
                }
                Ok(())
            }
            Schedule::Polynomial { power, end_ratio, .. } => {
                if !(*power > 0.0 && power.is_finite()) {
                    return bad(format!("polynomial power must be positive, got {power}"));
                }
                if !(0.0..1.0).contains(end_ratio) {
                    return bad(format!("polynomial end_ratio must be in [0, 1), got {end_ratio}"));
                }
                Ok(())
            }
            Schedule::InverseSqrt { timescale } => {
                if *timescale == 0 {
                    return bad("inverse_sqrt timescale must be at least 1".into());
                }
                Ok(())
            }
            Schedule::StableDecay { min_ratio, .. } => ratio("stable_decay min_ratio", *min_ratio),
            Schedule::Warmup { start_ratio, then, .. } => {
                ratio("warm-up start_ratio", *start_ratio)?;
                then.validate()
            }
            Schedule::Anneal { from, to, .. } => {
                if !(from.is_finite() && to.is_finite() && *from >= 0.0 && *to >= 0.0) {
                    return bad(format!("anneal from {from} to {to}: both must be finite and non-negative"));
                }
                Ok(())
            }
            Schedule::Phases(phases) => {
                if phases.first().map(|p| p.start) != Some(0) {
                    return bad("the first phase must start at step 0".into());
                }
                if phases.windows(2).any(|w| w[0].start >= w[1].start) {
                    return bad("phases must start at increasing steps".into());
                }
                phases.iter().try_for_each(|p| p.schedule.validate())
            }
        }
    }
}

fn ratio(what: &str, value: f64) -> Result<()> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(Error::Invalid(format!("schedule: {what} must be in [0, 1], got {value}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_rises_from_zero_and_hands_over() {
        let s = Schedule::Constant.with_warmup(4);
        assert_eq!(s.factors(6), [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]);
    }

    #[test]
    fn phases_count_from_their_start() {
        let s = Schedule::Phases(vec![
            Phase { start: 0, schedule: Schedule::Linear { steps: 10 } },
            Phase { start: 5, schedule: Schedule::Anneal { from: 0.5, to: 0.1, steps: 2, shape: AnnealShape::Linear } },
        ]);
        let f = s.factors(9);
        assert_eq!(&f[..5], &[1.0, 0.9, 0.8, 0.7, 0.6]);
        assert!((f[5] - 0.5).abs() < 1e-15 && (f[6] - 0.3).abs() < 1e-15 && (f[7] - 0.1).abs() < 1e-15);
        assert_eq!(f[8], 0.1);
    }

    #[test]
    fn anneal_with_zero_steps_jumps_to_the_target() {
        let s = Schedule::Anneal { from: 1.0, to: 0.2, steps: 0, shape: AnnealShape::Cosine };
        assert_eq!(s.factors(3), [0.2, 0.2, 0.2]);
    }

    #[test]
    fn validation_rejects_bad_values() {
        assert!(Schedule::Polynomial { steps: 3, power: 1.0, end_ratio: 1.5 }.validate().is_err());
        assert!(Schedule::Phases(vec![Phase { start: 2, schedule: Schedule::Constant }]).validate().is_err());
        assert!(Schedule::InverseSqrt { timescale: 0 }.validate().is_err());
        assert!(Schedule::linear_with_warmup(5, 10).validate().is_ok());
    }

    #[test]
    fn serde_round_trip() {
        let s = Schedule::linear_with_warmup(5, 10);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Schedule>(&json).unwrap(), s);
    }
}

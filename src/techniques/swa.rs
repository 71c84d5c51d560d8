//! Stochastic Weight Averaging and exponential moving averages of the weights.
//!
//! Izmailov et al., *Averaging Weights Leads to Wider Optima and Better Generalization*,
//! UAI 2018, <https://arxiv.org/abs/1803.05407>. From a start step, every `every` optimizer
//! steps, a running average of the weights is updated: the equal mean of all snapshots (SWA) or
//! an exponential moving average (EMA). This equals PyTorch's `AveragedModel` with its default
//! averaging function or `get_ema_multi_avg_fn(decay)`: the first update copies, later ones
//! `lerp` towards the current weights with weight `1/(n+1)` (SWA) or `1 - decay` (EMA).
//!
//! During the SWA phase each LR group anneals from its current LR to its own SWA LR, as
//! PyTorch's `SWALR` does with a list of `swa_lr`s. `SWALR` with one scalar `swa_lr` sets every
//! group to the same LR and so erases layer-wise LR decay; tunelab's default,
//! [`SwaLr::Scale`], keeps the ratios between groups.
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::groups::LrGroup;
use crate::schedule::AnnealShape;

/// How the averaged weights follow the trained ones.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Averaging {
    /// The equal mean of every snapshot (SWA).
    #[default]
    Swa,
    /// `avg ← decay · avg + (1 − decay) · weights`.
    Ema { decay: f64 },
}

/// The SWA learning rate of each LR group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SwaLr {
    /// Each group's base LR times this factor: the LLRD ratios are kept.
    Scale(f64),
    /// An absolute LR per LR group, by group name; every group must be named.
    PerGroup(BTreeMap<String, f64>),
    /// One absolute LR for every group, as PyTorch's `SWALR(swa_lr=x)`; erases LLRD.
    Flat(f64),
}

/// When something starts: an optimizer step, or a fraction of the run (written as
/// [`crate::recipe::Warmup`] is: a map, or a bare integer for steps and a non-integer for a fraction).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "crate::schedule::StepsOrFraction")]
pub enum At {
    Step(usize),
    Fraction(f64),
}

impl TryFrom<crate::schedule::StepsOrFraction> for At {
    type Error = String;
    fn try_from(v: crate::schedule::StepsOrFraction) -> std::result::Result<Self, String> {
        match v.split()? {
            (Some(s), _) => Ok(At::Step(s)),
            (_, f) => Ok(At::Fraction(f.unwrap_or(0.0))),
        }
    }
}

impl At {
    /// The step this resolves to in a run of `total` optimizer steps.
    pub fn step(self, total: usize) -> Result<usize> {
        match self {
            At::Step(s) => Ok(s),
            At::Fraction(f) if (0.0..=1.0).contains(&f) => Ok((f * total as f64).floor() as usize),
            At::Fraction(f) => Err(Error::Invalid(format!("a fraction of the run must be in [0, 1], got {f}"))),
        }
    }
}

/// The SWA technique: when averaging starts, how often, how, and the LR phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Swa {
    pub start: At,
    /// Update the average after every `every` optimizer steps from `start`.
    pub every: usize,
    pub averaging: Averaging,
    /// `None`: the main schedule continues unchanged during SWA.
    pub lr: Option<SwaLr>,
    /// Steps over which each group's LR anneals to its SWA LR (`anneal_epochs` of `SWALR`,
    /// counted in optimizer steps).
    pub anneal_steps: usize,
    pub anneal: AnnealShape,
}

impl Default for Swa {
    fn default() -> Self {
        Swa {
            start: At::Fraction(0.75),
            every: 1,
            averaging: Averaging::Swa,
            lr: Some(SwaLr::Scale(0.5)),
            anneal_steps: 10,
            anneal: AnnealShape::Cosine,
        }
    }
}

impl Swa {
    /// Checks the values against a run of `total` steps; returns the start step.
    pub fn validate(&self, total: usize) -> Result<usize> {
        let start = self.start.step(total)?;
        if start >= total {
            return Err(Error::Invalid(format!("SWA starts at step {start}, but the run has only {total} steps")));
        }
        if self.every == 0 {
            return Err(Error::Invalid("SWA: `every` must be at least 1".into()));
        }
        if let Averaging::Ema { decay } = self.averaging
            && !(0.0..=1.0).contains(&decay)
        {
            return Err(Error::Invalid(format!("EMA decay must be in [0, 1], got {decay}")));
        }
        let lr_ok = |what: String, lr: f64| {
            if lr.is_finite() && lr >= 0.0 { Ok(()) } else { Err(Error::Invalid(format!("{what} must be a non-negative number, got {lr}"))) }
        };
        match &self.lr {
            Some(SwaLr::Scale(s)) => lr_ok("the SWA LR scale".into(), *s)?,
            Some(SwaLr::Flat(lr)) => lr_ok("the SWA LR".into(), *lr)?,
            Some(SwaLr::PerGroup(m)) => m.iter().try_for_each(|(g, lr)| lr_ok(format!("the SWA LR of `{g}`"), *lr))?,
            None => {}
        }
        Ok(start)
    }

    /// Whether the average is updated after optimizer step `step` (0-based) of a run whose SWA starts at `start`.
    pub fn updates_at(&self, step: usize, start: usize) -> bool {
        step >= start && (step - start).is_multiple_of(self.every)
    }

    /// The SWA LR of each LR group as a ratio of the group's base LR (`None` when the main
    /// schedule simply continues): a [`SwaLr::Scale`] is that ratio already; absolute LRs are
    /// divided by the group's base LR.
    pub fn target_ratios(&self, groups: &[LrGroup]) -> Result<Option<Vec<f64>>> {
        let Some(lr) = &self.lr else { return Ok(None) };
        let ratio = |target: f64, base: f64| if base > 0.0 { target / base } else { 0.0 };
        let out = match lr {
            SwaLr::Scale(s) => vec![*s; groups.len()],
            SwaLr::Flat(x) => groups.iter().map(|g| ratio(*x, g.lr)).collect(),
            SwaLr::PerGroup(map) => {
                if let Some(unknown) = map.keys().find(|k| !groups.iter().any(|g| &g.name == *k)) {
                    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
                    return Err(Error::Invalid(format!("SWA LR for `{unknown}`, which is not an LR group ({})", names.join(", "))));
                }
                groups
                    .iter()
                    .map(|g| {
                        map.get(&g.name)
                            .map(|target| ratio(*target, g.lr))
                            .ok_or_else(|| Error::Invalid(format!("SWA LR: no value for the LR group `{}`", g.name)))
                    })
                    .collect::<Result<_>>()?
            }
        };
        Ok(Some(out))
    }
}

/// A running average of named weights: exactly one extra copy, updated in place.
///
/// ```
/// use tch::Tensor;
/// use tunelab::techniques::{Averaging, WeightAverage};
/// let w = vec![("w".to_string(), Tensor::from_slice(&[1.0f32, 2.0]))];
/// let mut avg = WeightAverage::new(Averaging::Swa, &w);
/// avg.update(&w);
/// let _ = w[0].1.shallow_clone().fill_(3.0);
/// avg.update(&w);
/// assert_eq!(Vec::<f32>::try_from(&avg.tensors[0].1).unwrap(), [2.0, 2.5]);
/// ```
#[derive(Debug)]
pub struct WeightAverage {
    pub averaging: Averaging,
    /// How many snapshots have been averaged.
    pub n_averaged: u64,
    /// The averaged tensors, by parameter name, in the order given to [`WeightAverage::new`].
    pub tensors: Vec<(String, Tensor)>,
}

impl WeightAverage {
    /// Allocates the copy (zeros until the first update).
    pub fn new(averaging: Averaging, params: &[(String, Tensor)]) -> Self {
        let tensors = params.iter().map(|(n, t)| (n.clone(), t.detach().zeros_like())).collect();
        WeightAverage { averaging, n_averaged: 0, tensors }
    }

    /// Folds the current weights into the average, in place (no allocation).
    pub fn update(&mut self, params: &[(String, Tensor)]) {
        let weight = match self.averaging {
            Averaging::Swa => 1.0 / (self.n_averaged as f64 + 1.0),
            Averaging::Ema { decay } => 1.0 - decay,
        };
        tch::no_grad(|| {
            for ((_, avg), (_, p)) in self.tensors.iter_mut().zip(params) {
                if self.n_averaged == 0 {
                    avg.copy_(p);
                } else {
                    let _ = avg.lerp_(p, weight);
                }
            }
        });
        self.n_averaged += 1;
    }

    /// The averaged tensors (shallow copies) and the number of snapshots in them.
    pub fn state(&self) -> (Vec<(String, Tensor)>, u64) {
        (self.tensors.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect(), self.n_averaged)
    }

    /// Restores what [`WeightAverage::state`] gave; `origin` (the checkpoint file) names errors.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, n_averaged: u64, origin: &std::path::Path) -> Result<()> {
        for (name, avg) in &self.tensors {
            let t = tensors.get(name).ok_or_else(|| Error::checkpoint(origin, format!("no tensor `{name}`")))?;
            if t.size() != avg.size() {
                return Err(Error::checkpoint(origin, format!("`{name}` has shape {:?}, the parameter {:?}", t.size(), avg.size())));
            }
        }
        tch::no_grad(|| {
            for (name, avg) in &mut self.tensors {
                avg.copy_(&tensors[name.as_str()]);
            }
        });
        self.n_averaged = n_averaged;
        Ok(())
    }

    /// Exchanges the model's weights and the averaged ones without copying memory: after one
    /// call the model holds the average (to evaluate or save it), after a second the model has
    /// its own weights back.
    pub fn swap(&mut self, variables: &HashMap<String, Tensor>) {
        tch::no_grad(|| {
            for (name, avg) in &mut self.tensors {
                let mut var = variables[name.as_str()].shallow_clone();
                let own = var.detach();
                var.set_data(avg);
                *avg = own;
            }
        });
    }
}

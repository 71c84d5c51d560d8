//! A recipe: the techniques of a fine-tuning run, composed as plain data.
//!
//! A [`Recipe`] holds the LR layout over the model's blocks (one LR, LLRD, grouped LLRD), the
//! weight decay, the warm-up and the decay after it, re-initialisation, SWA or EMA, the
//! evaluation cadence and AdamW's constants. It is serde data with every default spelled out,
//! it is validated as a whole against a run length, and for a model's [`GroupTable`] it yields
//! the learning rate of every group at every step ([`LrTable`]) before anything trains.
//!
//! The seed article's recipe (LLRD with decay 0.9, 50 warm-up steps and linear decay,
//! re-initialised top layer, SWA keeping the LLRD ratios):
//!
//! ```
//! use tunelab::groups::LrLayout;
//! use tunelab::recipe::{Decay, Recipe, Warmup};
//! use tunelab::techniques::{Reinit, Swa};
//! use tunelab::{Config, Encoder, HeadSpec, Model, Pooling};
//!
//! let recipe = Recipe {
//!     lr: LrLayout::Llrd { top_lr: 3.5e-5, decay: 0.9, head_lr: 3.6e-5 },
//!     warmup: Warmup::Steps(50),
//!     decay: Decay::Linear,
//!     reinit: Some(Reinit { top_layers: 1, pooler: true, seed: None }),
//!     swa: Some(Swa::default()),
//!     ..Recipe::default()
//! };
//! let model = Model::new(Encoder::from_config(&Config::tiny(), tch::Device::Cpu, 0)?, HeadSpec::regression(Pooling::Pooler))?;
//! let table = recipe.group_table(&model)?;
//! let lrs = recipe.lr_table(&table, 400)?;
//! assert_eq!(lrs.groups, ["embeddings", "layer.0", "layer.1", "pooler", "head"]);
//! assert_eq!(lrs.at(0)[4], 0.0);              // warm-up starts from 0
//! assert!((lrs.at(50)[2] - 3.5e-5).abs() < 1e-18); // the top layer peaks at top_lr
//! println!("{lrs}");
//! # Ok::<(), tunelab::Error>(())
//! ```
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::groups::{GroupTable, LrGroup, LrLayout};
use crate::metrics::Metric;
use crate::model::{Model, Task};
use crate::optim::AdamWConfig;
use crate::schedule::{DecayShape, Phase, Schedule, StepsOrFraction};
use crate::techniques::{Adversarial, Freeze, Loss, Reinit, Swa};

/// The warm-up: a number of optimizer steps, or a fraction of the run (rounded up, as
/// transformers' `warmup_ratio`). Written `{"steps": 50}` / `{"fraction": 0.1}`, or as a bare
/// number: an integer is steps, a non-integer a fraction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "StepsOrFraction")]
pub enum Warmup {
    Steps(usize),
    Fraction(f64),
}

impl TryFrom<StepsOrFraction> for Warmup {
    type Error = String;
    fn try_from(v: StepsOrFraction) -> std::result::Result<Self, String> {
        match v.split()? {
            (Some(s), _) => Ok(Warmup::Steps(s)),
            (_, f) => Ok(Warmup::Fraction(f.unwrap_or(0.0))),
        }
    }
}

impl Warmup {
    pub fn steps(self, total: usize) -> Result<usize> {
        match self {
            Warmup::Steps(s) => Ok(s),
            Warmup::Fraction(f) if (0.0..=1.0).contains(&f) => Ok((f * total as f64).ceil() as usize),
            Warmup::Fraction(f) => Err(Error::Invalid(format!("the warm-up fraction must be in [0, 1], got {f}"))),
        }
    }
}

/// What the LR does after the warm-up, over the rest of the run. Written
/// `{"kind": "cosine", "cycles": 0.5}`, or by its name alone with default parameters (`"cosine"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Decay {
    Constant,
    Linear,
    Cosine {
        #[serde(default = "half")]
        cycles: f64,
        #[serde(default)]
        min_ratio: f64,
    },
    CosineRestarts {
        #[serde(default = "one")]
        cycles: f64,
    },
    Polynomial {
        #[serde(default = "one")]
        power: f64,
        #[serde(default)]
        end_ratio: f64,
    },
    /// `timescale` defaults to the warm-up length, or 10,000 without warm-up (as transformers).
    InverseSqrt {
        #[serde(default)]
        timescale: Option<usize>,
    },
    /// Warm-up–stable–decay: constant, then a decay over the last `decay_fraction` of the run;
    /// its warm-up starts from `min_ratio` (as transformers' `get_wsd_schedule`).
    StableDecay {
        decay_fraction: f64,
        #[serde(default = "cosine_shape")]
        shape: DecayShape,
        #[serde(default)]
        min_ratio: f64,
    },
}

/// Reads a [`Decay`] written in full or by its name alone (`"cosine"`).
fn decay_or_name<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Decay, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Name(String),
        Full(serde_json::Value),
    }
    match Repr::deserialize(d)? {
        Repr::Full(value) => serde_json::from_value(value).map_err(serde::de::Error::custom),
        Repr::Name(name) => serde_json::from_value(serde_json::json!({ "kind": name })).map_err(|_| {
            serde::de::Error::custom(format!(
                "unknown decay `{name}`: expected constant, linear, cosine, cosine_restarts, polynomial, inverse_sqrt or stable_decay"
            ))
        }),
    }
}

fn half() -> f64 {
    0.5
}
fn one() -> f64 {
    1.0
}
fn cosine_shape() -> DecayShape {
    DecayShape::Cosine
}

impl Decay {
    /// The schedule after a warm-up of `warmup` steps in a run of `total`.
    pub fn schedule(&self, warmup: usize, total: usize) -> Result<Schedule> {
        let steps = total.saturating_sub(warmup);
        Ok(match self {
            Decay::Constant => Schedule::Constant,
            Decay::Linear => Schedule::Linear { steps },
            Decay::Cosine { cycles, min_ratio } => Schedule::Cosine { steps, cycles: *cycles, min_ratio: *min_ratio },
            Decay::CosineRestarts { cycles } => Schedule::CosineRestarts { steps, cycles: *cycles },
            Decay::Polynomial { power, end_ratio } => Schedule::Polynomial { steps, power: *power, end_ratio: *end_ratio },
            Decay::InverseSqrt { timescale } => {
                Schedule::InverseSqrt { timescale: timescale.unwrap_or(if warmup > 0 { warmup } else { 10_000 }) }
            }
            Decay::StableDecay { decay_fraction, shape, min_ratio } => {
                if !(0.0..=1.0).contains(decay_fraction) {
                    return Err(Error::Invalid(format!("stable_decay: decay_fraction must be in [0, 1], got {decay_fraction}")));
                }
                let decay = (decay_fraction * total as f64).round() as usize;
                let decay = decay.min(steps);
                Schedule::StableDecay { stable: steps - decay, decay, shape: *shape, cycles: 0.5, min_ratio: *min_ratio }
            }
        })
    }
}

/// How often the dev set is evaluated, and what picks the best weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Eval {
    /// Evaluate every this many optimizer steps (`None`: only at epoch ends).
    pub every: Option<usize>,
    /// Evaluate at the end of each epoch too.
    pub epoch_end: bool,
    /// `None`: RMSE for regression, accuracy for classification.
    pub select_by: Option<Metric>,
    /// Early stopping: stop after this many evaluations in a row without the selection metric
    /// improving by more than `min_delta` (`None`: never stop early).
    pub patience: Option<usize>,
    /// The smallest change of the selection metric that counts as an improvement for `patience`
    /// (the best weights are kept on any improvement).
    pub min_delta: f64,
}

impl Default for Eval {
    fn default() -> Self {
        Eval { every: None, epoch_end: true, select_by: None, patience: None, min_delta: 0.0 }
    }
}

/// The techniques of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Recipe {
    #[serde(deserialize_with = "lr_or_number")]
    pub lr: LrLayout,
    /// Applied to dense weights and embeddings; biases and LayerNorm get none.
    pub weight_decay: f64,
    pub warmup: Warmup,
    #[serde(deserialize_with = "decay_or_name")]
    pub decay: Decay,
    pub reinit: Option<Reinit>,
    pub swa: Option<Swa>,
    pub evaluation: Eval,
    pub adamw: AdamWConfig,
    /// What weight decay pulls the weights towards: 0 (AdamW), or the pre-trained weights
    /// (Zhang et al. 2021 §5; parameters without pre-trained values, the head and re-initialised
    /// blocks, still decay towards 0).
    #[serde(skip_serializing_if = "DecayTowards::is_zero")]
    pub weight_decay_towards: DecayTowards,
    /// The training loss (absent: MSE for regression, cross-entropy for classification).
    #[serde(deserialize_with = "some_or_name", skip_serializing_if = "Option::is_none")]
    pub loss: Option<Loss>,
    /// Frozen bottom blocks, and gradual unfreezing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freeze: Option<Freeze>,
    /// Adversarial training (FGM or AWP): one more forward and backward pass per step.
    #[serde(deserialize_with = "some_or_name", skip_serializing_if = "Option::is_none")]
    pub adversarial: Option<Adversarial>,
    /// Mixout's probability (Lee et al. 2020): dense weights mixed with their pre-trained
    /// values in training, in place of dropout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mixout: Option<f64>,
}

/// What weight decay pulls towards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecayTowards {
    #[default]
    Zero,
    Pretrained,
}

impl DecayTowards {
    fn is_zero(&self) -> bool {
        *self == DecayTowards::Zero
    }
}

/// `lr`: a layout (`{"kind": "llrd", ...}`), or a uniform LR written as a number (`3e-5`) or as
/// a map with `lr` alone.
fn lr_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<LrLayout, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    let value = match value {
        serde_json::Value::Number(lr) => serde_json::json!({ "kind": "uniform", "lr": lr }),
        serde_json::Value::Object(mut map) if !map.contains_key("kind") => {
            if map.keys().any(|k| k != "lr") {
                return Err(serde::de::Error::custom(
                    "`kind` is missing: uniform (with lr), llrd (with top_lr, decay, head_lr) or grouped (with sets, head_lr)",
                ));
            }
            map.insert("kind".into(), "uniform".into());
            serde_json::Value::Object(map)
        }
        other => other,
    };
    serde_json::from_value(value).map_err(serde::de::Error::custom)
}

/// Reads an optional tagged value written in full or by its name alone (`"huber"`).
fn some_or_name<'de, D: serde::Deserializer<'de>, T: serde::de::DeserializeOwned>(d: D) -> std::result::Result<Option<T>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None => Ok(None),
        Some(serde_json::Value::String(name)) => serde_json::from_value(serde_json::json!({ "kind": name })).map(Some).map_err(serde::de::Error::custom),
        Some(value) => serde_json::from_value(value).map(Some).map_err(serde::de::Error::custom),
    }
}

impl Default for Recipe {
    /// The baseline: one LR of 2e-5 for everything, weight decay 0.01, no warm-up, linear decay.
    fn default() -> Self {
        Recipe {
            lr: LrLayout::Uniform { lr: 2e-5 },
            weight_decay: 0.01,
            warmup: Warmup::Steps(0),
            decay: Decay::Linear,
            reinit: None,
            swa: None,
            evaluation: Eval::default(),
            adamw: AdamWConfig::default(),
            weight_decay_towards: DecayTowards::Zero,
            loss: None,
            freeze: None,
            adversarial: None,
            mixout: None,
        }
    }
}

impl Recipe {
    /// The parameter-group table of this recipe for a model.
    pub fn group_table(&self, model: &Model) -> Result<GroupTable> {
        GroupTable::build(&model.parameters()?, model.encoder.config.num_hidden_layers, &self.lr, self.weight_decay)
    }

    /// Checks the recipe as a whole, once, against a model's group table, a run of `total`
    /// optimizer steps and a task, and returns everything the training loop, the plan and the
    /// LR table read: the warm-up end, the SWA start, one schedule per LR group, the metric
    /// that selects the best weights, and warnings about settings that are legal but unusual.
    pub fn resolve(&self, table: &GroupTable, total: usize, task: &Task) -> Result<Resolved> {
        self.resolve_for(table, total, Some(task))
    }

    /// [`Recipe::resolve`]; without a task (the LR table alone), the checks that need one (the
    /// loss, the selection metric) are left to the run.
    fn resolve_for(&self, table: &GroupTable, total: usize, task: Option<&Task>) -> Result<Resolved> {
        if total == 0 {
            return Err(Error::Invalid("the run has no optimizer step".into()));
        }
        self.lr.validate()?;
        let warnings = self.lr.warnings();
        let warmup = self.warmup.steps(total)?;
        if warmup > total {
            return Err(Error::Invalid(format!("the warm-up of {warmup} steps is longer than the run ({total} steps)")));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::Invalid(format!("weight_decay must be a non-negative number, got {}", self.weight_decay)));
        }
        let main = self.main_schedule(total)?;
        main.validate()?;
        if let Some(r) = &self.reinit {
            r.blocks(table.num_layers())?;
        }
        if self.evaluation.every == Some(0) {
            return Err(Error::Invalid("evaluation.every must be at least 1".into()));
        }
        if self.evaluation.patience == Some(0) {
            return Err(Error::Invalid("evaluation.patience must be at least 1 (or absent: no early stopping)".into()));
        }
        if !(self.evaluation.min_delta.is_finite() && self.evaluation.min_delta >= 0.0) {
            return Err(Error::Invalid(format!("evaluation.min_delta must be a non-negative number, got {}", self.evaluation.min_delta)));
        }
        let AdamWConfig { beta1, beta2, eps, .. } = self.adamw;
        if !((0.0..1.0).contains(&beta1) && (0.0..1.0).contains(&beta2) && eps > 0.0) {
            return Err(Error::Invalid(format!("AdamW: betas must be in [0, 1) and eps above 0, got {beta1}, {beta2}, {eps}")));
        }
        let n = table.groups.len();
        let (swa_start, schedules) = match &self.swa {
            None => (None, vec![main; n]),
            Some(swa) => {
                let start = swa.validate(total)?;
                let schedules = match swa.target_ratios(&table.groups)? {
                    None => vec![main; n],
                    Some(ratios) => {
                        let from = main.factor(start);
                        ratios
                            .into_iter()
                            .map(|to| {
                                let anneal = Schedule::Anneal { from, to, steps: swa.anneal_steps, shape: swa.anneal };
                                Schedule::Phases(vec![Phase { start: 0, schedule: main.clone() }, Phase { start, schedule: anneal }])
                            })
                            .collect()
                    }
                };
                (Some(start), schedules)
            }
        };
        if let (Some(loss), Some(task)) = (&self.loss, task) {
            loss.validate(task)?;
        }
        if let Some(a) = &self.adversarial {
            a.validate()?;
        }
        if let Some(p) = self.mixout {
            if !(p > 0.0 && p < 1.0) {
                return Err(Error::Invalid(format!("recipe.mixout must be a probability above 0 and below 1, got {p}")));
            }
            if self.adversarial.is_some() {
                return Err(Error::Invalid("recipe.mixout and recipe.adversarial cannot be combined (each changes the weights of the step's passes): keep one".into()));
            }
        }
        // A group trains from the step its first block thaws (0: never frozen).
        let thaw = match &self.freeze {
            Some(f) => f.thaw_steps(table.num_layers())?,
            None => Vec::new(),
        };
        let mut warnings = warnings;
        if let (Some(r), false) = (&self.reinit, thaw.is_empty()) {
            for b in r.blocks(table.num_layers())?.into_iter().filter(|b| Freeze::trains_from(&thaw, *b) > 0) {
                warnings.push(format!("{b} is re-initialised and frozen: its random weights stay untrained until it thaws"));
            }
        }
        let trains_from = table
            .groups
            .iter()
            .map(|g| table.rows.iter().filter(|r| r.group == g.name).map(|r| Freeze::trains_from(&thaw, r.block)).min().unwrap_or(0))
            .collect();
        let classification = matches!(task, Some(Task::Classification { .. }));
        if let Some(m) = self.evaluation.select_by.filter(|m| task.is_some() && !m.fits(classification)) {
            let (task, fits) = if classification { ("classification", "accuracy, macro_f1 or loss") } else { ("regression", "rmse, mae, pearson, spearman or loss") };
            return Err(Error::Invalid(format!("recipe.evaluation.select_by: `{}` is not a metric of a {task} task; use {fits}", m.name())));
        }
        Ok(Resolved {
            total_steps: total,
            warmup_end: warmup,
            swa_start,
            groups: table.groups.clone(),
            schedules,
            select_by: self.evaluation.select_by.unwrap_or(Metric::default_for(classification)),
            warnings,
            trains_from,
            thaw,
        })
    }

    /// The techniques that the LR table does not show, in words, for the plan.
    pub fn notes(&self, resolved: &Resolved) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(loss) = &self.loss {
            notes.push(format!("training loss: {loss}"));
        }
        if !self.adamw.bias_correction {
            notes.push("optimizer: Adam without bias correction (BERTAdam, as the original BERT code)".into());
        }
        if self.weight_decay_towards == DecayTowards::Pretrained {
            notes.push(format!("weight decay {} towards the pre-trained weights (the head and re-initialised blocks: towards 0)", self.weight_decay));
        }
        if !resolved.thaw.is_empty() {
            let thaw: Vec<String> = resolved
                .thaw
                .iter()
                .map(|(b, s)| if *s == usize::MAX || *s >= resolved.total_steps { format!("{b} (the whole run)") } else { format!("{b} until step {s}") })
                .collect();
            notes.push(format!("frozen (no gradient, LR 0): {}", thaw.join(", ")));
        }
        if let Some(p) = self.mixout {
            notes.push(format!("Mixout {p}: every dense weight mixed with its value before fine-tuning in each step, dropout off"));
        }
        if let Some(a) = &self.adversarial {
            let steps = resolved.total_steps.saturating_sub(a.start());
            notes.push(format!("adversarial training: {a}, one more forward and backward pass in each of {steps} steps"));
        }
        notes
    }

    /// The schedule every group follows before SWA: warm-up, then the decay.
    pub fn main_schedule(&self, total: usize) -> Result<Schedule> {
        let warmup = self.warmup.steps(total)?;
        let decay = self.decay.schedule(warmup, total)?;
        Ok(match (&self.decay, warmup) {
            (_, 0) => decay,
            // transformers' get_wsd_schedule warms up from min_lr_ratio, not from 0.
            (Decay::StableDecay { min_ratio, .. }, _) => {
                Schedule::Warmup { steps: warmup, start_ratio: *min_ratio, then: Box::new(decay) }
            }
            _ => decay.with_warmup(warmup),
        })
    }

    /// The learning rate of every LR group at every step of a run of `total` optimizer steps.
    pub fn lr_table(&self, table: &GroupTable, total: usize) -> Result<LrTable> {
        Ok(self.resolve_for(table, total, None)?.lr_table())
    }
}

/// A [`Recipe`] checked against a model and a run length: what the loop, the plan and the LR
/// table read (see [`Recipe::resolve`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub total_steps: usize,
    /// The first step after the warm-up.
    pub warmup_end: usize,
    /// The first step whose weights SWA averages, if the recipe averages.
    pub swa_start: Option<usize>,
    /// The LR groups with their base LRs, from the embeddings up to the head.
    pub groups: Vec<LrGroup>,
    /// One schedule per group, in the same order.
    pub schedules: Vec<Schedule>,
    /// The metric that picks the best weights.
    pub select_by: Metric,
    /// Settings that are legal but probably not meant (an LLRD decay above 1...).
    pub warnings: Vec<String>,
    /// Each group's first trained step (0, or later while all of its blocks are frozen: its LR
    /// is 0 before), and each frozen block's (see [`Freeze::thaw_steps`]).
    pub trains_from: Vec<usize>,
    pub thaw: Vec<(crate::groups::Block, usize)>,
}

impl Resolved {
    /// Every group's learning rate at optimizer step `step`.
    pub fn lrs(&self, step: usize) -> Vec<f64> {
        self.groups.iter().zip(&self.schedules).zip(&self.trains_from).map(|((g, s), &from)| if step < from { 0.0 } else { g.lr * s.factor(step) }).collect()
    }

    /// The learning rate of every group at every step of the run.
    pub fn lr_table(&self) -> LrTable {
        LrTable {
            groups: self.groups.iter().map(|g| g.name.clone()).collect(),
            base: self.groups.iter().map(|g| g.lr).collect(),
            lrs: (0..self.total_steps).map(|k| self.lrs(k)).collect(),
            warmup_end: self.warmup_end,
            swa_start: self.swa_start,
        }
    }
}

/// The learning rate of every LR group at every optimizer step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LrTable {
    pub groups: Vec<String>,
    /// Each group's base LR.
    pub base: Vec<f64>,
    /// `lrs[step][group]`.
    pub lrs: Vec<Vec<f64>>,
    /// The first step after the warm-up.
    pub warmup_end: usize,
    /// The first step of SWA, if any.
    pub swa_start: Option<usize>,
}

impl LrTable {
    /// The LRs of every group at `step`.
    pub fn at(&self, step: usize) -> &[f64] {
        &self.lrs[step]
    }

    /// One group's LR at every step.
    pub fn column(&self, group: usize) -> Vec<f64> {
        self.lrs.iter().map(|row| row[group]).collect()
    }

    /// The table as CSV: a `step` column, then one column per group.
    pub fn to_csv(&self) -> String {
        let mut out = format!("step,{}\n", self.groups.join(","));
        for (k, row) in self.lrs.iter().enumerate() {
            let cells: Vec<String> = row.iter().map(|v| format!("{v:e}")).collect();
            out.push_str(&format!("{k},{}\n", cells.join(",")));
        }
        out
    }
}

impl fmt::Display for LrTable {
    /// The schedule summary: warm-up end, SWA start, each group's first, peak and last LR.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} optimizer steps; warm-up ends at step {}", self.lrs.len(), self.warmup_end)?;
        if let Some(s) = self.swa_start {
            writeln!(f, "SWA starts at step {s}")?;
        }
        writeln!(f, "{:<14} {:>12} {:>12} {:>12}", "group", "first", "peak", "last")?;
        for (g, name) in self.groups.iter().enumerate() {
            let col = self.column(g);
            let peak = col.iter().cloned().fold(0.0, f64::max);
            writeln!(f, "{:<14} {:>12.4e} {:>12.4e} {:>12.4e}", name, col[0], peak, col[col.len() - 1])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groups::{ParamInfo, Role};
    use crate::techniques::swa::{At, SwaLr};

    fn table() -> GroupTable {
        let params = vec![
            ParamInfo::new("embeddings.word_embeddings.weight", Role::Embedding, 10),
            ParamInfo::new("encoder.layer.0.output.dense.weight", Role::Weight, 10),
            ParamInfo::new("encoder.layer.1.output.dense.weight", Role::Weight, 10),
            ParamInfo::new("head.weight", Role::Weight, 10),
        ];
        GroupTable::build(&params, 2, &LrLayout::Llrd { top_lr: 1e-4, decay: 0.5, head_lr: 1e-3 }, 0.01).unwrap()
    }

    #[test]
    fn swa_scale_keeps_the_llrd_ratios() {
        let recipe = Recipe {
            lr: LrLayout::Llrd { top_lr: 1e-4, decay: 0.5, head_lr: 1e-3 },
            swa: Some(Swa { start: At::Step(6), lr: Some(SwaLr::Scale(0.1)), anneal_steps: 0, ..Swa::default() }),
            decay: Decay::Constant,
            ..Recipe::default()
        };
        let lrs = recipe.lr_table(&table(), 10).unwrap();
        assert_eq!(lrs.at(5), [2.5e-5, 5e-5, 1e-4, 1e-3]);
        let after = lrs.at(7);
        for (g, base) in lrs.base.iter().enumerate() {
            assert!((after[g] - base * 0.1).abs() < 1e-18, "{}", lrs.groups[g]);
        }
    }

    #[test]
    fn flat_swa_lr_erases_the_ratios() {
        let recipe = Recipe {
            swa: Some(Swa { start: At::Step(2), lr: Some(SwaLr::Flat(1e-5)), anneal_steps: 0, ..Swa::default() }),
            ..Recipe::default()
        };
        let lrs = recipe.lr_table(&table(), 4).unwrap();
        assert!(lrs.at(3).iter().all(|&lr| (lr - 1e-5).abs() < 1e-18));
    }

    #[test]
    fn inconsistent_recipes_are_errors() {
        let t = table();
        let long_warmup = Recipe { warmup: Warmup::Steps(20), ..Recipe::default() };
        assert!(long_warmup.lr_table(&t, 10).unwrap_err().to_string().contains("warm-up of 20 steps is longer than the run (10 steps)"));
        let late_swa = Recipe { swa: Some(Swa { start: At::Step(10), ..Swa::default() }), ..Recipe::default() };
        assert!(late_swa.lr_table(&t, 10).unwrap_err().to_string().contains("SWA starts at step 10"));
        let bad_decay = Recipe { lr: LrLayout::Llrd { top_lr: 1e-4, decay: 0.0, head_lr: 1e-4 }, ..Recipe::default() };
        assert!(bad_decay.lr_table(&t, 10).unwrap_err().to_string().contains("LLRD decay must be above 0, got 0"));
        let negative = Recipe { weight_decay: -1.0, ..Recipe::default() };
        assert!(negative.lr_table(&t, 10).is_err());
        let reinit = Recipe { reinit: Some(Reinit { top_layers: 3, ..Reinit::default() }), ..Recipe::default() };
        assert!(reinit.lr_table(&t, 10).unwrap_err().to_string().contains("only 2 layers"));
        let zero = Recipe { lr: LrLayout::Uniform { lr: 0.0 }, ..Recipe::default() };
        assert!(zero.lr_table(&t, 10).unwrap_err().to_string().contains("lr must be above 0"));
    }

    #[test]
    fn an_llrd_decay_above_one_is_a_warning() {
        let recipe = Recipe { lr: LrLayout::Llrd { top_lr: 1e-4, decay: 1.5, head_lr: 1e-4 }, ..Recipe::default() };
        let resolved = recipe.resolve(&table(), 10, &Task::Regression).unwrap();
        assert_eq!(resolved.warnings.len(), 1);
        assert!(resolved.warnings[0].contains("decay 1.5 is above 1"), "{:?}", resolved.warnings);
        assert_eq!(resolved.select_by, Metric::Rmse);
    }

    #[test]
    fn a_selection_metric_the_task_does_not_report_is_refused() {
        let by = |m| Recipe { evaluation: Eval { select_by: Some(m), ..Eval::default() }, ..Recipe::default() };
        let err = by(Metric::Accuracy).resolve(&table(), 10, &Task::Regression).unwrap_err().to_string();
        assert!(err.contains("recipe.evaluation.select_by: `accuracy` is not a metric of a regression task"), "{err}");
        let err = by(Metric::Rmse).resolve(&table(), 10, &Task::Classification { labels: vec!["neg".into(), "pos".into()] }).unwrap_err().to_string();
        assert!(err.contains("`rmse` is not a metric of a classification task; use accuracy, macro_f1 or loss"), "{err}");
        assert!(by(Metric::Loss).resolve(&table(), 10, &Task::Classification { labels: vec!["neg".into(), "pos".into()] }).is_ok());
        assert!(by(Metric::Spearman).resolve(&table(), 10, &Task::Regression).is_ok());
    }

    #[test]
    fn csv_has_a_step_column_and_one_column_per_group() {
        let lrs = Recipe::default().lr_table(&table(), 3).unwrap();
        let csv = lrs.to_csv();
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("step,embeddings,layer.0,layer.1,head"));
        assert_eq!(csv.lines().count(), 4);
    }

    #[test]
    fn recipe_serde_round_trip_spells_out_defaults() {
        let json = serde_json::to_value(Recipe::default()).unwrap();
        assert_eq!(json["adamw"]["beta2"], 0.999);
        let back: Recipe = serde_json::from_value(json).unwrap();
        assert_eq!(back, Recipe::default());
    }
}

//! AdamW with one learning rate per LR group, set before every step.
//!
//! Loshchilov and Hutter, *Decoupled Weight Decay Regularization*, ICLR 2019,
//! <https://arxiv.org/abs/1711.05101>. The update is PyTorch's `torch.optim.AdamW`
//! (`_single_tensor_adam` with decoupled weight decay and bias correction), operation for
//! operation:
//!
//! ```text
//! p  ← p · (1 − lr · wd)
//! m  ← lerp(m, g, 1 − β1)
//! v  ← β2 · v + (1 − β2) · g²
//! p  ← p − lr / (1 − β1^t) · m / (sqrt(v) / sqrt(1 − β2^t) + ε)
//! ```
//!
//! Two variants from Zhang et al. 2021 (*Revisiting Few-sample BERT Fine-tuning*, §3 and §5):
//! `bias_correction: false` is the original BERT code's Adam (both corrections are 1), and an
//! *anchor* per parameter ([`AdamW::anchor`]) makes weight decay pull towards the pre-trained
//! weights instead of towards 0: `p ← p − lr · wd · (p − p₀)`.
//!
//! tch has AdamW too, but its state lives inside libtorch where it cannot be saved, and its
//! `set_lr` overwrites every group's LR. Here the state (`m`, `v`, `t` per parameter) is plain
//! tensors that a checkpoint stores, and [`AdamW::set_lrs`] takes one LR per LR group of the
//! [`GroupTable`], in its order.
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::groups::GroupTable;

/// AdamW's constants (PyTorch's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// `false`: no bias correction of the moments (BERTAdam, the original BERT optimizer).
    #[serde(skip_serializing_if = "is_true")]
    pub bias_correction: bool,
}

fn is_true(b: &bool) -> bool {
    *b
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig { beta1: 0.9, beta2: 0.999, eps: 1e-8, bias_correction: true }
    }
}

/// One parameter and its optimizer state.
#[derive(Debug)]
pub(crate) struct ParamState {
    pub(crate) name: String,
    pub(crate) param: Tensor,
    pub(crate) exp_avg: Tensor,
    pub(crate) exp_avg_sq: Tensor,
    /// The number of updates this parameter received.
    pub(crate) step: i64,
    /// Index into [`GroupTable::groups`].
    pub(crate) group: usize,
    pub(crate) weight_decay: f64,
    /// The parameter's value before fine-tuning (its pre-trained value), kept for pre-trained
    /// weight decay and for Mixout; `decay_to_anchor`: weight decay pulls towards it, not 0.
    pub(crate) anchor: Option<Tensor>,
    pub(crate) decay_to_anchor: bool,
}

/// AdamW's state in a form a checkpoint stores: the moments as named tensors
/// (`exp_avg.<parameter>`, `exp_avg_sq.<parameter>`) and each parameter's update count.
#[derive(Debug)]
pub struct AdamWState {
    pub tensors: Vec<(String, Tensor)>,
    pub steps: BTreeMap<String, i64>,
}

/// AdamW over the parameters of a [`GroupTable`].
///
/// ```
/// use tunelab::{Config, Encoder, HeadSpec, Model, Pooling, Recipe, optim::AdamW};
/// let model = Model::new(Encoder::from_config(&Config::tiny(), tch::Device::Cpu, 0)?, HeadSpec::regression(Pooling::Cls))?;
/// let recipe = Recipe::default();
/// let table = recipe.group_table(&model)?;
/// let lrs = recipe.lr_table(&table, 10)?;
/// let mut opt = AdamW::new(&table, &model.variables(), recipe.adamw)?;
/// let ids = tch::Tensor::from_slice(&[2i64, 7, 9, 3]).view([1, 4]);
/// let batch = tunelab::Batch { attention_mask: ids.ones_like(), token_type_ids: ids.zeros_like(), input_ids: ids };
/// for step in 0..10 {
///     opt.zero_grad();
///     let loss = model.head.loss(&model.forward(&batch, true), &tch::Tensor::from_slice(&[1.0f32]));
///     loss.backward();
///     opt.set_lrs(lrs.at(step));
///     opt.step();
/// }
/// // With [CLS] pooling the pooler gets no gradient, and AdamW leaves it alone (as PyTorch does).
/// for (name, step) in opt.state().steps {
///     assert_eq!(step, if name.starts_with("pooler.") { 0 } else { 10 }, "{name}");
/// }
/// # Ok::<(), tunelab::Error>(())
/// ```
#[derive(Debug)]
pub struct AdamW {
    pub config: AdamWConfig,
    pub(crate) params: Vec<ParamState>,
    lrs: Vec<f64>,
}

impl AdamW {
    /// One state per row of `table`; `variables` maps names to the model's tensors.
    pub fn new(table: &GroupTable, variables: &HashMap<String, Tensor>, config: AdamWConfig) -> Result<Self> {
        let mut params = Vec::with_capacity(table.rows.len());
        for row in &table.rows {
            let param = variables
                .get(&row.name)
                .ok_or_else(|| Error::Invalid(format!("the group table names `{}`, which the model does not have", row.name)))?
                .shallow_clone();
            let group = table.group_index(&row.group).expect("every row's group is in the table");
            params.push(ParamState {
                name: row.name.clone(),
                exp_avg: param.zeros_like(),
                exp_avg_sq: param.zeros_like(),
                param,
                step: 0,
                group,
                weight_decay: row.weight_decay,
                anchor: None,
                decay_to_anchor: false,
            });
        }
        let lrs = table.groups.iter().map(|g| g.lr).collect();
        Ok(AdamW { config, params, lrs })
    }

    /// Keeps the current value of the parameter `name` as its anchor (call before training; a
    /// checkpoint stores the anchors), and with `decay`, makes weight decay pull towards it
    /// (pre-trained weight decay) instead of towards 0.
    pub fn anchor(&mut self, name: &str, decay: bool) -> Result<()> {
        let p = self.params.iter_mut().find(|p| p.name == name).ok_or_else(|| Error::Invalid(format!("no parameter `{name}` to anchor")))?;
        if p.anchor.is_none() {
            p.anchor = Some(p.param.detach().copy());
        }
        p.decay_to_anchor |= decay;
        Ok(())
    }

    /// The anchor of the parameter `name` (see [`AdamW::anchor`]).
    pub fn anchor_of(&self, name: &str) -> Option<&Tensor> {
        self.params.iter().find(|p| p.name == name).and_then(|p| p.anchor.as_ref())
    }

    /// Sets every LR group's learning rate for the next step (in the table's group order).
    pub fn set_lrs(&mut self, lrs: &[f64]) {
        assert_eq!(lrs.len(), self.lrs.len(), "one learning rate per LR group");
        self.lrs.copy_from_slice(lrs);
    }

    /// The learning rates the next step will use.
    pub fn lrs(&self) -> &[f64] {
        &self.lrs
    }

    /// The moments and step counts (shallow copies of the tensors: no memory is copied).
    pub fn state(&self) -> AdamWState {
        let mut tensors = Vec::with_capacity(2 * self.params.len());
        for p in &self.params {
            tensors.push((format!("exp_avg.{}", p.name), p.exp_avg.shallow_clone()));
            tensors.push((format!("exp_avg_sq.{}", p.name), p.exp_avg_sq.shallow_clone()));
            if let Some(a) = &p.anchor {
                tensors.push((format!("anchor.{}", p.name), a.shallow_clone()));
            }
        }
        AdamWState { tensors, steps: self.params.iter().map(|p| (p.name.clone(), p.step)).collect() }
    }

    /// Restores the state [`AdamW::state`] gave; `origin` (the checkpoint file) names errors. Every
    /// parameter's moments must be there, with its shape.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, steps: &BTreeMap<String, i64>, origin: &std::path::Path) -> Result<()> {
        let get = |key: String, like: &Tensor| -> Result<&Tensor> {
            let t = tensors.get(&key).ok_or_else(|| Error::checkpoint(origin, format!("no tensor `{key}`")))?;
            if t.size() != like.size() {
                return Err(Error::checkpoint(origin, format!("`{key}` has shape {:?}, the parameter {:?}", t.size(), like.size())));
            }
            Ok(t)
        };
        for p in &self.params {
            get(format!("exp_avg.{}", p.name), &p.param)?;
            get(format!("exp_avg_sq.{}", p.name), &p.param)?;
            if p.anchor.is_some() {
                get(format!("anchor.{}", p.name), &p.param)?;
            }
        }
        tch::no_grad(|| {
            for p in &mut self.params {
                p.exp_avg.copy_(&tensors[&format!("exp_avg.{}", p.name)]);
                p.exp_avg_sq.copy_(&tensors[&format!("exp_avg_sq.{}", p.name)]);
                if let Some(a) = p.anchor.as_mut() {
                    a.copy_(&tensors[&format!("anchor.{}", p.name)]);
                }
                p.step = steps.get(&p.name).copied().unwrap_or(0);
            }
        });
        Ok(())
    }

    /// Clears every gradient.
    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            let mut grad = p.param.grad();
            if grad.defined() {
                let _ = grad.detach_().zero_();
            }
        }
    }

    /// One AdamW update of every parameter that has a gradient.
    pub fn step(&mut self) {
        let AdamWConfig { beta1, beta2, eps, bias_correction } = self.config;
        tch::no_grad(|| {
            for p in &mut self.params {
                let grad = p.param.grad();
                if !grad.defined() {
                    continue;
                }
                let lr = self.lrs[p.group];
                p.step += 1;
                match p.anchor.as_ref().filter(|_| p.decay_to_anchor) {
                    // Towards the pre-trained value: p − lr·wd·(p − p₀).
                    Some(a) if p.weight_decay != 0.0 => {
                        let _ = p.param.g_sub_(&(&p.param - a).g_mul_scalar(lr * p.weight_decay));
                    }
                    Some(_) => {}
                    None => {
                        let _ = p.param.g_mul_scalar_(1.0 - lr * p.weight_decay);
                    }
                }
                let _ = p.exp_avg.lerp_(&grad, 1.0 - beta1);
                // addcmul_(g, g, value=1-β2) computes v + ((1-β2)·g)·g.
                let _ = p.exp_avg_sq.g_mul_scalar_(beta2).addcmul_(&grad.g_mul_scalar(1.0 - beta2), &grad);
                let t = p.step as f64;
                let (bias_correction1, bias_correction2) = if bias_correction { (1.0 - beta1.powf(t), 1.0 - beta2.powf(t)) } else { (1.0, 1.0) };
                let step_size = lr / bias_correction1;
                // One temporary, divided and shifted in place (PyTorch's `(v.sqrt() / bc2).add_(eps)`).
                let denom = p.exp_avg_sq.sqrt().g_div_scalar_(bias_correction2.sqrt()).g_add_scalar_(eps);
                // addcdiv_(m, denom, value=-step_size) computes p + (-step_size·m) / denom.
                let _ = p.param.addcdiv_(&p.exp_avg.g_mul_scalar(-step_size), &denom);
            }
        });
    }
}

//! Adversarial training: FGM on the word embeddings, and adversarial weight perturbation (AWP).
//!
//! Both add one forward and backward pass to every optimizer step from `start` on, on weights
//! pushed in the direction that raises the loss, and restore the weights before the optimizer
//! steps:
//!
//! - **FGM** (Miyato, Dai & Goodfellow 2017, *Adversarial Training Methods for Semi-Supervised
//!   Text Classification*; the form the Kaggle solutions use): the word embedding table moves by
//!   `ε · g / ‖g‖`, and the perturbed pass's gradient is added to the clean one.
//! - **AWP** (Wu, Xia & Wang 2020, *Adversarial Weight Perturbation Helps Robust
//!   Generalization*; the AWP class of the Feedback Prize solutions): every parameter whose name
//!   holds `weight` moves by `lr · g / (‖g‖ + 1e-6) · (‖p‖ + 1e-6)`, clamped to `p ± ε·|p|`;
//!   the clean gradient is zeroed, so the step follows the perturbed weights' gradient alone.
//!
//! Frozen parameters (no gradient) are never perturbed. The loss in the logs is the clean one.
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::error::{Error, Result};

/// Which adversarial training, from which optimizer step. Written
/// `{"kind": "fgm", "epsilon": 1.0}` or by its name alone (`"awp"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Adversarial {
    Fgm {
        #[serde(default = "one")]
        epsilon: f64,
        #[serde(default)]
        start: usize,
    },
    Awp {
        /// The perturbation's size relative to each weight's norm (`adv_lr`).
        #[serde(default = "one")]
        lr: f64,
        /// How far each weight may move, relative to its magnitude (`adv_eps`).
        #[serde(default = "awp_epsilon")]
        epsilon: f64,
        #[serde(default)]
        start: usize,
    },
}

fn one() -> f64 {
    1.0
}

fn awp_epsilon() -> f64 {
    1e-3
}

/// The parameter FGM perturbs.
pub const WORD_EMBEDDINGS: &str = "embeddings.word_embeddings.weight";

/// What a perturbation changed: each parameter and its value before.
pub struct Perturbed(Vec<(Tensor, Tensor)>);

impl Adversarial {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        let (name, size) = match self {
            Adversarial::Fgm { epsilon, .. } => ("fgm epsilon", *epsilon),
            Adversarial::Awp { lr, epsilon, .. } if epsilon.is_finite() && *epsilon >= 0.0 => ("awp lr", *lr),
            Adversarial::Awp { epsilon, .. } => ("awp epsilon", *epsilon),
        };
        if !(size.is_finite() && size >= 0.0) {
            return Err(Error::Invalid(format!("recipe.adversarial: the {name} must be a non-negative number, got {size}")));
        }
        Ok(())
    }

    /// The first step with the extra pass.
    pub fn start(&self) -> usize {
        match self {
            Adversarial::Fgm { start, .. } | Adversarial::Awp { start, .. } => *start,
        }
    }

    /// Whether the perturbed pass's gradient replaces the clean one (AWP) or adds to it (FGM).
    pub fn replaces_gradient(&self) -> bool {
        matches!(self, Adversarial::Awp { .. })
    }

    /// Moves the parameters (name, tensor) as the method says, from their current gradients.
    pub fn perturb(&self, params: &[(String, Tensor)]) -> Perturbed {
        let mut saved = Vec::new();
        tch::no_grad(|| match self {
            Adversarial::Fgm { epsilon, .. } => {
                for (_, p) in params.iter().filter(|(n, p)| n == WORD_EMBEDDINGS && p.grad().defined()) {
                    saved.push((p.shallow_clone(), p.detach().copy()));
                    let grad = p.grad();
                    let norm = grad.norm().double_value(&[]);
                    if norm != 0.0 && !norm.is_nan() {
                        let _ = p.shallow_clone().g_add_(&(grad.g_mul_scalar(*epsilon) / norm));
                    }
                }
            }
            Adversarial::Awp { lr, epsilon, .. } => {
                let e = 1e-6;
                for (_, p) in params.iter().filter(|(n, p)| n.contains("weight") && p.grad().defined()) {
                    let before = p.detach().copy();
                    let reach = before.abs().g_mul_scalar(*epsilon);
                    let (low, high) = (&before - &reach, &before + &reach);
                    let grad = p.grad();
                    let (norm1, norm2) = (grad.norm().double_value(&[]), before.norm().double_value(&[]));
                    if norm1 != 0.0 && !norm1.is_nan() {
                        let mut t = p.shallow_clone();
                        let _ = t.g_add_(&(grad.g_mul_scalar(*lr) / (norm1 + e) * (norm2 + e)));
                        t.copy_(&t.maximum(&low).minimum(&high));
                    }
                    saved.push((p.shallow_clone(), before));
                }
            }
        });
        Perturbed(saved)
    }
}

impl Perturbed {
    /// Puts every perturbed parameter back.
    pub fn restore(self) {
        tch::no_grad(|| {
            for (mut p, before) in self.0 {
                p.copy_(&before);
            }
        });
    }
}

impl std::fmt::Display for Adversarial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Adversarial::Fgm { epsilon, start } => write!(f, "FGM on the word embeddings (epsilon {epsilon}) from step {start}"),
            Adversarial::Awp { lr, epsilon, start } => write!(f, "AWP (lr {lr}, epsilon {epsilon}) from step {start}"),
        }
    }
}

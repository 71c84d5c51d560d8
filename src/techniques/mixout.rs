//! Mixout (Lee, Cho & Kang 2020, *Mixout: Effective Regularization to Finetune Large-scale
//! Pretrained Language Models*, ICLR): in every training forward pass, each entry of every dense
//! layer's weight is, with probability `p`, swapped for its value before fine-tuning (its
//! pre-trained value; for the head, its initial value), and the result is rescaled so that its
//! expectation is the current weight:
//!
//! ```text
//! W_mix = ((1 − M) ⊙ W₀ + M ⊙ W − p · W₀) / (1 − p),   M ~ Bernoulli(1 − p)
//! ```
//!
//! As in the authors' code, it replaces dropout: the model runs with dropout off. One mask is
//! drawn per optimizer step (shared by its micro-batches). The mixed weights are written into
//! the parameters for the forward and backward passes, then the parameters are put back and
//! their gradients multiplied by `M / (1 − p)`, which is the gradient of `W_mix` with respect to
//! `W`: the same update as a layer that mixes inside its forward pass.
use tch::Tensor;

use crate::groups::{Role, Row};

/// Whether Mixout mixes the parameter of this group-table row: a dense layer's weight
/// (the encoder's, the pooler's, the head's linear layer).
pub fn mixes(row: &Row) -> bool {
    row.role == Role::Weight && row.name.ends_with(".weight")
}

/// One step's mixed weights: each parameter, its own value, and its mask.
pub struct Mixed {
    p: f64,
    saved: Vec<(Tensor, Tensor, Tensor)>,
}

impl Mixed {
    /// Draws a mask for each (parameter, value before fine-tuning) and writes the mixed weight
    /// into the parameter.
    pub fn draw(params: &[(&Tensor, &Tensor)], p: f64) -> Mixed {
        let saved = tch::no_grad(|| {
            params
                .iter()
                .map(|(w, target)| {
                    let mask = w.empty_like().bernoulli_float_(1.0 - p);
                    let own = w.detach().copy();
                    let mixed = ((mask.ones_like() - &mask) * *target + &mask * &own - target.g_mul_scalar(p)) / (1.0 - p);
                    let mut w = w.shallow_clone();
                    w.copy_(&mixed);
                    (w, own, mask)
                })
                .collect()
        });
        Mixed { p, saved }
    }

    /// Puts every parameter's own value back and turns the mixed weights' gradients into the
    /// parameters' (× M / (1 − p)).
    pub fn restore(self) {
        tch::no_grad(|| {
            for (mut w, own, mask) in self.saved {
                w.copy_(&own);
                let mut grad = w.grad();
                if grad.defined() {
                    let _ = grad.g_div_scalar_(1.0 - self.p).g_mul_(&mask);
                }
            }
        });
    }
}

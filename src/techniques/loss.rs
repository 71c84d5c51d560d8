//! The training loss: MSE, Huber or MAE for regression; cross-entropy with class weights and
//! label smoothing for classification.
//!
//! Huber (Huber 1964, `torch.nn.functional.huber_loss`) is quadratic within `delta` of the
//! target and linear beyond it, so a few badly rated examples pull less than under MSE; MAE
//! (`l1_loss`) is linear everywhere. Class weights scale each example's cross-entropy by its
//! true class's weight (and the mean is taken over the weights, as PyTorch does); label
//! smoothing (Szegedy et al. 2016) mixes the one-hot target with the uniform distribution
//! (`cross_entropy(label_smoothing=ε)`). Only the loss that trains changes: the dev set's `loss`
//! metric stays the MSE or the plain cross-entropy, comparable across recipes.
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::model::Task;

/// A training loss. Written `{"kind": "huber", "delta": 0.5}`, or by its name alone
/// (`"huber"`, `"mae"`) with default parameters. Absent: MSE for regression, cross-entropy
/// for classification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Loss {
    // `{}`: a key beside `kind` (`delta` on MAE, say) is refused, as with the other variants.
    Mse {},
    Huber {
        #[serde(default = "one")]
        delta: f64,
    },
    Mae {},
    CrossEntropy {
        #[serde(default)]
        label_smoothing: f64,
        /// One weight per class, in the order of the model's labels.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        class_weights: Option<Vec<f64>>,
    },
}

fn one() -> f64 {
    1.0
}

impl Loss {
    /// Checks the loss against the task: a regression loss for regression, cross-entropy with
    /// one weight per class for classification.
    pub fn validate(&self, task: &Task) -> Result<()> {
        let bad = |what: String| Err(Error::Invalid(format!("recipe.loss: {what}")));
        match (self, task) {
            (Loss::Mse {} | Loss::Mae {}, Task::Regression) => Ok(()),
            (Loss::Huber { delta }, Task::Regression) if delta.is_finite() && *delta > 0.0 => Ok(()),
            (Loss::Huber { delta }, Task::Regression) => bad(format!("huber's delta must be above 0, got {delta}")),
            (Loss::CrossEntropy { label_smoothing, class_weights }, Task::Classification { labels }) => {
                if !(0.0..1.0).contains(label_smoothing) {
                    return bad(format!("label_smoothing must be in [0, 1), got {label_smoothing}"));
                }
                match class_weights {
                    Some(w) if w.len() != labels.len() => bad(format!("class_weights has {} weights for {} classes ({})", w.len(), labels.len(), labels.join(", "))),
                    Some(w) if w.iter().any(|x| !(x.is_finite() && *x >= 0.0)) || w.iter().all(|x| *x == 0.0) => {
                        bad(format!("class_weights must be non-negative numbers, not all 0; got {w:?}"))
                    }
                    _ => Ok(()),
                }
            }
            (Loss::CrossEntropy { .. }, Task::Regression) => bad("cross_entropy is a classification loss; this task is regression (mse, huber or mae)".into()),
            (_, Task::Classification { .. }) => bad("mse, huber and mae are regression losses; this task is classification (cross_entropy)".into()),
        }
    }

    /// The mean loss of a batch's outputs (`[batch, 1]` values or `[batch, classes]` logits)
    /// against its targets; `None` is the task's default (MSE, cross-entropy). Computed in fp32.
    pub fn compute(loss: Option<&Loss>, task: &Task, outputs: &Tensor, targets: &Tensor) -> Tensor {
        let outputs = &crate::precision::to_fp32(outputs);
        let regression = || (outputs.squeeze_dim(-1), targets.to_kind(outputs.kind()));
        let mean = tch::Reduction::Mean;
        match (loss, task) {
            // The task's own (MSE on a classification task never gets here: `validate` refuses it).
            (None | Some(Loss::Mse {}), _) => crate::model::heads::default_loss(task, outputs, targets),
            (Some(Loss::Huber { delta }), _) => {
                let (p, t) = regression();
                p.huber_loss(&t, mean, *delta)
            }
            (Some(Loss::Mae {}), _) => {
                let (p, t) = regression();
                p.l1_loss(&t, mean)
            }
            (Some(Loss::CrossEntropy { label_smoothing, class_weights }), _) => {
                let weights = class_weights.as_ref().map(|w| Tensor::from_slice(w).to_kind(Kind::Float).to_device(outputs.device()));
                outputs.cross_entropy_loss(&targets.to_kind(Kind::Int64), weights.as_ref(), mean, -100, *label_smoothing)
            }
        }
    }
}

impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Loss::Mse {} => write!(f, "MSE"),
            Loss::Huber { delta } => write!(f, "Huber (delta {delta})"),
            Loss::Mae {} => write!(f, "MAE"),
            Loss::CrossEntropy { label_smoothing, class_weights } => {
                write!(f, "cross-entropy")?;
                if *label_smoothing > 0.0 {
                    write!(f, ", label smoothing {label_smoothing}")?;
                }
                if let Some(w) = class_weights {
                    write!(f, ", class weights {w:?}")?;
                }
                Ok(())
            }
        }
    }
}

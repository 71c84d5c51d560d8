//! Re-initialising the top encoder layers (and the pooler) before fine-tuning.
//!
//! Zhang et al., *Revisiting Few-sample BERT Fine-tuning* (ICLR 2021,
//! <https://arxiv.org/abs/2006.05987>), §5: the top layers of a pre-trained encoder specialise
//! in the pre-training task; re-initialising them often helps fine-tuning. The new values follow
//! transformers' `BertPreTrainedModel._init_weights`: dense weights from N(0, `initializer_range`²),
//! biases 0, LayerNorm weights 1 and biases 0.
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::groups::{Block, Role};
use crate::model::Model;

/// Which blocks to re-initialise, and the seed of the new weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reinit {
    /// How many encoder layers, counted from the top.
    pub top_layers: usize,
    /// Whether the pooler is re-initialised too.
    pub pooler: bool,
    pub seed: i64,
}

impl Default for Reinit {
    fn default() -> Self {
        Reinit { top_layers: 1, pooler: true, seed: 42 }
    }
}

/// Exactly which tensors were re-initialised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReinitReport {
    pub tensors: Vec<String>,
    pub parameters: i64,
}

impl Reinit {
    /// The blocks this re-initialises in a model with `num_layers` layers.
    pub fn blocks(&self, num_layers: usize) -> Result<Vec<Block>> {
        if self.top_layers > num_layers {
            return Err(Error::Invalid(format!(
                "re-init: top_layers is {} but the model has only {num_layers} layers",
                self.top_layers
            )));
        }
        let mut blocks: Vec<Block> = (num_layers - self.top_layers..num_layers).map(Block::Layer).collect();
        if self.pooler {
            blocks.push(Block::Pooler);
        }
        Ok(blocks)
    }

    /// Re-initialises the chosen blocks in place. The same seed gives the same weights; every
    /// other tensor is left untouched. Seeds libtorch's global generator with `seed`.
    ///
    /// ```
    /// use tunelab::{Config, Encoder, HeadSpec, Model, Pooling, techniques::Reinit};
    /// let encoder = Encoder::from_config(&Config::tiny(), tch::Device::Cpu, 0)?;
    /// let model = Model::new(encoder, HeadSpec::regression(Pooling::Cls))?;
    /// let report = Reinit { top_layers: 1, pooler: true, seed: 1 }.apply(&model)?;
    /// assert_eq!(report.tensors.len(), 16 + 2); // one BERT layer and the pooler
    /// # Ok::<(), tunelab::Error>(())
    /// ```
    pub fn apply(&self, model: &Model) -> Result<ReinitReport> {
        let cfg = &model.encoder.config;
        let blocks = self.blocks(cfg.num_hidden_layers)?;
        let vars = model.variables();
        tch::manual_seed(self.seed);
        let mut report = ReinitReport { tensors: Vec::new(), parameters: 0 };
        tch::no_grad(|| {
            for p in model.parameters() {
                if !Block::of(&p.name).is_some_and(|b| blocks.contains(&b)) {
                    continue;
                }
                let mut t = vars[&p.name].shallow_clone();
                let _ = match p.role {
                    Role::Weight | Role::Embedding => t.normal_(0.0, cfg.initializer_range),
                    Role::Bias => t.zero_(),
                    Role::Norm if p.name.ends_with(".weight") => t.fill_(1.0),
                    Role::Norm => t.zero_(),
                };
                report.parameters += p.numel;
                report.tensors.push(p.name);
            }
        });
        Ok(report)
    }
}

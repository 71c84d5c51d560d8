//! Re-initialising the top encoder layers (and the pooler) before fine-tuning.
//!
//! Zhang et al., *Revisiting Few-sample BERT Fine-tuning* (ICLR 2021,
//! <https://arxiv.org/abs/2006.05987>), §5: the top layers of a pre-trained encoder specialise
//! in the pre-training task; re-initialising them often helps fine-tuning. The new values follow
//! transformers' `BertPreTrainedModel._init_weights`: dense weights from N(0, `initializer_range`²),
//! biases 0, LayerNorm weights 1 and biases 0.
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::groups::Block;
use crate::model::Model;
use crate::model::init::init_weights;

/// Which blocks to re-initialise, and the seed of the new weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Reinit {
    /// How many encoder layers, counted from the top.
    pub top_layers: usize,
    /// Whether the pooler is re-initialised too.
    pub pooler: bool,
    /// The seed of the new weights; `None` (the default): the run's `training.seed`, so that
    /// every seed of an ablation draws other weights. Pin it to compare recipes on one draw.
    pub seed: Option<u64>,
}

impl Default for Reinit {
    fn default() -> Self {
        Reinit { top_layers: 1, pooler: true, seed: None }
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
    /// other tensor is left untouched. The draws come from tunelab's own generator
    /// ([`crate::model::init`]), so nothing else in the process disturbs them.
    ///
    /// ```
    /// use tunelab::{Config, Encoder, HeadSpec, Model, Pooling, techniques::Reinit};
    /// let encoder = Encoder::from_config(&Config::tiny(), tch::Device::Cpu, 0)?;
    /// let model = Model::new(encoder, HeadSpec::regression(Pooling::Cls))?;
    /// let report = Reinit { top_layers: 1, pooler: true, seed: None }.apply(&model, 1)?;
    /// assert_eq!(report.tensors.len(), 16 + 2); // one BERT layer and the pooler
    /// # Ok::<(), tunelab::Error>(())
    /// ```
    /// `run_seed` is used when the technique pins no seed of its own.
    pub fn apply(&self, model: &Model, run_seed: u64) -> Result<ReinitReport> {
        let cfg = &model.encoder.config;
        let blocks = self.blocks(cfg.num_hidden_layers)?;
        let vars = model.variables();
        let chosen: Vec<_> =
            model.parameters()?.into_iter().filter(|p| Block::of(&p.name).is_some_and(|b| blocks.contains(&b))).collect();
        init_weights(chosen.iter().map(|p| (p.name.as_str(), &vars[&p.name], p.role)), cfg.initializer_range, self.seed.unwrap_or(run_seed));
        Ok(ReinitReport { parameters: chosen.iter().map(|p| p.numel).sum(), tensors: chosen.into_iter().map(|p| p.name).collect() })
    }
}

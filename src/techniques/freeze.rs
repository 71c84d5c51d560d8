//! Freezing the bottom of the encoder, and gradual unfreezing.
//!
//! Howard & Ruder 2018 (*Universal Language Model Fine-tuning*, ULMFiT §3.2) fine-tune the top
//! first and unfreeze one more layer group from the top at each step of a schedule, so that the
//! lower, more general layers move last. Here the frozen blocks are the embeddings and/or the
//! bottom `k` encoder layers; with `unfreeze_every: N` the topmost frozen block trains from step
//! `N`, the next from `2N`, and so on down to the embeddings; without it they stay frozen for the
//! whole run. A frozen parameter gets no gradient (`requires_grad` off, so the backward pass
//! skips it), no update and no weight decay, and AdamW's moments for it start when it first
//! trains, as PyTorch's optimizers create their state at a parameter's first update. The plan
//! and the LR plot show a group at LR 0 while all of its blocks are frozen.
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::groups::Block;

/// Which blocks start frozen, and when they thaw.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Freeze {
    pub embeddings: bool,
    pub bottom_layers: usize,
    /// Gradual unfreezing: one more block from the top every this many optimizer steps
    /// (`None`: frozen for the whole run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unfreeze_every: Option<usize>,
}

impl Freeze {
    /// The frozen blocks, top first (the order they thaw in), each with the first step it trains
    /// at (`usize::MAX`: never).
    pub fn thaw_steps(&self, num_layers: usize) -> Result<Vec<(Block, usize)>> {
        if self.bottom_layers > num_layers {
            return Err(Error::Invalid(format!("recipe.freeze.bottom_layers is {} but the model has only {num_layers} layers", self.bottom_layers)));
        }
        if self.unfreeze_every == Some(0) {
            return Err(Error::Invalid("recipe.freeze.unfreeze_every must be at least 1 (or absent: frozen for the whole run)".into()));
        }
        let mut blocks: Vec<Block> = (0..self.bottom_layers).rev().map(Block::Layer).collect();
        if self.embeddings {
            blocks.push(Block::Embeddings);
        }
        Ok(blocks.into_iter().enumerate().map(|(j, b)| (b, self.unfreeze_every.map_or(usize::MAX, |n| n.saturating_mul(j + 1)))).collect())
    }

    /// The first step `block` trains at (0 for a block never frozen).
    pub fn trains_from(thaw: &[(Block, usize)], block: Block) -> usize {
        thaw.iter().find(|(b, _)| *b == block).map_or(0, |(_, s)| *s)
    }
}

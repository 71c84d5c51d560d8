//! The MPNet encoder (all-mpnet-base-v2) on libtorch.
//!
//! MPNet: Song et al., *MPNet: Masked and Permuted Pre-training for Language Understanding*,
//! 2020, <https://arxiv.org/abs/2004.09297>.
//!
//! Mirrors `transformers/models/mpnet/modeling_mpnet.py`, with its parameter names
//! (`encoder.layer.3.attention.attn.q.weight`). It is BERT with three differences:
//! - the embeddings have no token types and count positions as RoBERTa does (from
//!   `pad_token_id + 1`, padding is token 1);
//! - the attention projections are named `attn.{q,k,v,o}` and its LayerNorm sits at
//!   `attention.LayerNorm`;
//! - a learned bias per head and relative distance (`encoder.relative_attention_bias`, 32
//!   buckets, shared by all layers) is added to every layer's attention scores.
//!
//! Every other block (feed-forward, pooler, LayerNorm, dense layers) is BERT's, from
//! [`super::bert`].
use tch::{Kind, Tensor, nn};

use super::bert::{Attention, EncoderOutput, Embeddings, FeedForward, LayerNorm, Layer, Linear, Pooler, additive_mask, embedding};
use super::config::{Config, RELATIVE_BUCKETS};
use crate::model::roles::Role;

/// Relative distances up to this many tokens get their own buckets on a log scale; farther
/// ones share the last bucket (`max_distance` in transformers).
const MAX_DISTANCE: f64 = 128.0;

/// `MPNetModel`: embeddings, `num_hidden_layers` layers sharing one relative position bias,
/// the pooler.
#[derive(Debug)]
pub struct MPNet {
    pub embeddings: Embeddings,
    pub layers: Vec<Layer>,
    /// `[buckets, heads]`: the bias added to the attention score of each head for each bucket
    /// of relative distance.
    pub relative_attention_bias: Tensor,
    pub pooler: Pooler,
    pub config: Config,
}

/// `MPNetAttention`: BERT's attention block under MPNet's names.
fn attention(p: nn::Path, cfg: &Config) -> Attention {
    let (h, std) = (cfg.hidden_size, cfg.initializer_range);
    let attn = &p / "attn";
    let linear = |name: &str| Linear::new(&attn / name, h, h, std);
    let layer_norm = LayerNorm::new(&p / "LayerNorm", h, cfg.layer_norm_eps);
    Attention::from_parts([linear("q"), linear("k"), linear("v"), linear("o")], layer_norm, cfg)
}

impl MPNet {
    /// Creates the encoder's variables under `p` with transformers' initialisation.
    pub fn new(p: &nn::Path, cfg: &Config) -> Self {
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| {
                let p = p / "encoder" / "layer" / i;
                Layer { attention: attention(&p / "attention", cfg), feed_forward: FeedForward::new(p, cfg) }
            })
            .collect();
        let relative_attention_bias = embedding(
            p / "encoder" / "relative_attention_bias",
            cfg.relative_attention_num_buckets,
            cfg.num_attention_heads,
            cfg.initializer_range,
            None,
        );
        MPNet {
            embeddings: Embeddings::new(p / "embeddings", cfg),
            layers,
            relative_attention_bias,
            pooler: Pooler::new(p / "pooler", cfg),
            config: cfg.clone(),
        }
    }

    /// `[1, heads, len, len]`: the bias each head adds to the score of query `i` on key `j`
    /// (`compute_position_bias` in transformers).
    pub fn position_bias(&self, len: i64) -> Tensor {
        // The buckets on the CPU, as transformers computes them (the log scale's rounding is
        // then the CPU's on every device), then moved.
        let positions = Tensor::arange(len, (Kind::Int64, tch::Device::Cpu));
        let relative = positions.unsqueeze(0) - positions.unsqueeze(1);
        let buckets = relative_position_bucket(&relative).to_device(self.relative_attention_bias.device());
        Tensor::embedding(&self.relative_attention_bias, &buckets, -1, false, false).permute([2, 0, 1]).unsqueeze(0)
    }

    /// Runs the encoder. `input_ids` and `attention_mask` (1 for tokens, 0 for padding) are
    /// `[batch, len]` integer tensors.
    pub fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor, train: bool) -> EncoderOutput {
        let mut xs = self.embeddings.forward(input_ids, None, train);
        let len = input_ids.size()[1];
        // `[batch, heads, len, len]`, made once in the format the attention computes in (so
        // that no layer casts it again).
        let kind = crate::precision::compute_kind().unwrap_or(xs.kind());
        let mask = (additive_mask(attention_mask, xs.kind()) + self.position_bias(len)).to_kind(kind);
        let mut hidden_states = vec![xs.shallow_clone()];
        for layer in &self.layers {
            xs = layer.forward(&xs, &mask, train);
            hidden_states.push(xs.shallow_clone());
        }
        let pooler_output = self.pooler.forward(&xs);
        EncoderOutput { last_hidden_state: xs, pooler_output, hidden_states }
    }

    /// Every parameter with its role. The relative position bias (one row per distance
    /// bucket) is listed with the embeddings: it trains at their LR, without weight decay.
    pub fn roles(&self) -> Vec<(&Tensor, Role)> {
        let mut out = Vec::new();
        self.embeddings.roles(&mut out);
        out.push((&self.relative_attention_bias, Role::PositionBias));
        for layer in &self.layers {
            layer.roles(&mut out);
        }
        self.pooler.dense.roles(&mut out);
        out
    }
}

/// The bucket of each relative distance `key - query` (`relative_position_bucket` in
/// transformers, 32 buckets, `max_distance` 128): half the buckets for keys before the query,
/// half for keys after; in each half, distances below 8 exactly, then on a log scale up to 128.
pub fn relative_position_bucket(relative: &Tensor) -> Tensor {
    let half = (RELATIVE_BUCKETS / 2) as i64;
    let max_exact = half / 2;
    let n = -relative;
    let side = n.lt(0).to_kind(Kind::Int64) * half;
    let n = n.abs();
    let log_scaled = (n.to_kind(Kind::Float) / max_exact as f64).log() / (MAX_DISTANCE / max_exact as f64).ln()
        * (half - max_exact) as f64;
    let large = (log_scaled.to_kind(Kind::Int64) + max_exact).clamp_max(half - 1);
    side + n.where_self(&n.lt(max_exact), &large)
}

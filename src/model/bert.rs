//! BERT (and RoBERTa) encoders on libtorch; the blocks MPNet shares with them.
//!
//! BERT: Devlin et al., *BERT: Pre-training of Deep Bidirectional Transformers for Language
//! Understanding*, 2018, <https://arxiv.org/abs/1810.04805>. RoBERTa: Liu et al., 2019,
//! <https://arxiv.org/abs/1907.11692>.
//!
//! The blocks mirror `transformers/models/bert/modeling_bert.py` one to one, and every
//! parameter lives at the path transformers gives it (`encoder.layer.3.attention.self.query.weight`),
//! so that layer-wise techniques address layers by the names researchers know and saved weights
//! load back in transformers. Weights are created with transformers' `_init_weights` (normal with
//! `initializer_range`, zero biases, LayerNorm one and zero); loading a checkpoint overwrites them.
//! Dropout is applied only when `train` is true.
use tch::{Kind, Tensor, nn};

use super::config::{Config, ModelType};
use crate::model::roles::Role;

/// A dense layer, `y = x W^T + b`, created as transformers initialises `nn.Linear`.
#[derive(Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Linear {
    pub fn new(p: nn::Path, in_dim: usize, out_dim: usize, std: f64) -> Self {
        let weight = p.var("weight", &[out_dim as i64, in_dim as i64], normal(std));
        let bias = p.var("bias", &[out_dim as i64], nn::Init::Const(0.0));
        Linear { weight, bias }
    }

    /// In the format of the current [`crate::precision::autocast`] region (fp32 outside one).
    pub fn forward(&self, xs: &Tensor) -> Tensor {
        crate::precision::linear(xs, &self.weight, &self.bias)
    }

    pub fn roles<'a>(&'a self, out: &mut Vec<(&'a Tensor, Role)>) {
        out.extend([(&self.weight, Role::Weight), (&self.bias, Role::Bias)]);
    }
}

/// `nn.LayerNorm` over the last dimension.
#[derive(Debug)]
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    pub fn new(p: nn::Path, dim: usize, eps: f64) -> Self {
        let weight = p.var("weight", &[dim as i64], nn::Init::Const(1.0));
        let bias = p.var("bias", &[dim as i64], nn::Init::Const(0.0));
        LayerNorm { weight, bias, eps }
    }

    /// Always in fp32, as autocast keeps it.
    pub fn forward(&self, xs: &Tensor) -> Tensor {
        let dim = *xs.size().last().expect("layer norm input has a last dimension");
        crate::precision::to_fp32(xs).layer_norm([dim], Some(&self.weight), Some(&self.bias), self.eps, false)
    }

    pub fn roles<'a>(&'a self, out: &mut Vec<(&'a Tensor, Role)>) {
        out.extend([(&self.weight, Role::Norm), (&self.bias, Role::Norm)]);
    }
}

fn normal(stdev: f64) -> nn::Init {
    nn::Init::Randn { mean: 0.0, stdev }
}

/// An embedding table; the padding row (if any) starts at zero, as in transformers.
pub(crate) fn embedding(p: nn::Path, rows: usize, dim: usize, std: f64, padding_idx: Option<usize>) -> Tensor {
    let weight = p.var("weight", &[rows as i64, dim as i64], normal(std));
    if let Some(pad) = padding_idx.filter(|&pad| pad < rows) {
        let _ = tch::no_grad(|| weight.get(pad as i64).zero_());
    }
    weight
}

/// `BertEmbeddings` / `RobertaEmbeddings` / `MPNetEmbeddings`: word + position (+ token type,
/// which MPNet does not have), then LayerNorm and dropout.
#[derive(Debug)]
pub struct Embeddings {
    pub word_embeddings: Tensor,
    pub position_embeddings: Tensor,
    pub token_type_embeddings: Option<Tensor>,
    pub layer_norm: LayerNorm,
    model_type: ModelType,
    pad_token_id: i64,
    /// The rows whose gradient stays zero (`nn.Embedding(padding_idx=..)`): the padding token,
    /// and for RoBERTa and MPNet the padding position too.
    word_padding_idx: i64,
    position_padding_idx: i64,
    dropout: f64,
}

impl Embeddings {
    pub fn new(p: nn::Path, cfg: &Config) -> Self {
        let std = cfg.initializer_range;
        let h = cfg.hidden_size;
        let pad = Some(cfg.pad_token_id);
        // RobertaEmbeddings and MPNetEmbeddings give their position table a padding index;
        // BertEmbeddings does not.
        let position_pad = (cfg.model_type != ModelType::Bert).then_some(cfg.pad_token_id);
        Embeddings {
            word_embeddings: embedding(&p / "word_embeddings", cfg.vocab_size, h, std, pad),
            position_embeddings: embedding(
                &p / "position_embeddings",
                cfg.max_position_embeddings,
                h,
                std,
                position_pad,
            ),
            token_type_embeddings: (cfg.model_type != ModelType::MPNet)
                .then(|| embedding(&p / "token_type_embeddings", cfg.type_vocab_size, h, std, None)),
            layer_norm: LayerNorm::new(&p / "LayerNorm", h, cfg.layer_norm_eps),
            model_type: cfg.model_type,
            pad_token_id: cfg.pad_token_id as i64,
            word_padding_idx: cfg.pad_token_id as i64,
            position_padding_idx: position_pad.map_or(-1, |p| p as i64),
            dropout: cfg.hidden_dropout_prob,
        }
    }

    /// Zeroes the rows of the padding token (and, for RoBERTa and MPNet, the padding position), as
    /// `nn.Embedding(padding_idx=..)` starts them.
    pub fn zero_padding_rows(&self) {
        tch::no_grad(|| {
            let _ = self.word_embeddings.get(self.word_padding_idx).zero_();
            if self.position_padding_idx >= 0 {
                let _ = self.position_embeddings.get(self.position_padding_idx).zero_();
            }
        });
    }

    /// The position ids: `0..L` for BERT; for RoBERTa and MPNet, counting from
    /// `pad_token_id + 1` over non-padding tokens (`create_position_ids_from_input_ids` in
    /// transformers).
    pub fn position_ids(&self, input_ids: &Tensor) -> Tensor {
        match self.model_type {
            ModelType::Bert => {
                let len = input_ids.size()[1];
                Tensor::arange(len, (Kind::Int64, input_ids.device())).unsqueeze(0).expand_as(input_ids)
            }
            ModelType::Roberta | ModelType::MPNet => {
                let mask = input_ids.ne(self.pad_token_id).to_kind(Kind::Int64);
                mask.cumsum(1, Kind::Int64) * &mask + self.pad_token_id
            }
        }
    }

    pub fn roles<'a>(&'a self, out: &mut Vec<(&'a Tensor, Role)>) {
        out.extend([(&self.word_embeddings, Role::Embedding), (&self.position_embeddings, Role::Embedding)]);
        if let Some(table) = &self.token_type_embeddings {
            out.push((table, Role::Embedding));
        }
        self.layer_norm.roles(out);
    }

    /// `token_type_ids` (`None`: all 0) is ignored by a model without token types (MPNet).
    pub fn forward(&self, input_ids: &Tensor, token_type_ids: Option<&Tensor>, train: bool) -> Tensor {
        let words = Tensor::embedding(&self.word_embeddings, input_ids, self.word_padding_idx, false, false);
        let positions = Tensor::embedding(
            &self.position_embeddings,
            &self.position_ids(input_ids),
            self.position_padding_idx,
            false,
            false,
        );
        let xs = match (&self.token_type_embeddings, token_type_ids) {
            (Some(table), Some(types)) => words + positions + Tensor::embedding(table, types, -1, false, false),
            (Some(table), None) => words + positions + table.get(0),
            (None, _) => words + positions,
        };
        let xs = self.layer_norm.forward(&xs);
        xs.dropout(self.dropout, train)
    }
}

/// `BertSelfAttention` + `BertSelfOutput`: multi-head attention, a projection, a residual
/// connection and LayerNorm. The attention product is PyTorch's fused
/// `scaled_dot_product_attention`, as transformers' default `sdpa` implementation uses.
#[derive(Debug)]
pub struct Attention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub output: Linear,
    pub layer_norm: LayerNorm,
    num_heads: i64,
    head_dim: i64,
    attention_dropout: f64,
    hidden_dropout: f64,
}

impl Attention {
    /// `p` is `encoder.layer.{i}.attention`.
    pub fn new(p: nn::Path, cfg: &Config) -> Self {
        let (h, std) = (cfg.hidden_size, cfg.initializer_range);
        let s = &p / "self";
        let o = &p / "output";
        let linear = |p: nn::Path| Linear::new(p, h, h, std);
        let layer_norm = LayerNorm::new(&o / "LayerNorm", h, cfg.layer_norm_eps);
        Attention::from_parts([linear(&s / "query"), linear(&s / "key"), linear(&s / "value"), linear(&o / "dense")], layer_norm, cfg)
    }

    /// An attention block from its projections (query, key, value, output) and LayerNorm,
    /// for architectures that name them differently.
    pub fn from_parts(projections: [Linear; 4], layer_norm: LayerNorm, cfg: &Config) -> Self {
        let [query, key, value, output] = projections;
        Attention {
            query,
            key,
            value,
            output,
            layer_norm,
            num_heads: cfg.num_attention_heads as i64,
            head_dim: cfg.head_dim() as i64,
            attention_dropout: cfg.attention_probs_dropout_prob,
            hidden_dropout: cfg.hidden_dropout_prob,
        }
    }

    /// `mask` is added to the scaled scores: `[batch, 1, 1, len]`, 0 where a token is attended
    /// to and the most negative float where it is padding (MPNet adds its position bias to it,
    /// making it `[batch, heads, len, len]`).
    pub fn forward(&self, xs: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        let (b, l, h) = xs.size3().expect("hidden states are [batch, len, hidden]");
        let heads = |t: Tensor| t.view([b, l, self.num_heads, self.head_dim]).transpose(1, 2);
        let q = heads(self.query.forward(xs));
        let k = heads(self.key.forward(xs));
        let v = heads(self.value.forward(xs));
        let dropout = if train { self.attention_dropout } else { 0.0 };
        let mask = if mask.kind() == q.kind() { mask.shallow_clone() } else { mask.to_kind(q.kind()) };
        let context = Tensor::scaled_dot_product_attention(&q, &k, &v, Some(&mask), dropout, false, None, false);
        let context = context.transpose(1, 2).contiguous().view([b, l, h]);
        let projected = self.output.forward(&context).dropout(self.hidden_dropout, train);
        self.layer_norm.forward(&(projected + xs))
    }
}

/// `BertIntermediate` + `BertOutput`: the feed-forward block with its residual and LayerNorm.
#[derive(Debug)]
pub struct FeedForward {
    pub intermediate: Linear,
    pub output: Linear,
    pub layer_norm: LayerNorm,
    activation: super::config::Activation,
    dropout: f64,
}

impl FeedForward {
    /// `p` is `encoder.layer.{i}`.
    pub fn new(p: nn::Path, cfg: &Config) -> Self {
        let (h, std) = (cfg.hidden_size, cfg.initializer_range);
        FeedForward {
            intermediate: Linear::new(&p / "intermediate" / "dense", h, cfg.intermediate_size, std),
            output: Linear::new(&p / "output" / "dense", cfg.intermediate_size, h, std),
            layer_norm: LayerNorm::new(&p / "output" / "LayerNorm", h, cfg.layer_norm_eps),
            activation: cfg.hidden_act,
            dropout: cfg.hidden_dropout_prob,
        }
    }

    pub fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        let ys = self.activation.forward(&self.intermediate.forward(xs));
        let ys = self.output.forward(&ys).dropout(self.dropout, train);
        self.layer_norm.forward(&(ys + xs))
    }
}

/// `BertLayer`: attention, then feed-forward.
#[derive(Debug)]
pub struct Layer {
    pub attention: Attention,
    pub feed_forward: FeedForward,
}

impl Layer {
    pub fn new(p: nn::Path, cfg: &Config) -> Self {
        Layer { attention: Attention::new(&p / "attention", cfg), feed_forward: FeedForward::new(p, cfg) }
    }

    pub fn forward(&self, xs: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        self.feed_forward.forward(&self.attention.forward(xs, mask, train), train)
    }

    pub fn roles<'a>(&'a self, out: &mut Vec<(&'a Tensor, Role)>) {
        let a = &self.attention;
        for linear in [&a.query, &a.key, &a.value, &a.output] {
            linear.roles(out);
        }
        a.layer_norm.roles(out);
        let f = &self.feed_forward;
        f.intermediate.roles(out);
        f.output.roles(out);
        f.layer_norm.roles(out);
    }
}

/// `BertPooler`: a dense layer and tanh on the first token's hidden state.
#[derive(Debug)]
pub struct Pooler {
    pub dense: Linear,
}

impl Pooler {
    pub fn new(p: nn::Path, cfg: &Config) -> Self {
        Pooler { dense: Linear::new(&p / "dense", cfg.hidden_size, cfg.hidden_size, cfg.initializer_range) }
    }

    pub fn forward(&self, hidden: &Tensor) -> Tensor {
        self.dense.forward(&hidden.select(1, 0)).tanh()
    }
}

/// What the encoder returns.
#[derive(Debug)]
pub struct EncoderOutput {
    /// `[batch, len, hidden]`.
    pub last_hidden_state: Tensor,
    /// `[batch, hidden]`: the pooler applied to the first token.
    pub pooler_output: Tensor,
    /// The embeddings' output and every layer's, `num_hidden_layers + 1` tensors
    /// `[batch, len, hidden]` (transformers' `hidden_states`); the last is `last_hidden_state`.
    pub hidden_states: Vec<Tensor>,
}

/// `BertModel`: embeddings, `num_hidden_layers` layers, the pooler.
#[derive(Debug)]
pub struct Bert {
    pub embeddings: Embeddings,
    pub layers: Vec<Layer>,
    pub pooler: Pooler,
    pub config: Config,
}

impl Bert {
    /// Creates the encoder's variables under `p` (normally the root of a `VarStore`), with
    /// transformers' initialisation.
    pub fn new(p: &nn::Path, cfg: &Config) -> Self {
        let layers = (0..cfg.num_hidden_layers).map(|i| Layer::new(p / "encoder" / "layer" / i, cfg)).collect();
        Bert {
            embeddings: Embeddings::new(p / "embeddings", cfg),
            layers,
            pooler: Pooler::new(p / "pooler", cfg),
            config: cfg.clone(),
        }
    }

    /// Runs the encoder. `input_ids`, `attention_mask` (1 for tokens, 0 for padding) and
    /// `token_type_ids` are `[batch, len]` integer tensors.
    pub fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor, token_type_ids: &Tensor, train: bool) -> EncoderOutput {
        let mut xs = self.embeddings.forward(input_ids, Some(token_type_ids), train);
        let mask = additive_mask(attention_mask, xs.kind());
        let mut hidden_states = vec![xs.shallow_clone()];
        for layer in &self.layers {
            xs = layer.forward(&xs, &mask, train);
            hidden_states.push(xs.shallow_clone());
        }
        let pooler_output = self.pooler.forward(&xs);
        EncoderOutput { last_hidden_state: xs, pooler_output, hidden_states }
    }

    /// Every parameter with what it is (a dense weight, a bias, a LayerNorm parameter, an
    /// embedding table), which decides its weight decay.
    pub fn roles(&self) -> Vec<(&Tensor, Role)> {
        let e = &self.embeddings;
        let mut out = Vec::new();
        e.roles(&mut out);
        for layer in &self.layers {
            layer.roles(&mut out);
        }
        self.pooler.dense.roles(&mut out);
        out
    }
}

/// `[batch, len]` of 1/0 to `[batch, 1, 1, len]` of 0/most-negative, as transformers'
/// `_prepare_4d_attention_mask_for_sdpa`.
pub fn additive_mask(attention_mask: &Tensor, kind: Kind) -> Tensor {
    let min = match kind {
        Kind::Double => f64::MIN,
        Kind::Half => -65504.0,
        Kind::BFloat16 => -3.389_531_389_251_535e38,
        _ => f32::MIN as f64,
    };
    let keep = attention_mask.to_kind(kind).unsqueeze(1).unsqueeze(1);
    (keep.ones_like() - keep) * min
}

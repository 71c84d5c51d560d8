//! Task heads: a pooling of the encoder's output, dropout and one linear layer.
//!
//! Regression predicts one number (trained with MSE); classification predicts `k` logits
//! (trained with cross-entropy). The pooling is the pooler output (as in the seed article and
//! `BertForSequenceClassification`), the `[CLS]` hidden state, the mean over real tokens, or one
//! of the poolings of the CommonLit and Feedback Prize solutions:
//!
//! - `attention`: a learned query `q` scores every token state, `softmax(H q)` over the real
//!   tokens (padding masked out) weighs their mean (variable `head.attention_query`);
//! - `weighted_layers`: the first-token states of the top `layers` layers, averaged with
//!   softmax-normalised learned weights (`head.layer_weights`, starting equal);
//! - `concat`: the first-token states of the top `layers` layers side by side (top layer
//!   first), so the linear layer reads `layers × hidden` numbers.
//!
//! `samples: k` is multi-sample dropout (Inoue 2019): in training the pooled vector goes through
//! `k` dropout masks and the linear layer, and the loss is the mean of the `k` losses; evaluation
//! and prediction use no dropout, so one pass. `dropout` sets the head's dropout (default: the
//! encoder's `classifier_dropout`, else `hidden_dropout_prob`).
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor, nn};

use super::bert::{EncoderOutput, Linear};
use crate::error::{Error, Result};

/// How one vector is taken from the encoder's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// The pooler output: dense + tanh on the first token (`BertForSequenceClassification`).
    #[default]
    Pooler,
    /// The first token's (`[CLS]` / `<s>`) last hidden state.
    Cls,
    /// The mean of the last hidden states over the attention mask (sentence-transformers).
    Mean,
    /// A learned query's softmax attention over the token states (padding masked).
    Attention,
    /// A softmax-weighted mean of the top layers' first-token states.
    WeightedLayers,
    /// The top layers' first-token states, concatenated.
    Concat,
}

impl std::str::FromStr for Pooling {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "pooler" => Ok(Pooling::Pooler),
            "cls" => Ok(Pooling::Cls),
            "mean" => Ok(Pooling::Mean),
            "attention" => Ok(Pooling::Attention),
            "weighted_layers" => Ok(Pooling::WeightedLayers),
            "concat" => Ok(Pooling::Concat),
            other => Err(Error::Invalid(format!("unknown pooling `{other}`: expected pooler, cls, mean, attention, weighted_layers or concat"))),
        }
    }
}

/// What the model predicts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Task {
    /// One real number per text.
    Regression,
    /// One of `labels.len()` classes per text; the label names are saved with the model.
    Classification { labels: Vec<String> },
}

impl Task {
    /// The number of outputs of the head.
    pub fn outputs(&self) -> usize {
        match self {
            Task::Regression => 1,
            Task::Classification { labels } => labels.len(),
        }
    }
}

/// The head's settings beyond its pooling (each absent: its default).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeadOptions {
    /// `weighted_layers` and `concat`: how many top layers they read (default 4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<usize>,
    /// The dropout before the linear layer (default: the encoder's classifier dropout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
    /// Multi-sample dropout: this many dropout masks in training, the loss averaged over them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
}

impl HeadOptions {
    pub fn is_default(&self) -> bool {
        *self == HeadOptions::default()
    }

    /// The number of top layers a layer pooling reads.
    pub fn layers(&self) -> usize {
        self.layers.unwrap_or(4)
    }
}

/// The head's description, saved as `tunelab.json` next to the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadSpec {
    pub task: Task,
    #[serde(default)]
    pub pooling: Pooling,
    #[serde(flatten)]
    pub options: HeadOptions,
}

impl HeadSpec {
    pub fn regression(pooling: Pooling) -> Self {
        HeadSpec { task: Task::Regression, pooling, options: HeadOptions::default() }
    }

    pub fn classification(labels: Vec<String>, pooling: Pooling) -> Self {
        HeadSpec { task: Task::Classification { labels }, pooling, options: HeadOptions::default() }
    }

    /// Checks the head against an encoder of `num_layers` layers.
    pub fn check(&self, num_layers: usize) -> Result<()> {
        self.validate()?;
        let o = &self.options;
        if matches!(self.pooling, Pooling::WeightedLayers | Pooling::Concat) && !(1..=num_layers).contains(&o.layers()) {
            return Err(Error::Invalid(format!("head.layers is {}: the {:?} pooling reads 1 to {num_layers} layers of this model", o.layers(), self.pooling)));
        }
        if let Some(p) = o.dropout.filter(|p| !(0.0..1.0).contains(p)) {
            return Err(Error::Invalid(format!("head.dropout must be in [0, 1), got {p}")));
        }
        if o.samples == Some(0) {
            return Err(Error::Invalid("head.samples must be at least 1".into()));
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<()> {
        if let Task::Classification { labels } = &self.task
            && labels.len() < 2
        {
            return Err(Error::Invalid(format!(
                "classification needs at least 2 labels, got {}",
                labels.len()
            )));
        }
        Ok(())
    }
}

/// Pooling, dropout and a linear layer, under the variable path `head`.
#[derive(Debug)]
pub struct Head {
    pub spec: HeadSpec,
    pub linear: Linear,
    /// `attention`: the learned query, `[hidden]` (`head.attention_query`).
    pub query: Option<Tensor>,
    /// `weighted_layers`: one logit per layer read, `[layers]` (`head.layer_weights`).
    pub layer_weights: Option<Tensor>,
    dropout: f64,
}

impl Head {
    /// Creates the head's variables under `p` (normally `root / "head"`); `dropout` is the
    /// encoder's, used unless the spec sets its own.
    pub fn new(p: nn::Path, spec: HeadSpec, hidden_size: usize, dropout: f64, init_std: f64) -> Self {
        let width = if spec.pooling == Pooling::Concat { hidden_size * spec.options.layers() } else { hidden_size };
        let query = (spec.pooling == Pooling::Attention).then(|| p.var("attention_query", &[hidden_size as i64], nn::Init::Randn { mean: 0.0, stdev: init_std }));
        let layer_weights = (spec.pooling == Pooling::WeightedLayers).then(|| p.var("layer_weights", &[spec.options.layers() as i64], nn::Init::Const(0.0)));
        let linear = Linear::new(p, width, spec.task.outputs(), init_std);
        let dropout = spec.options.dropout.unwrap_or(dropout);
        Head { spec, linear, query, layer_weights, dropout }
    }

    /// The head's variables with their roles: the linear layer's, the attention query (a
    /// weight: decayed) and the layer weights (not decayed, as a LayerNorm gain).
    pub fn roles<'a>(&'a self, out: &mut Vec<(&'a Tensor, super::roles::Role)>) {
        self.linear.roles(out);
        out.extend(self.query.iter().map(|q| (q, super::roles::Role::Weight)));
        out.extend(self.layer_weights.iter().map(|w| (w, super::roles::Role::Norm)));
    }

    /// The pooled vector, `[batch, width]`.
    pub fn pool(&self, out: &EncoderOutput, attention_mask: &Tensor) -> Tensor {
        let top = |k: usize| -> Vec<Tensor> { out.hidden_states.iter().rev().take(k).map(|h| h.select(1, 0)).collect() };
        match self.spec.pooling {
            Pooling::Pooler => out.pooler_output.shallow_clone(),
            Pooling::Cls => out.last_hidden_state.select(1, 0),
            Pooling::Mean => {
                let mask = attention_mask.to_kind(out.last_hidden_state.kind()).unsqueeze(-1);
                let summed = (&out.last_hidden_state * &mask).sum_dim_intlist(1, false, None);
                summed / mask.sum_dim_intlist(1, false, None).clamp_min(1e-9)
            }
            Pooling::Attention => {
                let h = &out.last_hidden_state;
                let query = self.query.as_ref().expect("attention pooling has its query").to_kind(h.kind());
                let scores = h.matmul(&query).to_kind(Kind::Float).masked_fill(&attention_mask.eq(0), f64::NEG_INFINITY);
                let weights = scores.softmax(-1, Kind::Float).to_kind(h.kind()).unsqueeze(-1);
                (h * weights).sum_dim_intlist(1, false, None)
            }
            Pooling::WeightedLayers => {
                let states = top(self.spec.options.layers());
                let w = self.layer_weights.as_ref().expect("weighted-layer pooling has its weights").softmax(0, Kind::Float).to_kind(states[0].kind());
                let mut pooled = &states[0] * w.get(0);
                for (i, s) in states.iter().enumerate().skip(1) {
                    pooled += s * w.get(i as i64);
                }
                pooled
            }
            Pooling::Concat => Tensor::cat(&top(self.spec.options.layers()), -1),
        }
    }

    /// `[batch, outputs]` (regression: `[batch, 1]`).
    pub fn forward(&self, out: &EncoderOutput, attention_mask: &Tensor, train: bool) -> Tensor {
        self.linear.forward(&self.pool(out, attention_mask).dropout(self.dropout, train))
    }

    /// The outputs under each of the multi-sample dropout's masks (one pass without `samples`):
    /// what training computes its loss from, the mean over the samples.
    pub fn forward_samples(&self, out: &EncoderOutput, attention_mask: &Tensor, train: bool) -> Vec<Tensor> {
        let pooled = self.pool(out, attention_mask);
        let k = if train { self.spec.options.samples.unwrap_or(1) } else { 1 };
        (0..k).map(|_| self.linear.forward(&pooled.dropout(self.dropout, train))).collect()
    }

    /// The task's default training loss for a batch of predictions (see [`default_loss`]).
    pub fn loss(&self, outputs: &Tensor, targets: &Tensor) -> Tensor {
        default_loss(&self.spec.task, outputs, targets)
    }
}

/// A task's default training loss: MSE (targets float `[batch]`) or cross-entropy (targets
/// int64 class indices `[batch]`), averaged over the batch, in fp32 whatever format the outputs
/// were computed in. The recipe's `loss` ([`crate::techniques::Loss`]) chooses another.
pub fn default_loss(task: &Task, outputs: &Tensor, targets: &Tensor) -> Tensor {
    let outputs = &crate::precision::to_fp32(outputs);
    match task {
        Task::Regression => outputs.squeeze_dim(-1).mse_loss(&targets.to_kind(outputs.kind()), tch::Reduction::Mean),
        Task::Classification { .. } => outputs.cross_entropy_for_logits(&targets.to_kind(Kind::Int64)),
    }
}

//! Task heads: a pooling of the encoder's output and one linear layer.
//!
//! Regression predicts one number (trained with MSE); classification predicts `k` logits
//! (trained with cross-entropy). The pooling is the pooler output (as in the seed article and
//! `BertForSequenceClassification`), the `[CLS]` hidden state, or the mean over real tokens.
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
}

impl Pooling {
    /// Pools `[batch, len, hidden]` to `[batch, hidden]`.
    pub fn apply(self, out: &EncoderOutput, attention_mask: &Tensor) -> Tensor {
        match self {
            Pooling::Pooler => out.pooler_output.shallow_clone(),
            Pooling::Cls => out.last_hidden_state.select(1, 0),
            Pooling::Mean => {
                let mask = attention_mask.to_kind(out.last_hidden_state.kind()).unsqueeze(-1);
                let summed = (&out.last_hidden_state * &mask).sum_dim_intlist(1, false, None);
                summed / mask.sum_dim_intlist(1, false, None).clamp_min(1e-9)
            }
        }
    }
}

impl std::str::FromStr for Pooling {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "pooler" => Ok(Pooling::Pooler),
            "cls" => Ok(Pooling::Cls),
            "mean" => Ok(Pooling::Mean),
            other => Err(Error::Invalid(format!("unknown pooling `{other}`: expected pooler, cls or mean"))),
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

/// The head's description, saved as `tunelab.json` next to the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadSpec {
    pub task: Task,
    #[serde(default)]
    pub pooling: Pooling,
}

impl HeadSpec {
    pub fn regression(pooling: Pooling) -> Self {
        HeadSpec { task: Task::Regression, pooling }
    }

    pub fn classification(labels: Vec<String>, pooling: Pooling) -> Self {
        HeadSpec { task: Task::Classification { labels }, pooling }
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
    dropout: f64,
}

impl Head {
    /// Creates the head's variables under `p` (normally `root / "head"`).
    pub fn new(p: nn::Path, spec: HeadSpec, hidden_size: usize, dropout: f64, init_std: f64) -> Self {
        let linear = Linear::new(p, hidden_size, spec.task.outputs(), init_std);
        Head { spec, linear, dropout }
    }

    /// `[batch, outputs]` (regression: `[batch, 1]`).
    pub fn forward(&self, out: &EncoderOutput, attention_mask: &Tensor, train: bool) -> Tensor {
        let pooled = self.spec.pooling.apply(out, attention_mask);
        self.linear.forward(&pooled.dropout(self.dropout, train))
    }

    /// The training loss for a batch of predictions: MSE (targets float `[batch]`) or
    /// cross-entropy (targets int64 class indices `[batch]`), averaged over the batch.
    /// The loss in fp32 whatever format the outputs were computed in.
    pub fn loss(&self, outputs: &Tensor, targets: &Tensor) -> Tensor {
        let outputs = &crate::precision::to_fp32(outputs);
        match self.spec.task {
            Task::Regression => outputs.squeeze_dim(-1).mse_loss(&targets.to_kind(outputs.kind()), tch::Reduction::Mean),
            Task::Classification { .. } => outputs.cross_entropy_for_logits(&targets.to_kind(Kind::Int64)),
        }
    }
}

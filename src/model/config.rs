//! The model configuration, read from a Hugging Face `config.json`.
//!
//! Field names and defaults mirror `transformers.BertConfig` / `RobertaConfig`. Keys that
//! tunelab does not use are kept (and written back on save) but otherwise ignored; a key of
//! the wrong type is an error that names the field.
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The feed-forward activation (`hidden_act` in `config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// Exact GELU, with `erf` (`"gelu"`).
    #[serde(rename = "gelu")]
    Gelu,
    /// The tanh approximation of GELU (`"gelu_new"`, `"gelu_pytorch_tanh"`).
    #[serde(rename = "gelu_new", alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluTanh,
    #[serde(rename = "relu")]
    Relu,
    /// SiLU, also called swish.
    #[serde(rename = "silu", alias = "swish")]
    Silu,
}

impl Activation {
    /// Applies the activation.
    pub fn forward(self, xs: &tch::Tensor) -> tch::Tensor {
        match self {
            Activation::Gelu => xs.gelu("none"),
            Activation::GeluTanh => xs.gelu("tanh"),
            Activation::Relu => xs.relu(),
            Activation::Silu => xs.silu(),
        }
    }
}

/// The architecture family: how positions and token types are embedded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelType {
    /// BERT and its small cousins (MiniLM, DistilBERT-sized BERTs...).
    #[serde(rename = "bert")]
    Bert,
    /// RoBERTa: positions start after `pad_token_id`, one token type.
    #[serde(rename = "roberta", alias = "xlm-roberta", alias = "camembert")]
    Roberta,
    /// MPNet (all-mpnet-base-v2): RoBERTa's positions, no token types, and a relative
    /// position bias added to every layer's attention scores.
    #[serde(rename = "mpnet")]
    MPNet,
}

impl ModelType {
    /// How far past 0 the position ids start: RoBERTa and MPNet count positions from
    /// `pad_token_id + 1`, so that many rows of the position table are never used.
    pub fn position_offset(self, pad_token_id: usize) -> usize {
        match self {
            ModelType::Bert => 0,
            ModelType::Roberta | ModelType::MPNet => pad_token_id + 1,
        }
    }

    /// The transformers class that loads the saved encoder (`architectures` in `config.json`).
    pub fn architecture(self) -> &'static str {
        match self {
            ModelType::Bert => "BertModel",
            ModelType::Roberta => "RobertaModel",
            ModelType::MPNet => "MPNetModel",
        }
    }
}

/// The relative-distance buckets of MPNet's attention bias (`compute_position_bias` in
/// transformers always uses 32).
pub const RELATIVE_BUCKETS: usize = 32;

fn is_default_buckets(n: &usize) -> bool {
    *n == RELATIVE_BUCKETS
}

/// The fields of `config.json` that define a BERT-family encoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub model_type: ModelType,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: Activation,
    pub hidden_dropout_prob: f64,
    pub attention_probs_dropout_prob: f64,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub initializer_range: f64,
    pub layer_norm_eps: f64,
    pub pad_token_id: usize,
    pub position_embedding_type: String,
    pub classifier_dropout: Option<f64>,
    /// MPNet: the rows of the relative position bias table (transformers buckets relative
    /// distances into 32 of them whatever this says, so it must be at least 32). Written back
    /// only when it is not 32, so BERT configs saved by tunelab do not gain the key.
    #[serde(skip_serializing_if = "is_default_buckets")]
    pub relative_attention_num_buckets: usize,
}

impl Default for Config {
    /// The defaults of `transformers.BertConfig` (BERT-base).
    fn default() -> Self {
        Config {
            model_type: ModelType::Bert,
            vocab_size: 30522,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: Activation::Gelu,
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            pad_token_id: 0,
            position_embedding_type: "absolute".to_string(),
            classifier_dropout: None,
            relative_attention_num_buckets: 32,
        }
    }
}

impl Config {
    /// A tiny BERT for tests and examples: 2 layers, hidden size 32, 4 heads, 100 tokens.
    pub fn tiny() -> Self {
        Config {
            vocab_size: 100,
            hidden_size: 32,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            intermediate_size: 64,
            max_position_embeddings: 64,
            ..Config::default()
        }
    }

    /// A tiny MPNet for tests: [`Config::tiny`]'s sizes, padding token 1 as MPNet has it.
    pub fn tiny_mpnet() -> Self {
        Config { model_type: ModelType::MPNet, pad_token_id: 1, type_vocab_size: 1, ..Config::tiny() }
    }

    /// Reads and checks a `config.json`.
    ///
    /// ```no_run
    /// let config = tunelab::Config::from_file("models/all-MiniLM-L6-v2/config.json")?;
    /// assert_eq!(config.num_hidden_layers, 6);
    /// # Ok::<(), tunelab::Error>(())
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json_str(&text, path)
    }

    /// Parses a `config.json` held in memory; `path` is only used in error messages.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            let what = format!("{inner}");
            if field == "." {
                Error::Json { path: path.to_path_buf(), what }
            } else {
                Error::Config { path: path.to_path_buf(), field, what }
            }
        })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Checks the relations between fields that serde cannot check.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |field: &str, what: String| Error::Config {
            path: path.to_path_buf(),
            field: field.to_string(),
            what,
        };
        for (field, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            if value == 0 {
                return Err(bad(field, "must be at least 1".into()));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(bad(
                "hidden_size",
                format!(
                    "{} is not a multiple of num_attention_heads ({})",
                    self.hidden_size, self.num_attention_heads
                ),
            ));
        }
        if self.position_embedding_type != "absolute" {
            return Err(bad(
                "position_embedding_type",
                format!("`{}` is not supported (only `absolute`)", self.position_embedding_type),
            ));
        }
        for (field, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            ("attention_probs_dropout_prob", self.attention_probs_dropout_prob),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(bad(field, format!("{p} is not a probability in [0, 1)")));
            }
        }
        if self.pad_token_id >= self.vocab_size {
            return Err(bad(
                "pad_token_id",
                format!("{} is not below vocab_size ({})", self.pad_token_id, self.vocab_size),
            ));
        }
        if self.model_type == ModelType::MPNet {
            // transformers' MPNet hard-codes token 1 as the padding row of both embedding
            // tables and as the token its position ids skip.
            if self.pad_token_id != 1 {
                return Err(bad("pad_token_id", format!("MPNet pads with token 1, not {}", self.pad_token_id)));
            }
            if self.relative_attention_num_buckets < RELATIVE_BUCKETS {
                return Err(bad(
                    "relative_attention_num_buckets",
                    format!("{} is below the {RELATIVE_BUCKETS} buckets MPNet's attention uses", self.relative_attention_num_buckets),
                ));
            }
        }
        if self.max_position_embeddings <= self.model_type.position_offset(self.pad_token_id) {
            return Err(bad(
                "max_position_embeddings",
                format!("{} leaves no position for a token past the padding offset", self.max_position_embeddings),
            ));
        }
        Ok(())
    }

    /// The size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// The dropout of a classification or regression head, as transformers chooses it.
    pub fn head_dropout(&self) -> f64 {
        self.classifier_dropout.unwrap_or(self.hidden_dropout_prob)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_tolerated_and_defaults_fill_in() {
        let c = Config::from_json_str(
            r#"{"hidden_size": 64, "num_attention_heads": 4, "some_future_key": [1, 2]}"#,
            Path::new("c.json"),
        )
        .unwrap();
        assert_eq!(c.hidden_size, 64);
        assert_eq!(c.num_hidden_layers, 12);
        assert_eq!(c.hidden_act, Activation::Gelu);
    }

    #[test]
    fn wrong_type_names_the_file_and_field() {
        let err = Config::from_json_str(r#"{"hidden_size": "big"}"#, Path::new("m/config.json"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("m/config.json: field `hidden_size`: invalid type"), "{err}");
    }

    #[test]
    fn unknown_activation_is_an_error() {
        let err = Config::from_json_str(r#"{"hidden_act": "mish"}"#, Path::new("c.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("field `hidden_act`") && err.contains("mish"), "{err}");
    }

    #[test]
    fn inconsistent_heads_are_an_error() {
        let err =
            Config::from_json_str(r#"{"hidden_size": 30, "num_attention_heads": 4}"#, Path::new("c.json"))
                .unwrap_err()
                .to_string();
        assert!(err.contains("field `hidden_size`") && err.contains("multiple"), "{err}");
    }

    #[test]
    fn mpnet_must_pad_with_token_1() {
        let c = Config::from_json_str(r#"{"model_type": "mpnet", "pad_token_id": 1}"#, Path::new("c.json")).unwrap();
        assert_eq!(c.model_type, ModelType::MPNet);
        let err = Config::from_json_str(r#"{"model_type": "mpnet"}"#, Path::new("c.json")).unwrap_err().to_string();
        assert!(err.contains("field `pad_token_id`") && err.contains("token 1"), "{err}");
        let err = Config::from_json_str(r#"{"model_type": "mpnet", "pad_token_id": 1, "relative_attention_num_buckets": 16}"#, Path::new("c.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("field `relative_attention_num_buckets`"), "{err}");
    }

    #[test]
    fn roberta_aliases_parse() {
        let c = Config::from_json_str(r#"{"model_type": "xlm-roberta"}"#, Path::new("c.json")).unwrap();
        assert_eq!(c.model_type, ModelType::Roberta);
    }
}

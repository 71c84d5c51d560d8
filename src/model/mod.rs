//! Models: the encoder loaded from a Hugging Face folder, a task head on top, and saving back
//! to a folder that transformers reads.
//!
//! A model folder holds `config.json`, `model.safetensors` and `tokenizer.json`. A folder
//! saved by tunelab adds `head.safetensors` (the head's `weight` and `bias`, and its pooling's
//! own variable if it has one) and `tunelab.json` (task, label names, pooling, the head's
//! options, max length); transformers ignores both, so
//! `AutoModel.from_pretrained` loads the fine-tuned encoder as it is.
pub mod bert;
pub mod config;
pub mod heads;
pub mod init;
pub mod mpnet;
pub mod roles;
mod safetensors_io;

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor, nn};

pub use bert::{Bert, EncoderOutput};
pub use config::{Activation, Config, ModelType};
pub use mpnet::MPNet;
pub use heads::{Head, HeadOptions, HeadSpec, Pooling, Task};
pub use roles::{ParamInfo, Role};
pub use safetensors_io::{read_safetensors, write_safetensors};

use crate::error::{Error, Result};
use crate::files::atomic_write;

use crate::tokenizer::{Batch, TextTokenizer};

/// The checkpoint name prefixes that are stripped on load (`BertForSequenceClassification`
/// stores the encoder under `bert.`, RoBERTa and MPNet models under `roberta.` and `mpnet.`).
const PREFIXES: [&str; 4] = ["", "bert.", "roberta.", "mpnet."];

/// What loading a checkpoint did besides copying tensors.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    /// Checkpoint tensors that the encoder has no place for (an MLM head, `position_ids`...).
    pub unused: Vec<String>,
    /// Encoder tensors absent from the checkpoint and left at their fresh initialisation
    /// (only the pooler may be absent).
    pub initialised: Vec<String>,
}

/// The architectures tunelab implements, chosen by `model_type` in `config.json`.
#[derive(Debug)]
pub enum Backbone {
    /// BERT and RoBERTa.
    Bert(Bert),
    MPNet(MPNet),
}

impl Backbone {
    /// Creates the variables of `config`'s architecture under `p`.
    pub fn new(p: &nn::Path, config: &Config) -> Self {
        match config.model_type {
            ModelType::Bert | ModelType::Roberta => Backbone::Bert(Bert::new(p, config)),
            ModelType::MPNet => Backbone::MPNet(MPNet::new(p, config)),
        }
    }

    pub fn forward(&self, batch: &Batch, train: bool) -> EncoderOutput {
        match self {
            Backbone::Bert(m) => m.forward(&batch.input_ids, &batch.attention_mask, &batch.token_type_ids, train),
            Backbone::MPNet(m) => m.forward(&batch.input_ids, &batch.attention_mask, train),
        }
    }

    /// Every parameter with its role, in model order (embeddings, layers bottom to top, pooler).
    pub fn roles(&self) -> Vec<(&Tensor, Role)> {
        match self {
            Backbone::Bert(m) => m.roles(),
            Backbone::MPNet(m) => m.roles(),
        }
    }

    pub fn embeddings(&self) -> &bert::Embeddings {
        match self {
            Backbone::Bert(m) => &m.embeddings,
            Backbone::MPNet(m) => &m.embeddings,
        }
    }
}

/// The sentence-level model tunelab fine-tunes: the encoder, its tokenizer and its variables.
pub struct Encoder {
    /// All trainable variables, named as in transformers (`encoder.layer.0.attention.self.query.weight`).
    pub vs: nn::VarStore,
    pub backbone: Backbone,
    pub config: Config,
    pub tokenizer: Option<TextTokenizer>,
    /// `config.json` as read, so that keys tunelab does not use are written back on save.
    pub raw_config: serde_json::Value,
    pub report: LoadReport,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder").field("config", &self.config).field("parameters", &self.num_parameters()).finish()
    }
}

/// The default truncation length for a config: the longest position the model can embed.
fn default_max_length(config: &Config) -> usize {
    let offset = config.model_type.position_offset(config.pad_token_id);
    config.max_position_embeddings.saturating_sub(offset).min(512)
}

impl Encoder {
    /// A freshly initialised encoder (transformers' `_init_weights`, see [`init`]), seeded.
    pub fn from_config(config: &Config, device: Device, seed: u64) -> Result<Self> {
        config.validate(Path::new("<config>"))?;
        let vs = nn::VarStore::new(device);
        let backbone = Backbone::new(&vs.root(), config);
        let names = names_by_address(&vs);
        let roles = backbone.roles();
        init::init_weights(roles.iter().map(|(t, r)| (names[&(t.data_ptr() as usize)].as_str(), *t, *r)), config.initializer_range, seed);
        backbone.embeddings().zero_padding_rows();
        let raw_config = serde_json::to_value(config).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(Encoder { vs, backbone, config: config.clone(), tokenizer: None, raw_config, report: LoadReport::default() })
    }

    /// Loads `config.json`, `model.safetensors` and `tokenizer.json` from a model folder.
    ///
    /// ```no_run
    /// let encoder = tunelab::Encoder::load("models/all-MiniLM-L6-v2", tch::Device::Cpu)?;
    /// assert_eq!(encoder.num_parameters(), 22_713_216);
    /// # Ok::<(), tunelab::Error>(())
    /// ```
    pub fn load(dir: impl AsRef<Path>, device: Device) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(Error::io(dir, std::io::Error::new(std::io::ErrorKind::NotFound, "model folder not found")));
        }
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
        let config = Config::from_json_str(&text, &config_path)?;
        let raw_config: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::Json { path: config_path.clone(), what: e.to_string() })?;

        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer = TextTokenizer::from_file(&tokenizer_path, config.pad_token_id, default_max_length(&config))?;
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(Error::Tokenizer {
                path: tokenizer_path,
                what: format!(
                    "the vocabulary has {} tokens but config.json `vocab_size` is {}: token ids would fall outside the embedding table",
                    tokenizer.vocab_size(),
                    config.vocab_size
                ),
            });
        }

        let vs = nn::VarStore::new(device);
        let backbone = Backbone::new(&vs.root(), &config);
        let weights = dir.join("model.safetensors");
        let report = copy_checkpoint(&vs, &weights, |name| !name.starts_with("pooler."))?;
        Ok(Encoder { vs, backbone, config, tokenizer: Some(tokenizer), raw_config, report })
    }

    /// The longest input the position embeddings allow (for RoBERTa and MPNet, the positions
    /// counted past `pad_token_id`).
    pub fn max_positions(&self) -> usize {
        let offset = self.config.model_type.position_offset(self.config.pad_token_id);
        self.config.max_position_embeddings.saturating_sub(offset)
    }

    /// Runs the encoder on a batch.
    pub fn forward(&self, batch: &Batch, train: bool) -> EncoderOutput {
        self.backbone.forward(batch, train)
    }

    /// The number of encoder parameters (a head, if any, is not counted).
    pub fn num_parameters(&self) -> i64 {
        self.named_parameters().iter().filter(|(n, _)| !n.starts_with("head.")).map(|(_, t)| t.numel() as i64).sum()
    }

    /// Every variable with its transformers name, sorted by name.
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut vars: Vec<_> = self.vs.variables().into_iter().collect();
        vars.sort_by_key(|a| natural_key(&a.0));
        vars
    }

    /// Writes `config.json`, `model.safetensors` (encoder only) and `tokenizer.json` into `dir`.
    fn save_encoder(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut raw = self.raw_config.clone();
        let fields = serde_json::to_value(&self.config).map_err(|e| Error::Invalid(e.to_string()))?;
        if let (Some(raw), Some(fields)) = (raw.as_object_mut(), fields.as_object()) {
            for (k, v) in fields {
                raw.insert(k.clone(), v.clone());
            }
            raw.insert("architectures".into(), serde_json::json!([self.config.model_type.architecture()]));
        }
        let text = serde_json::to_string_pretty(&raw).map_err(|e| Error::Invalid(e.to_string()))?;
        atomic_write(&dir.join("config.json"), text.as_bytes())?;
        let tensors: Vec<_> = self.named_parameters().into_iter().filter(|(n, _)| !n.starts_with("head.")).collect();
        write_safetensors(&dir.join("model.safetensors"), &tensors)?;
        if let Some(tok) = &self.tokenizer {
            let json = tok.inner().to_string(true).map_err(|e| Error::Tokenizer { path: tok.path().into(), what: e.to_string() })?;
            atomic_write(&dir.join("tokenizer.json"), json.as_bytes())?;
        }
        Ok(())
    }
}

/// An encoder with a task head: what tunelab trains, evaluates and saves.
#[derive(Debug)]
pub struct Model {
    pub encoder: Encoder,
    pub head: Head,
}

/// `tunelab.json`: what a saved model folder needs besides transformers' files.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedHead {
    #[serde(flatten)]
    spec: HeadSpec,
    max_length: Option<usize>,
}

impl Model {
    /// Puts a freshly initialised head (seed 0, see [`Model::init_head`]) on an encoder; its
    /// variables are `head.weight` and `head.bias`.
    pub fn new(encoder: Encoder, spec: HeadSpec) -> Result<Self> {
        spec.check(encoder.config.num_hidden_layers)?;
        let cfg = &encoder.config;
        let head = Head::new(encoder.vs.root() / "head", spec, cfg.hidden_size, cfg.head_dropout(), cfg.initializer_range);
        let model = Model { encoder, head };
        model.init_head(0);
        Ok(model)
    }

    /// Draws the head's weights anew (N(0, `initializer_range`²), bias 0) from `seed`.
    pub fn init_head(&self, seed: u64) {
        let mut roles = Vec::new();
        self.head.roles(&mut roles);
        // In the order Head::roles lists them: the linear layer, then the pooling's variable.
        let extra = if self.head.query.is_some() { "head.attention_query" } else { "head.layer_weights" };
        let named = roles.into_iter().zip(["head.weight", "head.bias", extra]).map(|((t, r), n)| (n, t, r));
        init::init_weights(named, self.encoder.config.initializer_range, seed);
    }

    /// Loads a model folder. If it was saved by tunelab (it has `tunelab.json`), its head is
    /// loaded too and `spec` may be `None`; otherwise `spec` says which head to put on it.
    pub fn load(dir: impl AsRef<Path>, spec: Option<HeadSpec>, device: Device) -> Result<Self> {
        let dir = dir.as_ref();
        let mut encoder = Encoder::load(dir, device)?;
        let meta_path = dir.join("tunelab.json");
        if meta_path.is_file() {
            let text = std::fs::read_to_string(&meta_path).map_err(|e| Error::io(&meta_path, e))?;
            let de = &mut serde_json::Deserializer::from_str(&text);
            let saved: SavedHead = serde_path_to_error::deserialize(de)
                .map_err(|e| Error::Json { path: meta_path.clone(), what: format!("{}: {}", e.path(), e.inner()) })?;
            if let Some(spec) = &spec
                && spec != &saved.spec
            {
                return Err(Error::Invalid(format!(
                    "{}: the saved head is {:?}, not the requested {:?}",
                    meta_path.display(),
                    saved.spec,
                    spec
                )));
            }
            if let (Some(tok), Some(max)) = (encoder.tokenizer.as_mut(), saved.max_length) {
                tok.set_max_length(max)?;
            }
            let model = Model::new(encoder, saved.spec)?;
            let head_vs_path = dir.join("head.safetensors");
            copy_checkpoint_into(&model.encoder.vs, "head.", &head_vs_path)?;
            Ok(model)
        } else {
            let spec = spec.ok_or_else(|| {
                Error::Invalid(format!(
                    "{}: no tunelab.json, so say which head to use (regression or classification)",
                    dir.display()
                ))
            })?;
            encoder.report.initialised.extend(["head.weight".to_string(), "head.bias".to_string()]);
            match spec.pooling {
                Pooling::Attention => encoder.report.initialised.push("head.attention_query".into()),
                Pooling::WeightedLayers => encoder.report.initialised.push("head.layer_weights".into()),
                _ => {}
            }
            Model::new(encoder, spec)
        }
    }

    /// Every trainable variable with its transformers name and role, in model order
    /// (embeddings, layers bottom to top, pooler, head): what [`crate::groups::GroupTable`] reads.
    ///
    /// The list is built from the variables the model actually holds; the blocks' role lists
    /// only classify them, so a variable that no block classifies is an error naming it rather
    /// than a parameter that silently never trains.
    pub fn parameters(&self) -> Result<Vec<ParamInfo>> {
        let names = names_by_address(&self.encoder.vs);
        let mut roles = self.encoder.backbone.roles();
        self.head.roles(&mut roles);
        let mut classified = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(roles.len());
        for (t, role) in roles {
            let address = t.data_ptr() as usize;
            if let Some(name) = names.get(&address) {
                classified.insert(address);
                out.push(ParamInfo::new(name.clone(), role, t.numel() as i64));
            }
        }
        let mut unclassified: Vec<&str> =
            names.iter().filter(|(address, _)| !classified.contains(*address)).map(|(_, n)| n.as_str()).collect();
        if !unclassified.is_empty() {
            unclassified.sort();
            return Err(Error::Invalid(format!(
                "the model holds variables that no block gives a role (so no LR group or weight decay): {}",
                unclassified.join(", ")
            )));
        }
        Ok(out)
    }

    /// The variables by name (handles sharing storage with the model).
    pub fn variables(&self) -> HashMap<String, Tensor> {
        self.encoder.vs.variables()
    }

    /// Copies the weights of a folder saved by [`Model::save`] (encoder and head) into this
    /// model, which must have the same architecture.
    pub fn load_weights(&self, dir: &Path) -> Result<()> {
        copy_checkpoint(&self.encoder.vs, &dir.join("model.safetensors"), |_| true)?;
        copy_checkpoint_into(&self.encoder.vs, "head.", &dir.join("head.safetensors"))
    }

    /// The device the weights are on.
    pub fn device(&self) -> Device {
        self.encoder.vs.device()
    }

    /// The tokenizer (every model loaded from a folder has one).
    pub fn tokenizer(&self) -> Result<&TextTokenizer> {
        self.encoder.tokenizer.as_ref().ok_or_else(|| Error::Invalid("the model has no tokenizer.json".into()))
    }

    /// Truncates texts to `max_length` tokens (special tokens included) from now on.
    pub fn set_max_length(&mut self, max_length: usize) -> Result<()> {
        match self.encoder.tokenizer.as_mut() {
            Some(t) => t.set_max_length(max_length),
            None => Err(Error::Invalid("the model has no tokenizer.json".into())),
        }
    }

    /// `[batch, outputs]`.
    pub fn forward(&self, batch: &Batch, train: bool) -> Tensor {
        let out = self.encoder.forward(batch, train);
        self.head.forward(&out, &batch.attention_mask, train)
    }

    /// The outputs under each of the head's multi-sample dropout masks (see [`Head::forward_samples`]).
    pub fn forward_samples(&self, batch: &Batch, train: bool) -> Vec<Tensor> {
        let out = self.encoder.forward(batch, train);
        self.head.forward_samples(&out, &batch.attention_mask, train)
    }

    /// Saves the model in Hugging Face layout plus the head (see the module docs). Every file
    /// is written to a temporary name and renamed, so an interrupted save never leaves a
    /// half-written file behind.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        self.encoder.save_encoder(dir)?;
        let head: Vec<(String, Tensor)> = self.encoder.named_parameters().into_iter().filter_map(|(n, t)| n.strip_prefix("head.").map(|n| (n.to_string(), t))).collect();
        write_safetensors(&dir.join("head.safetensors"), &head)?;
        let meta = SavedHead { spec: self.head.spec.clone(), max_length: self.encoder.tokenizer.as_ref().map(|t| t.max_length()) };
        let text = serde_json::to_string_pretty(&meta).map_err(|e| Error::Invalid(e.to_string()))?;
        atomic_write(&dir.join("tunelab.json"), text.as_bytes())
    }
}

/// Copies every variable of `vs` whose name passes `required` from a checkpoint, accepting
/// the `bert.` / `roberta.` / `mpnet.` prefixes and the old `gamma`/`beta` LayerNorm names. Variables
/// that do not pass `required` may be absent (they keep their initialisation and are reported).
fn copy_checkpoint(vs: &nn::VarStore, path: &Path, required: impl Fn(&str) -> bool) -> Result<LoadReport> {
    let mut tensors = read_safetensors(path)?;
    let mut report = LoadReport::default();
    let mut names: Vec<_> = vs.variables().into_iter().collect();
    names.sort_by_key(|a| natural_key(&a.0));
    for (name, var) in names {
        if name.starts_with("head.") {
            continue;
        }
        let found = PREFIXES
            .iter()
            .flat_map(|p| {
                let legacy = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta");
                [format!("{p}{name}"), format!("{p}{legacy}")]
            })
            .find(|k| tensors.contains_key(k));
        match found {
            Some(key) => {
                let value = tensors.remove(&key).expect("key was just found");
                copy_into(&var, &value, &key, path)?;
            }
            None if required(&name) => {
                return Err(Error::checkpoint(path, format!("tensor `{name}` is missing (also looked for it under the prefixes `bert.`, `roberta.` and `mpnet.`)")));
            }
            None => report.initialised.push(name),
        }
    }
    let mut unused: Vec<_> = tensors.into_keys().collect();
    unused.sort();
    report.unused = unused;
    Ok(report)
}

/// Copies the tensors of a head file (`weight`, `bias`) into the variables `{prefix}weight`, `{prefix}bias`.
fn copy_checkpoint_into(vs: &nn::VarStore, prefix: &str, path: &Path) -> Result<()> {
    let tensors = read_safetensors(path)?;
    for (name, var) in vs.variables() {
        if let Some(short) = name.strip_prefix(prefix) {
            let value = tensors.get(short).ok_or_else(|| Error::checkpoint(path, format!("tensor `{short}` is missing")))?;
            copy_into(&var, value, short, path)?;
        }
    }
    Ok(())
}

fn copy_into(var: &Tensor, value: &Tensor, key: &str, path: &Path) -> Result<()> {
    if var.size() != value.size() {
        return Err(Error::checkpoint(
            path,
            format!("tensor `{key}` has shape {:?}, but config.json implies {:?}", value.size(), var.size()),
        ));
    }
    tch::no_grad(|| var.shallow_clone().copy_(&value.to_kind(var.kind()).to_device(var.device())));
    Ok(())
}

/// The name of every variable, by the address of its data.
fn names_by_address(vs: &nn::VarStore) -> HashMap<usize, String> {
    vs.variables().into_iter().map(|(name, t)| (t.data_ptr() as usize, name)).collect()
}

/// Sorts `encoder.layer.10` after `encoder.layer.9`.
pub(crate) fn natural_key(name: &str) -> Vec<(String, u64)> {
    name.split('.').map(|part| match part.parse::<u64>() {
        Ok(n) => (String::new(), n),
        Err(_) => (part.to_string(), 0),
    }).collect()
}

/// One block of the encoder in a [`Summary`].
#[derive(Debug, Clone, Serialize)]
pub struct BlockSummary {
    /// `embeddings`, `encoder.layer.{i}`, `encoder.relative_attention_bias` (MPNet) or `pooler`.
    pub name: String,
    pub tensors: usize,
    pub parameters: i64,
}

/// What `tunelab inspect` prints: the architecture, the blocks and the parameter count.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub model_type: ModelType,
    pub parameters: i64,
    pub layers: usize,
    pub hidden_size: usize,
    pub attention_heads: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub activation: Activation,
    pub blocks: Vec<BlockSummary>,
    pub load: LoadReport,
}

impl Summary {
    pub fn of(encoder: &Encoder) -> Self {
        let mut blocks: Vec<BlockSummary> = Vec::new();
        for (name, t) in encoder.named_parameters() {
            let parts: Vec<&str> = name.split('.').collect();
            let block = match parts.as_slice() {
                ["encoder", "layer", i, ..] => format!("encoder.layer.{i}"),
                ["encoder", other, _, ..] => format!("encoder.{other}"),
                [first, ..] => first.to_string(),
                [] => continue,
            };
            match blocks.iter_mut().find(|b| b.name == block) {
                Some(b) => {
                    b.tensors += 1;
                    b.parameters += t.numel() as i64;
                }
                None => blocks.push(BlockSummary { name: block, tensors: 1, parameters: t.numel() as i64 }),
            }
        }
        let c = &encoder.config;
        Summary {
            model_type: c.model_type,
            parameters: encoder.num_parameters(),
            layers: c.num_hidden_layers,
            hidden_size: c.hidden_size,
            attention_heads: c.num_attention_heads,
            intermediate_size: c.intermediate_size,
            vocab_size: c.vocab_size,
            max_position_embeddings: c.max_position_embeddings,
            activation: c.hidden_act,
            blocks,
            load: encoder.report.clone(),
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:?} encoder: {} layers, hidden size {}, {} attention heads, feed-forward {}, {:?}",
            self.model_type, self.layers, self.hidden_size, self.attention_heads, self.intermediate_size, self.activation
        )?;
        writeln!(f, "vocabulary {}, up to {} positions", self.vocab_size, self.max_position_embeddings)?;
        writeln!(f, "{:<20} {:>8} {:>14}", "block", "tensors", "parameters")?;
        for b in &self.blocks {
            writeln!(f, "{:<20} {:>8} {:>14}", b.name, b.tensors, b.parameters)?;
        }
        writeln!(f, "{:<20} {:>8} {:>14}", "total", self.blocks.iter().map(|b| b.tensors).sum::<usize>(), self.parameters)?;
        if !self.load.unused.is_empty() {
            writeln!(f, "checkpoint tensors not used: {}", self.load.unused.join(", "))?;
        }
        if !self.load.initialised.is_empty() {
            writeln!(f, "not in the checkpoint, freshly initialised: {}", self.load.initialised.join(", "))?;
        }
        Ok(())
    }
}

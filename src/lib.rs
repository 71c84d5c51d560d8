//! # tunelab
//!
//! A lab for fine-tuning BERT-family encoders with the techniques practitioners trade:
//! layer-wise learning-rate decay, warm-up, re-initialising the top layers, stochastic
//! weight averaging and frequent evaluation, composed as plain values and checked against
//! PyTorch and transformers.
//!
//! The pieces:
//! - [`model`]: the encoder ([`Encoder`], a BERT/RoBERTa mirror of transformers), task heads
//!   and [`Model`], loaded from and saved to Hugging Face model folders;
//! - [`tokenizer`]: `tokenizer.json` with per-batch padding;
//! - [`schedule`]: learning-rate schedules as pure functions of the step, warm-up and phases;
//! - [`groups`]: the parameter-group table (LLRD, grouped LLRD, weight-decay rules);
//! - [`optim`]: AdamW with one LR per group and checkpointable state;
//! - [`techniques`]: re-initialisation and weight averaging (SWA, EMA);
//! - [`recipe`]: the techniques composed into one value, and its LR table;
//! - [`data`]: reading, checking, tokenising and batching labelled texts;
//! - [`train`]: the loop, evaluation ([`metrics`]), checkpoints and resume;
//! - [`ablation`]: recipes × seeds, sharded, summarised;
//! - [`plot`]: LR schedules and runs as SVG/PNG;
//! - [`script`]: the rhai binding behind `tunelab run` and `tunelab plan`.
pub mod ablation;
pub mod data;
pub mod error;
pub mod groups;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod plot;
pub mod recipe;
pub mod schedule;
pub mod script;
pub mod techniques;
pub mod tokenizer;
pub mod train;

pub use error::{Error, Result};
pub use model::{Config, Encoder, HeadSpec, Model, Pooling, Task};
pub use recipe::Recipe;
pub use train::{Run, RunSpec, TrainConfig};
pub use tokenizer::{Batch, TextTokenizer};

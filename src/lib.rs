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
//! - [`tokenizer`]: `tokenizer.json` with per-batch padding.
pub mod error;
pub mod model;
pub mod tokenizer;

pub use error::{Error, Result};
pub use model::{Config, Encoder, HeadSpec, Model, Pooling, Task};
pub use tokenizer::{Batch, TextTokenizer};

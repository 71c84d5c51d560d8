//! # tunelab
//!
//! A lab for fine-tuning BERT-family encoders with the techniques practitioners trade:
//! layer-wise learning-rate decay, warm-up, re-initialising the top layers, stochastic
//! weight averaging and frequent evaluation, composed as plain values and checked against
//! PyTorch and transformers.
//!
//! The pieces, from the bottom up (each imports only those above it in this list):
//! - [`error`]: the one error type; [`files`]: atomic writes and JSON Lines;
//! - [`schedule`]: learning-rate schedules as pure functions of the step, warm-up and phases;
//! - [`metrics`]: the metrics and [`metrics::Metric`], the one that picks the best weights;
//! - [`model`]: the encoder ([`Encoder`], a BERT/RoBERTa mirror of transformers), task heads
//!   and [`Model`], loaded from and saved to Hugging Face model folders; [`tokenizer`];
//! - [`groups`]: the parameter-group table (LLRD, grouped LLRD, weight-decay rules);
//! - [`optim`]: AdamW with one LR per group and checkpointable state;
//! - [`techniques`]: re-initialisation and weight averaging (SWA, EMA);
//! - [`recipe`]: the techniques composed into one value, resolved against a model and a run;
//! - [`data`]: reading, checking, tokenising and batching labelled texts;
//! - [`spec`]: the run specification (model, data, recipe, settings) and its plan;
//! - [`run_dir`]: every file of a run folder, typed both ways, the lock and the recovery;
//! - [`train`]: the loop only, reporting to observers;
//! - [`run`]: a specification trained into a run folder, and resumed; [`predict`]: a
//!   fine-tuned model applied to a file;
//! - [`plot`]: LR schedules, runs and ablations as SVG/PNG (and in notebooks);
//! - [`cv`]: k-fold cross-validation, out-of-fold predictions and the CV score;
//! - [`ablation`]: recipes × seeds (each a run or a cross-validation), sharded, merged, summarised;
//! - [`tensorboard`]: TensorBoard event files, written by an observer of the loop;
//! - [`script`]: the rhai binding behind `tunelab run` and `tunelab plan`.
//! - `kernel` (the `kernel` feature): a Jupyter kernel whose cells are rhai, over a script session.
//!
//! In a notebook, `use tunelab::prelude::*;` brings what a cell needs.
pub mod ablation;
pub mod bootstrap;
pub mod cv;
pub mod data;
pub mod error;
pub mod files;
pub mod groups;
pub mod human;
#[cfg(feature = "kernel")]
pub mod kernel;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod plot;
pub mod precision;
pub mod predict;
pub mod progress;
pub mod recipe;
pub mod run;
pub mod run_dir;
pub mod schedule;
pub mod script;
pub mod search;
pub mod spec;
pub mod techniques;
pub mod tensorboard;
pub mod tokenizer;
pub mod train;

pub use error::{Error, Result};
pub use model::{Config, Encoder, HeadSpec, Model, Pooling, Task};
pub use recipe::Recipe;
pub use run::{Run, RunControl};
pub use spec::{DataSpec, RunSpec, TrainConfig};
pub use tokenizer::{Batch, TextTokenizer};

/// What a notebook cell or a small program needs, in one `use`.
pub mod prelude {
    pub use crate::ablation::{Ablation, Summary};
    pub use crate::cv::{CvOutcome, CvResult};
    pub use crate::data::{Columns, TaskKind};
    pub use crate::groups::{Block, GroupTable, LayerSet, LrLayout};
    pub use crate::metrics::Metric;
    pub use crate::plot::Chart;
    pub use crate::predict::{ColumnChoice, Predictions, predict_file, predict_with};
    pub use crate::model::HeadOptions;
    pub use crate::recipe::{Decay, DecayTowards, Eval, LrTable, Recipe, Warmup};
    pub use crate::run::{Run, RunControl, resume};
    pub use crate::run_dir::RunDir;
    pub use crate::script::{Script, ScriptValue};
    pub use crate::spec::{Cv, DataSpec, Keep, Plan, RunSpec, TrainConfig};
    pub use crate::techniques::{Adversarial, Averaging, Freeze, Loss, Reinit, Swa, SwaLr, swa::At};
    pub use crate::{Config, Encoder, Error, HeadSpec, Model, Pooling, Result, Task};
}

//! What each variable of a model is: the role that decides its weight decay.
//!
//! The model reports a role for every tensor it owns ([`crate::model::Model::parameters`]); the
//! parameter-group table reads names and roles from there.
use serde::{Deserialize, Serialize};

/// What a parameter tensor is, which decides its weight decay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The weight matrix of a dense layer: decayed.
    Weight,
    /// An embedding table: decayed (as transformers' `Trainer` does).
    Embedding,
    /// A bias: not decayed.
    Bias,
    /// A LayerNorm weight or bias: not decayed.
    Norm,
    /// MPNet's relative position bias table: drawn like an embedding table, but a bias on the
    /// attention scores, so not decayed (transformers' `Trainer` and the usual
    /// `no_decay = ["bias", "LayerNorm.weight"]` lists also skip it, by its name).
    PositionBias,
}

impl Role {
    pub fn decays(self) -> bool {
        matches!(self, Role::Weight | Role::Embedding)
    }
}

/// A trainable parameter as the model reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamInfo {
    pub name: String,
    pub role: Role,
    pub numel: i64,
}

impl ParamInfo {
    pub fn new(name: impl Into<String>, role: Role, numel: i64) -> Self {
        ParamInfo { name: name.into(), role, numel }
    }
}


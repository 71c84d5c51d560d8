//! Helpers shared by the integration tests.
#![allow(dead_code)]
use std::collections::HashMap;
use std::path::PathBuf;

use tch::Tensor;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    root().join("tests").join("fixtures").join(name)
}

/// The real all-MiniLM-L6-v2 that `make setup` unpacks. Its absence is a failure, not a skip.
pub fn minilm_dir() -> PathBuf {
    let dir = root().join("models").join("all-MiniLM-L6-v2");
    assert!(dir.join("model.safetensors").is_file(), "{} is missing: run `make setup` first", dir.display());
    dir
}

pub fn golden(name: &str) -> HashMap<String, Tensor> {
    tunelab::model::read_safetensors(&fixture(name)).expect("fixture readable")
}

/// The largest absolute difference between two tensors of the same shape.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    (a.to_kind(tch::Kind::Double) - b.to_kind(tch::Kind::Double)).abs().max().double_value(&[])
}

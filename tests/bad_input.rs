//! Bad model folders give one clear error naming the file and the field or tensor, from the
//! library and from the `tunelab` binary (non-zero exit, one line, no panic).
mod common;

use std::path::Path;
use std::process::Command;

use common::fixture;
use tch::Device;
use tunelab::Encoder;

/// A copy of the tiny BERT fixture that a test may break.
fn tiny_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture("tiny_bert").join(f), dir.path().join(f)).unwrap();
    }
    dir
}

fn load_err(dir: &Path) -> String {
    Encoder::load(dir, Device::Cpu).unwrap_err().to_string()
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, serde_json::to_string(&v).unwrap()).unwrap();
}

fn rewrite_tensors(dir: &Path, edit: impl FnOnce(&mut std::collections::HashMap<String, tch::Tensor>)) {
    let path = dir.join("model.safetensors");
    let mut tensors = tunelab::model::read_safetensors(&path).unwrap();
    edit(&mut tensors);
    let list: Vec<_> = tensors.into_iter().collect();
    tunelab::model::write_safetensors(&path, &list).unwrap();
}

#[test]
fn missing_folder() {
    let err = load_err(Path::new("no/such/model"));
    assert_eq!(err, "no/such/model: model folder not found");
}

#[test]
fn missing_weights_file() {
    let dir = tiny_copy();
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let err = load_err(dir.path());
    assert!(err.contains("model.safetensors") && err.contains("No such file"), "{err}");
}

#[test]
fn missing_tokenizer_file() {
    let dir = tiny_copy();
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let err = load_err(dir.path());
    assert!(err.ends_with("tokenizer.json: file not found"), "{err}");
}

#[test]
fn config_field_of_the_wrong_type() {
    let dir = tiny_copy();
    edit_config(dir.path(), |v| v["num_hidden_layers"] = serde_json::json!("two"));
    let err = load_err(dir.path());
    assert!(err.contains("config.json: field `num_hidden_layers`: invalid type: string \"two\""), "{err}");
}

#[test]
fn tensor_of_the_wrong_shape() {
    let dir = tiny_copy();
    edit_config(dir.path(), |v| v["intermediate_size"] = serde_json::json!(48));
    let err = load_err(dir.path());
    assert!(
        err.contains("model.safetensors: tensor `bert.encoder.layer.0.intermediate.dense.bias` has shape [64], but config.json implies [48]"),
        "{err}"
    );
}

#[test]
fn tensor_missing_from_the_checkpoint() {
    let dir = tiny_copy();
    rewrite_tensors(dir.path(), |t| {
        t.remove("bert.encoder.layer.1.attention.self.key.weight");
    });
    let err = load_err(dir.path());
    assert!(err.contains("model.safetensors: tensor `encoder.layer.1.attention.self.key.weight` is missing"), "{err}");
}

#[test]
fn a_missing_pooler_is_initialised_and_reported() {
    let dir = tiny_copy();
    rewrite_tensors(dir.path(), |t| t.retain(|k, _| !k.contains("pooler")));
    let encoder = Encoder::load(dir.path(), Device::Cpu).unwrap();
    assert_eq!(encoder.report.initialised, ["pooler.dense.bias", "pooler.dense.weight"]);
}

#[test]
fn tokenizer_larger_than_the_vocabulary() {
    let dir = tiny_copy();
    edit_config(dir.path(), |v| v["vocab_size"] = serde_json::json!(50));
    let err = load_err(dir.path());
    assert!(err.contains("tokenizer.json: the vocabulary has 95 tokens but config.json `vocab_size` is 50"), "{err}");
}

#[test]
fn half_precision_checkpoints_load() {
    let dir = tiny_copy();
    let reference = Encoder::load(dir.path(), Device::Cpu).unwrap();
    let path = dir.path().join("model.safetensors");
    let tensors = tunelab::model::read_safetensors(&path).unwrap();
    // Write bf16 through the safetensors crate by way of tch's own writer.
    let half: Vec<_> = tensors.into_iter().map(|(k, v)| (k, v.to_kind(tch::Kind::BFloat16))).collect();
    tch::Tensor::write_safetensors(&half, &path).unwrap();
    let loaded = Encoder::load(dir.path(), Device::Cpu).unwrap();
    let a = reference.named_parameters();
    let b = loaded.named_parameters();
    for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(common::max_abs_diff(ta, tb) < 1e-2, "{na}");
    }
}

fn tunelab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tunelab")).args(args).output().unwrap()
}

#[test]
fn cli_reports_a_bad_config_in_one_line_and_fails() {
    let dir = tiny_copy();
    edit_config(dir.path(), |v| v["hidden_size"] = serde_json::json!(-3));
    let out = tunelab(&["inspect", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: ") && stderr.contains("field `hidden_size`"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn cli_inspect_json_of_the_tiny_model() {
    let out = tunelab(&["inspect", fixture("tiny_roberta").to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["model_type"], "roberta");
    assert_eq!(v["layers"], 2);
    assert_eq!(v["hidden_size"], 32);
    // 99*32 + 40*32 + 1*32 + 2*32 (embeddings) + 2 layers + pooler, as transformers counts them.
    let layer = 4 * (32 * 32 + 32) + 2 * 32 + (32 * 48 + 48) + (48 * 32 + 32) + 2 * 32;
    let expected = 99 * 32 + 40 * 32 + 32 + 2 * 32 + 2 * layer + 32 * 32 + 32;
    assert_eq!(v["parameters"], expected);
}

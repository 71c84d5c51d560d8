//! The encoder against transformers: outputs and gradients on the golden values that
//! `scripts/reference/encoder_fixtures.py` wrote with PyTorch 2.11 and transformers 4.57.
mod common;

use common::{fixture, golden, max_abs_diff, minilm_dir};
use tch::{Device, Kind, Tensor};
use tunelab::{Batch, Encoder, HeadSpec, Model};

fn fixture_batch(g: &std::collections::HashMap<String, Tensor>) -> Batch {
    Batch {
        input_ids: g["input_ids"].shallow_clone(),
        attention_mask: g["attention_mask"].shallow_clone(),
        token_type_ids: g["token_type_ids"].shallow_clone(),
    }
}

/// Outputs and the gradients of `sum(h * w_hidden) + sum(pooled * w_pooled)` match transformers.
fn check_outputs_and_gradients(model_dir: &str, golden_file: &str) {
    let encoder = Encoder::load(fixture(model_dir), Device::Cpu).unwrap();
    let g = golden(golden_file);
    let out = encoder.forward(&fixture_batch(&g), false);
    let d_hidden = max_abs_diff(&out.last_hidden_state, &g["last_hidden_state"]);
    let d_pooled = max_abs_diff(&out.pooler_output, &g["pooler_output"]);
    eprintln!("{model_dir}: last hidden state within {d_hidden:e}, pooler output within {d_pooled:e}");
    assert!(d_hidden <= 1e-5, "{model_dir}: last hidden state differs by {d_hidden:e}");
    assert!(d_pooled <= 1e-5, "{model_dir}: pooler output differs by {d_pooled:e}");

    let loss = (&out.last_hidden_state * &g["w_hidden"]).sum(Kind::Float) + (&out.pooler_output * &g["w_pooled"]).sum(Kind::Float);
    let d_loss = (loss.double_value(&[]) - g["loss"].double_value(&[0])).abs();
    assert!(d_loss <= 1e-4, "{model_dir}: loss differs by {d_loss:e}");
    loss.backward();
    let params: std::collections::HashMap<_, _> = encoder.named_parameters().into_iter().collect();
    let mut checked = 0;
    for (key, expected) in &g {
        let Some(name) = key.strip_prefix("grad.") else { continue };
        let grad = params[name].grad();
        // Gradients of this summed loss reach a few hundred, where float32 rounding alone is
        // ~1e-5: the bound is 1e-5 relative to the gradient's largest entry (absolute below 1).
        let scale = expected.abs().max().double_value(&[]).max(1.0);
        let d = max_abs_diff(&grad, expected);
        assert!(d <= 1e-5 * scale, "{model_dir}: gradient of {name} differs by {d:e} (largest entry {scale:e})");
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} gradients in the fixture");
}

#[test]
fn tiny_bert_with_bert_prefix_matches_transformers() {
    check_outputs_and_gradients("tiny_bert", "tiny_bert.safetensors");
}

#[test]
fn tiny_roberta_matches_transformers() {
    check_outputs_and_gradients("tiny_roberta", "tiny_roberta.safetensors");
}

#[test]
fn minilm_on_real_sentences_matches_transformers() {
    let encoder = Encoder::load(minilm_dir(), Device::Cpu).unwrap();
    let g = golden("minilm.safetensors");
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("minilm.json")).unwrap()).unwrap();
    let sentences: Vec<&str> = meta["sentences"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(sentences.len(), 5);

    // Our tokenisation (truncation to 128, padding to the longest) gives transformers' ids.
    let mut tok = encoder.tokenizer.clone().unwrap();
    tok.set_max_length(128).unwrap();
    let batch = tok.batch(&sentences, Device::Cpu).unwrap();
    assert_eq!(batch.input_ids, g["input_ids"]);
    assert_eq!(batch.attention_mask, g["attention_mask"]);
    let lengths: Vec<i64> = Vec::try_from(&batch.attention_mask.sum_dim_intlist(1, false, Kind::Int64)).unwrap();
    assert!(lengths.windows(2).all(|w| w[0] < w[1]), "sentences of different lengths: {lengths:?}");

    let out = tch::no_grad(|| encoder.forward(&batch, false));
    let d_hidden = max_abs_diff(&out.last_hidden_state, &g["last_hidden_state"]);
    let d_pooled = max_abs_diff(&out.pooler_output, &g["pooler_output"]);
    eprintln!("MiniLM: last hidden state within {d_hidden:e}, pooler output within {d_pooled:e}");
    assert!(d_hidden <= 1e-4, "MiniLM last hidden state differs by {d_hidden:e}");
    assert!(d_pooled <= 1e-4, "MiniLM pooler output differs by {d_pooled:e}");
}

/// `examples/save_tiny.rs` saved this model for the reference script, which loaded it with
/// `AutoModel.from_pretrained` (no missing or unexpected keys) and recorded its outputs.
#[test]
fn a_model_saved_by_tunelab_is_what_transformers_loads() {
    let mut encoder = Encoder::from_config(&tunelab::Config::tiny(), Device::Cpu, 7).unwrap();
    encoder.tokenizer = Some(tunelab::TextTokenizer::from_file(fixture("tiny_bert/tokenizer.json"), 0, 64).unwrap());
    let model = Model::new(encoder, HeadSpec::regression(tunelab::Pooling::Mean)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();

    let reloaded = Model::load(dir.path(), None, Device::Cpu).unwrap();
    assert_eq!(reloaded.head.spec, HeadSpec::regression(tunelab::Pooling::Mean));
    assert!(reloaded.encoder.report.unused.is_empty() && reloaded.encoder.report.initialised.is_empty());
    let g = golden("saved_by_tunelab.safetensors");
    let out = tch::no_grad(|| reloaded.encoder.forward(&fixture_batch(&g), false));
    let d = max_abs_diff(&out.last_hidden_state, &g["last_hidden_state"]);
    assert!(d <= 1e-5, "transformers' outputs on tunelab's checkpoint differ by {d:e}");
    let d = max_abs_diff(&out.pooler_output, &g["pooler_output"]);
    assert!(d <= 1e-5, "pooler differs by {d:e}");
    // The head came back too.
    let batch = fixture_batch(&g);
    let before = tch::no_grad(|| model.forward(&batch, false));
    let after = tch::no_grad(|| reloaded.forward(&batch, false));
    assert_eq!(before, after);
}

#[test]
fn dropout_is_active_only_in_training() {
    let encoder = Encoder::load(fixture("tiny_bert"), Device::Cpu).unwrap();
    let g = golden("tiny_bert.safetensors");
    let batch = fixture_batch(&g);
    let eval_a = tch::no_grad(|| encoder.forward(&batch, false)).last_hidden_state;
    let eval_b = tch::no_grad(|| encoder.forward(&batch, false)).last_hidden_state;
    assert_eq!(eval_a, eval_b);
    let train = tch::no_grad(|| encoder.forward(&batch, true)).last_hidden_state;
    assert!(max_abs_diff(&train, &eval_a) > 1e-3, "dropout did nothing in training mode");
}

#[test]
fn tiny_mpnet_matches_transformers() {
    check_outputs_and_gradients("tiny_mpnet", "tiny_mpnet.safetensors");
}

#[test]
fn mpnet_relative_position_buckets_match_transformers() {
    let g = golden("mpnet_buckets.safetensors");
    let buckets = tunelab::model::mpnet::relative_position_bucket(&g["relative"]);
    assert_eq!(buckets, g["bucket"]);
    // Every bucket is reached between -300 and 300 except 16, which would be distance 0 on
    // the "key after the query" side (distance 0 is bucket 0).
    assert_eq!(buckets.unique_dim(0, true, false, false).0.size(), [31]);
}

/// An MPNet saved by tunelab loads back with the same outputs, and says it is an MPNetModel.
#[test]
fn mpnet_saves_and_loads_back() {
    let model = Model::load(fixture("tiny_mpnet"), Some(HeadSpec::regression(tunelab::Pooling::Mean)), Device::Cpu).unwrap();
    assert!(model.encoder.report.initialised.iter().all(|n| n.starts_with("head.")), "{:?}", model.encoder.report);
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"], serde_json::json!(["MPNetModel"]));
    assert_eq!(config["model_type"], "mpnet");
    let reloaded = Model::load(dir.path(), None, Device::Cpu).unwrap();
    let batch = fixture_batch(&golden("tiny_mpnet.safetensors"));
    let before = tch::no_grad(|| model.forward(&batch, false));
    let after = tch::no_grad(|| reloaded.forward(&batch, false));
    assert_eq!(before, after);
}

/// The real all-mpnet-base-v2 (110M parameters, about 420 MB) is not part of `make setup`:
/// `make test-mpnet` installs it (`make setup-mpnet`) and runs this test.
#[test]
#[ignore = "needs models/all-mpnet-base-v2: run `make test-mpnet`"]
fn mpnet_on_real_sentences_matches_transformers() {
    let dir = common::root().join("models").join("all-mpnet-base-v2");
    assert!(dir.join("model.safetensors").is_file(), "{} is missing: run `make setup-mpnet` first", dir.display());
    let encoder = Encoder::load(&dir, Device::Cpu).unwrap();
    assert_eq!(encoder.num_parameters(), 109_486_464);
    let g = golden("mpnet.safetensors");
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("mpnet.json")).unwrap()).unwrap();
    let sentences: Vec<&str> = meta["sentences"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();

    let mut tok = encoder.tokenizer.clone().unwrap();
    tok.set_max_length(128).unwrap();
    let batch = tok.batch(&sentences, Device::Cpu).unwrap();
    assert_eq!(batch.input_ids, g["input_ids"]);
    assert_eq!(batch.attention_mask, g["attention_mask"]);

    let out = tch::no_grad(|| encoder.forward(&batch, false));
    let d_hidden = max_abs_diff(&out.last_hidden_state, &g["last_hidden_state"]);
    let d_pooled = max_abs_diff(&out.pooler_output, &g["pooler_output"]);
    eprintln!("all-mpnet-base-v2: last hidden state within {d_hidden:e}, pooler output within {d_pooled:e}");
    assert!(d_hidden <= 1e-4, "MPNet last hidden state differs by {d_hidden:e}");
    assert!(d_pooled <= 1e-4, "MPNet pooler output differs by {d_pooled:e}");
}

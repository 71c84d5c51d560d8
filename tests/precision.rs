//! Device and precision on the CPU: the loss scaler against torch.amp.GradScaler
//! (tests/fixtures/scaler.json, scripts/reference/scaler_fixture.py), bf16 and fp16 forward
//! passes close to fp32 with fp32 weights and losses, fp16 training resumed bit for bit with its
//! scaler state, and the device errors a researcher meets without a GPU.
mod common;

use std::process::Command;

use tch::{Kind, Tensor};
use tunelab::precision::{LossScaler, Precision, autocast};
use tunelab::recipe::{Eval, Recipe};
use tunelab::{DataSpec, Model, RunSpec, TrainConfig};

fn spec(precision: Precision) -> RunSpec {
    RunSpec {
        model: common::fixture("tiny_bert"),
        pooling: tunelab::Pooling::Pooler,
        head: Default::default(),
        data: DataSpec::new(common::fixture("vader-sample/train.tsv"), common::fixture("vader-sample/dev.tsv"), "text", "score", tunelab::data::TaskKind::Regression),
        recipe: Recipe { lr: tunelab::groups::LrLayout::Uniform { lr: 1e-3 }, evaluation: Eval { every: Some(4), ..Eval::default() }, ..Recipe::default() },
        training: TrainConfig { epochs: 1, batch_size: 16, max_steps: Some(12), seed: 3, threads: Some(1), max_length: 64, precision, ..TrainConfig::default() },
    }
}

fn value(s: &serde_json::Value) -> f32 {
    match s.as_str().unwrap() {
        "inf" => f32::INFINITY,
        "-inf" => f32::NEG_INFINITY,
        "nan" => f32::NAN,
        x => x.parse().unwrap(),
    }
}

#[test]
fn the_loss_scaler_skips_and_rescales_as_grad_scaler_does() {
    let golden: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(common::fixture("scaler.json")).unwrap()).unwrap();
    let mut scaler = LossScaler { scale: 1024.0, growth_interval: 3, ..LossScaler::default() };
    let params = [Tensor::zeros([3], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true), Tensor::zeros([4], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true)];
    let mut skipped = 0;
    for (i, step) in golden["steps"].as_array().unwrap().iter().enumerate() {
        assert_eq!(scaler.scale, step["scale_before"].as_f64().unwrap(), "step {i}");
        for (p, g) in params.iter().zip(step["grads"].as_array().unwrap()) {
            let g: Vec<f32> = g.as_array().unwrap().iter().map(value).collect();
            // Leave a gradient as a scaled loss's backward would.
            (p * Tensor::from_slice(&g)).sum(Kind::Float).backward();
        }
        let found_inf = scaler.unscale(&params);
        let stepped = step["stepped"].as_bool().unwrap();
        assert_eq!(!found_inf, stepped, "step {i}");
        if stepped {
            for (p, want) in params.iter().zip(step["unscaled"].as_array().unwrap()) {
                let want: Vec<f64> = want.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
                let got: Vec<f64> = Vec::try_from(p.grad().to_kind(Kind::Double)).unwrap();
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() <= 1e-6 * w.abs().max(1e-3), "step {i}: {g} vs {w}");
                }
            }
        } else {
            skipped += 1;
        }
        scaler.update(found_inf);
        assert_eq!(scaler.scale, step["scale_after"].as_f64().unwrap(), "step {i}");
        params.iter().for_each(|p| {
            let _ = p.grad().zero_();
        });
    }
    assert_eq!((scaler.skipped, skipped), (3, 3));
}

#[test]
fn low_precision_forward_passes_stay_close_to_fp32_with_fp32_weights() {
    let spec = spec(Precision::Fp32);
    let prepared = spec.prepare(tch::Device::Cpu).unwrap();
    let model: &Model = &prepared.model;
    let tokenizer = model.tokenizer().unwrap().clone();
    let encoded = prepared.dev.encode(&tokenizer).unwrap();
    let full = tunelab::train::predict(model, &encoded, 64);
    for (precision, tolerance) in [(Precision::Bf16, 0.05), (Precision::Fp16, 0.01)] {
        let low = autocast(precision, || tunelab::train::predict(model, &encoded, 64));
        let diff = common::max_abs_diff(&full, &low);
        let spread = full.std(false).double_value(&[]);
        assert!(diff > 0.0 && diff < tolerance * spread.max(1.0), "{precision:?}: max difference {diff} (outputs' sd {spread})");
        // Inside the region dense layers compute in the low format; the loss comes out in fp32.
        let (batch, targets) = encoded.batch(&[0, 1, 2], tch::Device::Cpu);
        let out = autocast(precision, || model.forward(&batch, false));
        assert_eq!(out.kind(), precision.kind().unwrap());
        assert_eq!(model.head.loss(&out, &targets).kind(), Kind::Float);
    }
    assert!(model.encoder.named_parameters().iter().all(|(_, t)| t.kind() == Kind::Float), "weights stay fp32");
}

fn tunelab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tunelab")).args(args).output().unwrap()
}

#[test]
fn fp16_training_resumes_bit_for_bit_with_its_loss_scale() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("spec.json");
    std::fs::write(&path, spec(Precision::Fp16).to_json()).unwrap();
    let (whole, parts) = (root.path().join("whole"), root.path().join("parts"));
    let ok = |o: std::process::Output| assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ok(tunelab(&["train", path.to_str().unwrap(), "--out", whole.to_str().unwrap(), "--quiet"]));
    ok(tunelab(&["train", path.to_str().unwrap(), "--out", parts.to_str().unwrap(), "--quiet", "--stop-after", "6"]));
    ok(tunelab(&["resume", parts.to_str().unwrap(), "--quiet"]));
    let log = std::fs::read_to_string(whole.join("log.jsonl")).unwrap();
    assert_eq!(log, std::fs::read_to_string(parts.join("log.jsonl")).unwrap(), "the resumed run's steps, losses and loss scales");
    assert_eq!(std::fs::read_to_string(whole.join("eval.jsonl")).unwrap(), std::fs::read_to_string(parts.join("eval.jsonl")).unwrap());
    let steps: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(steps.iter().all(|s| s["loss_scale"].as_f64().is_some()), "every step logs the loss scale");
    let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(whole.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["precision"], "fp16");
    let skipped = steps.iter().filter(|s| s["skipped"] == true).count();
    assert_eq!(metrics["skipped_steps"].as_u64().unwrap() as usize, skipped);
    assert!(metrics["best"]["value"].as_f64().unwrap().is_finite());
}

#[test]
fn bf16_trains_and_a_gpu_that_is_not_there_is_a_one_line_error() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("spec.json");
    std::fs::write(&path, spec(Precision::Fp32).to_json()).unwrap();
    let out = root.path().join("bf16");
    let o = tunelab(&["train", path.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet", "--precision", "bf16", "--device", "cpu"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("spec.json")).unwrap()).unwrap();
    assert_eq!((spec["training"]["precision"].as_str(), spec["training"]["device"].as_str()), (Some("bf16"), Some("cpu")));
    let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!((metrics["precision"].as_str(), metrics["device"].as_str()), (Some("bf16"), Some("Cpu")));
    assert!(metrics["best"]["value"].as_f64().unwrap().is_finite());
    if !tch::utils::has_cuda() || !tch::Cuda::is_available() {
        let o = tunelab(&["train", path.to_str().unwrap(), "--out", root.path().join("gpu").to_str().unwrap(), "--quiet", "--device", "cuda"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.lines().count() == 1 && err.contains("training.device is cuda:0"), "{err}");
        assert!(err.contains("make setup-cuda") || err.contains("no CUDA GPU"), "{err}");
        assert!(!root.path().join("gpu").exists(), "nothing is written before the device is known");
    }
    let o = tunelab(&["train", path.to_str().unwrap(), "--device", "tpu"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("expected auto, cpu, cuda or cuda:N"));
}

//! Re-initialisation and weight averaging on real weights.
mod common;

use std::collections::HashMap;

use tch::{Device, Kind, Tensor};
use tunelab::groups::{Block, Role};
use tunelab::techniques::{Averaging, Reinit, WeightAverage};
use tunelab::{HeadSpec, Model, Pooling};

fn minilm() -> Model {
    Model::load(common::minilm_dir(), Some(HeadSpec::regression(Pooling::Pooler)), Device::Cpu).unwrap()
}

fn snapshot(model: &Model) -> HashMap<String, Tensor> {
    model.variables().into_iter().map(|(n, t)| (n, t.detach().copy())).collect()
}

#[test]
fn reinit_of_the_top_two_layers_and_the_pooler() {
    let model = minilm();
    let before = snapshot(&model);
    let report = Reinit { top_layers: 2, pooler: true, seed: Some(11) }.apply(&model, 0).unwrap();

    // Exactly the tensors of layers 4 and 5 and the pooler, and every one of them.
    let expected: Vec<String> = model
        .parameters()
        .unwrap()
        .into_iter()
        .filter(|p| matches!(Block::of(&p.name), Some(Block::Layer(4 | 5) | Block::Pooler)))
        .map(|p| p.name)
        .collect();
    assert_eq!(report.tensors, expected);
    assert_eq!(report.tensors.len(), 2 * 16 + 2);

    let std = model.encoder.config.initializer_range;
    let vars = model.variables();
    for p in model.parameters().unwrap() {
        let now = &vars[&p.name];
        if !report.tensors.contains(&p.name) {
            assert!(now.equal(&before[&p.name]), "{} changed but was not re-initialised", p.name);
            continue;
        }
        match p.role {
            Role::Weight => {
                let (mean, sd) = (now.mean(Kind::Double).double_value(&[]), now.std(true).double_value(&[]));
                assert!(mean.abs() < 5e-4, "{}: mean {mean}", p.name);
                assert!((sd - std).abs() < 0.02 * std, "{}: std {sd}, initializer_range {std}", p.name);
            }
            Role::Bias => assert_eq!(now.abs().max().double_value(&[]), 0.0, "{}", p.name),
            Role::Norm => {
                let want = if p.name.ends_with(".weight") { 1.0 } else { 0.0 };
                assert!(now.eq(want).all().int64_value(&[]) == 1, "{}", p.name);
            }
            Role::Embedding | Role::PositionBias => unreachable!("no embedding table in a layer or the pooler"),
        }
    }
}

#[test]
fn reinit_with_the_same_seed_gives_the_same_weights() {
    let (a, b) = (minilm(), minilm());
    let r = Reinit { top_layers: 1, pooler: false, seed: None };
    r.apply(&a, 5).unwrap();
    Reinit { seed: Some(5), ..r.clone() }.apply(&b, 99).unwrap(); // a pinned seed wins over the run's
    let (va, vb) = (a.variables(), b.variables());
    for (name, t) in &va {
        assert!(t.equal(&vb[name]), "{name}");
    }
    let c = minilm();
    r.apply(&c, 6).unwrap(); // the run's seed, when none is pinned
    let name = "encoder.layer.5.attention.self.query.weight";
    assert!(!va[name].equal(&c.variables()[name]), "another seed gives other weights");
}

#[test]
fn reinit_of_more_layers_than_the_model_has_is_an_error() {
    let err = Reinit { top_layers: 7, pooler: false, seed: None }.apply(&minilm(), 0).unwrap_err().to_string();
    assert_eq!(err, "re-init: top_layers is 7 but the model has only 6 layers");
}

#[test]
fn the_averaged_weights_swap_in_and_out_without_copies() {
    let model = Model::load(common::fixture("tiny_bert"), Some(HeadSpec::regression(Pooling::Cls)), Device::Cpu).unwrap();
    let vars = model.variables();
    let params: Vec<(String, Tensor)> = model.parameters().unwrap().into_iter().map(|p| (p.name.clone(), vars[&p.name].shallow_clone())).collect();
    let own = snapshot(&model);
    let mut avg = WeightAverage::new(Averaging::Swa, &params);
    avg.update(&params);
    tch::no_grad(|| {
        for (_, t) in &params {
            let _ = t.shallow_clone().g_add_scalar_(1.0);
        }
    });
    avg.update(&params);
    // The mean of w and w + 1 is w + 0.5.
    avg.swap(&vars);
    for (name, t) in &vars {
        let d = common::max_abs_diff(t, &(&own[name] + 0.5));
        assert!(d < 1e-6, "{name}: {d}");
    }
    avg.swap(&vars);
    for (name, t) in &vars {
        assert!(t.equal(&(&own[name] + 1.0)), "{name} came back");
    }
}

/// LLRD and re-init address MPNet's layers as BERT's: by `encoder.layer.{i}`; the relative
/// position bias, shared by every layer, trains with the embeddings and is never re-initialised.
#[test]
fn llrd_and_reinit_address_mpnet_layers() {
    use tunelab::groups::{GroupTable, LrLayout};
    let model = Model::load(common::fixture("tiny_mpnet"), Some(HeadSpec::regression(Pooling::Mean)), Device::Cpu).unwrap();
    let params = model.parameters().unwrap();
    let layout = LrLayout::Llrd { top_lr: 1e-4, decay: 0.5, head_lr: 1e-3 };
    let table = GroupTable::build(&params, 2, &layout, 0.01).unwrap();
    assert_eq!(table.lr_of("encoder.layer.1.attention.attn.q.weight"), Some(1e-4));
    assert_eq!(table.lr_of("encoder.layer.0.attention.attn.o.weight"), Some(5e-5));
    assert_eq!(table.lr_of("encoder.relative_attention_bias.weight"), Some(2.5e-5));
    assert_eq!(table.lr_of("embeddings.word_embeddings.weight"), Some(2.5e-5));
    assert_eq!(table.lr_of("head.weight"), Some(1e-3));
    assert_eq!(table.row("encoder.layer.0.attention.LayerNorm.weight").unwrap().weight_decay, 0.0);
    assert_eq!(table.row("encoder.layer.0.attention.attn.q.bias").unwrap().weight_decay, 0.0);
    assert_eq!(table.row("encoder.relative_attention_bias.weight").unwrap().weight_decay, 0.0);
    assert_eq!(table.row("encoder.layer.0.attention.attn.q.weight").unwrap().weight_decay, 0.01);
    // Every variable is in the table: 2 layers of 16 tensors, 4 in the embeddings, the
    // relative bias, the pooler's 2 and the head's 2.
    assert_eq!(params.len(), 2 * 16 + 4 + 1 + 2 + 2);

    let before = snapshot(&model);
    let report = Reinit { top_layers: 1, pooler: true, seed: Some(3) }.apply(&model, 0).unwrap();
    assert_eq!(report.tensors.len(), 16 + 2);
    assert!(report.tensors.iter().all(|n| n.starts_with("encoder.layer.1.") || n.starts_with("pooler.")), "{:?}", report.tensors);
    let vars = model.variables();
    assert!(vars["encoder.relative_attention_bias.weight"].equal(&before["encoder.relative_attention_bias.weight"]));
    assert!(!vars["encoder.layer.1.attention.attn.q.weight"].equal(&before["encoder.layer.1.attention.attn.q.weight"]));
    assert!(vars["encoder.layer.0.attention.attn.q.weight"].equal(&before["encoder.layer.0.attention.attn.q.weight"]));
}

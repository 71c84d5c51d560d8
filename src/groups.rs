//! Parameter groups: which learning rate and weight decay each parameter trains with.
//!
//! The [`GroupTable`] is the table everything else reads: one row per trainable parameter
//! (name, block, LR group, base LR, weight decay). It is built from the model's parameter names
//! and roles and a [`LrLayout`], and it is checked before a single step runs: every trainable
//! parameter lands in exactly one group, or building it fails with the orphans or the overlaps.
//!
//! Layer-wise LR decay follows Zhang et al., *Revisiting Few-sample BERT Fine-tuning*
//! (ICLR 2021, <https://arxiv.org/abs/2006.05987>) and the seed article's
//! `roberta_base_AdamW_LLRD`: the top layer trains at `top_lr`, each layer below at the LR of
//! the one above times `decay`, the embeddings one more `decay` below the bottom layer; the
//! pooler and the head train at `head_lr`.
//!
//! Weight decay is decided by what a tensor *is* ([`Role`]), which the model reports, not by a
//! list of name fragments: biases and LayerNorm weights and biases get none.
//!
//! ```
//! use tunelab::groups::{Block, GroupTable, LrLayout, ParamInfo, Role};
//! let params = vec![
//!     ParamInfo::new("embeddings.word_embeddings.weight", Role::Embedding, 1000),
//!     ParamInfo::new("encoder.layer.0.attention.self.query.weight", Role::Weight, 100),
//!     ParamInfo::new("encoder.layer.0.attention.self.query.bias", Role::Bias, 10),
//!     ParamInfo::new("encoder.layer.1.output.LayerNorm.weight", Role::Norm, 10),
//!     ParamInfo::new("head.weight", Role::Weight, 10),
//! ];
//! let layout = LrLayout::Llrd { top_lr: 1e-4, decay: 0.5, head_lr: 3e-4 };
//! let table = GroupTable::build(&params, 2, &layout, 0.01).unwrap();
//! assert_eq!(table.lr_of("encoder.layer.1.output.LayerNorm.weight"), Some(1e-4));
//! assert_eq!(table.lr_of("encoder.layer.0.attention.self.query.weight"), Some(5e-5));
//! assert_eq!(table.lr_of("embeddings.word_embeddings.weight"), Some(2.5e-5));
//! assert_eq!(table.row("encoder.layer.0.attention.self.query.bias").unwrap().weight_decay, 0.0);
//! assert_eq!(table.row("head.weight").unwrap().block, Block::Head);
//! ```
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use crate::model::{ParamInfo, Role};

/// The part of the model a parameter belongs to, from its transformers name. Written
/// `embeddings`, `layer.3`, `pooler`, `head` in recipes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Block {
    Embeddings,
    Layer(usize),
    Pooler,
    Head,
}

impl Block {
    /// `embeddings.*` (and MPNet's `encoder.relative_attention_bias.*`), `encoder.layer.{i}.*`,
    /// `pooler.*`, `head.*`; anything else is `None`.
    pub fn of(name: &str) -> Option<Block> {
        let mut parts = name.split('.');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("embeddings"), _, _) => Some(Block::Embeddings),
            // MPNet's relative position bias, shared by all layers, is a position encoding.
            (Some("encoder"), Some("relative_attention_bias"), _) => Some(Block::Embeddings),
            (Some("encoder"), Some("layer"), Some(i)) => i.parse().ok().map(Block::Layer),
            (Some("pooler"), _, _) => Some(Block::Pooler),
            (Some("head"), _, _) => Some(Block::Head),
            _ => None,
        }
    }

    /// Parses the short names a researcher writes: `embeddings`, `layer.3`, `pooler`, `head`.
    pub fn parse(short: &str) -> Result<Block> {
        match short {
            "embeddings" => Ok(Block::Embeddings),
            "pooler" => Ok(Block::Pooler),
            "head" => Ok(Block::Head),
            other => other
                .strip_prefix("layer.")
                .and_then(|i| i.parse().ok())
                .map(Block::Layer)
                .ok_or_else(|| Error::Invalid(format!("unknown block `{other}`: expected embeddings, layer.N, pooler or head"))),
        }
    }
}

impl From<Block> for String {
    fn from(b: Block) -> String {
        b.to_string()
    }
}

impl TryFrom<String> for Block {
    type Error = Error;
    fn try_from(s: String) -> Result<Block> {
        Block::parse(&s)
    }
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Block::Embeddings => write!(f, "embeddings"),
            Block::Layer(i) => write!(f, "layer.{i}"),
            Block::Pooler => write!(f, "pooler"),
            Block::Head => write!(f, "head"),
        }
    }
}

/// One set of grouped LLRD: the blocks it holds and their common LR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSet {
    /// The LR group's name (`set.0`, `low`, ...).
    pub name: String,
    /// `embeddings` and `layer.N` blocks.
    pub blocks: Vec<Block>,
    pub lr: f64,
}

/// How learning rates are laid out over the blocks of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LrLayout {
    /// One LR for every parameter (the baseline). Groups are still one per block, so that logs
    /// and plots show every block.
    Uniform { lr: f64 },
    /// Layer-wise LR decay: layer `i` of `N` at `top_lr · decay^(N-1-i)`, the embeddings at
    /// `top_lr · decay^N`, the pooler and the head at `head_lr`.
    Llrd { top_lr: f64, decay: f64, head_lr: f64 },
    /// Grouped LLRD: each set of blocks at its own LR; the pooler and the head at `head_lr`.
    Grouped { sets: Vec<LayerSet>, head_lr: f64 },
}

impl LrLayout {
    /// The variant of Zhang et al.: the head at `lr`, the top layer already at `lr · decay`.
    pub fn llrd_paper(lr: f64, decay: f64) -> Self {
        LrLayout::Llrd { top_lr: lr * decay, decay, head_lr: lr }
    }

    /// Grouped LLRD with `lrs.len()` sets of consecutive layers, as equal in size as possible,
    /// the embeddings in the lowest set (the seed article: embeddings + layers 0–3, 4–7, 8–11).
    pub fn grouped_even(num_layers: usize, lrs: &[f64], head_lr: f64) -> Result<Self> {
        let n = lrs.len();
        if n == 0 || n > num_layers {
            return Err(Error::Invalid(format!("grouped LLRD: {n} sets for {num_layers} layers")));
        }
        let sets = lrs
            .iter()
            .enumerate()
            .map(|(s, &lr)| {
                let (from, to) = (s * num_layers / n, (s + 1) * num_layers / n);
                let mut blocks: Vec<Block> = (from..to).map(Block::Layer).collect();
                if s == 0 {
                    blocks.insert(0, Block::Embeddings);
                }
                LayerSet { name: format!("set.{s}"), blocks, lr }
            })
            .collect();
        Ok(LrLayout::Grouped { sets, head_lr })
    }

    /// Checks the LRs (finite; the layout's main LRs above 0, a grouped set's LR may be 0 to
    /// freeze it) and the decay (above 0).
    pub fn validate(&self) -> Result<()> {
        let lr_ok = |what: &str, lr: f64, zero_ok: bool| {
            if lr.is_finite() && (lr > 0.0 || (zero_ok && lr == 0.0)) {
                Ok(())
            } else {
                let range = if zero_ok { "a non-negative number" } else { "above 0" };
                Err(Error::Invalid(format!("{what} must be {range}, got {lr}")))
            }
        };
        match self {
            LrLayout::Uniform { lr } => lr_ok("lr", *lr, false),
            LrLayout::Llrd { top_lr, decay, head_lr } => {
                lr_ok("top_lr", *top_lr, false)?;
                lr_ok("head_lr", *head_lr, false)?;
                if !(*decay > 0.0 && decay.is_finite()) {
                    return Err(Error::Invalid(format!("LLRD decay must be above 0, got {decay}")));
                }
                Ok(())
            }
            LrLayout::Grouped { sets, head_lr } => {
                lr_ok("head_lr", *head_lr, false)?;
                sets.iter().try_for_each(|s| lr_ok(&format!("the lr of set `{}`", s.name), s.lr, true))
            }
        }
    }

    /// Settings that are legal but probably not what was meant.
    pub fn warnings(&self) -> Vec<String> {
        match self {
            LrLayout::Llrd { decay, .. } if *decay > 1.0 => {
                vec![format!("LLRD decay {decay} is above 1: lower layers will train faster than the top one (0.8–0.95 is usual)")]
            }
            LrLayout::Grouped { sets, .. } => sets
                .iter()
                .filter(|s| s.lr == 0.0)
                .map(|s| format!("grouped LLRD: set `{}` has LR 0, so its layers stay frozen", s.name))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The LR group (name, base LR) of each block; `None` for a block no group claims.
    /// Errors on a block claimed twice.
    fn assign(&self, blocks: &[Block], num_layers: usize) -> Result<BTreeMap<Block, (String, f64)>> {
        let mut out = BTreeMap::new();
        for &b in blocks {
            let group = match (self, b) {
                (LrLayout::Uniform { lr }, b) => Some((b.to_string(), *lr)),
                (LrLayout::Llrd { head_lr, .. } | LrLayout::Grouped { head_lr, .. }, Block::Pooler | Block::Head) => {
                    Some((b.to_string(), *head_lr))
                }
                (LrLayout::Llrd { top_lr, decay, .. }, Block::Layer(i)) => {
                    Some((b.to_string(), top_lr * decay.powi((num_layers - 1 - i) as i32)))
                }
                (LrLayout::Llrd { top_lr, decay, .. }, Block::Embeddings) => {
                    Some((b.to_string(), top_lr * decay.powi(num_layers as i32)))
                }
                (LrLayout::Grouped { sets, .. }, b) => {
                    let mut owners = sets.iter().filter(|s| s.blocks.contains(&b));
                    let first = owners.next();
                    if let Some(second) = owners.next() {
                        return Err(Error::Invalid(format!(
                            "grouped LLRD: {b} is in two sets, `{}` and `{}`",
                            first.map(|s| s.name.as_str()).unwrap_or_default(),
                            second.name
                        )));
                    }
                    first.map(|s| (s.name.clone(), s.lr))
                }
            };
            if let Some(g) = group {
                out.insert(b, g);
            }
        }
        Ok(out)
    }
}

/// One row of the table: a parameter and how it trains.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub name: String,
    pub block: Block,
    pub role: Role,
    pub numel: i64,
    /// The LR group's name: `embeddings`, `layer.3`, `pooler`, `head` or a set's name.
    pub group: String,
    /// The base LR (the peak of the schedule).
    pub lr: f64,
    pub weight_decay: f64,
}

/// A named LR group with its base LR.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LrGroup {
    pub name: String,
    pub lr: f64,
}

/// Per-group counts for the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupSummary {
    pub name: String,
    pub lr: f64,
    pub tensors: usize,
    pub parameters: i64,
    /// Tensors without weight decay (biases, LayerNorm).
    pub no_decay_tensors: usize,
}

/// Every trainable parameter with its LR group, base LR and weight decay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupTable {
    /// The LR groups, from the embeddings up to the head.
    pub groups: Vec<LrGroup>,
    /// One row per parameter, in the model's order.
    pub rows: Vec<Row>,
}

impl GroupTable {
    /// Builds and checks the table. Fails, listing them, when a parameter belongs to no block
    /// or to no group, or a block to two groups.
    pub fn build(params: &[ParamInfo], num_layers: usize, layout: &LrLayout, weight_decay: f64) -> Result<Self> {
        layout.validate()?;
        if !(weight_decay.is_finite() && weight_decay >= 0.0) {
            return Err(Error::Invalid(format!("weight_decay must be a non-negative number, got {weight_decay}")));
        }
        let mut unknown = Vec::new();
        let mut blocks = Vec::new();
        for p in params {
            match Block::of(&p.name) {
                Some(Block::Layer(i)) if i >= num_layers => unknown.push(p.name.clone()),
                Some(b) => blocks.push(b),
                None => unknown.push(p.name.clone()),
            }
        }
        if !unknown.is_empty() {
            return Err(Error::Invalid(format!("parameters outside embeddings, layers, pooler and head: {}", unknown.join(", "))));
        }
        let mut distinct = blocks.clone();
        distinct.sort();
        distinct.dedup();
        if let LrLayout::Grouped { sets, .. } = layout {
            for s in sets {
                if let Some(b) = s.blocks.iter().find(|b| !distinct.contains(b)) {
                    return Err(Error::Invalid(format!("grouped LLRD: set `{}` names {b}, which the model does not have", s.name)));
                }
            }
        }
        let assigned = layout.assign(&distinct, num_layers)?;
        let orphans: Vec<String> =
            params.iter().zip(&blocks).filter(|(_, b)| !assigned.contains_key(b)).map(|(p, _)| p.name.clone()).collect();
        if !orphans.is_empty() {
            return Err(Error::Invalid(format!(
                "these parameters are in no LR group and would silently not train: {}",
                orphans.join(", ")
            )));
        }
        let rows: Vec<Row> = params
            .iter()
            .zip(&blocks)
            .map(|(p, b)| {
                let (group, lr) = assigned[b].clone();
                Row {
                    name: p.name.clone(),
                    block: *b,
                    role: p.role,
                    numel: p.numel,
                    group,
                    lr,
                    weight_decay: if p.role.decays() { weight_decay } else { 0.0 },
                }
            })
            .collect();
        let mut groups: Vec<LrGroup> = Vec::new();
        for (name, lr) in assigned.values() {
            if !groups.iter().any(|g| &g.name == name) {
                groups.push(LrGroup { name: name.clone(), lr: *lr });
            }
        }
        Ok(GroupTable { groups, rows })
    }

    /// The number of encoder layers the table holds.
    pub fn num_layers(&self) -> usize {
        self.rows.iter().filter_map(|r| if let Block::Layer(i) = r.block { Some(i + 1) } else { None }).max().unwrap_or(0)
    }

    /// The row of a parameter.
    pub fn row(&self, name: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.name == name)
    }

    /// The base LR of a parameter.
    pub fn lr_of(&self, name: &str) -> Option<f64> {
        self.row(name).map(|r| r.lr)
    }

    /// The index of an LR group in [`GroupTable::groups`].
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.name == name)
    }

    /// Counts per LR group.
    pub fn summary(&self) -> Vec<GroupSummary> {
        self.groups
            .iter()
            .map(|g| {
                let rows: Vec<&Row> = self.rows.iter().filter(|r| r.group == g.name).collect();
                GroupSummary {
                    name: g.name.clone(),
                    lr: g.lr,
                    tensors: rows.len(),
                    parameters: rows.iter().map(|r| r.numel).sum(),
                    no_decay_tensors: rows.iter().filter(|r| r.weight_decay == 0.0).count(),
                }
            })
            .collect()
    }
}

impl fmt::Display for GroupTable {
    /// The per-group summary, then every parameter (`{:#}` for the summary only).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<14} {:>12} {:>8} {:>12} {:>9}", "group", "lr", "tensors", "parameters", "no decay")?;
        for s in self.summary() {
            writeln!(f, "{:<14} {:>12.4e} {:>8} {:>12} {:>9}", s.name, s.lr, s.tensors, s.parameters, s.no_decay_tensors)?;
        }
        if f.alternate() {
            return Ok(());
        }
        writeln!(f)?;
        writeln!(f, "{:<56} {:<12} {:>12} {:>8}", "parameter", "group", "lr", "decay")?;
        for r in &self.rows {
            writeln!(f, "{:<56} {:<12} {:>12.4e} {:>8}", r.name, r.group, r.lr, r.weight_decay)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(layers: usize) -> Vec<ParamInfo> {
        let mut p = vec![
            ParamInfo::new("embeddings.word_embeddings.weight", Role::Embedding, 100),
            ParamInfo::new("embeddings.LayerNorm.weight", Role::Norm, 4),
        ];
        for i in 0..layers {
            p.push(ParamInfo::new(format!("encoder.layer.{i}.attention.self.query.weight"), Role::Weight, 16));
            p.push(ParamInfo::new(format!("encoder.layer.{i}.attention.self.query.bias"), Role::Bias, 4));
        }
        p.push(ParamInfo::new("pooler.dense.weight", Role::Weight, 16));
        p.push(ParamInfo::new("head.weight", Role::Weight, 4));
        p.push(ParamInfo::new("head.bias", Role::Bias, 1));
        p
    }

    #[test]
    fn llrd_matches_the_seed_article_loop() {
        // roberta_base_AdamW_LLRD: lr = init_lr; for layer in 11..=0 { group(layer, lr); lr *= 0.9 }; embeddings at lr.
        let t = GroupTable::build(&params(12), 12, &LrLayout::Llrd { top_lr: 3.5e-6, decay: 0.9, head_lr: 3.6e-6 }, 0.01).unwrap();
        let mut lr = 3.5e-6;
        for layer in (0..12).rev() {
            let got = t.lr_of(&format!("encoder.layer.{layer}.attention.self.query.weight")).unwrap();
            assert!((got - lr).abs() <= 1e-20, "layer {layer}: {got} vs {lr}");
            lr *= 0.9;
        }
        assert!((t.lr_of("embeddings.word_embeddings.weight").unwrap() - lr).abs() <= 1e-20);
        assert_eq!(t.lr_of("pooler.dense.weight"), Some(3.6e-6));
        assert_eq!(t.lr_of("head.bias"), Some(3.6e-6));
        assert_eq!(t.groups.len(), 15);
        assert_eq!(t.groups.first().unwrap().name, "embeddings");
        assert_eq!(t.groups.last().unwrap().name, "head");
    }

    #[test]
    fn paper_variant_puts_the_head_at_the_base_lr() {
        let layout = LrLayout::llrd_paper(2e-5, 0.95);
        let t = GroupTable::build(&params(2), 2, &layout, 0.0).unwrap();
        assert_eq!(t.lr_of("head.weight"), Some(2e-5));
        assert_eq!(t.lr_of("encoder.layer.1.attention.self.query.weight"), Some(2e-5 * 0.95));
    }

    #[test]
    fn weight_decay_follows_the_role() {
        let t = GroupTable::build(&params(2), 2, &LrLayout::Uniform { lr: 1e-3 }, 0.01).unwrap();
        for r in &t.rows {
            let expected = if matches!(r.role, Role::Bias | Role::Norm) { 0.0 } else { 0.01 };
            assert_eq!(r.weight_decay, expected, "{}", r.name);
        }
    }

    #[test]
    fn grouped_even_splits_like_the_seed_article() {
        let layout = LrLayout::grouped_even(12, &[1e-6, 1.75e-6, 3.5e-6], 3.6e-6).unwrap();
        let t = GroupTable::build(&params(12), 12, &layout, 0.01).unwrap();
        assert_eq!(t.lr_of("embeddings.word_embeddings.weight"), Some(1e-6));
        assert_eq!(t.lr_of("encoder.layer.3.attention.self.query.weight"), Some(1e-6));
        assert_eq!(t.lr_of("encoder.layer.4.attention.self.query.weight"), Some(1.75e-6));
        assert_eq!(t.lr_of("encoder.layer.11.attention.self.query.weight"), Some(3.5e-6));
        let names: Vec<_> = t.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["set.0", "set.1", "set.2", "pooler", "head"]);
    }

    #[test]
    fn orphans_are_listed() {
        let layout = LrLayout::Grouped {
            sets: vec![LayerSet { name: "low".into(), blocks: vec![Block::Embeddings, Block::Layer(0)], lr: 1e-5 }],
            head_lr: 1e-4,
        };
        let err = GroupTable::build(&params(2), 2, &layout, 0.0).unwrap_err().to_string();
        assert!(err.contains("in no LR group") && err.contains("encoder.layer.1.attention.self.query.weight"), "{err}");
        assert!(err.contains("encoder.layer.1.attention.self.query.bias"), "{err}");
    }

    #[test]
    fn overlaps_are_errors() {
        let layout = LrLayout::Grouped {
            sets: vec![
                LayerSet { name: "a".into(), blocks: vec![Block::Embeddings, Block::Layer(0), Block::Layer(1)], lr: 1e-5 },
                LayerSet { name: "b".into(), blocks: vec![Block::Layer(1)], lr: 1e-5 },
            ],
            head_lr: 1e-4,
        };
        let err = GroupTable::build(&params(2), 2, &layout, 0.0).unwrap_err().to_string();
        assert!(err.contains("layer.1 is in two sets, `a` and `b`"), "{err}");
    }

    #[test]
    fn unknown_parameters_are_errors() {
        let mut p = params(2);
        p.push(ParamInfo::new("adapter.weight", Role::Weight, 3));
        let err = GroupTable::build(&p, 2, &LrLayout::Uniform { lr: 1e-3 }, 0.0).unwrap_err().to_string();
        assert!(err.contains("adapter.weight"), "{err}");
    }

    #[test]
    fn summary_counts_tensors_and_parameters() {
        let t = GroupTable::build(&params(2), 2, &LrLayout::Uniform { lr: 1e-3 }, 0.01).unwrap();
        let s = t.summary();
        let emb = s.iter().find(|g| g.name == "embeddings").unwrap();
        assert_eq!((emb.tensors, emb.parameters, emb.no_decay_tensors), (2, 104, 1));
        assert_eq!(s.iter().map(|g| g.tensors).sum::<usize>(), t.rows.len());
    }
}

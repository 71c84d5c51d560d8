//! The seed article's recipe on the real all-MiniLM-L6-v2: layer-wise LR decay (0.9), 50
//! warm-up steps and linear decay, the top layer and the pooler re-initialised, and SWA from
//! 75% of the run with each group annealing to half its LR. Prints the parameter-group table
//! and the LR schedule summary of a 500-step run; nothing trains.
//!
//! Usage: cargo run --release --example seed_recipe [MODEL_DIR]
use tunelab::groups::LrLayout;
use tunelab::recipe::{Decay, Eval, Recipe, Warmup};
use tunelab::techniques::{Reinit, Swa};
use tunelab::{HeadSpec, Model, Pooling};

fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "models/all-MiniLM-L6-v2".into());
    let model = Model::load(&dir, Some(HeadSpec::regression(Pooling::Pooler)), tch::Device::Cpu)?;
    let recipe = Recipe {
        lr: LrLayout::Llrd { top_lr: 3.5e-5, decay: 0.9, head_lr: 3.6e-5 },
        weight_decay: 0.01,
        warmup: Warmup::Steps(50),
        decay: Decay::Linear,
        reinit: Some(Reinit { top_layers: 1, pooler: true, seed: None }),
        swa: Some(Swa::default()),
        evaluation: Eval { every: Some(20), ..Eval::default() },
        ..Recipe::default()
    };
    let table = recipe.group_table(&model)?;
    print!("{table:#}");
    println!();
    print!("{}", recipe.lr_table(&table, 500)?);

    let grouped = Recipe { lr: LrLayout::grouped_even(6, &[1e-5, 1.75e-5, 3.5e-5], 3.6e-5)?, ..recipe };
    println!("\ngrouped LLRD:");
    print!("{}", grouped.lr_table(&grouped.group_table(&model)?, 500)?);
    Ok(())
}

//! Initialises a tiny BERT with tunelab, puts a regression head on it and saves it in
//! Hugging Face layout. `scripts/reference/encoder_fixtures.py` loads the result with
//! transformers to check that tunelab's checkpoints are what transformers expects.
//!
//! Usage: cargo run --example save_tiny -- OUT_DIR
use tunelab::{Config, Encoder, HeadSpec, Model, Pooling, TextTokenizer};

/// The seed the golden test uses too.
pub const SEED: u64 = 7;

fn main() -> anyhow::Result<()> {
    let out = std::env::args().nth(1).ok_or_else(|| anyhow::anyhow!("usage: save_tiny OUT_DIR"))?;
    let mut encoder = Encoder::from_config(&Config::tiny(), tch::Device::Cpu, SEED)?;
    // The word-level tokenizer of the tiny test models, so that the folder is complete.
    let tokenizer = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny_bert/tokenizer.json");
    encoder.tokenizer = Some(TextTokenizer::from_file(tokenizer, 0, 64)?);
    let model = Model::new(encoder, HeadSpec::regression(Pooling::Mean))?;
    model.save(&out)?;
    println!("saved a tiny tunelab model to {out}");
    Ok(())
}

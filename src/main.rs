//! The `tunelab` command line.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tunelab::Encoder;

#[derive(Parser)]
#[command(name = "tunelab", version, about = "Fine-tune BERT-family encoders with composable techniques")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show a model folder's architecture, layers and parameter count.
    ///
    /// Example: tunelab inspect models/all-MiniLM-L6-v2 --json
    Inspect {
        /// A folder with config.json, model.safetensors and tokenizer.json.
        model_dir: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Inspect { model_dir, json } => inspect(&model_dir, json),
    }
}

fn inspect(dir: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let encoder = Encoder::load(dir, tch::Device::Cpu)?;
    let summary = tunelab::model::Summary::of(&encoder);
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{summary}");
    }
    Ok(())
}

//! The `tunelab` command line.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tunelab::{Encoder, RunSpec};

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
    /// Fine-tune a model as a run specification (JSON) describes.
    ///
    /// The specification names the model folder, the data files and columns, the recipe and
    /// the training settings; every run writes the full one back as its recipe.json.
    ///
    /// Example: tunelab train scripts/vader-llrd.json --out runs/llrd
    Train {
        /// A run specification: {"model": ..., "data": {...}, "recipe": {...}, "training": {...}}.
        spec: PathBuf,
        /// The run directory (default: runs/<name>-<timestamp>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Stop after this many optimizer steps; `tunelab resume` continues the run.
        #[arg(long)]
        stop_after: Option<usize>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Continue a stopped or interrupted run from its last checkpoint.
    ///
    /// Example: tunelab resume runs/llrd
    Resume {
        /// The run directory (it holds recipe.json and last/).
        run_dir: PathBuf,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
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
        Command::Train { spec, out, stop_after, quiet } => {
            let mut spec = RunSpec::from_file(&spec)?;
            spec.training.out_dir = out.or(spec.training.out_dir);
            spec.training.stop_after = stop_after;
            spec.training.quiet |= quiet;
            report(&spec.run()?)
        }
        Command::Resume { run_dir, quiet } => {
            let mut spec = RunSpec::from_file(&run_dir.join("recipe.json"))?;
            spec.training.resume = Some(run_dir);
            spec.training.stop_after = None;
            spec.training.quiet |= quiet;
            report(&spec.run()?)
        }
    }
}

fn report(run: &tunelab::Run) -> anyhow::Result<()> {
    let m = &run.metrics;
    let state = if m.finished { "finished" } else { "stopped (resumable)" };
    println!("run {state} after {} of {} steps: {}", m.steps, m.total_steps, run.dir.display());
    if let Some(best) = &m.best {
        println!("best dev {} {:.4} at step {}", best.metric, best.value, best.step);
    }
    if let (Some(best), Some(swa)) = (&m.best, &m.swa) {
        println!("SWA weights: dev {} {:.4}", best.metric, swa.get(&best.metric).copied().unwrap_or(f64::NAN));
    }
    println!("{:.1} training examples/s, {:.0} s in all", m.train_samples_per_second, m.wall_seconds);
    Ok(())
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

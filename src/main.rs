//! The `tunelab` command line.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tunelab::script::{Mode, Script, Session};
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
    /// Run a rhai recipe script: load a model and data, compose techniques, train, compare.
    ///
    /// Top-level `let` variables of the script can be overridden from the command line.
    ///
    /// Example: tunelab run scripts/full.rhai --set epochs=1 --set max_steps=20
    Run {
        /// The script (.rhai).
        script: PathBuf,
        /// Override a variable the script declares, as NAME=VALUE (repeatable).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
        /// Run only part of an ablation: shard I of N (0-based), e.g. --shard 2/8 in a Slurm array.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
    },
    /// Show what a script would train, without training: the parameter groups, the schedule
    /// summary, and optionally the LR of every group at every step (CSV) and its plot.
    ///
    /// Example: tunelab plan scripts/full.rhai --lr-csv lr.csv --plot lr.png
    Plan {
        /// The script (.rhai).
        script: PathBuf,
        /// Override a variable the script declares, as NAME=VALUE (repeatable).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// Write the LR table (a `step` column, then one column per group) to this CSV file.
        #[arg(long, value_name = "FILE")]
        lr_csv: Option<PathBuf>,
        /// Write the LR plot to this .svg or .png file.
        #[arg(long, value_name = "FILE")]
        plot: Option<PathBuf>,
    },
    /// Plot runs: the training loss and the dev metric at each evaluation, runs overlaid.
    ///
    /// Example: tunelab plot runs/baseline-* runs/full-* --out curves.png
    Plot {
        /// Run directories (they hold log.jsonl and eval.jsonl).
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// The .png or .svg file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Combine the result files of an ablation's shards into one summary table.
    ///
    /// Example: tunelab merge runs/ablation
    Merge {
        /// The ablation's output folder (it holds results-*.jsonl).
        dir: PathBuf,
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
        Command::Run { script, set, quiet, shard } => {
            let script = Script::from_file(&script)?;
            let session = Session { quiet, shard: shard.as_deref().map(parse_shard).transpose()?, ..Session::default() };
            let _ = script.eval_in(session, &parse_sets(&set)?)?;
            Ok(())
        }
        Command::Plan { script, set, lr_csv, plot } => {
            let script = Script::from_file(&script)?;
            let (_, session) = script.eval_in(Session { mode: Mode::Plan { lr_csv, plot }, ..Session::default() }, &parse_sets(&set)?)?;
            if session.plans.is_empty() {
                anyhow::bail!("the script never calls train(..) or plan(..), so there is nothing to plan");
            }
            Ok(())
        }
        Command::Merge { dir } => {
            let rows = tunelab::ablation::merge(&dir)?;
            let summaries = tunelab::ablation::summarize(&rows);
            print!("{}", tunelab::ablation::table(&summaries));
            tunelab::ablation::write_summary(&dir, &summaries)?;
            tunelab::plot::Chart::ablation(&rows).save(&dir.join("ablation.png"))?;
            println!("{} runs; summary.csv and ablation.png written to {}", rows.len(), dir.display());
            Ok(())
        }
        Command::Plot { runs, out } => {
            tunelab::plot::Chart::run_dirs(&runs)?.save(&out)?;
            println!("wrote {}", out.display());
            Ok(())
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

fn parse_sets(sets: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    sets.iter()
        .map(|s| match s.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_string(), value.to_string())),
            _ => anyhow::bail!("--set {s}: expected NAME=VALUE"),
        })
        .collect()
}

fn parse_shard(s: &str) -> anyhow::Result<(usize, usize)> {
    let parsed = s.split_once('/').and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
    match parsed {
        Some((i, n)) if n > 0 && i < n => Ok((i, n)),
        _ => anyhow::bail!("--shard {s}: expected I/N with 0 <= I < N, e.g. 0/4"),
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

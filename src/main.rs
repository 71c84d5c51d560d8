//! The `tunelab` command line.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tunelab::script::{Script, ScriptSettings};
use tunelab::{Encoder, RunControl, RunSpec};

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
        /// Without a terminal (a log file, Slurm, nohup), a progress line is written to stderr every
        /// 30 s; this sets the interval (and prints lines instead of the bar on a terminal too).
        #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
        progress_every: Option<f64>,
        /// Also write TensorBoard event files into each run folder.
        #[arg(long)]
        tensorboard: bool,
        /// Run only part of an ablation or a cross-validation: shard I of N (0-based), e.g.
        /// --shard 2/8 in a Slurm array. A sweep's workers share its trials whatever their
        /// number; for a sweep, the shard only names the worker in the trial records.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        #[command(flatten)]
        hardware: HardwareArgs,
        /// The most operations the script may run before it is stopped (calls into tunelab count as one).
        #[arg(long, value_name = "N", default_value_t = 10_000_000)]
        max_operations: u64,
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
        /// Which planned run --lr-csv and --plot cover: its number (from 1) or its name.
        #[arg(long, value_name = "N|NAME")]
        run: Option<String>,
        /// Estimate each planned run's time on this machine by timing a few optimizer steps
        /// (3 unless given) and one evaluation.
        #[arg(long, value_name = "STEPS", num_args = 0..=1, default_missing_value = "3")]
        estimate: Option<usize>,
    },
    /// Print a complete run specification, every default spelled out: a template
    /// (--defaults), or a specification file completed with the defaults it leaves out.
    /// Every key is explained in docs/options.md.
    ///
    /// Example: tunelab spec --defaults > my-run.json
    Spec {
        /// The specification to complete.
        #[arg(required_unless_present = "defaults")]
        file: Option<PathBuf>,
        /// Print the template: MiniLM on the VADER sentences, the baseline recipe.
        #[arg(long)]
        defaults: bool,
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
        /// The dev metric to plot (default: the one that selected each run's best weights).
        #[arg(long, value_name = "NAME")]
        metric: Option<String>,
    },
    /// Combine the shards of an ablation (its results-*.jsonl) into one summary table, or the
    /// folds of a cross-validation into its out-of-fold predictions and CV score.
    ///
    /// Example: tunelab merge runs/ablation
    Merge {
        /// The ablation's folder (it holds results-*.jsonl), the cross-validation's (it holds
        /// spec.json and fold-*/) or the sweep's (it holds sweep.json and trial-*.json).
        dir: PathBuf,
        /// Print the ablation's table (or the sweep's leaderboard) as Markdown, for a results page.
        #[arg(long)]
        markdown: bool,
        /// The ablation's recipes each add one technique to the first recipe, not to the row
        /// above: compare each with the first only (no "vs previous row" column in the printed
        /// table; summary.csv keeps every comparison).
        #[arg(long)]
        each_vs_first: bool,
    },
    /// Fine-tune a model as a run specification (JSON) describes.
    ///
    /// The specification names the model folder, the data files and columns, the recipe and
    /// the training settings; every run writes the full one back as its spec.json, so
    /// `tunelab train runs/A/spec.json` replays run A into a new folder.
    ///
    /// Example: tunelab train runs/full-20261128-101500/spec.json --out runs/again
    Train {
        /// A run specification: {"model": ..., "data": {...}, "recipe": {...}, "training": {...}}.
        spec: PathBuf,
        /// The run folder (default: runs/<name>-<timestamp>). It must not hold files already.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Empty the --out folder first if it holds a tunelab run (its spec.json and the files a
        /// run writes, nothing else). Any other folder is refused, and nothing in it is deleted.
        #[arg(long)]
        force: bool,
        /// Stop after this many optimizer steps; `tunelab resume` continues the run.
        #[arg(long)]
        stop_after: Option<usize>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Without a terminal (a log file, Slurm, nohup), a progress line is written to stderr every
        /// 30 s; this sets the interval (and prints lines instead of the bar on a terminal too).
        #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
        progress_every: Option<f64>,
        /// Also write TensorBoard event files into the run folder.
        #[arg(long)]
        tensorboard: bool,
        /// A cross-validation (data.cv) only: run the folds of shard I of N (0-based); with
        /// --out, the same for every shard; `tunelab merge` completes it.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        #[command(flatten)]
        hardware: HardwareArgs,
    },
    /// Predict a file with a fine-tuned model (a run's best/ or swa/ folder): one row per input
    /// with its id and the prediction (and each class's probability), plus the metrics when
    /// the file has labels.
    ///
    /// The columns default to those the model was trained on.
    ///
    /// Example: tunelab predict runs/full-20261128-101500/best data/vader-movies/test.tsv --out predictions.tsv
    Predict {
        /// The model folder (a run's best/ or swa/: it holds tunelab.json), or a cross-validation's
        /// folder: then every fold's model predicts and the file gets their mean and each fold's.
        model_dir: PathBuf,
        /// The file to predict (.tsv, .csv or .jsonl with a header).
        file: PathBuf,
        /// Where to write the predictions (TSV).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The text column (default: the one the model was trained on, or `text`).
        #[arg(long)]
        text: Option<String>,
        /// The second text column, for sentence pairs (default: the one the model was trained on).
        #[arg(long)]
        pair: Option<String>,
        /// The label column (default: the one the model was trained on, or `label`); the file may
        /// lack it (then no metrics).
        #[arg(long)]
        label: Option<String>,
        /// A column identifying each row (default: the model's id column if the file has it,
        /// otherwise the line number).
        #[arg(long)]
        id: Option<String>,
    },
    /// Continue a stopped or interrupted run from its last checkpoint.
    ///
    /// Example: tunelab resume runs/llrd
    Resume {
        /// The run folder (it holds spec.json and, once checkpointed, last/).
        run_dir: PathBuf,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Without a terminal (a log file, Slurm, nohup), a progress line is written to stderr every
        /// 30 s; this sets the interval (and prints lines instead of the bar on a terminal too).
        #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
        progress_every: Option<f64>,
        /// Also write TensorBoard event files into the run folder.
        #[arg(long)]
        tensorboard: bool,
    },
    /// A Jupyter kernel whose cells are rhai (Jupyter starts it with --connection-file), or,
    /// with --install, its kernelspec ("tunelab (rhai)") written where Jupyter finds it.
    ///
    /// Example: tunelab kernel --install --sys-prefix
    #[cfg(feature = "kernel")]
    Kernel {
        /// The connection file Jupyter wrote (ports and key).
        #[arg(long, value_name = "FILE", required_unless_present = "install", conflicts_with = "install")]
        connection_file: Option<PathBuf>,
        /// Write the kernelspec instead of running (into the user's Jupyter folder by default).
        #[arg(long)]
        install: bool,
        /// Install for this user: ~/.local/share/jupyter/kernels (or $JUPYTER_DATA_DIR/kernels).
        #[arg(long, requires = "install", conflicts_with_all = ["sys_prefix", "prefix"])]
        user: bool,
        /// Install into the active Python environment ($VIRTUAL_ENV or $CONDA_PREFIX).
        #[arg(long, requires = "install", conflicts_with = "prefix")]
        sys_prefix: bool,
        /// Install into PREFIX/share/jupyter/kernels (e.g. --prefix .venv).
        #[arg(long, value_name = "PREFIX", requires = "install")]
        prefix: Option<PathBuf>,
        /// The kernelspec's name.
        #[arg(long, default_value = "tunelab-rhai")]
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Every tunelab error says all it knows in one line (its sources included).
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Ctrl-C while training: the first stops the run at its next step boundary (with a checkpoint
/// if the run keeps one, `training.keep: resumable`); a second quits at once.
fn stop_on_ctrl_c() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let flag = std::sync::Arc::new(AtomicBool::new(false));
    let seen = flag.clone();
    let _ = ctrlc::set_handler(move || {
        if seen.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping at the next step boundary (Ctrl-C again quits at once)");
    });
    flag
}

/// An error (a non-zero exit) if Ctrl-C stopped the training before it finished.
fn stopped(flag: &std::sync::atomic::AtomicBool, finished: bool, then: &str) -> anyhow::Result<()> {
    if flag.load(std::sync::atomic::Ordering::SeqCst) && !finished {
        anyhow::bail!("stopped by Ctrl-C; {then}");
    }
    Ok(())
}

/// The runs root: `$TUNELAB_RUNS`, or `runs`.
fn control(quiet: bool, tensorboard: bool) -> RunControl {
    RunControl { runs_root: std::env::var_os("TUNELAB_RUNS").map(PathBuf::from), quiet, tensorboard, ..RunControl::default() }
}

/// `--device` and `--precision`: override every run's training settings.
#[derive(clap::Args, Debug)]
struct HardwareArgs {
    /// Where to train: auto (the first GPU if there is one), cpu, cuda or cuda:N.
    #[arg(long, value_name = "DEVICE")]
    device: Option<tunelab::precision::DeviceChoice>,
    /// The format dense layers and attention compute in (weights and optimizer stay fp32).
    #[arg(long, value_enum)]
    precision: Option<tunelab::precision::Precision>,
}

impl HardwareArgs {
    fn get(&self) -> tunelab::precision::Hardware {
        tunelab::precision::Hardware { device: self.device, precision: self.precision }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Inspect { model_dir, json } => inspect(&model_dir, json),
        Command::Train { spec, out, force, stop_after, quiet, progress_every, tensorboard, shard, hardware } => {
            let mut spec = RunSpec::from_file(&spec)?;
            spec.training.apply(&hardware.get());
            let stop = stop_on_ctrl_c();
            let control = RunControl { out, force, stop_after, progress_every, interrupt: Some(stop.clone()), ..control(quiet, tensorboard) };
            let shard = shard.as_deref().map(parse_shard).transpose()?;
            if spec.data.cv.as_ref().is_some_and(|c| c.fold.is_none()) {
                let outcome = tunelab::cv::run(&spec, &control, shard)?;
                report_cv(&outcome)?;
                return stopped(&stop, outcome.result.is_some(), "run the same command again to continue: the finished folds are kept");
            }
            if shard.is_some() {
                anyhow::bail!("--shard: this specification is one run (no data.cv), so there is nothing to split");
            }
            let run = spec.run_with(&control)?;
            report(&run)?;
            stopped(&stop, run.metrics.finished, "see above how to continue")
        }
        Command::Resume { run_dir, quiet, progress_every, tensorboard } => {
            let stop = stop_on_ctrl_c();
            let run = tunelab::run::resume(&run_dir, &RunControl { progress_every, interrupt: Some(stop.clone()), ..control(quiet, tensorboard) })?;
            report(&run)?;
            stopped(&stop, run.metrics.finished, "see above how to continue")
        }
        Command::Run { script, set, quiet, progress_every, tensorboard, shard, hardware, max_operations } => {
            let shard = shard.as_deref().map(parse_shard).transpose()?;
            let control = RunControl { progress_every, interrupt: Some(stop_on_ctrl_c()), ..control(quiet, tensorboard) };
            let settings = ScriptSettings { control, shard, max_operations, hardware: hardware.get(), ..ScriptSettings::default() };
            run_script(&script, &parse_sets(&set)?, &settings)
        }
        Command::Plan { script, set, lr_csv, plot, run, estimate } => plan_script(&script, &parse_sets(&set)?, lr_csv, plot, run.as_deref(), estimate),
        Command::Merge { dir, each_vs_first: true, .. } if dir.join("sweep.json").is_file() || dir.join("spec.json").is_file() => {
            anyhow::bail!("{}: --each-vs-first is for an ablation's folder (its results-*.jsonl), not a sweep's or a cross-validation's", dir.display())
        }
        Command::Merge { dir, markdown, .. } if dir.join("sweep.json").is_file() => {
            let board = tunelab::search::report(&dir)?;
            if markdown {
                print!("{}", board.markdown());
            } else {
                print!("{board}");
            }
            match &board.best {
                Some(_) => println!("leaderboard.csv, history.png and parameters.png written to {0}; the best trial's specification is {0}/best/spec.json (tunelab train {0}/best/spec.json)", dir.display()),
                None => println!("leaderboard.csv, history.png and parameters.png written to {} (no trial has completed yet)", dir.display()),
            }
            Ok(())
        }
        Command::Merge { dir, .. } if dir.join("spec.json").is_file() => {
            let result = tunelab::cv::assemble(&dir)?;
            print!("{result}");
            println!("oof.tsv and cv.json written to {}", dir.display());
            Ok(())
        }
        Command::Merge { dir, markdown, each_vs_first } => {
            let rows = tunelab::ablation::merge(&dir)?;
            let mut summaries = tunelab::ablation::report(&dir, &rows)?;
            if each_vs_first {
                tunelab::ablation::versus_first_only(&mut summaries);
            }
            let trivial = tunelab::files::read_json(&dir.join("trivial.json")).ok();
            if markdown {
                print!("{}", tunelab::ablation::table_markdown(&summaries, trivial.as_ref()));
            } else {
                print!("{}", tunelab::ablation::table_with(&summaries, trivial.as_ref()));
            }
            println!("{} runs; summary.csv and ablation.png written to {}", rows.len(), dir.display());
            Ok(())
        }
        Command::Predict { model_dir, file, out, text, pair, label, id } => {
            tunelab::run_dir::output_file(&out)?;
            let choice = tunelab::predict::ColumnChoice { text, pair, label, id };
            if tunelab::cv::is_cv_folder(&model_dir) {
                let (ensemble, notes) = tunelab::cv::predict_folds(&model_dir, &file, &choice)?;
                for note in notes {
                    eprintln!("note: {note}");
                }
                ensemble.write_tsv(&out)?;
                println!("{} predictions (the mean of {} fold models, each fold's in a column) written to {}", ensemble.mean.ids.len(), ensemble.folds.len(), out.display());
                print_metrics(ensemble.mean.metrics.as_ref());
                return Ok(());
            }
            let (predictions, notes) = tunelab::predict::predict_with(&model_dir, &file, &choice)?;
            for note in notes {
                eprintln!("note: {note}");
            }
            predictions.write_tsv(&out)?;
            println!("{} predictions written to {}", predictions.ids.len(), out.display());
            print_metrics(predictions.metrics.as_ref());
            Ok(())
        }
        Command::Spec { file, defaults } => {
            let spec = match file {
                Some(path) if !defaults => RunSpec::from_file(&path)?,
                _ => RunSpec::template(),
            };
            print!("{}", spec.to_json_with_defaults());
            Ok(())
        }
        Command::Plot { runs, out, metric } => {
            tunelab::run_dir::output_file(&out)?;
            tunelab::plot::Chart::run_dirs_metric(&runs, metric.as_deref())?.save(&out)?;
            println!("wrote {}", out.display());
            Ok(())
        }
        #[cfg(feature = "kernel")]
        Command::Kernel { connection_file, install, user: _, sys_prefix, prefix, name } => match connection_file {
            Some(file) if !install => Ok(tunelab::kernel::run(&file)?),
            _ => {
                use tunelab::kernel::Destination;
                let destination = match (prefix, sys_prefix) {
                    (Some(prefix), _) => Destination::Prefix(prefix),
                    (None, true) => Destination::SysPrefix,
                    (None, false) => Destination::User,
                };
                let dir = tunelab::kernel::install(&destination, &name)?;
                println!("kernelspec `{name}` (tunelab (rhai)) installed in {}", dir.display());
                Ok(())
            }
        },
    }
}

/// `tunelab run`: runs a script, then reports its ablations and cross-validations.
fn run_script(path: &std::path::Path, sets: &[(String, String)], settings: &ScriptSettings) -> anyhow::Result<()> {
    let value = Script::from_file(path)?.run(sets, settings)?;
    for a in &value.ablations {
        if let Some((i, n)) = settings.shard.filter(|&(i, _)| i >= a.jobs) {
            println!("shard {i}/{n} has no work: the ablation has {} runs, and shards 0 to {} of {n} run them; nothing to do", a.jobs, a.jobs.min(n) - 1);
            continue;
        }
        let trivial = tunelab::files::read_json(&a.out.join("trivial.json")).ok();
        print!("{}", tunelab::ablation::table_with(&tunelab::ablation::summarize_examples(&a.out, &a.rows), trivial.as_ref()));
        match &a.summaries {
            Some(_) => println!("summary.csv and ablation.png written to {}", a.out.display()),
            None => println!("shard done: its rows are in {}; `tunelab merge {}` once every shard is", a.out.display(), a.out.display()),
        }
    }
    for cv in &value.cvs {
        report_cv(cv)?;
    }
    for board in &value.sweeps {
        print!("{board}");
        println!("leaderboard.csv, history.png, parameters.png{} written to {}", if board.best.is_some() { " and best/spec.json" } else { "" }, board.out.display());
    }
    if settings.shard.is_some() && value.ablations.is_empty() && value.cvs.is_empty() && value.sweeps.is_empty() {
        anyhow::bail!("--shard: the script runs no ablation, cross-validation or sweep, so there is nothing to split");
    }
    Ok(())
}

/// `tunelab plan`: every planned run's groups and schedules; the chosen one's LR table and plot.
fn plan_script(path: &std::path::Path, sets: &[(String, String)], lr_csv: Option<PathBuf>, plot: Option<PathBuf>, run: Option<&str>, estimate: Option<usize>) -> anyhow::Result<()> {
    for out in lr_csv.iter().chain(&plot) {
        tunelab::run_dir::output_file(out)?;
    }
    let plans = Script::from_file(path)?.run(sets, &ScriptSettings { estimate, ..ScriptSettings::plan() })?.plans;
    if plans.is_empty() {
        anyhow::bail!("the script never calls train(..), plan(..) or ablate(..), so there is nothing to plan");
    }
    for (i, plan) in plans.iter().enumerate() {
        println!("== planned run {} of {}", i + 1, plans.len());
        print!("{plan}");
    }
    if estimate.is_some() && plans.len() > 1 {
        let total: f64 = plans.iter().filter_map(|p| p.estimate.as_ref()).map(|e| e.total_seconds()).sum();
        println!("== all planned runs: about {} on this machine", tunelab::human::duration(total));
    }
    if lr_csv.is_some() || plot.is_some() {
        let chosen = choose_plan(&plans, run)?;
        if let Some(path) = lr_csv {
            tunelab::files::atomic_write(&path, chosen.lrs.to_csv().as_bytes())?;
            println!("LR table of run `{}` written to {}", chosen.name, path.display());
        }
        if let Some(path) = plot {
            tunelab::plot::Chart::lr(&chosen.lrs).save(&path)?;
            println!("LR plot of run `{}` written to {}", chosen.name, path.display());
        }
    }
    Ok(())
}

/// The plan `--run` names (by number from 1, or by name); the only one when there is one.
fn choose_plan<'a>(plans: &'a [tunelab::spec::Plan], run: Option<&str>) -> anyhow::Result<&'a tunelab::spec::Plan> {
    let names = || plans.iter().enumerate().map(|(i, p)| format!("{} `{}`", i + 1, p.name)).collect::<Vec<_>>().join(", ");
    match run {
        None if plans.len() == 1 => Ok(&plans[0]),
        None => anyhow::bail!("the script plans {} runs ({}): say which one --lr-csv/--plot cover with --run N or --run NAME", plans.len(), names()),
        Some(r) => {
            let by_number = r.parse::<usize>().ok().and_then(|n| n.checked_sub(1)).and_then(|i| plans.get(i));
            let mut by_name = plans.iter().filter(|p| p.name == r);
            match (by_number, by_name.next(), by_name.next()) {
                (Some(p), _, _) => Ok(p),
                (None, Some(p), None) => Ok(p),
                (None, Some(_), Some(_)) => anyhow::bail!("--run {r}: several planned runs have that name; give its number ({})", names()),
                _ => anyhow::bail!("--run {r}: no such planned run ({})", names()),
            }
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

/// A number of seconds: finite, 0 or more, at most a day.
fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}`: give a number of seconds from 0 to 86400")),
    }
}

fn parse_shard(s: &str) -> anyhow::Result<(usize, usize)> {
    let parsed = s.split_once('/').and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
    match parsed {
        Some((i, n)) if n > 0 && i < n => Ok((i, n)),
        _ => anyhow::bail!("--shard {s}: expected I/N with 0 <= I < N, e.g. 0/4"),
    }
}

/// The metrics of a prediction: the aggregates on one line; for a classifier, each class's
/// precision, recall, F1 and support, and the confusion matrix, as tables.
fn print_metrics(metrics: Option<&tunelab::metrics::Metrics>) {
    let Some(m) = metrics else { return };
    let summary: Vec<String> = m.iter().filter(|(k, _)| !k.contains('.')).map(|(k, v)| format!("{k} {v:.4}")).collect();
    println!("{}", summary.join(", "));
    print!("{}", tunelab::metrics::class_report(m));
}

fn report(run: &tunelab::Run) -> anyhow::Result<()> {
    let m = &run.metrics;
    let state = if m.finished {
        "finished".to_string()
    } else if run.dir.join("last").is_dir() {
        format!("stopped (resumable: tunelab resume {})", run.dir.display())
    } else {
        format!("stopped (no checkpoint: training.keep is not `resumable`, so tunelab resume {} starts it over)", run.dir.display())
    };
    for note in &run.recovery {
        eprintln!("note: {note}");
    }
    for warning in &m.warnings {
        eprintln!("warning: {warning}");
    }
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

fn report_cv(outcome: &tunelab::cv::CvOutcome) -> anyhow::Result<()> {
    if let Some(idle) = outcome.idle_shard() {
        println!("{idle}; nothing to do");
        return Ok(());
    }
    let folds: Vec<String> = outcome.folds_run.iter().map(|k| k.to_string()).collect();
    println!("cross-validation {}: ran folds {}", outcome.dir.display(), folds.join(", "));
    match &outcome.result {
        Some(result) => {
            print!("{result}");
            let oof = if result.repeats > 1 { "oof-repeat-<r>.tsv" } else { "oof.tsv" };
            println!("out-of-fold predictions in {}", outcome.dir.join(oof).display());
        }
        None => println!("other folds are still to run; `tunelab merge {}` once they are", outcome.dir.display()),
    }
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

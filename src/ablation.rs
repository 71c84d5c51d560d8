//! Ablations: a list of recipes run over several seeds, one row per run, and a summary with
//! the mean and standard deviation of the dev metric per recipe (the out-of-fold metric for a
//! cross-validation), the test score when the data has a test file, and each recipe's paired
//! difference to the previous recipe and to the first one over the same seeds.
//!
//! The runs are independent. [`Ablation::run`] takes a shard `(i, n)` and runs only the jobs
//! whose index is `i` modulo `n`, so that a cluster scheduler (a Slurm job array, say) spreads
//! them over machines; each shard appends its rows to its own `results-<i>-of-<n>.jsonl` in the
//! output folder, and [`merge`] reads every results file of a folder back into one table,
//! refusing shards of different splits and duplicate runs. [`report`] writes `summary.csv` and
//! `ablation.png`: the one post-processing that the script binding and `tunelab merge` share.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::files;
use crate::metrics::mean_std;
use crate::plot::{Chart, ScoreSet};
use crate::recipe::Recipe;
use crate::run::RunControl;
use crate::spec::RunSpec;

/// Recipes × seeds, on the model, data and training settings of a base run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Ablation {
    /// Named recipes, in the order the table shows them.
    pub recipes: Vec<(String, Recipe)>,
    pub seeds: Vec<u64>,
    /// The folder for the runs and the results.
    pub out: PathBuf,
    /// The recipes (by name) that train another model, or the same one with another head, than
    /// the base run's: the heads (attention pooling, multi-sample dropout...) belong to the
    /// model, not to the recipe, and a row of the table can still try one.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub models: std::collections::BTreeMap<String, ModelChoice>,
}

/// A model folder and the head on it: what a recipe of an ablation trains instead of the base
/// run's (see [`Ablation::models`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelChoice {
    pub model: PathBuf,
    pub pooling: crate::model::Pooling,
    #[serde(default, skip_serializing_if = "crate::model::HeadOptions::is_default")]
    pub head: crate::model::HeadOptions,
}

/// One run of an ablation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub recipe: String,
    pub seed: u64,
    /// The metric that selected the best weights (`rmse`, `accuracy`...).
    pub metric: String,
    /// Its best dev value.
    pub best: f64,
    /// Its dev value for the SWA weights at the end, if the recipe averages.
    pub swa: Option<f64>,
    /// The test file's score (`data.test`): the selected weights', and the SWA weights'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swa_test: Option<f64>,
    pub steps: usize,
    pub seconds: f64,
    pub dir: PathBuf,
    /// The selected model predicts a constant (regression) or a single class: its score says
    /// nothing about the recipe but that training failed.
    #[serde(default)]
    pub collapsed: bool,
    /// The job's index in the ablation (recipe-major), so that merged shards keep the recipes'
    /// order (absent in rows written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<usize>,
    /// A repeated cross-validation's score of each repeat (`best` is their mean).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repeat_scores: Vec<f64>,
}

/// Whether metrics are those of a collapsed model (see [`crate::train::score`]).
pub fn collapsed(metrics: &crate::metrics::Metrics) -> bool {
    metrics.get("prediction_std").is_some_and(|s| *s < 1e-6) || metrics.get("predicted_classes").is_some_and(|c| *c < 2.0)
}

/// The score of a trivial predictor on the same dev data (`trivial.json` in the ablation folder):
/// the training mean for regression, the training class frequencies for classification (with
/// `cv`, out of fold). A recipe that does not beat it learnt nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trivial {
    pub name: String,
    pub metric: String,
    pub value: f64,
}

impl Trivial {
    /// The trivial predictor's score on the data of `spec`, by its selection metric.
    pub fn of(spec: &RunSpec) -> Result<Trivial> {
        let train = spec.data.load_train()?;
        let metric = spec.recipe.evaluation.select_by.unwrap_or(crate::train::default_metric(&train.task));
        // One partition of the rows into (fit, held out) pairs per repeat of a cross-validation.
        let partitions: Vec<Vec<(crate::data::Dataset, crate::data::Dataset)>> = match &spec.data.cv {
            Some(cv) => (0..cv.repeats)
                .map(|r| spec.data.folds_of(&train, r).map(|folds| (0..cv.folds).map(|k| train.split(|i| folds[i] != k)).collect()))
                .collect::<Result<_>>()?,
            None => vec![vec![spec.data.load()?]],
        };
        let mut value = 0.0;
        for parts in &partitions {
            let (mut outputs, mut targets): (Vec<Vec<f64>>, Vec<f64>) = (Vec::new(), Vec::new());
            for (fit, held_out) in parts {
                let constant = constant_output(fit);
                for e in &held_out.examples {
                    outputs.push(constant.clone());
                    targets.push(e.label);
                }
            }
            let scores = crate::train::score(&train.task, &tch::Tensor::from_slice2(&outputs), &targets);
            value += scores.get(metric.name()).copied().unwrap_or(f64::NAN) / partitions.len() as f64;
        }
        let name = match (&train.task, spec.data.cv.is_some()) {
            (crate::model::Task::Regression, false) => "trivial (training mean)",
            (crate::model::Task::Classification { .. }, false) => "trivial (class frequencies)",
            (crate::model::Task::Regression, true) => "trivial (each fold: its training folds' mean)",
            (crate::model::Task::Classification { .. }, true) => "trivial (each fold: its training folds' class frequencies)",
        };
        Ok(Trivial { name: name.into(), metric: metric.name().into(), value })
    }
}

/// A constant raw output: the mean target, or the log class frequencies (as logits).
fn constant_output(train: &crate::data::Dataset) -> Vec<f64> {
    let labels: Vec<f64> = train.examples.iter().map(|e| e.label).collect();
    match &train.task {
        crate::model::Task::Regression => vec![labels.iter().sum::<f64>() / labels.len().max(1) as f64],
        crate::model::Task::Classification { labels: classes } => {
            let count = |c: usize| labels.iter().filter(|&&l| l as usize == c).count() as f64;
            (0..classes.len()).map(|c| (count(c) / labels.len() as f64).max(1e-12).ln()).collect()
        }
    }
}

/// Mean and spread of one recipe's runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub recipe: String,
    pub metric: String,
    pub runs: usize,
    pub mean: f64,
    /// Sample standard deviation (0 for a single run).
    pub std: f64,
    pub swa_mean: Option<f64>,
    pub swa_std: Option<f64>,
    /// The test score (`data.test`), mean and sample standard deviation over the runs.
    pub test_mean: Option<f64>,
    pub test_std: Option<f64>,
    pub swa_test_mean: Option<f64>,
    /// This recipe minus the first recipe, paired by seed over the seeds both ran: the mean
    /// difference and its 95% confidence interval (Student's t; `None` with fewer than 2 pairs).
    pub diff_mean: Option<f64>,
    pub diff_ci95: Option<(f64, f64)>,
    /// This recipe minus the recipe before it in the table, paired the same way.
    pub prev_diff_mean: Option<f64>,
    pub prev_diff_ci95: Option<(f64, f64)>,
    /// Whether the tables compare this recipe with the previous one (every recipe after the
    /// first, unless [`versus_first_only`]).
    #[serde(skip)]
    pub versus_previous: bool,
    /// The held-out test score (`data.test`) of this recipe minus the first recipe's, paired by
    /// seed, with its 95% interval: the same comparison on data that chose nothing.
    pub test_diff_mean: Option<f64>,
    pub test_diff_ci95: Option<(f64, f64)>,
    /// How many seeds `diff_ci95` pairs (each with its repeats, for a repeated cross-validation).
    pub diff_seeds: usize,
    /// The paired bootstrap 95% interval over examples ([`crate::bootstrap`]) of this recipe
    /// minus the first: on the out-of-fold predictions, and on the test file's (cross-validated
    /// rows whose folders are there; see [`summarize_examples`]).
    pub diff_boot95: Option<(f64, f64)>,
    pub test_diff_boot95: Option<(f64, f64)>,
    /// How many rows of the ablation had no predictions to resample (see [`summarize_examples`]).
    pub boot_missing: usize,
    /// How many of the recipe's runs collapsed to a constant or a single class.
    pub collapsed: usize,
}

impl Ablation {
    /// Every `(index, recipe, seed)` job, recipe-major.
    pub fn jobs(&self) -> Vec<(usize, &str, &Recipe, u64)> {
        let mut jobs = Vec::new();
        for (name, recipe) in &self.recipes {
            for &seed in &self.seeds {
                jobs.push((jobs.len(), name.as_str(), recipe, seed));
            }
        }
        jobs
    }

    /// Runs the jobs of shard `(i, n)` (all of them for `None`) and returns their rows. Each run
    /// goes to `out/<recipe>-seed<seed>` (replacing what an earlier attempt left there). Jobs
    /// already in the shard's results file are skipped and their rows returned as they are: a
    /// stopped shard continues where it stopped (delete the file to start it over).
    /// `control` gives the progress bar (`quiet`) and the interrupt flag; each run's folder is the
    /// ablation's own.
    pub fn run(&self, base: &RunSpec, shard: Option<(usize, usize)>, control: &RunControl) -> Result<Vec<Row>> {
        let (i, n) = shard.unwrap_or((0, 1));
        if n == 0 || i >= n {
            return Err(Error::Invalid(format!("shard {i}/{n}: expected I/N with 0 <= I < N")));
        }
        if self.recipes.is_empty() || self.seeds.is_empty() {
            return Err(Error::Invalid("an ablation needs at least one recipe and one seed".into()));
        }
        // Every recipe is checked against the model and the data before the folder is made.
        self.plans(base)?;
        self.check_folder()?;
        let trivial = Trivial::of(base)?;
        let manifest = self.manifest(base);
        check_manifests(&self.out, Some(&manifest))?;
        std::fs::create_dir_all(&self.out).map_err(|e| Error::io(&self.out, e))?;
        files::write_json(&self.out.join(format!("shard-{i}-of-{n}.json")), &manifest)?;
        files::write_json(&self.out.join("trivial.json"), &trivial)?;
        // A shard run again continues: the jobs whose rows its results file already holds are
        // kept, not repeated (a stopped shard loses only the job it was in).
        let results = self.out.join(format!("results-{i}-of-{n}.jsonl"));
        let mut rows: Vec<Row> = if results.is_file() { files::read_jsonl(&results)? } else { Vec::new() };
        for (index, name, recipe, seed) in self.jobs() {
            if index % n != i || rows.iter().any(|r| r.recipe == name && r.seed == seed) {
                continue;
            }
            let mut spec = self.spec(base, name, recipe);
            spec.training.seed = seed;
            spec.training.keep = spec.training.keep.or(Some(crate::spec::Keep::Models));
            let control = RunControl {
                out: Some(self.job_dir(name, seed)),
                force: true,
                quiet: control.quiet,
                progress_every: control.progress_every,
                progress: control.progress.clone(),
                interrupt: control.interrupt.clone(),
                ..RunControl::default()
            };
            let mut row = if spec.data.cv.is_some() { cv_row(&spec, &control, name, seed)? } else { self.run_row(&spec, &control, name, seed)? };
            row.job = Some(index);
            files::append_line(&results, &row)?;
            rows.push(row);
        }
        Ok(rows)
    }

    fn run_row(&self, spec: &RunSpec, control: &RunControl, name: &str, seed: u64) -> Result<Row> {
        let run = spec.run_with(control)?;
        if !run.metrics.finished {
            return Err(Error::Invalid(format!(
                "{}: run {name} (seed {seed}) was interrupted at step {} of {}; run the ablation again to continue (finished runs are kept)",
                self.out.display(),
                run.metrics.steps,
                run.metrics.total_steps
            )));
        }
        let best = run.metrics.best.clone().ok_or_else(|| Error::Invalid(format!("run {name} (seed {seed}) was never evaluated")))?;
        Ok(Row {
            recipe: name.to_string(),
            seed,
            swa: run.metrics.swa.as_ref().and_then(|m| m.get(&best.metric).copied()),
            test: run.metrics.test.as_ref().and_then(|m| m.get(&best.metric).copied()),
            swa_test: run.metrics.swa_test.as_ref().and_then(|m| m.get(&best.metric).copied()),
            metric: best.metric,
            best: best.value,
            steps: run.metrics.steps,
            seconds: run.metrics.wall_seconds,
            dir: run.dir,
            collapsed: collapsed(&best.metrics),
            job: None,
            repeat_scores: Vec::new(),
        })
    }
}

/// One ablation job as a whole cross-validation: its score is the out-of-fold metric.
fn cv_row(spec: &RunSpec, control: &RunControl, name: &str, seed: u64) -> Result<Row> {
    let started = std::time::Instant::now();
    let outcome = crate::cv::run(spec, control, None)?;
    let result = outcome.result.ok_or_else(|| Error::Invalid(format!("{name} (seed {seed}): the cross-validation did not complete")))?;
    Ok(Row {
        recipe: name.to_string(),
        seed,
        metric: result.metric,
        best: result.oof_score,
        swa: result.swa_oof_score,
        test: result.test_score,
        swa_test: result.swa_test_score,
        // Every fold's optimizer steps (the compute the row cost).
        steps: spec.data.cv.as_ref().map_or(Vec::new(), crate::cv::FoldJob::all).iter().filter_map(|job| crate::run_dir::RunDir { path: outcome.dir.join(job.name()) }.read_metrics().ok()).map(|m| m.steps).sum(),
        seconds: started.elapsed().as_secs_f64(),
        dir: outcome.dir,
        collapsed: collapsed(&result.oof),
        job: None,
        repeat_scores: result.repeat_scores,
    })
}

impl Ablation {
    /// The base run with one of the recipes, and that recipe's model and head if it has its own.
    pub fn spec(&self, base: &RunSpec, name: &str, recipe: &Recipe) -> RunSpec {
        let mut spec = RunSpec { recipe: recipe.clone(), ..base.clone() };
        if let Some(m) = self.models.get(name) {
            (spec.model, spec.pooling, spec.head) = (m.model.clone(), m.pooling, m.head.clone());
        }
        spec
    }

    /// The plan of every recipe (on the first seed), named after the recipe.
    pub fn plans(&self, base: &RunSpec) -> Result<Vec<crate::spec::Plan>> {
        if let Some(name) = self.models.keys().find(|name| !self.recipes.iter().any(|(n, _)| n == *name)) {
            return Err(Error::Invalid(format!("ablation: a model is given for `{name}`, which is not one of its recipes")));
        }
        self.recipes
            .iter()
            .map(|(name, recipe)| {
                let mut plan = self.spec(base, name, recipe).plan()?;
                if let Some(m) = self.models.get(name) {
                    let head = serde_json::to_string(&m.head).expect("head options serialise");
                    plan.notes.insert(0, format!("its own model: {}, pooling {:?}, head {head}", m.model.display(), m.pooling));
                }
                Ok(crate::spec::Plan { name: name.clone(), ..plan })
            })
            .collect()
    }

    /// Runs shard `(i, n)` (or everything), and when that covers every job, writes the report
    /// ([`report`]) and returns the summaries too.
    pub fn run_and_report(&self, base: &RunSpec, shard: Option<(usize, usize)>, control: &RunControl) -> Result<(Vec<Row>, Option<Vec<Summary>>)> {
        let rows = self.run(base, shard, control)?;
        let complete = shard.is_none_or(|(_, n)| n == 1);
        let summaries = if complete { Some(report(&self.out, &rows)?) } else { None };
        Ok((rows, summaries))
    }
}

impl Ablation {
    /// The folder of each job's run: `<recipe slug>-seed<seed>`.
    fn job_dir(&self, name: &str, seed: u64) -> PathBuf {
        self.out.join(format!("{}-seed{seed}", slug(name)))
    }

    /// Refuses, before anything is written: two recipes whose names give the same run folder, an
    /// `out` folder holding files an ablation does not write, and a job's folder that is not a
    /// tunelab run (tunelab never writes into, nor empties, a folder of yours).
    fn check_folder(&self) -> Result<()> {
        let mut slugs: Vec<(String, &str)> = Vec::new();
        for (name, _) in &self.recipes {
            if let Some((_, other)) = slugs.iter().find(|(s, _)| *s == slug(name)) {
                return Err(Error::Invalid(format!(
                    "ablation: the recipes `{other}` and `{name}` would share the run folder `{}-seed..`: give them names that differ in letters or digits",
                    slug(name)
                )));
            }
            slugs.push((slug(name), name));
        }
        let Ok(entries) = std::fs::read_dir(&self.out) else { return Ok(()) };
        let jobs: Vec<PathBuf> = self.jobs().iter().map(|&(_, name, _, seed)| self.job_dir(name, seed)).collect();
        let mut names: Vec<(String, bool)> = entries.flatten().map(|e| (e.file_name().to_string_lossy().into_owned(), e.file_type().map(|t| t.is_dir()).unwrap_or(false))).collect();
        names.sort();
        // An ablation's folder holds its shards' records; without one, the files are not ours.
        let recorded = names.iter().any(|(n, _)| (n.starts_with("shard-") && n.ends_with(".json")) || (n.starts_with("results-") && n.ends_with(".jsonl")));
        if let Some((first, _)) = names.first().filter(|_| !recorded) {
            return Err(Error::Invalid(format!(
                "{} already holds files ({first}) and is not an ablation's folder; nothing was changed: give the ablation a folder of its own",
                self.out.display()
            )));
        }
        for (name, is_dir) in names {
            let base = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")).unwrap_or(&name);
            let ours = if is_dir {
                jobs.iter().any(|j| j.file_name().is_some_and(|f| f.to_string_lossy() == name))
            } else {
                matches!(base, "trivial.json" | "summary.csv" | "ablation.png")
                    || (base.starts_with("shard-") && base.ends_with(".json"))
                    || (base.starts_with("results-") && base.ends_with(".jsonl"))
            };
            if !ours {
                return Err(Error::Invalid(format!(
                    "{} holds {name}, which this ablation does not write; nothing was changed: give the ablation a folder of its own",
                    self.out.display()
                )));
            }
        }
        for job in jobs.iter().filter(|j| std::fs::read_dir(j).is_ok_and(|mut d| d.next().is_some())) {
            let foreign = if crate::cv::is_cv_folder(job) { None } else { crate::run_dir::RunDir::foreign_entry(job)? };
            if let Some(why) = foreign {
                return Err(Error::Invalid(format!("{}: not a tunelab run folder (it {why}); nothing was changed", job.display())));
            }
        }
        Ok(())
    }

    /// What every shard of this ablation must agree on (`shard-<i>-of-<n>.json` in its folder):
    /// the base specification (its device aside: shards may run on different machines), the
    /// recipes in order, the models of the recipes that have their own, and the seeds.
    pub fn manifest(&self, base: &RunSpec) -> serde_json::Value {
        let mut base = base.clone();
        base.training.device = Default::default();
        let recipes: serde_json::Map<String, serde_json::Value> =
            self.recipes.iter().map(|(name, r)| (name.clone(), serde_json::to_value(r).expect("a recipe serialises"))).collect();
        let order: Vec<&str> = self.recipes.iter().map(|(name, _)| name.as_str()).collect();
        let mut manifest = serde_json::json!({ "base": base, "recipes": recipes, "recipe_order": order, "seeds": self.seeds });
        if !self.models.is_empty() {
            manifest["models"] = serde_json::to_value(&self.models).expect("a model choice serialises");
        }
        manifest
    }
}

/// Checks that the shards of an ablation folder (their `shard-*.json`), and `ours` if given,
/// describe one ablation; otherwise names the files and what differs between them.
fn check_manifests(dir: &Path, ours: Option<&serde_json::Value>) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    let mut found: Vec<(PathBuf, serde_json::Value)> = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("shard-") && name.ends_with(".json") {
            found.push((path.clone(), files::read_json(&path)?));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let mut reference = ours.map(|m| (PathBuf::from("this ablation"), m.clone()));
    for (path, manifest) in found {
        match &reference {
            None => reference = Some((path, manifest)),
            Some((first, expected)) if *expected != manifest => {
                let what = crate::run_dir::differences(expected, &manifest);
                let first = if ours.is_some() { "this ablation".to_string() } else { first.display().to_string() };
                return Err(Error::Invalid(format!(
                    "{}: shards of different ablations in one folder ({first} and {} differ in {}); give each ablation its own folder",
                    dir.display(),
                    path.display(),
                    what.join(", ")
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn slug(name: &str) -> String {
    let s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    s.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-")
}

/// Reads every `results-<i>-of-<n>.jsonl` of an ablation folder (all shards) into one list.
/// Shards of different splits (`-of-4` beside `-of-2`) and a (recipe, seed) run found twice
/// are errors: they would count runs twice.
pub fn merge(dir: &Path) -> Result<Vec<Row>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files: Vec<(PathBuf, usize)> = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some(split) = name.strip_prefix("results-").and_then(|n| n.strip_suffix(".jsonl")) else { continue };
        let n = split.split_once("-of-").and_then(|(_, n)| n.parse::<usize>().ok());
        let n = n.ok_or_else(|| Error::Invalid(format!("{}: expected a name results-<i>-of-<n>.jsonl", path.display())))?;
        files.push((path, n));
    }
    files.sort();
    if files.is_empty() {
        return Err(Error::Invalid(format!("{}: no results-*.jsonl files", dir.display())));
    }
    check_manifests(dir, None)?;
    crate::run_dir::refuse_if_written(dir, "merge the ablation")?;
    let splits: std::collections::BTreeSet<usize> = files.iter().map(|f| f.1).collect();
    if splits.len() > 1 {
        let names: Vec<String> = files.iter().map(|f| f.0.file_name().unwrap_or_default().to_string_lossy().into_owned()).collect();
        return Err(Error::Invalid(format!(
            "{}: results of different shard splits ({}); they repeat runs: keep the files of one split",
            dir.display(),
            names.join(", ")
        )));
    }
    let mut rows: Vec<Row> = Vec::new();
    for (f, _) in &files {
        for row in files::read_jsonl::<Row>(f)? {
            if rows.iter().any(|r| r.recipe == row.recipe && r.seed == row.seed) {
                return Err(Error::Invalid(format!("{}: recipe `{}` with seed {} appears twice", f.display(), row.recipe, row.seed)));
            }
            rows.push(row);
        }
    }
    // Shards hold every n-th job: back in the ablation's order, the recipes come in the order
    // they were listed (the table's "previous row" depends on it).
    if rows.iter().all(|r| r.job.is_some()) {
        rows.sort_by_key(|r| r.job);
    }
    Ok(rows)
}


/// One summary per recipe, in the order the recipes first appear.
pub fn summarize(rows: &[Row]) -> Vec<Summary> {
    let mut names: Vec<&str> = Vec::new();
    for r in rows {
        if !names.contains(&r.recipe.as_str()) {
            names.push(&r.recipe);
        }
    }
    let of = |name: &str| -> Vec<&Row> { rows.iter().filter(|r| r.recipe == name).collect() };
    // This recipe's runs minus another recipe's, paired by seed: one row of differences per
    // seed, one per repeat of a repeated cross-validation (the same fold assignments on both
    // sides), so that the interval counts the fold assignment's variance as well as the seed's.
    let pairs = |mine: &[&Row], other: &[&Row]| -> Vec<Vec<f64>> {
        let rows: Vec<Vec<f64>> = mine
            .iter()
            .filter_map(|r| other.iter().find(|o| o.seed == r.seed).map(|o| (r, o)))
            .map(|(r, o)| match r.repeat_scores.len() {
                n if n > 1 && n == o.repeat_scores.len() => r.repeat_scores.iter().zip(&o.repeat_scores).map(|(a, b)| a - b).collect(),
                _ => vec![r.best - o.best],
            })
            .collect();
        // Seeds with another number of repeats cannot share the two-way table: each counts by its mean.
        if rows.iter().all(|r| r.len() == rows[0].len()) { rows } else { rows.iter().map(|r| vec![r.iter().sum::<f64>() / r.len() as f64]).collect() }
    };
    let versus = |mine: &[&Row], other: &[&Row]| crossed(&pairs(mine, other));
    let versus_test = |mine: &[&Row], other: &[&Row]| {
        let diffs: Vec<f64> = mine.iter().filter_map(|r| other.iter().find(|o| o.seed == r.seed).and_then(|o| Some(r.test? - o.test?))).collect();
        if diffs.is_empty() { (None, None) } else { paired(&diffs) }
    };
    let spread = |values: Vec<f64>| if values.is_empty() { (None, None) } else { let (m, s) = mean_std(&values); (Some(m), Some(s)) };
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mine = of(name);
            let (mean, std) = mean_std(&mine.iter().map(|r| r.best).collect::<Vec<_>>());
            let (swa_mean, swa_std) = spread(mine.iter().filter_map(|r| r.swa).collect());
            let (test_mean, test_std) = spread(mine.iter().filter_map(|r| r.test).collect());
            let (swa_test_mean, _) = spread(mine.iter().filter_map(|r| r.swa_test).collect());
            let (diff_mean, diff_ci95) = if i == 0 { (None, None) } else { versus(&mine, &of(names[0])) };
            let (prev_diff_mean, prev_diff_ci95) = if i == 0 { (None, None) } else { versus(&mine, &of(names[i - 1])) };
            let (test_diff_mean, test_diff_ci95) = if i == 0 { (None, None) } else { versus_test(&mine, &of(names[0])) };
            let collapsed = mine.iter().filter(|r| r.collapsed).count();
            let diff_seeds = if i == 0 { 0 } else { pairs(&mine, &of(names[0])).len() };
            Summary {
                recipe: name.to_string(),
                metric: mine[0].metric.clone(),
                runs: mine.len(),
                mean,
                std,
                swa_mean,
                swa_std,
                test_mean,
                test_std,
                swa_test_mean,
                diff_mean,
                diff_ci95,
                prev_diff_mean,
                prev_diff_ci95,
                versus_previous: i > 0,
                test_diff_mean,
                test_diff_ci95,
                diff_seeds,
                diff_boot95: None,
                test_diff_boot95: None,
                boot_missing: 0,
                collapsed,
            }
        })
        .collect()
}

/// [`summarize`], with the paired bootstrap over examples of each recipe against the first
/// ([`crate::bootstrap::paired`]): the rows are paired by seed (and repeat), every run of a
/// recipe predicts the same examples, and one resample draws the same examples for all of them.
/// It needs each row's predictions, which cross-validations keep (`fold-*/oof.json`, the test
/// file's included), read from the row's folder inside the ablation folder `dir` (where a
/// moved or copied ablation has them), else from the folder the row recorded; rows without
/// them (runs on a dev file, folders deleted) leave the bootstrap out (`None`, and
/// [`Summary::boot_missing`] counts them).
pub fn summarize_examples(dir: &Path, rows: &[Row]) -> Vec<Summary> {
    let mut summaries = summarize(rows);
    let folder = |r: &Row| -> PathBuf {
        let inside = r.dir.file_name().map(|n| dir.join(n));
        inside.filter(|p| p.is_dir()).unwrap_or_else(|| r.dir.clone())
    };
    let predictions: std::collections::HashMap<&Path, crate::cv::CvPredictions> =
        rows.iter().filter_map(|r| crate::cv::predictions(&folder(r)).ok().filter(|p| !p.repeats.is_empty()).map(|p| (r.dir.as_path(), p))).collect();
    // Only cross-validations have predictions to resample: a dev-file ablation misses none.
    let missing = rows.iter().filter(|r| !predictions.contains_key(r.dir.as_path()) && folder(r).join("cv.json").is_file()).count();
    for s in summaries.iter_mut() {
        s.boot_missing = missing;
    }
    let Some(first) = summaries.first().map(|s| s.recipe.clone()) else { return summaries };
    for s in summaries.iter_mut().skip(1) {
        let pairs: Option<Vec<(&crate::cv::CvPredictions, &crate::cv::CvPredictions)>> = rows
            .iter()
            .filter(|r| r.recipe == s.recipe)
            .filter_map(|r| rows.iter().find(|o| o.recipe == first && o.seed == r.seed).map(|o| (r, o)))
            .map(|(r, o)| predictions.get(r.dir.as_path()).zip(predictions.get(o.dir.as_path())))
            .collect();
        let Some(pairs) = pairs.filter(|p| !p.is_empty()) else { continue };
        let task = &pairs[0].0.task;
        let same = |t: &[f64], u: &[f64]| t == u;
        // Out of fold: each (seed, repeat) run on both sides, over the training rows.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let targets = &pairs[0].0.repeats[0].targets;
        let mut comparable = true;
        for (mine, base) in &pairs {
            for (x, y) in mine.repeats.iter().zip(&base.repeats) {
                comparable &= same(&x.targets, targets) && same(&y.targets, targets);
                a.push(x.outputs.as_slice());
                b.push(y.outputs.as_slice());
            }
        }
        if comparable {
            s.diff_boot95 = crate::bootstrap::paired(task, &s.metric, &a, &b, targets);
        }
        // The test file: each seed's fold ensemble on both sides.
        let tests: Option<Vec<(&crate::cv::Labelled, &crate::cv::Labelled)>> = pairs.iter().map(|(m, b)| m.test.as_ref().zip(b.test.as_ref())).collect();
        if let Some(tests) = tests {
            let targets = &tests[0].0.0;
            if tests.iter().all(|(x, y)| same(&x.0, targets) && same(&y.0, targets)) {
                let a: Vec<&[Vec<f64>]> = tests.iter().map(|(x, _)| x.1.as_slice()).collect();
                let b: Vec<&[Vec<f64>]> = tests.iter().map(|(_, y)| y.1.as_slice()).collect();
                s.test_diff_boot95 = crate::bootstrap::paired(task, &s.metric, &a, &b, targets);
            }
        }
    }
    summaries
}

/// For an ablation whose recipes each add one thing to the first (a star, not a ladder): drops
/// the comparisons with the previous row, which then compare two unrelated recipes, so that the
/// tables show each recipe against the first only.
pub fn versus_first_only(summaries: &mut [Summary]) {
    for s in summaries {
        (s.prev_diff_mean, s.prev_diff_ci95, s.versus_previous) = (None, None, false);
    }
}

/// A paired difference as text: `+0.0123 [-0.0040, +0.0286]`, with `~` when the interval
/// holds 0 (the difference is within the noise of the seeds).
fn difference(mean: Option<f64>, ci: Option<(f64, f64)>) -> String {
    match (mean, ci) {
        (Some(d), Some((lo, hi))) => format!("{d:+.4} [{lo:+.4}, {hi:+.4}]{}", if lo <= 0.0 && hi >= 0.0 { " ~" } else { "" }),
        (Some(d), None) => format!("{d:+.4}"),
        _ => "-".into(),
    }
}

/// An interval as text, `[-0.0040, +0.0286]`, with `~` when it holds 0.
fn interval(ci: Option<(f64, f64)>) -> String {
    match ci {
        Some((lo, hi)) => format!("[{lo:+.4}, {hi:+.4}]{}", if lo <= 0.0 && hi >= 0.0 { " ~" } else { "" }),
        None => "-".into(),
    }
}

/// The summary as a Markdown table (for a results page): score, SWA and test columns as the runs
/// have them, the paired differences to the previous and to the first recipe (`~`: the 95%
/// interval holds 0, within noise), and the trivial predictor's score when known.
pub fn table_markdown(summaries: &[Summary], trivial: Option<&Trivial>) -> String {
    let Some(first) = summaries.first() else { return String::new() };
    let metric = &first.metric;
    let swa = summaries.iter().any(|s| s.swa_mean.is_some());
    let test = summaries.iter().any(|s| s.test_mean.is_some());
    let (boot, test_boot) = (summaries.iter().any(|s| s.diff_boot95.is_some()), summaries.iter().any(|s| s.test_diff_boot95.is_some()));
    let spread = |m: Option<f64>, s: Option<f64>| match (m, s) {
        (Some(m), Some(s)) => format!("{m:.4} ± {s:.4}"),
        (Some(m), None) => format!("{m:.4}"),
        _ => "-".into(),
    };
    let mut head = vec!["recipe".to_string(), "runs".into(), format!("{metric} (mean ± sd)")];
    if swa {
        head.push(format!("SWA weights {metric}"));
    }
    if test {
        head.push(format!("test {metric}"));
    }
    let previous = summaries.iter().any(|s| s.versus_previous);
    if previous {
        head.push("vs previous row (paired, 95% CI)".into());
    }
    head.push(format!("vs {} (paired, 95% CI)", first.recipe));
    if boot {
        head.push(format!("vs {}, bootstrap over examples (95%)", first.recipe));
    }
    if test {
        head.push(format!("test vs {} (paired, 95% CI)", first.recipe));
    }
    if test_boot {
        head.push(format!("test vs {}, bootstrap over examples (95%)", first.recipe));
    }
    let mut out = format!("| {} |\n|{}\n", head.join(" | "), "---|".repeat(head.len()));
    for s in summaries {
        let mut cells = vec![if s.collapsed > 0 { format!("{} (!{} collapsed)", s.recipe, s.collapsed) } else { s.recipe.clone() }, s.runs.to_string(), spread(Some(s.mean), Some(s.std))];
        if swa {
            cells.push(spread(s.swa_mean, s.swa_std));
        }
        if test {
            cells.push(spread(s.test_mean, s.test_std));
        }
        if previous {
            cells.push(difference(s.prev_diff_mean, s.prev_diff_ci95));
        }
        cells.push(if s.recipe == first.recipe { "-".into() } else { difference(s.diff_mean, s.diff_ci95) });
        if boot {
            cells.push(interval(s.diff_boot95));
        }
        if test {
            cells.push(if s.recipe == first.recipe { "-".into() } else { difference(s.test_diff_mean, s.test_diff_ci95) });
        }
        if test_boot {
            cells.push(interval(s.test_diff_boot95));
        }
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    if let Some(t) = trivial {
        let mut cells = vec![t.name.clone(), "-".into(), format!("{:.4}", t.value)];
        cells.extend(std::iter::repeat_n("-".to_string(), head.len() - 3));
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

/// The mean of paired differences and its 95% confidence interval (Student's t).
pub fn paired(diffs: &[f64]) -> (Option<f64>, Option<(f64, f64)>) {
    if diffs.is_empty() {
        return (None, None);
    }
    let (mean, sd) = mean_std(diffs);
    if diffs.len() < 2 {
        return (Some(mean), None);
    }
    let half = t975((diffs.len() - 1) as f64) * sd / (diffs.len() as f64).sqrt();
    (Some(mean), Some((mean - half, mean + half)))
}

/// The mean of a table of paired differences, one row per seed and one column per repeat of a
/// repeated cross-validation, and its 95% interval. One column is [`paired`] over the seeds.
/// With repeats, seeds and fold assignments are crossed (every seed ran every assignment), so
/// the grand mean's variance is that of a two-way random-effects layout (Searle, Casella &
/// McCulloch 1992, §4.6): `(MS_seed + MS_repeat − MS_residual) / (S·R)` from the analysis of
/// variance's mean squares (at least `MS_residual / (S·R)`), with Satterthwaite's (1946) degrees
/// of freedom. Both the seed's and the fold assignment's variance widen it; counting the `S·R`
/// differences as independent would not.
pub fn crossed(d: &[Vec<f64>]) -> (Option<f64>, Option<(f64, f64)>) {
    let (s, r) = (d.len(), d.first().map_or(0, Vec::len));
    if s == 0 || r == 0 {
        return (None, None);
    }
    if r == 1 || s == 1 {
        return paired(&d.iter().flatten().copied().collect::<Vec<_>>());
    }
    let (sf, rf) = (s as f64, r as f64);
    let grand = d.iter().flatten().sum::<f64>() / (sf * rf);
    let seed_means: Vec<f64> = d.iter().map(|row| row.iter().sum::<f64>() / rf).collect();
    let repeat_means: Vec<f64> = (0..r).map(|j| d.iter().map(|row| row[j]).sum::<f64>() / sf).collect();
    let ms_seed = rf * seed_means.iter().map(|m| (m - grand).powi(2)).sum::<f64>() / (sf - 1.0);
    let ms_repeat = sf * repeat_means.iter().map(|m| (m - grand).powi(2)).sum::<f64>() / (rf - 1.0);
    let df_residual = (sf - 1.0) * (rf - 1.0);
    let ms_residual = (0..s).flat_map(|i| (0..r).map(move |j| (i, j))).map(|(i, j)| (d[i][j] - seed_means[i] - repeat_means[j] + grand).powi(2)).sum::<f64>() / df_residual;
    let combined = ms_seed + ms_repeat - ms_residual;
    let (variance, df) = if combined > ms_residual {
        let df = combined.powi(2) / (ms_seed.powi(2) / (sf - 1.0) + ms_repeat.powi(2) / (rf - 1.0) + ms_residual.powi(2) / df_residual);
        (combined / (sf * rf), df)
    } else {
        (ms_residual / (sf * rf), df_residual)
    };
    let half = t975(df) * variance.sqrt();
    (Some(grand), Some((grand - half, grand + half)))
}

/// The 97.5% quantile of Student's t with `df` (possibly fractional) degrees of freedom, as
/// `scipy.stats.t.ppf(0.975, df)`.
fn t975(df: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    StudentsT::new(0.0, 1.0, df).map_or(f64::NAN, |t| t.inverse_cdf(0.975))
}

/// The summary as a plain-text table, with the trivial predictor's score when known.
pub fn table_with(summaries: &[Summary], trivial: Option<&Trivial>) -> String {
    let mut out = table(summaries);
    if let Some(t) = trivial {
        out.push_str(&format!("{:<24} {:>5} {:>22}\n", t.name, "-", format!("{} {:.4}", t.metric, t.value)));
    }
    if let Some(few) = summaries.iter().map(|s| s.diff_seeds).filter(|&n| n > 1).min().filter(|&n| n < 3) {
        out.push_str(&format!(
            "! intervals over {few} seeds: a t interval with {} degree(s) of freedom is very wide, or narrow by luck; run at least 3 seeds before reading it\n",
            few - 1
        ));
    }
    let collapsed: usize = summaries.iter().map(|s| s.collapsed).sum();
    if collapsed > 0 {
        out.push_str(&format!("! {collapsed} run(s) collapsed to a constant prediction or a single class: their scores measure a failed training, not the recipe\n"));
    }
    out
}

/// The summary as a plain-text table.
pub fn table(summaries: &[Summary]) -> String {
    let first = summaries.first().map(|s| s.recipe.as_str()).unwrap_or("");
    let test = summaries.iter().any(|s| s.test_mean.is_some());
    let (boot, test_boot) = (summaries.iter().any(|s| s.diff_boot95.is_some()), summaries.iter().any(|s| s.test_diff_boot95.is_some()));
    let pair = |m: Option<f64>, s: Option<f64>| match (m, s) {
        (Some(m), Some(sd)) => format!("{m:.4} ± {sd:.4}"),
        _ => "-".into(),
    };
    let mut out = format!("{:<24} {:>5} {:>22} {:>18}", "recipe", "runs", "score (mean ± sd)", "SWA (mean ± sd)");
    if test {
        out.push_str(&format!(" {:>18}", "test (mean ± sd)"));
    }
    let previous = summaries.iter().any(|s| s.versus_previous);
    if previous {
        out.push_str(&format!(" {:>32}", "vs previous (paired, 95% CI)"));
    }
    out.push_str(&format!(" {:>32}", format!("vs {first} (paired, 95% CI)")));
    if boot {
        out.push_str(&format!(" {:>24}", "over examples (bootstrap)"));
    }
    if test {
        out.push_str(&format!(" {:>32}", format!("test vs {first} (paired)")));
    }
    if test_boot {
        out.push_str(&format!(" {:>24}", "test over examples"));
    }
    out.push('\n');
    for s in summaries {
        let diff = if s.recipe == first { "-".into() } else { difference(s.diff_mean, s.diff_ci95) };
        let name = if s.collapsed > 0 { format!("{} !{}", s.recipe, s.collapsed) } else { s.recipe.clone() };
        out.push_str(&format!("{:<24} {:>5} {:>22} {:>18}", name, s.runs, format!("{} {:.4} ± {:.4}", s.metric, s.mean, s.std), pair(s.swa_mean, s.swa_std)));
        if test {
            out.push_str(&format!(" {:>18}", pair(s.test_mean, s.test_std)));
        }
        if previous {
            out.push_str(&format!(" {:>32}", difference(s.prev_diff_mean, s.prev_diff_ci95)));
        }
        out.push_str(&format!(" {diff:>32}"));
        if boot {
            out.push_str(&format!(" {:>24}", interval(s.diff_boot95)));
        }
        if test {
            let t = if s.recipe == first { "-".into() } else { difference(s.test_diff_mean, s.test_diff_ci95) };
            out.push_str(&format!(" {t:>32}"));
        }
        if test_boot {
            out.push_str(&format!(" {:>24}", interval(s.test_diff_boot95)));
        }
        out.push('\n');
    }
    if summaries.iter().any(|s| s.prev_diff_ci95.is_some_and(|(lo, hi)| lo <= 0.0 && hi >= 0.0) || s.diff_ci95.is_some_and(|(lo, hi)| lo <= 0.0 && hi >= 0.0)) {
        out.push_str("~ the 95% interval holds 0: the difference is within the noise of the seeds\n");
    }
    if boot || test_boot {
        out.push_str("the t intervals count seeds (and fold assignments, with repeats); the bootstrap intervals resample the examples scored, the same resamples for both recipes: read both\n");
    }
    if let Some(n) = summaries.first().map(|s| s.boot_missing).filter(|&n| n > 0) {
        out.push_str(&format!("! no bootstrap over examples for {n} run(s): their predictions were not found (a cross-validation keeps them in its folds' oof.json; runs on a dev file keep none)\n"));
    }
    out
}

/// Writes `summary.csv` and `ablation.png` for the rows into the ablation folder, and returns
/// the summaries.
pub fn report(dir: &Path, rows: &[Row]) -> Result<Vec<Summary>> {
    let summaries = summarize_examples(dir, rows);
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::Invalid(format!("{}: {e}", dir.join("summary.csv").display()));
    w.write_record([
        "recipe",
        "metric",
        "runs",
        "mean",
        "std",
        "swa_mean",
        "swa_std",
        "test_mean",
        "test_std",
        "swa_test_mean",
        "prev_diff_mean",
        "prev_diff_ci95_low",
        "prev_diff_ci95_high",
        "diff_mean",
        "diff_ci95_low",
        "diff_ci95_high",
        "test_diff_mean",
        "test_diff_ci95_low",
        "test_diff_ci95_high",
        "diff_seeds",
        "diff_boot95_low",
        "diff_boot95_high",
        "test_diff_boot95_low",
        "test_diff_boot95_high",
        "collapsed",
    ])
    .map_err(csv_err)?;
    for s in &summaries {
        let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        w.write_record([
            s.recipe.clone(),
            s.metric.clone(),
            s.runs.to_string(),
            s.mean.to_string(),
            s.std.to_string(),
            opt(s.swa_mean),
            opt(s.swa_std),
            opt(s.test_mean),
            opt(s.test_std),
            opt(s.swa_test_mean),
            opt(s.prev_diff_mean),
            opt(s.prev_diff_ci95.map(|c| c.0)),
            opt(s.prev_diff_ci95.map(|c| c.1)),
            opt(s.diff_mean),
            opt(s.diff_ci95.map(|c| c.0)),
            opt(s.diff_ci95.map(|c| c.1)),
            opt(s.test_diff_mean),
            opt(s.test_diff_ci95.map(|c| c.0)),
            opt(s.test_diff_ci95.map(|c| c.1)),
            s.diff_seeds.to_string(),
            opt(s.diff_boot95.map(|c| c.0)),
            opt(s.diff_boot95.map(|c| c.1)),
            opt(s.test_diff_boot95.map(|c| c.0)),
            opt(s.test_diff_boot95.map(|c| c.1)),
            s.collapsed.to_string(),
        ])
        .map_err(csv_err)?;
    }
    let bytes = w.into_inner().map_err(|e| Error::Invalid(e.to_string()))?;
    files::atomic_write(&dir.join("summary.csv"), &bytes)?;
    let sets = summaries
        .iter()
        .map(|s| {
            let mine = rows.iter().filter(|r| r.recipe == s.recipe);
            let name = if s.collapsed > 0 { format!("{} ({} collapsed)", s.recipe, s.collapsed) } else { s.recipe.clone() };
            ScoreSet { name, best: mine.clone().map(|r| r.best).collect(), swa: mine.filter_map(|r| r.swa).collect() }
        })
        .collect();
    let metric = summaries.first().map(|s| s.metric.as_str()).unwrap_or("score");
    let cv = rows.first().is_some_and(|r| crate::cv::is_cv_folder(&r.dir));
    let what = if cv { format!("out-of-fold {metric}") } else { format!("best dev {metric}") };
    let trivial = files::read_json::<Trivial>(&dir.join("trivial.json")).ok().map(|t| (t.name, t.value));
    Chart::scores(&what, sets, trivial).save(&dir.join("ablation.png"))?;
    Ok(summaries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(recipe: &str, seed: u64, best: f64, swa: Option<f64>) -> Row {
        Row { recipe: recipe.into(), seed, metric: "rmse".into(), best, swa, test: None, swa_test: None, steps: 1, seconds: 0.0, dir: PathBuf::new(), collapsed: false, job: None, repeat_scores: Vec::new() }
    }

    #[test]
    fn summaries_keep_the_recipe_order_and_use_the_sample_sd() {
        let rows = [row("base", 1, 1.0, None), row("+ llrd", 1, 0.5, Some(0.4)), row("base", 2, 3.0, None), row("+ llrd", 2, 0.7, Some(0.6))];
        let s = summarize(&rows);
        assert_eq!(s.iter().map(|s| s.recipe.as_str()).collect::<Vec<_>>(), ["base", "+ llrd"]);
        assert_eq!((s[0].mean, s[0].std), (2.0, 2f64.sqrt()));
        assert!((s[1].swa_mean.unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(s[0].swa_mean, None);
        // + llrd − base, paired by seed: -0.5 and -2.3.
        assert!((s[1].diff_mean.unwrap() + 1.4).abs() < 1e-12);
        assert_eq!((s[0].prev_diff_mean, s[0].test_mean), (None, None));
    }

    #[test]
    fn differences_to_the_previous_row_are_paired_and_marked_within_noise() {
        let mut rows = vec![row("a", 1, 1.0, None), row("a", 2, 1.2, None), row("b", 1, 0.9, None), row("b", 2, 1.0, None)];
        rows.extend([row("c", 1, 0.95, None), row("c", 2, 0.9, None)]);
        rows.iter_mut().for_each(|r| r.test = Some(r.best + 1.0));
        let s = summarize(&rows);
        // c − b: +0.05 and −0.1 (mean −0.025, holds 0); c − a: −0.05, −0.3.
        assert!((s[2].prev_diff_mean.unwrap() + 0.025).abs() < 1e-12);
        assert!((s[2].diff_mean.unwrap() + 0.175).abs() < 1e-12);
        assert!((s[1].prev_diff_mean.unwrap() - s[1].diff_mean.unwrap()).abs() < 1e-12);
        assert!((s[2].test_mean.unwrap() - 1.925).abs() < 1e-12);
        let md = table_markdown(&s, None);
        assert!(md.lines().nth(4).unwrap().contains("-0.0250 [") && md.lines().nth(4).unwrap().contains("] ~"), "{md}");
        assert!(md.contains("| test rmse |"), "{md}");
        assert!(table(&s).contains("within the noise"));
        // Recipes that each add one thing to the first: c against b means nothing, and goes.
        let mut star = s.clone();
        versus_first_only(&mut star);
        let md = table_markdown(&star, None);
        assert!(!md.contains("previous") && !table(&star).contains("previous"), "{md}");
        assert_eq!(md.lines().next().unwrap().matches('|').count() + 1, table_markdown(&s, None).lines().next().unwrap().matches('|').count(), "{md}");
        assert!(md.lines().nth(4).unwrap().contains("-0.1750 [") && !md.contains("-0.0250"), "{md}");
    }

    #[test]
    fn collapsed_runs_are_counted_and_flagged() {
        let mut bad = row("base", 2, 1.9, None);
        bad.collapsed = true;
        let rows = [row("base", 1, 1.0, None), bad];
        let s = summarize(&rows);
        assert_eq!(s[0].collapsed, 1);
        let trivial = Trivial { name: "trivial (training mean)".into(), metric: "rmse".into(), value: 1.9 };
        let t = table_with(&s, Some(&trivial));
        assert!(t.contains("base !1") && t.contains("1 run(s) collapsed") && t.contains("trivial (training mean)") && t.contains("rmse 1.9000"), "{t}");
        let constant = crate::metrics::Metrics::from([("prediction_std".to_string(), 0.0)]);
        assert!(collapsed(&constant));
        assert!(!collapsed(&crate::metrics::Metrics::from([("predicted_classes".to_string(), 2.0)])));
    }

    #[test]
    fn the_test_difference_is_paired_by_seed_and_few_seeds_are_flagged() {
        let with_test = |recipe: &str, seed: u64, test: f64| Row { test: Some(test), ..row(recipe, seed, 1.0, None) };
        let rows = [with_test("base", 1, 2.0), with_test("base", 2, 2.5), with_test("new", 1, 1.9), with_test("new", 2, 2.3), with_test("new", 3, 0.0)];
        let s = summarize(&rows);
        // Seeds 1 and 2 pair (seed 3 has no baseline): differences -0.1 and -0.2.
        assert!((s[1].test_diff_mean.unwrap() + 0.15).abs() < 1e-12, "{:?}", s[1]);
        assert!(s[1].test_diff_ci95.is_some() && s[0].test_diff_mean.is_none());
        let table = table_with(&s, None);
        assert!(table.contains("test vs base (paired)") && table.contains("intervals over 2 seeds"), "{table}");
        assert!(table_markdown(&s, None).contains("test vs base (paired, 95% CI)"));
    }

    #[test]
    fn repeated_cross_validations_pair_by_seed_and_repeat() {
        let repeated = |recipe: &str, seed: u64, scores: [f64; 3]| Row { repeat_scores: scores.to_vec(), ..row(recipe, seed, scores.iter().sum::<f64>() / 3.0, None) };
        let rows = [repeated("base", 1, [1.0, 1.2, 0.9]), repeated("base", 2, [1.1, 1.0, 1.0]), repeated("new", 1, [0.9, 1.0, 0.9]), repeated("new", 2, [1.0, 1.0, 0.8])];
        let s = summarize(&rows);
        // The differences by seed (rows) and repeat (columns).
        let table = [vec![-0.1, -0.2, 0.0], vec![-0.1, 0.0, -0.2]];
        assert_eq!(s[1].diff_seeds, 2);
        let (mean, ci) = crossed(&table);
        assert!((s[1].diff_mean.unwrap() - mean.unwrap()).abs() < 1e-12 && s[1].diff_ci95.is_some());
        let (got, want) = (s[1].diff_ci95.unwrap(), ci.unwrap());
        assert!((got.0 - want.0).abs() < 1e-12 && (got.1 - want.1).abs() < 1e-12);
        // Wider than the six differences counted as independent measurements.
        let (_, naive) = paired(&table.concat());
        assert!(got.1 - got.0 > naive.unwrap().1 - naive.unwrap().0);
        assert!(table_with(&s, None).contains("intervals over 2 seeds"), "2 seeds warn, whatever the repeats");
    }

    #[test]
    fn paired_interval_matches_scipy() {
        // scipy.stats.ttest_rel-style interval: d = [0.1, 0.3, 0.2]; mean 0.2, sd 0.1,
        // half-width t(0.975, 2) * 0.1 / sqrt(3) = 4.302652730 * 0.057735027 = 0.248413.
        let (m, ci) = paired(&[0.1, 0.3, 0.2]);
        assert!((m.unwrap() - 0.2).abs() < 1e-12);
        let (lo, hi) = ci.unwrap();
        assert!((lo - (0.2 - 0.248413)).abs() < 1e-6 && (hi - (0.2 + 0.248413)).abs() < 1e-6, "{lo} {hi}");
    }

    #[test]
    fn merged_shards_keep_the_recipe_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = Ablation { recipes: vec![("a".into(), Recipe::default()), ("b".into(), Recipe::default()), ("c".into(), Recipe::default())], seeds: vec![1, 2], out: dir.path().into(), ..Default::default() };
        for (index, name, _, seed) in a.jobs() {
            let mut r = row(name, seed, 1.0 + index as f64, None);
            r.job = Some(index);
            files::append_line(&dir.path().join(format!("results-{}-of-4.jsonl", index % 4)), &r).unwrap();
        }
        let rows = merge(dir.path()).unwrap();
        assert_eq!(rows.iter().map(|r| r.job.unwrap()).collect::<Vec<_>>(), (0..6).collect::<Vec<_>>());
        let names: Vec<String> = summarize(&rows).into_iter().map(|s| s.recipe).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn a_manifest_names_models_only_for_the_recipes_that_bring_one() {
        let base = RunSpec::template();
        let mut a = Ablation { recipes: vec![("a".into(), Recipe::default()), ("b".into(), Recipe::default())], seeds: vec![1], out: "x".into(), ..Default::default() };
        // The keys of every manifest written before recipes could bring a model: committed
        // result folders compare theirs with this one for equality.
        let keys = |m: serde_json::Value| m.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(a.manifest(&base)), ["base", "recipe_order", "recipes", "seeds"]);
        let head = ModelChoice { model: base.model.clone(), pooling: crate::model::Pooling::Attention, head: Default::default() };
        a.models.insert("b".into(), head);
        assert_eq!(a.manifest(&base)["models"]["b"]["pooling"], "attention");
        assert_eq!((a.spec(&base, "b", &Recipe::default()).pooling, a.spec(&base, "a", &Recipe::default()).pooling), (crate::model::Pooling::Attention, base.pooling));
        a.models.insert("c".into(), a.models["b"].clone());
        assert!(a.plans(&base).unwrap_err().to_string().contains("a model is given for `c`, which is not one of its recipes"));
    }

    #[test]
    fn shards_partition_the_jobs() {
        let a = Ablation { recipes: vec![("a".into(), Recipe::default()), ("b".into(), Recipe::default())], seeds: vec![1, 2, 3], out: "x".into(), ..Default::default() };
        let jobs = a.jobs();
        assert_eq!(jobs.len(), 6);
        let shard = |i: usize| jobs.iter().filter(|j| j.0 % 4 == i).count();
        assert_eq!((0..4).map(shard).sum::<usize>(), 6);
        assert_eq!(slug("+ LLRD (0.9)"), "llrd-0-9");
    }
}

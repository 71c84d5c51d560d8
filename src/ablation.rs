//! Ablations: a list of recipes run over several seeds, one row per run, and a summary with
//! the mean and standard deviation of the dev metric per recipe.
//!
//! The runs are independent. [`Ablation::run`] takes a shard `(i, n)` and runs only the jobs
//! whose index is `i` modulo `n`, so that a cluster scheduler (a Slurm job array, say) spreads
//! them over machines; each shard appends its rows to its own `results-<i>-of-<n>.jsonl` in the
//! output folder, and [`merge`] reads every results file of a folder back into one table.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::recipe::Recipe;
use crate::train::RunSpec;

/// Recipes × seeds, on the model, data and training settings of a base run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ablation {
    /// Named recipes, in the order the table shows them.
    pub recipes: Vec<(String, Recipe)>,
    pub seeds: Vec<u64>,
    /// The folder for the runs and the results.
    pub out: PathBuf,
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
    pub steps: usize,
    pub seconds: f64,
    pub dir: PathBuf,
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

    /// Runs the jobs of shard `(i, n)` (all of them for `None`) and returns their rows.
    pub fn run(&self, base: &RunSpec, shard: Option<(usize, usize)>) -> Result<Vec<Row>> {
        let (i, n) = shard.unwrap_or((0, 1));
        if n == 0 || i >= n {
            return Err(Error::Invalid(format!("shard {i}/{n}: expected I/N with 0 <= I < N")));
        }
        if self.recipes.is_empty() || self.seeds.is_empty() {
            return Err(Error::Invalid("an ablation needs at least one recipe and one seed".into()));
        }
        std::fs::create_dir_all(&self.out).map_err(|e| Error::io(&self.out, e))?;
        let results = self.out.join(format!("results-{i}-of-{n}.jsonl"));
        let _ = std::fs::remove_file(&results);
        let mut rows = Vec::new();
        for (index, name, recipe, seed) in self.jobs() {
            if index % n != i {
                continue;
            }
            let mut spec = base.clone();
            spec.recipe = recipe.clone();
            spec.training.seed = seed;
            spec.training.resume = None;
            spec.training.stop_after = None;
            spec.training.out_dir = Some(self.out.join(format!("{}-seed{seed}", slug(name))));
            let run = spec.run()?;
            let best = run.metrics.best.clone().ok_or_else(|| Error::Invalid(format!("run {name} (seed {seed}) was never evaluated")))?;
            let row = Row {
                recipe: name.to_string(),
                seed,
                swa: run.metrics.swa.as_ref().and_then(|m| m.get(&best.metric).copied()),
                metric: best.metric,
                best: best.value,
                steps: run.metrics.steps,
                seconds: run.metrics.wall_seconds,
                dir: run.dir,
            };
            let line = serde_json::to_string(&row).map_err(|e| Error::Invalid(e.to_string()))?;
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&results).map_err(|e| Error::io(&results, e))?;
            writeln!(f, "{line}").map_err(|e| Error::io(&results, e))?;
            rows.push(row);
        }
        Ok(rows)
    }
}

fn slug(name: &str) -> String {
    let s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    s.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-")
}

/// Reads every `results-*.jsonl` of an ablation folder (all shards) into one list.
pub fn merge(dir: &Path) -> Result<Vec<Row>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("results-") && n.ends_with(".jsonl")))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Invalid(format!("{}: no results-*.jsonl files", dir.display())));
    }
    let mut rows = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| Error::io(&f, e))?;
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            rows.push(serde_json::from_str(line).map_err(|e| Error::Data { path: f.clone(), line: Some(i + 1), what: e.to_string() })?);
        }
    }
    Ok(rows)
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

/// One summary per recipe, in the order the recipes first appear.
pub fn summarize(rows: &[Row]) -> Vec<Summary> {
    let mut names: Vec<&str> = Vec::new();
    for r in rows {
        if !names.contains(&r.recipe.as_str()) {
            names.push(&r.recipe);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let mine: Vec<&Row> = rows.iter().filter(|r| r.recipe == name).collect();
            let (mean, std) = mean_std(&mine.iter().map(|r| r.best).collect::<Vec<_>>());
            let swa: Vec<f64> = mine.iter().filter_map(|r| r.swa).collect();
            let (swa_mean, swa_std) = if swa.is_empty() { (None, None) } else { let (m, s) = mean_std(&swa); (Some(m), Some(s)) };
            Summary { recipe: name.to_string(), metric: mine[0].metric.clone(), runs: mine.len(), mean, std, swa_mean, swa_std }
        })
        .collect()
}

/// The summary as a plain-text table.
pub fn table(summaries: &[Summary]) -> String {
    let mut out = format!("{:<24} {:>5} {:>20} {:>20}\n", "recipe", "runs", "best dev (mean ± sd)", "SWA (mean ± sd)");
    for s in summaries {
        let swa = match (s.swa_mean, s.swa_std) {
            (Some(m), Some(sd)) => format!("{m:.4} ± {sd:.4}"),
            _ => "-".into(),
        };
        out.push_str(&format!("{:<24} {:>5} {:>20} {:>20}\n", s.recipe, s.runs, format!("{} {:.4} ± {:.4}", s.metric, s.mean, s.std), swa));
    }
    out
}

/// Writes `summary.csv` into the ablation folder.
pub fn write_summary(dir: &Path, summaries: &[Summary]) -> Result<()> {
    let path = dir.join("summary.csv");
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["recipe", "metric", "runs", "mean", "std", "swa_mean", "swa_std"]).map_err(|e| Error::Invalid(e.to_string()))?;
    for s in summaries {
        let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        w.write_record([s.recipe.clone(), s.metric.clone(), s.runs.to_string(), s.mean.to_string(), s.std.to_string(), opt(s.swa_mean), opt(s.swa_std)])
            .map_err(|e| Error::Invalid(e.to_string()))?;
    }
    let bytes = w.into_inner().map_err(|e| Error::Invalid(e.to_string()))?;
    crate::model::atomic_write(&path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(recipe: &str, seed: u64, best: f64, swa: Option<f64>) -> Row {
        Row { recipe: recipe.into(), seed, metric: "rmse".into(), best, swa, steps: 1, seconds: 0.0, dir: PathBuf::new() }
    }

    #[test]
    fn summaries_keep_the_recipe_order_and_use_the_sample_sd() {
        let rows = [row("base", 1, 1.0, None), row("+ llrd", 1, 0.5, Some(0.4)), row("base", 2, 3.0, None), row("+ llrd", 2, 0.7, Some(0.6))];
        let s = summarize(&rows);
        assert_eq!(s.iter().map(|s| s.recipe.as_str()).collect::<Vec<_>>(), ["base", "+ llrd"]);
        assert_eq!((s[0].mean, s[0].std), (2.0, 2f64.sqrt()));
        assert!((s[1].swa_mean.unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(s[0].swa_mean, None);
    }

    #[test]
    fn shards_partition_the_jobs() {
        let a = Ablation { recipes: vec![("a".into(), Recipe::default()), ("b".into(), Recipe::default())], seeds: vec![1, 2, 3], out: "x".into() };
        let jobs = a.jobs();
        assert_eq!(jobs.len(), 6);
        let shard = |i: usize| jobs.iter().filter(|j| j.0 % 4 == i).count();
        assert_eq!((0..4).map(shard).sum::<usize>(), 6);
        assert_eq!(slug("+ LLRD (0.9)"), "llrd-0-9");
    }
}

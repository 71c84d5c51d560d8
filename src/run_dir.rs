//! A run folder: every file a run writes, typed both ways, in one place.
//!
//! | file | content |
//! |---|---|
//! | `spec.json` | the [`RunSpec`]: model, data, recipe, training settings, every default spelled out |
//! | `log.jsonl` | one [`StepLog`] per optimizer step |
//! | `eval.jsonl` | one [`EvalRecord`] per evaluation (trained and averaged weights) |
//! | `metrics.json` | [`RunMetrics`]: last, best and SWA metrics, steps, speed |
//! | `best/`, `swa/` | the best and the averaged model, in Hugging Face layout, with `columns.json` (the data columns it was trained on) |
//! | `last/` | the resumable checkpoint: `model/`, `optimizer.safetensors`, `swa.safetensors`, `state.json` ([`CheckpointState`]) |
//! | `lock` | the process id of the process writing the run, while it runs |
//!
//! Guarantees (the kill tests in `tests/kill.rs` check them): one process at a time writes a
//! folder ([`Lock`]); an existing run is never overwritten unless asked ([`RunDir::create`]);
//! files and folders are replaced atomically ([`crate::files`]); after a kill, [`RunDir::recover`]
//! finishes or undoes an interrupted checkpoint swap, removes temporary copies and drops a log
//! line torn in the middle.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::Columns;
use crate::error::{Error, Result};
use crate::files::{self, atomic_dir, read_json, read_jsonl, write_json, write_jsonl};
use crate::metrics::Metrics;
use crate::model::{Model, write_safetensors};
use crate::optim::AdamW;
use crate::spec::RunSpec;
use crate::techniques::WeightAverage;

/// The specification's file name (`recipe.json` in runs made before tunelab 0.2).
pub const SPEC_FILE: &str = "spec.json";
const OLD_SPEC_FILE: &str = "recipe.json";

/// One line of `log.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLog {
    pub step: usize,
    pub epoch: usize,
    /// The mean loss of the step's micro-batches; NaN (written `null`) for an fp16 step skipped
    /// because its loss overflowed.
    #[serde(deserialize_with = "null_as_nan")]
    pub loss: f64,
    /// The LR of every group for this step, by group name.
    pub lr: indexmap::IndexMap<String, f64>,
    /// fp16: the loss scale for the next step, and whether this step was skipped because its
    /// gradients overflowed (the scale was then halved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<f64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}

/// A JSON number, or `null` (how serde_json writes NaN) read back as NaN.
fn null_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Option::<f64>::deserialize(d).map(|v| v.unwrap_or(f64::NAN))
}

/// Which weights an evaluation scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weights {
    /// The trained weights.
    Model,
    /// The SWA / EMA average.
    Swa,
}

/// One line of `eval.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// The optimizer steps done when evaluating.
    pub step: usize,
    pub epoch: usize,
    pub weights: Weights,
    pub metrics: Metrics,
}

/// The best evaluation so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Best {
    pub metric: String,
    pub value: f64,
    pub step: usize,
    pub metrics: Metrics,
}

/// Counters of the training time and throughput (evaluation and saving excluded).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Throughput {
    pub samples: usize,
    pub tokens: usize,
    /// Seconds spent in optimizer steps.
    pub train_seconds: f64,
    /// Seconds spent computing and setting the groups' LRs.
    pub lr_seconds: f64,
    /// Seconds spent updating the weight average.
    pub swa_seconds: f64,
}

/// `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    /// The trained weights at the end.
    pub last: Option<Metrics>,
    pub best: Option<Best>,
    /// The averaged weights at the end.
    pub swa: Option<Metrics>,
    pub steps: usize,
    pub total_steps: usize,
    /// The run is over: all its steps done, or stopped early.
    pub finished: bool,
    /// The step at which early stopping (`evaluation.patience`) ended the run.
    #[serde(default)]
    pub stopped_early: Option<usize>,
    pub train_examples: usize,
    pub dev_examples: usize,
    pub wall_seconds: f64,
    /// Training examples per second of training time (evaluation and saving excluded).
    pub train_samples_per_second: f64,
    pub train_tokens_per_second: f64,
    /// Seconds spent computing and setting the LRs, and updating the average (the bookkeeping
    /// the techniques add to a step).
    pub lr_seconds: f64,
    pub swa_seconds: f64,
    pub step_seconds: f64,
    pub device: String,
    /// The format dense layers and attention computed in, and (fp16) the steps skipped because
    /// their gradients overflowed.
    #[serde(default)]
    pub precision: crate::precision::Precision,
    #[serde(default)]
    pub skipped_steps: usize,
    /// Warnings about the recipe (settings that are legal but probably not meant).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The test file (`data.test`) scored at the end by the selected weights and by the SWA
    /// weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Metrics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swa_test: Option<Metrics>,
}

/// What `last/state.json` holds besides the tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// The next optimizer step to run.
    pub step: usize,
    pub total_steps: usize,
    /// AdamW's step count per parameter.
    pub adam_steps: BTreeMap<String, i64>,
    pub best: Option<Best>,
    /// Snapshots in the weight average (0: no average yet).
    pub swa_averaged: u64,
    pub throughput: Throughput,
    /// Evaluations without improvement so far, and the early stop (see [`crate::train::TrainState`]).
    #[serde(default)]
    pub waited: usize,
    #[serde(default)]
    pub stopped_early: Option<usize>,
    /// libtorch's intra-op threads: results are bit-identical only with the same count.
    pub threads: usize,
    /// The specification the run started with, to refuse a resume after it was edited.
    pub spec: RunSpec,
    /// fp16's loss scaler at the checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaler: Option<crate::precision::LossScaler>,
}

/// A run folder (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// A folder for a new run: `root/<name>-<UTC timestamp>`, with `-2`, `-3`... when two runs
    /// start in the same second.
    pub fn fresh_path(root: &Path, name: &str) -> Result<PathBuf> {
        // A name may hold sub-folders (`exp1/base`), but not leave the runs root.
        let inside = Path::new(name).components().all(|c| matches!(c, std::path::Component::Normal(_)));
        if !inside {
            return Err(Error::Invalid(format!(
                "training.name `{name}` would put the run outside {}: use a plain name (sub-folders allowed), or choose the folder with --out",
                root.display()
            )));
        }
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let stamp: String = now.trim_end_matches('Z').replace('T', "-").replace([':', '-'], "");
        let stamp = format!("{}-{}", &stamp[..8], &stamp[8..]);
        let base = format!("{name}-{stamp}");
        let mut dir = root.join(&base);
        let mut n = 2;
        while dir.exists() {
            dir = root.join(format!("{base}-{n}"));
            n += 1;
        }
        Ok(dir)
    }

    /// Makes the folder of a new run. An existing folder that is not empty is an error, unless
    /// `force` and the folder is recognisably a tunelab run ([`RunDir::foreign_entry`] finds
    /// nothing else in it): then it is emptied first (after taking its lock). Any other folder
    /// is never emptied: tunelab deletes only what tunelab made.
    pub fn create(path: &Path, force: bool) -> Result<(RunDir, Lock)> {
        let occupied = std::fs::read_dir(path).map(|mut d| d.next().is_some()).unwrap_or(false);
        let foreign = if occupied { Self::foreign_entry(path)? } else { None };
        if let Some(why) = &foreign {
            return Err(Error::Invalid(format!(
                "{} already holds files and is not a tunelab run folder (it {why}); nothing was deleted: choose another folder",
                path.display()
            )));
        }
        if occupied && !force {
            return Err(Error::Invalid(format!(
                "{} already holds a run; choose another folder, or pass --force to empty it and start over",
                path.display()
            )));
        }
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        let dir = RunDir { path: path.to_path_buf() };
        let lock = Lock::acquire(path)?;
        if occupied {
            for entry in std::fs::read_dir(path).map_err(|e| Error::io(path, e))?.flatten() {
                if entry.file_name() != "lock" {
                    files::remove_any(&entry.path())?;
                }
            }
        }
        Ok((dir, lock))
    }

    /// Why a non-empty folder is not recognisably a tunelab run (`None`: it is one). A run folder
    /// holds a `spec.json` that parses as a run specification, something only a run writes (its
    /// logs, metrics, lock or model folders: a specification alone may be a file of yours), and
    /// nothing but the files a run writes (see the module documentation; TensorBoard event
    /// files, a fold's `oof.json`, and the temporary copies of these names included).
    pub fn foreign_entry(path: &Path) -> Result<Option<String>> {
        let run = RunDir { path: path.to_path_buf() };
        let mut entries: Vec<(String, bool)> = std::fs::read_dir(path)
            .map_err(|e| Error::io(path, e))?
            .flatten()
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.file_type().map(|t| t.is_dir()).unwrap_or(false)))
            .collect();
        entries.sort();
        // A run killed between taking its lock and writing its specification left only those.
        if entries.iter().all(|(n, _)| n == "lock" || n == ".spec.json.tmp") {
            return Ok(None);
        }
        let foreign: Vec<&str> = entries.iter().filter(|(n, is_dir)| !run_entry(n, *is_dir)).map(|(n, _)| n.as_str()).collect();
        if let Some(f) = foreign.first() {
            let more = if foreign.len() > 1 { format!(" and {} other entries", foreign.len() - 1) } else { String::new() };
            return Ok(Some(format!("holds {f}{more}, which no run writes")));
        }
        if !run.spec_path().is_file() {
            return Ok(Some(format!("holds no {SPEC_FILE}")));
        }
        if RunSpec::from_file(&run.spec_path()).is_err() {
            return Ok(Some(format!("holds a {} that is not a run specification", run.spec_path().display())));
        }
        let written = entries.iter().any(|(n, _)| !matches!(n.as_str(), SPEC_FILE | OLD_SPEC_FILE) && !n.starts_with('.'));
        if !written {
            return Ok(Some(format!("holds only a {SPEC_FILE}, which may be yours: no run has written into it")));
        }
        Ok(None)
    }

    /// An existing run folder (it must hold a specification).
    pub fn open(path: &Path) -> Result<RunDir> {
        let dir = RunDir { path: path.to_path_buf() };
        if !dir.spec_path().is_file() {
            return Err(Error::Invalid(format!("{}: not a run folder (no {SPEC_FILE})", path.display())));
        }
        Ok(dir)
    }

    pub fn spec_path(&self) -> PathBuf {
        let new = self.path.join(SPEC_FILE);
        let old = self.path.join(OLD_SPEC_FILE);
        if !new.exists() && old.exists() { old } else { new }
    }
    pub fn log_path(&self) -> PathBuf {
        self.path.join("log.jsonl")
    }
    pub fn eval_path(&self) -> PathBuf {
        self.path.join("eval.jsonl")
    }
    pub fn metrics_path(&self) -> PathBuf {
        self.path.join("metrics.json")
    }
    pub fn best_dir(&self) -> PathBuf {
        self.path.join("best")
    }
    pub fn swa_dir(&self) -> PathBuf {
        self.path.join("swa")
    }
    pub fn last_dir(&self) -> PathBuf {
        self.path.join("last")
    }

    pub fn read_spec(&self) -> Result<RunSpec> {
        RunSpec::from_file(&self.spec_path())
    }
    pub fn write_spec(&self, spec: &RunSpec) -> Result<()> {
        files::atomic_write(&self.path.join(SPEC_FILE), spec.to_json().as_bytes())
    }

    pub fn read_log(&self) -> Result<Vec<StepLog>> {
        read_jsonl(&self.log_path())
    }
    pub fn append_step(&self, entry: &StepLog) -> Result<()> {
        files::append_line(&self.log_path(), entry)
    }
    pub fn read_evals(&self) -> Result<Vec<EvalRecord>> {
        read_jsonl(&self.eval_path())
    }
    pub fn append_eval(&self, record: &EvalRecord) -> Result<()> {
        files::append_line(&self.eval_path(), record)
    }
    pub fn read_metrics(&self) -> Result<RunMetrics> {
        read_json(&self.metrics_path())
    }
    pub fn write_metrics(&self, metrics: &RunMetrics) -> Result<()> {
        write_json(&self.metrics_path(), metrics)
    }

    /// Saves the best weights into `best/` (atomically), with the data columns they were
    /// trained on (`columns.json`, which `tunelab predict` takes as its defaults).
    pub fn save_best(&self, model: &Model, columns: &Columns) -> Result<()> {
        atomic_dir(&self.best_dir(), |d| save_model(d, model, columns))
    }

    /// Saves the averaged weights (the model holding them) into `swa/`, with the columns.
    pub fn save_swa(&self, model: &Model, columns: &Columns) -> Result<()> {
        atomic_dir(&self.swa_dir(), |d| save_model(d, model, columns))
    }

    /// Writes the resumable checkpoint `last/`.
    pub fn save_checkpoint(&self, model: &Model, optimizer: &AdamW, average: Option<&WeightAverage>, state: &CheckpointState) -> Result<()> {
        atomic_dir(&self.last_dir(), |d| {
            model.save(d.join("model"))?;
            write_safetensors(&d.join("optimizer.safetensors"), &optimizer.state().tensors)?;
            if let Some(avg) = average {
                write_safetensors(&d.join("swa.safetensors"), &avg.state().0)?;
            }
            write_json(&d.join("state.json"), state)
        })
    }

    /// The checkpoint's state, if the run has written one.
    pub fn read_checkpoint_state(&self) -> Result<Option<CheckpointState>> {
        let path = self.last_dir().join("state.json");
        if !path.exists() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }

    /// Loads the checkpoint's tensors into the model, the optimizer and the average.
    pub fn load_checkpoint(&self, state: &CheckpointState, model: &Model, optimizer: &mut AdamW, average: Option<&mut WeightAverage>) -> Result<()> {
        let last = self.last_dir();
        model.load_weights(&last.join("model"))?;
        let path = last.join("optimizer.safetensors");
        optimizer.load_state(&crate::model::read_safetensors(&path)?, &state.adam_steps, &path)?;
        if let Some(avg) = average
            && state.swa_averaged > 0
        {
            let path = last.join("swa.safetensors");
            avg.load_state(&crate::model::read_safetensors(&path)?, state.swa_averaged, &path)?;
        }
        Ok(())
    }

    /// Brings the folder back to a consistent state after a kill, and returns the checkpoint's
    /// state (`None`: the run wrote none yet and starts over) with notes on what it did:
    /// interrupted folder swaps are finished or undone, temporary copies removed, and the logs
    /// cut back to the steps the checkpoint covers (a torn last line dropped).
    pub fn recover(&self) -> Result<(Option<CheckpointState>, Vec<String>)> {
        let mut notes = Vec::new();
        for dir in [self.best_dir(), self.swa_dir(), self.last_dir()] {
            notes.extend(files::recover_dir(&dir)?);
        }
        for entry in std::fs::read_dir(&self.path).map_err(|e| Error::io(&self.path, e))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if files::is_temporary(&name) && run_entry(&name, is_dir) {
                files::remove_any(&entry.path())?;
                notes.push(format!("removed the unfinished {}", entry.path().display()));
            }
        }
        let state = self.read_checkpoint_state()?;
        let step = state.as_ref().map_or(0, |s| s.step);
        let log: Vec<StepLog> = self.read_log()?.into_iter().filter(|l| l.step < step).collect();
        write_jsonl(&self.log_path(), &log)?;
        let evals: Vec<EvalRecord> = self.read_evals()?.into_iter().filter(|e| e.step <= step).collect();
        write_jsonl(&self.eval_path(), &evals)?;
        if state.is_none() {
            // No checkpoint: the run starts over, so nothing it wrote after its start stays.
            for stale in [self.best_dir(), self.swa_dir(), self.metrics_path()] {
                files::remove_any(&stale)?;
            }
        }
        Ok((state, notes))
    }
}

/// Whether a folder entry is one a run writes: its files and folders, TensorBoard event files,
/// and the temporary copies of those names (`.best.tmp`, `.last.old`, `.log.jsonl.tmp`...).
fn run_entry(name: &str, is_dir: bool) -> bool {
    let base = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp").or_else(|| n.strip_suffix(".old"))).unwrap_or(name);
    match base {
        "best" | "swa" | "last" => is_dir,
        SPEC_FILE | OLD_SPEC_FILE | "log.jsonl" | "eval.jsonl" | "metrics.json" | "lock" | "oof.json" => !is_dir,
        other => !is_dir && other.starts_with("events.out.tfevents.") && other.contains(".tunelab"),
    }
}

/// Checks a file that a researcher names for tunelab to write (`--out`, `--lr-csv`, `predict`'s
/// `out`, `plot_runs`'s path) before any work: it must not be a folder, nor one of the files
/// that make a run folder (`spec.json` there: `metrics.json`, `log.jsonl`...) or a model folder
/// (`config.json` and `model.safetensors` there: those, the tokenizer, `tunelab.json`...), which
/// tunelab writes only as part of a run. Any other name is written, over an earlier file of
/// that name if there is one, as `cp` does.
pub fn output_file(path: &Path) -> Result<()> {
    const MODEL_FILES: [&str; 9] = [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.txt",
        "tunelab.json",
        COLUMNS_FILE,
        "head.safetensors",
    ];
    if path.is_dir() {
        return Err(Error::Invalid(format!("{}: a folder; name the file to write", path.display())));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(Error::Invalid(format!("{}: the folder {} does not exist", path.display(), parent.display())));
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let folder = if parent.join("config.json").is_file() && parent.join("model.safetensors").is_file() && MODEL_FILES.contains(&name) {
        Some("model")
    } else if parent.join(SPEC_FILE).is_file() && run_entry(name, false) {
        Some("run")
    } else {
        None
    };
    if let Some(what) = folder {
        return Err(Error::Invalid(format!(
            "{}: a file of the {what} folder {}, which tunelab writes only as part of the run; choose another name",
            path.display(),
            parent.display()
        )));
    }
    Ok(())
}

/// The name of the file in a saved model folder that records the data columns it was trained on.
pub const COLUMNS_FILE: &str = "columns.json";

fn save_model(dir: &Path, model: &Model, columns: &Columns) -> Result<()> {
    model.save(dir)?;
    write_json(&dir.join(COLUMNS_FILE), columns)
}

/// The columns a saved model folder was trained on (`None`: a folder saved before tunelab
/// recorded them, or by hand).
pub fn trained_columns(model_dir: &Path) -> Result<Option<Columns>> {
    let path = model_dir.join(COLUMNS_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    read_json(&path).map(Some)
}

/// The lock of a run folder: the file `lock` holds the writer's process id, and is removed when
/// the lock is dropped. A lock left by a process that no longer runs is taken over.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    /// What taking the lock noticed (a stale lock taken over).
    pub note: Option<String>,
}

impl Lock {
    pub fn acquire(dir: &Path) -> Result<Lock> {
        let path = dir.join("lock");
        let mut note = None;
        for _ in 0..2 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    use std::io::Write;
                    write!(f, "{}", std::process::id()).map_err(|e| Error::io(&path, e))?;
                    return Ok(Lock { path, note });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let pid: Option<u32> = holder.trim().parse().ok();
                    if let Some(pid) = pid.filter(|&p| process_alive(p)) {
                        return Err(Error::Invalid(format!(
                            "{} is being written by process {pid} (its lock file is {}); wait for it to finish, or stop it",
                            dir.display(),
                            path.display()
                        )));
                    }
                    files::remove_any(&path)?;
                    note = Some(format!("took over the lock left by process {} that no longer runs", holder.trim()));
                }
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Err(Error::Invalid(format!("{}: could not take the lock", path.display())))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The process writing a run folder now (its `lock` names a process that runs), if any.
pub fn writer(dir: &Path) -> Option<u32> {
    let holder = std::fs::read_to_string(dir.join("lock")).ok()?;
    holder.trim().parse().ok().filter(|&pid| process_alive(pid))
}

/// Refuses to summarise a folder whose runs (its subfolders) are still being written: the
/// summary would be partial. `what` says what would be summarised.
pub fn refuse_if_written(dir: &Path, what: &str) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for sub in entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
        if let Some(pid) = writer(&sub) {
            return Err(Error::Invalid(format!(
                "{}: {} is still being written by process {pid}; {what} once it has finished",
                dir.display(),
                sub.display()
            )));
        }
    }
    Ok(())
}

/// Whether a process with this id runs (Linux: `/proc/<pid>`; elsewhere a lock is never stale).
pub(crate) fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    if proc.is_dir() { proc.join(pid.to_string()).exists() } else { true }
}

/// The JSON paths where two values differ (`recipe.lr.top_lr`), for messages about edited files.
pub fn differences(a: &serde_json::Value, b: &serde_json::Value) -> Vec<String> {
    fn walk(a: &serde_json::Value, b: &serde_json::Value, at: &str, out: &mut Vec<String>) {
        use serde_json::Value::Object;
        match (a, b) {
            (Object(x), Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let path = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
                    match (x.get(k), y.get(k)) {
                        (Some(u), Some(v)) => walk(u, v, &path, out),
                        _ => out.push(path),
                    }
                }
            }
            _ if a != b => out.push(if at.is_empty() { ".".into() } else { at.to_string() }),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(a, b, "", &mut out);
    out
}

/// The curves of a run folder, for plots: the loss of every step, and one metric at each
/// evaluation of the trained and of the averaged weights.
#[derive(Debug, Clone)]
pub struct Curves {
    pub name: String,
    pub metric: String,
    pub loss: Vec<(f64, f64)>,
    pub dev: Vec<(f64, f64)>,
    pub swa: Vec<(f64, f64)>,
}

impl RunDir {
    /// The loss and one dev metric of the run (`None`: the metric that selected its best weights).
    pub fn curves(&self, metric: Option<&str>) -> Result<Curves> {
        let log = self.read_log()?;
        let evals = self.read_evals()?;
        let metric = match metric {
            Some(m) => m.to_string(),
            None => self.read_metrics().ok().and_then(|m| m.best.map(|b| b.metric)).unwrap_or_else(|| "loss".into()),
        };
        if let Some(e) = evals.first()
            && !e.metrics.contains_key(&metric)
        {
            let known: Vec<&str> = e.metrics.keys().map(String::as_str).collect();
            return Err(Error::Invalid(format!("{}: no metric `{metric}` (it logged: {})", self.eval_path().display(), known.join(", "))));
        }
        let pick = |w: Weights| evals.iter().filter(|e| e.weights == w).filter_map(|e| Some((e.step as f64, *e.metrics.get(&metric)?))).collect();
        Ok(Curves {
            name: self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            loss: log.iter().map(|l| (l.step as f64, l.loss)).collect(),
            dev: pick(Weights::Model),
            swa: pick(Weights::Swa),
            metric,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_skipped_fp16_step_round_trips_through_the_log() {
        let log = super::StepLog { step: 3, epoch: 0, loss: f64::NAN, lr: Default::default(), loss_scale: Some(32768.0), skipped: true };
        let line = serde_json::to_string(&log).unwrap();
        assert!(line.contains("\"loss\":null") && line.contains("\"skipped\":true"), "{line}");
        let back: super::StepLog = serde_json::from_str(&line).unwrap();
        assert!(back.loss.is_nan() && back.skipped && back.loss_scale == Some(32768.0));
        let old: super::StepLog = serde_json::from_str(r#"{"step":0,"epoch":0,"loss":1.5,"lr":{}}"#).unwrap();
        assert_eq!((old.loss, old.loss_scale, old.skipped), (1.5, None, false));
    }

    #[test]
    fn fresh_folders_are_named_by_the_utc_time() {
        let dir = super::RunDir::fresh_path(std::path::Path::new("runs"), "full").unwrap();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        // full-YYYYMMDD-HHMMSS
        let stamp = name.strip_prefix("full-").unwrap();
        assert_eq!(stamp.len(), 15, "{name}");
        assert!(stamp[..8].chars().all(|c| c.is_ascii_digit()) && &stamp[8..9] == "-" && stamp[9..].chars().all(|c| c.is_ascii_digit()), "{name}");
        // Sub-folders are kept under the root; a name that would leave it is refused.
        assert!(super::RunDir::fresh_path(std::path::Path::new("runs"), "exp1/base").unwrap().starts_with("runs/exp1"));
        for name in ["../escaped", "/tmp/x", "a/../../b"] {
            let err = super::RunDir::fresh_path(std::path::Path::new("runs"), name).unwrap_err().to_string();
            assert!(err.contains("would put the run outside runs"), "{err}");
        }
    }
}

//! The run specification: what defines a run — the model, the data, the recipe and the training
//! settings — as one serde value. Every run writes it as `spec.json` in its folder, every default
//! spelled out, and `tunelab train spec.json` replays it.
//!
//! What only steers one process (the output folder, stopping early, the progress bar) is not
//! part of it: that is [`crate::run::RunControl`].
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Device;

use crate::data::{Columns, Dataset, ReadOptions, Subset, TaskKind};
use crate::error::{Error, Result};
use crate::groups::GroupTable;
use crate::model::{HeadOptions, HeadSpec, Model, Pooling, Task};
use crate::precision::{DeviceChoice, Precision};
use crate::recipe::{LrTable, Recipe, Resolved};

/// How a run is carried out (as opposed to what it does, the [`Recipe`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// A short name: run folders are called `<name>-<timestamp>`.
    pub name: String,
    pub epochs: usize,
    /// At most this many optimizer steps: the schedule is laid out over the shorter of this and
    /// the epochs.
    pub max_steps: Option<usize>,
    pub batch_size: usize,
    pub eval_batch_size: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Tokens per text (special tokens included), longer ones truncated.
    pub max_length: usize,
    /// Clip the global gradient norm to this value (`torch.nn.utils.clip_grad_norm_`).
    pub clip_grad_norm: Option<f64>,
    /// Length bucketing: sort by length inside chunks of this many batches.
    pub bucket: Option<usize>,
    /// Shuffle the training examples each epoch (off: file order, as a benchmark needs).
    pub shuffle: bool,
    pub seed: u64,
    /// libtorch's intra-op threads (`None`: libtorch's default).
    pub threads: Option<usize>,
    /// Which model folders the run keeps (`None`: `resumable` for a single run, `models` for the
    /// runs of an ablation).
    pub keep: Option<Keep>,
    /// Where to train: `auto` (the first GPU if there is one), `cpu`, `cuda`, `cuda:N`.
    pub device: DeviceChoice,
    /// The format dense layers and attention compute in: `fp32`, `bf16` or `fp16` (with
    /// dynamic loss scaling). Weights, optimizer state and checkpoints stay fp32.
    pub precision: Precision,
    /// Let fp32 matrix products use TF32 on GPUs that have it (Ampere and later).
    pub tf32: bool,
}

/// Which folders a run keeps. For MiniLM (22.7M parameters): `best/` and `swa/` take about 91 MB
/// each, the resumable `last/` about 360 MB (the weights, AdamW's two moments, the average).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    /// `best/`, `swa/` and the resumable checkpoint `last/`.
    Resumable,
    /// `best/` and `swa/`: a killed run starts over when resumed.
    Models,
    /// `best/` only.
    Best,
}

impl Keep {
    pub fn last(self) -> bool {
        self == Keep::Resumable
    }
    pub fn swa(self) -> bool {
        self != Keep::Best
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            name: "run".into(),
            epochs: 3,
            max_steps: None,
            batch_size: 32,
            eval_batch_size: 128,
            grad_accum: 1,
            max_length: 128,
            clip_grad_norm: Some(1.0),
            bucket: None,
            shuffle: true,
            seed: 42,
            threads: None,
            keep: None,
            device: DeviceChoice::Auto,
            precision: Precision::Fp32,
            tf32: false,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("eval_batch_size", self.eval_batch_size),
            ("grad_accum", self.grad_accum),
            ("max_length", self.max_length),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(Error::Invalid(format!("training.{name} must be at least 1")));
            }
        }
        if self.max_length < 2 {
            return Err(Error::Invalid(format!("training.max_length must be at least 2 (the [CLS] and [SEP] tokens), got {}", self.max_length)));
        }
        if self.max_steps == Some(0) {
            return Err(Error::Invalid("training.max_steps must be at least 1".into()));
        }
        if self.threads == Some(0) {
            return Err(Error::Invalid("training.threads must be at least 1".into()));
        }
        if let Some(c) = self.clip_grad_norm
            && !(c > 0.0 && c.is_finite())
        {
            return Err(Error::Invalid(format!("training.clip_grad_norm must be above 0, got {c}")));
        }
        Ok(())
    }

    /// Takes the device and precision chosen for a process (`--device`, `--precision`).
    pub fn apply(&mut self, hardware: &crate::precision::Hardware) {
        if let Some(d) = hardware.device {
            self.device = d;
        }
        if let Some(p) = hardware.precision {
            self.precision = p;
        }
    }

    /// Optimizer steps per epoch and in the whole run, for `examples` training examples.
    pub fn run_length(&self, examples: usize) -> (usize, usize) {
        let micro_per_epoch = examples.div_ceil(self.batch_size);
        let steps_per_epoch = micro_per_epoch.div_ceil(self.grad_accum);
        let total = (self.epochs * steps_per_epoch).min(self.max_steps.unwrap_or(usize::MAX));
        (steps_per_epoch, total)
    }
}

/// K-fold cross-validation of the training rows: each fold is the dev set of one run trained on
/// the other folds (see [`crate::cv`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cv {
    pub folds: usize,
    /// The seed of the fold assignment (stratified by class for classification).
    #[serde(default)]
    pub seed: u64,
    /// A column whose equal values stay in one fold (the same author, the same source...).
    #[serde(default)]
    pub group_by: Option<String>,
    /// Which fold this run holds out (set by the cross-validation for each of its runs; absent
    /// in the specification of the whole cross-validation).
    #[serde(default)]
    pub fold: Option<usize>,
    /// Repeated k-fold: the whole k-fold cross-validation runs `repeats` times, repeat `r`
    /// assigning new folds with the seed `seed + r`; its score is the mean over the repeats.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub repeats: usize,
    /// Which repeat this run belongs to (set with `fold` in each fold's run of a repeated
    /// cross-validation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<usize>,
}

pub(crate) fn one() -> usize {
    1
}

pub(crate) fn is_one(n: &usize) -> bool {
    *n == 1
}

impl Cv {
    /// A k-fold cross-validation with fold seed `seed`, run once.
    pub fn new(folds: usize, seed: u64) -> Cv {
        Cv { folds, seed, group_by: None, fold: None, repeats: 1, repeat: None }
    }

    /// The seed of repeat `r`'s fold assignment.
    pub fn seed_of(&self, repeat: usize) -> u64 {
        self.seed.wrapping_add(repeat as u64)
    }
}

/// Where the data is and how to read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    pub train: PathBuf,
    /// The dev file that selects the best weights (none with `cv`: the folds are the dev sets).
    #[serde(default)]
    pub dev: Option<PathBuf>,
    pub columns: Columns,
    pub kind: TaskKind,
    #[serde(default)]
    pub skip_invalid: bool,
    /// Use only this many training rows: a seeded random sample by default (see `subset`).
    #[serde(default)]
    pub train_limit: Option<usize>,
    /// Use only this many dev rows, chosen the same way.
    #[serde(default)]
    pub dev_limit: Option<usize>,
    /// How the limits choose rows: `{"kind": "random", "seed": 0}` (stratified by class for
    /// classification) or `{"kind": "first"}`.
    #[serde(default)]
    pub subset: Subset,
    /// Cross-validate on the training rows instead of using a dev file.
    #[serde(default)]
    pub cv: Option<Cv>,
    /// A held-out test file, scored once at the end with the selected weights (and the SWA
    /// weights) and never used to choose anything. With `cv`, every
    /// fold's model predicts it and the folds' mean prediction is scored.
    #[serde(default)]
    pub test: Option<PathBuf>,
    /// Use only this many test rows, chosen as the other limits are.
    #[serde(default)]
    pub test_limit: Option<usize>,
}

impl DataSpec {
    fn options(&self, limit: Option<usize>) -> ReadOptions {
        ReadOptions {
            skip_invalid: self.skip_invalid,
            limit,
            subset: self.subset,
            group: self.cv.as_ref().and_then(|c| c.group_by.clone()),
            ..ReadOptions::new(self.columns.clone(), self.kind)
        }
    }

    /// Reads and checks the training rows (the `train_limit` subset).
    pub fn load_train(&self) -> Result<Dataset> {
        for (key, limit) in [("train_limit", self.train_limit), ("dev_limit", self.dev_limit), ("test_limit", self.test_limit)] {
            if limit == Some(0) {
                return Err(Error::Invalid(format!("data.{key} is 0: it keeps that many rows; leave it out to keep every row")));
            }
        }
        Dataset::read(&self.train, &self.options(self.train_limit), None)
    }

    /// Reads and checks the training and the dev set: the dev file, checked against the
    /// training classes, or with `cv` the fold `cv.fold` (fold 0 for the whole
    /// cross-validation's plan) of the training rows, trained on the others.
    pub fn load(&self) -> Result<(Dataset, Dataset)> {
        let train = self.load_train()?;
        match (&self.cv, &self.dev) {
            (None, Some(dev)) => {
                let classes = match &train.task {
                    Task::Classification { labels } => Some(labels.clone()),
                    Task::Regression => None,
                };
                let dev = Dataset::read(dev, &self.options(self.dev_limit), classes.as_deref())?;
                Ok((train, dev))
            }
            (None, None) => Err(Error::Invalid("data.dev: no dev file; give one, or cross-validate with data.cv".into())),
            (Some(_), Some(_)) => Err(Error::Invalid("data.dev: with data.cv the folds are the dev sets; remove data.dev".into())),
            (Some(cv), None) => {
                if cv.repeats == 0 {
                    return Err(Error::Invalid("data.cv.repeats is 0: a cross-validation runs at least once (1, the default)".into()));
                }
                if let Some(r) = cv.repeat.filter(|&r| r >= cv.repeats) {
                    return Err(Error::Invalid(format!("data.cv.repeat is {r}, but there are {} repeats", cv.repeats)));
                }
                let folds = self.folds(&train)?;
                let k = cv.fold.unwrap_or(0);
                if k >= cv.folds {
                    return Err(Error::Invalid(format!("data.cv.fold is {k}, but there are {} folds", cv.folds)));
                }
                Ok(train.split(|i| folds[i] != k))
            }
        }
    }

    /// Reads the test file (`None` without one), checked against the training classes.
    pub fn load_test(&self, train: &Dataset) -> Result<Option<Dataset>> {
        let Some(path) = &self.test else { return Ok(None) };
        let classes = match &train.task {
            Task::Classification { labels } => Some(labels.clone()),
            Task::Regression => None,
        };
        Dataset::read(path, &ReadOptions { group: None, ..self.options(self.test_limit) }, classes.as_deref()).map(Some)
    }

    /// The fold of every training row (with `cv`), in the repeat `cv.repeat` (the first without).
    pub fn folds(&self, train: &Dataset) -> Result<Vec<usize>> {
        let repeat = self.cv.as_ref().and_then(|cv| cv.repeat).unwrap_or(0);
        self.folds_of(train, repeat)
    }

    /// The fold of every training row in repeat `repeat` of a (repeated) cross-validation.
    pub fn folds_of(&self, train: &Dataset, repeat: usize) -> Result<Vec<usize>> {
        let cv = self.cv.as_ref().ok_or_else(|| Error::Invalid("data.cv is not set".into()))?;
        let classes: Option<Vec<usize>> = matches!(train.task, Task::Classification { .. }).then(|| train.examples.iter().map(|e| e.label as usize).collect());
        let groups: Option<Vec<&str>> = cv.group_by.as_ref().map(|_| train.examples.iter().map(|e| e.group.as_deref().unwrap_or("")).collect());
        crate::data::assign_folds(train.len(), cv.folds, cv.seed_of(repeat), classes.as_deref(), groups.as_deref())
            .map_err(|e| Error::Data { path: self.train.clone(), line: None, what: format!("data.cv: {e}") })
    }
}

/// Everything that defines a run: what `spec.json` holds and what `tunelab resume` reads back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// The pre-trained model folder.
    pub model: PathBuf,
    #[serde(default)]
    pub pooling: Pooling,
    /// The head's layers read, dropout and multi-sample dropout (absent: the defaults).
    #[serde(default, skip_serializing_if = "HeadOptions::is_default")]
    pub head: HeadOptions,
    pub data: DataSpec,
    #[serde(default)]
    pub recipe: Recipe,
    #[serde(default)]
    pub training: TrainConfig,
}

/// A specification made ready to train: the data read, the model loaded with its head, the
/// recipe resolved against both.
pub struct Prepared {
    pub model: Model,
    pub train: Dataset,
    pub dev: Dataset,
    /// The test file's rows (`data.test`), read and checked before anything trains.
    pub test: Option<Dataset>,
    pub table: GroupTable,
    pub resolved: Resolved,
    pub steps_per_epoch: usize,
}

impl RunSpec {
    /// A complete specification with every default spelled out, on the VADER sentences and
    /// MiniLM that `make setup` installs: a template to edit (`tunelab spec --defaults`).
    pub fn template() -> RunSpec {
        RunSpec {
            model: "models/all-MiniLM-L6-v2".into(),
            pooling: Pooling::default(),
            head: HeadOptions::default(),
            data: DataSpec::new("data/vader-movies/train.tsv", "data/vader-movies/dev.tsv", "text", "score", TaskKind::Regression),
            recipe: Recipe::default(),
            training: TrainConfig::default(),
        }
    }

    /// Reads a specification file (a run's `spec.json`, or one written by hand).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json(&text, path)
    }

    /// Parses a specification; `origin` names the source in errors.
    pub fn from_json(text: &str, origin: &Path) -> Result<Self> {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de)
            .map_err(|e| Error::Json { path: origin.into(), what: format!("field `{}`: {}", e.path(), crate::human::settings_error(&e.inner().to_string())) })
    }

    /// The specification as the pretty JSON a run folder stores.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a run specification serialises") + "\n"
    }

    /// [`RunSpec::to_json`] with every key spelt out: the recipe keys that a run folder's
    /// `spec.json` leaves out at their defaults (so that folders written before they existed
    /// still read the same) are written too. What `tunelab spec` prints.
    pub fn to_json_with_defaults(&self) -> String {
        let mut value = serde_json::to_value(self).expect("a run specification serialises");
        let recipe = &mut value["recipe"];
        for (key, default) in [("weight_decay_towards", serde_json::json!("zero")), ("loss", serde_json::Value::Null), ("freeze", serde_json::Value::Null), ("adversarial", serde_json::Value::Null), ("mixout", serde_json::Value::Null)] {
            if recipe.get(key).is_none() {
                recipe[key] = default;
            }
        }
        if recipe["adamw"].get("bias_correction").is_none() {
            recipe["adamw"]["bias_correction"] = true.into();
        }
        if let Some(cv) = value["data"].get_mut("cv").filter(|c| c.is_object())
            && cv.get("repeats").is_none()
        {
            cv["repeats"] = 1.into();
        }
        if value.get("head").is_none() {
            value["head"] = serde_json::json!({ "layers": null, "dropout": null, "samples": null });
        }
        serde_json::to_string_pretty(&value).expect("a run specification serialises") + "\n"
    }

    /// Reads the data, loads the model on `device` with the head the data calls for, and
    /// resolves the recipe: every check that can fail before training happens here.
    pub fn prepare(&self, device: Device) -> Result<Prepared> {
        self.training.validate()?;
        let (train, dev) = self.data.load()?;
        let test = self.data.load_test(&train)?;
        let spec = HeadSpec { task: train.task.clone(), pooling: self.pooling, options: self.head.clone() };
        let mut model = Model::load(&self.model, Some(spec), device)?;
        self.check_max_length(&model)?;
        model.set_max_length(self.training.max_length)?;
        let (steps_per_epoch, total) = self.training.run_length(train.len());
        let table = self.recipe.group_table(&model)?;
        let mut resolved = self.recipe.resolve(&table, total, &train.task)?;
        resolved.warnings.extend(self.pooling_warning());
        resolved.warnings.extend(skipped_rows([Some(&train), Some(&dev), test.as_ref()]));
        Ok(Prepared { model, train, dev, test, table, resolved, steps_per_epoch })
    }

    /// Re-initialising the pooler when the head does not read it trains a layer for nothing.
    fn pooling_warning(&self) -> Option<String> {
        if self.recipe.mixout.is_some() && self.head.samples.is_some_and(|k| k > 1) {
            return Some("recipe.mixout turns dropout off, so head.samples (multi-sample dropout) draws the same pass each time: keep one of the two".into());
        }
        let reinit_pooler = self.recipe.reinit.as_ref().is_some_and(|r| r.pooler);
        (reinit_pooler && self.pooling != Pooling::Pooler).then(|| {
            format!(
                "reinit.pooler is true, but the head reads the {:?} pooling, not the pooler: the re-initialised pooler is trained and never used (set reinit.pooler to false, or pooling to \"pooler\")",
                self.pooling
            )
            .replace("Cls", "`cls`")
            .replace("Mean", "`mean`")
        })
    }

    fn check_max_length(&self, model: &Model) -> Result<()> {
        let limit = model.encoder.max_positions();
        if self.training.max_length > limit {
            return Err(Error::Invalid(format!(
                "training.max_length is {}, but {} embeds at most {limit} positions: set max_length to {limit} or less",
                self.training.max_length,
                self.model.display()
            )));
        }
        Ok(())
    }

    /// What the run would do, without training: the parameter groups and every group's LR at
    /// every step. It makes every check [`RunSpec::prepare`] makes; the model it reads is kept
    /// for the next plans of this thread (see [`planning_model`]), so that re-planning in a
    /// notebook session does not load the same weights again.
    pub fn plan(&self) -> Result<Plan> {
        self.training.validate()?;
        let (train, dev) = self.data.load()?;
        let test = self.data.load_test(&train)?;
        let head = HeadSpec { task: train.task.clone(), pooling: self.pooling, options: self.head.clone() };
        planning_model(&self.model, head, |model| {
            self.check_max_length(model)?;
            let (_, total) = self.training.run_length(train.len());
            let table = self.recipe.group_table(model)?;
            let mut resolved = self.recipe.resolve(&table, total, &train.task)?;
            resolved.warnings.extend(self.pooling_warning());
            resolved.warnings.extend(skipped_rows([Some(&train), Some(&dev), test.as_ref()]));
            let notes = self.recipe.notes(&resolved);
            Ok(Plan {
                name: self.training.name.clone(),
                lrs: resolved.lr_table(),
                warnings: resolved.warnings,
                table,
                total_steps: resolved.total_steps,
                train_examples: train.len(),
                estimate: None,
                metric: resolved.select_by.name().to_string(),
                notes,
            })
        })
    }
}

/// What reading the data set aside: `data.skip_invalid`'s count, and rows whose text runs over
/// several lines, one warning per file (a dev set cut from the training file counts with it).
fn skipped_rows<'a>(sets: impl IntoIterator<Item = Option<&'a Dataset>>) -> Vec<String> {
    let mut warnings = Vec::new();
    for d in sets.into_iter().flatten() {
        if d.skipped > 0 {
            warnings.push(format!("data.skip_invalid: {} invalid row(s) of {} skipped", d.skipped, d.path.display()));
        }
        if let Some(first) = d.multiline.first() {
            warnings.push(format!(
                "{}: {} row(s) hold a line break in their text (the first at line {first}): a quoted field over several lines, or an unclosed quote that joined rows",
                d.path.display(),
                d.multiline.len()
            ));
        }
    }
    warnings
}

/// Calls `f` with the model of folder `dir` under `head`, on the CPU, for planning only (its
/// weights are never trained). The last two models planned on this thread are kept, keyed by
/// the folder, the modification times of its files and the head: an edited folder is read anew.
pub fn planning_model<T>(dir: &Path, head: HeadSpec, f: impl FnOnce(&Model) -> Result<T>) -> Result<T> {
    type Key = (PathBuf, Vec<Option<std::time::SystemTime>>, String);
    thread_local! {
        static MODELS: std::cell::RefCell<Vec<(Key, std::rc::Rc<Model>)>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let stamp = |name: &str| std::fs::metadata(dir.join(name)).and_then(|m| m.modified()).ok();
    let key: Key = (
        dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()),
        ["config.json", "model.safetensors", "tokenizer.json", "tunelab.json"].map(stamp).to_vec(),
        format!("{head:?}"),
    );
    let cached = MODELS.with_borrow(|models| models.iter().find(|(k, _)| *k == key).map(|(_, m)| m.clone()));
    let model = match cached {
        Some(m) => m,
        None => {
            let m = std::rc::Rc::new(Model::load(dir, Some(head), Device::Cpu)?);
            MODELS.with_borrow_mut(|models| {
                models.insert(0, (key, m.clone()));
                models.truncate(2);
            });
            m
        }
    };
    f(&model)
}

/// What a run would do, computed before it trains.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The run's name (`training.name`).
    pub name: String,
    pub table: GroupTable,
    pub lrs: LrTable,
    pub total_steps: usize,
    pub train_examples: usize,
    pub warnings: Vec<String>,
    /// How long it would take, from a few timed steps (`tunelab plan --estimate`).
    pub estimate: Option<Estimate>,
    /// The metric that would select the best weights.
    pub metric: String,
    /// The recipe's techniques beyond the LR table, in words (the loss, frozen blocks...).
    pub notes: Vec<String>,
}

/// A run's time, estimated from a few timed optimizer steps and one timed evaluation on the
/// machine at hand (model loading and saving aside).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub step_seconds: f64,
    pub eval_seconds: f64,
    pub steps: usize,
    /// Evaluations over the run (those of the SWA weights included).
    pub evaluations: usize,
    /// Runs of this plan: folds × seeds (1 for one run).
    pub runs: usize,
}

impl Estimate {
    /// Seconds for one run.
    pub fn run_seconds(&self) -> f64 {
        self.step_seconds * self.steps as f64 + self.eval_seconds * self.evaluations as f64
    }
    /// Seconds for all the runs of the plan.
    pub fn total_seconds(&self) -> f64 {
        self.run_seconds() * self.runs as f64
    }
}

impl std::fmt::Display for Estimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::human::{duration, seconds};
        write!(
            f,
            "estimated time: {} a run ({} per optimizer step × {}, {} per evaluation × {})",
            duration(self.run_seconds()),
            seconds(self.step_seconds),
            self.steps,
            seconds(self.eval_seconds),
            self.evaluations
        )?;
        if self.runs > 1 {
            write!(f, "; {} for its {} runs", duration(self.total_seconds()), self.runs)?;
        }
        Ok(())
    }
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "run `{}`: {} training examples, {} optimizer steps", self.name, self.train_examples, self.total_steps)?;
        if let Some(e) = &self.estimate {
            writeln!(f, "{e}")?;
        }
        for n in &self.notes {
            writeln!(f, "{n}")?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        write!(f, "{:#}", self.table)?;
        write!(f, "{}", self.lrs)
    }
}

impl DataSpec {
    /// A regression or classification data set from two files and the names of the text and
    /// label columns (every other setting at its default).
    pub fn new(train: impl Into<PathBuf>, dev: impl Into<PathBuf>, text: &str, label: &str, kind: TaskKind) -> Self {
        DataSpec {
            train: train.into(),
            dev: Some(dev.into()),
            cv: None,
            test: None,
            test_limit: None,
            columns: Columns::new(text, label),
            kind,
            skip_invalid: false,
            train_limit: None,
            dev_limit: None,
            subset: Subset::default(),
        }
    }
}

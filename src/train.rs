//! The training loop: a recipe applied step by step, frequent evaluation, checkpoints, resume.
//!
//! The order of a run is fixed and documented here, so that a recipe means one thing:
//!
//! 1. the datasets are tokenised once; the run length is `epochs × ⌈batches / grad_accum⌉`
//!    optimizer steps, capped by `max_steps`;
//! 2. the recipe is validated against that length and the model; the parameter-group table and
//!    every group's LR schedule are computed (nothing trains if a parameter is in no group);
//! 3. a fresh run draws the head from the seed, then re-initialises the recipe's top layers
//!    (a resumed run loads all of that from its checkpoint instead);
//! 4. each optimizer step: dropout is seeded from `(seed, step)`; the step's micro-batches run
//!    forward and backward (the loss divided by their number); a non-finite loss stops the run;
//!    gradients are clipped; every group's LR is set from its schedule; AdamW updates;
//! 5. after the step: the log line; the SWA/EMA average is updated from its start; the dev set is
//!    evaluated every `eval.every` steps, at epoch ends and at the end (the averaged weights too
//!    once they exist); the best weights by the chosen metric are saved to `best/`, and the
//!    resumable checkpoint `last/` is written at every evaluation.
//!
//! The data order depends only on `(seed, epoch)` and dropout only on `(seed, step)`, so a run
//! resumed from `last/` continues bit for bit as if it had never stopped (same thread count).
//!
//! A run directory holds `recipe.json` (the whole [`RunSpec`], every default spelled out),
//! `log.jsonl` (one line per optimizer step), `eval.jsonl` (one line per evaluation),
//! `metrics.json` (final, best and SWA metrics, steps, wall time, samples per second), `best/`
//! and `swa/` (models in Hugging Face layout) and `last/` (model, optimizer, step and SWA state).
//! Every file and folder is written under a temporary name and renamed into place.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::data::{Columns, Dataset, Encoded, ReadOptions, TaskKind};
use crate::error::{Error, Result};
use crate::groups::GroupTable;
use crate::metrics::{self, Metrics};
use crate::model::{HeadSpec, Model, Pooling, Task, atomic_write, read_safetensors, write_safetensors};
use crate::optim::AdamW;
use crate::recipe::{Metric, Recipe};
use crate::schedule::Schedule;
use crate::techniques::WeightAverage;

/// How a run is carried out (as opposed to what it does, the [`Recipe`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
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
    /// Stop after this many optimizer steps without finishing the run; `tunelab resume` or
    /// [`TrainConfig::resume`] continues it.
    pub stop_after: Option<usize>,
    /// Continue the run whose directory this is, from its `last/` checkpoint.
    pub resume: Option<PathBuf>,
    /// The run directory (default `runs/<name>-<timestamp>`, under `$TUNELAB_RUNS` when set).
    pub out_dir: Option<PathBuf>,
    pub name: String,
    /// No progress bar.
    pub quiet: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
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
            stop_after: None,
            resume: None,
            out_dir: None,
            name: "run".into(),
            quiet: false,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        let positive = [("epochs", self.epochs), ("batch_size", self.batch_size), ("eval_batch_size", self.eval_batch_size), ("grad_accum", self.grad_accum)];
        for (name, v) in positive {
            if v == 0 {
                return Err(Error::Invalid(format!("{name} must be at least 1")));
            }
        }
        if self.max_steps == Some(0) {
            return Err(Error::Invalid("max_steps must be at least 1".into()));
        }
        if let Some(c) = self.clip_grad_norm
            && !(c > 0.0 && c.is_finite())
        {
            return Err(Error::Invalid(format!("clip_grad_norm must be above 0, got {c}")));
        }
        Ok(())
    }
}

/// Where the data is and how to read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    pub train: PathBuf,
    pub dev: PathBuf,
    pub columns: Columns,
    pub kind: TaskKind,
    #[serde(default)]
    pub skip_invalid: bool,
    /// Use only the first rows of the training file (quick runs).
    #[serde(default)]
    pub train_limit: Option<usize>,
    #[serde(default)]
    pub dev_limit: Option<usize>,
}

impl DataSpec {
    /// Reads and checks both files; the dev file is checked against the training classes.
    pub fn load(&self) -> Result<(Dataset, Dataset)> {
        let options = |limit| ReadOptions { columns: self.columns.clone(), kind: self.kind, skip_invalid: self.skip_invalid, limit };
        let train = Dataset::read(&self.train, &options(self.train_limit), None)?;
        let classes = match &train.task {
            Task::Classification { labels } => Some(labels.clone()),
            Task::Regression => None,
        };
        let dev = Dataset::read(&self.dev, &options(self.dev_limit), classes.as_deref())?;
        Ok((train, dev))
    }
}

/// Everything a run needs: what `recipe.json` holds and what `tunelab resume` reads back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// The pre-trained model folder.
    pub model: PathBuf,
    #[serde(default)]
    pub pooling: Pooling,
    pub data: DataSpec,
    #[serde(default)]
    pub recipe: Recipe,
    #[serde(default)]
    pub training: TrainConfig,
}

impl RunSpec {
    /// Loads the model and the data and trains.
    pub fn run(&self) -> Result<Run> {
        let (train_set, dev_set) = self.data.load()?;
        let spec = HeadSpec { task: train_set.task.clone(), pooling: self.pooling };
        let mut model = Model::load(&self.model, Some(spec), Device::cuda_if_available())?;
        train(&mut model, self, &train_set, &dev_set)
    }

    /// Builds the model and the recipe without training: the parameter-group table and the
    /// LR of every group at every step of the run these settings give.
    pub fn plan(&self) -> Result<Plan> {
        let (train_set, _) = self.data.load()?;
        let spec = HeadSpec { task: train_set.task.clone(), pooling: self.pooling };
        let model = Model::load(&self.model, Some(spec), Device::Cpu)?;
        self.training.validate()?;
        let (_, total) = run_length(train_set.len(), &self.training);
        let table = self.recipe.group_table(&model)?;
        let lrs = self.recipe.lr_table(&table, total)?;
        Ok(Plan { table, lrs, total_steps: total, train_examples: train_set.len() })
    }

    /// Reads a run's `recipe.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let de = &mut serde_json::Deserializer::from_str(&text);
        serde_path_to_error::deserialize(de).map_err(|e| Error::Json { path: path.into(), what: format!("field `{}`: {}", e.path(), e.inner()) })
    }
}

/// What a run would do, computed before it trains.
#[derive(Debug, Clone)]
pub struct Plan {
    pub table: GroupTable,
    pub lrs: crate::recipe::LrTable,
    pub total_steps: usize,
    pub train_examples: usize,
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} training examples, {} optimizer steps", self.train_examples, self.total_steps)?;
        write!(f, "{:#}", self.table)?;
        write!(f, "{}", self.lrs)
    }
}

/// Optimizer steps per epoch and in the whole run, for `examples` training examples.
pub fn run_length(examples: usize, config: &TrainConfig) -> (usize, usize) {
    let micro_per_epoch = examples.div_ceil(config.batch_size);
    let steps_per_epoch = micro_per_epoch.div_ceil(config.grad_accum);
    let total = (config.epochs * steps_per_epoch).min(config.max_steps.unwrap_or(usize::MAX));
    (steps_per_epoch, total)
}

/// One line of `log.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLog {
    pub step: usize,
    pub epoch: usize,
    pub loss: f64,
    /// The LR of every group for this step, by group name.
    pub lr: indexmap::IndexMap<String, f64>,
}

/// One line of `eval.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// The optimizer steps done when evaluating.
    pub step: usize,
    pub epoch: usize,
    /// `model` (the trained weights) or `swa` (the averaged ones).
    pub weights: String,
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
    pub finished: bool,
    pub train_examples: usize,
    pub dev_examples: usize,
    pub wall_seconds: f64,
    /// Training examples per second of training time (evaluation and saving excluded).
    pub train_samples_per_second: f64,
    /// Real (non-padding) training tokens per second of training time.
    pub train_tokens_per_second: f64,
    /// Time spent computing and setting every group's LR, in all (this process).
    pub lr_seconds: f64,
    /// Time spent updating the SWA/EMA average, in all (this process).
    pub swa_seconds: f64,
    /// Training time of the steps run by this process.
    pub step_seconds: f64,
    pub device: String,
}

/// What [`train`] returns.
#[derive(Debug, Clone)]
pub struct Run {
    pub dir: PathBuf,
    pub metrics: RunMetrics,
    pub log: Vec<StepLog>,
    pub evals: Vec<EvalRecord>,
}

/// The state `last/` holds besides the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ResumeState {
    /// The next optimizer step to run.
    step: usize,
    total_steps: usize,
    /// AdamW's step count per parameter.
    adam_steps: BTreeMap<String, i64>,
    best: Option<Best>,
    swa_averaged: u64,
    train_seconds: f64,
    samples: usize,
    #[serde(default)]
    tokens: usize,
}

/// Evaluates a model on an encoded dataset (no dropout, no gradients).
pub fn evaluate(model: &Model, data: &Encoded, batch_size: usize) -> Metrics {
    let device = model.encoder.vs.device();
    let mut outputs = Vec::new();
    tch::no_grad(|| {
        for indices in data.sequential(batch_size) {
            let (batch, _) = data.batch(&indices, device);
            outputs.push(model.forward(&batch, false).to_kind(Kind::Double).to_device(Device::Cpu));
        }
    });
    let out = Tensor::cat(&outputs, 0);
    match &model.head.spec.task {
        Task::Regression => {
            let predictions: Vec<f64> = Vec::try_from(&out.squeeze_dim(-1)).expect("float predictions");
            metrics::regression(&predictions, &data.labels)
        }
        Task::Classification { labels } => {
            let truth: Vec<i64> = data.labels.iter().map(|&l| l as i64).collect();
            let loss = out.cross_entropy_for_logits(&Tensor::from_slice(&truth)).double_value(&[]);
            let predicted: Vec<i64> = Vec::try_from(&out.argmax(-1, false)).expect("class indices");
            let p: Vec<usize> = predicted.iter().map(|&c| c as usize).collect();
            let t: Vec<usize> = truth.iter().map(|&c| c as usize).collect();
            let mut m = metrics::classification(&p, &t, labels.len());
            m.insert("loss".into(), loss);
            m
        }
    }
}

/// The metric that selects the best weights for a task.
fn selection(recipe: &Recipe, task: &Task) -> Metric {
    recipe.evaluation.select_by.unwrap_or(match task {
        Task::Regression => Metric::Rmse,
        Task::Classification { .. } => Metric::Accuracy,
    })
}

fn improves(metric: Metric, value: f64, best: Option<&Best>) -> bool {
    match best {
        None => value.is_finite(),
        Some(b) if metric.higher_is_better() => value > b.value,
        Some(b) => value < b.value,
    }
}

/// `torch.nn.utils.clip_grad_norm_`: scales every gradient by `max / (norm + 1e-6)` when the
/// global L2 norm is above `max`. Returns the norm before clipping.
pub fn clip_grad_norm(params: &[Tensor], max: f64) -> f64 {
    let grads: Vec<Tensor> = params.iter().map(Tensor::grad).filter(Tensor::defined).collect();
    if grads.is_empty() {
        return 0.0;
    }
    let norms: Vec<Tensor> = grads.iter().map(|g| g.norm()).collect();
    let total = Tensor::stack(&norms, 0).norm();
    let coef = (max / (total.double_value(&[]) + 1e-6)).min(1.0);
    tch::no_grad(|| {
        for g in &grads {
            let _ = g.shallow_clone().g_mul_scalar_(coef);
        }
    });
    total.double_value(&[])
}

/// Writes a folder under a temporary name, then swaps it into place (the previous version
/// stays intact until the new one is complete).
fn atomic_dir(dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = crate::model::tmp_path(dir);
    let old = dir.with_file_name(format!(".{}.old", dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    fill(&tmp)?;
    let _ = std::fs::remove_dir_all(&old);
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(|e| Error::io(dir, e))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Invalid(e.to_string()))?;
    atomic_write(path, format!("{text}\n").as_bytes())
}

fn append_line(path: &Path, value: &impl Serialize) -> Result<()> {
    let line = serde_json::to_string(value).map_err(|e| Error::Invalid(e.to_string()))?;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| Error::io(path, e))?;
    writeln!(f, "{line}").map_err(|e| Error::io(path, e))
}

/// Reads a JSON-lines file written by a run, keeping the lines of steps before `before`.
fn read_lines<T: for<'de> Deserialize<'de>>(path: &Path, keep: impl Fn(&T) -> bool) -> Result<Vec<T>> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(Vec::new()) };
    text.lines()
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| Error::Data { path: path.into(), line: Some(i + 1), what: e.to_string() }))
        .filter(|r: &Result<T>| r.as_ref().map_or(true, &keep))
        .collect()
}

/// Trains `model` with the spec's recipe and training settings on already-read datasets.
pub fn train(model: &mut Model, spec: &RunSpec, train_set: &Dataset, dev_set: &Dataset) -> Result<Run> {
    let started = Instant::now();
    let config = &spec.training;
    let recipe = &spec.recipe;
    config.validate()?;
    if let Some(n) = config.threads {
        tch::set_num_threads(n as i32);
    }
    if model.head.spec.task != train_set.task {
        return Err(Error::Invalid(format!(
            "the model's head predicts {:?} but {} holds {:?}",
            model.head.spec.task,
            train_set.path.display(),
            train_set.task
        )));
    }
    let tokenizer = model
        .encoder
        .tokenizer
        .as_mut()
        .ok_or_else(|| Error::Invalid("the model has no tokenizer.json".into()))?;
    tokenizer.set_max_length(config.max_length)?;
    let tokenizer = tokenizer.clone();
    let train_data = train_set.encode(&tokenizer)?;
    let dev_data = dev_set.encode(&tokenizer)?;

    // 1-2: the run length, the groups and the schedules.
    let (steps_per_epoch, total) = run_length(train_data.len(), config);
    let layers = model.encoder.config.num_hidden_layers;
    recipe.validate(total, layers)?;
    let table: GroupTable = recipe.group_table(model)?;
    let schedules: Vec<Schedule> = recipe.group_schedules(&table, total)?;
    let vars = model.variables();
    let mut optimizer = AdamW::new(&table, &vars, recipe.adamw)?;
    let params: Vec<(String, Tensor)> = table.rows.iter().map(|r| (r.name.clone(), vars[&r.name].shallow_clone())).collect();
    let param_tensors: Vec<Tensor> = params.iter().map(|(_, t)| t.shallow_clone()).collect();
    let swa_start = recipe.swa.as_ref().map(|s| s.validate(total)).transpose()?;
    let metric = selection(recipe, &train_set.task);

    // The run directory.
    let dir = match (&config.resume, &config.out_dir) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) => d.clone(),
        (None, None) => fresh_run_dir(&config.name),
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let (log_path, eval_path) = (dir.join("log.jsonl"), dir.join("eval.jsonl"));

    // 3: a fresh start, or the state of `last/`.
    let mut average: Option<WeightAverage> = None;
    let (mut step, mut best, mut train_seconds, mut samples, mut tokens, mut log, mut evals);
    let (mut lr_seconds, mut swa_seconds, mut step_seconds) = (0.0, 0.0, 0.0);
    if config.resume.is_some() {
        let last = dir.join("last");
        let state_path = last.join("state.json");
        let text = std::fs::read_to_string(&state_path).map_err(|e| Error::io(&state_path, e))?;
        let state: ResumeState = serde_json::from_str(&text).map_err(|e| Error::Json { path: state_path.clone(), what: e.to_string() })?;
        if state.total_steps != total {
            return Err(Error::Invalid(format!(
                "{}: the run was laid out over {} steps, but these settings give {total}",
                state_path.display(),
                state.total_steps
            )));
        }
        model.load_weights(&last.join("model"))?;
        let moments = read_safetensors(&last.join("optimizer.safetensors"))?;
        tch::no_grad(|| {
            for p in &mut optimizer.params {
                p.exp_avg.copy_(&moments[&format!("exp_avg.{}", p.name)]);
                p.exp_avg_sq.copy_(&moments[&format!("exp_avg_sq.{}", p.name)]);
                p.step = state.adam_steps.get(&p.name).copied().unwrap_or(0);
            }
        });
        if state.swa_averaged > 0
            && let Some(swa) = &recipe.swa
        {
            let saved = read_safetensors(&last.join("swa.safetensors"))?;
            let mut avg = WeightAverage::new(swa.averaging, &params);
            tch::no_grad(|| {
                for (name, t) in &mut avg.tensors {
                    t.copy_(&saved[name.as_str()]);
                }
            });
            avg.n_averaged = state.swa_averaged;
            average = Some(avg);
        }
        step = state.step;
        best = state.best;
        train_seconds = state.train_seconds;
        samples = state.samples;
        tokens = state.tokens;
        log = read_lines::<StepLog>(&log_path, |l| l.step < step)?;
        evals = read_lines::<EvalRecord>(&eval_path, |e| e.step <= step)?;
        rewrite_lines(&log_path, &log)?;
        rewrite_lines(&eval_path, &evals)?;
    } else {
        model.init_head(config.seed);
        if let Some(reinit) = &recipe.reinit {
            reinit.apply(model)?;
        }
        write_json(&dir.join("recipe.json"), spec)?;
        for p in [&log_path, &eval_path] {
            let _ = std::fs::remove_file(p);
        }
        step = 0;
        best = None;
        train_seconds = 0.0;
        samples = 0;
        tokens = 0;
        log = Vec::new();
        evals = Vec::new();
    }

    let stop = total.min(config.stop_after.unwrap_or(usize::MAX));
    let bar = progress_bar(config.quiet, total, step);
    let mut plan: Option<(usize, Vec<Vec<usize>>)> = None;
    let device = model.encoder.vs.device();

    // 4-5: the steps.
    while step < stop {
        let tick = Instant::now();
        let epoch = step / steps_per_epoch;
        let position = step % steps_per_epoch;
        if plan.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let batches = if config.shuffle {
                train_data.plan(config.batch_size, config.seed, epoch, config.bucket)
            } else {
                train_data.sequential(config.batch_size)
            };
            plan = Some((epoch, batches));
        }
        let batches = &plan.as_ref().expect("plan was just made").1;
        let micro = &batches[position * config.grad_accum..((position + 1) * config.grad_accum).min(batches.len())];
        tch::manual_seed((config.seed as i64).wrapping_mul(1_000_003).wrapping_add(step as i64));
        optimizer.zero_grad();
        let mut loss_sum = 0.0;
        for indices in micro {
            let (batch, targets) = train_data.batch(indices, device);
            let loss = model.head.loss(&model.forward(&batch, true), &targets);
            let value = loss.double_value(&[]);
            if !value.is_finite() {
                bar.abandon();
                return Err(Error::NonFiniteLoss { step, value });
            }
            loss_sum += value;
            (loss / micro.len() as f64).backward();
            samples += indices.len();
            tokens += batch.tokens() as usize;
        }
        if let Some(max) = config.clip_grad_norm {
            clip_grad_norm(&param_tensors, max);
        }
        let lr_tick = Instant::now();
        let lrs: Vec<f64> = table.groups.iter().zip(&schedules).map(|(g, s)| g.lr * s.factor(step)).collect();
        optimizer.set_lrs(&lrs);
        lr_seconds += lr_tick.elapsed().as_secs_f64();
        optimizer.step();
        let entry = StepLog {
            step,
            epoch,
            loss: loss_sum / micro.len() as f64,
            lr: table.groups.iter().map(|g| g.name.clone()).zip(lrs.iter().copied()).collect(),
        };
        append_line(&log_path, &entry)?;
        let last_eval = evals.iter().rev().find(|e| e.weights == "model").and_then(|e| e.metrics.get(metrics::name(metric)));
        let last_eval = last_eval.map(|v| format!(" dev {} {v:.4}", metrics::name(metric))).unwrap_or_default();
        bar.set_message(format!("loss {:.4} head lr {:.2e}{last_eval}", entry.loss, lrs.last().copied().unwrap_or(0.0)));
        log.push(entry);

        if let (Some(swa), Some(start)) = (&recipe.swa, swa_start)
            && swa.updates_at(step, start)
        {
            let swa_tick = Instant::now();
            average.get_or_insert_with(|| WeightAverage::new(swa.averaging, &params)).update(&params);
            swa_seconds += swa_tick.elapsed().as_secs_f64();
        }
        step += 1;
        train_seconds += tick.elapsed().as_secs_f64();
        step_seconds += tick.elapsed().as_secs_f64();
        bar.set_position(step as u64);

        let epoch_end = position + 1 == steps_per_epoch;
        let due = recipe.evaluation.every.is_some_and(|n| step % n == 0) || (recipe.evaluation.epoch_end && epoch_end) || step == total || step == stop;
        if due {
            let m = evaluate(model, &dev_data, config.eval_batch_size);
            let value = m.get(metrics::name(metric)).copied().unwrap_or(f64::NAN);
            let record = EvalRecord { step, epoch, weights: "model".into(), metrics: m.clone() };
            append_line(&eval_path, &record)?;
            bar.println(format!("step {step}: dev {} {value:.4}", metrics::name(metric)));
            evals.push(record);
            if improves(metric, value, best.as_ref()) {
                best = Some(Best { metric: metrics::name(metric).into(), value, step, metrics: m });
                atomic_dir(&dir.join("best"), |d| model.save(d))?;
            }
            if let Some(avg) = average.as_mut() {
                avg.swap(&vars);
                let m = evaluate(model, &dev_data, config.eval_batch_size);
                avg.swap(&vars);
                let record = EvalRecord { step, epoch, weights: "swa".into(), metrics: m };
                append_line(&eval_path, &record)?;
                evals.push(record);
            }
            let state = ResumeState {
                step,
                total_steps: total,
                adam_steps: optimizer.params.iter().map(|p| (p.name.clone(), p.step)).collect(),
                best: best.clone(),
                swa_averaged: average.as_ref().map_or(0, |a| a.n_averaged),
                train_seconds,
                samples,
                tokens,
            };
            save_last(&dir.join("last"), model, &optimizer, average.as_ref(), &state)?;
        }
    }
    bar.finish_and_clear();

    let finished = step == total;
    let last_metrics = evals.iter().rev().find(|e| e.weights == "model" && e.step == step).map(|e| e.metrics.clone());
    let swa_metrics = evals.iter().rev().find(|e| e.weights == "swa" && e.step == step).map(|e| e.metrics.clone());
    if finished && let Some(avg) = average.as_mut() {
        avg.swap(&vars);
        let saved = atomic_dir(&dir.join("swa"), |d| model.save(d));
        avg.swap(&vars);
        saved?;
    }
    let metrics = RunMetrics {
        last: last_metrics,
        best: best.clone(),
        swa: swa_metrics,
        steps: step,
        total_steps: total,
        finished,
        train_examples: train_data.len(),
        dev_examples: dev_data.len(),
        wall_seconds: started.elapsed().as_secs_f64(),
        train_samples_per_second: if train_seconds > 0.0 { samples as f64 / train_seconds } else { 0.0 },
        train_tokens_per_second: if train_seconds > 0.0 { tokens as f64 / train_seconds } else { 0.0 },
        lr_seconds,
        swa_seconds,
        step_seconds,
        device: format!("{device:?}"),
    };
    write_json(&dir.join("metrics.json"), &metrics)?;
    Ok(Run { dir, metrics, log, evals })
}

/// `runs/<name>-<timestamp>` (under `$TUNELAB_RUNS` when set), with `-2`, `-3`... when two runs
/// start in the same second.
fn fresh_run_dir(name: &str) -> PathBuf {
    let root = std::env::var_os("TUNELAB_RUNS").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("runs"));
    let base = format!("{name}-{}", chrono::Local::now().format("%Y%m%d-%H%M%S"));
    let mut dir = root.join(&base);
    let mut n = 2;
    while dir.exists() {
        dir = root.join(format!("{base}-{n}"));
        n += 1;
    }
    dir
}

fn rewrite_lines<T: Serialize>(path: &Path, lines: &[T]) -> Result<()> {
    let mut text = String::new();
    for l in lines {
        text.push_str(&serde_json::to_string(l).map_err(|e| Error::Invalid(e.to_string()))?);
        text.push('\n');
    }
    atomic_write(path, text.as_bytes())
}

fn save_last(dir: &Path, model: &Model, optimizer: &AdamW, average: Option<&WeightAverage>, state: &ResumeState) -> Result<()> {
    atomic_dir(dir, |d| {
        model.save(d.join("model"))?;
        let mut moments = Vec::with_capacity(2 * optimizer.params.len());
        for p in &optimizer.params {
            moments.push((format!("exp_avg.{}", p.name), p.exp_avg.shallow_clone()));
            moments.push((format!("exp_avg_sq.{}", p.name), p.exp_avg_sq.shallow_clone()));
        }
        write_safetensors(&d.join("optimizer.safetensors"), &moments)?;
        if let Some(avg) = average {
            write_safetensors(&d.join("swa.safetensors"), &avg.tensors)?;
        }
        write_json(&d.join("state.json"), state)
    })
}

fn progress_bar(quiet: bool, total: usize, at: usize) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} steps {per_sec} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_position(at as u64);
    bar
}

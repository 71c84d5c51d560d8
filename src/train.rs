//! The training loop: a resolved recipe applied step by step, with frequent evaluation.
//!
//! The loop only trains and evaluates; it reports what happens to [`Observer`]s (the run-folder
//! writer, the progress bar, TensorBoard...), which do the writing and the drawing. Its order is
//! fixed, so that a recipe means one thing:
//!
//! 1. before the loop ([`crate::spec::RunSpec::prepare`]): the datasets are read and tokenised;
//!    the run length is `epochs × ⌈batches / grad_accum⌉` optimizer steps, capped by
//!    `max_steps`; the recipe is resolved against it and the model's parameter-group table
//!    (nothing trains if a variable is in no group);
//! 2. a fresh run draws the head from the seed, then re-initialises the recipe's top layers; a
//!    resumed run loads all of that from its checkpoint instead;
//! 3. each optimizer step: dropout is seeded from `(seed, step)`; the step's micro-batches run
//!    forward and backward (the loss divided by their number); a non-finite loss stops the run;
//!    gradients are clipped; every group's LR is set from its schedule; AdamW updates;
//! 4. after the step: the step is reported; the SWA/EMA average is updated from its start; the
//!    dev set is evaluated every `evaluation.every` steps, at epoch ends and at the end (the
//!    averaged weights too once they exist); an improvement of the selection metric is reported
//!    with the model (to be saved as `best/`), then a checkpoint; a dev loss that is not finite
//!    or more than [`DIVERGED`] times a constant prediction's stops the run; so does early
//!    stopping, after `evaluation.patience` evaluations without an improvement above `min_delta`
//!    (the run then counts as finished, its averaged weights saved);
//! 5. stopping early (`stop_at` below the run length) reports a checkpoint without evaluating;
//!    at the end of the run the averaged weights are reported once more (to be saved as `swa/`).
//!
//! The data order depends only on `(seed, epoch)` and dropout only on `(seed, step)`, so a run
//! resumed from a checkpoint continues bit for bit as if it had never stopped (same thread count).
use std::collections::HashMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::data::Encoded;
use crate::error::{Error, Result};
use crate::metrics::{self, Metric, Metrics};
use crate::tokenizer::Batch;
use crate::model::{Model, Task};
use crate::optim::AdamW;
use crate::recipe::{Eval, Recipe, Resolved};
use crate::run_dir::{Best, EvalRecord, StepLog, Throughput, Weights};
use crate::precision::{LossScaler, Precision, autocast};
use crate::spec::TrainConfig;
use crate::techniques::{Swa, WeightAverage};

/// A dev loss above this many times a constant prediction's means the run diverged.
pub const DIVERGED: f64 = 100.0;

/// Receives what the loop does. Every method has a default that ignores the event.
pub trait Observer {
    /// The loop is about to run from `state.step`.
    fn started(&mut self, _resolved: &Resolved, _state: &TrainState) -> Result<()> {
        Ok(())
    }
    /// An optimizer step was taken.
    fn step(&mut self, _log: &StepLog) -> Result<()> {
        Ok(())
    }
    /// The dev set was scored.
    fn evaluated(&mut self, _record: &EvalRecord) -> Result<()> {
        Ok(())
    }
    /// The trained weights are the best so far.
    fn improved(&mut self, _best: &Best, _model: &Model) -> Result<()> {
        Ok(())
    }
    /// A resumable state: after every evaluation, and when stopping early.
    fn checkpoint(&mut self, _checkpoint: &Checkpoint<'_>) -> Result<()> {
        Ok(())
    }
    /// The run is complete and `model` holds the averaged weights (only if the recipe averages).
    fn averaged(&mut self, _model: &Model) -> Result<()> {
        Ok(())
    }
}

/// What a checkpoint holds, lent to the observers.
pub struct Checkpoint<'a> {
    pub model: &'a Model,
    pub optimizer: &'a AdamW,
    pub average: Option<&'a WeightAverage>,
    pub state: &'a TrainState,
}

/// What changes as the run goes, and what a checkpoint restores besides the tensors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// The next optimizer step to run.
    pub step: usize,
    pub best: Option<Best>,
    pub throughput: Throughput,
    /// Evaluations in a row without an improvement larger than `evaluation.min_delta`.
    pub waited: usize,
    /// The step at which early stopping ended the run.
    pub stopped_early: Option<usize>,
    /// The evaluations so far (the progress bar shows the last one; metrics.json the last ones).
    #[serde(skip)]
    pub evals: Vec<EvalRecord>,
    /// fp16's loss scale and its counters (`None` in fp32 and bf16).
    #[serde(default)]
    pub scaler: Option<LossScaler>,
}

/// What the loop reads: the encoded data, the resolved recipe and the settings.
pub struct Setup {
    pub train: Encoded,
    pub dev: Encoded,
    pub resolved: Resolved,
    pub settings: TrainConfig,
    pub evaluation: Eval,
    pub swa: Option<Swa>,
    pub steps_per_epoch: usize,
    /// The training loss (`None`: the task's default).
    pub loss: Option<crate::techniques::Loss>,
    pub adversarial: Option<crate::techniques::Adversarial>,
    /// Mixout's probability.
    pub mixout: Option<f64>,
}

impl Setup {
    /// Gathers what the loop reads from a recipe and its resolution.
    pub fn new(train: Encoded, dev: Encoded, recipe: &Recipe, resolved: Resolved, settings: &TrainConfig, steps_per_epoch: usize) -> Self {
        Setup { train, dev, resolved, settings: settings.clone(), evaluation: recipe.evaluation.clone(), swa: recipe.swa.clone(), steps_per_epoch, loss: recipe.loss.clone(), adversarial: recipe.adversarial.clone(), mixout: recipe.mixout }
    }

    /// Whether the loop evaluates after `done` optimizer steps.
    pub fn evaluation_due(&self, done: usize) -> bool {
        let epoch_end = done.is_multiple_of(self.steps_per_epoch);
        self.evaluation.every.is_some_and(|n| done.is_multiple_of(n)) || (self.evaluation.epoch_end && epoch_end) || done == self.resolved.total_steps
    }
}

/// The loop's working state: the model, AdamW, the weight average and the counters.
pub struct Trainer<'m> {
    pub model: &'m mut Model,
    pub optimizer: AdamW,
    pub average: Option<WeightAverage>,
    pub state: TrainState,
    vars: HashMap<String, Tensor>,
    params: Vec<(String, Tensor)>,
    /// Each parameter's first trained step, in the order of `params` (all 0 without freezing).
    trains_from: Vec<usize>,
    /// The parameters Mixout mixes (indices into `params`).
    mixout: Vec<usize>,
    /// The dev loss of predicting the training mean (regression) or the class prior.
    trivial_loss: f64,
    /// The next step's micro-batches, already on the device (see [`Trainer::step`]).
    prefetched: Option<Prefetched>,
    /// Set from elsewhere (a notebook's stop button, SIGINT) to stop at the next step boundary
    /// with a checkpoint, as `stop_at` does.
    pub interrupt: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// The micro-batches of one optimizer step on the device: inputs, targets, samples and tokens.
struct Prefetched {
    step: usize,
    batches: Vec<(Batch, Tensor, usize, usize)>,
}

impl<'m> Trainer<'m> {
    /// A trainer at step 0 over the parameters of `table`.
    pub fn new(model: &'m mut Model, setup: &Setup, table: &crate::groups::GroupTable, recipe: &Recipe) -> Result<Self> {
        let vars = model.variables();
        let mut optimizer = AdamW::new(table, &vars, recipe.adamw)?;
        if recipe.weight_decay_towards == crate::recipe::DecayTowards::Pretrained {
            // Only what the checkpoint gave has a pre-trained value: not the head, nor the
            // re-initialised blocks (they decay towards 0).
            let fresh = match &recipe.reinit {
                Some(r) => r.blocks(table.num_layers())?,
                None => Vec::new(),
            };
            for row in table.rows.iter().filter(|r| r.weight_decay > 0.0 && r.block != crate::groups::Block::Head && !fresh.contains(&r.block)) {
                optimizer.anchor(&row.name, true)?;
            }
        }
        // Mixout mixes every dense layer's weight with its value before fine-tuning.
        let mixout: Vec<usize> = match recipe.mixout {
            Some(_) => table.rows.iter().enumerate().filter(|(_, r)| crate::techniques::mixout::mixes(r)).map(|(i, _)| i).collect(),
            None => Vec::new(),
        };
        for &i in &mixout {
            optimizer.anchor(&table.rows[i].name, false)?;
        }
        let params: Vec<(String, Tensor)> = table.rows.iter().map(|r| (r.name.clone(), vars[&r.name].shallow_clone())).collect();
        let trains_from = table.rows.iter().map(|r| crate::techniques::Freeze::trains_from(&setup.resolved.thaw, r.block)).collect();
        let average = setup.swa.as_ref().map(|s| WeightAverage::new(s.averaging, &params));
        let trivial_loss = trivial_loss(&setup.train, &setup.dev);
        let scaler = (setup.settings.precision == Precision::Fp16).then(LossScaler::default);
        Ok(Trainer { model, optimizer, average, state: TrainState { scaler, ..TrainState::default() }, vars, params, trains_from, mixout, trivial_loss, prefetched: None, interrupt: None })
    }

    /// Runs optimizer steps until `stop_at` (at most the run's length), reporting to `observers`.
    pub fn run(&mut self, setup: &Setup, stop_at: usize, observers: &mut [&mut dyn Observer]) -> Result<()> {
        let total = setup.resolved.total_steps;
        let stop_at = stop_at.min(total);
        for o in observers.iter_mut() {
            o.started(&setup.resolved, &self.state)?;
        }
        let mut epoch_plan: Option<(usize, Vec<Vec<usize>>)> = None;
        let interrupted = |t: &Self| t.interrupt.as_ref().is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst));
        while self.state.step < stop_at && self.state.stopped_early.is_none() {
            let log = self.step(setup, &mut epoch_plan)?;
            for o in observers.iter_mut() {
                o.step(&log)?;
            }
            let mut interrupt = interrupted(self) && self.state.step < total;
            if setup.evaluation_due(self.state.step) {
                self.evaluate_and_report(setup, observers)?;
                // An observer may stop the run on what this evaluation showed (a sweep's pruner):
                // it stops here, the evaluation's checkpoint being its last.
                interrupt = interrupted(self) && self.state.step < total;
            } else if self.state.step == stop_at || interrupt {
                self.report_checkpoint(observers)?;
            }
            if interrupt {
                break;
            }
        }
        if (self.state.step == total || self.state.stopped_early.is_some())
            && let Some(avg) = self.average.as_mut().filter(|a| a.n_averaged > 0)
        {
            avg.swap(&self.vars);
            let reported = observers.iter_mut().try_for_each(|o| o.averaged(self.model));
            avg.swap(&self.vars);
            reported?;
        }
        Ok(())
    }

    /// The training loss of one micro-batch: the mean over the multi-sample dropout masks (one
    /// pass without them) of the recipe's loss.
    fn loss(&self, setup: &Setup, batch: &Batch, targets: &Tensor) -> Tensor {
        // Mixout replaces dropout (Lee et al. run their mixout models with dropout 0).
        let dropout = setup.mixout.is_none();
        let masked = autocast(setup.settings.precision, || self.model.forward_samples(batch, dropout));
        let task = &self.model.head.spec.task;
        let each = |o: &Tensor| crate::techniques::Loss::compute(setup.loss.as_ref(), task, o, targets);
        match masked.as_slice() {
            [one] => each(one),
            many => Tensor::stack(&many.iter().map(each).collect::<Vec<_>>(), 0).mean(None),
        }
    }

    /// The micro-batches of optimizer step `step`, moved to the model's device.
    fn batches_for(&self, setup: &Setup, step: usize, epoch_plan: &mut Option<(usize, Vec<Vec<usize>>)>) -> Prefetched {
        let config = &setup.settings;
        let epoch = step / setup.steps_per_epoch;
        let position = step % setup.steps_per_epoch;
        if epoch_plan.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let batches = if config.shuffle {
                setup.train.plan(config.batch_size, config.seed, epoch, config.bucket)
            } else {
                setup.train.sequential(config.batch_size)
            };
            *epoch_plan = Some((epoch, batches));
        }
        let batches = &epoch_plan.as_ref().expect("the epoch's batches were just planned").1;
        let micro = &batches[position * config.grad_accum..((position + 1) * config.grad_accum).min(batches.len())];
        let device = self.model.device();
        let batches = micro
            .iter()
            .map(|indices| {
                let (batch, targets) = setup.train.batch(indices, device);
                (batch, targets, indices.len(), setup.train.tokens(indices))
            })
            .collect();
        Prefetched { step, batches }
    }

    /// One optimizer step (forward, backward, clipping, LRs, AdamW, weight average).
    ///
    /// On a GPU the host waits once inside a step: the forward and backward passes are queued,
    /// the next step's batches are built and queued for copying (from pinned memory, without
    /// blocking) while the GPU computes, and only then is the step's loss read back (fp16 adds
    /// one more wait, for the scaler's overflow check). A non-finite loss stops the run before
    /// anything is updated.
    fn step(&mut self, setup: &Setup, epoch_plan: &mut Option<(usize, Vec<Vec<usize>>)>) -> Result<StepLog> {
        let tick = Instant::now();
        let (config, step) = (&setup.settings, self.state.step);
        let epoch = step / setup.steps_per_epoch;
        let micro = match self.prefetched.take() {
            Some(next) if next.step == step => next,
            _ => self.batches_for(setup, step, epoch_plan),
        };
        tch::manual_seed((config.seed as i64).wrapping_mul(1_000_003).wrapping_add(step as i64));
        // Frozen blocks: no gradient (the backward pass skips them), so no update either.
        if !setup.resolved.thaw.is_empty() {
            for ((_, t), &from) in self.params.iter_mut().zip(&self.trains_from) {
                let _ = t.set_requires_grad(step >= from);
            }
        }
        self.optimizer.zero_grad();
        // fp16: the loss is scaled up for the backward pass; a loss that overflowed leaves
        // infinite gradients, which the scaler finds and skips the step for.
        let scale = self.state.scaler.as_ref().map_or(1.0, |s| s.scale);
        let parts = micro.batches.len() as f64;
        // Mixout: this step's mixed weights (one draw per step), dropout off.
        let mixed = setup.mixout.map(|p| {
            let params: Vec<(&Tensor, &Tensor)> = self.mixout.iter().map(|&i| {
                let t = &self.params[i];
                (&t.1, self.optimizer.anchor_of(&t.0).expect("mixout parameters are anchored"))
            }).collect();
            crate::techniques::mixout::Mixed::draw(&params, p)
        });
        let mut losses = Vec::with_capacity(micro.batches.len());
        for (batch, targets, samples, tokens) in &micro.batches {
            let loss = self.loss(setup, batch, targets);
            losses.push(loss.detach());
            (loss * (scale / parts)).backward();
            self.state.throughput.samples += samples;
            self.state.throughput.tokens += tokens;
        }
        // Adversarial training: one more pass on perturbed weights, which are then restored.
        if let Some(adversarial) = setup.adversarial.as_ref().filter(|a| step >= a.start()) {
            let perturbed = adversarial.perturb(&self.params);
            if adversarial.replaces_gradient() {
                self.optimizer.zero_grad();
            }
            for (batch, targets, ..) in &micro.batches {
                (self.loss(setup, batch, targets) * (scale / parts)).backward();
            }
            perturbed.restore();
        }
        if let Some(mixed) = mixed {
            mixed.restore();
        }
        crate::files::failpoint("step");
        // While the GPU runs the backward pass, the next step's batches go on their way; then
        // the loss is read (the one wait), before anything is updated.
        if step + 1 < setup.resolved.total_steps {
            self.prefetched = Some(self.batches_for(setup, step + 1, epoch_plan));
        }
        let values: Vec<f64> = Vec::try_from(Tensor::stack(&losses, 0).to_kind(Kind::Double).to_device(Device::Cpu))
            .map_err(|e| Error::Invalid(format!("reading the loss back: {e}")))?;
        let loss = values.iter().sum::<f64>() / parts;
        if !loss.is_finite() && self.state.scaler.is_none() {
            return Err(Error::NonFiniteLoss { step, value: loss });
        }
        let tensors: Vec<Tensor> = self.params.iter().map(|(_, t)| t.shallow_clone()).collect();
        let skipped = match self.state.scaler.as_mut() {
            Some(scaler) => {
                // An overflowing loss skips the step even if its gradients came out finite.
                let found_inf = !loss.is_finite() || scaler.unscale(&tensors);
                scaler.update(found_inf);
                found_inf
            }
            None => false,
        };
        let lr_tick = Instant::now();
        let lrs = setup.resolved.lrs(step);
        self.state.throughput.lr_seconds += lr_tick.elapsed().as_secs_f64();
        if !skipped {
            if let Some(max) = config.clip_grad_norm {
                let _ = clip_grad_norm(&self.params, max);
            }
            self.optimizer.set_lrs(&lrs);
            self.optimizer.step();
        }
        if let (Some(swa), Some(start), Some(avg)) = (&setup.swa, setup.resolved.swa_start, self.average.as_mut())
            && swa.updates_at(step, start)
        {
            let swa_tick = Instant::now();
            avg.update(&self.params);
            self.state.throughput.swa_seconds += swa_tick.elapsed().as_secs_f64();
        }
        self.state.step += 1;
        self.state.throughput.train_seconds += tick.elapsed().as_secs_f64();
        let names = setup.resolved.groups.iter().map(|g| g.name.clone());
        let loss = if loss.is_finite() { loss } else { f64::NAN };
        let loss_scale = self.state.scaler.as_ref().map(|s| s.scale);
        Ok(StepLog { step, epoch, loss, lr: names.zip(lrs).collect(), loss_scale, skipped })
    }

    /// Scores the trained (and averaged) weights, reports the scores, an improvement and a checkpoint.
    fn evaluate_and_report(&mut self, setup: &Setup, observers: &mut [&mut dyn Observer]) -> Result<()> {
        let (step, metric) = (self.state.step, setup.resolved.select_by);
        let epoch = (step - 1) / setup.steps_per_epoch;
        let precision = setup.settings.precision;
        let scores = autocast(precision, || evaluate(self.model, &setup.dev, setup.settings.eval_batch_size));
        let loss = scores.get("loss").copied().unwrap_or(f64::NAN);
        let record = EvalRecord { step, epoch, weights: Weights::Model, metrics: scores.clone() };
        self.state.evals.push(record.clone());
        for o in observers.iter_mut() {
            o.evaluated(&record)?;
        }
        if !loss.is_finite() || loss > DIVERGED * self.trivial_loss {
            return Err(Error::Diverged { step, loss, trivial: self.trivial_loss });
        }
        let value = scores.get(metric.name()).copied().unwrap_or(f64::NAN);
        let best_so_far = self.state.best.as_ref().map(|b| b.value);
        let margin = if metric.higher_is_better() { setup.evaluation.min_delta } else { -setup.evaluation.min_delta };
        if metric.improves(value, best_so_far.map(|b| b + margin)) {
            self.state.waited = 0;
        } else {
            self.state.waited += 1;
        }
        if setup.evaluation.patience.is_some_and(|p| self.state.waited >= p) && step < setup.resolved.total_steps {
            self.state.stopped_early = Some(step);
        }
        if metric.improves(value, best_so_far) {
            let best = Best { metric: metric.name().into(), value, step, metrics: scores };
            for o in observers.iter_mut() {
                o.improved(&best, self.model)?;
            }
            self.state.best = Some(best);
        }
        if let Some(avg) = self.average.as_mut().filter(|a| a.n_averaged > 0) {
            avg.swap(&self.vars);
            let scores = autocast(precision, || evaluate(self.model, &setup.dev, setup.settings.eval_batch_size));
            avg.swap(&self.vars);
            let record = EvalRecord { step, epoch, weights: Weights::Swa, metrics: scores };
            self.state.evals.push(record.clone());
            for o in observers.iter_mut() {
                o.evaluated(&record)?;
            }
        }
        self.report_checkpoint(observers)
    }

    fn report_checkpoint(&self, observers: &mut [&mut dyn Observer]) -> Result<()> {
        let average = self.average.as_ref().filter(|a| a.n_averaged > 0);
        let checkpoint = Checkpoint { model: self.model, optimizer: &self.optimizer, average, state: &self.state };
        observers.iter_mut().try_for_each(|o| o.checkpoint(&checkpoint))
    }
}

/// The loss of a constant prediction on the dev set: the training mean for regression (MSE),
/// the training class frequencies for classification (cross-entropy).
fn trivial_loss(train: &Encoded, dev: &Encoded) -> f64 {
    let n = dev.labels.len().max(1) as f64;
    if train.classification {
        let classes = train.labels.iter().chain(&dev.labels).fold(0.0f64, |m, &l| m.max(l)) as usize + 1;
        let mut freq = vec![1.0; classes]; // add-one smoothing: a dev class absent from training stays finite
        for &l in &train.labels {
            freq[l as usize] += 1.0;
        }
        let total: f64 = freq.iter().sum();
        dev.labels.iter().map(|&l| -(freq[l as usize] / total).ln()).sum::<f64>() / n
    } else {
        let mean = train.labels.iter().sum::<f64>() / train.labels.len().max(1) as f64;
        dev.labels.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / n
    }
}

/// The raw outputs of a model on an encoded dataset, in its order (no dropout, no gradients):
/// `[examples, outputs]` as f64 on the CPU. The batches group examples of similar length
/// ([`Encoded::by_length`]): far less padding than file order on short, varied sentences.
pub fn predict(model: &Model, data: &Encoded, batch_size: usize) -> Tensor {
    let device = model.device();
    let mut outputs = Vec::new();
    let batches = data.by_length(batch_size);
    tch::no_grad(|| {
        for indices in &batches {
            let (batch, _) = data.batch(indices, device);
            outputs.push(model.forward(&batch, false).to_kind(Kind::Double));
        }
    });
    // One copy back to the host, after every batch was queued.
    let sorted = Tensor::cat(&outputs, 0).to_device(Device::Cpu);
    let order: Vec<i64> = batches.iter().flatten().map(|&i| i as i64).collect();
    sorted.zeros_like().index_copy(0, &Tensor::from_slice(&order), &sorted)
}

/// Evaluates a model on an encoded dataset (no dropout, no gradients).
pub fn evaluate(model: &Model, data: &Encoded, batch_size: usize) -> Metrics {
    score(&model.head.spec.task, &predict(model, data, batch_size), &data.labels)
}

/// The metrics of a model's raw outputs (`[examples, outputs]`, see [`predict`]) against the
/// targets (class indices for classification).
///
/// Undefined values (a correlation of constant predictions, ROC-AUC with one class) are left
/// out. `prediction_std` (regression) and `predicted_classes` (classification) tell a collapsed
/// model, one that predicts a constant or a single class.
pub fn score(task: &Task, out: &Tensor, targets: &[f64]) -> Metrics {
    let mut m = score_all(task, out, targets);
    match task {
        Task::Regression => {
            let p: Vec<f64> = Vec::try_from(&out.squeeze_dim(-1)).expect("float predictions");
            let mean = p.iter().sum::<f64>() / p.len().max(1) as f64;
            let var = p.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / p.len().max(1) as f64;
            m.insert("prediction_std".into(), var.sqrt());
        }
        Task::Classification { .. } => {
            let mut predicted: Vec<i64> = Vec::try_from(&out.argmax(-1, false)).expect("class indices");
            predicted.sort_unstable();
            predicted.dedup();
            m.insert("predicted_classes".into(), predicted.len() as f64);
        }
    }
    m.retain(|_, v| v.is_finite());
    m
}

fn score_all(task: &Task, out: &Tensor, targets: &[f64]) -> Metrics {
    match task {
        Task::Regression => {
            let predictions: Vec<f64> = Vec::try_from(&out.squeeze_dim(-1)).expect("float predictions");
            metrics::regression(&predictions, targets)
        }
        Task::Classification { labels } => {
            let truth: Vec<i64> = targets.iter().map(|&l| l as i64).collect();
            let loss = out.cross_entropy_for_logits(&Tensor::from_slice(&truth)).double_value(&[]);
            let predicted: Vec<i64> = Vec::try_from(&out.argmax(-1, false)).expect("class indices");
            let p: Vec<usize> = predicted.iter().map(|&c| c as usize).collect();
            let t: Vec<usize> = truth.iter().map(|&c| c as usize).collect();
            let probabilities: Vec<Vec<f64>> = Vec::try_from(&out.softmax(-1, Kind::Double)).expect("class probabilities");
            let mut m = metrics::classification_report(&p, &t, &probabilities, labels);
            m.insert("loss".into(), loss);
            m
        }
    }
}

/// `torch.nn.utils.clip_grad_norm_`: scales every gradient by `max / (norm + 1e-6)` when the
/// global L2 norm is above `max`. Returns the norm before clipping.
pub fn clip_grad_norm(params: &[(String, Tensor)], max: f64) -> Tensor {
    let grads: Vec<Tensor> = params.iter().map(|(_, p)| p.grad()).filter(Tensor::defined).collect();
    if grads.is_empty() {
        return Tensor::from(0.0f32);
    }
    let norms: Vec<Tensor> = grads.iter().map(|g| g.norm()).collect();
    let total = Tensor::stack(&norms, 0).norm();
    // As PyTorch computes it, on the device: no wait for the norm on the host.
    let coef = (max / (&total + 1e-6)).clamp_max(1.0);
    tch::no_grad(|| {
        for g in &grads {
            let _ = g.shallow_clone().g_mul_(&coef);
        }
    });
    total
}

/// The metric that selects the best weights when the recipe names none.
pub fn default_metric(task: &Task) -> Metric {
    Metric::default_for(matches!(task, Task::Classification { .. }))
}

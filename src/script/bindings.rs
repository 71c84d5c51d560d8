//! The functions and types scripts see. Each converts its arguments, calls the library, records
//! what the call produced for the caller, and converts the result or the error; nothing else.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::cell::RefCell;
use std::rc::Rc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, Position};
use serde::{Serialize, de::DeserializeOwned};

use super::{AblationResult, ScriptSettings, ScriptValue};
use crate::ablation::Ablation;
// A model folder and its head, as `model(..)` returns it (rhai type `Model`).
use crate::ablation::ModelChoice as ModelRef;
use crate::error::Error;
use crate::model::{HeadOptions, Pooling};
use crate::plot::Chart;
use crate::recipe::Recipe;
use crate::run::{self, Run};
use crate::spec::{DataSpec, RunSpec, TrainConfig};

type Fallible<T> = Result<T, Box<EvalAltResult>>;

/// `model(path, #{ pooling, layers, dropout, samples })`: which pre-trained folder, and the
/// head on it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelOptions {
    #[serde(default)]
    pooling: Pooling,
    #[serde(default)]
    layers: Option<usize>,
    #[serde(default)]
    dropout: Option<f64>,
    #[serde(default)]
    samples: Option<usize>,
}

/// What `train(..)` returns: a finished run, a cross-validation, or a planned run.
#[derive(Debug, Clone)]
enum RunRef {
    Run(Box<Run>),
    Cv(Box<crate::cv::CvOutcome>),
    /// Under `tunelab plan`: what a script reads of it has the shape of a result, with NaN
    /// scores, so that a script that prints its results also plans.
    Planned(Box<Planned>),
}

#[derive(Debug, Clone)]
struct Planned {
    metric: String,
    swa: bool,
    cv: bool,
}

impl Planned {
    fn scores(&self) -> Dynamic {
        let mut m = Map::new();
        m.insert(self.metric.as_str().into(), Dynamic::from_float(f64::NAN));
        m.into()
    }
}

impl RunRef {
    fn run(&self) -> Option<&Run> {
        if let RunRef::Run(r) = self { Some(r.as_ref()) } else { None }
    }
}

fn fail(e: Error) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(e.to_string().into(), Position::NONE).into()
}

/// An object map to a library value, through serde: unknown keys and wrong types are errors
/// naming the key.
fn from_map<T: DeserializeOwned>(what: &str, map: Map) -> Fallible<T> {
    if let Some((key, value)) = non_finite(&map, "") {
        return Err(fail(Error::Invalid(format!("{what} `{key}`: {value} is not a finite number"))));
    }
    let json: serde_json::Value = rhai::serde::from_dynamic(&Dynamic::from_map(map))?;
    serde_path_to_error::deserialize(json).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." { String::new() } else { format!(" `{path}`") };
        fail(Error::Invalid(format!("{what}{at}: {}", crate::human::settings_error(&e.into_inner().to_string()))))
    })
}

/// The first NaN or infinite number in a map (nested maps and arrays included), with its key
/// path: JSON has no such numbers, so serde would only see a `null` there.
fn non_finite(map: &Map, at: &str) -> Option<(String, f64)> {
    fn walk(value: &Dynamic, at: String) -> Option<(String, f64)> {
        if let Some(x) = value.as_float().ok().filter(|x| !x.is_finite()) {
            return Some((at, x));
        }
        if let Some(m) = value.read_lock::<Map>() {
            return non_finite(&m, &at);
        }
        if let Some(items) = value.read_lock::<Array>() {
            return items.iter().enumerate().find_map(|(i, v)| walk(v, format!("{at}[{i}]")));
        }
        None
    }
    map.iter().find_map(|(k, v)| walk(v, if at.is_empty() { k.to_string() } else { format!("{at}.{k}") }))
}

fn to_dynamic(value: &impl Serialize) -> Dynamic {
    rhai::serde::to_dynamic(value).unwrap_or(Dynamic::UNIT)
}

fn spec(model: &ModelRef, data: &DataSpec, recipe: &Recipe, training: &TrainConfig) -> RunSpec {
    RunSpec { model: model.model.clone(), pooling: model.pooling, head: model.head.clone(), data: data.clone(), recipe: recipe.clone(), training: training.clone() }
}

/// `[#{ name, recipe }, ...]` as named recipes, and the models of the entries that give one
/// (`#{ name, recipe, model: model(..) }`) where it differs from the base's.
fn named_recipes(recipes: Array, base: &ModelRef) -> Fallible<(Vec<(String, Recipe)>, BTreeMap<String, ModelRef>)> {
    let (mut named, mut models) = (Vec::new(), BTreeMap::new());
    for (i, entry) in recipes.into_iter().enumerate() {
        let bad = |what: String| fail(Error::Invalid(format!("ablate: entry {i}: {what}")));
        let map = entry.try_cast::<Map>().ok_or_else(|| bad("expected #{ name: \"...\", recipe: recipe(..) }, with model: model(..) if it trains its own".into()))?;
        if let Some(key) = map.keys().find(|k| !["name", "recipe", "model"].contains(&k.as_str())) {
            return Err(bad(format!("`{key}` is not an entry's key: an entry has name, recipe and, optionally, model (the head's settings go in model(path, #{{ pooling, layers, dropout, samples }}))")));
        }
        let name = map.get("name").and_then(|n| n.clone().into_string().ok()).ok_or_else(|| bad("`name` must be a string".into()))?;
        let recipe = map.get("recipe").and_then(|r| r.clone().try_cast::<Recipe>()).ok_or_else(|| bad(format!("`recipe` of `{name}` must be recipe(..)")))?;
        if let Some(m) = map.get("model") {
            let m = m.clone().try_cast::<ModelRef>().ok_or_else(|| bad(format!("`model` of `{name}` must be model(..)")))?;
            if m != *base {
                models.insert(name.clone(), m);
            }
        }
        named.push((name, recipe));
    }
    Ok((named, models))
}

pub(super) fn register(engine: &mut Engine, record: Rc<RefCell<ScriptValue>>, settings: ScriptSettings) {
    register_values(engine);
    register_runs(engine, record.clone(), settings.clone());
    register_ablate(engine, record.clone(), settings.clone());
    register_sweep(engine, record, settings);
    register_run_fields(engine);
}

/// The values a script composes: `model`, `data`, `recipe`, `training`, and small helpers.
fn register_values(engine: &mut Engine) {
    engine
        .register_type_with_name::<ModelRef>("Model")
        .register_type_with_name::<DataSpec>("Data")
        .register_type_with_name::<Recipe>("Recipe")
        .register_type_with_name::<TrainConfig>("Training")
        .register_type_with_name::<RunRef>("Run");

    engine.register_fn("model", |path: &str| ModelRef { model: path.into(), pooling: Pooling::default(), head: HeadOptions::default() });
    engine.register_fn("model", |path: &str, options: Map| -> Fallible<ModelRef> {
        let choice: ModelOptions = from_map("model", options)?;
        let head = HeadOptions { layers: choice.layers, dropout: choice.dropout, samples: choice.samples };
        Ok(ModelRef { model: path.into(), pooling: choice.pooling, head })
    });
    engine.register_fn("data", |options: Map| from_map::<DataSpec>("data", options));
    engine.register_fn("recipe", |options: Map| from_map::<Recipe>("recipe", options));
    engine.register_fn("recipe", Recipe::default);
    engine.register_fn("training", |options: Map| from_map::<TrainConfig>("training", options));
    engine.register_fn("training", TrainConfig::default);
    engine.register_fn("to_string", |r: &mut Recipe| serde_json::to_string_pretty(r).unwrap_or_default());
    engine.register_fn("to_string", |t: &mut TrainConfig| serde_json::to_string_pretty(t).unwrap_or_default());
    engine.register_fn("to_map", |r: &mut Recipe| to_dynamic(r));
    engine.register_fn("fmt", |x: f64, decimals: i64| format!("{x:.*}", decimals.clamp(0, 17) as usize));
    engine.register_fn("warmup_steps", |r: &mut Recipe, total: i64| -> Fallible<i64> {
        r.warmup.steps(total.max(0) as usize).map(|s| s as i64).map_err(fail)
    });
}

/// `plan`, `train`, `evaluate`, `predict`, `plot_runs`, `compare`.
fn register_runs(engine: &mut Engine, record: Rc<RefCell<ScriptValue>>, settings: ScriptSettings) {
    let rec = record.clone();
    engine.register_fn("plan", move |m: ModelRef, d: DataSpec, r: Recipe, t: TrainConfig| -> Fallible<()> {
        let plan = spec(&m, &d, &r, &t).plan().map_err(fail)?;
        rec.borrow_mut().plans.push(plan);
        Ok(())
    });

    let (rec, s) = (record.clone(), settings.clone());
    engine.register_fn("train", move |m: ModelRef, d: DataSpec, r: Recipe, t: TrainConfig| -> Fallible<RunRef> {
        let mut spec = spec(&m, &d, &r, &t);
        spec.training.apply(&s.hardware);
        if s.plan_only {
            let mut plan = spec.plan().map_err(fail)?;
            if let Some(steps) = s.estimate {
                plan.estimate = Some(run::estimate(&spec, steps).map_err(fail)?);
            }
            let planned = Planned { metric: plan.metric.clone(), swa: spec.recipe.swa.is_some(), cv: spec.data.cv.is_some() };
            rec.borrow_mut().plans.push(plan);
            return Ok(RunRef::Planned(Box::new(planned)));
        }
        if spec.data.cv.is_some() {
            let outcome = crate::cv::run(&spec, &s.control, s.shard).map_err(fail)?;
            rec.borrow_mut().cvs.push(outcome.clone());
            return Ok(RunRef::Cv(Box::new(outcome)));
        }
        let run = spec.run_with(&s.control).map_err(fail)?;
        rec.borrow_mut().runs.push(run.clone());
        Ok(RunRef::Run(Box::new(run)))
    });

    // `resume(run)`: continues a run stopped by an interrupt (or any stopped run folder); a
    // cross-validation continues with the folds not yet done.
    let (rec, s) = (record.clone(), settings.clone());
    engine.register_fn("resume", move |r: RunRef| -> Fallible<RunRef> {
        match r {
            RunRef::Run(run) => {
                let run = run::resume(&run.dir, &s.control).map_err(fail)?;
                rec.borrow_mut().runs.push(run.clone());
                Ok(RunRef::Run(Box::new(run)))
            }
            RunRef::Cv(cv) => {
                let spec = RunSpec::from_file(&cv.dir.join(crate::run_dir::SPEC_FILE)).map_err(fail)?;
                let control = run::RunControl { out: Some(cv.dir.clone()), ..s.control.clone() };
                let outcome = crate::cv::run(&spec, &control, Some(cv.shard)).map_err(fail)?;
                rec.borrow_mut().cvs.push(outcome.clone());
                Ok(RunRef::Cv(Box::new(outcome)))
            }
            planned @ RunRef::Planned(_) => Ok(planned),
        }
    });
    let (rec, control) = (record.clone(), settings.control.clone());
    engine.register_fn("resume", move |dir: &str| -> Fallible<RunRef> {
        let run = run::resume(dir.as_ref(), &control).map_err(fail)?;
        rec.borrow_mut().runs.push(run.clone());
        Ok(RunRef::Run(Box::new(run)))
    });

    engine.register_fn("evaluate", |dir: &str, d: DataSpec| -> Fallible<Dynamic> {
        run::evaluate_folder(dir.as_ref(), &d).map(|m| to_dynamic(&m)).map_err(fail)
    });

    engine.register_fn("predict", |model_dir: &str, file: &str, options: Map| -> Fallible<Dynamic> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Options {
            #[serde(default)]
            text: Option<String>,
            #[serde(default)]
            pair: Option<String>,
            #[serde(default)]
            label: Option<String>,
            #[serde(default)]
            id: Option<String>,
            #[serde(default)]
            out: Option<PathBuf>,
        }
        let o: Options = from_map("predict", options)?;
        if let Some(out) = &o.out {
            crate::run_dir::output_file(out).map_err(fail)?;
        }
        let choice = crate::predict::ColumnChoice { text: o.text, pair: o.pair, label: o.label, id: o.id };
        // A cross-validation's folder predicts with every fold's model (their mean).
        if crate::cv::is_cv_folder(model_dir.as_ref()) {
            let (ensemble, notes) = crate::cv::predict_folds(model_dir.as_ref(), file.as_ref(), &choice).map_err(fail)?;
            for note in notes {
                eprintln!("note: {note}");
            }
            if let Some(out) = &o.out {
                ensemble.write_tsv(out).map_err(fail)?;
            }
            return Ok(ensemble.mean.metrics.as_ref().map(to_dynamic).unwrap_or(Dynamic::UNIT));
        }
        let (predictions, notes) = crate::predict::predict_with(model_dir.as_ref(), file.as_ref(), &choice).map_err(fail)?;
        for note in notes {
            eprintln!("note: {note}");
        }
        if let Some(out) = &o.out {
            predictions.write_tsv(out).map_err(fail)?;
        }
        Ok(predictions.metrics.as_ref().map(to_dynamic).unwrap_or(Dynamic::UNIT))
    });

    engine.register_fn("plot_runs", |runs: Array, path: &str| -> Fallible<()> {
        if runs.is_empty() {
            return Err(fail(Error::Invalid(format!("plot_runs(.., \"{path}\"): the list of runs is empty"))));
        }
        let mut dirs = Vec::new();
        for (i, r) in runs.into_iter().enumerate() {
            match r.try_cast::<RunRef>() {
                Some(RunRef::Run(run)) => dirs.push(run.dir.clone()),
                Some(RunRef::Cv(cv)) => dirs.extend(cv.folds_run.iter().map(|job| cv.dir.join(job.name()))),
                Some(RunRef::Planned(_)) => {} // planned, not trained
                None => return Err(fail(Error::Invalid(format!("plot_runs: item {i} is not a run returned by train(..)")))),
            }
        }
        if dirs.is_empty() {
            return Ok(());
        }
        crate::run_dir::output_file(path.as_ref()).map_err(fail)?;
        Chart::run_dirs(&dirs).and_then(|c| c.save(path.as_ref())).map_err(fail)
    });

    engine.register_fn("compare", |items: Array| -> Fallible<String> {
        let mut runs = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            if item.is_string() {
                let dir = item.into_string().unwrap_or_default();
                runs.push(Run::open(&dir).map_err(fail)?);
                continue;
            }
            match item.try_cast::<RunRef>() {
                Some(RunRef::Run(run)) => runs.push(*run),
                Some(RunRef::Planned(_)) => {} // planned, not trained
                Some(RunRef::Cv(_)) => return Err(fail(Error::Invalid(format!("compare: item {i} is a cross-validation; compare takes runs (ablate(..) compares cross-validations over seeds)")))),
                None => return Err(fail(Error::Invalid(format!("compare: item {i} is neither a run (train(..), resume(..)) nor a run folder's path")))),
            }
        }
        Ok(run::comparison(&runs))
    });
}

/// `ablate(model, data, [#{ name, recipe, model? }], training, #{ seeds, out })`.
fn register_ablate(engine: &mut Engine, record: Rc<RefCell<ScriptValue>>, settings: ScriptSettings) {
    let (rec, s) = (record, settings);
    engine.register_fn("ablate", move |m: ModelRef, d: DataSpec, recipes: Array, t: TrainConfig, options: Map| -> Fallible<Array> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Options {
            seeds: Vec<u64>,
            out: PathBuf,
        }
        let options: Options = from_map("ablate", options)?;
        let (recipes, models) = named_recipes(recipes, &m)?;
        let ablation = Ablation { recipes, seeds: options.seeds, out: options.out, models };
        let mut base = spec(&m, &d, &Recipe::default(), &t);
        base.training.apply(&s.hardware);
        if s.plan_only {
            let mut plans = ablation.plans(&base).map_err(fail)?;
            if let Some(steps) = s.estimate {
                for (plan, (name, recipe)) in plans.iter_mut().zip(&ablation.recipes) {
                    let spec = ablation.spec(&base, name, recipe);
                    let mut e = run::estimate(&spec, steps).map_err(fail)?;
                    e.runs *= ablation.seeds.len();
                    plan.estimate = Some(e);
                }
            }
            rec.borrow_mut().plans.extend(plans);
            return Ok(Array::new());
        }
        let (rows, summaries) = ablation.run_and_report(&base, s.shard, &s.control).map_err(fail)?;
        let value = summaries.iter().flatten().map(to_dynamic).collect();
        let jobs = ablation.jobs().len();
        rec.borrow_mut().ablations.push(AblationResult { out: ablation.out, jobs, rows, summaries });
        Ok(value)
    });
}

/// `sweep(model, data, recipe, space, training, #{ trials, sampler, pruner, seed, startup, out })`,
/// and the distributions of a search space: `uniform(low, high)`, `log_uniform(low, high)`,
/// `int(low, high)`, `choice([..])` (maps that the library reads).
fn register_sweep(engine: &mut Engine, record: Rc<RefCell<ScriptValue>>, settings: ScriptSettings) {
    fn number(x: &Dynamic, what: &str) -> Fallible<f64> {
        x.as_float().or_else(|_| x.as_int().map(|i| i as f64)).map_err(|t| fail(Error::Invalid(format!("{what}: expected a number, got {t}"))))
    }
    fn range(kind: &str, low: Dynamic, high: Dynamic) -> Fallible<Map> {
        let mut m = Map::new();
        m.insert("kind".into(), kind.into());
        m.insert("low".into(), Dynamic::from_float(number(&low, kind)?));
        m.insert("high".into(), Dynamic::from_float(number(&high, kind)?));
        Ok(m)
    }
    engine.register_fn("uniform", |low: Dynamic, high: Dynamic| range("uniform", low, high));
    engine.register_fn("log_uniform", |low: Dynamic, high: Dynamic| range("log_uniform", low, high));
    engine.register_fn("int", |low: i64, high: i64| -> Map {
        let mut m = Map::new();
        m.insert("kind".into(), "int".into());
        m.insert("low".into(), low.into());
        m.insert("high".into(), high.into());
        m
    });
    engine.register_fn("choice", |values: Array| -> Map {
        let mut m = Map::new();
        m.insert("kind".into(), "choice".into());
        m.insert("values".into(), values.into());
        m
    });
    let (rec, s) = (record, settings);
    engine.register_fn("sweep", move |m: ModelRef, d: DataSpec, r: Recipe, space: Map, t: TrainConfig, options: Map| -> Fallible<Array> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Options {
            #[serde(default)]
            trials: Option<usize>,
            sampler: crate::search::Sampler,
            #[serde(default)]
            pruner: Option<crate::search::SuccessiveHalving>,
            #[serde(default)]
            seed: u64,
            #[serde(default)]
            startup: Option<usize>,
            out: PathBuf,
        }
        let options: Options = from_map("sweep", options)?;
        let space: crate::search::Space = from_map("sweep space", space)?;
        let sweep = crate::search::Sweep {
            space,
            sampler: options.sampler,
            trials: options.trials,
            seed: options.seed,
            pruner: options.pruner,
            startup: options.startup.unwrap_or(10),
            out: options.out,
        };
        let mut base = spec(&m, &d, &r, &t);
        base.training.apply(&s.hardware);
        if s.plan_only {
            sweep.validate(&base).map_err(fail)?;
            let plan = base.plan().map_err(fail)?;
            let trials = sweep.trial_count().map_err(fail)?;
            let name = format!("sweep base ({trials} trials of {} keys: {})", sweep.space.0.len(), sweep.space.0.keys().cloned().collect::<Vec<_>>().join(", "));
            rec.borrow_mut().plans.push(crate::spec::Plan { name, ..plan });
            return Ok(Array::new());
        }
        sweep.run(&base, s.shard, &s.control).map_err(fail)?;
        let board = crate::search::report(&sweep.out).map_err(fail)?;
        let rows = board.rows().iter().map(to_dynamic).collect();
        rec.borrow_mut().sweeps.push(board);
        Ok(rows)
    });
}

/// What a script reads of a run: `run.dir`, `run.best`, `run.swa`...
fn register_run_fields(engine: &mut Engine) {
    engine.register_get("dir", |r: &mut RunRef| match r {
        RunRef::Run(run) => run.dir.display().to_string(),
        RunRef::Cv(cv) => cv.dir.display().to_string(),
        RunRef::Planned(_) => String::new(),
    });
    engine.register_get("planned", |r: &mut RunRef| matches!(r, RunRef::Planned(_)));
    engine.register_get("steps", |r: &mut RunRef| r.run().map_or(0, |run| run.metrics.steps as i64));
    engine.register_get("finished", |r: &mut RunRef| match r {
        RunRef::Run(run) => run.metrics.finished,
        RunRef::Cv(cv) => cv.result.is_some(),
        RunRef::Planned(_) => false,
    });
    // A cross-validation's `best` is its out-of-fold score.
    engine.register_get("best", |r: &mut RunRef| match r {
        RunRef::Run(run) => run.metrics.best.as_ref().map(to_dynamic).unwrap_or(Dynamic::UNIT),
        RunRef::Cv(cv) => cv.result.as_ref().map(|c| to_dynamic(&serde_json::json!({ "metric": c.metric, "value": c.oof_score }))).unwrap_or(Dynamic::UNIT),
        RunRef::Planned(p) => {
            let mut m = Map::new();
            m.insert("metric".into(), p.metric.clone().into());
            m.insert("value".into(), Dynamic::from_float(f64::NAN));
            m.insert("step".into(), Dynamic::from_int(0));
            m.into()
        }
    });
    engine.register_get("cv", |r: &mut RunRef| match r {
        RunRef::Cv(cv) => cv.result.as_ref().map(to_dynamic).unwrap_or(Dynamic::UNIT),
        RunRef::Planned(p) if p.cv => {
            let mut m = Map::new();
            m.insert("metric".into(), p.metric.clone().into());
            for key in ["oof_score", "mean", "std"] {
                m.insert(key.into(), Dynamic::from_float(f64::NAN));
            }
            m.insert("fold_scores".into(), Dynamic::from_array(Array::new()));
            m.into()
        }
        _ => Dynamic::UNIT,
    });
    engine.register_get("swa", |r: &mut RunRef| match r {
        RunRef::Planned(p) if p.swa => p.scores(),
        _ => r.run().and_then(|run| run.metrics.swa.as_ref()).map(to_dynamic).unwrap_or(Dynamic::UNIT),
    });
    engine.register_get("last", |r: &mut RunRef| match r {
        RunRef::Planned(p) => p.scores(),
        _ => r.run().and_then(|run| run.metrics.last.as_ref()).map(to_dynamic).unwrap_or(Dynamic::UNIT),
    });
    engine.register_get("samples_per_second", |r: &mut RunRef| r.run().map_or(0.0, |run| run.metrics.train_samples_per_second));
}

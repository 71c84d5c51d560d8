//! The functions and types scripts see. Each converts its arguments, calls the library, and
//! converts the result or the error; nothing else.
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, Position};
use serde::{Serialize, de::DeserializeOwned};

use super::{Mode, Session};
use crate::ablation::{self, Ablation};
use crate::error::Error;
use crate::model::{Model, Pooling};
use crate::recipe::Recipe;
use crate::train::{DataSpec, Run, RunSpec, TrainConfig};

type Fallible<T> = Result<T, Box<EvalAltResult>>;

/// `model(path, #{ pooling })`: which pre-trained folder, pooled how.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelChoice {
    #[serde(default)]
    pub pooling: Pooling,
}

/// A model folder and its pooling, as `model(..)` returns it.
#[derive(Debug, Clone)]
pub struct ModelRef {
    pub path: PathBuf,
    pub pooling: Pooling,
}

/// A finished (or planned) run, as `train(..)` returns it.
#[derive(Debug, Clone)]
pub struct RunRef(Option<Run>);

fn fail(e: Error) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(e.to_string().into(), Position::NONE).into()
}

/// An object map to a library value, through serde: unknown keys and wrong types are errors
/// naming the key.
fn from_map<T: DeserializeOwned>(what: &str, map: Map) -> Fallible<T> {
    let json: serde_json::Value = rhai::serde::from_dynamic(&Dynamic::from_map(map))?;
    serde_path_to_error::deserialize(json).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." { String::new() } else { format!(" `{path}`") };
        fail(Error::Invalid(format!("{what}{at}: {}", e.into_inner())))
    })
}

fn to_dynamic(value: &impl Serialize) -> Dynamic {
    rhai::serde::to_dynamic(value).unwrap_or(Dynamic::UNIT)
}

fn spec(model: &ModelRef, data: &DataSpec, recipe: &Recipe, training: &TrainConfig, session: &Session) -> RunSpec {
    let mut training = training.clone();
    training.quiet |= session.quiet;
    RunSpec { model: model.path.clone(), pooling: model.pooling, data: data.clone(), recipe: recipe.clone(), training }
}

pub fn register(engine: &mut Engine, session: Arc<Mutex<Session>>) {
    engine
        .register_type_with_name::<ModelRef>("Model")
        .register_type_with_name::<DataSpec>("Data")
        .register_type_with_name::<Recipe>("Recipe")
        .register_type_with_name::<TrainConfig>("Training")
        .register_type_with_name::<RunRef>("Run");

    engine.register_fn("model", |path: &str| ModelRef { path: path.into(), pooling: Pooling::default() });
    engine.register_fn("model", |path: &str, options: Map| -> Fallible<ModelRef> {
        let choice: ModelChoice = from_map("model", options)?;
        Ok(ModelRef { path: path.into(), pooling: choice.pooling })
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

    let s = session.clone();
    engine.register_fn("plan", move |m: ModelRef, d: DataSpec, r: Recipe, t: TrainConfig| -> Fallible<()> {
        let mut session = s.lock().expect("not poisoned");
        let spec = spec(&m, &d, &r, &t, &session);
        plan(&mut session, &spec)
    });

    let s = session.clone();
    engine.register_fn("train", move |m: ModelRef, d: DataSpec, r: Recipe, t: TrainConfig| -> Fallible<RunRef> {
        let mut session = s.lock().expect("not poisoned");
        let spec = spec(&m, &d, &r, &t, &session);
        if matches!(session.mode, Mode::Plan { .. }) {
            plan(&mut session, &spec)?;
            return Ok(RunRef(None));
        }
        drop(session);
        spec.run().map(|run| RunRef(Some(run))).map_err(fail)
    });

    engine.register_fn("evaluate", |dir: &str, d: DataSpec| -> Fallible<Dynamic> {
        let model = Model::load(dir, None, tch::Device::cuda_if_available()).map_err(fail)?;
        let (_, dev) = d.load().map_err(fail)?;
        let tokenizer = model.encoder.tokenizer.clone().ok_or_else(|| fail(Error::Invalid(format!("{dir}: no tokenizer.json"))))?;
        let encoded = dev.encode(&tokenizer).map_err(fail)?;
        Ok(to_dynamic(&crate::train::evaluate(&model, &encoded, 128)))
    });

    engine.register_fn("plot_runs", |runs: Array, path: &str| -> Fallible<()> {
        let dirs: Vec<PathBuf> = runs.into_iter().filter_map(|r| r.try_cast::<RunRef>()).filter_map(|r| r.0.map(|run| run.dir)).collect();
        if dirs.is_empty() {
            return Ok(()); // planned runs only
        }
        crate::plot::Chart::run_dirs(&dirs).and_then(|c| c.save(path.as_ref())).map_err(fail)
    });

    engine.register_fn("compare", |runs: Array| -> Fallible<()> {
        println!("{:<48} {:>8} {:>12} {:>12} {:>8}", "run", "steps", "best", "SWA", "ex/s");
        for r in runs {
            let Some(RunRef(Some(run))) = r.try_cast::<RunRef>() else { continue };
            let m = &run.metrics;
            let best = m.best.as_ref();
            let swa = best.and_then(|b| m.swa.as_ref().and_then(|s| s.get(&b.metric)));
            println!(
                "{:<48} {:>8} {:>12} {:>12} {:>8.1}",
                run.dir.display(),
                m.steps,
                best.map(|b| format!("{} {:.4}", b.metric, b.value)).unwrap_or_else(|| "-".into()),
                swa.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into()),
                m.train_samples_per_second
            );
        }
        Ok(())
    });

    let s = session.clone();
    engine.register_fn("ablate", move |m: ModelRef, d: DataSpec, recipes: Array, t: TrainConfig, options: Map| -> Fallible<Array> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Options {
            seeds: Vec<u64>,
            out: PathBuf,
        }
        let options: Options = from_map("ablate", options)?;
        let mut named = Vec::new();
        for (i, entry) in recipes.into_iter().enumerate() {
            let map = entry.try_cast::<Map>().ok_or_else(|| fail(Error::Invalid(format!("ablate: recipe {i} is not #{{ name: .., recipe: .. }}"))))?;
            let name = map.get("name").and_then(|n| n.clone().into_string().ok());
            let recipe = map.get("recipe").and_then(|r| r.clone().try_cast::<Recipe>());
            match (name, recipe) {
                (Some(n), Some(r)) => named.push((n, r)),
                _ => return Err(fail(Error::Invalid(format!("ablate: recipe {i} needs a `name` string and a `recipe`")))),
            }
        }
        let session = s.lock().expect("not poisoned");
        let base = spec(&m, &d, &Recipe::default(), &t, &session);
        let ablation = Ablation { recipes: named, seeds: options.seeds, out: options.out };
        if matches!(session.mode, Mode::Plan { .. }) {
            println!("ablation: {} runs ({} recipes × {} seeds) into {}", ablation.jobs().len(), ablation.recipes.len(), ablation.seeds.len(), ablation.out.display());
            return Ok(Array::new());
        }
        let shard = session.shard;
        drop(session);
        let rows = ablation.run(&base, shard).map_err(fail)?;
        let summaries = ablation::summarize(&rows);
        print!("{}", ablation::table(&summaries));
        if shard.is_none_or(|(_, n)| n == 1) {
            ablation::write_summary(&ablation.out, &summaries).map_err(fail)?;
            crate::plot::Chart::ablation(&rows).save(&ablation.out.join("ablation.png")).map_err(fail)?;
        }
        Ok(summaries.iter().map(to_dynamic).collect())
    });

    engine.register_get("dir", |r: &mut RunRef| r.0.as_ref().map(|run| run.dir.display().to_string()).unwrap_or_default());
    engine.register_get("planned", |r: &mut RunRef| r.0.is_none());
    engine.register_get("steps", |r: &mut RunRef| r.0.as_ref().map_or(0, |run| run.metrics.steps as i64));
    engine.register_get("finished", |r: &mut RunRef| r.0.as_ref().is_some_and(|run| run.metrics.finished));
    engine.register_get("best", |r: &mut RunRef| r.0.as_ref().and_then(|run| run.metrics.best.as_ref()).map(to_dynamic).unwrap_or(Dynamic::UNIT));
    engine.register_get("swa", |r: &mut RunRef| r.0.as_ref().and_then(|run| run.metrics.swa.as_ref()).map(to_dynamic).unwrap_or(Dynamic::UNIT));
    engine.register_get("last", |r: &mut RunRef| r.0.as_ref().and_then(|run| run.metrics.last.as_ref()).map(to_dynamic).unwrap_or(Dynamic::UNIT));
    engine.register_get("samples_per_second", |r: &mut RunRef| r.0.as_ref().map_or(0.0, |run| run.metrics.train_samples_per_second));
}

/// Prints a run's plan; the first plan of the session also goes to the CSV (and plot) asked for.
fn plan(session: &mut Session, spec: &RunSpec) -> Fallible<()> {
    let plan = spec.plan().map_err(fail)?;
    print!("{plan}");
    if session.plans.is_empty()
        && let Mode::Plan { lr_csv, plot } = &session.mode
    {
        if let Some(path) = lr_csv {
            crate::model::atomic_write(path, plan.lrs.to_csv().as_bytes()).map_err(fail)?;
            println!("LR table written to {}", path.display());
        }
        if let Some(path) = plot {
            crate::plot::lr_schedule(&plan.lrs, path).map_err(fail)?;
            println!("LR plot written to {}", path.display());
        }
    }
    session.plans.push(plan);
    Ok(())
}

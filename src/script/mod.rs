//! The rhai scripting layer: a thin binding over the library.
//!
//! A script builds the same values a run specification holds (`model`, `data`, `recipe`,
//! `training`) from object maps, and calls `plan`, `train`, `evaluate`, `compare`, `plot_runs`
//! and `ablate`. The binding converts maps to the library's types through serde (so a key that
//! is not an option is an error, and an integer is accepted wherever a number is), converts
//! errors once at the boundary, and calls the library. What the calls produce — plans, runs,
//! ablation results — comes back in a [`ScriptValue`] for the caller (the CLI, a notebook) to
//! print or write. Anything a script does, a notebook cell does with the Rust API.
//!
//! **Parameters** are the top-level `let`s whose value is a literal (`let epochs = 1;`,
//! `let seeds = [1, 2];`), found in the parsed script. [`Script::run`] takes overrides as
//! rhai literals (`--set epochs=2`, `--set name="a;b"`): the value replaces the literal in the
//! parsed script, the text of the script is never edited.
//!
//! **Limits**: a script runs with an operation limit ([`ScriptSettings::max_operations`]) and
//! rhai's default expression-depth limits, so an endless loop or an absurdly nested literal is
//! an error naming the limit, not a hang or a crash.
//!
//! ```
//! use tunelab::script::{Script, ScriptSettings};
//! let source = "let warmup = 10;\nlet r = recipe(#{ warmup: warmup });\nr.warmup_steps(100)";
//! let script = Script::from_source("demo.rhai", source)?;
//! assert_eq!(script.parameters().keys().collect::<Vec<_>>(), ["warmup"]); // `r` is computed, not a parameter
//! let plan = ScriptSettings::plan();
//! assert_eq!(script.run(&[], &plan)?.value.as_int().unwrap(), 10);
//! assert_eq!(script.run(&[("warmup".into(), "25".into())], &plan)?.value.as_int().unwrap(), 25);
//! # Ok::<(), tunelab::Error>(())
//! ```
mod bindings;
pub mod session;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::cell::RefCell;
use std::rc::Rc;

use rhai::{AST, Dynamic, Engine, EvalAltResult, Expr, ParseError, Position, Stmt};

use crate::ablation::{Row, Summary};
use crate::error::{Error, Result};
use crate::run::{Run, RunControl};
use crate::spec::Plan;

/// How a script's `train(..)` and `ablate(..)` calls behave in this evaluation.
#[derive(Debug, Clone)]
pub struct ScriptSettings {
    /// Plan instead of training: `train(..)` and `ablate(..)` record the plan of each run.
    pub plan_only: bool,
    /// How runs are carried out (the folder root, the progress bar).
    pub control: RunControl,
    /// `(i, n)`: an `ablate(..)` runs only the jobs of shard `i` of `n`.
    pub shard: Option<(usize, usize)>,
    /// The most operations the script may run (calls into tunelab count as one).
    pub max_operations: u64,
    /// A device and precision for every run of the script (`--device`, `--precision`).
    pub hardware: crate::precision::Hardware,
    /// Planning: time this many optimizer steps of each planned run to estimate its time.
    pub estimate: Option<usize>,
}

impl Default for ScriptSettings {
    fn default() -> Self {
        ScriptSettings { plan_only: false, control: RunControl::default(), shard: None, max_operations: 10_000_000, hardware: Default::default(), estimate: None }
    }
}

impl ScriptSettings {
    /// Plan every run without training.
    pub fn plan() -> Self {
        ScriptSettings { plan_only: true, ..ScriptSettings::default() }
    }
}

/// One `ablate(..)` call's result: the rows of the runs it did (one shard's, with `--shard`) and,
/// when it ran them all, the summary per recipe.
#[derive(Debug, Clone)]
pub struct AblationResult {
    pub out: PathBuf,
    /// How many runs the whole ablation has (recipes × seeds).
    pub jobs: usize,
    pub rows: Vec<Row>,
    pub summaries: Option<Vec<Summary>>,
}

/// What evaluating a script produced.
#[derive(Debug, Clone, Default)]
pub struct ScriptValue {
    /// The value of the script's last expression.
    pub value: Dynamic,
    /// One plan per planned run, in order (planning mode, or explicit `plan(..)` calls).
    pub plans: Vec<Plan>,
    /// The runs trained, in order.
    pub runs: Vec<Run>,
    /// The cross-validations run (a `train(..)` whose data has `cv`).
    pub cvs: Vec<crate::cv::CvOutcome>,
    /// The ablations run.
    pub ablations: Vec<AblationResult>,
    /// The sweeps run (this worker's trials done), each reported from its folder.
    pub sweeps: Vec<crate::search::Leaderboard>,
}

/// A parsed script.
pub struct Script {
    name: String,
    ast: AST,
    /// The top-level `let`s with a literal value, and that value.
    parameters: BTreeMap<String, Dynamic>,
    /// The script's folder: `import "name"` looks for `name.rhai` there.
    dir: Option<PathBuf>,
}

impl Script {
    /// Reads a script file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let source = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut script = Script::from_source(&path.display().to_string(), &source)?;
        script.dir = path.parent().map(|p| if p.as_os_str().is_empty() { PathBuf::from(".") } else { p.to_path_buf() });
        Ok(script)
    }

    /// Parses a script held in memory; `name` is used in error messages.
    pub fn from_source(name: &str, source: &str) -> Result<Self> {
        let engine = engine(Rc::default(), &ScriptSettings::default());
        let ast = engine.compile(source).map_err(|e| parse_error(name, &e))?;
        let parameters = ast
            .statements()
            .iter()
            .filter_map(|stmt| match stmt {
                Stmt::Var(var, ..) if var.1.is_constant() => var.1.get_literal_value(None).map(|v| (var.0.name.to_string(), v)),
                _ => None,
            })
            .collect();
        Ok(Script { name: name.to_string(), ast, parameters, dir: None })
    }

    /// The parameters `--set` may override, with their values in the script.
    pub fn parameters(&self) -> &BTreeMap<String, Dynamic> {
        &self.parameters
    }

    /// Runs the script with overrides (`NAME`, `VALUE` as written on the command line: a rhai
    /// literal such as `2`, `0.1`, `"text"`, `[1, 2]`).
    pub fn run(&self, overrides: &[(String, String)], settings: &ScriptSettings) -> Result<ScriptValue> {
        let mut values = BTreeMap::new();
        for (name, raw) in overrides {
            if !self.parameters.contains_key(name) {
                let known: Vec<&str> = self.parameters.keys().map(String::as_str).collect();
                return Err(Error::Invalid(format!(
                    "{}: --set {name}: the script has no parameter `{name}` (a top-level `let` with a literal value; it has: {})",
                    self.name,
                    known.join(", ")
                )));
            }
            values.insert(name.as_str(), literal(name, raw)?);
        }
        let statements = self.ast.statements().iter().map(|stmt| match stmt {
            Stmt::Var(var, flags, pos) if values.contains_key(var.0.name.as_str()) => {
                let value = values[var.0.name.as_str()].clone();
                let expr = Expr::DynamicConstant(Box::new(value), var.1.position());
                Stmt::Var(Box::new((var.0.clone(), expr, var.2)), *flags, *pos)
            }
            other => other.clone(),
        });
        let ast = AST::new(statements, self.ast.shared_lib().clone());
        let record = Rc::new(RefCell::new(ScriptValue::default()));
        let mut engine = engine(record.clone(), settings);
        if let Some(dir) = &self.dir {
            engine.set_module_resolver(rhai::module_resolvers::FileModuleResolver::new_with_path(dir));
        }
        let value = engine.eval_ast::<Dynamic>(&ast);
        // Ctrl-C (the CLI's interrupt flag) stopped a training, then the script (see [`engine`]).
        if settings.control.interrupted() {
            return Err(Error::Invalid(format!(
                "{}: stopped by an interrupt (Ctrl-C); a stopped run that keeps a checkpoint continues with `tunelab resume <its folder>`, an ablation or a sweep when the script runs again",
                self.name
            )));
        }
        let value = value.map_err(|e| runtime_error(&self.name, &e, settings, true))?;
        drop(engine);
        let mut out = record.take();
        out.value = value;
        Ok(out)
    }
}

/// A `--set` value: a rhai literal, evaluated without access to anything else.
fn literal(name: &str, raw: &str) -> Result<Dynamic> {
    let mut engine = Engine::new_raw();
    engine.set_max_operations(1000);
    let bad = |why: String| {
        Error::Invalid(format!("--set {name}={raw}: {why}; give a rhai literal: a number (2, 0.1), a string in double quotes (\"text\"), true/false, or an array ([1, 2])"))
    };
    let value = engine.eval_expression::<Dynamic>(raw).map_err(|e| bad(e.to_string()))?;
    let finite = |v: &Dynamic| v.as_float().map_or(true, f64::is_finite);
    let all_finite = match value.read_lock::<rhai::Array>() {
        Some(items) => items.iter().all(finite),
        None => finite(&value),
    };
    if !all_finite {
        return Err(bad("the number is out of range".into()));
    }
    Ok(value)
}

/// An engine with tunelab's functions, printing to stdout, with an operation limit.
fn engine(record: Rc<RefCell<ScriptValue>>, settings: &ScriptSettings) -> Engine {
    let mut engine = Engine::new();
    engine.set_max_operations(settings.max_operations);
    // rhai's defaults are lower in builds with debug assertions (notebooks build that way): the
    // same limits everywhere.
    engine.set_max_expr_depths(64, 32);
    engine.set_max_call_levels(64);
    engine.on_print(|s| println!("{s}"));
    // The interrupt flag (Ctrl-C, a notebook's stop button) stops a training at its next step
    // boundary (the run control carries it there), and the script at its next operation rather
    // than going on to train again.
    if let Some(flag) = settings.control.interrupt.clone() {
        engine.on_progress(move |_| flag.load(std::sync::atomic::Ordering::SeqCst).then(|| Dynamic::from(session::INTERRUPTED)));
    }
    bindings::register(&mut engine, record, settings.clone());
    engine
}

fn script_error(name: &str, pos: Position, what: String) -> Error {
    Error::Script { script: name.to_string(), line: pos.line(), column: pos.position(), what }
}

fn parse_error(name: &str, e: &ParseError) -> Error {
    let what = match e.err_type() {
        rhai::ParseErrorType::ExprTooDeep => "an expression nested too deeply (more than rhai's limit of 64 levels)".to_string(),
        other => other.to_string(),
    };
    script_error(name, e.position(), what)
}

/// The innermost error of a rhai error, at the position of the script line that caused it.
/// `whole_source`: the script's functions are all in the source being run (a script file; a
/// notebook cell may call a function of an earlier cell, whose lines are that cell's).
fn runtime_error(name: &str, err: &EvalAltResult, settings: &ScriptSettings, whole_source: bool) -> Error {
    let mut pos = err.position();
    let mut inner = err;
    // The script's own functions called on the way (name, call site), and whether the error
    // came from an imported module (whose lines are another file's).
    let (mut frames, mut in_module) = (Vec::new(), false);
    while let EvalAltResult::ErrorInFunctionCall(_, _, e, p) | EvalAltResult::ErrorInModule(_, e, p) = inner {
        match inner {
            EvalAltResult::ErrorInFunctionCall(f, source, _, p) => {
                frames.push((f.clone(), *p));
                in_module |= !source.is_empty();
            }
            _ => in_module = true,
        }
        if pos.is_none() {
            pos = *p;
        }
        inner = e;
    }
    let what = match inner {
        EvalAltResult::ErrorRuntime(value, _) => value.to_string(),
        EvalAltResult::ErrorFunctionNotFound(sig, _) => format!("no function {sig}"),
        EvalAltResult::ErrorTooManyOperations(_) => format!(
            "the script ran more than {} operations (an endless loop?); raise the limit with --max-operations",
            settings.max_operations
        ),
        EvalAltResult::ErrorStackOverflow(_) => "too many nested function calls (more than rhai's limit)".to_string(),
        EvalAltResult::ErrorParsing(p, _) => match p {
            rhai::ParseErrorType::ExprTooDeep => "an expression nested too deeply (more than rhai's limit of 64 levels)".to_string(),
            other => other.to_string(),
        },
        other => other.to_string().replace(&format!(" ({})", other.position()), ""),
    };
    // An error inside a function of the script: the function it happened in, and (in a script
    // file) its own line, with the call that led there.
    let what = match (frames.first(), frames.last(), in_module) {
        (Some((_, call)), Some((f, _)), false) if whole_source && inner.position().line().is_some() && call.line().is_some() => {
            let via = if frames.len() > 1 { format!(", via `{}`", frames[0].0) } else { String::new() };
            let called = format!(" (in `{f}`{via} called at line {})", call.line().unwrap_or(0));
            pos = inner.position();
            format!("{what}{called}")
        }
        (Some(_), Some((f, _)), false) => format!("{what} (in `{f}`)"),
        _ => what,
    };
    if pos.is_none() {
        pos = inner.position();
    }
    script_error(name, pos, what)
}

//! The rhai scripting layer: a thin binding over the library.
//!
//! A script builds the same values a run specification holds (`model`, `data`, `recipe`,
//! `training`) from object maps, and calls `plan`, `train`, `evaluate`, `compare` and
//! `ablate`. The binding converts maps to the library's types through serde (so a key that is
//! not an option is an error, and an integer is accepted wherever a number is), converts errors
//! once at the boundary, and calls the library: no logic of its own. Anything a script does,
//! a notebook cell does with the Rust API.
//!
//! Top-level `let` variables are the script's parameters: `tunelab run script.rhai --set
//! epochs=1` replaces the value of the line `let epochs = ...;` with 1, and naming a variable
//! the script does not declare is an error. `import "common" as c;` loads `common.rhai` from
//! the script's folder.
//!
//! ```
//! use tunelab::script::{Mode, Script};
//! let source = "let warmup = 10;\nlet r = recipe(#{ warmup: warmup });\nr.warmup_steps(100)";
//! let script = Script::from_source("demo.rhai", source)?;
//! assert_eq!(script.eval(Mode::Run, &[])?.as_int().unwrap(), 10);
//! assert_eq!(script.eval(Mode::Run, &[("warmup".into(), "25".into())])?.as_int().unwrap(), 25);
//! # Ok::<(), tunelab::Error>(())
//! ```
mod bindings;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rhai::{Dynamic, Engine, EvalAltResult, Position, Scope};

use crate::error::{Error, Result};

/// What `train(..)` does in a script.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Mode {
    /// Train for real.
    #[default]
    Run,
    /// Print the plan of each run instead of training; write the first plan's LR table as CSV
    /// and its plot when asked.
    Plan { lr_csv: Option<PathBuf>, plot: Option<PathBuf> },
}

/// Settings the command line passes to every run of a script.
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub mode: Mode,
    pub quiet: bool,
    /// `(i, n)`: run only the ablation jobs of shard `i` of `n`.
    pub shard: Option<(usize, usize)>,
    /// Plans made so far (plan mode).
    pub plans: Vec<crate::train::Plan>,
}

/// A parsed script.
pub struct Script {
    name: String,
    source: String,
    /// The variables declared at the top level.
    parameters: BTreeSet<String>,
    /// The script's folder: `import "name"` looks for `name.rhai` there.
    dir: Option<PathBuf>,
}

impl Script {
    /// Reads a script file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let source = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut script = Script::from_source(&path.display().to_string(), &source)?;
        script.dir = path.parent().map(|p| if p.as_os_str().is_empty() { PathBuf::from(".") } else { p.to_path_buf() });
        Ok(script)
    }

    /// Parses a script held in memory; `name` is used in error messages.
    pub fn from_source(name: &str, source: &str) -> Result<Self> {
        let engine = engine(Arc::new(Mutex::new(Session::default())));
        engine.compile(source).map_err(|e| script_error(name, e.position(), &e.to_string().replace(&format!(" ({})", e.position()), "")))?;
        // The parameters: `let NAME = ...;` at the start of a line.
        let parameters = source
            .lines()
            .filter_map(|l| l.strip_prefix("let "))
            .filter_map(|rest| {
                let name: String = rest.trim_start().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                (!name.is_empty()).then_some(name)
            })
            .collect();
        Ok(Script { name: name.to_string(), source: source.to_string(), parameters, dir: None })
    }

    /// The variables a `--set` may override.
    pub fn parameters(&self) -> &BTreeSet<String> {
        &self.parameters
    }

    /// Runs the script with `--set` overrides (`NAME`, `VALUE` as written on the command line:
    /// a rhai literal, or else a string).
    pub fn eval(&self, mode: Mode, overrides: &[(String, String)]) -> Result<Dynamic> {
        self.eval_in(Session { mode, ..Session::default() }, overrides).map(|(v, _)| v)
    }

    /// Runs the script in a session; returns the script's value and the session afterwards.
    pub fn eval_in(&self, session: Session, overrides: &[(String, String)]) -> Result<(Dynamic, Session)> {
        let mut values = BTreeMap::new();
        let literal = Engine::new_raw();
        for (name, raw) in overrides {
            if !self.parameters.contains(name) {
                let known: Vec<&str> = self.parameters.iter().map(String::as_str).collect();
                return Err(Error::Invalid(format!(
                    "{}: --set {name}: the script declares no variable `{name}` (it declares: {})",
                    self.name,
                    known.join(", ")
                )));
            }
            let value = literal.eval_expression::<Dynamic>(raw).unwrap_or_else(|_| Dynamic::from(raw.clone()));
            values.insert(name.clone(), value);
        }
        // `let NAME = <default>;` at the start of a line becomes `let NAME = <the --set value>;`
        // (through a scope constant, so values need no quoting; line numbers do not move).
        let mut scope = Scope::new();
        let mut lines: Vec<String> = self.source.lines().map(str::to_string).collect();
        for (name, value) in values {
            let prefix = format!("let {name} ");
            let prefix_eq = format!("let {name}=");
            let at = lines.iter().position(|l| l.starts_with(&prefix) || l.starts_with(&prefix_eq));
            let Some(at) = at else {
                return Err(Error::Invalid(format!(
                    "{}: --set {name}: `{name}` can be set from the command line only when it is declared at the start of a line, as `let {name} = ...;`",
                    self.name
                )));
            };
            let line = &lines[at];
            let end = line.find(';').ok_or_else(|| Error::Invalid(format!("{}:{}: --set {name}: the declaration must end with `;` on its line", self.name, at + 1)))?;
            let constant = format!("__set_{name}");
            lines[at] = format!("let {name} = {constant}{}", &line[end..]);
            scope.push_constant(constant, value);
        }
        let source = lines.join("\n");
        let session = Arc::new(Mutex::new(session));
        let mut engine = engine(session.clone());
        if let Some(dir) = &self.dir {
            engine.set_module_resolver(rhai::module_resolvers::FileModuleResolver::new_with_path(dir));
        }
        let result = engine.eval_with_scope::<Dynamic>(&mut scope, &source).map_err(|e| runtime_error(&self.name, &e))?;
        let session = std::mem::take(&mut *session.lock().expect("not poisoned"));
        Ok((result, session))
    }
}

/// An engine with tunelab's functions, printing to stdout, without rhai's default limits on
/// expression depth (recipes nest maps in maps).
fn engine(session: Arc<Mutex<Session>>) -> Engine {
    let mut engine = Engine::new();
    engine.set_max_expr_depths(0, 0);
    engine.on_print(|s| println!("{s}"));
    bindings::register(&mut engine, session);
    engine
}

fn script_error(name: &str, pos: Position, what: &str) -> Error {
    match (pos.line(), pos.position()) {
        (Some(line), Some(col)) => Error::Invalid(format!("{name}:{line}:{col}: {what}")),
        (Some(line), None) => Error::Invalid(format!("{name}:{line}: {what}")),
        _ => Error::Invalid(format!("{name}: {what}")),
    }
}

/// The innermost error of a rhai error, at the position of the script line that caused it.
fn runtime_error(name: &str, err: &EvalAltResult) -> Error {
    let mut pos = err.position();
    let mut inner = err;
    while let EvalAltResult::ErrorInFunctionCall(_, _, e, p) = inner {
        if pos.is_none() {
            pos = *p;
        }
        inner = e;
    }
    let what = match inner {
        EvalAltResult::ErrorRuntime(value, _) => value.to_string(),
        EvalAltResult::ErrorFunctionNotFound(sig, _) => format!("no function {sig}"),
        other => other.to_string().replace(&format!(" ({})", other.position()), ""),
    };
    if pos.is_none() {
        pos = inner.position();
    }
    script_error(name, pos, &what)
}

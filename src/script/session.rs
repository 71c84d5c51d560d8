//! A session over the script layer: what a notebook kernel (or any read-eval-print loop) needs.
//!
//! Cells share one rhai [`Scope`]: a `let` in one cell is seen by every later cell. The
//! functions a cell defines are kept (a later definition replaces an earlier one of the same
//! name and arity), and so are its top-level `import`s (replayed before each later cell; the
//! module resolver caches the modules, so each is evaluated once). `print` goes to the callback
//! given to [`Session::new`]; `import "name"` looks for `name.rhai` in the session's folder.
//! [`Session::interrupt_flag`] stops a running cell: the rhai evaluation at its next operation,
//! a training at its next step boundary (resumable).
//!
//! Nothing here knows about Jupyter: the kernel (`tunelab kernel`) turns a [`Cell`] into
//! messages and displays.
//!
//! ```
//! use tunelab::script::{ScriptSettings, session::Session};
//! let mut session = Session::new(ScriptSettings::plan(), ".", |line| println!("{line}"));
//! session.execute("let x = 3; fn twice(a) { a * 2 }", true);
//! let cell = session.execute("twice(x)", true);
//! assert_eq!((cell.execution_count, cell.value?.as_int().unwrap()), (2, 6));
//! # Ok::<(), tunelab::Error>(())
//! ```
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rhai::{AST, Dynamic, Engine, EvalAltResult, ParseErrorType, Scope, Stmt};

use super::{ScriptSettings, ScriptValue};
use crate::error::{Error, Result};
use crate::run::RunControl;

/// What the session says when a cell was stopped by [`Session::interrupt_flag`].
pub const INTERRUPTED: &str = "interrupted";

/// One evaluated cell.
#[derive(Debug)]
pub struct Cell {
    /// The cell's number (counted by the cells run with `store_history`).
    pub execution_count: usize,
    /// The value of the cell's last expression, or the error (with the cell's line and column).
    pub value: Result<Dynamic>,
    /// What the cell's calls produced (plans, runs, cross-validations, ablations), even when a
    /// later statement failed.
    pub recorded: ScriptValue,
}

/// One rhai scope, engine and set of functions shared by a sequence of cells.
pub struct Session {
    engine: Engine,
    scope: Scope<'static>,
    /// Every function the cells have defined (an AST without statements).
    functions: AST,
    /// The top-level `import` statements of earlier cells, replayed before each cell.
    imports: Vec<Stmt>,
    record: Rc<RefCell<ScriptValue>>,
    execution_count: usize,
    interrupt: Arc<AtomicBool>,
    settings: ScriptSettings,
}

impl Session {
    /// A session whose `import`s resolve in `dir` and whose `print` and `debug` call `print`
    /// (`debug`'s text after the cell line it came from, as `line 3: ...`).
    pub fn new(settings: ScriptSettings, dir: impl Into<PathBuf>, print: impl Fn(&str) + 'static) -> Self {
        let interrupt = Arc::new(AtomicBool::new(false));
        let mut settings = settings;
        settings.control = with_interrupt(settings.control, &interrupt);
        let record = Rc::new(RefCell::new(ScriptValue::default()));
        let mut engine = super::engine(record.clone(), &settings);
        let print = Rc::new(print);
        let debug = print.clone();
        engine.on_print(move |s| print(s));
        engine.on_debug(move |s, _, pos| match pos.line() {
            Some(line) => debug(&format!("line {line}: {s}")),
            None => debug(s),
        });
        engine.set_module_resolver(rhai::module_resolvers::FileModuleResolver::new_with_path(dir.into()));
        Session { engine, scope: Scope::new(), functions: AST::empty(), imports: Vec::new(), record, execution_count: 0, interrupt, settings }
    }

    /// Setting this flag stops the running cell (it is cleared when the next cell starts).
    pub fn interrupt_flag(&self) -> Arc<AtomicBool> {
        self.interrupt.clone()
    }

    /// The number the last cell run with `store_history` got (0 before the first).
    pub fn execution_count(&self) -> usize {
        self.execution_count
    }

    /// The number the next cell run with `store_history` will get.
    pub fn next_execution_count(&self) -> usize {
        self.execution_count + 1
    }

    /// Runs one cell. With `store_history`, it counts (silent cells of a frontend do not).
    pub fn execute(&mut self, code: &str, store_history: bool) -> Cell {
        self.interrupt.store(false, Ordering::SeqCst);
        if store_history {
            self.execution_count += 1;
        }
        let name = format!("cell [{}]", self.execution_count);
        self.record.take();
        let mut value = self.evaluate(&name, code);
        // A training stopped by the flag returns normally (its run is resumable): the cell still
        // fails, so that a frontend does not go on to the cells queued after it.
        if value.is_ok() && self.interrupt.load(Ordering::SeqCst) {
            value = Err(Error::Script { script: name, line: None, column: None, what: INTERRUPTED.to_string() });
        }
        Cell { execution_count: self.execution_count, value, recorded: self.record.take() }
    }

    fn evaluate(&mut self, name: &str, code: &str) -> Result<Dynamic> {
        let cell = self.engine.compile_with_scope(&self.scope, code).map_err(|e| super::parse_error(name, &e))?;
        // rhai hoists function definitions: a cell's functions exist even if a statement fails.
        self.functions = self.functions.merge(&cell.clone_functions_only());
        let statements = self.imports.iter().chain(cell.statements()).cloned().collect::<Vec<_>>();
        let ast = AST::new(statements, self.functions.shared_lib().clone());
        let value = self.engine.eval_ast_with_scope::<Dynamic>(&mut self.scope, &ast).map_err(|e| self.error(name, &e))?;
        for stmt in cell.statements() {
            if let Stmt::Import(import, _) = stmt {
                let alias = import.1.name.clone();
                if !alias.is_empty() {
                    self.imports.retain(|s| !matches!(s, Stmt::Import(i, _) if i.1.name == alias));
                }
                self.imports.push(stmt.clone());
            }
        }
        Ok(value)
    }

    fn error(&self, name: &str, e: &EvalAltResult) -> Error {
        let mut error = super::runtime_error(name, e, &self.settings, false);
        if self.interrupt.load(Ordering::SeqCst)
            && terminated(e)
            && let Error::Script { what, .. } = &mut error
        {
            *what = INTERRUPTED.to_string();
        }
        error
    }

    /// The names a cell can use now: the variables in scope, the functions the cells defined and
    /// the modules they imported.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.scope.iter_raw().map(|(name, ..)| name.to_string()).collect();
        names.extend(self.functions.iter_functions().map(|f| f.name.to_string()));
        names.extend(self.imports.iter().filter_map(|s| match s {
            Stmt::Import(i, _) if !i.1.name.is_empty() => Some(i.1.name.to_string()),
            _ => None,
        }));
        names.sort();
        names.dedup();
        names
    }

    /// The value of a variable in scope.
    pub fn variable(&self, name: &str) -> Option<Dynamic> {
        self.scope.get_value::<Dynamic>(name)
    }

    /// A value's type as scripts know it (`Recipe`, `Run`, `i64`...).
    pub fn type_name(&self, value: &Dynamic) -> String {
        self.engine.map_type_name(value.type_name()).to_string()
    }

    /// Every function a cell can call, as `name(parameters) -> type` signatures: the functions
    /// the cells defined, tunelab's (with `standard`, rhai's standard library too).
    #[cfg(feature = "kernel")]
    pub fn signatures(&self, standard: bool) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> =
            self.functions.iter_functions().map(|f| (f.name.to_string(), format!("fn {}({})", f.name, f.params.join(", ")))).collect();
        for signature in self.engine.gen_fn_signatures(standard) {
            let name = signature.split('(').next().unwrap_or_default().to_string();
            // Getters, setters, indexers and operators are not names a cell types.
            if name.chars().all(|c| c.is_alphanumeric() || c == '_') && !name.is_empty() {
                out.push((name, self.readable(&signature)));
            }
        }
        out
    }

    /// A signature with its return type as scripts name it: `-> Recipe`, not
    /// `-> core::result::Result<tunelab::recipe::Recipe, Box<EvalAltResult>>`.
    #[cfg(feature = "kernel")]
    fn readable(&self, signature: &str) -> String {
        let Some((head, ret)) = signature.split_once(" -> ") else { return signature.to_string() };
        let ret = ret.trim();
        let ret = match ret.strip_prefix("core::result::Result<").and_then(|r| r.split_once(",alloc::boxed::Box<")) {
            Some((ok, _)) => ok,
            None => ret,
        };
        let mapped = self.engine.map_type_name(ret);
        let short = if mapped.contains("::") { mapped.rsplit("::").next().unwrap_or(mapped) } else { mapped };
        format!("{head} -> {short}")
    }
}

/// The interrupt flag in the run control, so that a training stops at its next step boundary.
fn with_interrupt(control: RunControl, flag: &Arc<AtomicBool>) -> RunControl {
    RunControl { interrupt: Some(flag.clone()), ..control }
}

/// Whether an error is the termination [`Session::interrupt_flag`] causes.
fn terminated(mut e: &EvalAltResult) -> bool {
    loop {
        match e {
            EvalAltResult::ErrorInFunctionCall(_, _, inner, _) | EvalAltResult::ErrorInModule(_, inner, _) => e = inner,
            EvalAltResult::ErrorTerminated(..) => return true,
            _ => return false,
        }
    }
}

/// Whether a cell's text is a whole program yet (what a console asks before running a line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completeness {
    Complete,
    /// More text is needed: `depth` brackets are open (an indent for the next line).
    Incomplete { depth: usize },
    /// No text added at the end can make it parse: the parse error.
    Invalid(String),
}

/// Whether `code` parses, would parse with more text (an unclosed bracket, string or comment, an
/// expression cut short), or never will.
pub fn completeness(code: &str) -> Completeness {
    match open_brackets(code) {
        Err(why) => return Completeness::Invalid(why),
        Ok(depth) if depth > 0 => return Completeness::Incomplete { depth },
        Ok(_) => {}
    }
    let mut engine = Engine::new_raw();
    engine.set_max_expr_depths(64, 32);
    match engine.compile(code) {
        Ok(_) => Completeness::Complete,
        Err(e) => match e.err_type() {
            ParseErrorType::UnexpectedEOF => Completeness::Incomplete { depth: 0 },
            ParseErrorType::MissingToken(..) if at_end(code, e.position()) => Completeness::Incomplete { depth: 0 },
            other => Completeness::Invalid(format!("line {}: {other}", e.position().line().unwrap_or(1))),
        },
    }
}

/// Whether a parse error's position is past the last character of `code`.
fn at_end(code: &str, pos: rhai::Position) -> bool {
    let (Some(line), column) = (pos.line(), pos.position()) else { return true };
    let lines: Vec<&str> = code.trim_end().lines().collect();
    line > lines.len() || (line == lines.len() && column.is_none_or(|c| c > lines[line - 1].chars().count()))
}

/// How many brackets are open at the end of `code` (an unclosed string or block comment counts
/// as one), outside strings and comments; an error for a closing bracket without its opening.
fn open_brackets(code: &str) -> std::result::Result<usize, String> {
    let mut stack = Vec::new();
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                while chars.next_if(|&c| c != '\n').is_some() {}
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut nested = 1;
                while nested > 0 {
                    match chars.next() {
                        Some('*') if chars.peek() == Some(&'/') => {
                            chars.next();
                            nested -= 1;
                        }
                        Some('/') if chars.peek() == Some(&'*') => {
                            chars.next();
                            nested += 1;
                        }
                        Some(_) => {}
                        None => return Ok(stack.len() + 1),
                    }
                }
            }
            '"' | '`' | '\'' => loop {
                match chars.next() {
                    Some('\\') if c != '`' => {
                        chars.next();
                    }
                    Some(d) if d == c => break,
                    Some(_) => {}
                    None => return Ok(stack.len() + 1),
                }
            },
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let want = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(want) {
                    return Err(format!("`{c}` closes a bracket that is not open"));
                }
            }
            _ => {}
        }
    }
    Ok(stack.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unclosed_brackets_strings_and_comments_wait_for_more() {
        assert_eq!(completeness("let r = recipe(#{"), Completeness::Incomplete { depth: 2 });
        assert_eq!(completeness("let s = \"a (\"; f(["), Completeness::Incomplete { depth: 2 });
        assert_eq!(completeness("/* ( */ let x = `multi"), Completeness::Incomplete { depth: 1 });
        assert_eq!(completeness("let x = 1 +"), Completeness::Incomplete { depth: 0 });
        assert_eq!(completeness("let x = #{ a: 1 };\nx.a // (a comment"), Completeness::Complete);
        assert!(matches!(completeness("let = 3;"), Completeness::Invalid(_)));
        assert!(matches!(completeness("f(1))"), Completeness::Invalid(_)));
    }

    #[test]
    fn cells_share_variables_functions_and_the_count() {
        let printed = Rc::new(RefCell::new(Vec::new()));
        let sink = printed.clone();
        let mut session = Session::new(ScriptSettings::plan(), ".", move |s| sink.borrow_mut().push(s.to_string()));
        assert_eq!(session.execute("let x = 3;", true).execution_count, 1);
        session.execute("fn f(a) { a + 1 }", true);
        let cell = session.execute("print(\"hi\"); f(x) * 2", true);
        assert_eq!((cell.execution_count, cell.value.unwrap().as_int().unwrap()), (3, 8));
        assert_eq!(*printed.borrow(), ["hi"]);
        assert_eq!(session.execute("x", false).execution_count, 3, "a silent cell does not count");
        assert_eq!(session.names(), ["f", "x"]);
    }

    #[test]
    fn an_error_names_the_cell_line_and_column_and_the_session_lives_on() {
        let mut session = Session::new(ScriptSettings::plan(), ".", |_| {});
        let err = session.execute("let a = 1;\nlet b = nope(a);", true).value.unwrap_err();
        match err {
            Error::Script { line, column, what, .. } => {
                assert_eq!((line, column), (Some(2), Some(9)));
                assert!(what.contains("nope"), "{what}");
            }
            other => panic!("{other}"),
        }
        assert_eq!(session.execute("a + 1", true).value.unwrap().as_int().unwrap(), 2);
    }

    #[test]
    fn the_interrupt_flag_stops_an_endless_loop() {
        let unlimited = ScriptSettings { max_operations: 0, ..ScriptSettings::default() };
        let mut session = Session::new(unlimited, ".", |_| {});
        let flag = session.interrupt_flag();
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            flag.store(true, Ordering::SeqCst);
        });
        let err = session.execute("let i = 0;\nloop { i += 1; }", true).value.unwrap_err();
        stopper.join().unwrap();
        assert!(matches!(&err, Error::Script { what, line: Some(2), .. } if what == INTERRUPTED), "{err}");
        assert_eq!(session.execute("1", true).value.unwrap().as_int().unwrap(), 1, "the flag is cleared");
    }

    #[test]
    fn an_error_inside_a_function_names_the_function() {
        // In a script file every function is in the file: its own line, the function, the call.
        let source = "fn g(b) {\n    b.foo()\n}\nfn f(b) { g(b) }\nlet z = 2;\nf(z)";
        let err = crate::script::Script::from_source("s.rhai", source).unwrap().run(&[], &ScriptSettings::plan()).unwrap_err();
        match err {
            Error::Script { line, what, .. } => {
                assert_eq!(line, Some(2), "{what}");
                assert!(what.contains("no function foo") && what.contains("(in `g`, via `f` called at line 6)"), "{what}");
            }
            other => panic!("{other}"),
        }
        let mut session = Session::new(ScriptSettings::plan(), ".", |_| {});
        // In a notebook the function may come from an earlier cell: the call's line, and the name.
        let err = session.execute("fn f(b) {\n    let x = 1;\n    b.foo()\n}\nlet z = 2;\nf(z)", true).value.unwrap_err();
        match err {
            Error::Script { line, what, .. } => {
                assert_eq!(line, Some(6), "{what}");
                assert!(what.contains("no function foo") && what.contains("(in `f`)"), "{what}");
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn debug_output_reaches_the_cell_like_print() {
        let seen = Rc::new(RefCell::new(Vec::<String>::new()));
        let sink = seen.clone();
        let mut session = Session::new(ScriptSettings::plan(), ".", move |s| sink.borrow_mut().push(s.to_string()));
        session.execute("print(\"p\");\ndebug(\"d\");", true).value.unwrap();
        assert_eq!(*seen.borrow(), vec!["p".to_string(), "line 2: \"d\"".to_string()]);
    }

    #[test]
    fn a_cell_whose_training_was_stopped_fails() {
        // train(..) as a cell's last statement returns its stopped run normally; the cell must
        // still fail, or a frontend runs the queued cells after it.
        let mut session = Session::new(ScriptSettings::plan(), ".", |_| {});
        let flag = session.interrupt_flag();
        session.engine.register_fn("stops_like_a_training", move || flag.store(true, Ordering::SeqCst));
        let err = session.execute("stops_like_a_training()", true).value.unwrap_err();
        assert!(matches!(&err, Error::Script { what, .. } if what == INTERRUPTED), "{err}");
        assert_eq!(session.execute("2", true).value.unwrap().as_int().unwrap(), 2);
    }
}

//! Help while typing: completion and inspection.
//!
//! The names come from the session (variables, the cells' functions, imports), from the engine
//! (tunelab's functions with their signatures, rhai's standard library), and, inside the map of
//! `recipe(#{ .. })`, `data(#{ .. })`, `training(#{ .. })` or `model(path, #{ .. })`, from the
//! option reference: `docs/options.md`, built into the binary, the page `tests/options.rs` keeps
//! complete, so a key, its type, default and meaning come from the one place they are written.
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::script::session::Session;

/// One row of docs/options.md.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionDoc {
    /// The full key: `recipe.lr.kind`, `recipe.lr.sets[].name`, `pooling`.
    pub key: String,
    pub kind: String,
    pub default: String,
    pub meaning: String,
}

/// Every option of a run specification, from docs/options.md.
pub fn options() -> &'static [OptionDoc] {
    static OPTIONS: OnceLock<Vec<OptionDoc>> = OnceLock::new();
    OPTIONS.get_or_init(|| parse_options(include_str!("../../docs/options.md")))
}

/// The rows `| `key` | type | default | meaning |` of the option tables.
fn parse_options(page: &str) -> Vec<OptionDoc> {
    page.lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|line| {
            // `\|` separates choices inside a cell.
            let cells: Vec<String> = line.replace("\\|", "\u{1}").split('|').map(|c| c.trim().replace('\u{1}', "|")).collect();
            let [_, key, kind, default, meaning, ..] = cells.as_slice() else { return None };
            Some(OptionDoc { key: key.trim_matches('`').to_string(), kind: kind.clone(), default: default.clone(), meaning: meaning.clone() })
        })
        .collect()
}

/// The functions whose map argument takes the options under a prefix (`model`'s takes `pooling`).
fn section(function: &str) -> Option<&'static str> {
    match function {
        "recipe" => Some("recipe"),
        "data" => Some("data"),
        "training" => Some("training"),
        "model" => Some(""),
        _ => None,
    }
}

/// What tunelab's script functions do (README's list), shown with their signatures.
const FUNCTIONS: [(&str, &str); 18] = [
    ("model", "model(path, #{ pooling, layers, dropout, samples }): a pre-trained model folder and the head on it"),
    ("data", "data(#{ train, dev, columns, kind, train_limit, dev_limit, subset, skip_invalid, cv, test }): the data of a run"),
    ("recipe", "recipe(#{ lr, weight_decay, warmup, decay, reinit, swa, evaluation, adamw, weight_decay_towards, loss, freeze, adversarial, mixout }): the techniques, composed"),
    ("training", "training(#{ name, epochs, max_steps, batch_size, seed, ... }): how a run is carried out"),
    ("plan", "plan(model, data, recipe, training): the parameter groups and every group's LR, without training (shown as a table and a chart)"),
    ("train", "train(model, data, recipe, training): a run (`dir`, `steps`, `best`, `swa`, `last`, `samples_per_second`); with `data.cv`, a cross-validation"),
    ("evaluate", "evaluate(model_dir, data): a fine-tuned model's metrics on the data's dev file"),
    ("predict", "predict(model_dir, file, #{ text, label, id, out }): the metrics, and the predictions file"),
    ("compare", "compare([runs]): a table of runs (from train(..), resume(..), or run folders' paths), to print"),
    ("plot_runs", "plot_runs([runs], \"curves.png\"): the runs' loss and dev curves, overlaid, into a file"),
    ("ablate", "ablate(model, data, [#{ name, recipe }], training, #{ seeds, out }): recipes × seeds, summarised (summary.csv, ablation.png); an entry may train its own head: #{ name, recipe, model: model(path, #{ pooling: \"attention\" }) }"),
    ("sweep", "sweep(model, data, recipe, #{ \"recipe.lr.top_lr\": log_uniform(1e-5, 3e-4), .. }, training, #{ sampler, trials, pruner, seed, startup, out }): a hyper-parameter search over specification keys (grid, random, tpe; successive halving), its trials best first (leaderboard.csv, history.png, parameters.png, best/spec.json)"),
    ("uniform", "uniform(low, high): a search-space key's value, uniform on [low, high]"),
    ("log_uniform", "log_uniform(low, high): a search-space key's value, uniform in log space (learning rates)"),
    ("int", "int(low, high): a search-space key's integer value, low and high included"),
    ("choice", "choice([a, b, ..]): a search-space key's value, one of these"),
    ("fmt", "fmt(x, decimals): a number as text with that many decimals"),
    ("warmup_steps", "recipe.warmup_steps(total): the warm-up of a run of `total` steps, in steps"),
];

const KEYWORDS: [&str; 22] = [
    "let", "const", "fn", "if", "else", "for", "in", "while", "loop", "do", "until", "return", "break", "continue", "import", "export",
    "as", "true", "false", "switch", "throw", "try",
];

#[derive(Debug, Clone, PartialEq)]
enum Frame {
    /// `name(`
    Call(String),
    /// `#{`, the value of `key:` or not (an argument, an element).
    Map(Option<String>),
    /// `[`, the value of `key:` or not.
    List(Option<String>),
    /// `{` or `(` of anything else.
    Other,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Punct(char),
    MapOpen,
    Literal,
}

/// The tokens of `code`, strings and comments reduced to `Literal` or dropped.
fn tokens(code: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => while chars.next_if(|&c| c != '\n').is_some() {},
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for d in chars.by_ref() {
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
            }
            '"' | '`' | '\'' => {
                while let Some(d) = chars.next() {
                    if d == '\\' && c != '`' {
                        chars.next();
                    } else if d == c {
                        break;
                    }
                }
                out.push(Token::Literal);
            }
            '#' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push(Token::MapOpen);
            }
            c if c.is_alphanumeric() || c == '_' => {
                let mut word = c.to_string();
                while let Some(d) = chars.next_if(|d| d.is_alphanumeric() || *d == '_') {
                    word.push(d);
                }
                out.push(Token::Ident(word));
            }
            c if c.is_whitespace() => {}
            c => out.push(Token::Punct(c)),
        }
    }
    out
}

/// Where the end of `code` is: the open brackets, and whether a map key is being typed there.
fn context(code: &str) -> (Vec<Frame>, bool) {
    let tokens = tokens(code);
    let mut frames: Vec<Frame> = Vec::new();
    let key_before = |i: usize| match (i.checked_sub(2).map(|j| &tokens[j]), i.checked_sub(1).map(|j| &tokens[j])) {
        (Some(Token::Ident(k)), Some(Token::Punct(':'))) => Some(k.clone()),
        _ => None,
    };
    for (i, t) in tokens.iter().enumerate() {
        match t {
            Token::Punct('(') => match i.checked_sub(1).map(|j| &tokens[j]) {
                Some(Token::Ident(name)) => frames.push(Frame::Call(name.clone())),
                _ => frames.push(Frame::Other),
            },
            Token::MapOpen => frames.push(Frame::Map(key_before(i))),
            Token::Punct('[') => frames.push(Frame::List(key_before(i))),
            Token::Punct('{') => frames.push(Frame::Other),
            Token::Punct(')' | ']' | '}') => {
                frames.pop();
            }
            _ => {}
        }
    }
    let typing_key = matches!(frames.last(), Some(Frame::Map(_)))
        && matches!(tokens.last(), Some(Token::MapOpen | Token::Punct(','))) ;
    (frames, typing_key)
}

/// The option prefix of the innermost map at the end of `code`: `recipe.lr` inside
/// `recipe(#{ lr: #{ `; `None` outside an option map.
fn option_path(frames: &[Frame]) -> Option<String> {
    if !matches!(frames.last(), Some(Frame::Map(_))) {
        return None;
    }
    let mut segments = Vec::new();
    for frame in frames.iter().rev() {
        match frame {
            Frame::Map(Some(key)) => segments.push(key.clone()),
            Frame::Map(None) => {}
            Frame::List(Some(key)) => segments.push(format!("{key}[]")),
            Frame::List(None) => {}
            Frame::Call(name) => {
                let prefix = section(name)?;
                if !prefix.is_empty() {
                    segments.push(prefix.to_string());
                }
                segments.reverse();
                return Some(segments.join("."));
            }
            Frame::Other => return None,
        }
    }
    None
}

/// The keys allowed directly under `path` (`recipe.lr` → `kind`, `lr`, `top_lr`...).
fn keys_under(path: &str) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for o in options() {
        let rest = if path.is_empty() {
            // `model(path, #{ .. })` takes `pooling` and the head's `layers`, `dropout`, `samples`.
            match o.key.strip_prefix("head.") {
                Some(k) => k,
                None if o.key == "pooling" => o.key.as_str(),
                None => continue,
            }
        } else {
            match o.key.strip_prefix(path).and_then(|r| r.strip_prefix('.')) {
                Some(r) => r,
                None => continue,
            }
        };
        let key = rest.split('.').next().unwrap_or_default().trim_end_matches("[]").to_string();
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// Converts a cursor position in code points (the protocol's unit) to a byte offset.
fn byte_offset(code: &str, cursor: usize) -> usize {
    code.char_indices().nth(cursor).map_or(code.len(), |(i, _)| i)
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `complete_reply`'s content for `code` with the cursor at `cursor_pos` (code points).
pub fn complete(session: &Session, code: &str, cursor_pos: usize) -> Value {
    let end = byte_offset(code, cursor_pos);
    let before = &code[..end];
    let start = before.rfind(|c: char| !is_word(c)).map_or(0, |i| i + before[i..].chars().next().map_or(1, char::len_utf8));
    let prefix = &before[start..];
    let (frames, typing_key) = context(&before[..start]);
    let mut candidates: Vec<String> = Vec::new();
    let path = option_path(&frames);
    if let (true, Some(path)) = (typing_key, &path) {
        candidates.extend(keys_under(path));
    } else {
        candidates.extend(session.names());
        let signatures = session.signatures(true);
        let tunelab: Vec<&str> = FUNCTIONS.iter().map(|f| f.0).collect();
        candidates.extend(signatures.iter().filter(|s| tunelab.contains(&s.0.as_str())).map(|s| s.0.clone()));
        candidates.extend(signatures.into_iter().map(|s| s.0));
        candidates.extend(KEYWORDS.iter().map(|k| k.to_string()));
    }
    let mut matches: Vec<String> = Vec::new();
    for c in candidates {
        if c.starts_with(prefix) && !matches.contains(&c) {
            matches.push(c);
        }
    }
    let cursor_start = code[..start].chars().count();
    json!({
        "status": "ok",
        "matches": matches,
        "cursor_start": cursor_start,
        "cursor_end": cursor_pos,
        "metadata": {},
    })
}

/// `inspect_reply`'s content: a function's signatures and what it does, an option key's type,
/// default and meaning, a variable's type and value.
pub fn inspect(session: &Session, code: &str, cursor_pos: usize) -> Value {
    let at = byte_offset(code, cursor_pos);
    let start = code[..at].rfind(|c: char| !is_word(c)).map_or(0, |i| i + code[i..].chars().next().map_or(1, char::len_utf8));
    let end = code[at..].find(|c: char| !is_word(c)).map_or(code.len(), |i| at + i);
    let word = &code[start..end];
    let text = if word.is_empty() { None } else { describe(session, &code[..start], word) };
    match text {
        Some(text) => json!({ "status": "ok", "found": true, "data": { "text/plain": text }, "metadata": {} }),
        None => json!({ "status": "ok", "found": false, "data": {}, "metadata": {} }),
    }
}

fn option_text(o: &OptionDoc) -> String {
    format!("{}: {} (default: {})\n  {}", o.key, o.kind, o.default, o.meaning)
}

fn describe(session: &Session, before: &str, word: &str) -> Option<String> {
    let (frames, _) = context(before);
    // A key of an option map: its rows (a section like `lr` has several).
    if let Some(path) = option_path(&frames) {
        let full = if path.is_empty() { word.to_string() } else { format!("{path}.{word}") };
        let rows: Vec<String> = options().iter().filter(|o| o.key == full || o.key.starts_with(&format!("{full}."))).map(option_text).collect();
        if !rows.is_empty() {
            return Some(rows.join("\n"));
        }
    }
    // A function: what it does, its signatures, and for a map function its keys.
    let signatures: Vec<String> = session.signatures(true).into_iter().filter(|s| s.0 == word).map(|s| s.1).collect();
    if !signatures.is_empty() {
        let mut text = FUNCTIONS.iter().find(|f| f.0 == word).map(|f| format!("{}\n\n", f.1)).unwrap_or_default();
        text.push_str(&signatures.join("\n"));
        if let Some(prefix) = section(word) {
            let keys = keys_under(prefix);
            let rows: Vec<String> = keys
                .iter()
                .map(|k| if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") })
                .filter_map(|k| options().iter().find(|o| o.key == k || o.key.starts_with(&format!("{k}."))).map(|o| (k, o)))
                .map(|(k, o)| if o.key == k { format!("  {k}: {} (default: {})", o.kind, o.default) } else { format!("  {k}: a map (see {k}.*)") })
                .collect();
            text.push_str(&format!("\n\nkeys (docs/options.md):\n{}", rows.join("\n")));
        }
        return Some(text);
    }
    if let Some(value) = session.variable(word) {
        let shown = super::display::value(&value, &session.type_name(&value)).and_then(|b| b.get("text/plain").and_then(|t| t.as_str().map(str::to_string)));
        return Some(format!("{word}: {}\n{}", session.type_name(&value), shown.unwrap_or_default()));
    }
    // A key typed anywhere else: every option of that name.
    let rows: Vec<String> = options().iter().filter(|o| o.key.rsplit('.').next() == Some(word)).map(option_text).collect();
    (!rows.is_empty()).then(|| rows.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::ScriptSettings;

    #[test]
    fn the_option_reference_is_read_from_docs() {
        let kind = options().iter().find(|o| o.key == "recipe.lr.kind").unwrap();
        assert_eq!((kind.kind.as_str(), kind.default.as_str()), ("`uniform` | `llrd` | `grouped`", "`uniform`"));
        assert!(options().len() > 60);
        assert_eq!(keys_under("recipe.lr"), ["kind", "lr", "top_lr", "decay", "head_lr", "sets"]);
        assert_eq!(keys_under(""), ["pooling", "layers", "dropout", "samples"]);
    }

    #[test]
    fn the_map_being_typed_in_is_found() {
        let (frames, typing) = context("let r = recipe(#{ lr: #{ kind: \"llrd\", ");
        assert_eq!((option_path(&frames).as_deref(), typing), (Some("recipe.lr"), true));
        let (frames, typing) = context("let r = recipe(#{ swa: #{ start: 0.75 }, warmup: ");
        assert_eq!((option_path(&frames).as_deref(), typing), (Some("recipe"), false));
        let (frames, _) = context("recipe(#{ lr: #{ kind: \"grouped\", sets: [#{ ");
        assert_eq!(option_path(&frames).as_deref(), Some("recipe.lr.sets[]"));
        let (frames, _) = context("if x { let m = #{ ");
        assert_eq!(option_path(&frames), None);
    }

    #[test]
    fn completion_and_inspection() {
        let mut session = Session::new(ScriptSettings::plan(), ".", |_| {});
        session.execute("let training_steps = 3;", true);
        let reply = complete(&session, "let t = trai", 12);
        let matches: Vec<&str> = reply["matches"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert!(matches.contains(&"train") && matches.contains(&"training") && matches.contains(&"training_steps"), "{matches:?}");
        assert_eq!(reply["cursor_start"], 8);
        let reply = complete(&session, "recipe(#{ war", 13);
        assert_eq!(reply["matches"], json!(["warmup"]));
        let reply = inspect(&session, "recipe(#{ warmup: 0.1 })", 12);
        assert!(reply["data"]["text/plain"].as_str().unwrap().contains("recipe.warmup.steps"), "{reply}");
        let reply = inspect(&session, "recipe", 3);
        let text = reply["data"]["text/plain"].as_str().unwrap();
        assert!(text.contains("recipe(") && text.contains("recipe.weight_decay: number ≥ 0 (default: `0.01`)"), "{text}");
    }
}

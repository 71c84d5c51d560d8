//! Data: reading labelled texts, checking every row, tokenising once, and batching.
//!
//! Files are TSV (`.tsv`, no quoting: quotes are part of the text), CSV (`.csv`, standard
//! quoting) or JSON Lines (`.jsonl`), with a header naming the columns. The user names the text
//! column (and, for sentence pairs, a second one) and the label column. Regression labels must
//! be finite numbers; classification labels are strings or integers, mapped to classes in
//! sorted order of the training file's labels (the map is saved with the model).
//!
//! Every row is checked: a missing column, an empty text, a label that is not a finite number,
//! or a class the training data never showed is an error naming the file, the line and the
//! field, unless the user asks to skip such rows (they are then counted).
//!
//! Batches are drawn from a seeded shuffle per epoch, each padded to its longest sequence; with
//! length bucketing, the shuffled examples are cut into chunks of `bucket × batch_size`, sorted by
//! length inside each chunk and batched, and the batches shuffled again, so short sentences do
//! not pay for long ones while the order stays random.
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::model::Task;
use crate::tokenizer::{Batch, TextTokenizer};

/// Which columns hold the text(s) and the label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    pub text: String,
    /// The second text of a sentence pair.
    #[serde(default)]
    pub pair: Option<String>,
    pub label: String,
    /// A column identifying each row in predictions (default: the row's line number).
    #[serde(default)]
    pub id: Option<String>,
}

impl Columns {
    pub fn new(text: &str, label: &str) -> Self {
        Columns { text: text.into(), pair: None, label: label.into(), id: None }
    }
}

/// Whether labels are numbers to regress or classes to predict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    Regression,
    Classification,
}

/// One example: its text(s) and its label (the target, or the class index).
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    pub pair: Option<String>,
    pub label: f64,
    /// The line of the file it came from (1 is the header).
    pub line: usize,
    /// The row's id column, or its line number.
    pub id: String,
    /// The value of the grouping column, when cross-validation groups rows.
    pub group: Option<String>,
}

/// A file of examples, checked.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub path: PathBuf,
    pub examples: Vec<Example>,
    pub task: Task,
    /// Rows skipped because they were invalid (only when skipping was asked for).
    pub skipped: usize,
    /// The first lines of the rows whose text holds a line break (a quoted field over several
    /// lines, legal in CSV; or an unclosed quote that joined rows).
    pub multiline: Vec<usize>,
    /// Whether the file has its label column (a file to predict may not).
    pub labelled: bool,
}

/// How to read a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadOptions {
    pub columns: Columns,
    pub kind: TaskKind,
    /// Skip invalid rows (and count them) instead of failing.
    #[serde(default)]
    pub skip_invalid: bool,
    /// Keep only this many valid rows (quick runs, learning curves), chosen as `subset` says.
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub subset: Subset,
    /// Accept a file without the label column (to predict): its examples have no label.
    #[serde(skip)]
    pub label_optional: bool,
    /// A column to read into each example's `group` (cross-validation's `group_by`).
    #[serde(skip)]
    pub group: Option<String>,
}

impl ReadOptions {
    /// Every row, no skipping, labels required.
    pub fn new(columns: Columns, kind: TaskKind) -> Self {
        ReadOptions { columns, kind, skip_invalid: false, limit: None, subset: Subset::default(), label_optional: false, group: None }
    }
}

/// Which rows a `limit` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Subset {
    /// A seeded random sample, stratified by class for classification (each class keeps its
    /// share), in file order. The default: a file sorted by class or source gives a fair sample.
    Random {
        #[serde(default)]
        seed: u64,
    },
    /// The first rows of the file.
    First,
}

impl Default for Subset {
    fn default() -> Self {
        Subset::Random { seed: 0 }
    }
}

impl Subset {
    /// The indices (into `labels`, in order) of the `limit` items to keep.
    pub fn choose(self, labels: &[&str], limit: usize, stratify: bool) -> Vec<usize> {
        let n = labels.len();
        if limit >= n {
            return (0..n).collect();
        }
        let Subset::Random { seed } = self else { return (0..limit).collect() };
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let mut chosen: Vec<usize> = if stratify {
            // Largest-remainder quotas per class, each class's rows in shuffled order.
            let mut classes: Vec<&str> = labels.to_vec();
            classes.sort();
            classes.dedup();
            let count = |c: &str| labels.iter().filter(|l| **l == c).count();
            let exact: Vec<f64> = classes.iter().map(|c| limit as f64 * count(c) as f64 / n as f64).collect();
            let mut quota: Vec<usize> = exact.iter().map(|q| q.floor() as usize).collect();
            let mut by_remainder: Vec<usize> = (0..classes.len()).collect();
            by_remainder.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b)));
            for &c in by_remainder.iter().take(limit - quota.iter().sum::<usize>()) {
                quota[c] += 1;
            }
            classes
                .iter()
                .zip(quota)
                .flat_map(|(c, q)| order.iter().copied().filter(|&i| labels[i] == *c).take(q).collect::<Vec<_>>())
                .collect()
        } else {
            order.into_iter().take(limit).collect()
        };
        chosen.sort_unstable();
        chosen
    }
}

/// A raw row: the line and the values of the requested columns (None when absent).
struct RawRow {
    line: usize,
    text: Option<String>,
    pair: Option<String>,
    label: Option<String>,
    id: Option<String>,
    group: Option<String>,
    /// What is wrong with the row's shape, if anything (more fields than the header).
    problem: Option<String>,
}

/// The most classes a classification label column may have.
pub const MAX_CLASSES: usize = 1000;

/// The column names of a file: its header (TSV, CSV), or the keys of its first object (JSON Lines).
pub fn header(path: &Path) -> Result<Vec<String>> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if !path.is_file() {
        return Err(Error::Data { path: path.into(), line: None, what: "file not found".into() });
    }
    match ext.as_str() {
        "tsv" | "csv" => {
            let mut reader = csv::ReaderBuilder::new()
                .delimiter(if ext == "tsv" { b'\t' } else { b',' })
                .quoting(ext == "csv")
                .flexible(true)
                .from_path(path)
                .map_err(|e| Error::Data { path: path.into(), line: None, what: e.to_string() })?;
            let headers = reader.headers().map_err(|e| Error::Data { path: path.into(), line: Some(1), what: e.to_string() })?;
            Ok(headers.iter().map(|h| h.trim().to_string()).collect())
        }
        "jsonl" | "ndjson" => {
            let content = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            let first = content.lines().enumerate().find(|(_, l)| !l.trim().is_empty());
            let Some((i, line)) = first else { return Ok(Vec::new()) };
            let value: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| Error::Data { path: path.into(), line: Some(i + 1), what: format!("not a JSON object: {e}") })?;
            Ok(value.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default())
        }
        _ => Err(Error::Data { path: path.into(), line: None, what: "unknown format: expected a .tsv, .csv or .jsonl file".into() }),
    }
}

/// The rows of a file, and whether it has the label column.
fn read_rows(path: &Path, cols: &Columns, label_optional: bool, group: Option<&str>) -> Result<(Vec<RawRow>, bool)> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "tsv" | "csv" => read_delimited(path, cols, if ext == "tsv" { b'\t' } else { b',' }, ext == "csv", label_optional, group),
        "jsonl" | "ndjson" => read_jsonl(path, cols, group).map(|rows| {
            let labelled = !label_optional || rows.iter().any(|r| r.label.is_some());
            (rows, labelled)
        }),
        _ => Err(Error::Data { path: path.into(), line: None, what: "unknown format: expected a .tsv, .csv or .jsonl file".into() }),
    }
}

fn read_delimited(path: &Path, cols: &Columns, delimiter: u8, quoting: bool, label_optional: bool, group: Option<&str>) -> Result<(Vec<RawRow>, bool)> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .quoting(quoting)
        .flexible(true)
        .from_path(path)
        .map_err(|e| Error::Data { path: path.into(), line: None, what: e.to_string() })?;
    let headers = reader.headers().map_err(|e| Error::Data { path: path.into(), line: Some(1), what: e.to_string() })?.clone();
    let index = |name: &str| -> Result<usize> {
        headers.iter().position(|h| h.trim() == name).ok_or_else(|| Error::Data {
            path: path.into(),
            line: Some(1),
            what: format!("no column `{name}` in the header (columns: {})", headers.iter().collect::<Vec<_>>().join(", ")),
        })
    };
    let text = index(&cols.text)?;
    let pair = cols.pair.as_deref().map(index).transpose()?;
    let has_label = headers.iter().any(|h| h.trim() == cols.label);
    let label = if has_label || !label_optional { Some(index(&cols.label)?) } else { None };
    let id = cols.id.as_deref().map(index).transpose()?;
    let group = group.map(index).transpose()?;
    // The line of a record, from its byte offset (csv's own line count is off with CRLF).
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let newlines: Vec<usize> = bytes.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i).collect();
    let line_of = |byte: u64| 1 + newlines.partition_point(|&p| p <= byte as usize);
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| Error::Data {
            path: path.into(),
            line: e.position().map(|p| line_of(p.byte())),
            what: e.to_string(),
        })?;
        let line = record.position().map(|p| line_of(p.byte())).unwrap_or(0);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let get = |i: usize| record.get(i).map(|s| s.trim_end_matches('\r').to_string());
        let problem = (record.len() > headers.len()).then(|| {
            let hint = if delimiter == b'\t' { " (a tab inside a text? a TSV field cannot hold one)" } else { " (an unquoted comma inside a text?)" };
            format!("{} fields, but the header has {}{hint}", record.len(), headers.len())
        });
        rows.push(RawRow { line, text: get(text), pair: pair.and_then(get), label: label.and_then(get), id: id.and_then(get), group: group.and_then(get), problem });
    }
    Ok((rows, label.is_some()))
}

fn read_jsonl(path: &Path, cols: &Columns, group: Option<&str>) -> Result<Vec<RawRow>> {
    let content = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut rows = Vec::new();
    for (i, line) in content.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| Error::Data { path: path.into(), line: Some(i + 1), what: format!("not a JSON object: {e}") })?;
        let field = |name: &str| -> Option<String> {
            match value.get(name)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            }
        };
        rows.push(RawRow {
            line: i + 1,
            text: field(&cols.text),
            pair: cols.pair.as_deref().and_then(field),
            label: field(&cols.label),
            id: cols.id.as_deref().and_then(field),
            group: group.and_then(field),
            problem: None,
        });
    }
    Ok(rows)
}

/// The sorted classes of the labels a training set uses. A column with more than
/// [`MAX_CLASSES`] classes, or of numbers that are not all whole, is an error suggesting
/// regression.
fn classes_of(path: &Path, used: &[&str], column: &str) -> Result<Vec<String>> {
    let numbers: Vec<f64> = used.iter().filter_map(|l| l.parse::<f64>().ok()).collect();
    if !used.is_empty() && numbers.len() == used.len() && numbers.iter().any(|x| x.fract() != 0.0) {
        return Err(Error::Data {
            path: path.into(),
            line: None,
            what: format!("column `{column}` holds numbers with fractions, not classes: for a score, use kind: \"regression\""),
        });
    }
    let mut classes: Vec<String> = used.iter().map(|l| l.to_string()).collect();
    classes.sort();
    classes.dedup();
    if classes.len() > MAX_CLASSES {
        return Err(Error::Data {
            path: path.into(),
            line: None,
            what: format!(
                "column `{column}` has {} distinct labels (more than {MAX_CLASSES}): is it a score? then use kind: \"regression\"",
                classes.len()
            ),
        });
    }
    Ok(classes)
}

impl Dataset {
    /// Reads and checks a file. For classification, `classes` is the label map of the training
    /// data (`None` when reading the training file itself: its sorted labels become the map).
    pub fn read(path: impl AsRef<Path>, options: &ReadOptions, classes: Option<&[String]>) -> Result<Self> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(Error::Data { path: path.into(), line: None, what: "file not found".into() });
        }
        let (rows, labelled) = read_rows(path, &options.columns, options.label_optional, options.group.as_deref())?;
        let cols = &options.columns;
        let kind = if labelled { Some(options.kind) } else { None };
        // Every row is checked; classes are mapped once the rows to use are chosen.
        let mut valid: Vec<(Example, &str)> = Vec::new();
        let mut skipped = 0;
        for row in &rows {
            let checked = match &row.problem {
                Some(problem) => Err(problem.clone()),
                None => check_row(row, cols, kind, classes),
            };
            match checked {
                Ok(example) => valid.push((example, row.label.as_deref().map_or("", str::trim))),
                Err(_) if options.skip_invalid => skipped += 1,
                Err(what) => return Err(Error::Data { path: path.into(), line: Some(row.line), what }),
            }
        }
        let raw: Vec<&str> = valid.iter().map(|(_, l)| *l).collect();
        let classification = labelled && options.kind == TaskKind::Classification;
        let chosen = match options.limit {
            Some(limit) => options.subset.choose(&raw, limit, classification),
            None => (0..valid.len()).collect(),
        };
        let labels: Vec<String> = match classes {
            Some(c) => c.to_vec(),
            None if classification => classes_of(path, &chosen.iter().map(|&i| raw[i]).collect::<Vec<_>>(), &cols.label)?,
            None => Vec::new(),
        };
        let examples: Vec<Example> = chosen
            .into_iter()
            .map(|i| {
                let (mut e, label) = valid[i].clone();
                if classification {
                    e.label = labels.iter().position(|c| c == label).expect("classes come from these labels") as f64;
                }
                e
            })
            .collect();
        if examples.is_empty() {
            return Err(Error::Data { path: path.into(), line: None, what: "no valid rows".into() });
        }
        let task = match options.kind {
            TaskKind::Regression => Task::Regression,
            TaskKind::Classification => {
                if labels.len() < 2 {
                    return Err(Error::Data {
                        path: path.into(),
                        line: None,
                        what: format!("column `{}` has {} distinct label(s); classification needs at least 2", cols.label, labels.len()),
                    });
                }
                Task::Classification { labels }
            }
        };
        let multiline = examples.iter().filter(|e| e.text.contains('\n') || e.pair.as_ref().is_some_and(|p| p.contains('\n'))).map(|e| e.line).collect();
        Ok(Dataset { path: path.into(), examples, task, skipped, multiline, labelled })
    }

    pub fn len(&self) -> usize {
        self.examples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// The examples for which `keep(index)` holds, and the others (same file, same classes;
    /// what reading the file set aside, skipped and multi-line rows, stays with the first).
    pub fn split(&self, keep: impl Fn(usize) -> bool) -> (Dataset, Dataset) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (i, e) in self.examples.iter().enumerate() {
            if keep(i) { a.push(e.clone()) } else { b.push(e.clone()) }
        }
        let part = |examples, skipped, multiline| Dataset { examples, skipped, multiline, ..self.clone() };
        (part(a, self.skipped, self.multiline.clone()), part(b, 0, Vec::new()))
    }

    /// Tokenises every example once.
    pub fn encode(&self, tokenizer: &TextTokenizer) -> Result<Encoded> {
        let mut rows = Vec::with_capacity(self.examples.len());
        for e in &self.examples {
            rows.push(tokenizer.encode(&e.text, e.pair.as_deref()).map_err(|err| Error::Data {
                path: self.path.clone(),
                line: Some(e.line),
                what: err.to_string(),
            })?);
        }
        Ok(Encoded {
            rows,
            labels: self.examples.iter().map(|e| e.label).collect(),
            pad_id: tokenizer.pad_id(),
            classification: matches!(self.task, Task::Classification { .. }),
        })
    }
}

/// Checks a row. A classification label is checked against `classes` when they are known (the
/// dev file); its class index is filled in by the caller. `kind` is `None` for a file without
/// labels (to predict).
fn check_row(row: &RawRow, cols: &Columns, kind: Option<TaskKind>, classes: Option<&[String]>) -> std::result::Result<Example, String> {
    let text = row.text.as_deref().ok_or_else(|| format!("column `{}` is missing", cols.text))?;
    if text.trim().is_empty() {
        return Err(format!("column `{}` is empty", cols.text));
    }
    let pair = match &cols.pair {
        None => None,
        Some(name) => {
            let p = row.pair.as_deref().ok_or_else(|| format!("column `{name}` is missing"))?;
            if p.trim().is_empty() {
                return Err(format!("column `{name}` is empty"));
            }
            Some(p.to_string())
        }
    };
    let id = row.id.clone().unwrap_or_else(|| row.line.to_string());
    let group = row.group.clone();
    let Some(kind) = kind else { return Ok(Example { text: text.to_string(), pair, label: f64::NAN, line: row.line, id, group }) };
    let raw = row.label.as_deref().map(str::trim).ok_or_else(|| format!("column `{}` is missing", cols.label))?;
    let label = match kind {
        TaskKind::Regression => match raw.parse::<f64>() {
            Ok(v) if v.is_finite() => v,
            Ok(v) => return Err(format!("column `{}`: {v} is not a finite number", cols.label)),
            Err(_) => return Err(format!("column `{}`: `{raw}` is not a number", cols.label)),
        },
        TaskKind::Classification if raw.is_empty() => return Err(format!("column `{}` is empty", cols.label)),
        TaskKind::Classification => match classes {
            Some(c) if !c.iter().any(|c| c == raw) => {
                return Err(format!("column `{}`: `{raw}` is not one of the training classes ({})", cols.label, c.join(", ")));
            }
            _ => f64::NAN,
        },
    };
    Ok(Example { text: text.to_string(), pair, label, line: row.line, id, group })
}

/// Assigns each of `n` examples to one of `k` folds, seeded: with `groups`, whole groups go to
/// a fold (the largest first, each to the smallest fold so far); otherwise, with `classes`
/// (classification), each class is spread evenly over the folds; otherwise the examples are
/// shuffled and dealt out. Every fold gets at least one example, or it is an error.
pub fn assign_folds(n: usize, k: usize, seed: u64, classes: Option<&[usize]>, groups: Option<&[&str]>) -> std::result::Result<Vec<usize>, String> {
    if k < 2 {
        return Err(format!("cross-validation needs at least 2 folds, got {k}"));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut fold = vec![0; n];
    if let Some(groups) = groups {
        let mut names: Vec<&str> = groups.to_vec();
        names.sort_unstable();
        names.dedup();
        if names.len() < k {
            return Err(format!("{} groups cannot fill {k} folds", names.len()));
        }
        names.shuffle(&mut rng);
        let size = |g: &str| groups.iter().filter(|x| **x == g).count();
        names.sort_by_key(|g| std::cmp::Reverse(size(g))); // stable: equal sizes keep the shuffle
        let mut filled = vec![0usize; k];
        for g in names {
            let f = (0..k).min_by_key(|&f| (filled[f], f)).expect("k >= 2");
            filled[f] += size(g);
            groups.iter().enumerate().filter(|(_, x)| **x == g).for_each(|(i, _)| fold[i] = f);
        }
        return Ok(fold);
    }
    if n < k {
        return Err(format!("{n} examples cannot fill {k} folds"));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    if let Some(classes) = classes {
        order.sort_by_key(|&i| classes[i]); // stable: each class keeps its shuffled order
    }
    for (position, i) in order.into_iter().enumerate() {
        fold[i] = position % k;
    }
    Ok(fold)
}

/// A tokenised dataset, ready to batch.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// Token ids and token type ids of each example.
    pub rows: Vec<(Vec<i64>, Vec<i64>)>,
    pub labels: Vec<f64>,
    pub pad_id: i64,
    pub classification: bool,
}

impl Encoded {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The batches of one epoch, as lists of example indices: a seeded shuffle (the seed and the
    /// epoch decide it alone), optionally bucketed by length (`bucket` batches per chunk).
    pub fn plan(&self, batch_size: usize, seed: u64, epoch: usize, bucket: Option<usize>) -> Vec<Vec<usize>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut rng);
        match bucket {
            None | Some(0) | Some(1) => order.chunks(batch_size).map(<[usize]>::to_vec).collect(),
            Some(k) => {
                let mut batches: Vec<Vec<usize>> = Vec::new();
                for chunk in order.chunks(batch_size * k) {
                    let mut chunk = chunk.to_vec();
                    chunk.sort_by_key(|&i| self.rows[i].0.len());
                    batches.extend(chunk.chunks(batch_size).map(<[usize]>::to_vec));
                }
                batches.shuffle(&mut rng);
                batches
            }
        }
    }

    /// The batches in file order (training without shuffling).
    pub fn sequential(&self, batch_size: usize) -> Vec<Vec<usize>> {
        (0..self.len()).collect::<Vec<_>>().chunks(batch_size).map(<[usize]>::to_vec).collect()
    }

    /// The batches for inference: the examples sorted by length (ties in file order), so that
    /// each batch pads to nearly its own length. The outputs go back to file order by index.
    pub fn by_length(&self, batch_size: usize) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_by_key(|&i| self.rows[i].0.len());
        order.chunks(batch_size).map(<[usize]>::to_vec).collect()
    }

    /// The inputs and targets of a batch (float targets for regression, int64 for classes).
    pub fn batch(&self, indices: &[usize], device: Device) -> (Batch, Tensor) {
        let rows: Vec<(Vec<i64>, Vec<i64>)> = indices.iter().map(|&i| self.rows[i].clone()).collect();
        let batch = Batch::from_rows(&rows, self.pad_id, device);
        let labels: Vec<f64> = indices.iter().map(|&i| self.labels[i]).collect();
        let kind = if self.classification { Kind::Int64 } else { Kind::Float };
        (batch, crate::precision::to_device_async(&Tensor::from_slice(&labels).to_kind(kind), device))
    }

    /// The number of real tokens in the examples `indices`, counted on the host.
    pub fn tokens(&self, indices: &[usize]) -> usize {
        indices.iter().map(|&i| self.rows[i].0.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    fn regression() -> ReadOptions {
        ReadOptions { columns: Columns::new("text", "score"), kind: TaskKind::Regression, skip_invalid: false, limit: None, subset: Subset::First, label_optional: false, group: None }
    }

    #[test]
    fn tsv_keeps_quotes_as_text_and_reads_crlf() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "a.tsv", "id\tscore\ttext\r\n1\t2.5\tThe ''Conan'' of \"our\" time\r\n2\t-1\tmeh\r\n");
        let d = Dataset::read(&p, &regression(), None).unwrap();
        assert_eq!(d.examples[0].text, "The ''Conan'' of \"our\" time");
        assert_eq!(d.examples[1].label, -1.0);
        assert_eq!(d.examples[1].line, 3);
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "b.tsv", "text\tscore\nfine\t1\nbad\tabc\n");
        let err = Dataset::read(&p, &regression(), None).unwrap_err().to_string();
        assert_eq!(err, format!("{}:3: column `score`: `abc` is not a number", p.display()));
        let p = write(dir.path(), "c.tsv", "text\tscore\n\t1\n");
        let err = Dataset::read(&p, &regression(), None).unwrap_err().to_string();
        assert_eq!(err, format!("{}:2: column `text` is empty", p.display()));
        let p = write(dir.path(), "d.tsv", "text\tscore\nx\tinf\n");
        assert!(Dataset::read(&p, &regression(), None).unwrap_err().to_string().contains("inf is not a finite number"));
        let p = write(dir.path(), "e.tsv", "sentence\tscore\nx\t1\n");
        let err = Dataset::read(&p, &regression(), None).unwrap_err().to_string();
        assert!(err.contains(":1: no column `text` in the header (columns: sentence, score)"), "{err}");
    }

    #[test]
    fn rows_whose_text_runs_over_several_lines_are_noted() {
        let dir = tempfile::tempdir().unwrap();
        // Line 3 opens a quote that only line 5 closes: two rows read as one.
        let p = write(dir.path(), "q.csv", "text,score\nfine,1\n\"opened,2\nswallowed,3\nclosed\",4\nlast,5\n");
        let d = Dataset::read(&p, &ReadOptions { columns: Columns::new("text", "score"), ..regression() }, None).unwrap();
        assert_eq!((d.len(), d.multiline.clone()), (3, vec![3]));
    }

    #[test]
    fn invalid_rows_can_be_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "f.tsv", "text\tscore\na\t1\nb\tx\nc\t2\n");
        let d = Dataset::read(&p, &ReadOptions { skip_invalid: true, ..regression() }, None).unwrap();
        assert_eq!((d.len(), d.skipped), (2, 1));
    }

    #[test]
    fn classes_come_from_the_training_file_and_unknown_ones_fail() {
        let dir = tempfile::tempdir().unwrap();
        let opts = ReadOptions { columns: Columns::new("text", "label"), kind: TaskKind::Classification, skip_invalid: false, limit: None, subset: Subset::First, label_optional: false, group: None };
        let train = write(dir.path(), "t.csv", "text,label\n\"a, b\",pos\nc,neg\nd,pos\n");
        let d = Dataset::read(&train, &opts, None).unwrap();
        assert_eq!(d.task, Task::Classification { labels: vec!["neg".into(), "pos".into()] });
        assert_eq!(d.examples[0].text, "a, b");
        assert_eq!(d.examples.iter().map(|e| e.label).collect::<Vec<_>>(), [1.0, 0.0, 1.0]);
        let Task::Classification { labels } = &d.task else { unreachable!() };
        let dev = write(dir.path(), "v.jsonl", "{\"text\": \"x\", \"label\": \"pos\"}\n{\"text\": \"y\", \"label\": \"meh\"}\n");
        let err = Dataset::read(&dev, &opts, Some(labels)).unwrap_err().to_string();
        assert!(err.ends_with("v.jsonl:2: column `label`: `meh` is not one of the training classes (neg, pos)"), "{err}");
    }

    #[test]
    fn plans_are_seeded_complete_and_bucketed() {
        let enc = Encoded {
            rows: (0..50).map(|i| (vec![1; 1 + (i * 7) % 13], vec![0; 1 + (i * 7) % 13])).collect(),
            labels: vec![0.0; 50],
            pad_id: 0,
            classification: false,
        };
        let a = enc.plan(8, 1, 0, None);
        assert_eq!(a, enc.plan(8, 1, 0, None));
        assert_ne!(a, enc.plan(8, 1, 1, None), "each epoch has its own order");
        let mut all: Vec<usize> = a.concat();
        all.sort();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
        let padded = |plan: &[Vec<usize>]| -> usize {
            plan.iter().map(|b| b.len() * b.iter().map(|&i| enc.rows[i].0.len()).max().unwrap()).sum()
        };
        let bucketed = enc.plan(8, 1, 0, Some(4));
        assert_eq!(bucketed.concat().len(), 50);
        assert!(padded(&bucketed) < padded(&a), "bucketing pads less: {} vs {}", padded(&bucketed), padded(&a));
    }

    #[test]
    fn a_random_subset_is_seeded_stratified_and_in_file_order() {
        // 30 of class a, 10 of class b, sorted by class as some files are.
        let labels: Vec<&str> = std::iter::repeat_n("a", 30).chain(std::iter::repeat_n("b", 10)).collect();
        let chosen = Subset::Random { seed: 7 }.choose(&labels, 8, true);
        assert_eq!(chosen.len(), 8);
        assert_eq!(chosen.iter().filter(|&&i| labels[i] == "b").count(), 2, "each class keeps its share: {chosen:?}");
        assert!(chosen.windows(2).all(|w| w[0] < w[1]), "file order");
        assert_eq!(chosen, Subset::Random { seed: 7 }.choose(&labels, 8, true), "seeded");
        assert_ne!(chosen, Subset::Random { seed: 8 }.choose(&labels, 8, true));
        assert_eq!(Subset::First.choose(&labels, 3, true), [0, 1, 2]);
        assert_eq!(Subset::Random { seed: 1 }.choose(&labels, 99, true).len(), 40);
    }

    #[test]
    fn folds_are_disjoint_covering_stratified_and_grouped() {
        let classes: Vec<usize> = (0..50).map(|i| usize::from(i % 5 == 0)).collect(); // 10 of class 1
        let folds = assign_folds(50, 5, 3, Some(&classes), None).unwrap();
        for f in 0..5 {
            let members: Vec<usize> = (0..50).filter(|&i| folds[i] == f).collect();
            assert_eq!(members.len(), 10, "fold {f}");
            assert_eq!(members.iter().filter(|&&i| classes[i] == 1).count(), 2, "fold {f} keeps the class share");
        }
        assert_eq!(folds, assign_folds(50, 5, 3, Some(&classes), None).unwrap(), "seeded");
        let groups: Vec<String> = (0..30).map(|i| format!("g{}", i / 3)).collect();
        let names: Vec<&str> = groups.iter().map(String::as_str).collect();
        let folds = assign_folds(30, 3, 1, None, Some(&names)).unwrap();
        for g in 0..10 {
            let f: Vec<usize> = (0..30).filter(|i| i / 3 == g).map(|i| folds[i]).collect();
            assert!(f.iter().all(|x| *x == f[0]), "group {g} stays in one fold");
        }
        assert!((0..3).all(|f| folds.iter().filter(|x| **x == f).count() == 12 || folds.iter().filter(|x| **x == f).count() == 9));
        assert!(assign_folds(3, 5, 0, None, None).unwrap_err().contains("3 examples cannot fill 5 folds"));
    }
}

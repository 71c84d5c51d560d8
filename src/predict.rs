//! Predictions: a fine-tuned model folder applied to a file, one row per input, with the
//! metrics when the file has labels.
//!
//! The file is read like training data (TSV, CSV or JSON Lines, every row checked); its label
//! column may be absent. Each row is identified by its `id` column, if one is named, or by its
//! line number. `predictions.tsv` holds `id`, the `label` when known, the `prediction` (the value
//! for regression, the class for classification) and, for classification, `p_<class>`: each
//! class's probability (softmax of the logits).
use std::path::Path;

use tch::{Device, Kind};

use crate::data::{Columns, Dataset, ReadOptions, Subset, TaskKind};
use crate::error::{Error, Result};
use crate::files::atomic_write;
use crate::metrics::Metrics;
use crate::model::{Model, Task};
use crate::train::{predict, score};

/// A model's predictions for the rows of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    pub task: Task,
    /// Each row's id (its id column, or its line number).
    pub ids: Vec<String>,
    /// The true label of each row, when the file has them (as written in the file).
    pub truth: Option<Vec<String>>,
    /// Regression: `[value]` per row; classification: each class's probability.
    pub outputs: Vec<Vec<f64>>,
    /// The metrics, when the file has labels.
    pub metrics: Option<Metrics>,
}

impl Predictions {
    /// Predicts every row of a dataset read for `model` (its classes, its max length).
    pub fn of(model: &Model, data: &Dataset, batch_size: usize) -> Result<Self> {
        let encoded = data.encode(model.tokenizer()?)?;
        let out = predict(model, &encoded, batch_size);
        let task = model.head.spec.task.clone();
        let metrics = data.labelled.then(|| score(&task, &out, &encoded.labels));
        let outputs: Vec<Vec<f64>> = match &task {
            Task::Regression => Vec::try_from(&out).expect("float outputs"),
            Task::Classification { .. } => Vec::try_from(&out.softmax(-1, Kind::Double)).expect("class probabilities"),
        };
        let name = |e: &crate::data::Example| match &task {
            Task::Regression => e.label.to_string(),
            Task::Classification { labels } => labels[e.label as usize].clone(),
        };
        let truth = data.labelled.then(|| data.examples.iter().map(name).collect());
        Ok(Predictions { ids: data.examples.iter().map(|e| e.id.clone()).collect(), truth, outputs, metrics, task })
    }

    /// The predicted value (regression) or class (classification) of row `i`.
    pub fn prediction(&self, i: usize) -> String {
        predicted(&self.task, &self.outputs[i])
    }

    /// The predictions as TSV: `id`, `label` (when known), `prediction`, and `p_<class>` per class.
    pub fn to_tsv(&self) -> String {
        let mut header = vec!["id".to_string()];
        if self.truth.is_some() {
            header.push("label".into());
        }
        header.push("prediction".into());
        if let Task::Classification { labels } = &self.task {
            header.extend(labels.iter().map(|l| format!("p_{l}")));
        }
        let mut out = header.join("\t") + "\n";
        for i in 0..self.ids.len() {
            let mut row = vec![self.ids[i].clone()];
            if let Some(t) = &self.truth {
                row.push(t[i].clone());
            }
            row.push(self.prediction(i));
            if matches!(self.task, Task::Classification { .. }) {
                row.extend(self.outputs[i].iter().map(|p| p.to_string()));
            }
            out.push_str(&(row.join("\t") + "\n"));
        }
        out
    }

    /// Writes [`Predictions::to_tsv`] to a file, atomically.
    pub fn write_tsv(&self, path: &Path) -> Result<()> {
        atomic_write(path, self.to_tsv().as_bytes())
    }
}

/// The predicted value (regression) or most probable class (classification) of one output row.
pub fn predicted(task: &Task, output: &[f64]) -> String {
    match task {
        Task::Regression => output[0].to_string(),
        Task::Classification { labels } => {
            let best = (0..output.len()).fold(0, |b, c| if output[c] > output[b] { c } else { b });
            labels[best].clone()
        }
    }
}

/// Which columns to read, as the user named them; what is not named comes from the columns the
/// model was trained on (its `columns.json`), then from the defaults `text` and `label`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColumnChoice {
    pub text: Option<String>,
    pub pair: Option<String>,
    pub label: Option<String>,
    pub id: Option<String>,
}

/// Predicts every row of `file` with the model saved in `model_dir` (a run's `best/` or `swa/`),
/// reading exactly the columns named in `columns` (the label column may be absent from the file;
/// without an id column, rows are identified by their line number).
pub fn predict_file(model_dir: &Path, file: &Path, columns: &Columns) -> Result<Predictions> {
    let choice = ColumnChoice { text: Some(columns.text.clone()), pair: columns.pair.clone(), label: Some(columns.label.clone()), id: columns.id.clone() };
    let (model, _) = load(model_dir)?;
    read_and_predict(&model, file, columns.clone(), &choice).map(|(p, _)| p)
}

/// Predicts every row of `file` with the model saved in `model_dir`, the columns not named in
/// `choice` taken from those the model was trained on. A label column the user did not name that
/// does not fit the model's task (text where a score was trained) is ignored, with a note:
/// the predictions are then made without metrics. Returns the predictions and such notes.
pub fn predict_with(model_dir: &Path, file: &Path, choice: &ColumnChoice) -> Result<(Predictions, Vec<String>)> {
    let (model, trained) = load(model_dir)?;
    let (data, notes) = read_input(&model, trained, file, choice)?;
    Ok((Predictions::of(&model, &data, 128)?, notes))
}

/// The model of a fine-tuned model folder and the columns it was trained on.
pub fn load(model_dir: &Path) -> Result<(Model, Option<Columns>)> {
    if model_dir.is_dir() && !model_dir.join("tunelab.json").is_file() {
        return Err(Error::Invalid(format!("{}: not a fine-tuned model (no tunelab.json): give a run's best/ or swa/ folder", model_dir.display())));
    }
    let model = Model::load(model_dir, None, Device::cuda_if_available())?;
    Ok((model, crate::run_dir::trained_columns(model_dir)?))
}

/// Reads `file` for `model` (its task and classes): the columns named in `choice`, the others
/// from `trained` (the columns the model was trained on), then `text` and `label`. Returns the
/// rows and the notes about a label column that was ignored.
pub fn read_input(model: &Model, trained: Option<Columns>, file: &Path, choice: &ColumnChoice) -> Result<(Dataset, Vec<String>)> {
    let trained = trained.unwrap_or_else(|| Columns::new("text", "label"));
    let header = crate::data::header(file)?;
    let saved_id = trained.id.filter(|id| header.iter().any(|h| h == id));
    let columns = Columns {
        text: choice.text.clone().unwrap_or(trained.text),
        pair: choice.pair.clone().or(trained.pair),
        label: choice.label.clone().unwrap_or(trained.label),
        id: choice.id.clone().or(saved_id),
    };
    read_columns(model, file, columns, choice)
}

fn read_and_predict(model: &Model, file: &Path, columns: Columns, choice: &ColumnChoice) -> Result<(Predictions, Vec<String>)> {
    let (data, notes) = read_columns(model, file, columns, choice)?;
    Ok((Predictions::of(model, &data, 128)?, notes))
}

fn read_columns(model: &Model, file: &Path, columns: Columns, choice: &ColumnChoice) -> Result<(Dataset, Vec<String>)> {
    let (kind, classes) = match &model.head.spec.task {
        Task::Regression => (TaskKind::Regression, None),
        Task::Classification { labels } => (TaskKind::Classification, Some(labels.clone())),
    };
    let options = |columns: Columns| ReadOptions { label_optional: true, subset: Subset::First, ..ReadOptions::new(columns, kind) };
    let mut notes = Vec::new();
    let data = match Dataset::read(file, &options(columns.clone()), classes.as_deref()) {
        Err(Error::Data { what, line, .. }) if choice.label.is_none() && what.starts_with(&format!("column `{}`", columns.label)) => {
            let at = line.map(|l| format!(" (line {l}: {what})")).unwrap_or_default();
            notes.push(format!(
                "{}: column `{}` does not hold this model's labels{at}; predicting without metrics (name the label column with --label)",
                file.display(),
                columns.label
            ));
            // A column name no header has: the file is read as unlabelled.
            Dataset::read(file, &options(Columns { label: "\0".into(), ..columns }), classes.as_deref())?
        }
        other => other?,
    };
    Ok((data, notes))
}

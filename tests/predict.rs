//! Predictions of a fine-tuned model on a file: one row per input, ids kept, metrics when the
//! file has labels (equal to the metrics of the written predictions), and files without labels.
mod common;

use std::path::Path;
use std::process::Command;

use tunelab::data::TaskKind;
use tunelab::{DataSpec, RunControl, RunSpec, TrainConfig};

fn train(dir: &Path, kind: TaskKind, label: &str) -> std::path::PathBuf {
    let spec = RunSpec {
        model: common::fixture("tiny_bert"),
        pooling: tunelab::Pooling::Pooler,
        head: Default::default(),
        data: DataSpec::new(common::fixture("vader-sample/train.tsv"), common::fixture("vader-sample/dev.tsv"), "text", label, kind),
        recipe: Default::default(),
        training: TrainConfig { epochs: 1, batch_size: 32, threads: Some(1), max_length: 64, ..TrainConfig::default() },
    };
    spec.run_with(&RunControl { out: Some(dir.to_path_buf()), quiet: true, ..RunControl::default() }).unwrap().dir.join("best")
}

fn read_tsv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split('\t').map(str::to_string).collect();
    (header, lines.map(|l| l.split('\t').map(str::to_string).collect()).collect())
}

#[test]
fn regression_predictions_carry_ids_and_their_metrics() {
    let root = tempfile::tempdir().unwrap();
    let best = train(&root.path().join("run"), TaskKind::Regression, "score");
    let out = root.path().join("pred.tsv");
    let dev = common::fixture("vader-sample/dev.tsv");
    let cli = Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .args(["predict", best.to_str().unwrap(), dev.to_str().unwrap(), "--label", "score", "--id", "id", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let stdout = String::from_utf8_lossy(&cli.stdout);
    assert!(stdout.contains("60 predictions written") && stdout.contains("rmse"), "{stdout}");

    let (header, rows) = read_tsv(&out);
    assert_eq!(header, ["id", "label", "prediction"]);
    let (_, source) = read_tsv(&dev);
    assert_eq!(rows.len(), source.len());
    for (r, s) in rows.iter().zip(&source) {
        assert_eq!(r[0], s[0], "ids in file order");
        assert_eq!(r[1].parse::<f64>().unwrap(), s[1].parse::<f64>().unwrap(), "labels in file order");
    }
    // The reported metrics are those of the written predictions.
    let p: Vec<f64> = rows.iter().map(|r| r[2].parse().unwrap()).collect();
    let y: Vec<f64> = rows.iter().map(|r| r[1].parse().unwrap()).collect();
    let rmse = (p.iter().zip(&y).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / p.len() as f64).sqrt();
    let predictions = tunelab::predict::predict_file(&best, &dev, &tunelab::data::Columns { id: Some("id".into()), ..tunelab::data::Columns::new("text", "score") }).unwrap();
    assert!((predictions.metrics.unwrap()["rmse"] - rmse).abs() < 1e-12);

    // A file without the label column: the same predictions, no metrics; ids are line numbers.
    let bare = root.path().join("bare.tsv");
    let texts: String = source.iter().map(|s| format!("{}\n", s[3])).collect();
    std::fs::write(&bare, format!("text\n{texts}")).unwrap();
    let unlabelled = tunelab::predict::predict_file(&best, &bare, &tunelab::data::Columns::new("text", "score")).unwrap();
    assert!(unlabelled.metrics.is_none() && unlabelled.truth.is_none());
    assert_eq!(unlabelled.ids[0], "2");
    for (i, v) in p.iter().enumerate() {
        assert!((unlabelled.outputs[i][0] - v).abs() < 1e-9);
    }
}

#[test]
fn classification_predictions_give_each_class_probability() {
    let root = tempfile::tempdir().unwrap();
    let best = train(&root.path().join("run"), TaskKind::Classification, "label");
    let columns = tunelab::data::Columns { id: Some("id".into()), ..tunelab::data::Columns::new("text", "label") };
    let p = tunelab::predict::predict_file(&best, &common::fixture("vader-sample/dev.tsv"), &columns).unwrap();
    let out = root.path().join("pred.tsv");
    p.write_tsv(&out).unwrap();
    let (header, rows) = read_tsv(&out);
    assert_eq!(header, ["id", "label", "prediction", "p_negative", "p_positive"]);
    let mut correct = 0;
    for r in &rows {
        let (neg, pos): (f64, f64) = (r[3].parse().unwrap(), r[4].parse().unwrap());
        assert!((neg + pos - 1.0).abs() < 1e-9);
        assert_eq!(r[2], if pos > neg { "positive" } else { "negative" });
        correct += usize::from(r[1] == r[2]);
    }
    let accuracy = p.metrics.unwrap()["accuracy"];
    assert!((accuracy - correct as f64 / rows.len() as f64).abs() < 1e-12);
}

//! `tunelab predict CV_FOLDER FILE`: every fold's model predicts, the mean is the prediction
//! (issue 21, item 2), and on the cross-validation's own test file its score is `cv.json`'s.
mod common;

use std::process::Command;

use tunelab::data::TaskKind;
use tunelab::spec::Cv;
use tunelab::{DataSpec, RunSpec, TrainConfig};

fn cv_spec(label: &str, kind: TaskKind) -> RunSpec {
    let mut data = DataSpec::new(common::fixture("vader-sample/train.tsv"), "unused", "text", label, kind);
    data.dev = None;
    data.columns.id = Some("id".into());
    data.cv = Some(Cv::new(3, 5));
    data.test = Some(common::fixture("vader-sample/dev.tsv"));
    RunSpec {
        model: common::fixture("tiny_bert"),
        pooling: tunelab::Pooling::Pooler,
        head: Default::default(),
        data,
        recipe: Default::default(),
        training: TrainConfig { epochs: 1, batch_size: 32, threads: Some(1), max_length: 64, eval_batch_size: 16, ..TrainConfig::default() },
    }
}

fn run_cv(root: &std::path::Path, spec: &RunSpec) -> (std::path::PathBuf, tunelab::cv::CvResult) {
    let control = tunelab::RunControl { out: Some(root.join("cv")), quiet: true, ..Default::default() };
    let outcome = tunelab::cv::run(spec, &control, None).unwrap();
    (outcome.dir, outcome.result.unwrap())
}

fn predict(dir: &std::path::Path, out: &std::path::Path) -> String {
    let test = common::fixture("vader-sample/dev.tsv");
    let o = Command::new(env!("CARGO_BIN_EXE_tunelab")).args(["predict", dir.to_str().unwrap(), test.to_str().unwrap(), "--out", out.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_fold_ensemble_predicts_the_test_file_as_the_cross_validation_scored_it() {
    let root = tempfile::tempdir().unwrap();
    let (dir, result) = run_cv(root.path(), &cv_spec("score", TaskKind::Regression));
    let out = root.path().join("p.tsv");
    let stdout = predict(&dir, &out);
    assert!(stdout.contains("the mean of 3 fold models"), "{stdout}");
    let rmse: f64 = stdout.split("rmse ").nth(1).unwrap().split(',').next().unwrap().trim().parse().unwrap();
    assert!((rmse - result.test_score.unwrap()).abs() < 5e-5, "printed {rmse}, cv.json {:?}", result.test_score);

    let (ensemble, _) = tunelab::cv::predict_folds(&dir, &common::fixture("vader-sample/dev.tsv"), &Default::default()).unwrap();
    assert!((ensemble.mean.metrics.as_ref().unwrap()["rmse"] - result.test_score.unwrap()).abs() < 1e-6);
    // The TSV: id (the folds' id column), label, the mean, then each fold's prediction.
    let tsv = std::fs::read_to_string(&out).unwrap();
    let mut lines = tsv.lines();
    assert_eq!(lines.next().unwrap(), "id\tlabel\tprediction\tfold_0\tfold_1\tfold_2");
    for line in lines {
        let f: Vec<f64> = line.split('\t').skip(2).map(|x| x.parse().unwrap()).collect();
        assert!((f[0] - (f[1] + f[2] + f[3]) / 3.0).abs() < 1e-9, "{line}");
    }
    assert!(tsv.lines().nth(1).unwrap().starts_with("9004\t"));
}

#[test]
fn a_classifier_ensemble_averages_probabilities_and_prints_its_classes() {
    let root = tempfile::tempdir().unwrap();
    let (dir, result) = run_cv(root.path(), &cv_spec("label", TaskKind::Classification));
    let out = root.path().join("p.tsv");
    let stdout = predict(&dir, &out);
    let (ensemble, _) = tunelab::cv::predict_folds(&dir, &common::fixture("vader-sample/dev.tsv"), &Default::default()).unwrap();
    let m = ensemble.mean.metrics.as_ref().unwrap();
    assert!((m[&result.metric] - result.test_score.unwrap()).abs() < 1e-6, "{m:?} {result:?}");
    for row in &ensemble.mean.outputs {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9, "mean probabilities sum to 1");
    }
    assert!(stdout.contains("precision") && stdout.contains("confusion (rows: true class, columns: predicted)"), "{stdout}");
    let header = std::fs::read_to_string(&out).unwrap().lines().next().unwrap().to_string();
    assert_eq!(header, "id\tlabel\tprediction\tp_negative\tp_positive\tfold_0\tfold_1\tfold_2");
}

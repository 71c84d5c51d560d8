//! The smaller rough edges of a researcher's second day (issue 21, items 6 and 7).
mod common;

use std::process::Command;

use tunelab::data::TaskKind;
use tunelab::spec::Cv;
use tunelab::techniques::Reinit;
use tunelab::{DataSpec, RunSpec, TrainConfig};

fn spec() -> RunSpec {
    RunSpec {
        model: common::fixture("tiny_bert"),
        pooling: tunelab::Pooling::Pooler,
        head: Default::default(),
        data: DataSpec::new(common::fixture("vader-sample/train.tsv"), common::fixture("vader-sample/dev.tsv"), "text", "score", TaskKind::Regression),
        recipe: Default::default(),
        training: TrainConfig { epochs: 1, batch_size: 32, max_steps: Some(3), threads: Some(1), max_length: 64, ..TrainConfig::default() },
    }
}

#[test]
fn spec_defaults_spells_out_the_test_file_keys() {
    let out = Command::new(env!("CARGO_BIN_EXE_tunelab")).args(["spec", "--defaults"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"test\": null") && text.contains("\"test_limit\": null"), "{text}");
}

#[test]
fn a_cross_validation_row_counts_its_folds_steps() {
    let root = tempfile::tempdir().unwrap();
    let mut base = spec();
    base.data.dev = None;
    base.data.cv = Some(Cv::new(2, 0));
    let ablation = tunelab::ablation::Ablation { recipes: vec![("baseline".into(), Default::default())], seeds: vec![1], out: root.path().join("ab"), ..Default::default() };
    let rows = ablation.run(&base, None, &tunelab::RunControl { quiet: true, ..Default::default() }).unwrap();
    assert_eq!(rows[0].steps, 6, "two folds of 3 steps");
}

#[test]
fn re_initialising_a_pooler_that_nothing_reads_is_a_warning() {
    let mut s = spec();
    s.recipe.reinit = Some(Reinit { top_layers: 1, pooler: true, ..Reinit::default() });
    assert!(s.plan().unwrap().warnings.iter().all(|w| !w.contains("reinit.pooler")));
    s.pooling = tunelab::Pooling::Mean;
    let warnings = s.plan().unwrap().warnings;
    assert!(warnings.iter().any(|w| w.contains("reinit.pooler is true") && w.contains("`mean`")), "{warnings:?}");
}

#[test]
fn test_metrics_reach_tensorboard() {
    let root = tempfile::tempdir().unwrap();
    let mut s = spec();
    s.data.test = Some(common::fixture("vader-sample/dev.tsv"));
    let control = tunelab::RunControl { out: Some(root.path().join("run")), quiet: true, tensorboard: true, ..Default::default() };
    let run = s.run_with(&control).unwrap();
    assert!(run.metrics.test.is_some());
    let event = std::fs::read_dir(&run.dir).unwrap().flatten().find(|e| e.file_name().to_string_lossy().starts_with("events.out.tfevents.")).unwrap();
    let bytes = std::fs::read(event.path()).unwrap();
    let has = |tag: &str| bytes.windows(tag.len()).any(|w| w == tag.as_bytes());
    assert!(has("test/rmse") && has("dev/rmse"), "the test score is logged next to the dev scores");
}

#[test]
fn merge_refuses_a_folder_still_being_written() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("ablation");
    std::fs::create_dir_all(dir.join("baseline-seed1")).unwrap();
    std::fs::write(dir.join("results-0-of-1.jsonl"), "").unwrap();
    // A run of this ablation held by a live process (this test's).
    std::fs::write(dir.join("baseline-seed1/lock"), std::process::id().to_string()).unwrap();
    let err = tunelab::ablation::merge(&dir).unwrap_err().to_string();
    assert!(err.contains("is still being written by process") && err.contains("merge the ablation once it has finished"), "{err}");
}

/// A new user's day two: two finished runs tabulated by their folders, one of them with notes
/// of the researcher's beside it; what is not a run is named, not silently dropped.
#[test]
fn compare_takes_run_folders_and_a_finished_run_with_notes_still_opens() {
    let root = tempfile::tempdir().unwrap();
    let control = |name: &str| tunelab::RunControl { out: Some(root.path().join(name)), quiet: true, ..Default::default() };
    let a = spec().run_with(&control("a")).unwrap();
    let mut other = spec();
    other.recipe.lr = tunelab::groups::LrLayout::Uniform { lr: 5e-4 };
    let b = other.run_with(&control("b")).unwrap();
    std::fs::write(b.dir.join("NOTES.md"), "mine").unwrap();
    let script = root.path().join("compare.rhai");
    let (a, b) = (a.dir.display().to_string(), b.dir.display().to_string());
    std::fs::write(&script, format!("print(compare([\"{a}\", resume(\"{b}\")]));\n")).unwrap();
    let run = |path: &std::path::Path| Command::new(env!("CARGO_BIN_EXE_tunelab")).args(["run", path.to_str().unwrap(), "--quiet"]).output().unwrap();
    let out = run(&script);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.lines().any(|l| l.starts_with(&a)) && table.lines().any(|l| l.starts_with(&b)), "{table}");
    assert_eq!(std::fs::read_to_string(std::path::Path::new(&b).join("NOTES.md")).unwrap(), "mine");

    std::fs::write(&script, format!("print(compare([\"{a}\", 42]));\n")).unwrap();
    let out = run(&script);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("compare: item 1 is neither a run"), "{err}");
}

/// A notebook's live line follows the runs of an ablation (it showed nothing until the end).
#[test]
fn an_ablation_reports_its_runs_progress() {
    let root = tempfile::tempdir().unwrap();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = seen.clone();
    let hook = tunelab::progress::ProgressHook(std::sync::Arc::new(move |_: &tunelab::progress::Progress| {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }));
    let ablation = tunelab::ablation::Ablation { recipes: vec![("baseline".into(), Default::default())], seeds: vec![1, 2], out: root.path().join("ab"), ..Default::default() };
    let control = tunelab::RunControl { quiet: true, progress: Some(hook), ..Default::default() };
    ablation.run(&spec(), None, &control).unwrap();
    assert!(seen.load(std::sync::atomic::Ordering::SeqCst) >= 6, "two runs of 3 steps: {} progress calls", seen.load(std::sync::atomic::Ordering::SeqCst));
}

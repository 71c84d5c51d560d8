//! Runs are never lost or mixed, and bad inputs that used to pass silently are clean errors:
//! one line naming the file, line, field or limit, a non-zero exit, no panic.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tunelab::data::TaskKind;
use tunelab::groups::LrLayout;
use tunelab::recipe::{Eval, Recipe};
use tunelab::{DataSpec, RunSpec, TrainConfig};

fn spec() -> RunSpec {
    RunSpec {
        model: common::fixture("tiny_bert"),
        pooling: tunelab::Pooling::Pooler,
        head: Default::default(),
        data: DataSpec::new(common::fixture("vader-sample/train.tsv"), common::fixture("vader-sample/dev.tsv"), "text", "score", TaskKind::Regression),
        recipe: Recipe { lr: LrLayout::Uniform { lr: 1e-3 }, evaluation: Eval { every: Some(4), ..Eval::default() }, ..Recipe::default() },
        training: TrainConfig { epochs: 1, batch_size: 32, max_steps: Some(8), threads: Some(1), max_length: 64, ..TrainConfig::default() },
    }
}

fn write_spec(dir: &Path, spec: &RunSpec) -> PathBuf {
    let path = dir.join("spec-in.json");
    std::fs::write(&path, spec.to_json()).unwrap();
    path
}

fn tunelab(args: &[&str], runs: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tunelab")).args(args).env("TUNELAB_RUNS", runs).output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn one_line_error(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure, got: {}", String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
    stderr
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// 1, 2: an existing run is never overwritten without --force; a replay goes to a new folder.
#[test]
fn runs_are_never_overwritten_and_replays_go_to_a_new_folder() {
    let root = tempfile::tempdir().unwrap();
    let runs = root.path().join("runs");
    let spec_path = write_spec(root.path(), &spec());
    let a = root.path().join("A");
    ok(&tunelab(&["train", s(&spec_path), "--out", s(&a), "--quiet"], &runs));
    let before = std::fs::read(a.join("best/model.safetensors")).unwrap();

    let err = one_line_error(&tunelab(&["train", s(&spec_path), "--out", s(&a), "--quiet"], &runs));
    assert!(err.contains("already holds a run") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(a.join("best/model.safetensors")).unwrap(), before, "the run is untouched");

    // The README's replay: the stored specification carries no folder, so it trains anew elsewhere.
    let out = ok(&tunelab(&["train", s(&a.join("spec.json")), "--quiet"], &runs));
    let replay: Vec<PathBuf> = std::fs::read_dir(&runs).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(replay.len(), 1, "{out}");
    assert!(replay[0].file_name().unwrap().to_string_lossy().starts_with("run-"));
    assert_eq!(std::fs::read(replay[0].join("best/model.safetensors")).unwrap(), before, "the replay reproduces the run");

    // --force empties the folder first: nothing of the old run stays mixed in.
    let mut other = spec();
    other.recipe.swa = None;
    std::fs::create_dir_all(a.join("swa")).unwrap();
    let other_path = root.path().join("other.json");
    std::fs::write(&other_path, other.to_json()).unwrap();
    ok(&tunelab(&["train", s(&other_path), "--out", s(&a), "--quiet", "--force"], &runs));
    assert!(!a.join("swa").exists(), "--force emptied the folder");
    assert_eq!(RunSpec::from_file(&a.join("spec.json")).unwrap(), other);
}

/// Starts a run that waits at its first optimizer step (holding the run folder's lock).
fn paused_run(spec_path: &Path, out: &Path) -> std::process::Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .args(["train", s(spec_path), "--out", s(out), "--quiet"])
        .env("TUNELAB_FAILPOINT", "step:1")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stderr.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "failpoint step reached");
    child
}

/// 3: two processes never write one run.
#[test]
fn a_run_folder_is_written_by_one_process_at_a_time() {
    let root = tempfile::tempdir().unwrap();
    let spec_path = write_spec(root.path(), &spec());
    let dir = root.path().join("run");
    let mut child = paused_run(&spec_path, &dir);
    let err = one_line_error(&tunelab(&["resume", s(&dir), "--quiet"], root.path()));
    assert!(err.contains(&format!("is being written by process {}", child.id())), "{err}");
    let err = one_line_error(&tunelab(&["train", s(&spec_path), "--out", s(&dir), "--quiet", "--force"], root.path()));
    assert!(err.contains("is being written by process"), "{err}");
    child.kill().unwrap();
    child.wait().unwrap();
    // The dead process's lock is taken over, with a note.
    let out = tunelab(&["resume", s(&dir), "--quiet"], root.path());
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("took over the lock left by process"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// 4: a resume refuses an edited specification or another thread count.
#[test]
fn resume_refuses_an_edited_specification_or_thread_count() {
    let root = tempfile::tempdir().unwrap();
    let spec_path = write_spec(root.path(), &spec());
    let dir = root.path().join("run");
    ok(&tunelab(&["train", s(&spec_path), "--out", s(&dir), "--quiet", "--stop-after", "4"], root.path()));
    let stored = dir.join("spec.json");
    let original = std::fs::read_to_string(&stored).unwrap();
    let mut edited = spec();
    edited.recipe.lr = LrLayout::Uniform { lr: 5e-4 };
    edited.training.eval_batch_size = 7;
    std::fs::write(&stored, edited.to_json()).unwrap();
    let err = one_line_error(&tunelab(&["resume", s(&dir), "--quiet"], root.path()));
    assert!(err.contains("spec.json: changed since the run started (recipe.lr.lr, training.eval_batch_size)"), "{err}");
    std::fs::write(&stored, original).unwrap();

    // Without training.threads, the run records libtorch's thread count and holds the resume to it.
    let mut free = spec();
    free.training.threads = None;
    let free_path = root.path().join("free.json");
    std::fs::write(&free_path, free.to_json()).unwrap();
    let dir2 = root.path().join("run2");
    let started = Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .args(["train", s(&free_path), "--out", s(&dir2), "--quiet", "--stop-after", "4"])
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap();
    ok(&started);
    let out = Command::new(env!("CARGO_BIN_EXE_tunelab")).args(["resume", s(&dir2), "--quiet"]).env("OMP_NUM_THREADS", "2").output().unwrap();
    let err = one_line_error(&out);
    assert!(err.contains("the run started with 1 threads and this process has 2"), "{err}");
    ok(&tunelab(&["resume", s(&dir), "--quiet"], root.path()));
}

/// 5: merge refuses results of different shard splits and duplicate runs.
#[test]
fn merge_refuses_mixed_splits_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let row = |seed: u64| format!("{{\"recipe\":\"base\",\"seed\":{seed},\"metric\":\"rmse\",\"best\":1.0,\"swa\":null,\"steps\":1,\"seconds\":1.0,\"dir\":\"x\"}}\n");
    std::fs::write(dir.path().join("results-0-of-4.jsonl"), row(1)).unwrap();
    std::fs::write(dir.path().join("results-0-of-2.jsonl"), row(1)).unwrap();
    let err = one_line_error(&tunelab(&["merge", s(dir.path())], dir.path()));
    assert!(err.contains("results of different shard splits") && err.contains("results-0-of-4.jsonl"), "{err}");
    std::fs::remove_file(dir.path().join("results-0-of-4.jsonl")).unwrap();
    std::fs::write(dir.path().join("results-1-of-2.jsonl"), row(1)).unwrap();
    let err = one_line_error(&tunelab(&["merge", s(dir.path())], dir.path()));
    assert!(err.contains("results-1-of-2.jsonl: recipe `base` with seed 1 appears twice"), "{err}");
}

/// 10: --stop-after 0 would leave nothing to resume.
#[test]
fn stopping_after_zero_steps_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let spec_path = write_spec(root.path(), &spec());
    let err = one_line_error(&tunelab(&["train", s(&spec_path), "--out", s(&root.path().join("r")), "--stop-after", "0"], root.path()));
    assert!(err.contains("stop after 0 steps"), "{err}");
}

fn run_err(spec: &RunSpec, root: &Path) -> String {
    let path = root.join(format!("spec-{}.json", std::process::id()));
    std::fs::write(&path, spec.to_json()).unwrap();
    let out = tunelab(&["train", s(&path), "--out", s(&root.join("run")), "--quiet"], root);
    one_line_error(&out)
}

/// 11: a tab inside a TSV text is an error naming the line (or skipped and counted).
#[test]
fn a_tsv_row_with_more_fields_than_the_header_is_an_error() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("tabs.tsv");
    std::fs::write(&data, "text\tscore\ngood film\t1.5\nbad\tfilm\t-2\nfine film\t0.5\n").unwrap();
    let mut sp = spec();
    sp.data.train = data.clone();
    let err = run_err(&sp, root.path());
    assert!(err.contains(&format!("{}:3: 3 fields, but the header has 2 (a tab inside a text?", data.display())), "{err}");
    sp.data.skip_invalid = true;
    let (train, _) = sp.data.load().unwrap();
    assert_eq!((train.len(), train.skipped), (2, 1));
}

/// 12: max_length above the model's positions is refused before training.
#[test]
fn max_length_beyond_the_position_embeddings_is_an_error() {
    let root = tempfile::tempdir().unwrap();
    let mut sp = spec();
    sp.training.max_length = 1000;
    let err = run_err(&sp, root.path());
    assert!(err.contains("training.max_length is 1000") && err.contains("at most 64 positions"), "{err}");
    assert!(!root.path().join("run").exists(), "nothing was written");
}

/// 13: classification on a score column, or with absurdly many classes, suggests regression;
/// the classes are those of the rows used.
#[test]
fn classification_labels_are_checked() {
    let root = tempfile::tempdir().unwrap();
    let mut sp = spec();
    sp.data.kind = TaskKind::Classification;
    let err = run_err(&sp, root.path());
    assert!(err.contains("column `score` holds numbers with fractions") && err.contains("kind: \"regression\""), "{err}");

    let data = root.path().join("many.tsv");
    let rows: String = (0..1200).map(|i| format!("text {i}\tclass{i}\n")).collect();
    std::fs::write(&data, format!("text\tlabel\n{rows}")).unwrap();
    let options = tunelab::data::ReadOptions { subset: tunelab::data::Subset::First, ..tunelab::data::ReadOptions::new(tunelab::data::Columns::new("text", "label"), TaskKind::Classification) };
    let err = tunelab::data::Dataset::read(&data, &options, None).unwrap_err().to_string();
    assert!(err.contains("1200 distinct labels (more than 1000)"), "{err}");
    // With a limit, only the rows used make the classes.
    let limited = tunelab::data::ReadOptions { limit: Some(3), ..options };
    let set = tunelab::data::Dataset::read(&data, &limited, None).unwrap();
    assert_eq!(set.task, tunelab::Task::Classification { labels: vec!["class0".into(), "class1".into(), "class2".into()] });
}

/// 14: a diverged run stops, naming the step and the value; LR 0 is an error; an LLRD decay
/// above 1 is a warning.
#[test]
fn divergence_and_implausible_learning_rates_are_not_silent() {
    let root = tempfile::tempdir().unwrap();
    let mut sp = spec();
    sp.recipe.lr = LrLayout::Uniform { lr: 1000.0 };
    sp.training.clip_grad_norm = None;
    let err = run_err(&sp, root.path());
    assert!(err.contains("the run diverged: the dev loss reached") && err.contains("at optimizer step 4"), "{err}");

    let root = tempfile::tempdir().unwrap();
    sp.recipe.lr = LrLayout::Uniform { lr: 0.0 };
    let err = run_err(&sp, root.path());
    assert!(err.contains("lr must be above 0, got 0"), "{err}");

    let root = tempfile::tempdir().unwrap();
    sp.recipe.lr = LrLayout::Llrd { top_lr: 1e-4, decay: 1.5, head_lr: 1e-4 };
    let path = root.path().join("warn.json");
    std::fs::write(&path, sp.to_json()).unwrap();
    let out = tunelab(&["train", s(&path), "--out", s(&root.path().join("run")), "--quiet"], root.path());
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: LLRD decay 1.5 is above 1"));
    let metrics = tunelab::run_dir::RunDir::open(&root.path().join("run")).unwrap().read_metrics().unwrap();
    assert_eq!(metrics.warnings.len(), 1);
}

/// 6: a run killed before its first checkpoint resumes from its start.
#[test]
fn a_run_without_a_checkpoint_resumes_from_its_start() {
    let root = tempfile::tempdir().unwrap();
    let spec_path = write_spec(root.path(), &spec());
    let dir = root.path().join("run");
    let mut child = paused_run(&spec_path, &dir);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!dir.join("last").exists());
    let out = ok(&tunelab(&["resume", s(&dir), "--quiet"], root.path()));
    assert!(out.contains("run finished after 8 of 8 steps"), "{out}");
}

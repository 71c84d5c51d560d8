//! Progress outside a terminal: a run whose stderr is a file or a pipe (nohup, Slurm, a
//! notebook's subprocess) writes plain progress lines with an ETA.
mod common;

use std::process::{Command, Stdio};

use tunelab::data::TaskKind;
use tunelab::recipe::{Eval, Recipe};
use tunelab::{DataSpec, RunSpec, TrainConfig};

fn spec() -> RunSpec {
    RunSpec {
        model: common::fixture("tiny_bert"),
        pooling: tunelab::Pooling::Pooler,
        head: Default::default(),
        data: DataSpec::new(common::fixture("vader-sample/train.tsv"), common::fixture("vader-sample/dev.tsv"), "text", "score", TaskKind::Regression),
        recipe: Recipe { evaluation: Eval { every: Some(2), ..Eval::default() }, ..Recipe::default() },
        training: TrainConfig { epochs: 1, batch_size: 16, max_steps: Some(6), threads: Some(1), max_length: 64, ..TrainConfig::default() },
    }
}

/// Like `tunelab train … > log 2>&1 &`: stdout and stderr go to one file, not a terminal.
fn background(args: &[&str], log: &std::path::Path) -> String {
    let file = std::fs::File::create(log).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .status()
        .unwrap();
    let text = std::fs::read_to_string(log).unwrap();
    assert!(status.success(), "{text}");
    text
}

#[test]
fn a_background_run_writes_progress_lines_with_an_eta() {
    let root = tempfile::tempdir().unwrap();
    let spec_path = root.path().join("spec.json");
    std::fs::write(&spec_path, spec().to_json()).unwrap();
    let out = root.path().join("run");
    let text = background(&["train", spec_path.to_str().unwrap(), "--out", out.to_str().unwrap(), "--progress-every", "0"], &root.path().join("log"));
    assert!(text.contains("training: 6 optimizer steps from step 0"), "{text}");
    for step in 1..=6 {
        assert!(text.contains(&format!("step {step}/6 (")), "step {step}: {text}");
    }
    let line = text.lines().find(|l| l.starts_with("step 3/6")).unwrap();
    assert!(line.contains("examples/s") && line.contains("loss ") && line.contains("dev rmse ") && line.contains("elapsed ") && line.contains("ETA "), "{line}");
    assert!(!text.contains('\r') && !text.contains("\u{1b}["), "no terminal control codes in a log: {text:?}");

    // With the default interval (30 s) a short run still says where it starts and where it ended.
    let again = root.path().join("again");
    let text = background(&["train", spec_path.to_str().unwrap(), "--out", again.to_str().unwrap()], &root.path().join("log2"));
    assert!(text.contains("a progress line every 30s"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("step 6/6 (100%)") && l.ends_with("ETA 0s")), "{text}");
}

/// A notebook's live display: the hook sees every step, the dev score once evaluated, and a last
/// call marked done.
#[test]
fn a_progress_hook_sees_every_step_and_the_end() {
    let root = tempfile::tempdir().unwrap();
    let seen: std::sync::Arc<std::sync::Mutex<Vec<tunelab::progress::Progress>>> = Default::default();
    let sink = seen.clone();
    let hook = tunelab::progress::ProgressHook(std::sync::Arc::new(move |p: &tunelab::progress::Progress| sink.lock().unwrap().push(p.clone())));
    let control = tunelab::RunControl { out: Some(root.path().join("run")), quiet: true, progress: Some(hook), ..Default::default() };
    spec().run_with(&control).unwrap();
    let seen = seen.lock().unwrap();
    let steps: Vec<usize> = seen.iter().filter(|p| !p.done).map(|p| p.step).collect();
    assert!((1..=6).all(|s| steps.contains(&s)), "{steps:?}");
    let last = seen.last().unwrap();
    assert!(last.done && last.step == 6 && last.total == 6 && last.last_dev.is_some() && last.eta_seconds == 0.0, "{last:?}");
    assert!(last.lrs.len() >= 2 && last.examples_per_second > 0.0);
}

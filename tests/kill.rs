//! Runs killed with SIGKILL at chosen instants, then resumed, end with exactly the files of an
//! uninterrupted run (timing fields aside), and no temporary file anywhere.
//!
//! The instants are reached through failpoints (`TUNELAB_FAILPOINT=NAME:N`): the process stops
//! there, prints `failpoint NAME reached`, and this test kills it with SIGKILL at that moment.
//! - `step:N`: in the middle of the N-th optimizer step (after backward, before AdamW);
//! - `append:N`: half-way through writing the N-th JSON line (log.jsonl, eval.jsonl);
//! - `dir-filled:N`: the N-th folder write (`best/`, `last/`, `swa/`) complete under its
//!   temporary name, not yet swapped in;
//! - `dir-swapping:N`: between the two renames of the N-th folder swap.
mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tunelab::recipe::{Eval, Recipe, Warmup};
use tunelab::run_dir::{EvalRecord, Weights};
use tunelab::techniques::{Reinit, Swa, swa::At};
use tunelab::{DataSpec, RunSpec, TrainConfig};

fn spec() -> RunSpec {
    RunSpec {
        model: common::fixture("tiny_bert"),
        pooling: tunelab::Pooling::Pooler,
        head: Default::default(),
        data: DataSpec::new(common::fixture("vader-sample/train.tsv"), common::fixture("vader-sample/dev.tsv"), "text", "score", tunelab::data::TaskKind::Regression),
        recipe: Recipe {
            lr: tunelab::groups::LrLayout::Llrd { top_lr: 1e-3, decay: 0.8, head_lr: 2e-3 },
            warmup: Warmup::Steps(5),
            reinit: Some(Reinit { top_layers: 1, ..Reinit::default() }),
            swa: Some(Swa { start: At::Fraction(0.5), ..Swa::default() }),
            evaluation: Eval { every: Some(5), ..Eval::default() },
            ..Recipe::default()
        },
        training: TrainConfig { epochs: 2, batch_size: 16, seed: 3, threads: Some(1), max_length: 64, ..TrainConfig::default() },
    }
}

fn tunelab(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_tunelab")).args(args).output().unwrap();
    assert!(out.status.success(), "tunelab {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Starts `tunelab train` stopping at a failpoint, waits until it is there, kills it (SIGKILL).
fn train_and_kill(spec: &Path, out: &Path, failpoint: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .args(["train", spec.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"])
        .env("TUNELAB_FAILPOINT", failpoint)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let name = failpoint.split(':').next().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 {
            let status = child.wait().unwrap();
            panic!("{failpoint}: the run ended ({status}) without reaching the failpoint");
        }
        if line.trim() == format!("failpoint {name} reached") {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
}

/// Every file under `dir`, by relative path, with JSON timing fields removed.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    const TIMING: [&str; 7] =
        ["wall_seconds", "train_samples_per_second", "train_tokens_per_second", "lr_seconds", "swa_seconds", "step_seconds", "train_seconds"];
    fn strip(v: &mut serde_json::Value) {
        if let serde_json::Value::Object(map) = v {
            for key in TIMING {
                map.remove(key);
            }
            map.values_mut().for_each(strip);
        }
    }
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let mut bytes = std::fs::read(&path).unwrap();
            if path.extension().is_some_and(|e| e == "json") {
                let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                strip(&mut v);
                bytes = serde_json::to_vec(&v).unwrap();
            }
            out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), bytes);
        }
    }
    out
}

fn assert_same_run(straight: &Path, other: &Path, what: &str) {
    let (a, b) = (files(straight), files(other));
    let (names_a, names_b): (Vec<_>, Vec<_>) = (a.keys().collect(), b.keys().collect());
    assert_eq!(names_a, names_b, "{what}: the folders hold different files (a temporary file or the lock left behind?)");
    for (name, bytes) in &a {
        assert!(bytes == &b[name], "{what}: {} differs from the uninterrupted run's", name.display());
    }
}

#[test]
fn runs_killed_at_any_instant_resume_to_the_uninterrupted_files() {
    let root = tempfile::tempdir().unwrap();
    let spec_path = root.path().join("spec.json");
    std::fs::write(&spec_path, spec().to_json()).unwrap();
    let straight = root.path().join("straight");
    tunelab(&["train", spec_path.to_str().unwrap(), "--out", straight.to_str().unwrap(), "--quiet"]);

    // 240 sentences in batches of 16: 30 steps; an evaluation every 5 (6 in all); each writes
    // best/ when the dev RMSE improves, then last/; the run ends with swa/.
    let evals: Vec<EvalRecord> =
        std::fs::read_to_string(straight.join("eval.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let model_evals: Vec<f64> = evals.iter().filter(|e| e.weights == Weights::Model).map(|e| e.metrics["rmse"]).collect();
    assert_eq!(model_evals.len(), 6);
    let improvements = model_evals.iter().enumerate().filter(|(i, v)| model_evals[..*i].iter().all(|p| *v < p)).count();
    let folder_writes = improvements + 6 + 1;
    let appends = 30 + evals.len();

    let instants = [
        "step:1".to_string(),                  // mid-step, before any checkpoint
        "append:3".into(),                     // mid log line, before any checkpoint
        "dir-filled:1".into(),                 // the first best/ written, not yet swapped in
        "dir-swapping:1".into(),               // ... and half swapped
        "dir-filled:2".into(),                 // the first last/ complete under its temporary name
        "dir-swapping:2".into(),               // the first checkpoint between its renames
        "step:13".into(),                      // mid-step after checkpoints
        "append:19".into(),                    // mid log line after checkpoints
        format!("dir-swapping:{}", folder_writes - 1), // the final last/ between its renames
        format!("dir-filled:{folder_writes}"), // the final swa/ written, not swapped in
        format!("dir-swapping:{folder_writes}"), // the final swa/ half swapped
        format!("append:{appends}"),           // the last eval line torn
        "step:30".into(),                      // in the last step
    ];
    for (i, instant) in instants.iter().enumerate() {
        let out = root.path().join(format!("killed-{i}"));
        train_and_kill(&spec_path, &out, instant);
        tunelab(&["resume", out.to_str().unwrap(), "--quiet"]);
        assert_same_run(&straight, &out, &format!("killed at {instant}"));
    }

    // Stopping on purpose, at an evaluation step and between two, then resuming: the same files.
    for stop in ["10", "12"] {
        let out = root.path().join(format!("stopped-{stop}"));
        tunelab(&["train", spec_path.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet", "--stop-after", stop]);
        assert!(!out.join("lock").exists(), "the lock is released when the process ends");
        tunelab(&["resume", out.to_str().unwrap(), "--quiet"]);
        assert_same_run(&straight, &out, &format!("stopped after {stop}"));
    }
}

/// Ctrl-C (SIGINT) stops `tunelab train` at the next step boundary with a resumable checkpoint,
/// says so, and exits non-zero; before this, the process died at once and said nothing.
#[test]
fn ctrl_c_stops_a_run_at_a_step_boundary_with_a_checkpoint() {
    let root = tempfile::tempdir().unwrap();
    let mut sp = spec();
    sp.training.epochs = 400; // long enough to be caught in the middle
    sp.recipe.swa = None;
    sp.recipe.evaluation = Eval::default();
    let spec_path = root.path().join("spec.json");
    std::fs::write(&spec_path, sp.to_json()).unwrap();
    let run = root.path().join("run");
    let child = Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .args(["train", spec_path.to_str().unwrap(), "--out", run.to_str().unwrap(), "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::fs::read_to_string(run.join("log.jsonl")).map_or(0, |t| t.lines().count()) < 3 {
        assert!(std::time::Instant::now() < deadline, "no training step within 120 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{stdout}");
    assert!(stderr.contains("stopping at the next step boundary") && stderr.contains("error: stopped by Ctrl-C; see above how to continue"), "{stderr}");
    assert!(stdout.contains(&format!("run stopped (resumable: tunelab resume {})", run.display())), "{stdout}");
    let metrics: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["finished"], false);
    assert!(run.join("last").is_dir(), "the checkpoint");
    assert!(!run.join("lock").exists(), "the lock is released");
}

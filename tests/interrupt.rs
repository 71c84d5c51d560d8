//! An interrupt (a notebook's stop button) stops a run at the next step boundary with a
//! checkpoint; `resume` then ends with exactly the weights of the uninterrupted run.
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tunelab::recipe::{Eval, Recipe, Warmup};
use tunelab::techniques::{Swa, swa::At};
use tunelab::{DataSpec, RunControl, RunSpec, TrainConfig};

fn spec() -> RunSpec {
    RunSpec {
        model: common::fixture("tiny_bert"),
        pooling: tunelab::Pooling::Pooler,
        head: Default::default(),
        data: DataSpec::new(common::fixture("vader-sample/train.tsv"), common::fixture("vader-sample/dev.tsv"), "text", "score", tunelab::data::TaskKind::Regression),
        recipe: Recipe {
            lr: tunelab::groups::LrLayout::Llrd { top_lr: 1e-3, decay: 0.8, head_lr: 2e-3 },
            warmup: Warmup::Steps(3),
            swa: Some(Swa { start: At::Fraction(0.5), ..Swa::default() }),
            evaluation: Eval { every: Some(5), ..Eval::default() },
            ..Recipe::default()
        },
        training: TrainConfig { epochs: 2, batch_size: 16, seed: 5, threads: Some(1), max_length: 64, ..TrainConfig::default() },
    }
}

/// libtorch's random generator is global to the process: two trainings at once in this test
/// binary would draw from it in turn, and neither would be reproducible. One at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn bytes(dir: &std::path::Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
}

#[test]
fn an_interrupted_run_resumes_to_the_uninterrupted_weights() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().unwrap();
    let whole = spec().run_with(&RunControl { out: Some(root.path().join("whole")), quiet: true, ..RunControl::default() }).unwrap();
    assert!(whole.metrics.finished);

    // Interrupted before the first step ends: it stops after one step, with a checkpoint.
    let flag = Arc::new(AtomicBool::new(true));
    let control = RunControl { out: Some(root.path().join("cut")), quiet: true, interrupt: Some(flag.clone()), ..RunControl::default() };
    let cut = spec().run_with(&control).unwrap();
    assert!(!cut.metrics.finished);
    assert_eq!(cut.metrics.steps, 1);
    assert!(cut.dir.join("last/state.json").is_file(), "a resumable checkpoint");

    // Resumed, then interrupted again mid-way from another thread, then resumed to the end.
    flag.store(false, Ordering::SeqCst);
    let setter = {
        let flag = flag.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(150));
            flag.store(true, Ordering::SeqCst);
        })
    };
    let mid = tunelab::run::resume(&cut.dir, &control).unwrap();
    setter.join().unwrap();
    flag.store(false, Ordering::SeqCst);
    let done = if mid.metrics.finished { mid } else { tunelab::run::resume(&cut.dir, &control).unwrap() };
    assert!(done.metrics.finished);
    assert_eq!(done.metrics.steps, whole.metrics.steps);

    for file in ["best/model.safetensors", "best/head.safetensors", "swa/model.safetensors", "last/model/model.safetensors", "last/optimizer.safetensors"] {
        assert!(bytes(&whole.dir, file) == bytes(&done.dir, file), "{file} differs from the uninterrupted run");
    }
    let losses = |run: &tunelab::Run| run.log.iter().map(|l| l.loss.to_bits()).collect::<Vec<_>>();
    assert_eq!(losses(&whole), losses(&done), "every step's loss, bit for bit");
    assert_eq!(whole.metrics.best, done.metrics.best);
}

/// An interrupted cross-validation keeps its finished folds and continues when run again into
/// its folder (a notebook's `resume(cv)`), to the result of an uninterrupted one.
#[test]
fn an_interrupted_cross_validation_continues_to_the_same_result() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().unwrap();
    let mut cv = spec();
    cv.data.dev = None;
    cv.data.cv = Some(tunelab::spec::Cv::new(2, 1));
    cv.training.epochs = 1;
    let whole = tunelab::cv::run(&cv, &RunControl { out: Some(root.path().join("whole")), quiet: true, ..RunControl::default() }, None).unwrap();
    let flag = Arc::new(AtomicBool::new(true));
    let control = RunControl { out: Some(root.path().join("cut")), quiet: true, interrupt: Some(flag.clone()), ..RunControl::default() };
    let cut = tunelab::cv::run(&cv, &control, None).unwrap();
    assert!(cut.result.is_none() && cut.folds_run.is_empty(), "stopped in its first fold: {cut:?}");
    flag.store(false, Ordering::SeqCst);
    let done = tunelab::cv::run(&cv, &control, None).unwrap();
    assert_eq!(done.result.unwrap(), whole.result.unwrap());
}

//! TensorBoard event files: byte for byte against the official writer, and what a training run
//! leaves in them.
//!
//! The fixture `tests/fixtures/tensorboard/` was written by
//! `scripts/reference/tensorboard_fixture.py` with tensorboard 2.21's
//! `tensorboard.summary.writer.event_file_writer.EventFileWriter`:
//!
//! ```python
//! with mock.patch.object(event_file_writer.time, "time", return_value=START_TIME):
//!     writer = event_file_writer.EventFileWriter(tmp)
//! for e in EVENTS:
//!     writer.add_event(event(e))  # Event(wall_time, step, summary=Summary(value=[Value(tag, simple_value)]))
//! writer.close()                  #   or Event(wall_time, step, session_log=SessionLog(status=START))
//! ```
mod common;

use std::path::{Path, PathBuf};

use common::fixture;
use serde_json::Value;
use tunelab::data::TaskKind;
use tunelab::groups::LrLayout;
use tunelab::recipe::{Eval, Recipe, Warmup};
use tunelab::run_dir::{EvalRecord, StepLog, Weights};
use tunelab::spec::Prepared;
use tunelab::techniques::{Swa, swa::At};
use tunelab::tensorboard::EventWriter;
use tunelab::train::{Observer, Setup, Trainer};
use tunelab::{DataSpec, RunSpec, TrainConfig};

#[test]
fn the_bytes_are_the_official_writers() {
    let dir = fixture("tensorboard");
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("events.json")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("events.out.tfevents.test");
    let first = &spec["file_version"];
    let mut w = EventWriter::create(&path, first["wall_time"].as_f64().unwrap(), first["writer"].as_str().unwrap()).unwrap();
    for e in spec["events"].as_array().unwrap() {
        let (wall_time, step) = (e["wall_time"].as_f64().unwrap(), e["step"].as_i64().unwrap());
        if e.get("restart").is_some() {
            w.add_restart(wall_time, step).unwrap();
        } else {
            let scalars: Vec<(String, f64)> = serde_json::from_value(e["scalars"].clone()).unwrap();
            w.add_scalars(wall_time, step, &scalars).unwrap();
        }
    }
    assert_eq!(w.path(), path);
    drop(w);
    let want = std::fs::read(dir.join("events.out.tfevents.1700000000.reference")).unwrap();
    let got = std::fs::read(&path).unwrap();
    assert_eq!(got.len(), want.len(), "file length");
    assert!(got == want, "the event file differs from the official writer's at byte {}", got.iter().zip(&want).position(|(a, b)| a != b).unwrap());
    // The decoder below reads the official file as the fixture describes it.
    let events = read_events(&dir.join("events.out.tfevents.1700000000.reference"));
    assert_eq!(events.len(), 6);
    assert_eq!((events[0].file_version.as_deref(), events[0].writer.as_deref()), (Some("brain.Event:2"), first["writer"].as_str()));
    assert_eq!(events[1].scalars[0], ("train/loss".to_string(), std::f64::consts::LN_2 as f32));
    assert_eq!((events[2].step, &events[2].scalars), (0, &vec![("train/loss".to_string(), 0.0)]));
    assert!(events[4].restart && events[4].step == 2);
    assert_eq!(events[5].step, 1 << 40);
}

#[test]
fn non_finite_values_are_left_out() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = EventWriter::new(&tmp.path().join("tb")).unwrap();
    w.add_scalars(1.0, 1, &[("dev/a", f64::NAN), ("dev/b", 2.0), ("dev/c", f64::INFINITY)]).unwrap();
    w.add_scalars(2.0, 2, &[("dev/a", f64::NAN)]).unwrap();
    let events = read_events(w.path());
    assert_eq!(events.len(), 2, "nothing is written for an event without a finite value");
    assert_eq!(events[1].scalars, [("dev/b".to_string(), 2.0)]);
    let name = w.path().file_name().unwrap().to_str().unwrap().to_string();
    assert!(name.starts_with("events.out.tfevents.") && name.ends_with(".tunelab"), "{name}");
    let again = EventWriter::new(&tmp.path().join("tb")).unwrap();
    assert_ne!(again.path(), w.path(), "a second writer never overwrites the first's file");
}

/// Records what the loop reports, in order.
#[derive(Default)]
struct Recorder {
    steps: Vec<StepLog>,
    evals: Vec<EvalRecord>,
    order: Vec<bool>, // true: a step, false: an evaluation
}

impl Observer for Recorder {
    fn step(&mut self, log: &StepLog) -> tunelab::Result<()> {
        self.steps.push(log.clone());
        self.order.push(true);
        Ok(())
    }
    fn evaluated(&mut self, record: &EvalRecord) -> tunelab::Result<()> {
        self.evals.push(record.clone());
        self.order.push(false);
        Ok(())
    }
}

/// Two-class sentiment on the tiny BERT: 6 steps, evaluated every 2, SWA from step 3.
fn spec() -> RunSpec {
    RunSpec {
        model: fixture("tiny_bert"),
        pooling: tunelab::Pooling::Pooler,
        head: Default::default(),
        data: DataSpec::new(fixture("vader-sample/train.tsv"), fixture("vader-sample/dev.tsv"), "text", "label", TaskKind::Classification),
        recipe: Recipe {
            lr: LrLayout::Llrd { top_lr: 1e-3, decay: 0.8, head_lr: 2e-3 },
            warmup: Warmup::Steps(2),
            swa: Some(Swa { start: At::Fraction(0.5), ..Swa::default() }),
            evaluation: Eval { every: Some(2), ..Eval::default() },
            ..Recipe::default()
        },
        training: TrainConfig { epochs: 1, batch_size: 16, max_steps: Some(6), seed: 3, threads: Some(1), max_length: 64, ..TrainConfig::default() },
    }
}

#[test]
fn a_resumed_training_run_shows_in_tensorboard() {
    let tmp = tempfile::tempdir().unwrap();
    let logdir = tmp.path().join("runs").join("tiny");
    let spec = spec();
    let Prepared { mut model, train, dev, table, resolved, steps_per_epoch, .. } = spec.prepare(tch::Device::Cpu).unwrap();
    let tokenizer = model.tokenizer().unwrap().clone();
    let setup = Setup::new(train.encode(&tokenizer).unwrap(), dev.encode(&tokenizer).unwrap(), &spec.recipe, resolved, &spec.training, steps_per_epoch);
    let groups: Vec<String> = setup.resolved.groups.iter().map(|g| g.name.clone()).collect();
    model.init_head(spec.training.seed);
    let mut trainer = Trainer::new(&mut model, &setup, &table, &spec.recipe).unwrap();
    let mut recorder = Recorder::default();
    // Three steps, then a new writer in the same folder continues, as a resumed run's would.
    let mut first = EventWriter::new(&logdir).unwrap();
    trainer.run(&setup, 3, &mut [&mut first, &mut recorder]).unwrap();
    let mut second = EventWriter::new(&logdir).unwrap();
    trainer.run(&setup, usize::MAX, &mut [&mut second, &mut recorder]).unwrap();
    assert_eq!((recorder.steps.len(), recorder.evals.len()), (6, 5), "3 evaluations, the last 2 with SWA weights too");

    let mut files: Vec<PathBuf> = std::fs::read_dir(&logdir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files, [first.path().to_path_buf(), second.path().to_path_buf()], "TensorBoard reads the files in this order");
    let (a, b) = (read_events(first.path()), read_events(second.path()));
    for file in [&a, &b] {
        assert_eq!((file[0].file_version.as_deref(), file[0].writer.as_deref(), file[0].step), (Some("brain.Event:2"), Some("tunelab"), 0));
        assert!(file.iter().all(|e| e.wall_time > 1.7e9), "wall times are seconds since the epoch");
    }
    assert!(b[1].restart && b[1].step == 4, "the resumed writer marks step 4 as its start: {:?}", b[1]);
    assert!(a.iter().chain(&b).filter(|e| e.restart).count() == 1);

    // Every step and every evaluation, in order, each as one event at the steps done.
    let scalars: Vec<&Event> = a[1..].iter().chain(&b[2..]).collect();
    assert_eq!(scalars.len(), recorder.order.len());
    let (mut steps, mut evals) = (recorder.steps.iter(), recorder.evals.iter());
    let mut seen_swa = false;
    for (event, &is_step) in scalars.iter().zip(&recorder.order) {
        let mut want: Vec<(String, f32)> = Vec::new();
        if is_step {
            let log = steps.next().unwrap();
            assert_eq!(event.step, log.step as i64 + 1);
            want.push(("train/loss".into(), log.loss as f32));
            for g in &groups {
                want.push((format!("lr/{g}"), log.lr[g] as f32));
            }
        } else {
            let record = evals.next().unwrap();
            assert_eq!(event.step, record.step as i64);
            let prefix = if record.weights == Weights::Swa { "swa" } else { "dev" };
            seen_swa |= record.weights == Weights::Swa;
            want.extend(record.metrics.iter().filter(|(_, v)| v.is_finite()).map(|(k, v)| (format!("{prefix}/{k}"), *v as f32)));
            for key in ["accuracy", "macro_f1", "loss", "roc_auc", "f1.positive", "confusion.negative.positive"] {
                assert!(want.iter().any(|(t, _)| *t == format!("{prefix}/{key}")), "{prefix}/{key} at step {}", record.step);
            }
        }
        assert_eq!(event.scalars, want, "the event at step {}", event.step);
    }
    assert!(seen_swa);
}

/// One decoded `Event`.
#[derive(Debug, Default)]
struct Event {
    wall_time: f64,
    step: i64,
    file_version: Option<String>,
    writer: Option<String>,
    scalars: Vec<(String, f32)>,
    restart: bool,
}

/// Reads an event file, checking the TFRecord framing and both CRCs of every record.
fn read_events(path: &Path) -> Vec<Event> {
    let bytes = std::fs::read(path).unwrap();
    let masked = |b: &[u8]| crc32c::crc32c(b).rotate_right(15).wrapping_add(0xa282_ead8);
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let mut events = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        assert_eq!(u32_at(at + 8), masked(&bytes[at..at + 8]), "length CRC of the record at byte {at}");
        let data = &bytes[at + 12..at + 12 + len];
        assert_eq!(u32_at(at + 12 + len), masked(data), "data CRC of the record at byte {at}");
        events.push(decode_event(data));
        at += 16 + len;
    }
    events
}

fn decode_event(data: &[u8]) -> Event {
    let mut e = Event::default();
    for (field, value) in fields(data) {
        match (field, value) {
            (1, Field::Fixed64(bits)) => e.wall_time = f64::from_bits(bits),
            (2, Field::Varint(v)) => e.step = v as i64,
            (3, Field::Bytes(b)) => e.file_version = Some(String::from_utf8(b.to_vec()).unwrap()),
            (5, Field::Bytes(summary)) => {
                for (f, value) in fields(summary) {
                    let (1, Field::Bytes(value)) = (f, value) else { panic!("Summary field {f}") };
                    let (mut tag, mut simple) = (String::new(), None);
                    for (f, v) in fields(value) {
                        match (f, v) {
                            (1, Field::Bytes(t)) => tag = String::from_utf8(t.to_vec()).unwrap(),
                            (2, Field::Fixed32(bits)) => simple = Some(f32::from_bits(bits)),
                            (f, v) => panic!("Summary.Value field {f}: {v:?}"),
                        }
                    }
                    e.scalars.push((tag, simple.expect("a simple_value")));
                }
            }
            (7, Field::Bytes(session_log)) => e.restart = matches!(fields(session_log)[..], [(1, Field::Varint(1))]),
            (10, Field::Bytes(source)) => {
                let [(1, Field::Bytes(w))] = fields(source)[..] else { panic!("SourceMetadata") };
                e.writer = Some(String::from_utf8(w.to_vec()).unwrap());
            }
            (f, v) => panic!("Event field {f}: {v:?}"),
        }
    }
    e
}

#[derive(Debug, Clone, Copy)]
enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// The fields of a protocol-buffer message, in order.
fn fields(mut b: &[u8]) -> Vec<(u64, Field<'_>)> {
    fn varint(b: &mut &[u8]) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let byte = b[0];
            *b = &b[1..];
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return v;
            }
            shift += 7;
        }
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b);
        let value = match key & 7 {
            0 => Field::Varint(varint(&mut b)),
            1 => {
                let (v, rest) = b.split_at(8);
                b = rest;
                Field::Fixed64(u64::from_le_bytes(v.try_into().unwrap()))
            }
            2 => {
                let len = varint(&mut b) as usize;
                let (v, rest) = b.split_at(len);
                b = rest;
                Field::Bytes(v)
            }
            5 => {
                let (v, rest) = b.split_at(4);
                b = rest;
                Field::Fixed32(u32::from_le_bytes(v.try_into().unwrap()))
            }
            wire => panic!("wire type {wire}"),
        };
        out.push((key >> 3, value));
    }
    out
}

#[test]
fn tunelab_train_writes_events_into_the_run_folder_when_asked() {
    let root = tempfile::tempdir().unwrap();
    let spec_path = root.path().join("spec.json");
    let mut s = spec();
    s.training.max_steps = Some(3);
    std::fs::write(&spec_path, s.to_json()).unwrap();
    for (flag, expected) in [(true, 1), (false, 0)] {
        let dir = root.path().join(format!("run-{flag}"));
        let mut args = vec!["train", spec_path.to_str().unwrap(), "--out", dir.to_str().unwrap(), "--quiet"];
        if flag {
            args.push("--tensorboard");
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tunelab")).args(&args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let events = std::fs::read_dir(&dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("events.out.tfevents.")).count();
        assert_eq!(events, expected, "--tensorboard {flag}");
    }
}

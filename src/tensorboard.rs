//! TensorBoard event files: an [`Observer`] that writes the training loss, every group's LR
//! and the dev scores where TensorBoard shows them while the run trains.
//!
//! ```sh
//! tensorboard --logdir runs   # then open http://localhost:6006; every folder holding an event file is a run
//! ```
//!
//! [`EventWriter::new`] creates `events.out.tfevents.<unix seconds>.<hostname>.tunelab` in the
//! folder it is given (a second writer in the same second adds `.2`, `.3`...), and each event
//! reaches the file as soon as it is reported, so a live TensorBoard follows the run. The
//! scalars, each at the number of optimizer steps done (so the loss of `log.jsonl`'s step `k`
//! is at `k + 1`, on the same axis as the evaluations):
//!
//! | tag | reported by | value |
//! |---|---|---|
//! | `train/loss` | [`Observer::step`] | the step's training loss |
//! | `lr/<group>` | [`Observer::step`] | the LR of every parameter group at that step |
//! | `dev/<metric>` | [`Observer::evaluated`] | the dev scores of the trained weights |
//! | `swa/<metric>` | [`Observer::evaluated`] | the dev scores of the averaged (SWA / EMA) weights |
//!
//! Values that are not finite are left out (TensorBoard cannot draw them), and the others are
//! stored as `f32`, as TensorBoard's scalars are. A run resumed from step `s` (a new writer in
//! the same folder) first writes a restart marker at step `s + 1`, which tells TensorBoard to
//! drop what the earlier file holds from that step on: the steps that ran after the last
//! checkpoint and before a kill, which the resumed run trains again.
//!
//! The format is TensorFlow's, as `tensorboard.summary.writer.event_file_writer` writes it
//! (`tests/tensorboard.rs` compares the bytes with that writer's, on the fixture of
//! `scripts/reference/tensorboard_fixture.py`). The file is a sequence of TFRecords:
//!
//! | bytes | content |
//! |---|---|
//! | 8 | the length `n` of the data, little-endian `u64` |
//! | 4 | the masked CRC-32C of those 8 bytes, little-endian `u32` |
//! | `n` | the data: one `Event` protocol buffer |
//! | 4 | the masked CRC-32C of the data |
//!
//! where the mask of a CRC is `((crc >> 15) | (crc << 17)) + 0xa282ead8` (wrapping). The first
//! event holds `file_version: "brain.Event:2"` and `source_metadata { writer: "tunelab" }`;
//! each later one a `wall_time` (seconds since the epoch), a `step` and a `summary` of scalar
//! values, or a `session_log { status: START }` (the restart marker). The few protobuf fields
//! are encoded here by hand (proto3 rules: a zero `wall_time` or `step` is left out):
//!
//! ```text
//! Event      { double wall_time = 1; int64 step = 2; oneof what { string file_version = 3;
//!              Summary summary = 5; SessionLog session_log = 7; } SourceMetadata source_metadata = 10; }
//! Summary    { repeated Value value = 1; }
//! Value      { string tag = 1; oneof value { float simple_value = 2; } }
//! SessionLog { SessionStatus status = 1; }   // START = 1
//! SourceMetadata { string writer = 1; }
//! ```
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::recipe::Resolved;
use crate::run_dir::{EvalRecord, StepLog, Weights};
use crate::train::{Observer, TrainState};

/// The event-file version TensorBoard expects in the first event.
pub const FILE_VERSION: &str = "brain.Event:2";

/// The writer named in the first event of the files tunelab writes.
pub const WRITER: &str = "tunelab";

/// Writes one TensorBoard event file; as an [`Observer`], the loss, the LRs and the dev scores.
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    file: File,
}

impl EventWriter {
    /// Creates the folder `dir` if needed and a new event file in it,
    /// `events.out.tfevents.<unix seconds>.<hostname>.tunelab`, starting with the file-version
    /// event. An existing file is never overwritten.
    pub fn new(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let wall_time = now();
        let name = format!("events.out.tfevents.{:010}.{}.tunelab", wall_time as u64, hostname());
        let mut n = 1;
        loop {
            let path = if n == 1 { dir.join(&name) } else { dir.join(format!("{name}.{n}")) };
            match Self::create(&path, wall_time, WRITER) {
                Err(Error::Io { source, .. }) if source.kind() == ErrorKind::AlreadyExists => n += 1,
                result => return result,
            }
        }
    }

    /// Creates the event file `path` (which must not exist) and writes its file-version event
    /// with the given wall time and writer name: [`EventWriter::new`] without the clock.
    pub fn create(path: &Path, wall_time: f64, writer: &str) -> Result<Self> {
        let file = OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| Error::io(path, e))?;
        let mut w = EventWriter { path: path.to_path_buf(), file };
        w.write_event(&event(wall_time, 0, |out| {
            string_field(out, 3, FILE_VERSION);
            let mut source = Vec::new();
            string_field(&mut source, 1, writer);
            bytes_field(out, 10, &source);
        }))?;
        Ok(w)
    }

    /// The event file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one event holding the scalars `(tag, value)` at `step`, leaving out the values
    /// that are not finite (nothing at all if none is) and storing the others as `f32`.
    pub fn add_scalars<S: AsRef<str>>(&mut self, wall_time: f64, step: i64, scalars: &[(S, f64)]) -> Result<()> {
        let mut summary = Vec::new();
        for (tag, value) in scalars.iter().filter(|(_, v)| v.is_finite()) {
            let mut v = Vec::new();
            string_field(&mut v, 1, tag.as_ref());
            key(&mut v, 2, FIXED32);
            v.extend_from_slice(&(*value as f32).to_le_bytes());
            bytes_field(&mut summary, 1, &v);
        }
        if summary.is_empty() {
            return Ok(());
        }
        self.write_event(&event(wall_time, step, |out| bytes_field(out, 5, &summary)))
    }

    /// Writes a restart marker (`SessionLog.START`) at `step`: TensorBoard drops the events at
    /// `step` and later that it read before this one.
    pub fn add_restart(&mut self, wall_time: f64, step: i64) -> Result<()> {
        const START: u64 = 1;
        let mut session_log = Vec::new();
        key(&mut session_log, 1, VARINT);
        varint(&mut session_log, START);
        self.write_event(&event(wall_time, step, |out| bytes_field(out, 7, &session_log)))
    }

    /// Frames an encoded `Event` as a TFRecord and writes it through to the file.
    fn write_event(&mut self, data: &[u8]) -> Result<()> {
        let length = (data.len() as u64).to_le_bytes();
        let mut rec = Vec::with_capacity(data.len() + 16);
        rec.extend_from_slice(&length);
        rec.extend_from_slice(&masked_crc(&length).to_le_bytes());
        rec.extend_from_slice(data);
        rec.extend_from_slice(&masked_crc(data).to_le_bytes());
        self.file.write_all(&rec).and_then(|()| self.file.flush()).map_err(|e| Error::io(&self.path, e))
    }
}

impl Observer for EventWriter {
    /// A resumed run (from step `s > 0`) writes a restart marker at `s + 1`, where its first
    /// scalars will be.
    fn started(&mut self, _resolved: &Resolved, state: &TrainState) -> Result<()> {
        if state.step == 0 {
            return Ok(());
        }
        self.add_restart(now(), state.step as i64 + 1)
    }

    /// `train/loss` and `lr/<group>` for every group, at the steps done.
    fn step(&mut self, log: &StepLog) -> Result<()> {
        let mut scalars = Vec::with_capacity(log.lr.len() + 1);
        scalars.push(("train/loss".to_string(), log.loss));
        scalars.extend(log.lr.iter().map(|(group, lr)| (format!("lr/{group}"), *lr)));
        self.add_scalars(now(), log.step as i64 + 1, &scalars)
    }

    /// `dev/<metric>` (trained weights) or `swa/<metric>` (averaged weights), finite values only.
    fn evaluated(&mut self, record: &EvalRecord) -> Result<()> {
        let prefix = match record.weights {
            Weights::Model => "dev",
            Weights::Swa => "swa",
        };
        let scalars: Vec<(String, f64)> = record.metrics.iter().map(|(name, v)| (format!("{prefix}/{name}"), *v)).collect();
        self.add_scalars(now(), record.step as i64, &scalars)
    }
}

impl EventWriter {
    /// `test/<metric>` (the selected weights) and `swa_test/<metric>` (the SWA weights) for the
    /// held-out test file, scored once at the end, at the run's last step.
    pub fn add_test(&mut self, step: usize, test: &crate::metrics::Metrics, swa: Option<&crate::metrics::Metrics>) -> Result<()> {
        let mut scalars: Vec<(String, f64)> = test.iter().map(|(name, v)| (format!("test/{name}"), *v)).collect();
        scalars.extend(swa.into_iter().flatten().map(|(name, v)| (format!("swa_test/{name}"), *v)));
        self.add_scalars(now(), step as i64, &scalars)
    }
}

/// Seconds since the Unix epoch, as TensorBoard's `wall_time`.
fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The machine's name for the file name (as TensorFlow's writers put it there), `localhost`
/// when it cannot be read.
fn hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default();
    let name: String = raw.trim().chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).collect();
    if name.is_empty() { "localhost".into() } else { name }
}

/// TFRecord's masked CRC-32C.
fn masked_crc(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes).rotate_right(15).wrapping_add(0xa282_ead8)
}

// Protocol-buffer wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LENGTH_DELIMITED: u8 = 2;
const FIXED32: u8 = 5;

/// An `Event` with its wall time and step (left out when zero, as proto3 does), then `what`.
fn event(wall_time: f64, step: i64, what: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    if wall_time.to_bits() != 0 {
        key(&mut out, 1, FIXED64);
        out.extend_from_slice(&wall_time.to_le_bytes());
    }
    if step != 0 {
        key(&mut out, 2, VARINT);
        varint(&mut out, step as u64); // a negative int64 takes ten bytes, as in protobuf
    }
    what(&mut out);
    out
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u64, wire: u8) {
    varint(out, field << 3 | u64::from(wire));
}

fn bytes_field(out: &mut Vec<u8>, field: u64, data: &[u8]) {
    key(out, field, LENGTH_DELIMITED);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// A proto3 string field: left out when empty.
fn string_field(out: &mut Vec<u8>, field: u64, s: &str) {
    if !s.is_empty() {
        bytes_field(out, field, s.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_take_seven_bits_a_byte() {
        let encode = |v: u64| {
            let mut out = Vec::new();
            varint(&mut out, v);
            out
        };
        assert_eq!(encode(1), [1]);
        assert_eq!(encode(300), [0xac, 0x02]);
        assert_eq!(encode(-1i64 as u64).len(), 10);
    }

    #[test]
    fn a_scalar_event_is_a_wall_time_a_step_and_a_summary() {
        let e = event(0.0, 3, |out| bytes_field(out, 5, &[]));
        assert_eq!(e, [0x10, 3, 0x2a, 0]);
    }
}

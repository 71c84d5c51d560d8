//! Writing files so that a kill at any instant never leaves half of one, and reading JSON Lines
//! back: the one home of tunelab's atomic writes.
//!
//! - [`atomic_write`] / [`write_via_temp`]: a file is written under `.NAME.tmp` in its folder and
//!   renamed into place, so a reader sees the old version or the new one, never a mix.
//! - [`atomic_dir`]: a folder (a checkpoint) is filled under `.NAME.tmp`, then swapped in with
//!   two renames (`NAME → .NAME.old`, `.NAME.tmp → NAME`); [`recover_dir`] finishes or undoes a
//!   swap that a kill interrupted.
//! - [`append_line`] / [`read_jsonl`]: JSON Lines logs; a last line torn by a kill is dropped
//!   on reading (any other bad line is an error naming it).
//!
//! Temporary names are fixed (no process id), so that recovery finds them; the run folder's lock
//! makes sure that one process at a time writes a run.
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Serialize, de::DeserializeOwned};

use crate::error::{Error, Result};

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{suffix}"))
}

/// The temporary name of `path` while it is being written: `.NAME.tmp` in the same folder.
pub fn temp_path(path: &Path) -> PathBuf {
    sibling(path, "tmp")
}

/// Whether a folder entry is one of the temporary names this module writes.
pub fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && (name.ends_with(".tmp") || name.ends_with(".old"))
}

/// Writes `path` by letting `fill` write its temporary name, then renaming that into place.
pub fn write_via_temp(path: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty() && !p.is_dir()) {
        return Err(Error::Invalid(format!("{}: the folder {} does not exist; create it first, or write elsewhere", path.display(), parent.display())));
    }
    let tmp = temp_path(path);
    if let Err(e) = fill(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    write_via_temp(path, |tmp| std::fs::write(tmp, bytes).map_err(|e| Error::io(tmp, e)))
}

/// Writes a value as pretty JSON (with a final newline), atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    atomic_write(path, format!("{text}\n").as_bytes())
}

/// Reads a JSON file into a value; errors name the file and the field.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| Error::Json { path: path.into(), what: format!("field `{}`: {}", e.path(), crate::human::settings_error(&e.inner().to_string())) })
}

/// Fills a folder under a temporary name, then swaps it into place: the previous version stays
/// intact until the new one is complete.
pub fn atomic_dir(dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let (tmp, old) = (sibling(dir, "tmp"), sibling(dir, "old"));
    remove_any(&tmp)?;
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    fill(&tmp)?;
    failpoint("dir-filled");
    remove_any(&old)?;
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(|e| Error::io(dir, e))?;
    }
    failpoint("dir-swapping");
    std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e))?;
    remove_any(&old)
}

/// Brings a folder written by [`atomic_dir`] back to a complete version after a kill: a swap
/// interrupted between its two renames is finished (the new version was complete), and the
/// temporary and old copies are removed. Returns what it did, for the run's notes.
pub fn recover_dir(dir: &Path) -> Result<Vec<String>> {
    let (tmp, old) = (sibling(dir, "tmp"), sibling(dir, "old"));
    let mut notes = Vec::new();
    if !dir.exists() && old.exists() {
        let from = if tmp.exists() { &tmp } else { &old };
        std::fs::rename(from, dir).map_err(|e| Error::io(dir, e))?;
        notes.push(format!("{}: finished a swap that a stop interrupted", dir.display()));
    }
    for stale in [tmp, old] {
        if stale.exists() {
            remove_any(&stale)?;
            notes.push(format!("removed the unfinished {}", stale.display()));
        }
    }
    Ok(notes)
}

/// Removes a file or a folder; absent is fine.
pub fn remove_any(path: &Path) -> Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Err(_) => return Ok(()),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    };
    result.map_err(|e| Error::io(path, e))
}

/// Appends one JSON line to `path` (created if absent).
pub fn append_line(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut line = serde_json::to_string(value).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    line.push('\n');
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| Error::io(path, e))?;
    let (head, tail) = line.as_bytes().split_at(line.len() / 2);
    f.write_all(head).map_err(|e| Error::io(path, e))?;
    if failpoint_armed() {
        f.flush().map_err(|e| Error::io(path, e))?;
        failpoint("append");
    }
    f.write_all(tail).map_err(|e| Error::io(path, e))
}

/// Rewrites a JSON Lines file with exactly these records, atomically.
pub fn write_jsonl<T: Serialize>(path: &Path, records: &[T]) -> Result<()> {
    let mut text = String::new();
    for r in records {
        text.push_str(&serde_json::to_string(r).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?);
        text.push('\n');
    }
    atomic_write(path, text.as_bytes())
}

/// Reads a JSON Lines file (absent: no records). A last line without its newline that does not
/// parse was torn by a kill and is dropped; any other bad line is an error naming it.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let torn_tail = !text.is_empty() && !text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(v) => out.push(v),
            Err(_) if torn_tail && i + 1 == lines.len() => break,
            Err(e) => return Err(Error::Data { path: path.into(), line: Some(i + 1), what: e.to_string() }),
        }
    }
    Ok(out)
}

/// The failpoint named in `TUNELAB_FAILPOINT` (`NAME` or `NAME:N`, the N-th time it is reached),
/// read once.
fn armed() -> Option<&'static (String, usize)> {
    static ARMED: std::sync::OnceLock<Option<(String, usize)>> = std::sync::OnceLock::new();
    ARMED
        .get_or_init(|| {
            let v = std::env::var("TUNELAB_FAILPOINT").ok()?;
            let (name, n) = v.split_once(':').map_or((v.as_str(), 1), |(a, b)| (a, b.parse().unwrap_or(1)));
            Some((name.to_string(), n))
        })
        .as_ref()
}

fn failpoint_armed() -> bool {
    armed().is_some()
}

/// A test hook for the kill tests: when `TUNELAB_FAILPOINT` names this point, the process
/// prints `failpoint NAME reached` to stderr at its N-th passage and waits there forever, so
/// that a test can kill it at exactly that instant. Costs one branch otherwise.
pub fn failpoint(name: &str) {
    let Some((armed_name, n)) = armed() else { return };
    if armed_name != name {
        return;
    }
    static HITS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    if HITS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == *n {
        eprintln!("failpoint {name} reached");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_dropped_and_a_bad_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.jsonl");
        std::fs::write(&p, "{\"a\":1}\n{\"a\":2}\n{\"a\"").unwrap();
        let v: Vec<serde_json::Value> = read_jsonl(&p).unwrap();
        assert_eq!(v.len(), 2);
        std::fs::write(&p, "{\"a\":1}\n{\"a\n{\"a\":3}\n").unwrap();
        let err = read_jsonl::<serde_json::Value>(&p).unwrap_err().to_string();
        assert!(err.contains("log.jsonl:2:"), "{err}");
    }

    #[test]
    fn an_interrupted_swap_is_finished_with_the_new_version() {
        let dir = tempfile::tempdir().unwrap();
        let last = dir.path().join("last");
        std::fs::create_dir(dir.path().join(".last.old")).unwrap();
        std::fs::write(dir.path().join(".last.old/state"), "old").unwrap();
        std::fs::create_dir(dir.path().join(".last.tmp")).unwrap();
        std::fs::write(dir.path().join(".last.tmp/state"), "new").unwrap();
        recover_dir(&last).unwrap();
        assert_eq!(std::fs::read_to_string(last.join("state")).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Only the old copy left (the new one was already renamed... then lost): the old one is kept.
        let other = dir.path().join("best");
        std::fs::create_dir(dir.path().join(".best.old")).unwrap();
        recover_dir(&other).unwrap();
        assert!(other.is_dir());
    }
}

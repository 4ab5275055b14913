//! The file index: what kiln knows about each source file it last read, by size and
//! modification time, so a build with nothing changed does not read or hash those files again.
//!
//! Owns one JSON file in the cache folder (`files-v1.json`) mapping a source file's absolute path
//! to its size, modification time (nanoseconds), BLAKE3 and SRI integrity. Only files that pass
//! through untouched and need no compression (images, fonts, archives) are skipped this way:
//! everything a transformer or a compressor reads is read, and its results come from the cache.
//! A size or time mismatch means the file is read and hashed again (content hashing is the
//! fallback). The index is rewritten only when it changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

const PREFIX: &str = "files-v1-";

/// Size and modification time of a file, as the index compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// Bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: u128,
}

impl Stamp {
    /// The stamp of `meta`, if the platform reports a modification time.
    pub fn of(meta: &std::fs::Metadata) -> Option<Stamp> {
        let mtime_ns = meta
            .modified()
            .ok()?
            .duration_since(UNIX_EPOCH)
            .ok()?
            .as_nanos();
        Some(Stamp {
            size: meta.len(),
            mtime_ns,
        })
    }
}

/// What the index remembers of a file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Known {
    /// Size and modification time when it was read.
    pub stamp: Stamp,
    /// BLAKE3 of its content, hex.
    pub blake3: String,
    /// SRI integrity of its content.
    pub integrity: String,
}

/// The loaded index.
#[derive(Debug, Default)]
pub struct FileIndex {
    path: Option<PathBuf>,
    entries: BTreeMap<String, Known>,
    dirty: bool,
}

impl FileIndex {
    /// Loads the index of the source folder `src` in the cache at `dir` (an empty one if there is
    /// none or it is unreadable). Each source folder has its own, so two projects sharing a cache
    /// do not forget each other's files.
    pub fn load(dir: &Path, src: &Path) -> FileIndex {
        let src = src.canonicalize().unwrap_or_else(|_| src.to_owned());
        let tag = blake3::hash(src.to_string_lossy().as_bytes()).to_hex();
        let path = dir.join(format!("{PREFIX}{}.json", &tag[..16]));
        let entries = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        FileIndex {
            path: Some(path),
            entries,
            dirty: false,
        }
    }

    /// What is known of `file` if its stamp still matches.
    pub fn get(&self, file: &Path, stamp: Stamp) -> Option<&Known> {
        self.entries
            .get(file.to_str()?)
            .filter(|k| k.stamp == stamp)
    }

    /// Records `file`'s content facts.
    pub fn insert(&mut self, file: &Path, known: Known) {
        let Some(key) = file.to_str() else { return };
        if self.entries.get(key) != Some(&known) {
            self.entries.insert(key.to_owned(), known);
            self.dirty = true;
        }
    }

    /// Forgets files not in `keep` (deleted or renamed sources).
    pub fn retain(&mut self, keep: &std::collections::HashSet<String>) {
        let before = self.entries.len();
        self.entries.retain(|k, _| keep.contains(k));
        self.dirty |= self.entries.len() != before;
    }

    /// Deletes every index in the cache at `dir`.
    pub fn clean(dir: &Path) -> std::io::Result<()> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(PREFIX) {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }

    /// Writes the index if it changed (best-effort, like the rest of the cache).
    pub fn save(&self) {
        if let (true, Some(path)) = (self.dirty, &self.path)
            && let Ok(json) = serde_json::to_vec(&self.entries)
        {
            let _ = crate::fsutil::write_atomic(path, &json);
        }
    }
}

//! The file index: what kiln knows about each source file it last read, by size and
//! modification time, so a build with nothing changed does not read or hash those files again.
//!
//! Owns one JSON file in the cache folder (`files-v1.json`) mapping a source file's absolute path
//! to its size, modification time (nanoseconds), BLAKE3 and SRI integrity. Only files that pass
//! through untouched and need no compression (images, fonts, archives) are skipped this way:
//! everything a transformer or a compressor reads is read, and its results come from the cache.
//! A size or time mismatch means the file is read and hashed again (content hashing is the
//! fallback). The index is rewritten only when it changed.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use rayon::prelude::*;

use crate::cache::INDEX_PREFIX as PREFIX;
use crate::compress::compressible;
use crate::config::Config;
use crate::fsutil::LARGE_FILE;
use crate::model::{AssetKind, Discovered, Known, Linked, Stamp};
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

    /// Writes the index if it changed (best-effort, like the rest of the cache).
    pub fn save(&self) {
        if let (true, Some(path)) = (self.dirty, &self.path)
            && let Ok(json) = serde_json::to_vec(&self.entries)
        {
            let _ = crate::fsutil::write_atomic(path, &json);
        }
    }
}

/// Which files may go unread when the index knows them unchanged: only files nothing reads. No
/// transformer takes them, they get no compressed siblings (large files never do), and they are
/// not source maps (the JS transformer chains input maps).
pub(crate) struct Unread<'a> {
    config: &'a Config,
    transformed: Vec<AssetKind>,
}

impl<'a> Unread<'a> {
    /// The rule for a build of `config` whose transformers take the kinds `accepts` says.
    pub(crate) fn new(config: &'a Config, accepts: impl Fn(AssetKind) -> bool) -> Unread<'a> {
        let transformed = AssetKind::ALL.into_iter().filter(|&k| accepts(k)).collect();
        Unread {
            config,
            transformed,
        }
    }

    /// Whether the file `logical` of `kind` and `size` bytes may go unread when unchanged.
    pub(crate) fn may_skip(&self, logical: &str, kind: AssetKind, size: u64) -> bool {
        !self.transformed.contains(&kind)
            && (self.config.compress.formats.is_empty()
                || !compressible(logical)
                || size >= LARGE_FILE)
            && !logical.ends_with(".map")
    }
}

/// What a build learns for the index: the skippable files it read (their SRI comes from link),
/// and every source file it saw (the index forgets the others).
#[derive(Debug, Default)]
pub(crate) struct Learned {
    read: Vec<(String, PathBuf, Stamp, blake3::Hash)>,
    present: HashSet<String>,
}

impl Learned {
    /// What `discovered` teaches under `unread`'s rule.
    pub(crate) fn of(discovered: &Discovered, unread: &Unread<'_>) -> Learned {
        let now_ns = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let read = discovered
            .assets
            .par_iter()
            // Files the index already knows are the same entry again (a no-op); large files
            // hashed as a stream are new entries.
            .filter(|a| unread.may_skip(&a.logical, a.kind, a.size()))
            // A file modified in the last moments could change again within the same timestamp
            // tick: leave it out, it is read next time ("racily clean", as git calls it).
            .filter(|a| a.stamp.is_some_and(|s| s.mtime_ns + 2_000_000_000 < now_ns))
            .filter_map(|a| {
                let path = std::path::absolute(&a.path).ok()?;
                Some((a.logical.clone(), path, a.stamp?, a.hash))
            })
            .collect();
        let present = (discovered.assets.iter())
            .filter_map(|a| Some(std::path::absolute(&a.path).ok()?.to_str()?.to_owned()))
            .collect();
        Learned { read, present }
    }
}

impl FileIndex {
    /// Records what a build `learned`, with the SRI `linked` computed, and saves the index.
    pub(crate) fn learn(&mut self, learned: Learned, linked: &Linked) {
        for (logical, path, stamp, hash) in learned.read {
            // Variants joined the asset list in transform: find the file by name, not position.
            let Ok(i) = (linked.assets).binary_search_by(|a| a.logical.as_str().cmp(&logical))
            else {
                continue;
            };
            let known = Known {
                stamp,
                blake3: hash.to_hex().to_string(),
                integrity: linked.assets[i].integrity.clone(),
            };
            self.insert(&path, known);
        }
        self.retain(&learned.present);
        self.save();
    }
}

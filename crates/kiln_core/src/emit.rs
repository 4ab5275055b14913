//! Stage 4, emit: write the fingerprinted files into the output folder, and later remove the ones
//! no recent build needs.
//!
//! Owns the output folder's safety rules: every file is written to a temporary name and renamed;
//! a file that already exists with the same bytes is not rewritten (fingerprinted names are
//! content-addressed, so a no-op build writes nothing); earlier builds' files stay until they fall
//! out of the last `keep_builds` builds, tracked in `.kiln-builds.json`, so a rolling deploy still
//! serves them. Only files kiln itself wrote are ever deleted. Precompressed siblings are written
//! and retired with their file. Does not write manifests.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::fsutil::{copy_atomic, write_atomic, write_durable};
use crate::model::{Linked, OutputFile};

/// The file in `out` that records which files recent builds wrote.
pub const HISTORY_FILE: &str = ".kiln-builds.json";

/// What emitting wrote.
#[derive(Debug, Default)]
pub struct Emitted {
    /// Every output file of this build (relative, sorted).
    pub files: Vec<String>,
    /// How many were written (the rest already existed with the same bytes).
    pub written: usize,
    /// The fingerprinted files this build added to the folder (see [`take_back`]).
    pub added: Vec<String>,
}

/// A write or delete in the output folder failed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct EmitError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> EmitError + '_ {
    move |source| EmitError {
        path: path.to_owned(),
        source,
    }
}

/// Writes every asset and map of `linked` into `out`; with `unhashed`, also a copy of each
/// output under its logical name (for development servers).
pub fn emit(linked: &Linked, out: &Path, unhashed: bool) -> Result<Emitted, EmitError> {
    // (path, content, fingerprinted): fingerprinted names are content hashes.
    let copies = linked
        .assets
        .iter()
        .filter(|_| unhashed)
        .map(|a| (a.logical.as_str(), &a.output, false));
    let files: Vec<(&str, Content<'_>, bool)> = linked
        .assets
        .iter()
        .flat_map(|a| std::iter::once(&a.output).chain(a.map.as_ref()))
        .map(|f| (f.path.as_str(), f, true))
        .chain(copies)
        .flat_map(|(name, f, fingerprinted)| {
            std::iter::once((name, Content::of(f), fingerprinted)).chain(
                f.encodings.iter().filter(move |_| fingerprinted).map(|e| {
                    let content = match e.kept {
                        Some(size) => Content::Kept(size),
                        None => Content::Bytes(&e.bytes),
                    };
                    (e.path.as_str(), content, true)
                }),
            )
        })
        .collect();
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    let needed: Vec<bool> = files
        .par_iter()
        .map(|&(name, content, fingerprinted)| {
            let path = out.join(name);
            // A kept file (an earlier build's, not loaded) is checked again here, under the
            // lock: another build may have retired it since discovery found it.
            let same = if fingerprinted {
                // Names are content hashes and every write is atomic, so a file of that name and
                // size is this file: skip it without reading it back.
                std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == content.size())
            } else {
                std::fs::metadata(&path).is_ok_and(|m| m.len() == content.size())
                    && content
                        .bytes()
                        .is_ok_and(|b| std::fs::read(&path).is_ok_and(|old| old == *b))
            };
            !same
        })
        .collect();
    // New fingerprinted files are recorded before they exist, so a build killed between writing
    // them and recording them in the history (after the manifests) leaves nothing the next build
    // does not know to remove.
    let new: Vec<&str> = files
        .iter()
        .zip(&needed)
        .filter(|((_, _, fingerprinted), needed)| **needed && *fingerprinted)
        .map(|((name, _, _), _)| *name)
        .collect();
    if !new.is_empty() {
        record_pending(out, &new)?;
    }
    let result = files
        .par_iter()
        .zip(&needed)
        .filter(|(_, needed)| **needed)
        .try_for_each(|(&(name, content, _), _)| {
            let path = out.join(name);
            match content {
                // An unchanged or large file: copied by the kernel, never held in memory.
                Content::Copy(source, _, hash) => {
                    copy_atomic(source, &path, hash).map_err(io_err(&path))
                }
                Content::Bytes(bytes) => write_atomic(&path, bytes).map_err(io_err(&path)),
                // Discovery saw it there; something removed or changed it since.
                Content::Kept(_) => Err(io_err(&path)(kept_gone())),
            }
        });
    let added: Vec<String> = new.iter().map(|n| (*n).to_owned()).collect();
    if let Err(e) = result {
        // A failed emit (full disk, permissions) takes back the files it added; files of the
        // previous build were never touched.
        remove_added(out, &added);
        return Err(e);
    }
    let written: Vec<bool> = needed;
    let mut names: Vec<String> = files
        .iter()
        .map(|(name, _, _)| (*name).to_owned())
        .collect();
    names.sort();
    Ok(Emitted {
        files: names,
        written: written.into_iter().filter(|w| *w).count(),
        added,
    })
}

/// Removes the files `emitted` added, when a later step of the build (manifests) failed: the
/// folder is left as the previous build left it.
pub fn take_back(out: &Path, emitted: &Emitted) {
    remove_added(out, &emitted.added);
}

fn remove_added(out: &Path, added: &[String]) {
    for name in added {
        let path = out.join(name);
        if std::fs::remove_file(&path).is_ok() {
            remove_empty_parents(out, &path);
        }
    }
}

/// An output's content: bytes in memory, an unchanged source file to copy, or a file an earlier
/// build wrote that is already in the output folder (its size).
#[derive(Clone, Copy)]
enum Content<'a> {
    Bytes(&'a [u8]),
    Copy(&'a Path, u64, &'a str),
    Kept(u64),
}

impl<'a> Content<'a> {
    fn of(f: &'a OutputFile) -> Self {
        match (&f.copy_of, f.kept) {
            (Some((path, len, hash)), _) => Content::Copy(path, *len, hash),
            (None, Some(len)) => Content::Kept(len),
            (None, None) => Content::Bytes(&f.bytes),
        }
    }

    fn size(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::Copy(_, len, _) | Content::Kept(len) => *len,
        }
    }

    fn bytes(&self) -> std::io::Result<std::borrow::Cow<'a, [u8]>> {
        match self {
            Content::Kept(_) => Err(kept_gone()),
            Content::Bytes(b) => Ok(std::borrow::Cow::Borrowed(b)),
            Content::Copy(path, _, hash) => {
                let bytes = std::fs::read(path)?;
                // Changed since discovery (saved during the build): its fingerprint is stale.
                if blake3::hash(&bytes).to_hex().as_str() != *hash {
                    return Err(std::io::Error::other(
                        "changed while kiln was building; run the build again",
                    ));
                }
                Ok(std::borrow::Cow::Owned(bytes))
            }
        }
    }
}

fn kept_gone() -> std::io::Error {
    std::io::Error::other(
        "an earlier build's file, in the output folder when this build started, was removed or \
         changed during it; run the build again",
    )
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct History {
    version: u32,
    /// Newest first: the files each build wrote.
    builds: Vec<Vec<String>>,
    /// Files a build started writing and had not recorded yet (it was killed, or is running):
    /// removed by the next build that does not need them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pending: Vec<String>,
}

fn read_history(path: &Path) -> History {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Adds `names` to the history's pending files, durably, before they are written.
fn record_pending(out: &Path, names: &[&str]) -> Result<(), EmitError> {
    let path = out.join(HISTORY_FILE);
    let mut history = read_history(&path);
    history.version = 1;
    history
        .pending
        .extend(names.iter().map(|n| (*n).to_owned()));
    history.pending.sort();
    history.pending.dedup();
    let json = serde_json::to_vec_pretty(&history).expect("history serialises");
    write_durable(&path, &json).map_err(io_err(&path))
}

/// Records this build's files (plus `extra`, the manifests) and deletes files that only builds
/// older than the last `keep` wrote. Returns the removed paths. Call after the manifests are written.
pub fn retire_old_builds(
    out: &Path,
    emitted: &Emitted,
    keep: usize,
) -> Result<Vec<String>, EmitError> {
    let history_path = out.join(HISTORY_FILE);
    let mut history = read_history(&history_path);
    if history.version == 1
        && history.pending.is_empty()
        && history.builds.first() == Some(&emitted.files)
    {
        // The same files as the last build: nothing to record, nothing to remove.
        return Ok(Vec::new());
    }
    history.version = 1;
    history.builds.insert(0, emitted.files.clone());
    let mut dropped: Vec<Vec<String>> = history.builds.split_off(keep.min(history.builds.len()));
    dropped.push(std::mem::take(&mut history.pending));
    let kept: std::collections::HashSet<&String> = history.builds.iter().flatten().collect();
    // The history file is data in a public folder: never follow an entry out of `out`.
    let mut removed: Vec<String> = dropped
        .into_iter()
        .flatten()
        .filter(|f| !kept.contains(f) && is_safe_relative(f))
        .collect();
    removed.sort();
    removed.dedup();
    let json = serde_json::to_vec_pretty(&history).expect("history serialises");
    write_durable(&history_path, &json).map_err(io_err(&history_path))?;
    for f in &removed {
        let path = out.join(f);
        match std::fs::remove_file(&path) {
            Ok(()) => remove_empty_parents(out, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
    }
    Ok(removed)
}

/// A relative POSIX path with no `..`, `.` or empty component: something kiln could have written.
pub fn is_safe_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && path.split('/').all(|p| !matches!(p, "" | "." | ".."))
}

fn remove_empty_parents(out: &Path, file: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == out || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

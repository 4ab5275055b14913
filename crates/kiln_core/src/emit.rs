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

use crate::fsutil::{write_atomic, write_durable};
use crate::link::{Linked, OutputFile};

/// The file in `out` that records which files recent builds wrote.
pub const HISTORY_FILE: &str = ".kiln-builds.json";

/// What emitting wrote.
#[derive(Debug, Default)]
pub struct Emitted {
    /// Every output file of this build (relative, sorted).
    pub files: Vec<String>,
    /// How many were written (the rest already existed with the same bytes).
    pub written: usize,
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
                f.encodings
                    .iter()
                    .filter(move |_| fingerprinted)
                    .map(|e| (e.path.as_str(), Content::Bytes(&e.bytes), true)),
            )
        })
        .collect();
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    let written: Vec<bool> = files
        .par_iter()
        .map(|&(name, content, fingerprinted)| {
            let path = out.join(name);
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
            if same {
                return Ok(false);
            }
            let bytes = content.bytes().map_err(io_err(&path))?;
            write_atomic(&path, &bytes).map_err(io_err(&path))?;
            Ok(true)
        })
        .collect::<Result<_, EmitError>>()?;
    let mut names: Vec<String> = files
        .iter()
        .map(|(name, _, _)| (*name).to_owned())
        .collect();
    names.sort();
    Ok(Emitted {
        files: names,
        written: written.into_iter().filter(|w| *w).count(),
    })
}

/// An output's content: bytes in memory, or an unchanged source file to copy.
#[derive(Clone, Copy)]
enum Content<'a> {
    Bytes(&'a [u8]),
    Copy(&'a Path, u64, &'a str),
}

impl<'a> Content<'a> {
    fn of(f: &'a OutputFile) -> Self {
        match &f.copy_of {
            Some((path, len, hash)) => Content::Copy(path, *len, hash),
            None => Content::Bytes(&f.bytes),
        }
    }

    fn size(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::Copy(_, len, _) => *len,
        }
    }

    fn bytes(&self) -> std::io::Result<std::borrow::Cow<'a, [u8]>> {
        match self {
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

#[derive(Debug, Default, Serialize, Deserialize)]
struct History {
    version: u32,
    /// Newest first: the files each build wrote.
    builds: Vec<Vec<String>>,
}

/// Records this build's files (plus `extra`, the manifests) and deletes files that only builds
/// older than the last `keep` wrote. Returns the removed paths. Call after the manifests are written.
pub fn retire_old_builds(
    out: &Path,
    emitted: &Emitted,
    keep: usize,
) -> Result<Vec<String>, EmitError> {
    let history_path = out.join(HISTORY_FILE);
    let mut history: History = std::fs::read(&history_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if history.version == 1 && history.builds.first() == Some(&emitted.files) {
        // The same files as the last build: nothing to record, nothing to remove.
        return Ok(Vec::new());
    }
    history.version = 1;
    history.builds.insert(0, emitted.files.clone());
    let dropped: Vec<Vec<String>> = history.builds.split_off(keep.min(history.builds.len()));
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

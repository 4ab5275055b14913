//! The file index: what kiln knows about each source file it last read, by size and
//! modification time, so a build with nothing changed does not read or hash those files again.
//!
//! Owns one JSON file in the cache folder (`files-v1.json`) mapping a source file's absolute path
//! to its size, modification time (nanoseconds), BLAKE3 and SRI integrity, and for an image, CSS
//! or JS file a record of its outputs ([`Recorded`]). Files that pass through untouched and need
//! no compression (fonts, archives), and recorded files whose outputs are in the output folder,
//! are not read (see [`Unread`]; docs/internals.md explains when a record holds). A size or time
//! mismatch means the file is read and hashed again (content hashing is the fallback). The index
//! is rewritten only when it changed.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use rayon::prelude::*;

use crate::cache::{INDEX_PREFIX as PREFIX, build_id, transform_key};
use crate::compress::compressible;
use crate::config::Config;
use crate::fsutil::LARGE_FILE;
use crate::link::{isolated, leaf_name};
use crate::model::{
    AssetKind, Encoding, ImageInfo, Kept, Known, Linked, LinkedAsset, OutputFile, Recorded,
    RecordedLink, RecordedVariant, Stamp, Transformed,
};
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

/// Which files may go unread when the index knows them unchanged:
/// - files nothing reads: no transformer takes them, they get no compressed siblings (large files
///   never do), and they are not source maps (the JS transformer chains input maps);
/// - images, CSS and JS files whose outputs the index recorded ([`Recorded`]), made by this build
///   of kiln with these settings, while those outputs (with their maps and siblings) are in the
///   output folder. Whether a CSS or JS file's record still holds also depends on the other
///   files (see [`crate::transform::stale`]); the ones that do not are read after all. Not with
///   `unhashed`, whose copies emit compares byte for byte.
pub(crate) struct Unread<'a> {
    config: &'a Config,
    /// The kinds a transformer takes, with its name.
    transformed: Vec<(AssetKind, &'static str)>,
    fingerprint: blake3::Hash,
    /// Of the precompression settings, which decide a recorded file's siblings.
    compress: String,
}

impl<'a> Unread<'a> {
    /// The rule for a build of `config` whose transformer for a kind is named `name_of(kind)`.
    pub(crate) fn new(
        config: &'a Config,
        name_of: impl Fn(AssetKind) -> Option<&'static str>,
    ) -> Unread<'a> {
        let transformed = (AssetKind::ALL.into_iter())
            .filter_map(|k| Some((k, name_of(k)?)))
            .collect();
        Unread {
            config,
            transformed,
            fingerprint: config.transform_fingerprint(),
            compress: serde_json::to_string(&config.compress).unwrap_or_default(),
        }
    }

    fn transformer(&self, kind: AssetKind) -> Option<&'static str> {
        (self.transformed.iter()).find_map(|&(k, name)| (k == kind).then_some(name))
    }

    /// Whether the file `logical` of `kind` and `size` bytes, which the index knows as `known`
    /// (unchanged since), may go unread.
    pub(crate) fn may_skip(
        &self,
        logical: &str,
        kind: AssetKind,
        size: u64,
        known: Option<&Known>,
    ) -> bool {
        match self.transformer(kind) {
            None => self.nothing_reads(logical, size),
            Some(name) => (known.and_then(|k| Some((k, k.output.as_ref()?))))
                .is_some_and(|(k, r)| self.record_holds(name, logical, kind, k, r)),
        }
    }

    /// The first rule: a file no stage reads.
    fn nothing_reads(&self, logical: &str, size: u64) -> bool {
        (self.config.compress.formats.is_empty() || !compressible(logical) || size >= LARGE_FILE)
            && !logical.ends_with(".map")
    }

    /// The transformer of files of `kind` the index records, if it does.
    fn records(&self, kind: AssetKind) -> Option<&'static str> {
        self.transformer(kind).filter(|_| {
            matches!(
                kind,
                AssetKind::Png | AssetKind::Jpeg | AssetKind::Css | AssetKind::Js
            ) && !self.config.unhashed
        })
    }

    /// The key a record of `logical` (content `hash`) made by transformer `name` must have: the
    /// transform's cache key under this build of kiln and these precompression settings.
    fn record_key(&self, name: &str, logical: &str, hash: &blake3::Hash) -> String {
        let key = transform_key(name, &self.fingerprint, logical, hash);
        let mut h = blake3::Hasher::new();
        h.update(build_id().as_bytes());
        h.update(b"\0");
        h.update(self.compress.as_bytes());
        h.update(b"\0");
        h.update(key.as_bytes());
        h.finalize().to_hex().to_string()
    }

    /// The second rule: `record` is this build's, and its files are in the output folder.
    fn record_holds(
        &self,
        name: &str,
        logical: &str,
        kind: AssetKind,
        known: &Known,
        record: &Recorded,
    ) -> bool {
        let there = |name: &str, size: u64| {
            std::fs::metadata(self.config.out.join(name))
                .is_ok_and(|m| m.is_file() && m.len() == size)
        };
        // An image's files are named by their content alone.
        let image_there = |logical: &str, file: &Kept| {
            blake3::Hash::from_hex(&file.blake3).is_ok_and(|hash| {
                let isolated = isolated(file.size, &hash, None);
                there(
                    &leaf_name(logical, &isolated, self.config.hash_length),
                    file.size,
                )
            })
        };
        let siblings_there = |name: &str, encodings: &[(Encoding, u64)]| {
            (encodings.iter()).all(|(e, size)| there(&format!("{name}{}", e.extension()), *size))
        };
        let files_there = match &record.link {
            None => {
                image_there(logical, &record.file)
                    && record
                        .variants
                        .iter()
                        .all(|v| image_there(&v.logical, &v.file))
            }
            Some(link) => {
                there(&link.name, record.file.size)
                    && siblings_there(&link.name, &link.encodings)
                    && link.map.as_ref().is_none_or(|(size, encodings)| {
                        let map = format!("{}.map", link.name);
                        there(&map, *size) && siblings_there(&map, encodings)
                    })
            }
        };
        self.records(kind).is_some()
            && blake3::Hash::from_hex(&known.blake3)
                .is_ok_and(|h| record.key == self.record_key(name, logical, &h))
            && files_there
    }
}

/// What a build learns for the index: the files it read that may go unread next time (their SRI
/// comes from link, the records of images, CSS and JS files from their linked outputs), and every
/// source file it saw (the index forgets the others).
#[derive(Debug, Default)]
pub(crate) struct Learned {
    read: Vec<Reading>,
    present: HashSet<String>,
}

/// A file read by this build that the index may remember.
#[derive(Debug)]
struct Reading {
    logical: String,
    /// Absolute.
    path: PathBuf,
    /// As diagnostics name it.
    display: String,
    stamp: Stamp,
    hash: blake3::Hash,
    /// For a file the index records: the record's key, and the SRI of the source file itself.
    record: Option<(String, String)>,
}

impl Learned {
    /// What the sources teach under `unread`'s rule, once transformed (the files whose records
    /// no longer held were read by then); `read_from` is when discovery started reading them.
    pub(crate) fn of(
        transformed: &Transformed,
        unread: &Unread<'_>,
        read_from: std::time::SystemTime,
    ) -> Learned {
        let now_ns = read_from
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let read = transformed
            .assets
            .par_iter()
            // Files the index already knows went unread: their entries stay as they are. Large
            // files hashed as a stream are new entries.
            .filter(|a| a.known.as_ref().is_none_or(|k| k.output.is_none()))
            // A file modified in the last moments could change again within the same timestamp
            // tick: leave it out, it is read next time ("racily clean", as git calls it).
            .filter(|a| a.stamp.is_some_and(|s| s.mtime_ns + 2_000_000_000 < now_ns))
            .filter_map(|a| {
                let record = match unread.records(a.kind) {
                    Some(name) if a.known.is_none() => Some((
                        unread.record_key(name, &a.logical, &a.hash),
                        crate::integrity::sri(&a.bytes),
                    )),
                    Some(_) => return None,
                    // The first rule of `Unread`: a file nothing reads.
                    None if unread.may_skip(&a.logical, a.kind, a.size(), None) => None,
                    None => return None,
                };
                Some(Reading {
                    logical: a.logical.clone(),
                    path: std::path::absolute(&a.path).ok()?,
                    display: a.display_path(),
                    stamp: a.stamp?,
                    hash: a.hash,
                    record,
                })
            })
            .collect();
        // Variants have no stamp, and share their image's path.
        let present = (transformed.assets.iter())
            .filter(|a| a.stamp.is_some())
            .filter_map(|a| Some(std::path::absolute(&a.path).ok()?.to_str()?.to_owned()))
            .collect();
        Learned { read, present }
    }
}

impl FileIndex {
    /// Records what a build `learned`, with the SRI and outputs `linked` has (after precompression,
    /// whose siblings records list), and saves the index.
    pub(crate) fn learn(&mut self, learned: Learned, linked: &Linked) {
        // Variants joined the asset list in transform: find files by name, not position.
        let find = |logical: &str| {
            (linked.assets)
                .binary_search_by(|a| a.logical.as_str().cmp(logical))
                .ok()
        };
        let warned: HashSet<&str> = linked.diagnostics.iter().map(|d| d.path.as_str()).collect();
        let entries: Vec<(PathBuf, Known)> = learned
            .read
            .into_par_iter()
            .filter_map(|r| {
                let i = find(&r.logical)?;
                let asset = &linked.assets[i];
                let (integrity, output) = match r.record {
                    None => (asset.integrity.clone(), None),
                    Some((key, source_sri)) => {
                        let output = (!warned.contains(r.display.as_str()))
                            .then(|| record(key, linked, i, &find))
                            .flatten();
                        (source_sri, output)
                    }
                };
                let known = Known {
                    stamp: r.stamp,
                    blake3: r.hash.to_hex().to_string(),
                    integrity,
                    output,
                };
                Some((r.path, known))
            })
            .collect();
        for (path, known) in entries {
            self.insert(&path, known);
        }
        self.retain(&learned.present);
        self.save();
    }
}

/// The record (with `key`) of `linked.assets[i]`, an image with its variants or a CSS or JS file,
/// when its outputs are in memory (it was read).
fn record(
    key: String,
    linked: &Linked,
    i: usize,
    find: &impl Fn(&str) -> Option<usize>,
) -> Option<Recorded> {
    let kept = |a: &LinkedAsset| {
        (a.output.copy_of.is_none() && a.output.kept.is_none() && !a.integrity.is_empty()).then(
            || Kept {
                size: a.output.bytes.len() as u64,
                blake3: blake3::hash(&a.output.bytes).to_hex().to_string(),
                integrity: a.integrity.clone(),
            },
        )
    };
    let sizes = |f: &OutputFile| f.encodings.iter().map(|e| (e.encoding, e.size())).collect();
    let asset = &linked.assets[i];
    if let Some(link) = linked.records.get(i).cloned().flatten() {
        // A CSS or JS file: what link made of it, with the siblings precompression added.
        let link = RecordedLink {
            encodings: sizes(&asset.output),
            map: asset.map.as_ref().map(|m| (m.size(), sizes(m))),
            ..*link
        };
        if link.name != asset.output.path {
            return None;
        }
        return Some(Recorded {
            key,
            file: kept(asset)?,
            image: None,
            variants: Vec::new(),
            link: Some(Box::new(link)),
        });
    }
    let image = asset.image.as_ref()?;
    if asset.map.is_some() || !asset.references.is_empty() || !asset.output.encodings.is_empty() {
        return None;
    }
    let variants = (image.variants.iter())
        .map(|logical| {
            let v = &linked.assets[find(logical)?];
            let info = v.image.as_ref()?;
            Some(RecordedVariant {
                logical: logical.clone(),
                width: info.width,
                height: info.height,
                file: kept(v)?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Recorded {
        key,
        file: kept(asset)?,
        image: Some(ImageInfo {
            variants: Vec::new(),
            ..image.clone()
        }),
        variants,
        link: None,
    })
}

//! The persistent, content-addressed build cache (`.kiln-cache/` by default).
//!
//! Owns: where entries live (`<dir>/v1/<namespace>/<2 hex>/<62 hex>`), their integrity (every
//! entry ends with the BLAKE3 of its payload; a corrupt or truncated entry is a miss and is
//! deleted, never a wrong output), atomic writes, least-recently-used eviction under a size limit
//! (reads touch an entry's modification time), and the two kinds of entries the pipeline stores:
//! transform outputs (keyed by kiln's version, the transformer, the options that affect it, the
//! file's logical path and content; they record the other files they read, which are checked
//! too) and precompressed siblings (keyed by content, encoding and level). Reference resolution
//! and hashing are never cached: they are redone on every build, and they are cheap.
//!
//! The cache is best-effort: a failure to read or write it never fails a build.
//!
//! Behind it may sit a [`Remote`], a cache shared by a team and its CI runners (implemented by
//! `kiln_deploy::remote_cache`): a local miss asks the remote before computing, what the remote
//! had is kept locally, and what was computed is handed to the remote (which uploads it in the
//! background). Remote keys are this cache's keys under the same build id, so an entry only
//! travels between identical builds of kiln.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use crate::diagnostic::Diagnostic;
use crate::model::{Columns, ImageInfo, MapComment, Reference, TransformOutput, Variant};

const MAGIC: &[u8; 8] = b"KILNC001";
const LAYOUT: &str = "v1";
/// The file indexes' names start with this (see [`crate::index`]).
pub(crate) const INDEX_PREFIX: &str = "files-v1-";
/// The folder of the up-to-date records (see `memo`).
pub(crate) const BUILDS_FOLDER: &str = "builds-v1";

/// An open cache folder.
pub struct Cache {
    /// `<dir>/v1`: every build of kiln's entries (eviction looks at all of them).
    all: PathBuf,
    /// `<dir>/v1/<build id>`: this build of kiln's entries.
    root: PathBuf,
    max_size: u64,
    hits: AtomicUsize,
    misses: AtomicUsize,
    transform_misses: AtomicUsize,
    /// Bytes this build wrote into the cache (see [`Ledger`]).
    written: AtomicU64,
    /// [`Cache::finish`] ran (else dropping the cache adds `written` to the ledger).
    finished: std::sync::atomic::AtomicBool,
    remote: Option<std::sync::Arc<dyn Remote>>,
}

/// The cache's size as of the last walk of the whole cache, plus what builds wrote since, and
/// when that walk was (`<dir>/v1/ledger.json`): builds do not walk tens of thousands of entries
/// to learn that the cache is under its limit.
#[derive(Debug, Serialize, Deserialize)]
struct Ledger {
    /// Bytes.
    bytes: u64,
    /// Seconds since the Unix epoch.
    walked: u64,
}

/// The ledger's file name in `<dir>/v1`.
const LEDGER: &str = "ledger.json";

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("root", &self.root)
            .field("max_size", &self.max_size)
            .field("remote", &self.remote.is_some())
            .finish()
    }
}

/// Hits and misses of one build.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Entries found and valid in the local cache.
    pub hits: usize,
    /// Entries found neither locally nor in the remote cache (and so computed).
    pub misses: usize,
    /// Of `misses`, transform outputs (the costly kind: minifying, image encoding).
    pub transform_misses: usize,
}

/// A cache shared between machines, consulted after the local one. Implementations verify what
/// they download (a corrupt or tampered entry is a miss), bound the time a lookup may take, and
/// turn every failure into a miss: the remote can make a build faster, never fail it.
pub trait Remote: Send + Sync {
    /// The payload stored under `key` (`<build id>/<namespace>/<hex>`), or None.
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    /// Offers a payload computed by this build (an implementation may upload it in the
    /// background, or ignore it when read-only).
    fn put(&self, key: &str, payload: Vec<u8>);
    /// Waits (for a bounded time) for background uploads and says what the remote did.
    fn finish(&self) -> RemoteReport;
}

/// What a remote cache did during one build.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RemoteReport {
    /// Where it is (`s3://bucket/prefix`, `https://host/path`), for messages.
    pub location: String,
    /// Entries downloaded and verified.
    pub hits: usize,
    /// Entries it did not have.
    pub misses: usize,
    /// Entries it had whose content failed verification (treated as misses).
    pub rejected: usize,
    /// Entries uploaded.
    pub uploads: usize,
    /// Lookups and uploads left out: the remote had failed, lookups that missed had used up
    /// their time budget (a cold or slow remote), or the upload queue stayed full.
    pub skipped: usize,
    /// Bytes downloaded.
    pub bytes_down: u64,
    /// Bytes uploaded.
    pub bytes_up: u64,
    /// Why the remote was left alone for (part of) the build, if it was: one message for the
    /// whole build, the first failure's.
    pub warning: Option<String>,
}

impl Cache {
    /// Opens (creating) the cache at `dir`, which [`Cache::finish`] keeps within `max_size` bytes.
    pub fn open(dir: &Path, max_size: u64) -> std::io::Result<Cache> {
        // Entries of one build of kiln are never read by another: a rebuilt kiln (new code, new
        // codec versions) gets a fresh namespace, and eviction reclaims the old ones.
        let all = dir.join(LAYOUT);
        let root = all.join(build_id());
        std::fs::create_dir_all(&root)?;
        // Tools that index folders (git, editors) should skip it.
        let tag = dir.join("CACHEDIR.TAG");
        if !tag.exists() {
            let _ = std::fs::write(
                &tag,
                "Signature: 8a477f597d28d172789f06886806bc55\n# kiln's build cache; safe to delete.\n",
            );
        }
        Ok(Cache {
            all,
            root,
            max_size,
            hits: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
            transform_misses: AtomicUsize::new(0),
            written: AtomicU64::new(0),
            finished: std::sync::atomic::AtomicBool::new(false),
            remote: None,
        })
    }

    /// Consults (and feeds) `remote` behind this cache.
    pub fn with_remote(mut self, remote: std::sync::Arc<dyn Remote>) -> Cache {
        self.remote = Some(remote);
        self
    }

    /// The cache a build of `config` uses, with `remote` behind it; None when the cache is off
    /// or its folder cannot be made (a build without a cache is slower, never wrong).
    pub fn for_build(
        config: &crate::config::Config,
        remote: Option<std::sync::Arc<dyn Remote>>,
    ) -> Option<Cache> {
        if !config.cache.enabled {
            return None;
        }
        let cache = Cache::open(
            &config.cache.dir,
            config.cache.max_size_mb.saturating_mul(1 << 20),
        )
        .ok()?;
        Some(match remote {
            Some(r) => cache.with_remote(r),
            None => cache,
        })
    }

    /// At the end of a build: waits for the remote's last uploads, evicts what is over the size
    /// limit (when the ledger says it may be, see [`Ledger`]), and says what the cache and its
    /// remote did.
    pub fn finish(&self) -> (CacheStats, Option<RemoteReport>) {
        let remote = self.finish_remote();
        self.evict_when_due();
        self.finished.store(true, Ordering::Relaxed);
        (self.stats(), remote)
    }

    /// Walks the cache to evict only when its ledger's size plus what this build wrote passes the
    /// limit, or the last walk is an hour old (other builds sharing the cache may have written
    /// more than they managed to add to the ledger); otherwise adds this build's bytes to it.
    fn evict_when_due(&self) {
        let path = self.all.join(LEDGER);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let written = self.written.load(Ordering::Relaxed);
        let ledger: Option<Ledger> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let ledger = match ledger {
            Some(l)
                if now.saturating_sub(l.walked) < 3600
                    && l.bytes.saturating_add(written) <= self.max_size =>
            {
                if written == 0 {
                    return;
                }
                Ledger {
                    bytes: l.bytes + written,
                    walked: l.walked,
                }
            }
            _ => Ledger {
                bytes: self.sweep().1,
                walked: now,
            },
        };
        if let Ok(json) = serde_json::to_vec(&ledger) {
            let _ = crate::fsutil::write_atomic(&path, &json);
        }
    }

    /// The remote's report, after waiting for its uploads (None without a remote).
    pub fn finish_remote(&self) -> Option<RemoteReport> {
        self.remote.as_ref().map(|r| r.finish())
    }

    fn remote_key(&self, namespace: &str, key: &blake3::Hash) -> String {
        format!("{}/{namespace}/{}", build_id(), key.to_hex())
    }

    /// Deletes every entry under `dir`, the file indexes and the up-to-date records.
    pub fn clean(dir: &Path) -> std::io::Result<()> {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(INDEX_PREFIX)
                {
                    std::fs::remove_file(entry.path())?;
                }
            }
        }
        for folder in [LAYOUT, BUILDS_FOLDER] {
            match std::fs::remove_dir_all(dir.join(folder)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Hits and misses so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            transform_misses: self.transform_misses.load(Ordering::Relaxed),
        }
    }

    fn path(&self, namespace: &str, key: &blake3::Hash) -> PathBuf {
        let hex = key.to_hex();
        self.root.join(namespace).join(&hex[..2]).join(&hex[2..])
    }

    /// The verified payload stored under `key`, if any: from the local folder, else from the
    /// remote cache (and then kept locally).
    pub fn get(&self, namespace: &str, key: &blake3::Hash) -> Option<Vec<u8>> {
        self.lookup(namespace, key, true)
    }

    /// [`Cache::get`], asking the remote cache only when `shared` (results cheaper to compute
    /// than to fetch are not worth a round trip).
    pub fn lookup(&self, namespace: &str, key: &blake3::Hash, shared: bool) -> Option<Vec<u8>> {
        if let Some(payload) = self.get_local(namespace, key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Some(payload);
        }
        let remote = self
            .remote
            .as_ref()
            .filter(|_| shared)
            .and_then(|r| r.get(&self.remote_key(namespace, key)));
        match remote {
            Some(payload) => {
                self.write_local(namespace, key, &payload);
                Some(payload)
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                if namespace == "transform" {
                    self.transform_misses.fetch_add(1, Ordering::Relaxed);
                }
                None
            }
        }
    }

    fn get_local(&self, namespace: &str, key: &blake3::Hash) -> Option<Vec<u8>> {
        let path = self.path(namespace, key);
        let found = std::fs::read(&path).ok().and_then(|data| {
            let body = data.strip_prefix(MAGIC)?;
            let (payload, sum) = body.split_at_checked(body.len().checked_sub(32)?)?;
            if blake3::hash(payload).as_bytes() != sum {
                // Corrupt or truncated: never trust it, and make room for a good one.
                let _ = std::fs::remove_file(&path);
                return None;
            }
            Some(payload.to_vec())
        });
        if found.is_some() {
            // Recently used: eviction goes by modification time.
            if let Ok(f) = std::fs::File::options().append(true).open(&path) {
                let _ = f.set_modified(std::time::SystemTime::now());
            }
        }
        found
    }

    /// Stores `payload` under `key` (atomically; errors are ignored, the cache is best-effort),
    /// and offers it to the remote cache.
    pub fn put(&self, namespace: &str, key: &blake3::Hash, payload: &[u8]) {
        self.store(namespace, key, payload, true);
    }

    /// [`Cache::put`], offering the payload to the remote cache only when `shared`.
    pub fn store(&self, namespace: &str, key: &blake3::Hash, payload: &[u8], shared: bool) {
        self.write_local(namespace, key, payload);
        if let Some(remote) = self.remote.as_ref().filter(|_| shared) {
            remote.put(&self.remote_key(namespace, key), payload.to_vec());
        }
    }

    fn write_local(&self, namespace: &str, key: &blake3::Hash, payload: &[u8]) {
        let mut data = Vec::with_capacity(payload.len() + 40);
        data.extend_from_slice(MAGIC);
        data.extend_from_slice(payload);
        data.extend_from_slice(blake3::hash(payload).as_bytes());
        if crate::fsutil::write_atomic(&self.path(namespace, key), &data).is_ok() {
            self.written.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
    }

    /// Deletes the least recently used entries until the cache is under its size limit. Returns
    /// how many bytes were freed.
    pub fn evict(&self) -> u64 {
        self.sweep().0
    }

    /// [`Cache::evict`], returning the bytes freed and the bytes left.
    fn sweep(&self) -> (u64, u64) {
        // A temporary file an hour old is a killed build's (a running build's are seconds old).
        let stale = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let mut entries: Vec<(std::time::SystemTime, u64, PathBuf)> =
            walkdir::WalkDir::new(&self.all)
                .into_iter()
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_file() && e.file_name() != LEDGER)
                .filter_map(|e| {
                    let m = e.metadata().ok()?;
                    let modified = m.modified().ok()?;
                    let temporary = e
                        .file_name()
                        .to_str()
                        .is_some_and(|n| n.starts_with(crate::fsutil::TEMP_PREFIX));
                    if temporary {
                        if modified < stale {
                            let _ = std::fs::remove_file(e.path());
                        }
                        return None;
                    }
                    Some((modified, m.len(), e.into_path()))
                })
                .collect();
        let mut total: u64 = entries.iter().map(|e| e.1).sum();
        if total <= self.max_size {
            return (0, total);
        }
        entries.sort();
        let mut freed = 0;
        for (_, len, path) in entries {
            if total <= self.max_size {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
                freed += len;
            }
        }
        (freed, total)
    }
}

/// A build that failed (or stopped) before [`Cache::finish`] still counts what it wrote.
impl Drop for Cache {
    fn drop(&mut self) {
        if !self.finished.load(Ordering::Relaxed) && self.written.load(Ordering::Relaxed) > 0 {
            self.evict_when_due();
        }
    }
}

/// What identifies this build of kiln: its version and a digest of the running executable (its
/// code and every codec compiled into it), remembered by the executable's path, size and time so
/// it is hashed once per new binary.
pub(crate) fn build_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let digest = std::env::current_exe().ok().and_then(|exe| {
            let stamp = crate::model::Stamp::of(&std::fs::metadata(&exe).ok()?)?;
            let tag = format!("{}:{}:{}", exe.display(), stamp.size, stamp.mtime_ns);
            let memo = std::env::temp_dir().join(format!(
                "kiln-build-id-{}",
                &blake3::hash(tag.as_bytes()).to_hex()[..16]
            ));
            if let Ok(id) = std::fs::read_to_string(&memo) {
                return Some(id);
            }
            let mut h = blake3::Hasher::new();
            h.update_reader(std::fs::File::open(&exe).ok()?).ok()?;
            let id = h.finalize().to_hex()[..16].to_owned();
            let _ = std::fs::write(&memo, &id);
            Some(id)
        });
        format!(
            "{}-{}",
            crate::model::VERSION,
            digest.unwrap_or_else(|| "unknown".to_owned())
        )
    })
    .clone()
}

/// The metadata of a cached transform output; the output bytes follow it in the entry.
#[derive(Serialize, Deserialize)]
struct TransformMeta {
    references: Vec<Reference>,
    source_map: Option<String>,
    map_comment: Option<MapComment>,
    map_columns: Columns,
    diagnostics: Vec<Diagnostic>,
    /// (logical path, BLAKE3 hex of its content) of every other file the transform read.
    dependencies: Vec<(String, String)>,
    #[serde(default)]
    image: Option<ImageInfo>,
    #[serde(default)]
    integrity: Option<String>,
    /// (logical path, width, height, byte length, SRI) of each variant; their bytes follow the
    /// output's.
    #[serde(default)]
    variants: Vec<(String, u32, u32, u64, Option<String>)>,
}

/// The cache key of `logical`'s transform by the transformer `name`, for content `hash` and the
/// settings `fingerprint` ([`crate::config::Config::transform_fingerprint`]).
pub(crate) fn transform_key(
    name: &str,
    fingerprint: &blake3::Hash,
    logical: &str,
    hash: &blake3::Hash,
) -> blake3::Hash {
    let mut key = blake3::Hasher::new();
    key.update(b"kiln transform\0");
    key.update(crate::model::VERSION.as_bytes());
    key.update(name.as_bytes());
    key.update(fingerprint.as_bytes());
    key.update(logical.as_bytes());
    key.update(b"\0");
    key.update(hash.as_bytes());
    key.finalize()
}

/// Encodes a (successful) transform output; `content_of` gives the current content hash of a
/// dependency.
/// Stands for "the asset's own path" in cached diagnostics: the display path depends on where the
/// source folder is, which is not part of the key.
const SELF_PATH: &str = "\u{0}self";

pub(crate) fn encode_transform(
    out: &TransformOutput,
    own_path: &str,
    content_of: impl Fn(&str) -> Option<blake3::Hash>,
) -> Option<Vec<u8>> {
    let dependencies = out
        .dependencies
        .iter()
        .map(|d| Some((d.clone(), content_of(d)?.to_hex().to_string())))
        .collect::<Option<Vec<_>>>()?;
    let meta = TransformMeta {
        references: out.references.clone(),
        source_map: out.source_map.clone(),
        map_comment: out.map_comment,
        map_columns: out.map_columns,
        diagnostics: out
            .diagnostics
            .iter()
            .map(|d| {
                let mut d = d.clone();
                if d.path == own_path {
                    d.path = SELF_PATH.to_owned();
                }
                d
            })
            .collect(),
        dependencies,
        image: out.image.clone(),
        integrity: out.integrity.clone(),
        variants: out
            .variants
            .iter()
            .map(|v| {
                let len = v.bytes.len() as u64;
                (
                    v.logical.clone(),
                    v.width,
                    v.height,
                    len,
                    v.integrity.clone(),
                )
            })
            .collect(),
    };
    let meta = serde_json::to_vec(&meta).ok()?;
    let extra: usize = out.variants.iter().map(|v| v.bytes.len()).sum();
    let mut payload = Vec::with_capacity(meta.len() + out.bytes.len() + extra + 8);
    payload.extend_from_slice(&(meta.len() as u64).to_le_bytes());
    payload.extend_from_slice(&meta);
    payload.extend_from_slice(&out.bytes);
    for v in &out.variants {
        payload.extend_from_slice(&v.bytes);
    }
    Some(payload)
}

/// Decodes a cached transform output, or None if it is malformed or a dependency changed.
pub(crate) fn decode_transform(
    payload: Vec<u8>,
    own_path: &str,
    content_of: impl Fn(&str) -> Option<blake3::Hash>,
) -> Option<TransformOutput> {
    let len = u64::from_le_bytes(payload.get(..8)?.try_into().ok()?) as usize;
    let meta: TransformMeta =
        serde_json::from_slice(payload.get(8..8usize.checked_add(len)?)?).ok()?;
    for (logical, hex) in &meta.dependencies {
        if content_of(logical)?.to_hex().as_str() != hex {
            return None;
        }
    }
    let mut payload = payload;
    let mut bytes = bytes::Bytes::from(payload.split_off(8 + len));
    let extra = meta
        .variants
        .iter()
        .try_fold(0usize, |sum, v| sum.checked_add(usize::try_from(v.3).ok()?))?;
    let main_len = bytes.len().checked_sub(extra)?;
    let mut rest = bytes.split_off(main_len);
    let variants = meta
        .variants
        .into_iter()
        .map(|(logical, width, height, len, integrity)| Variant {
            logical,
            bytes: rest.split_to(len as usize),
            width,
            height,
            integrity,
            kept: None,
        })
        .collect();
    Some(TransformOutput {
        bytes,
        image: meta.image,
        integrity: meta.integrity,
        variants,
        references: meta.references,
        source_map: meta.source_map,
        map_comment: meta.map_comment,
        map_columns: meta.map_columns,
        diagnostics: meta
            .diagnostics
            .into_iter()
            .map(|mut d| {
                if d.path == SELF_PATH {
                    d.path = own_path.to_owned();
                }
                d
            })
            .collect(),
        dependencies: meta.dependencies.into_iter().map(|(l, _)| l).collect(),
        kept: None,
        prior: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_corruption_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path(), u64::MAX).unwrap();
        let key = blake3::hash(b"key");
        cache.put("t", &key, b"payload");
        assert_eq!(cache.get("t", &key).as_deref(), Some(&b"payload"[..]));

        let path = cache.path("t", &key);
        let mut data = std::fs::read(&path).unwrap();
        let at = MAGIC.len() + 2;
        data[at] ^= 1;
        std::fs::write(&path, &data).unwrap();
        assert_eq!(cache.get("t", &key), None, "a flipped byte is detected");
        assert!(!path.exists(), "and the bad entry is removed");

        cache.put("t", &key, b"payload");
        std::fs::write(&path, &std::fs::read(&path).unwrap()[..10]).unwrap();
        assert_eq!(cache.get("t", &key), None, "a truncated entry is a miss");
        assert_eq!(
            cache.stats(),
            CacheStats {
                hits: 1,
                misses: 2,
                transform_misses: 0
            }
        );
    }

    #[test]
    fn a_build_walks_the_cache_to_evict_only_when_the_ledger_says_it_may_be_over() {
        let dir = tempfile::tempdir().unwrap();
        let entry = MAGIC.len() as u64 + 100 + 32;
        let open = || Cache::open(dir.path(), 3 * entry).unwrap();
        let cache = open();
        cache.put("t", &blake3::hash(b"a"), &[1; 100]);
        cache.finish(); // no ledger yet: walks, and records one entry's size
        // Another process's entry the ledger does not know of puts the cache over its limit.
        let other = cache.path("t", &blake3::hash(b"other"));
        crate::fsutil::write_atomic(&other, &[0; 1000]).unwrap();
        let cache = open();
        cache.put("t", &blake3::hash(b"b"), &[2; 100]);
        cache.finish(); // the ledger says two entries: no walk
        assert!(
            other.exists(),
            "the cache was walked although the ledger said it was under"
        );
        // A ledger an hour old: the next build walks, and evicts.
        let ledger = dir.path().join(LAYOUT).join(LEDGER);
        let mut l: Ledger = serde_json::from_slice(&std::fs::read(&ledger).unwrap()).unwrap();
        assert_eq!(l.bytes, 2 * entry);
        l.walked -= 3601;
        std::fs::write(&ledger, serde_json::to_vec(&l).unwrap()).unwrap();
        open().finish();
        assert!(
            !other.exists(),
            "an hour-old ledger did not make the build walk"
        );
        // Writing past the limit by the ledger's count walks at once.
        let cache = open();
        for i in 0..3u8 {
            cache.put("t", &blake3::hash(&[i]), &[i; 100]);
        }
        cache.finish();
        let total: u64 = walkdir::WalkDir::new(dir.path().join(LAYOUT))
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file() && e.file_name() != LEDGER)
            .map(|e| e.metadata().unwrap().len())
            .sum();
        assert!(total <= 3 * entry, "{total} bytes left");
    }

    #[test]
    fn eviction_removes_the_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path(), 2 * (MAGIC.len() as u64 + 100 + 32)).unwrap();
        let keys: Vec<_> = (0..3u8).map(|i| blake3::hash(&[i])).collect();
        for (i, k) in keys.iter().enumerate() {
            cache.put("t", k, &[i as u8; 100]);
            let old =
                std::time::SystemTime::now() - std::time::Duration::from_secs(100 - i as u64 * 10);
            std::fs::File::options()
                .append(true)
                .open(cache.path("t", k))
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        assert!(cache.evict() > 0);
        assert!(
            cache.get("t", &keys[0]).is_none(),
            "the oldest entry went first"
        );
        assert!(cache.get("t", &keys[2]).is_some());
    }
}

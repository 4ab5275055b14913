//! The build: the five stages in order, timed, on a rayon pool of the configured size.
//!
//! [`build`] reads like the table of contents of the pipeline. It owns the rule that a build
//! with any error emits nothing and writes no manifest, so the previous output stays intact.

use std::time::{Duration, Instant};

use crate::compress::{CompressStats, compress};
use crate::config::{Config, ConfigError};
use crate::diagnostic::Diagnostic;
use std::collections::HashSet;
use std::path::PathBuf;

use rayon::prelude::*;

use crate::compress::compressible;
use crate::discover::{DiscoverError, discover_with};
use crate::emit::{EmitError, emit, retire_old_builds};
use crate::index::{FileIndex, Known, Stamp};
use crate::link::link;
use crate::manifest::write_manifests;
use crate::transform::{Transformer, transform};

/// Receives progress while assets are transformed (the CLI draws a progress bar with it).
pub trait Progress: Sync {
    /// The number of assets about to be transformed.
    fn start(&self, _total: usize) {}
    /// One more asset is done.
    fn advance(&self) {}
    /// The transform stage is over.
    fn finish(&self) {}
    /// Another process is writing the output folder; this build waits for it (`message` says
    /// for whom).
    fn waiting(&self, _message: &str) {}
}

/// Progress that goes nowhere.
impl Progress for () {}

/// What a successful build did.
#[derive(Debug, Default)]
pub struct BuildReport {
    /// Source files.
    pub files: usize,
    /// Total bytes of the sources.
    pub bytes_in: u64,
    /// Total bytes of the fingerprinted outputs of the source files (maps and variants excluded).
    pub bytes_out: u64,
    /// Image variants written (other widths, AVIF, WebP): how many, and their total bytes.
    pub variants: (usize, u64),
    /// Bytes before and after, over the files a transformer minified or rewrote (CSS, JS).
    pub transformed_bytes: (u64, u64),
    /// Bytes before and after, over the images (optimised or not).
    pub image_bytes: (u64, u64),
    /// What precompression did.
    pub compressed: CompressStats,
    /// Cache hits and misses (all zero without a cache).
    pub cache: crate::cache::CacheStats,
    /// What the remote cache did, when there is one.
    pub remote: Option<crate::cache::RemoteReport>,
    /// Output files written (the rest were already in place).
    pub written: usize,
    /// Manifest files that changed.
    pub manifests_written: usize,
    /// Files of old builds removed.
    pub removed: usize,
    /// Warnings (errors fail the build instead).
    pub warnings: Vec<Diagnostic>,
    /// Time per stage, in pipeline order.
    pub timings: Vec<(&'static str, Duration)>,
    /// Wall time of the whole build.
    pub elapsed: Duration,
    /// Nothing changed since the last build into this folder: it was only checked, and the
    /// numbers above are that build's (see `memo`).
    pub up_to_date: bool,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The source folder could not be walked.
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    /// Files have errors; nothing was written.
    #[error("build failed with {} error(s)", .0.iter().filter(|d| d.is_error()).count())]
    Diagnostics(Vec<Diagnostic>),
    /// Writing the output failed.
    #[error(transparent)]
    Emit(#[from] EmitError),
    /// The worker pool could not be created.
    #[error("cannot start worker threads: {0}")]
    Threads(String),
}

/// Runs a whole build of `config` with `transformers` (the first that accepts an asset's kind
/// handles it; others pass through).
pub fn build(
    config: &Config,
    transformers: &[&dyn Transformer],
    progress: &dyn Progress,
) -> Result<BuildReport, BuildError> {
    build_with_remote(config, transformers, progress, None)
}

/// [`build`], with `remote` behind the local cache (see [`crate::cache::Remote`]); it is not
/// consulted when the cache is off.
pub fn build_with_remote(
    config: &Config,
    transformers: &[&dyn Transformer],
    progress: &dyn Progress,
    remote: Option<std::sync::Arc<dyn crate::cache::Remote>>,
) -> Result<BuildReport, BuildError> {
    let mut config = config.clone();
    config.validate()?;
    let started = Instant::now();
    let mut pool = rayon::ThreadPoolBuilder::new().thread_name(|i| format!("kiln-{i}"));
    if let Some(jobs) = config.jobs {
        pool = pool.num_threads(jobs);
    }
    let pool = pool
        .build()
        .map_err(|e| BuildError::Threads(e.to_string()))?;
    pool.install(|| run(&config, transformers, progress, remote, started))
}

fn is_variant(a: &crate::link::LinkedAsset) -> bool {
    a.image.as_ref().is_some_and(|i| i.variant_of.is_some())
}

fn run(
    config: &Config,
    transformers: &[&dyn Transformer],
    progress: &dyn Progress,
    remote: Option<std::sync::Arc<dyn crate::cache::Remote>>,
    started: Instant,
) -> Result<BuildReport, BuildError> {
    let mut timings = Vec::new();
    let mut clock = Instant::now();
    let mut lap = |name: &'static str, timings: &mut Vec<(&'static str, Duration)>| {
        let now = Instant::now();
        timings.push((name, now - clock));
        clock = now;
    };

    let cache = if config.cache.enabled {
        crate::cache::Cache::open(
            &config.cache.dir,
            config.cache.max_size_mb.saturating_mul(1 << 20),
        )
        .ok()
        .map(|c| match remote {
            Some(r) => c.with_remote(r),
            None => c,
        })
    } else {
        None
    };
    // Nothing changed since the last build into this folder: say so after a walk of stats.
    let memo = cache.as_ref().and_then(|_| crate::memo::Memo::of(config));
    if let Some(mut report) = memo.as_ref().and_then(|m| m.up_to_date(&config.out)) {
        lap("up to date", &mut timings);
        report.timings = timings;
        report.elapsed = started.elapsed();
        return Ok(report);
    }
    let mut index = cache
        .as_ref()
        .map(|_| FileIndex::load(&config.cache.dir, &config.src));
    // Only files nothing reads may be skipped when unchanged: no transformer, no compression
    // (large files are never compressed), and not a source map (the JS transformer chains input
    // maps).
    let may_skip = |logical: &str, kind, size: u64| {
        !transformers.iter().any(|t| t.accepts(kind))
            && (config.compress.formats.is_empty()
                || !compressible(logical)
                || size >= crate::discover::LARGE_FILE)
            && !logical.ends_with(".map")
    };
    let discovered = discover_with(config, index.as_ref(), &may_skip)?;
    lap("discover", &mut timings);
    let files = discovered.assets.len();
    let bytes_in = discovered.assets.iter().map(|a| a.size()).sum();
    // Facts to remember of the skippable files read this time (their SRI comes from link).
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let to_index: Vec<(String, PathBuf, Stamp, blake3::Hash)> = match &index {
        Some(_) => discovered
            .assets
            .par_iter()
            // Files the index already knows are the same entry again (a no-op); large files
            // hashed as a stream are new entries.
            .filter(|a| may_skip(&a.logical, a.kind, a.size()))
            // A file modified in the last moments could change again within the same timestamp
            // tick: leave it out, it is read next time ("racily clean", as git calls it).
            .filter(|a| a.stamp.is_some_and(|s| s.mtime_ns + 2_000_000_000 < now_ns))
            .filter_map(|a| {
                Some((
                    a.logical.clone(),
                    std::path::absolute(&a.path).ok()?,
                    a.stamp?,
                    a.hash,
                ))
            })
            .collect(),
        None => Vec::new(),
    };
    let present: HashSet<String> = discovered
        .assets
        .iter()
        .filter_map(|a| {
            std::path::absolute(&a.path)
                .ok()?
                .to_str()
                .map(str::to_owned)
        })
        .collect();

    progress.start(files);
    let transformed = transform(discovered, config, transformers, cache.as_ref(), &|| {
        progress.advance()
    });
    progress.finish();
    lap("transform", &mut timings);

    let mut linked = link(transformed, config);
    lap("link", &mut timings);
    if linked.failed() {
        return Err(BuildError::Diagnostics(linked.diagnostics));
    }
    if let Some(index) = index.as_mut() {
        for (logical, path, stamp, hash) in to_index {
            // Variants joined the asset list in transform: find the file by name, not position.
            let Ok(i) = linked
                .assets
                .binary_search_by(|a| a.logical.as_str().cmp(&logical))
            else {
                continue;
            };
            let integrity = linked.assets[i].integrity.clone();
            index.insert(
                &path,
                Known {
                    stamp,
                    blake3: hash.to_hex().to_string(),
                    integrity,
                },
            );
        }
        index.retain(&present);
        index.save();
    }
    let compressed = compress(&mut linked, &config.compress, cache.as_ref());
    lap("compress", &mut timings);

    // From the first write to the last, the output folder is this build's alone.
    let _lock = crate::lock::OutputLock::acquire(&config.out, &|m| progress.waiting(m))?;
    let emitted = emit(&linked, &config.out, config.unhashed)?;
    lap("emit", &mut timings);
    let manifests_written = match write_manifests(&linked, config, &config.out) {
        Ok(n) => n,
        Err(e) => {
            crate::emit::take_back(&config.out, &emitted);
            return Err(e.into());
        }
    };
    let removed = retire_old_builds(&config.out, &emitted, config.keep_builds)?;
    lap("manifest", &mut timings);
    // The remote's last uploads finish while nothing else is left to do.
    let remote = cache.as_ref().and_then(|c| c.finish_remote());
    let mut warnings = linked.diagnostics;
    if let Some(message) = remote.as_ref().and_then(|r| r.warning.as_ref()) {
        let location = remote.as_ref().map_or("", |r| r.location.as_str());
        warnings.push(Diagnostic::new(
            crate::Severity::Warning,
            "remote-cache",
            location,
            message.clone(),
        ));
    }

    let report = BuildReport {
        files,
        bytes_in,
        bytes_out: linked
            .assets
            .iter()
            .filter(|a| !is_variant(a))
            .map(|a| a.output.size())
            .sum(),
        variants: linked
            .assets
            .iter()
            .filter(|a| is_variant(a))
            .fold((0, 0), |(n, b), a| (n + 1, b + a.output.size())),
        transformed_bytes: linked
            .assets
            .iter()
            .filter(|a| a.map.is_some())
            .fold((0, 0), |(i, o), a| (i + a.source_size, o + a.output.size())),
        image_bytes: linked
            .assets
            .iter()
            .filter(|a| {
                matches!(
                    crate::AssetKind::from_path(&a.logical),
                    crate::AssetKind::Png | crate::AssetKind::Jpeg
                ) && !is_variant(a)
            })
            .fold((0, 0), |(i, o), a| (i + a.source_size, o + a.output.size())),
        compressed,
        cache: cache
            .as_ref()
            .map(|c| {
                c.evict();
                c.stats()
            })
            .unwrap_or_default(),
        remote,
        written: emitted.written,
        manifests_written,
        removed: removed.len(),
        warnings,
        timings,
        elapsed: started.elapsed(),
        up_to_date: false,
    };
    if let Some(memo) = memo {
        let mut outputs = emitted.files.clone();
        outputs.extend(
            config
                .manifest
                .formats
                .iter()
                .map(|f| f.file_name().to_owned()),
        );
        memo.save(&config.out, &outputs, &report);
    }
    Ok(report)
}

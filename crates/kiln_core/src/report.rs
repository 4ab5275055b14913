//! The build report: what a successful build did, added up from the stages' results, and the
//! stopwatch that times the stages.

use std::time::{Duration, Instant};

use crate::cache::{CacheStats, RemoteReport};
use crate::diagnostic::{Diagnostic, Severity};
use crate::emit::Emitted;
use crate::model::{AssetKind, CompressStats, Discovered, Linked, LinkedAsset};

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
    pub cache: CacheStats,
    /// What the remote cache did, when there is one.
    pub remote: Option<RemoteReport>,
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

/// Times the stages of a build: each lap is the time since the previous one.
#[derive(Debug)]
pub(crate) struct Stopwatch {
    started: Instant,
    last: Instant,
    laps: Vec<(&'static str, Duration)>,
}

impl Stopwatch {
    /// A stopwatch for a build that started at `started`.
    pub(crate) fn new(started: Instant) -> Stopwatch {
        Stopwatch {
            started,
            last: Instant::now(),
            laps: Vec::new(),
        }
    }

    /// Ends the stage `name`.
    pub(crate) fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        self.laps.push((name, now - self.last));
        self.last = now;
    }
}

/// How many source files a build has and their bytes, taken before they move into transform.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sources {
    pub(crate) files: usize,
    bytes: u64,
}

impl Sources {
    pub(crate) fn of(discovered: &Discovered) -> Sources {
        Sources {
            files: discovered.assets.len(),
            bytes: discovered.assets.iter().map(|a| a.size()).sum(),
        }
    }
}

/// What the output stages wrote: emit, the manifests, and retiring old builds.
#[derive(Debug)]
pub(crate) struct Written {
    pub(crate) emitted: Emitted,
    pub(crate) manifests: usize,
    pub(crate) removed: usize,
}

/// Sums `f` of the assets `keep` selects, and counts them.
fn total(
    linked: &Linked,
    keep: impl Fn(&LinkedAsset) -> bool,
    f: impl Fn(&LinkedAsset) -> (u64, u64),
) -> (usize, u64, u64) {
    (linked.assets.iter().filter(|a| keep(a))).fold((0, 0, 0), |(n, x, y), a| {
        let (dx, dy) = f(a);
        (n + 1, x + dx, y + dy)
    })
}

impl BuildReport {
    /// The report of a build that linked `linked`, compressed `compressed`, wrote `written`;
    /// `cache` is what the cache (and its remote) did, when there was one.
    pub(crate) fn new(
        sources: Sources,
        linked: Linked,
        compressed: CompressStats,
        cache: Option<(CacheStats, Option<RemoteReport>)>,
        written: &Written,
        clock: Stopwatch,
    ) -> BuildReport {
        let in_out = |a: &LinkedAsset| (a.source_size, a.output.size());
        let image = |a: &LinkedAsset| {
            matches!(
                AssetKind::from_path(&a.logical),
                AssetKind::Png | AssetKind::Jpeg
            ) && !a.is_variant()
        };
        let (_, _, bytes_out) = total(&linked, |a| !a.is_variant(), in_out);
        let (variants, _, variant_bytes) = total(&linked, LinkedAsset::is_variant, in_out);
        let (_, code_in, code_out) = total(&linked, |a| a.map.is_some(), in_out);
        let (_, image_in, image_out) = total(&linked, image, in_out);
        let (cache, remote) = cache.unwrap_or_default();
        let mut warnings = linked.diagnostics;
        if let Some(r) = &remote
            && let Some(message) = &r.warning
        {
            warnings.push(Diagnostic::new(
                Severity::Warning,
                "remote-cache",
                &r.location,
                message.clone(),
            ));
        }
        BuildReport {
            files: sources.files,
            bytes_in: sources.bytes,
            bytes_out,
            variants: (variants, variant_bytes),
            transformed_bytes: (code_in, code_out),
            image_bytes: (image_in, image_out),
            compressed,
            cache,
            remote,
            written: written.emitted.written,
            manifests_written: written.manifests,
            removed: written.removed,
            warnings,
            timings: clock.laps,
            elapsed: clock.started.elapsed(),
            up_to_date: false,
        }
    }

    /// This report, repeated by a build that found nothing changed (see `memo`) and timed by
    /// `clock`.
    pub(crate) fn again(self, clock: Stopwatch) -> BuildReport {
        BuildReport {
            timings: clock.laps,
            elapsed: clock.started.elapsed(),
            up_to_date: true,
            ..self
        }
    }
}

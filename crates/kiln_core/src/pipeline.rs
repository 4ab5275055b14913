//! The build: the five stages in order, timed, on a rayon pool of the configured size.
//!
//! [`build`] reads like the table of contents of the pipeline. It owns the rule that a build
//! with any error emits nothing and writes no manifest, so the previous output stays intact.

use std::sync::Arc;
use std::time::Instant;

use crate::cache::{Cache, Remote};
use crate::compress::compress;
use crate::config::{Config, ConfigError};
use crate::diagnostic::Diagnostic;
use crate::discover::{DiscoverError, discover_with};
use crate::emit::{EmitError, emit, retire_old_builds, take_back};
use crate::index::{FileIndex, Learned, Unread};
use crate::link::{link, stale};
use crate::lock::OutputLock;
use crate::manifest::write_manifests;
use crate::memo::Memo;
use crate::model::Linked;
use crate::report::{BuildReport, Sources, Stopwatch, Written};
use crate::transform::{Transformer, materialise, transform};

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
    remote: Option<Arc<dyn Remote>>,
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

fn run(
    config: &Config,
    transformers: &[&dyn Transformer],
    progress: &dyn Progress,
    remote: Option<Arc<dyn Remote>>,
    started: Instant,
) -> Result<BuildReport, BuildError> {
    let mut clock = Stopwatch::new(started);
    let cache = Cache::for_build(config, remote);
    // Nothing changed since the last build into this folder: say so after a walk of stats.
    let memo = cache.as_ref().and_then(|_| Memo::of(config));
    if let Some(report) = memo.as_ref().and_then(|m| m.up_to_date(&config.out)) {
        clock.lap("up to date");
        return Ok(report.again(clock));
    }
    let mut index = (cache.as_ref()).map(|_| FileIndex::load(&config.cache.dir, &config.src));
    let unread = Unread::new(config, |k| {
        (transformers.iter()).find_map(|t| t.accepts(k).then(|| t.name()))
    });
    let may_skip = |l: &str, k, s, known: Option<&_>| unread.may_skip(l, k, s, known);
    let read_from = std::time::SystemTime::now();
    let discovered = discover_with(config, index.as_ref(), &may_skip)?;
    clock.lap("discover");
    let sources = Sources::of(&discovered);

    progress.start(sources.files);
    let transformed = transform_all(discovered, config, transformers, cache.as_ref(), progress);
    clock.lap("transform");
    let learned = index
        .as_ref()
        .map(|_| Learned::of(&transformed, &unread, read_from));

    let mut linked = link(transformed, config);
    clock.lap("link");
    if linked.failed() {
        return Err(BuildError::Diagnostics(linked.diagnostics));
    }

    let compressed = compress(&mut linked, &config.compress, cache.as_ref());
    clock.lap("compress");
    if let (Some(index), Some(learned)) = (index.as_mut(), learned) {
        index.learn(learned, &linked);
    }

    let written = write_output(&linked, config, progress, &mut clock)?;
    let cache_report = cache.as_ref().map(Cache::finish);
    let report = BuildReport::new(sources, linked, compressed, cache_report, &written, clock);
    if let Some(memo) = memo {
        memo.save(config, &written.emitted, &report);
    }
    Ok(report)
}

/// The transform stage, then the files left unread whose records no longer hold (see
/// [`stale`]), read and transformed after all.
fn transform_all(
    discovered: crate::model::Discovered,
    config: &Config,
    transformers: &[&dyn Transformer],
    cache: Option<&Cache>,
    progress: &dyn Progress,
) -> crate::model::Transformed {
    let mut transformed = transform(discovered, config, transformers, cache, &|| {
        progress.advance()
    });
    progress.finish();
    loop {
        let stale = stale(&transformed, config);
        if stale.is_empty() {
            return transformed;
        }
        materialise(&mut transformed, &stale, config, transformers, cache);
    }
}

/// Emit, manifests and retiring old builds. From the first write to the last, the output
/// folder is this build's alone; a failure takes back the files this build added.
fn write_output(
    linked: &Linked,
    config: &Config,
    progress: &dyn Progress,
    clock: &mut Stopwatch,
) -> Result<Written, BuildError> {
    let _lock = OutputLock::acquire(&config.out, &|m| progress.waiting(m))?;
    let emitted = emit(linked, &config.out, config.unhashed)?;
    clock.lap("emit");
    let manifests = write_manifests(linked, config, &config.out)
        .inspect_err(|_| take_back(&config.out, &emitted))?;
    let removed = retire_old_builds(&config.out, &emitted, config.keep_builds)?.len();
    clock.lap("manifest");
    Ok(Written {
        emitted,
        manifests,
        removed,
    })
}

//! `kiln watch` as a library: build, then rebuild whenever a source file or the config changes.
//!
//! Owns the loop: one build per burst of changes (notify's debouncer collects a `git checkout`
//! or an editor's save-via-rename into one batch), changes inside the output and cache folders
//! ignored, `kiln.toml` reloaded when it changes, and a failed rebuild reported while the last
//! good output and manifests stay in place (the pipeline guarantees that). Builds use the
//! persistent cache, so a rebuild only transforms what changed. What to print is the caller's
//! business: every build's outcome goes to a callback.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify_debouncer_full::notify::event::ModifyKind;
use notify_debouncer_full::notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, new_debouncer};

use crate::{BuildError, BuildReport, Builder, Config, ConfigError};

/// What happened in one round of the watch loop.
#[derive(Debug)]
#[non_exhaustive]
pub enum WatchEvent<'a> {
    /// A build succeeded. `changed` is empty for the first build.
    Built {
        /// The build's report.
        report: &'a BuildReport,
        /// The changed paths that triggered it.
        changed: &'a [PathBuf],
        /// Wall time of the build.
        elapsed: Duration,
    },
    /// A build failed (diagnostics, I/O, or an invalid `kiln.toml`); the last good output stays.
    Failed {
        /// Why.
        error: &'a BuildError,
        /// The changed paths that triggered it.
        changed: &'a [PathBuf],
    },
}

/// Why watching could not start or go on.
#[derive(Debug)]
#[non_exhaustive]
pub enum WatchError {
    /// The file watcher failed.
    Notify(String),
}

impl std::error::Error for WatchError {}

impl std::fmt::Display for WatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatchError::Notify(e) => write!(f, "cannot watch for changes: {e}"),
        }
    }
}

/// Watches `builder`'s source folder (and `config_file`, reloading it on change), rebuilding on
/// every change until `stop` becomes true. The watch-mode settings (`[watch]`) are applied to
/// the builder's config.
pub fn watch(
    builder: &Builder,
    config_file: Option<&Path>,
    stop: &AtomicBool,
    mut on_event: impl FnMut(WatchEvent<'_>),
) -> Result<(), WatchError> {
    let overrides = builder.config().clone();
    let mut config = for_watching(overrides.clone());
    let (tx, rx) = mpsc::channel::<DebounceEventResult>();
    let debounce = Duration::from_millis(config.watch.debounce_ms.max(10));
    let mut debouncer =
        new_debouncer(debounce, None, tx).map_err(|e| WatchError::Notify(e.to_string()))?;
    debouncer
        .watch(&config.src, RecursiveMode::Recursive)
        .map_err(|e| WatchError::Notify(format!("{}: {e}", config.src.display())))?;
    let config_file = config_file.map(absolute);
    if let Some(file) = &config_file {
        // The folder, not the file: editors replace the file on save.
        let dir = file.parent().unwrap_or(Path::new("."));
        debouncer
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| WatchError::Notify(format!("{}: {e}", dir.display())))?;
    }

    let run = |config: &Config, changed: &[PathBuf], on_event: &mut dyn FnMut(WatchEvent<'_>)| {
        let started = Instant::now();
        match Builder::from_config(config.clone()).build() {
            Ok(report) => on_event(WatchEvent::Built {
                report: &report,
                changed,
                elapsed: started.elapsed(),
            }),
            Err(error) => on_event(WatchEvent::Failed {
                error: &error,
                changed,
            }),
        }
    };
    run(&config, &[], &mut on_event);

    while !stop.load(Ordering::Relaxed) {
        let Ok(result) = rx.recv_timeout(Duration::from_millis(50)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = Vec::new();
        let mut batch = vec![result];
        // Whatever else arrived meanwhile belongs to the same rebuild.
        batch.extend(rx.try_iter());
        for events in batch.into_iter().flatten() {
            paths.extend(
                events
                    .into_iter()
                    .filter(|e| changes_content(&e.event.kind))
                    .flat_map(|e| e.event.paths),
            );
        }
        let ignored = [absolute(&config.out), absolute(&config.cache.dir)];
        paths.retain(|p| !ignored.iter().any(|dir| p.starts_with(dir)));
        paths.sort();
        paths.dedup();
        let src = absolute(&config.src);
        let config_changed = config_file.as_ref().is_some_and(|f| paths.contains(f));
        paths.retain(|p| p.starts_with(&src) || config_file.as_ref() == Some(p));
        if paths.is_empty() {
            continue;
        }
        if config_changed {
            match reload(config_file.as_deref(), &overrides) {
                Ok(new) => config = new,
                Err(e) => {
                    on_event(WatchEvent::Failed {
                        error: &BuildError::Config(e),
                        changed: &paths,
                    });
                    continue;
                }
            }
        }
        run(&config, &paths, &mut on_event);
    }
    debouncer.stop();
    Ok(())
}

/// Whether an event can change what a build produces. Reads (the build's own, an editor's) and
/// metadata-only changes (permissions, access times) cannot, and must not trigger a rebuild.
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Any
        | EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Remove(_)
        | EventKind::Other => true,
    }
}

/// The config with `[watch]` applied: unhashed copies, minification and compression as set.
fn for_watching(mut config: Config) -> Config {
    config.unhashed = config.watch.unhashed;
    config.minify &= config.watch.minify;
    if !config.watch.compress {
        config.compress.formats.clear();
    }
    config
}

/// Reads `file` again. The paths given on the command line (`overrides`) keep winning.
fn reload(file: Option<&Path>, overrides: &Config) -> Result<Config, ConfigError> {
    let Some(file) = file else {
        return Ok(for_watching(overrides.clone()));
    };
    let mut config = Config::load(file)?;
    config.src = overrides.src.clone();
    config.out = overrides.out.clone();
    config.validate()?;
    Ok(for_watching(config))
}

fn absolute(p: &Path) -> PathBuf {
    p.canonicalize()
        .or_else(|_| std::path::absolute(p))
        .unwrap_or_else(|_| p.to_owned())
}

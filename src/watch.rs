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

/// Where the configuration comes from, so a change of it is noticed and reloaded: the file to
/// watch, and how to load it (the CLI re-applies its flags; a library passes `Config::load`).
pub struct ConfigSource<'a> {
    /// The file to watch (`kiln.toml`).
    pub file: &'a Path,
    /// Reads it again.
    pub load: &'a dyn Fn() -> Result<Config, ConfigError>,
}

/// Watches `builder`'s source folder (and the config file, reloading it on change), rebuilding on
/// every change until `stop` becomes true. The watch-mode settings (`[watch]`) are applied.
pub fn watch(
    builder: &Builder,
    config_source: Option<ConfigSource<'_>>,
    stop: &AtomicBool,
    mut on_event: impl FnMut(WatchEvent<'_>),
) -> Result<(), WatchError> {
    let mut config = for_watching(builder.config().clone());
    let (tx, rx) = mpsc::channel::<DebounceEventResult>();
    let debounce = Duration::from_millis(config.watch.debounce_ms.max(10));
    let mut debouncer =
        new_debouncer(debounce, None, tx).map_err(|e| WatchError::Notify(e.to_string()))?;
    let notify_err = |path: &Path, e: notify_debouncer_full::notify::Error| {
        WatchError::Notify(format!("{}: {e}", path.display()))
    };
    debouncer
        .watch(&config.src, RecursiveMode::Recursive)
        .map_err(|e| notify_err(&config.src, e))?;
    let config_file = config_source.as_ref().map(|s| forms(s.file));
    if let Some(source) = &config_source {
        // The folder, not the file: editors replace the file on save.
        let dir = source
            .file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        debouncer
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| notify_err(dir, e))?;
    }

    let run = |config: &Config, changed: &[PathBuf], on_event: &mut dyn FnMut(WatchEvent<'_>)| {
        let started = Instant::now();
        // The remote cache is for `kiln build` (CI, fresh checkouts): a development loop neither
        // waits on it nor fills the team's cache with its builds.
        let mut config = config.clone();
        config.cache.remote = None;
        match Builder::from_config(config).build() {
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
        let mut batch = vec![result];
        // Whatever else arrived meanwhile belongs to the same rebuild.
        batch.extend(rx.try_iter());
        let mut paths: Vec<PathBuf> = Vec::new();
        // A watcher error or a queue overflow means changes may have been lost: rebuild anyway.
        let mut rescan = false;
        for result in batch {
            match result {
                Ok(events) => {
                    for e in events {
                        rescan |= e.event.need_rescan();
                        if changes_content(&e.event.kind) {
                            paths.extend(e.event.paths);
                        }
                    }
                }
                Err(_) => rescan = true,
            }
        }
        let ignored = [forms(&config.out), forms(&config.cache.dir)];
        let src = forms(&config.src);
        let under = |p: &Path, dir: &[PathBuf; 2]| dir.iter().any(|d| p.starts_with(d));
        let config_changed = config_file
            .as_ref()
            .is_some_and(|f| paths.iter().any(|p| f.contains(p)));
        paths.retain(|p| {
            !ignored.iter().any(|d| under(p, d))
                && (under(p, &src) || config_file.as_ref().is_some_and(|f| f.contains(p)))
        });
        paths.sort();
        paths.dedup();
        if paths.is_empty() && !rescan {
            continue;
        }
        if config_changed {
            let loaded = config_source
                .as_ref()
                .map(|s| (s.load)().and_then(|mut c| c.validate().map(|()| c)));
            match loaded {
                Some(Ok(new)) => {
                    let new = for_watching(new);
                    if new.src != config.src {
                        let _ = debouncer.unwatch(&config.src);
                        if let Err(e) = debouncer.watch(&new.src, RecursiveMode::Recursive) {
                            let error = BuildError::Config(ConfigError::Invalid {
                                key: "src".into(),
                                message: e.to_string(),
                            });
                            on_event(WatchEvent::Failed {
                                error: &error,
                                changed: &paths,
                            });
                            continue;
                        }
                    }
                    config = new;
                }
                Some(Err(e)) => {
                    on_event(WatchEvent::Failed {
                        error: &BuildError::Config(e),
                        changed: &paths,
                    });
                    continue;
                }
                None => {}
            }
        }
        run(&config, &paths, &mut on_event);
    }
    debouncer.stop();
    Ok(())
}

/// A path both as written (made absolute) and resolved: notify reports the form it was given,
/// which differs from the canonical one under symlinks or `..`.
fn forms(p: &Path) -> [PathBuf; 2] {
    let absolute = std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    let canonical = p.canonicalize().unwrap_or_else(|_| absolute.clone());
    [absolute, canonical]
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

//! The up-to-date check: when every source file has the size and modification time it had at the
//! last successful build into the same output folder, the configuration and the kiln executable
//! are the same, and every file that build wrote is still there as it left it, the build only
//! stats those files and reports the last build again. Nothing is read, hashed or written.
//!
//! Owns one small JSON file per source and output folder pair in the cache folder
//! (`builds-v1/<digest>.json`). A file modified within two seconds of the build's start could
//! change again within the same timestamp tick ("racily clean"), so such a build is not
//! remembered and the next one does the full work. Anything unexpected (no file, another key, an
//! output missing or touched) means a normal build, which is always correct on its own.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::diagnostic::Diagnostic;
use crate::emit::Emitted;
use crate::model::{CompressStats, Stamp};
use crate::report::BuildReport;

/// What a build must match to be up to date, computed before anything is read.
#[derive(Debug)]
pub(crate) struct Memo {
    file: PathBuf,
    key: String,
    /// A source was modified too recently to trust its stamp: do not remember this build.
    racy: bool,
}

/// The last successful build, as remembered.
#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    key: String,
    /// Every file of the output folder the build wrote or kept (relative), and its stamp.
    outputs: Vec<(String, Stamp)>,
    report: SavedReport,
}

/// The parts of a [`BuildReport`] an up-to-date build repeats.
#[derive(Debug, Serialize, Deserialize)]
struct SavedReport {
    files: usize,
    bytes_in: u64,
    bytes_out: u64,
    variants: (usize, u64),
    transformed_bytes: (u64, u64),
    image_bytes: (u64, u64),
    compressed: (usize, u64, u64),
    warnings: Vec<Diagnostic>,
}

impl Memo {
    /// Stats every input of a build of `config` (the walk discover does, without reading).
    /// None when a stamp cannot be taken (the platform has no modification times).
    pub(crate) fn of(config: &Config) -> Option<Memo> {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_nanos();
        let mut h = blake3::Hasher::new();
        h.update(b"kiln up-to-date v1\0");
        h.update(crate::cache::build_id().as_bytes());
        h.update(&serde_json::to_vec(config).ok()?);
        let mut racy = false;
        for (path, is_link) in crate::discover::input_entries(config) {
            let followed = std::fs::metadata(&path).ok()?;
            let stamp = Stamp::of(&followed)?;
            racy |= stamp.mtime_ns + 2_000_000_000 > started;
            h.update(path.as_os_str().as_encoded_bytes());
            h.update(&[0, u8::from(is_link), u8::from(followed.is_dir())]);
            // A folder's time changes when an entry is added or removed, even one the walk leaves
            // out (a link kiln would refuse): that build must run to say so.
            h.update(&stamp.size.to_le_bytes());
            h.update(&stamp.mtime_ns.to_le_bytes());
        }
        let pair = format!(
            "{}\0{}",
            std::path::absolute(&config.src).ok()?.display(),
            std::path::absolute(&config.out).ok()?.display()
        );
        let file = config
            .cache
            .dir
            .join(crate::cache::BUILDS_FOLDER)
            .join(format!(
                "{}.json",
                &blake3::hash(pair.as_bytes()).to_hex()[..32]
            ));
        Some(Memo {
            file,
            key: h.finalize().to_hex().to_string(),
            racy,
        })
    }

    /// The last build's report, if this build is the same build with its outputs intact.
    pub(crate) fn up_to_date(&self, out: &Path) -> Option<BuildReport> {
        let saved: Saved = serde_json::from_slice(&std::fs::read(&self.file).ok()?).ok()?;
        if saved.key != self.key {
            return None;
        }
        let intact = saved.outputs.iter().all(|(name, stamp)| {
            std::fs::metadata(out.join(name))
                .ok()
                .and_then(|m| Stamp::of(&m))
                .is_some_and(|s| s == *stamp)
        });
        if !intact {
            return None;
        }
        let r = saved.report;
        Some(BuildReport {
            files: r.files,
            bytes_in: r.bytes_in,
            bytes_out: r.bytes_out,
            variants: r.variants,
            transformed_bytes: r.transformed_bytes,
            image_bytes: r.image_bytes,
            compressed: CompressStats {
                files: r.compressed.0,
                original_bytes: r.compressed.1,
                compressed_bytes: r.compressed.2,
            },
            warnings: r.warnings,
            up_to_date: true,
            ..BuildReport::default()
        })
    }

    /// Remembers a successful build of `config` that wrote or kept `emitted` and its manifests.
    pub(crate) fn save(&self, config: &Config, emitted: &Emitted, report: &BuildReport) {
        if self.racy {
            let _ = std::fs::remove_file(&self.file);
            return;
        }
        let out = &config.out;
        let manifests = config.manifest.formats.iter().map(|f| f.file_name());
        let outputs: Option<Vec<(String, Stamp)>> = (emitted.files.iter().map(String::as_str))
            .chain(manifests)
            .map(|name| {
                let stamp = Stamp::of(&std::fs::metadata(out.join(name)).ok()?)?;
                Some((name.to_owned(), stamp))
            })
            .collect();
        let Some(outputs) = outputs else {
            let _ = std::fs::remove_file(&self.file);
            return;
        };
        let saved = Saved {
            key: self.key.clone(),
            outputs,
            report: SavedReport {
                files: report.files,
                bytes_in: report.bytes_in,
                bytes_out: report.bytes_out,
                variants: report.variants,
                transformed_bytes: report.transformed_bytes,
                image_bytes: report.image_bytes,
                compressed: (
                    report.compressed.files,
                    report.compressed.original_bytes,
                    report.compressed.compressed_bytes,
                ),
                warnings: report.warnings.clone(),
            },
        };
        if let Ok(json) = serde_json::to_vec(&saved) {
            let _ = crate::fsutil::write_atomic(&self.file, &json);
        }
    }
}

//! Stage 1, discover: walk the source root and read every file into an [`Asset`].
//!
//! Owns: which files are part of the build (exclude globs, the output and cache folders never
//! are), logical paths (POSIX, relative to the root), deterministic ids (sorted by logical path),
//! and reading bytes (in parallel). Does not look inside files.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::config::Config;
use crate::fsutil::LARGE_FILE;
use crate::globs::{PathGlobs, logical_path};
use crate::index::FileIndex;
use crate::model::{Asset, AssetId, AssetKind, Discovered, Known, Stamp};

/// Why discovery failed: these stop the build before any file is transformed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoverError {
    /// The source root does not exist or is not a folder.
    #[error("{0}: source folder does not exist (set `src` in kiln.toml or pass --src)")]
    MissingRoot(PathBuf),
    /// Walking or reading failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `src` and `out` are the same folder: each build would fingerprint the last one's output.
    #[error("{0}: `src` and `out` are the same folder; write the output somewhere else")]
    SameFolder(PathBuf),
    /// A symbolic link under `src` points outside it (and outside `allow_symlinks_into`).
    #[error(
        "{link}: symbolic link to `{target}`, outside the source folder; kiln would publish it"
    )]
    LinkOutside {
        /// The link.
        link: PathBuf,
        /// Where it points (resolved).
        target: PathBuf,
    },
    /// Following symbolic links leads back to a folder being walked.
    #[error("{link}: symbolic link loop: it leads back to `{ancestor}`")]
    LinkLoop {
        /// The link.
        link: PathBuf,
        /// The folder it leads back to.
        ancestor: PathBuf,
    },
    /// A file name is not valid UTF-8, so it cannot be a URL or a manifest key.
    #[error("{0}: file name is not valid UTF-8; rename it")]
    NonUtf8Name(PathBuf),
}

/// Every entry under `config.src` that is part of the build: `exclude` and the output and cache
/// folders left out (folders included, the root first).
fn walk(config: &Config) -> impl Iterator<Item = walkdir::Result<walkdir::DirEntry>> + '_ {
    let root = &config.src;
    let excludes = PathGlobs::new(&config.exclude);
    let skip_dirs: Vec<(PathBuf, u64)> = [&config.out, &config.cache.dir]
        .into_iter()
        .filter_map(|p| Some((p.canonicalize().ok()?, inode(&std::fs::metadata(p).ok()?))))
        .collect();
    let walker = walkdir::WalkDir::new(root).follow_links(true).into_iter();
    walker.filter_entry(move |entry| {
        if entry.depth() == 0 {
            return true;
        }
        let Ok(rel) = entry.path().strip_prefix(root) else {
            return true;
        };
        if excludes.is_excluded(rel) {
            return false;
        }
        // Only a folder with the name or inode of the output or cache folder can be it
        // (a mount point lists the inode of the folder it covers): resolving the path of every
        // folder would cost a system call per path component.
        if entry.file_type().is_dir()
            && skip_dirs.iter().any(|(dir, ino)| {
                dir.file_name() == Some(entry.file_name())
                    || entry_inode(entry).is_none_or(|i| i == *ino)
            })
            && let Ok(canon) = entry.path().canonicalize()
        {
            return !skip_dirs.iter().any(|(dir, _)| *dir == canon);
        }
        true
    })
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

/// The inode of a walked entry, from the folder listing (no system call); None where unknown.
#[cfg(unix)]
fn entry_inode(entry: &walkdir::DirEntry) -> Option<u64> {
    // Through a followed link, the listing's inode is the link's, not the folder's.
    (!entry.path_is_symlink()).then(|| walkdir::DirEntryExt::ino(entry))
}

#[cfg(not(unix))]
fn entry_inode(_: &walkdir::DirEntry) -> Option<u64> {
    None
}

/// The paths a build reads, for tools that must know when to build again (a Cargo build
/// script's `rerun-if-changed`): the source folder, every folder under it (an added or deleted
/// file changes its folder) and every file, without `exclude`d ones and the output and cache
/// folders. Unreadable entries are left out (the build reports them).
pub fn inputs(config: &Config) -> Vec<PathBuf> {
    input_entries(config).into_iter().map(|(p, _)| p).collect()
}

/// [`inputs`], each with whether it is a symbolic link.
pub(crate) fn input_entries(config: &Config) -> Vec<(PathBuf, bool)> {
    let links = LinkPolicy::new(config);
    walk(config)
        .filter_map(Result::ok)
        .filter(|e| links.check(e).is_ok())
        .map(|e| (e.path_is_symlink(), e.into_path()))
        .map(|(link, path)| (path, link))
        .collect()
}

/// Where symbolic links under `src` may point: into `src` itself or a folder of
/// `allow_symlinks_into`.
struct LinkPolicy {
    allowed: Vec<PathBuf>,
}

impl LinkPolicy {
    fn new(config: &Config) -> Self {
        let allowed = std::iter::once(&config.src)
            .chain(&config.allow_symlinks_into)
            .filter_map(|p| p.canonicalize().ok())
            .collect();
        LinkPolicy { allowed }
    }

    /// Refuses a link whose resolved target is outside every allowed folder.
    fn check(&self, entry: &walkdir::DirEntry) -> Result<(), DiscoverError> {
        if !entry.path_is_symlink() {
            return Ok(());
        }
        let target = entry
            .path()
            .canonicalize()
            .map_err(|source| DiscoverError::Io {
                path: entry.path().to_owned(),
                source,
            })?;
        if self.allowed.iter().any(|root| target.starts_with(root)) {
            Ok(())
        } else {
            Err(DiscoverError::LinkOutside {
                link: entry.path().to_owned(),
                target,
            })
        }
    }
}

/// Walks `config.src`, skipping `config.exclude` and the output and cache folders if they sit
/// inside `src`, and reads every file (see [`discover_with`] to skip unchanged ones).
pub fn discover(config: &Config) -> Result<Discovered, DiscoverError> {
    discover_with(config, None, &|_, _, _, _| false)
}

/// `may_skip(logical, kind, size, known)` of [`discover_with`].
pub type MaySkip<'a> = dyn Fn(&str, AssetKind, u64, Option<&Known>) -> bool + Sync + 'a;

/// Like [`discover`], but a file for which `may_skip(logical, kind, size, known)` holds is not
/// read into memory, where `known` is what `index` knows of it when its size and modification
/// time still match. With such facts its asset carries them; without, if it is at least 32 MiB
/// (`fsutil::LARGE_FILE`), it is hashed as a stream and its asset carries those facts. Either way
/// its bytes stay on disk until emit copies them (or, for an image the index recorded, its
/// outputs are in the output folder already).
pub fn discover_with(
    config: &Config,
    index: Option<&FileIndex>,
    may_skip: &MaySkip<'_>,
) -> Result<Discovered, DiscoverError> {
    let root = &config.src;
    if !root.is_dir() {
        return Err(DiscoverError::MissingRoot(root.clone()));
    }
    if let (Ok(src), Ok(out)) = (root.canonicalize(), config.out.canonicalize())
        && src == out
    {
        return Err(DiscoverError::SameFolder(root.clone()));
    }
    let links = LinkPolicy::new(config);
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for entry in walk(config) {
        let entry = entry.map_err(|e| match e.loop_ancestor() {
            Some(ancestor) => DiscoverError::LinkLoop {
                link: e.path().map_or_else(|| root.clone(), Path::to_owned),
                ancestor: ancestor.to_owned(),
            },
            None => DiscoverError::Io {
                path: e.path().map_or_else(|| root.clone(), Path::to_owned),
                source: e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("cannot be read")),
            },
        })?;
        links.check(&entry)?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(root).expect("walked below root");
        let logical =
            logical_path(rel).ok_or_else(|| DiscoverError::NonUtf8Name(entry.path().to_owned()))?;
        found.push((logical, entry.path().to_owned()));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));

    let assets = found
        .into_par_iter()
        .enumerate()
        .map(|(i, (logical, path))| {
            let io = |source| DiscoverError::Io {
                path: path.clone(),
                source,
            };
            let kind = AssetKind::from_path(&logical);
            let metadata = std::fs::metadata(&path).map_err(io)?;
            let stamp = Stamp::of(&metadata);
            let known = match (index, stamp) {
                (Some(index), Some(stamp)) => std::path::absolute(&path)
                    .ok()
                    .and_then(|abs| index.get(&abs, stamp)),
                _ => None,
            };
            let skippable = may_skip(&logical, kind, metadata.len(), known);
            let mut known = known.filter(|_| skippable).cloned();
            if known.is_none()
                && may_skip(&logical, kind, metadata.len(), None)
                && metadata.len() >= LARGE_FILE
                && let Some(stamp) = stamp
            {
                known = Some(hash_stream(&path, stamp).map_err(io)?);
            }
            // An index entry whose hash does not parse is ignored: the file is read instead.
            let known_hash = known
                .as_ref()
                .and_then(|k| blake3::Hash::from_hex(&k.blake3).ok());
            let known = known.filter(|_| known_hash.is_some());
            let (bytes, hash) = match known_hash {
                Some(hash) => (bytes::Bytes::new(), hash),
                None => {
                    let bytes: bytes::Bytes = std::fs::read(&path).map_err(io)?.into();
                    let hash = blake3::hash(&bytes);
                    (bytes, hash)
                }
            };
            Ok(Asset {
                id: AssetId(i as u32),
                kind,
                logical,
                path,
                bytes,
                stamp,
                known,
                hash,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Discovered { assets })
}

/// The facts of a large file, read as a stream: BLAKE3 and SRI without holding it in memory.
fn hash_stream(path: &Path, stamp: Stamp) -> std::io::Result<Known> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut blake = blake3::Hasher::new();
    let mut sha = sha2::Sha384::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut read = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        blake.update(&buf[..n]);
        sha.update(&buf[..n]);
        read += n as u64;
    }
    if read != stamp.size {
        return Err(std::io::Error::other(
            "changed while kiln was reading it; run the build again",
        ));
    }
    Ok(Known {
        stamp,
        blake3: blake.finalize().to_hex().to_string(),
        integrity: crate::integrity::sri_of_digest(&sha.finalize()),
        output: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, rel: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, rel).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn links_out_of_src_are_refused_unless_allowed_and_loops_are_named() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("assets");
        touch(&src, "app.css");
        touch(&src, "img/logo.svg");
        touch(dir.path(), "secrets/credentials");
        touch(dir.path(), "vendor/lib.js");
        // Inside src: fine, the target's bytes under the link's name.
        symlink(src.join("img/logo.svg"), src.join("logo-link.svg")).unwrap();
        symlink(
            dir.path().join("secrets/credentials"),
            src.join("creds.txt"),
        )
        .unwrap();
        let mut config = Config {
            src: src.clone(),
            out: dir.path().join("out"),
            ..Config::default()
        };
        let err = discover(&config).unwrap_err();
        assert!(
            matches!(&err, DiscoverError::LinkOutside { link, .. } if link.ends_with("creds.txt")),
            "{err}"
        );
        assert!(err.to_string().contains("outside the source folder"));
        // Nor is it in what a Cargo build script watches.
        assert!(!inputs(&config).iter().any(|p| p.ends_with("creds.txt")));

        // A linked folder is allowed once its target folder is listed.
        std::fs::remove_file(src.join("creds.txt")).unwrap();
        symlink(dir.path().join("vendor"), src.join("vendor")).unwrap();
        assert!(matches!(
            discover(&config),
            Err(DiscoverError::LinkOutside { .. })
        ));
        config.allow_symlinks_into = vec![dir.path().join("vendor")];
        let found = discover(&config).unwrap();
        let names: Vec<&str> = found.assets.iter().map(|a| a.logical.as_str()).collect();
        assert_eq!(
            names,
            ["app.css", "img/logo.svg", "logo-link.svg", "vendor/lib.js"]
        );

        // A loop is an error naming the link, not a hang or a stack overflow.
        symlink(&src, src.join("img/up")).unwrap();
        let err = discover(&config).unwrap_err();
        assert!(
            matches!(&err, DiscoverError::LinkLoop { link, .. } if link.ends_with("img/up")),
            "{err}"
        );
    }

    #[test]
    fn walks_sorted_skipping_excluded_and_the_output_folder() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("assets");
        for f in [
            "b.css",
            "a/z.js",
            "a/.DS_Store",
            ".git/config",
            "x.css~",
            "vendor/min/v.js",
            "out/old.css",
        ] {
            touch(&src, f);
        }
        let config = Config {
            src: src.clone(),
            out: src.join("out"),
            exclude: vec![".*".into(), "*~".into(), "vendor/min/**".into()],
            ..Config::default()
        };
        let found = discover(&config).unwrap();
        let names: Vec<&str> = found.assets.iter().map(|a| a.logical.as_str()).collect();
        assert_eq!(names, ["a/z.js", "b.css"]);
        assert_eq!(found.assets[1].id, AssetId(1));
        assert_eq!(&found.assets[1].bytes[..], b"b.css");
        assert_eq!(found.assets[1].kind, AssetKind::Css);
    }

    #[test]
    fn missing_root_is_an_error_naming_it() {
        let config = Config {
            src: "/nonexistent/kiln-src".into(),
            ..Config::default()
        };
        let err = discover(&config).unwrap_err().to_string();
        assert!(
            err.starts_with("/nonexistent/kiln-src: source folder does not exist"),
            "{err}"
        );
    }
}

//! The asset model: what [`discover`](crate::discover) finds and every later stage indexes by.
//!
//! An asset is one source file: a dense [`AssetId`], its logical path (POSIX, relative to the
//! source root, the key in every manifest), its bytes and its [`AssetKind`]. This module does not
//! read files or decide what to do with them.

use std::path::PathBuf;

/// Dense index of an asset in a build, in logical-path order (so ids are deterministic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AssetId(pub u32);

impl AssetId {
    /// The index into the build's asset list.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What a file is, by extension; decides which transformer handles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AssetKind {
    /// `.css`
    Css,
    /// `.js`, `.mjs`, `.cjs`
    Js,
    /// `.png`
    Png,
    /// `.jpg`, `.jpeg`
    Jpeg,
    /// Anything else: fingerprinted and copied as is.
    Other,
}

impl AssetKind {
    /// Classifies a logical path by its extension (case-insensitive).
    pub fn from_path(path: &str) -> AssetKind {
        let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        match ext.as_deref() {
            Some("css") => AssetKind::Css,
            Some("js" | "mjs" | "cjs") => AssetKind::Js,
            Some("png") => AssetKind::Png,
            Some("jpg" | "jpeg") => AssetKind::Jpeg,
            _ => AssetKind::Other,
        }
    }
}

/// One source file.
#[derive(Debug, Clone)]
pub struct Asset {
    /// Its index.
    pub id: AssetId,
    /// POSIX path relative to the source root: `css/app.css`.
    pub logical: String,
    /// The path on disk, as the user would type it (`assets/css/app.css`): used in diagnostics.
    pub path: PathBuf,
    /// What it is.
    pub kind: AssetKind,
    /// Its contents (shared: a file that passes through is never copied in memory). Empty when
    /// `known` is set: the file was not read.
    pub bytes: bytes::Bytes,
    /// Its size and modification time when discovered.
    pub stamp: Option<crate::index::Stamp>,
    /// What the file index knows of an unchanged file kiln did not read (see [`crate::index`]).
    pub known: Option<crate::index::Known>,
    /// BLAKE3 of its contents, computed once where they are read (or taken from the index):
    /// cache keys, the file index and the hash of a file that passes through all use it.
    pub hash: blake3::Hash,
}

impl Asset {
    /// An asset that exists only in memory (tests, benchmarks, tools embedding kiln): id 0, kind
    /// from the extension, its logical path as its path.
    pub fn from_bytes(logical: &str, bytes: impl Into<bytes::Bytes>) -> Asset {
        let bytes: bytes::Bytes = bytes.into();
        Asset {
            id: AssetId(0),
            logical: logical.to_owned(),
            path: PathBuf::from(logical),
            kind: AssetKind::from_path(logical),
            hash: blake3::hash(&bytes),
            bytes,
            stamp: None,
            known: None,
        }
    }

    /// Its size in bytes, read or not.
    pub fn size(&self) -> u64 {
        self.known
            .as_ref()
            .map_or(self.bytes.len() as u64, |k| k.stamp.size)
    }

    /// The path to show in diagnostics.
    pub fn display_path(&self) -> String {
        self.path.display().to_string()
    }
}

//! The model: the data that flows between the stages, and nothing else.
//!
//! Every stage imports this module and it imports no stage, so the pipeline's modules stand on
//! it in one direction (see ARCHITECTURE.md). In build order:
//!
//! - [`Asset`] (with its [`AssetId`], [`AssetKind`] and, for a file kiln did not read, the
//!   [`Stamp`] and [`Known`] facts of the file index): what [`discover`](crate::discover) finds,
//!   collected in [`Discovered`];
//! - [`TransformOutput`] (bytes with placeholders, [`Reference`]s, a source map, [`ImageInfo`]
//!   and image [`Variant`]s): what a transformer returns, collected in [`Transformed`];
//! - [`LinkedAsset`] and its [`OutputFile`]s: final names and bytes, collected in [`Linked`];
//! - [`Encoded`] siblings ([`Encoding`]) that [`compress`](crate::compress) adds to output files,
//!   and its [`CompressStats`].
//!
//! It reads no file and decides nothing: the stages do.

use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::diagnostic::Diagnostic;

/// The version of kiln that produced an output; recorded in manifests and mixed into caches.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

// ---------------------------------------------------------------------------------- sources

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
    /// Every kind.
    pub const ALL: [AssetKind; 5] = [
        AssetKind::Css,
        AssetKind::Js,
        AssetKind::Png,
        AssetKind::Jpeg,
        AssetKind::Other,
    ];

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
    pub stamp: Option<Stamp>,
    /// What the file index knows of an unchanged file kiln did not read (see [`crate::index`]).
    pub known: Option<Known>,
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

/// The [`TransformOutput::dependencies`] entry for a transform that checked whether the file
/// `logical` is part of the build.
pub fn probe(logical: &str) -> String {
    format!("?{logical}")
}

/// What a [`TransformOutput::dependencies`] entry stands for among `assets` (sorted by logical
/// path; `visible(i)` says whether `assets[i]` counts, as image variants do not for
/// transformers): a file's content hash, or for a [`probe`] a hash of whether the file is there.
/// None for a file that is not there.
pub fn dependency_hash(
    assets: &[Asset],
    dependency: &str,
    visible: impl Fn(usize) -> bool,
) -> Option<blake3::Hash> {
    let find = |logical: &str| {
        (assets
            .binary_search_by(|a| a.logical.as_str().cmp(logical))
            .ok())
        .filter(|&i| visible(i))
    };
    match dependency.strip_prefix('?') {
        Some(logical) => Some(blake3::hash(match find(logical) {
            Some(_) => b"kiln probe: present",
            None => b"kiln probe: absent!",
        })),
        None => find(dependency).map(|i| assets[i].hash),
    }
}

/// Size and modification time of a file, as the index compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// Bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: u128,
}

impl Stamp {
    /// The stamp of `meta`, if the platform reports a modification time.
    pub fn of(meta: &std::fs::Metadata) -> Option<Stamp> {
        let mtime_ns = meta
            .modified()
            .ok()?
            .duration_since(UNIX_EPOCH)
            .ok()?
            .as_nanos();
        Some(Stamp {
            size: meta.len(),
            mtime_ns,
        })
    }
}

/// What the index remembers of a file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Known {
    /// Size and modification time when it was read.
    pub stamp: Stamp,
    /// BLAKE3 of its content, hex.
    pub blake3: String,
    /// SRI integrity of its content.
    pub integrity: String,
    /// For an image: what its transform made and the last build wrote (see [`Recorded`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Recorded>,
}

/// An output file kiln did not load: an earlier build wrote it into the output folder and the
/// file index recorded these facts of it (see [`Recorded`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    /// Bytes.
    pub size: u64,
    /// BLAKE3 of its content, hex.
    pub blake3: String,
    /// SRI integrity of its content.
    pub integrity: String,
}

/// What the file index records of a transformed file's outputs, so that while the file is
/// unchanged and those outputs are in the output folder, kiln neither reads it nor loads its
/// cached transform:
/// - an image: its optimised file and its variants (an image references nothing, so its names
///   depend on nothing else);
/// - a CSS or JS file: what link made of it ([`RecordedLink`]), which holds while the names of
///   the files it references (and the files its transform read) are the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// The transform cache key it was made under, mixed with the build of kiln and the
    /// precompression settings, hex: with another, the record is ignored.
    pub key: String,
    /// The output file (an image's optimised file, a CSS or JS file's final, linked file).
    pub file: Kept,
    /// An image's dimensions and placeholder (`variants` empty: the transform stage fills it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageInfo>,
    /// An image's variants, in the order the transformer made them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<RecordedVariant>,
    /// What link made of a CSS or JS file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<Box<RecordedLink>>,
}

/// One variant of a [`Recorded`] image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedVariant {
    /// Its logical path.
    pub logical: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The file.
    pub file: Kept,
}

/// What link made of a CSS or JS file, in a [`Recorded`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedLink {
    /// Its fingerprinted name: a build that names it the same writes the same bytes.
    pub name: String,
    /// The isolated hash of its transform output (see [`crate::link`]), hex.
    pub isolated: String,
    /// The references of its transform output.
    pub references: Vec<Reference>,
    /// (logical path, BLAKE3 hex) of each other file its transform read (an `@import`ed
    /// stylesheet, an input source map).
    pub dependencies: Vec<(String, String)>,
    /// Its precompressed siblings: encoding and size.
    pub encodings: Vec<(Encoding, u64)>,
    /// Its source map (`<name>.map`): size and siblings.
    pub map: Option<(u64, Vec<(Encoding, u64)>)>,
}

/// The source files of a build, sorted by logical path; `assets[i].id == AssetId(i)`.
#[derive(Debug, Default)]
pub struct Discovered {
    /// The assets.
    pub assets: Vec<Asset>,
}

// ------------------------------------------------------------------------------ transformed

/// How a placeholder sits in the output, so the link stage can serialise the final URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RefSyntax {
    /// The placeholder is a double-quoted CSS string inside `url(...)`, quotes included: the link
    /// stage may write the URL unquoted when that is valid and shorter.
    CssUrl,
    /// The placeholder is a double-quoted CSS string (`@import "..."`), quotes included.
    CssString,
    /// The placeholder is the contents of a JavaScript string literal (quotes not included): the
    /// URL is escaped so it is valid inside either quote character.
    JsString,
    /// The placeholder is bare text (a `sourceMappingURL` comment); the URL is written as is.
    Raw,
}

/// What a reference means, for manifests (`imports` and `dynamic_imports`, like Vite's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RefKind {
    /// A static dependency: CSS `@import`, JS `import`/`export ... from`.
    Import,
    /// A JS `import()` with a literal specifier.
    DynamicImport,
    /// A URL to a resource: CSS `url()`, JS `new URL(..., import.meta.url)`.
    Url,
}

/// A reference from one asset to another (or to something outside the build), found by a transformer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// The exact text in the output that stands for the URL.
    pub placeholder: String,
    /// The URL as written in the source (`../img/logo.png?v=2#x`), unescaped.
    pub specifier: String,
    /// How to serialise the replacement.
    pub syntax: RefSyntax,
    /// What the reference is.
    pub kind: RefKind,
    /// The logical path the transformer already resolved the specifier to (a configured alias for
    /// a bare specifier such as `three`); the link stage then writes a URL relative to the
    /// referring file. None: the link stage resolves `specifier` as a URL.
    pub target: Option<String>,
    /// The logical path of the file the reference was written in, when it is not the asset
    /// itself (an `@import`ed file inlined by bundling); relative specifiers resolve against it.
    pub from: Option<String>,
    /// 1-based position of the reference in that file, for diagnostics.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// A target that cannot be found is a warning and the reference is left as written, whatever
    /// `strict` says: for references a browser only follows if something uses them (a `url()` in
    /// a CSS custom property).
    #[serde(default)]
    pub optional: bool,
}

/// Whether a `sourceMappingURL` comment is appended, and in which comment syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MapComment {
    /// `/*# sourceMappingURL=... */`
    Css,
    /// `//# sourceMappingURL=...`
    Js,
}

/// The unit a source map's generated columns are counted in. The map's producer decides, and
/// the link stage must shift columns in the same unit (lightningcss counts bytes, swc UTF-16).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Columns {
    /// UTF-16 code units, as the source map spec and browsers count.
    #[default]
    Utf16,
    /// UTF-8 bytes.
    Bytes,
}

/// What a transformer returns.
#[derive(Debug, Default)]
pub struct TransformOutput {
    /// The output bytes, with a placeholder wherever a reference's URL goes.
    pub bytes: bytes::Bytes,
    /// The references, in any order.
    pub references: Vec<Reference>,
    /// A source map (JSON) for `bytes`, in the coordinates of `bytes` as returned, whose `sources`
    /// are logical paths (the link stage makes them relative to the map's folder).
    pub source_map: Option<String>,
    /// How to point the output at its map, when there is one.
    pub map_comment: Option<MapComment>,
    /// The unit of the map's generated columns.
    pub map_columns: Columns,
    /// Logical paths of the other assets the transformer read (inlined `@import`s, an input
    /// source map): the cache checks their contents too before reusing this output. An entry
    /// `?<logical path>` ([`probe`]) says that whether that file is part of the build decided
    /// something (a `url()` left as written because its target is missing), not its contents.
    pub dependencies: Vec<String>,
    /// Problems found; any error fails the asset.
    pub diagnostics: Vec<Diagnostic>,
    /// What an image output is: its dimensions, its placeholder and its variants (manifests list
    /// them so templates can write `srcset` and `<picture>`).
    pub image: Option<ImageInfo>,
    /// SRI (`sha384-...`) of `bytes` when they are final (no references, no source map comment
    /// to append): computed by the transform stage before caching, so a warm build does not hash
    /// unchanged images again. Transformers leave it unset.
    pub integrity: Option<String>,
    /// Extra files derived from the asset (an image at other widths or in other formats). The
    /// transform stage turns each into an asset of its own, fingerprinted, emitted and listed in
    /// the manifests under its logical path; it fills `image.variants` with the ones it kept.
    pub variants: Vec<Variant>,
    /// Set by the transform stage when the output was not loaded (`bytes` is empty): the file
    /// index recorded it and it is in the output folder. For an image, the facts of its
    /// optimised file; for a CSS or JS file, those of its final file, with `prior`. Transformers
    /// leave it unset.
    pub kept: Option<Kept>,
    /// With `kept`, for a CSS or JS file: what link made of it when the index recorded it
    /// (`references` is a copy of its references).
    pub prior: Option<Box<RecordedLink>>,
}

/// An extra output derived from an asset (see [`TransformOutput::variants`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// Its logical path, next to its source: `img/photo-480w.avif`.
    pub logical: String,
    /// Its bytes.
    pub bytes: bytes::Bytes,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// SRI of `bytes` (see [`TransformOutput::integrity`]); transformers leave it unset.
    pub integrity: Option<String>,
    /// Not loaded (see [`TransformOutput::kept`]); transformers leave it unset.
    pub kept: Option<Kept>,
}

/// Facts about an image output, for the manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// Width in pixels, as displayed (after EXIF orientation).
    pub width: u32,
    /// Height in pixels, as displayed.
    pub height: u32,
    /// A tiny preview to show while the image loads (a base64 ThumbHash).
    #[serde(default)]
    pub placeholder: Option<String>,
    /// Logical paths of its variants, in the order the transformer made them.
    #[serde(default)]
    pub variants: Vec<String>,
    /// The source this image is a variant of.
    #[serde(default)]
    pub variant_of: Option<String>,
}

impl TransformOutput {
    /// Copies the asset unchanged, with no references.
    pub fn passthrough(asset: &Asset) -> Self {
        TransformOutput {
            bytes: asset.bytes.clone(),
            ..Default::default()
        }
    }

    /// True when a diagnostic is an error.
    pub fn failed(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// The output of every asset, in asset order.
#[derive(Debug)]
pub struct Transformed {
    /// The sources.
    pub assets: Vec<Asset>,
    /// `outputs[i]` is the transform of `assets[i]`.
    pub outputs: Vec<TransformOutput>,
}

// ----------------------------------------------------------------------------------- linked

/// A file of the build's output (a fingerprinted asset or its source map).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// POSIX path relative to the output folder: `css/app.0123456789ab.css`.
    pub path: String,
    /// Final contents; empty when `copy_of` is set.
    pub bytes: bytes::Bytes,
    /// An unchanged source file kiln did not read: emit copies it from there when the output
    /// does not exist yet, checking the bytes still have the BLAKE3 (hex) the index knew.
    /// Holds the path, the size and the hash.
    pub copy_of: Option<(std::path::PathBuf, u64, String)>,
    /// Already in the output folder and not loaded (see [`TransformOutput::kept`]): its size.
    /// `bytes` is empty and emit leaves the file as it is.
    pub kept: Option<u64>,
    /// Precompressed siblings (filled by [`compress`](crate::compress)).
    pub encodings: Vec<Encoded>,
}

/// One asset after linking: final bytes and name.
#[derive(Debug, Clone)]
pub struct LinkedAsset {
    /// Logical path (the manifest key).
    pub logical: String,
    /// The fingerprinted file.
    pub output: OutputFile,
    /// Its source map, when the transformer produced one.
    pub map: Option<OutputFile>,
    /// Size of the source file in bytes.
    pub source_size: u64,
    /// Logical paths of the assets it references, sorted, without duplicates.
    pub references: Vec<String>,
    /// Logical paths of its static imports (JS `import`/`export from`, CSS `@import`), sorted.
    pub imports: Vec<String>,
    /// Logical paths of its dynamic `import()`s, sorted.
    pub dynamic_imports: Vec<String>,
    /// MIME type guessed from the extension.
    pub content_type: String,
    /// Subresource Integrity of the final bytes (`sha384-...`); empty when the build has
    /// neither kiln's manifest nor a cache, the two readers of it.
    pub integrity: String,
    /// Dimensions, placeholder and variants of an image.
    pub image: Option<ImageInfo>,
}

/// The result of linking: every asset (in logical-path order) and the diagnostics found.
#[derive(Debug, Default)]
pub struct Linked {
    /// The assets; empty when `diagnostics` has an error.
    pub assets: Vec<LinkedAsset>,
    /// Transform and link diagnostics, sorted by path and position.
    pub diagnostics: Vec<Diagnostic>,
    /// For the file index, when the build has one: what link made of each CSS or JS file it
    /// transformed without a diagnostic (`records[i]` is of `assets[i]`; siblings not yet added).
    pub records: Vec<Option<Box<RecordedLink>>>,
}

impl OutputFile {
    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        match (&self.copy_of, self.kept) {
            (Some((_, len, _)), _) => *len,
            (None, Some(len)) => len,
            (None, None) => self.bytes.len() as u64,
        }
    }
}

impl Linked {
    /// True when a diagnostic is an error (nothing may be emitted).
    pub fn failed(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

impl LinkedAsset {
    /// True for an image variant (another width or format of a source image).
    pub fn is_variant(&self) -> bool {
        self.image.as_ref().is_some_and(|i| i.variant_of.is_some())
    }
}

// ---------------------------------------------------------------------------------- encoded

/// A content encoding kiln can precompress with. The names are a contract (`[compress] formats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Encoding {
    /// Brotli, `.br`.
    #[serde(rename = "br")]
    Brotli,
    /// gzip, `.gz`.
    #[serde(rename = "gzip")]
    Gzip,
    /// Zstandard, `.zst` (WhiteNoise does not serve it; some CDNs and nginx modules do).
    #[serde(rename = "zstd")]
    Zstd,
}

impl Encoding {
    /// The `Content-Encoding` token, also the key in kiln's manifest.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
            Encoding::Zstd => "zstd",
        }
    }

    /// The sibling's file-name suffix.
    pub fn extension(self) -> &'static str {
        match self {
            Encoding::Brotli => ".br",
            Encoding::Gzip => ".gz",
            Encoding::Zstd => ".zst",
        }
    }
}

/// A precompressed sibling of an output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// How it is compressed.
    pub encoding: Encoding,
    /// `css/app.<hash>.css.br`
    pub path: String,
    /// The compressed bytes (shared between identical files); empty when `kept`.
    pub bytes: bytes::Bytes,
    /// Already in the output folder and not loaded (see [`OutputFile::kept`]): its size.
    pub kept: Option<u64>,
}

impl Encoded {
    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.kept.unwrap_or(self.bytes.len() as u64)
    }
}

/// What precompression did, for the build summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct CompressStats {
    /// Files (assets and maps) that got at least one sibling.
    pub files: usize,
    /// Bytes of those files.
    pub original_bytes: u64,
    /// Bytes of their Brotli siblings (or gzip where there is no Brotli).
    pub compressed_bytes: u64,
}

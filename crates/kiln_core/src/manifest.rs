//! Stage 5, manifest: kiln's `manifest.json`, Django's `staticfiles.json` and flask-static-digest's
//! `cache_manifest.json`, written last and atomically.
//!
//! The formats are contracts (frameworks read them); kiln's own is versioned by `schema` and
//! documented in `docs/manifest.md`. Keys are logical paths, sorted, so manifests are
//! deterministic. A manifest whose bytes would not change is not rewritten.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::config::{Config, ManifestFormat};
use crate::emit::EmitError;
use crate::fsutil::prepare_durable;
use crate::model::Linked;

/// The current version of kiln's manifest schema.
pub const SCHEMA: u32 = 1;

/// kiln's `manifest.json`.
#[derive(Debug, Serialize)]
pub struct KilnManifest<'a> {
    /// Schema version: bumped on incompatible changes.
    pub schema: u32,
    /// `kiln <version>`.
    pub generator: String,
    /// The public URL the files are served under.
    pub public_url: &'a str,
    /// The build also wrote every file under its logical name (`unhashed = true`, `kiln watch`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unhashed: bool,
    /// Entries by logical path.
    pub assets: BTreeMap<&'a str, AssetEntry<'a>>,
}

/// One asset in kiln's manifest.
#[derive(Debug, Serialize)]
pub struct AssetEntry<'a> {
    /// Fingerprinted path relative to the output folder.
    pub file: &'a str,
    /// Size of `file` in bytes.
    pub size: u64,
    /// Size of the source file in bytes.
    pub source_size: u64,
    /// SRI hash of `file` (`sha384-...`).
    pub integrity: &'a str,
    /// MIME type.
    pub content_type: &'a str,
    /// Logical paths this asset references.
    pub references: &'a [String],
    /// Static imports (JS modules), for `<link rel="modulepreload">`.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub imports: &'a [String],
    /// Dynamic `import()`s (JS modules).
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub dynamic_imports: &'a [String],
    /// Its source map.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub map: Option<FileEntry<'a>>,
    /// Precompressed siblings of `file` by `Content-Encoding` token (`br`, `gzip`, `zstd`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub encodings: BTreeMap<&'static str, FileEntry<'a>>,
    /// An image's width in pixels, as displayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// An image's height in pixels, as displayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// A tiny preview of an image (base64 ThumbHash) to show while it loads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<&'a str>,
    /// An image's variants (other widths, AVIF, WebP), for `srcset` and `<picture>`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<VariantEntry<'a>>,
    /// For a variant: the logical path of the image it was made from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant_of: Option<&'a str>,
}

/// One variant of an image.
#[derive(Debug, Serialize)]
pub struct VariantEntry<'a> {
    /// Its logical path (a key of the manifests).
    pub logical: &'a str,
    /// Fingerprinted path relative to the output folder.
    pub file: &'a str,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// MIME type (`image/avif`).
    pub content_type: &'a str,
    /// Size in bytes.
    pub size: u64,
}

/// A secondary output file.
#[derive(Debug, Serialize)]
pub struct FileEntry<'a> {
    /// Path relative to the output folder.
    pub file: &'a str,
    /// Size in bytes.
    pub size: u64,
}

/// Builds kiln's manifest for `linked`.
pub fn kiln_manifest<'a>(linked: &'a Linked, config: &'a Config) -> KilnManifest<'a> {
    let by_logical = |logical: &str| {
        linked
            .assets
            .binary_search_by(|a| a.logical.as_str().cmp(logical))
            .ok()
            .map(|i| &linked.assets[i])
    };
    KilnManifest {
        schema: SCHEMA,
        generator: format!("kiln {}", crate::model::VERSION),
        public_url: &config.public_url,
        unhashed: config.unhashed,
        assets: linked
            .assets
            .iter()
            .map(|a| {
                (
                    a.logical.as_str(),
                    AssetEntry {
                        file: &a.output.path,
                        size: a.output.size(),
                        source_size: a.source_size,
                        integrity: &a.integrity,
                        content_type: &a.content_type,
                        references: &a.references,
                        imports: &a.imports,
                        dynamic_imports: &a.dynamic_imports,
                        map: a.map.as_ref().map(|m| FileEntry {
                            file: &m.path,
                            size: m.size(),
                        }),
                        encodings: a
                            .output
                            .encodings
                            .iter()
                            .map(|e| {
                                let entry = FileEntry {
                                    file: &e.path,
                                    size: e.size(),
                                };
                                (e.encoding.name(), entry)
                            })
                            .collect(),
                        width: a.image.as_ref().map(|i| i.width),
                        height: a.image.as_ref().map(|i| i.height),
                        placeholder: a.image.as_ref().and_then(|i| i.placeholder.as_deref()),
                        variants: a
                            .image
                            .iter()
                            .flat_map(|i| &i.variants)
                            .filter_map(|v| by_logical(v))
                            .map(|v| VariantEntry {
                                logical: &v.logical,
                                file: &v.output.path,
                                width: v.image.as_ref().map_or(0, |i| i.width),
                                height: v.image.as_ref().map_or(0, |i| i.height),
                                content_type: &v.content_type,
                                size: v.output.size(),
                            })
                            .collect(),
                        variant_of: a.image.as_ref().and_then(|i| i.variant_of.as_deref()),
                    },
                )
            })
            .collect(),
    }
}

/// The bytes of manifest `format` for `linked`.
pub fn render(format: ManifestFormat, linked: &Linked, config: &Config) -> Vec<u8> {
    let paths: BTreeMap<&str, &str> = linked
        .assets
        .iter()
        .map(|a| (a.logical.as_str(), a.output.path.as_str()))
        .collect();
    let mut bytes = match format {
        ManifestFormat::Kiln => serde_json::to_vec_pretty(&kiln_manifest(linked, config)),
        ManifestFormat::Django => {
            // Django only uses `hash` to tell manifests apart; any stable digest of the paths will do.
            let digest = blake3::hash(&serde_json::to_vec(&paths).expect("paths serialise"));
            let hash = &digest.to_hex()[..12];
            serde_json::to_vec_pretty(
                &serde_json::json!({ "paths": paths, "version": "1.1", "hash": hash }),
            )
        }
        ManifestFormat::Flask => serde_json::to_vec_pretty(&paths),
        ManifestFormat::ImportMap => serde_json::to_vec_pretty(&import_map(linked, config)),
    }
    .expect("manifests serialise");
    bytes.push(b'\n');
    bytes
}

/// An HTML import map: every JS module's public URL, and every `[js.aliases]` bare specifier, to
/// its fingerprinted URL (`<script type="importmap">` format).
fn import_map(linked: &Linked, config: &Config) -> serde_json::Value {
    let url = |file: &str| format!("{}{file}", config.public_url);
    let mut imports: BTreeMap<String, String> = linked
        .assets
        .iter()
        .filter(|a| crate::model::AssetKind::from_path(&a.logical) == crate::model::AssetKind::Js)
        .map(|a| (url(&a.logical), url(&a.output.path)))
        .collect();
    for (alias, target) in &config.js.aliases {
        if let Some(a) = linked.assets.iter().find(|a| &a.logical == target) {
            imports.insert(alias.clone(), url(&a.output.path));
        }
    }
    serde_json::json!({ "imports": imports })
}

/// Writes the configured manifests into `out`, kiln's last. Returns how many files changed.
///
/// All of them are written to temporary files first and only then renamed into place, so a write
/// that fails (a full disk) leaves every manifest as it was, never a mix of two builds.
pub fn write_manifests(linked: &Linked, config: &Config, out: &Path) -> Result<usize, EmitError> {
    let mut prepared = Vec::new();
    for format in ManifestFormat::ALL {
        if !config.manifest.formats.contains(&format) {
            continue;
        }
        let path = out.join(format.file_name());
        let bytes = render(format, linked, config);
        if std::fs::read(&path).is_ok_and(|old| old == bytes) {
            continue;
        }
        let tmp = prepare_durable(&path, &bytes).map_err(|source| EmitError {
            path: path.clone(),
            source,
        })?;
        prepared.push((path, tmp));
    }
    let changed = prepared.len();
    for (path, tmp) in prepared {
        tmp.persist(&path).map_err(|e| EmitError {
            path: path.clone(),
            source: e.error,
        })?;
    }
    Ok(changed)
}

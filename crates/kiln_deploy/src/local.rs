//! The local side of a deploy: the files of the last successful build in the output folder, read
//! from kiln's `manifest.json` (the source of truth; the folder also holds earlier builds' files,
//! which are not deployed), each with its class and the headers it is served with.
//!
//! Does not read file contents, except the few files whose name is not a content hash (unhashed
//! copies and manifests), whose SHA-256 is always needed. A fingerprinted file's name changes
//! with its bytes, so its name and size identify it, as `emit` also assumes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_core::config::{Config, DeployConfig, ManifestFormat};
use kiln_core::emit::is_safe_relative;
use kiln_core::globs::PathGlobs;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::DeployError;

/// `Cache-Control` of fingerprinted files: their bytes never change under that name.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of manifests and unhashed files: cached briefly, then revalidated.
pub const REVALIDATE: &str = "public, max-age=60, must-revalidate";

/// What kind of file, which decides its default headers and its upload phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// A fingerprinted name (`app.3f54ce26f927.css`, its map, its `.br`): uploaded first.
    Hashed,
    /// A copy under its logical name (`app.css`, `unhashed = true`): uploaded after the hashed.
    Unhashed,
    /// `staticfiles.json`, `cache_manifest.json`, `importmap.json`, `manifest.json`: last.
    Manifest,
}

/// The headers an object is stored with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headers {
    /// `Content-Type`, with `; charset=utf-8` for text.
    pub content_type: String,
    /// `Cache-Control`.
    pub cache_control: String,
    /// `Content-Encoding` of a precompressed sibling (`br`, `gzip`, `zstd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
}

/// One file to deploy.
#[derive(Debug, Clone)]
pub struct LocalFile {
    /// Path relative to the output folder (POSIX); the key is the prefix plus this.
    pub path: String,
    /// Its class.
    pub class: Class,
    /// Its headers.
    pub headers: Headers,
    /// Its size in bytes.
    pub size: u64,
    /// Hex SHA-256 of its bytes, where known (always for unhashed files and manifests).
    pub sha256: Option<String>,
    /// The SRI value (`sha384-...`) of its bytes as served (decoded), where the manifest has it:
    /// assets, their unhashed copies and their precompressed siblings.
    pub integrity: Option<String>,
}

/// The last successful build.
#[derive(Debug)]
pub struct LocalBuild {
    /// The output folder.
    pub out: PathBuf,
    /// The public URL the build was made for.
    pub public_url: String,
    /// Hex SHA-256 of kiln's `manifest.json`: the release's identity.
    pub manifest_sha256: String,
    /// Every file to deploy: by path, then the manifests in the order they are written.
    pub files: Vec<LocalFile>,
}

/// The bytes of `file` in the output folder `out`, checked against its size and (where known)
/// its SHA-256; returns them with their SHA-256.
pub fn read_file(out: &Path, file: &LocalFile) -> Result<(Vec<u8>, String), DeployError> {
    let path = out.join(&file.path);
    let bytes = std::fs::read(&path).map_err(|source| DeployError::Io {
        path: path.clone(),
        source,
    })?;
    let sha = sha256_hex(&bytes);
    if bytes.len() as u64 != file.size || file.sha256.as_ref().is_some_and(|s| *s != sha) {
        // Rebuilt (or edited) since kiln deploy read the manifest.
        return Err(DeployError::Changed { path });
    }
    Ok((bytes, sha))
}

/// The subset of kiln's manifest a deploy needs; unknown fields are ignored, as the format allows.
#[derive(Deserialize)]
struct Manifest {
    schema: u32,
    public_url: String,
    #[serde(default)]
    unhashed: bool,
    assets: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
struct Entry {
    file: String,
    size: u64,
    content_type: String,
    #[serde(default)]
    integrity: Option<String>,
    #[serde(default)]
    map: Option<FileRef>,
    #[serde(default)]
    encodings: BTreeMap<String, FileRef>,
}

#[derive(Deserialize)]
struct FileRef {
    file: String,
    size: u64,
}

/// Compiled `[[deploy.headers]]` rules.
pub struct HeaderRules(Vec<(PathGlobs, Option<String>)>);

impl HeaderRules {
    /// Compiles the rules of `deploy`.
    pub fn new(deploy: &DeployConfig) -> Self {
        HeaderRules(
            deploy
                .headers
                .iter()
                .map(|r| (PathGlobs::new(&r.paths), r.cache_control.clone()))
                .collect(),
        )
    }

    /// The `Cache-Control` for `path`: the first matching rule's, else the class's default.
    pub fn cache_control(&self, path: &str, class: Class) -> String {
        self.0
            .iter()
            .find(|(globs, cc)| cc.is_some() && globs.matches(path))
            .and_then(|(_, cc)| cc.clone())
            .unwrap_or_else(|| {
                match class {
                    Class::Hashed => IMMUTABLE,
                    Class::Unhashed | Class::Manifest => REVALIDATE,
                }
                .to_owned()
            })
    }
}

/// `Content-Type` as served: text types get `; charset=utf-8` (kiln writes UTF-8).
pub fn served_content_type(content_type: &str) -> String {
    let text = content_type.starts_with("text/")
        || content_type.ends_with("+json")
        || content_type.ends_with("+xml")
        || matches!(
            content_type,
            "application/javascript"
                | "application/json"
                | "application/manifest+json"
                | "application/xml"
                | "image/svg+xml"
        );
    if text && !content_type.contains("charset") {
        format!("{content_type}; charset=utf-8")
    } else {
        content_type.to_owned()
    }
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the last successful build in `config.out`.
pub fn read_build(config: &Config) -> Result<LocalBuild, DeployError> {
    let out = config.out.clone();
    let kiln_manifest = out.join(ManifestFormat::Kiln.file_name());
    if !config.manifest.formats.contains(&ManifestFormat::Kiln) {
        return Err(DeployError::Config {
            key: "manifest.formats".to_owned(),
            message: "kiln deploy reads kiln's manifest.json: add \"kiln\" to the formats"
                .to_owned(),
        });
    }
    let bytes = match std::fs::read(&kiln_manifest) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DeployError::NoBuild { out });
        }
        Err(source) => {
            return Err(DeployError::Io {
                path: kiln_manifest,
                source,
            });
        }
    };
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| DeployError::BadBuild {
        path: kiln_manifest.clone(),
        message: format!("not a kiln manifest: {e}"),
    })?;
    if manifest.schema != kiln_core::manifest::SCHEMA {
        return Err(DeployError::BadBuild {
            path: kiln_manifest,
            message: format!(
                "manifest schema {} is not {}: rebuild with this kiln",
                manifest.schema,
                kiln_core::manifest::SCHEMA
            ),
        });
    }
    if manifest.public_url != config.public_url {
        return Err(DeployError::BadBuild {
            path: kiln_manifest,
            message: format!(
                "built for public_url `{}`, but the config says `{}`: run `kiln build` again",
                manifest.public_url, config.public_url
            ),
        });
    }
    let rules = HeaderRules::new(&config.deploy);
    let mut files: BTreeMap<String, LocalFile> = BTreeMap::new();
    // `rule_path` is the path `[[deploy.headers]]` rules match: a sibling's file's.
    let mut add = |path: &str,
                   rule_path: &str,
                   class,
                   content_type: &str,
                   encoding: Option<&str>,
                   size,
                   integrity: Option<&String>| {
        let headers = Headers {
            content_type: served_content_type(content_type),
            cache_control: rules.cache_control(rule_path, class),
            content_encoding: encoding.map(str::to_owned),
        };
        files.insert(
            path.to_owned(),
            LocalFile {
                path: path.to_owned(),
                class,
                headers,
                size,
                sha256: None,
                integrity: integrity.cloned(),
            },
        );
    };
    for (logical, entry) in &manifest.assets {
        add(
            &entry.file,
            &entry.file,
            Class::Hashed,
            &entry.content_type,
            None,
            entry.size,
            entry.integrity.as_ref(),
        );
        if let Some(map) = &entry.map {
            add(
                &map.file,
                &map.file,
                Class::Hashed,
                "application/json",
                None,
                map.size,
                None,
            );
        }
        if config.deploy.precompressed {
            for (encoding, sibling) in &entry.encodings {
                add(
                    &sibling.file,
                    &entry.file,
                    Class::Hashed,
                    &entry.content_type,
                    Some(encoding),
                    sibling.size,
                    entry.integrity.as_ref(),
                );
            }
        }
        if manifest.unhashed && logical != &entry.file {
            add(
                logical,
                logical,
                Class::Unhashed,
                &entry.content_type,
                None,
                entry.size,
                entry.integrity.as_ref(),
            );
        }
    }
    let mut manifest_files = Vec::new();
    for format in ManifestFormat::ALL {
        if config.manifest.formats.contains(&format) {
            manifest_files.push(format.file_name());
        }
    }
    for name in &manifest_files {
        if files.contains_key(*name) {
            return Err(DeployError::BadBuild {
                path: out.join(name),
                message: "an asset has the name of a manifest".to_owned(),
            });
        }
    }
    // Every listed file must be there, whole: a missing or short one means the folder is not
    // the build the manifest describes (a build in progress, or files removed by hand).
    for file in files.values_mut() {
        if !is_safe_relative(&file.path) {
            return Err(DeployError::BadBuild {
                path: kiln_manifest.clone(),
                message: format!("`{}` is not a path inside the output folder", file.path),
            });
        }
        let path = out.join(&file.path);
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(DeployError::BadBuild {
                    path,
                    message: "listed in manifest.json but missing: run `kiln build` again"
                        .to_owned(),
                });
            }
            Err(source) => return Err(DeployError::Io { path, source }),
        };
        if meta.len() != file.size {
            return Err(DeployError::Changed { path });
        }
        if file.class == Class::Unhashed {
            file.sha256 = Some(sha256_hex(&std::fs::read(&path).map_err(|source| {
                DeployError::Io {
                    path: path.clone(),
                    source,
                }
            })?));
        }
    }
    let paths: BTreeMap<&str, &str> = manifest
        .assets
        .iter()
        .map(|(k, v)| (k.as_str(), v.file.as_str()))
        .collect();
    let mut list: Vec<LocalFile> = files.into_values().collect();
    for name in manifest_files {
        let path = out.join(name);
        let data = if name == ManifestFormat::Kiln.file_name() {
            bytes.clone()
        } else {
            match std::fs::read(&path) {
                Ok(b) => b,
                // A format switched on since the last build: that build did not write it.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(DeployError::Io { path, source }),
            }
        };
        check_agrees(name, &data, &paths).map_err(|message| DeployError::BadBuild {
            path: path.clone(),
            message,
        })?;
        list.push(LocalFile {
            path: name.to_owned(),
            class: Class::Manifest,
            headers: Headers {
                content_type: served_content_type("application/json"),
                cache_control: rules.cache_control(name, Class::Manifest),
                content_encoding: None,
            },
            size: data.len() as u64,
            sha256: Some(sha256_hex(&data)),
            integrity: None,
        });
    }
    Ok(LocalBuild {
        out,
        public_url: manifest.public_url,
        manifest_sha256: sha256_hex(&bytes),
        files: list,
    })
}

/// The framework manifests are written in the same build as kiln's: if they map names
/// differently, the folder is between two builds (or was edited), and deploying it would publish
/// a manifest naming files of another build.
fn check_agrees(name: &str, data: &[u8], paths: &BTreeMap<&str, &str>) -> Result<(), String> {
    let value: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| format!("not JSON: {e}"))?;
    let theirs = match name {
        "staticfiles.json" => value.get("paths"),
        "cache_manifest.json" => Some(&value),
        _ => None,
    };
    let Some(theirs) = theirs else {
        return Ok(());
    };
    let agrees = theirs.as_object().is_some_and(|m| {
        m.len() == paths.len()
            && m.iter()
                .all(|(k, v)| paths.get(k.as_str()).copied() == v.as_str())
    });
    if agrees {
        Ok(())
    } else {
        Err(
            "does not match manifest.json (the last build did not finish?): run `kiln build` again"
                .to_owned(),
        )
    }
}

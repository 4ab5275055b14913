//! Stage 3, link: resolve every reference, hash every asset, substitute final URLs.
//!
//! Owns content hashing and its invariants:
//! - an asset's *isolated* hash is BLAKE3 of its transformed bytes (placeholders included, which
//!   are deterministic) and of its source map;
//! - its *final* hash mixes in the final URL text of everything it references, so a file's name
//!   changes exactly when its bytes or anything it reaches changes;
//! - a cycle (`a.css` imports `b.css` imports `a.css`) is one strongly connected component,
//!   hashed together from its members' isolated hashes and the edges inside it, so cycles are legal
//!   and stable (no "max passes exceeded").
//!
//! Components are visited in dependency order (Tarjan's algorithm yields them that way), which is
//! sequential but only hashes 32-byte digests and short URLs; reading file bytes (isolated hashes)
//! and substitution run in parallel. Missing targets become diagnostics at the reference's
//! line:column. Does not touch the file system.

use std::collections::{BTreeSet, HashMap};

use crate::integrity::sri;
use aho_corasick::AhoCorasick;
use petgraph::graph::{DiGraph, NodeIndex};
use rayon::prelude::*;

use crate::config::{Config, ManifestFormat};
use crate::diagnostic::{Diagnostic, Severity};
use crate::model::{
    Asset, AssetKind, Columns, Encoded, Encoding, Kept, Linked, LinkedAsset, MapComment,
    OutputFile, RecordedLink, RefKind, RefSyntax, Reference, TransformOutput, Transformed,
    dependency_hash,
};
use crate::srcmap::{self, Edit};
use crate::url::{self, Specifier};

/// Where a reference points after resolution.
#[derive(Debug, Clone)]
enum Target {
    /// Leave the URL as written.
    Keep,
    /// Another asset (by index); write its fingerprinted name.
    Asset {
        index: usize,
        dir_prefix: String,
        suffix: String,
    },
}

/// Resolves, hashes and substitutes. `config.strict` decides whether a missing target is an error.
pub fn link(transformed: Transformed, config: &Config) -> Linked {
    let Transformed { assets, outputs } = transformed;
    let mut diagnostics: Vec<Diagnostic> = outputs
        .iter()
        .flat_map(|o| o.diagnostics.iter().cloned())
        .collect();

    let targets = resolve(&assets, &outputs, config, &mut diagnostics);
    sort_diagnostics(&mut diagnostics);
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Linked {
            assets: Vec::new(),
            diagnostics,
            records: Vec::new(),
        };
    }

    let isolated: Vec<blake3::Hash> = assets
        .par_iter()
        .zip(outputs.par_iter())
        .map(|(a, o)| isolated_hash(a, o))
        .collect();
    let names = final_names(&assets, &outputs, &targets, &isolated, config.hash_length);

    if let Some(d) = name_collision(&assets, &names) {
        diagnostics.push(d);
        return Linked {
            assets: Vec::new(),
            diagnostics,
            records: Vec::new(),
        };
    }

    // SRI is read by kiln's manifest and the file index only: a build with neither (Django's
    // manifest alone, no cache) does not hash every output with SHA-384.
    let integrity = config.manifest.formats.contains(&ManifestFormat::Kiln) || config.cache.enabled;
    // The file index records what link made of CSS and JS files (see `index::Unread`).
    let record = config.cache.enabled && !config.unhashed;
    let variant: Vec<bool> = outputs.iter().map(is_variant).collect();
    type Made = (LinkedAsset, Option<Box<RecordedLink>>);
    let results: Vec<Result<Made, Box<Diagnostic>>> = assets
        .par_iter()
        .zip(outputs.into_par_iter())
        .enumerate()
        .map(|(i, (asset, output))| {
            let facts = (record && matches!(asset.kind, AssetKind::Css | AssetKind::Js))
                .then(|| facts(&assets, &variant, &output, isolated[i]))
                .flatten();
            let linked = substitute(&assets, output, &targets[i], &names, i, integrity)?;
            let facts = facts.map(|f| {
                Box::new(RecordedLink {
                    name: linked.output.path.clone(),
                    ..f
                })
            });
            Ok((linked, facts))
        })
        .collect();
    let mut linked = Vec::with_capacity(results.len());
    let mut records = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok((a, record)) => {
                linked.push(a);
                records.push(record);
            }
            Err(d) => diagnostics.push(*d),
        }
    }
    sort_diagnostics(&mut diagnostics);
    if diagnostics.iter().any(Diagnostic::is_error) {
        linked.clear();
        records.clear();
    }
    Linked {
        assets: linked,
        diagnostics,
        records,
    }
}

/// What the file index records of a CSS or JS file transformed in this build without a
/// diagnostic (its name and siblings are filled in later).
fn facts(
    assets: &[Asset],
    variant: &[bool],
    output: &TransformOutput,
    isolated: blake3::Hash,
) -> Option<RecordedLink> {
    if output.kept.is_some() || !output.diagnostics.is_empty() {
        return None;
    }
    let dependencies = (output.dependencies.iter())
        .map(|d| {
            let hash = dependency_hash(assets, d, |i| !variant[i])?;
            Some((d.clone(), hash.to_hex().to_string()))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(RecordedLink {
        name: String::new(),
        isolated: isolated.to_hex().to_string(),
        references: output.references.clone(),
        dependencies,
        encodings: Vec::new(),
        map: None,
    })
}

fn is_variant(output: &TransformOutput) -> bool {
    (output.image.as_ref()).is_some_and(|i| i.variant_of.is_some())
}

/// The CSS and JS files kiln did not load (their outputs carry a [`RecordedLink`]) whose record
/// no longer holds: a file their transform read has changed, a reference of theirs has a
/// diagnostic, or the names of the files they reference changed and so would theirs. The
/// pipeline reads and transforms them (see [`crate::transform::materialise`]) and asks again.
pub fn stale(transformed: &Transformed, config: &Config) -> Vec<usize> {
    let Transformed { assets, outputs } = transformed;
    let stubs: Vec<usize> = (0..outputs.len())
        .filter(|&i| outputs[i].prior.is_some())
        .collect();
    if stubs.is_empty() {
        return Vec::new();
    }
    // Transformers never see image variants (they join the assets after the transform stage).
    let variant: Vec<bool> = outputs.iter().map(is_variant).collect();
    let content_of = |d: &str| dependency_hash(assets, d, |i| !variant[i]).map(|h| h.to_hex());
    let mut stale: BTreeSet<usize> = BTreeSet::new();
    for &i in &stubs {
        let prior = outputs[i].prior.as_deref().expect("a stub");
        if (prior.dependencies.iter())
            .any(|(d, hex)| content_of(d).is_none_or(|h| h.as_str() != hex))
        {
            stale.insert(i);
        }
    }
    let mut diagnostics = Vec::new();
    let targets = resolve(assets, outputs, config, &mut diagnostics);
    let warned: std::collections::HashSet<&str> =
        diagnostics.iter().map(|d| d.path.as_str()).collect();
    let isolated: Vec<blake3::Hash> = assets
        .par_iter()
        .zip(outputs.par_iter())
        .map(|(a, o)| isolated_hash(a, o))
        .collect();
    let names = final_names(assets, outputs, &targets, &isolated, config.hash_length);
    for &i in &stubs {
        let prior = outputs[i].prior.as_deref().expect("a stub");
        if names[i] != prior.name || warned.contains(assets[i].display_path().as_str()) {
            stale.insert(i);
        }
    }
    stale.into_iter().collect()
}

fn sort_diagnostics(d: &mut [Diagnostic]) {
    d.sort_by(|a, b| {
        (&a.path, a.line, a.column, &a.message).cmp(&(&b.path, b.line, b.column, &b.message))
    });
}

/// Resolves every reference of every asset; pushes a diagnostic for each one that cannot be.
fn resolve(
    assets: &[Asset],
    outputs: &[TransformOutput],
    config: &Config,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Vec<Target>> {
    let index: HashMap<&str, usize> = assets
        .iter()
        .enumerate()
        .map(|(i, a)| (a.logical.as_str(), i))
        .collect();
    let public_path = config.public_path();
    let severity = if config.strict {
        Severity::Error
    } else {
        Severity::Warning
    };
    let mut all = Vec::with_capacity(assets.len());
    for (asset, output) in assets.iter().zip(outputs) {
        let mut targets = Vec::with_capacity(output.references.len());
        for r in &output.references {
            let from = r.from.as_deref().unwrap_or(&asset.logical);
            let classified = match &r.target {
                // Already resolved by the transformer (an alias): write a URL relative to `from`.
                Some(logical) => Specifier::Internal {
                    logical: logical.clone(),
                    dir_prefix: "",
                    suffix: "",
                },
                None => url::classify(&r.specifier, from, public_path),
            };
            let severity = if r.optional {
                Severity::Warning
            } else {
                severity
            };
            let target = match classified {
                Specifier::External => Target::Keep,
                Specifier::Internal {
                    logical,
                    dir_prefix,
                    suffix,
                } => match index.get(logical.as_str()) {
                    Some(&i) => {
                        // Written relative to somewhere else (an alias resolved by the transformer,
                        // or a file inlined by bundling): make the URL relative to this asset.
                        let rebase = r.target.is_some()
                            || (r.from.is_some() && !r.specifier.trim_start().starts_with('/'));
                        Target::Asset {
                            index: i,
                            dir_prefix: if rebase {
                                url::relative_dir_prefix(&asset.logical, &logical)
                            } else {
                                dir_prefix.to_owned()
                            },
                            suffix: suffix.to_owned(),
                        }
                    }
                    None => {
                        let help = if severity == Severity::Error {
                            "fix the path, add the file, or set `strict = false` to leave unresolved references as they are"
                        } else {
                            "the reference is left as written"
                        };
                        diagnostics.push(
                            reference_diagnostic(
                                severity,
                                "missing-reference",
                                assets,
                                &index,
                                asset,
                                r,
                                from,
                            )
                            .with_message(format!(
                                "`{}` not found: no file `{logical}` in the source folder",
                                r.specifier
                            ))
                            .with_help(help),
                        );
                        Target::Keep
                    }
                },
                Specifier::OutsideRoot => {
                    diagnostics.push(
                        reference_diagnostic(
                            severity,
                            "outside-root",
                            assets,
                            &index,
                            asset,
                            r,
                            from,
                        )
                        .with_message(format!(
                            "`{}` points outside the source folder",
                            r.specifier
                        )),
                    );
                    Target::Keep
                }
            };
            targets.push(target);
        }
        all.push(targets);
    }
    all
}

fn reference_diagnostic(
    severity: Severity,
    code: &'static str,
    assets: &[Asset],
    index: &HashMap<&str, usize>,
    asset: &Asset,
    r: &Reference,
    from: &str,
) -> Diagnostic {
    // A reference inside an inlined @import points at that file, not the bundle.
    let file = index.get(from).map_or(asset, |&i| &assets[i]);
    let text = String::from_utf8_lossy(&file.bytes);
    Diagnostic::new(severity, code, file.display_path(), String::new())
        .at(r.line, r.column, Some(&text))
        .with_span(r.specifier.chars().count() as u32)
}

impl Diagnostic {
    fn with_message(mut self, message: String) -> Self {
        self.message = message;
        self
    }
}

/// Over the BLAKE3 of the output's bytes, so a file the index let kiln skip reading (whose hash
/// is known) hashes exactly as if it had been read. A file that passes through shares its
/// source's buffer, whose hash discovery already computed.
fn isolated_hash(asset: &Asset, output: &TransformOutput) -> blake3::Hash {
    if let Some(hash) =
        (output.prior.as_ref()).and_then(|p| blake3::Hash::from_hex(&p.isolated).ok())
    {
        return hash;
    }
    let kept = (output.kept.as_ref())
        .and_then(|k| Some((k.size, blake3::Hash::from_hex(&k.blake3).ok()?)));
    let passes_through = asset.known.is_some()
        || (output.bytes.as_ptr() == asset.bytes.as_ptr()
            && output.bytes.len() == asset.bytes.len());
    let (len, content) = match kept {
        Some(kept) => kept,
        None if passes_through => (asset.size(), asset.hash),
        None => (output.bytes.len() as u64, blake3::hash(&output.bytes)),
    };
    isolated(len, &content, output.source_map.as_deref())
}

/// The isolated hash of an output of `len` bytes with BLAKE3 `content` and source map `map`.
pub(crate) fn isolated(len: u64, content: &blake3::Hash, map: Option<&str>) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    h.update(b"kiln isolated v2\0");
    h.update(&len.to_le_bytes());
    h.update(content.as_bytes());
    if let Some(map) = map {
        h.update(b"\0map\0");
        h.update(map.as_bytes());
    }
    h.finalize()
}

/// The fingerprinted name of `logical` when its output, of isolated hash `isolated`, references
/// nothing (an image and its variants): what [`final_names`] gives such an asset.
pub(crate) fn leaf_name(logical: &str, isolated: &blake3::Hash, hash_len: usize) -> String {
    let mut h = blake3::Hasher::new();
    h.update(logical.as_bytes());
    h.update(b"\0");
    h.update(isolated.as_bytes());
    hashed_name(logical, &hex(h.finalize(), hash_len))
}

/// `dir/name.ext` -> `dir/name.<hash>.ext`; the hash is its own dot segment before the last
/// extension (what Django and WhiteNoise recognise as hashed).
pub fn hashed_name(logical: &str, hash: &str) -> String {
    let (dir, file) = logical
        .rsplit_once('/')
        .map_or(("", logical), |(d, f)| (d, f));
    let sep = if dir.is_empty() { "" } else { "/" };
    match file.rfind('.') {
        Some(dot) if dot > 0 => format!("{dir}{sep}{}.{hash}{}", &file[..dot], &file[dot..]),
        _ => format!("{dir}{sep}{file}.{hash}"),
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The final fingerprinted output path of every asset, hashing strongly connected components in
/// dependency order.
fn final_names(
    assets: &[Asset],
    outputs: &[TransformOutput],
    targets: &[Vec<Target>],
    isolated: &[blake3::Hash],
    hash_len: usize,
) -> Vec<String> {
    let mut graph = DiGraph::<(), ()>::with_capacity(assets.len(), 0);
    for _ in assets {
        graph.add_node(());
    }
    for (i, ts) in targets.iter().enumerate() {
        for t in ts {
            if let Target::Asset { index, .. } = t {
                graph.update_edge(NodeIndex::new(i), NodeIndex::new(*index), ());
            }
        }
    }
    let mut names: Vec<Option<String>> = vec![None; assets.len()];
    // Tarjan yields components in post-order: every component after all the ones it reaches.
    for mut component in petgraph::algo::tarjan_scc(&graph) {
        component.sort();
        let cyclic = component.len() > 1 || graph.contains_edge(component[0], component[0]);
        let in_component = |i: usize| cyclic && component.binary_search(&NodeIndex::new(i)).is_ok();
        let mut shared = blake3::Hasher::new();
        shared.update(b"kiln component v1\0");
        for node in &component {
            let i = node.index();
            let h = if cyclic {
                &mut shared
            } else {
                &mut blake3::Hasher::new()
            };
            h.update(assets[i].logical.as_bytes());
            h.update(b"\0");
            h.update(isolated[i].as_bytes());
            for (r, t) in outputs[i].references.iter().zip(&targets[i]) {
                h.update(r.placeholder.as_bytes());
                h.update(b"\0");
                match t {
                    Target::Asset {
                        index,
                        dir_prefix,
                        suffix,
                    } if in_component(*index) => {
                        // Inside the cycle: the edge itself, since the target's name is not known yet.
                        h.update(b"cycle\0");
                        h.update(assets[*index].logical.as_bytes());
                        h.update(b"\0");
                        h.update(dir_prefix.as_bytes());
                        h.update(b"\0");
                        h.update(suffix.as_bytes());
                    }
                    t => {
                        h.update(b"url\0");
                        h.update(url_for(r, t, &names).as_bytes());
                    }
                }
                h.update(b"\0");
            }
            if !cyclic {
                names[i] = Some(hashed_name(
                    &assets[i].logical,
                    &hex(h.finalize(), hash_len),
                ));
            }
        }
        if cyclic {
            let component_hash = shared.finalize();
            for node in &component {
                let i = node.index();
                let mut h = blake3::Hasher::new();
                h.update(component_hash.as_bytes());
                h.update(assets[i].logical.as_bytes());
                names[i] = Some(hashed_name(
                    &assets[i].logical,
                    &hex(h.finalize(), hash_len),
                ));
            }
        }
    }
    names
        .into_iter()
        .map(|n| n.expect("every asset is in one component"))
        .collect()
}

fn hex(hash: blake3::Hash, len: usize) -> String {
    let mut s = hash.to_hex().to_string();
    s.truncate(len);
    s
}

/// The URL text (not yet serialised for its syntax) that replaces reference `r`.
fn url_for(r: &Reference, target: &Target, names: &[Option<String>]) -> String {
    match target {
        Target::Keep => r.specifier.clone(),
        Target::Asset {
            index,
            dir_prefix,
            suffix,
        } => {
            let name = names[*index]
                .as_deref()
                .expect("targets are named before their referrers");
            url::rewrite(dir_prefix, file_name(name), suffix)
        }
    }
}

fn serialise(url: &str, syntax: RefSyntax) -> String {
    match syntax {
        RefSyntax::CssUrl => url::css_url_contents(url),
        RefSyntax::CssString => url::css_string(url),
        RefSyntax::JsString => url::js_string_contents(url),
        RefSyntax::Raw => url.to_owned(),
    }
}

fn name_collision(assets: &[Asset], names: &[String]) -> Option<Diagnostic> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        if let Some(&j) = seen.get(name.as_str()) {
            return Some(Diagnostic::error(
                "name-collision",
                assets[i].display_path(),
                format!(
                    "its fingerprinted name `{name}` is also the name of `{}`",
                    assets[j].logical
                ),
            ));
        }
        seen.insert(name, i);
    }
    None
}

/// Replaces the placeholders of one asset, moves its source map accordingly and appends the
/// `sourceMappingURL` comment.
fn substitute(
    assets: &[Asset],
    output: TransformOutput,
    targets: &[Target],
    names: &[String],
    i: usize,
    with_integrity: bool,
) -> Result<LinkedAsset, Box<Diagnostic>> {
    let asset = &assets[i];
    let name = names[i].clone();
    let mut replacements: HashMap<&str, String> = HashMap::new();
    let (mut references, mut imports, mut dynamic_imports) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for (r, t) in output.references.iter().zip(targets) {
        let url = match t {
            Target::Keep => r.specifier.clone(),
            Target::Asset {
                index,
                dir_prefix,
                suffix,
            } => {
                let logical = &assets[*index].logical;
                references.insert(logical.clone());
                match r.kind {
                    RefKind::Import => imports.insert(logical.clone()),
                    RefKind::DynamicImport => dynamic_imports.insert(logical.clone()),
                    _ => false,
                };
                url::rewrite(dir_prefix, file_name(&names[*index]), suffix)
            }
        };
        replacements.insert(r.placeholder.as_str(), serialise(&url, r.syntax));
    }

    if let Some(prior) = output.prior {
        return kept_linked(
            asset,
            name,
            *prior,
            output.kept,
            references,
            imports,
            dynamic_imports,
        );
    }
    let (substituted, edits) = replace_all(&output.bytes, &replacements, output.map_columns);
    let mut bytes = substituted;
    let map = match (output.source_map, output.map_comment) {
        (Some(map), Some(comment)) => {
            let map_path = format!("{name}.map");
            let map_bytes = srcmap::shift(map.as_bytes(), &edits, &name).map_err(|e| {
                Box::new(Diagnostic::error(
                    "internal",
                    asset.display_path(),
                    format!("cannot adjust its source map: {e}"),
                ))
            })?;
            let map_file = file_name(&map_path);
            let comment = match comment {
                MapComment::Css => format!("\n/*# sourceMappingURL={map_file} */"),
                MapComment::Js => format!("\n//# sourceMappingURL={map_file}"),
            };
            let mut with_comment = Vec::with_capacity(bytes.len() + comment.len());
            with_comment.extend_from_slice(&bytes);
            with_comment.extend_from_slice(comment.as_bytes());
            bytes = with_comment.into();
            Some(OutputFile {
                path: map_path,
                bytes: map_bytes.into(),
                copy_of: None,
                kept: None,
                encodings: Vec::new(),
            })
        }
        _ => None,
    };
    let integrity = match (&output.kept, &asset.known, output.integrity) {
        (Some(kept), _, _) => kept.integrity.clone(),
        (None, Some(k), _) => k.integrity.clone(),
        // Computed before caching for bytes link does not change (checked again here).
        (None, None, Some(sri)) if edits.is_empty() && map.is_none() => sri,
        (None, None, _) if with_integrity => sri(&bytes),
        (None, None, _) => String::new(),
    };
    Ok(LinkedAsset {
        logical: asset.logical.clone(),
        content_type: content_type(&asset.logical),
        source_size: asset.size(),
        output: OutputFile {
            path: name,
            bytes,
            copy_of: (asset.known.as_ref())
                .filter(|_| output.kept.is_none())
                .map(|k| (asset.path.clone(), k.stamp.size, k.blake3.clone())),
            kept: output.kept.as_ref().map(|k| k.size),
            encodings: Vec::new(),
        },
        map,
        references: references.into_iter().collect(),
        imports: imports.into_iter().collect(),
        dynamic_imports: dynamic_imports.into_iter().collect(),
        integrity,
        image: output.image,
    })
}

/// The linked asset of a CSS or JS file kiln did not load, from its record: its files are in the
/// output folder as the build that recorded them wrote them.
fn kept_linked(
    asset: &Asset,
    name: String,
    prior: RecordedLink,
    kept: Option<Kept>,
    references: BTreeSet<String>,
    imports: BTreeSet<String>,
    dynamic_imports: BTreeSet<String>,
) -> Result<LinkedAsset, Box<Diagnostic>> {
    let Some(kept) = kept.filter(|_| name == prior.name) else {
        // `stale` made the pipeline load every file whose record no longer holds.
        return Err(Box::new(Diagnostic::error(
            "internal",
            asset.display_path(),
            format!(
                "its recorded output `{}` is not this build's `{name}`",
                prior.name
            ),
        )));
    };
    let file = |path: String, size: u64, encodings: &[(Encoding, u64)]| OutputFile {
        encodings: (encodings.iter())
            .map(|&(encoding, size)| Encoded {
                encoding,
                path: format!("{path}{}", encoding.extension()),
                bytes: bytes::Bytes::new(),
                kept: Some(size),
            })
            .collect(),
        path,
        bytes: bytes::Bytes::new(),
        copy_of: None,
        kept: Some(size),
    };
    Ok(LinkedAsset {
        logical: asset.logical.clone(),
        content_type: content_type(&asset.logical),
        source_size: asset.size(),
        map: (prior.map.as_ref()).map(|(size, enc)| file(format!("{name}.map"), *size, enc)),
        output: file(name, kept.size, &prior.encodings),
        references: references.into_iter().collect(),
        imports: imports.into_iter().collect(),
        dynamic_imports: dynamic_imports.into_iter().collect(),
        integrity: kept.integrity,
        image: None,
    })
}

/// Replaces every occurrence of the keys of `replacements` in `bytes`, recording each edit's
/// position (line, column in `unit`) for the source map.
fn replace_all(
    bytes: &bytes::Bytes,
    replacements: &HashMap<&str, String>,
    unit: Columns,
) -> (bytes::Bytes, Vec<Edit>) {
    let width = |s: &str| -> u32 {
        match unit {
            Columns::Utf16 => s.encode_utf16().count() as u32,
            Columns::Bytes => s.len() as u32,
        }
    };
    if replacements.is_empty() {
        // Nothing to substitute (most files): share the bytes, copy nothing.
        return (bytes.clone(), Vec::new());
    }
    let patterns: Vec<&str> = replacements.keys().copied().collect();
    let ac = AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostLongest)
        // One automaton per asset for a handful of patterns: the cheapest to build wins (a DFA's
        // construction cost dominated the whole link stage in `benches/link.rs`).
        .kind(Some(aho_corasick::AhoCorasickKind::NoncontiguousNFA))
        .build(&patterns)
        .expect("placeholders are valid patterns");
    let mut out = Vec::with_capacity(bytes.len() + replacements.len() * 32);
    let mut edits = Vec::new();
    let (mut line, mut col, mut scanned) = (0u32, 0u32, 0usize);
    let mut last = 0;
    for m in ac.find_iter(bytes) {
        // Advance the line/column counter to the match start.
        for chunk in bytes[scanned..m.start()].utf8_chunks() {
            for c in chunk.valid().chars() {
                if c == '\n' {
                    line += 1;
                    col = 0;
                } else {
                    col += match unit {
                        Columns::Utf16 => c.len_utf16() as u32,
                        Columns::Bytes => c.len_utf8() as u32,
                    };
                }
            }
            col += chunk.invalid().len() as u32;
        }
        scanned = m.end();
        let pattern = patterns[m.pattern().as_usize()];
        let new = &replacements[pattern];
        out.extend_from_slice(&bytes[last..m.start()]);
        out.extend_from_slice(new.as_bytes());
        last = m.end();
        let old_len = width(pattern);
        edits.push(Edit {
            line,
            column: col,
            old_len,
            new_len: width(new),
        });
        col += old_len;
    }
    out.extend_from_slice(&bytes[last..]);
    (out.into(), edits)
}

fn content_type(logical: &str) -> String {
    mime_guess::from_path(logical)
        .first_or_octet_stream()
        .essence_str()
        .to_owned()
}

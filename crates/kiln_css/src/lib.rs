//! kiln_css: the CSS [`Transformer`], built on lightningcss.
//!
//! Owns: decoding (BOM, `@charset`, invalid UTF-8), parsing, minifying for browserslist targets,
//! optional `@import` inlining (`[css] bundle = true`) from the in-memory source set, source maps,
//! and turning lightningcss's dependency analysis (`url()` and `@import`) into kiln
//! [`Reference`]s. lightningcss already writes each reference as a quoted placeholder string, which
//! is exactly what kiln's link stage substitutes. Does no file I/O and never resolves URLs itself.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use kiln_core::config::Config;
use kiln_core::model::{Columns, MapComment};
use kiln_core::url::{Specifier, classify};
use kiln_core::{
    AssetKind, Diagnostic, RefKind, RefSyntax, Reference, TransformInput, TransformOutput,
    Transformer,
};
use lightningcss::bundler::{Bundler, ResolveResult, SourceProvider};
use lightningcss::dependencies::{Dependency, DependencyOptions};
use lightningcss::error::ErrorLocation;
use lightningcss::stylesheet::{MinifyOptions, ParserOptions, PrinterOptions, StyleSheet};
use lightningcss::targets::{Browsers, Targets};
use lightningcss::visitor::Visit as _;
use parcel_sourcemap::SourceMap;

mod custom_urls;
mod decode;

pub use decode::decode;

/// Why the CSS transformer could not be set up (a configuration problem).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CssError {
    /// The browserslist query in `targets` is invalid.
    #[error("invalid `targets`: {0}")]
    Targets(String),
}

/// Minifies CSS with lightningcss and reports its `url()` and `@import` references.
#[derive(Debug, Clone)]
pub struct CssTransformer {
    targets: Targets,
    minify: bool,
    source_maps: bool,
    bundle: bool,
    error_recovery: bool,
}

impl CssTransformer {
    /// Resolves the configured browserslist `targets` once for the whole build.
    pub fn new(config: &Config) -> Result<Self, CssError> {
        let browsers = Browsers::from_browserslist(config.browserslist())
            .map_err(|e| CssError::Targets(e.to_string()))?;
        Ok(CssTransformer {
            targets: browsers.map(Targets::from).unwrap_or_default(),
            minify: config.minify,
            source_maps: config.source_maps,
            bundle: config.css.bundle,
            error_recovery: config.css.error_recovery,
        })
    }
}

impl Transformer for CssTransformer {
    fn name(&self) -> &'static str {
        "css"
    }

    fn accepts(&self, kind: AssetKind) -> bool {
        kind == AssetKind::Css
    }

    fn transform(&self, input: &TransformInput<'_>) -> TransformOutput {
        let asset = input.asset;
        let path = asset.display_path();
        let mut out = TransformOutput::default();
        let text = decode(&asset.bytes, &path, &mut out.diagnostics);
        // Declared before the warnings and the sheet, which borrow from it.
        let provider = MemoryProvider {
            input,
            entry: &text,
            read: std::sync::Mutex::new(Vec::new()),
        };
        let warnings = Arc::new(RwLock::new(Vec::new()));
        let parser_options = || ParserOptions {
            filename: asset.logical.clone(),
            error_recovery: self.error_recovery,
            warnings: Some(warnings.clone()),
            ..ParserOptions::default()
        };
        let mut source_map = self.source_maps.then(|| SourceMap::new("/"));

        let parsed = if self.bundle {
            let mut bundler = Bundler::new(&provider, source_map.as_mut(), parser_options());
            bundler.bundle(Path::new(&asset.logical)).map_err(|e| {
                let message = e.kind.to_string();
                diagnostic_at(input, e.loc.as_ref(), &asset.logical, &text, message)
            })
        } else {
            if let Some(map) = source_map.as_mut() {
                let id = map.add_source(&asset.logical);
                let _ = map.set_source_content(id as usize, &text);
            }
            StyleSheet::parse(&text, parser_options()).map_err(|e| {
                diagnostic_at(
                    input,
                    e.loc.as_ref(),
                    &asset.logical,
                    &text,
                    e.kind.to_string(),
                )
            })
        };
        let mut sheet = match parsed {
            Ok(sheet) => sheet,
            Err(d) => {
                out.diagnostics.push(d);
                return out;
            }
        };
        let recovered = warnings.read().map(|w| w.clone()).unwrap_or_default();
        let first_recovered = recovered
            .first()
            .map(|w| (w.loc.clone(), w.kind.to_string()));
        for w in recovered {
            use lightningcss::error::ParserError;
            let (severity, code, help) = match &w.kind {
                // An unclosed block, string or comment swallows the rest of the file: a real
                // mistake, whatever a browser makes of it.
                ParserError::EndOfInput => (
                    kiln_core::Severity::Error,
                    "css-syntax",
                    "a `{`, `(`, string or comment is not closed, so everything after it is lost",
                ),
                ParserError::UnexpectedImportRule => (
                    kiln_core::Severity::Warning,
                    "css-import-ignored",
                    "browsers ignore an @import after other rules; it was left out of the output (move it to the top to apply it)",
                ),
                ParserError::AtRuleInvalid(_) => (
                    kiln_core::Severity::Warning,
                    "css-unknown-at-rule",
                    "browsers ignore at-rules they do not know; it was kept as written",
                ),
                _ => (
                    kiln_core::Severity::Warning,
                    kiln_core::diagnostic::CSS_RECOVERED,
                    "dropped from the output, as browsers drop it",
                ),
            };
            let mut d = diagnostic_at(
                input,
                w.loc.as_ref(),
                &asset.logical,
                &text,
                w.kind.to_string(),
            );
            d.severity = severity;
            d.code = code.into();
            d.help = Some(help.to_owned());
            out.diagnostics.push(d);
        }
        if out.failed() {
            return out;
        }

        // Relative url()s in custom properties, which lightningcss would refuse to analyse.
        let sources = sheet.sources.clone();
        // Whether a file is there decides the output: the cache must know (see `probe`).
        let probed = std::cell::RefCell::new(Vec::new());
        let exists = |logical: &str| {
            probed.borrow_mut().push(kiln_core::model::probe(logical));
            input.lookup(logical).is_some()
        };
        let mut custom =
            custom_urls::CustomPropertyUrls::new(&sources, input.config.public_path(), &exists);
        let _: Result<(), std::convert::Infallible> = sheet.visit(&mut custom);
        let kept = custom.kept;

        let fail = |loc: Option<&ErrorLocation>, message: String| {
            diagnostic_at(input, loc, &asset.logical, &text, message)
        };
        if self.minify {
            let options = MinifyOptions {
                targets: self.targets,
                ..MinifyOptions::default()
            };
            if let Err(e) = sheet.minify(options) {
                out.diagnostics
                    .push(fail(e.loc.as_ref(), e.kind.to_string()));
                return out;
            }
        }

        let printed = sheet.to_css(PrinterOptions {
            minify: self.minify,
            source_map: source_map.as_mut(),
            targets: self.targets,
            analyze_dependencies: Some(DependencyOptions {
                remove_imports: false,
            }),
            ..PrinterOptions::default()
        });
        let printed = match printed {
            Ok(p) => p,
            Err(e) => {
                out.diagnostics
                    .push(fail(e.loc.as_ref(), e.kind.to_string()));
                return out;
            }
        };
        // What kiln ships must parse. Recovery keeps what it cannot parse as raw tokens, and
        // printing those can lose an escape; some selectors print in a form that does not parse
        // (`&` at the top level after a pseudo-element). Both found by tests/fuzz.rs.
        if let Err(e) = StyleSheet::parse(&printed.code, ParserOptions::default()) {
            let d = match first_recovered {
                Some((loc, message)) => fail(
                    loc.as_ref(),
                    format!("{message}, and dropping it would leave CSS that does not parse"),
                )
                .with_help("fix the rule here"),
                None => {
                    let at = e.loc.as_ref().map_or(0, |l| l.column as usize);
                    let near: String = printed
                        .code
                        .lines()
                        .nth(e.loc.as_ref().map_or(0, |l| l.line as usize))
                        .unwrap_or_default()
                        .chars()
                        .skip(at.saturating_sub(30))
                        .take(60)
                        .collect();
                    Diagnostic::error(
                        "css-syntax",
                        &path,
                        format!(
                            "the minified CSS would not parse ({}) near `{near}`",
                            e.kind
                        ),
                    )
                    .with_help("lightningcss printed a rule of this file in a form that does not parse; rewrite that rule, or report it if the file is valid CSS")
                }
            };
            out.diagnostics.push(d);
            return out;
        }

        // lightningcss's placeholders are 32-bit std hashes, which may change with the toolchain;
        // swap them for kiln's own, derived from the file and the reference's ordinal, so names
        // depend only on output bytes. Same length, so lightningcss's source map stays valid.
        let mut ours: HashMap<String, (String, String)> = HashMap::new();
        let mut taken = std::collections::HashSet::new();
        for dep in printed.dependencies.unwrap_or_default() {
            let (url, placeholder, loc, syntax, kind) = match dep {
                Dependency::Url(d) => {
                    (d.url, d.placeholder, d.loc, RefSyntax::CssUrl, RefKind::Url)
                }
                Dependency::Import(d) => (
                    d.url,
                    d.placeholder,
                    d.loc,
                    RefSyntax::CssString,
                    RefKind::Import,
                ),
            };
            // A custom property's URL that could not be resolved goes back as it was written.
            let kept_as_written = url
                .strip_prefix(custom_urls::KEPT)
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| kept.get(n));
            let (url, optional, from) = match kept_as_written {
                Some((written, file)) => (
                    written.clone(),
                    true,
                    (*file != asset.logical).then(|| file.clone()),
                ),
                None => (
                    url,
                    false,
                    (loc.file_path != asset.logical).then_some(loc.file_path),
                ),
            };
            let key = format!("\"{placeholder}\"");
            if let Some((_, seen_url)) = ours.get(&key) {
                if *seen_url != url {
                    out.diagnostics.push(Diagnostic::error(
                        "internal",
                        &path,
                        format!("lightningcss gave `{seen_url}` and `{url}` the same placeholder; please report this"),
                    ));
                }
                continue;
            }
            let new = stable_placeholder(&asset.logical, ours.len(), placeholder.len(), &mut taken);
            ours.insert(key, (new.clone(), url.clone()));
            out.references.push(Reference {
                placeholder: new,
                specifier: url,
                syntax,
                kind,
                target: None,
                from,
                optional,
                line: loc.start.line,
                column: loc.start.column,
            });
        }
        let code = replace_placeholders(&printed.code, &ours);
        out.bytes = code.into_bytes().into();
        let mut dependencies = provider.read.lock().map(|r| r.clone()).unwrap_or_default();
        dependencies.extend(probed.take());
        dependencies.sort();
        dependencies.dedup();
        out.dependencies = dependencies;
        if let Some(mut map) = source_map {
            match map.to_json(None) {
                Ok(json) => {
                    out.source_map = Some(json);
                    out.map_comment = Some(MapComment::Css);
                    out.map_columns = Columns::Bytes;
                }
                Err(e) => out.diagnostics.push(Diagnostic::warning(
                    "source-map",
                    path,
                    format!("could not write a source map: {e}"),
                )),
            }
        }
        out
    }
}

/// A quoted placeholder of `len` characters (lightningcss's length) for reference `n` of `logical`,
/// distinct from the ones already `taken` in this file.
fn stable_placeholder(
    logical: &str,
    n: usize,
    len: usize,
    taken: &mut std::collections::HashSet<String>,
) -> String {
    use base64::Engine as _;
    for attempt in 0u32.. {
        let digest = blake3::hash(format!("{logical}\0{n}\0{attempt}").as_bytes());
        let mut text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_bytes());
        text.truncate(len.max(6));
        let quoted = format!("\"{text}\"");
        if taken.insert(quoted.clone()) {
            return quoted;
        }
    }
    unreachable!("an unbounded range always yields a fresh placeholder")
}

/// Replaces each quoted lightningcss placeholder (`"abc123"`) in `code` with kiln's, in one pass;
/// only whole quoted strings that are placeholders are touched.
fn replace_placeholders(code: &str, ours: &HashMap<String, (String, String)>) -> String {
    let mut out = String::with_capacity(code.len() + ours.len() * 16);
    let mut rest = code;
    while let Some(start) = rest.find('"') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let candidate = after
            .find('"')
            .filter(|&end| end <= 16)
            .map(|end| &rest[start..start + end + 2]);
        match candidate.and_then(|c| ours.get(c).map(|(new, _)| (c, new))) {
            Some((old, new)) => {
                out.push_str(new);
                rest = &rest[start + old.len()..];
            }
            None => {
                out.push('"');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A lightningcss error as a kiln diagnostic at its position (lightningcss lines are 0-based).
fn diagnostic_at(
    input: &TransformInput<'_>,
    loc: Option<&ErrorLocation>,
    logical: &str,
    text: &str,
    message: String,
) -> Diagnostic {
    // In a bundle the error may be in an imported file.
    let (path, source) = match loc
        .filter(|l| l.filename != logical)
        .and_then(|l| input.lookup(&l.filename))
    {
        Some(other) => (
            other.display_path(),
            String::from_utf8_lossy(&other.bytes).into_owned(),
        ),
        None => (input.asset.display_path(), text.to_owned()),
    };
    let d = Diagnostic::error("css-syntax", path, message);
    match loc {
        Some(l) => d.at(l.line + 1, l.column, Some(&source)),
        None => d,
    }
}

/// Serves `@import`ed files to the lightningcss bundler from the build's in-memory sources.
struct MemoryProvider<'a> {
    input: &'a TransformInput<'a>,
    /// The entry file's decoded text (it may have needed `@charset` decoding).
    entry: &'a str,
    /// The other files it served (the output depends on them, for the cache).
    read: std::sync::Mutex<Vec<String>>,
}

/// An `@import` the bundler could not follow.
#[derive(Debug)]
struct ImportError(String);

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ImportError {}

impl SourceProvider for MemoryProvider<'_> {
    type Error = ImportError;

    fn read<'a>(&'a self, file: &Path) -> Result<&'a str, Self::Error> {
        let logical = file.to_str().unwrap_or_default();
        if logical == self.input.asset.logical {
            return Ok(self.entry);
        }
        if let Ok(mut read) = self.read.lock() {
            read.push(logical.to_owned());
        }
        let asset = self
            .input
            .lookup(logical)
            .ok_or_else(|| ImportError(format!("`{logical}` is not in the source folder")))?;
        let text = std::str::from_utf8(&asset.bytes).map_err(|_| {
            ImportError(format!(
                "`{logical}` is not valid UTF-8 and cannot be bundled"
            ))
        })?;
        Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
    }

    fn resolve(
        &self,
        specifier: &str,
        originating_file: &Path,
    ) -> Result<ResolveResult, Self::Error> {
        let from = originating_file.to_str().unwrap_or_default();
        match classify(specifier, from, self.input.config.public_path()) {
            Specifier::External => Ok(ResolveResult::External(specifier.to_owned())),
            Specifier::Internal { logical, .. } if self.input.lookup(&logical).is_some() => {
                Ok(ResolveResult::File(PathBuf::from(logical)))
            }
            Specifier::Internal { logical, .. } => Err(ImportError(format!(
                "`{specifier}` not found: no file `{logical}` in the source folder"
            ))),
            Specifier::OutsideRoot => Err(ImportError(format!(
                "`{specifier}` points outside the source folder"
            ))),
        }
    }
}

//! kiln_js: the JavaScript [`Transformer`], built on swc.
//!
//! Owns: parsing (ES modules and classic scripts), finding `import`/`export ... from`/`import()`/
//! `new URL(..., import.meta.url)` references on the AST and swapping their specifiers for
//! placeholders, minifying with swc's compressor and mangler (the same defaults as swc's own CLI),
//! keeping license comments, and source maps chained through an input map (`sourceMappingURL`).
//! Does no file I/O and never resolves relative URLs itself: the link stage does.

mod refs;
mod scan;
mod targets;

use std::collections::BTreeMap;

use globset::{Glob, GlobSet, GlobSetBuilder};
use kiln_core::config::Config;
use kiln_core::model::MapComment;
use kiln_core::url::{Specifier, classify};
use kiln_core::{AssetKind, Diagnostic, TransformInput, TransformOutput, Transformer};
use swc_core::common::comments::{Comment, CommentKind, Comments, SingleThreadedComments};
use swc_core::common::source_map::SourceMapGenConfig;
use swc_core::common::{FileName, GLOBALS, Globals, Mark, SourceMap, Spanned, sync::Lrc};
use swc_core::ecma::ast::{EsVersion, Program};
use swc_core::ecma::codegen::{
    Emitter,
    text_writer::{JsWriter, omit_trailing_semi},
};
use swc_core::ecma::minifier::option::terser::TerserCompressorOptions;
use swc_core::ecma::minifier::option::{
    ExtraOptions, MangleOptions, MinifyOptions, TopLevelOptions,
};
use swc_core::ecma::parser::{EsSyntax, Parser, StringInput, Syntax, lexer::Lexer};
use swc_core::ecma::transforms::base::fixer::{fixer, paren_remover};
use swc_core::ecma::transforms::base::resolver;
use swc_core::ecma::visit::VisitMutWith;

/// Why the JS transformer could not be set up (a configuration problem).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsError {
    /// The browserslist query in `targets` is invalid.
    #[error("invalid `targets`: {0}")]
    Targets(String),
}

/// Minifies JavaScript with swc and reports its module references.
#[derive(Debug, Clone)]
pub struct JsTransformer {
    minify: bool,
    source_maps: bool,
    /// Newest syntax the minifier may write into a classic script / an ES module.
    ecma_script: EsVersion,
    ecma_module: EsVersion,
    modules: GlobSet,
    scripts: GlobSet,
    aliases: BTreeMap<String, String>,
    /// Whether unminified builds find references with [`scan`] before parsing (off only in the
    /// tests that hold the scan to the parser's answers).
    scan: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Module,
    Script,
    Auto,
}

impl JsTransformer {
    /// Resolves the browserslist `targets` to the ECMAScript edition the output may use.
    pub fn new(config: &Config) -> Result<Self, JsError> {
        let browsers: Vec<(String, String)> =
            browserslist::resolve(config.browserslist(), &browserslist::Opts::default())
                .map_err(|e| JsError::Targets(e.to_string()))?
                .into_iter()
                .map(|d| (d.name().to_owned(), d.version().to_owned()))
                .collect();
        // If no target browser is one the table knows, stay as conservative as terser and swc are
        // (ES5 for scripts); a browser that runs ES modules runs ES2015.
        let ecma_script = targets::es_version(&browsers, EsVersion::Es5);
        let ecma_module = targets::es_version(&browsers, EsVersion::Es2015).max(EsVersion::Es2015);
        Ok(JsTransformer {
            minify: config.minify,
            source_maps: config.source_maps,
            ecma_script,
            ecma_module,
            modules: globs(&config.js.modules),
            scripts: globs(&config.js.scripts),
            aliases: config.js.aliases.clone(),
            scan: true,
        })
    }

    fn mode(&self, logical: &str) -> Mode {
        let lower = logical.to_ascii_lowercase();
        if lower.ends_with(".mjs") || self.modules.is_match(logical) {
            Mode::Module
        } else if lower.ends_with(".cjs") || self.scripts.is_match(logical) {
            Mode::Script
        } else {
            Mode::Auto
        }
    }
}

fn globs(list: &[String]) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for g in list {
        // Validated in Config::validate.
        if let Ok(g) = Glob::new(g) {
            b.add(g);
        }
    }
    b.build().unwrap_or_else(|_| GlobSet::empty())
}

impl Transformer for JsTransformer {
    fn name(&self) -> &'static str {
        "js"
    }

    fn accepts(&self, kind: AssetKind) -> bool {
        kind == AssetKind::Js
    }

    fn transform(&self, input: &TransformInput<'_>) -> TransformOutput {
        GLOBALS.set(&Globals::new(), || self.run(input))
    }
}

impl JsTransformer {
    fn run(&self, input: &TransformInput<'_>) -> TransformOutput {
        let asset = input.asset;
        let path = asset.display_path();
        let mut out = TransformOutput::default();
        let text = kiln_core::text::decode_utf8(
            &asset.bytes,
            &path,
            "JavaScript must be UTF-8; re-save the file as UTF-8",
            &mut out.diagnostics,
        );
        if !self.minify && !could_reference(&text) {
            // Nothing to rewrite and nothing to minify: the bytes pass through untouched.
            out.bytes = asset.bytes.clone();
            return out;
        }
        if !self.minify
            && self.scan
            && let Some(found) = scan::scan(&text)
        {
            self.splice_scanned(input, &text, found, &mut out);
            return out;
        }
        let cm: Lrc<SourceMap> = Default::default();
        let fm = cm.new_source_file(FileName::Custom(asset.logical.clone()).into(), text.clone());
        let comments = SingleThreadedComments::default();
        let syntax = Syntax::Es(EsSyntax {
            import_attributes: true,
            explicit_resource_management: true,
            decorators: true,
            ..Default::default()
        });
        let lexer = Lexer::new(
            syntax,
            EsVersion::latest(),
            StringInput::from(&*fm),
            Some(&comments),
        );
        let mut parser = Parser::new_from(lexer);
        // swc drops a byte-order mark from its copy of the text (`decode_utf8` dropped one before):
        // positions in `text` are 3 bytes further on when it starts with a second.
        let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
        let start = i64::from(fm.start_pos.0);
        let offset = |pos: swc_core::common::BytePos| {
            let o = (i64::from(pos.0) - start + bom).clamp(0, text.len() as i64) as usize;
            (0..=o)
                .rev()
                .find(|&o| text.is_char_boundary(o))
                .unwrap_or(0)
        };
        let parsed = match self.mode(&asset.logical) {
            Mode::Module => parser.parse_module().map(Program::Module),
            Mode::Script => parser.parse_script().map(Program::Script),
            Mode::Auto => parser.parse_program(),
        };
        let errors: Vec<_> = parser
            .take_errors()
            .into_iter()
            .chain(parsed.as_ref().err().cloned())
            .collect();
        // A function declaration as the body of an `if` (Annex B): every engine runs it in a
        // classic script, swc refuses it. Shipped as written rather than failing the build.
        let annex_b = |e: &swc_core::ecma::parser::error::Error| {
            matches!(
                e.kind(),
                swc_core::ecma::parser::error::SyntaxError::DeclNotAllowed
            )
        };
        if parsed.is_ok()
            && !errors.is_empty()
            && errors.iter().all(annex_b)
            && matches!(&parsed, Ok(Program::Script(_)))
        {
            let e = &errors[0];
            let (line, column) = line_col(&text, offset(e.span().lo));
            let mut help = "browsers accept a function declared as the body of an `if` in a classic script (Annex B), but kiln's minifier does not; the file is shipped as written, not minified. Wrap the function in braces to have it minified".to_owned();
            if could_reference(&text) {
                help.push_str("; its imports and URLs are not rewritten either");
            }
            out.diagnostics.push(
                Diagnostic::warning("js-kept-as-written", &path, e.kind().msg().to_string())
                    .at(line, column, Some(&text))
                    .with_help(help),
            );
            out.bytes = asset.bytes.clone();
            return out;
        }
        for e in &errors {
            let (line, column) = line_col(&text, offset(e.span().lo));
            out.diagnostics.push(
                Diagnostic::error("js-syntax", &path, e.kind().msg().to_string()).at(
                    line,
                    column,
                    Some(&text),
                ),
            );
        }
        let Ok(mut program) = parsed else { return out };
        if !errors.is_empty() {
            return out;
        }

        let map_comment = last_map_comment(&comments, &offset);
        let input_map = self.input_source_map(
            input,
            map_comment.as_ref().and_then(|(_, url)| url.clone()),
            &mut out.diagnostics,
            &mut out.dependencies,
        );
        let mut collector = refs::RefCollector {
            path: &path,
            text: &text,
            offset: &offset,
            refs: self.refs(&asset.logical),
            diagnostics: Vec::new(),
            found: Vec::new(),
        };
        program.visit_mut_with(&mut collector);
        out.references = collector.refs.references;
        out.diagnostics.extend(collector.diagnostics);
        if !self.minify {
            // Not re-printed: splice the placeholders into the original text, which keeps its
            // formatting, comments and (rewritten) `sourceMappingURL` byte for byte; numbered in
            // source order, as the scan numbers them (the tree's order differs: a class's body
            // before its `extends`, a `do` loop's test before its body).
            let mut found = collector.found;
            found.sort_by_key(|f| f.lo);
            found.dedup_by_key(|f| f.lo);
            self.splice_found(input, &text, &found, map_comment.map(|(r, _)| r), &mut out);
            return out;
        }

        let is_module = program.is_module();
        let ecma = if is_module {
            self.ecma_module
        } else {
            self.ecma_script
        };
        if self.minify {
            program = minify(program, cm.clone(), &comments, is_module, ecma);
            retain_license_comments(&comments);
        } else {
            drop_source_map_comments(&comments);
        }

        let mut code = Vec::with_capacity(text.len() / 2);
        let mut mappings = Vec::new();
        {
            // Like swc's own printer: drop the `;` before every `}`, not just the last one.
            let writer = omit_trailing_semi(JsWriter::new(
                cm.clone(),
                "\n",
                &mut code,
                self.source_maps.then_some(&mut mappings),
            ));
            let mut emitter = Emitter {
                cfg: swc_core::ecma::codegen::Config::default()
                    .with_minify(self.minify)
                    .with_target(ecma)
                    .with_omit_last_semi(true),
                cm: cm.clone(),
                comments: Some(&comments),
                wr: writer,
            };
            if let Err(e) = emitter.emit_program(&program) {
                out.diagnostics.push(Diagnostic::error(
                    "internal",
                    &path,
                    format!("cannot print the minified code: {e}"),
                ));
                return out;
            }
        }
        out.bytes = code.into();
        if self.source_maps {
            let map = cm.build_source_map(&mappings, input_map, MapConfig);
            let mut json = Vec::new();
            match map.to_writer(&mut json) {
                Ok(()) => {
                    out.source_map = Some(String::from_utf8_lossy(&json).into_owned());
                    out.map_comment = Some(MapComment::Js);
                }
                Err(e) => out.diagnostics.push(Diagnostic::warning(
                    "source-map",
                    &path,
                    format!("could not write a source map: {e}"),
                )),
            }
        }
        out
    }

    /// The map named by the input's `sourceMappingURL` (a file of the build or a base64 `data:` URL),
    /// with its `sources` turned into logical paths.
    fn input_source_map(
        &self,
        input: &TransformInput<'_>,
        url: Option<String>,
        diagnostics: &mut Vec<Diagnostic>,
        dependencies: &mut Vec<String>,
    ) -> Option<swc_sourcemap::SourceMap> {
        if !self.source_maps {
            return None;
        }
        let url = url?;
        let logical = &input.asset.logical;
        let (bytes, map_logical) = if let Some(data) = url.strip_prefix("data:") {
            let (_, b64) = data.split_once(";base64,")?;
            (kiln_core::Bytes::from(base64_decode(b64)?), logical.clone())
        } else {
            match classify(&url, logical, input.config.public_path()) {
                Specifier::Internal {
                    logical: target, ..
                } => match input.lookup(&target) {
                    Some(map) => {
                        dependencies.push(target.clone());
                        (map.bytes.clone(), target)
                    }
                    None => {
                        // Depends on a file that is not there: never cached, so adding the map
                        // later is noticed.
                        dependencies.push(target.clone());
                        diagnostics.push(Diagnostic::warning(
                            "missing-source-map",
                            input.asset.display_path(),
                            format!("`sourceMappingURL={url}` names no file of the build; the output map starts from this file"),
                        ));
                        return None;
                    }
                },
                _ => return None,
            }
        };
        let mut map = match swc_sourcemap::SourceMap::from_slice(&bytes) {
            Ok(m) => m,
            Err(e) => {
                diagnostics.push(Diagnostic::warning(
                    "bad-source-map",
                    input.asset.display_path(),
                    format!("its source map `{url}` cannot be read ({e}); the output map starts from this file"),
                ));
                return None;
            }
        };
        let dir = map_logical.rsplit_once('/').map_or("", |(d, _)| d);
        for i in 0..map.get_source_count() {
            if let Some(source) = map.get_source(i).map(|s| s.to_string()) {
                map.set_source(i, logical_source(dir, &source).into());
            }
        }
        Some(map)
    }
}

impl JsTransformer {
    fn refs(&self, logical: &str) -> refs::Refs<'_> {
        refs::Refs {
            aliases: &self.aliases,
            salt: placeholder_salt(logical),
            references: Vec::new(),
            seen: BTreeMap::new(),
        }
    }

    /// The unminified output from what [`scan::scan`] found, as the parsed path makes it.
    fn splice_scanned(
        &self,
        input: &TransformInput<'_>,
        text: &str,
        found: scan::Scan,
        out: &mut TransformOutput,
    ) {
        let map_url = found
            .map_comment
            .and_then(|(_, (lo, hi))| map_url(&text[lo..hi]));
        // Called for its warnings and dependencies: the input's map stays in charge.
        self.input_source_map(input, map_url, &mut out.diagnostics, &mut out.dependencies);
        let map_comment = found.map_comment.map(|(range, _)| range);
        self.splice_found(input, text, &found.found, map_comment, out);
    }

    /// Numbers `found` (in source order) into placeholders and splices them into `text`.
    fn splice_found(
        &self,
        input: &TransformInput<'_>,
        text: &str,
        found: &[scan::Found],
        map_comment: Option<(usize, usize)>,
        out: &mut TransformOutput,
    ) {
        let mut refs = self.refs(&input.asset.logical);
        let mut position = Position::default();
        let mut edits = Vec::with_capacity(found.len());
        for f in found {
            let (line, column) = position.of(text, f.lo);
            if let Some(ph) = refs.add(&f.spec, line, column, f.kind) {
                edits.push(splice_edit(f.lo, f.hi, &ph, f.template));
            }
        }
        out.references = refs.references;
        splice(input, text, edits, map_comment, out);
    }
}

/// The 1-based line and column (in characters; lines end at `\n`, as the code frame's do) of
/// byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (u32, u32) {
    Position::default().of(text, offset)
}

/// 1-based line and column (in characters) of byte offsets met in increasing order.
#[derive(Default)]
struct Position {
    at: usize,
    line: u32,
    line_start: usize,
}

impl Position {
    fn of(&mut self, text: &str, offset: usize) -> (u32, u32) {
        for (i, _) in text[self.at..offset].match_indices('\n') {
            self.line += 1;
            self.line_start = self.at + i + 1;
        }
        self.at = offset;
        let column = text[self.line_start..offset].chars().count() as u32;
        (self.line + 1, column + 1)
    }
}

/// The edit that puts `placeholder` in place of the literal at `lo..hi` (quotes included): inside
/// a string's quotes, or instead of a whole template literal, as a double-quoted string.
fn splice_edit(lo: usize, hi: usize, placeholder: &str, template: bool) -> (usize, usize, String) {
    match template {
        true => (lo, hi, format!("\"{placeholder}\"")),
        false => (lo + 1, hi - 1, placeholder.to_owned()),
    }
}

/// Unminified output: the placeholders spliced into the original text, which keeps its
/// formatting, comments and (rewritten) `sourceMappingURL` byte for byte.
fn splice(
    input: &TransformInput<'_>,
    text: &str,
    mut edits: Vec<(usize, usize, String)>,
    map_comment: Option<(usize, usize)>,
    out: &mut TransformOutput,
) {
    let logical = &input.asset.logical;
    // Only a map that is part of the build is rewritten (a dangling one is left as written, as
    // the minified build does, instead of failing a strict build).
    let map_reference = map_comment
        .and_then(|range| source_map_reference(text, range, out.references.len(), logical))
        .filter(|(_, _, r)| {
            match classify(&r.specifier, logical, input.config.public_path()) {
                Specifier::Internal { logical, .. } => {
                    // Whether the map is there decides the output (see `probe`).
                    out.dependencies.push(kiln_core::model::probe(&logical));
                    input.lookup(&logical).is_some()
                }
                _ => false,
            }
        });
    if let Some((lo, hi, reference)) = map_reference {
        edits.push((lo, hi, reference.placeholder.clone()));
        out.references.push(reference);
    }
    edits.sort();
    let mut code = String::with_capacity(text.len() + edits.len() * 24);
    let mut last = 0;
    for (lo, hi, placeholder) in edits {
        code.push_str(&text[last..lo]);
        code.push_str(&placeholder);
        last = hi;
    }
    code.push_str(&text[last..]);
    out.bytes = code.into_bytes().into();
}

/// Whether `text` can contain a reference kiln rewrites: an `import` keyword (a static or dynamic
/// import, or `import.meta` of a `new URL(..., import.meta.url)`), an `export` keyword with a
/// `from` somewhere, or a `sourceMappingURL`. A cheap superset filter that lets unminified builds
/// skip parsing the many scripts (UMD bundles: `module.exports`, `importScripts`) that have none.
fn could_reference(text: &str) -> bool {
    text.contains("sourceMappingURL")
        || has_keyword(text, "import", b"{*\"'(./")
        || (has_keyword(text, "export", b"{*/") && text.contains("from"))
}

/// Whether `word` occurs as a keyword: not part of a longer name or a property (`exports`,
/// `x.import`), and followed by white space (JavaScript's, Unicode's included) or one of `next`.
fn has_keyword(text: &str, word: &str, next: &[u8]) -> bool {
    let name = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(|c| name(c) || c == '.')
            && after.is_some_and(|c| {
                scan::is_unicode_space(c) || (c.is_ascii() && next.contains(&(c as u8)))
            })
    })
}

/// The URL of the `sourceMappingURL` comment at byte range `comment` of `text` as a `Raw`
/// reference, with the URL's byte range, for unminified output that keeps the input's own map.
/// `data:` URLs are left alone.
fn source_map_reference(
    text: &str,
    (lo, hi): (usize, usize),
    ordinal: usize,
    logical: &str,
) -> Option<(usize, usize, kiln_core::Reference)> {
    let slice = &text[lo..hi];
    let start = lo + slice.find("sourceMappingURL=")? + "sourceMappingURL=".len();
    let url_len = text[start..hi]
        .find(|c: char| c.is_whitespace() || c == '*')
        .unwrap_or(hi - start);
    let url = &text[start..start + url_len];
    if url.is_empty() || url.starts_with("data:") {
        return None;
    }
    let line = text[..start].matches('\n').count() as u32 + 1;
    let column = text[..start]
        .rsplit('\n')
        .next()
        .unwrap_or("")
        .chars()
        .count() as u32
        + 1;
    let reference = kiln_core::Reference {
        placeholder: format!("__kiln_{}_{ordinal}_map__", placeholder_salt(logical)),
        specifier: url.to_owned(),
        syntax: kiln_core::RefSyntax::Raw,
        kind: kiln_core::RefKind::Url,
        target: None,
        from: None,
        optional: false,
        line,
        column,
    };
    Some((start, start + url_len, reference))
}

/// swc's minifier pipeline, as swc's own `minify` runs it.
fn minify(
    program: Program,
    cm: Lrc<SourceMap>,
    comments: &SingleThreadedComments,
    is_module: bool,
    ecma: EsVersion,
) -> Program {
    let unresolved_mark = Mark::new();
    let top_level_mark = Mark::new();
    let mut program = program;
    program.visit_mut_with(&mut resolver(unresolved_mark, top_level_mark, false));
    program.visit_mut_with(&mut paren_remover(Some(comments as &dyn Comments)));
    let mut compress = TerserCompressorOptions::default().into_config(cm.clone());
    compress.ecma = ecma;
    compress.module = is_module;
    // One compress pass, as terser and esbuild do (swc's default is two): the second pass cost
    // 15% of the JS minify time for 0.15% of gzip'd bytes on the benchmark corpus.
    compress.passes = 1;
    if is_module {
        compress.top_level = Some(TopLevelOptions { functions: true });
    }
    let options = MinifyOptions {
        compress: Some(compress),
        mangle: Some(MangleOptions {
            top_level: Some(is_module),
            ..Default::default()
        }),
        ..Default::default()
    };
    let extra = ExtraOptions {
        unresolved_mark,
        top_level_mark,
        mangle_name_cache: None,
    };
    let mut program =
        swc_core::ecma::minifier::optimize(program, cm, Some(comments), None, &options, &extra);
    program.visit_mut_with(&mut fixer(Some(comments as &dyn Comments)));
    program
}

fn is_license(c: &Comment) -> bool {
    c.kind == CommentKind::Block
        && (c.text.starts_with('!') || c.text.contains("@license") || c.text.contains("@preserve"))
}

fn is_source_map_comment(c: &Comment) -> bool {
    let t = c.text.trim_start();
    t.starts_with("# sourceMappingURL=") || t.starts_with("@ sourceMappingURL=")
}

/// Keeps only license comments (`/*!`, `@license`, `@preserve`), as users expect of a minifier.
fn retain_license_comments(comments: &SingleThreadedComments) {
    let (mut leading, mut trailing) = comments.borrow_all_mut();
    for list in leading.values_mut().chain(trailing.values_mut()) {
        list.retain(is_license);
    }
}

/// Unminified output keeps its comments but not the old `sourceMappingURL` (kiln writes its own).
fn drop_source_map_comments(comments: &SingleThreadedComments) {
    let (mut leading, mut trailing) = comments.borrow_all_mut();
    for list in leading.values_mut().chain(trailing.values_mut()) {
        list.retain(|c| !is_source_map_comment(c));
    }
}

/// The last `sourceMappingURL` comment of the file: its byte range in the text (from `base`) and
/// its URL.
fn last_map_comment(
    comments: &SingleThreadedComments,
    offset: &dyn Fn(swc_core::common::BytePos) -> usize,
) -> Option<((usize, usize), Option<String>)> {
    let (leading, trailing) = comments.borrow_all();
    leading
        .values()
        .chain(trailing.values())
        .flatten()
        .filter(|c| is_source_map_comment(c))
        .max_by_key(|c| c.span.lo)
        .map(|c| {
            let range = (offset(c.span.lo), offset(c.span.hi));
            (range, map_url(&c.text))
        })
}

/// The URL of a `sourceMappingURL` comment's text (its delimiters excluded).
fn map_url(comment: &str) -> Option<String> {
    let url = comment.trim().split_once('=').map_or("", |(_, u)| u).trim();
    (!url.is_empty()).then(|| url.to_owned())
}

/// A `sources` entry of a map at logical folder `dir`, as a logical path when it stays inside the
/// source folder; otherwise as written.
fn logical_source(dir: &str, source: &str) -> String {
    if source.contains("://") || source.starts_with('/') {
        return source.to_owned();
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for p in source.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return source.to_owned();
                }
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// A short digest of the logical path, so placeholders of different files never collide.
fn placeholder_salt(logical: &str) -> String {
    blake3::hash(logical.as_bytes()).to_hex()[..8].to_owned()
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
}

struct MapConfig;

impl SourceMapGenConfig for MapConfig {
    fn file_name_to_source(&self, f: &FileName) -> String {
        f.to_string()
    }

    fn inline_sources_content(&self, _: &FileName) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keywords_count_as_possible_references() {
        for text in [
            "import a from './a.js'",
            "import{a}from\"./a.js\"",
            "import'./a.css'",
            "x = import('./b.js')",
            "new URL('./c.png', import.meta.url)",
            "import/*c*/('./d.js')",
            "export * from './e.js'",
            "export{a}from'./f.js'",
            "//# sourceMappingURL=a.js.map",
            // JavaScript's white space includes no-break spaces and line separators.
            "x;\u{a0}import\u{a0}a from './g.js'",
            "x;\u{2028}import\u{feff}'./h.js'",
        ] {
            assert!(could_reference(text), "{text}");
        }
        for text in [
            "module.exports = { a: 1 }",
            "importScripts('w.js'); self.x = 1",
            "obj.import(x); export_ = 2",
            "export const a = 1; export default a",
            "var URL = window.URL",
        ] {
            assert!(!could_reference(text), "{text}");
        }
    }
    use kiln_core::{Asset, RefKind};

    fn run(logical: &str, code: &str, config: Config) -> TransformOutput {
        let asset = Asset::from_bytes(logical, code.as_bytes().to_vec());
        let all = [asset];
        let t = JsTransformer::new(&config).unwrap();
        t.transform(&TransformInput {
            asset: &all[0],
            all: &all,
            config: &config,
        })
    }

    #[test]
    fn annex_b_function_in_if_ships_as_written_in_a_script_and_fails_in_a_module() {
        let code = "if (window.x) function legacy() { return 1; }\nvar octal = 010;\n";
        let out = run("legacy.js", code, Config::default());
        assert!(!out.failed(), "{:?}", out.diagnostics);
        assert_eq!(&out.bytes[..], code.as_bytes(), "shipped as written");
        assert_eq!(out.diagnostics.len(), 1);
        assert_eq!(out.diagnostics[0].code, "js-kept-as-written");
        assert_eq!(
            (out.diagnostics[0].line, out.diagnostics[0].column),
            (1, 15)
        );
        // Engines refuse it in a module (strict mode): still an error.
        let out = run(
            "legacy.mjs",
            "export {};\nif (x) function f() {}\n",
            Config::default(),
        );
        assert!(out.failed());
        assert_eq!(out.diagnostics[0].code, "js-syntax");
    }

    #[track_caller]
    fn specifiers(code: &str) -> Vec<(String, RefKind)> {
        let out = run("a.js", code, Config::default());
        assert!(!out.failed(), "{:?}", out.diagnostics);
        out.references
            .into_iter()
            .map(|r| (r.specifier, r.kind))
            .collect()
    }

    #[test]
    fn finds_every_static_and_dynamic_module_reference() {
        let refs = specifiers(
            "import a from './a.js'; import * as b from './b.js'; import {c as d} from './c.js';\n\
             import './side.js'; export * from './all.js'; export {e} from './e.js';\n\
             const l = () => import('./lazy.js'); const t = import(`./tpl.js`);\n\
             const u = new URL('./img.png', import.meta.url); new Worker(new URL('./w.js', import.meta.url));\n\
             console.log(a, b, d, l, t, u);",
        );
        let names: Vec<&str> = refs.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "./a.js",
                "./b.js",
                "./c.js",
                "./side.js",
                "./all.js",
                "./e.js",
                "./lazy.js",
                "./tpl.js",
                "./img.png",
                "./w.js"
            ]
        );
        assert_eq!(refs[6].1, RefKind::DynamicImport);
        assert_eq!(refs[8].1, RefKind::Url);
    }

    #[test]
    fn bare_specifiers_are_references_only_when_aliased() {
        assert!(
            specifiers("import * as T from 'three'; import '@scope/pkg'; import '#x'; T;")
                .is_empty()
        );
        let mut config = Config::default();
        config
            .js
            .aliases
            .insert("three".into(), "vendor/three.module.js".into());
        let out = run(
            "a.js",
            "import * as T from 'three'; console.log(T);",
            config,
        );
        assert_eq!(
            out.references[0].target.as_deref(),
            Some("vendor/three.module.js")
        );
    }

    #[test]
    fn new_url_without_import_meta_url_is_not_a_reference() {
        assert!(specifiers("export const u = new URL('./x.png', location.href);").is_empty());
    }

    #[test]
    fn the_same_specifier_shares_one_placeholder() {
        let out = run(
            "a.js",
            "import {a} from './m.js'; export {b} from './m.js'; import('./m.js'); a;",
            Config::default(),
        );
        assert_eq!(out.references.len(), 1);
        assert_eq!(out.references[0].kind, RefKind::Import);
    }

    #[test]
    fn computed_specifiers_are_warned_about_at_their_position() {
        let out = run("a.js", "const n = 'x';\nimport(n);\n", Config::default());
        assert!(out.references.is_empty());
        let w = &out.diagnostics[0];
        assert_eq!(
            (w.code.as_ref(), w.line, w.column),
            ("computed-specifier", 2, 8)
        );
    }

    #[test]
    fn modules_mangle_top_level_names_and_scripts_do_not() {
        let code = "function helperWithALongName(x) { return x * 2 }\nwindow.out = helperWithALongName(window.n);\n";
        let script =
            String::from_utf8(run("a.js", code, Config::default()).bytes.to_vec()).unwrap();
        assert!(
            script.contains("helperWithALongName"),
            "a script's globals are public: {script}"
        );
        let module =
            String::from_utf8(run("a.mjs", code, Config::default()).bytes.to_vec()).unwrap();
        assert!(!module.contains("helperWithALongName"), "{module}");
    }

    #[test]
    fn licence_comments_are_kept_and_others_dropped() {
        let code =
            "/*! keep me */\n/** @license MIT */\n// drop me\n/* drop me too */\nwindow.x = 1;\n";
        let out = String::from_utf8(run("a.js", code, Config::default()).bytes.to_vec()).unwrap();
        assert!(
            out.contains("keep me") && out.contains("@license MIT"),
            "{out}"
        );
        assert!(!out.contains("drop me"), "{out}");
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let out = run("a.js", "let x = ;\n", Config::default());
        assert!(out.failed());
        assert_eq!((out.diagnostics[0].line, out.diagnostics[0].column), (1, 9));
    }

    #[test]
    fn targets_bound_the_syntax_the_minifier_may_write() {
        let mut old = Config::default();
        old.targets = Some(kiln_core::config::Targets::One("ie 11".into()));
        let t = JsTransformer::new(&old).unwrap();
        assert_eq!(t.ecma_script, EsVersion::Es5);
        let mut new = Config::default();
        new.targets = Some(kiln_core::config::Targets::One("chrome 120".into()));
        assert_eq!(
            JsTransformer::new(&new).unwrap().ecma_script,
            EsVersion::Es2022
        );
    }
}

#[cfg(test)]
mod unminified {
    use super::*;
    use kiln_core::{Asset, RefSyntax};

    /// Transforms `js/a.js` unminified; `with_map` adds `js/a.js.map` to the build.
    fn run_with(code: &str, with_map: bool) -> TransformOutput {
        let mut config = Config::default();
        config.minify = false;
        let mut all = vec![Asset::from_bytes("js/a.js", code.as_bytes().to_vec())];
        if with_map {
            all.push(Asset::from_bytes(
                "js/a.js.map",
                &br#"{"version":3,"sources":[],"names":[],"mappings":""}"#[..],
            ));
        }
        JsTransformer::new(&config)
            .unwrap()
            .transform(&TransformInput {
                asset: &all[0],
                all: &all,
                config: &config,
            })
    }

    fn run(code: &str) -> TransformOutput {
        run_with(code, false)
    }

    #[test]
    fn only_the_specifiers_change_and_everything_else_is_kept_byte_for_byte() {
        let code = "// keep me\nimport { a } from \"./a.js\";\nconst lazy = () => import(`./b.js`);\n//# sourceMappingURL=a.js.map\n";
        let out = run_with(code, true);
        let text = String::from_utf8(out.bytes.to_vec()).unwrap();
        let [a, b, map] = &out.references[..] else {
            panic!("{:?}", out.references)
        };
        let expected = code
            .replace("./a.js\"", &format!("{}\"", a.placeholder))
            .replace("`./b.js`", &format!("\"{}\"", b.placeholder))
            .replace("a.js.map", &map.placeholder);
        assert_eq!(text, expected);
        assert_eq!(
            (map.specifier.as_str(), map.syntax, map.line, map.column),
            ("a.js.map", RefSyntax::Raw, 4, 22)
        );
        assert!(
            out.source_map.is_none(),
            "the input's own map stays in charge"
        );
        // A map that is not part of the build is left as written (no strict-mode failure).
        let out = run_with(code, false);
        assert_eq!(out.references.len(), 2);
        assert!(
            String::from_utf8(out.bytes.to_vec())
                .unwrap()
                .ends_with("sourceMappingURL=a.js.map\n")
        );
    }

    #[test]
    fn files_that_cannot_reference_anything_pass_through_unparsed() {
        let code = "(function () { window.x = 1 /* not even valid: */ ) })";
        let out = run(code);
        assert!(!out.failed(), "not parsed, so no syntax error");
        assert_eq!(&out.bytes[..], code.as_bytes());
    }
}

/// The scan ([`scan::scan`]) held to the tree walk: wherever it answers, the unminified output,
/// references, diagnostics and dependencies are the parser's, byte for byte.
#[cfg(test)]
mod scanned {
    use super::*;
    use kiln_core::Asset;
    use proptest::prelude::*;

    /// Transforms `js/a.js` (`a.mjs` as a module) unminified with the scan on and off, with a
    /// `js/a.js.map` in the build; returns both outputs and whether the scan answered.
    fn both(logical: &str, code: &str) -> (TransformOutput, TransformOutput, bool) {
        let mut config = Config::default();
        config.minify = false;
        let all = vec![
            Asset::from_bytes(logical, code.as_bytes().to_vec()),
            Asset::from_bytes(
                "js/a.js.map",
                &br#"{"version":3,"sources":[],"names":[],"mappings":""}"#[..],
            ),
        ];
        let input = TransformInput {
            asset: &all[0],
            all: &all,
            config: &config,
        };
        let mut t = JsTransformer::new(&config).unwrap();
        let scanned = t.transform(&input);
        t.scan = false;
        let parsed = t.transform(&input);
        (scanned, parsed, scan::scan(code).is_some())
    }

    /// Whether the scan answered for `code`, panicking where its answer is not the parser's
    /// (when the parser accepts the code).
    #[track_caller]
    fn agrees(logical: &str, code: &str) -> bool {
        compared(logical, code).unwrap_or_else(|| scan::scan(code).is_some())
    }

    /// As [`agrees`]; `None` when the parser rejects the code (nothing to compare with).
    #[track_caller]
    fn compared(logical: &str, code: &str) -> Option<bool> {
        let (scanned, parsed, answered) = both(logical, code);
        if parsed.failed() {
            return None;
        }
        let text = |o: &TransformOutput| String::from_utf8_lossy(&o.bytes).into_owned();
        assert_eq!(text(&scanned), text(&parsed), "output of {code:?}");
        assert_eq!(
            scanned.references, parsed.references,
            "references of {code:?}"
        );
        let codes = |o: &TransformOutput| {
            o.diagnostics
                .iter()
                .map(|d| (d.code.to_string(), d.line, d.column))
                .collect::<Vec<_>>()
        };
        assert_eq!(codes(&scanned), codes(&parsed), "diagnostics of {code:?}");
        assert_eq!(
            scanned.dependencies, parsed.dependencies,
            "dependencies of {code:?}"
        );
        Some(answered)
    }

    #[test]
    fn the_scan_answers_for_ordinary_modules_as_the_parser_does() {
        for code in [
            "import a from './a.js'; import * as b from \"./b.js\"; import {c as d, 'e-f' as g} from './c.js';\nimport './side.js'; import x, {y} from './xy.js'; import from from './from.js';\nexport * from './all.js'; export * as ns from \"./ns.js\"; export {e} from './e.js'; export { a, b as bb };\nexport const z = 1; export default function () {}\n",
            "const l = () => import('./lazy.js'); const t = import(`./tpl.js`);\nconst u = new URL('./img.png', import.meta.url); new Worker(new URL(\"./w.js\", import.meta.url), { type: 'module' });\nimport('./m.js', { with: { type: 'json' } });\n",
            "\t\timport a from './tabbed.js';\r\n\tconst ñ = 'ü'; /* ☃ */ const\u{a0}v = import(\"./after-unicode.js\");\u{2028}import('./after-ls.js');\n",
            "const re = /import('.\\/no.js')[/'\"`]/g; const q = a / b / c; if (x) /re'/.test(y);\nconst d = (a + b) / 2; const s = \"import('./no.js') // not a comment\";\n// import './commented.js'\n/* export * from './commented.js' */\nconst tq = `import('./no.js')`; const tp = `a ${b + `n ${import('./nested.js')}`} c`;\n",
            "const o = { import: 1, export: 2 }; obj.import('./not.js'); x = a++ / 2; i--;\nfor (const v of list) { /x/.test(v); }\nfunction f() { return /re\\/[/]/g; }\nconst c = a.b / c[d] / 4; const z = (x) => x / 2; if (a) { b(); } /re/.exec(c);\nclass C { #p = 1; get p() { return this.#p / 2; } static { this.q = {} } }\nconst arr = [1, 2] / 3; const half = (1) / (2); let v = typeof /x/ === 'object';\nwhile (i--) /a/.test(s);\nconst obj = { a: { b: 1 } / 2 };\n",
            "import('./cond.js').then((m) => m.default); const w = await import('./await.js');\n//# sourceMappingURL=a.js.map\n",
            "#!/usr/bin/env node\nimport './shebang.js';\n/*# sourceMappingURL=a.js.map */\n",
            "const ty = `${\"`\"}`; import('./after-template.js'); const tz = \"`\";\n",
            "import './missing-map.js';\n//# sourceMappingURL=gone.js.map\n",
        ] {
            assert!(agrees("js/a.js", code), "the scan gave up on {code:?}");
        }
    }

    /// The review's cases: each was once answered differently from the parser.
    #[test]
    fn what_a_review_found_now_agrees_or_is_left_to_the_parser() {
        for (logical, code, answers) in [
            // Columns count characters, in both paths (swc's own count UTF-16 units).
            ("js/a.js", "console.log('🚀'); import('./a.js');\n", true),
            // Lines end at `\n` in both paths, as the code frame's do.
            ("js/a.js", "import './a.js';\rimport './b.js';\n", true),
            (
                "js/a.js",
                "import './a.js';\r\r\nimport './b.js';\r\r\n",
                true,
            ),
            // U+200B is white space to swc.
            ("js/a.js", "\u{200b}import './a.js';\n", true),
            ("js/a.js", "x;\u{200b}import('./a.js');\n", true),
            // A statement ends after an import's specifier: a `/` there opens a regex.
            (
                "js/a.js",
                "import './a.js'\n/^\\/\\//.test(u) && import('./b.js')\n",
                true,
            ),
            // ... and after a name on the previous line, only the grammar knows.
            (
                "js/a.js",
                "let x\n/^\\/\\//.test(u) && import('./b.js')\n",
                false,
            ),
            (
                "js/a.mjs",
                "for await (const x of y) /a'/.test(x); import('./b.js');\n",
                true,
            ),
            // Source order, where the tree visits otherwise.
            (
                "js/a.js",
                "class A extends f(import('./a.js')) { m() { import('./b.js'); } }\n",
                true,
            ),
            (
                "js/a.js",
                "do { import('./a.js'); } while (import('./b.js') && false);\n",
                true,
            ),
            (
                "js/a.js",
                "class A { @d(import('./a.js')) x = import('./b.js'); }\n",
                true,
            ),
            // Read twice, recorded once.
            ("js/a.mjs", "export * as import from './a.js';\n", true),
            // `-->` after a line break is a comment in a script.
            ("js/a.js", "x = 1\n/* c */ --> import('./a.js')\n", false),
            // A class field named `import`.
            (
                "js/a.js",
                "class A {\n  import\n  from\n  './x.js'\n}\n",
                false,
            ),
            // A second byte-order mark (swc drops one, `decode_utf8` the other).
            ("js/a.js", "\u{feff}\u{feff}import('./a.js');\n", true),
        ] {
            assert_eq!(agrees(logical, code), answers, "{code:?}");
        }
    }

    #[test]
    fn the_scan_leaves_to_the_parser_what_it_would_have_to_guess() {
        for code in [
            // Computed specifiers: the parser reports them.
            "const n = 'x';\nimport(n);\n",
            "const u = new URL(base + 'x.png', import.meta.url);\n",
            "console.log(import.meta.url);\n",
            // Escapes in a specifier, a template with a substitution.
            "import './e\\u0073.js';\n",
            "import(`./${name}.js`);\n",
            // What cannot be told apart without the grammar, or is broken.
            "x = 1 /* left open\n",
            "const s = 'left open\n",
            "if (a) {\n",
            "<!-- html comment\nimport('./a.js');\n",
            // A division read as a regular expression runs into the line end.
            "const of = 4; import('./a.js'); x = of / 2;\n",
            // A division on a new line (a regular expression after automatic semicolon
            // insertion when the line before was complete).
            "x = y\n/re/g.exec(z);\n",
        ] {
            assert!(!agrees("js/a.js", code), "the scan answered for {code:?}");
        }
    }

    /// Statements mixing every kind of token the scan must skip with references of every form;
    /// `{n}` becomes the fragment's index, so declarations never clash.
    const FRAGMENTS: &[&str] = &[
        "import a{n} from './a.js';",
        "import {b as c{n}, d as d{n}} from \"./b.js\";",
        "import * as ns{n} from './ns.js';",
        "import './side.js';",
        "export * from './all.js';",
        "export * as all{n} from \"./all2.js\";",
        "export {e as e{n}} from './e.js';",
        "export const k{n} = 1;",
        "const l{n} = () => import('./lazy.js');",
        "const t{n} = import(`./tpl.js`);",
        "const u{n} = new URL('./img.png', import.meta.url);",
        "new Worker(new URL(\"./w.js\", import.meta.url), { type: 'module' });",
        "const r{n} = /import('.\\/x.js')/g;",
        "const q{n} = /[\"'`/]/.test(s);",
        "const m{n} = a / b / c;",
        "if (x) /re'/.test(y);",
        "const d{n} = (a + b) / 2;",
        "const s{n} = \"import('./no.js') // not a comment\";",
        "const s{n} = 'export * from \\'./no.js\\'';",
        "// import './commented.js'\n",
        "/* export * from './commented.js' */",
        "const tp{n} = `a ${b + `nested ${import('./nested.js')}`} c`;",
        "const tq{n} = `import('./in-template.js')`;",
        "const o{n} = { import: 1, export: { x: 2 } };",
        "obj.import('./not.js');",
        "x = a++ / 2;",
        "for (const v of list) { /x/.test(v); }",
        "function f{n}() { return /re\\/[/]/g; }",
        "class C{n} { #p = 1; get p() { return this.#p / 2; } }",
        "const z{n} = (x) => x / 2;",
        "if (a) { b(); } /re/.exec(c);",
        "const arr{n} = [1, 2] / 3;",
        "let v{n} = typeof /x/ === 'object';",
        "while (i--) /a/.test(s);",
        "const w{n} = await import('./await.js');",
        "const lic{n} = 1; /*! keep */",
        "import(\"./cond.js\").then((m) => m.default);",
        "const ñ{n} = 'ü'; /* ☃ */",
        "//# sourceMappingURL=a.js.map\n",
        "import(name{n});",
        "label{n}: { break label{n}; }",
        "const obj{n} = { a: { b: 1 } / 2 };",
        "x = y\n/re/g.exec(z);",
        "const ty{n} = `${\"`\"}`;",
        "const bq{n} = \"`\";",
        "console.log('🚀 ☃');",
        "do { import('./do.js'); } while (import('./while.js') && 0);",
        "let v{n}",
        "x = a\n/ b;",
    ];

    const SEPARATORS: &[&str] = &[
        "\n", " ", "\t", "\r\n", "\u{a0}", "\n\t\t", "", "\r", "\u{200b}", "\u{2028}",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        #[test]
        fn wherever_the_scan_answers_it_agrees_with_the_parser(
            parts in prop::collection::vec((0..FRAGMENTS.len(), 0..SEPARATORS.len()), 1..12),
            module in any::<bool>(),
        ) {
            let code: String = parts
                .iter()
                .enumerate()
                .map(|(n, &(f, s))| FRAGMENTS[f].replace("{n}", &n.to_string()) + SEPARATORS[s])
                .collect();
            agrees(if module { "js/a.mjs" } else { "js/a.js" }, &code);
        }
    }

    /// Holds the scan to the parser on every JavaScript file under `KILN_SCAN_CORPUS`:
    /// `KILN_SCAN_CORPUS=DIR cargo test -p kiln_js --release -- --ignored scan_agrees`.
    #[test]
    #[ignore = "needs a corpus of JavaScript: KILN_SCAN_CORPUS=DIR"]
    fn scan_agrees_with_the_parser_on_a_corpus() {
        let root = std::path::PathBuf::from(std::env::var("KILN_SCAN_CORPUS").unwrap());
        let mut stack = vec![root.clone()];
        let (mut files, mut answered, mut rejected) = (0, 0, 0);
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let name = path.to_string_lossy().into_owned();
                if !(name.ends_with(".js") || name.ends_with(".mjs")) {
                    continue;
                }
                let Ok(code) = std::fs::read_to_string(&path) else {
                    continue;
                };
                if !could_reference(&code) {
                    continue;
                }
                files += 1;
                let logical = path.strip_prefix(&root).unwrap().to_string_lossy();
                let logical = if logical.ends_with(".mjs") {
                    "js/a.mjs"
                } else {
                    "js/a.js"
                };
                match compared(logical, &code) {
                    Some(true) => answered += 1,
                    Some(false) => eprintln!("parsed: {name}"),
                    None => {
                        rejected += 1;
                        eprintln!("rejected by the parser: {name}");
                    }
                }
            }
        }
        eprintln!(
            "{files} files that could reference anything: the scan answered {answered} as the parser \
             did, left {} to the parser; the parser rejected {rejected}",
            files - answered - rejected
        );
        assert!(files > 0);
    }
}

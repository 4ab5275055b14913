//! kiln_js: the JavaScript [`Transformer`], built on swc.
//!
//! Owns: parsing (ES modules and classic scripts), finding `import`/`export ... from`/`import()`/
//! `new URL(..., import.meta.url)` references on the AST and swapping their specifiers for
//! placeholders, minifying with swc's compressor and mangler (the same defaults as swc's own CLI),
//! keeping license comments, and source maps chained through an input map (`sourceMappingURL`).
//! Does no file I/O and never resolves relative URLs itself: the link stage does.

mod refs;
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
            let loc = cm.lookup_char_pos(e.span().lo);
            let mut help = "browsers accept a function declared as the body of an `if` in a classic script (Annex B), but kiln's minifier does not; the file is shipped as written, not minified. Wrap the function in braces to have it minified".to_owned();
            if could_reference(&text) {
                help.push_str("; its imports and URLs are not rewritten either");
            }
            out.diagnostics.push(
                Diagnostic::warning("js-kept-as-written", &path, e.kind().msg().to_string())
                    .at(loc.line as u32, loc.col_display as u32 + 1, Some(&text))
                    .with_help(help),
            );
            out.bytes = asset.bytes.clone();
            return out;
        }
        for e in &errors {
            let loc = cm.lookup_char_pos(e.span().lo);
            out.diagnostics.push(
                Diagnostic::error("js-syntax", &path, e.kind().msg().to_string()).at(
                    loc.line as u32,
                    loc.col_display as u32 + 1,
                    Some(&text),
                ),
            );
        }
        let Ok(mut program) = parsed else { return out };
        if !errors.is_empty() {
            return out;
        }

        let input_map = self.input_source_map(
            input,
            &comments,
            &mut out.diagnostics,
            &mut out.dependencies,
        );
        let salt = placeholder_salt(&asset.logical);
        let mut collector = refs::RefCollector {
            cm: cm.clone(),
            path: &path,
            text: &text,
            aliases: &self.aliases,
            salt,
            references: Vec::new(),
            diagnostics: Vec::new(),
            seen: BTreeMap::new(),
            spans: Vec::new(),
        };
        program.visit_mut_with(&mut collector);
        out.references = collector.references;
        out.diagnostics.extend(collector.diagnostics);
        if !self.minify {
            // Not re-printed: splice the placeholders into the original text, which keeps its
            // formatting, comments and (rewritten) `sourceMappingURL` byte for byte.
            let base = fm.start_pos.0;
            let mut edits: Vec<(usize, usize, String)> = collector
                .spans
                .iter()
                .map(|(span, ph, template)| {
                    let (lo, hi) = ((span.lo.0 - base) as usize, (span.hi.0 - base) as usize);
                    match template {
                        true => (lo, hi, format!("\"{ph}\"")),
                        false => (lo + 1, hi - 1, ph.clone()),
                    }
                })
                .collect();
            // Only a map that is part of the build is rewritten (a dangling one is left as
            // written, as the minified build does, instead of failing a strict build).
            let map_reference =
                source_map_reference(&text, &comments, base, out.references.len(), &asset.logical)
                    .filter(|(_, _, r)| {
                        match classify(&r.specifier, &asset.logical, input.config.public_path()) {
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
        comments: &SingleThreadedComments,
        diagnostics: &mut Vec<Diagnostic>,
        dependencies: &mut Vec<String>,
    ) -> Option<swc_sourcemap::SourceMap> {
        if !self.source_maps {
            return None;
        }
        let url = source_mapping_url(comments)?;
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
                c.is_whitespace() || c == '\u{feff}' || (c.is_ascii() && next.contains(&(c as u8)))
            })
    })
}

/// The URL of the last `sourceMappingURL` comment as a `Raw` reference, with its byte range in
/// `text`, for unminified output that keeps the input's own map. `data:` URLs are left alone.
fn source_map_reference(
    text: &str,
    comments: &SingleThreadedComments,
    base: u32,
    ordinal: usize,
    logical: &str,
) -> Option<(usize, usize, kiln_core::Reference)> {
    let (leading, trailing) = comments.borrow_all();
    let comment = leading
        .values()
        .chain(trailing.values())
        .flatten()
        .filter(|c| is_source_map_comment(c))
        .max_by_key(|c| c.span.lo)?
        .clone();
    let (lo, hi) = (
        (comment.span.lo.0 - base) as usize,
        (comment.span.hi.0 - base) as usize,
    );
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

/// The last `sourceMappingURL` in the file's comments.
fn source_mapping_url(comments: &SingleThreadedComments) -> Option<String> {
    let (leading, trailing) = comments.borrow_all();
    leading
        .values()
        .chain(trailing.values())
        .flatten()
        .filter(|c| is_source_map_comment(c))
        .max_by_key(|c| c.span.lo)
        .map(|c| {
            c.text
                .trim()
                .split_once('=')
                .map_or("", |(_, u)| u)
                .trim()
                .to_owned()
        })
        .filter(|u| !u.is_empty())
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

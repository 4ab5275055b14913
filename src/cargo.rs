//! kiln in a Cargo build script: one call builds the assets into `OUT_DIR`, tells Cargo exactly
//! when to run again, and writes `assets.rs`, a module of typed handles (see the `kiln_serve`
//! crate, which the generated code uses).
//!
//! ```no_run
//! // build.rs, in `fn main()`:
//! kiln::cargo::Assets::new("assets").public_url("/static/").emit();
//! ```
//!
//! ```ignore
//! // src/main.rs
//! mod assets {
//!     include!(concat!(env!("OUT_DIR"), "/assets.rs"));
//! }
//! let css = &assets::css::APP_CSS; // a misspelt asset is a compile error
//! let router = axum::Router::new().nest_service("/static", assets::ASSETS.service());
//! ```
//!
//! What [`Assets::emit`] does:
//! - builds with kiln into `OUT_DIR/kiln` (the cache goes to `<target>/kiln-cache`, never into the
//!   source tree);
//! - prints `cargo:rerun-if-changed` for every source file, every source folder (so added and
//!   deleted files count) and the config file, and `cargo:rerun-if-env-changed` for
//!   [`PROFILE_VAR`];
//! - prints each warning as a `cargo:warning=` line, and on errors prints the rendered diagnostics
//!   and fails the build script;
//! - in release builds (Cargo's `PROFILE`, or [`PROFILE_VAR`]) embeds the fingerprinted files and
//!   their `.br`/`.gz` siblings with `include_bytes!`; in debug builds serves them from `OUT_DIR`
//!   and builds with fast settings (no AVIF, quick compression levels).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use kiln_core::config::ImageFormat;
use serde_json::Value;

use crate::{BuildError, BuildReport, Builder, Config, ConfigError, ManifestFormat};

/// Overrides Cargo's `PROFILE` for kiln: `release` (embed, full settings) or `debug`.
pub const PROFILE_VAR: &str = "KILN_PROFILE";

/// Whether the files are compiled into the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Embed {
    /// In release builds (the default): the binary is self-contained.
    #[default]
    Release,
    /// Always.
    Always,
    /// Never: the binary reads them from `OUT_DIR`.
    Never,
}

/// The assets of a crate, built by its `build.rs`.
pub struct Assets {
    src: Option<PathBuf>,
    config_file: Option<PathBuf>,
    public_url: Option<String>,
    embed: Embed,
    fast: Option<bool>,
    configure: Vec<Configure>,
}

/// A change to the build's settings, applied after the others.
type Configure = Box<dyn FnOnce(&mut Config)>;

/// What [`Assets::try_emit`] made.
#[derive(Debug)]
pub struct Emitted {
    /// The build's output folder (`OUT_DIR/kiln`).
    pub out: PathBuf,
    /// The generated module (`OUT_DIR/assets.rs`).
    pub module: PathBuf,
    /// The build.
    pub report: BuildReport,
    /// Whether the files are embedded.
    pub embedded: bool,
}

/// Why [`Assets::try_emit`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// Not run by Cargo (no `OUT_DIR`).
    #[error("{0} is not set: kiln::cargo runs in a build script")]
    NotCargo(&'static str),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The build failed ([`Assets::emit`] prints the diagnostics).
    #[error(transparent)]
    Build(#[from] BuildError),
    /// `KILN_PROFILE` is neither `release` nor `debug`.
    #[error("{PROFILE_VAR} is `{0}`: use `release` or `debug`")]
    Profile(String),
    /// Two files would get the same name in the generated module, or the same URL.
    #[error("{0}")]
    Names(String),
    /// Reading the build's manifest or writing the module failed.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

impl Assets {
    /// The assets under `src` (relative to the crate's folder), with kiln's defaults.
    pub fn new(src: impl Into<PathBuf>) -> Self {
        Assets {
            src: Some(src.into()),
            config_file: None,
            public_url: None,
            embed: Embed::Release,
            fast: None,
            configure: Vec::new(),
        }
    }

    /// The assets a `kiln.toml` describes (relative to the crate's folder); `src`, `public_url`
    /// and the other settings come from it (the output folder and the cache do not).
    pub fn from_config_file(path: impl Into<PathBuf>) -> Self {
        Assets {
            src: None,
            config_file: Some(path.into()),
            ..Assets::new("")
        }
    }

    /// The URL the files are served under (`/static/`, or a CDN's).
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// When to embed the files (default: in release builds).
    pub fn embed(mut self, embed: Embed) -> Self {
        self.embed = embed;
        self
    }

    /// Fast settings (no AVIF, quick compression), by default in debug builds only.
    pub fn fast(mut self, fast: bool) -> Self {
        self.fast = Some(fast);
        self
    }

    /// Changes any other setting of the build.
    pub fn configure(mut self, f: impl FnOnce(&mut Config) + 'static) -> Self {
        self.configure.push(Box::new(f));
        self
    }

    /// Builds and writes `assets.rs`; on failure prints why and exits the build script with
    /// status 1.
    pub fn emit(self) -> Emitted {
        match self.try_emit() {
            Ok(emitted) => emitted,
            Err(EmitError::Build(BuildError::Diagnostics(diagnostics))) => {
                for d in &diagnostics {
                    eprint!("{}", d.render());
                }
                let errors = diagnostics.iter().filter(|d| d.is_error()).count();
                eprintln!("kiln: the asset build failed with {errors} error(s)");
                std::process::exit(1)
            }
            Err(e) => {
                eprintln!("kiln: error: {e}");
                std::process::exit(1)
            }
        }
    }

    /// Builds and writes `assets.rs`, returning what it made or why it failed. The
    /// `rerun-if-changed` lines are printed either way, the build's warnings as `cargo:warning`
    /// lines when it succeeds; a failed build's diagnostics are in the error.
    pub fn try_emit(self) -> Result<Emitted, EmitError> {
        let var = |name: &'static str| std::env::var_os(name).ok_or(EmitError::NotCargo(name));
        let out_dir = PathBuf::from(var("OUT_DIR")?);
        let manifest_dir = PathBuf::from(var("CARGO_MANIFEST_DIR")?);
        println!("cargo:rerun-if-env-changed={PROFILE_VAR}");
        let release = match std::env::var(PROFILE_VAR).ok().filter(|p| !p.is_empty()) {
            Some(p) if p == "release" => true,
            Some(p) if p == "debug" => false,
            Some(other) => return Err(EmitError::Profile(other)),
            None => std::env::var("PROFILE").is_ok_and(|p| p == "release"),
        };
        let embedded = match self.embed {
            Embed::Release => release,
            Embed::Always => true,
            Embed::Never => false,
        };
        let fast = self.fast.unwrap_or(!release);

        let mut config = match &self.config_file {
            Some(file) => {
                let file = manifest_dir.join(file);
                println!("cargo:rerun-if-changed={}", file.display());
                Config::load(&file)?
            }
            None => Config::default(),
        };
        if let Some(src) = &self.src {
            config.src = manifest_dir.join(src);
        }
        if let Some(url) = &self.public_url {
            config.public_url = url.clone();
        }
        config.out = out_dir.join("kiln");
        // Under the target folder when OUT_DIR is Cargo's <target>/[<triple>/]<profile>/build/
        // <package>-<hash>/out (kept across `cargo clean -p`), else inside OUT_DIR: never in
        // the source tree, whatever tool runs the build script.
        let cargo_layout = out_dir.file_name().is_some_and(|n| n == "out")
            && out_dir
                .parent()
                .and_then(Path::parent)
                .and_then(Path::file_name)
                .is_some_and(|n| n == "build");
        config.cache.dir = match out_dir.ancestors().nth(4) {
            Some(target) if cargo_layout => target.join("kiln-cache"),
            _ => out_dir.join("kiln-cache"),
        };
        config.keep_builds = 1;
        config.unhashed = false;
        if !config.manifest.formats.contains(&ManifestFormat::Kiln) {
            config.manifest.formats.push(ManifestFormat::Kiln);
        }
        if fast {
            config.images.formats.retain(|f| *f != ImageFormat::Avif);
            for o in &mut config.images.overrides {
                if let Some(formats) = &mut o.formats {
                    formats.retain(|f| *f != ImageFormat::Avif);
                }
            }
            config.compress.brotli_quality = config.compress.brotli_quality.min(5);
            config.compress.gzip_level = config.compress.gzip_level.min(6);
            config.compress.zstd_level = config.compress.zstd_level.min(3);
        }
        for f in self.configure {
            f(&mut config);
        }
        config.validate()?;
        // Exactly what the build reads: the source folder, its folders and files (not the
        // excluded ones). A path Cargo's line protocol cannot carry (a newline in a name) is
        // covered by its folder's line.
        for path in kiln_core::discover::inputs(&config) {
            let text = path.display().to_string();
            if !text.contains(['\n', '\r']) {
                println!("cargo:rerun-if-changed={text}");
            }
        }

        let report = Builder::from_config(config.clone()).build()?;
        for w in &kiln_core::diagnostic::summarise(&report.warnings) {
            let mut line = w.render();
            if let Some(first) = line.lines().next() {
                line = first.to_owned();
            }
            println!("cargo:warning={line}");
        }
        let manifest_path = config.out.join(ManifestFormat::Kiln.file_name());
        let io = |path: &Path, e: &dyn std::fmt::Display| EmitError::Io {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let manifest: Value = std::fs::read(&manifest_path)
            .map_err(|e| io(&manifest_path, &e))
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| io(&manifest_path, &e)))?;
        let code = generate(&manifest, &config.out, embedded).map_err(|e| match e {
            Generate::Names(m) => EmitError::Names(m),
            Generate::Io(m) => io(&manifest_path, &m),
        })?;
        let module = out_dir.join("assets.rs");
        // Rewritten only when it changes, so rustc's view of it stays fresh.
        if std::fs::read_to_string(&module).ok().as_deref() != Some(code.as_str()) {
            std::fs::write(&module, code).map_err(|e| io(&module, &e))?;
        }
        Ok(Emitted {
            out: config.out,
            module,
            report,
            embedded,
        })
    }
}

/// One asset of the manifest, as the generated code needs it.
struct Entry<'a> {
    logical: &'a str,
    value: &'a Value,
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Why [`generate`] failed.
#[derive(Debug)]
pub enum Generate {
    /// Two files would share a Rust name or a URL: the message names both.
    Names(String),
    /// The manifest or a built file could not be read.
    Io(String),
}

impl From<String> for Generate {
    fn from(m: String) -> Self {
        Generate::Io(m)
    }
}

impl From<&str> for Generate {
    fn from(m: &str) -> Self {
        Generate::Io(m.to_owned())
    }
}

/// The source of `assets.rs` for kiln's `manifest.json` in `out`.
pub fn generate(manifest: &Value, out: &Path, embed: bool) -> Result<String, Generate> {
    let public_url = text(manifest, "public_url");
    let assets = manifest
        .get("assets")
        .and_then(Value::as_object)
        .ok_or("no `assets` in manifest.json")?;
    // Sorted by logical path (byte order), as `Assets::get` searches them.
    let mut entries: Vec<Entry<'_>> = assets
        .iter()
        .map(|(k, v)| Entry {
            logical: k,
            value: v,
        })
        .collect();
    entries.sort_by(|a, b| a.logical.cmp(b.logical));
    let index: BTreeMap<&str, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.logical, i))
        .collect();
    let mut code = String::new();
    let mut statics = String::new();
    let mut routes: Vec<(String, bool, String, String)> = Vec::new();
    let url_of = |file: &str| format!("{public_url}{}", kiln_core::url::encode_path(file));

    for (i, e) in entries.iter().enumerate() {
        let v = e.value;
        let file = text(v, "file");
        let content_type = text(v, "content_type");
        // Representations: identity, then the siblings.
        let mut reps = vec![("Identity", file.to_owned())];
        if let Some(enc) = v.get("encodings").and_then(Value::as_object) {
            for (token, variant) in [("br", "Brotli"), ("zstd", "Zstd"), ("gzip", "Gzip")] {
                if let Some(f) = enc.get(token).map(|x| text(x, "file")) {
                    reps.push((variant, f.to_owned()));
                }
            }
        }
        writeln!(
            statics,
            "    pub static R{i}: [::kiln_serve::Representation; {}] = [{}];",
            reps.len(),
            representations(&reps, out, embed)?
        )
        .ok();
        let image = match (v.get("width"), v.get("height")) {
            (Some(w), Some(h)) => {
                let variants: Vec<String> = v
                    .get("variants")
                    .and_then(Value::as_array)
                    .map(|vs| {
                        vs.iter()
                            .filter_map(|x| {
                                let j = index.get(text(x, "logical"))?;
                                Some(format!(
                                    "::kiln_serve::Variant {{ asset: &A{j}, width: {}, height: {} }}",
                                    x.get("width")?.as_u64()?,
                                    x.get("height")?.as_u64()?
                                ))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                writeln!(
                    statics,
                    "    pub static V{i}: [::kiln_serve::Variant; {}] = [{}];\n    \
                     pub static I{i}: ::kiln_serve::Image = ::kiln_serve::Image {{ width: {w}, \
                     height: {h}, variants: &V{i} }};",
                    variants.len(),
                    variants.join(", ")
                )
                .ok();
                format!("Some(&I{i})")
            }
            _ => "None".to_owned(),
        };
        writeln!(
            statics,
            "    pub static A{i}: ::kiln_serve::Asset = ::kiln_serve::Asset {{ path: {:?}, file: \
             {:?}, url: {:?}, integrity: {:?}, content_type: {:?}, size: {}, image: {image}, \
             representations: &R{i} }};",
            e.logical,
            file,
            url_of(file),
            text(v, "integrity"),
            content_type,
            v.get("size").and_then(Value::as_u64).unwrap_or(0),
        )
        .ok();
        routes.push((
            file.to_owned(),
            true,
            content_type.to_owned(),
            format!("R{i}"),
        ));
        routes.push((
            e.logical.to_owned(),
            false,
            content_type.to_owned(),
            format!("R{i}"),
        ));
        if let Some(map) = v.get("map").map(|m| text(m, "file")) {
            writeln!(
                statics,
                "    pub static M{i}: [::kiln_serve::Representation; 1] = [{}];",
                representations(&[("Identity", map.to_owned())], out, embed)?
            )
            .ok();
            routes.push((
                map.to_owned(),
                true,
                "application/json".to_owned(),
                format!("M{i}"),
            ));
        }
    }
    // The manifests themselves, for scripts that read them (revalidated: their names are fixed).
    for (k, name) in [
        "manifest.json",
        "importmap.json",
        "staticfiles.json",
        "cache_manifest.json",
    ]
    .into_iter()
    .enumerate()
    {
        if out.join(name).is_file() {
            writeln!(
                statics,
                "    pub static F{k}: [::kiln_serve::Representation; 1] = [{}];",
                representations(&[("Identity", name.to_owned())], out, embed)?
            )
            .ok();
            routes.push((
                name.to_owned(),
                false,
                "application/json".to_owned(),
                format!("F{k}"),
            ));
        }
    }
    routes.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = routes.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Generate::Names(format!(
            "two files would be served as `{}` (a source file named like a fingerprinted file, \
             a source map or one of kiln's manifests): rename the source file",
            w[0].0
        )));
    }

    code.push_str(
        "// Generated by kiln::cargo from the build's manifest.json. Do not edit.\n\
         // One static per asset, in modules mirroring the source folder; `ASSETS` looks them up\n\
         // by logical path and serves them (kiln_serve's `axum` feature).\n\n",
    );
    // The public tree: a module per folder, a static per file (variants are reached through
    // their image).
    let mut tree = Node::default();
    for (i, e) in entries.iter().enumerate() {
        if e.value.get("variant_of").is_some() {
            continue;
        }
        let mut parts: Vec<&str> = e.logical.split('/').collect();
        let name = parts.pop().unwrap_or_default();
        let mut node = &mut tree;
        for dir in parts {
            node = node.dirs.entry(dir.to_owned()).or_default();
        }
        node.files.push((name.to_owned(), i, e.logical.to_owned()));
    }
    tree.write(&mut code, 0, &url_of, &entries)?;
    let by_path: Vec<String> = (0..entries.len())
        .map(|i| format!("&__kiln::A{i}"))
        .collect();
    let route_items: Vec<String> = routes
        .iter()
        .map(|(name, hashed, ty, reps)| {
            format!(
                "::kiln_serve::Route {{ name: {name:?}, hashed: {hashed}, content_type: {ty:?}, \
                 representations: &__kiln::{reps} }}"
            )
        })
        .collect();
    write!(
        code,
        "\n/// Every asset by logical path, and every servable name.\n\
         #[allow(dead_code)]\n\
         pub static ASSETS: ::kiln_serve::Assets = ::kiln_serve::Assets {{\n    \
         public_url: {public_url:?},\n    by_path: &[{}],\n    routes: &[\n        {}\n    ],\n}};\n\n\
         #[doc(hidden)]\n#[allow(dead_code)]\npub mod __kiln {{\n{statics}}}\n",
        by_path.join(", "),
        route_items.join(",\n        ")
    )
    .ok();
    Ok(code)
}

/// `Representation` literals for `(encoding, file under out)`, with a strong ETag of the bytes.
fn representations(reps: &[(&str, String)], out: &Path, embed: bool) -> Result<String, Generate> {
    let mut items = Vec::new();
    for (encoding, file) in reps {
        let path = out.join(file);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let etag = format!("\"{}\"", &blake3::hash(&bytes).to_hex()[..32]);
        let path = path.to_str().ok_or("OUT_DIR is not UTF-8")?;
        let body = if embed {
            format!("::kiln_serve::Body::Embedded(::core::include_bytes!({path:?}))")
        } else {
            format!("::kiln_serve::Body::File({path:?})")
        };
        items.push(format!(
            "::kiln_serve::Representation {{ encoding: ::kiln_serve::Encoding::{encoding}, \
             etag: {etag:?}, size: {}, body: {body} }}",
            bytes.len()
        ));
    }
    Ok(items.join(", "))
}

/// A folder of the public tree.
#[derive(Default)]
struct Node {
    dirs: BTreeMap<String, Node>,
    /// (file name, asset index, logical path)
    files: Vec<(String, usize, String)>,
}

impl Node {
    /// Writes this folder's items. Two names that map to one identifier are an error naming
    /// both: giving the plain name to whichever sorts first would let an added file take over
    /// a name code already uses.
    fn write(
        &self,
        code: &mut String,
        depth: usize,
        url_of: &dyn Fn(&str) -> String,
        entries: &[Entry<'_>],
    ) -> Result<(), Generate> {
        let pad = "    ".repeat(depth);
        let root = if depth == 0 {
            "self::".to_owned()
        } else {
            "super::".repeat(depth)
        };
        let clash = |ident: &str, a: &str, b: &str| {
            Generate::Names(format!(
                "`{a}` and `{b}` would both be `{ident}` in the generated module: rename one"
            ))
        };
        let mut used: BTreeMap<String, String> = BTreeMap::new();
        if depth == 0 {
            used.insert("ASSETS".to_owned(), "kiln's table `ASSETS`".to_owned());
        }
        for (name, i, logical) in &self.files {
            let ident = ident(name, true);
            if let Some(other) = used.insert(ident.clone(), logical.clone()) {
                return Err(clash(&ident, &other, logical));
            }
            let file = text(entries[*i].value, "file");
            let doc = format!("`{logical}`: `{}`", url_of(file));
            writeln!(
                code,
                "{pad}#[doc = {doc:?}]\n{pad}#[allow(unused_imports)]\n\
                 {pad}pub use {root}__kiln::A{i} as {ident};"
            )
            .ok();
        }
        let mut used: BTreeMap<String, String> = BTreeMap::new();
        for (dir, node) in &self.dirs {
            let ident = ident(dir, false);
            if let Some(other) = used.insert(ident.clone(), dir.clone()) {
                return Err(clash(&ident, &format!("{other}/"), &format!("{dir}/")));
            }
            let doc = format!("`{dir}/`");
            writeln!(code, "{pad}#[doc = {doc:?}]\n{pad}pub mod {ident} {{").ok();
            node.write(code, depth + 1, url_of, entries)?;
            writeln!(code, "{pad}}}").ok();
        }
        Ok(())
    }
}

/// A Rust identifier for a file (`UPPER_SNAKE`) or folder (`lower_snake`) name.
fn ident(name: &str, upper: bool) -> String {
    let mut out: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' if upper => c.to_ascii_uppercase(),
            'a'..='z' | 'A'..='Z' | '0'..='9' => c.to_ascii_lowercase(),
            _ => '_',
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) || out == "_" {
        out.insert(0, '_');
    }
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum",
        "extern", "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod",
        "move", "mut", "pub", "ref", "return", "self", "static", "struct", "super", "trait",
        "true", "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do",
        "final", "macro", "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
        "__kiln",
    ];
    if KEYWORDS.contains(&out.as_str()) {
        out.push('_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Generate, generate, ident};

    #[test]
    fn names_that_collide_are_an_error_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["App.1.css", "app.2.css"] {
            std::fs::write(dir.path().join(f), "a{}").unwrap();
        }
        let entry = |file: &str| serde_json::json!({"file": file, "content_type": "text/css", "size": 3, "integrity": "x"});
        let manifest = serde_json::json!({"public_url": "/s/", "assets": {
            "app.css": entry("app.2.css"), "App.css": entry("App.1.css")}});
        match generate(&manifest, dir.path(), false) {
            Err(Generate::Names(m)) => {
                assert!(m.contains("`App.css`") && m.contains("`app.css`"), "{m}");
                assert!(m.contains("APP_CSS"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        // Apart, each gets its name, documented with its URL.
        let manifest =
            serde_json::json!({"public_url": "/s/", "assets": {"app.css": entry("app.2.css")}});
        let code = generate(&manifest, dir.path(), false).unwrap();
        assert!(
            code.contains("pub use self::__kiln::A0 as APP_CSS;"),
            "{code}"
        );
        assert!(
            code.contains(r#"#[doc = "`app.css`: `/s/app.2.css`"]"#),
            "{code}"
        );
    }

    #[test]
    fn identifiers_are_valid_rust() {
        assert_eq!(ident("app.css", true), "APP_CSS");
        assert_eq!(ident("hero-image.min.js", true), "HERO_IMAGE_MIN_JS");
        assert_eq!(ident("1x.png", true), "_1X_PNG");
        assert_eq!(ident("type", false), "type_");
        assert_eq!(ident("Font Awesome", false), "font_awesome");
        assert_eq!(ident("-", false), "__");
        assert_eq!(ident("été.css", true), "_T__CSS");
    }
}

//! Helpers shared by kiln's integration tests: fixture paths, copying trees, reading an output
//! tree, running the real binary, and checking that every reference in built CSS resolves.
#![allow(dead_code)] // each test binary uses a different subset of these helpers

pub mod edge;
pub mod nginx;
pub mod s3;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lightningcss::stylesheet::{ParserOptions, StyleSheet};

/// `fixtures/<rel>` in the repository.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// Copies the tree `from` into `to` (created).
pub fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let dest = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// A builder for `src` -> `out` that neither reads nor writes a persistent cache, so tests never
/// share one (the cache's own tests give each build a temporary cache folder).
pub fn builder(src: &Path, out: &Path) -> kiln::Builder {
    let mut b = kiln::Builder::new().src(src).out(out);
    b.config_mut().cache.enabled = false;
    b
}

/// Writes each `(relative path, content)` below `root`, creating folders as needed.
pub fn write_files(root: &Path, files: &[(&str, &str)]) {
    for (rel, content) in files {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

/// Every file below `dir` by POSIX relative path.
pub fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return out;
    }
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.unwrap();
        // The lock file holds the last writer's PID: not output.
        if entry.file_type().is_file() && entry.file_name() != kiln::kiln_core::lock::LOCK_FILE {
            let rel = entry.path().strip_prefix(dir).unwrap();
            let key = rel
                .components()
                .map(|c| c.as_os_str().to_str().unwrap())
                .collect::<Vec<_>>()
                .join("/");
            out.insert(key, std::fs::read(entry.path()).unwrap());
        }
    }
    out
}

/// Runs the `kiln` binary with `args` in `cwd`.
pub fn kiln(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .output()
        .expect("kiln runs")
}

/// stderr of a run, as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// logical path -> fingerprinted file, from kiln's manifest in `out`.
pub fn names(out: &Path) -> BTreeMap<String, String> {
    let m = json(&out.join("manifest.json"));
    m["assets"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["file"].as_str().unwrap().to_owned()))
        .collect()
}

/// Reads and parses a JSON file.
pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// The `url()` and `@import` URLs of a CSS text (custom properties' included), found by
/// lightningcss (not by regex). Panics if the CSS does not parse.
pub fn css_urls(css: &str, name: &str) -> Vec<String> {
    try_css_urls(css).unwrap_or_else(|e| panic!("{name} does not parse: {e}"))
}

/// [`css_urls`], or why the CSS does not parse.
pub fn try_css_urls(css: &str) -> Result<Vec<String>, String> {
    use lightningcss::rules::CssRule;
    use lightningcss::values::url::Url;
    use lightningcss::visitor::{Visit, VisitTypes, Visitor};

    struct Urls(Vec<String>);
    impl<'i> Visitor<'i> for Urls {
        type Error = std::convert::Infallible;
        fn visit_types(&self) -> VisitTypes {
            lightningcss::visit_types!(URLS | RULES)
        }
        fn visit_url(&mut self, url: &mut Url<'i>) -> Result<(), Self::Error> {
            self.0.push(url.url.to_string());
            Ok(())
        }
        fn visit_rule(&mut self, rule: &mut CssRule<'i>) -> Result<(), Self::Error> {
            if let CssRule::Import(import) = rule {
                self.0.push(import.url.to_string());
            }
            rule.visit_children(self)
        }
    }
    let mut sheet = StyleSheet::parse(css, ParserOptions::default()).map_err(|e| e.to_string())?;
    let mut urls = Urls(Vec::new());
    let _ = sheet.visit(&mut urls);
    Ok(urls.0)
}

/// True for URLs kiln leaves alone.
pub fn is_external(url: &str) -> bool {
    url.starts_with("data:")
        || url.starts_with("//")
        || url.starts_with('#')
        || url.contains("://")
        || url.starts_with("/media/")
}

/// Checks an output folder: every CSS file parses, every internal reference in it points at a
/// fingerprinted file that exists, and every `sourceMappingURL` names an existing map. Returns the
/// number of internal references checked.
pub fn assert_references_resolve(out: &Path, public_path: &str) -> usize {
    assert_references_resolve_except(out, public_path, &[])
}

/// Like [`assert_references_resolve`], skipping URLs in `allowed` (ones a build warned about).
pub fn assert_references_resolve_except(out: &Path, public_path: &str, allowed: &[&str]) -> usize {
    let files = tree(out);
    let mut checked = 0;
    for (name, bytes) in &files {
        if !name.ends_with(".css") {
            continue;
        }
        let css = std::str::from_utf8(bytes).unwrap_or_else(|_| panic!("{name} is not UTF-8"));
        for url in css_urls(css, name) {
            if is_external(&url) || allowed.contains(&url.as_str()) {
                continue;
            }
            let path = url.split(['?', '#']).next().unwrap();
            let path = percent_decode(path);
            let target = match path.strip_prefix(public_path) {
                Some(rest) => rest.to_owned(),
                None => resolve(name, &path),
            };
            assert!(
                files.contains_key(&target),
                "{name}: `{url}` points at `{target}`, which was not emitted"
            );
            assert!(
                looks_hashed(&target),
                "{name}: `{url}` is not a fingerprinted name"
            );
            checked += 1;
        }
        if let Some((_, map)) = css.rsplit_once("sourceMappingURL=") {
            let map = map.trim_end_matches(" */").trim();
            assert!(
                files.contains_key(&resolve(name, map)),
                "{name}: missing map {map}"
            );
        }
    }
    checked
}

/// `dir/name.<hex>.ext`: a dot segment of hex digits before the extension.
pub fn looks_hashed(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap();
    file.split('.')
        .skip(1)
        .any(|seg| seg.len() >= 8 && seg.chars().all(|c| c.is_ascii_hexdigit()))
}

fn resolve(from: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for p in rel.split('/') {
        match p {
            "." | "" => {}
            ".." => {
                assert!(
                    parts.pop().is_some(),
                    "`{rel}` in {from} climbs above the output folder"
                );
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .unwrap()
        .into_owned()
}

/// Where scripts/test installs the end-to-end tools.
pub fn e2e_dir() -> PathBuf {
    std::env::var_os("KILN_E2E_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e"))
}

/// The tool at `path`, or None with a visible message (a failure when KILN_E2E_REQUIRED=1).
pub fn tool(path: PathBuf, what: &str) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    let message = format!(
        "{what} is not installed at {} (scripts/test installs it)",
        path.display()
    );
    assert!(
        std::env::var("KILN_E2E_REQUIRED").as_deref() != Ok("1"),
        "{message}"
    );
    eprintln!("skipping: {message}");
    None
}

/// Loads `url` in headless Chromium with `tests/e2e/browser.mjs` (see its header for what it
/// checks); whether the page passed, and its report. None (with a message) when playwright-core
/// or Chromium is not installed.
pub fn chromium(url: &str) -> Option<(bool, serde_json::Value)> {
    let node_modules = tool(
        e2e_dir().join("node/node_modules/playwright-core"),
        "playwright-core",
    )?;
    tool(
        PathBuf::from(
            std::env::var("KILN_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
        ),
        "chromium",
    )?;
    // browser.mjs imports playwright-core: run it from the folder that has it installed.
    let runner = node_modules.parent()?.parent()?.join("browser.mjs");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/browser.mjs"),
        &runner,
    )
    .unwrap();
    let o = Command::new("node").arg(&runner).arg(url).output().unwrap();
    let report = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| {
        panic!(
            "browser.mjs: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    Some((o.status.success(), report))
}

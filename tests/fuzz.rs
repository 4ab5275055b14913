//! Structure-aware fuzzing of kiln's front doors, on the stable toolchain: proptest generates
//! CSS and JavaScript from fragments that matter to kiln (references of every form, escapes,
//! comments, strings and blocks left open, legacy hacks) and mutates real PNG and JPEG files
//! (flipped bytes, truncations, forged dimensions), then runs them through the real transformers
//! and the link stage. The invariant: no panic; when the build succeeds, its CSS and JS outputs
//! parse again, and every reference in them is resolved to an output file, external, or was
//! reported in a diagnostic.
//!
//! The test command runs a few hundred cases (`KILN_FUZZ_CASES`, default 64 per target);
//! `scripts/fuzz.sh` runs it for a time budget with fresh seeds. proptest records every failing
//! input in `tests/fuzz.proptest-regressions`, which is replayed first on every run: each crash
//! found stays a regression test.

mod common;

use std::collections::HashSet;

use kiln::kiln_core::config::Config;
use kiln::kiln_core::link::link;
use kiln::kiln_core::model::{Discovered, Linked};
use kiln::kiln_core::transform::{Transformer, transform};
use kiln::kiln_core::url::{Specifier, classify};
use kiln::kiln_core::{Asset, AssetId, TransformInput};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("KILN_FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64)
}

fn config(bundle: bool) -> Config {
    let mut c = Config::default();
    // Missing targets become warnings, so the output of a build with them can be checked.
    c.strict = false;
    c.css.bundle = bundle;
    c.images.formats = Vec::new();
    c.images.widths = Vec::new();
    c.images.max_pixels = 4_000_000;
    c.validate().unwrap();
    c
}

/// Files every generated source may refer to.
const TARGETS: &[(&str, &[u8])] = &[
    ("css/b.css", b".b{color:red}"),
    (
        "css/img/x.svg",
        b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
    ),
    ("fonts/f.woff2", b"wOF2 not really"),
    ("js/b.js", b"export const b = 1;\n"),
    ("js/c.js", b"export default function c() {}\n"),
];

/// Runs transform and link over `fuzzed` plus [`TARGETS`].
fn build(fuzzed: &[(&str, Vec<u8>)], config: &Config) -> Linked {
    let css = kiln_css::CssTransformer::new(config).unwrap();
    let js = kiln_js::JsTransformer::new(config).unwrap();
    let images = kiln_image::ImageTransformer::new(config);
    let transformers: [&dyn Transformer; 3] = [&css, &js, &images];
    let mut assets: Vec<Asset> = TARGETS
        .iter()
        .map(|(p, b)| Asset::from_bytes(p, b.to_vec()))
        .chain(fuzzed.iter().map(|(p, b)| Asset::from_bytes(p, b.clone())))
        .collect();
    assets.sort_by(|a, b| a.logical.cmp(&b.logical));
    for (i, a) in assets.iter_mut().enumerate() {
        a.id = AssetId(i as u32);
    }
    let discovered = Discovered { assets };
    link(
        transform(discovered, config, &transformers, None, &|| ()),
        config,
    )
}

/// The URL is external, resolves from `from` to an output of `linked`, or a diagnostic of the
/// build names it.
fn accounted_for(url: &str, from: &str, linked: &Linked, outputs: &HashSet<&str>) -> bool {
    let reported = || linked.diagnostics.iter().any(|d| d.message.contains(url));
    match classify(url, from, "/static/") {
        Specifier::External => true,
        Specifier::Internal { logical, .. } => outputs.contains(logical.as_str()) || reported(),
        Specifier::OutsideRoot => reported(),
    }
}

/// Checks the invariant on a build of `fuzzed`.
fn check(fuzzed: &[(&str, Vec<u8>)], bundle: bool) -> Result<(), TestCaseError> {
    let config = config(bundle);
    let linked = build(fuzzed, &config);
    if linked.failed() {
        // Refused: every error must name a file.
        for d in linked.diagnostics.iter().filter(|d| d.is_error()) {
            prop_assert!(!d.path.is_empty(), "an error names no file: {d:?}");
        }
        return Ok(());
    }
    let outputs: HashSet<&str> = linked.assets.iter().map(|a| a.logical.as_str()).collect();
    // Output URLs are fingerprinted names: map them back to logical paths for resolving.
    let by_output: std::collections::HashMap<&str, &str> = linked
        .assets
        .iter()
        .map(|a| (a.output.path.as_str(), a.logical.as_str()))
        .collect();
    let resolved_outputs: HashSet<&str> = by_output.keys().copied().collect();
    for a in &linked.assets {
        let text = String::from_utf8_lossy(&a.output.bytes);
        if a.logical.ends_with(".css") {
            let urls = common::try_css_urls(&text).map_err(|e| {
                TestCaseError::fail(format!("{}: output does not parse: {e}\n{text}", a.logical))
            })?;
            for url in urls {
                let ok = accounted_for(&url, &a.output.path, &linked, &resolved_outputs)
                    || accounted_for(&url, &a.logical, &linked, &outputs);
                prop_assert!(
                    ok,
                    "{}: `{url}` is neither resolved nor reported\n{text}",
                    a.logical
                );
            }
        } else if a.logical.ends_with(".js") {
            // The output is JavaScript the same parser accepts again.
            let again = Asset::from_bytes(&a.logical, a.output.bytes.clone());
            let js = kiln_js::JsTransformer::new(&config).unwrap();
            let all = [again];
            let out = js.transform(&TransformInput {
                asset: &all[0],
                all: &all,
                config: &config,
            });
            prop_assert!(
                !out.failed(),
                "{}: output does not parse again: {:?}\n{text}",
                a.logical,
                out.diagnostics
            );
        }
    }
    Ok(())
}

const CSS_FRAGMENTS: &[&str] = &[
    ".a",
    "#b",
    "a:hover",
    "*",
    "::before",
    ":::",
    ":not(",
    "[x=",
    "]",
    "{",
    "}",
    ";",
    ":",
    ",",
    " ",
    "\n",
    "color:red",
    "*zoom:1",
    "_height:1px",
    "filter:progid:DX.Alpha(opacity=50)",
    "!important",
    "url(",
    ")",
    "url(img/x.svg)",
    "url('img/x.svg#f')",
    "url(\"../fonts/f.woff2?v=1\")",
    "url(missing.png)",
    "url(../../../../etc/passwd)",
    "url(%2e%2e/%2e%2e/x)",
    "url(/static/css/b.css)",
    "url(data:image/gif;base64,R0lG)",
    "url(//cdn.example.com/x.png)",
    "url(#frag)",
    "url()",
    "\"",
    "'",
    "\\",
    "\\\"",
    "/*",
    "*/",
    "@import \"b.css\";",
    "@import url(b.css) screen;",
    "@import url(missing.css);",
    "@media (min-width:1px){",
    "@supports (display:grid){",
    "@font-face{font-family:f;src:url(../fonts/f.woff2) format(\"woff2\")}",
    "@layer a;",
    "@charset \"utf-8\";",
    "@-ms-viewport{width:device-width}",
    "@foo bar{x:y}",
    "--v:",
    "--icon:url(img/x.svg)",
    "--gone:url(nope.svg)",
    "var(--v)",
    "var(--icon, url(img/x.svg))",
    "image-set(url(img/x.svg) 1x)",
    "é",
    "\u{0}",
    "\u{feff}",
    "&",
    "&:hover{",
    "@keyframes k{from{",
];

const JS_FRAGMENTS: &[&str] = &[
    "import b from './b.js';",
    "import {b} from \"./b.js\";",
    "import './missing.js';",
    "import x from '../../../../etc/passwd';",
    "export * from './c.js';",
    "import('./c.js')",
    "import(`./c.js`)",
    "import(name)",
    "new URL('../css/img/x.svg', import.meta.url)",
    "new URL('./nope.svg', import.meta.url)",
    "export const a = 1;",
    "export default 1;",
    "const s = `${",
    "}`",
    "`",
    "/re/g",
    "/[/]/",
    "//",
    "/*",
    "*/",
    "'",
    "\"",
    "\\",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    ";",
    "\n",
    " ",
    "import.meta",
    "await x;",
    "x => x",
    "<!--",
    "-->",
    "if (a) function f(){}",
    "with(a){}",
    "010",
    "'\\101'",
    "let",
    "yield",
    "class A{#p=1}",
    "a?.b",
    "a ?? b",
    "//# sourceMappingURL=a.js.map",
    "\u{2028}",
    "é",
];

fn soup(fragments: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            9 => prop::sample::select(fragments).prop_map(str::to_owned),
            1 => any::<char>().prop_map(String::from),
        ],
        0..48,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn css_references_are_resolved_or_reported(css in soup(CSS_FRAGMENTS), bundle in any::<bool>()) {
        // Sometimes bundled, so @import inlining is fuzzed too.
        check(&[("css/a.css", css.into_bytes())], bundle)?;
    }

    #[test]
    fn js_references_are_resolved_or_reported(js in soup(JS_FRAGMENTS), module in any::<bool>()) {
        let name = if module { "js/a.mjs" } else { "js/a.js" };
        check(&[(name, js.into_bytes())], false)?;
    }

    #[test]
    fn images_never_panic(
        png in any::<bool>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
        forge in prop::option::of((1u32..70_000, 1u32..70_000)),
    ) {
        let mut bytes = if png { seed_png() } else { seed_jpeg() };
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Some((w, h)) = forge {
            // Forged dimensions in the header: PNG IHDR at 16, JPEG SOF0 after the marker.
            if png {
                bytes[16..20].copy_from_slice(&w.to_be_bytes());
                bytes[20..24].copy_from_slice(&h.to_be_bytes());
            } else if let Some(sof) = bytes.windows(2).position(|p| p == [0xFF, 0xC0])
                && sof + 9 < bytes.len() {
                    bytes[sof + 5..sof + 7].copy_from_slice(&(h.min(65_535) as u16).to_be_bytes());
                    bytes[sof + 7..sof + 9].copy_from_slice(&(w.min(65_535) as u16).to_be_bytes());
                }
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        let name = if png { "img/a.png" } else { "img/a.jpg" };
        let config = config(false);
        let images = kiln_image::ImageTransformer::new(&config);
        let all = [Asset::from_bytes(name, bytes)];
        let _ = images.memory_estimate(&all[0], &config);
        let _ = kiln_image::jpeg::dimensions(&all[0].bytes);
        let out = images.transform(&TransformInput { asset: &all[0], all: &all, config: &config });
        if !out.failed() && !out.bytes.is_empty() {
            // What kiln ships decodes (or is the input, shipped as it is with a warning).
            let decodes = image::load_from_memory(&out.bytes).is_ok();
            prop_assert!(
                decodes || out.bytes == all[0].bytes,
                "{name}: kiln shipped bytes that do not decode: {:?}",
                out.diagnostics
            );
        }
    }
}

fn seed_png() -> Vec<u8> {
    let mut img = image::RgbaImage::new(12, 9);
    for (x, y, p) in img.enumerate_pixels_mut() {
        *p = image::Rgba([x as u8 * 20, y as u8 * 25, 128, 255]);
    }
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn seed_jpeg() -> Vec<u8> {
    let mut img = image::RgbImage::new(16, 16);
    for (x, y, p) in img.enumerate_pixels_mut() {
        *p = image::Rgb([x as u8 * 15, y as u8 * 15, 90]);
    }
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

//! Incremental builds: the persistent cache gives exactly the output of a cold build, detects a
//! corrupt entry, and an edited, added, deleted or renamed file is reflected in the manifest.
//! A property test runs random edit sequences and compares every incremental build with a cold
//! build of the same sources.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{copy_dir, fixture, json, tree};
use kiln::{BuildError, BuildReport, Builder};
use proptest::prelude::*;

fn builder(src: &Path, out: &Path, cache: Option<&Path>) -> Builder {
    let mut b = Builder::new().src(src).out(out);
    b.config_mut().compress.formats = if COMPRESS.with(|c| c.get()) {
        kiln::kiln_core::config::CompressConfig::default().formats
    } else {
        Vec::new()
    };
    b.config_mut().css.bundle = BUNDLE.with(|c| c.get());
    let (hash_length, minify) = SETTINGS.with(|c| c.get());
    b.config_mut().hash_length = hash_length;
    b.config_mut().minify = minify;
    match cache {
        Some(dir) => b.config_mut().cache.dir = dir.to_owned(),
        None => b.config_mut().cache.enabled = false,
    }
    b
}

thread_local! {
    /// Whether builds in this thread precompress (the property test flips it per case).
    static COMPRESS: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
    /// Whether builds in this thread inline `@import`s (the property test flips it per case).
    static BUNDLE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// `hash_length` and `minify` of builds in this thread (the property test changes them
    /// between builds: what the file index recorded under other settings must not be used).
    static SETTINGS: std::cell::Cell<(usize, bool)> = const { std::cell::Cell::new((12, true)) };
}

/// What a server would see: every manifest, and every file they name (with its map and siblings).
fn live_view(out: &Path) -> BTreeMap<String, Vec<u8>> {
    let files = tree(out);
    let mut view = BTreeMap::new();
    for name in [
        "manifest.json",
        "staticfiles.json",
        "cache_manifest.json",
        "importmap.json",
    ] {
        view.insert(name.to_owned(), files[name].clone());
    }
    for entry in json(&out.join("manifest.json"))["assets"]
        .as_object()
        .unwrap()
        .values()
    {
        let file = entry["file"].as_str().unwrap();
        for name in [
            file.to_owned(),
            format!("{file}.map"),
            format!("{file}.br"),
            format!("{file}.gz"),
        ] {
            if let Some(bytes) = files.get(&name) {
                view.insert(name, bytes.clone());
            }
        }
    }
    view
}

fn ok(r: Result<BuildReport, BuildError>) -> BuildReport {
    r.unwrap_or_else(|e| match e {
        BuildError::Diagnostics(d) => {
            panic!("{}", d.iter().map(|d| d.render()).collect::<String>())
        }
        e => panic!("{e}"),
    })
}

#[test]
fn a_warm_build_hits_the_cache_and_equals_a_cold_build() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let first = ok(builder(&fixture("real-world"), &dir.path().join("a"), Some(&cache)).build());
    assert!(
        first.cache.misses > 0 && first.cache.hits == 0,
        "{:?}",
        first.cache
    );
    let second = ok(builder(&fixture("real-world"), &dir.path().join("b"), Some(&cache)).build());
    assert_eq!(second.cache.misses, 0, "{:?}", second.cache);
    assert_eq!(second.cache.hits, first.cache.misses);
    ok(builder(&fixture("real-world"), &dir.path().join("cold"), None).build());
    assert!(
        tree(&dir.path().join("b")) == tree(&dir.path().join("cold")),
        "cached output differs from a cold build"
    );
}

#[test]
fn a_corrupt_cache_entry_is_detected_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let first = ok(builder(&fixture("real-world"), &dir.path().join("a"), Some(&cache)).build());
    // Flip one byte in the middle of every entry, and truncate one.
    let entries: Vec<PathBuf> = walkdir::WalkDir::new(cache.join("v1"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.file_name() != "ledger.json")
        .map(|e| e.into_path())
        .collect();
    assert_eq!(entries.len(), first.cache.misses);
    for (i, path) in entries.iter().enumerate() {
        let mut data = std::fs::read(path).unwrap();
        if i == 0 {
            data.truncate(data.len() / 2);
        } else {
            let mid = data.len() / 2;
            data[mid] ^= 0x20;
        }
        std::fs::write(path, data).unwrap();
    }
    let second = ok(builder(&fixture("real-world"), &dir.path().join("b"), Some(&cache)).build());
    assert_eq!(
        (second.cache.hits, second.cache.misses),
        (0, entries.len()),
        "every corrupt entry is a miss"
    );
    assert!(
        tree(&dir.path().join("a")) == tree(&dir.path().join("b")),
        "and the output is still right"
    );
}

#[test]
fn deleting_and_renaming_sources_update_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    copy_dir(&fixture("real-world"), &src);
    let out = dir.path().join("out");
    let cache = dir.path().join("cache");
    ok(builder(&src, &out, Some(&cache)).build());
    std::fs::remove_file(src.join("css/unrelated.css")).unwrap();
    std::fs::rename(
        src.join("img/stripes.svg"),
        src.join("img/stripes-renamed.svg"),
    )
    .unwrap();
    ok(builder(&src, &out, Some(&cache)).build());
    let flask = json(&out.join("cache_manifest.json"));
    assert!(flask.get("css/unrelated.css").is_none());
    assert!(flask.get("img/stripes.svg").is_none());
    assert!(
        flask["img/stripes-renamed.svg"]
            .as_str()
            .unwrap()
            .starts_with("img/stripes-renamed.")
    );
}

/// One edit of the small source tree used by the property test.
#[derive(Debug, Clone)]
enum Edit {
    /// Rewrite CSS file `n` (0..3) with colour `c`.
    Css(usize, u8),
    /// Rewrite the JS module with a constant.
    Js(u8),
    /// Change the SVG image's colour.
    Image(u8),
    /// Add an extra stylesheet `n`, imported by nobody.
    Add(u8),
    /// Delete the extra stylesheets.
    DeleteExtras,
    /// Rename the image used by `a.css` to a new name and point `a.css` at it.
    RenameImage(u8),
    /// Swap the PNG for the other one of the same size (only its time tells).
    Png(bool),
    /// Other settings: `hash_length` and `minify`.
    Settings(usize, bool),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        1 => (0usize..3, any::<u8>()).prop_map(|(n, c)| Edit::Css(n, c)),
        1 => any::<u8>().prop_map(Edit::Js),
        1 => any::<u8>().prop_map(Edit::Image),
        1 => (0u8..4).prop_map(Edit::Add),
        1 => Just(Edit::DeleteExtras),
        1 => (0u8..3).prop_map(Edit::RenameImage),
        1 => any::<bool>().prop_map(Edit::Png),
        // Twice as likely as the others: a build after new settings is where a record could
        // be trusted that should not be.
        2 => (prop_oneof![Just(8usize), Just(12)], any::<bool>())
            .prop_map(|(n, minify)| Edit::Settings(n, minify)),
    ]
}

fn seed(src: &Path) {
    std::fs::create_dir_all(src.join("css")).unwrap();
    std::fs::create_dir_all(src.join("img")).unwrap();
    std::fs::create_dir_all(src.join("js")).unwrap();
    std::fs::write(src.join("img/pic.svg"), svg(0)).unwrap();
    std::fs::write(src.join("css/a.css"), css(0, "pic.svg")).unwrap();
    std::fs::write(
        src.join("css/b.css"),
        "@import \"a.css\";\n.b { color: #000; background: url(../img2/dot.png) }\n",
    )
    .unwrap();
    std::fs::create_dir_all(src.join("img2")).unwrap();
    std::fs::copy(png(false), src.join("img2/dot.png")).unwrap();
    std::fs::write(
        src.join("css/c.css"),
        "@import \"b.css\";\n.c { color: #111 }\n",
    )
    .unwrap();
    std::fs::write(
        src.join("js/lib.js"),
        "export const n = 0;\n//# sourceMappingURL=lib.js.map\n",
    )
    .unwrap();
    // An input source map the JS transformer chains (a file it reads besides its own).
    std::fs::write(
        src.join("js/lib.js.map"),
        r#"{"version":3,"sources":["lib.ts"],"sourcesContent":["export const n: number = 0;"],"names":[],"mappings":"AAAA"}"#,
    )
    .unwrap();
    std::fs::write(src.join("js/main.js"), "import { n } from './lib.js';\nexport const url = new URL('../img/pic.svg', import.meta.url);\nconsole.log(n);\n").unwrap();
}

/// Two different 73-byte PNGs from the fixtures.
fn png(other: bool) -> PathBuf {
    fixture(if other {
        "cases/django-hard-cases/src/img/with space.png"
    } else {
        "cases/django-hard-cases/src/img/dot.png"
    })
}

/// Gives every file changed in the last minute the time `at`, so the file index (which leaves out
/// files modified in the last two seconds) takes part, while unchanged files keep their time.
fn backdate_recent(src: &Path, at: std::time::SystemTime) {
    let recent = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    for entry in walkdir::WalkDir::new(src)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
    {
        if entry.metadata().unwrap().modified().unwrap() > recent {
            std::fs::File::options()
                .append(true)
                .open(entry.path())
                .unwrap()
                .set_modified(at)
                .unwrap();
        }
    }
}

fn svg(c: u8) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\"><rect width=\"1\" height=\"1\" fill=\"#{c:02x}0000\"/></svg>"
    )
}

fn css(c: u8, image: &str) -> String {
    format!(".a {{ color: #{c:02x}{c:02x}00; background: url(../img/{image}) }}\n")
}

fn image_of(src: &Path) -> String {
    std::fs::read_dir(src.join("img"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .next()
        .unwrap()
}

fn apply(src: &Path, edit: &Edit) {
    match edit {
        Edit::Css(0, c) => std::fs::write(src.join("css/a.css"), css(*c, &image_of(src))).unwrap(),
        Edit::Css(n, c) => {
            let file = if *n == 1 { "b.css" } else { "c.css" };
            let import = if *n == 1 { "a.css" } else { "b.css" };
            std::fs::write(
                src.join("css").join(file),
                format!("@import \"{import}\";\n.x{n} {{ color: #{c:02x}0000 }}\n"),
            )
            .unwrap();
        }
        Edit::Js(v) => {
            let code = format!("export const n = {v};\n//# sourceMappingURL=lib.js.map\n");
            std::fs::write(src.join("js/lib.js"), code).unwrap()
        }
        Edit::Settings(hash_length, minify) => SETTINGS.with(|c| c.set((*hash_length, *minify))),
        Edit::Png(other) => {
            std::fs::copy(png(*other), src.join("img2/dot.png")).unwrap();
        }
        Edit::Image(c) => std::fs::write(src.join("img").join(image_of(src)), svg(*c)).unwrap(),
        Edit::Add(n) => std::fs::write(
            src.join(format!("css/extra{n}.css")),
            format!(".extra{n} {{ margin: {n}px }}\n"),
        )
        .unwrap(),
        Edit::DeleteExtras => {
            for n in 0..4 {
                let _ = std::fs::remove_file(src.join(format!("css/extra{n}.css")));
            }
        }
        Edit::RenameImage(n) => {
            let old = image_of(src);
            let new = format!("pic{n}.svg");
            if old != new {
                std::fs::rename(src.join("img").join(&old), src.join("img").join(&new)).unwrap();
                let a = std::fs::read_to_string(src.join("css/a.css"))
                    .unwrap()
                    .replace(&old, &new);
                std::fs::write(src.join("css/a.css"), a).unwrap();
                let m = std::fs::read_to_string(src.join("js/main.js"))
                    .unwrap()
                    .replace(&old, &new);
                std::fs::write(src.join("js/main.js"), m).unwrap();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 20, ..ProptestConfig::default() })]

    /// After every edit, an incremental build (same output folder, warm cache) serves exactly
    /// what a cold build of the same sources serves.
    #[test]
    fn incremental_builds_equal_cold_builds(edits in prop::collection::vec(edit(), 1..6), compress in any::<bool>(), bundle in any::<bool>()) {
        COMPRESS.with(|c| c.set(compress));
        BUNDLE.with(|c| c.set(bundle));
        SETTINGS.with(|c| c.set((12, true)));
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        seed(&src);
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        backdate_recent(&src, hour_ago);
        let out = dir.path().join("out");
        let cache = dir.path().join("cache");
        ok(builder(&src, &out, Some(&cache)).build());
        for (i, e) in edits.iter().enumerate() {
            apply(&src, e);
            backdate_recent(&src, hour_ago + std::time::Duration::from_secs(60 * (i as u64 + 1)));
            ok(builder(&src, &out, Some(&cache)).build());
            let cold = dir.path().join(format!("cold{i}"));
            ok(builder(&src, &cold, None).build());
            prop_assert!(live_view(&out) == live_view(&cold), "after {:?}", &edits[..=i]);
        }
    }
}

#[test]
fn unchanged_pass_through_files_are_not_read_again_and_a_new_mtime_is_noticed() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    copy_dir(&fixture("real-world"), &src);
    // A font: it passes through untouched and needs no compression, so the index applies to it.
    let font = src.join("fonts/example.woff2");
    std::fs::create_dir_all(src.join("fonts")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/site/assets/fonts/example.woff2"),
        &font,
    )
    .unwrap();
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let set_mtime = |t| {
        std::fs::File::options()
            .append(true)
            .open(&font)
            .unwrap()
            .set_modified(t)
            .unwrap()
    };
    set_mtime(an_hour_ago);
    let out = dir.path().join("out");
    let cache = dir.path().join("cache");
    ok(builder(&src, &out, Some(&cache)).build());
    let before = json(&out.join("manifest.json"))["assets"]["fonts/example.woff2"].clone();

    // Same size, same modification time, other bytes: kiln trusts the index and does not read it.
    let mut bytes = std::fs::read(&font).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&font, &bytes).unwrap();
    set_mtime(an_hour_ago);
    ok(builder(&src, &out, Some(&cache)).build());
    assert_eq!(
        json(&out.join("manifest.json"))["assets"]["fonts/example.woff2"],
        before
    );

    // A new modification time makes kiln read and hash it again.
    set_mtime(an_hour_ago + std::time::Duration::from_secs(60));
    ok(builder(&src, &out, Some(&cache)).build());
    let after = &json(&out.join("manifest.json"))["assets"]["fonts/example.woff2"];
    assert_ne!(after["file"], before["file"]);
    assert_eq!(
        std::fs::read(out.join(after["file"].as_str().unwrap())).unwrap(),
        bytes
    );
}

/// An unchanged image whose outputs the file index recorded is neither read nor loaded from the
/// cache while its files are in the output folder; a missing output file or a new modification
/// time makes kiln build it again, and references to it stay right throughout.
#[test]
fn unchanged_images_are_not_read_again_while_their_files_are_in_the_output_folder() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("img")).unwrap();
    std::fs::create_dir_all(src.join("css")).unwrap();
    let photo = src.join("img/rocket.jpg");
    std::fs::copy(fixture("images/photo-rocket.jpg"), &photo).unwrap();
    let css = src.join("css/a.css");
    std::fs::write(&css, ".a { background: url(../img/rocket.jpg) }\n").unwrap();
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let set_mtime = |path: &Path, t| {
        std::fs::File::options()
            .append(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap()
    };
    set_mtime(&photo, an_hour_ago);
    set_mtime(&css, an_hour_ago);
    let out = dir.path().join("out");
    let cache = dir.path().join("cache");
    let build = || {
        let mut b = builder(&src, &out, Some(&cache));
        b.config_mut().images.widths = vec![120];
        b.config_mut().images.formats = vec![kiln::kiln_core::config::ImageFormat::Webp];
        ok(b.build())
    };
    build();
    let manifest = || json(&out.join("manifest.json"));
    let before = manifest()["assets"].clone();
    let variant = before["img/rocket-120w.webp"]["file"]
        .as_str()
        .unwrap()
        .to_owned();
    let variant_bytes = std::fs::read(out.join(&variant)).unwrap();

    // An output file gone from the folder: the image is built again (from the cache) and the
    // file comes back as it was.
    std::fs::remove_file(out.join(&variant)).unwrap();
    build();
    assert_eq!(manifest()["assets"], before);
    assert_eq!(std::fs::read(out.join(&variant)).unwrap(), variant_bytes);

    // Same size and time, other bytes, and another file edited so the build is not up to date:
    // kiln trusts the index's record of the image and does not read it.
    let mut bytes = std::fs::read(&photo).unwrap();
    // The JFIF header's horizontal density (0x0048): another valid JPEG of the same size.
    assert_eq!(&bytes[6..11], b"JFIF\0");
    bytes[15] ^= 0x01;
    std::fs::write(&photo, &bytes).unwrap();
    set_mtime(&photo, an_hour_ago);
    std::fs::write(&css, ".b { background: url(../img/rocket.jpg) }\n").unwrap();
    set_mtime(&css, an_hour_ago + std::time::Duration::from_secs(60));
    let report = build();
    assert_eq!(
        (report.cache.transform_misses, report.cache.hits),
        (1, 0),
        "the CSS file is transformed, the image neither read nor loaded from the cache"
    );
    let now = manifest()["assets"].clone();
    for logical in [
        "img/rocket.jpg",
        "img/rocket-120w.jpg",
        "img/rocket-120w.webp",
    ] {
        assert_eq!(now[logical], before[logical], "{logical}");
    }
    assert_ne!(now["css/a.css"], before["css/a.css"]);
    let css_out = std::fs::read_to_string(out.join(now["css/a.css"]["file"].as_str().unwrap()));
    let image_name = now["img/rocket.jpg"]["file"].as_str().unwrap();
    assert!(
        css_out
            .unwrap()
            .contains(image_name.trim_start_matches("img/"))
    );

    // A new modification time: read, and its new bytes make a new name.
    set_mtime(&photo, an_hour_ago + std::time::Duration::from_secs(120));
    build();
    let after = manifest()["assets"].clone();
    assert_ne!(
        after["img/rocket.jpg"]["file"],
        before["img/rocket.jpg"]["file"]
    );
}

/// CSS and JS files whose outputs the file index recorded are not read again while nothing they
/// depend on changed; when something did (the image a stylesheet references, a stylesheet it
/// inlines), or when an edited stylesheet inlines one kiln did not read, the output is exactly a
/// cold build's.
#[test]
fn unchanged_stylesheets_are_not_read_again_and_what_they_depend_on_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let files = [
        ("css/base.css", ".base { margin: 0 }\n"),
        (
            "css/app.css",
            "@import \"base.css\";\n.app { background: url(../img/dot.svg) }\n",
        ),
        ("css/other.css", ".other { color: #123456 }\n"),
        ("img/dot.svg", &svg(1)),
        (
            "js/main.js",
            "import { n } from './lib.js';\nconsole.log(n);\n",
        ),
        ("js/lib.js", "export const n = 1;\n"),
    ];
    write_files(&src, &files);
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    backdate_recent(&src, hour_ago);
    let out = dir.path().join("out");
    let cache = dir.path().join("cache");
    // Inlining `@import`s: app.css's transform reads base.css.
    BUNDLE.with(|c| c.set(true));
    ok(builder(&src, &out, Some(&cache)).build());
    let mut step = 0;
    let mut edit_and_compare = |name: &str, text: &str| {
        step += 1;
        std::fs::write(src.join(name), text).unwrap();
        backdate_recent(&src, hour_ago + std::time::Duration::from_secs(60 * step));
        let report = ok(builder(&src, &out, Some(&cache)).build());
        let cold = dir.path().join(format!("cold{step}"));
        ok(builder(&src, &cold, None).build());
        assert!(live_view(&out) == live_view(&cold), "after editing {name}");
        report
    };
    // The image app.css references: app.css is not edited, but its output names the image.
    edit_and_compare("img/dot.svg", &svg(2));
    // A stylesheet app.css inlines: its output changes.
    edit_and_compare("css/base.css", ".base { margin: 1px }\n");
    // app.css edited, base.css unchanged and not read at first: inlining needs its bytes.
    let report = edit_and_compare(
        "css/app.css",
        "@import \"base.css\";\n.app2 { background: url(../img/dot.svg) }\n",
    );
    assert_eq!(
        report.cache.transform_misses, 1,
        "app.css alone is transformed"
    );
    // A module the script imports.
    edit_and_compare("js/lib.js", "export const n = 2;\n");

    // Same size and time, other bytes, and another file edited so the build is not up to date:
    // the unchanged stylesheet is neither read nor loaded from the cache.
    let before = json(&out.join("manifest.json"))["assets"]["css/other.css"].clone();
    std::fs::write(src.join("css/other.css"), ".other { color: #654321 }\n").unwrap();
    backdate_recent(&src, hour_ago);
    std::fs::write(src.join("js/lib.js"), "export const n = 3;\n").unwrap();
    backdate_recent(&src, hour_ago + std::time::Duration::from_secs(3000));
    let report = ok(builder(&src, &out, Some(&cache)).build());
    assert_eq!(
        report.cache.transform_misses, 1,
        "lib.js alone is transformed"
    );
    let now = json(&out.join("manifest.json"))["assets"]["css/other.css"].clone();
    assert_eq!(now, before);
}

/// A file kiln did not read whose bytes changed without its size or modification time changing
/// cannot be used when another file needs it: the build fails naming it and saying what to do.
#[test]
fn an_unread_file_edited_without_a_new_time_fails_the_build_when_it_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write_files(
        &src,
        &[
            ("css/base.css", ".base { margin: 0 }\n"),
            (
                "css/app.css",
                "@import \"base.css\";\n.app { color: red }\n",
            ),
        ],
    );
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    backdate_recent(&src, hour_ago);
    let (out, cache) = (dir.path().join("out"), dir.path().join("cache"));
    BUNDLE.with(|c| c.set(true));
    ok(builder(&src, &out, Some(&cache)).build());
    // Same size, same time, other bytes: the index's record of base.css still holds.
    write_files(&src, &[("css/base.css", ".base { margin: 1 }\n")]);
    backdate_recent(&src, hour_ago);
    // app.css edited: inlining base.css needs its bytes, which are not the recorded ones.
    let app = "@import \"base.css\";\n.app { color: blue }\n";
    write_files(&src, &[("css/app.css", app)]);
    backdate_recent(&src, hour_ago + std::time::Duration::from_secs(60));
    let Err(BuildError::Diagnostics(d)) = builder(&src, &out, Some(&cache)).build() else {
        panic!("the build succeeded");
    };
    let error = d.iter().find(|d| d.is_error()).unwrap();
    assert!(error.path.ends_with("base.css"), "{}", error.render());
    assert!(error.message.contains("touch it"), "{}", error.render());
}

/// A transform that decided something by whether a file is there (a `url()` in a custom
/// property, left as written while its target is missing; an unminified script's
/// `sourceMappingURL`) is not reused from the cache or the file index once that file appears or
/// goes.
#[test]
fn adding_or_removing_a_file_a_transform_looked_for_is_noticed() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write_files(
        &src,
        &[
            (
                "css/a.css",
                ".a { --bg: url(../img/later.svg); background: var(--bg) }\n",
            ),
            (
                "js/lib.js",
                "export const n = 1;\n//# sourceMappingURL=lib.js.map\n",
            ),
        ],
    );
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    backdate_recent(&src, hour_ago);
    let (out, cache) = (dir.path().join("out"), dir.path().join("cache"));
    // Unminified, without source maps: the script's own comment is rewritten only when its map
    // is part of the build.
    SETTINGS.with(|c| c.set((12, false)));
    let build = |out: &Path, cache: Option<&Path>| {
        let mut b = builder(&src, out, cache);
        b.config_mut().source_maps = false;
        b.config_mut().strict = false;
        ok(b.build())
    };
    build(&out, Some(&cache));
    let map = r#"{"version":3,"sources":["lib.ts"],"names":[],"mappings":"AAAA"}"#;
    let steps: [(&str, Option<&str>); 2] = [
        ("img/later.svg", Some(&svg(3))),
        ("js/lib.js.map", Some(map)),
    ];
    for (i, (name, text)) in steps
        .iter()
        .chain(&[("img/later.svg", None), ("js/lib.js.map", None)])
        .enumerate()
    {
        match text {
            Some(text) => write_files(&src, &[(name, text)]),
            None => std::fs::remove_file(src.join(name)).unwrap(),
        }
        backdate_recent(
            &src,
            hour_ago + std::time::Duration::from_secs(60 * (i as u64 + 1)),
        );
        build(&out, Some(&cache));
        let cold = dir.path().join(format!("cold{i}"));
        build(&cold, None);
        assert!(
            live_view(&out) == live_view(&cold),
            "after {} {name}",
            if text.is_some() { "adding" } else { "removing" }
        );
    }
}

/// Writes each (logical path, text) under `src`, making folders as needed.
fn write_files(src: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        std::fs::create_dir_all(src.join(name).parent().unwrap()).unwrap();
        std::fs::write(src.join(name), text).unwrap();
    }
}

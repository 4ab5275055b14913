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
    match cache {
        Some(dir) => b.config_mut().cache.dir = dir.to_owned(),
        None => b.config_mut().cache.enabled = false,
    }
    b
}

thread_local! {
    /// Whether builds in this thread precompress (the property test flips it per case).
    static COMPRESS: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
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
        .filter(|e| e.file_type().is_file())
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
    /// Swap the pass-through PNG for the other one of the same size (only its time tells).
    Png(bool),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0usize..3, any::<u8>()).prop_map(|(n, c)| Edit::Css(n, c)),
        any::<u8>().prop_map(Edit::Js),
        any::<u8>().prop_map(Edit::Image),
        (0u8..4).prop_map(Edit::Add),
        Just(Edit::DeleteExtras),
        (0u8..3).prop_map(Edit::RenameImage),
        any::<bool>().prop_map(Edit::Png),
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
    #![proptest_config(ProptestConfig { cases: 12, max_shrink_iters: 20, ..ProptestConfig::default() })]

    /// After every edit, an incremental build (same output folder, warm cache) serves exactly
    /// what a cold build of the same sources serves.
    #[test]
    fn incremental_builds_equal_cold_builds(edits in prop::collection::vec(edit(), 1..6), compress in any::<bool>()) {
        COMPRESS.with(|c| c.set(compress));
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

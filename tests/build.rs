//! Behaviour of whole builds on real CSS: reference rewriting on vendor stylesheets, the hash
//! cascade, cycles, determinism across folders and thread counts, manifests that agree with the
//! files, source maps that still point at the right lines, and the output folder's safety rules.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use base64::Engine as _;
use common::{assert_references_resolve, copy_dir, fixture, json, names, tree};
use kiln::BuildError;
use sha2::Digest as _;

fn build(src: &Path, out: &Path) -> kiln::BuildReport {
    common::builder(src, out)
        .build()
        .unwrap_or_else(|e| match e {
            BuildError::Diagnostics(d) => {
                panic!("{}", d.iter().map(|d| d.render()).collect::<String>())
            }
            e => panic!("{e}"),
        })
}

fn changed(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> BTreeSet<String> {
    a.iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect()
}

#[test]
fn vendor_css_is_minified_and_every_reference_resolves() {
    let out = tempfile::tempdir().unwrap();
    build(&fixture("real-world"), out.path());
    let checked = assert_references_resolve(out.path(), "/static/");
    // leaflet (3 images) + jquery-ui (6 icon sprites, in two files) + site.css's own.
    assert!(checked >= 20, "only {checked} references checked");

    let files = names(out.path());
    let source = std::fs::read(fixture("real-world/vendor/bootstrap/css/bootstrap.css")).unwrap();
    let built = std::fs::read(
        out.path()
            .join(&files["vendor/bootstrap/css/bootstrap.css"]),
    )
    .unwrap();
    assert!(
        built.len() * 100 < source.len() * 85,
        "bootstrap only went from {} to {} bytes",
        source.len(),
        built.len()
    );
    // bootstrap's inline SVGs are data: URIs and must survive byte for byte (identical rules may
    // be merged, so compare the distinct URIs). Parsing the output also proves it is valid CSS.
    let data_uris = |css: &[u8], name: &str| -> BTreeSet<String> {
        let urls = common::css_urls(std::str::from_utf8(css).unwrap(), name);
        urls.into_iter()
            .filter(|u| u.starts_with("data:"))
            .collect()
    };
    let source_uris = data_uris(&source, "bootstrap.css");
    assert!(source_uris.len() > 10);
    assert_eq!(data_uris(&built, "bootstrap.min.css"), source_uris);
}

#[test]
fn changing_an_image_renames_exactly_the_image_and_the_css_that_reaches_it() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    copy_dir(&fixture("real-world"), &src);
    build(&src, &dir.path().join("a"));
    let before = names(&dir.path().join("a"));

    let pin = src.join("img/pin.svg");
    let svg = std::fs::read_to_string(&pin)
        .unwrap()
        .replace("#2563eb", "#2563ec");
    std::fs::write(&pin, svg).unwrap();
    build(&src, &dir.path().join("b"));
    let after = names(&dir.path().join("b"));

    // pin.svg <- site.css (url) <- print.css (@import). leaflet.css, which site.css imports, is untouched.
    let expected: BTreeSet<String> = ["img/pin.svg", "css/site.css", "css/print.css"]
        .map(String::from)
        .into();
    assert_eq!(changed(&before, &after), expected);
}

#[test]
fn import_cycles_build_with_stable_names_that_follow_their_members() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    copy_dir(&fixture("cases/django-hard-cases/src"), &src);
    build(&src, &dir.path().join("a"));
    build(&src, &dir.path().join("b"));
    let (a, b) = (names(&dir.path().join("a")), names(&dir.path().join("b")));
    assert_eq!(a, b, "rebuilding the same cycle gives the same names");

    let b_css = src.join("css/cycle/b.css");
    std::fs::write(
        &b_css,
        std::fs::read_to_string(&b_css)
            .unwrap()
            .replace("blue", "navy"),
    )
    .unwrap();
    build(&src, &dir.path().join("c"));
    let c = names(&dir.path().join("c"));
    let expected: BTreeSet<String> = ["css/cycle/a.css", "css/cycle/b.css"]
        .map(String::from)
        .into();
    assert_eq!(changed(&a, &c), expected);
    // And each file of the cycle points at the other's new name.
    let a_out = std::fs::read_to_string(dir.path().join("c").join(&c["css/cycle/a.css"])).unwrap();
    assert!(
        a_out.contains(c["css/cycle/b.css"].rsplit('/').next().unwrap()),
        "{a_out}"
    );
}

#[test]
fn output_is_identical_across_folders_and_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut trees = Vec::new();
    for (i, (place, jobs)) in [("one", 1), ("two/deeper/place", 2)]
        .into_iter()
        .enumerate()
    {
        let root = dir.path().join(place);
        // The hard cases use `/static/` absolute paths, so they sit at the root.
        copy_dir(
            &fixture("cases/django-hard-cases/src"),
            &root.join("assets"),
        );
        copy_dir(&fixture("real-world"), &root.join("assets/site"));
        let out = root.join(format!("static-{i}"));
        common::builder(&root.join("assets"), &out)
            .jobs(jobs)
            .build()
            .unwrap();
        trees.push(tree(&out));
    }
    assert!(trees[0].len() > 40);
    assert_eq!(
        trees[0].keys().collect::<Vec<_>>(),
        trees[1].keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &trees[0] {
        assert!(trees[1][name] == *bytes, "{name} differs");
    }
}

#[test]
fn manifests_agree_with_the_files() {
    let out = tempfile::tempdir().unwrap();
    build(&fixture("real-world"), out.path());
    let kiln = json(&out.path().join("manifest.json"));
    let django = json(&out.path().join("staticfiles.json"));
    let flask = json(&out.path().join("cache_manifest.json"));
    assert_eq!(kiln["schema"], 1);
    assert_eq!(django["version"], "1.1");
    assert_eq!(django["hash"].as_str().unwrap().len(), 12);
    let assets = kiln["assets"].as_object().unwrap();
    assert_eq!(django["paths"].as_object().unwrap().len(), assets.len());
    assert_eq!(flask.as_object().unwrap().len(), assets.len());
    for (logical, entry) in assets {
        let file = entry["file"].as_str().unwrap();
        assert_eq!(django["paths"][logical], file);
        assert_eq!(flask[logical], file);
        let bytes = std::fs::read(out.path().join(file)).unwrap();
        assert_eq!(entry["size"], bytes.len());
        let sri = format!(
            "sha384-{}",
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(&bytes))
        );
        assert_eq!(entry["integrity"], sri.as_str(), "{logical}");
        for r in entry["references"].as_array().unwrap() {
            assert!(
                assets.contains_key(r.as_str().unwrap()),
                "{logical} references unknown {r}"
            );
        }
        if let Some(map) = entry.get("map") {
            let map_bytes = std::fs::read(out.path().join(map["file"].as_str().unwrap())).unwrap();
            assert_eq!(map["size"], map_bytes.len());
        }
    }
    assert_eq!(assets["css/site.css"]["content_type"], "text/css");
    assert_eq!(
        assets["css/site.css"]["references"],
        serde_json::json!([
            "img/pin.svg",
            "vendor/jquery-ui/themes/base/theme.css",
            "vendor/leaflet/images/marker-icon.png",
            "vendor/leaflet/leaflet.css"
        ])
    );
    assert_eq!(
        assets["css/print.css"]["imports"],
        serde_json::json!(["css/site.css"])
    );
    assert_eq!(
        assets["vendor/leaflet/images/layers.png"]["content_type"],
        "image/png"
    );
}

#[test]
fn source_maps_still_point_at_the_right_lines_after_urls_are_substituted() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("css/deeply/nested")).unwrap();
    std::fs::create_dir_all(src.join("img/café")).unwrap();
    std::fs::write(
        src.join("img/café/a-long-image-name.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
    )
    .unwrap();
    // Non-ASCII before the URL: the shift must count columns in the map producer's unit.
    let css = ".first {\n  content: \"→ é ✓\";\n  background: url(../../../img/café/a-long-image-name.svg);\n}\n\n.second {\n  color: red;\n}\n";
    std::fs::write(src.join("css/deeply/nested/app.css"), css).unwrap();
    let out = dir.path().join("out");
    build(&src, &out);
    let files = names(&out);
    let built = std::fs::read_to_string(out.join(&files["css/deeply/nested/app.css"])).unwrap();
    let map_name = format!("{}.map", files["css/deeply/nested/app.css"]);
    assert!(built.ends_with(&format!(
        "/*# sourceMappingURL={} */",
        map_name.rsplit('/').next().unwrap()
    )));
    let map =
        sourcemap::SourceMap::from_slice(&std::fs::read(out.join(&map_name)).unwrap()).unwrap();
    // The generated column of `.second` comes after the (lengthened) URL; lightningcss counts
    // generated columns in bytes.
    let col = built.find(".second").unwrap() as u32;
    let token = map.lookup_token(0, col).unwrap();
    assert_eq!(
        (token.get_src_line(), token.get_dst_col()),
        (5, col),
        "`.second` maps to line 6 of the source"
    );
    assert_eq!(token.get_source(), Some("app.css"));
}

#[test]
fn a_failed_build_leaves_the_previous_output_and_manifest_intact() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    copy_dir(&fixture("real-world"), &src);
    let out = dir.path().join("out");
    build(&src, &out);
    let before = tree(&out);

    std::fs::write(
        src.join("css/site.css"),
        ".x { background: url(../img/gone.png) }",
    )
    .unwrap();
    std::fs::write(src.join("css/unrelated.css"), ".y {{ }").unwrap();
    match common::builder(&src, &out).build() {
        Err(BuildError::Diagnostics(d)) => {
            let paths: BTreeSet<String> = d
                .iter()
                .filter(|d| d.is_error())
                .map(|d| d.path.clone())
                .collect();
            assert_eq!(paths.len(), 2, "both broken files are reported: {paths:?}");
        }
        other => panic!("expected a failed build, got {other:?}"),
    }
    assert!(
        tree(&out) == before,
        "the output folder changed after a failed build"
    );
}

#[test]
fn old_builds_are_kept_for_rolling_deploys_then_removed() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("robots.txt"), "not kiln's").unwrap();
    let mut versions = Vec::new();
    for v in 0..4 {
        std::fs::write(src.join("app.css"), format!(".v{v} {{ color: red }}")).unwrap();
        let mut b = common::builder(&src, &out);
        b.config_mut().keep_builds = 2;
        b.build().unwrap();
        versions.push(names(&out)["app.css"].clone());
    }
    let files = tree(&out);
    for old in &versions[..2] {
        assert!(!files.contains_key(old), "{old} should have been removed");
        assert!(!files.contains_key(&format!("{old}.map")));
    }
    for kept in &versions[2..] {
        assert!(files.contains_key(kept), "{kept} should be kept");
    }
    assert!(
        files.contains_key("robots.txt"),
        "files kiln did not write are never removed"
    );

    // A tampered history cannot make kiln delete outside the output folder.
    let outside = dir.path().join("precious.txt");
    std::fs::write(&outside, "keep").unwrap();
    let forged =
        serde_json::json!({"version": 1, "builds": [[], [], ["../precious.txt", "/etc/hostname"]]});
    std::fs::write(out.join(".kiln-builds.json"), forged.to_string()).unwrap();
    std::fs::write(src.join("app.css"), ".v9 { color: red }").unwrap();
    let mut b = common::builder(&src, &out);
    b.config_mut().keep_builds = 2;
    b.build().unwrap();
    assert!(
        outside.exists(),
        "a history entry climbed out of the output folder"
    );
}

#[cfg(unix)]
#[test]
fn outputs_are_readable_by_the_web_server() {
    use std::os::unix::fs::PermissionsExt as _;
    let out = tempfile::tempdir().unwrap();
    build(&fixture("real-world"), out.path());
    for name in [
        "manifest.json",
        "staticfiles.json",
        &names(out.path())["css/site.css"],
    ] {
        let mode = std::fs::metadata(out.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o644, 0o644, "{name} has mode {mode:o}");
    }
}

#[test]
fn absolute_static_paths_resolve_when_the_public_url_is_a_cdn() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    common::write_files(
        &src,
        &[
            ("img/a.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            ("app.css", ".a { background: url(/static/img/a.svg) }"),
        ],
    );
    let out = dir.path().join("out");
    common::builder(&src, &out)
        .public_url("https://cdn.example.com/static/")
        .build()
        .unwrap();
    let files = names(&out);
    let css = std::fs::read_to_string(out.join(&files["app.css"])).unwrap();
    assert!(
        css.contains(&format!("url(/static/{})", files["img/a.svg"])),
        "{css}"
    );
}

#[test]
fn the_output_folder_cannot_be_the_source_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.css"), "a{}").unwrap();
    let err = common::builder(dir.path(), dir.path()).build().unwrap_err();
    assert!(
        err.to_string()
            .contains("`src` and `out` are the same folder"),
        "{err}"
    );
}

#[test]
fn a_build_with_nothing_changed_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    build(&fixture("real-world"), &out);
    let mtimes = |t: &BTreeMap<String, Vec<u8>>| -> Vec<std::time::SystemTime> {
        t.keys()
            .map(|k| std::fs::metadata(out.join(k)).unwrap().modified().unwrap())
            .collect()
    };
    let first = mtimes(&tree(&out));
    let report = build(&fixture("real-world"), &out);
    assert_eq!((report.written, report.manifests_written), (0, 0));
    assert_eq!(mtimes(&tree(&out)), first);
}

/// Sets the modification time of every file and folder under `dir` to an hour ago, so the
/// up-to-date check may trust them (it ignores files modified in the last two seconds).
fn age(dir: &Path) {
    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for e in walkdir::WalkDir::new(dir).contents_first(true) {
        let e = e.unwrap();
        let f = std::fs::File::open(e.path()).unwrap();
        f.set_modified(past).unwrap();
    }
}

#[test]
fn a_build_with_nothing_changed_only_checks_and_any_change_builds() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let out = dir.path().join("out");
    copy_dir(&fixture("real-world"), &src);
    age(&src);
    let cached = || {
        let mut b = kiln::Builder::new().src(&src).out(&out);
        b.config_mut().cache.dir = dir.path().join("cache");
        b
    };
    let run = |b: kiln::Builder| b.build().unwrap_or_else(|e| panic!("{e}"));
    // The output, without the build history (which records each build that wrote something).
    let output = || {
        let mut t = tree(&out);
        t.remove(".kiln-builds.json");
        t
    };
    let first = run(cached());
    assert!(!first.up_to_date && first.written > 0);
    let built = output();

    let second = run(cached());
    assert!(second.up_to_date, "nothing changed");
    assert_eq!((second.written, second.files), (0, first.files));
    assert_eq!(second.warnings, first.warnings);
    assert!(output() == built, "an up-to-date build changed the output");

    // An output deleted behind kiln's back is written again.
    let (name, _) = built.iter().find(|(n, _)| n.ends_with(".css.br")).unwrap();
    std::fs::remove_file(out.join(name)).unwrap();
    let third = run(cached());
    assert!(!third.up_to_date && third.written == 1);
    assert!(output() == built, "the deleted file was not written again");
    assert!(run(cached()).up_to_date);

    // A source edited (its time stays in the past: only its size and time differ).
    let css = walkdir::WalkDir::new(&src)
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .find(|p| p.extension().is_some_and(|e| e == "css"))
        .unwrap();
    let mut text = std::fs::read_to_string(&css).unwrap();
    text.push_str("\n.kiln-edited { color: red }\n");
    std::fs::write(&css, text).unwrap();
    std::fs::File::open(&css)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(1800))
        .unwrap();
    let edited = run(cached());
    assert!(!edited.up_to_date && edited.written > 0);
    assert!(run(cached()).up_to_date);

    // Other settings are another build.
    let mut b = cached();
    b.config_mut().public_url = "/assets/".into();
    assert!(!run(b).up_to_date);

    // A file added just now is built, and not trusted by the next build either (its time could
    // still change within the same tick).
    std::fs::write(src.join("new.txt"), "new").unwrap();
    let added = run(cached());
    assert!(!added.up_to_date && added.files == first.files + 1);
    assert!(!run(cached()).up_to_date, "a racily clean file was trusted");
}

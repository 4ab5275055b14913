//! The `kiln` binary as scripts and CI call it: flags, `kiln.toml`, exit statuses and messages.
//! These are contracts (issue #2): the flag names, config keys and exit codes must not change.

mod common;

use std::path::Path;

use common::{copy_dir, fixture, json, kiln, stderr, tree};

fn site(dir: &Path) {
    copy_dir(&fixture("real-world"), &dir.join("assets"));
}

#[test]
fn build_with_no_flags_reads_kiln_toml_in_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    site(dir.path());
    std::fs::write(
        dir.path().join("kiln.toml"),
        "out = \"public/static\"\n[manifest]\nformats = [\"django\"]\n",
    )
    .unwrap();
    let o = kiln(dir.path(), &["build"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = dir.path().join("public/static");
    assert!(out.join("staticfiles.json").is_file());
    assert!(!out.join("manifest.json").exists() && !out.join("cache_manifest.json").exists());
    let summary = stderr(&o);
    let files = tree(&fixture("real-world")).len();
    assert!(
        summary.contains(&format!("kiln: {files} files,"))
            && summary.contains("written to public/static in"),
        "{summary}"
    );
}

#[test]
fn relative_paths_in_a_config_file_are_relative_to_its_folder_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    site(&project);
    std::fs::write(
        project.join("kiln.toml"),
        "src = \"assets\"\nout = \"static\"\npublic_url = \"/s/\"\n",
    )
    .unwrap();
    // Run from elsewhere: paths resolve against project/, not the current directory.
    let o = kiln(
        dir.path(),
        &[
            "build",
            "--config",
            "project/kiln.toml",
            "--public-url",
            "https://cdn.example.com/static/",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let manifest = json(&project.join("static/manifest.json"));
    assert_eq!(manifest["public_url"], "https://cdn.example.com/static/");

    let o = kiln(
        dir.path(),
        &[
            "build",
            "--config",
            "project/kiln.toml",
            "--out",
            "elsewhere",
            "--manifest",
            "flask",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        dir.path().join("elsewhere/cache_manifest.json").is_file(),
        "--out is relative to the current directory"
    );
}

#[test]
fn no_minify_still_fingerprints_and_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    site(dir.path());
    let o = kiln(
        dir.path(),
        &["build", "--no-minify", "--manifest", "kiln,flask"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let flask = json(&dir.path().join("static/cache_manifest.json"));
    let site_css = std::fs::read_to_string(
        dir.path()
            .join("static")
            .join(flask["css/site.css"].as_str().unwrap()),
    )
    .unwrap();
    assert!(
        site_css.contains(".map-pin {\n"),
        "not minified: {site_css}"
    );
    let pin = flask["vendor/leaflet/images/marker-icon.png"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        site_css.contains(&format!("url(\"../vendor/leaflet/images/{pin}\")"))
            || site_css.contains(&format!("url(../vendor/leaflet/images/{pin})")),
        "{site_css}"
    );
}

#[test]
fn errors_exit_1_with_every_error_at_path_line_col_and_a_code_frame() {
    let dir = tempfile::tempdir().unwrap();
    site(dir.path());
    let o = kiln(dir.path(), &["build"]);
    assert!(o.status.success());
    let before = tree(&dir.path().join("static"));
    std::fs::write(
        dir.path().join("assets/css/unrelated.css"),
        "a {\n  color: red;\n}\n.b { background: url(nope.png) }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("assets/css/print.css"),
        "@import 'missing.css';\n",
    )
    .unwrap();
    let o = kiln(dir.path(), &["build"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("assets/css/unrelated.css:4:22: error: `nope.png` not found"),
        "{err}"
    );
    assert!(
        err.contains("4 | .b { background: url(nope.png) }"),
        "code frame: {err}"
    );
    assert!(
        err.contains("assets/css/print.css:1:9: error: `missing.css` not found"),
        "{err}"
    );
    assert!(
        err.contains("kiln: build failed with 2 errors; static left unchanged"),
        "{err}"
    );
    assert!(tree(&dir.path().join("static")) == before);
}

#[test]
fn config_and_usage_errors_exit_2_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    site(dir.path());
    std::fs::write(
        dir.path().join("kiln.toml"),
        "src = \"assets\"\n\n[css]\nbundel = true\n",
    )
    .unwrap();
    let o = kiln(dir.path(), &["build"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("kiln.toml:4:1: error: unknown field `bundel`"),
        "{}",
        stderr(&o)
    );

    std::fs::remove_file(dir.path().join("kiln.toml")).unwrap();
    let o = kiln(dir.path(), &["build", "--manifest", "kiln,vite"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown manifest format `vite`"),
        "{}",
        stderr(&o)
    );

    let o = kiln(dir.path(), &["build", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));

    let o = kiln(dir.path(), &["build", "--config", "missing.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("missing.toml: cannot read config"),
        "{}",
        stderr(&o)
    );

    std::fs::write(
        dir.path().join("kiln.toml"),
        "targets = \"chrome banana\"\n",
    )
    .unwrap();
    let o = kiln(dir.path(), &["build"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("invalid `targets`"), "{}", stderr(&o));
}

#[test]
fn a_missing_source_folder_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let o = kiln(dir.path(), &["build", "--src", "nowhere"]);
    assert_eq!(o.status.code(), Some(2), "a wrong --src is a usage error");
    assert!(
        stderr(&o).contains("nowhere: source folder does not exist"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn targets_from_kiln_toml_drive_css_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("assets")).unwrap();
    std::fs::write(
        dir.path().join("assets/a.css"),
        ".a { user-select: none; inset: 0 }",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("kiln.toml"),
        "targets = [\"safari 12\"]\n[manifest]\nformats = [\"flask\"]\n",
    )
    .unwrap();
    assert!(kiln(dir.path(), &["build"]).status.success());
    let flask = json(&dir.path().join("static/cache_manifest.json"));
    let old = std::fs::read_to_string(
        dir.path()
            .join("static")
            .join(flask["a.css"].as_str().unwrap()),
    )
    .unwrap();
    assert!(
        old.contains("-webkit-user-select:none") && old.contains("top:0"),
        "{old}"
    );

    std::fs::write(
        dir.path().join("kiln.toml"),
        "targets = [\"chrome 120\"]\n[manifest]\nformats = [\"flask\"]\n",
    )
    .unwrap();
    assert!(kiln(dir.path(), &["build"]).status.success());
    let flask = json(&dir.path().join("static/cache_manifest.json"));
    let new = std::fs::read_to_string(
        dir.path()
            .join("static")
            .join(flask["a.css"].as_str().unwrap()),
    )
    .unwrap();
    assert!(
        !new.contains("-webkit-user-select") && new.contains("inset:0"),
        "{new}"
    );
}

#[test]
fn the_cache_is_used_skipped_with_no_cache_and_emptied_by_cache_clean() {
    let dir = tempfile::tempdir().unwrap();
    site(dir.path());
    std::fs::write(
        dir.path().join("kiln.toml"),
        "[cache]\ndir = \"build-cache\"\n",
    )
    .unwrap();
    let o = kiln(dir.path(), &["build"]);
    assert!(
        stderr(&o).contains(" hits, ") && stderr(&o).contains("(cache: 0 hits,"),
        "{}",
        stderr(&o)
    );
    let o = kiln(dir.path(), &["build"]);
    assert!(
        stderr(&o).contains("misses)") && stderr(&o).contains(", 0 misses)"),
        "a warm build: {}",
        stderr(&o)
    );
    let o = kiln(dir.path(), &["build", "--no-cache"]);
    assert!(
        o.status.success() && !stderr(&o).contains("(cache:"),
        "{}",
        stderr(&o)
    );
    let entries = || {
        walkdir::WalkDir::new(dir.path().join("build-cache"))
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file() && e.file_name() != "CACHEDIR.TAG")
            .count()
    };
    assert!(entries() > 0);
    let o = kiln(dir.path(), &["cache", "clean"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        entries(),
        0,
        "cache clean removes every entry and the file index"
    );
}

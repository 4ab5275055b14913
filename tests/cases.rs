//! Pipeline cases: every folder under `fixtures/cases/` is a source tree (`src/`, optional
//! `kiln.toml`) built through the library; the emitted tree and manifests, or the rendered
//! diagnostics of a failed build, are compared with a snapshot in `tests/snapshots/`.
//! Review changes with `cargo insta review`.

mod common;

use std::fmt::Write as _;
use std::path::Path;

use common::{assert_references_resolve_except, fixture, tree};
use kiln::{BuildError, Builder, Config};

fn render_tree(out: &Path) -> String {
    let mut s = String::new();
    for (name, bytes) in tree(out) {
        if name == ".kiln-builds.json" {
            continue;
        }
        match std::str::from_utf8(&bytes) {
            Ok(text)
                if !name.ends_with(".woff2")
                    && !name.ends_with(".png")
                    && !name.ends_with(".eot") =>
            {
                writeln!(s, "=== {name}\n{}", text.trim_end()).unwrap();
            }
            _ => writeln!(
                s,
                "=== {name} ({} bytes, blake3 {})",
                bytes.len(),
                &blake3::hash(&bytes).to_hex()[..16]
            )
            .unwrap(),
        }
    }
    s
}

fn run_case(case: &Path) -> String {
    let config_file = case.join("kiln.toml");
    let mut config = if config_file.exists() {
        Config::load(&config_file).unwrap()
    } else {
        Config::default()
    };
    // Relative paths keep diagnostics (and so snapshots) free of machine-specific prefixes.
    let rel = case.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap();
    config.src = rel.join("src");
    let out = tempfile::tempdir().unwrap();
    config.out = out.path().join("static");
    // Snapshots must not depend on other builds' cache entries.
    config.cache.enabled = false;
    match Builder::from_config(config.clone()).build() {
        Ok(report) => {
            // URLs the build warned about (strict = false) are the ones allowed to stay unresolved.
            let warned: Vec<String> = report
                .warnings
                .iter()
                .filter(|w| w.code == "missing-reference")
                .filter_map(|w| w.message.split('`').nth(1).map(str::to_owned))
                .collect();
            let warned: Vec<&str> = warned.iter().map(String::as_str).collect();
            let checked = assert_references_resolve_except(&config.out, "/static/", &warned);
            let mut s = format!(
                "built {} files; {checked} internal references resolve\n",
                report.files
            );
            for w in &report.warnings {
                s.push_str(&w.render());
            }
            s + &render_tree(&config.out)
        }
        Err(BuildError::Diagnostics(diagnostics)) => {
            assert!(
                !config.out.exists(),
                "a failed build must not create its output folder"
            );
            let mut s = String::from("build failed\n");
            for d in &diagnostics {
                s.push_str(&d.render());
            }
            s
        }
        Err(e) => panic!("{}: {e}", case.display()),
    }
}

#[test]
fn fixture_cases() {
    let mut cases: Vec<_> = std::fs::read_dir(fixture("cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 5, "fixture cases are missing");
    for case in cases {
        let name = case.file_name().unwrap().to_str().unwrap().to_owned();
        insta::assert_snapshot!(name, run_case(&case));
    }
}

//! JavaScript on real code: three.js's module build and addons (through a `three` alias), lodash,
//! jQuery and bootstrap's ESM build with its source map. Node evaluates the built module graph,
//! so a rewritten import that points at a missing or wrong file fails the test.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::{copy_dir, fixture, json, names};
use kiln::{BuildError, Builder};

fn build_fixture(root: &Path) -> std::path::PathBuf {
    build_fixture_with(root, true)
}

fn build_fixture_with(root: &Path, minify: bool) -> std::path::PathBuf {
    let out = root.join("static");
    let mut b = Builder::from_config_file(root.join("kiln.toml")).unwrap();
    b.config_mut().out = out.clone();
    b.config_mut().minify = minify;
    if let Err(e) = b.build() {
        match e {
            BuildError::Diagnostics(d) => {
                panic!("{}", d.iter().map(|d| d.render()).collect::<String>())
            }
            e => panic!("{e}"),
        }
    }
    out
}

/// A fresh copy of fixtures/js-site, built.
fn site() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("js-site"), dir.path());
    let out = build_fixture(dir.path());
    (dir, out)
}

fn node(args: &[&str]) -> String {
    let o = Command::new("node")
        .args(args)
        .output()
        .expect("node is installed (scripts/test installs it)");
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "node {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

fn run_main(out: &Path) -> serde_json::Value {
    let main = out.join(&names(out)["app/main.js"]);
    let script = format!(
        "const m = await import({main:?}); console.log(JSON.stringify(await m.run()));",
        main = main.to_str().unwrap()
    );
    serde_json::from_str(node(&["--input-type=module", "-e", &script]).trim()).unwrap()
}

#[test]
fn the_unminified_build_runs_too_and_keeps_the_source_text() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("js-site"), dir.path());
    let out = build_fixture_with(dir.path(), false);
    assert_eq!(run_main(&out)["cycle"], "pong");
    let built = std::fs::read_to_string(out.join(&names(&out)["app/lazy.js"])).unwrap();
    assert_eq!(
        built,
        std::fs::read_to_string(dir.path().join("src/app/lazy.js")).unwrap()
    );
    // bootstrap's own map is kept, and its comment points at the map's fingerprinted name.
    let esm =
        std::fs::read_to_string(out.join(&names(&out)["vendor/bootstrap/js/bootstrap.esm.js"]))
            .unwrap();
    let map = names(&out)["vendor/bootstrap/js/bootstrap.esm.js.map"]
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        esm.ends_with(&format!("//# sourceMappingURL={map}\n")),
        "{}",
        &esm[esm.len() - 80..]
    );
}

#[test]
fn the_built_module_graph_loads_and_runs_in_node() {
    let (_dir, out) = site();
    let result = run_main(&out);
    // three (through the alias), its addons, the cycle and the lazy import all ran.
    assert_eq!(result["children"], 1);
    assert_eq!(result["vertices"], 24);
    assert_eq!(result["midpoint"], serde_json::json!([1, 1, 0]));
    assert_eq!(result["loader"], "function");
    assert_eq!(result["cycle"], "pong");
    assert_eq!(result["lazy"], 42);
    // new URL('./data.json', import.meta.url) points at the fingerprinted file, which exists.
    let data_url = result["dataUrl"].as_str().unwrap();
    let data_path = data_url.strip_prefix("file://").unwrap();
    assert!(
        Path::new(data_path).is_file() && common::looks_hashed(data_path),
        "{data_url}"
    );
}

#[test]
fn every_built_file_parses_as_the_kind_of_javascript_it_was() {
    let (_dir, out) = site();
    // vm.Script for classic scripts; vm.SourceTextModule (flagged) for modules.
    let checker = r#"
const fs = require('fs'), vm = require('vm');
const bad = [];
for (const f of process.argv.slice(1)) {
  const code = fs.readFileSync(f, 'utf8');
  try { new vm.Script(code, { filename: f }); continue; } catch (e) {}
  try { new vm.SourceTextModule(code, { identifier: f }); } catch (e) { bad.push(f + ': ' + e.message); }
}
console.log(JSON.stringify(bad));
"#;
    let files: Vec<String> = names(&out)
        .values()
        .filter(|f| f.ends_with(".js"))
        .map(|f| out.join(f).to_str().unwrap().to_owned())
        .collect();
    assert!(files.len() >= 15);
    let mut args = vec!["--experimental-vm-modules", "--no-warnings", "-e", checker];
    args.extend(files.iter().map(String::as_str));
    assert_eq!(node(&args).trim(), "[]");
}

#[test]
fn minified_output_is_much_smaller_and_keeps_license_comments() {
    let (dir, out) = site();
    let names = names(&out);
    for (logical, license) in [
        ("vendor/lodash/lodash.js", "@license"),
        ("vendor/jquery/jquery.js", "jQuery JavaScript Library"),
        ("vendor/three/build/three.core.js", "@license"),
    ] {
        let source = std::fs::read(dir.path().join("src").join(logical)).unwrap();
        let built = std::fs::read_to_string(out.join(&names[logical])).unwrap();
        assert!(
            built.len() * 2 < source.len(),
            "{logical}: {} -> {} bytes",
            source.len(),
            built.len()
        );
        assert!(
            built.contains(license),
            "{logical} lost its licence comment"
        );
    }
}

#[test]
fn changing_a_leaf_module_renames_exactly_the_modules_that_reach_it() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("js-site"), dir.path());
    let before = names(&build_fixture(dir.path()));
    let leaf = dir
        .path()
        .join("src/vendor/three/examples/jsm/curves/NURBSUtils.js");
    let mut code = std::fs::read_to_string(&leaf).unwrap();
    code.push_str("\nexport const kilnCascadeMarker = 1;\n");
    std::fs::write(&leaf, code).unwrap();
    std::fs::remove_dir_all(dir.path().join("static")).unwrap();
    let after = names(&build_fixture(dir.path()));
    let changed: BTreeSet<&str> = before
        .iter()
        .filter(|(k, v)| after[*k] != **v)
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        changed,
        BTreeSet::from([
            "vendor/three/examples/jsm/curves/NURBSUtils.js",
            "vendor/three/examples/jsm/curves/NURBSCurve.js",
            "app/main.js",
        ])
    );

    // Inside the import cycle, a change renames both members and the module importing them.
    let b = dir.path().join("src/app/cycle-b.js");
    std::fs::write(
        &b,
        std::fs::read_to_string(&b)
            .unwrap()
            .replace("'pong'", "'PONG'"),
    )
    .unwrap();
    std::fs::remove_dir_all(dir.path().join("static")).unwrap();
    let cycled = names(&build_fixture(dir.path()));
    let changed: BTreeSet<&str> = after
        .iter()
        .filter(|(k, v)| cycled[*k] != **v)
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        changed,
        BTreeSet::from(["app/cycle-a.js", "app/cycle-b.js", "app/main.js"])
    );
}

#[test]
fn manifest_lists_imports_and_the_import_map_resolves_aliases() {
    let (_dir, out) = site();
    let m = json(&out.join("manifest.json"));
    let main = &m["assets"]["app/main.js"];
    let list = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        list(&main["imports"]),
        [
            "app/cycle-a.js",
            "app/cycle-b.js",
            "vendor/three/build/three.module.js",
            "vendor/three/examples/jsm/curves/NURBSCurve.js",
            "vendor/three/examples/jsm/loaders/GLTFLoader.js",
            "vendor/three/examples/jsm/utils/BufferGeometryUtils.js",
        ]
    );
    assert_eq!(list(&main["dynamic_imports"]), ["app/lazy.js"]);
    assert!(list(&main["references"]).contains(&"app/worker.js".to_owned()));
    assert_eq!(
        list(&m["assets"]["vendor/three/build/three.module.js"]["imports"]),
        ["vendor/three/build/three.core.js"]
    );

    let map = json(&out.join("importmap.json"));
    let three = format!(
        "/static/{}",
        m["assets"]["vendor/three/build/three.module.js"]["file"]
            .as_str()
            .unwrap()
    );
    assert_eq!(map["imports"]["three"], three.as_str());
    assert_eq!(
        map["imports"]["/static/app/main.js"],
        format!("/static/{}", main["file"].as_str().unwrap()).as_str()
    );
}

#[test]
fn bootstraps_input_source_map_is_chained_to_its_original_sources() {
    let (_dir, out) = site();
    let m = json(&out.join("manifest.json"));
    let entry = &m["assets"]["vendor/bootstrap/js/bootstrap.esm.js"];
    let built = std::fs::read_to_string(out.join(entry["file"].as_str().unwrap())).unwrap();
    let map_file = entry["map"]["file"].as_str().unwrap();
    assert!(built.ends_with(&format!(
        "//# sourceMappingURL={}",
        map_file.rsplit('/').next().unwrap()
    )));
    let map =
        sourcemap::SourceMap::from_slice(&std::fs::read(out.join(map_file)).unwrap()).unwrap();
    let sources: Vec<&str> = map.sources().collect();
    assert!(
        sources.iter().any(|s| s.ends_with("js/src/modal.js")),
        "{sources:?}"
    );
    // A mapping inside the minified code (after the multi-line licence comment) lands in one of
    // bootstrap's original source files.
    let (line, text) = built
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("Modal"))
        .unwrap();
    let token = map
        .lookup_token(line as u32, text.find("Modal").unwrap() as u32)
        .unwrap();
    assert!(
        token.get_source().unwrap().contains("js/src/"),
        "{:?}",
        token.get_source()
    );
    assert!(
        map.get_source_contents(0).is_some(),
        "original sources are inlined"
    );
}

#[test]
fn syntax_errors_fail_the_build_with_a_position_and_every_other_error_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    common::write_files(
        &src,
        &[
            ("broken.js", "export function f() {\n  return 1 +;\n}\n"),
            (
                "missing.js",
                "import { x } from './nope.js';\nexport default x;\n",
            ),
            (
                "computed.js",
                "const name = 'a';\nexport const m = import(`./${name}.js`);\n",
            ),
        ],
    );
    let out = dir.path().join("out");
    let err = common::builder(&src, &out).build().unwrap_err();
    let BuildError::Diagnostics(d) = err else {
        panic!("{err}")
    };
    let rendered: String = d.iter().map(|d| d.render()).collect();
    assert!(rendered.contains("broken.js:2:13: error:"), "{rendered}");
    assert!(
        rendered.contains("missing.js:1:20: error: `./nope.js` not found"),
        "{rendered}"
    );
    assert!(
        rendered.contains("computed.js:2:25: warning: `import()` with a computed specifier"),
        "{rendered}"
    );
    assert!(!out.exists(), "nothing is written when the build fails");
}

//! Serving kiln's output with the real thing: Django + WhiteNoise, Flask + flask-static-digest
//! (+ WhiteNoise), nginx with `gzip_static`, and headless Chromium loading the example page.
//! Each test also runs its check on a deliberately broken copy and expects it to fail, so none of
//! them can pass by accident.
//!
//! The tools come from `scripts/test` (a Python virtual environment, Debian's nginx and chromium,
//! playwright-core from npm, all under `target/e2e/`). Without them these tests print a visible
//! "skipping" line, unless `KILN_E2E_REQUIRED=1` (as `scripts/test` sets), where they fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{copy_dir, e2e_dir, json, names, tool};
use kiln::Builder;

fn python() -> Option<PathBuf> {
    tool(
        e2e_dir().join("venv/bin/python"),
        "the Python virtual environment with Django, WhiteNoise and Flask",
    )
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e")
        .join(name)
}

/// The example site, built into a fresh folder; returns (tempdir, output folder).
fn built_example() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/site"),
        &site,
    );
    let _ = std::fs::remove_dir_all(site.join("static"));
    let report = Builder::from_config_file(site.join("kiln.toml"))
        .unwrap()
        .build()
        .unwrap();
    assert!(report.compressed.files > 0, "the example is precompressed");
    (dir, site.join("static"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Copies `out` and lets `break_it` damage the copy.
fn broken_copy(out: &Path, break_it: impl FnOnce(&Path)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(out, dir.path());
    break_it(dir.path());
    dir
}

/// Removes `logical` from the framework manifests in `out` (Django's and Flask's).
fn drop_manifest_entry(out: &Path, logical: &str) {
    for name in ["staticfiles.json", "cache_manifest.json"] {
        let path = out.join(name);
        let mut m = json(&path);
        for key in ["assets", "paths"] {
            if let Some(obj) = m.get_mut(key).and_then(|v| v.as_object_mut()) {
                obj.remove(logical);
            }
        }
        if let Some(obj) = m.as_object_mut() {
            obj.remove(logical);
        }
        std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    }
}

/// Runs a framework check script on the built example for `logical`, then on a copy whose
/// framework manifests lack that entry, which must fail. Returns the fingerprinted file, the
/// check's JSON report and the broken copy's output.
fn framework_check(
    python: &Path,
    check_script: &str,
    logical: &str,
) -> (String, serde_json::Value, String) {
    let (_dir, out) = built_example();
    let file = names(&out)[logical].clone();
    let check = |out: &Path| {
        run(Command::new(python)
            .arg(script(check_script))
            .arg(out)
            .arg(logical)
            .arg(&file))
    };
    let o = check(&out);
    assert!(o.status.success(), "{}", text(&o));
    let result = serde_json::from_slice(&o.stdout).unwrap();
    let broken = broken_copy(&out, |o| drop_manifest_entry(o, logical));
    let o = check(broken.path());
    assert!(
        !o.status.success(),
        "the check passed without the manifest entry: {}",
        text(&o)
    );
    (file, result, text(&o))
}

#[test]
fn django_renders_hashed_urls_and_whitenoise_serves_them_immutable_and_brotli() {
    let Some(python) = python() else { return };
    let (file, result, broken) = framework_check(&python, "django_check.py", "css/app.css");
    assert_eq!(result["static"], format!("/static/{file}").as_str());
    assert_eq!(
        result["cdn"],
        format!("https://static.example.com/{file}").as_str()
    );
    assert!(
        broken.contains("Missing staticfiles manifest entry"),
        "{broken}"
    );
    // Image variants are in staticfiles.json too: `{% static 'img/rocket.avif' %}` works and
    // WhiteNoise serves it immutable.
    let (file, result, _) = framework_check(&python, "django_check.py", "img/rocket.avif");
    assert_eq!(result["static"], format!("/static/{file}").as_str());
    assert_eq!(result["encoding"], serde_json::Value::Null);
}

#[test]
fn the_documented_django_picture_tag_writes_every_variant() {
    let Some(python) = python() else { return };
    let (_dir, out) = built_example();
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/django.md");
    let o = run(Command::new(&python)
        .arg(script("django_picture.py"))
        .arg(&out)
        .arg(&docs));
    assert!(o.status.success(), "{}", text(&o));
    let html: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let html = html["html"].as_str().unwrap();
    let n = names(&out);
    let url = |logical: &str| format!("/static/{}", n[logical]);
    let expected = format!(
        "<picture><source type=\"image/avif\" srcset=\"{} 320w, {} 640w\" sizes=\"(max-width: 640px) 100vw, 640px\">\
         <source type=\"image/webp\" srcset=\"{} 320w, {} 640w\" sizes=\"(max-width: 640px) 100vw, 640px\">\
         <img src=\"{}\" srcset=\"{} 320w, {} 640w\" sizes=\"(max-width: 640px) 100vw, 640px\" width=\"640\" height=\"427\" alt=\"A rocket\"></picture>",
        url("img/rocket-320w.avif"),
        url("img/rocket.avif"),
        url("img/rocket-320w.webp"),
        url("img/rocket.webp"),
        url("img/rocket.jpg"),
        url("img/rocket-320w.jpg"),
        url("img/rocket.jpg"),
    );
    assert_eq!(html, expected);
}

#[test]
fn flask_static_url_for_gives_hashed_and_cdn_urls_and_whitenoise_serves_brotli() {
    let Some(python) = python() else { return };
    let (file, result, broken) = framework_check(&python, "flask_check.py", "js/main.js");
    assert_eq!(result["static_url_for"], format!("/static/{file}").as_str());
    assert_eq!(
        result["cdn"],
        format!("https://cdn.example.com/static/{file}").as_str()
    );
    // flask-static-digest silently falls back to the unhashed name: the check must notice.
    assert!(
        broken.contains("static_url_for gave '/static/js/main.js'"),
        "{broken}"
    );
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child when dropped, so a failing assertion never leaves a server behind.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(port: u16, server: &mut Server) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("the server exited with {status} before listening on {port}");
        }
        assert!(
            Instant::now() < deadline,
            "nothing listens on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn get(python: &Path, url: &str, accept: &str) -> serde_json::Value {
    let o = run(Command::new(python)
        .arg(script("http_get.py"))
        .arg(url)
        .arg(accept));
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn blake2b_of(python: &Path, file: &Path) -> String {
    let o = run(Command::new(python)
        .args([
            "-c",
            "import hashlib,sys;print(hashlib.blake2b(open(sys.argv[1],'rb').read()).hexdigest())",
        ])
        .arg(file));
    String::from_utf8(o.stdout).unwrap().trim().to_owned()
}

#[test]
fn nginx_serves_the_gzip_siblings_with_immutable_caching() {
    let Some(python) = python() else { return };
    let Some(nginx) = common::nginx::binary() else {
        return;
    };
    let (dir, out) = built_example();
    let server = common::nginx::Nginx::start(
        &nginx,
        &dir.path().join("nginx"),
        &format!(
            r#"        location /static/ {{
            alias {out}/;
            gzip_static on;
            location ~ "\.[0-9a-f]{{12}}\.[^/]+$" {{
                add_header Cache-Control "public, max-age=31536000, immutable";
                gzip_static on;
            }}
        }}"#,
            out = out.display()
        ),
    );
    let port = server.port;

    let file = names(&out)["css/app.css"].clone();
    let url = format!("http://127.0.0.1:{port}/static/{file}");
    let r = get(&python, &url, "gzip");
    assert_eq!(r["status"], 200);
    assert_eq!(r["headers"]["content-encoding"], "gzip");
    assert_eq!(
        r["headers"]["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        r["blake2b"],
        blake2b_of(&python, &out.join(format!("{file}.gz"))).as_str(),
        "nginx sent kiln's .gz sibling"
    );
    let plain = get(&python, &url, "identity");
    assert!(plain["headers"].get("content-encoding").is_none());
    assert_eq!(
        plain["blake2b"],
        blake2b_of(&python, &out.join(&file)).as_str()
    );

    // Without the sibling nginx has nothing precompressed to send.
    std::fs::remove_file(out.join(format!("{file}.gz"))).unwrap();
    let r = get(&python, &url, "gzip");
    assert!(r["headers"].get("content-encoding").is_none(), "{r}");
}

#[test]
fn chromium_loads_the_example_page_with_every_request_succeeding() {
    let Some(python) = python() else { return };
    let Some(node_modules) = tool(
        e2e_dir().join("node/node_modules/playwright-core"),
        "playwright-core",
    ) else {
        return;
    };
    let Some(_) = tool(
        PathBuf::from(
            std::env::var("KILN_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
        ),
        "chromium",
    ) else {
        return;
    };
    let (_dir, out) = built_example();
    let browse = |out: &Path| -> (bool, serde_json::Value) {
        let port = free_port();
        let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/site/app.py");
        let mut server = Server(
            Command::new(&python)
                .arg(&app)
                .arg(port.to_string())
                .arg(out)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_for_port(port, &mut server);
        // browser.mjs imports playwright-core: run it from the folder that has it installed.
        let runner = node_modules
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("browser.mjs");
        std::fs::copy(script("browser.mjs"), &runner).unwrap();
        let o = run(Command::new("node")
            .arg(&runner)
            .arg(format!("http://127.0.0.1:{port}/")));
        let report = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(&o)));
        (o.status.success(), report)
    };
    let (ok, report) = browse(&out);
    assert!(ok, "{report:#}");
    // The page pulled CSS (with its @imports), the font and images through url(), and every
    // module of the graph, all under fingerprinted names, Brotli-compressed where text.
    let urls: Vec<&str> = report["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["url"].as_str().unwrap())
        .collect();
    for needle in [
        "/css/base.",
        "/css/components/card.",
        "/fonts/example.",
        "/img/hero.",
        "/js/lib/greet.",
        "/js/lazy.",
        "/img/logo.",
    ] {
        let hit = urls
            .iter()
            .find(|u| u.contains(needle))
            .unwrap_or_else(|| panic!("no request for {needle}: {urls:#?}"));
        assert!(
            common::looks_hashed(hit.rsplit('/').next().unwrap()),
            "{hit} is not fingerprinted"
        );
    }
    let app_css = report["responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["url"].as_str().unwrap().contains("/css/app."))
        .unwrap();
    assert_eq!(app_css["encoding"], "br");
    // The <picture> built from kiln's manifest made Chromium pick the AVIF variant, and every
    // variant (AVIF, WebP, the resized JPEG) decoded at the size the manifest states.
    let picked = report["pictures"][0]["currentSrc"].as_str().unwrap();
    assert!(
        picked.contains("/img/rocket") && picked.ends_with(".avif"),
        "{report:#}"
    );
    let variants = report["variants"].as_array().unwrap();
    assert!(variants.len() >= 5, "{report:#}");
    assert!(
        variants
            .iter()
            .any(|v| v["file"].as_str().unwrap().ends_with(".avif")),
        "{report:#}"
    );

    // A variant that is not the image it claims to be fails the check.
    let broken = broken_copy(&out, |o| {
        let avif = &names(o)["img/rocket.avif"];
        std::fs::write(o.join(avif), b"not an AVIF").unwrap();
    });
    let (ok, report) = browse(broken.path());
    assert!(!ok, "a broken AVIF variant passed: {report:#}");

    // An import left unhashed breaks the page, and the test notices.
    let broken = broken_copy(&out, |o| {
        let main = o.join(&names(o)["js/main.js"]);
        let code = std::fs::read_to_string(&main).unwrap();
        let greet = regex_free_replace(&code, "./lib/greet.", ".js", "./lib/greet.js");
        std::fs::write(&main, &greet).unwrap();
        // The page checks main.js's integrity: give the edited file its own, so what fails is
        // the import, not SRI.
        set_integrity(o, "js/main.js", greet.as_bytes());
        for sibling in ["br", "gz"] {
            let _ = std::fs::remove_file(format!("{}.{sibling}", main.display()));
        }
    });
    let (ok, report) = browse(broken.path());
    assert!(!ok, "a page with an unhashed import passed: {report:#}");
    assert!(
        report["failures"].to_string().contains("lib/greet.js"),
        "{report:#}"
    );
}

/// Sets the `integrity` of `logical` in kiln's manifest in `out` to that of `bytes`.
fn set_integrity(out: &Path, logical: &str, bytes: &[u8]) {
    use base64::Engine as _;
    use sha2::Digest as _;
    let path = out.join("manifest.json");
    let mut m = json(&path);
    m["assets"][logical]["integrity"] = format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(bytes))
    )
    .into();
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
}

/// Replaces the first `prefix...suffix` span in `s` with `with`.
fn regex_free_replace(s: &str, prefix: &str, suffix: &str, with: &str) -> String {
    let start = s.find(prefix).expect("prefix present");
    let end = start + s[start..].find(suffix).expect("suffix present") + suffix.len();
    format!("{}{with}{}", &s[..start], &s[end..])
}

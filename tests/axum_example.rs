//! The `build.rs` integration end to end, on `examples/axum-app` (workspace package
//! `kiln-example-axum`) built by real cargo invocations in the workspace's target folder:
//! - the binary serves its assets (negotiation, ETags, 304, HEAD, immutable and no-cache, 404,
//!   every `url()` of the CSS), from its own bytes, and Chromium loads its page;
//! - cargo re-runs the build script exactly when an input changes (`cargo build -v` says
//!   `Running ... build-script-build` or `Fresh`);
//! - a misspelt asset is a compile error (rustc on a file that includes the generated module).
//!
//! The example reads its configuration from `KILN_EXAMPLE_CONFIG`: each test builds a copy of
//! the example's `kiln.toml` and `assets/` in a temporary folder, so it can edit them.

mod common;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::Digest as _;

/// The tests build the same package in the same target folder: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const PACKAGE: &str = "kiln-example-axum";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The target folder this test binary was built in (`target/debug/deps/<test>` → `target`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_owned()
}

/// A copy of the example's configuration and assets.
struct Project {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("example");
        let example = root_of_example();
        common::copy_dir(&example.join("assets"), &root.join("assets"));
        std::fs::copy(example.join("kiln.toml"), root.join("kiln.toml")).unwrap();
        Project { _dir: dir, root }
    }

    /// `cargo <args>` in the workspace with this project's configuration and `env`. Whole
    /// workspace, as `cargo test` itself: `-p kiln-example-axum` would resolve features for that
    /// package alone and compile another copy of every codec for its build script.
    fn cargo(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(args)
            .arg("--target-dir")
            .arg(target_dir())
            .current_dir(root())
            .env("KILN_EXAMPLE_CONFIG", self.root.join("kiln.toml"))
            .env_remove("KILN_PROFILE")
            .env_remove("RUSTFLAGS");
        // cargo sets CARGO_MANIFEST_DIR, CARGO_PKG_* and more for this test process: passed on,
        // they would differ from what the outer cargo saw, and build scripts that track them
        // (ring's) would run again and relink half the workspace.
        for (key, _) in std::env::vars_os() {
            if key
                .to_str()
                .is_some_and(|k| k.starts_with("CARGO_") && k != "CARGO_HOME")
            {
                cmd.env_remove(key);
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// Builds what `cargo test` builds (the example's binary among it), verbosely.
    fn build(&self, env: &[(&str, &str)]) -> String {
        let o = self.cargo(&["test", "--no-run", "-v", "--locked"], env);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "cargo build failed:\n{text}");
        text
    }
}

fn root_of_example() -> PathBuf {
    root().join("examples/axum-app")
}

/// Whether `cargo build -v` output says the example's build script ran.
fn build_script_ran(log: &str) -> bool {
    log.lines().any(|l| {
        l.trim_start().starts_with("Running")
            && l.contains(&format!("{PACKAGE}-"))
            && l.contains("build-script-build")
    })
}

fn fresh(log: &str) -> bool {
    log.lines()
        .any(|l| l.trim_start().starts_with(&format!("Fresh {PACKAGE} ")))
}

/// The example's server, stopped when dropped.
struct Server {
    child: std::process::Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(binary: &Path) -> Server {
        let port = common::edge::free_port();
        let child = Command::new(binary)
            .args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut server = Server { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("the example exited with {status}");
            }
            assert!(Instant::now() < deadline, "the example never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A request with `headers`: status, headers (lower-case names), body as received.
    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        let agent = common::s3::http();
        let url = self.url(path);
        let mut r = match method {
            "HEAD" => {
                let mut req = agent.head(&url);
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                req.call()
            }
            _ => {
                let mut req = agent.get(&url);
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                req.call()
            }
        }
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let mut body = Vec::new();
        if method != "HEAD" {
            r.body_mut()
                .as_reader()
                .read_to_end(&mut body)
                .unwrap_or_default();
        }
        Response {
            status: r.status().as_u16(),
            headers,
            body,
        }
    }
}

struct Response {
    status: u16,
    headers: std::collections::BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The body, decoded by its Content-Encoding.
    fn decoded(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self.header("content-encoding") {
            None => out.clone_from(&self.body),
            Some("br") => {
                brotli::Decompressor::new(&self.body[..], 4096)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Some("gzip") => {
                flate2::read::GzDecoder::new(&self.body[..])
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Some(other) => panic!("unexpected Content-Encoding {other}"),
        }
        out
    }
}

fn sri(bytes: &[u8]) -> String {
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(bytes))
    )
}

/// The example's OUT_DIR for the last build: the one whose `assets.rs` changed last.
fn out_dir() -> PathBuf {
    let build = target_dir().join("debug/build");
    std::fs::read_dir(&build)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(PACKAGE))
        .map(|e| e.path().join("out"))
        .filter(|p| p.join("assets.rs").is_file())
        .max_by_key(|p| {
            std::fs::metadata(p.join("assets.rs"))
                .and_then(|m| m.modified())
                .unwrap()
        })
        .expect("the example's OUT_DIR")
}

/// Moves a folder aside while alive, and back when dropped.
struct Aside(PathBuf, PathBuf);

impl Drop for Aside {
    fn drop(&mut self) {
        let _ = std::fs::rename(&self.1, &self.0);
    }
}

#[test]
fn the_example_serves_its_assets_from_its_own_bytes_and_chromium_loads_its_page() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let project = Project::new();
    // A release build's assets (embedded, AVIF on), in a debug build of the app.
    project.build(&[("KILN_PROFILE", "release")]);
    let generated = std::fs::read_to_string(out_dir().join("assets.rs")).unwrap();
    assert!(
        generated.contains("Body::Embedded(::core::include_bytes!("),
        "embedded"
    );
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join(PACKAGE);
    std::fs::copy(target_dir().join("debug").join(PACKAGE), &binary).unwrap();
    // Self-contained: the build's files are not where it could read them.
    let built = out_dir().join("kiln");
    let away = out_dir().join("kiln.away");
    std::fs::rename(&built, &away).unwrap();
    let _restore = Aside(built.clone(), away.clone());
    let server = Server::start(&binary);

    let manifest: serde_json::Value =
        serde_json::from_slice(&server.request("GET", "/static/manifest.json", &[]).body)
            .expect("the manifest is served");
    let entry = &manifest["assets"]["css/app.css"];
    let file = entry["file"].as_str().unwrap();
    let path = format!("/static/{file}");

    // Identity: the bytes whose SRI the manifest and the page carry.
    let plain = server.request("GET", &path, &[("Accept-Encoding", "identity")]);
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("content-type"), Some("text/css"));
    assert_eq!(
        plain.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
    assert_eq!(
        plain.header("content-length"),
        Some(plain.body.len().to_string().as_str())
    );
    assert_eq!(sri(&plain.body), entry["integrity"].as_str().unwrap());
    let page = String::from_utf8(server.request("GET", "/", &[]).body).unwrap();
    assert!(
        page.contains(&format!("integrity=\"{}\"", sri(&plain.body))),
        "the page carries the CSS's integrity: {page}"
    );

    // Negotiation by q-values; every representation decodes to the identity bytes, each has its
    // own strong ETag.
    let br = server.request("GET", &path, &[("Accept-Encoding", "gzip, deflate, br")]);
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert!(br.body.len() < plain.body.len());
    assert_eq!(br.decoded(), plain.body);
    let gz = server.request("GET", &path, &[("Accept-Encoding", "gzip;q=1, br;q=0")]);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gz.decoded(), plain.body);
    let etags = [&plain, &br, &gz].map(|r| r.header("etag").unwrap().to_owned());
    assert!(etags.iter().all(|e| e.starts_with('"') && e.ends_with('"')));
    assert!(etags[0] != etags[1] && etags[1] != etags[2] && etags[0] != etags[2]);

    // Revalidation: 304 with no body, for the representation the client holds.
    let again = server.request(
        "GET",
        &path,
        &[("Accept-Encoding", "br"), ("If-None-Match", &etags[1])],
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etags[1].as_str()));
    let other = server.request(
        "GET",
        &path,
        &[("Accept-Encoding", "br"), ("If-None-Match", &etags[0])],
    );
    assert_eq!(
        other.status, 200,
        "another representation's ETag does not match"
    );

    // HEAD: the headers of GET, no body.
    let head = server.request("HEAD", &path, &[("Accept-Encoding", "br")]);
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(br.body.len().to_string().as_str())
    );
    assert!(head.body.is_empty());

    // The logical name is served too, revalidated; an old or unknown hash is not found.
    let logical = server.request("GET", "/static/css/app.css", &[]);
    assert_eq!(logical.status, 200);
    assert_eq!(logical.header("cache-control"), Some("no-cache"));
    assert_eq!(logical.body, plain.body);
    let stale = file.replace(&file[file.len() - 16..file.len() - 4], "000000000000");
    assert_eq!(
        server
            .request("GET", &format!("/static/{stale}"), &[])
            .status,
        404
    );
    assert_eq!(server.request("GET", "/static/nope.css", &[]).status, 404);

    // Every url() in the served CSS resolves to a 200.
    let css = String::from_utf8(plain.body.clone()).unwrap();
    let urls = common::css_urls(&css, file);
    assert!(urls.len() >= 2, "the font and the logo: {urls:?}");
    let base = format!("http://x{path}");
    for u in &urls {
        if common::is_external(u) {
            continue;
        }
        let resolved = resolve(&base, u);
        let r = server.request("GET", &resolved, &[]);
        assert_eq!(r.status, 200, "{u} (from {path}) -> {resolved}");
    }

    // Chromium: no failed request, the CSS applied (its font loaded), the module ran, and the
    // <picture> chose the AVIF.
    if let Some((ok, report)) = common::chromium(&server.url("/")) {
        assert!(ok, "{report:#}");
        assert_eq!(report["marker"], "ready", "{report:#}");
        assert_eq!(report["failures"], serde_json::json!([]), "{report:#}");
        let src = report["pictures"][0]["currentSrc"].as_str().unwrap();
        assert!(src.ends_with(".avif"), "the AVIF was chosen: {src}");
        let sheets = report["sri"].as_array().unwrap();
        assert!(
            sheets
                .iter()
                .any(|s| s["tag"] == "link" && s["applied"] == true && s["integrity"].is_string()),
            "{report:#}"
        );
    }
}

/// `reference` resolved against `base` (an absolute URL with a dummy host), as a path.
fn resolve(base: &str, reference: &str) -> String {
    let reference = reference.split(['?', '#']).next().unwrap();
    if reference.starts_with('/') {
        return reference.to_owned();
    }
    let path = base.trim_start_matches("http://x");
    let mut parts: Vec<&str> = path.split('/').collect();
    parts.pop();
    for seg in reference.split('/') {
        match seg {
            ".." => {
                parts.pop();
            }
            "." => {}
            s => parts.push(s),
        }
    }
    parts.join("/")
}

#[test]
fn cargo_reruns_the_build_script_exactly_when_an_input_changes() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let project = Project::new();
    let build = || project.build(&[]);
    build();
    let log = build();
    assert!(
        fresh(&log) && !build_script_ran(&log),
        "nothing changed: Fresh\n{log}"
    );

    let steps: [(&str, &dyn Fn()); 4] = [
        ("an edited stylesheet", &|| {
            let p = project.root.join("assets/css/app.css");
            let mut css = std::fs::read_to_string(&p).unwrap();
            css.push_str("\nh1 { letter-spacing: 0.01em }\n");
            std::fs::write(p, css).unwrap();
        }),
        ("an added file", &|| {
            std::fs::write(
                project.root.join("assets/img/new.svg"),
                "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
            )
            .unwrap();
        }),
        ("a deleted file", &|| {
            std::fs::remove_file(project.root.join("assets/img/new.svg")).unwrap();
        }),
        ("a changed kiln.toml", &|| {
            let p = project.root.join("kiln.toml");
            let mut toml = std::fs::read_to_string(&p).unwrap();
            toml.push_str("\n[compress]\ngzip_level = 9\n");
            std::fs::write(p, toml).unwrap();
        }),
    ];
    for (what, change) in steps {
        change();
        let log = build();
        assert!(
            build_script_ran(&log),
            "{what}: the build script ran\n{log}"
        );
        let log = build();
        assert!(
            fresh(&log) && !build_script_ran(&log),
            "after {what}, nothing changed: Fresh\n{log}"
        );
    }
    // An environment variable kiln reads.
    let log = project.build(&[("KILN_PROFILE", "debug")]);
    assert!(
        build_script_ran(&log),
        "KILN_PROFILE: the build script ran\n{log}"
    );

    // A broken stylesheet fails the build script with the file, line and column.
    std::fs::write(
        project.root.join("assets/css/app.css"),
        "a { color: red }\nb { background: url(missing.png) }\n",
    )
    .unwrap();
    let o = project.cargo(&["test", "--no-run", "--locked"], &[]);
    let text = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{text}");
    assert!(text.contains("css/app.css:2:"), "{text}");
}

#[test]
fn a_misspelt_asset_is_a_compile_error() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let project = Project::new();
    project.build(&[]);
    // A crate that includes the generated module and names a misspelt asset, compiled with
    // rustc against the kiln_serve this workspace built (as trybuild would).
    let dir = tempfile::tempdir().unwrap();
    let module = out_dir().join("assets.rs");
    let source = |name: &str| {
        format!(
            "mod assets {{ include!({module:?}); }}\n\
             fn main() {{ let asset: &kiln_serve::Asset = &assets::css::{name}; \
             println!(\"{{}}\", asset.url); }}\n"
        )
    };
    let deps = target_dir().join("debug/deps");
    let kiln_serve = std::fs::read_dir(&deps)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("libkiln_serve-") && name.ends_with(".rlib")
        })
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).unwrap())
        .expect("kiln_serve's rlib");
    let rustc = |name: &str| {
        let file = dir.path().join(format!("{name}.rs"));
        std::fs::write(&file, source(name)).unwrap();
        Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .args([
                "--edition",
                "2024",
                "--crate-type",
                "bin",
                "--emit",
                "metadata",
            ])
            .arg("--out-dir")
            .arg(dir.path())
            .arg("-L")
            .arg(format!("dependency={}", deps.display()))
            .arg("--extern")
            .arg(format!("kiln_serve={}", kiln_serve.display()))
            .arg(&file)
            .output()
            .unwrap()
    };
    let right = rustc("APP_CSS");
    assert!(
        right.status.success(),
        "the right name compiles: {}",
        String::from_utf8_lossy(&right.stderr)
    );
    let wrong = rustc("APP_CSZ");
    let text = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success(), "{text}");
    assert!(
        text.contains("error[E0425]") && text.contains("APP_CSZ"),
        "{text}"
    );
    assert!(
        text.contains("APP_CSS"),
        "rustc suggests the right name: {text}"
    );
}

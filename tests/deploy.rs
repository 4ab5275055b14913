//! `kiln deploy` end to end against a real S3-compatible server (SeaweedFS, see
//! `common::s3`): every object read back over plain HTTP as a CDN would, no-op and incremental
//! deploys, upload order under a failing server, pruning, the deploy lock, errors, dry runs.
//! Each test deploys to a bucket of its own; they take turns on the one server.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::s3::{ACCESS_KEY, FaultProxy, S3, SECRET_KEY};
use common::{copy_dir, fixture, json};

/// A project: the example site plus real vendored files (leaflet, jQuery UI), with a kiln.toml
/// deploying to `bucket` under `static/`.
struct Site {
    _dir: tempfile::TempDir,
    root: PathBuf,
    bucket: String,
    /// `public_url` in kiln.toml (the CDN's URL).
    public_url: std::cell::RefCell<String>,
}

impl Site {
    fn new(s3: &S3, bucket: &str, deploy_extra: &str) -> Site {
        Site::with_images(s3, bucket, deploy_extra, "formats = []")
    }

    /// `images` goes under `[images]` (variants are slow to encode in test builds: only the
    /// test that reads them back makes them).
    fn with_images(s3: &S3, bucket: &str, deploy_extra: &str, images: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("site");
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/site/assets"),
            &root.join("assets"),
        );
        copy_dir(&fixture("real-world/vendor"), &root.join("assets/vendor"));
        s3.create_bucket(bucket);
        let site = Site {
            _dir: dir,
            root,
            bucket: bucket.to_owned(),
            public_url: "https://cdn.example.com/static/".to_owned().into(),
        };
        site.configure(&s3.endpoint(), deploy_extra, images);
        site
    }

    fn configure(&self, endpoint: &str, deploy_extra: &str, images: &str) {
        let toml = format!(
            "src = \"assets\"\nout = \"static\"\npublic_url = \"{public_url}\"\n\
             [cache]\ndir = \"cache\"\n\
             [images]\nwidths = [320]\n{images}\n\
             [[images.overrides]]\npaths = [\"vendor/**\"]\nformats = []\nwidths = []\n\
             [deploy]\nbucket = \"{}\"\nprefix = \"static/\"\nendpoint = \"{endpoint}\"\n\
             {grace}{deploy_extra}\n",
            self.bucket,
            public_url = self.public_url.borrow(),
            grace = if deploy_extra.contains("grace") {
                ""
            } else {
                "grace = \"0s\"\n"
            },
        );
        std::fs::write(self.root.join("kiln.toml"), toml).unwrap();
    }

    fn out(&self) -> PathBuf {
        self.root.join("static")
    }

    fn build(&self) {
        let o = run(&self.root, &["build", "-q"], &[]);
        assert!(o.status.success(), "build: {}", text(&o));
    }

    fn deploy(&self, args: &[&str]) -> Output {
        run(&self.root, &[&["deploy"], args].concat(), &[])
    }

    /// `kiln <args>` in the site with `env` added.
    fn kiln(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        run(&self.root, args, env)
    }

    /// `kiln deploy --json`, which must succeed; the parsed outcome.
    fn deploy_json(&self) -> serde_json::Value {
        let o = self.deploy(&["--json"]);
        assert!(o.status.success(), "deploy: {}", text(&o));
        serde_json::from_slice(&o.stdout).expect("--json prints JSON")
    }

    /// `kiln deploy --json` with `env`, which must succeed; the parsed outcome.
    fn deploy_json_with(&self, env: &[(&str, &str)]) -> serde_json::Value {
        let o = self.kiln(&["deploy", "--json"], env);
        assert!(o.status.success(), "deploy: {}", text(&o));
        serde_json::from_slice(&o.stdout).expect("--json prints JSON")
    }

    fn edit(&self, rel: &str, append: &str) {
        let path = self.root.join("assets").join(rel);
        let mut css = std::fs::read_to_string(&path).unwrap();
        css.push_str(append);
        std::fs::write(path, css).unwrap();
    }

    /// Every path of the current build that kiln deploys (from the manifest), with its class.
    fn deployed_files(&self) -> BTreeMap<String, &'static str> {
        let m = json(&self.out().join("manifest.json"));
        let mut files = BTreeMap::new();
        for (_, a) in m["assets"].as_object().unwrap() {
            files.insert(a["file"].as_str().unwrap().to_owned(), "hashed");
            if let Some(map) = a["map"]["file"].as_str() {
                files.insert(map.to_owned(), "hashed");
            }
        }
        for name in [
            "manifest.json",
            "staticfiles.json",
            "cache_manifest.json",
            "importmap.json",
        ] {
            files.insert(name.to_owned(), "manifest");
        }
        files
    }
}

/// Runs kiln in `cwd` with the test server's credentials (plus `env`).
fn run(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("kiln runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn uploads(outcome: &serde_json::Value) -> BTreeSet<String> {
    outcome["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["path"].as_str().unwrap().to_owned())
        .collect()
}

fn expected_type(path: &str) -> &'static str {
    let ext = path.rsplit('.').next().unwrap();
    match ext {
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json; charset=utf-8",
        "svg" => "image/svg+xml; charset=utf-8",
        "png" => "image/png",
        "jpg" => "image/jpeg",
        "avif" => "image/avif",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        _ => "",
    }
}

/// Reads every deployed object back anonymously and checks bytes, Content-Type, Cache-Control
/// and the SHA-256 metadata against the local build.
fn assert_bucket_matches(s3: &S3, site: &Site) -> usize {
    let files = site.deployed_files();
    for (path, class) in &files {
        let local = std::fs::read(site.out().join(path)).unwrap();
        let got = s3.get(&site.bucket, &format!("static/{path}"));
        assert_eq!(got.status, 200, "{path} is not in the bucket");
        assert!(got.body == local, "{path}: bytes differ from the build");
        let expected = expected_type(path);
        if !expected.is_empty() {
            assert_eq!(got.header("content-type"), Some(expected), "{path}");
        }
        let cc = got.header("cache-control").unwrap_or_default();
        match *class {
            "hashed" => assert_eq!(cc, "public, max-age=31536000, immutable", "{path}"),
            _ => assert_eq!(cc, "public, max-age=60, must-revalidate", "{path}"),
        }
        let sha = sha2_hex(&local);
        assert_eq!(
            got.header("x-amz-meta-kiln-sha256"),
            Some(sha.as_str()),
            "{path}"
        );
    }
    files.len()
}

fn sha2_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn last_modified(s3: &S3, site: &Site) -> BTreeMap<String, String> {
    site.deployed_files()
        .keys()
        .map(|p| {
            let got = s3.get(&site.bucket, &format!("static/{p}"));
            (
                p.clone(),
                got.header("last-modified").unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn deploy_publishes_every_file_with_its_headers_then_only_what_changed() {
    let Some(s3) = S3::shared() else { return };
    let _serial = S3::lock();
    let site = Site::with_images(s3, "kiln-publish", "", "");
    // Unhashed copies too, for URLs that cannot carry a hash (emails, robots.txt).
    let toml = std::fs::read_to_string(site.root.join("kiln.toml")).unwrap();
    std::fs::write(
        site.root.join("kiln.toml"),
        format!("unhashed = true\n{toml}"),
    )
    .unwrap();
    site.build();
    let first = site.deploy_json();
    let count = assert_bucket_matches(s3, &site);
    assert_eq!(
        uploads(&first).len(),
        first["uploaded"].as_u64().unwrap() as usize
    );
    let manifest = json(&site.out().join("manifest.json"));
    let variants = manifest["assets"]
        .as_object()
        .unwrap()
        .values()
        .filter(|a| a["variant_of"].is_string())
        .count();
    assert!(
        variants >= 3,
        "AVIF/WebP and resized variants are deployed too"
    );
    // The unhashed copies, served briefly cached.
    for logical in ["css/app.css", "js/main.js", "img/rocket.jpg"] {
        let got = s3.get(&site.bucket, &format!("static/{logical}"));
        assert_eq!(got.status, 200, "{logical}");
        assert_eq!(got.body, std::fs::read(site.out().join(logical)).unwrap());
        assert_eq!(
            got.header("cache-control"),
            Some("public, max-age=60, must-revalidate")
        );
    }
    assert!(count > 40, "{count} files");

    // Nothing changed: nothing is uploaded, no object is rewritten.
    let before = last_modified(s3, &site);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let again = site.deploy_json();
    assert!(uploads(&again).is_empty(), "{again}");
    assert_eq!(
        again["unchanged"],
        first["uploads"].as_array().unwrap().len()
    );
    assert_eq!(
        last_modified(s3, &site),
        before,
        "a no-op deploy rewrote objects"
    );

    // One CSS edit: base.css changes, so does app.css (it imports base.css), their unhashed
    // copies and the manifests that name them; nothing else.
    let old_files: BTreeSet<String> = site.deployed_files().into_keys().collect();
    let unhashed_and_manifests = |site: &Site| -> BTreeMap<String, Vec<u8>> {
        let m = json(&site.out().join("manifest.json"));
        m["assets"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .chain([
                "manifest.json",
                "staticfiles.json",
                "cache_manifest.json",
                "importmap.json",
            ])
            .map(|p| (p.to_owned(), std::fs::read(site.out().join(p)).unwrap()))
            .collect()
    };
    let old_unhashed = unhashed_and_manifests(&site);
    site.edit("css/base.css", "\n.deployed { color: teal; }\n");
    site.build();
    let new_files: BTreeSet<String> = site.deployed_files().into_keys().collect();
    let mut expected: BTreeSet<String> = new_files.difference(&old_files).cloned().collect();
    assert!(
        expected.iter().any(|p| p.starts_with("css/app."))
            && expected.iter().any(|p| p.starts_with("css/base.")),
        "the edit cascades to app.css: {expected:?}"
    );
    let changed: Vec<String> = unhashed_and_manifests(&site)
        .into_iter()
        .filter(|(p, bytes)| old_unhashed.get(p) != Some(bytes))
        .map(|(p, _)| p)
        .collect();
    assert!(
        changed.contains(&"css/app.css".to_owned())
            && changed.contains(&"manifest.json".to_owned())
    );
    expected.extend(changed);
    let third = site.deploy_json();
    assert_eq!(uploads(&third), expected);
    assert_bucket_matches(s3, &site);
}

#[test]
fn a_failure_before_the_manifests_leaves_the_previous_release_whole_and_a_rerun_completes() {
    let Some(s3) = S3::shared() else { return };
    let _serial = S3::lock();
    let proxy = FaultProxy::start(s3.port);
    let site = Site::new(s3, "kiln-order", "");
    site.build();
    assert!(site.deploy(&[]).status.success());
    let v1_manifest = s3.get(&site.bucket, "static/staticfiles.json").body;

    // A new release whose CSS uploads are refused by the store.
    site.edit("css/base.css", "\n.v2 { color: red; }\n");
    site.build();
    site.configure(&proxy.endpoint(), "", "formats = []");
    proxy.fail_puts_to(Some("/static/css/app."));
    let o = site.deploy(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let message = text(&o);
    assert!(
        message.contains("access denied") && message.contains("static/css/app."),
        "{message}"
    );
    // The bucket's manifests still describe release 1, and every file they name is there.
    for name in ["staticfiles.json", "cache_manifest.json", "manifest.json"] {
        let got = s3.get(&site.bucket, &format!("static/{name}"));
        assert_eq!(got.status, 200);
        let m: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
        let files: Vec<String> = match name {
            "staticfiles.json" => m["paths"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect(),
            "cache_manifest.json" => m
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect(),
            _ => m["assets"]
                .as_object()
                .unwrap()
                .values()
                .map(|a| a["file"].as_str().unwrap().to_owned())
                .collect(),
        };
        for f in files {
            assert_eq!(
                s3.get(&site.bucket, &format!("static/{f}")).status,
                200,
                "{name} names {f}, which is missing"
            );
        }
    }
    assert_eq!(
        s3.get(&site.bucket, "static/staticfiles.json").body,
        v1_manifest
    );

    // The store works again: the re-run completes, without uploading again what had landed.
    proxy.fail_puts_to(None);
    let rerun = site.deploy_json();
    let again = uploads(&rerun);
    assert!(again.iter().any(|p| p.starts_with("css/app.")), "{again:?}");
    assert!(
        !again.iter().any(|p| p.starts_with("css/base.")),
        "base.css had landed: {again:?}"
    );
    assert_bucket_matches(s3, &site);
}

#[test]
fn pruning_keeps_the_last_releases_and_never_touches_other_keys() {
    let Some(s3) = S3::shared() else { return };
    let _serial = S3::lock();
    let site = Site::new(s3, "kiln-prune", "keep_releases = 2");
    s3.put_foreign(&site.bucket, "static/robots.txt", b"User-agent: *\n");
    s3.put_foreign(&site.bucket, "elsewhere/data.bin", b"not kiln's");
    let mut releases = Vec::new();
    for i in 0..3 {
        site.edit(
            "css/components/card.css",
            &format!("\n.r{i} {{ order: {i}; }}\n"),
        );
        site.build();
        assert!(site.deploy(&[]).status.success());
        releases.push(site.deployed_files().into_keys().collect::<BTreeSet<_>>());
    }
    // Release 0's own files (card.css, app.css that imports it, their maps) are gone; release
    // 1's and 2's remain, and so do keys kiln never uploaded.
    let only_first: Vec<&String> = releases[0]
        .iter()
        .filter(|p| !releases[1].contains(*p) && !releases[2].contains(*p))
        .collect();
    assert!(only_first.len() >= 2, "{only_first:?}");
    for p in &only_first {
        assert_eq!(
            s3.get(&site.bucket, &format!("static/{p}")).status,
            404,
            "{p} was not pruned"
        );
    }
    for p in releases[1].iter().chain(&releases[2]) {
        assert_eq!(
            s3.get(&site.bucket, &format!("static/{p}")).status,
            200,
            "{p} was pruned"
        );
    }
    assert_eq!(s3.get(&site.bucket, "static/robots.txt").status, 200);
    assert_eq!(s3.get(&site.bucket, "elsewhere/data.bin").status, 200);

    // More deletions than max_deletes: refused before anything changes, then allowed by --yes.
    site.configure(
        &s3.endpoint(),
        "keep_releases = 2\nmax_deletes = 1",
        "formats = []",
    );
    site.edit("css/base.css", "\n.big { order: 9; }\n");
    site.build();
    let before = s3.keys(&site.bucket);
    let o = site.deploy(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("max_deletes"), "{}", text(&o));
    assert_eq!(
        s3.keys(&site.bucket),
        before,
        "a refused deploy changed the bucket"
    );
    let o = site.deploy(&["--yes"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_bucket_matches(s3, &site);
}

#[test]
fn a_failed_deletion_still_records_the_release_and_the_next_deploy_deletes() {
    let Some(s3) = S3::shared() else { return };
    let _serial = S3::lock();
    let proxy = FaultProxy::start(s3.port);
    let site = Site::new(s3, "kiln-undeleted", "keep_releases = 1");
    site.configure(&proxy.endpoint(), "keep_releases = 1", "formats = []");
    site.build();
    assert!(site.deploy(&[]).status.success());
    let old_css = common::names(&site.out())["css/app.css"].clone();
    site.edit("css/base.css", "\n.next { order: 1; }\n");
    site.build();
    // The credentials may not delete (a common safety policy): S3's batch delete is a POST.
    proxy.fail_requests("POST", Some("?delete"));
    let o = site.deploy(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("access denied to delete"), "{}", text(&o));
    // The new release is live and recorded all the same.
    assert_bucket_matches(s3, &site);
    let ledger = s3.get(&site.bucket, "static/.kiln/releases.json");
    let ledger: serde_json::Value = serde_json::from_slice(&ledger.body).unwrap();
    let manifest = std::fs::read(site.out().join("manifest.json")).unwrap();
    assert_eq!(ledger["releases"][0]["id"], &sha2_hex(&manifest)[..16]);
    assert_eq!(
        s3.get(&site.bucket, &format!("static/{old_css}")).status,
        200
    );
    // Allowed again, the next deploy (nothing else changed) deletes what was left.
    proxy.fail_requests("POST", None);
    let next = site.deploy_json();
    assert!(uploads(&next).is_empty(), "{next}");
    assert!(next["deleted"].as_u64().unwrap() >= 1, "{next}");
    assert_eq!(
        s3.get(&site.bucket, &format!("static/{old_css}")).status,
        404
    );
}

#[test]
fn a_deploy_refuses_while_another_holds_the_lock_and_takes_over_a_lapsed_one() {
    let Some(s3) = S3::shared() else { return };
    let _serial = S3::lock();
    let site = Site::new(s3, "kiln-lock", "");
    site.build();
    let lock = |expires: &str| {
        format!(
            "{{\"holder\":\"kiln 0.1.0 on ci-7, pid 4242\",\"since\":\"2026-01-01T00:00:00Z\",\"expires\":\"{expires}\"}}"
        )
    };
    s3.put_foreign(
        &site.bucket,
        "static/.kiln/lock.json",
        lock("2999-01-01T00:00:00Z").as_bytes(),
    );
    let o = site.deploy(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("another deploy is in progress (kiln 0.1.0 on ci-7, pid 4242"),
        "{}",
        text(&o)
    );
    assert_eq!(s3.get(&site.bucket, "static/manifest.json").status, 404);
    // A lapsed lock (its deploy died) is taken over, and released after the deploy.
    s3.put_foreign(
        &site.bucket,
        "static/.kiln/lock.json",
        lock("2020-01-01T00:00:00Z").as_bytes(),
    );
    let o = site.deploy(&[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_released(s3, &site);
    assert_bucket_matches(s3, &site);
}

#[test]
fn two_deploys_at_once_never_interleave_the_second_is_refused() {
    let Some(s3) = S3::shared() else { return };
    let _serial = S3::lock();
    let proxy = FaultProxy::start(s3.port);
    let site = Site::new(s3, "kiln-race", "concurrency = 2");
    site.build();
    // The first deploy goes through a slow link, so it is still uploading when the second starts.
    site.configure(&proxy.endpoint(), "concurrency = 2", "formats = []");
    proxy.delay_puts(150);
    let slow = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("deploy")
        .current_dir(&site.root)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while s3.get(&site.bucket, "static/.kiln/lock.json").status != 200 {
        assert!(
            started.elapsed().as_secs() < 30,
            "the first deploy never took the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    site.configure(&s3.endpoint(), "concurrency = 2", "formats = []");
    let second = site.deploy(&[]);
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    assert!(
        text(&second).contains("another deploy is in progress"),
        "{}",
        text(&second)
    );
    let first = slow.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", text(&first));
    assert!(proxy.puts.load(std::sync::atomic::Ordering::SeqCst) > 10);
    assert_bucket_matches(s3, &site);
    assert_released(s3, &site);
}

/// The deploy lock is released: marked lapsed (kiln needs no delete permission for it).
fn assert_released(s3: &S3, site: &Site) {
    let lock = s3.get(&site.bucket, "static/.kiln/lock.json");
    assert_eq!(lock.status, 200);
    let lock: serde_json::Value = serde_json::from_slice(&lock.body).unwrap();
    assert_eq!(lock["expires"], "1970-01-01T00:00:00Z", "{lock}");
}

#[test]
fn dry_run_changes_nothing_and_json_parses() {
    let Some(s3) = S3::shared() else { return };
    let _serial = S3::lock();
    let site = Site::new(s3, "kiln-dry", "");
    site.build();
    let o = site.deploy(&["--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    let listing = String::from_utf8_lossy(&o.stdout);
    assert!(listing.contains("upload manifest.json (new,"), "{listing}");
    let o = site.deploy(&["--dry-run", "--json"]);
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["dry_run"], true);
    let planned = uploads(&plan);
    assert_eq!(
        planned,
        site.deployed_files().into_keys().collect::<BTreeSet<_>>()
    );
    // kiln's manifest is the very last upload.
    assert_eq!(
        plan["uploads"].as_array().unwrap().last().unwrap()["path"],
        "manifest.json"
    );
    assert!(
        s3.keys(&site.bucket).is_empty(),
        "a dry run wrote to the bucket"
    );
}

#[test]
fn a_lost_ledger_is_rebuilt_from_the_objects_metadata_without_uploading_again() {
    let Some(s3) = S3::shared() else { return };
    let _serial = S3::lock();
    let site = Site::new(
        s3,
        "kiln-adopt",
        "precompressed = true\nmultipart_threshold_mb = 5",
    );
    // A file large enough to go up in parts.
    let big: Vec<u8> = (0..6u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(site.root.join("assets/data.bin"), &big).unwrap();
    site.build();
    let first = site.deploy_json();
    let names = common::names(&site.out());
    let got = s3.get(&site.bucket, &format!("static/{}", names["data.bin"]));
    assert!(got.body == big, "the multipart object's bytes differ");
    // S3 gives multipart uploads an ETag of the form "<md5 of part md5s>-<parts>".
    assert!(
        got.header("etag").unwrap().contains('-'),
        "not a multipart ETag: {:?}",
        got.header("etag")
    );
    // Precompressed siblings, under their own keys, for an edge rule to pick.
    let css = &names["css/app.css"];
    let br = s3.get(&site.bucket, &format!("static/{css}.br"));
    assert_eq!(br.status, 200);
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert_eq!(br.header("content-type"), Some("text/css; charset=utf-8"));
    assert!(uploads(&first).contains(&format!("{css}.gz")));

    s3.delete_foreign(&site.bucket, "static/.kiln/releases.json");
    let again = site.deploy_json();
    assert!(uploads(&again).is_empty(), "{again}");
    assert_eq!(again["unchanged"], first["uploaded"]);
}

#[test]
fn errors_say_what_to_do_and_never_print_a_credential() {
    let Some(s3) = S3::shared() else { return };
    let _serial = S3::lock();
    let site = Site::new(s3, "kiln-errors", "");
    let secret_env = [("AWS_SECRET_ACCESS_KEY", "wR0ngS3cretValue/abcdefghijklmnop")];
    let check = |o: &Output, code: i32, needle: &str| {
        let t = text(o);
        assert_eq!(o.status.code(), Some(code), "{t}");
        assert!(t.contains(needle), "expected `{needle}` in: {t}");
        for secret in [SECRET_KEY, ACCESS_KEY, secret_env[0].1] {
            assert!(!t.contains(secret), "a credential was printed: {t}");
        }
        // Nothing even needed masking: no message is built from a credential.
        assert!(!t.contains("***"), "a credential had to be masked: {t}");
    };
    check(&site.deploy(&[]), 1, "no build to deploy");
    site.build();
    check(
        &run(&site.root, &["deploy"], &secret_env),
        1,
        "refused the credentials (SignatureDoesNotMatch)",
    );
    check(
        &run(
            &site.root,
            &["deploy"],
            &[("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000")],
        ),
        1,
        "refused the credentials (InvalidAccessKeyId)",
    );
    let no_keys = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("deploy")
        .current_dir(&site.root)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .output()
        .unwrap();
    check(&no_keys, 1, "no credentials in the environment");

    site.configure(&s3.endpoint(), "", "formats = []");
    let toml = std::fs::read_to_string(site.root.join("kiln.toml")).unwrap();
    std::fs::write(
        site.root.join("kiln.toml"),
        toml.replace("\"kiln-errors\"", "\"kiln-missing\""),
    )
    .unwrap();
    check(&site.deploy(&[]), 1, "the bucket does not exist");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    site.configure(&format!("http://127.0.0.1:{closed}"), "", "formats = []");
    check(
        &site.deploy(&[]),
        1,
        "cannot reach the storage (connection refused)",
    );

    site.configure(&s3.endpoint(), "grace = \"soon\"", "formats = []");
    check(&site.deploy(&[]), 2, "deploy.grace");
    site.configure(&s3.endpoint(), "bucketz = \"x\"", "formats = []");
    check(&site.deploy(&[]), 2, "unknown field `bucketz`");
}

// ---------------------------------------------------------------------------------------------
// The CDN in front: purging (Varnish, and the providers' APIs), `kiln verify`, CORS.

use common::edge::{Edge, Stub, varnishd};

/// The `[deploy.cdn]` table for an http-purge edge.
fn http_purge(edge: &Edge, purge: bool, max_paths: usize) -> String {
    format!(
        "[deploy.cdn]\nprovider = \"http-purge\"\npurge_url = \"{}\"\npurge = {purge}\n\
         max_paths = {max_paths}\n",
        edge.url("")
    )
}

/// The purge report's URLs (or paths) of a `--json` outcome.
fn purged(outcome: &serde_json::Value) -> BTreeSet<String> {
    outcome["purge"]["paths"]
        .as_array()
        .map(|a| a.iter().map(|p| p.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// The deployed files that are not fingerprinted (unhashed copies and manifests).
fn unhashed_paths(site: &Site) -> BTreeSet<String> {
    let m = json(&site.out().join("manifest.json"));
    let mut paths: BTreeSet<String> = BTreeSet::new();
    if m["unhashed"] == true {
        for (logical, a) in m["assets"].as_object().unwrap() {
            if a["file"] != logical.as_str() {
                paths.insert(logical.clone());
            }
        }
    }
    for name in [
        "manifest.json",
        "staticfiles.json",
        "cache_manifest.json",
        "importmap.json",
    ] {
        if site.out().join(name).exists() {
            paths.insert(name.to_owned());
        }
    }
    paths
}

#[test]
fn through_varnish_changed_manifests_are_purged_and_verify_sees_what_the_edge_serves() {
    let Some(s3) = S3::shared() else { return };
    let Some(varnishd) = varnishd() else { return };
    let _serial = S3::lock();
    let bucket = "kiln-edge";
    let site = Site::new(s3, bucket, "");
    let edge = Edge::start(&varnishd, s3.port, bucket);
    *site.public_url.borrow_mut() = edge.url("/static/");
    let configure = |purge: bool, max_paths: usize| {
        site.configure(
            &s3.endpoint(),
            &http_purge(&edge, purge, max_paths),
            "formats = []",
        );
    };
    configure(true, 100);
    site.build();
    let first = site.deploy_json();
    // A first deploy purges the manifests too: an edge may hold a 404 for a name new to it.
    assert!(
        purged(&first).contains("/static/staticfiles.json"),
        "{first}"
    );
    assert!(
        purged(&first).iter().all(|p| !common::looks_hashed(p)),
        "fingerprinted names are never purged: {first}"
    );

    let n = common::names(&site.out());
    let css = format!("/static/{}", n["css/app.css"]);
    let vendor = n
        .iter()
        .find(|(logical, _)| {
            logical.starts_with("vendor/leaflet/images/") && logical.ends_with(".png")
        })
        .map(|(_, file)| format!("/static/{file}"))
        .expect("a vendored image");
    let a = edge.get(&css, None);
    assert_eq!(a.status, 200);
    assert_eq!(a.header("x-cache"), Some("MISS"));
    assert_eq!(
        a.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(
        a.body,
        std::fs::read(site.out().join(&n["css/app.css"])).unwrap()
    );
    assert_eq!(edge.get(&css, None).header("x-cache"), Some("HIT"));
    for path in [vendor.as_str(), "/static/staticfiles.json"] {
        edge.get(path, None);
        assert_eq!(
            edge.get(path, None).header("x-cache"),
            Some("HIT"),
            "{path}"
        );
    }
    let o = site.kiln(&["verify", "--all"], &[]);
    assert!(o.status.success(), "verify: {}", text(&o));
    assert!(text(&o).contains("all served as built"), "{}", text(&o));

    // A change: the edge serves the new staticfiles.json at once (purged), while the
    // fingerprinted files nothing changed stay cached.
    site.edit("css/base.css", "\n.edge-v2 { color: teal; }\n");
    site.build();
    let second = site.deploy_json();
    assert!(
        purged(&second).contains("/static/staticfiles.json"),
        "{second}"
    );
    assert!(!purged(&second).contains(&css), "{second}");
    let m = edge.get("/static/staticfiles.json", None);
    assert_eq!(m.header("x-cache"), Some("MISS"));
    assert_eq!(
        m.body,
        std::fs::read(site.out().join("staticfiles.json")).unwrap()
    );
    assert_eq!(edge.get(&vendor, None).header("x-cache"), Some("HIT"));
    let o = site.kiln(&["verify"], &[]);
    assert!(o.status.success(), "verify: {}", text(&o));

    // Purging off: the edge keeps the old manifest for its max-age, and verify says so.
    configure(false, 100);
    edge.get("/static/staticfiles.json", None);
    site.edit("css/base.css", "\n.edge-v3 { color: navy; }\n");
    site.build();
    let third = site.deploy_json();
    assert!(third.get("purge").is_none(), "{third}");
    let o = site.kiln(&["verify", "--json"], &[]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "verify passed a stale edge: {}",
        text(&o)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let stale: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "content")
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(stale.contains(&"staticfiles.json"), "{report:#}");
    let o = site.kiln(&["verify"], &[]);
    assert!(
        text(&o).contains("staticfiles.json") && text(&o).contains("stale CDN copy"),
        "{}",
        text(&o)
    );

    // More changed paths than max_paths: one wildcard purge, which also drops the cached
    // fingerprinted files; the edge is whole again, and deploy --verify says so.
    configure(true, 1);
    site.edit("css/base.css", "\n.edge-v4 { color: olive; }\n");
    site.build();
    let fourth = site.deploy_json();
    assert_eq!(fourth["purge"]["wildcard"], true, "{fourth}");
    assert_eq!(fourth["purge"]["requests"], 1, "{fourth}");
    assert_eq!(edge.get(&vendor, None).header("x-cache"), Some("MISS"));
    let o = site.deploy(&["--json", "--verify", "--all"]);
    assert!(o.status.success(), "deploy --verify: {}", text(&o));
    let fifth: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        fifth["verify"]["problems"],
        serde_json::json!([]),
        "{fifth}"
    );
    assert!(fifth["verify"]["checked"].as_u64().unwrap() > 40, "{fifth}");

    // An object changed in the bucket behind kiln's back (and purged): verify names it.
    s3.put_foreign(bucket, &format!("static/{}", n["img/logo.svg"]), b"<svg/>");
    edge.purge(&format!("/static/{}", n["img/logo.svg"]));
    let o = site.kiln(&["verify", "--all"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains(&n["img/logo.svg"]), "{}", text(&o));
}

#[test]
fn cors_origins_let_one_origin_read_the_static_host_and_are_removed_again() {
    let Some(s3) = S3::shared() else { return };
    let Some(varnishd) = varnishd() else { return };
    let _serial = S3::lock();
    let bucket = "kiln-cors";
    let site = Site::new(s3, bucket, "");
    let edge = Edge::start(&varnishd, s3.port, bucket);
    let page = "http://www.localhost:8000";
    *site.public_url.borrow_mut() = edge.url("/static/");
    let configure = |cors: &str| {
        site.configure(
            &s3.endpoint(),
            &format!("cors_origins = [{cors}]\n{}", http_purge(&edge, true, 100)),
            "formats = []",
        );
    };
    configure(&format!("\"{page}\""));
    site.build();
    let o = site.deploy(&["--dry-run"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("cors: allow GET/HEAD from {page}")),
        "{}",
        text(&o)
    );
    let first = site.deploy_json();
    assert_eq!(first["cors"], serde_json::json!([page]), "{first}");
    let font = format!(
        "/static/{}",
        common::names(&site.out())["fonts/example.woff2"]
    );
    let allowed = |origin: &str| {
        edge.get(&font, Some(origin))
            .header("access-control-allow-origin")
            .map(str::to_owned)
    };
    assert_eq!(allowed(page).as_deref(), Some(page));
    assert_eq!(allowed("http://evil.localhost:8000"), None);
    // verify sends the page's Origin and checks the answer allows it.
    let o = site.kiln(&["verify", "--all"], &[]);
    assert!(o.status.success(), "verify: {}", text(&o));
    // Unchanged: not set again.
    assert!(site.deploy_json().get("cors").is_none());

    // Emptied: kiln removes the rules it set; once the edge drops its copies, no origin may read.
    configure("");
    let removed = site.deploy_json();
    assert_eq!(removed["cors"], serde_json::json!([]), "{removed}");
    edge.purge("/static/*");
    assert_eq!(allowed(page), None);
}

/// What a Cloudflare purge answers on success.
const CLOUDFLARE_OK: &str = r#"{"success":true,"errors":[],"messages":[],"result":{"id":"9a7806061c88ada191ed06f989cc3dac"}}"#;

#[test]
fn cloudflare_purges_30_urls_a_request_with_the_token_from_the_environment() {
    let Some(s3) = S3::shared() else { return };
    let _serial = S3::lock();
    let api = Stub::start(CLOUDFLARE_OK);
    let zone = "023e105f4ecef8ad9ca31a8372d0c353";
    let token = "cf-test-token-0123456789abcdef";
    let site = Site::new(s3, "kiln-cloudflare", "");
    let configure = |max_paths: usize| {
        site.configure(
            &s3.endpoint(),
            &format!(
                "[deploy.cdn]\nprovider = \"cloudflare\"\nzone_id = \"{zone}\"\n\
                 api_url = \"{}\"\nmax_paths = {max_paths}\n",
                api.url()
            ),
            "formats = []",
        );
    };
    // Unhashed copies too: more than one batch of URLs.
    let unhashed = |site: &Site| {
        let toml = std::fs::read_to_string(site.root.join("kiln.toml")).unwrap();
        std::fs::write(
            site.root.join("kiln.toml"),
            format!("unhashed = true\n{toml}"),
        )
        .unwrap();
    };
    configure(1000);
    unhashed(&site);
    site.build();
    // No token: refused before anything is uploaded, saying where the token goes.
    let o = site.kiln(&["deploy"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("CLOUDFLARE_API_TOKEN"), "{}", text(&o));
    assert!(s3.keys(&site.bucket).is_empty());

    let env = [("CLOUDFLARE_API_TOKEN", token)];
    let o = site.kiln(&["deploy", "--json"], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains(token), "the token was printed");
    let expected: BTreeSet<String> = unhashed_paths(&site)
        .iter()
        .map(|p| format!("https://cdn.example.com/static/{p}"))
        .collect();
    assert!(expected.len() > 30, "{} URLs", expected.len());
    let requests = api.take();
    assert_eq!(requests.len(), expected.len().div_ceil(30));
    let mut sent = BTreeSet::new();
    for r in &requests {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, format!("/client/v4/zones/{zone}/purge_cache"));
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {token}").as_str())
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let files = body["files"].as_array().expect("purge by URL");
        assert!(files.len() <= 30);
        sent.extend(files.iter().map(|f| f.as_str().unwrap().to_owned()));
    }
    assert_eq!(sent, expected);

    // The API refuses: the files are deployed, the deploy fails saying so (without the token),
    // and the next deploy purges again although nothing else changed.
    api.answer(
        403,
        r#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[],"result":null}"#,
    );
    site.edit("css/base.css", "\n.cf-v2 { color: teal; }\n");
    site.build();
    let o = site.kiln(&["deploy"], &env);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("purging the CDN (cloudflare) failed"), "{out}");
    assert!(out.contains("10000: Authentication error"), "{out}");
    assert!(!out.contains(token), "the token was printed: {out}");
    assert_eq!(
        s3.get(&site.bucket, "static/staticfiles.json").body,
        std::fs::read(site.out().join("staticfiles.json")).unwrap(),
        "the release is deployed"
    );
    api.take();
    api.answer(200, CLOUDFLARE_OK);
    let retry = site.kiln(&["deploy", "--json"], &env);
    assert!(retry.status.success(), "{}", text(&retry));
    let retried: BTreeSet<String> = api
        .take()
        .iter()
        .flat_map(|r| {
            let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            body["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        retried.contains("https://cdn.example.com/static/staticfiles.json")
            && retried.contains("https://cdn.example.com/static/css/app.css"),
        "{retried:?}"
    );
    assert!(
        site.deploy_json_with(&env).get("purge").is_none(),
        "purged once only"
    );
    assert!(api.take().is_empty());

    // Above max_paths: one purge of the prefix.
    configure(2);
    unhashed(&site);
    site.edit("css/base.css", "\n.cf-v3 { color: navy; }\n");
    site.build();
    let outcome = site.deploy_json_with(&env);
    assert_eq!(outcome["purge"]["wildcard"], true, "{outcome}");
    let requests = api.take();
    assert_eq!(requests.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&requests[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({ "prefixes": ["cdn.example.com/static/"] })
    );
}

#[test]
fn fastly_purges_each_url_and_falls_back_to_purge_all() {
    let Some(s3) = S3::shared() else { return };
    let _serial = S3::lock();
    let api = Stub::start(r#"{"status":"ok","id":"108-1391560174-974124"}"#);
    let service = "SU1Z0isxPaozGVKXdv0eY";
    let token = "fastly-test-token-0123456789";
    let site = Site::new(s3, "kiln-fastly", "");
    let configure = |max_paths: usize| {
        site.configure(
            &s3.endpoint(),
            &format!(
                "[deploy.cdn]\nprovider = \"fastly\"\nservice_id = \"{service}\"\n\
                 api_url = \"{}\"\nmax_paths = {max_paths}\n",
                api.url()
            ),
            "formats = []",
        );
    };
    configure(100);
    site.build();
    let env = [("FASTLY_API_TOKEN", token)];
    let o = site.kiln(&["deploy", "--json"], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains(token));
    let expected: BTreeSet<String> = unhashed_paths(&site)
        .iter()
        .map(|p| format!("/purge/cdn.example.com/static/{p}"))
        .collect();
    let requests = api.take();
    assert_eq!(requests.len(), expected.len());
    for r in &requests {
        assert_eq!(r.method, "POST");
        assert_eq!(r.header("fastly-key"), Some(token));
    }
    let sent: BTreeSet<String> = requests.iter().map(|r| r.path.clone()).collect();
    assert_eq!(sent, expected);

    configure(1);
    site.edit("css/base.css", "\n.fastly-v2 { color: teal; }\n");
    site.build();
    let outcome = site.deploy_json_with(&env);
    assert_eq!(outcome["purge"]["wildcard"], true);
    let requests = api.take();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, format!("/service/{service}/purge_all"));
    assert_eq!(requests[0].header("fastly-key"), Some(token));
}

#[test]
fn cloudfront_invalidations_reach_moto_and_deploy_verify_waits_for_them() {
    let Some(s3) = S3::shared() else { return };
    let Some(moto) = common::tool(
        common::e2e_dir().join("venv/bin/moto_server"),
        "moto[server] (PyPI)",
    ) else {
        return;
    };
    let _serial = S3::lock();
    let port = common::edge::free_port();
    let mut server = std::process::Command::new(&moto)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _ = &mut server;
    let server = Kill(server);
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    while common::s3::http()
        .get(&format!("{endpoint}/moto-api/"))
        .call()
        .map(|r| r.status().as_u16())
        .ok()
        != Some(200)
    {
        assert!(
            started.elapsed().as_secs() < 30,
            "moto_server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let python = common::e2e_dir().join("venv/bin/python");
    let boto = |code: &str| -> String {
        let o = Command::new(&python)
            .arg("-c")
            .arg(format!(
                "import boto3, json, sys\n\
                 cf = boto3.client('cloudfront', endpoint_url='{endpoint}', aws_access_key_id='x', \
                 aws_secret_access_key='x', region_name='us-east-1')\n{code}"
            ))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8(o.stdout).unwrap().trim().to_owned()
    };
    let id = boto(
        "print(cf.create_distribution(DistributionConfig={'CallerReference': 'kiln', 'Comment': '', \
         'Enabled': True, 'Origins': {'Quantity': 1, 'Items': [{'Id': 'o', 'DomainName': \
         'origin.example.com'}]}, 'DefaultCacheBehavior': {'TargetOriginId': 'o', \
         'ViewerProtocolPolicy': 'allow-all'}})['Distribution']['Id'])",
    );
    let site = Site::new(s3, "kiln-cloudfront", "");
    // The bucket serves as its own "CDN" here, so that --verify has something to fetch.
    *site.public_url.borrow_mut() = s3.url("/kiln-cloudfront/static/");
    let configure = |distribution: &str| {
        site.configure(
            &s3.endpoint(),
            &format!(
                "[deploy.cdn]\nprovider = \"cloudfront\"\ndistribution_id = \"{distribution}\"\n\
                 api_url = \"{endpoint}\"\n"
            ),
            "formats = []",
        );
    };
    configure(&id);
    site.build();
    let o = site.deploy(&["--json", "--verify"]);
    assert!(o.status.success(), "{}", text(&o));
    let outcome: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        outcome["purge"]["invalidations"].as_array().unwrap().len(),
        1
    );
    assert_eq!(
        outcome["verify"]["problems"],
        serde_json::json!([]),
        "{outcome}"
    );
    // What CloudFront received: the public paths of the unhashed names, one batch.
    let paths = boto(&format!(
        "ids = [i['Id'] for i in cf.list_invalidations(DistributionId='{id}')['InvalidationList']['Items']]\n\
         print(json.dumps([cf.get_invalidation(DistributionId='{id}', Id=i)['Invalidation']\
         ['InvalidationBatch']['Paths']['Items'] for i in ids]))"
    ));
    let batches: Vec<Vec<String>> = serde_json::from_str(&paths).unwrap();
    assert_eq!(batches.len(), 1);
    let expected: BTreeSet<String> = unhashed_paths(&site)
        .iter()
        .map(|p| format!("/kiln-cloudfront/static/{p}"))
        .collect();
    assert_eq!(
        batches[0].iter().cloned().collect::<BTreeSet<_>>(),
        expected
    );

    // An unknown distribution: CloudFront's error code, and the deploy fails after deploying.
    configure("ENOSUCHDIST");
    site.edit("css/base.css", "\n.cf-v2 { color: teal; }\n");
    site.build();
    let o = site.deploy(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("NoSuchDistribution"), "{}", text(&o));
    assert!(!text(&o).contains(SECRET_KEY));
    drop(server);
}

/// Runs `examples/site/app.py` (Flask) on `port` with the pages' manifests from `out`, and loads
/// `url` in headless Chromium with `tests/e2e/browser.mjs`; returns whether the page passed and
/// its report. None when the tools are not installed.
fn browse(out: &Path, port: u16, url: &str) -> (bool, serde_json::Value) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = common::e2e_dir().join("venv/bin/python");
    struct Server(std::process::Child);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Server(
        Command::new(&python)
            .arg(root.join("examples/site/app.py"))
            .arg(port.to_string())
            .arg(out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed().as_secs() < 20,
            "the Flask app did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // browser.mjs imports playwright-core: run it from the folder that has it installed.
    let runner = common::e2e_dir().join("node/browser.mjs");
    std::fs::copy(root.join("tests/e2e/browser.mjs"), &runner).unwrap();
    let o = Command::new("node").arg(&runner).arg(url).output().unwrap();
    let report = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(&o)));
    (o.status.success(), report)
}

#[test]
fn chromium_loads_a_page_whose_files_come_from_the_edge_on_another_origin_with_cors_and_sri() {
    let Some(s3) = S3::shared() else { return };
    let Some(varnishd) = varnishd() else { return };
    let browser_tools = [
        (
            common::e2e_dir().join("venv/bin/python"),
            "Flask (the e2e venv)",
        ),
        (
            common::e2e_dir().join("node/node_modules/playwright-core"),
            "playwright-core",
        ),
        (PathBuf::from("/usr/bin/chromium"), "chromium"),
    ];
    if browser_tools
        .into_iter()
        .any(|(path, what)| common::tool(path, what).is_none())
    {
        return;
    }
    let _serial = S3::lock();
    let bucket = "kiln-browser";
    // With AVIF and WebP variants: the page has a <picture>.
    let site = Site::with_images(s3, bucket, "", "");
    let edge = Edge::start(&varnishd, s3.port, bucket);
    let port = common::edge::free_port();
    // Two origins on loopback: Chromium resolves *.localhost itself.
    let page = format!("http://www.localhost:{port}");
    let static_host = format!("http://static.localhost:{}", edge.port);
    *site.public_url.borrow_mut() = format!("{static_host}/static/");
    let configure = |cors: bool| {
        let origins = if cors {
            format!("\"{page}\"")
        } else {
            String::new()
        };
        site.configure(
            &s3.endpoint(),
            &format!(
                "cors_origins = [{origins}]\n{}",
                http_purge(&edge, true, 100)
            ),
            "",
        );
    };
    configure(true);
    site.build();
    assert!(site.deploy(&[]).status.success());

    let (ok, report) = browse(&site.out(), port, &format!("{page}/"));
    assert!(ok, "{report:#}");
    let responses = report["responses"].as_array().unwrap();
    let from_edge: Vec<&str> = responses
        .iter()
        .map(|r| r["url"].as_str().unwrap())
        .filter(|u| u.starts_with(&static_host))
        .collect();
    for needle in [
        "/css/app.",
        "/fonts/example.",
        "/js/main.",
        "/js/lib/greet.",
        "/js/lazy.",
        ".avif",
    ] {
        assert!(
            from_edge.iter().any(|u| u.contains(needle)),
            "{needle} did not come from the edge: {report:#}"
        );
    }
    // The stylesheet and the entry module carry integrity + crossorigin.
    let sri = report["sri"].as_array().unwrap();
    assert_eq!(sri.len(), 2, "{report:#}");
    for tag in sri {
        assert!(
            tag["integrity"].as_str().unwrap().starts_with("sha384-"),
            "{tag}"
        );
        assert_eq!(tag["crossOrigin"], "anonymous", "{tag}");
    }

    // CORS off (kiln removes the bucket's rules; the edge drops what it cached): the font and
    // the modules are blocked on the page's origin.
    configure(false);
    assert!(site.deploy(&[]).status.success());
    edge.purge("/static/*");
    let (ok, report) = browse(&site.out(), port, &format!("{page}/"));
    assert!(!ok, "the page passed without CORS: {report:#}");
    let failures = report["failures"].to_string();
    assert!(
        failures.contains("blocked by CORS policy") && failures.contains("/js/main."),
        "{report:#}"
    );

    // CORS on again, and one byte of the deployed CSS changed at the origin (and purged): the
    // browser refuses the stylesheet (SRI).
    configure(true);
    assert!(site.deploy(&[]).status.success());
    edge.purge("/static/*");
    let css = common::names(&site.out())["css/app.css"].clone();
    let mut bytes = std::fs::read(site.out().join(&css)).unwrap();
    let at = bytes.iter().position(|b| *b == b'}').unwrap();
    bytes.insert(at, b';');
    s3.put_foreign(bucket, &format!("static/{css}"), &bytes);
    edge.purge(&format!("/static/{css}"));
    let (ok, report) = browse(&site.out(), port, &format!("{page}/"));
    assert!(!ok, "the page passed with altered CSS: {report:#}");
    let failures = report["failures"].to_string();
    assert!(
        failures.contains("Failed to find a valid digest in the 'integrity' attribute")
            && failures.contains(&css),
        "{report:#}"
    );
}

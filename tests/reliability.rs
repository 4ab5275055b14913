//! Reliability: real `kiln build` processes killed with SIGKILL at random moments, racing each
//! other for one output folder, running out of disk space on a real (small) tmpfs and out of
//! permissions. After each, the output folder's manifests name only complete files with the
//! right bytes, nothing half-written or temporary is left, and the next build equals a clean one.
//! docs/reliability.md lists what kiln promises for each failure class.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{copy_dir, kiln, stderr, tree};
use serde_json::Value;
use sha2::Digest as _;

const MANIFESTS: [&str; 3] = ["manifest.json", "staticfiles.json", "cache_manifest.json"];

/// The example site under `dir/src` with a kiln.toml building it into `dir/out` (WebP variants
/// only, so a cold build takes about a second in a debug build).
fn site(dir: &Path) {
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/site/assets"),
        &dir.join("src"),
    );
    std::fs::write(
        dir.join("kiln.toml"),
        "src = \"src\"\nout = \"out\"\npublic_url = \"/static/\"\n\
         [manifest]\nformats = [\"kiln\", \"django\", \"flask\"]\n\
         [images]\nwidths = [320]\nformats = [\"webp\"]\n\
         [cache]\ndir = \"cache\"\n",
    )
    .unwrap();
}

/// Version `v` of the sources: a rule in a stylesheet and an export in a module change.
fn set_version(dir: &Path, v: usize) {
    let css = dir.join("src/css/components/card.css");
    let mut text = std::fs::read_to_string(&css).unwrap();
    if let Some(i) = text.find("\n.kiln-version") {
        text.truncate(i);
    }
    text.push_str(&format!("\n.kiln-version-{v} {{ order: {v} }}\n"));
    std::fs::write(&css, text).unwrap();
    let js = dir.join("src/js/lib/greet.js");
    let mut text = std::fs::read_to_string(&js).unwrap();
    if let Some(i) = text.find("\nexport const kilnVersion") {
        text.truncate(i);
    }
    text.push_str(&format!("\nexport const kilnVersion = {v};\n"));
    std::fs::write(&js, text).unwrap();
}

fn build(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["build", "--config", "kiln.toml", "-q"];
    args.extend_from_slice(extra);
    kiln(dir, &args)
}

fn sri(bytes: &[u8]) -> String {
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(bytes))
    )
}

/// kiln's temporary files anywhere under `dir`.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".kiln-tmp-"))
        .map(walkdir::DirEntry::into_path)
        .collect()
}

/// Every manifest present in `out` is complete JSON and names only complete files with the
/// right bytes (size and SRI from kiln's manifest; precompressed siblings decode to the file).
fn assert_consistent(out: &Path, when: &str) {
    let read = |name: &str| std::fs::read(out.join(name)).ok();
    if let Some(bytes) = read("manifest.json") {
        let m: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{when}: manifest.json is not complete JSON: {e}"));
        for (logical, e) in m["assets"].as_object().unwrap() {
            let file = e["file"].as_str().unwrap();
            let data = std::fs::read(out.join(file)).unwrap_or_else(|err| {
                panic!("{when}: manifest.json names {file} for {logical}, which is missing: {err}")
            });
            assert_eq!(
                data.len() as u64,
                e["size"].as_u64().unwrap(),
                "{when}: {file}"
            );
            assert_eq!(
                sri(&data),
                e["integrity"].as_str().unwrap(),
                "{when}: {file}"
            );
            if let Ok(br) = std::fs::read(out.join(format!("{file}.br"))) {
                let mut decoded = Vec::new();
                brotli::BrotliDecompress(&mut &br[..], &mut decoded)
                    .unwrap_or_else(|err| panic!("{when}: {file}.br does not decode: {err}"));
                assert!(decoded == data, "{when}: {file}.br is not {file}");
            }
            if let Ok(gz) = std::fs::read(out.join(format!("{file}.gz"))) {
                let mut decoded = Vec::new();
                std::io::Read::read_to_end(
                    &mut flate2::read::GzDecoder::new(&gz[..]),
                    &mut decoded,
                )
                .unwrap_or_else(|err| panic!("{when}: {file}.gz does not decode: {err}"));
                assert!(decoded == data, "{when}: {file}.gz is not {file}");
            }
            if let Some(map) = e.get("map") {
                let file = map["file"].as_str().unwrap();
                let size = std::fs::metadata(out.join(file))
                    .unwrap_or_else(|err| panic!("{when}: map {file} is missing: {err}"))
                    .len();
                assert_eq!(size, map["size"].as_u64().unwrap(), "{when}: {file}");
            }
            for v in e["variants"].as_array().into_iter().flatten() {
                let file = v["file"].as_str().unwrap();
                let size = std::fs::metadata(out.join(file))
                    .unwrap_or_else(|err| panic!("{when}: variant {file} is missing: {err}"))
                    .len();
                assert_eq!(size, v["size"].as_u64().unwrap(), "{when}: {file}");
            }
        }
    }
    for (name, paths) in [
        (
            "staticfiles.json",
            read("staticfiles.json").map(|b| {
                let v: Value = serde_json::from_slice(&b).unwrap_or_else(|e| {
                    panic!("{when}: staticfiles.json is not complete JSON: {e}")
                });
                v["paths"].clone()
            }),
        ),
        (
            "cache_manifest.json",
            read("cache_manifest.json").map(|b| {
                serde_json::from_slice::<Value>(&b).unwrap_or_else(|e| {
                    panic!("{when}: cache_manifest.json is not complete JSON: {e}")
                })
            }),
        ),
    ] {
        for file in paths.iter().flat_map(|p| p.as_object().unwrap().values()) {
            let file = file.as_str().unwrap();
            assert!(
                out.join(file).is_file(),
                "{when}: {name} names {file}, which is missing"
            );
        }
    }
}

/// `tree(out)` without the build history (which records earlier builds).
fn output(out: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut t = tree(out);
    t.remove(".kiln-builds.json");
    t
}

/// `out` holds every file of the clean build `reference` with the same bytes (and may hold
/// earlier builds' files, kept for rolling deploys).
fn assert_matches(out: &Path, reference: &BTreeMap<String, Vec<u8>>, when: &str) {
    let got = output(out);
    for (name, bytes) in reference {
        match got.get(name) {
            Some(b) => assert!(b == bytes, "{when}: {name} differs from a clean build's"),
            None => panic!("{when}: {name} of a clean build is missing"),
        }
    }
    assert!(
        temporaries(out).is_empty(),
        "{when}: {:?}",
        temporaries(out)
    );
}

/// A small xorshift generator: the seed is printed so a failure can be replayed with
/// KILN_KILL_SEED.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("KILN_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("KILN_KILL_SEED={seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[test]
fn kill_9_at_random_moments_leaves_complete_files_and_the_next_build_equals_a_clean_one() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    site(dir);
    const VERSIONS: usize = 3;
    // Clean builds of each version: a fresh folder and no cache.
    let references: Vec<BTreeMap<String, Vec<u8>>> = (0..VERSIONS)
        .map(|v| {
            set_version(dir, v);
            let out = format!("reference-{v}");
            let o = build(dir, &["--out", &out, "--no-cache"]);
            assert!(o.status.success(), "{}", stderr(&o));
            output(&dir.join(out))
        })
        .collect();
    let out = dir.join("out");
    let cache = dir.join("cache");
    set_version(dir, 0);
    let started = Instant::now();
    let o = build(dir, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut cold = started.elapsed();
    set_version(dir, 1);
    let started = Instant::now();
    assert!(build(dir, &[]).status.success());
    // The windows builds are killed in adapt: shorter after a kill that came too late,
    // longer after one that came in time (the machine's speed changes under parallel tests).
    let mut warm = started.elapsed().max(Duration::from_millis(30)) * 2;

    let mut rng = Rng::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut iterations = 0;
    let mut completed = 0;
    let mut killed_running = 0;
    while iterations < 40 && Instant::now() < deadline {
        let v = rng.below(VERSIONS as u64) as usize;
        set_version(dir, v);
        // One build in four starts without a cache, to be killed while transforming and
        // writing cache entries; the others mostly while emitting and writing manifests.
        let cold_start = rng.below(4) == 0;
        let window = if cold_start {
            let _ = std::fs::remove_dir_all(&cache);
            cold
        } else {
            warm
        };
        let delay = Duration::from_micros(rng.below(window.as_micros() as u64));
        let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(["build", "--config", "kiln.toml", "-q"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let running = child.try_wait().unwrap().is_none();
        if running {
            killed_running += 1;
        }
        let adapt = |w: Duration| {
            if running {
                w.mul_f64(1.1)
            } else {
                w.mul_f64(0.8)
            }
            .max(Duration::from_millis(5))
        };
        if cold_start {
            cold = adapt(cold);
        } else {
            warm = adapt(warm);
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let when = format!("iteration {iterations}: version {v}, SIGKILL after {delay:?}");
        assert_consistent(&out, &when);
        // Every third iteration, a build runs to the end: it must equal a clean build.
        if iterations % 3 == 2 {
            let o = build(dir, &[]);
            assert!(o.status.success(), "{when}: {}", stderr(&o));
            assert_consistent(&out, &when);
            assert_matches(&out, &references[v], &when);
            completed += 1;
        }
        iterations += 1;
    }
    assert!(iterations >= 15, "only {iterations} iterations in time");
    assert!(
        killed_running * 4 >= iterations,
        "too few builds were still running when killed ({killed_running} of {iterations})"
    );
    // And a last one from whatever state the last kill left.
    let o = build(dir, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = (0..VERSIONS)
        .find(|&v| {
            std::fs::read_to_string(dir.join("src/css/components/card.css"))
                .unwrap()
                .contains(&format!(".kiln-version-{v} "))
        })
        .unwrap();
    assert_matches(&out, &references[v], "after the loop");
    eprintln!(
        "{iterations} builds killed ({killed_running} while running), {completed} completed in between"
    );
}

/// Reads `child`'s stderr on a thread; lines arrive on the returned channel.
fn lines_of(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

#[test]
fn builds_into_one_folder_take_turns_and_a_dead_holder_never_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    site(dir);
    set_version(dir, 0);
    assert!(build(dir, &[]).status.success());
    let out = dir.join("out");
    let manifest = std::fs::read(out.join("manifest.json")).unwrap();

    // Another process holds the lock (as a running kiln would): the build waits, says for whom,
    // and writes nothing until the lock is released.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(out.join(".kiln-lock"))
        .unwrap();
    lock.lock().unwrap();
    std::fs::write(out.join(".kiln-lock"), "4242").unwrap();
    set_version(dir, 1);
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["build", "--config", "kiln.toml", "-q"])
        .current_dir(dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    let said = lines.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(
        said.contains("waiting for another kiln process (pid 4242)") && said.contains("out"),
        "{said}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "it did not wait");
    assert_eq!(std::fs::read(out.join("manifest.json")).unwrap(), manifest);
    assert!(std::fs::read_dir(out.join("css")).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".kiln-tmp-")
    }));
    drop(lock);
    assert!(child.wait().unwrap().success());
    assert_ne!(std::fs::read(out.join("manifest.json")).unwrap(), manifest);
    assert_consistent(&out, "after waiting");

    // A holder killed with SIGKILL: the kernel drops its lock, the next build does not wait.
    let mut holder = Command::new("flock")
        .args(["--close", "--exclusive"])
        .arg(out.join(".kiln-lock"))
        .args(["sleep", "600"])
        .spawn()
        .unwrap();
    let probe = std::fs::File::open(out.join(".kiln-lock")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while probe.try_lock().is_ok() {
        probe.unlock().unwrap();
        assert!(Instant::now() < deadline, "flock never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    holder.kill().unwrap();
    holder.wait().unwrap();
    let _ = Command::new("pkill").args(["-f", "sleep 600"]).status();
    set_version(dir, 2);
    let o = build(dir, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("waiting"), "{}", stderr(&o));

    // Two builds of different sources racing for one folder: each waits its turn; the folder
    // ends as one of them left it, never a mix.
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    site(&other);
    set_version(&other, 1);
    let reference = |d: &Path, name: &str| {
        let o = build(d, &["--out", name, "--no-cache"]);
        assert!(o.status.success(), "{}", stderr(&o));
        output(&d.join(name))
    };
    let (ref_a, ref_b) = (reference(dir, "ref-a"), reference(&other, "ref-b"));
    for round in 0..3 {
        let spawn = |d: &Path| {
            Command::new(env!("CARGO_BIN_EXE_kiln"))
                .args(["build", "--config", "kiln.toml", "-q", "--out"])
                .arg(&out)
                .current_dir(d)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(dir), spawn(&other));
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        assert!(a.status.success(), "{}", stderr(&a));
        assert!(b.status.success(), "{}", stderr(&b));
        let when = format!("race {round}");
        assert_consistent(&out, &when);
        let m = std::fs::read(out.join("manifest.json")).unwrap();
        let r = if m == ref_a["manifest.json"] {
            &ref_a
        } else {
            &ref_b
        };
        assert_eq!(
            m, r["manifest.json"],
            "{when}: manifest.json is neither build's"
        );
        for name in MANIFESTS {
            assert_eq!(
                output(&out)[name],
                r[name],
                "{when}: {name} mixes two builds"
            );
        }
        assert_matches(&out, r, &when);
    }
}

/// Mounts a tmpfs of `size` at `at`; None (with a message) where this user cannot mount.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let message = "cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)";
            assert!(
                std::env::var("KILN_E2E_REQUIRED").as_deref() != Ok("1"),
                "{message}"
            );
            eprintln!("skipping: {message}");
            return None;
        }
        Some(Tmpfs(at.to_owned()))
    }

    fn available(&self) -> u64 {
        let o = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.0)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_naming_the_file_and_leaves_the_last_build_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    site(dir);
    let Some(disk) = Tmpfs::mount(&dir.join("disk"), "3m") else {
        return;
    };
    let out = disk.0.join("out");
    let cache = disk.0.join("cache");
    let args = ["--out", out.to_str().unwrap()];
    std::fs::write(
        dir.join("kiln.toml"),
        std::fs::read_to_string(dir.join("kiln.toml"))
            .unwrap()
            .replace("dir = \"cache\"", &format!("dir = \"{}\"", cache.display())),
    )
    .unwrap();
    set_version(dir, 0);
    let o = build(dir, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut last = output(&out);
    // Fill the disk to leave less and less room for the next build's files, so the write that
    // fails is a cache entry, the pending-files record, an output, a sibling or a manifest.
    let filler = disk.0.join("filler");
    let mut failures = 0;
    let mut v = 0;
    for room_kib in [
        0u64, 16, 64, 96, 128, 160, 192, 224, 256, 288, 320, 384, 448, 512, 768,
    ] {
        v += 1;
        set_version(dir, v);
        // A new photo each round too, so there is more to write than one stylesheet.
        std::fs::write(
            dir.join("src/img/extra.bin"),
            (0..40_000u32)
                .map(|i| (i.wrapping_mul((v as u32).wrapping_mul(2_654_435_761)) >> 13) as u8)
                .collect::<Vec<u8>>(),
        )
        .unwrap();
        let _ = std::fs::remove_file(&filler);
        let free = disk.available();
        let fill = free.saturating_sub(room_kib * 1024);
        std::fs::write(&filler, vec![0u8; fill as usize]).ok();
        let o = build(dir, &args);
        let when = format!("{room_kib} KiB free");
        let text = stderr(&o);
        if o.status.success() {
            assert_consistent(&out, &when);
            last = output(&out);
        } else {
            failures += 1;
            eprintln!("{when}: {}", text.lines().next().unwrap_or_default());
            assert_eq!(o.status.code(), Some(1), "{when}: {text}");
            assert!(text.contains("No space left on device"), "{when}: {text}");
            assert!(
                text.contains(&disk.0.display().to_string()),
                "{when}: the error names no file: {text}"
            );
            let now = output(&out);
            for name in MANIFESTS {
                assert_eq!(now.get(name), last.get(name), "{when}: {name} changed");
            }
            assert_consistent(&out, &when);
            let added: Vec<&String> = now.keys().filter(|k| !last.contains_key(*k)).collect();
            assert!(added.is_empty(), "{when}: left behind {added:?}");
            assert_eq!(now, last, "{when}: the last build's files changed");
        }
        assert!(
            temporaries(&disk.0).is_empty(),
            "{when}: {:?}",
            temporaries(&disk.0)
        );
    }
    assert!(failures >= 3, "only {failures} builds ran out of space");
    // With room again, the build succeeds and equals a clean one.
    let _ = std::fs::remove_file(&filler);
    let o = build(dir, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let clean = build(dir, &["--out", "clean", "--no-cache"]);
    assert!(clean.status.success(), "{}", stderr(&clean));
    assert_matches(&out, &output(&dir.join("clean")), "with room again");
}

#[cfg(unix)]
#[test]
fn a_folder_kiln_may_not_write_fails_naming_it_and_changes_nothing() {
    use std::os::unix::fs::PermissionsExt as _;
    // Root ignores permissions: run kiln as `nobody`, as a locked-down CI user would.
    let root = !Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() != "0");
    let setpriv = Path::new("/usr/bin/setpriv");
    if !root || !setpriv.exists() {
        eprintln!("skipping: needs root and setpriv to run kiln as another user");
        return;
    }
    let holder = tempfile::tempdir().unwrap();
    let dir = holder.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    site(dir);
    set_version(dir, 0);
    assert!(build(dir, &[]).status.success());
    let out = dir.join("out");
    let before = output(&out);
    let chown = |p: &Path| {
        assert!(
            Command::new("chown")
                .args(["-R", "65534:65534"])
                .arg(p)
                .status()
                .unwrap()
                .success()
        );
    };
    chown(&out);
    chown(&dir.join("cache"));
    // The stylesheets' folder is read-only for everyone.
    std::fs::set_permissions(out.join("css"), std::fs::Permissions::from_mode(0o555)).unwrap();
    set_version(dir, 1);
    let o = Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_kiln"))
        .args(["build", "--config", "kiln.toml", "-q"])
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("Permission denied"), "{text}");
    assert!(
        text.contains(&out.join("css").display().to_string()),
        "{text}"
    );
    assert_eq!(output(&out), before, "the last build's files changed");
    assert!(temporaries(&out).is_empty());
    std::fs::set_permissions(out.join("css"), std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A URL path for a relative file path, each segment percent-encoded (by the test, not by kiln).
fn url_path(path: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'.')
        .remove(b'-')
        .remove(b'_');
    path.split('/')
        .map(|s| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn odd_file_names_empty_files_and_deep_folders_build_and_load_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let src = dir.join("src");
    let svg = |colour: &str| {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"8\" height=\"8\"><rect width=\"8\" height=\"8\" fill=\"{colour}\"/></svg>"
        )
    };
    let odd = [
        "a b.svg",
        "hash#1.svg",
        "q?x.svg",
        "100%.svg",
        "ünïcödé.svg",
        "plus+&=.svg",
    ];
    std::fs::create_dir_all(src.join("img")).unwrap();
    for (i, name) in odd.iter().enumerate() {
        std::fs::write(src.join("img").join(name), svg(&format!("#{i}{i}{i}"))).unwrap();
    }
    // Referenced as a user would write them: percent-encoded, and one non-ASCII name raw.
    let mut css = String::new();
    for (i, name) in odd.iter().enumerate() {
        css.push_str(&format!(
            ".o{i} {{ width: 8px; height: 8px; background: url(\"../img/{}\") }}\n",
            url_path(name)
        ));
    }
    css.push_str(".raw { background: url(\"../img/ünïcödé.svg\") }\n");
    let deep: String = (0..40).map(|_| "d/").collect();
    std::fs::create_dir_all(src.join("css").join(&deep)).unwrap();
    std::fs::write(src.join("css/odd styles.css"), &css).unwrap();
    std::fs::write(
        src.join("css").join(&deep).join("deep.css"),
        format!(
            ".deep {{ background: url(\"{}img/a%20b.svg\") }}\n",
            "../".repeat(41)
        ),
    )
    .unwrap();
    for empty in [
        "css/empty.css",
        "js/empty.js",
        "img/empty.png",
        "img/empty.jpg",
        "empty.txt",
    ] {
        std::fs::create_dir_all(src.join(empty).parent().unwrap()).unwrap();
        std::fs::write(src.join(empty), b"").unwrap();
    }
    let o = kiln(dir, &["build", "--src", "src", "--out", "out"]);
    let text = stderr(&o);
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("img/empty.png: warning: empty file"),
        "{text}"
    );
    let out = dir.join("out");
    let names = common::names(&out);
    for name in odd {
        let logical = format!("img/{name}");
        let file = names
            .get(&logical)
            .unwrap_or_else(|| panic!("{logical} not in the manifest"));
        assert!(out.join(file).is_file(), "{file}");
    }
    assert!(names.contains_key(&format!("css/{deep}deep.css")));
    assert!(names.contains_key("empty.txt") && names.contains_key("js/empty.js"));
    // The rewritten stylesheet escapes what URLs must: no raw space, #, ? or % in a path.
    let sheet = std::fs::read_to_string(out.join(&names["css/odd styles.css"])).unwrap();
    for url in common::css_urls(&sheet, "odd styles.css") {
        let path = url.split('#').next().unwrap();
        assert!(
            !path.contains([' ', '?']) && !path.contains("%%"),
            "{url} in {sheet}"
        );
    }
    assert!(common::assert_references_resolve(&out, "/static/") >= odd.len() + 2);

    let Some(nginx) = common::nginx::binary() else {
        return;
    };
    let page = dir.join("page");
    std::fs::create_dir_all(&page).unwrap();
    let mut html = format!(
        "<!doctype html><meta charset=utf-8><link rel=icon href=\"data:,\"><link rel=stylesheet href=\"/static/{}\">",
        url_path(&names["css/odd styles.css"])
    );
    for (i, name) in odd.iter().enumerate() {
        html.push_str(&format!(
            "<div class=o{i}></div><img alt=\"\" src=\"/static/{}\">",
            url_path(&names[&format!("img/{name}")])
        ));
    }
    html.push_str("<div class=raw style=\"width:8px;height:8px\"></div><div class=deep style=\"width:8px;height:8px\"></div>");
    std::fs::write(page.join("index.html"), html).unwrap();
    let server = common::nginx::Nginx::start(
        &nginx,
        &dir.join("nginx"),
        &format!(
            "location /static/ {{ alias {}/; }}\nlocation / {{ root {}; default_type text/html; }}",
            out.display(),
            page.display()
        ),
    );
    if let Some((_, report)) = common::chromium(&server.url("/")) {
        assert_eq!(report["failures"], serde_json::json!([]), "{report:#}");
        let fetched: Vec<(String, u64)> = report["responses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["url"].as_str().unwrap().to_owned(),
                    r["status"].as_u64().unwrap(),
                )
            })
            .collect();
        for name in odd {
            let file = url_path(&names[&format!("img/{name}")]);
            assert!(
                fetched.iter().any(|(u, s)| u.ends_with(&file) && *s == 200),
                "{file} was not fetched: {fetched:?}"
            );
        }
    }
}

#[cfg(unix)]
#[test]
fn hostile_input_is_refused_naming_the_file_and_nothing_is_written_anywhere() {
    use std::os::unix::ffi::OsStrExt as _;
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("css")).unwrap();
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    std::fs::write(
        dir.join("secrets/credentials"),
        "aws_secret_access_key = hunter2",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("vendor")).unwrap();
    std::fs::write(dir.join("vendor/lib.css"), ".lib { color: red }").unwrap();
    std::fs::write(src.join("css/app.css"), ".a { color: blue }").unwrap();
    let listing = |d: &Path| -> Vec<String> {
        walkdir::WalkDir::new(d)
            .into_iter()
            .filter_map(Result::ok)
            .map(|e| e.path().display().to_string())
            .collect()
    };
    let refused = |what: &str, needle: &str| {
        let before = listing(dir);
        // Without a cache: it would (rightly) keep the transforms of the files that were fine.
        let o = kiln(
            dir,
            &["build", "--src", "src", "--out", "out", "--no-cache"],
        );
        let text = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{what}: {text}");
        assert!(text.contains(needle), "{what}: {text}");
        assert!(!text.contains("hunter2"), "{what}: {text}");
        assert!(!text.contains("panicked"), "{what}: {text}");
        assert_eq!(listing(dir), before, "{what}: something was written");
    };

    // References out of the source folder, plain and percent-encoded.
    for url in [
        "../../../../etc/passwd",
        "%2e%2e/%2e%2e/secrets/credentials",
        "..%2f..%2fsecrets/credentials",
    ] {
        std::fs::write(
            src.join("css/escape.css"),
            format!(".x {{ background: url({url}) }}"),
        )
        .unwrap();
        refused(
            url,
            &format!("css/escape.css:1:22: error: `{url}` points outside the source folder"),
        );
    }
    // An absolute filesystem path is a URL on the site's own host, never a file kiln reads.
    std::fs::write(
        src.join("css/escape.css"),
        ".x { background: url(/etc/passwd) }",
    )
    .unwrap();
    let o = kiln(dir, &["build", "--src", "src", "--out", "out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !tree(&dir.join("out"))
            .values()
            .any(|b| String::from_utf8_lossy(b).contains("root:"))
    );
    std::fs::remove_dir_all(dir.join("out")).unwrap();
    std::fs::remove_file(src.join("css/escape.css")).unwrap();

    // A link to a file outside src, as a careless `ln -s ~/.aws/credentials` would make.
    symlink(dir.join("secrets/credentials"), src.join("credentials.txt")).unwrap();
    refused("link to a secret", "credentials.txt: symbolic link to");
    std::fs::remove_file(src.join("credentials.txt")).unwrap();
    // A linked folder is fine once kiln.toml allows its target.
    symlink(dir.join("vendor"), src.join("vendor")).unwrap();
    refused("link to vendor/", "outside the source folder");
    std::fs::write(
        dir.join("kiln.toml"),
        "src = \"src\"\nout = \"out\"\nallow_symlinks_into = [\"vendor\"]\n",
    )
    .unwrap();
    let o = kiln(dir, &["build", "--config", "kiln.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(common::names(&dir.join("out")).contains_key("vendor/lib.css"));
    std::fs::remove_dir_all(dir.join("out")).unwrap();
    std::fs::remove_file(dir.join("kiln.toml")).unwrap();
    std::fs::remove_file(src.join("vendor")).unwrap();

    // A loop.
    symlink(&src, src.join("css/again")).unwrap();
    refused("symlink loop", "symbolic link loop");
    std::fs::remove_file(src.join("css/again")).unwrap();

    // A file name that is not UTF-8 cannot be a URL.
    let bad = src.join(std::ffi::OsStr::from_bytes(b"css/caf\xe9.css"));
    std::fs::write(&bad, ".x{}").unwrap();
    refused("non-UTF-8 name", "is not valid UTF-8");
    std::fs::remove_file(&bad).unwrap();
}

#[test]
fn a_one_gigabyte_file_is_copied_without_being_held_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("media")).unwrap();
    std::fs::write(src.join("app.css"), ".a { color: red }").unwrap();
    // Sparse, with some bytes at the end so it is not all zeros.
    let big = src.join("media/big.bin");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len(1 << 30).unwrap();
    std::os::unix::fs::FileExt::write_at(&file, b"the end", (1 << 30) - 7).unwrap();
    drop(file);
    let time = Path::new("/usr/bin/time");
    let o = if time.exists() {
        Command::new(time)
            .args(["-f", "peak-rss-kib=%M"])
            .arg(env!("CARGO_BIN_EXE_kiln"))
            .args(["build", "--src", "src", "--out", "out"])
            .current_dir(dir)
            .output()
            .unwrap()
    } else {
        eprintln!("skipping the memory check: /usr/bin/time is not installed");
        kiln(dir, &["build", "--src", "src", "--out", "out"])
    };
    let text = stderr(&o);
    assert!(o.status.success(), "{text}");
    if let Some(kib) = text
        .lines()
        .find_map(|l| l.strip_prefix("peak-rss-kib="))
        .map(|k| k.trim().parse::<u64>().unwrap())
    {
        assert!(kib < 256 * 1024, "peak RSS {kib} KiB for a 1 GiB file");
    }
    let out = dir.join("out");
    let m = common::json(&out.join("manifest.json"));
    let entry = &m["assets"]["media/big.bin"];
    let copied = out.join(entry["file"].as_str().unwrap());
    assert_eq!(std::fs::metadata(&copied).unwrap().len(), 1 << 30);
    // Same bytes: compared as streams (SRI over the copy equals the manifest's).
    let mut sha = sha2::Sha384::new();
    std::io::copy(&mut std::fs::File::open(&copied).unwrap(), &mut sha).unwrap();
    let integrity = format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(sha.finalize())
    );
    assert_eq!(entry["integrity"].as_str().unwrap(), integrity);
    assert!(
        !out.join(format!("{}.br", entry["file"].as_str().unwrap()))
            .exists()
    );
}

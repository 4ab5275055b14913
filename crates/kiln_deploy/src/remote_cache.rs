//! The remote cache (`[cache] remote`): kiln's transform and compression results shared by a
//! team and its CI runners, on S3-compatible storage (the deploy's client and credentials) or on
//! any server of the Bazel HTTP cache protocol (bazel-remote, nginx with WebDAV).
//!
//! Both use the Bazel layout, so one server can hold Bazel's entries and kiln's side by side:
//! - `cas/<sha256>`: the payload, named by its SHA-256;
//! - `ac/<sha256 of kiln's key>`: an `ActionResult` (Remote Execution API v2 protobuf) naming
//!   the payload's digest as its one output file, which is what bazel-remote validates.
//!
//! Every download is verified against the digest the action names (a corrupt or tampered blob
//! is a miss and is recomputed). Writers are trusted: an action entry maps a key to a payload,
//! and only jobs that may publish should write (`remote_read_only` for the others).
//!
//! The build never waits long: a lookup is bounded by `remote_timeout_ms` (plus a second per MiB
//! downloaded), the time spent on lookups that miss is bounded by `remote_timeout_ms` for the
//! whole build (a cold remote is then no longer asked), and the first failure (unreachable,
//! timeout, 5xx, refused credentials) leaves the remote alone for the rest of the build with one
//! warning. Uploads run in the background on a small tokio runtime, a bounded number at a time
//! and within a memory budget (an upload that would wait for room longer than the timeout is
//! left out), and the build waits for the last of them only at its end, for a bounded time.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kiln_core::cache::{Remote, RemoteReport};
use kiln_core::config::CacheConfig;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::{Digest as _, Sha256};
use tokio::sync::Semaphore;

use crate::store::{self, Patience, Target};

pub use crate::secrets::{PASSWORD_VAR, TOKEN_VAR, USER_VAR};

/// Uploads in flight at once.
const UPLOAD_SLOTS: usize = 8;
/// Payload bytes waiting for upload, in KiB, beyond which the build waits (backpressure).
const UPLOAD_BUDGET_KIB: usize = 256 * 1024;
/// The slowest transfer rate assumed when a blob's size is known, bytes per second.
const MIN_RATE: u64 = 1 << 20;
/// The largest action entry read (kiln's are about 100 bytes).
const MAX_ACTION: u64 = 64 << 10;
/// The largest payload read (a larger size in an action is not believed).
const MAX_PAYLOAD: u64 = 1 << 30;

/// An object read, or why not.
enum Fetched {
    Found(Bytes),
    Missing,
    /// Larger than the reader allows: never read whole.
    TooLarge,
}

/// Where entries live and how they are read and written.
enum Backend {
    S3 {
        store: Arc<dyn ObjectStore>,
        target: Target,
    },
    Http {
        client: reqwest::Client,
        base: String,
        auth: Option<http::HeaderValue>,
    },
}

impl Backend {
    /// The object at `path` (`ac/...`, `cas/...`) if it exists and has at most `max` bytes; Err
    /// is a one-line message without credentials.
    async fn get(&self, path: &str, max: u64) -> Result<Fetched, String> {
        match self {
            Backend::S3 { store, target } => {
                let key = object_store::path::Path::from(format!("{}{path}", target.prefix));
                match store.get(&key).await {
                    Ok(r) if r.meta.size > max => Ok(Fetched::TooLarge),
                    Ok(r) => r
                        .bytes()
                        .await
                        .map(Fetched::Found)
                        .map_err(|e| s3_message(target, &e)),
                    Err(object_store::Error::NotFound { .. }) => Ok(Fetched::Missing),
                    Err(e) => Err(s3_message(target, &e)),
                }
            }
            Backend::Http { client, base, auth } => {
                let mut request = client.get(format!("{base}/{path}"));
                if let Some(auth) = auth {
                    request = request.header(http::header::AUTHORIZATION, auth.clone());
                }
                let mut response = request.send().await.map_err(|e| http_message(&e))?;
                match response.status().as_u16() {
                    200 if response.content_length().is_some_and(|n| n > max) => {
                        Ok(Fetched::TooLarge)
                    }
                    200 => {
                        let mut body = Vec::new();
                        while let Some(chunk) =
                            response.chunk().await.map_err(|e| http_message(&e))?
                        {
                            if (body.len() + chunk.len()) as u64 > max {
                                return Ok(Fetched::TooLarge);
                            }
                            body.extend_from_slice(&chunk);
                        }
                        Ok(Fetched::Found(body.into()))
                    }
                    404 => Ok(Fetched::Missing),
                    status => Err(status_message(status)),
                }
            }
        }
    }

    async fn put(&self, path: &str, body: Bytes) -> Result<(), String> {
        match self {
            Backend::S3 { store, target } => {
                let key = object_store::path::Path::from(format!("{}{path}", target.prefix));
                store
                    .put(&key, body.into())
                    .await
                    .map(|_| ())
                    .map_err(|e| s3_message(target, &e))
            }
            Backend::Http { client, base, auth } => {
                let mut request = client.put(format!("{base}/{path}")).body(body);
                if let Some(auth) = auth {
                    request = request.header(http::header::AUTHORIZATION, auth.clone());
                }
                let response = request.send().await.map_err(|e| http_message(&e))?;
                match response.status().as_u16() {
                    200..=299 => Ok(()),
                    status => Err(status_message(status)),
                }
            }
        }
    }
}

/// A store error in the remote cache's words (the location is already in the warning).
fn s3_message(target: &Target, err: &object_store::Error) -> String {
    use crate::DeployError as E;
    let message = match store::classify(target, "use", "the cache", err) {
        E::Unreachable { detail, .. } => format!("cannot connect ({detail})"),
        E::NoSuchBucket { .. } => format!("the bucket `{}` does not exist", target.bucket),
        E::AccessDenied { .. } => "access denied: the credentials need s3:ListBucket on the \
             bucket (without it S3 answers a miss with 403) and s3:GetObject on the prefix (and \
             s3:PutObject to write); a job that may not write sets `remote_read_only = true`"
            .to_owned(),
        // The store's hints name the deploy's keys; the cache has its own.
        E::Storage { message, .. } => message
            .replace("`[deploy] region`", "`[cache] remote_region`")
            .replace("`[deploy] endpoint`", "`[cache] remote_endpoint`"),
        E::Credentials(message) => message,
        other => other.to_string(),
    };
    crate::secrets::redact(&message)
}

fn http_message(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "did not answer in time"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "the request failed"
    };
    // The innermost I/O error says why (refused, reset), without a URL or header.
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return format!("{what} ({})", io.kind().to_string().to_lowercase());
        }
        source = s.source();
    }
    what.to_owned()
}

fn status_message(status: u16) -> String {
    match status {
        401 | 403 => format!(
            "refused the request (HTTP {status}): check {TOKEN_VAR}, or {USER_VAR} and \
             {PASSWORD_VAR}; a job that may not write sets `remote_read_only = true`"
        ),
        _ => format!("answered HTTP {status}"),
    }
}

/// What one build did with the remote.
#[derive(Default)]
struct State {
    hits: AtomicUsize,
    misses: AtomicUsize,
    rejected: AtomicUsize,
    uploads: AtomicUsize,
    skipped: AtomicUsize,
    bytes_down: AtomicU64,
    bytes_up: AtomicU64,
    /// Nanoseconds spent on lookups that missed.
    miss_wait: AtomicU64,
    reads_off: AtomicBool,
    writes_off: AtomicBool,
    warning: Mutex<Option<String>>,
}

impl State {
    /// Leaves the remote alone (reads and writes, or writes only) and keeps the first message.
    fn fail(&self, reads_too: bool, message: String) {
        if reads_too {
            self.reads_off.store(true, Ordering::SeqCst);
        }
        self.writes_off.store(true, Ordering::SeqCst);
        self.warning
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(message);
    }
}

/// A remote cache for one build (see the module documentation).
pub struct RemoteCache {
    /// Taken in `Drop` to shut down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
    backend: Arc<Backend>,
    location: String,
    read_only: bool,
    timeout: Duration,
    state: Arc<State>,
    uploads: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    budget: Arc<Semaphore>,
    slots: Arc<Semaphore>,
}

impl RemoteCache {
    /// The remote of `cache`, or None when none is configured. A remote that cannot be set up
    /// (no credentials, say) is returned disabled, and reports why as its warning.
    pub fn open(cache: &CacheConfig) -> Option<RemoteCache> {
        let url = cache.remote.as_deref()?.trim_end_matches('/');
        let location = url.to_owned();
        // reqwest's rustls needs a process-wide crypto provider; kiln uses ring's.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Its own runtime, even when the caller is async: lookups and uploads are driven from
        // the build's worker threads, never from the caller's.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kiln-remote")
            .enable_all()
            .build()
            .ok()?;
        let timeout = Duration::from_millis(cache.remote_timeout_ms);
        let backend = match url.strip_prefix("s3://") {
            Some(rest) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                let prefix = prefix.trim_matches('/');
                let target = Target {
                    bucket: bucket.to_owned(),
                    prefix: if prefix.is_empty() {
                        String::new()
                    } else {
                        format!("{prefix}/")
                    },
                    endpoint: cache.remote_endpoint.clone(),
                    region: cache.remote_region.clone().unwrap_or_default(),
                };
                // No retries for lookups: computing is always possible, waiting is not free.
                let patience = Patience {
                    connect: timeout.min(Duration::from_secs(5)),
                    request: Duration::from_secs(300),
                    retries: 0,
                    retry_timeout: timeout,
                };
                store::connect_bucket(target, &patience).map(|c| Backend::S3 {
                    store: c.store,
                    target: c.target,
                })
            }
            None => http_backend(url, timeout),
        };
        let state = Arc::new(State::default());
        let backend = match backend {
            Ok(b) => b,
            Err(e) => {
                state.fail(true, crate::secrets::redact(&e.to_string()));
                // A backend that is never used: every call returns at once.
                Backend::Http {
                    client: reqwest::Client::new(),
                    base: String::new(),
                    auth: None,
                }
            }
        };
        Some(RemoteCache {
            runtime: Some(runtime),
            backend: Arc::new(backend),
            location,
            read_only: cache.remote_read_only,
            timeout,
            state,
            uploads: Mutex::new(Vec::new()),
            budget: Arc::new(Semaphore::new(UPLOAD_BUDGET_KIB)),
            slots: Arc::new(Semaphore::new(UPLOAD_SLOTS)),
        })
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime lives until drop")
    }

    /// Waits for `what` at most `limit`; a timeout or an error leaves the remote alone.
    fn bounded<T>(
        &self,
        limit: Duration,
        what: impl Future<Output = Result<T, String>>,
    ) -> Option<T> {
        match self
            .runtime()
            .block_on(async { tokio::time::timeout(limit, what).await })
        {
            Ok(Ok(v)) => Some(v),
            Ok(Err(message)) => {
                self.state
                    .fail(true, format!("{message}; building without it"));
                None
            }
            Err(_) => {
                self.state.fail(
                    true,
                    format!(
                        "did not answer within {} ms (`remote_timeout_ms`); building without it",
                        limit.as_millis()
                    ),
                );
                None
            }
        }
    }
}

impl Drop for RemoteCache {
    fn drop(&mut self) {
        // Never blocks, so a build may be dropped anywhere, even inside an async context.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// The remote name of kiln's cache key: 64 hex digits, as the action cache expects.
fn action_key(key: &str) -> String {
    hex(&Sha256::digest(format!("kiln-cache\0{key}").as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl RemoteCache {
    /// A lookup that missed took `started.elapsed()`: past the build's budget for those (one
    /// `remote_timeout_ms` in all), the remote is not asked again (a cold or slow remote).
    fn missed(&self, started: std::time::Instant) {
        self.state.misses.fetch_add(1, Ordering::Relaxed);
        let spent = self
            .state
            .miss_wait
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        if spent > self.timeout.as_nanos() as u64 {
            self.state.reads_off.store(true, Ordering::SeqCst);
        }
    }
}

impl RemoteCache {
    /// `path` within `limit` and `max` bytes; None (the miss or the rejection counted) otherwise.
    fn fetch(
        &self,
        path: &str,
        max: u64,
        limit: Duration,
        started: std::time::Instant,
    ) -> Option<Bytes> {
        match self.bounded(limit, self.backend.get(path, max))? {
            Fetched::Found(bytes) => Some(bytes),
            Fetched::Missing => {
                self.missed(started);
                None
            }
            Fetched::TooLarge => {
                self.state.rejected.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

impl Remote for RemoteCache {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        if self.state.reads_off.load(Ordering::SeqCst) {
            self.state.skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let started = std::time::Instant::now();
        let ac = format!("ac/{}", action_key(key));
        let action = self.fetch(&ac, MAX_ACTION, self.timeout, started)?;
        let Some((hash, size)) = action_result::decode(&action).filter(|d| d.1 <= MAX_PAYLOAD)
        else {
            self.state.rejected.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let limit = self.timeout + Duration::from_secs(size / MIN_RATE);
        // Missing here: the action outlived its blob (a server that evicts them separately).
        let blob = self.fetch(&format!("cas/{hash}"), size, limit, started)?;
        self.state
            .bytes_down
            .fetch_add(blob.len() as u64, Ordering::Relaxed);
        if blob.len() as u64 != size || hex(&Sha256::digest(&blob)) != hash {
            self.state.rejected.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.state.hits.fetch_add(1, Ordering::Relaxed);
        Some(blob.to_vec())
    }

    fn put(&self, key: &str, payload: Vec<u8>) {
        if self.read_only || self.state.writes_off.load(Ordering::SeqCst) {
            return;
        }
        let kib = (payload.len() / 1024 + 1).min(UPLOAD_BUDGET_KIB) as u32;
        // Backpressure: a remote slower than the build holds the build back, within the budget
        // and for at most a timeout; past that the result is not uploaded.
        let budget = self.budget.clone();
        // (The timer is made inside the runtime: `timeout` needs its context.)
        let permit = self.runtime().block_on(async {
            tokio::time::timeout(self.timeout, budget.acquire_many_owned(kib)).await
        });
        let Ok(Ok(permit)) = permit else {
            self.state.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        // Hashed here, on the build's thread: the runtime's two threads drive the network and
        // the timers of lookups.
        let size = payload.len() as u64;
        let hash = hex(&Sha256::digest(&payload));
        let action = action_result::encode(&hash, size);
        let (backend, state, slots) =
            (self.backend.clone(), self.state.clone(), self.slots.clone());
        let ac = format!("ac/{}", action_key(key));
        let limit = self.timeout + Duration::from_secs(size / MIN_RATE);
        let handle = self.runtime().spawn(async move {
            let _permit = permit;
            let Ok(_slot) = slots.acquire().await else {
                return;
            };
            if state.writes_off.load(Ordering::SeqCst) {
                state.skipped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let upload = async {
                // The blob first: an action never names a blob that is not there.
                backend.put(&format!("cas/{hash}"), payload.into()).await?;
                if state.writes_off.load(Ordering::SeqCst) {
                    return Err(String::new());
                }
                backend.put(&ac, action.into()).await
            };
            match tokio::time::timeout(limit, upload).await {
                Ok(Ok(())) => {
                    state.uploads.fetch_add(1, Ordering::Relaxed);
                    state.bytes_up.fetch_add(size, Ordering::Relaxed);
                }
                Ok(Err(message)) if message.is_empty() => {}
                Ok(Err(message)) => state.fail(
                    false,
                    format!("uploading: {message}; no more uploads in this build"),
                ),
                Err(_) => state.fail(
                    false,
                    "an upload timed out; no more uploads in this build".to_owned(),
                ),
            }
        });
        self.uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(handle);
    }

    fn finish(&self) -> RemoteReport {
        let handles = std::mem::take(&mut *self.uploads.lock().unwrap_or_else(|e| e.into_inner()));
        let handles: Vec<_> = handles.into_iter().filter(|h| !h.is_finished()).collect();
        if self.state.writes_off.load(Ordering::SeqCst) {
            // Uploads failed already: the rest would too, and nobody waits for them.
            for h in &handles {
                h.abort();
            }
        } else if !handles.is_empty() {
            // One timeout, plus a second per MiB still waiting to go.
            let queued = (UPLOAD_BUDGET_KIB - self.budget.available_permits()) as u64 * 1024;
            let limit = self.timeout + Duration::from_secs(queued / MIN_RATE);
            let aborts: Vec<_> = handles.iter().map(|h| h.abort_handle()).collect();
            let pending = handles.len();
            let drained = self.runtime().block_on(async {
                tokio::time::timeout(limit, futures::future::join_all(handles)).await
            });
            if drained.is_err() {
                aborts.iter().for_each(tokio::task::AbortHandle::abort);
                self.state.fail(
                    false,
                    format!(
                        "{pending} upload(s) did not finish within {} ms and were left out",
                        limit.as_millis()
                    ),
                );
            }
        }
        let s = &self.state;
        RemoteReport {
            location: self.location.clone(),
            hits: s.hits.load(Ordering::Relaxed),
            misses: s.misses.load(Ordering::Relaxed),
            rejected: s.rejected.load(Ordering::Relaxed),
            uploads: s.uploads.load(Ordering::Relaxed),
            skipped: s.skipped.load(Ordering::Relaxed),
            bytes_down: s.bytes_down.load(Ordering::Relaxed),
            bytes_up: s.bytes_up.load(Ordering::Relaxed),
            warning: s
                .warning
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .map(|w| format!("remote cache: {w}")),
        }
    }
}

fn http_backend(url: &str, timeout: Duration) -> Result<Backend, crate::DeployError> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let auth = if let Some(token) = var(TOKEN_VAR) {
        Some(format!("Bearer {token}"))
    } else if let Some(user) = var(USER_VAR) {
        use base64::Engine as _;
        let pair = format!("{user}:{}", var(PASSWORD_VAR).unwrap_or_default());
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ))
    } else {
        None
    };
    let auth = auth
        .map(|a| {
            let mut value = http::HeaderValue::from_str(&a).map_err(|_| {
                crate::DeployError::Credentials(format!(
                    "{TOKEN_VAR} (or the user and password) is not a valid header value"
                ))
            })?;
            value.set_sensitive(true);
            Ok::<_, crate::DeployError>(value)
        })
        .transpose()?;
    let client = reqwest::Client::builder()
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(UPLOAD_SLOTS * 2)
        .build()
        .map_err(|e| crate::DeployError::Internal(e.to_string()))?;
    Ok(Backend::Http {
        client,
        base: url.to_owned(),
        auth,
    })
}

/// The one message kiln stores in the action cache: an `ActionResult` (Remote Execution API v2)
/// whose `output_files` has one entry, `kiln-entry`, with the payload's digest. Hand-encoded:
/// three nested messages of two fields each do not need a protobuf library.
pub mod action_result {
    const PATH: &str = "kiln-entry";

    /// `ActionResult { output_files: [OutputFile { path, digest: Digest { hash, size } }] }`.
    pub fn encode(hash: &str, size: u64) -> Vec<u8> {
        let mut digest = Vec::new();
        field_bytes(&mut digest, 1, hash.as_bytes());
        varint(&mut digest, 2 << 3);
        varint(&mut digest, size);
        let mut file = Vec::new();
        field_bytes(&mut file, 1, PATH.as_bytes());
        field_bytes(&mut file, 2, &digest);
        let mut action = Vec::new();
        field_bytes(&mut action, 2, &file);
        action
    }

    /// The digest (lowercase hex SHA-256, size) of the `kiln-entry` output, if `data` is such
    /// an `ActionResult` (other fields, which a server may add, are skipped).
    pub fn decode(data: &[u8]) -> Option<(String, u64)> {
        for (field, value) in fields(data)? {
            let Value::Bytes(file) = value else { continue };
            if field != 2 {
                continue;
            }
            let (mut path, mut digest) = (None, None);
            for (f, v) in fields(file)? {
                match (f, v) {
                    (1, Value::Bytes(p)) => path = Some(p),
                    (2, Value::Bytes(d)) => digest = Some(d),
                    _ => {}
                }
            }
            if path != Some(PATH.as_bytes()) {
                continue;
            }
            let (mut hash, mut size) = (None, 0);
            for (f, v) in fields(digest?)? {
                match (f, v) {
                    (1, Value::Bytes(h)) => hash = std::str::from_utf8(h).ok(),
                    (2, Value::Varint(s)) => size = s,
                    _ => {}
                }
            }
            let hash = hash?;
            let valid = hash.len() == 64
                && hash
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            return valid.then(|| (hash.to_owned(), size));
        }
        None
    }

    enum Value<'a> {
        Varint(u64),
        Bytes(&'a [u8]),
        Fixed,
    }

    fn fields(mut data: &[u8]) -> Option<Vec<(u64, Value<'_>)>> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let tag = read_varint(&mut data)?;
            let value = match tag & 7 {
                0 => Value::Varint(read_varint(&mut data)?),
                1 => {
                    data = data.get(8..)?;
                    Value::Fixed
                }
                2 => {
                    let len = usize::try_from(read_varint(&mut data)?).ok()?;
                    let (bytes, rest) = data.split_at_checked(len)?;
                    data = rest;
                    Value::Bytes(bytes)
                }
                5 => {
                    data = data.get(4..)?;
                    Value::Fixed
                }
                _ => return None,
            };
            out.push((tag >> 3, value));
        }
        Some(out)
    }

    fn read_varint(data: &mut &[u8]) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = data.split_first()?;
            *data = rest;
            value |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(value);
            }
        }
        None
    }

    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn field_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
        varint(out, (field << 3) | 2);
        varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::action_result;

    #[test]
    fn action_results_round_trip_and_reject_garbage() {
        let hash = "ab".repeat(32);
        let encoded = action_result::encode(&hash, 123_456);
        assert_eq!(
            action_result::decode(&encoded),
            Some((hash.clone(), 123_456))
        );
        // A server may add fields (exit code 0, execution metadata): they are skipped.
        let mut extended = encoded.clone();
        extended.extend_from_slice(&[4 << 3, 0]);
        assert_eq!(action_result::decode(&extended), Some((hash, 123_456)));
        assert_eq!(action_result::decode(&encoded[..encoded.len() - 3]), None);
        assert_eq!(action_result::decode(b"not a protobuf at all"), None);
        assert_eq!(
            action_result::decode(&action_result::encode("../../etc/passwd", 1)),
            None,
            "a hash that is not 64 hex digits never becomes a path"
        );
    }

    #[test]
    fn the_encoding_is_the_protobuf_wire_format() {
        // ActionResult{output_files=[OutputFile{path="kiln-entry", digest={hash="h"*64, size=1}}]},
        // as protoc --encode writes it.
        let hash = "0".repeat(64);
        let bytes = action_result::encode(&hash, 1);
        let mut want = vec![0x12, 82, 0x0a, 10];
        want.extend_from_slice(b"kiln-entry");
        want.extend_from_slice(&[0x12, 68, 0x0a, 64]);
        want.extend_from_slice(hash.as_bytes());
        want.extend_from_slice(&[0x10, 1]);
        assert_eq!(bytes, want);
    }
}

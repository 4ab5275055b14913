//! `kiln verify` (and `kiln deploy --verify`): fetch the deployed files through `public_url`,
//! as a browser would (the CDN, not the bucket), and check that what is served is what was
//! built: status 200, the decoded body's SHA-384 against the manifest's `integrity` (or the
//! local file's), the `Cache-Control` and `Content-Type` it was deployed with, and, with
//! `cors_origins`, the `Access-Control-Allow-Origin` a cross-origin page needs.
//!
//! What can be stale at an edge is checked every time: manifests, unhashed copies and whatever
//! the deploy just changed. Of the fingerprinted rest (whose bytes never change under a name) a
//! random sample is checked, or all of them with `--all`.

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::io::Read;
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha384};

use crate::DeployError;
use crate::cdn::split_public_url;
use crate::local::{Class, LocalBuild, LocalFile, read_file};

/// Requests in flight at once.
const PARALLEL: usize = 16;

/// What to check.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Check every file, not a sample of the fingerprinted ones.
    pub all: bool,
    /// How many fingerprinted files (beyond `changed`) to sample.
    pub sample: usize,
    /// Paths a deploy just uploaded: always checked.
    pub changed: Vec<String>,
}

impl VerifyOptions {
    /// Options checking `sample` fingerprinted files, or all of them.
    pub fn new(all: bool, sample: usize) -> Self {
        VerifyOptions {
            all,
            sample,
            changed: Vec::new(),
        }
    }
}

/// What kind of mismatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// 403/404: not there (or not readable).
    Missing,
    /// Another status than 200.
    Status,
    /// Other bytes than the build's: a stale edge copy, or a changed object.
    Content,
    /// Another `Cache-Control` than deployed.
    CacheControl,
    /// Another `Content-Type` than deployed.
    ContentType,
    /// No `Access-Control-Allow-Origin` for the configured origin.
    Cors,
    /// No answer.
    Unreachable,
}

/// One mismatch.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// Path relative to the output folder.
    pub path: String,
    /// The URL fetched.
    pub url: String,
    /// What kind.
    pub kind: ProblemKind,
    /// What was wrong, in words.
    pub detail: String,
}

/// What `kiln verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The public URL checked.
    pub public_url: String,
    /// Files fetched.
    pub checked: usize,
    /// Files in the build.
    pub total: usize,
    /// Every mismatch (empty: all good).
    pub problems: Vec<Problem>,
    /// Wall time.
    #[serde(serialize_with = "crate::millis", rename = "elapsed_ms")]
    pub elapsed: Duration,
}

/// One file to fetch and what it must be.
pub struct Expectation {
    path: String,
    url: String,
    integrity: String,
    cache_control: String,
    content_type: String,
}

/// `https://static.example.com/` from `public_url`, or an error saying why verify needs one.
fn base_url(public_url: &str) -> Result<String, DeployError> {
    match split_public_url(public_url) {
        (Some(origin), path) => Ok(format!("{origin}{path}")),
        (None, _) => Err(DeployError::Config {
            key: "public_url".to_owned(),
            message: format!(
                "`{public_url}` is not an absolute URL: kiln verify fetches files through the \
                 CDN, so public_url must be its URL (`https://static.example.com/`)"
            ),
        }),
    }
}

/// Picks the files to check and what each must be (reading the local files that have no
/// `integrity` in the manifest).
pub fn expectations(
    build: &LocalBuild,
    options: &VerifyOptions,
) -> Result<Vec<Expectation>, DeployError> {
    let base = base_url(&build.public_url)?;
    let changed: BTreeSet<&str> = options.changed.iter().map(String::as_str).collect();
    let (mut chosen, rest): (Vec<&LocalFile>, Vec<&LocalFile>) =
        build.files.iter().partition(|f| {
            options.all || f.class != Class::Hashed || changed.contains(f.path.as_str())
        });
    // A different sample each run (over time every file gets checked), without a random crate:
    // std's hasher is randomly keyed per process.
    let keyed = std::collections::hash_map::RandomState::new();
    let mut rest: Vec<(u64, &LocalFile)> = rest
        .into_iter()
        .map(|f| (keyed.hash_one(&f.path), f))
        .collect();
    rest.sort_by_key(|(k, _)| *k);
    chosen.extend(rest.into_iter().take(options.sample).map(|(_, f)| f));
    chosen
        .into_iter()
        .map(|f| {
            let integrity = match &f.integrity {
                Some(i) => i.clone(),
                None => sri(&read_file(&build.out, f)?.0),
            };
            Ok(Expectation {
                path: f.path.clone(),
                url: format!("{base}{}", kiln_core::url::encode_path(&f.path)),
                integrity,
                cache_control: f.headers.cache_control.clone(),
                content_type: f.headers.content_type.clone(),
            })
        })
        .collect()
}

/// The SRI value of `bytes` (sha384, base64).
fn sri(bytes: &[u8]) -> String {
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha384::digest(bytes))
    )
}

/// A header value compared loosely: case and spaces do not matter.
fn normal(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Fetches every expectation through the CDN and reports each mismatch. `origin` is sent as
/// `Origin` (a page of that origin), and the answer must allow it.
pub async fn check(
    client: &reqwest::Client,
    public_url: &str,
    total: usize,
    expected: Vec<Expectation>,
    origin: Option<&str>,
) -> VerifyReport {
    let started = Instant::now();
    let checked = expected.len();
    let mut problems: Vec<Problem> = futures::stream::iter(expected)
        .map(|e| async move { check_one(client, &e, origin).await })
        .buffer_unordered(PARALLEL)
        .flat_map(futures::stream::iter)
        .collect()
        .await;
    problems.sort_by(|a, b| (&a.path, a.kind as u8).cmp(&(&b.path, b.kind as u8)));
    VerifyReport {
        public_url: public_url.to_owned(),
        checked,
        total,
        problems,
        elapsed: started.elapsed(),
    }
}

async fn check_one(
    client: &reqwest::Client,
    e: &Expectation,
    origin: Option<&str>,
) -> Vec<Problem> {
    let problem = |kind, detail: String| Problem {
        path: e.path.clone(),
        url: e.url.clone(),
        kind,
        detail,
    };
    let mut request = client
        .get(&e.url)
        // What a browser accepts, so the check sees what a browser gets.
        .header(reqwest::header::ACCEPT_ENCODING, "br, gzip");
    if let Some(origin) = origin {
        request = request.header(reqwest::header::ORIGIN, origin);
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(err) => {
            return vec![problem(
                ProblemKind::Unreachable,
                crate::secrets::request_detail(&err),
            )];
        }
    };
    let status = response.status();
    if status.as_u16() == 404 || status.as_u16() == 403 {
        return vec![problem(
            ProblemKind::Missing,
            format!("HTTP {status}: not deployed, or not readable through the CDN"),
        )];
    }
    if status.as_u16() != 200 {
        return vec![problem(ProblemKind::Status, format!("HTTP {status}"))];
    }
    let headers = response.headers().clone();
    let header = |name: reqwest::header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut problems = Vec::new();
    let cache_control = header(reqwest::header::CACHE_CONTROL).unwrap_or_default();
    if normal(&cache_control) != normal(&e.cache_control) {
        problems.push(problem(
            ProblemKind::CacheControl,
            format!(
                "Cache-Control is `{cache_control}`, deployed as `{}`",
                e.cache_control
            ),
        ));
    }
    let content_type = header(reqwest::header::CONTENT_TYPE).unwrap_or_default();
    if normal(&content_type) != normal(&e.content_type) {
        problems.push(problem(
            ProblemKind::ContentType,
            format!(
                "Content-Type is `{content_type}`, deployed as `{}`",
                e.content_type
            ),
        ));
    }
    if let Some(origin) = origin {
        let allowed = header(reqwest::header::ACCESS_CONTROL_ALLOW_ORIGIN);
        if allowed.as_deref() != Some(origin) && allowed.as_deref() != Some("*") {
            problems.push(problem(
                ProblemKind::Cors,
                format!(
                    "no Access-Control-Allow-Origin for {origin} (got {}): fonts and module \
                     scripts fail on that origin",
                    allowed.as_deref().unwrap_or("none")
                ),
            ));
        }
    }
    let encoding = header(reqwest::header::CONTENT_ENCODING);
    let body = match response.bytes().await {
        Ok(b) => b,
        Err(err) => {
            problems.push(problem(
                ProblemKind::Unreachable,
                crate::secrets::request_detail(&err),
            ));
            return problems;
        }
    };
    match decode(&body, encoding.as_deref()) {
        Ok(decoded) => {
            let got = sri(&decoded);
            if got != e.integrity {
                problems.push(problem(
                    ProblemKind::Content,
                    format!(
                        "other bytes than the build's ({} bytes, {got}; built: {}): a stale CDN \
                         copy (purge it) or an object changed in the bucket",
                        decoded.len(),
                        e.integrity
                    ),
                ));
            }
        }
        Err(detail) => problems.push(problem(ProblemKind::Content, detail)),
    }
    problems
}

/// `body` decoded as its `Content-Encoding` says.
fn decode(body: &[u8], encoding: Option<&str>) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        None | Some("identity") | Some("") => return Ok(body.to_vec()),
        Some("br") => brotli::Decompressor::new(body, 64 << 10)
            .read_to_end(&mut out)
            .map_err(|e| format!("served as Brotli, but does not decode: {e}"))?,
        Some("gzip") => flate2::read::MultiGzDecoder::new(body)
            .read_to_end(&mut out)
            .map_err(|e| format!("served as gzip, but does not decode: {e}"))?,
        Some(other) => {
            return Err(format!(
                "served with Content-Encoding `{other}`, which was not asked for"
            ));
        }
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_decoded_as_their_encoding_says() {
        let text = b"body { color: red }".repeat(10);
        let mut br = Vec::new();
        brotli::BrotliCompress(&mut &text[..], &mut br, &Default::default()).unwrap();
        assert_eq!(decode(&br, Some("br")).unwrap(), text);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &text).unwrap();
        assert_eq!(decode(&gz.finish().unwrap(), Some("gzip")).unwrap(), text);
        assert_eq!(decode(&text, None).unwrap(), text);
        assert!(decode(&text, Some("br")).is_err());
        assert!(decode(&text, Some("zstd")).is_err());
    }

    #[test]
    fn verify_needs_an_absolute_public_url() {
        assert_eq!(
            base_url("https://static.example.com").unwrap(),
            "https://static.example.com/"
        );
        assert!(base_url("/static/").is_err());
    }

    #[test]
    fn sri_matches_the_manifests_format() {
        assert_eq!(
            sri(b""),
            "sha384-OLBgp1GsljhM2TJ+sbHjaiH9txEUvgdDTAzHv2P24donTt6/529l+9Ua0vFImLlb"
        );
    }
}

//! Configuration: `kiln.toml`, its defaults, and validation.
//!
//! The keys are a contract (other tools write them): extend, never rename. Unknown keys are
//! errors that name the key and its position. Relative paths in a file are relative to the
//! file's folder; this module resolves them on load, so the rest of kiln only sees resolved paths.
//! Command-line overrides are applied by the caller (the CLI) on the loaded [`Config`].

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::Encoding;

/// The name kiln looks for in the current directory when no `--config` is given.
pub const CONFIG_FILE: &str = "kiln.toml";

/// Everything a build needs to know. Construct with [`Config::default`] and set fields, or
/// [`Config::load`] a `kiln.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The folder of source assets.
    pub src: PathBuf,
    /// The folder kiln writes fingerprinted files and manifests into (Django's `STATIC_ROOT`).
    pub out: PathBuf,
    /// The URL the output folder is served under (Django's `STATIC_URL`), e.g. `/static/` or
    /// `https://cdn.example.com/static/`. Source references that are `/`-absolute and start with
    /// its path are resolved against `src`.
    pub public_url: String,
    /// Hex characters of the BLAKE3 content hash inserted in file names.
    pub hash_length: usize,
    /// Minify CSS (and, later, JS). `--no-minify` turns it off.
    pub minify: bool,
    /// Write `.map` files for transformed CSS/JS.
    pub source_maps: bool,
    /// A reference to a missing file is an error (true) or a warning that leaves it untouched (false).
    pub strict: bool,
    /// Browserslist queries (a string or a list) that CSS and JS output must support. Unset means
    /// browserslist's `defaults` (see [`Config::browserslist`]).
    #[serde(alias = "browserslist")]
    pub targets: Option<Targets>,
    /// Globs of source files to skip. A glob without `/` matches any path component.
    pub exclude: Vec<String>,
    /// Folders outside `src` that symbolic links under `src` may point into. A link whose target
    /// is outside `src` and outside these is an error: following it would publish whatever it
    /// points at (a credentials file) on the CDN.
    pub allow_symlinks_into: Vec<PathBuf>,
    /// How many builds' worth of fingerprinted files to keep in `out` for rolling deploys.
    pub keep_builds: usize,
    /// Worker threads for the transform stage; unset means one per core.
    pub jobs: Option<usize>,
    /// Which manifests to write.
    pub manifest: ManifestConfig,
    /// CSS options.
    pub css: CssConfig,
    /// JavaScript options.
    pub js: JsConfig,
    /// Precompressed `.br`/`.gz`/`.zst` siblings.
    pub compress: CompressConfig,
    /// The persistent build cache.
    pub cache: CacheConfig,
    /// Also write every output under its logical, unhashed name (`css/app.css`), for framework
    /// development servers (Django returns unhashed names when DEBUG is on). `kiln watch` turns
    /// it on unless `[watch] unhashed = false`.
    pub unhashed: bool,
    /// `kiln watch` settings.
    pub watch: WatchConfig,
    /// Image optimisation settings.
    pub images: ImagesConfig,
    /// `kiln deploy`: where and how the output folder is published.
    pub deploy: DeployConfig,
}

/// `[deploy]`: publishing the output folder to S3-compatible object storage (`kiln deploy`).
/// The keys `bucket`, `prefix`, `endpoint`, `region`, `keep_releases`, `grace`, `max_deletes` and
/// `[[deploy.headers]]` are fixed: other tools write them. Credentials are never read from here,
/// only from the environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DeployConfig {
    /// The bucket (required to deploy).
    pub bucket: Option<String>,
    /// Key prefix, e.g. `static/` (a `/` is added when missing); default: the bucket's root.
    pub prefix: String,
    /// Endpoint of an S3-compatible store (`http://127.0.0.1:8333`, an R2 account URL); unset
    /// means `AWS_ENDPOINT_URL`, then AWS. Plain `http://` is only used for an endpoint that
    /// says `http://`.
    pub endpoint: Option<String>,
    /// Region; unset means `AWS_REGION`, then `us-east-1`.
    pub region: Option<String>,
    /// The releases whose files are never deleted (the current one included).
    pub keep_releases: usize,
    /// Nothing is deleted until this long (`1h`, `30m`, `0s`) after it left the current release.
    pub grace: String,
    /// A deploy that would delete more objects than this is refused without `--yes`.
    pub max_deletes: usize,
    /// Also upload the `.br`/`.gz` siblings under their own keys, with `Content-Encoding` and
    /// the original type, for an edge rule to pick (default: identity bytes only).
    pub precompressed: bool,
    /// Uploads at the same time.
    pub concurrency: usize,
    /// Files larger than this many MiB are uploaded in parts (multipart).
    pub multipart_threshold_mb: u64,
    /// `Cache-Control` rules over the defaults; the first whose `paths` match wins.
    pub headers: Vec<HeaderRule>,
    /// Origins allowed to fetch the files cross-origin (web fonts, module scripts, SRI):
    /// `["https://www.example.com"]`. Non-empty: kiln sets the bucket's CORS rules to allow
    /// `GET`/`HEAD` from them; emptied again: kiln removes the rules it set.
    pub cors_origins: Vec<String>,
    /// `[deploy.cdn]`: the CDN in front of the bucket, purged after each deploy.
    pub cdn: Option<CdnConfig>,
}

/// The CDN providers kiln purges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CdnProvider {
    /// Amazon CloudFront: CreateInvalidation, signed with the deploy's AWS credentials.
    Cloudfront,
    /// Cloudflare: zone purge by URL, token in `CLOUDFLARE_API_TOKEN`.
    Cloudflare,
    /// Fastly: purge by URL, token in `FASTLY_API_TOKEN`.
    Fastly,
    /// An HTTP `PURGE` request per URL to the edge at `purge_url` (Varnish, nginx, ...).
    HttpPurge,
}

impl CdnProvider {
    /// The name as written in `kiln.toml`.
    pub fn name(self) -> &'static str {
        match self {
            CdnProvider::Cloudfront => "cloudfront",
            CdnProvider::Cloudflare => "cloudflare",
            CdnProvider::Fastly => "fastly",
            CdnProvider::HttpPurge => "http-purge",
        }
    }
}

/// `[deploy.cdn]`: which CDN serves `public_url`, and how to purge it. Tokens are never read
/// from here, only from the environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CdnConfig {
    /// The provider.
    pub provider: CdnProvider,
    /// Purge after each deploy (`false` keeps the table, e.g. for `kiln verify`, without purging).
    #[serde(default = "yes")]
    pub purge: bool,
    /// CloudFront: the distribution id (`E2QWRUHEXAMPLE`).
    #[serde(default)]
    pub distribution_id: Option<String>,
    /// Cloudflare: the zone id.
    #[serde(default)]
    pub zone_id: Option<String>,
    /// Fastly: the service id (needed for the purge-all fallback).
    #[serde(default)]
    pub service_id: Option<String>,
    /// http-purge: the edge to send `PURGE` requests to (`http://127.0.0.1:6081`); the `Host`
    /// header is `public_url`'s.
    #[serde(default)]
    pub purge_url: Option<String>,
    /// Above this many changed paths, one wildcard purge replaces them.
    #[serde(default = "default_max_paths")]
    pub max_paths: usize,
    /// The provider's API endpoint, for a proxy or a test double (default: the provider's own).
    #[serde(default)]
    pub api_url: Option<String>,
}

fn yes() -> bool {
    true
}

fn default_max_paths() -> usize {
    100
}

impl CdnConfig {
    /// A table for `provider` with every other key at its default.
    pub fn new(provider: CdnProvider) -> Self {
        CdnConfig {
            provider,
            purge: true,
            distribution_id: None,
            zone_id: None,
            service_id: None,
            purge_url: None,
            max_paths: default_max_paths(),
            api_url: None,
        }
    }

    /// Checks that the provider has what it needs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let need = |key: &str, value: &Option<String>| match value.as_deref().map(str::trim) {
            Some(v) if !v.is_empty() => Ok(()),
            _ => Err(invalid(
                &format!("deploy.cdn.{key}"),
                format!("provider `{}` needs `{key}`", self.provider.name()),
            )),
        };
        match self.provider {
            CdnProvider::Cloudfront => need("distribution_id", &self.distribution_id)?,
            CdnProvider::Cloudflare => need("zone_id", &self.zone_id)?,
            CdnProvider::Fastly => need("service_id", &self.service_id)?,
            CdnProvider::HttpPurge => need("purge_url", &self.purge_url)?,
        }
        for (key, url) in [("purge_url", &self.purge_url), ("api_url", &self.api_url)] {
            if let Some(url) = url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(invalid(
                    &format!("deploy.cdn.{key}"),
                    format!("`{url}` must start with `http://` or `https://`"),
                ));
            }
        }
        for (key, id) in [
            ("distribution_id", &self.distribution_id),
            ("zone_id", &self.zone_id),
            ("service_id", &self.service_id),
        ] {
            if let Some(id) = id
                && !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(invalid(
                    &format!("deploy.cdn.{key}"),
                    format!("`{id}` is not an id (letters, digits, `-` and `_`)"),
                ));
            }
        }
        if self.max_paths == 0 {
            return Err(invalid("deploy.cdn.max_paths", "must be at least 1"));
        }
        Ok(())
    }
}

/// Whether `origin` is a web origin as browsers send it: `scheme://host[:port]`, no path.
pub fn is_origin(origin: &str) -> bool {
    if origin == "*" {
        return true;
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]*".contains(&b))
}

impl Default for DeployConfig {
    fn default() -> Self {
        DeployConfig {
            bucket: None,
            prefix: String::new(),
            endpoint: None,
            region: None,
            keep_releases: 3,
            grace: "1h".to_owned(),
            max_deletes: 1000,
            precompressed: false,
            concurrency: 16,
            multipart_threshold_mb: 64,
            headers: Vec::new(),
            cors_origins: Vec::new(),
            cdn: None,
        }
    }
}

/// `[[deploy.headers]]`: headers for the files whose path (relative to `out`) matches `paths`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HeaderRule {
    /// Globs of paths relative to the output folder, as `exclude` takes them.
    pub paths: Vec<String>,
    /// The `Cache-Control` value for them.
    pub cache_control: Option<String>,
}

impl DeployConfig {
    /// `grace` as a duration.
    pub fn grace(&self) -> Result<std::time::Duration, ConfigError> {
        humantime::parse_duration(self.grace.trim()).map_err(|e| {
            invalid(
                "deploy.grace",
                format!(
                    "`{}` is not a duration such as `1h` or `30m` ({e})",
                    self.grace
                ),
            )
        })
    }

    /// The prefix as used in keys: empty, or ending with exactly one `/`, without a leading `/`.
    pub fn key_prefix(&self) -> String {
        let p = self.prefix.trim_matches('/');
        if p.is_empty() {
            String::new()
        } else {
            format!("{p}/")
        }
    }

    /// Checks every value (also done by [`Config::validate`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.grace()?;
        if self.keep_releases == 0 {
            return Err(invalid(
                "deploy.keep_releases",
                "must be at least 1 (the current release)",
            ));
        }
        if self.concurrency == 0 {
            return Err(invalid("deploy.concurrency", "must be at least 1"));
        }
        if self.multipart_threshold_mb < 5 {
            return Err(invalid(
                "deploy.multipart_threshold_mb",
                "must be at least 5 (S3's smallest part)",
            ));
        }
        if let Some(bucket) = &self.bucket {
            let valid = (3..=63).contains(&bucket.len())
                && bucket
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b));
            if !valid {
                return Err(invalid(
                    "deploy.bucket",
                    format!(
                        "`{bucket}` is not a bucket name (3 to 63 lowercase letters, digits, `-` or `.`)"
                    ),
                ));
            }
        }
        if let Some(endpoint) = &self.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(invalid(
                "deploy.endpoint",
                format!("`{endpoint}` must start with `http://` or `https://`"),
            ));
        }
        if self.prefix.split('/').any(|p| p == "." || p == "..") {
            return Err(invalid(
                "deploy.prefix",
                format!("`{}` must not contain `.` or `..` segments", self.prefix),
            ));
        }
        for rule in &self.headers {
            if rule.paths.is_empty() {
                return Err(invalid("deploy.headers", "a rule needs `paths`"));
            }
            for glob in &rule.paths {
                globset::Glob::new(glob)
                    .map_err(|e| invalid("deploy.headers.paths", e.to_string()))?;
            }
            if let Some(cc) = &rule.cache_control
                && (cc.trim().is_empty() || cc.bytes().any(|b| b.is_ascii_control()))
            {
                return Err(invalid(
                    "deploy.headers.cache_control",
                    format!("`{cc}` is not a header value"),
                ));
            }
        }
        for origin in &self.cors_origins {
            if !is_origin(origin) {
                return Err(invalid(
                    "deploy.cors_origins",
                    format!(
                        "`{origin}` is not an origin such as `https://www.example.com` \
                         (scheme, host and port; no path, no trailing `/`)"
                    ),
                ));
            }
        }
        if let Some(cdn) = &self.cdn {
            cdn.validate()?;
        }
        Ok(())
    }
}

/// `[images]`: image optimisation, responsive widths and modern formats. The keys `widths`,
/// `formats`, `quality` and `speed` are fixed: other tools write them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ImagesConfig {
    /// Optimise images at all (off: they are fingerprinted and copied as they are, no variants).
    pub optimize: bool,
    /// oxipng preset for lossless PNG optimisation, 0 (fast) to 6 (smallest).
    pub png_preset: u8,
    /// Images with more pixels than this are refused (decompression bombs).
    pub max_pixels: u64,
    /// Memory, in MiB, that images being transformed at the same time may take by estimate
    /// (an 18-megapixel photo's AVIF encode alone takes about 750 MiB): a larger image waits for
    /// others to finish, while smaller files keep the other cores busy.
    pub max_memory_mb: u64,
    /// Widths in pixels of the resized variants (`photo-480w.jpg`, `photo-480w.avif`, ...); an
    /// image is never upscaled, so widths at or above its own are skipped.
    pub widths: Vec<u32>,
    /// Modern formats each image (and each width) is also written in, when smaller.
    pub formats: Vec<ImageFormat>,
    /// Quality of AVIF and WebP variants, 1 to 100.
    pub quality: u8,
    /// Encoding speed of AVIF (and WebP) variants, 1 (slowest, smallest) to 10 (fastest).
    pub speed: u8,
    /// Re-encode JPEGs at this quality (1 to 100), keeping whichever of that and the lossless
    /// optimisation is smaller. Unset: JPEGs are only optimised losslessly. Resized JPEG
    /// variants are encoded at this quality, or 85.
    pub jpeg_quality: Option<u8>,
    /// Add a tiny placeholder (a base64 ThumbHash) to each image's manifest entry.
    pub placeholder: bool,
    /// Settings for the images whose logical path matches one of `paths` (the last matching
    /// override wins, key by key): `[[images.overrides]] paths = ["icons/**"] formats = []`.
    pub overrides: Vec<ImagesOverride>,
}

impl Default for ImagesConfig {
    fn default() -> Self {
        ImagesConfig {
            optimize: true,
            png_preset: 2,
            max_pixels: 100_000_000,
            max_memory_mb: 768,
            widths: Vec::new(),
            formats: vec![ImageFormat::Avif, ImageFormat::Webp],
            quality: 80,
            speed: 6,
            jpeg_quality: None,
            placeholder: true,
            overrides: Vec::new(),
        }
    }
}

/// A modern image format kiln writes variants in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ImageFormat {
    /// AVIF (ravif/rav1e).
    Avif,
    /// Lossy WebP (libwebp).
    Webp,
}

impl ImageFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Avif => "avif",
            ImageFormat::Webp => "webp",
        }
    }
}

/// `[[images.overrides]]`: image settings for some paths. Unset keys keep the `[images]` value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ImagesOverride {
    /// Globs of logical paths, as `exclude` takes them (`icons/**`, `*.png`; a glob without `/`
    /// matches any file or folder name).
    pub paths: Vec<String>,
    /// See [`ImagesConfig::optimize`].
    pub optimize: Option<bool>,
    /// See [`ImagesConfig::widths`].
    pub widths: Option<Vec<u32>>,
    /// See [`ImagesConfig::formats`].
    pub formats: Option<Vec<ImageFormat>>,
    /// See [`ImagesConfig::quality`].
    pub quality: Option<u8>,
    /// See [`ImagesConfig::speed`].
    pub speed: Option<u8>,
    /// See [`ImagesConfig::jpeg_quality`].
    pub jpeg_quality: Option<u8>,
    /// See [`ImagesConfig::placeholder`].
    pub placeholder: Option<bool>,
}

impl ImagesConfig {
    /// The `[images]` settings with their overrides' globs compiled, to ask per file.
    pub fn rules(&self) -> ImageRules {
        ImageRules {
            globs: self
                .overrides
                .iter()
                .map(|o| crate::globs::PathGlobs::new(&o.paths))
                .collect(),
            config: self.clone(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.png_preset > 6 {
            return Err(invalid(
                "images.png_preset",
                format!("{} is not between 0 and 6", self.png_preset),
            ));
        }
        let overrides = self.overrides.iter();
        let qualities = std::iter::once(("images.quality", Some(self.quality)))
            .chain(std::iter::once(("images.jpeg_quality", self.jpeg_quality)))
            .chain(
                overrides
                    .clone()
                    .map(|o| ("images.overrides.quality", o.quality)),
            )
            .chain(
                overrides
                    .clone()
                    .map(|o| ("images.overrides.jpeg_quality", o.jpeg_quality)),
            );
        for (key, q) in qualities {
            if let Some(q) = q.filter(|q| !(1..=100).contains(q)) {
                return Err(invalid(key, format!("{q} is not between 1 and 100")));
            }
        }
        let speeds = std::iter::once(("images.speed", Some(self.speed))).chain(
            overrides
                .clone()
                .map(|o| ("images.overrides.speed", o.speed)),
        );
        for (key, s) in speeds {
            if let Some(s) = s.filter(|s| !(1..=10).contains(s)) {
                return Err(invalid(key, format!("{s} is not between 1 and 10")));
            }
        }
        let widths = std::iter::once(&self.widths).chain(overrides.clone().flat_map(|o| &o.widths));
        for w in widths.flatten() {
            if !(1..=65_535).contains(w) {
                return Err(invalid(
                    "images.widths",
                    format!("{w} is not between 1 and 65535"),
                ));
            }
        }
        for o in &self.overrides {
            if o.paths.is_empty() {
                return Err(invalid("images.overrides", "an override needs `paths`"));
            }
            for glob in &o.paths {
                globset::Glob::new(glob)
                    .map_err(|e| invalid("images.overrides.paths", e.to_string()))?;
            }
        }
        Ok(())
    }
}

/// `[images]` compiled for asking per file (see [`ImagesConfig::rules`]).
#[derive(Debug, Clone)]
pub struct ImageRules {
    config: ImagesConfig,
    globs: Vec<crate::globs::PathGlobs>,
}

impl ImageRules {
    /// The `[images]` table as it applies to the image at `logical`: every override whose
    /// `paths` match applied in order (then cleared), `widths` and `formats` sorted without
    /// duplicates.
    pub fn settings_for(&self, logical: &str) -> ImagesConfig {
        let mut s = ImagesConfig {
            overrides: Vec::new(),
            ..self.config.clone()
        };
        for (o, globs) in self.config.overrides.iter().zip(&self.globs) {
            if !globs.matches(logical) {
                continue;
            }
            s.optimize = o.optimize.unwrap_or(s.optimize);
            s.widths = o.widths.clone().unwrap_or(s.widths);
            s.formats = o.formats.clone().unwrap_or(s.formats);
            s.quality = o.quality.unwrap_or(s.quality);
            s.speed = o.speed.unwrap_or(s.speed);
            s.jpeg_quality = o.jpeg_quality.or(s.jpeg_quality);
            s.placeholder = o.placeholder.unwrap_or(s.placeholder);
        }
        s.widths.sort_unstable();
        s.widths.dedup();
        s.formats.sort_unstable();
        s.formats.dedup();
        s
    }
}

/// `[watch]`: how `kiln watch` builds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct WatchConfig {
    /// Write unhashed copies too (see [`Config::unhashed`]).
    pub unhashed: bool,
    /// Minify while watching (turn off for faster rebuilds of large files).
    pub minify: bool,
    /// Precompress while watching (off by default: development servers compress on the fly).
    pub compress: bool,
    /// Milliseconds to wait for a burst of changes (a `git checkout`) to settle before rebuilding.
    pub debounce_ms: u64,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            unhashed: true,
            minify: true,
            compress: false,
            debounce_ms: 100,
        }
    }
}

/// `[cache]`: the persistent, content-addressed cache of transform and compression results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CacheConfig {
    /// Use the cache (`kiln build --no-cache` turns it off for one build).
    pub enabled: bool,
    /// Where it lives (relative paths are relative to kiln.toml's folder).
    pub dir: PathBuf,
    /// Least recently used entries are removed beyond this size, in MiB.
    pub max_size_mb: u64,
    /// A cache shared by a team and its CI runners, behind the local one: `s3://bucket/prefix`
    /// (credentials from the AWS environment, as `kiln deploy`) or `http(s)://host/path` (the
    /// Bazel HTTP cache protocol: `/ac/` and `/cas/`, as bazel-remote or nginx WebDAV serve it).
    pub remote: Option<String>,
    /// Read from `remote`, never write to it (for untrusted jobs such as pull requests).
    pub remote_read_only: bool,
    /// How long a lookup may wait for the remote before the build computes without it (the
    /// remote is then left alone for the rest of the build), in milliseconds.
    pub remote_timeout_ms: u64,
    /// The S3 endpoint of an `s3://` remote that is not AWS (else `AWS_ENDPOINT_URL_S3` or
    /// `AWS_ENDPOINT_URL`).
    pub remote_endpoint: Option<String>,
    /// The region of an `s3://` remote (else `AWS_REGION`, else `us-east-1`).
    pub remote_region: Option<String>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            dir: PathBuf::from(".kiln-cache"),
            max_size_mb: 1024,
            remote: None,
            remote_read_only: false,
            remote_timeout_ms: 5000,
            remote_endpoint: None,
            remote_region: None,
        }
    }
}

impl CacheConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(remote) = &self.remote {
            // The value is never echoed: it may hold a credential someone pasted into it.
            if remote.contains('@') {
                return Err(invalid(
                    "cache.remote",
                    "credentials do not belong in kiln.toml: set KILN_REMOTE_CACHE_TOKEN, or \
                     KILN_REMOTE_CACHE_USER and KILN_REMOTE_CACHE_PASSWORD (for s3://, the AWS \
                     environment)",
                ));
            }
            let (scheme, rest) = remote.split_once("://").unwrap_or(("", ""));
            if !matches!(scheme, "s3" | "http" | "https") {
                return Err(invalid(
                    "cache.remote",
                    "must start with `s3://bucket/prefix`, `http://` or `https://`",
                ));
            }
            let host = rest.split('/').next().unwrap_or("");
            if host.is_empty() || rest.contains(['?', '#', ' ']) {
                return Err(invalid(
                    "cache.remote",
                    "needs a bucket or host, and no query, fragment or space: \
                     `s3://bucket/prefix` or `https://host/path`",
                ));
            }
            if let Some(endpoint) = &self.remote_endpoint
                && (endpoint.contains('@')
                    || !(endpoint.starts_with("http://") || endpoint.starts_with("https://")))
            {
                return Err(invalid(
                    "cache.remote_endpoint",
                    "must be an `http://` or `https://` URL without credentials",
                ));
            }
            if scheme != "s3" && (self.remote_endpoint.is_some() || self.remote_region.is_some()) {
                return Err(invalid(
                    "cache.remote_endpoint",
                    "`remote_endpoint` and `remote_region` are for an `s3://` remote",
                ));
            }
        }
        if self.remote_timeout_ms == 0 {
            return Err(invalid("cache.remote_timeout_ms", "must be at least 1"));
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            src: PathBuf::from("assets"),
            out: PathBuf::from("static"),
            public_url: "/static/".to_owned(),
            hash_length: 12,
            minify: true,
            source_maps: true,
            strict: true,
            targets: None,
            // Django's collectstatic ignore patterns.
            exclude: vec![".*".to_owned(), "*~".to_owned(), "CVS".to_owned()],
            allow_symlinks_into: Vec::new(),
            keep_builds: 3,
            jobs: None,
            manifest: ManifestConfig::default(),
            css: CssConfig::default(),
            js: JsConfig::default(),
            compress: CompressConfig::default(),
            cache: CacheConfig::default(),
            unhashed: false,
            watch: WatchConfig::default(),
            images: ImagesConfig::default(),
            deploy: DeployConfig::default(),
        }
    }
}

/// Browserslist queries: `targets = "defaults"` or `targets = ["> 0.5%", "not dead"]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Targets {
    /// One comma-separated query string.
    One(String),
    /// A list of queries.
    Many(Vec<String>),
}

impl Targets {
    /// The queries as a list.
    pub fn queries(&self) -> Vec<String> {
        match self {
            Targets::One(s) => vec![s.clone()],
            Targets::Many(v) => v.clone(),
        }
    }
}

/// `[manifest]`: which manifest files to write into `out`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ManifestConfig {
    /// Formats to write; see [`ManifestFormat`].
    pub formats: Vec<ManifestFormat>,
}

impl Default for ManifestConfig {
    fn default() -> Self {
        ManifestConfig {
            formats: ManifestFormat::ALL.to_vec(),
        }
    }
}

/// A manifest format. The names are a contract used by `--manifest` and `[manifest] formats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ManifestFormat {
    /// kiln's own `manifest.json` (sizes, integrity, references, source maps).
    Kiln,
    /// Django's `staticfiles.json` for ManifestStaticFilesStorage and WhiteNoise.
    Django,
    /// flask-static-digest's `cache_manifest.json`.
    Flask,
    /// An HTML import map (`importmap.json`) from module URLs and `[js.aliases]` to fingerprinted URLs.
    #[serde(rename = "importmap")]
    ImportMap,
}

impl ManifestFormat {
    /// Every format, in the order they are written (kiln's last).
    pub const ALL: [ManifestFormat; 4] = [
        ManifestFormat::Django,
        ManifestFormat::Flask,
        ManifestFormat::ImportMap,
        ManifestFormat::Kiln,
    ];

    /// The format's name as used on the command line and in `kiln.toml`.
    pub fn name(self) -> &'static str {
        match self {
            ManifestFormat::Kiln => "kiln",
            ManifestFormat::Django => "django",
            ManifestFormat::Flask => "flask",
            ManifestFormat::ImportMap => "importmap",
        }
    }

    /// The file name it is written to, in `out`.
    pub fn file_name(self) -> &'static str {
        match self {
            ManifestFormat::Kiln => "manifest.json",
            ManifestFormat::Django => "staticfiles.json",
            ManifestFormat::Flask => "cache_manifest.json",
            ManifestFormat::ImportMap => "importmap.json",
        }
    }

    /// Parses a comma-separated list such as `kiln,django`.
    pub fn parse_list(list: &str) -> Result<Vec<ManifestFormat>, ConfigError> {
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let format = Self::ALL
                .into_iter()
                .find(|f| f.name() == name)
                .ok_or_else(|| ConfigError::Invalid {
                    key: "manifest".to_owned(),
                    message: format!(
                        "unknown manifest format `{name}` (expected kiln, django, flask or importmap)"
                    ),
                })?;
            if !out.contains(&format) {
                out.push(format);
            }
        }
        Ok(out)
    }
}

/// `[css]`: options for the CSS transformer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CssConfig {
    /// Inline `@import`ed files that are in the source tree into the importing file.
    pub bundle: bool,
    /// Build what browsers accept: an invalid declaration or rule (an IE star hack, an `@import`
    /// after other rules) is dropped, as browsers drop it, with a warning, instead of failing
    /// the build. On by default; `false` makes every such problem an error.
    pub error_recovery: bool,
}

impl Default for CssConfig {
    fn default() -> Self {
        CssConfig {
            bundle: false,
            error_recovery: true,
        }
    }
}

/// `[js]`: options for the JavaScript transformer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct JsConfig {
    /// Bare specifiers mapped to files of the source folder (`three = "vendor/three/three.module.js"`):
    /// imports of them are rewritten like relative ones, and the import map lists them.
    pub aliases: std::collections::BTreeMap<String, String>,
    /// Globs of files that are ES modules even without `import`/`export` (`.mjs` always is).
    pub modules: Vec<String>,
    /// Globs of files that are classic scripts even if they parse as modules (`.cjs` always is).
    pub scripts: Vec<String>,
}

/// A problem with the configuration: exit status 2 in the CLI.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("{path}: cannot read config: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has unknown or mistyped keys.
    #[error("{path}:{line}:{column}: error: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 if unknown).
        line: usize,
        /// 1-based column (0 if unknown).
        column: usize,
        /// What the TOML parser said, naming the key.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid `{key}`: {message}")]
    Invalid {
        /// The key.
        key: String,
        /// Why.
        message: String,
    },
}

impl Config {
    /// Reads `path`, resolving relative `src` and `out` against the file's folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::from_toml(&text, path)?;
        let base = path.parent().unwrap_or(Path::new(""));
        config.src = join_base(base, &config.src);
        config.out = join_base(base, &config.out);
        config.cache.dir = join_base(base, &config.cache.dir);
        for folder in &mut config.allow_symlinks_into {
            *folder = join_base(base, folder);
        }
        Ok(config)
    }

    /// Parses TOML text; `path` is only used in error messages. Paths are left as written.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str::<Config>(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_col(text, span.start))
                .unwrap_or((0, 0));
            ConfigError::Parse {
                path: path.to_owned(),
                line,
                column,
                message: e.message().to_owned(),
            }
        })
    }

    /// Checks ranges and normalises values (`public_url` gets a trailing `/`).
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        if !(8..=64).contains(&self.hash_length) {
            return Err(invalid(
                "hash_length",
                format!("{} is not between 8 and 64", self.hash_length),
            ));
        }
        if self.keep_builds == 0 {
            return Err(invalid(
                "keep_builds",
                "must be at least 1 (the current build)",
            ));
        }
        if self.jobs == Some(0) {
            return Err(invalid("jobs", "must be at least 1"));
        }
        if self.public_url.is_empty() {
            self.public_url = "/".to_owned();
        }
        if !self.public_url.ends_with('/') {
            self.public_url.push('/');
        }
        if !(self.public_url.starts_with('/')
            || self.public_url.contains("://")
            || self.public_url.starts_with("//"))
        {
            return Err(invalid(
                "public_url",
                format!(
                    "`{}` must start with `/`, `//` or a scheme such as `https://`",
                    self.public_url
                ),
            ));
        }
        for (key, globs) in [
            ("exclude", &self.exclude),
            ("js.modules", &self.js.modules),
            ("js.scripts", &self.js.scripts),
        ] {
            for glob in globs {
                globset::Glob::new(glob).map_err(|e| invalid(key, e.to_string()))?;
            }
        }
        self.compress
            .validate()
            .map_err(|m| invalid("compress", m))?;
        self.images.validate()?;
        self.deploy.validate()?;
        self.cache.validate()?;
        for (alias, target) in &self.js.aliases {
            if alias.starts_with('.') || alias.starts_with('/') || alias.is_empty() {
                return Err(invalid(
                    "js.aliases",
                    format!("`{alias}` is not a bare specifier"),
                ));
            }
            if target.starts_with('/') || target.split('/').any(|p| p == "..") {
                return Err(invalid(
                    "js.aliases",
                    format!("`{alias} = \"{target}\"` must be a path relative to `src`"),
                ));
            }
        }
        Ok(())
    }

    /// The browserslist queries in force: `targets`, or `["defaults"]` when unset, so minifiers never
    /// write syntax that common browsers (older Safari among them) cannot read.
    pub fn browserslist(&self) -> Vec<String> {
        self.targets
            .as_ref()
            .map_or_else(|| vec!["defaults".to_owned()], Targets::queries)
    }

    /// A digest of every setting that can change a transformer's output (not paths, manifests,
    /// compression or thread counts): part of every transform cache key.
    pub fn transform_fingerprint(&self) -> blake3::Hash {
        let relevant = serde_json::json!({
            "minify": self.minify,
            "source_maps": self.source_maps,
            "targets": self.browserslist(),
            "public_url": self.public_url,
            "css": self.css,
            "js": self.js,
            // The memory budget changes scheduling, never an output.
            "images": ImagesConfig { max_memory_mb: 0, ..self.images.clone() },
        });
        blake3::hash(relevant.to_string().as_bytes())
    }

    /// The memory budget of the transform stage in bytes (`[images] max_memory_mb`).
    pub fn memory_budget(&self) -> u64 {
        self.images.max_memory_mb.saturating_mul(1 << 20)
    }

    /// The path part of `public_url` (`/static/` for `https://cdn.example.com/static/`).
    pub fn public_path(&self) -> &str {
        let url = self.public_url.as_str();
        let after_scheme = match url.find("://") {
            Some(i) => &url[i + 3..],
            None => url.strip_prefix("//").unwrap_or(url),
        };
        if url.starts_with('/') && !url.starts_with("//") {
            return url;
        }
        after_scheme.find('/').map_or("/", |i| &after_scheme[i..])
    }
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: message.into(),
    }
}

fn join_base(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() || base.as_os_str().is_empty() {
        p.to_owned()
    } else {
        base.join(p)
    }
}

/// 1-based line and column (in characters) of byte offset `at` in `text`.
pub(crate) fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

impl fmt::Display for ManifestFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `[compress]`: which siblings to write and how hard to try.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CompressConfig {
    /// Encodings to write; empty turns precompression off.
    pub formats: Vec<Encoding>,
    /// Brotli quality, 0–11.
    pub brotli_quality: u32,
    /// gzip level (libdeflate), 1–12; 12 is within a fraction of a percent of zopfli.
    pub gzip_level: i32,
    /// Zstandard level, 1–22.
    pub zstd_level: i32,
    /// Keep a sibling only when it is at most this fraction of the original (WhiteNoise: 0.95).
    pub max_ratio: f64,
    /// Precompress source maps (`.map` files, kiln's and the ones in `src`) too. Only developer
    /// tools download them, so they get fast levels (Brotli 5, gzip 6) whatever the levels above.
    pub source_maps: bool,
}

impl Default for CompressConfig {
    fn default() -> Self {
        CompressConfig {
            formats: vec![Encoding::Brotli, Encoding::Gzip],
            brotli_quality: 11,
            gzip_level: 12,
            zstd_level: 19,
            max_ratio: 0.95,
            source_maps: true,
        }
    }
}

impl CompressConfig {
    /// The levels used for source maps.
    pub(crate) fn for_maps(&self) -> CompressConfig {
        CompressConfig {
            brotli_quality: self.brotli_quality.min(5),
            gzip_level: self.gzip_level.min(6),
            zstd_level: self.zstd_level.min(3),
            ..self.clone()
        }
    }

    /// Checks levels, and that this build of kiln has the requested encoders.
    pub fn validate(&self) -> Result<(), String> {
        if self.brotli_quality > 11 {
            return Err(format!(
                "brotli_quality {} is not between 0 and 11",
                self.brotli_quality
            ));
        }
        if !(1..=12).contains(&self.gzip_level) {
            return Err(format!(
                "gzip_level {} is not between 1 and 12",
                self.gzip_level
            ));
        }
        if !(1..=22).contains(&self.zstd_level) {
            return Err(format!(
                "zstd_level {} is not between 1 and 22",
                self.zstd_level
            ));
        }
        if !(0.0..=1.0).contains(&self.max_ratio) {
            return Err(format!(
                "max_ratio {} is not between 0 and 1",
                self.max_ratio
            ));
        }
        for f in &self.formats {
            if !available(*f) {
                return Err(format!(
                    "this kiln was built without `{}` support (feature `compress`/`zstd`)",
                    f.name()
                ));
            }
        }
        Ok(())
    }
}

fn available(encoding: Encoding) -> bool {
    match encoding {
        Encoding::Brotli | Encoding::Gzip => cfg!(feature = "compress"),
        Encoding::Zstd => cfg!(feature = "zstd"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_an_error_naming_it_and_its_position() {
        let err =
            Config::from_toml("src = \"a\"\nminfy = false\n", Path::new("kiln.toml")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("kiln.toml:2:1: error: unknown field `minfy`"),
            "{text}"
        );
    }

    #[test]
    fn unknown_key_in_a_table_is_an_error() {
        let err = Config::from_toml("[css]\nbundel = true\n", Path::new("k.toml")).unwrap_err();
        assert!(err.to_string().contains("unknown field `bundel`"), "{err}");
    }

    #[test]
    fn targets_take_a_string_or_a_list() {
        let c = Config::from_toml("targets = \"defaults\"", Path::new("k")).unwrap();
        assert_eq!(c.targets.unwrap().queries(), vec!["defaults"]);
        let c = Config::from_toml(
            "browserslist = [\"chrome 90\", \"firefox 90\"]",
            Path::new("k"),
        )
        .unwrap();
        assert_eq!(c.targets.unwrap().queries().len(), 2);
    }

    #[test]
    fn public_path_of_cdn_and_local_urls() {
        let mut c = Config {
            public_url: "https://cdn.example.com/static".into(),
            ..Config::default()
        };
        c.validate().unwrap();
        assert_eq!(c.public_url, "https://cdn.example.com/static/");
        assert_eq!(c.public_path(), "/static/");
        c.public_url = "//cdn.example.com/".into();
        assert_eq!(c.public_path(), "/");
        c.public_url = "/assets/".into();
        assert_eq!(c.public_path(), "/assets/");
    }

    #[test]
    fn validate_rejects_bad_values() {
        let mut c = Config {
            hash_length: 4,
            ..Config::default()
        };
        assert!(
            matches!(c.validate(), Err(ConfigError::Invalid { key, .. }) if key == "hash_length")
        );
        let mut c = Config {
            public_url: "static/".into(),
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn manifest_list_parses_and_rejects_unknown_names() {
        assert_eq!(
            ManifestFormat::parse_list("django, kiln").unwrap(),
            vec![ManifestFormat::Django, ManifestFormat::Kiln]
        );
        assert!(
            ManifestFormat::parse_list("kiln,vite")
                .unwrap_err()
                .to_string()
                .contains("vite")
        );
    }

    #[test]
    fn image_overrides_apply_in_order_to_matching_paths_only() {
        let images: ImagesConfig = toml::from_str(
            r#"
            widths = [960, 480, 960]
            [[overrides]]
            paths = ["icons"]
            formats = []
            [[overrides]]
            paths = ["*.png"]
            quality = 50
            "#,
        )
        .unwrap();
        let rules = images.rules();
        // A glob without `/` matches a folder name, as in `exclude`.
        let icon = rules.settings_for("img/icons/home.png");
        assert_eq!((icon.formats.len(), icon.quality), (0, 50));
        assert_eq!(icon.widths, [480, 960], "sorted, without duplicates");
        assert!(icon.overrides.is_empty());
        let photo = rules.settings_for("img/photo.jpg");
        assert_eq!((photo.formats.len(), photo.quality), (2, 80));
    }

    #[test]
    fn deploy_table_parses_validates_and_rejects_unknown_keys() {
        let mut c = Config::from_toml(
            r#"
            [deploy]
            bucket = "my-assets"
            prefix = "/static"
            endpoint = "http://127.0.0.1:8333"
            region = "us-east-1"
            keep_releases = 3
            grace = "90m"
            max_deletes = 10
            [[deploy.headers]]
            paths = ["fonts/**"]
            cache_control = "public, max-age=600"
            "#,
            Path::new("kiln.toml"),
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.deploy.key_prefix(), "static/");
        assert_eq!(c.deploy.grace().unwrap().as_secs(), 5400);
        assert_eq!(c.deploy.headers[0].paths, ["fonts/**"]);

        let err = Config::from_toml("[deploy]\nbucket = \"b\"\nsecret = \"x\"\n", Path::new("k"))
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `secret`"), "{err}");
        for (toml, key) in [
            ("grace = \"soon\"", "deploy.grace"),
            ("keep_releases = 0", "deploy.keep_releases"),
            ("bucket = \"My_Bucket\"", "deploy.bucket"),
            ("endpoint = \"127.0.0.1:9000\"", "deploy.endpoint"),
            ("prefix = \"a/../b\"", "deploy.prefix"),
        ] {
            let mut c = Config::from_toml(&format!("[deploy]\n{toml}\n"), Path::new("k")).unwrap();
            assert!(
                matches!(c.validate(), Err(ConfigError::Invalid { key: k, .. }) if k == key),
                "{toml}"
            );
        }
    }
}

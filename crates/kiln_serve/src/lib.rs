//! kiln_serve: the runtime side of kiln's `build.rs` integration.
//!
//! `kiln::cargo::Assets::emit()` (in a build script) builds the assets into `OUT_DIR` and writes
//! `assets.rs`, which a crate includes:
//!
//! ```ignore
//! mod assets {
//!     include!(concat!(env!("OUT_DIR"), "/assets.rs"));
//! }
//! // One static per asset, mirroring the source folder: a misspelt name is a compile error.
//! let css: &kiln_serve::Asset = &assets::css::APP_CSS;
//! assert!(css.url.starts_with("/static/css/app."));
//! // And a table by logical path, for templates.
//! assert_eq!(assets::ASSETS.get("css/app.css").map(|a| a.url), Some(css.url));
//! ```
//!
//! The types here are what that file is made of: [`Asset`] (URL, integrity, content type, size,
//! [`Image`] facts), its [`Representation`]s (the identity bytes and their `.br`/`.gz`
//! siblings, embedded in the binary or read from `OUT_DIR`), and [`Assets`], the table. With the
//! `axum` feature, [`Assets::service`] serves them (see [`service`]).

#[cfg(feature = "axum")]
pub mod service;

/// A content coding of a representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Encoding {
    /// The bytes as built.
    Identity,
    /// Brotli (`br`).
    Brotli,
    /// zstd (`zstd`).
    Zstd,
    /// gzip (`gzip`).
    Gzip,
}

impl Encoding {
    /// The `Content-Encoding` / `Accept-Encoding` token.
    pub const fn token(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Brotli => "br",
            Encoding::Zstd => "zstd",
            Encoding::Gzip => "gzip",
        }
    }
}

/// Where a representation's bytes are.
#[derive(Debug, Clone, Copy)]
pub enum Body {
    /// In the binary (`include_bytes!`): release builds.
    Embedded(&'static [u8]),
    /// In a file under `OUT_DIR`, read when served: debug builds, which then link quickly.
    File(&'static str),
}

/// One encoding of an output file.
#[derive(Debug)]
pub struct Representation {
    /// Its content coding.
    pub encoding: Encoding,
    /// A strong entity tag of these bytes, quoted (`"…"`): each representation has its own.
    pub etag: &'static str,
    /// Its length in bytes.
    pub size: u64,
    /// The bytes.
    pub body: Body,
}

impl Representation {
    /// The bytes (read from `OUT_DIR` when not embedded).
    pub fn bytes(&self) -> std::io::Result<std::borrow::Cow<'static, [u8]>> {
        match self.body {
            Body::Embedded(b) => Ok(std::borrow::Cow::Borrowed(b)),
            Body::File(path) => std::fs::read(path).map(std::borrow::Cow::Owned),
        }
    }
}

/// A built asset.
#[derive(Debug)]
pub struct Asset {
    /// Its logical path: relative to the source folder, POSIX (`css/app.css`).
    pub path: &'static str,
    /// Its fingerprinted file name, relative to the public URL (`css/app.3f54ce26f927.css`).
    pub file: &'static str,
    /// Its URL: the public URL followed by `file`, percent-encoded.
    pub url: &'static str,
    /// Subresource Integrity (`sha384-…`), for `<link integrity>` and `<script integrity>`.
    pub integrity: &'static str,
    /// Its MIME type.
    pub content_type: &'static str,
    /// Bytes of the identity representation.
    pub size: u64,
    /// Width, height and variants, for images.
    pub image: Option<&'static Image>,
    /// The identity bytes first, then the precompressed siblings.
    pub representations: &'static [Representation],
}

/// What kiln knows of an image.
#[derive(Debug)]
pub struct Image {
    /// Width in pixels as displayed.
    pub width: u32,
    /// Height in pixels as displayed.
    pub height: u32,
    /// Other widths and formats (AVIF, WebP), smallest width first.
    pub variants: &'static [Variant],
}

/// A variant of an image: another width or format, an asset of its own.
#[derive(Debug)]
pub struct Variant {
    /// The variant.
    pub asset: &'static Asset,
    /// Its width in pixels.
    pub width: u32,
    /// Its height in pixels.
    pub height: u32,
}

impl Asset {
    /// A `srcset` value of this image in `content_type` (`"image/avif"`, or the image's own
    /// type, which includes the image itself at its full width): `"url 320w, url 640w"`. Empty
    /// when the image has no variant of that type, or for a file that is not an image.
    pub fn srcset(&self, content_type: &str) -> String {
        let Some(image) = self.image else {
            return String::new();
        };
        let mut entries: Vec<(u32, &str)> = image
            .variants
            .iter()
            .filter(|v| v.asset.content_type == content_type)
            .map(|v| (v.width, v.asset.url))
            .collect();
        if self.content_type == content_type && !entries.iter().any(|e| e.0 == image.width) {
            entries.push((image.width, self.url));
        }
        entries.sort_by_key(|e| e.0);
        entries
            .iter()
            .map(|(w, url)| format!("{url} {w}w"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The modern formats this image has variants in (`image/avif`, `image/webp`), best first.
    pub fn modern_formats(&self) -> Vec<&'static str> {
        let mut formats = Vec::new();
        for ty in ["image/avif", "image/webp"] {
            if self
                .image
                .is_some_and(|i| i.variants.iter().any(|v| v.asset.content_type == ty))
                && ty != self.content_type
            {
                formats.push(ty);
            }
        }
        formats
    }
}

/// A path the service answers: a fingerprinted name (cached forever), a logical name (revalidated)
/// or a source map.
#[derive(Debug)]
pub struct Route {
    /// The path relative to the public URL, not percent-encoded.
    pub name: &'static str,
    /// Whether the name has the content's fingerprint (`immutable`) or not (`no-cache`).
    pub hashed: bool,
    /// Its MIME type.
    pub content_type: &'static str,
    /// Its representations, identity first.
    pub representations: &'static [Representation],
}

/// Every asset of a build: by logical path for templates, by served name for the service.
#[derive(Debug)]
pub struct Assets {
    /// The public URL the files are served under (`/static/`).
    pub public_url: &'static str,
    /// Assets sorted by logical path.
    pub by_path: &'static [&'static Asset],
    /// Routes sorted by name.
    pub routes: &'static [Route],
}

impl Assets {
    /// The asset at `logical` (`css/app.css`), by binary search.
    pub fn get(&self, logical: &str) -> Option<&'static Asset> {
        self.by_path
            .binary_search_by(|a| a.path.cmp(logical))
            .ok()
            .map(|i| self.by_path[i])
    }

    /// The URL of the asset at `logical`, for templates (`{{ url("css/app.css") }}`).
    pub fn url(&self, logical: &str) -> Option<&'static str> {
        self.get(logical).map(|a| a.url)
    }

    /// The route for `name` (a path relative to the public URL, decoded), by binary search.
    pub fn route(&self, name: &str) -> Option<&'static Route> {
        self.routes
            .binary_search_by(|r| r.name.cmp(name))
            .ok()
            .map(|i| &self.routes[i])
    }

    /// Every asset, sorted by logical path.
    pub fn iter(&self) -> impl Iterator<Item = &'static Asset> + use<> {
        let all: &'static [&'static Asset] = self.by_path;
        all.iter().copied()
    }
}

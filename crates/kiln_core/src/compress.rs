//! Precompression: `.br`, `.gz` (and on request `.zst`) siblings of text-like outputs, for
//! WhiteNoise, nginx `gzip_static`/`brotli_static` and CDNs, so nothing compresses at request time.
//!
//! Owns which files are worth compressing (everything but formats that are already compressed,
//! the same rule as WhiteNoise), the 95% rule (a sibling is kept only when it is at most 95% of the
//! original, also WhiteNoise's), reproducible gzip (libdeflate writes no timestamp or file name),
//! and doing each distinct content once, in parallel, largest first. Runs after `link`, before
//! `emit`; it does not write files.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::config::CompressConfig;
use crate::model::{CompressStats, Encoded, Encoding, Linked, OutputFile};

/// Extensions of formats that are compressed already (WhiteNoise's list, plus newer formats).
const ALREADY_COMPRESSED: &[&str] = &[
    "jpg", "jpeg", "png", "gif", "webp", "avif", "jxl", "heic", "zip", "gz", "tgz", "bz2", "tbz",
    "xz", "br", "zst", "7z", "rar", "swf", "flv", "woff", "woff2", "3gp", "3gpp", "asf", "avi",
    "m4v", "mov", "mp4", "mpeg", "mpg", "webm", "wmv", "mp3", "ogg", "oga", "opus", "m4a", "aac",
    "flac", "pdf",
];

/// Whether a file with this path is worth compressing.
pub fn compressible(path: &str) -> bool {
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    !ext.is_some_and(|e| ALREADY_COMPRESSED.contains(&e.as_str()))
}

/// Compresses `bytes` with `encoding`; None when the encoder is not built in.
pub fn encode(encoding: Encoding, bytes: &[u8], config: &CompressConfig) -> Option<Vec<u8>> {
    match encoding {
        #[cfg(feature = "compress")]
        Encoding::Brotli => {
            let params = brotli::enc::BrotliEncoderParams {
                quality: config.brotli_quality as i32,
                size_hint: bytes.len(),
                ..Default::default()
            };
            let mut out = Vec::with_capacity(bytes.len() / 3);
            brotli::BrotliCompress(&mut &bytes[..], &mut out, &params).ok()?;
            Some(out)
        }
        #[cfg(feature = "compress")]
        Encoding::Gzip => {
            let level = libdeflater::CompressionLvl::new(config.gzip_level).ok()?;
            let mut c = libdeflater::Compressor::new(level);
            let mut out = vec![0; c.gzip_compress_bound(bytes.len())];
            let n = c.gzip_compress(bytes, &mut out).ok()?;
            out.truncate(n);
            Some(out)
        }
        #[cfg(feature = "zstd")]
        Encoding::Zstd => zstd::bulk::compress(bytes, config.zstd_level).ok(),
        #[allow(unreachable_patterns)] // every arm above may be compiled out
        _ => {
            let _ = (bytes, config);
            None
        }
    }
}

/// Files at least this large share their compressed siblings through a remote cache (Brotli 11
/// takes about 15 ms for 16 KiB, several round trips to a remote cache).
const SHARED_MIN: usize = 16 * 1024;

/// The cache key of `content` compressed with `encoding` at `config`'s level for it.
fn cache_key(encoding: Encoding, config: &CompressConfig, content: &blake3::Hash) -> blake3::Hash {
    let level = match encoding {
        Encoding::Brotli => config.brotli_quality as i64,
        Encoding::Gzip => i64::from(config.gzip_level),
        Encoding::Zstd => i64::from(config.zstd_level),
    };
    let mut h = blake3::Hasher::new();
    h.update(b"kiln compress\0");
    h.update(crate::model::VERSION.as_bytes());
    h.update(encoding.name().as_bytes());
    h.update(&level.to_le_bytes());
    h.update(content.as_bytes());
    h.finalize()
}

/// Adds siblings to every compressible output file of `linked` (assets and their maps), reusing
/// compressed bytes from `cache` when it has them.
pub fn compress(
    linked: &mut Linked,
    config: &CompressConfig,
    cache: Option<&crate::cache::Cache>,
) -> CompressStats {
    if config.formats.is_empty() {
        return CompressStats::default();
    }
    let map_config = config.for_maps();
    let mut stats = CompressStats::default();
    // Files an earlier build wrote, not loaded: their siblings are in the output folder already.
    for f in (linked.assets.iter())
        .flat_map(|a| std::iter::once(&a.output).chain(a.map.as_ref()))
        .filter(|f| f.kept.is_some())
    {
        stats.count(f);
    }
    let mut files: Vec<(&mut OutputFile, bool)> = linked
        .assets
        .iter_mut()
        .flat_map(|a| std::iter::once(&mut a.output).chain(a.map.as_mut()))
        .filter(|f| compressible(&f.path) && f.copy_of.is_none() && f.kept.is_none())
        .map(|f| {
            let is_map = f.path.ends_with(".map");
            (f, is_map)
        })
        .filter(|(_, is_map)| config.source_maps || !is_map)
        .collect();
    // Each distinct content once: identical files (a vendored copy, a duplicated icon) share work.
    let mut first_of: HashMap<blake3::Hash, usize> = HashMap::new();
    let keys: Vec<blake3::Hash> = files
        .par_iter()
        .map(|(f, _)| blake3::hash(&f.bytes))
        .collect();
    let mut unique: Vec<usize> = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        first_of.entry(*k).or_insert_with(|| {
            unique.push(i);
            i
        });
    }
    unique.sort_by_key(|&i| std::cmp::Reverse(files[i].0.bytes.len()));
    let jobs: Vec<(usize, Encoding)> = unique
        .iter()
        .flat_map(|&i| config.formats.iter().map(move |&e| (i, e)))
        .collect();
    let results: HashMap<(usize, Encoding), bytes::Bytes> = jobs
        .par_iter()
        .with_max_len(1)
        .filter_map(|&(i, e)| {
            let (file, is_map) = &files[i];
            let original = &file.bytes;
            let level_config = if *is_map { &map_config } else { config };
            let key = cache_key(e, level_config, &keys[i]);
            // A small file compresses faster than a remote cache answers: local cache only.
            let shared = original.len() >= SHARED_MIN;
            let out = match cache.and_then(|c| c.lookup("compress", &key, shared)) {
                Some(bytes) => bytes,
                None => {
                    let bytes = encode(e, original, level_config)?;
                    if let Some(c) = cache {
                        c.store("compress", &key, &bytes, shared);
                    }
                    bytes
                }
            };
            (out.len() as f64 <= original.len() as f64 * config.max_ratio)
                .then_some(((i, e), out.into()))
        })
        .collect();

    for (i, (f, _)) in files.iter_mut().enumerate() {
        let source = first_of[&keys[i]];
        for &e in &config.formats {
            if let Some(bytes) = results.get(&(source, e)) {
                f.encodings.push(Encoded {
                    encoding: e,
                    path: format!("{}{}", f.path, e.extension()),
                    bytes: bytes.clone(),
                    kept: None,
                });
            }
        }
        stats.count(f);
    }
    stats
}

impl CompressStats {
    /// Counts `f` if it has siblings: its size, and its Brotli sibling's (else its first's).
    fn count(&mut self, f: &OutputFile) {
        let brotli = f.encodings.iter().find(|e| e.encoding == Encoding::Brotli);
        if let Some(e) = brotli.or(f.encodings.first()) {
            self.files += 1;
            self.original_bytes += f.size();
            self.compressed_bytes += e.size();
        }
    }
}

#[cfg(all(test, feature = "compress"))]
mod tests {
    use super::*;

    #[test]
    fn already_compressed_formats_are_skipped() {
        assert!(
            compressible("css/app.0123.css")
                && compressible("fonts/a.ttf")
                && compressible("x.svg")
        );
        assert!(
            !compressible("img/a.PNG") && !compressible("fonts/a.woff2") && !compressible("a.avif")
        );
    }

    #[test]
    fn gzip_is_reproducible_and_decodes() {
        let text = "body { color: red }\n".repeat(200);
        let config = CompressConfig::default();
        let a = encode(Encoding::Gzip, text.as_bytes(), &config).unwrap();
        assert_eq!(a, encode(Encoding::Gzip, text.as_bytes(), &config).unwrap());
        // RFC 1952 header: magic, deflate, no flags (no file name), MTIME zero.
        assert_eq!(&a[..4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(&a[4..8], &[0, 0, 0, 0]);
        let mut d = libdeflater::Decompressor::new();
        let mut out = vec![0; text.len()];
        assert_eq!(d.gzip_decompress(&a, &mut out).unwrap(), text.len());
        assert_eq!(out, text.as_bytes());
    }

    #[test]
    fn brotli_decodes_to_the_original() {
        let text = "function f(a) { return a * 2 }\n".repeat(300);
        let br = encode(
            Encoding::Brotli,
            text.as_bytes(),
            &CompressConfig::default(),
        )
        .unwrap();
        let mut out = Vec::new();
        brotli::BrotliDecompress(&mut &br[..], &mut out).unwrap();
        assert_eq!(out, text.as_bytes());
        assert!(br.len() < text.len() / 10);
    }
}

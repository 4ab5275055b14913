//! kiln_image: the image [`Transformer`] for PNG and JPEG.
//!
//! For each image, with the `[images]` settings in force for its path (overrides applied):
//! - the file itself is optimised losslessly: PNG with oxipng ([`png`]), JPEG by transcoding its
//!   DCT coefficients with mozjpeg (optimised Huffman tables, progressive scans, metadata dropped
//!   except the colour profile and the EXIF orientation; [`jpeg`]); with `jpeg_quality` set, a
//!   JPEG is also re-encoded at that quality and the smaller of the two is kept. Never larger
//!   than the input;
//! - it is decoded once (EXIF orientation applied first, so every variant is upright) and
//!   written at each configured width below its own (never upscaled) in its own format, and at
//!   every width, its own included, in each configured modern format (AVIF, WebP). A modern
//!   format is kept for the whole image or dropped for the whole image: kept when it exists at
//!   every width and its files are smaller in total than the own format's, so a `<picture>`
//!   offers each format at the same widths. Variants are named `photo-480w.jpg`,
//!   `photo-480w.avif`, `photo.avif` next to the source, and are fingerprinted, emitted and listed
//!   in the manifests like any other file ([`TransformOutput::variants`]);
//! - its manifest entry gets its width, height, variants and a ThumbHash placeholder.
//!
//! Refused with an error naming the file, never a panic: images over `[images] max_pixels`
//! (decided from the header before anything is decoded, and enforced again as an allocation
//! limit while decoding), truncated or corrupt files. Animated PNGs are optimised but get no
//! variants (those would keep one frame). Variants are sRGB: an image with another colour
//! profile (Adobe RGB, Display P3) is converted with qcms first; one whose profile qcms cannot
//! read gets no AVIF/WebP variants, with a warning.
//!
//! Parallelism: one image per task on the build's rayon pool, where oxipng spawns its trials
//! too. rav1e is the exception: each AVIF encode runs on a pool of 2 threads of its own while
//! the build thread that asked waits, because ravif makes one tile per thread and tiles change
//! the bytes; a fixed count keeps AVIF output (and names) the same on every machine and for
//! every `jobs`. At most one full-size decoded image per task is alive at a time, and the
//! transform stage keeps large images' estimated memory within `[images] max_memory_mb`.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod encode;
mod heap;
pub mod jpeg;
mod png;

use kiln_core::config::{Config, ImageFormat, ImageRules, ImagesConfig};
use kiln_core::{
    AssetKind, Diagnostic, ImageInfo, TransformInput, TransformOutput, Transformer, Variant,
};
use rayon::prelude::*;

/// Why an image could not be processed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The file is not the format its extension says.
    #[error("not a {0} file: its signature and header are missing")]
    WrongFormat(&'static str),
    /// Over the pixel limit.
    #[error("{width}x{height} is {} pixels, over the limit of {limit}", u64::from(*width) * u64::from(*height))]
    TooLarge {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// `[images] max_pixels`.
        limit: u64,
    },
    /// Truncated or corrupt.
    #[error("{0}")]
    Corrupt(String),
    /// An encoder failed.
    #[error("{0}")]
    Encode(String),
}

impl ImageError {
    fn diagnostic(&self, path: String) -> Diagnostic {
        let (code, help) = match self {
            ImageError::WrongFormat(_) => (
                "bad-image",
                "check the file, or rename it if it is another format",
            ),
            ImageError::TooLarge { .. } => (
                "image-too-large",
                "raise `[images] max_pixels` if this image is legitimate",
            ),
            ImageError::Corrupt(_) => (
                "bad-image",
                "the file may be truncated or corrupt; re-export it",
            ),
            ImageError::Encode(_) => (
                "image-encode",
                "this may be a bug in kiln; please report it with the file attached",
            ),
        };
        Diagnostic::error(code, path, self.to_string()).with_help(help)
    }
}

/// Optimises PNG and JPEG files and makes their variants.
#[derive(Debug, Clone)]
pub struct ImageTransformer {
    /// `[images]`, with the overrides' globs compiled once for the whole build.
    rules: ImageRules,
}

impl ImageTransformer {
    /// From `[images]`.
    pub fn new(config: &Config) -> Self {
        ImageTransformer {
            rules: config.images.rules(),
        }
    }

    /// Whether any image can be optimised with this configuration (if not, the transformer need
    /// not be registered and unchanged images need not even be read).
    pub fn enabled(config: &Config) -> bool {
        config.images.optimize
            || config
                .images
                .overrides
                .iter()
                .any(|o| o.optimize == Some(true))
    }
}

/// The name of a variant: `img/photo.jpg` at 480 in `avif` is `img/photo-480w.avif`; `width`
/// None is the full size.
fn variant_name(logical: &str, width: Option<u32>, ext: &str) -> String {
    let (dir, file) = logical
        .rsplit_once('/')
        .map_or(("", logical), |(d, f)| (d, f));
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    let sep = if dir.is_empty() { "" } else { "/" };
    match width {
        Some(w) => format!("{dir}{sep}{stem}-{w}w.{ext}"),
        None => format!("{dir}{sep}{stem}.{ext}"),
    }
}

/// A colour profile is sRGB when its description says so (what every sRGB profile in the wild
/// carries).
fn is_srgb(icc: &[u8]) -> bool {
    icc.windows(4).any(|w| w == b"sRGB")
}

impl Transformer for ImageTransformer {
    fn name(&self) -> &'static str {
        "image"
    }

    fn accepts(&self, kind: AssetKind) -> bool {
        matches!(kind, AssetKind::Png | AssetKind::Jpeg)
    }

    /// Peak memory per pixel measured on an 18-megapixel JPEG (5640x3172, `/usr/bin/time`, one
    /// thread): 11 bytes for the lossless pass and decoding, 15 with WebP, 42 with AVIF (rav1e's
    /// frames; the cavif CLI peaks the same).
    fn memory_estimate(&self, asset: &kiln_core::Asset, _config: &Config) -> u64 {
        let settings = self.rules.settings_for(&asset.logical);
        if !settings.optimize {
            return 0;
        }
        let dimensions = match asset.kind {
            AssetKind::Png => png::dimensions(&asset.bytes),
            _ => jpeg::dimensions(&asset.bytes),
        };
        let Some((w, h)) = dimensions else { return 0 };
        let pixels = u64::from(w) * u64::from(h);
        if pixels > settings.max_pixels {
            return 0; // refused from the header, never decoded
        }
        let per_pixel = if settings.formats.contains(&ImageFormat::Avif) {
            42
        } else if settings.formats.contains(&ImageFormat::Webp) {
            15
        } else {
            11
        };
        pixels.saturating_mul(per_pixel)
    }

    fn transform(&self, input: &TransformInput<'_>) -> TransformOutput {
        let asset = input.asset;
        let settings = self.rules.settings_for(&asset.logical);
        if !settings.optimize {
            return TransformOutput::passthrough(asset);
        }
        if asset.bytes.is_empty() && asset.known.is_none() {
            // A placeholder someone committed: browsers show nothing, nothing to optimise.
            let mut out = TransformOutput::passthrough(asset);
            out.diagnostics.push(Diagnostic::warning(
                "image-empty",
                asset.display_path(),
                "empty file; shipped as it is",
            ));
            return out;
        }
        let expected = if asset.kind == AssetKind::Png {
            "PNG"
        } else {
            "JPEG"
        };
        if let Some(actual) = sniff(&asset.bytes).filter(|actual| *actual != expected) {
            // Browsers sniff image bytes and display it anyway: ship it as it is.
            let mut out = TransformOutput::passthrough(asset);
            out.diagnostics.push(
                Diagnostic::warning(
                    "image-misnamed",
                    asset.display_path(),
                    format!("this is a {actual} file named as a {expected}; shipped as it is, not optimised and without variants"),
                )
                .with_help(format!("rename it with the extension of a {actual} file to have it optimised")),
            );
            return out;
        }
        let out = self.run(&asset.logical, &asset.bytes, asset.kind, &settings);
        // Free what a large image's codecs held before the next item starts.
        if self.memory_estimate(asset, input.config) > 64 << 20 {
            heap::trim();
        }
        match out {
            Ok(mut out) => {
                for d in &mut out.diagnostics {
                    d.path = asset.display_path();
                }
                out
            }
            Err(e) => TransformOutput {
                diagnostics: vec![e.diagnostic(asset.display_path())],
                ..Default::default()
            },
        }
    }
}

/// The image format the bytes are, from their signature (what browsers sniff), if a known one.
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("PNG")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("JPEG")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("GIF")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("WebP")
    } else if bytes.len() >= 12
        && &bytes[4..8] == b"ftyp"
        && matches!(&bytes[8..12], b"avif" | b"avis")
    {
        Some("AVIF")
    } else {
        None
    }
}

impl ImageTransformer {
    fn run(
        &self,
        logical: &str,
        bytes: &kiln_core::Bytes,
        kind: AssetKind,
        settings: &ImagesConfig,
    ) -> Result<TransformOutput, ImageError> {
        let png = kind == AssetKind::Png;
        let (format, header) = if png {
            (
                image::ImageFormat::Png,
                png::dimensions(bytes).ok_or(ImageError::WrongFormat("PNG"))?,
            )
        } else {
            (
                image::ImageFormat::Jpeg,
                jpeg::dimensions(bytes).ok_or(ImageError::WrongFormat("JPEG"))?,
            )
        };
        if u64::from(header.0) * u64::from(header.1) > settings.max_pixels {
            return Err(ImageError::TooLarge {
                width: header.0,
                height: header.1,
                limit: settings.max_pixels,
            });
        }
        // The file as shipped: the input's own buffer (shared, not copied) unless a smaller
        // encoding of it turns up.
        let mut best = bytes.clone();
        let mut out = TransformOutput::default();
        if png {
            if let Some(smaller) = png::optimize(bytes, settings.png_preset, header)? {
                best = smaller.into();
            }
        } else {
            match jpeg::optimize_lossless(bytes) {
                Ok(lossless) => keep_smaller(&mut best, lossless),
                Err(jpeg::JpegError::Corrupt(e)) => {
                    return Err(ImageError::Corrupt(format!("cannot read this JPEG: {e}")));
                }
                // 12-bit, lossless-process or hierarchical JPEGs: shipped as they are.
                Err(e) => {
                    out.diagnostics.push(
                        Diagnostic::warning("image-unsupported", logical, format!("kept as it is: {e}"))
                            .with_help("browsers may not display it either; re-export it as a baseline or progressive 8-bit JPEG"),
                    );
                    out.bytes = best;
                    return Ok(out);
                }
            }
        }
        if png && png::is_animated(bytes) {
            out.bytes = best;
            out.image = Some(ImageInfo {
                width: header.0,
                height: header.1,
                ..Default::default()
            });
            return Ok(out);
        }

        let decoded = encode::decode(bytes, format, settings.max_pixels)?;
        let mut full = decoded.pixels;
        let mut icc = decoded.icc.as_deref();
        // Variants are written in sRGB: AVIF and WebP here cannot carry a profile, and browsers
        // assume sRGB without one. An image in another space (Adobe RGB, Display P3) is converted.
        let mut convertible = true;
        if let Some(profile) = icc.filter(|p| !is_srgb(p)) {
            convertible = encode::to_srgb(&mut full, profile);
            if convertible {
                icc = None;
            }
        }
        if let Some(q) = settings.jpeg_quality.filter(|_| !png) {
            let reencoded = encode::jpeg(&full, q, icc)?;
            keep_smaller(&mut best, reencoded);
        }
        let modern: &[ImageFormat] = if convertible {
            &settings.formats
        } else {
            if !settings.formats.is_empty() {
                out.diagnostics.push(
                    Diagnostic::warning("image-colour-profile", logical, "its colour profile cannot be converted to sRGB, and AVIF and WebP variants cannot carry it: it gets none")
                        .with_help("convert it to sRGB, or turn its formats off with `[[images.overrides]]`"),
                );
            }
            &[]
        };
        let ext = logical.rsplit_once('.').map_or("png", |(_, e)| e);
        let widths: Vec<Option<u32>> = settings
            .widths
            .iter()
            .copied()
            .filter(|&w| w < full.width)
            .map(Some)
            .chain([None])
            .collect();
        // Every width in the image's own format, and each modern format at every width; then a
        // modern format is kept for the whole image or not at all (see below).
        let per_width: Vec<Result<Width, ImageError>> = widths
            .par_iter()
            .map(|&width| {
                let resized;
                let (px, base_len, own) = match width {
                    Some(w) => {
                        resized = encode::resize(&full, w, encode::scaled_height(&full, w))?;
                        let base = if png {
                            encode::png(&resized, settings.png_preset, icc)?
                        } else {
                            encode::jpeg(&resized, settings.jpeg_quality.unwrap_or(85), icc)?
                        };
                        let len = base.len();
                        let v = Variant {
                            logical: variant_name(logical, width, ext),
                            bytes: base.into(),
                            width: w,
                            height: resized.height,
                            integrity: None,
                            kept: None,
                        };
                        (&resized, len, Some(v))
                    }
                    None => (&full, best.len(), None),
                };
                let mut modern_made = Vec::new();
                for &format in modern {
                    let encoded = match format {
                        ImageFormat::Avif => encode::avif(px, settings.quality, settings.speed)?,
                        ImageFormat::Webp if px.width.max(px.height) <= encode::WEBP_MAX => {
                            encode::webp(px, settings.quality, settings.speed)?
                        }
                        _ => continue,
                    };
                    modern_made.push((
                        format,
                        Variant {
                            logical: variant_name(logical, width, format.extension()),
                            bytes: encoded.into(),
                            width: px.width,
                            height: px.height,
                            integrity: None,
                            kept: None,
                        },
                    ));
                }
                Ok(Width {
                    own,
                    base_len,
                    modern: modern_made,
                })
            })
            .collect();
        let per_width: Vec<Width> = per_width.into_iter().collect::<Result<_, _>>()?;
        // A `<picture>` offers each format with one `srcset`: a format missing at some width
        // would make a browser that picks it download a larger file than it needs. So a modern
        // format is offered at every width or not at all: only when it exists at every width and
        // is smaller than the image's own format in total.
        let own_total: usize = per_width.iter().map(|w| w.base_len).sum();
        let kept: Vec<ImageFormat> = modern
            .iter()
            .copied()
            .filter(|&format| {
                let sizes: Vec<usize> = per_width
                    .iter()
                    .filter_map(|w| w.modern.iter().find(|(f, _)| *f == format))
                    .map(|(_, v)| v.bytes.len())
                    .collect();
                sizes.len() == per_width.len() && sizes.iter().sum::<usize>() < own_total
            })
            .collect();
        // Smallest width first; at each, the own format, then the modern ones in config order.
        for w in per_width {
            out.variants.extend(w.own);
            out.variants.extend(
                w.modern
                    .into_iter()
                    .filter(|(f, _)| kept.contains(f))
                    .map(|(_, v)| v),
            );
        }
        out.image = Some(ImageInfo {
            width: full.width,
            height: full.height,
            placeholder: if settings.placeholder {
                Some(encode::thumbhash(&full)?)
            } else {
                None
            },
            ..Default::default()
        });
        out.bytes = best;
        Ok(out)
    }
}

/// What one width of an image produced: its own format's variant (none at full size, which is
/// the file itself), that format's size there, and the modern formats' encodings.
struct Width {
    own: Option<Variant>,
    base_len: usize,
    modern: Vec<(ImageFormat, Variant)>,
}

/// Replaces `best` with `candidate` when that is smaller.
fn keep_smaller(best: &mut kiln_core::Bytes, candidate: Vec<u8>) {
    if candidate.len() < best.len() {
        *best = candidate.into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_core::Asset;

    fn run(bytes: Vec<u8>, config: &Config) -> TransformOutput {
        let all = [Asset::from_bytes("img/a.png", bytes)];
        ImageTransformer::new(config).transform(&TransformInput {
            asset: &all[0],
            all: &all,
            config,
        })
    }

    fn encode(img: image::DynamicImage) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[track_caller]
    fn assert_same_pixels(a: &[u8], b: &[u8]) {
        let (a, b) = (
            image::load_from_memory(a).unwrap(),
            image::load_from_memory(b).unwrap(),
        );
        assert_eq!((a.width(), a.height()), (b.width(), b.height()));
        assert!(
            a.to_rgba16().into_raw() == b.to_rgba16().into_raw(),
            "pixels differ"
        );
    }

    #[test]
    fn sixteen_bit_and_gray_alpha_images_stay_bit_exact_and_shrink() {
        let rgb16 = image::ImageBuffer::from_fn(64, 48, |x, y| {
            image::Rgb([(x * 1000) as u16, (y * 1300) as u16, 7])
        });
        let gray_alpha = image::ImageBuffer::from_fn(64, 48, |x, y| {
            image::LumaA([(x * 4) as u8, if y % 2 == 0 { 255 } else { 128 }])
        });
        for img in [
            image::DynamicImage::ImageRgb16(rgb16),
            image::DynamicImage::ImageLumaA8(gray_alpha),
        ] {
            let input = encode(img);
            let out = run(input.clone(), &Config::default());
            assert!(!out.failed(), "{:?}", out.diagnostics);
            assert!(out.bytes.len() <= input.len());
            assert_same_pixels(&input, &out.bytes);
        }
    }

    #[test]
    fn the_memory_estimate_of_an_absurd_header_does_not_overflow() {
        let mut png = encode(image::DynamicImage::new_luma8(1, 1));
        png[16..20].copy_from_slice(&0x7FFF_FFFFu32.to_be_bytes());
        png[20..24].copy_from_slice(&0x7FFF_FFFFu32.to_be_bytes());
        let config = Config::default();
        let asset = Asset::from_bytes("img/a.png", png);
        // Refused from the header anyway: it is not counted against the budget.
        assert_eq!(
            ImageTransformer::new(&config).memory_estimate(&asset, &config),
            0
        );
        let small = Asset::from_bytes("img/b.png", encode(image::DynamicImage::new_rgb8(100, 10)));
        assert_eq!(
            ImageTransformer::new(&config).memory_estimate(&small, &config),
            42_000
        );
    }

    #[test]
    fn a_decompression_bomb_is_refused_from_its_header() {
        let mut png = encode(image::DynamicImage::new_luma8(1, 1));
        // IHDR width and height claim 100000 x 100000 (the CRC no longer matches: kiln never gets
        // as far as decoding).
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let out = run(png, &Config::default());
        assert_eq!(out.diagnostics[0].code, "image-too-large");
        assert!(
            out.diagnostics[0].message.contains("100000x100000"),
            "{}",
            out.diagnostics[0].message
        );
    }

    #[test]
    fn truncated_and_non_png_files_are_errors_not_panics() {
        let png = encode(image::DynamicImage::new_rgb8(32, 32));
        let out = run(png[..png.len() / 2].to_vec(), &Config::default());
        assert!(
            out.failed()
                && out.diagnostics[0]
                    .message
                    .starts_with("cannot optimise this PNG"),
            "{:?}",
            out.diagnostics
        );
        let out = run(b"not an image at all".to_vec(), &Config::default());
        assert!(out.failed() && out.diagnostics[0].message.starts_with("not a PNG file"));
    }

    #[test]
    fn another_format_under_a_png_name_is_shipped_as_it_is_with_a_warning() {
        let mut jpeg = std::io::Cursor::new(Vec::new());
        image::DynamicImage::new_rgb8(16, 16)
            .write_to(&mut jpeg, image::ImageFormat::Jpeg)
            .unwrap();
        for bytes in [jpeg.into_inner(), b"GIF89a\x01\x00\x01\x00".to_vec()] {
            let out = run(bytes.clone(), &Config::default());
            assert!(!out.failed(), "{:?}", out.diagnostics);
            assert_eq!(&out.bytes[..], &bytes[..]);
            assert!(out.variants.is_empty());
            assert_eq!(out.diagnostics.len(), 1);
            assert_eq!(out.diagnostics[0].code, "image-misnamed");
            assert!(out.diagnostics[0].message.contains("named as a PNG"));
        }
    }
}

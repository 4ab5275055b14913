//! kiln_image: image [`Transformer`]s.
//!
//! Today: lossless PNG optimisation with oxipng (preset from `[images] png_preset`, metadata
//! stripped safely: colour-affecting chunks such as iCCP, sRGB, cICP and pHYs, and APNG's frame
//! chunks, are kept), never larger than the input (oxipng returns the input when it cannot shrink
//! it), pixels bit-exact. Decompression bombs are refused from the PNG header, before anything is
//! decoded; corrupt or truncated files are errors naming the file. oxipng runs its trials on the
//! build's rayon pool (its `parallel` feature spawns onto the current pool), so there is no nested
//! pool and no oversubscription. JPEG, responsive widths and AVIF/WebP variants are not here yet;
//! those files pass through fingerprinted.

use kiln_core::config::Config;
use kiln_core::{AssetKind, Diagnostic, TransformInput, TransformOutput, Transformer};

/// Lossless PNG optimisation.
#[derive(Debug, Clone)]
pub struct PngTransformer {
    preset: u8,
    max_pixels: u64,
}

impl PngTransformer {
    /// From `[images]`.
    pub fn new(config: &Config) -> Self {
        PngTransformer {
            preset: config.images.png_preset,
            max_pixels: config.images.max_pixels,
        }
    }
}

/// The width and height in a PNG's IHDR chunk, which the format requires to come first.
fn png_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    let rest = bytes.strip_prefix(SIGNATURE)?;
    if rest.get(4..8)? != b"IHDR" {
        return None;
    }
    let be = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(rest.get(at..at + 4)?.try_into().ok()?))
    };
    Some((be(8)?, be(12)?))
}

impl Transformer for PngTransformer {
    fn name(&self) -> &'static str {
        "png"
    }

    fn accepts(&self, kind: AssetKind) -> bool {
        kind == AssetKind::Png
    }

    fn transform(&self, input: &TransformInput<'_>) -> TransformOutput {
        let asset = input.asset;
        let path = asset.display_path();
        let mut out = TransformOutput::default();
        let Some((width, height)) = png_dimensions(&asset.bytes) else {
            out.diagnostics.push(
                Diagnostic::error(
                    "bad-image",
                    path,
                    "not a PNG file: the PNG signature and header are missing",
                )
                .with_help("check the file, or rename it if it is another format"),
            );
            return out;
        };
        let pixels = u64::from(width) * u64::from(height);
        if pixels > self.max_pixels {
            out.diagnostics.push(
                Diagnostic::error(
                    "image-too-large",
                    path,
                    format!(
                        "{width}x{height} is {pixels} pixels, over the limit of {}",
                        self.max_pixels
                    ),
                )
                .with_help("raise `[images] max_pixels` if this image is legitimate"),
            );
            return out;
        }
        let mut options = oxipng::Options::from_preset(self.preset);
        options.strip = oxipng::StripChunks::Safe;
        // The raw image of an allowed size (16-bit RGBA is 8 bytes a pixel, plus filter bytes).
        options.max_decompressed_size = Some(
            (pixels * 8 + u64::from(height))
                .try_into()
                .unwrap_or(usize::MAX),
        );
        match oxipng::optimize_from_memory(&asset.bytes, &options) {
            Ok(bytes) if bytes.len() < asset.bytes.len() => out.bytes = bytes.into(),
            Ok(_) => out.bytes = asset.bytes.clone(),
            Err(e) => out.diagnostics.push(
                Diagnostic::error("bad-image", path, format!("cannot optimise this PNG: {e}"))
                    .with_help("the file may be truncated or corrupt; re-export it"),
            ),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_core::Asset;

    fn run(bytes: Vec<u8>, config: &Config) -> TransformOutput {
        let all = [Asset::from_bytes("img/a.png", bytes)];
        PngTransformer::new(config).transform(&TransformInput {
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
        let out = run(b"GIF89a not a png".to_vec(), &Config::default());
        assert!(out.failed() && out.diagnostics[0].message.starts_with("not a PNG file"));
    }
}

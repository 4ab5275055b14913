//! Decoding, resizing and encoding of pixels: the work behind responsive widths, AVIF and WebP.
//!
//! Owns: decoding with limits (the pixel limit is also an allocation limit, so a bomb that lies
//! in its header still cannot allocate), EXIF orientation applied before anything else, Lanczos3
//! resizing with fast_image_resize (SIMD, alpha premultiplied while filtering), and the encoders:
//! AVIF with ravif (rav1e, on the caller's rayon pool), lossy WebP with libwebp, JPEG with
//! mozjpeg, PNG with the image crate then oxipng, and the ThumbHash placeholder. It does not
//! decide which variants to make (that is [`crate::ImageTransformer`]).

use std::io::Cursor;

use fast_image_resize as fr;
use image::{DynamicImage, ImageDecoder, ImageFormat};
use rgb::FromSlice as _;

use crate::ImageError;

/// Decoded 8-bit pixels: RGB, or RGBA when the image has an alpha channel.
#[derive(Debug, Clone)]
pub(crate) struct Pixels {
    pub width: u32,
    pub height: u32,
    pub alpha: bool,
    pub data: Vec<u8>,
}

impl Pixels {
    fn pixel_type(&self) -> fr::PixelType {
        if self.alpha {
            fr::PixelType::U8x4
        } else {
            fr::PixelType::U8x3
        }
    }
}

/// A decoded image, upright, and its colour profile.
pub(crate) struct Decoded {
    pub pixels: Pixels,
    pub icc: Option<Vec<u8>>,
}

/// Decodes `bytes` (PNG or JPEG), refusing images over `max_pixels`, and applies a JPEG's EXIF
/// orientation. A PNG's (an `eXIf` chunk) is not applied: oxipng drops the chunk, so the
/// optimised PNG displays as stored, and its variants and manifest size must match it.
pub(crate) fn decode(
    bytes: &[u8],
    format: ImageFormat,
    max_pixels: u64,
) -> Result<Decoded, ImageError> {
    let corrupt = |e: image::ImageError| ImageError::Corrupt(format!("cannot decode it: {e}"));
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    // 16-bit RGBA is 8 bytes a pixel; leave room for the decoder's own buffers.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (w, h) = decoder.dimensions();
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(ImageError::TooLarge {
            width: w,
            height: h,
            limit: max_pixels,
        });
    }
    let orientation = match format {
        ImageFormat::Jpeg => decoder
            .orientation()
            .unwrap_or(image::metadata::Orientation::NoTransforms),
        _ => image::metadata::Orientation::NoTransforms,
    };
    let icc = decoder.icc_profile().ok().flatten();
    let mut image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    image.apply_orientation(orientation);
    let alpha = image.color().has_alpha();
    let (width, height) = (image.width(), image.height());
    let data = if alpha {
        image.into_rgba8().into_raw()
    } else {
        image.into_rgb8().into_raw()
    };
    Ok(Decoded {
        pixels: Pixels {
            width,
            height,
            alpha,
            data,
        },
        icc,
    })
}

/// Converts `px` from the colour profile `icc` to sRGB in place (qcms, perceptual intent).
/// False when qcms cannot read the profile or build the transform (pixels untouched).
pub(crate) fn to_srgb(px: &mut Pixels, icc: &[u8]) -> bool {
    let Some(from) = qcms::Profile::new_from_slice(icc, false) else {
        return false;
    };
    let to = qcms::Profile::new_sRGB();
    let ty = if px.alpha {
        qcms::DataType::RGBA8
    } else {
        qcms::DataType::RGB8
    };
    match qcms::Transform::new(&from, &to, ty, qcms::Intent::Perceptual) {
        Some(t) => {
            t.apply(&mut px.data);
            true
        }
        None => false,
    }
}

/// `src` resized to `width` x `height` with a Lanczos3 filter.
pub(crate) fn resize(src: &Pixels, width: u32, height: u32) -> Result<Pixels, ImageError> {
    let fail = |e: String| ImageError::Encode(format!("cannot resize it: {e}"));
    let view = fr::images::ImageRef::new(src.width, src.height, &src.data, src.pixel_type())
        .map_err(|e| fail(e.to_string()))?;
    let mut dst = fr::images::Image::new(width, height, src.pixel_type());
    let options =
        fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3));
    fr::Resizer::new()
        .resize(&view, &mut dst, &options)
        .map_err(|e| fail(e.to_string()))?;
    Ok(Pixels {
        width,
        height,
        alpha: src.alpha,
        data: dst.into_vec(),
    })
}

/// The height for `width`, keeping the aspect ratio (at least 1).
pub(crate) fn scaled_height(src: &Pixels, width: u32) -> u32 {
    let h = (u64::from(src.height) * u64::from(width) + u64::from(src.width) / 2)
        / u64::from(src.width);
    h.clamp(1, u64::from(u32::MAX)) as u32
}

/// Threads (and so at most tiles) of every AVIF encode. ravif makes as many tiles as rav1e has
/// threads, and tiles change the bitstream: left to the pool's size, AVIF bytes (and names) would
/// depend on the machine's core count and `jobs`. Fixed, rav1e runs each encode on a pool of
/// this many threads of its own while the build thread that asked waits.
const AVIF_THREADS: usize = 2;

/// AVIF at `quality` (1-100) and `speed` (1-10), with the alpha quality cavif derives from it.
pub(crate) fn avif(px: &Pixels, quality: u8, speed: u8) -> Result<Vec<u8>, ImageError> {
    let q = f32::from(quality);
    let encoder = ravif::Encoder::new()
        .with_num_threads(Some(AVIF_THREADS))
        .with_quality(q)
        .with_alpha_quality(((q + 100.) / 2.).min(q + q / 4. + 2.))
        .with_speed(speed)
        .with_alpha_color_mode(ravif::AlphaColorMode::UnassociatedClean);
    let (w, h) = (px.width as usize, px.height as usize);
    let encoded = if px.alpha {
        encoder.encode_rgba(ravif::Img::new(px.data.as_rgba(), w, h))
    } else {
        encoder.encode_rgb(ravif::Img::new(px.data.as_rgb(), w, h))
    };
    encoded
        .map(|e| e.avif_file)
        .map_err(|e| ImageError::Encode(format!("cannot encode AVIF: {e}")))
}

/// The largest width or height WebP can hold.
pub(crate) const WEBP_MAX: u32 = 16383;

/// Lossy WebP at `quality`; `speed` 1-10 maps onto libwebp's `method` 6 (slowest) to 0.
pub(crate) fn webp(px: &Pixels, quality: u8, speed: u8) -> Result<Vec<u8>, ImageError> {
    let encoder = if px.alpha {
        webp::Encoder::from_rgba(&px.data, px.width, px.height)
    } else {
        webp::Encoder::from_rgb(&px.data, px.width, px.height)
    };
    let mut config = webp::WebPConfig::new()
        .map_err(|()| ImageError::Encode("cannot configure libwebp".to_owned()))?;
    config.lossless = 0;
    config.quality = f32::from(quality);
    config.method = (10 - i32::from(speed)).clamp(0, 6);
    encoder
        .encode_advanced(&config)
        .map(|m| m.to_vec())
        .map_err(|e| ImageError::Encode(format!("cannot encode WebP: {e:?}")))
}

/// A baseline-compatible progressive JPEG at `quality` with optimised tables (mozjpeg), carrying
/// `icc` when there is one. Alpha, if any, is dropped (a JPEG source has none).
pub(crate) fn jpeg(px: &Pixels, quality: u8, icc: Option<&[u8]>) -> Result<Vec<u8>, ImageError> {
    let rgb;
    let data: &[u8] = if px.alpha {
        rgb = px
            .data
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect::<Vec<u8>>();
        &rgb
    } else {
        &px.data
    };
    // mozjpeg reports errors by unwinding out of its C error handler.
    std::panic::catch_unwind(|| -> std::io::Result<Vec<u8>> {
        let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        c.set_size(px.width as usize, px.height as usize);
        c.set_quality(f32::from(quality));
        c.set_optimize_coding(true);
        c.set_progressive_mode();
        let mut started = c.start_compress(Vec::new())?;
        if let Some(icc) = icc {
            started.write_icc_profile(icc);
        }
        started.write_scanlines(data)?;
        started.finish()
    })
    .map_err(|_| ImageError::Encode("mozjpeg failed to encode it".to_owned()))?
    .map_err(|e| ImageError::Encode(format!("cannot encode JPEG: {e}")))
}

/// A PNG of `px` (with `icc`), optimised losslessly at oxipng `preset`.
pub(crate) fn png(px: &Pixels, preset: u8, icc: Option<&[u8]>) -> Result<Vec<u8>, ImageError> {
    use image::ImageEncoder as _;
    let mut out = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Adaptive,
    );
    if let Some(icc) = icc {
        // A profile the encoder cannot carry is dropped, like the browser would ignore it.
        let _ = encoder.set_icc_profile(icc.to_vec());
    }
    let color = if px.alpha {
        image::ExtendedColorType::Rgba8
    } else {
        image::ExtendedColorType::Rgb8
    };
    encoder
        .write_image(&px.data, px.width, px.height, color)
        .map_err(|e| ImageError::Encode(format!("cannot encode PNG: {e}")))?;
    Ok(crate::png::optimize(&out, preset, (px.width, px.height))?.unwrap_or(out))
}

/// A ThumbHash of `px` (base64), from a copy at most 100 pixels on a side.
pub(crate) fn thumbhash(px: &Pixels) -> Result<String, ImageError> {
    use base64::Engine as _;
    let scale = f64::from(px.width.max(px.height)) / 100.0;
    let (w, h) = if scale > 1.0 {
        (
            ((f64::from(px.width) / scale).round() as u32).max(1),
            ((f64::from(px.height) / scale).round() as u32).max(1),
        )
    } else {
        (px.width, px.height)
    };
    let small = resize(px, w, h)?;
    let rgba: Vec<u8> = if small.alpha {
        small.data
    } else {
        small
            .data
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect()
    };
    let hash = thumbhash::rgba_to_thumb_hash(w as usize, h as usize, &rgba);
    Ok(base64::engine::general_purpose::STANDARD.encode(hash))
}

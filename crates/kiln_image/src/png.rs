//! PNG: header facts read without decoding, and lossless optimisation with oxipng.
//!
//! oxipng strips metadata safely (`StripChunks::Safe` keeps iCCP, sRGB, cICP, pHYs and APNG's
//! frame chunks; it drops gAMA, cHRM and eXIf) and returns its input when it cannot shrink
//! it, so the output is never larger and its pixels are bit-exact. It runs its trials on the
//! caller's rayon pool (its `parallel` feature), so there is no nested pool.

use crate::ImageError;

const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The width and height in a PNG's IHDR chunk, which the format requires to come first.
pub(crate) fn dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let rest = bytes.strip_prefix(SIGNATURE)?;
    if rest.get(4..8)? != b"IHDR" {
        return None;
    }
    let be = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(rest.get(at..at + 4)?.try_into().ok()?))
    };
    Some((be(8)?, be(12)?))
}

/// True for an animated PNG (an `acTL` chunk before the image data): kiln optimises it but makes
/// no variants, which would keep only its first frame.
pub(crate) fn is_animated(bytes: &[u8]) -> bool {
    let mut at = SIGNATURE.len();
    while let Some(header) = bytes.get(at..at + 8) {
        let len = u32::from_be_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        match &header[4..8] {
            b"acTL" => return true,
            b"IDAT" | b"IEND" => return false,
            _ => {}
        }
        at = match at.checked_add(12).and_then(|a| a.checked_add(len)) {
            Some(next) => next,
            None => return false,
        };
    }
    false
}

/// Optimises losslessly at oxipng `preset`: the smaller PNG, or None when oxipng cannot shrink it.
pub(crate) fn optimize(
    bytes: &[u8],
    preset: u8,
    (width, height): (u32, u32),
) -> Result<Option<Vec<u8>>, ImageError> {
    let mut options = oxipng::Options::from_preset(preset);
    options.strip = oxipng::StripChunks::Safe;
    // The raw image of an allowed size (16-bit RGBA is 8 bytes a pixel, plus filter bytes).
    let pixels = u64::from(width) * u64::from(height);
    options.max_decompressed_size = Some(
        (pixels * 8 + u64::from(height))
            .try_into()
            .unwrap_or(usize::MAX),
    );
    match oxipng::optimize_from_memory(bytes, &options) {
        Ok(out) if out.len() < bytes.len() => Ok(Some(out)),
        Ok(_) => Ok(None),
        Err(e) => Err(ImageError::Corrupt(format!(
            "cannot optimise this PNG: {e}"
        ))),
    }
}

//! Subresource Integrity values (`sha384-<base64>`), of bytes in memory or of a digest computed
//! over a stream.

use base64::Engine as _;
use sha2::Digest as _;

/// The Subresource Integrity value of `bytes`.
pub(crate) fn sri(bytes: &[u8]) -> String {
    sri_of_digest(&sha2::Sha384::digest(bytes))
}

/// The Subresource Integrity value of a SHA-384 digest.
pub(crate) fn sri_of_digest(digest: &[u8]) -> String {
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

//! Decoding CSS bytes to text the way browsers do: a BOM wins, then `@charset`, then UTF-8.
//!
//! Invalid UTF-8 without a `@charset` is decoded with replacement characters (exactly what a
//! browser does with the file) and reported as a warning at the first bad byte's line:column.

use kiln_core::Diagnostic;

/// Decodes `bytes`, pushing a warning to `diagnostics` when bytes had to be replaced.
pub fn decode(bytes: &[u8], path: &str, diagnostics: &mut Vec<Diagnostic>) -> String {
    if let Some((encoding, bom_len)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom_len..]);
        return text.into_owned();
    }
    if let Some(label) = charset(bytes) {
        match encoding_rs::Encoding::for_label(label.as_bytes()) {
            // Per the CSS spec, a UTF-16 @charset means UTF-8 (the bytes are ASCII-compatible).
            Some(enc)
                if enc != encoding_rs::UTF_8
                    && enc != encoding_rs::UTF_16LE
                    && enc != encoding_rs::UTF_16BE =>
            {
                let (text, _, _) = enc.decode(bytes);
                return text.into_owned();
            }
            Some(_) => {}
            None => diagnostics.push(
                Diagnostic::warning(
                    "css-charset",
                    path,
                    format!("unknown @charset \"{label}\"; decoding as UTF-8"),
                )
                .at(1, 11, std::str::from_utf8(bytes).ok()),
            ),
        }
    }
    kiln_core::text::decode_utf8(
        bytes,
        path,
        "save the file as UTF-8, or declare its encoding with @charset \"...\"; on the first line",
        diagnostics,
    )
}

/// The label of a leading `@charset "...";`, which must be exactly at the start of the file.
fn charset(bytes: &[u8]) -> Option<String> {
    let rest = bytes.strip_prefix(b"@charset \"")?;
    let end = rest.iter().position(|&b| b == b'"')?;
    if rest.get(end + 1) != Some(&b';') {
        return None;
    }
    std::str::from_utf8(&rest[..end]).ok().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_charset_is_honoured() {
        let bytes = b"@charset \"iso-8859-1\";\na::after { content: \"\xe9\" }";
        let mut d = Vec::new();
        let text = decode(bytes, "a.css", &mut d);
        assert!(text.contains("content: \"é\""), "{text}");
        assert!(d.is_empty());
    }

    #[test]
    fn bom_wins() {
        let mut d = Vec::new();
        assert_eq!(decode(b"\xef\xbb\xbfa{}", "a.css", &mut d), "a{}");
        assert_eq!(decode(b"\xff\xfea\x00{\x00}\x00", "a.css", &mut d), "a{}");
        assert!(d.is_empty());
    }
}

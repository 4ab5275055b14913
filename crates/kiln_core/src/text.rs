//! Decoding source text: UTF-8, with invalid bytes replaced the way browsers do and reported.
//!
//! Shared by the text transformers (CSS, JS) so every one reports bad bytes the same way, at
//! the first bad byte's line:column. Charset detection specific to a language (CSS's `@charset`)
//! stays in that language's crate.

use crate::diagnostic::Diagnostic;

/// Decodes `bytes` as UTF-8 (a leading BOM is dropped). Invalid sequences become U+FFFD and a
/// `not-utf8` warning at the first one is pushed to `diagnostics`; `help` says how to fix it.
pub fn decode_utf8(
    bytes: &[u8],
    path: &str,
    help: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> String {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let text = String::from_utf8_lossy(bytes).into_owned();
            let line = good.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
            let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&good[line_start..]).chars().count() as u32 + 1;
            diagnostics.push(
                Diagnostic::warning(
                    "not-utf8",
                    path,
                    "invalid UTF-8; the bytes were replaced with U+FFFD, as a browser would do",
                )
                .at(line, column, Some(&text))
                .with_help(help),
            );
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_bytes_are_replaced_and_reported_at_their_position() {
        let mut d = Vec::new();
        let text = decode_utf8(b"a {}\n/* caf\xe9 */ b {}", "a.css", "fix it", &mut d);
        assert!(text.contains("caf\u{fffd}"));
        assert_eq!(
            (d[0].line, d[0].column),
            (2, 7),
            "`/* caf` is six characters"
        );
        assert_eq!(d[0].help.as_deref(), Some("fix it"));
    }

    #[test]
    fn valid_text_has_no_diagnostic_and_loses_its_bom() {
        let mut d = Vec::new();
        assert_eq!(decode_utf8(b"\xef\xbb\xbfx", "a.js", "", &mut d), "x");
        assert!(d.is_empty());
    }
}

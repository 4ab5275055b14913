//! URLs in references: classifying specifiers, resolving them to logical paths, and writing the
//! final URL back in the syntax the reference sits in.
//!
//! Owns the rules of issue #2: `data:`, any `scheme:`, `//host` and `#fragment`-only references
//! are external; `/`-absolute references under the public URL's path resolve against the source
//! root; others resolve relative to the referring file; query strings and fragments are kept; a
//! rewritten reference keeps its relative or absolute form. Does not look at the file system.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// A specifier split for resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Specifier<'a> {
    /// Left untouched: `data:`, `https:`, `//host/x`, `#frag`, `/elsewhere/x` outside the public path, or empty.
    External,
    /// Points into the source tree.
    Internal {
        /// The logical path it resolves to (`img/logo.png`), percent-decoded and normalised.
        logical: String,
        /// The text up to and including the last `/` of the path, as written (`../img/`, `/static/img/`).
        dir_prefix: &'a str,
        /// `?query#fragment` as written, possibly empty.
        suffix: &'a str,
    },
    /// Would escape the source root (`../../../etc/passwd`).
    OutsideRoot,
}

/// Classifies `spec`, written in the file with logical path `from`, with the public URL path
/// `public_path` (e.g. `/static/`).
pub fn classify<'a>(spec: &'a str, from: &str, public_path: &str) -> Specifier<'a> {
    let spec_trim = spec.trim();
    if spec_trim.is_empty()
        || spec_trim.starts_with('#')
        || spec_trim.starts_with("//")
        || has_scheme(spec_trim)
    {
        return Specifier::External;
    }
    let split = spec_trim.find(['?', '#']).unwrap_or(spec_trim.len());
    let (path, suffix) = spec_trim.split_at(split);
    if path.is_empty() {
        // `?v=1` alone refers to the file itself; nothing to rewrite.
        return Specifier::External;
    }
    let dir_prefix = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let decoded: Cow<'_, str> = percent_decode_str(path).decode_utf8_lossy();
    let base: Vec<&str> = if decoded.starts_with('/') {
        // Absolute: only paths under the public URL's path are ours, resolved against the root.
        let Some(rest) = decoded.strip_prefix(public_path) else {
            return Specifier::External;
        };
        return match normalise(Vec::new(), rest) {
            Some(logical) => Specifier::Internal {
                logical,
                dir_prefix,
                suffix,
            },
            None => Specifier::OutsideRoot,
        };
    } else {
        let mut parts: Vec<&str> = from.split('/').collect();
        parts.pop();
        parts
    };
    match normalise(base, &decoded) {
        Some(logical) => Specifier::Internal {
            logical,
            dir_prefix,
            suffix,
        },
        None => Specifier::OutsideRoot,
    }
}

/// True for `data:`, `http:`, `mailto:`... (RFC 3986 scheme followed by `:`). A Windows drive
/// letter would also match, but those never appear in web URLs.
fn has_scheme(s: &str) -> bool {
    let Some(colon) = s.find(':') else {
        return false;
    };
    let scheme = &s[..colon];
    !scheme.is_empty()
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !s[..colon].contains('/')
}

/// Applies `rel` to the folder `base`, resolving `.` and `..`; None if it climbs above the root.
fn normalise<'a>(mut base: Vec<&'a str>, rel: &'a str) -> Option<String> {
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                base.pop()?;
            }
            p => base.push(p),
        }
    }
    Some(base.join("/"))
}

/// Characters escaped when a hashed file name is written into a URL path segment.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'\'')
    .add(b'(')
    .add(b')')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'`');

/// The URL text for a reference: the original directory prefix, the percent-encoded output file
/// name, the original query and fragment.
pub fn rewrite(dir_prefix: &str, output_file_name: &str, suffix: &str) -> String {
    format!(
        "{dir_prefix}{}{suffix}",
        utf8_percent_encode(output_file_name, SEGMENT)
    )
}

/// A relative file path (`img/my photo.jpg`) as URL path text (`img/my%20photo.jpg`): each
/// segment percent-encoded as hashed names are in references.
pub fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|segment| utf8_percent_encode(segment, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// Serialises `url` as a double-quoted CSS string.
pub fn css_string(url: &str) -> String {
    let mut out = String::with_capacity(url.len() + 2);
    out.push('"');
    for c in url.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\a "),
            '\r' => out.push_str("\\d "),
            '\u{c}' => out.push_str("\\c "),
            c if c.is_control() => out.push_str(&format!("\\{:x} ", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `url` escaped for the inside of a JavaScript string literal delimited by `'` or `"`.
pub fn js_string_contents(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The URL of logical path `target` relative to the folder of logical path `from`, split into the
/// folder prefix (`../vendor/`) and the file name, for references the transformer resolved itself.
pub fn relative_dir_prefix(from: &str, target: &str) -> String {
    let from_dir: Vec<&str> = from.split('/').collect();
    let from_dir = &from_dir[..from_dir.len() - 1];
    let to: Vec<&str> = target.split('/').collect();
    let to_dir = &to[..to.len() - 1];
    let common = from_dir
        .iter()
        .zip(to_dir)
        .take_while(|(a, b)| a == b)
        .count();
    let mut prefix = String::new();
    if common == from_dir.len() {
        prefix.push_str("./");
    }
    for _ in common..from_dir.len() {
        prefix.push_str("../");
    }
    for part in &to_dir[common..] {
        prefix.push_str(&utf8_percent_encode(part, SEGMENT).to_string());
        prefix.push('/');
    }
    prefix
}

/// The shortest valid form of `url` inside `url(...)`: unquoted when no character needs escaping.
pub fn css_url_contents(url: &str) -> String {
    let unquoted_ok = !url.is_empty()
        && url.chars().all(|c| {
            !c.is_whitespace() && !c.is_control() && !matches!(c, '"' | '\'' | '(' | ')' | '\\')
        });
    if unquoted_ok {
        url.to_owned()
    } else {
        css_string(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn internal(spec: &str, from: &str) -> (String, String, String) {
        match classify(spec, from, "/static/") {
            Specifier::Internal {
                logical,
                dir_prefix,
                suffix,
            } => (logical, dir_prefix.into(), suffix.into()),
            other => panic!("{spec}: {other:?}"),
        }
    }

    #[test]
    fn external_references_are_left_alone() {
        for spec in [
            "data:image/svg+xml;utf8,<svg url(x)>",
            "DATA:font/woff2;base64,AAAA",
            "https://fonts.example.com/a.woff2",
            "//cdn.example.com/x.png",
            "#gradient",
            "/other/app.css",
            "mailto:a@b.c",
            "",
            "?v=1",
        ] {
            assert_eq!(
                classify(spec, "css/app.css", "/static/"),
                Specifier::External,
                "{spec}"
            );
        }
    }

    #[test]
    fn relative_references_resolve_against_the_referrer() {
        assert_eq!(
            internal("../img/a.png", "css/app.css"),
            ("img/a.png".into(), "../img/".into(), "".into())
        );
        assert_eq!(
            internal("./b.css", "css/app.css"),
            ("css/b.css".into(), "./".into(), "".into())
        );
        assert_eq!(
            internal("b.css", "app.css"),
            ("b.css".into(), "".into(), "".into())
        );
    }

    #[test]
    fn query_and_fragment_are_kept() {
        assert_eq!(
            internal("../fonts/f.eot?#iefix", "css/app.css"),
            ("fonts/f.eot".into(), "../fonts/".into(), "?#iefix".into())
        );
        assert_eq!(internal("icons.svg#home", "css/app.css").2, "#home");
    }

    #[test]
    fn absolute_references_under_the_public_path_resolve_against_the_root() {
        assert_eq!(
            internal("/static/img/a.png", "css/deep/app.css"),
            ("img/a.png".into(), "/static/img/".into(), "".into())
        );
    }

    #[test]
    fn percent_encoding_is_decoded_for_lookup() {
        assert_eq!(internal("my%20pic.png", "a.css").0, "my pic.png");
    }

    #[test]
    fn climbing_above_the_root_is_reported() {
        assert_eq!(
            classify("../../x.png", "css/a.css", "/static/"),
            Specifier::OutsideRoot
        );
    }

    #[test]
    fn rewrite_keeps_prefix_and_suffix_and_encodes_the_name() {
        assert_eq!(
            rewrite("../img/", "a.0123.png", "?v#x"),
            "../img/a.0123.png?v#x"
        );
        assert_eq!(rewrite("", "my pic.0123.png", ""), "my%20pic.0123.png");
    }

    #[test]
    fn js_serialisation_is_valid_in_either_quote() {
        assert_eq!(js_string_contents("./a.js"), "./a.js");
        assert_eq!(js_string_contents("a'b\"c\\d"), "a\\'b\\\"c\\\\d");
    }

    #[test]
    fn relative_prefixes_for_resolved_targets() {
        assert_eq!(
            relative_dir_prefix("js/app.js", "vendor/three/three.module.js"),
            "../vendor/three/"
        );
        assert_eq!(
            relative_dir_prefix("app.js", "vendor/three.js"),
            "./vendor/"
        );
        assert_eq!(relative_dir_prefix("js/a/b.js", "js/c.js"), "../");
        assert_eq!(relative_dir_prefix("js/a.js", "js/c.js"), "./");
    }

    #[test]
    fn css_serialisation() {
        assert_eq!(css_url_contents("a/b.png"), "a/b.png");
        assert_eq!(css_url_contents("a b.png"), "\"a b.png\"");
        assert_eq!(css_url_contents("data:x,(1)"), "\"data:x,(1)\"");
        assert_eq!(css_string("a\"b\\c\nd"), "\"a\\\"b\\\\c\\a d\"");
    }
}

//! Source-map bookkeeping for the link stage: when placeholders are replaced by URLs of another
//! length, every mapping after them on the same line moves; this module moves them.
//!
//! Works on any v3 map (via the `sourcemap` crate), whatever produced it. Columns are counted in
//! UTF-16 code units, as browsers do. It also turns `sources`, which transformers write as
//! logical paths (`css/parts/buttons.css`), into paths relative to the map's own folder, which is
//! how browsers resolve them. Does not compose maps with input maps (transformers do).

use sourcemap::{SourceMap, SourceMapBuilder};

/// One replacement made in a generated file: at 0-based `line` and UTF-16 `column`, `old_len`
/// units became `new_len` units. Must not span lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edit {
    /// 0-based line.
    pub line: u32,
    /// 0-based column (UTF-16 units) where the replaced text started.
    pub column: u32,
    /// Length of the replaced text.
    pub old_len: u32,
    /// Length of the new text.
    pub new_len: u32,
}

/// Why a map could not be adjusted.
#[derive(Debug, thiserror::Error)]
#[error("invalid source map: {0}")]
pub struct SourceMapError(#[from] sourcemap::Error);

/// Returns `map_json` with generated columns moved by `edits` (sorted by line then column), its
/// `file` set to the file name of `output` (a logical output path such as `css/app.<hash>.css`)
/// and its logical `sources` made relative to the folder of `output`.
pub fn shift(map_json: &[u8], edits: &[Edit], output: &str) -> Result<Vec<u8>, SourceMapError> {
    match shift_plain(map_json, edits, output) {
        Some(out) => Ok(out),
        None => shift_general(map_json, edits, output),
    }
}

/// [`shift`] through the `sourcemap` crate, for any v3 map.
fn shift_general(map_json: &[u8], edits: &[Edit], output: &str) -> Result<Vec<u8>, SourceMapError> {
    let map = SourceMap::from_slice(map_json)?;
    let (dir, file) = output.rsplit_once('/').unwrap_or(("", output));
    let mut builder = SourceMapBuilder::new(Some(file));
    for (i, source) in map.sources().enumerate() {
        let id = builder.add_source(&relative_to(dir, source));
        debug_assert_eq!(id as usize, i);
        builder.set_source_contents(id, map.get_source_contents(i as u32));
    }
    for name in map.names() {
        builder.add_name(name);
    }
    let mut e = 0;
    let mut delta: i64 = 0;
    let mut line = u32::MAX;
    for token in map.tokens() {
        let raw = token.get_raw_token();
        if raw.dst_line != line {
            line = raw.dst_line;
            delta = 0;
            while e < edits.len() && edits[e].line < line {
                e += 1;
            }
        }
        while e < edits.len()
            && edits[e].line == line
            && edits[e].column + edits[e].old_len <= raw.dst_col
        {
            delta += i64::from(edits[e].new_len) - i64::from(edits[e].old_len);
            e += 1;
        }
        let col = (i64::from(raw.dst_col) + delta).max(0) as u32;
        let opt = |id: u32| (id != !0).then_some(id);
        builder.add_raw(
            raw.dst_line,
            col,
            raw.src_line,
            raw.src_col,
            opt(raw.src_id),
            opt(raw.name_id),
            raw.is_range,
        );
    }
    let mut out = Vec::new();
    builder.into_sourcemap().to_writer(&mut out)?;
    Ok(out)
}

/// The maps transformers write (`version`, `file`, `sources`, `sourcesContent`, `names`,
/// `mappings`, nothing else).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainMap<'a> {
    version: u32,
    #[serde(rename = "file")]
    _file: Option<serde::de::IgnoredAny>,
    sources: Vec<String>,
    #[serde(rename = "sourcesContent", borrow)]
    sources_content: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    names: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    mappings: std::borrow::Cow<'a, str>,
}

/// [`shift`] without decoding the map: `sourcesContent` and `names` are copied as they are, and
/// only the generated columns of the lines with edits are decoded and encoded again (a mapping's
/// other fields are relative to the previous mapping of the whole map, its generated column to
/// the previous one of its line). The same JSON as the general path, whose `sourcemap` crate
/// writes the same fields in the same order. `None` for any other map (`sourceRoot`, `sections`,
/// extensions), left to the general path.
fn shift_plain(map_json: &[u8], edits: &[Edit], output: &str) -> Option<Vec<u8>> {
    let map: PlainMap<'_> = serde_json::from_slice(map_json).ok()?;
    if map.version != 3 {
        return None;
    }
    let mappings = shift_mappings(&map.mappings, edits)?;
    let (dir, file) = output.rsplit_once('/').unwrap_or(("", output));
    let sources: Vec<String> = map.sources.iter().map(|s| relative_to(dir, s)).collect();
    let mut out = Vec::with_capacity(map_json.len() + 64);
    out.extend_from_slice(b"{\"version\":3,\"file\":");
    serde_json::to_writer(&mut out, file).ok()?;
    out.extend_from_slice(b",\"sources\":");
    serde_json::to_writer(&mut out, &sources).ok()?;
    // The general path leaves out a `sourcesContent` of nulls only.
    if let Some(content) = map.sources_content
        && content.get().contains('"')
    {
        out.extend_from_slice(b",\"sourcesContent\":");
        out.extend_from_slice(content.get().as_bytes());
    }
    out.extend_from_slice(b",\"names\":");
    out.extend_from_slice(map.names.map_or("[]", |n| n.get()).as_bytes());
    out.extend_from_slice(b",\"mappings\":");
    serde_json::to_writer(&mut out, &mappings).ok()?;
    out.push(b'}');
    Some(out)
}

/// `mappings` with the generated columns of each edited line moved as [`shift`] moves them.
fn shift_mappings(mappings: &str, edits: &[Edit]) -> Option<String> {
    let mut out = String::with_capacity(mappings.len() + edits.len() * 2);
    let mut e = 0;
    for (n, line) in mappings.split(';').enumerate() {
        if n > 0 {
            out.push(';');
        }
        while e < edits.len() && (edits[e].line as usize) < n {
            e += 1;
        }
        let first = e;
        while e < edits.len() && edits[e].line as usize == n {
            e += 1;
        }
        let on_line = &edits[first..e];
        if on_line.is_empty() || line.is_empty() {
            out.push_str(line);
            continue;
        }
        let (mut col, mut written, mut delta, mut k) = (0i64, 0i64, 0i64, 0);
        for (i, segment) in line.split(',').enumerate() {
            if i > 0 {
                out.push(',');
            }
            let (step, rest) = vlq_decode(segment)?;
            col += step;
            while k < on_line.len()
                && i64::from(on_line[k].column) + i64::from(on_line[k].old_len) <= col
            {
                delta += i64::from(on_line[k].new_len) - i64::from(on_line[k].old_len);
                k += 1;
            }
            let moved = (col + delta).max(0);
            vlq_encode(&mut out, moved - written);
            written = moved;
            out.push_str(rest);
        }
    }
    Some(out)
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The first Base64 VLQ of `segment`, and the rest of it.
fn vlq_decode(segment: &str) -> Option<(i64, &str)> {
    let (mut value, mut shift) = (0i64, 0);
    for (i, c) in segment.bytes().enumerate() {
        let digit = BASE64.iter().position(|&b| b == c)? as i64;
        value |= (digit & 31) << shift;
        if digit & 32 == 0 {
            let n = if value & 1 == 1 {
                -(value >> 1)
            } else {
                value >> 1
            };
            return Some((n, &segment[i + 1..]));
        }
        shift += 5;
        if shift > 60 {
            return None;
        }
    }
    None
}

fn vlq_encode(out: &mut String, n: i64) {
    let mut v = if n < 0 { ((-n) << 1) | 1 } else { n << 1 };
    loop {
        let mut digit = v & 31;
        v >>= 5;
        if v > 0 {
            digit |= 32;
        }
        out.push(BASE64[digit as usize] as char);
        if v == 0 {
            break;
        }
    }
}

/// `target` (a logical path) relative to the folder `dir` (a logical path, "" for the root).
/// URLs and absolute paths are returned as they are.
fn relative_to(dir: &str, target: &str) -> String {
    if target.starts_with('/') || target.contains("://") || target.starts_with('.') {
        return target.to_owned();
    }
    let from: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
    let to: Vec<&str> = target.split('/').collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; from.len() - common];
    parts.extend(&to[common..]);
    parts.join("/")
}

#[cfg(test)]
mod tests {
    #[test]
    fn sources_become_relative_to_the_map_folder() {
        use super::relative_to;
        assert_eq!(relative_to("css", "css/app.css"), "app.css");
        assert_eq!(relative_to("css", "css/parts/b.css"), "parts/b.css");
        assert_eq!(relative_to("css/deep", "img/x.svg"), "../../img/x.svg");
        assert_eq!(relative_to("", "app.css"), "app.css");
        assert_eq!(relative_to("css", "webpack://x/y.css"), "webpack://x/y.css");
    }

    use super::*;

    #[test]
    fn mappings_after_an_edit_move_by_its_length_difference() {
        // Generated "a{b:url(PH)}c{}" with mappings at columns 0, 2 and 12 of line 0.
        let mut b = SourceMapBuilder::new(Some("x.css"));
        let src = b.add_source("css/x.css");
        b.set_source_contents(src, Some("source"));
        for (col, src_line) in [(0, 0), (2, 1), (12, 5)] {
            b.add_raw(0, col, src_line, 0, Some(src), None, false);
        }
        b.add_raw(1, 3, 7, 0, Some(src), None, false);
        let mut json = Vec::new();
        b.into_sourcemap().to_writer(&mut json).unwrap();

        // "PH" (2 units, quoted: 4) at column 6 becomes 10 units.
        let edits = [Edit {
            line: 0,
            column: 6,
            old_len: 4,
            new_len: 10,
        }];
        let out = SourceMap::from_slice(&shift(&json, &edits, "css/x.abc.css").unwrap()).unwrap();
        let cols: Vec<(u32, u32)> = out
            .tokens()
            .map(|t| (t.get_dst_line(), t.get_dst_col()))
            .collect();
        assert_eq!(cols, [(0, 0), (0, 2), (0, 18), (1, 3)]);
        assert_eq!(out.get_file(), Some("x.abc.css"));
        assert_eq!(out.get_source_contents(0), Some("source"));
        assert_eq!(out.get_source(0), Some("x.css"));
    }

    use proptest::prelude::*;

    proptest! {
        /// The plain path writes the general path's bytes: maps of several lines, sources in
        /// folders, contents with escapes and without, names, mappings with and without a source,
        /// edits growing and shrinking placeholders.
        #[test]
        fn the_plain_path_writes_what_the_general_path_writes(
            tokens in prop::collection::vec(
                (0u32..4, 0u32..200, 0u32..50, 0u32..80, prop::option::of(0u32..3), prop::option::of(0u32..2)),
                1..60,
            ),
            edits in prop::collection::vec((0u32..4, 0u32..200, 1u32..30, 1u32..60), 0..6),
            contents in any::<bool>(),
        ) {
            let mut edits: Vec<Edit> = edits
                .into_iter()
                .map(|(line, column, old_len, new_len)| Edit { line, column, old_len, new_len })
                .collect();
            edits.sort_by_key(|e| (e.line, e.column));
            // Edits do not overlap, as placeholders do not.
            edits.dedup_by(|b, a| b.line == a.line && b.column < a.column + a.old_len);
            let mut b = SourceMapBuilder::new(Some("app.css"));
            for (i, path) in ["css/app.css", "css/parts/b.css", "vendor/x.css"].iter().enumerate() {
                let id = b.add_source(path);
                if contents && i != 1 {
                    b.set_source_contents(id, Some("a{b:\"c\"}\n\t\\ \u{2028} ü \u{1}"));
                }
            }
            b.add_name("first");
            b.add_name("second \"quoted\"");
            let mut tokens = tokens;
            tokens.sort_by_key(|t| (t.0, t.1));
            tokens.dedup_by_key(|t| (t.0, t.1));
            // No mapping points inside a placeholder: transformers map a string or `url()` at
            // its start.
            tokens.retain(|t| {
                !edits.iter().any(|e| e.line == t.0 && e.column < t.1 && t.1 < e.column + e.old_len)
            });
            for (line, col, src_line, src_col, src, name) in tokens {
                b.add_raw(line, col, src_line, src_col, src, name.filter(|_| src.is_some()), false);
            }
            let mut json = Vec::new();
            b.into_sourcemap().to_writer(&mut json).unwrap();
            let plain = shift_plain(&json, &edits, "css/app.abc.css").expect("a plain map");
            let general = shift_general(&json, &edits, "css/app.abc.css").unwrap();
            prop_assert_eq!(String::from_utf8(plain).unwrap(), String::from_utf8(general).unwrap());
        }
    }

    #[test]
    fn maps_with_other_fields_take_the_general_path() {
        let map = br#"{"version":3,"sourceRoot":"/src/","sources":["a.js"],"names":[],"mappings":"AAAA"}"#;
        assert!(shift_plain(map, &[], "a.js").is_none());
        let out = shift(map, &[], "js/a.1.js").unwrap();
        assert!(SourceMap::from_slice(&out).is_ok());
    }
}

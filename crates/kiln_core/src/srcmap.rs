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
}

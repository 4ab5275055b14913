//! Diagnostics: problems found in a user's files, with a position and a code frame.
//!
//! A [`Diagnostic`] is data (so the library can hand it to a `build.rs` or an editor); rendering
//! as `path:line:col: error: message` plus a code frame happens in [`Diagnostic::render`], with
//! annotate-snippets drawing the frame. Internal failures (I/O, configuration) are not diagnostics:
//! they are the typed errors of the module that hits them.

use std::fmt;

pub use annotate_snippets::Renderer;
use annotate_snippets::{Level, Snippet};

/// How bad a diagnostic is. Errors fail the build; warnings are printed and the build goes on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Fails the build: nothing is emitted and no manifest is written.
    Error,
    /// Reported, but the build still succeeds.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// The code of CSS the transformer recovered from (an IE hack, an invalid declaration): what
/// [`summarise`] folds into one line per file.
pub const CSS_RECOVERED: &str = "css-recovered";

/// `diagnostics` with each file's [`CSS_RECOVERED`] warnings, when there are several, folded into
/// one line that counts them and names the first (vendored CSS full of legacy hacks would
/// otherwise bury a real problem). Order is kept; everything else passes through.
pub fn summarise(diagnostics: &[Diagnostic]) -> Vec<Diagnostic> {
    let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for d in diagnostics.iter().filter(|d| d.code == CSS_RECOVERED) {
        *counts.entry(d.path.as_str()).or_default() += 1;
    }
    let mut done = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(diagnostics.len());
    for d in diagnostics {
        let count = counts.get(d.path.as_str()).copied().unwrap_or(0);
        if d.code != CSS_RECOVERED || count < 2 {
            out.push(d.clone());
            continue;
        }
        if !done.insert(d.path.as_str()) {
            continue;
        }
        out.push(Diagnostic {
            message: format!(
                "{count} invalid declarations or rules, which browsers ignore, were dropped \
                 (legacy hacks such as `*zoom: 1`); the first, at {}:{}: {}",
                d.line, d.column, d.message
            ),
            line: 0,
            column: 0,
            source_line: None,
            help: Some("`--verbose` lists each one".to_owned()),
            ..d.clone()
        });
    }
    out
}

/// A problem in a user's file, at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A stable, kebab-case code (`missing-reference`, `css-syntax`, ...), for tests and tooling.
    pub code: std::borrow::Cow<'static, str>,
    /// What is wrong, in one sentence.
    pub message: String,
    /// The file, as the user would type it (the source root joined with the logical path).
    pub path: String,
    /// 1-based line; 0 when the problem concerns the whole file.
    pub line: u32,
    /// 1-based column in characters; 0 when unknown.
    pub column: u32,
    /// How to fix it, when kiln knows.
    pub help: Option<String>,
    /// The source line the diagnostic points at, for the code frame.
    pub source_line: Option<String>,
    /// How many characters of `source_line` to underline from `column` (at least 1).
    pub span_len: u32,
}

impl Diagnostic {
    /// A diagnostic of `severity` about the file at `path`.
    pub fn new(
        severity: Severity,
        code: &'static str,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity,
            code: code.into(),
            message: message.into(),
            path: path.into(),
            line: 0,
            column: 0,
            help: None,
            source_line: None,
            span_len: 1,
        }
    }

    /// An error about the file at `path`.
    pub fn error(code: &'static str, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, path, message)
    }

    /// A warning about the file at `path`.
    pub fn warning(
        code: &'static str,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(Severity::Warning, code, path, message)
    }

    /// Points the diagnostic at 1-based `line` and `column`, taking the code frame's line from `source`.
    pub fn at(mut self, line: u32, column: u32, source: Option<&str>) -> Self {
        self.line = line;
        self.column = column;
        if line > 0 {
            self.source_line = source
                .and_then(|s| s.lines().nth(line as usize - 1))
                .map(|l| l.trim_end_matches('\r').to_owned());
        }
        self
    }

    /// Underlines `len` characters from the column in the code frame.
    pub fn with_span(mut self, len: u32) -> Self {
        self.span_len = len.max(1);
        self
    }

    /// Adds a hint on how to fix the problem.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// True for [`Severity::Error`].
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders `path:line:col: severity: message`, a code frame and the help line, without colour.
    pub fn render(&self) -> String {
        self.render_with(&Renderer::plain())
    }

    /// Like [`render`](Self::render), with an annotate-snippets renderer of your choice (e.g. styled).
    pub fn render_with(&self, renderer: &Renderer) -> String {
        let mut out = format!("{self}\n");
        if let (Some(text), true) = (&self.source_line, self.column > 0) {
            // Columns are 1-based characters; annotate-snippets wants a byte range into the line.
            let start = char_to_byte(text, self.column as usize - 1);
            let end =
                char_to_byte(text, self.column as usize - 1 + self.span_len as usize).max(start);
            // annotate-snippets shows a tab as four spaces but does not move the underline with
            // it: expand the tabs here, and the range with them.
            let tabs = |b: usize| 3 * text[..b].matches('\t').count();
            let (text, start, end) = (
                text.replace('\t', "    "),
                start + tabs(start),
                end + tabs(end),
            );
            let text = &text;
            // Very long lines (minified input) are cut to a window around the column.
            let (shown, start, end) = window(text, start, end);
            let level = match self.severity {
                Severity::Error => Level::Error,
                Severity::Warning => Level::Warning,
            };
            let message = level.title("").snippet(
                Snippet::source(&shown)
                    .line_start(self.line as usize)
                    .annotation(level.span(start..end)),
            );
            let rendered = renderer.render(message).to_string();
            // The first line repeats the title; ours is already printed above in `path:line:col` form.
            for line in rendered.lines().skip(1) {
                out.push_str(line);
                out.push('\n');
            }
        }
        if let Some(help) = &self.help {
            out.push_str("  = help: ");
            out.push_str(help);
            out.push('\n');
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => write!(f, "{}: {}: {}", self.path, self.severity, self.message),
            (l, 0) => write!(f, "{}:{l}: {}: {}", self.path, self.severity, self.message),
            (l, c) => write!(
                f,
                "{}:{l}:{c}: {}: {}",
                self.path, self.severity, self.message
            ),
        }
    }
}

fn char_to_byte(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| i)
}

/// Cuts a line longer than 160 bytes to a window around `start..end`, returning the window and the
/// range relative to it.
fn window(text: &str, start: usize, end: usize) -> (String, usize, usize) {
    const MAX: usize = 160;
    if text.len() <= MAX {
        return (text.to_owned(), start, end);
    }
    let mut from = start.saturating_sub(MAX / 2);
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    let mut to = (from + MAX).min(text.len()).max(end.min(text.len()));
    while !text.is_char_boundary(to) {
        to += 1;
    }
    let prefix = if from > 0 { "…" } else { "" };
    let suffix = if to < text.len() { "…" } else { "" };
    let shown = format!("{prefix}{}{suffix}", &text[from..to]);
    (
        shown,
        start - from + prefix.len(),
        end - from + prefix.len(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_position_frame_and_help() {
        let src = "a {}\nb { background: url(missing.png) }\n";
        let d = Diagnostic::error(
            "missing-reference",
            "assets/app.css",
            "file not found: missing.png",
        )
        .at(2, 21, Some(src))
        .with_span(11)
        .with_help("check the path");
        let out = d.render();
        let mut lines = out.lines();
        assert_eq!(
            lines.next(),
            Some("assets/app.css:2:21: error: file not found: missing.png")
        );
        assert!(
            out.contains("2 | b { background: url(missing.png) }"),
            "{out}"
        );
        let caret_line = out.lines().find(|l| l.contains('^')).expect("a caret line");
        assert_eq!(
            caret_line.find('^'),
            out.lines()
                .find(|l| l.starts_with("2 |"))
                .unwrap()
                .find("missing")
        );
        assert!(out.ends_with("  = help: check the path\n"), "{out}");
    }

    #[test]
    fn whole_file_diagnostic_has_no_position() {
        let d = Diagnostic::warning("not-utf8", "a.css", "bad bytes");
        assert_eq!(d.render(), "a.css: warning: bad bytes\n");
    }

    #[test]
    fn the_underline_is_under_the_column_after_tabs() {
        let line = "\t\tconst u = new URL( x, import.meta.url );";
        let d = Diagnostic::warning("x", "a.js", "computed").at(1, 22, Some(line));
        let out = d.render();
        let lines: Vec<&str> = out.lines().collect();
        let shown = lines.iter().position(|l| l.contains("const u")).unwrap();
        let at = |l: &str, s: &str| l.find(s).unwrap();
        assert_eq!(at(lines[shown + 1], "-"), at(lines[shown], "x,"), "{out}");
    }

    #[test]
    fn long_lines_are_windowed_around_the_column() {
        let line = format!("{}url(x.png){}", "a".repeat(1000), "b".repeat(1000));
        let d = Diagnostic::error("x", "m.css", "bad")
            .at(1, 1001, Some(&line))
            .with_span(10);
        let out = d.render();
        assert!(out.contains("url(x.png)"), "{out}");
        assert!(out.lines().all(|l| l.len() < 300), "{out}");
    }
}

//! Finding the references of unminified JavaScript with a lexical scan instead of swc's tree.
//!
//! An unminified build only needs the specifiers of `import`/`export ... from`, `import()` and
//! `new URL('...', import.meta.url)` and the last `sourceMappingURL` comment; parsing a 700 KB
//! module into a syntax tree to find three strings was half of the hash + rewrite task's CPU. This
//! scanner walks the text once, in the manner of es-module-lexer: it skips comments, strings,
//! template literals (their `${}` included) and regular expressions, telling a regular
//! expression's `/` from a division's by the token before it (after `)`, by whether the
//! parenthesis followed `if`, `while`, `for` or `with`; after `}`, by whether the brace opened a
//! block or an object literal). docs/internals.md explains the rules and their blind spot.
//!
//! It answers only when it is sure, and says "parse it" ([`None`]) otherwise: an unbalanced
//! bracket, a string, template, comment or regular expression left open or running over a line
//! end where one cannot (the sign of a `/` read the wrong way), an escape in a specifier, a
//! computed specifier, `import.meta` outside the exact `new URL(<string>, import.meta.url)`
//! form, an HTML-like comment. The caller then parses the file with swc as before, which also
//! reports what the scan would have to guess at. Tests hold it to the tree walk's answers.

use kiln_core::RefKind;

/// A specifier found by the scan: the byte range of its literal, quotes or backticks included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub lo: usize,
    pub hi: usize,
    pub spec: String,
    pub kind: RefKind,
    /// A template literal (its whole span is replaced by a double-quoted string).
    pub template: bool,
}

/// What the scan found, in source order.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub found: Vec<Found>,
    /// The last comment whose text starts with `# sourceMappingURL=` or `@ sourceMappingURL=`:
    /// its byte range (delimiters included) and the range of its text (delimiters excluded).
    pub map_comment: Option<((usize, usize), (usize, usize))>,
}

/// Scans `text`; `None` when it cannot be sure of the answer (the caller parses instead).
pub(crate) fn scan(text: &str) -> Option<Scan> {
    let mut s = Scanner {
        text,
        b: text.as_bytes(),
        i: 0,
        regex_ok: true,
        after_dot: false,
        paren_keyword: false,
        brace_expression: false,
        last_end: 0,
        open: Vec::new(),
        url_imports: Vec::new(),
        statement_ends: Vec::new(),
        out: Scan::default(),
    };
    s.run()?;
    if !s.open.is_empty() {
        return None;
    }
    s.out.found.sort_by_key(|f| f.lo);
    // A literal found twice (`export * as import from '...'` reads as an import too) is one.
    s.out.found.dedup_by_key(|f| f.lo);
    Some(s.out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    /// `(`, and whether it followed `if`, `while`, `for` or `with` (so a `/` after its `)`
    /// starts a regular expression).
    Paren(bool),
    Bracket,
    /// `{`, and whether it opened an expression (an object literal: after `=`, `(`, `,`, `:`,
    /// an operator, `return`, ...), after whose `}` a `/` divides; after a block's it starts a
    /// regular expression.
    Brace(bool),
    /// The `${` of a template literal.
    Substitution,
}

struct Scanner<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
    /// Whether a `/` here starts a regular expression (else it is a division).
    regex_ok: bool,
    /// The last token was `.` (the next name is a property, never a keyword).
    after_dot: bool,
    /// The last token was `if`, `while`, `for` or `with`.
    paren_keyword: bool,
    /// The last token was a punctuator or keyword after which a `{` opens an object literal.
    brace_expression: bool,
    /// Where the last token ended.
    last_end: usize,
    open: Vec<Open>,
    /// Where the `import` of each `new URL(..., import.meta.url)` found so far starts.
    url_imports: Vec<usize>,
    /// Where the specifier of each `import`/`export ... from` declaration starts: the statement
    /// ends with it, so a `/` after it starts a regular expression.
    statement_ends: Vec<usize>,
    out: Scan,
}

/// Names after which a `/` starts a regular expression (`break`, `continue` and `debugger` end
/// their statement: a `/` after them can only open one).
const EXPRESSION_KEYWORDS: &[&str] = &[
    "break",
    "continue",
    "debugger",
    "return",
    "typeof",
    "instanceof",
    "in",
    "of",
    "new",
    "delete",
    "void",
    "throw",
    "case",
    "do",
    "else",
    "yield",
    "await",
    "extends",
];

fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c == b'\\' || c >= 0x80
}

/// JavaScript's white space beyond ASCII's (no-break spaces, line separators, the BOM, ...), as
/// swc's lexer takes it (which adds U+200B to the standard's).
pub(crate) fn is_unicode_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}' || c == '\u{200b}'
}

impl Scanner<'_> {
    fn peek(&self, at: usize) -> u8 {
        self.b.get(at).copied().unwrap_or(0)
    }

    /// The character at byte `at` (a char boundary).
    fn char_at(&self, at: usize) -> char {
        self.text[at..].chars().next().unwrap_or('\0')
    }

    fn run(&mut self) -> Option<()> {
        if self.b.starts_with(b"#!") {
            self.i = self.line_end(0);
        }
        while self.i < self.b.len() {
            let c = self.b[self.i];
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => self.i += 1,
                b'/' => match self.peek(self.i + 1) {
                    b'/' => self.line_comment(),
                    b'*' => self.block_comment()?,
                    _ if self.regex_ok => {
                        self.regex()?;
                        self.value();
                    }
                    _ => {
                        // A division on a new line may be a regular expression after automatic
                        // semicolon insertion (`let x` / `/re/.test(s)`): only the grammar knows.
                        if self.line_break_since_last_token() {
                            return None;
                        }
                        self.i += 1;
                        self.punct();
                    }
                },
                b'\'' | b'"' => {
                    let start = self.i;
                    self.i = self.string_end(self.i)?;
                    if self.statement_ends.contains(&start) {
                        self.punct();
                    } else {
                        self.value();
                    }
                }
                b'`' => {
                    self.i += 1;
                    self.template()?;
                }
                b'0'..=b'9' => self.number(),
                b'.' if self.peek(self.i + 1).is_ascii_digit() => self.number(),
                b'.' => {
                    if self.b[self.i..].starts_with(b"...") {
                        self.i += 3;
                        self.punct();
                    } else {
                        self.i += 1;
                        self.punct();
                        self.after_dot = true;
                    }
                }
                b'(' => {
                    self.open.push(Open::Paren(self.paren_keyword));
                    self.i += 1;
                    self.punct();
                    self.brace_expression = true;
                }
                b')' => {
                    let Some(Open::Paren(keyword)) = self.open.pop() else {
                        return None;
                    };
                    self.i += 1;
                    self.punct();
                    self.regex_ok = keyword;
                }
                b'[' => {
                    self.open.push(Open::Bracket);
                    self.i += 1;
                    self.punct();
                    self.brace_expression = true;
                }
                b']' => {
                    if self.open.pop() != Some(Open::Bracket) {
                        return None;
                    }
                    self.i += 1;
                    self.value();
                }
                b'{' => {
                    self.open.push(Open::Brace(self.brace_expression));
                    self.i += 1;
                    self.punct();
                }
                b'}' => match self.open.pop() {
                    // After a block (or, rarely, an object literal), a `/` is taken for a regular
                    // expression; read the wrong way it runs into a line end, and the file is
                    // parsed.
                    Some(Open::Brace(false)) => {
                        self.i += 1;
                        self.punct();
                    }
                    Some(Open::Brace(true)) => {
                        self.i += 1;
                        self.value();
                    }
                    Some(Open::Substitution) => {
                        self.i += 1;
                        self.template()?;
                    }
                    _ => return None,
                },
                b'+' | b'-' if self.peek(self.i + 1) == c => {
                    // `-->`: an HTML-like closing comment after a line break in a classic script
                    // (comments and white space between included), else `x-- > y`.
                    if c == b'-' && self.peek(self.i + 2) == b'>' {
                        return None;
                    }
                    // `++`/`--`: taken as postfix (a prefix one cannot precede a `/`).
                    self.i += 2;
                    self.value();
                }
                b'<' if self.b[self.i..].starts_with(b"<!--") => return None,
                b'#' => {
                    // A private name (`#x`): a name that is never a keyword.
                    self.i += 1;
                    self.name_end();
                    self.value();
                }
                c if c >= 0x80 && is_unicode_space(self.char_at(self.i)) => {
                    self.i += self.char_at(self.i).len_utf8();
                }
                c if is_name_byte(c) => self.name()?,
                _ => {
                    self.i += 1;
                    self.punct();
                    self.brace_expression = b"=(,:[?!&|+-*%~^<".contains(&c);
                }
            }
        }
        Some(())
    }

    /// After a punctuator: a `/` starts a regular expression.
    fn punct(&mut self) {
        self.last_end = self.i;
        self.regex_ok = true;
        self.after_dot = false;
        self.paren_keyword = false;
        self.brace_expression = false;
    }

    /// After a value (a name, number, string, `]`, ...): a `/` is a division.
    fn value(&mut self) {
        self.last_end = self.i;
        self.regex_ok = false;
        self.after_dot = false;
        self.paren_keyword = false;
        self.brace_expression = false;
    }

    /// Whether a line terminator lies between the last token and `self.i` (in white space or a
    /// comment).
    fn line_break_since_last_token(&self) -> bool {
        let between = &self.text[self.last_end..self.i];
        between.contains(['\n', '\r', '\u{2028}', '\u{2029}'])
    }

    /// Where the line comment (or hashbang) starting at `from` ends: at a line terminator
    /// (JavaScript's include U+2028 and U+2029).
    fn line_end(&self, from: usize) -> usize {
        let mut j = from;
        while j < self.b.len() {
            match self.b[j] {
                b'\n' | b'\r' => return j,
                0xe2 if self.b[j + 1..].starts_with(&[0x80, 0xa8])
                    || self.b[j + 1..].starts_with(&[0x80, 0xa9]) =>
                {
                    return j;
                }
                _ => j += 1,
            }
        }
        j
    }

    fn line_comment(&mut self) {
        let end = self.line_end(self.i);
        self.comment(self.i, end, (self.i + 2, end));
        self.i = end;
    }

    fn block_comment(&mut self) -> Option<()> {
        let close = self.i + 2 + self.text[self.i + 2..].find("*/")?;
        self.comment(self.i, close + 2, (self.i + 2, close));
        self.i = close + 2;
        Some(())
    }

    fn comment(&mut self, lo: usize, hi: usize, body: (usize, usize)) {
        let t = self.text[body.0..body.1].trim_start();
        if t.starts_with("# sourceMappingURL=") || t.starts_with("@ sourceMappingURL=") {
            self.out.map_comment = Some(((lo, hi), body));
        }
    }

    /// Skips a regular expression literal starting at `/`, and its flags.
    fn regex(&mut self) -> Option<()> {
        let mut j = self.i + 1;
        let mut class = false;
        loop {
            match *self.b.get(j)? {
                b'\\' => {
                    if matches!(self.peek(j + 1), b'\n' | b'\r') {
                        return None;
                    }
                    j += 2;
                }
                b'[' => {
                    class = true;
                    j += 1;
                }
                b']' => {
                    class = false;
                    j += 1;
                }
                b'/' if !class => break,
                // A regular expression cannot span lines: the `/` was a division.
                b'\n' | b'\r' => return None,
                0xe2 if self.b[j + 1..].starts_with(&[0x80, 0xa8])
                    || self.b[j + 1..].starts_with(&[0x80, 0xa9]) =>
                {
                    return None;
                }
                _ => j += 1,
            }
        }
        self.i = j + 1;
        self.name_end();
        Some(())
    }

    /// Where the string literal opening at `at` ends (after its closing quote).
    fn string_end(&self, at: usize) -> Option<usize> {
        let quote = self.b[at];
        let mut j = at + 1;
        loop {
            match *self.b.get(j)? {
                b'\\' => {
                    j += if self.b[j + 1..].starts_with(b"\r\n") {
                        3
                    } else {
                        2
                    }
                }
                b'\n' | b'\r' => return None,
                c if c == quote => return Some(j + 1),
                _ => j += 1,
            }
        }
    }

    /// Skips template text up to its closing backtick, or into a `${` substitution.
    fn template(&mut self) -> Option<()> {
        let mut j = self.i;
        loop {
            match *self.b.get(j)? {
                b'\\' => j += 2,
                b'`' => {
                    self.i = j + 1;
                    self.value();
                    return Some(());
                }
                b'$' if self.peek(j + 1) == b'{' => {
                    self.open.push(Open::Substitution);
                    self.i = j + 2;
                    self.punct();
                    return Some(());
                }
                _ => j += 1,
            }
        }
    }

    fn number(&mut self) {
        let hex = self.b[self.i..].starts_with(b"0x") || self.b[self.i..].starts_with(b"0X");
        let mut j = self.i;
        while j < self.b.len() {
            let c = self.b[j];
            let exponent_sign =
                (c == b'+' || c == b'-') && !hex && matches!(self.b[j - 1], b'e' | b'E');
            if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || exponent_sign {
                j += 1;
            } else {
                break;
            }
        }
        self.i = j;
        self.value();
    }

    /// Skips the rest of a name (ASCII name characters, escapes, and any non-ASCII character
    /// that is not white space).
    fn name_end(&mut self) {
        self.i = self.name_end_at(self.i);
    }

    fn name_end_at(&self, mut j: usize) -> usize {
        while j < self.b.len() {
            let c = self.b[j];
            if c >= 0x80 {
                let ch = self.text[j..].chars().next().unwrap_or(' ');
                if is_unicode_space(ch) {
                    break;
                }
                j += ch.len_utf8();
            } else if is_name_byte(c) {
                j += 1;
            } else {
                break;
            }
        }
        j
    }

    fn name(&mut self) -> Option<()> {
        let start = self.i;
        let after_for = self.paren_keyword;
        self.name_end();
        let word = &self.text[start..self.i];
        if self.after_dot {
            self.value();
            return Some(());
        }
        match word {
            "import" => self.import(start)?,
            "export" => self.export()?,
            "new" => self.new_url(),
            _ => {}
        }
        if EXPRESSION_KEYWORDS.contains(&word) {
            self.punct();
        } else {
            self.value();
        }
        self.paren_keyword =
            matches!(word, "if" | "while" | "for" | "with") || (word == "await" && after_for);
        self.brace_expression = matches!(
            word,
            "return" | "typeof" | "yield" | "await" | "void" | "delete" | "in" | "of" | "throw"
        );
        Some(())
    }

    /// Skips white space and comments from `j`; `None` at a comment left open.
    fn skip(&self, mut j: usize) -> Option<usize> {
        loop {
            match self.peek(j) {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => j += 1,
                b'/' if self.peek(j + 1) == b'/' => j = self.line_end(j),
                b'/' if self.peek(j + 1) == b'*' => {
                    j = j + 4 + self.text.get(j + 2..)?.find("*/")?;
                }
                c if c >= 0x80 && is_unicode_space(self.char_at(j)) => {
                    j += self.char_at(j).len_utf8();
                }
                _ => return Some(j),
            }
        }
    }

    /// The name at `j` (empty when none starts there).
    fn word_at(&self, j: usize) -> &str {
        if j < self.b.len() && is_name_byte(self.b[j]) && !self.b[j].is_ascii_digit() {
            &self.text[j..self.name_end_at(j)]
        } else {
            ""
        }
    }

    /// The string or expression-free template literal at `j`: `Ok(None)` when there is none,
    /// `Err(())` when there is one the scan will not interpret (escapes, substitutions).
    fn literal_at(&self, j: usize) -> Result<Option<(usize, String, bool)>, ()> {
        match self.peek(j) {
            b'\'' | b'"' => {
                let end = self.string_end(j).ok_or(())?;
                let spec = &self.text[j + 1..end - 1];
                if spec.contains('\\') {
                    return Err(());
                }
                Ok(Some((end, spec.to_owned(), false)))
            }
            b'`' => {
                let close = j + 1 + self.text[j + 1..].find('`').ok_or(())?;
                let spec = &self.text[j + 1..close];
                if spec.contains('\\') || spec.contains("${") || spec.contains('\r') {
                    return Err(());
                }
                Ok(Some((close + 1, spec.to_owned(), true)))
            }
            _ => Ok(None),
        }
    }

    fn push(&mut self, lo: usize, (hi, spec, template): (usize, String, bool), kind: RefKind) {
        self.out.found.push(Found {
            lo,
            hi,
            spec,
            kind,
            template,
        });
    }

    /// `import` as a keyword (not a property) ends at `self.i`.
    fn import(&mut self, start: usize) -> Option<()> {
        if self.url_imports.contains(&start) {
            return Some(());
        }
        let j = self.skip(self.i)?;
        // A class field named `import`, then others on the next lines (`from`, `'./x.js'`): no
        // import statement breaks its line there, so leave it to the parser.
        if is_name_byte(self.peek(j)) && self.text[self.i..j].contains(['\n', '\r']) {
            return None;
        }
        match self.peek(j) {
            // `import(...)`: only a literal specifier followed by `)` or `,` (import
            // attributes); a computed one is for the parser, which reports it.
            b'(' => {
                let k = self.skip(j + 1)?;
                let lit = self.literal_at(k).ok()??;
                let after = self.skip(lit.0)?;
                if !matches!(self.peek(after), b')' | b',') {
                    return None;
                }
                self.push(k, lit, RefKind::DynamicImport);
            }
            // `import.meta` other than `new URL(<literal>, import.meta.url)`.
            b'.' => return None,
            // An object's `import:` key.
            b':' => {}
            b'\'' | b'"' => {
                let lit = self.literal_at(j).ok()??;
                self.statement_ends.push(j);
                self.push(j, lit, RefKind::Import);
            }
            b'{' | b'*' => self.import_clause(j)?,
            c if is_name_byte(c) => self.import_clause(j)?,
            _ => return None,
        }
        Some(())
    }

    /// The bindings of a static import from `j` up to `from '<specifier>'`.
    fn import_clause(&mut self, mut j: usize) -> Option<()> {
        loop {
            j = self.skip(j)?;
            match self.peek(j) {
                b'{' => j = self.named_list(j)?,
                b'*' | b',' => j += 1,
                _ => {
                    let word = self.word_at(j);
                    if word.is_empty() {
                        return None;
                    }
                    j += word.len();
                    if word == "from" {
                        let k = self.skip(j)?;
                        if matches!(self.peek(k), b'\'' | b'"') {
                            let lit = self.literal_at(k).ok()??;
                            self.statement_ends.push(k);
                            self.push(k, lit, RefKind::Import);
                            return Some(());
                        }
                    }
                }
            }
        }
    }

    /// Skips `{ a, b as c, "d" as e }` at `j`; where it ends.
    fn named_list(&self, mut j: usize) -> Option<usize> {
        j += 1;
        loop {
            j = self.skip(j)?;
            match self.peek(j) {
                b'}' => return Some(j + 1),
                b',' => j += 1,
                b'\'' | b'"' => j = self.string_end(j)?,
                _ => {
                    let word = self.word_at(j);
                    if word.is_empty() {
                        return None;
                    }
                    j += word.len();
                }
            }
        }
    }

    /// `export` as a keyword ends at `self.i`: `export * [as x] from`, `export {...} from`.
    fn export(&mut self) -> Option<()> {
        let j = self.skip(self.i)?;
        let k = match self.peek(j) {
            b'*' => {
                let mut k = self.skip(j + 1)?;
                if self.word_at(k) == "as" {
                    k = self.skip(k + 2)?;
                    k = match self.peek(k) {
                        b'\'' | b'"' => self.string_end(k)?,
                        _ => k + self.word_at(k).len(),
                    };
                    k = self.skip(k)?;
                }
                if self.word_at(k) != "from" {
                    return None;
                }
                k
            }
            b'{' => {
                let k = self.skip(self.named_list(j)?)?;
                if self.word_at(k) != "from" {
                    return Some(());
                }
                k
            }
            _ => return Some(()),
        };
        let at = self.skip(k + 4)?;
        if !matches!(self.peek(at), b'\'' | b'"') {
            return None;
        }
        let lit = self.literal_at(at).ok()??;
        self.statement_ends.push(at);
        self.push(at, lit, RefKind::Import);
        Some(())
    }

    /// `new` ends at `self.i`: finds `new URL(<literal>, import.meta.url)`.
    fn new_url(&mut self) {
        let Some(found) = self.url_at(self.i) else {
            return;
        };
        let (k, lit, import) = found;
        self.url_imports.push(import);
        self.push(k, lit, RefKind::Url);
    }

    fn url_at(&self, j: usize) -> Option<(usize, (usize, String, bool), usize)> {
        let j = self.skip(j)?;
        if self.word_at(j) != "URL" {
            return None;
        }
        let j = self.skip(j + 3)?;
        if self.peek(j) != b'(' {
            return None;
        }
        let k = self.skip(j + 1)?;
        let lit = self.literal_at(k).ok()??;
        let mut j = self.skip(lit.0)?;
        if self.peek(j) != b',' {
            return None;
        }
        j = self.skip(j + 1)?;
        let import = j;
        for (n, part) in ["import", "meta", "url"].into_iter().enumerate() {
            if n > 0 {
                if self.peek(j) != b'.' {
                    return None;
                }
                j = self.skip(j + 1)?;
            }
            if self.word_at(j) != part {
                return None;
            }
            j = self.skip(j + part.len())?;
        }
        matches!(self.peek(j), b',' | b')').then_some((k, lit, import))
    }
}

//! Finding references in a JavaScript AST and swapping their specifiers for placeholders.
//!
//! Handles `import ... from`, side-effect `import`, `export * from`, `export {x} from`, dynamic
//! `import()` with a literal (or expression-free template) specifier, and
//! `new URL('...', import.meta.url)` (also inside `new Worker(...)`). Bare specifiers (`three`,
//! `@scope/pkg`, `#internal`) are references only when `[js.aliases]` maps them. Runs before
//! minification, so the minifier carries placeholders through as ordinary strings.

use std::collections::BTreeMap;

use crate::scan::Found;
use kiln_core::{Diagnostic, RefKind, RefSyntax, Reference};
use swc_core::common::{BytePos, Span};
use swc_core::ecma::ast::{
    CallExpr, Callee, ExportAll, Expr, ImportDecl, Lit, MemberProp, MetaPropKind, NamedExport,
    NewExpr, Str,
};
use swc_core::ecma::visit::{VisitMut, VisitMutWith};

/// The references of one file, one placeholder per distinct specifier (so the minifier can
/// still merge two imports of the same module). Shared by the tree walk and the scan.
pub struct Refs<'a> {
    pub aliases: &'a BTreeMap<String, String>,
    /// A short digest of the asset's logical path, making placeholders unique across files.
    pub salt: String,
    pub references: Vec<Reference>,
    /// Index into `references` by specifier.
    pub seen: BTreeMap<String, usize>,
}

impl Refs<'_> {
    /// Records `spec`, whose literal opens at 1-based `line`:`column` (its quote), and returns
    /// the placeholder to put in its place, or None to leave the string as it is (an unmapped
    /// bare specifier).
    pub fn add(&mut self, spec: &str, line: u32, column: u32, kind: RefKind) -> Option<String> {
        let target = if is_bare(spec) {
            Some(self.aliases.get(spec)?.clone())
        } else {
            None
        };
        if let Some(&i) = self.seen.get(spec) {
            let existing = &mut self.references[i];
            // A module both imported and import()ed is a static import (it loads eagerly anyway).
            if kind == RefKind::Import {
                existing.kind = RefKind::Import;
            }
            return Some(existing.placeholder.clone());
        }
        self.seen.insert(spec.to_owned(), self.references.len());
        let placeholder = format!("__kiln_{}_{}__", self.salt, self.references.len());
        self.references.push(Reference {
            placeholder: placeholder.clone(),
            specifier: spec.to_owned(),
            syntax: RefSyntax::JsString,
            kind,
            target,
            from: None,
            optional: false,
            line,
            // The literal's position is its quote's; point at the specifier itself.
            column: column + 1,
        });
        Some(placeholder)
    }
}

/// Replaces specifiers with placeholders, collecting the references and warnings.
pub struct RefCollector<'a> {
    pub path: &'a str,
    pub text: &'a str,
    /// Turns a span's position into a byte offset into `text`.
    pub offset: &'a dyn Fn(BytePos) -> usize,
    pub refs: Refs<'a>,
    pub diagnostics: Vec<Diagnostic>,
    /// Every specifier literal met, in the tree's order: an unminified build splices
    /// placeholders into the original text from these, numbered in source order as
    /// [`crate::scan`] numbers them.
    pub found: Vec<Found>,
}

/// A bare specifier: not relative, not absolute, not a URL.
fn is_bare(spec: &str) -> bool {
    let relative_or_absolute = spec.starts_with("./")
        || spec.starts_with("../")
        || spec.starts_with('/')
        || spec == "."
        || spec == "..";
    !relative_or_absolute && !spec.contains(':')
}

impl RefCollector<'_> {
    fn position(&self, span: Span) -> (u32, u32) {
        crate::line_col(self.text, (self.offset)(span.lo))
    }

    fn reference(
        &mut self,
        spec: &str,
        span: Span,
        kind: RefKind,
        template: bool,
    ) -> Option<String> {
        self.found.push(Found {
            lo: (self.offset)(span.lo),
            hi: (self.offset)(span.hi),
            spec: spec.to_owned(),
            kind,
            template,
        });
        let (line, column) = self.position(span);
        self.refs.add(spec, line, column, kind)
    }

    fn rewrite_str(&mut self, s: &mut Str, kind: RefKind) {
        let Some(spec) = s.value.as_str().map(str::to_owned) else {
            return;
        };
        if let Some(placeholder) = self.reference(&spec, s.span, kind, false) {
            s.value = placeholder.into();
            s.raw = None;
        }
    }

    /// The specifier argument of `import()` or `new URL()`: a string, or a template with no
    /// expressions; anything else is reported and left alone.
    fn rewrite_arg(&mut self, expr: &mut Expr, kind: RefKind, what: &str) {
        match expr {
            Expr::Lit(Lit::Str(s)) => self.rewrite_str(s, kind),
            Expr::Tpl(tpl) if tpl.exprs.is_empty() && tpl.quasis.len() == 1 => {
                let quasi = &tpl.quasis[0];
                let Some(spec) = quasi
                    .cooked
                    .as_ref()
                    .and_then(|c| c.as_str())
                    .map(str::to_owned)
                else {
                    return;
                };
                let span = tpl.span;
                if let Some(placeholder) = self.reference(&spec, span, kind, true) {
                    *expr = Expr::Lit(Lit::Str(Str {
                        span,
                        value: placeholder.into(),
                        raw: None,
                    }));
                }
            }
            other => {
                let span = swc_core::common::Spanned::span(other);
                let (line, column) = self.position(span);
                self.diagnostics.push(
                    Diagnostic::warning(
                        "computed-specifier",
                        self.path,
                        format!("{what} with a computed specifier is left as written"),
                    )
                    .at(line, column, Some(self.text))
                    .with_help("kiln can only fingerprint string-literal specifiers; the target must be reachable under its unhashed name"),
                );
            }
        }
    }
}

fn is_import_meta_url(expr: &Expr) -> bool {
    let Expr::Member(m) = expr else { return false };
    matches!(&*m.obj, Expr::MetaProp(p) if p.kind == MetaPropKind::ImportMeta)
        && matches!(&m.prop, MemberProp::Ident(i) if i.sym == "url")
}

impl VisitMut for RefCollector<'_> {
    fn visit_mut_import_decl(&mut self, n: &mut ImportDecl) {
        if !n.type_only {
            self.rewrite_str(&mut n.src, RefKind::Import);
        }
    }

    fn visit_mut_named_export(&mut self, n: &mut NamedExport) {
        if let Some(src) = &mut n.src {
            self.rewrite_str(src, RefKind::Import);
        }
    }

    fn visit_mut_export_all(&mut self, n: &mut ExportAll) {
        self.rewrite_str(&mut n.src, RefKind::Import);
    }

    fn visit_mut_call_expr(&mut self, n: &mut CallExpr) {
        if matches!(n.callee, Callee::Import(_))
            && let Some(arg) = n.args.first_mut()
            && arg.spread.is_none()
        {
            self.rewrite_arg(&mut arg.expr, RefKind::DynamicImport, "`import()`");
        }
        n.visit_mut_children_with(self);
    }

    fn visit_mut_new_expr(&mut self, n: &mut NewExpr) {
        let is_url = matches!(&*n.callee, Expr::Ident(i) if i.sym == "URL");
        if let (true, Some(args)) = (is_url, n.args.as_mut())
            && args.len() >= 2
            && is_import_meta_url(&args[1].expr)
            && args[0].spread.is_none()
        {
            self.rewrite_arg(
                &mut args[0].expr,
                RefKind::Url,
                "`new URL(..., import.meta.url)`",
            );
        }
        n.visit_mut_children_with(self);
    }
}

//! `url()` in custom properties (`--icon: url(images/x.svg)`).
//!
//! Browsers accept them, but a relative one is ambiguous: the spec resolves it where the
//! property is declared, older engines where `var()` uses it. lightningcss refuses to analyse
//! them for that reason. kiln resolves each against the stylesheet that declares it (as the spec
//! does) and writes it back as a root-absolute URL under `public_url`'s path, which means the same
//! thing wherever it is used; the link stage then fingerprints it like any other reference. One
//! that cannot be resolved (a missing file, something outside the source folder) is left as
//! written with a warning instead of failing the build: a browser only fetches it if a rule uses
//! it.

use kiln_core::url::{Specifier, classify, encode_path};
use lightningcss::properties::Property;
use lightningcss::properties::custom::{TokenList, TokenOrValue};
use lightningcss::rules::CssRule;
use lightningcss::values::url::Url;
use lightningcss::visit_types;
use lightningcss::visitor::{Visit, VisitTypes, Visitor};

/// The stand-in for a URL left as written: root-absolute so the printer accepts it, then swapped
/// back by the transformer. Numbered in `CustomPropertyUrls::kept`.
pub(crate) const KEPT: &str = "/__kiln_custom_property_url__/";

/// Rewrites relative `url()`s in custom properties; see the module documentation.
pub(crate) struct CustomPropertyUrls<'a> {
    /// The logical path of each source of the sheet (one, or the bundle's files).
    pub sources: &'a [String],
    /// `public_url`'s path.
    pub public_path: &'a str,
    /// Whether a logical path is in the build.
    pub exists: &'a dyn Fn(&str) -> bool,
    /// The source of the rule being visited.
    current: usize,
    /// URLs left as written, with the logical path of the file declaring each.
    pub kept: Vec<(String, String)>,
}

impl<'a> CustomPropertyUrls<'a> {
    pub(crate) fn new(
        sources: &'a [String],
        public_path: &'a str,
        exists: &'a dyn Fn(&str) -> bool,
    ) -> Self {
        CustomPropertyUrls {
            sources,
            public_path,
            exists,
            current: 0,
            kept: Vec::new(),
        }
    }

    fn tokens(&mut self, list: &mut TokenList<'_>) {
        for token in &mut list.0 {
            match token {
                TokenOrValue::Url(url) => self.url(url),
                TokenOrValue::Function(f) => self.tokens(&mut f.arguments),
                TokenOrValue::Var(v) => {
                    if let Some(fallback) = &mut v.fallback {
                        self.tokens(fallback);
                    }
                }
                TokenOrValue::Env(e) => {
                    if let Some(fallback) = &mut e.fallback {
                        self.tokens(fallback);
                    }
                }
                _ => {}
            }
        }
    }

    fn url(&mut self, url: &mut Url<'_>) {
        if url.is_absolute() {
            return;
        }
        let from = self
            .sources
            .get(self.current)
            .or(self.sources.first())
            .map_or("", String::as_str);
        let absolute = match classify(&url.url, from, self.public_path) {
            Specifier::Internal {
                logical, suffix, ..
            } if (self.exists)(&logical) => Some(format!(
                "{}{}{suffix}",
                self.public_path,
                encode_path(&logical)
            )),
            _ => None,
        };
        url.url = match absolute {
            Some(absolute) => absolute.into(),
            None => {
                self.kept.push((url.url.to_string(), from.to_owned()));
                format!("{KEPT}{}", self.kept.len() - 1).into()
            }
        };
    }
}

impl<'i> Visitor<'i> for CustomPropertyUrls<'_> {
    type Error = std::convert::Infallible;

    fn visit_types(&self) -> VisitTypes {
        visit_types!(RULES | PROPERTIES)
    }

    fn visit_rule(&mut self, rule: &mut CssRule<'i>) -> Result<(), Self::Error> {
        if let CssRule::Style(style) = rule {
            self.current = style.loc.source_index as usize;
        }
        rule.visit_children(self)
    }

    fn visit_property(&mut self, property: &mut Property<'i>) -> Result<(), Self::Error> {
        if let Property::Custom(custom) = property {
            self.tokens(&mut custom.value);
        }
        Ok(())
    }
}

//! Globs of logical paths, as `exclude`, `[[images.overrides]] paths` and `[[deploy.headers]]
//! paths` take them, and the logical path of a file under the source root.

use std::path::Path;

use globset::{Glob, GlobSet, GlobSetBuilder};

/// `a/b/c.css` from a relative path, or None when a component is not UTF-8.
pub(crate) fn logical_path(rel: &Path) -> Option<String> {
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

/// Globs of logical paths, as `exclude` and `[[images.overrides]] paths` take them: one with a
/// `/` matches the whole logical path, one without matches any component (a file or folder name).
#[derive(Debug, Clone)]
pub struct PathGlobs {
    whole: GlobSet,
    component: GlobSet,
}

impl PathGlobs {
    /// Compiles `globs` (validated by [`Config::validate`](crate::config::Config::validate); an invalid one is skipped).
    pub fn new(globs: &[String]) -> Self {
        let mut whole = GlobSetBuilder::new();
        let mut component = GlobSetBuilder::new();
        for g in globs {
            // Validated in Config::validate; an invalid glob here is skipped rather than panicking.
            let Ok(glob) = Glob::new(g.trim_start_matches('/')) else {
                continue;
            };
            if g.contains('/') {
                whole.add(glob);
            } else {
                component.add(glob);
            }
        }
        PathGlobs {
            whole: whole.build().unwrap_or_else(|_| GlobSet::empty()),
            component: component.build().unwrap_or_else(|_| GlobSet::empty()),
        }
    }

    /// Whether a logical path (`img/icons/a.png`) matches.
    pub fn matches(&self, logical: &str) -> bool {
        self.whole.is_match(logical) || logical.split('/').any(|c| self.component.is_match(c))
    }

    /// Whether the walker should skip `rel`: its own name or its whole path matches (its
    /// folders were checked when the walker entered them).
    pub(crate) fn is_excluded(&self, rel: &Path) -> bool {
        let name = rel.file_name().unwrap_or_default();
        self.component.is_match(name) || logical_path(rel).is_some_and(|l| self.whole.is_match(l))
    }
}

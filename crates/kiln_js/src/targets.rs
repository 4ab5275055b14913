//! The ECMAScript version the minifier may write for the configured browserslist targets.
//!
//! swc's minifier does not down-level syntax; its `ecma` option bounds the syntax it may
//! *introduce* (arrow functions, `??=`, ...). So the version is the newest one every target
//! browser supports. The table is the first version of each engine with full support for that
//! edition's syntax (compat-table, as esbuild records it). Browsers not in the table are ignored;
//! Internet Explorer pins ES5.

use swc_core::ecma::ast::EsVersion;

/// (edition, [(browserslist name, first full version)])
const TABLE: &[(EsVersion, &[(&str, f32)])] = &[
    (
        EsVersion::Es2015,
        &[
            ("chrome", 51.0),
            ("edge", 15.0),
            ("firefox", 54.0),
            ("safari", 10.0),
            ("ios_saf", 10.0),
            ("opera", 38.0),
            ("samsung", 5.0),
            ("and_chr", 51.0),
            ("and_ff", 54.0),
        ],
    ),
    (
        EsVersion::Es2016,
        &[
            ("chrome", 52.0),
            ("edge", 15.0),
            ("firefox", 54.0),
            ("safari", 10.1),
            ("ios_saf", 10.3),
            ("opera", 39.0),
            ("samsung", 6.0),
            ("and_chr", 52.0),
            ("and_ff", 54.0),
        ],
    ),
    (
        EsVersion::Es2017,
        &[
            ("chrome", 55.0),
            ("edge", 15.0),
            ("firefox", 54.0),
            ("safari", 11.0),
            ("ios_saf", 11.0),
            ("opera", 42.0),
            ("samsung", 6.0),
            ("and_chr", 55.0),
            ("and_ff", 54.0),
        ],
    ),
    (
        EsVersion::Es2018,
        &[
            ("chrome", 64.0),
            ("edge", 79.0),
            ("firefox", 58.0),
            ("safari", 12.0),
            ("ios_saf", 12.0),
            ("opera", 51.0),
            ("samsung", 9.0),
            ("and_chr", 64.0),
            ("and_ff", 58.0),
        ],
    ),
    (
        EsVersion::Es2019,
        &[
            ("chrome", 66.0),
            ("edge", 79.0),
            ("firefox", 58.0),
            ("safari", 12.0),
            ("ios_saf", 12.0),
            ("opera", 53.0),
            ("samsung", 9.0),
            ("and_chr", 66.0),
            ("and_ff", 58.0),
        ],
    ),
    (
        EsVersion::Es2020,
        &[
            ("chrome", 80.0),
            ("edge", 80.0),
            ("firefox", 74.0),
            ("safari", 13.1),
            ("ios_saf", 13.4),
            ("opera", 67.0),
            ("samsung", 13.0),
            ("and_chr", 80.0),
            ("and_ff", 79.0),
        ],
    ),
    (
        EsVersion::Es2021,
        &[
            ("chrome", 85.0),
            ("edge", 85.0),
            ("firefox", 79.0),
            ("safari", 14.0),
            ("ios_saf", 14.0),
            ("opera", 71.0),
            ("samsung", 14.0),
            ("and_chr", 85.0),
            ("and_ff", 79.0),
        ],
    ),
    (
        EsVersion::Es2022,
        &[
            ("chrome", 94.0),
            ("edge", 94.0),
            ("firefox", 93.0),
            ("safari", 16.4),
            ("ios_saf", 16.4),
            ("opera", 80.0),
            ("samsung", 17.0),
            ("and_chr", 94.0),
            ("and_ff", 93.0),
        ],
    ),
];

/// The newest edition every `(browser, version)` supports; `fallback` when the list is empty or
/// names only browsers the table does not know.
pub fn es_version(browsers: &[(String, String)], fallback: EsVersion) -> EsVersion {
    let known: Vec<(&str, (u32, u32))> = browsers
        .iter()
        .filter_map(|(name, version)| {
            if name == "ie" {
                return Some(("ie", (0, 0)));
            }
            let in_table = TABLE[0].1.iter().any(|(n, _)| n == name);
            in_table.then(|| (name.as_str(), first_version(version)))
        })
        .collect();
    if known.is_empty() {
        return fallback;
    }
    let mut best = EsVersion::Es5;
    for (edition, minimums) in TABLE {
        let all = known.iter().all(|(name, v)| {
            minimums
                .iter()
                .find(|(n, _)| n == name)
                .is_some_and(|(_, min)| *v >= table_version(*min))
        });
        if !all {
            break;
        }
        best = *edition;
    }
    best
}

/// `15.2-15.3` -> (15, 2); `all` and unparsable -> (0, 0).
fn first_version(v: &str) -> (u32, u32) {
    let first = v.split('-').next().unwrap_or("");
    let mut parts = first.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// The table's `16.4` as (16, 4): its versions have at most one decimal digit.
fn table_version(v: f32) -> (u32, u32) {
    let major = v.trunc();
    (major as u32, ((v - major) * 10.0).round() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_oldest_browser_decides() {
        assert_eq!(
            es_version(&b(&[("chrome", "120"), ("safari", "16.4")]), EsVersion::Es5),
            EsVersion::Es2022
        );
        assert_eq!(
            es_version(&b(&[("chrome", "120"), ("safari", "13.1")]), EsVersion::Es5),
            EsVersion::Es2020
        );
        assert_eq!(
            es_version(&b(&[("chrome", "120"), ("ie", "11")]), EsVersion::Es5),
            EsVersion::Es5
        );
        assert_eq!(
            es_version(&b(&[("ios_saf", "15.2-15.3")]), EsVersion::Es5),
            EsVersion::Es2021
        );
        assert_eq!(
            es_version(&b(&[("safari", "16.10")]), EsVersion::Es5),
            EsVersion::Es2022,
            "16.10 > 16.4"
        );
    }

    #[test]
    fn unknown_browsers_fall_back() {
        assert_eq!(
            es_version(&b(&[("op_mini", "all")]), EsVersion::Es2015),
            EsVersion::Es2015
        );
        assert_eq!(es_version(&[], EsVersion::Es5), EsVersion::Es5);
    }
}

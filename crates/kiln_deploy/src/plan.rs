//! Plan: a pure function from (the local build, the bucket's listing, the ledger, the settings,
//! the time) to the actions a deploy takes, each with its reason, and the ledger it leaves.
//!
//! No I/O happens here, so every rule (what is uploaded, in which phase, what is pruned) is
//! tested without a server; [`crate::apply`] carries a plan out.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::ledger::{Ledger, ObjectRecord, Release, age, rfc3339};
use crate::local::{Class, Headers, LocalBuild};

/// An object as the bucket's listing shows it (key relative to the prefix).
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteObject {
    /// Size in bytes.
    pub size: u64,
    /// Its ETag, quotes included.
    pub etag: Option<String>,
    /// When the store last wrote it.
    pub last_modified: SystemTime,
}

/// What a HEAD request told of an object kiln's ledger does not know.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteHead {
    /// Its `x-amz-meta-kiln-sha256`, if kiln uploaded it.
    pub sha256: Option<String>,
    /// Its headers.
    pub headers: Headers,
}

/// The remote side.
#[derive(Debug, Default)]
pub struct Remote {
    /// Every object under the prefix.
    pub objects: BTreeMap<String, RemoteObject>,
    /// HEAD results for objects that are listed but not in the ledger (see [`Plan::needs_head`]).
    pub heads: BTreeMap<String, RemoteHead>,
    /// The ledger (default when there is none yet).
    pub ledger: Ledger,
}

/// Why an object is uploaded or deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Not in the bucket.
    New,
    /// The bucket's copy has other bytes.
    ContentChanged,
    /// Same bytes, but its Cache-Control, Content-Type or Content-Encoding changed.
    HeadersChanged,
    /// The object was replaced or changed in the bucket since kiln uploaded it.
    ChangedInBucket,
    /// No release among the last `keep_releases` has it, and it left them (and was uploaded)
    /// more than `grace` ago.
    Unreferenced,
}

impl Reason {
    /// The reason in words.
    pub fn describe(&self) -> &'static str {
        match self {
            Reason::New => "new",
            Reason::ContentChanged => "content changed",
            Reason::HeadersChanged => "headers changed",
            Reason::ChangedInBucket => "changed in the bucket since kiln uploaded it",
            Reason::Unreferenced => "in none of the releases kept, past the grace period",
        }
    }
}

/// One planned upload.
#[derive(Debug, Clone, Serialize)]
pub struct Upload {
    /// Path relative to the output folder (and key relative to the prefix).
    pub path: String,
    /// The phase it is uploaded in.
    pub class: Class,
    /// Why.
    pub reason: Reason,
    /// Bytes.
    pub size: u64,
}

/// One planned deletion.
#[derive(Debug, Clone, Serialize)]
pub struct Delete {
    /// Key relative to the prefix.
    pub path: String,
    /// Why.
    pub reason: Reason,
}

/// What a deploy will do.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The release being deployed.
    pub release: String,
    /// Uploads, hashed files first, then unhashed, then manifests (kiln's `manifest.json` last).
    pub uploads: Vec<Upload>,
    /// Objects to delete after the release is in place.
    pub deletes: Vec<Delete>,
    /// Files already in the bucket as they are.
    pub unchanged: usize,
    /// Paths to purge from the CDN afterwards: the unhashed files and manifests uploaded, and
    /// those of an earlier deploy whose purge failed (empty without `[deploy.cdn]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub purge: Vec<String>,
    /// The bucket's CORS origins, when they change (an empty list removes kiln's rules).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors: Option<Vec<String>>,
    /// The ledger after the deploy (ETags of uploads are filled in as they complete).
    #[serde(skip)]
    pub ledger: Ledger,
    /// Whether the ledger changes at all (false: the deploy has nothing to do).
    #[serde(skip)]
    pub ledger_changed: bool,
}

/// The settings a plan depends on.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `keep_releases`.
    pub keep_releases: usize,
    /// `grace`.
    pub grace: Duration,
    /// A CDN is configured to be purged.
    pub purge: bool,
    /// `cors_origins`.
    pub cors_origins: Vec<String>,
}

/// ETags compared without their quotes (stores quote them differently in PUT answers and
/// listings).
fn same_etag(a: &Option<String>, b: &Option<String>) -> bool {
    let bare = |e: &Option<String>| e.as_deref().map(|e| e.trim_matches('"').to_owned());
    bare(a) == bare(b)
}

/// Whether an object stored with `stored` headers serves `wanted`. A generic
/// `application/octet-stream` ("unknown") may come back as a type the store guessed from the
/// key's extension, as SeaweedFS does.
fn stored_as(stored: &Headers, wanted: &Headers) -> bool {
    stored.cache_control == wanted.cache_control
        && stored.content_encoding == wanted.content_encoding
        && (stored.content_type == wanted.content_type
            || wanted.content_type == "application/octet-stream")
}

/// The paths of `build` that are listed in the bucket but unknown to the ledger: their HEAD
/// (content hash and headers) decides whether they need uploading.
pub fn needs_head(build: &LocalBuild, remote: &Remote) -> Vec<String> {
    build
        .files
        .iter()
        .filter(|f| {
            remote
                .objects
                .get(&f.path)
                .is_some_and(|o| o.size == f.size)
                && !remote.ledger.objects.contains_key(&f.path)
        })
        .map(|f| f.path.clone())
        .collect()
}

/// Plans deploying `build` over `remote` at `now`. Local files listed by [`needs_head`] must have
/// their `sha256` set.
pub fn plan(build: &LocalBuild, remote: &Remote, settings: &Settings, now: SystemTime) -> Plan {
    let now_text = rfc3339(now);
    let old = &remote.ledger;
    let mut ledger = Ledger {
        version: crate::ledger::LEDGER_VERSION,
        releases: Vec::new(),
        objects: BTreeMap::new(),
        cors: settings.cors_origins.clone(),
        purge: Vec::new(),
    };
    let mut uploads = Vec::new();
    let mut unchanged = 0;
    for file in &build.files {
        let listed = remote.objects.get(&file.path);
        let known = old.objects.get(&file.path);
        let reason = match (listed, known) {
            (None, _) => Some(Reason::New),
            (Some(listed), Some(known)) => {
                if listed.size != known.size
                    || (known.etag.is_some() && !same_etag(&listed.etag, &known.etag))
                {
                    Some(Reason::ChangedInBucket)
                } else if known.size != file.size
                    || file.sha256.as_ref().is_some_and(|s| *s != known.sha256)
                {
                    Some(Reason::ContentChanged)
                } else if known.headers != file.headers {
                    Some(Reason::HeadersChanged)
                } else {
                    None
                }
            }
            (Some(listed), None) => match remote.heads.get(&file.path) {
                Some(head)
                    if listed.size == file.size
                        && head.sha256.is_some()
                        && head.sha256 == file.sha256 =>
                {
                    (!stored_as(&head.headers, &file.headers)).then_some(Reason::HeadersChanged)
                }
                _ => Some(Reason::ContentChanged),
            },
        };
        let record = match (&reason, listed, known) {
            (None, _, Some(known)) => ObjectRecord {
                retired: None,
                ..known.clone()
            },
            // Found in the bucket as it should be (uploaded by kiln with a lost ledger): adopted.
            (None, Some(listed), None) => ObjectRecord {
                sha256: file.sha256.clone().unwrap_or_default(),
                size: file.size,
                etag: listed.etag.clone(),
                headers: file.headers.clone(),
                uploaded: rfc3339(listed.last_modified),
                retired: None,
            },
            _ => ObjectRecord {
                // Filled in when uploaded (a fingerprinted file's hash is computed then).
                sha256: file.sha256.clone().unwrap_or_default(),
                size: file.size,
                etag: None,
                headers: file.headers.clone(),
                uploaded: now_text.clone(),
                retired: None,
            },
        };
        ledger.objects.insert(file.path.clone(), record);
        match reason {
            Some(reason) => uploads.push(Upload {
                path: file.path.clone(),
                class: file.class,
                reason,
                size: file.size,
            }),
            None => unchanged += 1,
        }
    }
    // Phases: hashed, unhashed, manifests; within a phase by path, except that kiln's own
    // manifest, the one `kiln deploy` and `kiln verify` read, is the very last object written.
    uploads.sort_by(|a, b| {
        (a.class, a.path == "manifest.json", &a.path).cmp(&(
            b.class,
            b.path == "manifest.json",
            &b.path,
        ))
    });

    let release_id = build.manifest_sha256[..16].to_owned();
    let keys: Vec<String> = build.files.iter().map(|f| f.path.clone()).collect();
    let current = match old.releases.first() {
        Some(r) if r.id == release_id && r.keys == keys => r.clone(),
        _ => Release {
            id: release_id.clone(),
            time: now_text.clone(),
            keys,
        },
    };
    ledger.releases.push(current);
    ledger.releases.extend(
        old.releases
            .iter()
            .filter(|r| r.id != release_id)
            .take(settings.keep_releases.saturating_sub(1))
            .cloned(),
    );
    let kept: BTreeSet<&str> = ledger
        .releases
        .iter()
        .flat_map(|r| r.keys.iter().map(String::as_str))
        .collect();

    // Objects only older releases have: kept while a kept release has them; then, from the
    // deploy that drops their last kept release (`retired`), for the grace period; then deleted
    // (if still in the bucket; otherwise just forgotten).
    let mut deletes = Vec::new();
    for (path, record) in &old.objects {
        if ledger.objects.contains_key(path) {
            continue;
        }
        if kept.contains(path.as_str()) {
            ledger.objects.insert(
                path.clone(),
                ObjectRecord {
                    retired: None,
                    ..record.clone()
                },
            );
            continue;
        }
        let retired = record.retired.clone().unwrap_or_else(|| now_text.clone());
        let past_grace =
            age(&retired, now) >= settings.grace && age(&record.uploaded, now) >= settings.grace;
        if !past_grace {
            ledger.objects.insert(
                path.clone(),
                ObjectRecord {
                    retired: Some(retired),
                    ..record.clone()
                },
            );
        } else if remote.objects.contains_key(path) {
            deletes.push(Delete {
                path: path.clone(),
                reason: Reason::Unreferenced,
            });
        }
    }
    // What a CDN may hold an old copy of: names that are not content hashes. A new one too (an
    // edge may have cached its 404).
    let purge: Vec<String> = if settings.purge {
        let mut purge: BTreeSet<String> = old.purge.iter().cloned().collect();
        purge.extend(
            uploads
                .iter()
                .filter(|u| u.class != Class::Hashed)
                .map(|u| u.path.clone()),
        );
        purge.into_iter().collect()
    } else {
        Vec::new()
    };
    // Recorded as pending with the release; cleared once the purge succeeded.
    ledger.purge = purge.clone();
    let cors = (old.cors != settings.cors_origins).then(|| settings.cors_origins.clone());
    let ledger_changed = ledger != *old;
    Plan {
        release: release_id,
        uploads,
        deletes,
        unchanged,
        purge,
        cors,
        ledger,
        ledger_changed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::{IMMUTABLE, LocalFile, REVALIDATE};

    fn file(path: &str, class: Class, size: u64, sha: Option<&str>) -> LocalFile {
        LocalFile {
            path: path.to_owned(),
            class,
            headers: headers(if class == Class::Hashed {
                IMMUTABLE
            } else {
                REVALIDATE
            }),
            size,
            sha256: sha.map(str::to_owned),
            integrity: None,
        }
    }

    fn headers(cc: &str) -> Headers {
        Headers {
            content_type: "text/css; charset=utf-8".to_owned(),
            cache_control: cc.to_owned(),
            content_encoding: None,
        }
    }

    fn build(id: &str, files: Vec<LocalFile>) -> LocalBuild {
        LocalBuild {
            out: "out".into(),
            public_url: "/static/".into(),
            manifest_sha256: format!("{id:0<64}"),
            files,
        }
    }

    const SETTINGS: Settings = Settings {
        keep_releases: 2,
        grace: Duration::ZERO,
        purge: false,
        cors_origins: Vec::new(),
    };

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    /// The bucket after applying `plan` (uploads land with a made-up ETag).
    fn applied(plan: &Plan, mut remote: Remote, now: SystemTime) -> Remote {
        let mut ledger = plan.ledger.clone();
        for u in &plan.uploads {
            let etag = format!("\"{}-{}\"", u.path, u.size);
            let rec = ledger.objects.get_mut(&u.path).unwrap();
            rec.etag = Some(etag.clone());
            if rec.sha256.is_empty() {
                rec.sha256 = format!("sha-of-{}", u.path);
            }
            remote.objects.insert(
                u.path.clone(),
                RemoteObject {
                    size: u.size,
                    etag: Some(etag),
                    last_modified: now,
                },
            );
        }
        for d in &plan.deletes {
            remote.objects.remove(&d.path);
        }
        remote.ledger = ledger;
        remote
    }

    fn paths(plan: &Plan) -> Vec<&str> {
        plan.uploads.iter().map(|u| u.path.as_str()).collect()
    }

    #[test]
    fn first_deploy_uploads_everything_hashed_first_and_kilns_manifest_last() {
        let b = build(
            "a",
            vec![
                file("app.css", Class::Unhashed, 5, Some("s1")),
                file("app.1111.css", Class::Hashed, 5, None),
                file("manifest.json", Class::Manifest, 9, Some("m")),
                file("staticfiles.json", Class::Manifest, 9, Some("d")),
                file("z.2222.js", Class::Hashed, 7, None),
            ],
        );
        let p = plan(&b, &Remote::default(), &SETTINGS, t(0));
        assert_eq!(
            paths(&p),
            [
                "app.1111.css",
                "z.2222.js",
                "app.css",
                "staticfiles.json",
                "manifest.json"
            ]
        );
        assert!(p.uploads.iter().all(|u| u.reason == Reason::New));
        assert!(p.deletes.is_empty() && p.ledger_changed);
    }

    #[test]
    fn a_cdn_is_purged_of_changed_unhashed_names_until_a_purge_succeeds() {
        let cdn = Settings {
            purge: true,
            ..SETTINGS
        };
        let files = |css: &str| {
            vec![
                file("app.css", Class::Unhashed, 5, Some(css)),
                file("app.1111.css", Class::Hashed, 5, None),
                file("logo.svg", Class::Unhashed, 3, Some("l")),
                file("staticfiles.json", Class::Manifest, 9, Some(css)),
            ]
        };
        let p = plan(&build("a", files("s1")), &Remote::default(), &cdn, t(0));
        // Fingerprinted names never need purging; new unhashed ones may be cached 404s.
        assert_eq!(p.purge, ["app.css", "logo.svg", "staticfiles.json"]);
        assert_eq!(
            p.ledger.purge, p.purge,
            "recorded as pending with the release"
        );
        // That purge failed (the ledger still lists it): the next deploy purges it with its own.
        let remote = applied(&p, Remote::default(), t(0));
        let p2 = plan(&build("b", files("s2")), &remote, &cdn, t(10));
        assert_eq!(p2.purge, ["app.css", "logo.svg", "staticfiles.json"]);
        // It succeeded: only what changed since.
        let mut remote = applied(&p, Remote::default(), t(0));
        remote.ledger.purge.clear();
        let p3 = plan(&build("b", files("s2")), &remote, &cdn, t(10));
        assert_eq!(p3.purge, ["app.css", "staticfiles.json"]);
        // Without a CDN nothing is purged, nor kept pending.
        let p4 = plan(
            &build("b", files("s2")),
            &applied(&p, Remote::default(), t(0)),
            &SETTINGS,
            t(10),
        );
        assert!(p4.purge.is_empty() && p4.ledger.purge.is_empty());
    }

    #[test]
    fn cors_origins_are_set_when_they_change_and_removed_when_emptied() {
        let b = build("a", vec![file("app.1111.css", Class::Hashed, 5, None)]);
        let cors = Settings {
            cors_origins: vec!["https://www.example.com".to_owned()],
            ..SETTINGS
        };
        let p = plan(&b, &Remote::default(), &cors, t(0));
        assert_eq!(p.cors.as_deref(), Some(&cors.cors_origins[..]));
        let remote = applied(&p, Remote::default(), t(0));
        let same = plan(&b, &remote, &cors, t(10));
        assert!(same.cors.is_none() && !same.ledger_changed);
        let removed = plan(&b, &remote, &SETTINGS, t(20));
        assert_eq!(removed.cors, Some(Vec::new()));
        assert!(removed.ledger_changed);
    }

    #[test]
    fn nothing_changed_plans_nothing_and_keeps_the_ledger() {
        let b = build(
            "a",
            vec![
                file("app.1111.css", Class::Hashed, 5, None),
                file("manifest.json", Class::Manifest, 9, Some("m")),
            ],
        );
        let p = plan(&b, &Remote::default(), &SETTINGS, t(0));
        let remote = applied(&p, Remote::default(), t(0));
        let again = plan(&b, &remote, &SETTINGS, t(60));
        assert!(again.uploads.is_empty() && again.deletes.is_empty());
        assert_eq!(again.unchanged, 2);
        assert!(!again.ledger_changed, "a no-op deploy writes nothing");
    }

    #[test]
    fn changed_content_headers_and_bucket_copies_are_uploaded_again() {
        let b = build(
            "a",
            vec![
                file("app.css", Class::Unhashed, 5, Some("s1")),
                file("x.1111.css", Class::Hashed, 5, None),
                file("y.2222.css", Class::Hashed, 5, None),
            ],
        );
        let p = plan(&b, &Remote::default(), &SETTINGS, t(0));
        let mut remote = applied(&p, Remote::default(), t(0));
        // Someone replaced y in the bucket.
        remote.objects.get_mut("y.2222.css").unwrap().etag = Some("\"other\"".into());
        let mut b2 = build(
            "b",
            vec![
                file("app.css", Class::Unhashed, 5, Some("s2")),
                file("x.1111.css", Class::Hashed, 5, None),
                file("y.2222.css", Class::Hashed, 5, None),
            ],
        );
        b2.files[1].headers = headers("public, max-age=10");
        let p2 = plan(&b2, &remote, &SETTINGS, t(10));
        let reasons: Vec<(&str, Reason)> = p2
            .uploads
            .iter()
            .map(|u| (u.path.as_str(), u.reason.clone()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("x.1111.css", Reason::HeadersChanged),
                ("y.2222.css", Reason::ChangedInBucket),
                ("app.css", Reason::ContentChanged),
            ]
        );
    }

    #[test]
    fn objects_kiln_did_not_record_are_adopted_when_their_hash_and_headers_match() {
        let b = build(
            "a",
            vec![
                file("same.1111.css", Class::Hashed, 5, Some("h1")),
                file("other.2222.css", Class::Hashed, 5, Some("h2")),
                file("foreign.3333.css", Class::Hashed, 5, Some("h3")),
            ],
        );
        let mut remote = Remote::default();
        for path in ["same.1111.css", "other.2222.css", "foreign.3333.css"] {
            remote.objects.insert(
                path.to_owned(),
                RemoteObject {
                    size: 5,
                    etag: Some("\"e\"".into()),
                    last_modified: t(0),
                },
            );
        }
        assert_eq!(needs_head(&b, &remote).len(), 3);
        remote.heads.insert(
            "same.1111.css".into(),
            RemoteHead {
                sha256: Some("h1".into()),
                headers: headers(IMMUTABLE),
            },
        );
        remote.heads.insert(
            "other.2222.css".into(),
            RemoteHead {
                sha256: Some("h1".into()),
                headers: headers(IMMUTABLE),
            },
        );
        remote.heads.insert(
            "foreign.3333.css".into(),
            RemoteHead {
                sha256: None,
                headers: headers(IMMUTABLE),
            },
        );
        let p = plan(&b, &remote, &SETTINGS, t(5));
        assert_eq!(paths(&p), ["foreign.3333.css", "other.2222.css"]);
        assert_eq!(p.ledger.objects["same.1111.css"].sha256, "h1");
    }

    #[test]
    fn pruning_keeps_the_last_releases_and_waits_for_the_grace_period() {
        let versions = ["a", "b", "c"];
        let mut remote = Remote::default();
        let mut plans = Vec::new();
        for (i, v) in versions.iter().enumerate() {
            let b = build(
                v,
                vec![
                    file(&format!("app.{v}.css"), Class::Hashed, 5, None),
                    file("logo.1111.png", Class::Hashed, 50, None),
                    file("manifest.json", Class::Manifest, 9, Some(v)),
                ],
            );
            let p = plan(&b, &remote, &SETTINGS, t(100 * i as u64));
            remote = applied(&p, remote, t(100 * i as u64));
            plans.push(p);
        }
        // keep_releases = 2: the third deploy drops release a, so app.a.css goes; the shared
        // logo and the manifest stay.
        assert!(plans[1].deletes.is_empty());
        let deleted: Vec<&str> = plans[2].deletes.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(deleted, ["app.a.css"]);
        assert_eq!(plans[2].ledger.releases.len(), 2);
        assert!(remote.objects.contains_key("app.b.css"));
        assert!(!remote.ledger.objects.contains_key("app.a.css"));
        // Release b is still kept: its files are not retired.
        assert!(remote.ledger.objects["app.b.css"].retired.is_none());

        // With a grace period, nothing younger than it since it left the release is deleted.
        let graced = Settings {
            grace: Duration::from_secs(3600),
            ..SETTINGS
        };
        let b = build(
            "d",
            vec![
                file("app.d.css", Class::Hashed, 5, None),
                file("manifest.json", Class::Manifest, 9, Some("d")),
            ],
        );
        let p = plan(&b, &remote, &graced, t(300));
        assert!(p.deletes.is_empty(), "{:?}", p.deletes);
        assert!(p.ledger.objects.contains_key("app.b.css"));
        let remote = applied(&p, remote, t(300));
        let p = plan(&b, &remote, &graced, t(300 + 3600));
        let deleted: Vec<&str> = p.deletes.iter().map(|d| d.path.as_str()).collect();
        // b left the kept releases at t(300) and is past the grace now; release c (still kept)
        // has the logo and app.c.css. (Counting from when b left the *current* release, t(200),
        // would have deleted it at t(3800) already.)
        let early = plan(&b, &remote, &graced, t(200 + 3600));
        assert!(early.deletes.is_empty(), "{:?}", early.deletes);
        assert_eq!(deleted, ["app.b.css"]);
        assert!(p.ledger.objects.contains_key("logo.1111.png"));
    }

    #[test]
    fn redeploying_an_older_release_moves_it_to_the_front() {
        let mut remote = Remote::default();
        let make = |v: &str| {
            build(
                v,
                vec![
                    file(&format!("app.{v}.css"), Class::Hashed, 5, None),
                    file("manifest.json", Class::Manifest, 9, Some(v)),
                ],
            )
        };
        for (i, v) in ["a", "b", "a"].iter().enumerate() {
            let p = plan(&make(v), &remote, &SETTINGS, t(i as u64));
            remote = applied(&p, remote, t(i as u64));
        }
        let ids: Vec<&str> = remote.ledger.releases.iter().map(|r| &r.id[..1]).collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(remote.objects.contains_key("app.b.css"));
    }
}

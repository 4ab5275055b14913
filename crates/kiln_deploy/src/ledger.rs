//! The release ledger (`<prefix>.kiln/releases.json` in the bucket) and the deploy lock
//! (`<prefix>.kiln/lock.json`).
//!
//! The ledger is kiln's record of what it put in the bucket: every object it uploaded (content
//! hash, size, ETag, headers, when it was uploaded and when it left the current release) and the
//! keys of the last `keep_releases` releases. Comparing a build with it takes one listing and
//! two GETs (ledger and lock), where reading each object's metadata would take a HEAD per object. Only keys in the
//! ledger are ever deleted, so other keys in the bucket are never touched. Keys in it are relative
//! to the prefix. Written with a conditional put, so two deploys cannot both update it.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::local::Headers;

/// The ledger's key, relative to the prefix.
pub const LEDGER_KEY: &str = ".kiln/releases.json";
/// The lock's key, relative to the prefix.
pub const LOCK_KEY: &str = ".kiln/lock.json";
/// The ledger format's version.
pub const LEDGER_VERSION: u32 = 1;

/// The ledger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// Format version.
    pub version: u32,
    /// The last releases, newest first.
    pub releases: Vec<Release>,
    /// Every object kiln uploaded and has not deleted, by path relative to the prefix.
    pub objects: BTreeMap<String, ObjectRecord>,
    /// The origins of the bucket's CORS rules, as kiln last set them (`[deploy] cors_origins`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cors: Vec<String>,
    /// Paths changed by a deploy whose CDN purge has not succeeded yet: the next deploy purges
    /// them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purge: Vec<String>,
}

/// One deployed build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// The first 16 hex digits of the SHA-256 of its kiln `manifest.json`.
    pub id: String,
    /// When it was deployed (RFC 3339).
    pub time: String,
    /// Its keys, relative to the prefix (its files' paths, manifests last).
    pub keys: Vec<String>,
}

/// An object kiln uploaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// Hex SHA-256 of its bytes (also stored on the object as `x-amz-meta-kiln-sha256`).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// The ETag the store gave it, to notice an object replaced behind kiln's back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Its headers.
    #[serde(flatten)]
    pub headers: Headers,
    /// When it was uploaded (RFC 3339).
    pub uploaded: String,
    /// When it left the last `keep_releases` releases (RFC 3339); unset while one of them has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<String>,
}

/// The lock a deploy holds while it changes the bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lock {
    /// The host and process that holds it.
    pub holder: String,
    /// When it was taken (RFC 3339).
    pub since: String,
    /// When it lapses unless renewed (RFC 3339): a deploy that died holds it until then.
    pub expires: String,
}

/// How long a lock lasts unless renewed; a running deploy renews it every third of this.
pub const LOCK_LEASE: Duration = Duration::from_secs(120);
/// How far two machines' clocks may differ before one takes over a lock the other still holds.
pub const CLOCK_MARGIN: Duration = Duration::from_secs(30);

impl Lock {
    /// A lock for this process, taken `now`.
    pub fn new(now: SystemTime) -> Lock {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown host".to_owned());
        Lock {
            holder: format!(
                "kiln {} on {host}, pid {}",
                kiln_core::VERSION,
                std::process::id()
            ),
            since: rfc3339(now),
            expires: rfc3339(now + LOCK_LEASE),
        }
    }

    /// Whether it has lapsed at `now`, with a margin for clocks that differ a little (an
    /// unreadable time counts as lapsed).
    pub fn expired(&self, now: SystemTime) -> bool {
        parse_time(&self.expires).is_none_or(|t| t + CLOCK_MARGIN <= now)
    }
}

/// `t` as RFC 3339 in UTC, to the second; times a store may report outside 1970..9999 (which
/// humantime cannot format) are clamped.
pub fn rfc3339(t: SystemTime) -> String {
    const MAX: Duration = Duration::from_secs(253_402_300_799); // 9999-12-31T23:59:59Z
    let since = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .min(MAX);
    humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + since).to_string()
}

/// Parses an RFC 3339 time written by [`rfc3339`].
pub fn parse_time(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s).ok()
}

/// How long ago `t` was at `now` (zero for a time in the future or an unreadable one).
pub fn age(t: &str, now: SystemTime) -> Duration {
    parse_time(t)
        .and_then(|t| now.duration_since(t).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_outside_what_humantime_formats_are_clamped_not_a_panic() {
        assert_eq!(
            rfc3339(SystemTime::UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00Z"
        );
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(rfc3339(far), "9999-12-31T23:59:59Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_time(&rfc3339(t)), Some(t));
    }

    #[test]
    fn a_lock_lapses_after_its_expiry_plus_the_clock_margin() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let lock = Lock::new(now);
        assert!(!lock.expired(now + LOCK_LEASE));
        assert!(lock.expired(now + LOCK_LEASE + CLOCK_MARGIN));
        let unreadable = Lock {
            expires: "soon".into(),
            ..lock
        };
        assert!(unreadable.expired(now));
    }
}

//! What is secret and how kiln keeps it out of what it prints: the environment variables that
//! hold credentials, [`redact`] for any text shown to the user, and [`request_detail`] for a
//! failed HTTP request (host and path, never the query).

/// The environment variable with the Cloudflare API token (wrangler's name for it).
pub const CLOUDFLARE_TOKEN: &str = "CLOUDFLARE_API_TOKEN";
/// The environment variable with the Fastly API token (the Fastly CLI's name for it).
pub const FASTLY_TOKEN: &str = "FASTLY_API_TOKEN";
/// A bearer token for an `http(s)://` remote cache.
pub const TOKEN_VAR: &str = "KILN_REMOTE_CACHE_TOKEN";
/// The user name of basic authentication for an `http(s)://` remote cache.
pub const USER_VAR: &str = "KILN_REMOTE_CACHE_USER";
/// The password of basic authentication for an `http(s)://` remote cache.
pub const PASSWORD_VAR: &str = "KILN_REMOTE_CACHE_PASSWORD";

/// The environment variables whose values are secrets.
const SECRET_VARS: [&str; 8] = [
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_TOKEN",
    CLOUDFLARE_TOKEN,
    FASTLY_TOKEN,
    TOKEN_VAR,
    PASSWORD_VAR,
];

/// `text` with every credential of the environment replaced by `***`.
pub fn redact(text: &str) -> String {
    let mut text = text.to_owned();
    for var in SECRET_VARS {
        if let Ok(value) = std::env::var(var)
            && value.len() >= 4
        {
            text = text.replace(&value, "***");
        }
    }
    text
}

pub(crate) fn without_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// A failed request in a few words: host, path and what went wrong, never the URL's query
/// (where a signed URL carries its credentials).
pub(crate) fn request_detail(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    match e.url() {
        Some(url) => format!("{} {}: {kind}", url.host_str().unwrap_or(""), url.path()),
        None => kind.to_owned(),
    }
}

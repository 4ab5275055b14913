//! The bucket: an `object_store` S3 client built from `[deploy]` and the standard AWS
//! environment, and the translation of its errors into one-line messages that say what to do.
//!
//! Credentials come only from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, or a web identity / container credentials), never from `kiln.toml`. A
//! store's error bodies (which can echo the access key id and the request) are never passed on:
//! only their `<Code>` is, and [`redact`] masks any credential value in what the CLI prints.

use std::sync::Arc;
use std::time::Duration;

use kiln_core::config::DeployConfig;
use object_store::aws::{AmazonS3Builder, Checksum, S3ConditionalPut};
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

use crate::DeployError;

/// Where a deploy goes, for messages: `s3://bucket/prefix` at an endpoint.
#[derive(Debug, Clone)]
pub struct Target {
    /// The bucket.
    pub bucket: String,
    /// The key prefix (empty or ending in `/`).
    pub prefix: String,
    /// The endpoint, if not AWS.
    pub endpoint: Option<String>,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)?;
        if let Some(e) = &self.endpoint {
            write!(f, " at {e}")?;
        }
        Ok(())
    }
}

/// The environment variables whose values are secrets.
const SECRET_VARS: [&str; 4] = [
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_TOKEN",
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

/// Builds the client for `deploy`.
pub fn connect(deploy: &DeployConfig) -> Result<(Arc<dyn ObjectStore>, Target), DeployError> {
    let bucket = deploy.bucket.clone().ok_or_else(|| DeployError::Config {
        key: "deploy.bucket".to_owned(),
        message: "kiln deploy needs a bucket: set `[deploy] bucket` in kiln.toml".to_owned(),
    })?;
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let has_keys = var("AWS_ACCESS_KEY_ID").is_some() && var("AWS_SECRET_ACCESS_KEY").is_some();
    let has_provider = var("AWS_WEB_IDENTITY_TOKEN_FILE").is_some()
        || var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
        || var("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some();
    if !has_keys && !has_provider {
        return Err(DeployError::Credentials(
            "no credentials in the environment: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
             (and AWS_SESSION_TOKEN for temporary ones), or run where AWS_WEB_IDENTITY_TOKEN_FILE \
             or AWS_CONTAINER_CREDENTIALS_* is set"
                .to_owned(),
        ));
    }
    let endpoint = deploy
        .endpoint
        .clone()
        .or_else(|| var("AWS_ENDPOINT_URL_S3"))
        .or_else(|| var("AWS_ENDPOINT_URL"))
        .or_else(|| var("AWS_ENDPOINT"))
        .map(|e| e.trim_end_matches('/').to_owned());
    let allow_http = endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"));
    let options = ClientOptions::new()
        .with_allow_http(allow_http)
        .with_connect_timeout(Duration::from_secs(5))
        // A whole request, body included: generous for a multipart part on a slow link.
        .with_timeout(Duration::from_secs(300));
    // Bounded retries with backoff on 5xx, 429, timeouts and connection errors.
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: 4,
        retry_timeout: Duration::from_secs(60),
    };
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(&bucket)
        .with_virtual_hosted_style_request(false)
        .with_client_options(options)
        .with_retry(retry)
        .with_checksum_algorithm(Checksum::SHA256)
        .with_conditional_put(S3ConditionalPut::ETagMatch);
    if let Some(e) = &endpoint {
        builder = builder.with_endpoint(e);
    }
    if let Some(region) = deploy.region.clone().or_else(|| var("AWS_REGION")) {
        builder = builder.with_region(region);
    }
    let target = Target {
        bucket,
        prefix: deploy.key_prefix(),
        endpoint,
    };
    let store = builder.build().map_err(|e| DeployError::Config {
        key: "deploy".to_owned(),
        message: redact(&e.to_string()),
    })?;
    Ok((Arc::new(store), target))
}

/// What went wrong talking to the store, classified from an `object_store` error.
pub fn classify(
    target: &Target,
    action: &str,
    key: &str,
    err: &object_store::Error,
) -> DeployError {
    let text = chain(err);
    let code = s3_code(&text);
    let hint = |code: &str| DeployError::Storage {
        target: target.to_string(),
        action: action.to_owned(),
        key: key.to_owned(),
        message: code.to_owned(),
    };
    match code.as_deref() {
        Some("NoSuchBucket") => DeployError::NoSuchBucket {
            target: target.to_string(),
        },
        Some(
            "PermanentRedirect"
            | "AuthorizationHeaderMalformed"
            | "IllegalLocationConstraintException",
        ) => DeployError::Storage {
            target: target.to_string(),
            action: action.to_owned(),
            key: key.to_owned(),
            message: format!(
                "{}: the bucket is in another region: set `[deploy] region` (or AWS_REGION)",
                code.unwrap_or_default()
            ),
        },
        Some(
            "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "InvalidToken"
            | "ExpiredToken"
            | "InvalidClientTokenId",
        ) => DeployError::Credentials(format!(
            "{target} refused the credentials ({}): check AWS_ACCESS_KEY_ID, \
             AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN",
            code.unwrap_or_default()
        )),
        Some("AccessDenied" | "AllAccessDisabled") => DeployError::AccessDenied {
            target: target.to_string(),
            action: action.to_owned(),
            key: key.to_owned(),
        },
        Some(other) => hint(other),
        None if is_connect_error(err) || text.contains("error sending request") => {
            DeployError::Unreachable {
                target: target.to_string(),
                detail: connect_detail(&text),
            }
        }
        None if text.contains("301 Moved Permanently") => DeployError::Storage {
            target: target.to_string(),
            action: action.to_owned(),
            key: key.to_owned(),
            message: "the bucket is in another region: set `[deploy] region` (or AWS_REGION)"
                .to_owned(),
        },
        None => match err {
            object_store::Error::PermissionDenied { .. } => DeployError::AccessDenied {
                target: target.to_string(),
                action: action.to_owned(),
                key: key.to_owned(),
            },
            object_store::Error::Unauthenticated { .. } => DeployError::Credentials(format!(
                "{target} refused the credentials: check AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY"
            )),
            _ => hint(&status_line(&text).unwrap_or_else(|| "request failed".to_owned())),
        },
    }
}

/// An error and its sources, joined.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn is_connect_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<object_store::client::HttpError>()
            && matches!(
                h.kind(),
                object_store::client::HttpErrorKind::Connect
                    | object_store::client::HttpErrorKind::Timeout
            )
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// The `<Code>` of an S3 error body in `text`.
fn s3_code(text: &str) -> Option<String> {
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    let code = &text[start..start + len];
    code.bytes()
        .all(|b| b.is_ascii_alphanumeric())
        .then(|| code.to_owned())
}

/// `403 Forbidden`, from "... status code: 403 Forbidden: ...".
fn status_line(text: &str) -> Option<String> {
    let at = text.find("status code: ")? + "status code: ".len();
    let rest = &text[at..];
    let end = rest.find([':', '<', '\n']).unwrap_or(rest.len());
    Some(format!("HTTP {}", rest[..end].trim()))
}

/// The innermost reason of a connection failure (`Connection refused`), without URLs.
fn connect_detail(text: &str) -> String {
    for needle in [
        "Connection refused",
        "timed out",
        "dns error",
        "failed to lookup address",
        "certificate",
        "Connection reset",
    ] {
        if text.contains(needle) {
            return needle.to_lowercase();
        }
    }
    "no connection".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_codes_and_status_lines_are_read_from_error_text() {
        let text = "Error performing PUT http://x/b/k in 2ms - Server returned non-2xx status \
                    code: 403 Forbidden: <?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch\
                    </Code><AWSAccessKeyId>AKIAXXXX</AWSAccessKeyId></Error>";
        assert_eq!(s3_code(text).as_deref(), Some("SignatureDoesNotMatch"));
        assert_eq!(status_line(text).as_deref(), Some("HTTP 403 Forbidden"));
        assert_eq!(s3_code("<Code>a b</Code>"), None);
    }
}

//! The bucket: an `object_store` S3 client built from `[deploy]` and the standard AWS
//! environment, and the translation of its errors into one-line messages that say what to do.
//!
//! Credentials come only from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, or a web identity / container credentials), never from `kiln.toml`. A
//! store's error bodies (which can echo the access key id and the request) are never passed on:
//! only their `<Code>` is, and [`redact`](crate::secrets::redact) masks any credential value in what the CLI prints.

use std::sync::Arc;
use std::time::Duration;

use kiln_core::config::DeployConfig;
use object_store::aws::{
    AmazonS3Builder, AwsAuthorizer, AwsCredentialProvider, Checksum, S3ConditionalPut,
};
use object_store::client::HttpRequestBody;
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
    /// The region requests are signed for.
    pub region: String,
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

/// The bucket's client, and the credentials it signs with (also used for the bucket's CORS
/// rules and CloudFront).
pub struct Connection {
    /// The object store.
    pub store: Arc<dyn ObjectStore>,
    /// Where.
    pub target: Target,
    /// The credentials.
    pub credentials: AwsCredentialProvider,
}

/// How patient a client is: a deploy waits and retries, a cache lookup gives up quickly.
#[derive(Debug, Clone)]
pub struct Patience {
    /// Connecting.
    pub connect: Duration,
    /// A whole request, body included.
    pub request: Duration,
    /// Retries on 5xx, 429, timeouts and connection errors (with backoff).
    pub retries: usize,
    /// All retries of one request together.
    pub retry_timeout: Duration,
}

impl Patience {
    /// A deploy's: generous for a multipart part on a slow link, four retries within a minute.
    pub fn deploy() -> Self {
        Patience {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(300),
            retries: 4,
            retry_timeout: Duration::from_secs(60),
        }
    }
}

/// Builds the client for `deploy`.
pub fn connect(deploy: &DeployConfig) -> Result<Connection, DeployError> {
    let bucket = deploy.bucket.clone().ok_or_else(|| DeployError::Config {
        key: "deploy.bucket".to_owned(),
        message: "kiln deploy needs a bucket: set `[deploy] bucket` in kiln.toml".to_owned(),
    })?;
    connect_bucket(
        Target {
            bucket,
            prefix: deploy.key_prefix(),
            endpoint: deploy.endpoint.clone(),
            region: deploy.region.clone().unwrap_or_default(),
        },
        &Patience::deploy(),
    )
}

/// Builds the client for `target` (an empty endpoint or region falls back to the AWS
/// environment: `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, `AWS_REGION`, then `us-east-1`).
pub fn connect_bucket(target: Target, patience: &Patience) -> Result<Connection, DeployError> {
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
    let endpoint = target
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
        .with_connect_timeout(patience.connect)
        .with_timeout(patience.request);
    // Bounded retries with backoff on 5xx, 429, timeouts and connection errors.
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: patience.retries,
        retry_timeout: patience.retry_timeout,
    };
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(&target.bucket)
        .with_virtual_hosted_style_request(false)
        .with_client_options(options)
        .with_retry(retry)
        .with_checksum_algorithm(Checksum::SHA256)
        .with_conditional_put(S3ConditionalPut::ETagMatch);
    if let Some(e) = &endpoint {
        builder = builder.with_endpoint(e);
    }
    let region = Some(target.region.clone())
        .filter(|r| !r.is_empty())
        .or_else(|| var("AWS_REGION"))
        .unwrap_or_else(|| "us-east-1".to_owned());
    builder = builder.with_region(&region);
    let target = Target {
        endpoint,
        region,
        ..target
    };
    let store = builder.build().map_err(|e| DeployError::Config {
        key: "deploy".to_owned(),
        message: crate::secrets::redact(&e.to_string()),
    })?;
    let credentials = store.credentials().clone();
    Ok(Connection {
        store: Arc::new(store),
        target,
        credentials,
    })
}

/// The HTTP client for what `object_store` does not do (bucket CORS, CDN APIs, `kiln verify`).
pub fn http_client() -> Result<reqwest::Client, DeployError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| DeployError::Internal(e.to_string()))
}

/// The bucket's CORS rules for `origins`: `GET` and `HEAD` from them, any request header, the
/// preflight cached for an hour.
pub fn cors_xml(origins: &[String]) -> String {
    let allowed: String = origins
        .iter()
        .map(|o| format!("<AllowedOrigin>{o}</AllowedOrigin>"))
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <CORSConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><CORSRule>\
         <ID>kiln</ID>{allowed}<AllowedMethod>GET</AllowedMethod><AllowedMethod>HEAD</AllowedMethod>\
         <AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>\
         <ExposeHeader>Content-Length</ExposeHeader><MaxAgeSeconds>3600</MaxAgeSeconds>\
         </CORSRule></CORSConfiguration>"
    )
}

/// Sets the bucket's CORS rules to allow `origins` (`PutBucketCors`), or removes them when
/// `origins` is empty (`DeleteBucketCors`). `object_store` has no bucket-level calls, so this is
/// one request signed with its SigV4 signer.
pub async fn set_cors(
    client: &reqwest::Client,
    target: &Target,
    credentials: &AwsCredentialProvider,
    origins: &[String],
) -> Result<(), DeployError> {
    let base = match &target.endpoint {
        Some(e) => format!("{e}/{}", target.bucket),
        None => format!(
            "https://s3.{}.amazonaws.com/{}",
            target.region, target.bucket
        ),
    };
    let url = format!("{base}?cors");
    let (method, body) = if origins.is_empty() {
        ("DELETE", Vec::new())
    } else {
        ("PUT", cors_xml(origins).into_bytes())
    };
    let fail = |message: String| DeployError::Storage {
        target: target.to_string(),
        action: "set the CORS rules of".to_owned(),
        key: target.bucket.clone(),
        message,
    };
    let credential = credentials
        .get_credential()
        .await
        .map_err(|_| DeployError::Credentials("no AWS credentials".to_owned()))?;
    let mut request = http::Request::builder()
        .method(method)
        .uri(&url)
        .body(HttpRequestBody::from(body.clone()))
        .map_err(|e| DeployError::Internal(e.to_string()))?;
    if !body.is_empty() {
        use base64::Engine as _;
        use md5::Digest as _;
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&body));
        let headers = request.headers_mut();
        headers.insert(
            "content-md5",
            md5.parse().expect("base64 is a header value"),
        );
        headers.insert(
            "content-type",
            http::HeaderValue::from_static("application/xml"),
        );
    }
    AwsAuthorizer::new(&credential, "s3", &target.region)
        .try_authorize(&mut request, None)
        .map_err(|_| DeployError::Internal("signing failed".to_owned()))?;
    let response = client
        .request(request.method().clone(), &url)
        .headers(request.headers().clone())
        .body(body)
        .send()
        .await
        .map_err(|e| DeployError::Unreachable {
            target: target.to_string(),
            detail: crate::secrets::request_detail(&e),
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = response.text().await.unwrap_or_default();
    match s3_code(&text).as_deref() {
        Some("AccessDenied") => Err(fail(
            "access denied: the credentials need s3:PutBucketCORS (or remove \
             `[deploy] cors_origins` and set the header at the CDN)"
                .to_owned(),
        )),
        Some("NoSuchCORSConfiguration") if origins.is_empty() => Ok(()),
        Some(code) => Err(fail(code.to_owned())),
        None => Err(fail(format!("HTTP {status}"))),
    }
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

//! Purging the CDN in front of the bucket after a deploy (`[deploy.cdn]`).
//!
//! Only what a deploy changed under a name that is not a content hash needs purging: unhashed
//! copies and manifests (a fingerprinted name never changes its bytes). [`calls`] turns those
//! paths into the provider's requests, batched to its limit, or one wildcard purge above
//! `max_paths`; it is pure, so the wire format is tested without a server. [`Purger::purge`]
//! sends them with the provider's credentials, which come only from the environment:
//! CloudFront's are the deploy's AWS credentials (SigV4), Cloudflare's `CLOUDFLARE_API_TOKEN`,
//! Fastly's `FASTLY_API_TOKEN`; none is ever part of a message.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use kiln_core::config::{CdnConfig, CdnProvider};
use object_store::aws::{AwsAuthorizer, AwsCredentialProvider};
use object_store::client::HttpRequestBody;
use serde::Serialize;

use crate::DeployError;

/// CloudFront's API.
pub const CLOUDFRONT_API: &str = "https://cloudfront.amazonaws.com";
/// Cloudflare's API.
pub const CLOUDFLARE_API: &str = "https://api.cloudflare.com";
/// Fastly's API.
pub const FASTLY_API: &str = "https://api.fastly.com";
pub use crate::secrets::{CLOUDFLARE_TOKEN, FASTLY_TOKEN};
use crate::secrets::{request_detail, without_query};
/// Paths per CloudFront invalidation (its documented maximum).
pub const CLOUDFRONT_BATCH: usize = 3000;
/// URLs per Cloudflare purge request (the limit of every plan).
pub const CLOUDFLARE_BATCH: usize = 30;
/// Requests in flight at once for providers that purge one URL per request.
const PARALLEL: usize = 8;

/// One request to the provider, without its credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Call {
    /// `POST`, `PURGE`.
    pub method: String,
    /// The full URL.
    pub url: String,
    /// Headers other than credentials (`Host` for http-purge, `Content-Type`).
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<String>,
}

/// What a purge did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PurgeReport {
    /// The provider.
    pub provider: String,
    /// The URLs (or paths, for CloudFront) purged, before any wildcard fallback.
    pub paths: Vec<String>,
    /// One wildcard purge replaced them (more than `max_paths`).
    pub wildcard: bool,
    /// Requests made.
    pub requests: usize,
    /// CloudFront invalidation ids, to wait for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub invalidations: Vec<String>,
}

/// `public_url` split into its origin (`https://static.example.com`, when absolute) and its path
/// (`/` or `/static/`).
pub fn split_public_url(public_url: &str) -> (Option<&str>, String) {
    let (origin, path) = match public_url.split_once("://") {
        Some((_, rest)) => {
            let scheme_len = public_url.len() - rest.len();
            let host_len = rest.find('/').unwrap_or(rest.len());
            (
                Some(&public_url[..scheme_len + host_len]),
                &rest[host_len..],
            )
        }
        None => (None, public_url),
    };
    let mut path = path.to_owned();
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    if !path.ends_with('/') {
        path.push('/');
    }
    (origin, path)
}

fn absolute<'a>(cdn: &CdnConfig, public_url: &'a str) -> Result<&'a str, DeployError> {
    split_public_url(public_url)
        .0
        .ok_or_else(|| DeployError::Config {
            key: "public_url".to_owned(),
            message: format!(
                "`{public_url}` is not an absolute URL: provider `{}` purges URLs, so \
                 public_url must be the CDN's (`https://static.example.com/`)",
                cdn.provider.name()
            ),
        })
}

fn api(cdn: &CdnConfig, default: &str) -> String {
    cdn.api_url
        .as_deref()
        .unwrap_or(default)
        .trim_end_matches('/')
        .to_owned()
}

/// Escapes `text` for XML character data.
fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The requests that purge `paths` (relative to the output folder) from the CDN of `cdn`, which
/// serves them under `public_url`; `reference` makes a CloudFront invalidation's
/// `CallerReference` unique. Returns the calls, whether they are a wildcard, and the URLs (or
/// CloudFront paths) they stand for.
pub fn calls(
    cdn: &CdnConfig,
    public_url: &str,
    paths: &[String],
    reference: &str,
) -> Result<(Vec<Call>, bool, Vec<String>), DeployError> {
    let (origin, base) = split_public_url(public_url);
    let url_paths: Vec<String> = paths
        .iter()
        .map(|p| format!("{base}{}", kiln_core::url::encode_path(p)))
        .collect();
    let wildcard = paths.len() > cdn.max_paths;
    let mut out = Vec::new();
    let listed: Vec<String>;
    match cdn.provider {
        CdnProvider::Cloudfront => {
            listed = url_paths.clone();
            let id = cdn.distribution_id.as_deref().unwrap_or_default();
            let url = format!(
                "{}/2020-05-31/distribution/{id}/invalidation",
                api(cdn, CLOUDFRONT_API)
            );
            let batches: Vec<Vec<String>> = if wildcard {
                vec![vec![format!("{base}*")]]
            } else {
                url_paths
                    .chunks(CLOUDFRONT_BATCH)
                    .map(<[String]>::to_vec)
                    .collect()
            };
            let count = batches.len();
            for (i, batch) in batches.into_iter().enumerate() {
                let items: String = batch
                    .iter()
                    .map(|p| format!("<Path>{}</Path>", xml_escape(p)))
                    .collect();
                let caller = if count == 1 {
                    reference.to_owned()
                } else {
                    format!("{reference}-{}", i + 1)
                };
                out.push(Call {
                    method: "POST".to_owned(),
                    url: url.clone(),
                    headers: vec![("content-type".to_owned(), "text/xml".to_owned())],
                    body: Some(format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
                         <InvalidationBatch xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\">\
                         <Paths><Quantity>{}</Quantity><Items>{items}</Items></Paths>\
                         <CallerReference>{}</CallerReference></InvalidationBatch>",
                        batch.len(),
                        xml_escape(&caller)
                    )),
                });
            }
        }
        CdnProvider::Cloudflare => {
            let origin = absolute(cdn, public_url)?;
            listed = url_paths.iter().map(|p| format!("{origin}{p}")).collect();
            let zone = cdn.zone_id.as_deref().unwrap_or_default();
            let url = format!(
                "{}/client/v4/zones/{zone}/purge_cache",
                api(cdn, CLOUDFLARE_API)
            );
            let bodies: Vec<serde_json::Value> = if wildcard {
                // Purge by prefix (`host/path/`) where the files have a path of their own, else
                // the zone: a static host's zone holds only its files.
                let host = origin.split_once("://").map_or(origin, |(_, h)| h);
                if base == "/" {
                    vec![serde_json::json!({ "purge_everything": true })]
                } else {
                    vec![serde_json::json!({ "prefixes": [format!("{host}{base}")] })]
                }
            } else {
                listed
                    .chunks(CLOUDFLARE_BATCH)
                    .map(|files| serde_json::json!({ "files": files }))
                    .collect()
            };
            for body in bodies {
                out.push(Call {
                    method: "POST".to_owned(),
                    url: url.clone(),
                    headers: vec![("content-type".to_owned(), "application/json".to_owned())],
                    body: Some(body.to_string()),
                });
            }
        }
        CdnProvider::Fastly => {
            let origin = absolute(cdn, public_url)?;
            listed = url_paths.iter().map(|p| format!("{origin}{p}")).collect();
            let api = api(cdn, FASTLY_API);
            if wildcard {
                let service = cdn.service_id.as_deref().unwrap_or_default();
                out.push(Call {
                    method: "POST".to_owned(),
                    url: format!("{api}/service/{service}/purge_all"),
                    headers: Vec::new(),
                    body: None,
                });
            } else {
                let host = origin.split_once("://").map_or(origin, |(_, h)| h);
                for p in &url_paths {
                    out.push(Call {
                        method: "POST".to_owned(),
                        url: format!("{api}/purge/{host}{p}"),
                        headers: Vec::new(),
                        body: None,
                    });
                }
            }
        }
        CdnProvider::HttpPurge => {
            let edge = cdn
                .purge_url
                .as_deref()
                .unwrap_or_default()
                .trim_end_matches('/');
            let host = origin.map(|o| o.split_once("://").map_or(o, |(_, h)| h));
            let headers: Vec<(String, String)> = host
                .map(|h| vec![("host".to_owned(), h.to_owned())])
                .unwrap_or_default();
            listed = url_paths.clone();
            let targets = if wildcard {
                vec![format!("{base}*")]
            } else {
                url_paths
            };
            for p in targets {
                out.push(Call {
                    method: "PURGE".to_owned(),
                    url: format!("{edge}{p}"),
                    headers: headers.clone(),
                    body: None,
                });
            }
        }
    }
    Ok((out, wildcard, listed))
}

/// Sends purge requests for one provider.
pub struct Purger {
    cdn: CdnConfig,
    client: reqwest::Client,
    aws: Option<AwsCredentialProvider>,
}

impl Purger {
    /// A purger for `cdn`; `aws` signs CloudFront's requests. With `needs_token`, fails if the
    /// provider's token is not in the environment (a dry run sends nothing, so needs none).
    pub fn new(
        cdn: &CdnConfig,
        client: reqwest::Client,
        aws: Option<AwsCredentialProvider>,
        needs_token: bool,
    ) -> Result<Self, DeployError> {
        let missing = |var: &str| {
            DeployError::Credentials(format!(
                "[deploy.cdn] provider `{}` needs an API token in {var} (it is never read from \
                 kiln.toml)",
                cdn.provider.name()
            ))
        };
        match cdn.provider {
            CdnProvider::Cloudflare if needs_token && token(CLOUDFLARE_TOKEN).is_none() => {
                return Err(missing(CLOUDFLARE_TOKEN));
            }
            CdnProvider::Fastly if needs_token && token(FASTLY_TOKEN).is_none() => {
                return Err(missing(FASTLY_TOKEN));
            }
            _ => {}
        }
        Ok(Purger {
            cdn: cdn.clone(),
            client,
            aws,
        })
    }

    /// What purging `paths` would send, without sending it (a dry run).
    pub fn plan(&self, public_url: &str, paths: &[String]) -> Result<PurgeReport, DeployError> {
        let (calls, wildcard, listed) = calls(&self.cdn, public_url, paths, "dry-run")?;
        Ok(PurgeReport {
            provider: self.cdn.provider.name().to_owned(),
            paths: listed,
            wildcard,
            requests: calls.len(),
            invalidations: Vec::new(),
        })
    }

    /// Purges `paths` (relative to the output folder) served under `public_url`.
    pub async fn purge(
        &self,
        public_url: &str,
        paths: &[String],
        reference: &str,
    ) -> Result<PurgeReport, DeployError> {
        let (calls, wildcard, listed) = calls(&self.cdn, public_url, paths, reference)?;
        let mut report = PurgeReport {
            provider: self.cdn.provider.name().to_owned(),
            paths: listed,
            wildcard,
            requests: calls.len(),
            invalidations: Vec::new(),
        };
        let parallel = match self.cdn.provider {
            CdnProvider::Fastly | CdnProvider::HttpPurge => PARALLEL,
            // Invalidations and zone purges are rate-limited per account: one at a time.
            CdnProvider::Cloudfront | CdnProvider::Cloudflare => 1,
        };
        let results: Vec<Result<Option<String>, DeployError>> =
            futures::stream::iter(calls.iter().map(|c| self.send(c)))
                .buffered(parallel)
                .collect()
                .await;
        for r in results {
            if let Some(id) = r? {
                report.invalidations.push(id);
            }
        }
        Ok(report)
    }

    /// Sends one call, retrying on 429, 5xx and connection errors; returns a CloudFront
    /// invalidation's id.
    async fn send(&self, call: &Call) -> Result<Option<String>, DeployError> {
        let mut delay = Duration::from_millis(500);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.send_once(call).await;
            let retry = match &result {
                Err(Failure::Transient(_)) => attempt < 4,
                _ => false,
            };
            if retry {
                tokio::time::sleep(delay).await;
                delay *= 2;
                continue;
            }
            return result.map_err(|f| {
                let detail = match f {
                    Failure::Transient(d) | Failure::Refused(d) => d,
                };
                DeployError::Purge {
                    provider: self.cdn.provider.name().to_owned(),
                    detail: crate::secrets::redact(&detail),
                }
            });
        }
    }

    async fn send_once(&self, call: &Call) -> Result<Option<String>, Failure> {
        let method = reqwest::Method::from_bytes(call.method.as_bytes())
            .map_err(|e| Failure::Refused(e.to_string()))?;
        let body = Bytes::from(call.body.clone().unwrap_or_default());
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &call.headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| Failure::Refused(e.to_string()))?;
            let value = reqwest::header::HeaderValue::from_str(v)
                .map_err(|e| Failure::Refused(e.to_string()))?;
            headers.insert(name, value);
        }
        match self.cdn.provider {
            CdnProvider::Cloudflare => {
                let token = token(CLOUDFLARE_TOKEN).unwrap_or_default();
                headers.insert(
                    reqwest::header::AUTHORIZATION,
                    secret(&format!("Bearer {token}"))?,
                );
            }
            CdnProvider::Fastly => {
                let token = token(FASTLY_TOKEN).unwrap_or_default();
                headers.insert("fastly-key", secret(&token)?);
            }
            CdnProvider::Cloudfront => {
                headers = self
                    .signed(&method, &call.url, headers, body.clone())
                    .await
                    .map_err(Failure::Refused)?;
            }
            CdnProvider::HttpPurge => {}
        }
        let response = self
            .client
            .request(method, &call.url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::Transient(request_detail(&e)))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let ok = status.is_success()
            // nginx's cache purge answers 404 for a URL it does not have: nothing to purge.
            || (self.cdn.provider == CdnProvider::HttpPurge && status.as_u16() == 404);
        if ok {
            if self.cdn.provider == CdnProvider::Cloudflare
                && serde_json::from_str::<serde_json::Value>(&text)
                    .is_ok_and(|v| v["success"] == false)
            {
                return Err(Failure::Refused(cloudflare_errors(&text)));
            }
            return Ok((self.cdn.provider == CdnProvider::Cloudfront)
                .then(|| xml_field(&text, "Id"))
                .flatten());
        }
        let detail = match self.cdn.provider {
            CdnProvider::Cloudfront => xml_field(&text, "Code")
                .map(|code| match xml_field(&text, "Message") {
                    Some(m) if code != "SignatureDoesNotMatch" => format!("{code}: {m}"),
                    _ => code,
                })
                .unwrap_or_else(|| format!("HTTP {status}")),
            CdnProvider::Cloudflare => format!("HTTP {status}: {}", cloudflare_errors(&text)),
            CdnProvider::Fastly | CdnProvider::HttpPurge => format!("HTTP {status}"),
        };
        let detail = format!("{} {}: {detail}", call.method, without_query(&call.url));
        if status.as_u16() == 429 || status.is_server_error() {
            Err(Failure::Transient(detail))
        } else {
            Err(Failure::Refused(detail))
        }
    }

    /// Waits until CloudFront reports each of `ids` completed, or `limit` passes.
    pub async fn wait_for_invalidations(
        &self,
        ids: &[String],
        limit: Duration,
    ) -> Result<(), DeployError> {
        let deadline = tokio::time::Instant::now() + limit;
        let id = self.cdn.distribution_id.as_deref().unwrap_or_default();
        for inv in ids {
            loop {
                let call = Call {
                    method: "GET".to_owned(),
                    url: format!(
                        "{}/2020-05-31/distribution/{id}/invalidation/{inv}",
                        api(&self.cdn, CLOUDFRONT_API)
                    ),
                    headers: Vec::new(),
                    body: None,
                };
                let status = self.status_of(&call).await?;
                if status.eq_ignore_ascii_case("completed") {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(DeployError::Pending {
                        provider: "CloudFront".to_owned(),
                        what: format!("invalidation {inv} as {status}"),
                        secs: limit.as_secs(),
                    });
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
        Ok(())
    }

    /// `headers` plus the SigV4 headers that sign this CloudFront request.
    async fn signed(
        &self,
        method: &reqwest::Method,
        url: &str,
        headers: reqwest::header::HeaderMap,
        body: Bytes,
    ) -> Result<reqwest::header::HeaderMap, String> {
        let provider = self
            .aws
            .as_ref()
            .ok_or_else(|| "no AWS credentials to sign the request".to_owned())?;
        let credential = provider
            .get_credential()
            .await
            .map_err(|_| "no AWS credentials".to_owned())?;
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(url)
            .body(HttpRequestBody::from(body))
            .map_err(|e| e.to_string())?;
        *request.headers_mut() = headers;
        AwsAuthorizer::new(&credential, "cloudfront", "us-east-1")
            .try_authorize(&mut request, None)
            .map_err(|_| "signing failed".to_owned())?;
        Ok(request.headers().clone())
    }

    async fn status_of(&self, call: &Call) -> Result<String, DeployError> {
        // The GET is signed like the POST; its answer's <Status> is what matters.
        let fail = |detail: String| DeployError::Purge {
            provider: "cloudfront".to_owned(),
            detail,
        };
        let headers = self
            .signed(
                &reqwest::Method::GET,
                &call.url,
                reqwest::header::HeaderMap::new(),
                Bytes::new(),
            )
            .await
            .map_err(fail)?;
        let response = self
            .client
            .get(&call.url)
            .headers(headers)
            .send()
            .await
            .map_err(|e| fail(request_detail(&e)))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(fail(format!(
                "GET {}: {}",
                call.url,
                xml_field(&text, "Code").unwrap_or_else(|| format!("HTTP {status}"))
            )));
        }
        xml_field(&text, "Status").ok_or_else(|| fail("no <Status> in the answer".to_owned()))
    }
}

enum Failure {
    /// Worth another try (429, 5xx, no connection).
    Transient(String),
    /// Refused for good.
    Refused(String),
}

fn token(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// A header value that must not be logged.
fn secret(value: &str) -> Result<reqwest::header::HeaderValue, Failure> {
    let mut v = reqwest::header::HeaderValue::from_str(value.trim())
        .map_err(|_| Failure::Refused("the API token is not a valid header value".to_owned()))?;
    v.set_sensitive(true);
    Ok(v)
}

/// The text of the first `<name>` element in `xml`.
pub(crate) fn xml_field(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{name}>"))?;
    Some(xml[start..start + len].trim().to_owned())
}

/// Cloudflare's `errors` array as `code: message` pairs.
fn cloudflare_errors(text: &str) -> String {
    let parsed: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let errors: Vec<String> = parsed["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| format!("{}: {}", e["code"], e["message"].as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    if errors.is_empty() {
        "no details".to_owned()
    } else {
        errors.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cdn(provider: CdnProvider) -> CdnConfig {
        let mut c = CdnConfig::new(provider);
        c.distribution_id = Some("E2EXAMPLE".into());
        c.zone_id = Some("zone1".into());
        c.service_id = Some("svc1".into());
        c.purge_url = Some("http://127.0.0.1:6081".into());
        c
    }

    fn paths(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("css/f{i}.css")).collect()
    }

    #[test]
    fn public_urls_split_into_origin_and_path() {
        assert_eq!(
            split_public_url("https://static.example.com/"),
            (Some("https://static.example.com"), "/".to_owned())
        );
        assert_eq!(
            split_public_url("https://cdn.example.com:8443/static"),
            (Some("https://cdn.example.com:8443"), "/static/".to_owned())
        );
        assert_eq!(split_public_url("/static/"), (None, "/static/".to_owned()));
    }

    #[test]
    fn cloudfront_batches_3000_paths_and_falls_back_to_a_wildcard() {
        let mut c = cdn(CdnProvider::Cloudfront);
        c.max_paths = 10_000;
        let (calls, wildcard, listed) =
            calls(&c, "https://s.example.com/static/", &paths(3001), "r").unwrap();
        assert!(!wildcard);
        assert_eq!(listed.len(), 3001);
        assert_eq!(calls.len(), 2);
        let body = calls[0].body.as_deref().unwrap();
        assert!(body.contains("<Quantity>3000</Quantity>"), "{body}");
        assert!(body.contains("<Path>/static/css/f0.css</Path>"), "{body}");
        assert!(body.contains("<CallerReference>r-1</CallerReference>"));
        assert!(
            calls[1]
                .body
                .as_deref()
                .unwrap()
                .contains("<Quantity>1</Quantity>")
        );
        c.max_paths = 100;
        let (calls, wildcard, _) =
            super::calls(&c, "https://s.example.com/static/", &paths(101), "r").unwrap();
        assert!(wildcard);
        assert_eq!(calls.len(), 1);
        assert!(
            calls[0]
                .body
                .as_deref()
                .unwrap()
                .contains("<Path>/static/*</Path>")
        );
    }

    #[test]
    fn cloudflare_sends_30_urls_a_request_and_needs_an_absolute_public_url() {
        let c = cdn(CdnProvider::Cloudflare);
        let (calls, _, _) = calls(&c, "https://s.example.com/", &paths(31), "r").unwrap();
        assert_eq!(calls.len(), 2);
        let body: serde_json::Value =
            serde_json::from_str(calls[0].body.as_ref().unwrap()).unwrap();
        assert_eq!(body["files"].as_array().unwrap().len(), 30);
        assert_eq!(body["files"][0], "https://s.example.com/css/f0.css");
        assert!(super::calls(&c, "/static/", &paths(1), "r").is_err());
    }

    #[test]
    fn paths_are_percent_encoded() {
        let c = cdn(CdnProvider::HttpPurge);
        let (calls, _, _) = calls(
            &c,
            "http://static.localhost:8080/",
            &["img/my photo.jpg".to_owned()],
            "r",
        )
        .unwrap();
        assert_eq!(calls[0].url, "http://127.0.0.1:6081/img/my%20photo.jpg");
        assert_eq!(
            calls[0].headers,
            vec![("host".to_owned(), "static.localhost:8080".to_owned())]
        );
    }
}

//! Serving [`Assets`] over HTTP: a `tower::Service` for axum's `Router::nest_service` (or any
//! tower stack).
//!
//! ```ignore
//! let app = axum::Router::new()
//!     .route("/", axum::routing::get(index))
//!     .nest_service("/static", assets::ASSETS.service());
//! ```
//!
//! For each request: `GET` and `HEAD` only (405 otherwise); the path (percent-decoded, relative to
//! the mount) is looked up among the fingerprinted names, the logical names and the source maps
//! (404 otherwise); the representation is chosen by `Accept-Encoding` with its q-values (Brotli,
//! then zstd, then gzip on equal preference; identity unless refused); the response carries
//! `Content-Type`, `Content-Length`, `Content-Encoding`, `Vary: Accept-Encoding` (when there is
//! more than one representation), a strong `ETag` of the representation's bytes, and
//! `Cache-Control: public, max-age=31536000, immutable` for a fingerprinted name or `no-cache` for
//! a logical one; `If-None-Match` that matches gives `304 Not Modified` with no body.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;

use crate::{Assets, Body, Encoding, Representation, Route};

/// `Cache-Control` of a fingerprinted name: its bytes never change.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of a logical name: revalidate every time (the ETag makes that cheap).
pub const REVALIDATE: &str = "no-cache";

impl Assets {
    /// A `tower::Service` serving these assets (see the [module documentation](self)).
    pub fn service(&'static self) -> ServeAssets {
        ServeAssets { assets: self }
    }
}

/// The service [`Assets::service`] returns.
#[derive(Debug, Clone, Copy)]
pub struct ServeAssets {
    assets: &'static Assets,
}

/// The response future.
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send>>;

impl<B> tower_service::Service<Request<B>> for ServeAssets {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let answer = respond(
            self.assets,
            request.method(),
            request.uri().path(),
            request.headers(),
        );
        Box::pin(async move {
            Ok(match answer {
                Answer::Done(response) => response,
                Answer::Read(_, _, true, builder) => builder
                    .body(Full::new(Bytes::new()))
                    .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "bad response")),
                Answer::Read(route, rep, false, builder) => {
                    let bytes = match rep.body {
                        Body::Embedded(b) => Ok(Bytes::from_static(b)),
                        // A file rebuilt since this binary was compiled would not match its
                        // Content-Length and ETag: refuse it rather than send it.
                        Body::File(path) => {
                            tokio::fs::read(path).await.map(Bytes::from).and_then(|b| {
                                if b.len() as u64 == rep.size {
                                    Ok(b)
                                } else {
                                    Err(std::io::Error::other("changed since the build"))
                                }
                            })
                        }
                    };
                    match bytes {
                        Ok(bytes) => builder.body(Full::new(bytes)).unwrap_or_else(|_| {
                            plain(StatusCode::INTERNAL_SERVER_ERROR, "bad response")
                        }),
                        Err(_) => plain(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            &format!(
                                "{}: the built file is missing or changed: rebuild",
                                route.name
                            ),
                        ),
                    }
                }
            })
        })
    }
}

enum Answer {
    Done(Response<Full<Bytes>>),
    Read(
        &'static Route,
        &'static Representation,
        bool,
        http::response::Builder,
    ),
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(text.to_owned())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn respond(
    assets: &'static Assets,
    method: &Method,
    path: &str,
    headers: &http::HeaderMap,
) -> Answer {
    let head = method == Method::HEAD;
    if method != Method::GET && !head {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Answer::Done(r);
    }
    let Ok(name) = percent_encoding::percent_decode_str(path.trim_start_matches('/')).decode_utf8()
    else {
        return Answer::Done(plain(StatusCode::NOT_FOUND, "not found"));
    };
    let Some(route) = assets.route(&name) else {
        return Answer::Done(plain(StatusCode::NOT_FOUND, "not found"));
    };
    let accept = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let rep = choose(route.representations, &accept);
    // What a 304 carries too (RFC 9110 §15.4.5): the validator and the caching headers.
    let mut builder = Response::builder().header(header::ETAG, rep.etag).header(
        header::CACHE_CONTROL,
        if route.hashed { IMMUTABLE } else { REVALIDATE },
    );
    if route.representations.len() > 1 {
        builder = builder.header(header::VARY, "Accept-Encoding");
    }
    let not_modified = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| etag_matches(v, rep.etag));
    if not_modified {
        return Answer::Done(
            builder
                .status(StatusCode::NOT_MODIFIED)
                .body(Full::new(Bytes::new()))
                .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "bad response")),
        );
    }
    builder = builder.header(header::CONTENT_TYPE, route.content_type);
    if rep.encoding != Encoding::Identity {
        builder = builder.header(header::CONTENT_ENCODING, rep.encoding.token());
    }
    builder = builder.header(header::CONTENT_LENGTH, rep.size);
    Answer::Read(route, rep, head, builder)
}

/// A weight as RFC 9110 §12.4.2 writes it: `0`, `1`, `0.5`, `1.000`, at most three decimals.
fn parse_q(v: &str) -> Option<f32> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    let valid = matches!(int, "0" | "1")
        && frac.len() <= 3
        && frac.bytes().all(|b| b.is_ascii_digit())
        && (int == "0" || frac.bytes().all(|b| b == b'0'));
    valid.then(|| v.parse().ok()).flatten()
}

/// Whether an `If-None-Match` value (`*`, or a list of tags, weak or strong) matches `etag`
/// (weak comparison, as RFC 9110 prescribes for `If-None-Match`).
fn etag_matches(header: &str, etag: &str) -> bool {
    let etag = etag.trim_start_matches("W/");
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

/// The representation to send for `Accept-Encoding: accept` (RFC 9110 §12.5.3): the available
/// coding with the highest q-value (an unlisted coding takes `*`'s, else 0; identity is
/// acceptable unless refused), Brotli before zstd before gzip before identity on equal q.
/// With no header, identity.
pub fn choose<'a>(reps: &'a [Representation], accept: &str) -> &'a Representation {
    let identity = &reps[0];
    if accept.trim().is_empty() {
        return identity;
    }
    let mut listed: Vec<(&str, f32)> = Vec::new();
    'items: for item in accept.split(',') {
        let mut parts = item.split(';');
        let coding = match parts.next().unwrap_or("").trim() {
            // RFC 9110 §8.4.1.3: x-gzip is gzip.
            c if c.eq_ignore_ascii_case("x-gzip") => "gzip",
            "" => continue,
            c => c,
        };
        let mut q = 1.0f32;
        for p in parts {
            let p = p.trim();
            if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                match parse_q(v.trim()) {
                    Some(v) => q = v,
                    // A malformed weight: the element is ignored.
                    None => continue 'items,
                }
            }
        }
        listed.push((coding, q));
    }
    let q_of = |token: &str| -> f32 {
        let find = |t: &str| {
            listed
                .iter()
                .find(|(c, _)| c.eq_ignore_ascii_case(t))
                .map(|l| l.1)
        };
        match find(token) {
            Some(q) => q,
            None => match find("*") {
                Some(q) => q,
                // identity is acceptable unless excluded, but only when nothing listed is.
                None if token == "identity" => 0.001,
                None => 0.0,
            },
        }
    };
    let rank = |e: Encoding| match e {
        Encoding::Brotli => 0,
        Encoding::Zstd => 1,
        Encoding::Gzip => 2,
        Encoding::Identity => 3,
    };
    reps.iter()
        .map(|r| (r, q_of(r.encoding.token())))
        .filter(|(_, q)| *q > 0.0)
        .max_by(|(a, qa), (b, qb)| {
            qa.partial_cmp(qb)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(rank(b.encoding).cmp(&rank(a.encoding)))
        })
        .map_or(identity, |(r, _)| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    static REPS: [Representation; 3] = [
        Representation {
            encoding: Encoding::Identity,
            etag: "\"i\"",
            size: 10,
            body: Body::Embedded(b"0123456789"),
        },
        Representation {
            encoding: Encoding::Brotli,
            etag: "\"b\"",
            size: 5,
            body: Body::Embedded(b"brotl"),
        },
        Representation {
            encoding: Encoding::Gzip,
            etag: "\"g\"",
            size: 6,
            body: Body::Embedded(b"gzip.."),
        },
    ];

    fn pick(accept: &str) -> Encoding {
        choose(&REPS, accept).encoding
    }

    #[test]
    fn negotiation_follows_q_values() {
        assert_eq!(pick(""), Encoding::Identity);
        assert_eq!(pick("gzip, deflate, br"), Encoding::Brotli);
        assert_eq!(pick("gzip;q=1, br;q=0"), Encoding::Gzip);
        assert_eq!(pick("gzip;q=0.5, br;q=0.8"), Encoding::Brotli);
        assert_eq!(pick("gzip;q=0.9, br;q=0.8"), Encoding::Gzip);
        assert_eq!(pick("identity"), Encoding::Identity);
        assert_eq!(pick("*"), Encoding::Brotli);
        assert_eq!(pick("br;q=0, gzip;q=0"), Encoding::Identity);
        assert_eq!(pick("deflate"), Encoding::Identity);
        assert_eq!(pick("BR"), Encoding::Brotli);
        // Identity refused and nothing else offered: identity anyway (a 406 helps nobody).
        assert_eq!(pick("identity;q=0, zstd"), Encoding::Identity);
        assert_eq!(pick("br;q=0.000, gzip"), Encoding::Gzip);
        assert_eq!(pick("*;q=0, gzip"), Encoding::Gzip);
        assert_eq!(pick("*;q=0"), Encoding::Identity);
        assert_eq!(pick(" br ; q=0.5 ,  gzip ; q=0.4 "), Encoding::Brotli);
        assert_eq!(pick("x-gzip"), Encoding::Gzip);
        // Malformed weights are ignored, not taken as preferences.
        assert_eq!(pick("br;q=2, gzip"), Encoding::Gzip);
        assert_eq!(pick("br;q=NaN, gzip;q=0.1"), Encoding::Gzip);
        assert_eq!(pick("br;q=abc"), Encoding::Identity);
    }

    #[test]
    fn if_none_match_uses_weak_comparison() {
        assert!(etag_matches("\"b\"", "\"b\""));
        assert!(etag_matches("W/\"b\"", "\"b\""));
        assert!(etag_matches("\"x\", \"b\"", "\"b\""));
        assert!(etag_matches("*", "\"b\""));
        assert!(!etag_matches("\"i\"", "\"b\""));
    }
}

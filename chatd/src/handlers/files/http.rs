//! The HTTPS download server (optional, `--files-https-listen`): `GET` and `HEAD`
//! `/f/{file_id}?u=..&e=..&s=..` at signed, expiring URLs ([`crate::files::urls`]), so a CDN or a
//! reverse proxy can serve attachments and avatars. It also serves the one-click unsubscribe
//! links of email digests ([`crate::handlers::unsubscribe`]).
//!
//! - The signature and expiry are checked first (403 when expired or tampered), then whether the
//!   URL's user may still read the file (404, like a file that does not exist).
//! - Content is addressed by its hash, so it never changes under its URL: the `ETag` is the
//!   SHA-256 (a strong validator; `If-None-Match` answers 304) and `Cache-Control` is `public`
//!   and `immutable` until the URL expires.
//! - `Range: bytes=a-b`, `a-` and `-n` (one range) answer 206 with `Content-Range`; a range
//!   past the end answers 416; several ranges are answered with the whole file (200), which
//!   HTTP allows.
//! - The name goes in `Content-Disposition: attachment` (percent-encoded), the detected type in
//!   `Content-Type`, with `X-Content-Type-Options: nosniff`: a browser never runs an upload.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::TryStreamExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::io::AsyncReadExt as _;

use super::access;
use crate::files::urls::UrlError;
use crate::state::{AppState, now_ms};

/// The body type of every answer.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// A byte range of a file, `start..end` (end exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAsk {
    /// The whole file (no header, several ranges, or a unit other than bytes).
    Whole,
    /// One satisfiable range.
    Part(ByteRange),
    /// A range the file cannot satisfy (416).
    Unsatisfiable,
}

/// Parses a `Range` header value against a file of `size` bytes (RFC 9110 14.1).
pub fn parse_range(value: Option<&str>, size: u64) -> RangeAsk {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let range = match (first.trim(), last.trim()) {
        ("", "") => return RangeAsk::Whole,
        ("", suffix) => match suffix.parse::<u64>() {
            Ok(0) => return RangeAsk::Unsatisfiable,
            Ok(n) => ByteRange {
                start: size.saturating_sub(n),
                end: size,
            },
            Err(_) => return RangeAsk::Whole,
        },
        (start, last) => {
            let Ok(start) = start.parse::<u64>() else {
                return RangeAsk::Whole;
            };
            let end = if last.is_empty() {
                size
            } else {
                match last.parse::<u64>() {
                    Ok(l) if l >= start => l.saturating_add(1).min(size),
                    _ => return RangeAsk::Whole,
                }
            };
            ByteRange { start, end }
        }
    };
    if range.start >= size || range.start >= range.end {
        RangeAsk::Unsatisfiable
    } else {
        RangeAsk::Part(range)
    }
}

/// A text answer.
pub(crate) fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    text_answer(status, "text/plain; charset=utf-8", text)
}

/// An answer of `text` as `content_type`.
pub(crate) fn text_answer(
    status: StatusCode,
    content_type: &'static str,
    text: impl Into<String>,
) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from(text.into()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// `filename*=UTF-8''...`: every byte outside the RFC 5987 attribute characters percent-encoded.
fn disposition(name: &str) -> String {
    if name.is_empty() {
        return "attachment".to_owned();
    }
    let mut out = String::from("attachment; filename*=UTF-8''");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Answers one request.
pub async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Response<Body> {
    if req.uri().path() == crate::outbox::unsubscribe::PATH {
        let query = req.uri().query().unwrap_or("").to_owned();
        return crate::handlers::unsubscribe::handle(&state, req.method().clone(), &query).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    let Some(file_id) = req.uri().path().strip_prefix("/f/") else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let Some(signer) = state.files.urls.as_ref() else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let now = now_ms();
    let (user_id, expires_s) = match signer.verify(file_id, req.uri().query().unwrap_or(""), now) {
        Ok(ok) => ok,
        Err(UrlError::Expired) => return plain(StatusCode::FORBIDDEN, "download url expired\n"),
        Err(_) => return plain(StatusCode::FORBIDDEN, "invalid download url\n"),
    };
    let file = match access::readable(&state, user_id, file_id).await {
        Ok(file) => file,
        Err(e) if e.code == chatproto::pb::ErrorCode::NotFound => {
            return plain(StatusCode::NOT_FOUND, "not found\n");
        }
        Err(_) => return plain(StatusCode::SERVICE_UNAVAILABLE, "try again later\n"),
    };
    let size = file.info.size;
    let etag = format!("\"{}\"", file.content_key());
    let max_age = (expires_s.saturating_mul(1000) - now).max(0) / 1000;
    let mut builder = Response::builder()
        .header(header::ETAG, &etag)
        .header(
            header::CACHE_CONTROL,
            format!("public, max-age={max_age}, immutable"),
        )
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    let if_none_match = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")) {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(empty())
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "error\n"));
    }
    let range = parse_range(
        req.headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok()),
        size,
    );
    let (status, part) = match range {
        RangeAsk::Whole => (
            StatusCode::OK,
            ByteRange {
                start: 0,
                end: size,
            },
        ),
        RangeAsk::Part(part) => {
            builder = builder.header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", part.start, part.end - 1),
            );
            (StatusCode::PARTIAL_CONTENT, part)
        }
        RangeAsk::Unsatisfiable => {
            return builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                .body(empty())
                .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "error\n"));
        }
    };
    builder = builder
        .status(status)
        .header(header::CONTENT_TYPE, &file.info.mime)
        .header(header::CONTENT_LENGTH, part.end - part.start)
        .header(header::CONTENT_DISPOSITION, disposition(&file.info.name));
    if req.method() == Method::HEAD {
        return builder
            .body(empty())
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "error\n"));
    }
    let reader = match state
        .files
        .blobs
        .open(&file.content_key(), part.start)
        .await
    {
        Ok(Some(reader)) => reader.take(part.end - part.start),
        Err(crate::files::blob::BlobError::Sealed(e)) => {
            tracing::error!(file = file.id(), error = %e, "a file's stored bytes do not open");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the file's stored content does not open\n",
            );
        }
        _ => return plain(StatusCode::SERVICE_UNAVAILABLE, "try again later\n"),
    };
    let stream =
        tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024).map_ok(Frame::data);
    builder
        .body(StreamBody::new(stream).boxed_unsync())
        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "error\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(start: u64, end: u64) -> RangeAsk {
        RangeAsk::Part(ByteRange { start, end })
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range(None, 100), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=0-9"), 100), part(0, 10));
        assert_eq!(parse_range(Some("bytes=90-"), 100), part(90, 100));
        assert_eq!(parse_range(Some("bytes=90-200"), 100), part(90, 100));
        assert_eq!(parse_range(Some("bytes=-10"), 100), part(90, 100));
        assert_eq!(parse_range(Some("bytes=-500"), 100), part(0, 100));
        assert_eq!(
            parse_range(Some("bytes=100-"), 100),
            RangeAsk::Unsatisfiable
        );
        assert_eq!(parse_range(Some("bytes=-0"), 100), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), RangeAsk::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 100), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=9-2"), 100), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=0-0"), 0), RangeAsk::Unsatisfiable);
    }

    #[test]
    fn names_are_percent_encoded_in_the_disposition() {
        assert_eq!(disposition(""), "attachment");
        assert_eq!(
            disposition("résumé \"final\".pdf"),
            "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf"
        );
    }
}

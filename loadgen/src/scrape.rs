//! Reading chatd's Prometheus `/metrics` (admin HTTP): server memory, open connections and a few
//! counters, to relate the load to what the server spent on it. One HTTP/1.1 GET with hyper's
//! client (chunked or sized answers alike) over a TCP stream; the admin endpoint is local and
//! unencrypted.

use std::collections::BTreeMap;
use std::time::Duration;

use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, HOST};
use hyper_util::rt::TokioIo;
use serde::Serialize;

use crate::error::LoadgenError;

/// Largest metrics page accepted.
const MAX_BODY: usize = 8 * 1024 * 1024;
/// How long one scrape may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A parsed `http://host:port/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsUrl {
    /// `host:port`.
    pub authority: String,
    /// The path, `/metrics` when the URL has none.
    pub path: String,
}

impl MetricsUrl {
    /// Parses an `http://` URL; the message says what is wrong.
    pub fn parse(url: &str) -> Result<MetricsUrl, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url:?}: only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/metrics"),
        };
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or_else(|| format!("{url:?}: the address needs a port"))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(format!("{url:?}: bad host or port"));
        }
        Ok(MetricsUrl {
            authority: authority.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// The server figures loadgen reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerSample {
    /// `chatd_connections_open`.
    pub connections_open: Option<f64>,
    /// `process_resident_memory_bytes`.
    pub rss_bytes: Option<f64>,
    /// `chatd_events_sent_total`.
    pub events_sent: Option<f64>,
    /// `chatd_messages_persisted_total`.
    pub messages_persisted: Option<f64>,
    /// `chatd_rate_limited_total`, every scope.
    pub rate_limited: Option<f64>,
    /// `chatd_store_commands_total`: database round trips so far (MongoDB backend).
    pub store_commands: Option<f64>,
    /// `chatd_requests_total` by request kind (every outcome).
    pub requests: BTreeMap<String, f64>,
}

impl ServerSample {
    /// Picks the figures out of a Prometheus text exposition.
    pub fn from_text(text: &str) -> Self {
        Self {
            connections_open: metric_sum(text, "chatd_connections_open"),
            rss_bytes: metric_sum(text, "process_resident_memory_bytes"),
            events_sent: metric_sum(text, "chatd_events_sent_total"),
            messages_persisted: metric_sum(text, "chatd_messages_persisted_total"),
            rate_limited: metric_sum(text, "chatd_rate_limited_total"),
            store_commands: metric_sum(text, "chatd_store_commands_total"),
            requests: sum_by_label(text, "chatd_requests_total", "kind"),
        }
    }

    /// The sum of several nodes' samples (a figure is present if any node had it).
    pub fn sum(samples: &[ServerSample]) -> Self {
        fn add(a: Option<f64>, b: Option<f64>) -> Option<f64> {
            match (a, b) {
                (Some(x), Some(y)) => Some(x + y),
                (x, None) => x,
                (None, y) => y,
            }
        }
        samples.iter().fold(Self::default(), |acc, s| {
            let mut requests = acc.requests;
            for (kind, n) in &s.requests {
                *requests.entry(kind.clone()).or_insert(0.0) += n;
            }
            Self {
                connections_open: add(acc.connections_open, s.connections_open),
                rss_bytes: add(acc.rss_bytes, s.rss_bytes),
                events_sent: add(acc.events_sent, s.events_sent),
                messages_persisted: add(acc.messages_persisted, s.messages_persisted),
                rate_limited: add(acc.rate_limited, s.rate_limited),
                store_commands: add(acc.store_commands, s.store_commands),
                requests,
            }
        })
    }

    /// Requests by kind between `earlier` and this sample.
    pub fn requests_since(&self, earlier: &ServerSample) -> BTreeMap<String, f64> {
        self.requests
            .iter()
            .map(|(kind, n)| {
                let before = earlier.requests.get(kind).copied().unwrap_or(0.0);
                (kind.clone(), n - before)
            })
            .filter(|(_, n)| *n > 0.0)
            .collect()
    }
}

/// The samples of metric `name` summed by the value of label `label`.
pub fn sum_by_label(text: &str, name: &str, label: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let needle = format!("{label}=\"");
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name).and_then(|r| r.strip_prefix('{')) else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once('}') else {
            continue;
        };
        let Some(v) = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        let Some(start) = labels.find(&needle).map(|i| i + needle.len()) else {
            continue;
        };
        let Some(end) = labels[start..].find('"') else {
            continue;
        };
        *out.entry(labels[start..start + end].to_owned())
            .or_insert(0.0) += v;
    }
    out
}

/// The sum of every sample of metric `name` (all label sets), or `None` if there is none.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        // The name must end here: a space or the label set, not a longer name.
        let value = if let Some(labels) = rest.strip_prefix('{') {
            labels.rsplit_once('}').map(|(_, v)| v)
        } else if rest.starts_with(' ') {
            Some(rest)
        } else {
            None
        };
        if let Some(v) = value
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
        {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

/// Fetches and parses one metrics page.
pub async fn scrape(url: &str) -> Result<ServerSample, LoadgenError> {
    let err = |message: String| LoadgenError::Metrics {
        url: url.to_owned(),
        message,
    };
    let parsed = MetricsUrl::parse(url).map_err(err)?;
    let body = tokio::time::timeout(TIMEOUT, get(&parsed))
        .await
        .map_err(|_| err(format!("no answer within {TIMEOUT:?}")))?
        .map_err(err)?;
    Ok(ServerSample::from_text(&body))
}

/// Scrapes every URL and sums the nodes; `None` without URLs.
pub async fn scrape_all(urls: &[String]) -> Result<Option<ServerSample>, LoadgenError> {
    if urls.is_empty() {
        return Ok(None);
    }
    let mut samples = Vec::with_capacity(urls.len());
    for url in urls {
        samples.push(scrape(url).await?);
    }
    Ok(Some(ServerSample::sum(&samples)))
}

async fn get(url: &MetricsUrl) -> Result<String, String> {
    let stream = tokio::net::TcpStream::connect(&url.authority)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("cannot start HTTP: {e}"))?;
    // The connection runs until the answer is read and `sender` is dropped.
    let connection = tokio::spawn(connection);
    let request = hyper::Request::get(url.path.as_str())
        .header(HOST, url.authority.as_str())
        .header(ACCEPT, "text/plain")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("bad request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP status {status}"));
    }
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| match e.downcast::<http_body_util::LengthLimitError>() {
            Ok(_) => format!("the answer is larger than {MAX_BODY} bytes"),
            Err(e) => format!("cannot read the answer: {e}"),
        })?
        .to_bytes();
    drop(sender);
    connection.abort();
    String::from_utf8(body.to_vec()).map_err(|_| "the answer is not UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "\
# HELP chatd_connections_open Client connections currently open.
# TYPE chatd_connections_open gauge
chatd_connections_open 1000
chatd_connections_open_extra 5
# TYPE chatd_rate_limited counter
chatd_rate_limited_total{scope=\"send\"} 3
chatd_rate_limited_total{scope=\"login_address\"} 4
chatd_requests_total{kind=\"send_message\",outcome=\"ok\"} 90
chatd_requests_total{kind=\"send_message\",outcome=\"rate_limited\"} 10
chatd_requests_total{kind=\"get_chat_events\",outcome=\"ok\"} 7
process_resident_memory_bytes 123456789
chatd_events_sent_total 5.5e6
";

    #[test]
    fn samples_are_summed_over_label_sets_and_names_match_exactly() {
        let s = ServerSample::from_text(PAGE);
        assert_eq!(s.connections_open, Some(1000.0));
        assert_eq!(s.rate_limited, Some(7.0));
        assert_eq!(s.rss_bytes, Some(123_456_789.0));
        assert_eq!(s.events_sent, Some(5_500_000.0));
        assert_eq!(s.messages_persisted, None);
        assert_eq!(s.requests.get("send_message"), Some(&100.0));
        assert_eq!(s.requests.get("get_chat_events"), Some(&7.0));
        let two = ServerSample::sum(&[s.clone(), s.clone()]);
        assert_eq!(two.connections_open, Some(2000.0));
        assert_eq!(two.messages_persisted, None);
        assert_eq!(two.requests.get("send_message"), Some(&200.0));
        let during = two.requests_since(&s);
        assert_eq!(during.get("send_message"), Some(&100.0));
        assert_eq!(during.get("get_chat_events"), Some(&7.0));
        assert!(s.requests_since(&s).is_empty());
    }

    #[test]
    fn urls_are_checked() {
        assert_eq!(
            MetricsUrl::parse("http://127.0.0.1:9464"),
            Ok(MetricsUrl {
                authority: "127.0.0.1:9464".into(),
                path: "/metrics".into()
            })
        );
        assert_eq!(
            MetricsUrl::parse("http://[::1]:9/x").map(|u| u.path),
            Ok("/x".into())
        );
        assert!(MetricsUrl::parse("https://h:1/metrics").is_err());
        assert!(MetricsUrl::parse("http://h/metrics").is_err());
        assert!(MetricsUrl::parse("http://:80/").is_err());
    }

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// An HTTP endpoint on loopback that answers one request with `answer` (raw bytes, as a
    /// server would write them); its URL and the request it received.
    async fn endpoint(answer: Vec<u8>) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                let n = conn.read(&mut buf).await.unwrap();
                assert!(n > 0, "the client closed before the end of its request");
                request.extend_from_slice(&buf[..n]);
            }
            // The client may close first once it has what it needs (an oversized answer).
            let _ = conn.write_all(&answer).await;
            String::from_utf8_lossy(&request).into_owned()
        });
        (format!("http://{addr}/metrics"), server)
    }

    #[tokio::test]
    async fn scrapes_a_chunked_http_1_1_answer() {
        let mut answer =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec();
        for chunk in PAGE.as_bytes().chunks(100) {
            answer.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            answer.extend_from_slice(chunk);
            answer.extend_from_slice(b"\r\n");
        }
        answer.extend_from_slice(b"0\r\n\r\n");
        let (url, server) = endpoint(answer).await;
        let sample = scrape(&url).await.unwrap();
        assert_eq!(sample, ServerSample::from_text(PAGE));
        assert_eq!(sample.connections_open, Some(1000.0));
        let request = server.await.unwrap();
        assert!(
            request.starts_with("GET /metrics HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request
                .to_ascii_lowercase()
                .contains("\r\nhost: 127.0.0.1:"),
            "{request}"
        );
    }

    #[tokio::test]
    async fn errors_name_the_status_the_size_and_the_refusal() {
        let (url, _server) =
            endpoint(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".to_vec())
                .await;
        let Err(LoadgenError::Metrics { message, .. }) = scrape(&url).await else {
            panic!("a 503 must fail");
        };
        assert!(message.contains("503"), "{message}");

        let mut huge = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        )
        .into_bytes();
        huge.resize(huge.len() + MAX_BODY + 1, b'#');
        let (url, _server) = endpoint(huge).await;
        let Err(LoadgenError::Metrics { message, .. }) = scrape(&url).await else {
            panic!("an answer over {MAX_BODY} bytes must fail");
        };
        assert!(message.contains("larger than"), "{message}");

        let refused = scrape("http://127.0.0.1:1/metrics").await;
        assert!(matches!(refused, Err(LoadgenError::Metrics { .. })));
    }
}

//! The URIs of the backing services: [`ServiceUri`] (any URI, password hidden from logs) and
//! [`RedisUrl`], the `--redis-url` setting parsed once into the [`RedisTarget`] the cluster
//! code connects to.
//!
//! Redis URL forms (documented in `chatd --help`):
//! - `redis://[user:pass@]host:port[/db]`, `redis+unix:///path`, `unix:///path`, `valkey://...`:
//!   one standalone Redis (or a proxy in front of several). Pub/sub uses SUBSCRIBE/PUBLISH.
//! - `redis+cluster://[user:pass@]host:port[,host:port...]`, or several `redis://host:port` URLs
//!   separated by commas: a Redis Cluster, given by seed nodes (any subset of the cluster).
//!   Pub/sub uses sharded SSUBSCRIBE/SPUBLISH.
//! - TLS (`rediss://`) is not built in: it is refused with a clear error rather than failing at
//!   the first connection.

use std::fmt;

use redis::{ConnectionInfo, IntoConnectionInfo as _};

/// A connection URI for a backing service. `Debug` and `Display` hide the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceUri(String);

impl ServiceUri {
    /// The full URI, password included, for the client library.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URI with any password replaced by `***`, for logs.
    pub fn redacted(&self) -> String {
        Self::redact_str(&self.0)
    }

    /// `uri` with any password replaced by `***` (the rule of [`redacted`](Self::redacted)).
    pub fn redact_str(uri: &str) -> String {
        let Some((scheme, rest)) = uri.split_once("://") else {
            return uri.to_owned();
        };
        // Userinfo ends at the last '@' before the path.
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                let masked = if userinfo.contains(':') {
                    format!("{user}:***")
                } else {
                    user.to_owned()
                };
                format!("{scheme}://{masked}{}", &rest[at..])
            }
            None => uri.to_owned(),
        }
    }
}

impl fmt::Debug for ServiceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceUri({:?})", self.redacted())
    }
}

impl fmt::Display for ServiceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// The `--redis-url` setting: the URI as given (for logs, password hidden) and where it points.
#[derive(Debug, Clone)]
pub struct RedisUrl {
    /// The URL as configured.
    pub uri: ServiceUri,
    /// The servers it names.
    pub target: RedisTarget,
}

impl RedisUrl {
    /// Parses one of the forms in the module documentation (a clap value parser).
    pub fn parse(url: &str) -> Result<RedisUrl, RedisUrlError> {
        Ok(RedisUrl {
            target: RedisTarget::parse(url)?,
            uri: ServiceUri(url.to_owned()),
        })
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.uri.fmt(f)
    }
}

/// Parses `--mongo-uri` (a clap value parser): `mongodb://` or `mongodb+srv://` with a host.
pub fn parse_mongo_uri(uri: &str) -> Result<ServiceUri, String> {
    validate_uri(uri.to_owned(), &["mongodb", "mongodb+srv"])
}

/// Where Redis is.
#[derive(Debug, Clone)]
pub enum RedisTarget {
    /// One standalone server.
    Standalone(ConnectionInfo),
    /// A Redis Cluster, by its seed nodes.
    Cluster(Vec<ConnectionInfo>),
}

/// Why a Redis URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RedisUrlError(String);

const TLS_SCHEMES: &[&str] = &["rediss", "valkeys", "rediss+cluster"];
const STANDALONE_SCHEMES: &[&str] = &["redis", "redis+unix", "unix", "valkey"];

fn parse_one(url: &str) -> Result<ConnectionInfo, RedisUrlError> {
    url.into_connection_info()
        .map_err(|e| RedisUrlError(format!("invalid redis url {:?}: {e}", redact(url))))
}

/// The URL with any password replaced, for error messages.
fn redact(url: &str) -> String {
    ServiceUri::redact_str(url)
}

impl RedisTarget {
    /// Parses the `--redis-url` forms listed in the module documentation.
    pub fn parse(url: &str) -> Result<RedisTarget, RedisUrlError> {
        let url = url.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(RedisUrlError(
                "must be a url such as redis://host:6379 or redis+cluster://host1:7000,host2:7001"
                    .into(),
            ));
        };
        let scheme = scheme.to_ascii_lowercase();
        if TLS_SCHEMES.contains(&scheme.as_str()) {
            return Err(RedisUrlError(format!(
                "{scheme}:// (TLS) is not supported by this build; use redis:// or redis+cluster://"
            )));
        }
        if scheme == "redis+cluster" {
            // Authority: up to the first '/' or '?'; userinfo before its last '@'.
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            let (authority, tail) = rest.split_at(end);
            let (userinfo, hosts) = match authority.rfind('@') {
                Some(at) => (&authority[..=at], &authority[at + 1..]),
                None => ("", authority),
            };
            let seeds = hosts
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(|host| parse_one(&format!("redis://{userinfo}{host}{tail}")))
                .collect::<Result<Vec<_>, _>>()?;
            if seeds.is_empty() {
                return Err(RedisUrlError(
                    "redis+cluster:// needs at least one host:port".into(),
                ));
            }
            return Ok(RedisTarget::Cluster(seeds));
        }
        if !STANDALONE_SCHEMES.contains(&scheme.as_str()) {
            return Err(RedisUrlError(format!(
                "unsupported scheme {scheme:?}; expected redis, redis+cluster, redis+unix, unix or valkey"
            )));
        }
        if url.contains(',') {
            let seeds = url
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(|u| {
                    if u.starts_with("redis://") || u.starts_with("valkey://") {
                        parse_one(u)
                    } else {
                        Err(RedisUrlError(format!(
                            "cluster seed {:?} must be a redis:// url",
                            redact(u)
                        )))
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(RedisTarget::Cluster(seeds));
        }
        Ok(RedisTarget::Standalone(parse_one(url)?))
    }

    /// True for a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisTarget::Cluster(_))
    }
}

/// Checks the shape `scheme://rest` with an allowed scheme, a non-empty rest and no
/// whitespace or control characters. The client libraries do the full parse when connecting.
fn validate_uri(uri: String, schemes: &[&str]) -> Result<ServiceUri, String> {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err("must be a uri of the form scheme://...".to_owned());
    };
    if !schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
        return Err(format!(
            "unsupported scheme {scheme:?}; expected one of {}",
            schemes.join(", ")
        ));
    }
    if rest.is_empty() || rest.starts_with('/') && scheme.starts_with("mongo") {
        return Err("has no host".to_owned());
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace".to_owned());
    }
    Ok(ServiceUri(uri))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_uris_hide_passwords() {
        let uri = ServiceUri("mongodb://app:s3cret@db1:27017,db2/chat?replicaSet=rs0".into());
        assert_eq!(
            uri.redacted(),
            "mongodb://app:***@db1:27017,db2/chat?replicaSet=rs0"
        );
        assert!(!format!("{uri:?}").contains("s3cret"));
        assert!(!uri.to_string().contains("s3cret"));
        assert_eq!(
            uri.as_str(),
            "mongodb://app:s3cret@db1:27017,db2/chat?replicaSet=rs0"
        );
        let plain = ServiceUri("redis://cache:6379/0".into());
        assert_eq!(plain.redacted(), "redis://cache:6379/0");
        let user_only = ServiceUri("redis://user@cache".into());
        assert_eq!(user_only.redacted(), "redis://user@cache");
        let at_in_password = ServiceUri("redis://u:p@ss@cache/0".into());
        assert_eq!(at_in_password.redacted(), "redis://u:***@cache/0");
    }

    fn hosts(target: &RedisTarget) -> Vec<String> {
        let infos = match target {
            RedisTarget::Standalone(info) => vec![info.clone()],
            RedisTarget::Cluster(seeds) => seeds.clone(),
        };
        infos.iter().map(|i| i.addr().to_string()).collect()
    }

    #[test]
    fn standalone_urls() {
        let t = RedisTarget::parse("redis://cache:6380/2").expect("standalone");
        assert!(!t.is_cluster());
        assert_eq!(hosts(&t), ["cache:6380"]);
        let RedisTarget::Standalone(info) = &t else {
            panic!("standalone")
        };
        assert_eq!(info.redis_settings().db(), 2);
        assert!(RedisTarget::parse("redis+unix:///run/redis.sock").is_ok());
    }

    #[test]
    fn cluster_urls_in_both_forms() {
        let t = RedisTarget::parse("redis+cluster://u:pw@a:7000,b:7001, c:7002").expect("cluster");
        assert!(t.is_cluster());
        assert_eq!(hosts(&t), ["a:7000", "b:7001", "c:7002"]);
        let RedisTarget::Cluster(seeds) = &t else {
            panic!("cluster")
        };
        for seed in seeds {
            assert_eq!(seed.redis_settings().username(), Some("u"));
            assert_eq!(seed.redis_settings().password(), Some("pw"));
        }
        let t = RedisTarget::parse("redis://a:7000,redis://b:7001").expect("seed list");
        assert!(t.is_cluster());
        assert_eq!(hosts(&t), ["a:7000", "b:7001"]);
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, needle) in [
            ("localhost:6379", "must be a url"),
            ("rediss://cache:6380", "TLS"),
            ("http://cache", "unsupported scheme"),
            ("redis+cluster://", "at least one"),
            ("redis://a:1,b:2", "must be a redis:// url"),
            ("redis://:secret@a:1,b:2", "must be a redis:// url"),
        ] {
            let err = RedisTarget::parse(url).expect_err(url).to_string();
            assert!(err.contains(needle), "{url}: {err}");
            assert!(!err.contains("secret"), "{url}: {err}");
        }
    }
}

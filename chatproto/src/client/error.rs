//! Client errors: what the server answered versus what went wrong on the way.

use std::time::Duration;

use crate::pb;
use crate::tls::TlsError;

/// An error answer from the server (`Response.error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}{}", field_suffix(.field))]
pub struct RemoteError {
    /// The error code (`Unspecified` when the server sent a code this build does not know).
    pub code: pb::ErrorCode,
    /// Human-readable description.
    pub message: String,
    /// The offending field for INVALID_ARGUMENT / TOO_LARGE, e.g. `"register.username"`.
    pub field: String,
    /// For RATE_LIMITED / UNAVAILABLE: the earliest useful retry.
    pub retry_after: Option<Duration>,
}

/// The field `login`'s two-factor answer names (protocol.md 17.3).
const TWO_FACTOR_CODE_FIELD: &str = "login.two_factor_code";

fn field_suffix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!(" (field {field})")
    }
}

impl RemoteError {
    /// Converts the wire error.
    pub fn from_pb(e: pb::Error) -> Self {
        Self {
            code: pb::ErrorCode::try_from(e.code).unwrap_or(pb::ErrorCode::Unspecified),
            message: e.message,
            field: e.field,
            retry_after: (e.retry_after_ms > 0)
                .then(|| Duration::from_millis(u64::from(e.retry_after_ms))),
        }
    }

    /// True for `login`'s answer to an account with two-factor login (protocol.md 17.3) when
    /// the code was missing, wrong or used: ask the user for a code and log in again with it
    /// ([`Client::login_with_code`](super::Client::login_with_code)).
    pub fn needs_two_factor_code(&self) -> bool {
        self.code == pb::ErrorCode::Unauthenticated && self.field == TWO_FACTOR_CODE_FIELD
    }

    /// UNAVAILABLE, RATE_LIMITED and TOO_EARLY may be retried for any request.
    pub fn is_retryable(&self) -> bool {
        self.code.is_retryable()
    }
}

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error("server error {0}")]
    Remote(#[from] RemoteError),
    /// The TLS configuration could not be built.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The configuration is unusable (no servers, bad address).
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// No server could be reached; each attempt's failure is listed.
    #[error("could not connect: {0}")]
    Connect(String),
    /// A server refused the connection at one of its connection limits (`SERVER_BUSY`,
    /// protocol.md 3.7); the attempts that failed otherwise are listed too. Retry after a
    /// backoff of a second or more: the reconnecting client does.
    #[error("server busy: {0}")]
    ServerBusy(String),
    /// The connection was lost before the answer arrived. The request may or may not have been
    /// carried out (requests that are safe to repeat are retried instead of failing like this).
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// The request (with its retries) did not complete within the request timeout.
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    /// The client is closed: shut down by the application, session revoked, or credentials
    /// rejected on reconnect.
    #[error("client closed: {0}")]
    Closed(String),
    /// The server broke the protocol (an answer of the wrong kind, an undecodable frame).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The operation needs an authenticated session.
    #[error("not authenticated")]
    NotAuthenticated,
    /// Reading or writing a local file or stream of a transfer failed.
    #[error("local file: {0}")]
    LocalIo(String),
}

impl ClientError {
    /// The server's error code, when the server answered with an error.
    pub fn code(&self) -> Option<pb::ErrorCode> {
        match self {
            Self::Remote(e) => Some(e.code),
            _ => None,
        }
    }

    /// True when the server asks for a two-factor code ([`RemoteError::needs_two_factor_code`]).
    pub fn needs_two_factor_code(&self) -> bool {
        matches!(self, Self::Remote(e) if e.needs_two_factor_code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_errors_convert_with_field_and_retry_hint() {
        let e = RemoteError::from_pb(pb::Error {
            code: pb::ErrorCode::RateLimited as i32,
            message: "slow down".into(),
            field: String::new(),
            retry_after_ms: 1500,
        });
        assert_eq!(e.code, pb::ErrorCode::RateLimited);
        assert_eq!(e.retry_after, Some(Duration::from_millis(1500)));
        assert!(e.is_retryable());
        let e = RemoteError::from_pb(pb::Error {
            code: pb::ErrorCode::InvalidArgument as i32,
            message: "too short".into(),
            field: "register.username".into(),
            retry_after_ms: 0,
        });
        assert!(!e.is_retryable());
        assert_eq!(e.retry_after, None);
        assert_eq!(
            e.to_string(),
            "InvalidArgument: too short (field register.username)"
        );
        let unknown = RemoteError::from_pb(pb::Error {
            code: 999,
            ..Default::default()
        });
        assert_eq!(unknown.code, pb::ErrorCode::Unspecified);
    }
}

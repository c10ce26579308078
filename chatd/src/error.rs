//! The error every request handler returns, and how it becomes a wire `pb::Error`.

use std::time::Duration;

use chatproto::error::CloseCode;
use chatproto::pb;

use crate::limits::keyed::RateLimited;
use crate::store::{ConflictKind, StoreError};
use crate::validate::{FieldError, FieldErrorKind};

/// A request failed; the variant is the wire error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The wire code.
    pub code: pb::ErrorCode,
    /// Human-readable, lowercase, no trailing period.
    pub message: String,
    /// The offending field (`request_kind.field`) for INVALID_ARGUMENT and TOO_LARGE.
    pub field: String,
    /// For RATE_LIMITED and UNAVAILABLE.
    pub retry_after: Option<Duration>,
    /// The connection closes with this code once the answer went out (VERSION_MISMATCH after a
    /// Hello with an unsupported major version).
    pub close: Option<CloseCode>,
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: pb::ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: String::new(),
            retry_after: None,
            close: None,
        }
    }

    /// INVALID_ARGUMENT naming the field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            ..Self::new(pb::ErrorCode::InvalidArgument, message)
        }
    }

    /// UNAUTHENTICATED.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(pb::ErrorCode::Unauthenticated, message)
    }

    /// PERMISSION_DENIED.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(pb::ErrorCode::PermissionDenied, message)
    }

    /// NOT_FOUND for `what` ("chat", "user", "message", ...).
    pub fn not_found(what: &str) -> Self {
        Self::new(pb::ErrorCode::NotFound, format!("{what} not found"))
    }

    /// CONFLICT.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(pb::ErrorCode::Conflict, message)
    }

    /// FAILED_PRECONDITION.
    pub fn precondition(message: impl Into<String>) -> Self {
        Self::new(pb::ErrorCode::FailedPrecondition, message)
    }

    /// UNAVAILABLE with a retry hint.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(Duration::from_millis(500)),
            ..Self::new(pb::ErrorCode::Unavailable, message)
        }
    }

    /// INTERNAL; the detail goes to the log, not to the client.
    pub fn internal() -> Self {
        Self::new(pb::ErrorCode::Internal, "internal error")
    }

    /// The same error, closing the connection with `code` after it was answered.
    pub fn closing(mut self, code: CloseCode) -> Self {
        self.close = Some(code);
        self
    }

    /// The same error naming another field.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }

    /// The wire form.
    pub fn to_pb(&self) -> pb::Error {
        pb::Error {
            code: self.code as i32,
            message: self.message.clone(),
            field: self.field.clone(),
            retry_after_ms: self
                .retry_after
                .map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1))
                .unwrap_or(0),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => ApiError::not_found(what),
            // Spec 9.6: keeping the last admin is an authorization rule, not a state conflict,
            // and so is the acting admin's role, checked again in the write; so is owning the
            // chat one transfers (the owner's role is checked before the store, and again by it
            // for two transfers at once).
            StoreError::Conflict(
                kind @ (ConflictKind::LastAdmin | ConflictKind::NotAdmin | ConflictKind::NotOwner),
            ) => ApiError::denied(kind.to_string()),
            StoreError::Conflict(kind) => ApiError::conflict(kind.to_string()),
            StoreError::Unavailable(msg) => {
                tracing::warn!(error = %msg, "store unavailable");
                ApiError::unavailable("storage unavailable")
            }
            StoreError::Busy(msg) => {
                tracing::debug!(error = %msg, "store busy");
                ApiError::unavailable("storage busy")
            }
            StoreError::Internal(msg) => {
                tracing::error!(error = %msg, "store failure");
                ApiError::internal()
            }
            // Spec 6.2: not on this server's configuration.
            StoreError::Unsupported(what) => ApiError::precondition(what),
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(err: FieldError) -> Self {
        let code = match err.kind {
            FieldErrorKind::Invalid => pb::ErrorCode::InvalidArgument,
            FieldErrorKind::TooLarge => pb::ErrorCode::TooLarge,
        };
        Self {
            field: err.field.to_string(),
            ..Self::new(code, format!("{}: {}", err.field, err.message))
        }
    }
}

impl From<RateLimited> for ApiError {
    fn from(err: RateLimited) -> Self {
        Self {
            retry_after: Some(err.retry_after.max(Duration::from_millis(1))),
            ..Self::new(
                pb::ErrorCode::RateLimited,
                format!("rate limit exceeded: {}", err.scope.label()),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A send that lost to concurrent writers is refused as retryable, like an unreachable
    /// store, with a retry hint.
    #[test]
    fn a_busy_store_is_unavailable_with_a_retry_hint() {
        let err = ApiError::from(StoreError::Busy("lost the race".into()));
        assert_eq!(err.to_pb().code(), pb::ErrorCode::Unavailable);
        assert!(err.retry_after.is_some());
    }
}

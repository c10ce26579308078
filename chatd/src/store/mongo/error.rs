//! Mapping driver errors onto [`StoreError`]: unreachable or failing-over servers are
//! `Unavailable` (the caller may retry), everything else is `Internal`. Duplicate keys are not
//! mapped here: each call site knows what the duplicate means and answers `Conflict` or treats it
//! as "already done".

use mongodb::error::{Error, ErrorKind, WriteFailure};

use crate::store::StoreError;

/// MongoDB's duplicate key error code.
const DUPLICATE_KEY: i32 = 11000;

/// Server error codes that mean "not now" (failover, shutdown, overload), not "wrong".
const TRANSIENT_CODES: &[i32] = &[
    6,     // HostUnreachable
    7,     // HostNotFound
    89,    // NetworkTimeout
    91,    // ShutdownInProgress
    189,   // PrimarySteppedDown
    262,   // ExceededTimeLimit
    9001,  // SocketException
    10107, // NotWritablePrimary
    11600, // InterruptedAtShutdown
    11602, // InterruptedDueToReplStateChange
    13435, // NotPrimaryNoSecondaryOk
    13436, // NotPrimaryOrSecondary
    50,    // MaxTimeMSExpired
    64,    // WriteConcernFailed (wtimeout)
];

/// Maps a driver error.
pub(super) fn map(e: Error) -> StoreError {
    if is_transient(&e) {
        StoreError::Unavailable(format!("mongodb: {e}"))
    } else {
        StoreError::Internal(format!("mongodb: {e}"))
    }
}

fn is_transient(e: &Error) -> bool {
    if e.contains_label("RetryableWriteError") || e.contains_label("TransientTransactionError") {
        return true;
    }
    match e.kind.as_ref() {
        ErrorKind::ServerSelection { .. }
        | ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. }
        | ErrorKind::Shutdown => true,
        ErrorKind::Command(c) => TRANSIENT_CODES.contains(&c.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(c)) => TRANSIENT_CODES.contains(&c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => TRANSIENT_CODES.contains(&w.code),
        _ => false,
    }
}

/// True for the server's duplicate key error code.
pub(super) fn is_duplicate_code(code: i32) -> bool {
    code == DUPLICATE_KEY
}

/// True when the error is a unique index violation.
pub(crate) fn is_duplicate(e: &Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        ErrorKind::Command(c) => c.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .is_some_and(|errors| errors.iter().any(|w| w.code == DUPLICATE_KEY)),
        _ => false,
    }
}

/// MongoDB's code for a namespace (collection) that does not exist.
const NAMESPACE_NOT_FOUND: i32 = 26;

/// True when the error says the collection does not exist (`listIndexes` on a collection no
/// document was written to yet).
pub(super) fn is_namespace_missing(e: &Error) -> bool {
    matches!(e.kind.as_ref(), ErrorKind::Command(c) if c.code == NAMESPACE_NOT_FOUND)
}

/// Data read back from the database did not have the expected shape.
pub(super) fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("corrupt {what} document: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_errors_are_unavailable_and_others_internal() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(matches!(map(Error::from(io)), StoreError::Unavailable(_)));
        assert!(matches!(
            map(Error::custom("a bug")),
            StoreError::Internal(_)
        ));
        assert!(!is_duplicate(&Error::custom("a bug")));
    }
}

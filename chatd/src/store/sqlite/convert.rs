//! Conversions between SQLite values and store types, and the mapping of SQLite errors onto
//! [`StoreError`].
//!
//! SQLite integers are signed 64-bit; ids, sequence numbers and cursors are `u64` in the traits.
//! Every value the store writes fits in `i64` (ids and seqs count up from 1), so reads reject
//! negative values as corruption and writes clamp bounds such as `u64::MAX` ("no limit") to
//! `i64::MAX`, which orders the same way against every stored value.

use rusqlite::types::Type;
use rusqlite::{ErrorCode, Row};

use crate::store::{ConflictKind, StoreError};

/// A `u64` as an SQLite integer; values above `i64::MAX` (only ever "no bound" markers or ids
/// that cannot exist) become `i64::MAX`.
pub(super) fn sql_u64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Reads a non-negative integer column as `u64`.
pub(super) fn get_u64(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(idx)?;
    u64::try_from(v)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Integer, Box::new(e)))
}

/// Reads a nullable non-negative integer column as `Option<u64>`.
pub(super) fn get_opt_u64(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<u64>> {
    let v: Option<i64> = row.get(idx)?;
    v.map(|v| {
        u64::try_from(v)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Integer, Box::new(e)))
    })
    .transpose()
}

/// Reads a protobuf enum stored as its integer value.
pub(super) fn get_enum<E: TryFrom<i32>>(row: &Row<'_>, idx: usize) -> rusqlite::Result<E> {
    let v: i32 = row.get(idx)?;
    E::try_from(v).map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            Type::Integer,
            format!("unknown enum value {v}").into(),
        )
    })
}

/// A `u32` count or page size from an SQLite integer (saturating; counts are never negative).
pub(super) fn count_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

/// A protobuf message as an SQLite blob.
pub(super) fn encode_blob<M: prost::Message>(msg: &M) -> Vec<u8> {
    msg.encode_to_vec()
}

/// Decodes a nullable blob column written by [`encode_blob`]; undecodable bytes are corruption.
pub(super) fn decode_blob<M: prost::Message + Default>(
    row: &Row<'_>,
    idx: usize,
) -> rusqlite::Result<Option<M>> {
    let bytes: Option<Vec<u8>> = row.get(idx)?;
    bytes
        .map(|b| {
            M::decode(b.as_slice()).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(idx, Type::Blob, Box::new(e))
            })
        })
        .transpose()
}

/// Encodes a list of ids as a JSON array, the form `json_each` takes them in.
pub(super) fn json_ids(ids: &[u64]) -> String {
    let mut out = String::with_capacity(ids.len() * 8 + 2);
    out.push('[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&sql_u64(*id).to_string());
    }
    out.push(']');
    out
}

/// Encodes a list of ids as stored in a text column (comma separated).
pub(super) fn join_ids(ids: &[u64]) -> String {
    ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

/// Decodes [`join_ids`] output.
pub(super) fn split_ids(text: &str, idx: usize) -> rusqlite::Result<Vec<u64>> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|part| {
            part.parse::<u64>().map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e))
            })
        })
        .collect()
}

impl From<rusqlite::Error> for StoreError {
    /// Maps SQLite failures: constraint violations are conflicts, a busy or failing disk means
    /// the store is unavailable, anything else is internal.
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(failure, detail) => match failure.code {
                ErrorCode::ConstraintViolation => {
                    StoreError::Conflict(constraint_kind(detail.as_deref()))
                }
                ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
                | ErrorCode::CannotOpen
                | ErrorCode::OutOfMemory
                | ErrorCode::FileLockingProtocolFailed => StoreError::Unavailable(e.to_string()),
                _ => StoreError::Internal(e.to_string()),
            },
            _ => StoreError::Internal(e.to_string()),
        }
    }
}

impl From<prost::DecodeError> for StoreError {
    /// A stored event body that does not decode is corrupt data.
    fn from(e: prost::DecodeError) -> Self {
        StoreError::Internal(format!("corrupt stored event: {e}"))
    }
}

/// The rule behind an SQLite constraint failure. The SQLite text stays here (logged when no
/// rule matches): clients see only the [`ConflictKind`].
fn constraint_kind(detail: Option<&str>) -> ConflictKind {
    let detail = detail.unwrap_or("");
    let known: &[(&str, ConflictKind)] = &[
        ("users.username", ConflictKind::UsernameTaken),
        ("refresh_tokens.hash", ConflictKind::RefreshTokenReused),
        ("messages.sender_id", ConflictKind::ClientMsgIdUsed),
        ("private_pairs", ConflictKind::PrivateChatExists),
        ("reactions.", ConflictKind::ReactionExists),
        ("FOREIGN KEY", ConflictKind::MissingReference),
    ];
    known
        .iter()
        .find(|(needle, _)| detail.contains(needle))
        .map(|(_, kind)| *kind)
        .unwrap_or_else(|| {
            tracing::warn!(detail, "sqlite constraint without a conflict kind");
            ConflictKind::Constraint
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        let ids = [1, 42, u64::MAX];
        assert_eq!(split_ids(&join_ids(&ids), 0).ok(), Some(ids.to_vec()));
        assert_eq!(split_ids("", 0).ok(), Some(Vec::new()));
        assert!(split_ids("1,x", 0).is_err());
    }

    #[test]
    fn bounds_clamp_to_i64() {
        assert_eq!(sql_u64(u64::MAX), i64::MAX);
        assert_eq!(sql_u64(7), 7);
        assert_eq!(json_ids(&[1, 2, u64::MAX]), format!("[1,2,{}]", i64::MAX));
    }

    #[test]
    fn constraint_failures_name_the_rule_and_keep_sqlite_text_inside() {
        assert_eq!(
            constraint_kind(Some("UNIQUE constraint failed: users.username")),
            ConflictKind::UsernameTaken
        );
        let unknown = constraint_kind(Some("CHECK constraint failed: secret_column > 0"));
        assert_eq!(unknown, ConflictKind::Constraint);
        assert!(!unknown.to_string().contains("secret_column"));
        assert_eq!(constraint_kind(None), ConflictKind::Constraint);
    }
}

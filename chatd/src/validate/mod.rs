//! Validation of client input fields, one function per kind of field.
//!
//! Every validator takes the wire name of the field (`"register.username"`, the form
//! `pb::Error.field` uses) and the raw value, and returns the value to store (normalised where
//! the field has a canonical form) or a [`FieldError`] saying what is wrong. The rule of spec
//! section 6.2: a string longer than its maximum length is [`FieldErrorKind::TooLarge`] (the
//! handler answers `ERROR_CODE_TOO_LARGE`); anything else — too short, characters it may not
//! hold, a number or a count of list entries out of bounds — is [`FieldErrorKind::Invalid`]
//! (`ERROR_CODE_INVALID_ARGUMENT`).
//!
//! Lengths called "characters" are Unicode scalar values (Rust `char`s), the unit of
//! `Limits.max_text_chars`; lengths in bytes say so. Free text follows the character policy of
//! the `text` submodule (no control characters, no invisible format characters but ZWJ, ZWNJ and the
//! directional marks).
//!
//! Layout: `text` holds the character policy, `emoji` the reaction emoji rules, this file the
//! per-field validators.

mod emoji;
mod text;

pub use emoji::MAX_EMOJI_BYTES;
use text::{DIRECTION_MARKS, Lines, check_chars};

/// Username length in characters.
pub const USERNAME_CHARS: std::ops::RangeInclusive<usize> = 3..=32;
/// Email length in bytes.
pub const EMAIL_BYTES: std::ops::RangeInclusive<usize> = 3..=254;
/// Password length in bytes.
pub const PASSWORD_BYTES: std::ops::RangeInclusive<usize> = 8..=1024;
/// Longest device name in characters.
pub const MAX_DEVICE_NAME_CHARS: usize = 64;
/// Device name stored when the client sends none.
pub const DEFAULT_DEVICE_NAME: &str = "unknown device";
/// Longest `Hello.client_name`, in bytes.
pub const MAX_CLIENT_NAME_BYTES: usize = 64;
/// Longest display name in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;
/// Longest bio in characters.
pub const MAX_BIO_CHARS: usize = 500;
/// Longest file or avatar id in bytes.
pub const MAX_FILE_ID_BYTES: usize = 128;
/// Longest file name in bytes (after reduction to its last path component).
pub const MAX_FILE_NAME_BYTES: usize = 255;
/// Longest chat title in characters.
pub const MAX_TITLE_CHARS: usize = 128;
/// Longest chat description in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;
/// Longest message text in characters (`Limits.max_text_chars`).
pub const MAX_TEXT_CHARS: usize = 4096;
/// Longest admin broadcast in characters (it is kept whole in every user's notifications).
pub const MAX_BROADCAST_CHARS: usize = 1000;
/// Longest reason of an access rule in characters.
pub const MAX_ACCESS_REASON_CHARS: usize = 200;
/// Longest client message id in bytes.
pub const MAX_CLIENT_MSG_ID_BYTES: usize = 64;
/// Longest message search query in characters.
pub const MAX_MESSAGE_QUERY_CHARS: usize = 256;
/// Longest user search query in characters.
pub const MAX_USER_QUERY_CHARS: usize = 64;
/// Page size used when a request says 0.
pub const DEFAULT_PAGE_LIMIT: u32 = 50;
/// Largest page size (`Limits.max_page_size`).
pub const MAX_PAGE_SIZE: u32 = 100;
/// Most ids in one id list.
pub const MAX_IDS: usize = 100;

/// Which error code a [`FieldError`] maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// Malformed or out of bounds: `ERROR_CODE_INVALID_ARGUMENT`.
    Invalid,
    /// Larger than the field's limit: `ERROR_CODE_TOO_LARGE`.
    TooLarge,
}

/// A rejected field: which one, why, and which error code applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The wire name of the field, as `request_kind.field`.
    pub field: &'static str,
    /// Which error code the rejection maps to.
    pub kind: FieldErrorKind,
    /// Lowercase, no trailing period.
    pub message: String,
}

impl FieldError {
    /// An `INVALID_ARGUMENT` rejection.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            field,
            kind: FieldErrorKind::Invalid,
            message: message.into(),
        }
    }

    /// A `TOO_LARGE` rejection.
    pub fn too_large(field: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            field,
            kind: FieldErrorKind::TooLarge,
            message: message.into(),
        }
    }
}

/// The result of a validator.
pub type FieldResult<T> = Result<T, FieldError>;

/// Checks free text against the character policy and a maximum length in characters.
fn free_text(field: &'static str, s: &str, max_chars: usize, lines: Lines) -> FieldResult<usize> {
    // A cheap bound first: more bytes than 4 per allowed character cannot fit.
    if s.len() > max_chars.saturating_mul(4) {
        return Err(FieldError::too_large(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    let count = check_chars(s, lines).map_err(|r| FieldError::invalid(field, r.message()))?;
    if count > max_chars {
        return Err(FieldError::too_large(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    Ok(count)
}

/// A username: 3-32 characters of `[a-z0-9_.]`; ASCII uppercase is folded to lowercase, any
/// other character is rejected. Returns the lowercase form (the unique key).
pub fn username(field: &'static str, raw: &str) -> FieldResult<String> {
    let count = raw.chars().count();
    if count > *USERNAME_CHARS.end() {
        return Err(FieldError::too_large(
            field,
            "must be at most 32 characters",
        ));
    }
    if count < *USERNAME_CHARS.start() {
        return Err(FieldError::invalid(field, "must be at least 3 characters"));
    }
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = c.to_ascii_lowercase();
        if !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.') {
            return Err(FieldError::invalid(
                field,
                "may contain only letters a-z, digits, '_' and '.'",
            ));
        }
        out.push(c);
    }
    Ok(out)
}

/// An email address: 3-254 bytes, exactly one `@` with a non-empty local part and domain, no
/// whitespace, control or invisible format characters. Stored as given.
pub fn email(field: &'static str, raw: &str) -> FieldResult<()> {
    if raw.len() > *EMAIL_BYTES.end() {
        return Err(FieldError::too_large(field, "must be at most 254 bytes"));
    }
    if raw.len() < *EMAIL_BYTES.start() {
        return Err(FieldError::invalid(field, "must be at least 3 bytes"));
    }
    if raw
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || text::is_format(c) || text::is_tag(c))
    {
        return Err(FieldError::invalid(
            field,
            "must not contain whitespace or control characters",
        ));
    }
    let mut parts = raw.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) if !local.is_empty() && !domain.is_empty() => Ok(()),
        (_, _, Some(_)) => Err(FieldError::invalid(field, "must contain exactly one '@'")),
        (_, None, _) => Err(FieldError::invalid(field, "must contain an '@'")),
        _ => Err(FieldError::invalid(
            field,
            "must have a non-empty part before and after '@'",
        )),
    }
}

/// A password: 8-1024 bytes of any content.
pub fn password(field: &'static str, raw: &str) -> FieldResult<()> {
    if raw.len() > *PASSWORD_BYTES.end() {
        return Err(FieldError::too_large(field, "must be at most 1024 bytes"));
    }
    if raw.len() < *PASSWORD_BYTES.start() {
        return Err(FieldError::invalid(field, "must be at least 8 bytes"));
    }
    Ok(())
}

/// A password presented to be checked against the account's: at most 1024 bytes, like a new
/// one (longer cannot be right, and is not worth hashing); any shorter one is checked.
pub fn presented_password(field: &'static str, raw: &str) -> FieldResult<()> {
    if raw.len() > *PASSWORD_BYTES.end() {
        return Err(FieldError::too_large(field, "must be at most 1024 bytes"));
    }
    Ok(())
}

/// Longest two-factor code (a TOTP code has 6 digits, a recovery code 11 characters; this leaves
/// room for spaces a user typed).
pub const MAX_TWO_FACTOR_CODE_BYTES: usize = 32;

/// A two-factor or emailed code (protocol.md sections 17 and 18): at most 32 bytes, no control
/// characters (section 10); empty only when not `required`. Whether it is a right code is the
/// handler's business.
pub fn two_factor_code(field: &'static str, raw: &str, required: bool) -> FieldResult<()> {
    if raw.len() > MAX_TWO_FACTOR_CODE_BYTES {
        return Err(FieldError::too_large(field, "must be at most 32 bytes"));
    }
    if required && raw.is_empty() {
        return Err(FieldError::invalid(field, "required"));
    }
    if raw.chars().any(char::is_control) {
        return Err(FieldError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// A client's software name (`Hello.client_name`): at most 64 bytes on one line, no control
/// characters (it reaches the logs).
pub fn client_name(field: &'static str, raw: &str) -> FieldResult<()> {
    if raw.len() > MAX_CLIENT_NAME_BYTES {
        return Err(FieldError::too_large(field, "must be at most 64 bytes"));
    }
    check_chars(raw, Lines::Single).map_err(|r| FieldError::invalid(field, r.message()))?;
    Ok(())
}

/// A device name: at most 64 characters on one line, trimmed; empty becomes
/// [`DEFAULT_DEVICE_NAME`].
pub fn device_name(field: &'static str, raw: &str) -> FieldResult<String> {
    let trimmed = raw.trim();
    free_text(field, trimmed, MAX_DEVICE_NAME_CHARS, Lines::Single)?;
    if trimmed.is_empty() {
        return Ok(DEFAULT_DEVICE_NAME.to_owned());
    }
    Ok(trimmed.to_owned())
}

/// A display name: at most 64 characters on one line, trimmed; empty clears it.
pub fn display_name(field: &'static str, raw: &str) -> FieldResult<String> {
    let trimmed = raw.trim();
    free_text(field, trimmed, MAX_DISPLAY_NAME_CHARS, Lines::Single)?;
    Ok(trimmed.to_owned())
}

/// A bio: at most 500 characters; `\n` and `\t` allowed.
pub fn bio(field: &'static str, raw: &str) -> FieldResult<()> {
    free_text(field, raw, MAX_BIO_CHARS, Lines::Multi).map(drop)
}

/// A file, avatar or upload id: 1 to 128 characters of `[A-Za-z0-9_-]` (a field where empty means
/// none is checked only when set).
pub fn file_id(field: &'static str, raw: &str) -> FieldResult<()> {
    if raw.is_empty() {
        return Err(FieldError::invalid(field, "required"));
    }
    if raw.chars().count() > MAX_FILE_ID_BYTES {
        return Err(FieldError::too_large(
            field,
            "must be at most 128 characters",
        ));
    }
    if !raw.bytes().all(is_id_byte) {
        return Err(FieldError::invalid(
            field,
            "may contain only letters, digits, '_' and '-'",
        ));
    }
    Ok(())
}

/// A file's name, kept as metadata only: reduced to its last path component (after the last `/`
/// or `\`, so `../../etc/passwd` is `passwd`), then at most 255 bytes on one line with no control
/// or invisible format characters, and not `.` or `..`. Empty means no name. Returns the name to
/// store.
pub fn file_name(field: &'static str, raw: &str) -> FieldResult<String> {
    // Control characters anywhere are refused, not cut away with the path.
    check_chars(raw, Lines::Single).map_err(|r| FieldError::invalid(field, r.message()))?;
    // Text may need direction marks; a name does not, and they make one read as another
    // (`report\u{200F}.pdf`). The joiners stay: scripts and emoji need them.
    if let Some(mark) = raw.chars().find(|c| DIRECTION_MARKS.contains(c)) {
        return Err(FieldError::invalid(
            field,
            format!(
                "must not contain the direction mark U+{:04X}",
                u32::from(mark)
            ),
        ));
    }
    let name = raw.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    if raw.contains(['/', '\\']) && name.is_empty() {
        return Err(FieldError::invalid(
            field,
            "has no file name after the last path separator",
        ));
    }
    if name == "." || name == ".." {
        return Err(FieldError::invalid(field, "must not be . or .."));
    }
    if name.len() > MAX_FILE_NAME_BYTES {
        return Err(FieldError::too_large(
            field,
            format!("must be at most {MAX_FILE_NAME_BYTES} bytes"),
        ));
    }
    Ok(name.to_owned())
}

/// A chat title: 1-128 characters on one line after trimming. Returns the trimmed title.
pub fn chat_title(field: &'static str, raw: &str) -> FieldResult<String> {
    let trimmed = raw.trim();
    free_text(field, trimmed, MAX_TITLE_CHARS, Lines::Single)?;
    if trimmed.is_empty() {
        return Err(FieldError::invalid(field, "must not be empty"));
    }
    Ok(trimmed.to_owned())
}

/// A chat description: at most 1000 characters; `\n` and `\t` allowed.
pub fn description(field: &'static str, raw: &str) -> FieldResult<()> {
    free_text(field, raw, MAX_DESCRIPTION_CHARS, Lines::Multi).map(drop)
}

/// Message text: at most [`MAX_TEXT_CHARS`] characters, `\n` and `\t` allowed. With
/// `required` (text messages) it must contain more than whitespace; captions may be empty.
pub fn message_text(field: &'static str, raw: &str, required: bool) -> FieldResult<()> {
    free_text(field, raw, MAX_TEXT_CHARS, Lines::Multi)?;
    if required && raw.trim().is_empty() {
        return Err(FieldError::invalid(field, "must not be empty"));
    }
    Ok(())
}

/// An admin broadcast: 1-1000 characters, more than whitespace, `\n` and `\t` allowed.
/// Returns its length in characters.
pub fn broadcast_text(field: &'static str, raw: &str) -> FieldResult<usize> {
    let count = free_text(field, raw, MAX_BROADCAST_CHARS, Lines::Multi)?;
    if raw.trim().is_empty() {
        return Err(FieldError::invalid(field, "must not be empty"));
    }
    Ok(count)
}

/// The reason of an access rule: at most 200 characters on one line, trimmed; may be empty.
pub fn access_reason(field: &'static str, raw: &str) -> FieldResult<String> {
    let trimmed = raw.trim();
    free_text(field, trimmed, MAX_ACCESS_REASON_CHARS, Lines::Single)?;
    Ok(trimmed.to_owned())
}

/// A client message id: 1-64 characters of `[A-Za-z0-9_-]` (a UUID fits).
pub fn client_msg_id(field: &'static str, raw: &str) -> FieldResult<()> {
    // Counted in characters (spec 10): 33 "é" are bad characters, not too many.
    if raw.chars().count() > MAX_CLIENT_MSG_ID_BYTES {
        return Err(FieldError::too_large(
            field,
            "must be at most 64 characters",
        ));
    }
    if raw.is_empty() {
        return Err(FieldError::invalid(field, "must not be empty"));
    }
    if !raw.bytes().all(is_id_byte) {
        return Err(FieldError::invalid(
            field,
            "may contain only letters, digits, '_' and '-'",
        ));
    }
    Ok(())
}

/// A reaction emoji: one emoji, at most [`MAX_EMOJI_BYTES`] bytes (rules in the `emoji`
/// submodule: [`EXTENDED_PICTOGRAPHIC`] and sequence shapes).
pub fn emoji(field: &'static str, raw: &str) -> FieldResult<()> {
    emoji::check_emoji(raw).map_err(|message| {
        if raw.len() > MAX_EMOJI_BYTES {
            FieldError::too_large(field, message)
        } else {
            FieldError::invalid(field, message)
        }
    })
}

/// A message search query: 1-256 characters on one line after trimming. Returns it trimmed.
pub fn message_query(field: &'static str, raw: &str) -> FieldResult<String> {
    query(field, raw, MAX_MESSAGE_QUERY_CHARS)
}

/// A user search query (username or display name prefix): 1-64 characters on one line after
/// trimming. Returns it trimmed.
pub fn user_query(field: &'static str, raw: &str) -> FieldResult<String> {
    query(field, raw, MAX_USER_QUERY_CHARS)
}

/// A chat title query (`admin_list_chats`): 1-64 characters on one line after trimming.
pub fn chat_query(field: &'static str, raw: &str) -> FieldResult<String> {
    query(field, raw, MAX_USER_QUERY_CHARS)
}

fn query(field: &'static str, raw: &str, max_chars: usize) -> FieldResult<String> {
    let trimmed = raw.trim();
    free_text(field, trimmed, max_chars, Lines::Single)?;
    if trimmed.is_empty() {
        return Err(FieldError::invalid(field, "must not be empty"));
    }
    Ok(trimmed.to_owned())
}

/// A page size: 0 means [`DEFAULT_PAGE_LIMIT`]; more than [`MAX_PAGE_SIZE`] is rejected.
pub fn page_limit(field: &'static str, value: u32) -> FieldResult<u32> {
    page_limit_or(field, value, DEFAULT_PAGE_LIMIT)
}

/// A page size with a request-specific default for 0 (e.g. 20 for `SearchUsers`).
pub fn page_limit_or(field: &'static str, value: u32, default: u32) -> FieldResult<u32> {
    match value {
        0 => Ok(default),
        v if v > MAX_PAGE_SIZE => Err(FieldError::invalid(
            field,
            format!("must be at most {MAX_PAGE_SIZE}"),
        )),
        v => Ok(v),
    }
}

/// A list of ids: at most [`MAX_IDS`] (more is INVALID_ARGUMENT: a count out of bounds, not an
/// over-long field), none 0. Returns them without duplicates, in the order
/// of first appearance.
pub fn id_list(field: &'static str, ids: &[u64]) -> FieldResult<Vec<u64>> {
    if ids.len() > MAX_IDS {
        return Err(FieldError::invalid(
            field,
            format!("must contain at most {MAX_IDS} ids"),
        ));
    }
    let mut out: Vec<u64> = Vec::with_capacity(ids.len());
    for &v in ids {
        if v == 0 {
            return Err(FieldError::invalid(field, "must not contain 0"));
        }
        // At most 100 entries: a linear scan beats hashing.
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(out)
}

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

#[cfg(test)]
mod tests;

//! Errors in words a user understands (the status bar shows them after an action).

use chatproto::client::ClientError;
use chatproto::pb::ErrorCode;

/// A readable sentence for a failed request.
pub fn describe(error: &ClientError) -> String {
    match error {
        ClientError::Remote(e) => {
            let message = e.message.trim();
            match e.code {
                ErrorCode::Unauthenticated if message.is_empty() => "not signed in".into(),
                ErrorCode::PermissionDenied => format!("not allowed: {message}"),
                ErrorCode::NotFound => format!("not found: {message}"),
                ErrorCode::RateLimited => match e.retry_after {
                    Some(after) => format!(
                        "too many requests, try again in {} s",
                        after.as_secs().max(1)
                    ),
                    None => "too many requests, try again later".into(),
                },
                ErrorCode::TooLarge => format!("too long: {message}"),
                ErrorCode::Unavailable => format!("the server cannot do it right now: {message}"),
                ErrorCode::InvalidArgument if !e.field.is_empty() => {
                    let field = e
                        .field
                        .rsplit('.')
                        .next()
                        .unwrap_or(&e.field)
                        .replace('_', " ");
                    format!("{field}: {message}")
                }
                _ if message.is_empty() => format!("{:?}", e.code),
                _ => message.to_string(),
            }
        }
        ClientError::ConnectionLost(_) | ClientError::Timeout(_) => {
            "no connection to the server; try again when it is back".into()
        }
        ClientError::Closed(reason) => format!("disconnected: {reason}"),
        ClientError::Connect(reason) => reason.clone(),
        ClientError::ServerBusy(_) => "the server is full right now; trying again shortly".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatproto::client::RemoteError;
    use std::time::Duration;

    fn remote(code: ErrorCode, message: &str, field: &str) -> ClientError {
        ClientError::Remote(RemoteError {
            code,
            message: message.into(),
            field: field.into(),
            retry_after: Some(Duration::from_millis(2500)),
        })
    }

    #[test]
    fn errors_read_as_sentences() {
        assert_eq!(
            describe(&remote(ErrorCode::PermissionDenied, "not the sender", "")),
            "not allowed: not the sender"
        );
        assert_eq!(
            describe(&remote(
                ErrorCode::InvalidArgument,
                "too short",
                "register.username"
            )),
            "username: too short"
        );
        assert_eq!(
            describe(&remote(ErrorCode::RateLimited, "", "")),
            "too many requests, try again in 2 s"
        );
        assert!(describe(&ClientError::Timeout(Duration::from_secs(30))).contains("no connection"));
    }
}

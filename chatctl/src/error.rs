//! chatctl's own failures, and the exit status of any failure: 2 usage, 3 not logged in or not
//! allowed, 4 not found, 5 server unavailable, 1 anything else. Scripts branch on these.

use chatproto::client::ClientError;
use chatproto::pb::ErrorCode;

/// A failure chatctl itself recognises (the SDK's [`ClientError`]s are classified too).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command cannot run as given (a missing option, no confirmation).
    #[error("{0}")]
    Usage(String),
    /// No `--server` and no saved profile to take it from.
    #[error("no server: give --server HOST:PORT (profile {profile:?} is not saved)")]
    NoServer {
        /// The profile.
        profile: String,
    },
    /// No saved session and no password.
    #[error("not logged in to profile {profile:?}")]
    NotLoggedIn {
        /// The profile.
        profile: String,
    },
    /// The server answered, but something it depends on does not work.
    #[error("node {node} is not healthy: {failing}")]
    Unhealthy {
        /// The node that answered.
        node: String,
        /// The failing checks, with why.
        failing: String,
    },
    /// A named thing does not exist.
    #[error("{what} {name:?} not found")]
    NotFound {
        /// What kind of thing ("user").
        what: &'static str,
        /// Its name.
        name: String,
    },
}

/// The process exit status for a failure.
pub fn status(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<Error>() {
            return match e {
                Error::Usage(_) | Error::NoServer { .. } => 2,
                Error::NotLoggedIn { .. } => 3,
                Error::NotFound { .. } => 4,
                Error::Unhealthy { .. } => 5,
            };
        }
        if let Some(e) = cause.downcast_ref::<ClientError>() {
            return client_status(e);
        }
        // Flags that cannot be used as given are usage errors too.
        if cause
            .downcast_ref::<chat_cli::server::VerificationError>()
            .is_some()
            || matches!(
                cause.downcast_ref::<crate::profile::ProfileError>(),
                Some(crate::profile::ProfileError::Name(_))
            )
        {
            return 2;
        }
    }
    1
}

fn client_status(e: &ClientError) -> u8 {
    match e {
        ClientError::Remote(remote) => match remote.code {
            ErrorCode::Unauthenticated | ErrorCode::PermissionDenied => 3,
            ErrorCode::NotFound => 4,
            ErrorCode::Unavailable => 5,
            _ => 1,
        },
        ClientError::NotAuthenticated => 3,
        ClientError::Connect(_)
        | ClientError::ServerBusy(_)
        | ClientError::ConnectionLost(_)
        | ClientError::Timeout(_)
        | ClientError::Closed(_) => 5,
        ClientError::Tls(_)
        | ClientError::Config(_)
        | ClientError::Protocol(_)
        | ClientError::LocalIo(_) => 1,
    }
}

/// What to do next, for the errors chatctl can say something about.
pub fn hint(err: &anyhow::Error) -> Option<chat_cli::Hint> {
    let code = err
        .chain()
        .find_map(|c| c.downcast_ref::<ClientError>())
        .and_then(ClientError::code);
    let text = match (status(err), code) {
        (3, Some(ErrorCode::PermissionDenied)) => {
            "this needs an account with the admin role (`chatd user add --admin`, or `chatctl \
             users set-role NAME admin`); some actions are refused even to admins: on oneself, \
             and on the last admin"
        }
        (3, _) => {
            "log in with `chatctl login --server HOST:PORT --pin SHA256 --user NAME \
             --password-stdin`, or give a password with --password-stdin or CHATCTL_PASSWORD"
        }
        (5, _) => "check --server and that chatd is running and reachable over UDP",
        _ => return None,
    };
    Some(chat_cli::Hint(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatproto::client::RemoteError;

    fn remote(code: ErrorCode) -> anyhow::Error {
        anyhow::Error::new(ClientError::Remote(RemoteError {
            code,
            message: String::new(),
            field: String::new(),
            retry_after: None,
        }))
        .context("cannot do it")
    }

    #[test]
    fn statuses_tell_failures_apart() {
        assert_eq!(status(&remote(ErrorCode::PermissionDenied)), 3);
        assert_eq!(status(&remote(ErrorCode::NotFound)), 4);
        assert_eq!(status(&remote(ErrorCode::Unavailable)), 5);
        assert_eq!(status(&remote(ErrorCode::Conflict)), 1);
        let connect = anyhow::Error::new(ClientError::Connect("refused".into()));
        assert_eq!(status(&connect), 5);
        assert_eq!(status(&anyhow::Error::new(Error::Usage("x".into()))), 2);
        let missing = Error::NotFound {
            what: "user",
            name: "bob".into(),
        };
        assert_eq!(status(&anyhow::Error::new(missing)), 4);
        assert_eq!(status(&anyhow::anyhow!("other")), 1);
        let pin = chat_cli::server::VerificationError::Pin("not a fingerprint".into());
        assert_eq!(
            status(&anyhow::Error::new(pin).context("cannot connect")),
            2
        );
        let name = crate::profile::ProfileError::Name("a b".into());
        assert_eq!(status(&anyhow::Error::new(name)), 2);
    }
}

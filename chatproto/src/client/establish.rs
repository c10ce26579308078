//! Making a connection ready: dial, Hello, authenticate (the access token while it is valid,
//! else the refresh token) and, for a returning client, `authenticate` and `sync` right behind
//! Hello in 0-RTT data (protocol.md 2.5).

use std::time::{SystemTime, UNIX_EPOCH};

use super::Shared;
use super::config::Tokens;
use super::connection::{EncodedRequest, Link, into_result};
use super::error::ClientError;
use super::requests::answer;
use crate::error::CloseCode;
use crate::pb;

/// An access token this close to expiry is not tried; the refresh token is used right away.
const EXPIRY_MARGIN_MS: i64 = 5_000;

/// A connection that is ready: Hello done, authenticated when there were tokens.
#[derive(Debug)]
pub(crate) struct Dialed {
    pub link: Link,
    pub server_index: usize,
    /// The connection is authenticated (so the server opens the event stream).
    pub authenticated: bool,
    /// New tokens, when re-authentication had to use the refresh token.
    pub refreshed: Option<Tokens>,
    pub user_id: Option<u64>,
    /// The [`EarlySync`] that went behind authentication, and its answer.
    pub early_sync: Option<(u64, Result<pb::SyncResult, ClientError>)>,
}

/// The Sync a connection sends right behind its authentication, in 0-RTT data when it can
/// (protocol.md 2.5), so a returning client has its first Sync answer after one round trip.
#[derive(Debug)]
pub(crate) struct EarlySync {
    /// The request id the session expects the answer under.
    pub request_id: u64,
    /// The first page of the session's Sync.
    pub sync: pb::Sync,
}

/// Why a (re)connect failed.
#[derive(Debug)]
pub(crate) enum DialError {
    /// Try again later.
    Transient(ClientError),
    /// The credentials were refused: do not try them again.
    AuthRejected(String),
}

impl From<DialError> for ClientError {
    fn from(e: DialError) -> Self {
        match e {
            DialError::Transient(e) => e,
            DialError::AuthRejected(reason) => ClientError::Remote(super::error::RemoteError {
                code: pb::ErrorCode::Unauthenticated,
                message: reason,
                field: String::new(),
                retry_after: None,
            }),
        }
    }
}

/// Dials (starting with server `start`), says Hello and, with `tokens`, authenticates and accepts
/// the event stream. With a usable access token, `authenticate` and then `sync` go right
/// behind Hello, in 0-RTT data when the connection can.
pub(crate) async fn establish(
    shared: &Shared,
    addresses: &[String],
    start: usize,
    tokens: Option<Tokens>,
    sync: Option<EarlySync>,
) -> Result<Dialed, DialError> {
    let encode =
        |id: u64, kind| EncodedRequest::new(id, kind).map_err(|e| DialError::Transient(e.into()));
    let mut flight = Vec::new();
    let mut sync_id = None;
    if let Some(tokens) = tokens.as_ref().filter(|t| access_usable(t)) {
        flight.push(encode(shared.ids.next_id(), authenticate(tokens))?);
        if let Some(sync) = sync {
            let kind = pb::request::Kind::Sync(sync.sync);
            flight.push(encode(sync.request_id, kind)?);
            sync_id = Some(sync.request_id);
        }
    }
    let ((link, answers), server_index) = shared
        .dialer
        .dial_any(addresses, start, &flight)
        .await
        .map_err(DialError::Transient)?;
    let Some(tokens) = tokens else {
        return Ok(Dialed {
            link,
            server_index,
            authenticated: false,
            refreshed: None,
            user_id: None,
            early_sync: None,
        });
    };
    // An answer that says "too early" is no answer: the request is sent again now.
    let mut answers = answers
        .unwrap_or_default()
        .into_iter()
        .map(|r| Some(r).filter(|r| !is_too_early(r)));
    let early_auth = answers.next().flatten();
    let early_sync = answers.next().flatten();
    let authenticated_early = early_auth.is_some();
    match reauthenticate(shared, &link, tokens, early_auth).await {
        Ok((tokens, refreshed)) => Ok(Dialed {
            link,
            server_index,
            authenticated: true,
            user_id: Some(tokens.user_id),
            // The early Sync counts only when it followed a successful authentication.
            early_sync: match (sync_id, early_sync) {
                (Some(id), Some(response)) if authenticated_early && !refreshed => {
                    Some((id, into_result(response).and_then(answer::<pb::Sync>)))
                }
                _ => None,
            },
            refreshed: refreshed.then_some(tokens),
        }),
        Err(e) => {
            link.conn
                .close(CloseCode::NoError.into(), b"authentication failed");
            Err(e)
        }
    }
}

/// True when `response` is a TOO_EARLY refusal (protocol.md 2.5).
fn is_too_early(response: &pb::Response) -> bool {
    matches!(&response.result, Some(pb::response::Result::Error(e)) if e.code == pb::ErrorCode::TooEarly as i32)
}

/// `authenticate` with the access token of `tokens`.
fn authenticate(tokens: &Tokens) -> pb::request::Kind {
    pb::request::Kind::Authenticate(pb::Authenticate {
        access_token: tokens.access_token.clone(),
    })
}

/// Whether the access token of `tokens` is worth trying (not about to expire).
fn access_usable(tokens: &Tokens) -> bool {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    !tokens.access_token.is_empty()
        && (tokens.access_expires_at_ms == 0
            || tokens.access_expires_at_ms > now_ms.saturating_add(EXPIRY_MARGIN_MS))
}

/// Authenticates a fresh connection: the access token while it is valid, else the refresh token.
/// `early` is the answer to the access token's `authenticate` when it went behind Hello.
/// Returns the tokens now in force and whether they are new.
async fn reauthenticate(
    shared: &Shared,
    link: &Link,
    tokens: Tokens,
    early: Option<pb::Response>,
) -> Result<(Tokens, bool), DialError> {
    if early.is_some() || access_usable(&tokens) {
        // Bounded like the rest of the attempt: a server that never answers must not hold the
        // connect (or the reconnect loop) forever. Repeating `authenticate` is safe.
        let timeout = shared.dialer.config().retry.connect_timeout;
        let answer = match early {
            Some(response) => into_result(response),
            None => tokio::time::timeout(
                timeout,
                link.call_ok(shared.ids.next_id(), authenticate(&tokens)),
            )
            .await
            .unwrap_or(Err(ClientError::Timeout(timeout))),
        };
        match answer {
            Ok(pb::response::Result::Auth(auth)) => {
                let mut tokens = tokens;
                if let Some(user) = &auth.user {
                    tokens.user_id = user.id;
                }
                if auth.session_id != 0 {
                    tokens.session_id = auth.session_id;
                }
                return Ok((tokens, false));
            }
            Ok(other) => {
                return Err(DialError::Transient(ClientError::Protocol(format!(
                    "Authenticate answered with {}",
                    other.name()
                ))));
            }
            Err(ClientError::Remote(e)) if e.code == pb::ErrorCode::Unauthenticated => {
                tracing::debug!(reason = %e.message, "access token refused, refreshing");
            }
            Err(e) => return Err(DialError::Transient(e)),
        }
    }
    if tokens.refresh_token.is_empty() {
        return Err(DialError::AuthRejected(
            "access token refused and no refresh token".into(),
        ));
    }
    let kind = pb::request::Kind::Refresh(pb::Refresh {
        refresh_token: tokens.refresh_token.clone(),
    });
    // A refresh spends its token: one answered late must still be taken, or the token sent
    // again would read as stolen (spec 11.3). So the bound is the request timeout, far beyond
    // what a live server takes, and only a server that never answers reaches it.
    let timeout = shared.dialer.config().retry.request_timeout;
    let refreshed = tokio::time::timeout(timeout, link.call_ok(shared.ids.next_id(), kind))
        .await
        .unwrap_or(Err(ClientError::Timeout(timeout)));
    match refreshed {
        Ok(pb::response::Result::Auth(auth)) => Ok((Tokens::from_auth(&auth, &tokens), true)),
        Ok(other) => Err(DialError::Transient(ClientError::Protocol(format!(
            "Refresh answered with {}",
            other.name()
        )))),
        Err(ClientError::Remote(e)) if e.code == pb::ErrorCode::Unauthenticated => {
            Err(DialError::AuthRejected(e.message))
        }
        Err(e) => Err(DialError::Transient(e)),
    }
}

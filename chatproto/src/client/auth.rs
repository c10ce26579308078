//! Account and session requests that change the client's authentication state.

use super::reconnect::Command;
use super::{Client, ClientError, Tokens};
use crate::pb;

impl Client {
    /// Creates an account and logs in. The tokens are stored (see [`Client::tokens`]) and the
    /// event stream starts.
    pub async fn register(&self, req: pb::Register) -> Result<pb::AuthResult, ClientError> {
        self.authenticate_with(pb::request::Kind::Register(req))
            .await
    }

    /// Creates the account `username` and logs in on this device: [`register`](Self::register)
    /// without building the request.
    pub async fn register_user(
        &self,
        username: &str,
        email: &str,
        password: &str,
        device_name: &str,
    ) -> Result<pb::AuthResult, ClientError> {
        self.register(pb::Register {
            username: username.into(),
            email: email.into(),
            password: password.into(),
            device_name: device_name.into(),
        })
        .await
    }

    /// Logs in with a username and password. For an account with two-factor login the error
    /// then says [`needs_two_factor_code`](ClientError::needs_two_factor_code): ask the user for
    /// a code and call [`login_with_code`](Self::login_with_code).
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        device_name: &str,
    ) -> Result<pb::AuthResult, ClientError> {
        self.login_with_code(username, password, "", device_name)
            .await
    }

    /// Logs in with a username, password and two-factor code (a current code of the user's
    /// authenticator app, or a recovery code; protocol.md section 17).
    pub async fn login_with_code(
        &self,
        username: &str,
        password: &str,
        two_factor_code: &str,
        device_name: &str,
    ) -> Result<pb::AuthResult, ClientError> {
        self.authenticate_with(pb::request::Kind::Login(pb::Login {
            username: username.into(),
            password: password.into(),
            device_name: device_name.into(),
            two_factor_code: two_factor_code.into(),
        }))
        .await
    }

    /// Exchanges a refresh token for new tokens (the old one is spent) and authenticates.
    pub async fn refresh(&self, refresh_token: &str) -> Result<pb::AuthResult, ClientError> {
        self.authenticate_with(pb::request::Kind::Refresh(pb::Refresh {
            refresh_token: refresh_token.into(),
        }))
        .await
    }

    /// Authenticates the connection with an access token.
    pub async fn authenticate(&self, access_token: &str) -> Result<pb::AuthResult, ClientError> {
        self.authenticate_with(pb::request::Kind::Authenticate(pb::Authenticate {
            access_token: access_token.into(),
        }))
        .await
    }

    /// Revokes this session. The connection stays open, unauthenticated; the stored tokens and
    /// cursors are forgotten.
    pub async fn logout(&self) -> Result<(), ClientError> {
        self.request(pb::Logout {}).await?;
        self.shared.set_tokens(None);
        let _ = self.commands.send(Command::LoggedOut);
        Ok(())
    }

    async fn authenticate_with(
        &self,
        kind: pb::request::Kind,
    ) -> Result<pb::AuthResult, ClientError> {
        let access_token = match &kind {
            pb::request::Kind::Authenticate(a) => Some(a.access_token.clone()),
            _ => None,
        };
        // Never repeated after a lost connection (the table says so): a second Register or Login
        // would create a second session, and a refresh token is single use.
        let (generation, result) = self.call(kind).await?;
        let auth = match result {
            pb::response::Result::Auth(auth) => auth,
            other => return Err(super::requests::unexpected("authentication", other.name())),
        };
        let previous = self.shared.tokens().unwrap_or_default();
        let mut tokens = Tokens::from_auth(&auth, &previous);
        if let Some(access_token) = access_token {
            tokens.access_token = access_token;
            if tokens.user_id != previous.user_id {
                // Another user's refresh token must not be used for this one.
                tokens.refresh_token.clear();
                tokens.access_expires_at_ms = 0;
            }
        }
        let user_id = tokens.user_id;
        self.shared.set_tokens(Some(tokens));
        let _ = self.commands.send(Command::Authenticated {
            generation,
            user_id,
        });
        Ok(auth)
    }
}

//! From the command line, the environment and the saved profile to what a command runs with:
//! the server and how its certificate is checked, the admin, and how to sign in (a password for
//! this command alone, or the profile's session).

use std::io::BufRead as _;

use chat_cli::server::verification;
use chatproto::tls::Verification;

use crate::cli::ConnArgs;
use crate::error::Error;
use crate::output::Output;
use crate::profile::{Profile, Profiles};

/// The validated settings of one command.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where profiles are.
    pub profiles: Profiles,
    /// The profile named by `--profile`.
    pub profile: String,
    /// Its saved contents, if any.
    pub saved: Option<Profile>,
    /// `host:port`.
    pub server: String,
    /// How the certificate is checked.
    pub verification: Verification,
    /// The TLS name, when not the host.
    pub server_name: Option<String>,
    /// The admin account, if known.
    pub user: Option<String>,
    /// The password from standard input or `CHATCTL_PASSWORD`, if given.
    pub password: Option<String>,
    /// The two-factor code to log in with (`--two-factor-code`), if given.
    pub two_factor_code: Option<String>,
    /// How to print.
    pub output: Output,
}

/// Where secrets and the environment come from (the process's own, or a test's).
pub struct Sources<'a> {
    /// The environment lookup; empty values count as unset.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Reads one line of standard input (for `--password-stdin`).
    pub stdin_line: &'a dyn Fn() -> std::io::Result<String>,
}

/// The first line of the process's standard input, without its line ending.
///
/// # Errors
/// Standard input cannot be read.
pub fn read_stdin_line() -> std::io::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

impl Settings {
    /// Resolves `args` over the saved profile.
    ///
    /// # Errors
    /// A missing server or certificate check ([`Error::Usage`]), a bad profile, unusable
    /// certificate options, an unreadable standard input.
    pub fn resolve(args: &ConnArgs, sources: &Sources<'_>) -> anyhow::Result<Self> {
        let env = |k: &str| (sources.env)(k).filter(|v| !v.is_empty());
        let profiles = Profiles::from_env(&env)?;
        let saved = profiles.load(&args.profile)?;
        let server = args
            .server
            .clone()
            .or_else(|| saved.as_ref().map(|p| p.server.clone()))
            .ok_or_else(|| Error::NoServer {
                profile: args.profile.clone(),
            })?;
        // The profile's certificate check belongs to the profile's server only.
        let same_server = saved.as_ref().filter(|p| p.server == server);
        let (verification, server_name) = match args.tls.verification()? {
            Some(v) => (v, args.tls.server_name.clone()),
            None => {
                let from_profile = match same_server {
                    // A --server-name given now wins over the saved one.
                    Some(p) => verification(p.pin.as_deref(), p.ca.as_deref(), p.insecure)?
                        .map(|v| (v, args.tls.server_name.clone().or(p.server_name.clone()))),
                    None => None,
                };
                from_profile.ok_or_else(|| {
                    Error::Usage(format!(
                        "say how to check the certificate of {server}: --pin SHA256 (as chatd \
                         prints it) or --ca FILE"
                    ))
                })?
            }
        };
        let user = args
            .user
            .clone()
            .or_else(|| same_server.map(|p| p.user.clone()));
        let password = if args.password_stdin {
            let line = (sources.stdin_line)()
                .map_err(|e| anyhow::anyhow!(e).context("cannot read the password"))?;
            if line.is_empty() {
                return Err(Error::Usage(
                    "--password-stdin: standard input has no password".into(),
                )
                .into());
            }
            Some(line)
        } else {
            env("CHATCTL_PASSWORD")
        };
        Ok(Self {
            profiles,
            profile: args.profile.clone(),
            saved,
            server,
            verification,
            server_name,
            user,
            password,
            two_factor_code: args.two_factor_code.clone(),
            output: Output::new(args.json, &env),
        })
    }

    /// The saved profile if it is for this server and user: its session may be used.
    pub fn session_profile(&self) -> Option<&Profile> {
        self.saved
            .as_ref()
            .filter(|p| p.server == self.server && self.user.as_deref().is_none_or(|u| u == p.user))
    }
}

//! `chatctl users ...`: accounts, roles and sessions, through the server's `admin_*` requests
//! (spec/protocol.md 9.6). Users are named by username; the server answers by id. `import`
//! creates accounts from a JSON Lines file.

mod import;

use anyhow::Context as _;
use chatproto::client::Client;
use chatproto::pb;
use serde::Serialize;

use crate::cli::{ConfirmedUserArgs, Role, UsersCommand};
use crate::error::Error;
use crate::output::{Output, Paint, Table, confirm, now_ms, relative_time};
use crate::session::Admin;
use crate::settings::{Settings, Sources};

/// One user as `--json` prints it.
#[derive(Debug, Serialize)]
struct UserView {
    id: u64,
    username: String,
    display_name: String,
    email: String,
    /// Whether the user verified the address (protocol.md section 18).
    email_verified: bool,
    role: &'static str,
    disabled: bool,
    online: bool,
    created_at_ms: i64,
    last_seen_at_ms: i64,
}

impl From<&pb::User> for UserView {
    fn from(u: &pb::User) -> Self {
        Self {
            id: u.id,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            email: u.email.clone(),
            email_verified: u.email_verified,
            role: role_name(u.role()),
            disabled: u.disabled,
            online: !matches!(
                u.status(),
                pb::UserStatus::Offline | pb::UserStatus::Unspecified
            ),
            created_at_ms: u.created_at_ms,
            last_seen_at_ms: u.last_seen_at_ms,
        }
    }
}

/// One session as `--json` prints it.
#[derive(Debug, Serialize)]
struct SessionView {
    id: u64,
    device: String,
    address: String,
    created_at_ms: i64,
    last_seen_at_ms: i64,
}

/// What a command that changed a user prints with `--json`.
#[derive(Debug, Serialize)]
struct Changed<'a> {
    id: u64,
    username: &'a str,
    #[serde(flatten)]
    change: Change,
}

/// The change itself; its field name says what was done.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum Change {
    /// The new account's role, and its generated password (none when read from standard input).
    Created {
        role: &'static str,
        password: Option<String>,
    },
    Disabled(bool),
    Deleted(bool),
    /// Whether two-factor login is on now.
    TwoFactor(bool),
    Role(&'static str),
    /// The generated password (none when it was read from standard input).
    PasswordReset {
        password: Option<String>,
    },
    /// The revoked session, none for all of them.
    RevokedSession(Option<u64>),
}

pub(super) fn role_name(role: pb::Role) -> &'static str {
    match role {
        pb::Role::Admin => "admin",
        pb::Role::User => "user",
        pb::Role::Unspecified => "unknown",
    }
}

pub(super) async fn run(
    command: UsersCommand,
    settings: &Settings,
    sources: &Sources<'_>,
) -> anyhow::Result<()> {
    let out = settings.output;
    // Questions come before signing in, so that refusing costs nothing on the server.
    let new_password = match &command {
        UsersCommand::Disable(c) => ask(c, "Disable", "")?,
        UsersCommand::Delete(c) => ask(c, "Delete", " for good")?,
        UsersCommand::DisableTwoFactor(c) => ask(c, "Turn off two-factor login of", "")?,
        UsersCommand::RevokeSessions { user, session } => {
            let what = session.map_or("every session".to_owned(), |s| format!("session {s}"));
            confirm(&format!("Revoke {what} of {}?", user.user.name), user.yes)?;
            None
        }
        UsersCommand::ResetPassword {
            user,
            new_password_stdin,
        } => {
            ask(user, "Reset the password of", " and revoke every session")?;
            Some(new_password(*new_password_stdin, sources)?)
        }
        UsersCommand::Create {
            new_password_stdin, ..
        } => Some(new_password(*new_password_stdin, sources)?),
        UsersCommand::Import { file, conn } if file == "-" && conn.password_stdin => {
            return Err(Error::Usage(
                "users import -: standard input holds the accounts, so the password cannot come                  from it; use CHATCTL_PASSWORD or a saved login"
                    .into(),
            )
            .into());
        }
        _ => None,
    };
    let admin = Admin::sign_in(settings).await?;
    let result = execute(command, admin.client(), out, new_password).await;
    let finished = admin.finish(settings).await;
    result.and(finished)
}

fn ask(c: &ConfirmedUserArgs, verb: &str, rest: &str) -> anyhow::Result<Option<NewPassword>> {
    confirm(&format!("{verb} {}{rest}?", c.user.name), c.yes)?;
    Ok(None)
}

enum NewPassword {
    Given(String),
    Generated(String),
}

impl NewPassword {
    /// The password, and what to print of it (only a generated one).
    fn into_parts(self) -> (String, Option<String>) {
        match self {
            NewPassword::Generated(p) => (p.clone(), Some(p)),
            NewPassword::Given(p) => (p, None),
        }
    }
}

/// The first line of standard input, or a generated password.
fn new_password(from_stdin: bool, sources: &Sources<'_>) -> anyhow::Result<NewPassword> {
    Ok(if from_stdin {
        NewPassword::Given((sources.stdin_line)().context("cannot read the new password")?)
    } else {
        NewPassword::Generated(generate_password())
    })
}

/// 20 letters and digits (119 bits): within the server's 8 to 1024 bytes.
pub(super) fn generate_password() -> String {
    use rand::distr::{Alphanumeric, SampleString as _};
    Alphanumeric.sample_string(&mut rand::rng(), 20)
}

async fn execute(
    command: UsersCommand,
    client: &Client,
    out: Output,
    new_password: Option<NewPassword>,
) -> anyhow::Result<()> {
    match command {
        UsersCommand::List { prefix, .. } => list(client, out, prefix.unwrap_or_default()).await,
        UsersCommand::Import { file, .. } => import::run(client, out, &file).await,
        UsersCommand::Show(u) => {
            let user = find(client, &u.name).await?;
            show(out, &user)
        }
        UsersCommand::Disable(c) => set_disabled(client, out, &c.user.name, true).await,
        UsersCommand::Enable(u) => set_disabled(client, out, &u.name, false).await,
        UsersCommand::DisableTwoFactor(c) => {
            let user = find(client, &c.user.name).await?;
            client
                .admin_disable_two_factor(pb::AdminDisableTwoFactor { user_id: user.id })
                .await
                .with_context(|| {
                    format!("cannot turn off two-factor login of {}", user.username)
                })?;
            changed(
                out,
                &user,
                Change::TwoFactor(false),
                "two-factor login turned off",
            )
        }
        UsersCommand::Delete(c) => {
            let user = find(client, &c.user.name).await?;
            client
                .admin_delete_user(pb::AdminDeleteUser { user_id: user.id })
                .await
                .with_context(|| format!("cannot delete {}", user.username))?;
            changed(out, &user, Change::Deleted(true), "deleted")
        }
        UsersCommand::ResetPassword { user, .. } => {
            let target = find(client, &user.user.name).await?;
            let (password, shown) = new_password.context("no new password")?.into_parts();
            client
                .admin_reset_password(pb::AdminResetPassword {
                    user_id: target.id,
                    new_password: password,
                })
                .await
                .with_context(|| format!("cannot reset the password of {}", target.username))?;
            let human = match &shown {
                Some(p) => format!("password reset, sessions revoked; new password: {p}"),
                None => "password reset, sessions revoked".to_owned(),
            };
            changed(
                out,
                &target,
                Change::PasswordReset { password: shown },
                &human,
            )
        }
        UsersCommand::Create {
            user, email, admin, ..
        } => {
            let (password, shown) = new_password.context("no new password")?.into_parts();
            let role = if admin {
                pb::Role::Admin
            } else {
                pb::Role::User
            };
            let created = client
                .admin_create_user(pb::AdminCreateUser {
                    username: user.name.clone(),
                    email,
                    password,
                    role: role as i32,
                })
                .await
                .with_context(|| format!("cannot create user {:?}", user.name))?;
            let human = match &shown {
                Some(p) => format!("created ({}); password: {p}", role_name(role)),
                None => format!("created ({})", role_name(role)),
            };
            let change = Change::Created {
                role: role_name(role),
                password: shown,
            };
            changed(out, &created, change, &human)
        }
        UsersCommand::SetRole { user, role } => {
            let target = find(client, &user.name).await?;
            let role = match role {
                Role::Admin => pb::Role::Admin,
                Role::User => pb::Role::User,
            };
            client
                .admin_set_role(pb::AdminSetRole {
                    user_id: target.id,
                    role: role as i32,
                })
                .await
                .with_context(|| format!("cannot set the role of {}", target.username))?;
            let name = role_name(role);
            changed(out, &target, Change::Role(name), &format!("now {name}"))
        }
        UsersCommand::Sessions(u) => sessions(client, out, &u.name).await,
        UsersCommand::RevokeSessions { user, session } => {
            let target = find(client, &user.user.name).await?;
            client
                .admin_revoke_sessions(pb::AdminRevokeSessions {
                    user_id: target.id,
                    session_id: session.unwrap_or(0),
                })
                .await
                .with_context(|| format!("cannot revoke sessions of {}", target.username))?;
            let human = match session {
                Some(s) => format!("session {s} revoked"),
                None => "every session revoked".to_owned(),
            };
            changed(out, &target, Change::RevokedSession(session), &human)
        }
    }
}

/// The user named `name`.
pub(in crate::commands) async fn find(client: &Client, name: &str) -> anyhow::Result<pb::User> {
    lookup(client, name).await?.ok_or_else(|| {
        Error::NotFound {
            what: "user",
            name: name.to_owned(),
        }
        .into()
    })
}

/// The user named `name`, if any: the first of the users whose name starts with it, as
/// usernames sort (the server folds usernames to lowercase).
async fn lookup(client: &Client, name: &str) -> anyhow::Result<Option<pb::User>> {
    let folded = name.to_lowercase();
    let page = client
        .admin_list_users(pb::AdminListUsers {
            query: folded.clone(),
            limit: 1,
            cursor: String::new(),
        })
        .await
        .with_context(|| format!("cannot look up user {name:?}"))?;
    Ok(page.users.into_iter().find(|u| u.username == folded))
}

async fn list(client: &Client, out: Output, prefix: String) -> anyhow::Result<()> {
    let mut users = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = client
            .admin_list_users(pb::AdminListUsers {
                query: prefix.clone(),
                limit: 0,
                cursor,
            })
            .await
            .context("cannot list users")?;
        users.extend(page.users);
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    if out.json {
        return out.json(&users.iter().map(UserView::from).collect::<Vec<_>>());
    }
    let now = now_ms();
    let mut table = Table::new(&[
        "ID",
        "USERNAME",
        "ROLE",
        "STATE",
        "EMAIL",
        "CREATED",
        "LAST SEEN",
    ]);
    for user in &users {
        let view = UserView::from(user);
        let (state, paint) = state(&view);
        table.painted_row(vec![
            (view.id.to_string(), Paint::Plain),
            (view.username, Paint::Plain),
            (view.role.to_owned(), role_paint(view.role)),
            (state.to_owned(), paint),
            (view.email, Paint::Plain),
            (relative_time(view.created_at_ms, now), Paint::Plain),
            (relative_time(view.last_seen_at_ms, now), Paint::Plain),
        ]);
    }
    out.table(&table)
}

fn state(view: &UserView) -> (&'static str, Paint) {
    if view.disabled {
        ("disabled", Paint::Red)
    } else if view.online {
        ("online", Paint::Green)
    } else {
        ("offline", Paint::Plain)
    }
}

fn role_paint(role: &str) -> Paint {
    if role == "admin" {
        Paint::Yellow
    } else {
        Paint::Plain
    }
}

fn show(out: Output, user: &pb::User) -> anyhow::Result<()> {
    let view = UserView::from(user);
    if out.json {
        return out.json(&view);
    }
    let now = now_ms();
    let (state, paint) = state(&view);
    let mut table = Table::new(&["FIELD", "VALUE"]);
    table.row(vec!["id".into(), view.id.to_string()]);
    table.row(vec!["username".into(), view.username.clone()]);
    table.row(vec!["display name".into(), view.display_name.clone()]);
    let email = match (view.email.is_empty(), view.email_verified) {
        (true, _) => String::new(),
        (false, true) => format!("{} (verified)", view.email),
        (false, false) => format!("{} (not verified)", view.email),
    };
    table.row(vec!["email".into(), email]);
    table.painted_row(vec![
        ("role".into(), Paint::Plain),
        (view.role.into(), role_paint(view.role)),
    ]);
    table.painted_row(vec![("state".into(), Paint::Plain), (state.into(), paint)]);
    table.row(vec![
        "created".into(),
        relative_time(view.created_at_ms, now),
    ]);
    table.row(vec![
        "last seen".into(),
        relative_time(view.last_seen_at_ms, now),
    ]);
    out.table(&table)
}

async fn set_disabled(
    client: &Client,
    out: Output,
    name: &str,
    disabled: bool,
) -> anyhow::Result<()> {
    let user = find(client, name).await?;
    client
        .admin_set_user_disabled(pb::AdminSetUserDisabled {
            user_id: user.id,
            disabled,
        })
        .await
        .with_context(|| {
            let verb = if disabled { "disable" } else { "enable" };
            format!("cannot {verb} {}", user.username)
        })?;
    let human = if disabled {
        "disabled; sessions revoked"
    } else {
        "enabled"
    };
    changed(out, &user, Change::Disabled(disabled), human)
}

fn changed(out: Output, user: &pb::User, change: Change, human: &str) -> anyhow::Result<()> {
    out.result(
        &Changed {
            id: user.id,
            username: &user.username,
            change,
        },
        &format!("{}: {human}", user.username),
    )
}

async fn sessions(client: &Client, out: Output, name: &str) -> anyhow::Result<()> {
    let user = find(client, name).await?;
    let list = client
        .admin_list_sessions(pb::AdminListSessions { user_id: user.id })
        .await
        .with_context(|| format!("cannot list the sessions of {}", user.username))?;
    let views: Vec<SessionView> = list
        .sessions
        .iter()
        .map(|s| SessionView {
            id: s.id,
            device: s.device_name.clone(),
            address: s.address.clone(),
            created_at_ms: s.created_at_ms,
            last_seen_at_ms: s.last_seen_at_ms,
        })
        .collect();
    if out.json {
        return out.json(&views);
    }
    let now = now_ms();
    let mut table = Table::new(&["ID", "DEVICE", "ADDRESS", "CREATED", "LAST SEEN"]);
    for s in views {
        table.row(vec![
            s.id.to_string(),
            s.device,
            s.address,
            relative_time(s.created_at_ms, now),
            relative_time(s.last_seen_at_ms, now),
        ]);
    }
    out.table(&table)
}

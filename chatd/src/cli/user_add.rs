//! `chatd user add NAME [--admin] --password-stdin`: create an account directly in the database
//! (how the first admin comes to exist), whether chatd runs or not.

use std::io::Read as _;

use anyhow::{Context as _, bail};
use chatproto::pb;

use crate::auth::password::hash_blocking;
use crate::ops::config::UserAdd;
use crate::state::now_ms;
use crate::store::{ConflictKind, NewUser, StoreError};
use crate::validate;

/// Reads the password from standard input (one line; the trailing newline is dropped), validates
/// name and password with the same rules as Register, and creates the account.
pub async fn run(args: UserAdd) -> anyhow::Result<()> {
    let UserAdd {
        name,
        admin,
        password_stdin,
        storage,
    } = args;
    let name = name.as_str();
    if !password_stdin {
        bail!(
            "pass the password on standard input with --password-stdin (never on the command line)"
        );
    }
    let username = validate::username("username", name)
        .map_err(|e| anyhow::anyhow!("{}", e.message))
        .with_context(|| format!("invalid username {name:?}"))?;
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("cannot read the password from stdin")?;
    let password = password.strip_suffix('\n').unwrap_or(&password);
    let password = password.strip_suffix('\r').unwrap_or(password).to_string();
    validate::password("password", &password)
        .map_err(|e| anyhow::anyhow!("invalid password: {}", e.message))?;

    if storage.mongo_uri.is_none() {
        let dir = storage.data_dir.clone();
        tokio::task::spawn_blocking(move || crate::ops::datadir::create_dir(&dir))
            .await
            .context("data directory task")??;
    }
    let master =
        crate::ops::file_store::master_keys(&storage)?.map(|keys| crate::daemon::MasterKeyStart {
            keys,
            files: None,
            overlap: std::time::Duration::ZERO,
        });
    let store = crate::daemon::open_store(&storage, master.as_ref(), None)
        .await?
        .store;
    let hash = tokio::task::spawn_blocking(move || hash_blocking(password.as_bytes()))
        .await
        .context("hashing task")?
        .context("cannot hash the password")?;
    let role = if admin {
        pb::Role::Admin
    } else {
        pb::Role::User
    };
    let user = store
        .create_user(NewUser {
            username: username.clone(),
            email: String::new(),
            password_hash: hash,
            role,
            now_ms: now_ms(),
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(ConflictKind::UsernameTaken) => {
                anyhow::anyhow!("user {username} already exists")
            }
            other => anyhow::anyhow!(other),
        })?;
    println!(
        "created user {} (id {}){}",
        user.username,
        user.id,
        if admin { " with the admin role" } else { "" }
    );
    Ok(())
}

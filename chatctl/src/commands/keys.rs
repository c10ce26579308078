//! `chatctl keys list | rotate | retire | secrets`: the server's rotating keys
//! (spec/protocol.md 9.6, "Key rotation"): the rings as ids, states and times, a new current
//! key, the end of an overlap, and the secrets shared with webhook receivers and TURN servers,
//! the only secrets ever printed (`secrets`; the server's own keys it never gives).

use anyhow::Context as _;
use chatproto::pb;
use serde::Serialize;

use crate::cli::{KeyKindArg, KeysCommand};
use crate::error::Error;
use crate::output::{Output, Paint, Table, confirm, hex, now_ms, relative_time};
use crate::session::Admin;
use crate::settings::Settings;

/// One key as `keys --json` prints it. The field names are stable: scripts read them.
#[derive(Debug, Serialize)]
struct KeyView {
    /// `tokens`, `refresh`, `webhook`, `turn` or `master`.
    kind: &'static str,
    kid: u32,
    /// `current` or `retiring`.
    state: &'static str,
    /// 0: from before key rotation.
    created_at_ms: i64,
    /// 0: the current key.
    retire_at_ms: i64,
}

/// One shared secret as `keys secrets --json` prints it.
#[derive(Debug, Serialize)]
struct SecretView {
    kid: u32,
    /// `current` or `retiring`.
    state: &'static str,
    created_at_ms: i64,
    retire_at_ms: i64,
    /// The secret as text; one that is not UTF-8 as `hex:` and its hex.
    secret: String,
}

/// What `keys secrets --json` prints.
#[derive(Debug, Serialize)]
struct SecretsView {
    /// `webhook` or `turn`.
    kind: &'static str,
    secrets: Vec<SecretView>,
}

/// What every `keys` command but `secrets` prints with `--json`.
#[derive(Debug, Serialize)]
struct RingsView {
    keys: Vec<KeyView>,
    /// The tokens and refresh keys' schedule; 0: no scheduled rotation.
    rotation_interval_ms: i64,
    /// Each kind's schedule, by kind name; 0: only by command.
    rotation_intervals_ms: std::collections::BTreeMap<&'static str, i64>,
    overlap_ms: i64,
}

fn kind(arg: KeyKindArg) -> pb::KeyKind {
    match arg {
        KeyKindArg::Tokens => pb::KeyKind::Tokens,
        KeyKindArg::Refresh => pb::KeyKind::Refresh,
        KeyKindArg::Webhook => pb::KeyKind::Webhook,
        KeyKindArg::Turn => pb::KeyKind::Turn,
        KeyKindArg::Master => pb::KeyKind::Master,
    }
}

fn state_name(state: pb::KeyState) -> &'static str {
    match state {
        pb::KeyState::Current => "current",
        _ => "retiring",
    }
}

fn kind_name(kind: pb::KeyKind) -> &'static str {
    match kind {
        pb::KeyKind::Tokens => "tokens",
        pb::KeyKind::Refresh => "refresh",
        pb::KeyKind::Webhook => "webhook",
        pb::KeyKind::Turn => "turn",
        pb::KeyKind::Master => "master",
        pb::KeyKind::Unspecified => "unknown",
    }
}

/// The new secret of a webhook or TURN rotation from `file` (a trailing newline removed);
/// none for the kinds the server makes.
fn new_secret(kind: KeyKindArg, file: Option<&std::path::Path>) -> anyhow::Result<Vec<u8>> {
    let shared = matches!(kind, KeyKindArg::Webhook | KeyKindArg::Turn);
    match (shared, file) {
        (true, Some(path)) => {
            let text = std::fs::read(path)
                .with_context(|| format!("cannot read the new secret from {}", path.display()))?;
            let mut secret = text;
            while secret.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                secret.pop();
            }
            Ok(secret)
        }
        (true, None) => Err(Error::Usage(
            "give the new secret with --secret-file (the receivers or TURN servers must accept it first)"
                .to_owned(),
        )
        .into()),
        (false, Some(_)) => Err(Error::Usage(
            "the server makes the tokens, refresh and master keys: --secret-file is only for webhook and turn"
                .to_owned(),
        )
        .into()),
        (false, None) => Ok(Vec::new()),
    }
}

/// The request a command makes.
enum Action {
    List,
    Rotate(pb::AdminRotateKey),
    Retire(pb::AdminRetireKeys),
    Secrets(pb::AdminGetKeySecrets),
}

/// What the server answered.
enum Answer {
    Rings(pb::KeyRingList),
    Secrets(pb::KeySecretList),
}

pub(super) async fn run(command: KeysCommand, settings: &Settings) -> anyhow::Result<()> {
    // Local checks and the question come before signing in, so refusing costs the server
    // nothing.
    let action = match &command {
        KeysCommand::List(_) => Action::List,
        KeysCommand::Rotate {
            kind: k,
            secret_file,
            ..
        } => Action::Rotate(pb::AdminRotateKey {
            kind: kind(*k) as i32,
            secret: new_secret(*k, secret_file.as_deref())?,
        }),
        KeysCommand::Secrets { kind: k, .. } => {
            if !matches!(k, KeyKindArg::Webhook | KeyKindArg::Turn) {
                return Err(Error::Usage(
                    "the server never gives its tokens, refresh and master keys: --kind webhook or turn"
                        .to_owned(),
                )
                .into());
            }
            Action::Secrets(pb::AdminGetKeySecrets {
                kind: kind(*k) as i32,
            })
        }
        KeysCommand::Retire { kind: k, yes, .. } => {
            let question = match k {
                KeyKindArg::Master => "End the overlap of the master key? Each node forgets the previous one once nothing is kept under it".to_owned(),
                _ => format!(
                    "Stop verifying every {} key but the current one? Tokens and refresh tokens of the others are refused at once",
                    kind_name(kind(*k))
                ),
            };
            confirm(&question, *yes)?;
            Action::Retire(pb::AdminRetireKeys {
                kind: kind(*k) as i32,
            })
        }
    };
    let admin = Admin::sign_in(settings).await?;
    let client = admin.client();
    let answer = match action {
        Action::List => client
            .admin_list_keys(pb::AdminListKeys {})
            .await
            .map(Answer::Rings)
            .context("cannot list the keys"),
        Action::Rotate(req) => {
            let name = kind_name(req.kind());
            client
                .admin_rotate_key(req)
                .await
                .map(Answer::Rings)
                .with_context(|| format!("cannot rotate the {name} key"))
        }
        Action::Retire(req) => {
            let name = kind_name(req.kind());
            client
                .admin_retire_keys(req)
                .await
                .map(Answer::Rings)
                .with_context(|| format!("cannot end the overlap of the {name} keys"))
        }
        Action::Secrets(req) => {
            let name = kind_name(req.kind());
            client
                .admin_get_key_secrets(req)
                .await
                .map(Answer::Secrets)
                .with_context(|| format!("cannot read the {name} secrets"))
        }
    };
    let reported = answer.and_then(|answer| match answer {
        Answer::Rings(list) => print(settings.output, list),
        Answer::Secrets(list) => print_secrets(settings.output, list),
    });
    let finished = admin.finish(settings).await;
    reported.and(finished)
}

fn print(out: Output, list: pb::KeyRingList) -> anyhow::Result<()> {
    let view = RingsView {
        keys: list
            .rings
            .iter()
            .flat_map(|ring| {
                let kind = kind_name(ring.kind());
                ring.keys.iter().map(move |k| KeyView {
                    kind,
                    kid: k.kid,
                    state: state_name(k.state()),
                    created_at_ms: k.created_at_ms,
                    retire_at_ms: k.retire_at_ms,
                })
            })
            .collect(),
        rotation_interval_ms: list.rotation_interval_ms,
        rotation_intervals_ms: list
            .rings
            .iter()
            .map(|ring| (kind_name(ring.kind()), ring.rotation_interval_ms))
            .collect(),
        overlap_ms: list.overlap_ms,
    };
    if out.json {
        return out.json(&view);
    }
    let now = now_ms();
    let mut table = Table::new(&[
        "KIND",
        "KID",
        "STATE",
        "CREATED",
        "RETIRES",
        "ROTATES EVERY",
    ]);
    for k in &view.keys {
        let created = if k.created_at_ms == 0 {
            "before rotation".to_owned()
        } else {
            relative_time(k.created_at_ms, now)
        };
        let retires = if k.retire_at_ms == 0 {
            "-".to_owned()
        } else {
            relative_time(k.retire_at_ms, now)
        };
        let (paint, every) = if k.state == "current" {
            let interval = view.rotation_intervals_ms.get(k.kind).copied();
            (Paint::Green, every(interval.unwrap_or(0)))
        } else {
            (Paint::Yellow, String::new())
        };
        table.painted_row(vec![
            (k.kind.to_owned(), Paint::Plain),
            (k.kid.to_string(), Paint::Plain),
            (k.state.to_owned(), paint),
            (created, Paint::Plain),
            (retires, Paint::Plain),
            (every, Paint::Plain),
        ]);
    }
    out.table(&table)
}

/// A schedule as the table shows it: `by command` for none, else in the largest whole unit.
fn every(ms: i64) -> String {
    const UNITS: [(i64, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
    ];
    if ms <= 0 {
        return "by command".to_owned();
    }
    UNITS.iter().find(|(unit, _)| ms % unit == 0).map_or_else(
        || format!("{ms}ms"),
        |(unit, name)| format!("{}{name}", ms / unit),
    )
}

fn print_secrets(out: Output, list: pb::KeySecretList) -> anyhow::Result<()> {
    let view = SecretsView {
        kind: kind_name(list.kind()),
        secrets: list
            .keys
            .iter()
            .map(|k| {
                let key = k.key.unwrap_or_default();
                SecretView {
                    kid: key.kid,
                    state: state_name(key.state()),
                    created_at_ms: key.created_at_ms,
                    retire_at_ms: key.retire_at_ms,
                    secret: String::from_utf8(k.secret.clone())
                        .unwrap_or_else(|_| format!("hex:{}", hex(&k.secret))),
                }
            })
            .collect(),
    };
    if out.json {
        return out.json(&view);
    }
    let mut table = Table::new(&["KID", "STATE", "SECRET"]);
    for k in &view.secrets {
        table.row(vec![
            k.kid.to_string(),
            k.state.to_owned(),
            k.secret.clone(),
        ]);
    }
    out.table(&table)
}

#[cfg(test)]
mod tests {
    #[test]
    fn schedules_show_in_their_largest_whole_unit() {
        assert_eq!(super::every(0), "by command");
        assert_eq!(super::every(2_592_000_000), "30d");
        assert_eq!(super::every(7_200_000), "2h");
        assert_eq!(super::every(7_000), "7s");
        assert_eq!(super::every(1_500), "1500ms");
    }
}

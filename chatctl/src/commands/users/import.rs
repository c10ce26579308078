//! `chatctl users import FILE`: accounts from JSON Lines, created with `admin_create_user`.
//!
//! The file is streamed: a reader thread hands lines over a small bounded channel (so a slow
//! pipe never blocks the connection's runtime, and memory does not grow with the file), and each
//! is reported as soon as it is done. Idempotent: an account that exists is reported `exists`
//! and left as it is, so an import can be run again after a failure. A bad line is reported
//! with its number and the import goes on; a refusal of the admin or a lost server ends it.

use std::io::{BufRead, BufReader, Read as _, Write as _};

use anyhow::Context as _;
use chatproto::client::{Client, ClientError};
use chatproto::pb;
use serde::{Deserialize, Serialize};

use super::{generate_password, lookup, role_name};
use crate::output::Output;

/// Longest line read; a longer one is reported invalid without being held in memory.
const MAX_LINE_BYTES: u64 = 64 * 1024;

/// Lines read ahead of the one being imported.
const READ_AHEAD: usize = 64;

/// One input line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Account {
    username: String,
    email: String,
    password: Option<String>,
    role: Option<ImportRole>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ImportRole {
    User,
    Admin,
}

/// What became of one input line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    /// The account was created.
    Created,
    /// An account of that name exists (or existed: names are not reused); nothing changed.
    Exists,
    /// The line is not an account (not JSON, a field missing or unknown, too long).
    Invalid,
    /// The server refused the account (e.g. a bad email address).
    Failed,
}

/// One line of the report (`--json`: one JSON object per line).
#[derive(Debug, Serialize)]
struct ReportLine {
    line: u64,
    username: Option<String>,
    status: Status,
    /// The account's id when created or found.
    id: Option<u64>,
    role: Option<&'static str>,
    /// A generated password: only here, only for an account this import created.
    password: Option<String>,
    /// Why the line was invalid or failed.
    error: Option<String>,
}

/// The last line of the report.
#[derive(Debug, Default, Serialize)]
struct Summary {
    lines: u64,
    created: u64,
    exists: u64,
    invalid: u64,
    failed: u64,
}

#[derive(Debug, Serialize)]
struct SummaryLine<'a> {
    summary: &'a Summary,
}

/// A line as read: its text, or why it cannot be one.
type Read = Result<String, String>;

pub(super) async fn run(client: &Client, out: Output, file: &str) -> anyhow::Result<()> {
    let input: Box<dyn std::io::Read + Send> = if file == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(file).with_context(|| format!("cannot open {file}"))?)
    };
    let (tx, mut lines) = tokio::sync::mpsc::channel::<std::io::Result<(u64, Read)>>(READ_AHEAD);
    let reader = std::thread::spawn(move || read_lines(BufReader::new(input), &tx));
    if !out.json {
        print(format_args!(
            "{:>6}  {:<8}  {:<20}  DETAIL",
            "LINE", "STATUS", "USERNAME"
        ))?;
    }
    let mut summary = Summary::default();
    let mut failure = None;
    while let Some(next) = lines.recv().await {
        let (line, read) = next.with_context(|| format!("cannot read {file}"))?;
        let report = match import_line(client, line, read).await {
            Ok(report) => report,
            Err(e) => {
                failure = Some(e.context(format!("import stopped at line {line}")));
                break;
            }
        };
        summary.lines += 1;
        *match report.status {
            Status::Created => &mut summary.created,
            Status::Exists => &mut summary.exists,
            Status::Invalid => &mut summary.invalid,
            Status::Failed => &mut summary.failed,
        } += 1;
        show(out, &report)?;
    }
    // Dropping the receiver ends the reader at its next line.
    drop(lines);
    let _ = reader.join();
    if out.json {
        print(format_args!(
            "{}",
            json(&SummaryLine { summary: &summary })?
        ))?;
    } else {
        print(format_args!(
            "{} lines: {} created, {} exist, {} invalid, {} failed",
            summary.lines, summary.created, summary.exists, summary.invalid, summary.failed
        ))?;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let bad = summary.invalid + summary.failed;
    if bad > 0 {
        anyhow::bail!(
            "{bad} of {} lines were not imported (see the report)",
            summary.lines
        );
    }
    Ok(())
}

/// Reads `input` line by line onto `tx`, numbered from 1; blank lines are skipped. Stops at the
/// end, at a read error (sent on), or when the receiver is gone.
fn read_lines(
    mut input: impl BufRead,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<(u64, Read)>>,
) {
    let mut number = 0;
    loop {
        number += 1;
        let mut bytes = Vec::new();
        let read = match input
            .by_ref()
            .take(MAX_LINE_BYTES)
            .read_until(b'\n', &mut bytes)
        {
            Ok(0) => return,
            Ok(_) => bytes,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        let line = if read.last() == Some(&b'\n') || (read.len() as u64) < MAX_LINE_BYTES {
            String::from_utf8(read)
                .map(|l| l.trim_end_matches(['\n', '\r']).to_owned())
                .map_err(|_| "not UTF-8".to_owned())
        } else {
            // Too long: skip to the end of the line without keeping it.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                match input
                    .by_ref()
                    .take(MAX_LINE_BYTES)
                    .read_until(b'\n', &mut rest)
                {
                    Ok(n) if n > 0 && rest.last() != Some(&b'\n') => continue,
                    Ok(_) => break,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
            Err(format!("longer than {MAX_LINE_BYTES} bytes"))
        };
        if line.as_ref().is_ok_and(|l| l.trim().is_empty()) {
            continue;
        }
        if tx.blocking_send(Ok((number, line))).is_err() {
            return;
        }
    }
}

/// Imports one line. `Err` only for what ends the import: the admin refused, the server gone.
async fn import_line(client: &Client, line: u64, read: Read) -> anyhow::Result<ReportLine> {
    let mut report = ReportLine {
        line,
        username: None,
        status: Status::Invalid,
        id: None,
        role: None,
        password: None,
        error: None,
    };
    let text = match read {
        Ok(text) => text,
        Err(why) => {
            report.error = Some(why);
            return Ok(report);
        }
    };
    let account = match serde_json::from_str::<Account>(&text) {
        Ok(account) => account,
        Err(e) => {
            // Name the account when the line says which it was meant to be.
            report.username = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("username")?.as_str().map(str::to_owned));
            report.error = Some(format!("not an account: {e}"));
            return Ok(report);
        }
    };
    report.username = Some(account.username.clone());
    match create(client, account).await {
        Ok((status, user, password)) => {
            report.status = status;
            report.id = Some(user.id);
            report.role = Some(role_name(user.role()));
            report.password = password;
        }
        Err(e) if ends_import(&e) => return Err(e),
        Err(e) => {
            report.status = Status::Failed;
            // The server's answer says it all (the SDK's error repeats it as its source).
            let why = e
                .chain()
                .find_map(|c| c.downcast_ref::<ClientError>())
                .map_or_else(|| format!("{e:#}"), ToString::to_string);
            report.error = Some(why);
        }
    }
    Ok(report)
}

/// Creates `account` unless a user of that name exists.
async fn create(
    client: &Client,
    account: Account,
) -> anyhow::Result<(Status, pb::User, Option<String>)> {
    if let Some(user) = lookup(client, &account.username).await? {
        return Ok((Status::Exists, user, None));
    }
    let (password, shown) = match account.password {
        Some(p) => (p, None),
        None => {
            let p = generate_password();
            (p.clone(), Some(p))
        }
    };
    let role = match account.role {
        Some(ImportRole::Admin) => pb::Role::Admin,
        Some(ImportRole::User) | None => pb::Role::User,
    };
    let created = client
        .admin_create_user(pb::AdminCreateUser {
            username: account.username.clone(),
            email: account.email,
            password,
            role: role as i32,
        })
        .await;
    match created {
        Ok(user) => Ok((Status::Created, user, shown)),
        // Taken meanwhile, or by a deleted account (names are not reused): nothing to do.
        Err(ClientError::Remote(e)) if e.code == pb::ErrorCode::Conflict => {
            let user = pb::User {
                username: account.username.to_lowercase(),
                role: role as i32,
                ..Default::default()
            };
            Ok((Status::Exists, user, None))
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether `e` ends the import rather than one line: the admin is refused, or the server is
/// not there to ask.
fn ends_import(e: &anyhow::Error) -> bool {
    let Some(client) = e.chain().find_map(|c| c.downcast_ref::<ClientError>()) else {
        return false;
    };
    match client {
        ClientError::Remote(remote) => matches!(
            remote.code,
            pb::ErrorCode::Unauthenticated
                | pb::ErrorCode::PermissionDenied
                | pb::ErrorCode::Unavailable
        ),
        _ => true,
    }
}

fn show(out: Output, r: &ReportLine) -> anyhow::Result<()> {
    if out.json {
        return print(format_args!("{}", json(r)?));
    }
    let status = match r.status {
        Status::Created => "created",
        Status::Exists => "exists",
        Status::Invalid => "invalid",
        Status::Failed => "failed",
    };
    let detail = match (&r.error, r.role, &r.password) {
        (Some(e), _, _) => e.clone(),
        (None, Some(role), Some(p)) => format!("{role}; password: {p}"),
        (None, Some(role), None) => role.to_owned(),
        (None, None, _) => String::new(),
    };
    let username = r.username.as_deref().unwrap_or("-");
    print(format_args!(
        "{:>6}  {status:<8}  {username:<20}  {detail}",
        r.line
    ))
}

fn json(value: &impl Serialize) -> anyhow::Result<String> {
    serde_json::to_string(value).context("cannot encode JSON")
}

fn print(line: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .context("cannot write to standard output")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8]) -> Vec<(u64, Read)> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(READ_AHEAD);
        let input = input.to_vec();
        let reader = std::thread::spawn(move || read_lines(input.as_slice(), &tx));
        let mut lines = Vec::new();
        while let Some(line) = rx.blocking_recv() {
            lines.push(line.expect("read"));
        }
        reader.join().expect("reader");
        lines
    }

    #[test]
    fn lines_are_numbered_as_in_the_file_and_blank_ones_skipped() {
        let lines = read_all(b"{\"a\":1}\n\n  \n{\"b\":2}\r\nlast");
        let numbers: Vec<u64> = lines.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [1, 4, 5]);
        assert_eq!(lines[2].1.as_deref(), Ok("last"));
    }

    #[test]
    fn a_too_long_or_binary_line_is_reported_and_the_next_read() {
        let mut input = vec![b'x'; usize::try_from(MAX_LINE_BYTES).expect("fits") * 2 + 10];
        input.extend_from_slice(b"\n\xff\xfe\nok\n");
        let lines = read_all(&input);
        assert_eq!(
            lines.len(),
            3,
            "{:?}",
            lines.iter().map(|l| l.0).collect::<Vec<_>>()
        );
        assert!(lines[0].1.as_ref().is_err_and(|e| e.contains("longer")));
        assert_eq!(lines[1].1, Err("not UTF-8".to_owned()));
        assert_eq!((lines[2].0, lines[2].1.as_deref()), (3, Ok("ok")));
    }

    #[test]
    fn accounts_name_their_fields() {
        let full: Account = serde_json::from_str(
            r#"{"username":"dave","email":"d@example.org","password":"pw123456","role":"admin"}"#,
        )
        .expect("account");
        assert!(matches!(full.role, Some(ImportRole::Admin)));
        let missing = serde_json::from_str::<Account>(r#"{"username":"dave"}"#);
        assert!(missing.is_err_and(|e| e.to_string().contains("email")));
        let typo = serde_json::from_str::<Account>(
            r#"{"username":"dave","email":"d@example.org","pasword":"x"}"#,
        );
        assert!(typo.is_err_and(|e| e.to_string().contains("pasword")));
    }
}

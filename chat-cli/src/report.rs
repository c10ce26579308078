//! Printing a failed program's error: once, cause by cause, with a hint.
//!
//! ```text
//! chatd: error: cannot prepare the data directory
//!   caused by: cannot create data directory /srv/chat
//!   caused by: Permission denied (os error 13)
//!   hint: chatd needs write and search permission on /srv/chat ...
//! ```
//!
//! Many error types quote their source in their own message *and* return it from `source()`,
//! so a plain `{:#}` prints the same I/O error twice. A cause whose text the line above already
//! ends with is therefore left out.

use std::io::Write as _;
use std::process::ExitCode;

/// A hint for the user, attached by a binary to the errors it recognises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint(pub String);

/// The lines of `err`'s chain, outermost first, without causes already quoted by the line
/// before them.
pub fn causes(err: &anyhow::Error) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        if lines.last().is_some_and(|prev| prev.ends_with(text)) {
            continue;
        }
        lines.push(text.to_owned());
    }
    lines
}

/// The report of `err` as [`print`] writes it (no trailing newline).
pub fn render(program: &str, err: &anyhow::Error, hint: Option<&Hint>) -> String {
    let mut out = String::new();
    for (i, line) in causes(err).iter().enumerate() {
        if i == 0 {
            out.push_str(&format!("{program}: error: {line}"));
        } else {
            out.push_str(&format!("\n  caused by: {line}"));
        }
    }
    if let Some(Hint(hint)) = hint {
        out.push_str(&format!("\n  hint: {hint}"));
    }
    out
}

/// Writes the report of `err` to standard error.
pub fn print(program: &str, err: &anyhow::Error, hint: Option<&Hint>) {
    let _ = writeln!(std::io::stderr(), "{}", render(program, err, hint));
}

/// The body of every binary's `main`: runs `body`; on error prints the report (with the hint
/// `hint` finds for it) and exits with status 1. `body` returns the success status itself (a
/// program may have several, like loadgen's 3 for "ran but not OK").
pub fn run_main(
    program: &str,
    body: impl FnOnce() -> anyhow::Result<ExitCode>,
    hint: impl FnOnce(&anyhow::Error) -> Option<Hint>,
) -> ExitCode {
    run_main_with_status(program, body, hint, |_| 1)
}

/// [`run_main`] for a program whose failures have several statuses (chatctl's 3 for
/// authentication, 4 for not found, ...): `status` picks the one of an error.
pub fn run_main_with_status(
    program: &str,
    body: impl FnOnce() -> anyhow::Result<ExitCode>,
    hint: impl FnOnce(&anyhow::Error) -> Option<Hint>,
    status: impl FnOnce(&anyhow::Error) -> u8,
) -> ExitCode {
    match body() {
        Ok(code) => code,
        Err(err) => {
            print(program, &err, hint(&err).as_ref());
            ExitCode::from(status(&err))
        }
    }
}

/// The first I/O error in `err`'s chain, if any: what most hints are about.
pub fn io_error(err: &anyhow::Error) -> Option<&std::io::Error> {
    err.chain().find_map(|e| e.downcast_ref::<std::io::Error>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot create {path}: {source}")]
    struct Quoting {
        path: String,
        source: std::io::Error,
    }

    #[test]
    fn a_cause_quoted_by_its_parent_is_printed_once() {
        let io = std::io::Error::from_raw_os_error(13);
        let err = anyhow::Error::new(Quoting {
            path: "/srv/chat".into(),
            source: io,
        })
        .context("cannot prepare the data directory");
        let text = render("chatd", &err, Some(&Hint("try --data-dir".into())));
        assert_eq!(
            text,
            "chatd: error: cannot prepare the data directory\n  \
             caused by: cannot create /srv/chat: Permission denied (os error 13)\n  \
             hint: try --data-dir"
        );
        assert_eq!(text.matches("Permission denied").count(), 1, "{text}");
        assert_eq!(
            io_error(&err).map(std::io::Error::kind),
            Some(std::io::ErrorKind::PermissionDenied)
        );
    }

    #[test]
    fn every_distinct_cause_gets_its_own_line() {
        let err = anyhow::anyhow!("root cause")
            .context("middle")
            .context("top");
        assert_eq!(causes(&err), ["top", "middle", "root cause"]);
        assert_eq!(
            render("x", &err, None),
            "x: error: top\n  caused by: middle\n  caused by: root cause"
        );
    }
}

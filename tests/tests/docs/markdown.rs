//! Fenced blocks of a Markdown file and their `docs-test` annotations.

use std::path::Path;

/// How a block runs (see the crate documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Run to completion.
    Run,
    /// A server, running until the end of its document.
    Daemon,
    /// Run until its output contains the text.
    Until(String),
    /// The output of the previous block.
    Output,
    /// Not run, for the reason; `--help` checks the command exists.
    NotRun(String),
    /// A non-shell block without annotation: shown, not run.
    Shown,
}

/// One fenced block.
#[derive(Debug, Clone)]
pub struct Block {
    /// `file:line` of its opening fence.
    pub place: String,
    /// How it runs.
    pub mode: Mode,
    /// Its text.
    pub text: String,
}

/// The fenced blocks of `text`, with their annotations; panics on a malformed annotation.
pub fn blocks(file: &Path, text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    let mut annotation: Option<(usize, String)> = None;
    while let Some((i, line)) = lines.next() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed
            .strip_prefix("<!-- docs-test:")
            .and_then(|r| r.strip_suffix("-->"))
        {
            annotation = Some((i, rest.trim().to_owned()));
            continue;
        }
        let Some(info) = trimmed.strip_prefix("```") else {
            if !trimmed.is_empty() {
                annotation = None;
            }
            continue;
        };
        let lang = info.split_whitespace().next().unwrap_or("").to_owned();
        let mut body = String::new();
        for (_, l) in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        let place = format!("{}:{}", file.display(), i + 1);
        let is_shell = matches!(lang.as_str(), "sh" | "bash" | "shell" | "console");
        let mode = match annotation.take() {
            None if is_shell => Mode::Run,
            None => Mode::Shown,
            Some((_, a)) => parse_mode(&a, &place),
        };
        assert!(
            is_shell != matches!(mode, Mode::Output | Mode::Shown),
            "{place}: `{mode:?}` does not fit a {lang:?} block"
        );
        out.push(Block {
            place,
            mode,
            text: body,
        });
    }
    out
}

fn parse_mode(annotation: &str, place: &str) -> Mode {
    let quoted = |rest: &str| -> String {
        rest.trim()
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .unwrap_or_else(|| panic!("{place}: expected a quoted text in {annotation:?}"))
            .to_owned()
    };
    if annotation == "daemon" {
        Mode::Daemon
    } else if annotation == "output" {
        Mode::Output
    } else if let Some(rest) = annotation.strip_prefix("until ") {
        Mode::Until(quoted(rest))
    } else if let Some(rest) = annotation.strip_prefix("not-run ") {
        Mode::NotRun(quoted(rest))
    } else {
        panic!("{place}: unknown docs-test annotation {annotation:?}")
    }
}

//! Printing for people and for scripts: aligned tables with relative times, human sizes and
//! grouped counts, colour only on a
//! terminal and never with `NO_COLOR`, or JSON with stable field names (`--json`); and the
//! confirmation destructive commands ask for.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::Context as _;
use serde::Serialize;

use crate::error::Error;

/// How a command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    /// JSON instead of tables and sentences.
    pub json: bool,
    /// ANSI colour in tables.
    pub color: bool,
}

/// A colour for a table cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paint {
    /// As is.
    Plain,
    /// Something wrong or off (a disabled account).
    Red,
    /// Something to notice (an admin).
    Yellow,
    /// Something fine (online).
    Green,
}

impl Paint {
    fn code(self) -> Option<&'static str> {
        match self {
            Paint::Plain => None,
            Paint::Red => Some("31"),
            Paint::Yellow => Some("33"),
            Paint::Green => Some("32"),
        }
    }
}

impl Output {
    /// `--json`, with colour when standard output is a terminal and `NO_COLOR` is unset or empty
    /// (no-color.org).
    pub fn new(json: bool, env: &dyn Fn(&str) -> Option<String>) -> Self {
        let no_color = env("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            json,
            color: !json && !no_color && std::io::stdout().is_terminal(),
        }
    }

    /// Prints `value` as one JSON document.
    ///
    /// # Errors
    /// Standard output cannot be written.
    pub fn json(&self, value: &impl Serialize) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(value).context("cannot encode JSON")?;
        print_line(&text)
    }

    /// Prints `value` as JSON with `--json`, else the sentence `human`.
    ///
    /// # Errors
    /// Standard output cannot be written.
    pub fn result(&self, value: &impl Serialize, human: &str) -> anyhow::Result<()> {
        if self.json {
            self.json(value)
        } else {
            print_line(human)
        }
    }

    /// Prints `table` aligned (its header in bold on a terminal).
    ///
    /// # Errors
    /// Standard output cannot be written.
    pub fn table(&self, table: &Table) -> anyhow::Result<()> {
        let text = table.render(self.color);
        if text.is_empty() {
            return Ok(());
        }
        print_line(text.trim_end_matches('\n'))
    }
}

/// Prints `text` and a newline to standard output (also a heading above a table).
///
/// # Errors
/// Standard output cannot be written.
pub fn print_line(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .context("cannot write to standard output")
}

/// Rows of cells under a header, printed with every column as wide as its widest cell.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<(String, Paint)>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row of uncoloured cells.
    pub fn row(&mut self, cells: Vec<String>) {
        self.painted_row(cells.into_iter().map(|c| (c, Paint::Plain)).collect());
    }

    /// Adds a row with a colour per cell.
    pub fn painted_row(&mut self, cells: Vec<(String, Paint)>) {
        self.rows.push(cells);
    }

    /// The table's text; colour codes only when `color`. Widths count characters, so colour
    /// never shifts a column.
    pub fn render(&self, color: bool) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, (cell, _)) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<(String, Paint)> = self
            .header
            .iter()
            .map(|h| ((*h).to_owned(), Paint::Plain))
            .collect();
        let bold = |s: &str| {
            if color {
                format!("\x1b[1m{s}\x1b[0m")
            } else {
                s.to_owned()
            }
        };
        out.push_str(&bold(&line(&header, &widths, color)));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row, &widths, color));
            out.push('\n');
        }
        out
    }
}

fn line(cells: &[(String, Paint)], widths: &[usize], color: bool) -> String {
    let last = widths.len().saturating_sub(1);
    let mut out = String::new();
    for (i, width) in widths.iter().enumerate() {
        let (cell, paint) = cells
            .get(i)
            .map_or(("", Paint::Plain), |(c, p)| (c.as_str(), *p));
        let padding = if i == last {
            0
        } else {
            width - cell.chars().count() + 2
        };
        match paint.code().filter(|_| color) {
            Some(code) => out.push_str(&format!("\x1b[{code}m{cell}\x1b[0m")),
            None => out.push_str(cell),
        }
        out.extend(std::iter::repeat_n(' ', padding));
    }
    out.trim_end().to_owned()
}

/// `at_ms` relative to `now_ms`: "just now", "5m ago", "3h ago", "2d ago", "in 4m"; "never" for
/// 0 (the protocol's "no time").
pub fn relative_time(at_ms: i64, now_ms: i64) -> String {
    if at_ms <= 0 {
        return "never".to_owned();
    }
    let diff = now_ms.saturating_sub(at_ms);
    let secs = diff.unsigned_abs() / 1000;
    let amount = match secs {
        0..=9 => return "just now".to_owned(),
        10..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        3600..=86_399 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    };
    if diff >= 0 {
        format!("{amount} ago")
    } else {
        format!("in {amount}")
    }
}

/// The current time in ms since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The time `ago` before now, in ms since the Unix epoch (at least 1: the protocol's 0 means
/// "no time"), for the `--since DURATION` options.
pub fn ms_ago(ago: std::time::Duration) -> i64 {
    let ago = i64::try_from(ago.as_millis()).unwrap_or(i64::MAX);
    now_ms().saturating_sub(ago).max(1)
}

/// `bytes` in lowercase hex (SHA-256 digests).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `bytes` for people: `512 B`, `1.5 KiB`, `20.0 MiB`, ...
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{value:.1} {}", UNITS.get(unit).copied().unwrap_or("B")),
    }
}

/// A count for people, in groups of three digits: `987`, `12,345`, `1,234,567`.
pub fn human_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// Asks `question` on a terminal unless `yes`; without a terminal, refuses unless `yes`.
///
/// # Errors
/// [`Error::Usage`] when not confirmed.
pub fn confirm(question: &str, yes: bool) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(format!(
            "not confirmed ({question}): standard input is not a terminal; pass --yes"
        ))
        .into());
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("cannot read the answer")?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(Error::Usage("not confirmed; nothing was changed".to_owned()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(20 * 1024 * 1024), "20.0 MiB");
        assert_eq!(human_size(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn counts_read_in_groups_of_three() {
        assert_eq!(human_count(0), "0");
        assert_eq!(human_count(999), "999");
        assert_eq!(human_count(1000), "1,000");
        assert_eq!(human_count(12_345), "12,345");
        assert_eq!(human_count(1_234_567), "1,234,567");
        assert_eq!(human_count(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn tables_align_and_colour_does_not_shift_columns() {
        let mut t = Table::new(&["ID", "USERNAME", "ROLE"]);
        t.row(vec!["1".into(), "root".into(), "admin".into()]);
        t.painted_row(vec![
            ("12".into(), Paint::Plain),
            ("alice".into(), Paint::Red),
            ("user".into(), Paint::Plain),
        ]);
        assert_eq!(
            t.render(false),
            "ID  USERNAME  ROLE\n1   root      admin\n12  alice     user\n"
        );
        let colored = t.render(true);
        assert!(colored.starts_with("\x1b[1mID"), "{colored:?}");
        assert!(
            colored.contains("12  \x1b[31malice\x1b[0m     user"),
            "{colored:?}"
        );
    }

    #[test]
    fn times_read_relative_to_now() {
        let now = 1_000_000_000;
        assert_eq!(relative_time(0, now), "never");
        assert_eq!(relative_time(now - 3_000, now), "just now");
        assert_eq!(relative_time(now - 42_000, now), "42s ago");
        assert_eq!(relative_time(now - 5 * 60_000, now), "5m ago");
        assert_eq!(relative_time(now - 3 * 3_600_000, now), "3h ago");
        assert_eq!(relative_time(now - 2 * 86_400_000, now), "2d ago");
        assert_eq!(relative_time(now + 4 * 60_000, now), "in 4m");
    }
}

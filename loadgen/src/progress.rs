//! Progress display on standard error (indicatif): a bar per phase. Hidden automatically when
//! standard error is not a terminal, and entirely when disabled (library use in tests).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Makes the progress bars of a run.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    enabled: bool,
}

impl Progress {
    /// Bars on standard error when `enabled` (and it is a terminal).
    pub fn new(enabled: bool) -> Self {
        Self { enabled }
    }

    fn bar(&self, len: u64, template: &str, prefix: &str) -> ProgressBar {
        if !self.enabled {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(prefix.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    /// A bar counting `len` items (connections, rooms).
    pub fn counter(&self, len: u64, what: &str) -> ProgressBar {
        self.bar(
            len,
            "{prefix:>12} [{bar:30}] {pos}/{len} {per_sec:.dim} {msg}",
            what,
        )
    }

    /// A bar over `seconds` of load, with a message of live figures.
    pub fn timed(&self, seconds: u64, what: &str) -> ProgressBar {
        self.bar(
            seconds.max(1),
            "{prefix:>12} [{bar:30}] {pos}/{len}s {msg}",
            what,
        )
    }

    /// A spinner for a phase of unknown length.
    pub fn spinner(&self, what: &str) -> ProgressBar {
        if !self.enabled {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{prefix:>12} {spinner} {msg}") {
            bar.set_style(style);
        }
        bar.set_prefix(what.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }
}

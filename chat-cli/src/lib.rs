//! What every binary of the workspace (chatd, chatctl, chat-tui, loadgen) shares, so that they
//! behave alike on the command line. The rules (ARCHITECTURE.md, "Binaries"):
//!
//! - `main` is [`run_main`]: the program's `anyhow` error is printed once, cause by cause,
//!   without repeating a cause its parent already quoted ([`report`]), followed by a hint when
//!   the binary knows one (port in use: the flag that changes it; a directory without
//!   permission: the flag and the permission needed).
//! - `--version` shows the version and the commit ([`version!`], with `chat_cli_build` in the
//!   package's build script).
//! - `--generate KIND` prints the man page or a shell completion script ([`GenerateArgs`]);
//!   `cargo xtask install` installs them next to the binaries.
//! - Clients name their server and check its certificate with the same flags ([`server`]).
//! - Each subcommand's help shows only its own options (no `global` settings).
//! - Durations read the same everywhere ([`duration`]).
//! - Settings read from the environment and a TOML file go through the same clap parsers as
//!   flags ([`layers`]), and a bad value names its flag, variable, or file line and column.

pub mod device;
pub mod duration;
pub mod generate;
pub mod layers;
pub mod position;
pub mod report;
pub mod server;

pub use device::device_name;
pub use generate::{Generate, GenerateArgs};
pub use report::{Hint, run_main, run_main_with_status};
pub use server::ServerArgs;

/// The version string for clap's `version`: the package version and the commit, e.g.
/// `0.1.0 (commit 92ebb8c1a2b3)`. The package's build script must call
/// `chat_cli_build::emit_commit()`.
#[macro_export]
macro_rules! version {
    () => {
        concat!(
            env!("CARGO_PKG_VERSION"),
            " (",
            env!("CHAT_BUILD_COMMIT"),
            ")"
        )
    };
}

//! The subcommands of the `chatd` binary, one file each. `main` parses the configuration and
//! calls one of these.

pub mod hints;
pub mod serve;
pub mod user_add;

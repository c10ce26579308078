//! The subcommands of the `chatd` binary, one file each. `main` parses the configuration and
//! calls one of these.

pub mod db_encrypt;
pub mod db_rekey;
pub mod hints;
pub mod serve;
pub mod user_add;

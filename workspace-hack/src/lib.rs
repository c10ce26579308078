//! Unifies dependency features across the workspace; it has no code. See `Cargo.toml` and
//! `cargo xtask hack`.

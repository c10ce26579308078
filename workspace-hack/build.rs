//! Empty: a build script makes cargo resolve the `[build-dependencies]` (the host side).

fn main() {}

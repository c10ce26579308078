//! Compiles `spec/chat.proto` into Rust with a pure-Rust protobuf compiler (protox), so a fresh
//! machine needs no system `protoc`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let spec = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec");
    let proto = spec.join("chat.proto");
    println!("cargo:rerun-if-changed={}", proto.display());

    let descriptors = protox::compile([&proto], [&spec])?;
    prost_build::Config::new()
        // Every message gets a stable, readable Debug; `bytes` fields stay Vec<u8> (there are none
        // on hot paths yet).
        .compile_fds(descriptors)?;
    Ok(())
}

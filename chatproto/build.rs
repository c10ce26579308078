//! Compiles `spec/chat.proto` into Rust with a pure-Rust protobuf compiler (protox), so a fresh
//! machine needs no system `protoc`.
//!
//! Besides the messages it writes `requests.rs`, the request table (see `build/request_table.rs`),
//! and `chat.v1.fds`, the encoded descriptor set (the `vectors`
//! feature embeds it for protobuf text format), and it annotates every type with a proptest
//! `Arbitrary` derive that only the `arbitrary` feature turns on. Repeated fields get a short
//! length range there, because the default (up to 100 elements at every nesting level) makes
//! generated responses enormous.

use std::path::PathBuf;

#[path = "build/request_table.rs"]
mod request_table;

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};

/// What `#[derive(Arbitrary)]` needs on every generated struct, enum and oneof.
const ARBITRARY_DERIVE: &str =
    r#"#[cfg_attr(feature = "arbitrary", derive(::proptest_derive::Arbitrary))]"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read when the script runs, not baked in when it is compiled: one compiled script serves
    // every checkout that shares a target directory (worktrees), each with its own spec.
    let spec = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../spec");
    let proto = spec.join("chat.proto");
    println!("cargo:rerun-if-changed={}", proto.display());

    let descriptors = protox::compile([&proto], [&spec])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("chat.v1.fds"), descriptors.encode_to_vec())?;

    let chat = descriptors
        .file
        .iter()
        .find(|f| f.package() == "chat.v1")
        .ok_or("chat.proto declares no package chat.v1")?;
    std::fs::write(out_dir.join("requests.rs"), request_table::generate(chat)?)?;

    let mut config = prost_build::Config::new();
    // `prost::Name` impls give every message its protobuf full name (used by the vectors).
    config.enable_type_names();
    config.type_attribute(".", ARBITRARY_DERIVE);
    for file in &descriptors.file {
        let package = file.package();
        for message in &file.message_type {
            for field in &message.field {
                if field.label() != Label::Repeated {
                    continue;
                }
                let element = rust_element_type(package, field.r#type(), field.type_name())?;
                let path = format!(".{package}.{}.{}", message.name(), field.name());
                config.field_attribute(
                    path,
                    format!(
                        r#"#[cfg_attr(feature = "arbitrary", proptest(strategy = "::proptest::collection::vec(::proptest::arbitrary::any::<{element}>(), 0..4)"))]"#
                    ),
                );
            }
        }
    }
    // A message's attachment is rare and large: boxed, it keeps every `Message` (and every event
    // that carries one) small.
    config.boxed(".chat.v1.Message.attachment");
    config.compile_fds(descriptors)?;
    Ok(())
}

/// The Rust type prost generates for one element of a repeated field of a top-level message.
fn rust_element_type(package: &str, ty: Type, type_name: &str) -> Result<String, String> {
    let scalar = match ty {
        Type::Uint64 | Type::Fixed64 => "u64",
        Type::Int64 | Type::Sint64 | Type::Sfixed64 => "i64",
        Type::Uint32 | Type::Fixed32 => "u32",
        // Enum fields are plain i32 in prost: any value, known or not, is valid on the wire.
        Type::Int32 | Type::Sint32 | Type::Sfixed32 | Type::Enum => "i32",
        Type::Bool => "bool",
        Type::String => "::prost::alloc::string::String",
        Type::Bytes => "::prost::alloc::vec::Vec<u8>",
        Type::Float => "f32",
        Type::Double => "f64",
        Type::Message | Type::Group => {
            let prefix = format!(".{package}.");
            return match type_name.strip_prefix(&prefix) {
                Some(name) if !name.contains('.') => Ok(name.to_owned()),
                _ => Err(format!(
                    "repeated field of type {type_name}: only top-level messages of {package} are supported"
                )),
            };
        }
    };
    Ok(scalar.to_owned())
}

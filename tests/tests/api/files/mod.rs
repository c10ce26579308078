//! Files end to end (capability `files`, protocol.md section 13): uploads and downloads over real
//! QUIC with resume, the checks of a finished upload (hash, type, names, image limits), limits
//! and quota, who may read a file, references from messages and avatars, signed HTTPS URLs and
//! the collector; files encrypted at rest.

pub(super) use std::time::{Duration, Instant};

pub(super) use chatd::testing::{now_ms, png_bomb, png_image};
pub(super) use chatproto::error::StreamCode;
pub(super) use chatproto::pb;
pub(super) use chatproto::pb::ErrorCode as E;
pub(super) use tests::files::{UploadConn, content, download, https_get, sha256, share, upload};

pub(super) use crate::support::*;

/// The access token of a user's current session.
pub(super) fn token(user: &User) -> String {
    user.client.tokens().expect("tokens").access_token
}

pub(super) async fn upload_conn(server: &tests::server::TestServer, user: &User) -> UploadConn {
    UploadConn::connect(server.addr(), &server.fingerprint(), &token(user)).await
}

pub(super) fn begin(bytes: &[u8], name: &str, kind: pb::MessageKind) -> pb::BeginUpload {
    pb::BeginUpload {
        size: bytes.len() as u64,
        sha256: sha256(bytes),
        name: name.into(),
        kind: kind as i32,
    }
}

/// Polls `check` every 20 ms until it returns `Some`, failing after [`WAIT`].
pub(super) async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            started.elapsed() < WAIT,
            "{what} did not happen within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every regular file under `dir`.
pub(super) fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk_files(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

mod access;
mod checks;
mod encrypted;
mod transfers;

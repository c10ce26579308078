//! A file far larger than any buffer through a chatd process: uploaded from a path and
//! downloaded to a path with the SDK, while the server's memory is watched from /proc. A server
//! that held a whole file in memory (or a large part of it) fails the ceiling.

use std::io::{Read as _, Write as _};
use std::time::Instant;

use chatproto::client::Client;
use chatproto::pb;
use sha2::{Digest as _, Sha256};
use tests::chatd::{ChatdConfig, ChatdProcess};
use tests::client::{PASSWORD, config_for};
use tests::files::{content, rss_kib};
use tests::server::GENEROUS_LIMITS;

/// The file: 200 MiB.
const SIZE: usize = 200 * 1024 * 1024;
/// How much the server's peak resident memory may grow over its idle size while the file goes
/// up and down: a sixth of the file. Measured: about 3 MiB (debug build, loopback).
const RSS_GROWTH_CEILING_KIB: u64 = 32 * 1024;

/// Writes `SIZE` pseudo-random bytes to `path` a MiB at a time and returns their SHA-256.
fn write_content(path: &std::path::Path) -> Vec<u8> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut hasher = Sha256::new();
    for i in 0..SIZE / (1024 * 1024) {
        let piece = content(1024 * 1024, i as u64 + 1);
        hasher.update(&piece);
        file.write_all(&piece).expect("write");
    }
    file.flush().expect("flush");
    hasher.finalize().to_vec()
}

fn hash_file(path: &std::path::Path) -> Vec<u8> {
    let mut file = std::fs::File::open(path).expect("open");
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = file.read(&mut buf).expect("read");
        if n == 0 {
            return hasher.finalize().to_vec();
        }
        hasher.update(&buf[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mib_file_round_trips_with_bounded_server_memory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut chatd = ChatdProcess::start(
        ChatdConfig::new()
            .data_dir(dir.path().join("data"))
            .args(GENEROUS_LIMITS.iter().copied())
            .args(["--max-file-size=256MiB"]),
    );
    let pid = chatd.process().pid();
    let source = dir.path().join("source.bin");
    let sha = tokio::task::spawn_blocking({
        let source = source.clone();
        move || write_content(&source)
    })
    .await
    .expect("write content");

    let client = Client::connect(config_for(chatd.addr(), chatd.fingerprint()))
        .await
        .expect("connect");
    client
        .register(pb::Register {
            username: "alice".into(),
            email: "alice@example.test".into(),
            password: PASSWORD.into(),
            device_name: String::new(),
        })
        .await
        .expect("register");
    let (idle_kib, _) = rss_kib(pid);

    let started = Instant::now();
    let file = client
        .upload_path(&source, pb::MessageKind::File, |_, _| {})
        .await
        .expect("upload");
    let up = started.elapsed();
    assert_eq!((file.size, file.sha256.clone()), (SIZE as u64, sha.clone()));

    let target = dir.path().join("copy.bin");
    let started = Instant::now();
    client
        .download_to_path(&file.id, &target, |_, _| {})
        .await
        .expect("download");
    let down = started.elapsed();
    assert_eq!(
        tokio::task::spawn_blocking(move || hash_file(&target))
            .await
            .expect("hash"),
        sha
    );

    let (_, peak_kib) = rss_kib(pid);
    let growth = peak_kib.saturating_sub(idle_kib);
    let mib = |d: std::time::Duration| SIZE as f64 / 1048576.0 / d.as_secs_f64();
    eprintln!(
        "200 MiB: upload {up:?} ({:.0} MiB/s), download {down:?} ({:.0} MiB/s); server rss idle \
         {idle_kib} KiB, peak {peak_kib} KiB (+{growth} KiB)",
        mib(up),
        mib(down)
    );
    assert!(
        growth < RSS_GROWTH_CEILING_KIB,
        "the server's peak memory grew by {growth} KiB moving a 200 MiB file (ceiling \
         {RSS_GROWTH_CEILING_KIB} KiB)"
    );
}

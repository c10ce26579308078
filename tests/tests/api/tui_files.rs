//! chat-tui's file transfers end to end: two headless chat-tuis (the real network task and the
//! real update function, without a terminal) against a real chatd over QUIC. One uploads a
//! file by `/upload` and it reaches the chat through the outbox; the other saves it by
//! `/download` next to a file of the same name, and the bytes are compared. Cancelling,
//! a missing path, the server's size limit and the quota come back as sentences.

use std::path::Path;

use chat_tui::model::transfers::Direction;
use chat_tui::model::{Focus, Level};
use tests::files::content;

use crate::support::{WAIT, start, start_with};
use crate::tui::{Tui, key};

impl Tui {
    /// The next notice of `level` that `matches`, once no transfer runs.
    async fn notice(&mut self, level: Level, matches: impl Fn(&str) -> bool) -> String {
        self.until("a notice", |m| {
            m.notice
                .as_ref()
                .filter(|n| n.level == level && matches(&n.text) && m.transfers.is_empty())
                .map(|n| n.text.clone())
        })
        .await
    }

    /// Uploads `path` by `/upload` and waits until the message with it is sent; returns the
    /// largest progress the bar showed.
    async fn upload(&mut self, path: &Path) -> u64 {
        self.type_line(&format!("/upload {}", path.display()));
        let mut shown = 0;
        self.until("the upload", |m| {
            if let Some(t) = m.transfers.latest() {
                shown = shown.max(t.done);
            }
            (m.transfers.is_empty()).then_some(())
        })
        .await;
        let notice = self.model.notice.clone().expect("feedback");
        assert_eq!(notice.level, Level::Ok, "{}", notice.text);
        self.until("the message is sent", |m| {
            m.pending.is_empty().then_some(())
        })
        .await;
        shown
    }

    /// Every file in the download directory.
    fn downloaded(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.downloads)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

#[tokio::test]
async fn a_file_uploaded_by_one_chat_tui_is_saved_by_another_byte_for_byte() {
    let server = start().await;
    let mut alice = Tui::register(&server, "alice").await;
    let mut bob = Tui::register(&server, "bob").await;
    alice.open_private("bob").await;

    let source = tempfile::tempdir().unwrap();
    let report = source.path().join("report.bin");
    let bytes = content(3 * 1024 * 1024 + 17, 1);
    std::fs::write(&report, &bytes).unwrap();
    let shown = alice.upload(&report).await;
    assert_eq!(shown, bytes.len() as u64, "the bar reached the whole size");

    bob.open_private("alice").await;
    let attachment = bob
        .until("the file message", |m| {
            m.view
                .as_ref()?
                .window
                .iter()
                .find_map(|msg| msg.attachment.clone())
        })
        .await;
    assert_eq!(
        (attachment.name.as_str(), attachment.size),
        ("report.bin", bytes.len() as u64)
    );
    assert_eq!(attachment.mime, "application/octet-stream");

    // A file of that name is there already: it is kept, the download takes the next name.
    std::fs::create_dir_all(&bob.downloads).unwrap();
    std::fs::write(bob.downloads.join("report.bin"), b"mine").unwrap();
    bob.type_line("/download");
    let saved = bob.notice(Level::Ok, |t| t.starts_with("Saved ")).await;
    let expected = bob.downloads.join("report (1).bin");
    assert!(saved.ends_with(&expected.display().to_string()), "{saved}");
    assert_eq!(std::fs::read(&expected).unwrap(), bytes);
    assert_eq!(
        std::fs::read(bob.downloads.join("report.bin")).unwrap(),
        b"mine"
    );

    // A bigger file, cancelled while it arrives: nothing is left behind, not even its name.
    let big = source.path().join("big.bin");
    let big_bytes = content(32 * 1024 * 1024, 5);
    std::fs::write(&big, &big_bytes).unwrap();
    alice.upload(&big).await;
    bob.until("the second file", |m| {
        m.view
            .as_ref()?
            .window
            .iter()
            .find(|msg| msg.attachment.as_ref().is_some_and(|a| a.name == "big.bin"))?;
        Some(())
    })
    .await;
    bob.type_line("/download");
    bob.until("the download under way", |m| {
        m.transfers
            .latest()
            .filter(|t| t.direction == Direction::Download && t.done > 0)
            .map(|_| ())
    })
    .await;
    assert!(
        bob.downloaded().contains(&"big.bin".to_string()),
        "{:?}",
        bob.downloaded()
    );
    bob.model.focus = Focus::Messages;
    bob.apply(key("x"));
    assert!(bob.model.transfers.is_empty());
    let deadline = std::time::Instant::now() + WAIT;
    while bob.downloaded() != ["report (1).bin", "report.bin"] {
        assert!(
            std::time::Instant::now() < deadline,
            "left behind: {:?}",
            bob.downloaded()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The next download takes the name the cancelled one held.
    bob.type_line("/download");
    let saved = bob
        .notice(Level::Ok, |t| t.starts_with("Saved big.bin"))
        .await;
    assert!(saved.ends_with("big.bin"), "{saved}");
    assert!(std::fs::read(bob.downloads.join("big.bin")).unwrap() == big_bytes);
}

#[tokio::test]
async fn a_missing_path_the_size_limit_and_the_quota_are_explained() {
    let server = start_with(&["--max-file-size=256KiB", "--upload-quota=384KiB"]).await;
    let mut alice = Tui::register(&server, "alice").await;
    let _bob = Tui::register(&server, "bob").await;
    alice.open_private("bob").await;
    let dir = tempfile::tempdir().unwrap();

    let missing = dir.path().join("nope.txt");
    alice.type_line(&format!("/upload {}", missing.display()));
    let said = alice.notice(Level::Error, |_| true).await;
    assert_eq!(
        said,
        format!(
            "Upload of nope.txt failed: there is no file {}",
            missing.display()
        )
    );

    alice.type_line(&format!("/upload {}", dir.path().display()));
    let said = alice
        .notice(Level::Error, |t| t.contains("directory"))
        .await;
    assert!(said.ends_with("is a directory, not a file"), "{said}");

    let big = dir.path().join("big.bin");
    std::fs::write(&big, content(300 * 1024, 2)).unwrap();
    alice.type_line(&format!("/upload {}", big.display()));
    let said = alice.notice(Level::Error, |t| t.contains("big.bin")).await;
    assert!(
        said.ends_with("is too large: 300.0 KiB, the server takes files up to 256.0 KiB"),
        "{said}"
    );

    let first = dir.path().join("first.bin");
    std::fs::write(&first, content(200 * 1024, 3)).unwrap();
    alice.upload(&first).await;
    let second = dir.path().join("second.bin");
    std::fs::write(&second, content(200 * 1024, 4)).unwrap();
    alice.type_line(&format!("/upload {}", second.display()));
    let said = alice
        .notice(Level::Error, |t| t.contains("second.bin"))
        .await;
    assert!(
        said.starts_with(
            "Upload of second.bin failed: too large for the server: over your upload quota"
        ),
        "{said}"
    );
}

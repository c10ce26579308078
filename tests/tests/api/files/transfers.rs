//! Uploads and downloads: round trips, resuming both ways, hash mismatches, limits, quota,
//! rate and concurrency, and whose upload a stream may write.

use super::*;

#[tokio::test]
async fn an_image_round_trips_with_its_size_and_thumbnails() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let png = png_image(800, 600);
    let mut seen = Vec::new();
    let file = alice
        .client
        .upload_reader(
            std::io::Cursor::new(png.clone()),
            "holiday.png",
            pb::MessageKind::Image,
            |done, total| seen.push((done, total)),
        )
        .await
        .expect("upload");
    assert_eq!(
        (file.name.as_str(), file.mime.as_str(), file.size),
        ("holiday.png", "image/png", png.len() as u64)
    );
    assert_eq!((file.width, file.height), (800, 600));
    assert_eq!(file.sha256, sha256(&png));
    assert_eq!(seen.last(), Some(&(png.len() as u64, png.len() as u64)));
    let sizes: Vec<(u32, u32)> = file
        .thumbnails
        .iter()
        .map(|t| (t.width, t.height))
        .collect();
    assert_eq!(sizes, vec![(160, 120), (640, 480)]);

    assert_eq!(
        download(&alice.client, &file.id, 0)
            .await
            .expect("download"),
        png
    );
    let small = &file.thumbnails[0];
    let thumb = download(&alice.client, &small.file_id, 0)
        .await
        .expect("thumbnail");
    assert_eq!(thumb.len() as u64, small.size);
    let decoded = image::load_from_memory(&thumb).expect("the thumbnail is an image");
    assert_eq!((decoded.width(), decoded.height()), (160, 120));

    // Repeating finish_upload answers the same file; the same content uploaded again is a new
    // file (its own id) stored once.
    let again = upload(&alice.client, &png, "copy.png", pb::MessageKind::Image)
        .await
        .expect("second upload");
    assert_ne!(again.id, file.id);
    let blobs = walk_files(&server.data_dir().join("files/blobs"));
    let key = hex::encode(&file.sha256);
    assert_eq!(
        blobs.iter().filter(|p| p.ends_with(&key)).count(),
        1,
        "{blobs:?}"
    );
}

/// The same content uploaded twice at once by one client: the server takes one stream per
/// upload, and the SDK waits for the other stream instead of failing; both answer the file.
#[tokio::test]
async fn the_same_content_uploaded_twice_at_once_answers_both() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    for round in 0..3u8 {
        let mut data = data.clone();
        data[0] = round;
        let (one, other) = tokio::join!(
            upload(&alice.client, &data, "twice.bin", pb::MessageKind::File),
            upload(&alice.client, &data, "twice.bin", pb::MessageKind::File),
        );
        let (one, other) = (one.expect("first"), other.expect("second"));
        assert_eq!(one.id, other.id, "round {round}");
        let got = download(&alice.client, &one.id, 0).await.expect("download");
        assert!(got == data, "round {round}: the stored bytes differ");
    }
}

#[tokio::test]
async fn an_interrupted_upload_resumes_from_the_servers_offset() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let data = content(3 * 1024 * 1024 + 17, 1);
    let ticket = alice
        .client
        .begin_upload(begin(&data, "big.bin", pb::MessageKind::File))
        .await
        .expect("begin");
    assert_eq!(ticket.offset, 0);

    // The first MiB, then the stream ends early (as a dropped connection would end it).
    let raw = upload_conn(&server, &alice).await;
    let first = 1024 * 1024;
    raw.send(&ticket.upload_id, 0, &data[..first]).await;
    // A second stream from the wrong offset is refused.
    assert_eq!(
        raw.send_refused(&ticket.upload_id, 5, &data[5..10]).await,
        u64::from(StreamCode::UploadRejected.code())
    );
    // Finishing now says how far the server got.
    let incomplete = remote(
        alice
            .client
            .finish_upload(pb::FinishUpload {
                upload_id: ticket.upload_id.clone(),
            })
            .await,
    );
    assert_eq!(incomplete.code, E::FailedPrecondition);
    assert!(incomplete.message.contains("1048576"), "{incomplete:?}");

    // Another stream dies with its connection midway; what arrived stays.
    let dying = upload_conn(&server, &alice).await;
    let mut send = dying.raw.conn.open_uni().await.expect("stream");
    let header = pb::UploadStreamHeader {
        upload_id: ticket.upload_id.clone(),
        offset: first as u64,
    };
    send.write_all(&chatproto::io::encode_frames([&header], 1024).expect("header"))
        .await
        .expect("header");
    send.write_all(&data[first..first + 300_000])
        .await
        .expect("bytes");
    dying.raw.conn.close(0u32.into(), b"gone");
    let resumed_at = eventually("the server to settle the interrupted stream", || async {
        let t = alice
            .client
            .begin_upload(begin(&data, "big.bin", pb::MessageKind::File))
            .await
            .expect("begin again");
        assert_eq!(
            t.upload_id, ticket.upload_id,
            "the same content resumes the same upload"
        );
        // The server may still be writing what arrived; once its stream task ended, begin_upload
        // reports it. Either way the SDK continues from whatever offset it is told.
        (t.offset >= first as u64).then_some(t.offset)
    })
    .await;
    assert!(resumed_at <= (first + 300_000) as u64);

    // The SDK declares the same content, learns the offset and sends only the rest.
    let mut first_progress = None;
    let file = alice
        .client
        .upload_reader(
            std::io::Cursor::new(data.clone()),
            "big.bin",
            pb::MessageKind::File,
            |done, _| {
                first_progress.get_or_insert(done);
            },
        )
        .await
        .expect("resumed upload");
    assert!(first_progress.expect("progress") >= first as u64);
    assert_eq!(file.size, data.len() as u64);
    assert_eq!(
        download(&alice.client, &file.id, 0)
            .await
            .expect("download"),
        data
    );
}

/// A client that asks for a file and takes none of its bytes does not hold the server's side of
/// the stream: 30 s without progress reset it (spec 13.5).
#[tokio::test]
async fn a_download_whose_bytes_are_not_taken_is_reset() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    // More than a stream's receive window (1.25 MB): the server's writes block.
    let data = content(3 * 1024 * 1024, 5);
    let file = upload(&alice.client, &data, "big.bin", pb::MessageKind::File)
        .await
        .expect("upload");
    let conn = upload_conn(&server, &alice).await;
    let request = pb::Request {
        request_id: 7,
        kind: Some(pb::request::Kind::DownloadFile(pb::DownloadFile {
            file_id: file.id.clone(),
            ..Default::default()
        })),
    };
    let frame = chatproto::io::encode_frames([&request], chatproto::frame::MAX_FRAME_BYTES)
        .expect("encode");
    let (mut send, mut recv) = conn.raw.conn.open_bi().await.expect("stream");
    send.write_all(&frame).await.expect("request");
    send.finish().expect("finish");
    // The 30 s, and time for the reset to arrive on a loaded machine.
    tokio::time::sleep(Duration::from_secs(35)).await;
    let read = recv.read_to_end(usize::MAX).await;
    let code = match read {
        Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(code))) => code.into_inner(),
        other => panic!("the stream was not reset: {:?}", other.map(|b| b.len())),
    };
    assert_eq!(code, u64::from(StreamCode::RequestTimeout.code()));
    // The connection serves on.
    download(&alice.client, &file.id, data.len() as u64 - 10)
        .await
        .expect("a later download");
}

#[tokio::test]
async fn downloads_start_anywhere_and_resume_into_a_path() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let data = content(2 * 1024 * 1024 + 3, 2);
    let file = upload(&alice.client, &data, "d.bin", pb::MessageKind::File)
        .await
        .expect("upload");
    for offset in [1u64, 262_144, 2 * 1024 * 1024, data.len() as u64] {
        let part = download(&alice.client, &file.id, offset)
            .await
            .expect("download");
        assert_eq!(part, &data[offset as usize..], "from {offset}");
    }
    let past = remote(download(&alice.client, &file.id, data.len() as u64 + 1).await);
    assert_eq!(
        (past.code, past.field.as_str()),
        (E::InvalidArgument, "download_file.offset")
    );

    // A download to a path that was interrupted earlier continues from its `.part`.
    let dir = tempfile::tempdir().expect("dir");
    let target = dir.path().join("d.bin");
    std::fs::write(dir.path().join("d.bin.part"), &data[..1_000_000]).expect("part");
    let mut first_progress = None;
    let info = alice
        .client
        .download_to_path(&file.id, &target, |done, _| {
            first_progress.get_or_insert(done);
        })
        .await
        .expect("resume into path");
    assert_eq!(info.id, file.id);
    assert!(first_progress.expect("progress") > 1_000_000);
    assert_eq!(std::fs::read(&target).expect("file"), data);
    assert!(!dir.path().join("d.bin.part").exists());

    // A stale part longer than the file (another file's) is started over.
    let other = dir.path().join("other.bin");
    std::fs::write(
        dir.path().join("other.bin.part"),
        content(3 * 1024 * 1024, 99),
    )
    .expect("part");
    alice
        .client
        .download_to_path(&file.id, &other, |_, _| {})
        .await
        .expect("start over");
    assert_eq!(std::fs::read(&other).expect("file"), data);
}

#[tokio::test]
async fn a_hash_mismatch_discards_the_upload() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let data = content(100_000, 3);
    let mut declared = begin(&data, "x.bin", pb::MessageKind::File);
    declared.sha256 = sha256(b"something else");
    let ticket = alice
        .client
        .begin_upload(declared.clone())
        .await
        .expect("begin");
    let raw = upload_conn(&server, &alice).await;
    raw.send(&ticket.upload_id, 0, &data).await;
    let finish = pb::FinishUpload {
        upload_id: ticket.upload_id.clone(),
    };
    for _ in 0..2 {
        let err = remote(alice.client.finish_upload(finish.clone()).await);
        assert_eq!(
            (err.code, err.field.as_str()),
            (E::InvalidArgument, "finish_upload.upload_id")
        );
        assert!(err.message.contains("sha-256"), "{err:?}");
    }
    // Its bytes are gone, and the same declaration starts a new upload from 0.
    assert!(walk_files(&server.data_dir().join("files/uploads")).is_empty());
    let again = alice
        .client
        .begin_upload(declared)
        .await
        .expect("begin again");
    assert_ne!(again.upload_id, ticket.upload_id);
    assert_eq!(again.offset, 0);
}

#[tokio::test]
async fn size_limits_quota_and_overlong_streams() {
    let server = start_with(&["--max-file-size=512KiB", "--upload-quota=1MiB"]).await;
    let alice = register(&server, "alice").await;
    let limits = alice
        .client
        .welcome()
        .expect("welcome")
        .limits
        .expect("limits");
    assert_eq!(
        (
            limits.max_file_bytes,
            limits.upload_quota_bytes,
            limits.max_concurrent_uploads
        ),
        (512 * 1024, 1024 * 1024, 4)
    );

    // Over the size limit: refused from the declaration, before any byte.
    let big = content(512 * 1024 + 1, 8);
    let err = remote(
        alice
            .client
            .begin_upload(begin(&big, "big", pb::MessageKind::File))
            .await,
    );
    assert_eq!(
        (err.code, err.field.as_str()),
        (E::TooLarge, "begin_upload.size")
    );
    for (bad, field) in [
        (
            pb::BeginUpload {
                size: 0,
                ..begin(b"x", "x", pb::MessageKind::File)
            },
            "begin_upload.size",
        ),
        (
            pb::BeginUpload {
                sha256: vec![1; 31],
                ..begin(b"x", "x", pb::MessageKind::File)
            },
            "begin_upload.sha256",
        ),
        (begin(b"x", "x", pb::MessageKind::Text), "begin_upload.kind"),
    ] {
        let err = remote(alice.client.begin_upload(bad).await);
        assert_eq!((err.code, err.field.as_str()), (E::InvalidArgument, field));
    }

    // The quota counts files and unfinished uploads.
    let a = content(400 * 1024, 9);
    let b = content(400 * 1024, 10);
    upload(&alice.client, &a, "a", pb::MessageKind::File)
        .await
        .expect("a");
    alice
        .client
        .begin_upload(begin(&b, "b", pb::MessageKind::File))
        .await
        .expect("b begun");
    let c = content(400 * 1024, 11);
    let err = remote(upload(&alice.client, &c, "c", pb::MessageKind::File).await);
    assert_eq!(
        (err.code, err.field.as_str()),
        (E::TooLarge, "begin_upload.size")
    );
    assert!(err.message.contains("quota"), "{err:?}");

    // A stream with more bytes than declared is stopped and its upload discarded.
    let bob = register(&server, "bob").await;
    let ten = b"0123456789";
    let ticket = bob
        .client
        .begin_upload(begin(ten, "ten", pb::MessageKind::File))
        .await
        .expect("begin");
    let raw = upload_conn(&server, &bob).await;
    let stopped = raw
        .send_refused(&ticket.upload_id, 0, &content(200_000, 12))
        .await;
    assert_eq!(stopped, u64::from(StreamCode::UploadTooLong.code()));
    let err = remote(
        bob.client
            .finish_upload(pb::FinishUpload {
                upload_id: ticket.upload_id,
            })
            .await,
    );
    assert!(err.message.contains("more bytes than declared"), "{err:?}");
}

#[tokio::test]
async fn uploads_are_rate_limited_and_bounded_per_connection() {
    let server = start_with(&["--limit-upload=1/m burst 2"]).await;
    let alice = register(&server, "alice").await;
    for seed in 0..2 {
        alice
            .client
            .begin_upload(begin(&content(10, seed), "x", pb::MessageKind::File))
            .await
            .expect("within the burst");
    }
    let limited = remote(
        alice
            .client
            .begin_upload(begin(&content(10, 9), "x", pb::MessageKind::File))
            .await,
    );
    assert_eq!(limited.code, E::RateLimited);
    assert!(limited.retry_after.is_some());

    // Four upload streams at once per connection: a fifth waits for credit until one ends.
    let conn = upload_conn(&server, &alice).await;
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(conn.raw.conn.open_uni().await.expect("within the credit"));
    }
    let fifth = tokio::time::timeout(Duration::from_millis(300), conn.raw.conn.open_uni()).await;
    assert!(
        fifth.is_err(),
        "a fifth concurrent upload stream was granted"
    );
    let mut first = open.remove(0);
    first.finish().expect("finish");
    // The server stops the headerless stream once it ends; its credit comes back.
    tokio::time::timeout(WAIT, conn.raw.conn.open_uni())
        .await
        .expect("credit returned")
        .expect("fifth stream");
}

#[tokio::test]
async fn files_need_the_capability_and_an_upload_of_ones_own() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let mut config = config(&server);
    config.capabilities.retain(|c| c != "files");
    let old = register_with(config, "old").await;
    let welcome = old.client.welcome().expect("welcome");
    assert!(!welcome.capabilities.iter().any(|c| c == "files"));
    let limits = welcome.limits.expect("limits");
    assert_eq!(
        (
            limits.max_file_bytes,
            limits.max_concurrent_uploads,
            limits.upload_quota_bytes
        ),
        (0, 0, 0),
        "a client without files sees no file limits"
    );
    assert_code(
        old.client
            .begin_upload(begin(b"x", "x", pb::MessageKind::File))
            .await,
        E::FailedPrecondition,
    );
    assert!(
        old.client
            .upload_reader(
                std::io::Cursor::new(vec![1u8]),
                "x",
                pb::MessageKind::File,
                |_, _| {}
            )
            .await
            .is_err()
    );
    // Without `files`, an upload stream is stopped with FRAME_ERROR.
    let raw = tests::raw::RawConn::connect(server.addr(), &server.fingerprint()).await;
    raw.hello().await;
    let send = raw.conn.open_uni().await.expect("stream");
    assert_eq!(
        tests::files::stop_code(send, b"\x00").await,
        u64::from(StreamCode::FrameError.code())
    );
    // Bob cannot write to, finish or resume alice's upload.
    let data = content(1000, 13);
    let ticket = alice
        .client
        .begin_upload(begin(&data, "a", pb::MessageKind::File))
        .await
        .expect("begin");
    let bobs_conn = upload_conn(&server, &bob).await;
    assert_eq!(
        bobs_conn.send_refused(&ticket.upload_id, 0, &data).await,
        u64::from(StreamCode::UploadRejected.code())
    );
    assert_code(
        bob.client
            .finish_upload(pb::FinishUpload {
                upload_id: ticket.upload_id.clone(),
            })
            .await,
        E::NotFound,
    );
    let bobs = bob
        .client
        .begin_upload(begin(&data, "a", pb::MessageKind::File))
        .await
        .expect("bob's own");
    assert_ne!(bobs.upload_id, ticket.upload_id);
}

/// `finish_upload` waits for an upload stream of the same upload for at most 10 s (spec
/// 13.4): one that keeps sending a byte now and then does not hold the finish, nor the
/// connection that asked, for longer.
#[tokio::test]
async fn a_finish_does_not_wait_for_a_trickling_upload_stream() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let data = content(4096, 9);
    let ticket = alice
        .client
        .begin_upload(begin(&data, "slow.bin", pb::MessageKind::File))
        .await
        .expect("begin");
    let raw = upload_conn(&server, &alice).await;
    let mut stream = raw.open(&ticket.upload_id, 0).await;
    stream.write_all(&data[..1024]).await.expect("bytes");
    let trickle = async {
        for byte in &data[1024..1032] {
            tokio::time::sleep(Duration::from_secs(2)).await;
            stream.write_all(&[*byte]).await.expect("a byte");
        }
    };
    let finish = async {
        // Once the stream's header was read and its bytes are being written.
        tokio::time::sleep(Duration::from_secs(1)).await;
        timed_finish(&alice, &ticket.upload_id).await
    };
    let (_, (err, waited)) = tokio::join!(trickle, finish);
    assert_eq!(err.code, E::FailedPrecondition, "{err:?}");
    assert!(err.message.contains("still sending"), "{err:?}");
    assert!(waited >= Duration::from_secs(9), "waited {waited:?}");
}

/// Asks to finish `upload_id`, which must be refused within 30 s: the refusal, and how long
/// it took.
async fn timed_finish(user: &User, upload_id: &str) -> (chatproto::client::RemoteError, Duration) {
    let started = std::time::Instant::now();
    let finish = user.client.finish_upload(pb::FinishUpload {
        upload_id: upload_id.into(),
    });
    let answer = tokio::time::timeout(Duration::from_secs(30), finish)
        .await
        .expect("answered");
    (remote(answer), started.elapsed())
}

/// The waits of `finish_upload` for headers and for its upload's streams end at one deadline,
/// 10 s after it began: a header that comes 6 s in, of a stream that then trickles, holds it
/// for those 10 s, not 6 s and 10 s more.
#[tokio::test]
async fn a_finish_waits_for_headers_and_streams_under_one_deadline() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let data = content(4096, 13);
    let ticket = alice
        .client
        .begin_upload(begin(&data, "late.bin", pb::MessageKind::File))
        .await
        .expect("begin");
    let raw = upload_conn(&server, &alice).await;
    raw.send(&ticket.upload_id, 0, &data[..1024]).await;
    let header = tests::files::upload_header(&ticket.upload_id, 1024);
    let mut stream = raw.raw.conn.open_uni().await.expect("open");
    stream.write_all(&header[..2]).await.expect("half a header");
    // Time for the server to note it: it is on another connection than the finish.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let trickle = async {
        tokio::time::sleep(Duration::from_secs(6)).await;
        stream.write_all(&header[2..]).await.expect("the rest");
        for byte in &data[1024..1040] {
            stream.write_all(&[*byte]).await.expect("a byte");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    let (_, (err, waited)) = tokio::join!(trickle, timed_finish(&alice, &ticket.upload_id));
    assert_eq!(err.code, E::FailedPrecondition, "{err:?}");
    assert!(err.message.contains("still sending"), "{err:?}");
    assert!(
        (Duration::from_secs(8)..Duration::from_secs(14)).contains(&waited),
        "{waited:?}"
    );
}

/// The wait of `finish_upload` for upload streams is bounded: streams of the user whose headers
/// never come (three, 3 s apart, each waited for as long as a header may take) hold it for
/// 10 s, and then the finish answers what it finds (bytes missing), not that a stream is
/// still sending.
#[tokio::test]
async fn a_finish_waits_for_missing_headers_no_longer_than_its_bound() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let data = content(2048, 11);
    let ticket = alice
        .client
        .begin_upload(begin(&data, "half.bin", pb::MessageKind::File))
        .await
        .expect("begin");
    let raw = upload_conn(&server, &alice).await;
    raw.send(&ticket.upload_id, 0, &data[..1024]).await;
    let half_header = || async {
        let mut stalled = raw.raw.conn.open_uni().await.expect("open");
        stalled.write_all(&[40, 10]).await.expect("half a header");
        stalled
    };
    let mut open = vec![half_header().await];
    // Time for the server to note it: it is on another connection than the finish.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = std::time::Instant::now();
    let finish = alice.client.finish_upload(pb::FinishUpload {
        upload_id: ticket.upload_id.clone(),
    });
    tokio::pin!(finish);
    // Three in all (the connection's upload stream credit is four), the last one waited for
    // until 16 s from the first.
    let answer = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            tokio::select! {
                answer = &mut finish => break answer,
                () = tokio::time::sleep(Duration::from_secs(3)), if open.len() < 3 => {
                    open.push(half_header().await);
                }
            }
        }
    })
    .await
    .expect("answered");
    let err = remote(answer);
    assert_eq!(err.code, E::FailedPrecondition, "{err:?}");
    assert!(err.message.contains("1024 of 2048"), "{err:?}");
    let waited = started.elapsed();
    assert!(
        (Duration::from_secs(5)..Duration::from_secs(16)).contains(&waited),
        "{waited:?}"
    );
}

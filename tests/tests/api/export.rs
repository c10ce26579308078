//! Exports of a chat's history (`admin_export_history`, spec 9.6): the whole history oldest
//! first, as stored (tombstones; nothing hidden or replaced for the admin), in pages bounded by
//! count and by frame size with `more`, recorded in the audit log; admins only.

use chatproto::pb;
use chatproto::pb::ErrorCode as E;

use crate::support::{User, assert_code, group, register, register_admin, start};

/// Every page of `chat`'s export, `limit` at a time, as answered.
async fn pages(admin: &User, chat: u64, limit: u32) -> Vec<pb::HistoryExport> {
    let mut pages = Vec::new();
    let mut after_seq = 0;
    loop {
        let page = admin
            .client
            .admin_export_history(pb::AdminExportHistory {
                chat_id: chat,
                after_seq,
                limit,
            })
            .await
            .expect("export page");
        let more = page.more;
        after_seq = page.messages.last().map_or(after_seq, |m| m.seq);
        pages.push(page);
        if !more {
            return pages;
        }
    }
}

#[tokio::test]
async fn an_export_holds_every_message_oldest_first_as_stored() {
    let server = start().await;
    let root = register_admin(&server, "root").await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let team = group(&alice, pb::ChatKind::Group, "team", &[&bob]).await;
    // More messages than one page of the default size (50) and of the largest (100).
    let mut sent = Vec::new();
    for i in 0..130 {
        let from = if i % 3 == 0 { &bob } else { &alice };
        sent.push(from.send(team.id, &format!("message {i}")).await);
    }
    let reply = alice
        .client
        .send_message(pb::SendMessage {
            reply_to_seq: sent[0].seq,
            client_msg_id: "reply-1".into(),
            ..crate::support::text(team.id, "a reply")
        })
        .await
        .expect("reply");
    sent.push(reply.clone());
    alice
        .client
        .edit_message(pb::EditMessage {
            chat_id: team.id,
            seq: sent[1].seq,
            text: "message 1, edited".into(),
        })
        .await
        .expect("edit");
    bob.client
        .react(pb::React {
            chat_id: team.id,
            seq: sent[2].seq,
            emoji: "\u{1f44d}".into(),
            remove: false,
        })
        .await
        .expect("react");
    // Deleted for everyone: a tombstone. Hidden by bob for himself, and from a user the admin
    // blocked: exported all the same, in full.
    for (who, seq, for_everyone) in [(&bob, sent[3].seq, true), (&bob, sent[4].seq, false)] {
        who.client
            .delete_message(pb::DeleteMessage {
                chat_id: team.id,
                seq,
                for_everyone,
            })
            .await
            .expect("delete");
    }
    root.client
        .block_user(pb::BlockUser { user_id: alice.id })
        .await
        .expect("block");

    for limit in [0, 100, 7] {
        let pages = pages(&root, team.id, limit).await;
        let page_size = if limit == 0 { 50 } else { limit as usize };
        assert!(pages.len() > 1, "limit {limit}: one page held the chat");
        for page in &pages[..pages.len() - 1] {
            assert!(page.more);
            assert_eq!(page.messages.len(), page_size, "limit {limit}");
        }
        let exported: Vec<&pb::Message> = pages.iter().flat_map(|p| &p.messages).collect();
        let seqs: Vec<u64> = exported.iter().map(|m| m.seq).collect();
        let expected: Vec<u64> = sent.iter().map(|m| m.seq).collect();
        assert_eq!(
            seqs, expected,
            "limit {limit}: every message once, oldest first"
        );
        for (i, m) in exported.iter().enumerate() {
            assert_eq!((m.chat_id, m.sender_id), (team.id, sent[i].sender_id));
            assert!(m.client_msg_id.is_empty(), "nobody's client_msg_id");
            assert!(!m.from_blocked_user, "no placeholder for the admin");
            let text = match i {
                1 => "message 1, edited".to_owned(),
                3 => String::new(),
                130 => "a reply".to_owned(),
                i => format!("message {i}"),
            };
            assert_eq!(m.text, text, "seq {}", m.seq);
            assert_eq!(m.edited, i == 1);
            assert_eq!(m.deleted, i == 3);
            assert_eq!(m.reactions.len(), usize::from(i == 2));
            assert_eq!(m.reply_to_seq, if i == 130 { sent[0].seq } else { 0 });
        }
    }
    // An export from the middle goes on from there.
    let rest = root
        .client
        .admin_export_history(pb::AdminExportHistory {
            chat_id: team.id,
            after_seq: sent[125].seq,
            limit: 0,
        })
        .await
        .expect("export the end");
    assert!(!rest.more);
    assert_eq!(rest.messages.len(), 5);
}

#[tokio::test]
async fn an_export_of_the_largest_messages_answers_pages_cut_by_size() {
    let server = start().await;
    let root = register_admin(&server, "root").await;
    let alice = register(&server, "alice").await;
    let team = group(&alice, pb::ChatKind::Group, "big", &[]).await;
    // 100 texts of 4096 three-byte characters: 1.2 MB, far more than one 256 KiB answer holds
    // (the client reads answers within that frame limit, so each one arrived whole).
    let big: String = std::iter::repeat_n('\u{20ac}', 4096).collect();
    let mut seqs = Vec::new();
    for _ in 0..100 {
        seqs.push(alice.send(team.id, &big).await.seq);
    }
    let pages = pages(&root, team.id, 100).await;
    let sizes: Vec<usize> = pages.iter().map(|p| p.messages.len()).collect();
    assert!(
        sizes.len() > 4 && sizes.iter().all(|n| (1..100).contains(n)),
        "every answer holds part of the chat: {sizes:?}"
    );
    let exported: Vec<u64> = pages
        .iter()
        .flat_map(|p| &p.messages)
        .map(|m| m.seq)
        .collect();
    assert_eq!(exported, seqs);
}

#[tokio::test]
async fn exports_are_for_admins_of_live_chats_and_are_audited() {
    let server = start().await;
    let root = register_admin(&server, "root").await;
    let alice = register(&server, "alice").await;
    let team = group(&alice, pb::ChatKind::Group, "team", &[]).await;
    alice.send(team.id, "hello").await;
    // Not even a member may export.
    assert_code(
        alice
            .client
            .admin_export_history(pb::AdminExportHistory {
                chat_id: team.id,
                ..Default::default()
            })
            .await,
        E::PermissionDenied,
    );
    let export = |chat_id| {
        root.client.admin_export_history(pb::AdminExportHistory {
            chat_id,
            ..Default::default()
        })
    };
    assert_eq!(export(team.id).await.expect("export").messages.len(), 1);
    assert_code(export(999_999).await, E::NotFound);
    alice
        .client
        .delete_chat(pb::DeleteChat { chat_id: team.id })
        .await
        .expect("delete chat");
    assert_code(export(team.id).await, E::NotFound);

    let subject = format!("chat:{}", team.id);
    let log = root
        .client
        .admin_list_audit(pb::AdminListAudit {
            action: "admin_export_history".into(),
            ..Default::default()
        })
        .await
        .expect("audit");
    let recorded: Vec<(u64, &str, &str, i32)> = log
        .entries
        .iter()
        .map(|e| (e.actor_id, e.subject.as_str(), e.detail.as_str(), e.outcome))
        .collect();
    let (ok, not_found, denied) = (
        E::Unspecified as i32,
        E::NotFound as i32,
        E::PermissionDenied as i32,
    );
    assert_eq!(
        recorded,
        [
            (root.id, subject.as_str(), "after_seq=0", not_found),
            (root.id, "chat:999999", "after_seq=0", not_found),
            (root.id, subject.as_str(), "after_seq=0", ok),
            (alice.id, subject.as_str(), "after_seq=0", denied),
        ],
        "newest first, the refusal included"
    );
}

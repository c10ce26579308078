use std::collections::HashMap;

use chatproto::pb;

use super::*;

fn send() -> NewMessage {
    NewMessage {
        chat_id: 42,
        sender_id: 7,
        client_msg_id: "c-1".into(),
        kind: pb::MessageKind::Image,
        text: "caption".into(),
        file_id: "f-1".into(),
        attachment: Some(Box::new(pb::FileInfo {
            id: "f-1".into(),
            size: 1234,
            ..Default::default()
        })),
        reply_to_seq: 3,
        forwarded_from: Some(pb::ForwardedFrom {
            chat_id: 9,
            seq: 4,
            sender_id: 5,
            sent_at_ms: 6,
        }),
        mention_ids: vec![8, 9],
        now_ms: 1_700_000_000_000,
        members_seq: None,
    }
}

#[test]
fn every_node_computes_the_same_owner_and_chats_spread_over_the_nodes() {
    let nodes = ["node-a", "node-b", "node-c"];
    let mut owned: HashMap<&str, usize> = HashMap::new();
    for chat in 1..=3_000_u64 {
        let first = owner(chat, nodes).expect("an owner");
        let mut reversed = nodes;
        reversed.reverse();
        assert_eq!(owner(chat, reversed), Some(first), "chat {chat}");
        *owned.entry(first).or_default() += 1;
    }
    for node in nodes {
        let n = owned.get(node).copied().unwrap_or(0);
        assert!((800..=1_200).contains(&n), "{node} owns {n} of 3000 chats");
    }
    assert_eq!(owner(1, std::iter::empty::<&str>()), None);
}

#[test]
fn a_node_leaving_moves_only_the_chats_it_owned() {
    let all = ["node-a", "node-b", "node-c"];
    let left = ["node-a", "node-b"];
    for chat in 1..=3_000_u64 {
        let before = owner(chat, all).expect("an owner");
        let after = owner(chat, left).expect("an owner");
        if before != "node-c" {
            assert_eq!(before, after, "chat {chat} moved though its owner stayed");
        }
    }
}

#[test]
fn a_forwarded_send_arrives_as_it_was_sent() {
    let new = send();
    let wire = request(11, new.clone());
    assert_eq!(wire.id, 11);
    assert_eq!(new_message(wire).as_ref(), Some(&new));
}

#[test]
fn a_send_of_a_kind_this_node_does_not_know_is_not_appended() {
    let mut wire = request(1, send());
    wire.kind = 999;
    assert_eq!(new_message(wire), None);
}

#[test]
fn answers_carry_the_message_and_the_failures_the_caller_maps() {
    let message = pb::Message {
        chat_id: 42,
        seq: 5,
        text: "hi".into(),
        ..Default::default()
    };
    let event = pb::ChatEvent {
        chat_id: 42,
        seq: 5,
        ..Default::default()
    };
    let sent = SendOutcome {
        message: message.clone(),
        event: Some(event),
    };
    let duplicate = SendOutcome {
        message,
        event: None,
    };
    for sent in [
        Ok(sent),
        Ok(duplicate),
        Err(StoreError::NotFound("chat")),
        Err(StoreError::NotFound("user")),
        Err(StoreError::Unavailable("store timed out".into())),
        Err(StoreError::Busy("lost the seq".into())),
    ] {
        assert_eq!(outcome(reply(3, sent.clone())), Some(sent));
    }
}

#[test]
fn other_failures_and_unreadable_answers_make_the_node_append_itself() {
    for error in [
        StoreError::Conflict(ConflictKind::MissingReference),
        StoreError::Internal("corrupt".into()),
        StoreError::NotFound("message"),
    ] {
        let answer = reply(3, Err(error));
        assert_eq!(answer.failure, AppendFailure::Other as i32);
        assert_eq!(outcome(answer), None);
    }
    let newer = AppendReply {
        id: 3,
        failure: 77,
        ..Default::default()
    };
    assert_eq!(outcome(newer), None);
    let empty = AppendReply {
        id: 3,
        failure: AppendFailure::None as i32,
        ..Default::default()
    };
    assert_eq!(outcome(empty), None);
    // A seq no chat has is an answer this node cannot trust either.
    for seq in [0, u64::MAX] {
        let message = pb::Message {
            chat_id: 42,
            seq,
            ..Default::default()
        };
        let impossible = reply(
            3,
            Ok(SendOutcome {
                message,
                event: None,
            }),
        );
        assert_eq!(outcome(impossible), None, "seq {seq}");
    }
}

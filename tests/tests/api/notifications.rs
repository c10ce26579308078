//! The notification center (spec section 15): notifications recorded where mentions, replies,
//! private messages to offline users and additions to chats happen, sent live and listed;
//! muted chats and preferences; the unread count in `sync`; marking read and clearing seen by
//! the user's other devices; paging; a missed call.

use chatproto::client::ClientEvent;
use chatproto::pb;
use chatproto::pb::NotificationKind as K;

use crate::support::{User, device, forward, group, pair, register, start, start_with, text};

/// The next `notification` event of `user`.
async fn next_notification(user: &User) -> pb::Notification {
    user.wait_for(|e| match e {
        ClientEvent::Notification(n) => Some(n),
        _ => None,
    })
    .await
}

/// The next `notifications_updated` event of `user`.
async fn next_update(user: &User) -> pb::NotificationsUpdated {
    user.wait_for(|e| match e {
        ClientEvent::NotificationsUpdated(u) => Some(u),
        _ => None,
    })
    .await
}

/// The first page of `user`'s notifications (up to 100).
async fn list(user: &User, unread_only: bool) -> pb::NotificationList {
    user.client
        .list_notifications(pb::ListNotifications {
            limit: 100,
            cursor: String::new(),
            unread_only,
        })
        .await
        .expect("list notifications")
}

fn kinds(list: &pb::NotificationList) -> Vec<K> {
    list.notifications.iter().map(|n| n.kind()).collect()
}

async fn mute(user: &User, chat_id: u64) {
    user.client
        .set_chat_state(pb::SetChatState {
            chat_id,
            muted_until_ms: Some(i64::MAX),
            ..Default::default()
        })
        .await
        .expect("mute");
}

#[tokio::test]
async fn a_mention_is_notified_live_and_listed() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let carol = register(&server, "carol").await;
    let chat = group(&alice, pb::ChatKind::Group, "team", &[&bob, &carol]).await;
    // Being added is a notification of its own.
    let added = next_notification(&bob).await;
    assert_eq!(
        (added.kind(), added.chat_id, added.actor_id),
        (K::AddedToChat, chat.id, alice.id)
    );

    let sent = alice.send(chat.id, "@bob can you look at this?").await;
    let live = next_notification(&bob).await;
    assert_eq!(live.kind(), K::Mention);
    assert_eq!(
        (live.chat_id, live.message_seq, live.actor_id),
        (chat.id, sent.seq, alice.id)
    );
    assert_eq!(live.preview, "@bob can you look at this?");
    assert!(!live.read && !live.silent);
    let listed = list(&bob, false).await;
    assert_eq!(listed.notifications.first(), Some(&live));
    assert_eq!(kinds(&listed), vec![K::Mention, K::AddedToChat]);
    assert_eq!(listed.unread_count, 2);

    // A reply to bob's message notifies bob; the author of a message is never notified.
    let mine = bob.send(chat.id, "done").await;
    let reply = alice
        .client
        .send_message(pb::SendMessage {
            reply_to_seq: mine.seq,
            ..text(chat.id, "thanks @alice")
        })
        .await
        .expect("reply");
    let live = next_notification(&bob).await;
    assert_eq!((live.kind(), live.message_seq), (K::Reply, reply.seq));
    // Carol was neither mentioned nor replied to: only her addition is listed.
    let added = next_notification(&carol).await;
    assert_eq!(added.kind(), K::AddedToChat);
    assert_eq!(kinds(&list(&carol, false).await), vec![K::AddedToChat]);
    assert_eq!(kinds(&list(&alice, false).await), Vec::<K>::new());
}

#[tokio::test]
async fn a_forward_notifies_nobody_its_text_names() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let dave = register(&server, "dave").await;
    let first = group(&alice, pb::ChatKind::Group, "first", &[&bob]).await;
    let original = alice.send(first.id, "@dave should see this").await;
    assert_eq!(original.mention_ids, vec![dave.id]);

    let second = group(&bob, pb::ChatKind::Group, "second", &[&dave]).await;
    assert_eq!(next_notification(&dave).await.kind(), K::AddedToChat);
    let forwarded = bob
        .client
        .send_message(forward(second.id, &original))
        .await
        .expect("forward");
    // The copy keeps what its text names, but the forwarder called on nobody.
    assert_eq!(forwarded.mention_ids, vec![dave.id]);
    let mention = bob.send(second.id, "@dave this one is from me").await;
    let live = next_notification(&dave).await;
    assert_eq!((live.kind(), live.message_seq), (K::Mention, mention.seq));
    assert_eq!(
        kinds(&list(&dave, false).await),
        vec![K::Mention, K::AddedToChat]
    );
}

#[tokio::test]
async fn muted_chats_notify_only_mentions_and_only_when_the_preference_says_so() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let chat = group(&alice, pb::ChatKind::Group, "team", &[&bob]).await;
    next_notification(&bob).await;
    mute(&bob, chat.id).await;

    // Muted, preference off: a mention makes nothing. The marker message after it proves the
    // mention was handled (notifications of one sender are recorded in send order).
    alice.send(chat.id, "@bob muted mention").await;
    let marker = alice.client.create_private_chat(bob.id).await.expect("pm");
    // An online recipient gets no private-message notification; a mention in the private chat
    // (not muted) is the marker.
    alice.send(marker.id, "@bob marker one").await;
    let n = next_notification(&bob).await;
    assert_eq!((n.kind(), n.chat_id), (K::Mention, marker.id));

    bob.client
        .set_notification_prefs(pb::SetNotificationPrefs {
            prefs: Some(pb::NotificationPrefs {
                mentions_in_muted_chats: true,
                ..Default::default()
            }),
        })
        .await
        .expect("prefs");
    alice.send(chat.id, "no mention, still muted").await;
    alice.send(chat.id, "@bob mention in a muted chat").await;
    let n = next_notification(&bob).await;
    assert_eq!((n.kind(), n.chat_id), (K::Mention, chat.id));
    assert_eq!(n.preview, "@bob mention in a muted chat");

    // Mentions only: a reply in that chat makes nothing, a mention does.
    let chat2 = group(&alice, pb::ChatKind::Group, "other", &[&bob]).await;
    next_notification(&bob).await;
    bob.client
        .set_chat_state(pb::SetChatState {
            chat_id: chat2.id,
            mentions_only: Some(true),
            ..Default::default()
        })
        .await
        .expect("mentions only");
    let mine = bob.send(chat2.id, "mine").await;
    alice
        .client
        .send_message(pb::SendMessage {
            reply_to_seq: mine.seq,
            ..text(chat2.id, "a reply")
        })
        .await
        .expect("reply");
    alice.send(chat2.id, "@bob a mention").await;
    let n = next_notification(&bob).await;
    assert_eq!((n.kind(), n.chat_id), (K::Mention, chat2.id));
    assert_eq!(
        kinds(&list(&bob, false).await),
        vec![
            K::Mention,
            K::AddedToChat,
            K::Mention,
            K::Mention,
            K::AddedToChat
        ]
    );

    // A blocked user's mention makes nothing; disabled preferences make nothing at all.
    bob.client
        .block_user(pb::BlockUser { user_id: alice.id })
        .await
        .expect("block");
    alice.send(chat2.id, "@bob blocked").await;
    bob.client
        .unblock_user(pb::UnblockUser { user_id: alice.id })
        .await
        .expect("unblock");
    alice.send(chat2.id, "@bob marker two").await;
    let n = next_notification(&bob).await;
    assert_eq!(n.preview, "@bob marker two");
    assert_eq!(list(&bob, false).await.notifications.len(), 6);
}

#[tokio::test]
async fn an_offline_recipient_finds_a_private_message_on_reconnect() {
    let server = start().await;
    let (alice, bob, chat) = pair(&server).await;
    // Bob online: no notification for a plain private message.
    alice.send(chat, "while you are here").await;
    bob.next_message(chat).await;
    bob.client.close().await;
    // Alice learns bob is offline once the server no longer counts his connection.
    alice
        .wait_for(|e| match e {
            ClientEvent::Presence(p)
                if p.user_id == bob.id && p.status() == pb::UserStatus::Offline =>
            {
                Some(())
            }
            _ => None,
        })
        .await;
    let sent = alice.send(chat, "are you there?").await;

    let bob = device(&server, &bob).await;
    let synced = bob.client.sync(pb::Sync::default()).await.expect("sync");
    assert_eq!(synced.unread_notifications, 1);
    let listed = list(&bob, true).await;
    assert_eq!(kinds(&listed), vec![K::PrivateMessage]);
    let n = &listed.notifications[0];
    assert_eq!(
        (n.chat_id, n.message_seq, n.actor_id, n.preview.as_str()),
        (chat, sent.seq, alice.id, "are you there?")
    );
    assert_eq!(listed.unread_count, 1);
}

#[tokio::test]
async fn marking_read_and_clearing_reach_every_device_and_pages_go_newest_first() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let phone = device(&server, &bob).await;
    let chat = group(&alice, pb::ChatKind::Group, "team", &[&bob]).await;
    next_notification(&bob).await;
    for i in 0..6 {
        alice.send(chat.id, &format!("@bob number {i}")).await;
        next_notification(&bob).await;
    }
    let all = list(&bob, false).await;
    assert_eq!(all.notifications.len(), 7);
    assert_eq!(all.unread_count, 7);
    let ids: Vec<u64> = all.notifications.iter().map(|n| n.id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

    // Pages of 3: 3, 3, 1, the cursor ending the last.
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = bob
            .client
            .list_notifications(pb::ListNotifications {
                limit: 3,
                cursor: cursor.clone(),
                unread_only: false,
            })
            .await
            .expect("page");
        assert!(page.notifications.len() <= 3);
        paged.extend(page.notifications.iter().map(|n| n.id));
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(paged, ids);

    // Marking two read on one device updates the other.
    let answer = bob
        .client
        .mark_notifications_read(pb::MarkNotificationsRead {
            ids: vec![ids[0], ids[1], ids[1]],
        })
        .await
        .expect("mark");
    assert_eq!(answer.unread_count, 5);
    // Every connection of the user gets the event, the one that asked too.
    let seen = next_update(&phone).await;
    assert_eq!(seen, answer);
    assert_eq!(next_update(&bob).await, answer);
    assert_eq!(
        (seen.ids.clone(), seen.cleared),
        (vec![ids[0], ids[1]], false)
    );
    let unread = list(&phone, true).await;
    assert_eq!(unread.notifications.len(), 5);
    assert!(unread.notifications.iter().all(|n| !n.read));

    // Clearing some, then marking everything read, then clearing everything.
    let cleared = phone
        .client
        .clear_notifications(pb::ClearNotifications {
            ids: vec![ids[2], ids[6]],
            all: false,
        })
        .await
        .expect("clear some");
    assert!(cleared.cleared);
    assert_eq!(next_update(&bob).await, cleared);
    assert_eq!(next_update(&phone).await, cleared);
    assert_eq!(list(&bob, false).await.notifications.len(), 5);
    let read = bob
        .client
        .mark_all_notifications_read(pb::MarkAllNotificationsRead {})
        .await
        .expect("mark all");
    assert_eq!((read.up_to_id, read.unread_count), (ids[0], 0));
    assert_eq!(next_update(&phone).await, read);
    assert_eq!(next_update(&bob).await, read);
    let synced = phone.client.sync(pb::Sync::default()).await.expect("sync");
    assert_eq!(synced.unread_notifications, 0);
    let gone = bob
        .client
        .clear_notifications(pb::ClearNotifications {
            ids: Vec::new(),
            all: true,
        })
        .await
        .expect("clear all");
    assert_eq!(next_update(&phone).await, gone);
    assert!(list(&phone, false).await.notifications.is_empty());
}

#[tokio::test]
async fn preferences_round_trip_and_do_not_disturb_makes_notifications_silent() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let defaults = bob
        .client
        .get_notification_prefs(pb::GetNotificationPrefs {})
        .await
        .expect("defaults");
    assert_eq!(defaults, pb::NotificationPrefs::default());
    // Quiet all day (start equals end): recorded and sent, but silent.
    let prefs = pb::NotificationPrefs {
        do_not_disturb: Some(pb::DoNotDisturb {
            enabled: true,
            start_minute: 600,
            end_minute: 600,
            utc_offset_minutes: -300,
        }),
        email: true,
        email_digest_minutes: 120,
        ..Default::default()
    };
    let set = bob
        .client
        .set_notification_prefs(pb::SetNotificationPrefs { prefs: Some(prefs) })
        .await
        .expect("set");
    assert_eq!(set, prefs);
    let read = bob
        .client
        .get_notification_prefs(pb::GetNotificationPrefs {})
        .await
        .expect("get");
    assert_eq!(read, prefs);
    let chat = group(&alice, pb::ChatKind::Group, "team", &[&bob]).await;
    let n = next_notification(&bob).await;
    assert_eq!((n.kind(), n.silent), (K::AddedToChat, true));

    // Disabled: nothing is recorded.
    bob.client
        .set_notification_prefs(pb::SetNotificationPrefs {
            prefs: Some(pb::NotificationPrefs {
                disabled: true,
                ..Default::default()
            }),
        })
        .await
        .expect("disable");
    alice.send(chat.id, "@bob you will not hear of this").await;
    let answer = alice
        .client
        .send_message(text(chat.id, "@bob nor this"))
        .await
        .expect("send");
    assert!(answer.seq > 0);
    // The sends were answered after their notifications were decided: none was recorded.
    assert_eq!(kinds(&list(&bob, false).await), vec![K::AddedToChat]);
}

#[tokio::test]
async fn the_callee_of_a_missed_call_is_notified() {
    let server = start_with(&["--call-ring-timeout", "1s"]).await;
    let (alice, bob, chat) = pair(&server).await;
    alice
        .client
        .start_call(pb::StartCall {
            chat_id: chat,
            video: false,
        })
        .await
        .expect("start call");
    let n = next_notification(&bob).await;
    assert_eq!(
        (n.kind(), n.chat_id, n.actor_id),
        (K::MissedCall, chat, alice.id)
    );
    let (event, _) = bob
        .chat_event(chat, |b| match b {
            pb::chat_event::Body::CallEnded(c) => Some(*c),
            _ => None,
        })
        .await;
    assert_eq!(n.message_seq, event.seq);
    // The caller is not notified of their own call.
    assert!(list(&alice, false).await.notifications.is_empty());
}

#[tokio::test]
async fn only_the_newest_notifications_are_kept() {
    let server = start_with(&["--notifications-kept", "2"]).await;
    let (alice, bob, chat) = pair(&server).await;
    let mut seqs = Vec::new();
    for i in 0..3 {
        seqs.push(alice.send(chat, &format!("@bob {i}")).await.seq);
        next_notification(&bob).await;
    }
    let listed = list(&bob, false).await;
    let kept: Vec<u64> = listed.notifications.iter().map(|n| n.message_seq).collect();
    assert_eq!(kept, vec![seqs[2], seqs[1]]);
    assert_eq!(listed.unread_count, 2);
}

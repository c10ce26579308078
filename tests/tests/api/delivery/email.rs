//! Email digests through a real Mailpit.

use std::time::Duration;

use chatproto::pb;
use tests::files::https_request;
use tests::mailpit::{Mailpit, SmtpMode};
use tests::server::TestServer;

use super::{announce, now_ms, server, set_prefs, within};
use crate::support::{group, register};

const MINUTE: i64 = 60_000;

fn email_on(minutes: u32) -> pb::NotificationPrefs {
    pb::NotificationPrefs {
        email: true,
        email_digest_minutes: minutes,
        ..Default::default()
    }
}

/// A Mailpit, and a server sending digests through it to every account's address.
async fn digest_server() -> (Mailpit, TestServer) {
    let mailpit = Mailpit::start(SmtpMode::Starttls).await;
    let mut args = mailpit.chatd_args(SmtpMode::Starttls);
    args.push("--email-unverified".into());
    let server = server(&args).await;
    (mailpit, server)
}

/// Runs `server`'s deliveries at ever later times by its clock (from `later` on, in steps past
/// a 15-minute interval) until `to` has `count` emails; false when they did not come.
async fn digests_arrive(
    server: &TestServer,
    mailpit: &Mailpit,
    to: &str,
    later: &mut i64,
    count: usize,
) -> bool {
    within(Duration::from_secs(20), async || {
        *later += 16 * MINUTE;
        server.deliver_as_of(*later).await;
        mailpit.messages_to(to).await.len() >= count
    })
    .await
}

/// A digest tells of every unread notification since the last one, however many: it lists the
/// newest 50 and counts the rest ("and N more"), and a broadcast, which belongs to no chat, is
/// among them (spec 16.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_tells_of_broadcasts_and_counts_beyond_what_it_lists() {
    let (mailpit, server) = digest_server().await;
    let alice = register(&server, "alice").await;
    let erin = register(&server, "erin").await;
    server
        .store()
        .set_role(alice.id, pb::Role::Admin, None)
        .await
        .expect("admin");
    let chat = group(&alice, pb::ChatKind::Group, "busy", &[&erin]).await;
    set_prefs(&erin, email_on(15)).await;
    let erin_id = erin.id;
    erin.client.close().await;
    const MENTIONS: usize = 55;
    for n in 0..MENTIONS {
        alice.send(chat.id, &format!("@erin number {n}")).await;
    }
    announce(&alice).await;
    let store = server.store();
    // The mentions, her addition to the chat and the broadcast.
    let all = MENTIONS + 2;
    let recorded = within(Duration::from_secs(10), async || {
        let unread = store
            .notifications(chatd::testing::NotificationQuery {
                user_id: erin_id,
                unread_only: true,
                before_id: None,
                limit: 100,
            })
            .await
            .expect("notifications");
        unread.len() == all
    })
    .await;
    assert!(recorded, "erin's notifications were not all recorded");
    let mut later = now_ms() + 16 * MINUTE;
    let arrived = digests_arrive(&server, &mailpit, "erin@example.test", &mut later, 1).await;
    assert!(arrived, "erin's digest did not arrive");
    let mails = mailpit.messages_to("erin@example.test").await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(
        mails[0].subject.starts_with(&format!("{all} ")),
        "{}",
        mails[0].subject
    );
    let mail = mailpit.message(&mails[0].id).await;
    for text in [
        "alice announced to everyone in the server",
        "maintenance tonight",
        &format!("and {} more", all - 50),
    ] {
        assert!(mail.text.contains(text), "lacks {text:?}:\n{}", mail.text);
    }
    assert_eq!(mail.text.matches("alice mentioned you").count(), 49);
}

/// A broadcast alone makes a digest for a user who wants them: it is handed on like any
/// notification (spec 16.2), not only told of when something else made a digest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_alone_makes_a_digest() {
    let (mailpit, server) = digest_server().await;
    let alice = crate::support::register_admin(&server, "alice").await;
    let erin = register(&server, "erin").await;
    set_prefs(&erin, email_on(15)).await;
    erin.client.close().await;
    announce(&alice).await;
    let mut later = now_ms();
    let arrived = digests_arrive(&server, &mailpit, "erin@example.test", &mut later, 1).await;
    assert!(arrived, "erin's digest did not arrive");
    let mails = mailpit.messages_to("erin@example.test").await;
    let mail = mailpit.message(&mails[0].id).await;
    assert!(mail.text.contains("maintenance tonight"), "{}", mail.text);
    assert!(
        mailpit.messages_to("alice@example.test").await.is_empty(),
        "alice wants no digest"
    );
}

/// Digests come after the user was offline for their interval, one email per batch of
/// mentions, each listing what came since the last; users in do-not-disturb hours and users
/// whose chat is muted get none; the one-click link turns digests off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_batch_per_user_and_skip_muted_chats_and_quiet_hours() {
    let (mailpit, server) = digest_server().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let carol = register(&server, "carol").await;
    let dave = register(&server, "dave").await;
    let chat = group(
        &alice,
        pb::ChatKind::Group,
        "launch plans",
        &[&bob, &carol, &dave],
    )
    .await;
    set_prefs(&bob, email_on(15)).await;
    set_prefs(
        &carol,
        pb::NotificationPrefs {
            do_not_disturb: Some(pb::DoNotDisturb {
                enabled: true,
                start_minute: 0,
                end_minute: 0,
                utc_offset_minutes: 0,
            }),
            ..email_on(15)
        },
    )
    .await;
    set_prefs(
        &dave,
        pb::NotificationPrefs {
            mentions_in_muted_chats: true,
            ..email_on(15)
        },
    )
    .await;
    dave.client
        .set_chat_state(pb::SetChatState {
            chat_id: chat.id,
            muted_until_ms: Some(i64::MAX),
            ..Default::default()
        })
        .await
        .expect("mute");
    let (bob_id, carol_id, dave_id) = (bob.id, carol.id, dave.id);
    for user in [bob, carol, dave] {
        user.client.close().await;
    }

    alice.send(chat.id, "@bob @carol @dave first").await;
    alice.send(chat.id, "@bob @carol @dave second").await;
    alice
        .send(chat.id, "@bob @carol @dave <third> & last")
        .await;
    // Dave's mentions are recorded (the preference), carol's silently: the digests decide.
    let store = server.store();
    let recorded = |user: u64| {
        let store = store.clone();
        async move {
            store
                .notifications(chatd::testing::NotificationQuery {
                    user_id: user,
                    unread_only: true,
                    before_id: None,
                    limit: 10,
                })
                .await
                .expect("notifications")
        }
    };
    let mentions = |list: Vec<pb::Notification>| {
        list.into_iter()
            .filter(|n| n.kind() == pb::NotificationKind::Mention)
            .collect::<Vec<_>>()
    };
    assert!(
        within(Duration::from_secs(10), async || mentions(
            recorded(dave_id).await
        )
        .len()
            == 3)
        .await,
        "dave's three mentions, in a chat he muted"
    );
    let carols = mentions(recorded(carol_id).await);
    assert!(
        carols.len() == 3 && carols.iter().all(|n| n.silent),
        "{carols:?}"
    );

    // Nothing before the interval has passed.
    server.deliver_as_of(now_ms() + 5 * MINUTE).await;
    assert!(mailpit.messages().await.is_empty(), "too early");

    // Later (by the server's clock) bob's digest goes out, once, with the three mentions.
    let mut later = now_ms() + 16 * MINUTE;
    let arrived = digests_arrive(&server, &mailpit, "bob@example.test", &mut later, 1).await;
    assert!(arrived, "bob's digest did not arrive");
    server.deliver_as_of(later + 60 * MINUTE).await;
    let bobs = mailpit.messages_to("bob@example.test").await;
    assert_eq!(bobs.len(), 1, "one email for the batch: {bobs:?}");
    let mail = mailpit.message(&bobs[0].id).await;
    // The three mentions and, unread too, his addition to the chat.
    assert!(bobs[0].subject.starts_with("4 "), "{}", bobs[0].subject);
    for text in [
        "first",
        "second",
        "<third> & last",
        "launch plans",
        "alice mentioned you",
        "alice added you",
    ] {
        assert!(
            mail.text.contains(text),
            "text body lacks {text:?}:\n{}",
            mail.text
        );
    }
    assert!(
        mail.html.contains("&lt;third&gt; &amp; last"),
        "{}",
        mail.html
    );
    assert_eq!(
        mail.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(
        mail.header("From")
            .is_some_and(|f| f.contains("chat@chat.test"))
    );
    // Carol is in do-not-disturb all day, dave muted the chat: nothing for them, whenever.
    server.deliver_as_of(later + 3 * 24 * 60 * MINUTE).await;
    assert!(mailpit.messages_to("carol@example.test").await.is_empty());
    assert!(mailpit.messages_to("dave@example.test").await.is_empty());

    // A new mention makes a new digest with only itself.
    alice.send(chat.id, "@bob one more thing").await;
    let mut next = later + 2 * 24 * 60 * MINUTE;
    let arrived = digests_arrive(&server, &mailpit, "bob@example.test", &mut next, 2).await;
    assert!(arrived, "the second digest did not arrive");
    let newest = mailpit.messages_to("bob@example.test").await;
    let second = mailpit.message(&newest[0].id).await;
    assert!(second.text.contains("one more thing"), "{}", second.text);
    assert!(!second.text.contains("first"), "{}", second.text);

    // The one-click link: GET only shows the button, POST turns digests off.
    let link = mail
        .header("List-Unsubscribe")
        .expect("List-Unsubscribe")
        .trim_matches(['<', '>'])
        .to_owned();
    assert!(
        mail.text.contains(&link),
        "the link is in the text body too"
    );
    let fp = server.fingerprint();
    let page = https_request(hyper::Method::GET, &link, &fp, &[], "").await;
    assert_eq!(page.status, 200);
    let prefs = |store: std::sync::Arc<dyn chatd::testing::Store>| async move {
        store
            .notification_prefs(bob_id)
            .await
            .expect("prefs")
            .unwrap_or_default()
    };
    assert!(prefs(store.clone()).await.email, "a GET changes nothing");
    let forged = link.replace(&format!("u={bob_id}"), &format!("u={carol_id}"));
    let refused = https_request(
        hyper::Method::POST,
        &forged,
        &fp,
        &[],
        "List-Unsubscribe=One-Click",
    )
    .await;
    assert_eq!(refused.status, 403);
    let done = https_request(
        hyper::Method::POST,
        &link,
        &fp,
        &[],
        "List-Unsubscribe=One-Click",
    )
    .await;
    assert_eq!(done.status, 200, "{}", String::from_utf8_lossy(&done.body));
    assert!(!prefs(store.clone()).await.email, "unsubscribed");
    let carol_prefs = store
        .notification_prefs(carol_id)
        .await
        .expect("prefs")
        .unwrap_or_default();
    assert!(carol_prefs.email, "only the link's user");
}

/// Implicit TLS works as STARTTLS does; a server without email settings, or one that may not
/// send to unverified addresses, queues or sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_and_no_email_without_settings_or_a_usable_address() {
    let mailpit = Mailpit::start(SmtpMode::Implicit).await;
    let mut args = mailpit.chatd_args(SmtpMode::Implicit);
    args.push("--email-unverified".into());
    let tls = server(&args).await;
    let strict = server(&mailpit.chatd_args(SmtpMode::Implicit)).await;
    let off = server(&[]).await;
    for (server, name) in [(&tls, "erin"), (&strict, "frank"), (&off, "gina")] {
        let alice = register(server, "alice").await;
        let user = register(server, name).await;
        let chat = group(&alice, pb::ChatKind::Group, "ops", &[&user]).await;
        set_prefs(&user, email_on(15)).await;
        user.client.close().await;
        alice
            .send(chat.id, &format!("@{name} are you there?"))
            .await;
    }
    let mut later = now_ms() + 16 * MINUTE;
    let arrived = digests_arrive(&tls, &mailpit, "erin@example.test", &mut later, 1).await;
    assert!(arrived, "the digest over implicit TLS did not arrive");
    // The strict server puts the digest together and finds no address it may use.
    strict.deliver_as_of(later).await;
    assert_eq!(
        off.deliver_as_of(later).await,
        0,
        "without email settings nothing is queued"
    );
    // Frank's address got its verification code (section 18), and nothing else.
    let franks = mailpit.messages_to("frank@example.test").await;
    assert!(
        franks
            .iter()
            .all(|m| m.subject == "Your email verification code"),
        "{franks:?}"
    );
    assert!(mailpit.messages_to("gina@example.test").await.is_empty());
}

/// A digest due during the user's do-not-disturb hours waits for their end: none while they
/// hold, the digest once they are over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_due_in_quiet_hours_waits_for_their_end() {
    let (mailpit, server) = digest_server().await;
    let alice = register(&server, "alice").await;
    let erin = register(&server, "erin").await;
    let chat = group(&alice, pb::ChatKind::Group, "night shift", &[&erin]).await;
    set_prefs(&erin, email_on(15)).await;
    alice.send(chat.id, "@erin the pager went off").await;
    // Recorded before the quiet hours, so not silent: the digest is queued.
    let quiet = |enabled| pb::NotificationPrefs {
        do_not_disturb: Some(pb::DoNotDisturb {
            enabled,
            start_minute: 0,
            end_minute: 0,
            utc_offset_minutes: 0,
        }),
        ..email_on(15)
    };
    set_prefs(&erin, quiet(true)).await;
    erin.client.close().await;
    // Offline for sure, so that only the quiet hours can hold the digest back.
    let offline = within(Duration::from_secs(5), async || {
        server.kick_connections_of(erin.id) == 0
    })
    .await;
    assert!(offline, "erin's connection is still registered");
    let later = now_ms() + 20 * MINUTE;
    server.deliver_as_of(later).await;
    assert!(
        mailpit.messages_to("erin@example.test").await.is_empty(),
        "no digest in quiet hours"
    );
    // The quiet hours end (set in the store: erin is offline; all day, so the digest looks
    // again a day later).
    server
        .store()
        .set_notification_prefs(erin.id, quiet(false))
        .await
        .expect("prefs");
    let mut next = later + 24 * 60 * MINUTE;
    let arrived = digests_arrive(&server, &mailpit, "erin@example.test", &mut next, 1).await;
    assert!(arrived, "the digest after the quiet hours did not arrive");
}

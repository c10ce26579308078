//! Webhook calls, signed, to a receiver on loopback.

use std::time::Duration;

use chatproto::pb;
use tests::webhook::WebhookReceiver;

use super::{SECRET, announce, server, webhook_args, webhooks_on, within};
use crate::support::{group, register, register_admin};

/// A mention of a user with webhooks on is posted to the mention endpoint, as JSON, signed and
/// timestamped; a user with webhooks off, and a kind without an endpoint, make no call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_calls_for_users_who_turned_webhooks_on() {
    let receiver = WebhookReceiver::start(SECRET.as_bytes()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(&webhook_args(&receiver, dir.path(), 3)).await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let carol = register(&server, "carol").await;
    let chat = group(&alice, pb::ChatKind::Group, "team", &[&bob, &carol]).await;
    webhooks_on(&bob).await;
    // Added to the chat before turning webhooks on, and there is no endpoint for additions:
    // nothing so far.
    let sent = alice.send(chat.id, "@bob @carol status?").await;
    let arrived = within(Duration::from_secs(10), async || {
        !receiver.calls().is_empty()
    })
    .await;
    assert!(arrived, "no webhook call");
    // Carol (webhooks off) gets no call; give a stray one time to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = receiver.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert!(call.authentic, "signature and timestamp check out");
    assert_eq!(call.status, 204);
    assert_eq!(call.path, "/hooks/mention");
    assert!(!call.delivery.is_empty());
    let body = call.json();
    assert_eq!(body["kind"], "mention");
    assert_eq!(body["user_id"], bob.id);
    assert_eq!(body["chat_id"], chat.id);
    assert_eq!(body["message_seq"], sent.seq);
    assert_eq!(body["actor_id"], alice.id);
    assert_eq!(body["preview"], "@bob @carol status?");
    assert_eq!(body["silent"], false);
}

/// An admin's broadcast is handed on like any notification (spec 16.3): a call to the
/// broadcast endpoint for each user with webhooks on, online or not, and none for the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_calls_the_broadcast_endpoint_for_users_who_want_calls() {
    let receiver = WebhookReceiver::start(SECRET.as_bytes()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(&webhook_args(&receiver, dir.path(), 3)).await;
    let admin = register_admin(&server, "root").await;
    let bob = register(&server, "bob").await;
    let dan = register(&server, "dan").await;
    let _carol = register(&server, "carol").await;
    webhooks_on(&bob).await;
    webhooks_on(&dan).await;
    dan.client.close().await;
    announce(&admin).await;
    let arrived = within(Duration::from_secs(10), async || {
        receiver.calls().len() >= 2
    })
    .await;
    assert!(arrived, "calls: {:?}", receiver.calls());
    // Carol and the admin (webhooks off) get none; give a stray one time to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = receiver.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let mut users: Vec<u64> = calls
        .iter()
        .map(|call| {
            assert!(call.authentic && call.status == 204, "{call:?}");
            assert_eq!(call.path, "/hooks/broadcast");
            let body = call.json();
            assert_eq!(body["kind"], "broadcast");
            assert_eq!(body["actor_id"], admin.id);
            assert_eq!(body["preview"], "maintenance tonight");
            body["user_id"].as_u64().expect("user id")
        })
        .collect();
    users.sort_unstable();
    assert_eq!(users, vec![bob.id, dan.id]);
}

/// Two nodes on one store both run the outbox: each call is made by one of them, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_store_make_each_call_once() {
    let receiver = WebhookReceiver::start(SECRET.as_bytes()).await;
    let secrets = tempfile::tempdir().expect("tempdir");
    let args = webhook_args(&receiver, secrets.path(), 3);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let data = std::sync::Arc::new(tempfile::tempdir().expect("data dir"));
    let first = tests::server::TestServer::start_in(data.clone(), &args).await;
    let second = tests::server::TestServer::start_in(data, &args).await;
    let alice = register(&first, "alice").await;
    let bob = register(&second, "bob").await;
    let chat = group(&alice, pb::ChatKind::Group, "team", &[&bob]).await;
    webhooks_on(&bob).await;
    const SENT: usize = 20;
    for n in 0..SENT {
        alice.send(chat.id, &format!("@bob number {n}")).await;
    }
    let all = within(Duration::from_secs(20), async || {
        receiver.calls().len() >= SENT
    })
    .await;
    assert!(all, "{} of {SENT} calls", receiver.calls().len());
    // Time for a second call of any of them to show up.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let calls = receiver.calls();
    let mut deliveries: Vec<&str> = calls.iter().map(|c| c.delivery.as_str()).collect();
    deliveries.sort_unstable();
    deliveries.dedup();
    assert_eq!(calls.len(), SENT, "{calls:?}");
    assert_eq!(deliveries.len(), SENT, "each delivery once");
    assert!(calls.iter().all(|c| c.authentic && c.status == 204));
}

/// An https:// endpoint gets the same signed call, its certificate checked against the CA
/// given in `--webhook-ca`; without that CA the call fails (and is retried).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_endpoints_are_called_with_their_certificate_checked() {
    let receiver = WebhookReceiver::start_tls(SECRET.as_bytes()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &receiver.ca_pem).expect("write ca");
    let mut args = webhook_args(&receiver, dir.path(), 3);
    let untrusted = server(&args).await;
    args.push(format!("--webhook-ca={}", ca.display()));
    let trusted = server(&args).await;
    for server in [&untrusted, &trusted] {
        let alice = register(server, "alice").await;
        let bob = register(server, "bob").await;
        let chat = group(&alice, pb::ChatKind::Group, "team", &[&bob]).await;
        webhooks_on(&bob).await;
        alice.send(chat.id, "@bob over tls").await;
    }
    let arrived = within(Duration::from_secs(10), async || {
        !receiver.calls().is_empty()
    })
    .await;
    assert!(arrived, "no call over https");
    // The untrusted server's attempts never get through the handshake.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let calls = receiver.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(calls[0].authentic && calls[0].status == 204);
    assert_eq!(calls[0].json()["preview"], "@bob over tls");
}

/// During a rotation of the webhook secret each call carries a signature under the new secret
/// and one under the old, so receivers that know either accept it; once the overlap ends, only
/// the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_signed_under_both_secrets_while_the_secret_rotates() {
    const NEW: &str = "the-next-webhook-secret-2027";
    let receiver = WebhookReceiver::start(SECRET.as_bytes()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(&webhook_args(&receiver, dir.path(), 1)).await;
    let admin = register_admin(&server, "root").await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let chat = group(&alice, pb::ChatKind::Group, "team", &[&bob]).await;
    webhooks_on(&bob).await;
    let rotated = admin
        .client
        .admin_rotate_key(pb::AdminRotateKey {
            kind: pb::KeyKind::Webhook as i32,
            secret: NEW.as_bytes().to_vec(),
        })
        .await
        .expect("rotate the webhook secret");
    let webhook = rotated
        .rings
        .iter()
        .find(|r| r.kind == pb::KeyKind::Webhook as i32)
        .expect("webhook ring");
    assert_eq!(
        webhook
            .keys
            .iter()
            .map(|k| (k.kid, k.state()))
            .collect::<Vec<_>>(),
        [(1, pb::KeyState::Current), (0, pb::KeyState::Retiring)]
    );
    let call = |n: usize| {
        let receiver = &receiver;
        async move {
            assert!(
                within(Duration::from_secs(10), async || receiver.calls().len() > n).await,
                "no webhook call"
            );
            receiver.calls().swap_remove(n)
        }
    };
    alice.send(chat.id, "@bob during the overlap").await;
    let during = call(0).await;
    assert!(
        during.authentic,
        "the receiver with the old secret accepts it"
    );
    assert_eq!(
        during.signature.split(',').count(),
        2,
        "{}",
        during.signature
    );
    let body = during.body.as_bytes();
    for secret in [NEW, SECRET] {
        assert!(
            tests::webhook::verify(
                secret.as_bytes(),
                &during.timestamp,
                &during.signature,
                body
            ),
            "signed under {secret}"
        );
    }
    assert!(
        during
            .signature
            .starts_with(&format!("v1={}", tag(NEW, &during.timestamp, &during.body))),
        "the new secret's signature first: {}",
        during.signature
    );
    admin
        .client
        .admin_retire_keys(pb::AdminRetireKeys {
            kind: pb::KeyKind::Webhook as i32,
        })
        .await
        .expect("end the overlap");
    alice.send(chat.id, "@bob after the overlap").await;
    let after = call(1).await;
    assert_eq!(after.signature.split(',').count(), 1, "{}", after.signature);
    assert!(tests::webhook::verify(
        NEW.as_bytes(),
        &after.timestamp,
        &after.signature,
        after.body.as_bytes()
    ));
    assert!(
        !after.authentic,
        "a receiver that only knows the old secret refuses it"
    );
}

/// The webhook secret on a schedule: the server replaces the configured secret by one it makes
/// when it comes of age, admins read the new one with `admin_get_key_secrets` (recorded in the
/// audit log) to give it to the receivers, and every call meanwhile carries a signature under
/// each, so receivers that know only the old one keep accepting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_rotation_makes_a_secret_admins_can_give_to_the_receivers() {
    let receiver = WebhookReceiver::start(SECRET.as_bytes()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = webhook_args(&receiver, dir.path(), 1);
    args.extend(
        [
            "--access-token-ttl=1s",
            "--key-overlap=7s",
            "--webhook-secret-rotation-interval=7s",
        ]
        .map(String::from),
    );
    let server = server(&args).await;
    let admin = register_admin(&server, "root").await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let chat = group(&alice, pb::ChatKind::Group, "team", &[&bob]).await;
    webhooks_on(&bob).await;
    let secrets = async || {
        admin
            .client
            .admin_get_key_secrets(pb::AdminGetKeySecrets {
                kind: pb::KeyKind::Webhook as i32,
            })
            .await
            .expect("webhook secrets")
    };
    let before = secrets().await;
    assert_eq!(before.keys.len(), 1, "{before:?}");
    assert_eq!(before.keys[0].secret, SECRET.as_bytes());
    let rotated = within(Duration::from_secs(30), async || {
        secrets().await.keys.len() == 2
    })
    .await;
    assert!(rotated, "no scheduled rotation of the webhook secret");
    let given = secrets().await;
    let states: Vec<(u32, pb::KeyState)> = given
        .keys
        .iter()
        .map(|k| {
            let key = k.key.as_ref().expect("key");
            (key.kid, key.state())
        })
        .collect();
    assert_eq!(
        states,
        [(1, pb::KeyState::Current), (0, pb::KeyState::Retiring)]
    );
    let made = String::from_utf8(given.keys[0].secret.clone()).expect("text");
    assert_eq!(made.len(), 43, "{made}");
    assert_eq!(given.keys[1].secret, SECRET.as_bytes());
    alice.send(chat.id, "@bob after the schedule").await;
    assert!(
        within(Duration::from_secs(10), async || !receiver
            .calls()
            .is_empty())
        .await,
        "no webhook call"
    );
    let call = receiver.calls().swap_remove(0);
    assert!(
        call.authentic,
        "the receiver with the old secret accepts it"
    );
    assert!(
        tests::webhook::verify(
            made.as_bytes(),
            &call.timestamp,
            &call.signature,
            call.body.as_bytes()
        ),
        "signed under the secret the admin was given: {}",
        call.signature
    );
    // The server's own keys are never given; reading the shared ones is recorded.
    let refused = admin
        .client
        .admin_get_key_secrets(pb::AdminGetKeySecrets {
            kind: pb::KeyKind::Tokens as i32,
        })
        .await
        .expect_err("token keys are not given");
    assert_eq!(refused.code(), Some(pb::ErrorCode::InvalidArgument));
    let log = admin
        .client
        .admin_list_audit(pb::AdminListAudit {
            action: "admin_get_key_secrets".into(),
            ..Default::default()
        })
        .await
        .expect("audit");
    assert!(
        log.entries.len() >= 3 && log.entries.iter().all(|e| e.subject.starts_with("keys:")),
        "{log:?}"
    );
    assert_eq!(log.entries[0].subject, "keys:tokens");
    assert_eq!(
        log.entries[0].outcome,
        pb::ErrorCode::InvalidArgument as i32
    );
    assert_eq!(log.entries[1].subject, "keys:webhook");
}

/// The hex HMAC-SHA256 of `"{timestamp}.{body}"` under `secret`.
fn tag(secret: &str, timestamp: &str, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    hex::encode(ring::hmac::sign(&key, format!("{timestamp}.{body}").as_bytes()).as_ref())
}

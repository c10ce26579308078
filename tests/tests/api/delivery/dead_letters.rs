//! Retries, dead letters and their admin requests, and a restart in the middle of retries.

use std::time::Duration;

use chatproto::pb;
use tests::webhook::WebhookReceiver;

use super::{SECRET, server, webhook_args, webhooks_on, within};
use crate::support::{User, assert_code, group, register, register_admin};
use tests::server::TestServer;

async fn dead_letters(admin: &User) -> Vec<pb::DeadLetter> {
    admin
        .client
        .admin_list_dead_letters(pb::AdminListDeadLetters {
            limit: 100,
            cursor: String::new(),
        })
        .await
        .expect("list dead letters")
        .dead_letters
}

/// Bob with webhooks on, in a chat with alice; returns (alice, bob, chat id).
async fn webhook_user(server: &TestServer) -> (User, User, u64) {
    let alice = register(server, "alice").await;
    let bob = register(server, "bob").await;
    let chat = group(&alice, pb::ChatKind::Group, "team", &[&bob]).await;
    webhooks_on(&bob).await;
    (alice, bob, chat.id)
}

/// A failing endpoint gets every attempt (the same delivery, re-signed), then the call is a dead
/// letter; an admin lists it, retries it once the endpoint works, and it is delivered; another
/// one is purged. Only admins may do this, and retries and purges are audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_is_retried_dead_lettered_and_retried_by_an_admin() {
    let receiver = WebhookReceiver::start(SECRET.as_bytes()).await;
    receiver.set_failing(true);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(&webhook_args(&receiver, dir.path(), 3)).await;
    let admin = register_admin(&server, "root").await;
    let (alice, bob, chat) = webhook_user(&server).await;
    alice.send(chat, "@bob ping").await;

    let dead = within(Duration::from_secs(20), async || {
        dead_letters(&admin).await.len() == 1
    })
    .await;
    assert!(dead, "no dead letter; calls: {:?}", receiver.calls());
    let calls = receiver.calls();
    assert_eq!(calls.len(), 3, "three attempts: {calls:?}");
    assert!(calls.iter().all(|c| c.authentic && c.status == 503));
    assert!(
        calls.iter().all(|c| c.delivery == calls[0].delivery),
        "one delivery"
    );
    let letter = dead_letters(&admin).await.remove(0);
    assert_eq!(letter.kind(), pb::DeliveryKind::Webhook);
    assert_eq!((letter.user_id, letter.attempts), (bob.id, 3));
    assert_eq!(letter.target, "mention");
    assert!(letter.last_error.contains("503"), "{}", letter.last_error);
    assert_eq!(letter.id.to_string(), calls[0].delivery);
    let metrics = server.metrics().await;
    for series in [
        "chatd_deliveries_total{kind=\"webhook\",outcome=\"retry\"} 2",
        "chatd_deliveries_total{kind=\"webhook\",outcome=\"dead\"} 1",
    ] {
        assert!(metrics.contains(series), "{series} in\n{metrics}");
    }

    // Not for users.
    assert_code(
        bob.client
            .admin_list_dead_letters(pb::AdminListDeadLetters::default())
            .await,
        pb::ErrorCode::PermissionDenied,
    );
    assert_code(
        bob.client
            .admin_retry_dead_letters(pb::AdminRetryDeadLetters {
                ids: vec![letter.id],
                all: false,
            })
            .await,
        pb::ErrorCode::PermissionDenied,
    );
    assert_code(
        bob.client
            .admin_purge_dead_letters(pb::AdminPurgeDeadLetters {
                ids: Vec::new(),
                all: true,
            })
            .await,
        pb::ErrorCode::PermissionDenied,
    );
    assert_code(
        admin
            .client
            .admin_retry_dead_letters(pb::AdminRetryDeadLetters::default())
            .await,
        pb::ErrorCode::InvalidArgument,
    );

    receiver.set_failing(false);
    let retried = admin
        .client
        .admin_retry_dead_letters(pb::AdminRetryDeadLetters {
            ids: vec![letter.id],
            all: false,
        })
        .await
        .expect("retry");
    assert_eq!(retried.count, 1);
    let delivered = within(Duration::from_secs(10), async || {
        receiver.calls().iter().any(|c| c.status == 204)
    })
    .await;
    assert!(delivered, "the retried call was not delivered");
    assert_eq!(receiver.calls().len(), 4);
    assert!(dead_letters(&admin).await.is_empty());

    // Another one dies and is purged.
    receiver.set_failing(true);
    alice.send(chat, "@bob again").await;
    let dead = within(Duration::from_secs(20), async || {
        dead_letters(&admin).await.len() == 1
    })
    .await;
    assert!(dead, "no second dead letter");
    let purged = admin
        .client
        .admin_purge_dead_letters(pb::AdminPurgeDeadLetters {
            ids: Vec::new(),
            all: true,
        })
        .await
        .expect("purge");
    assert_eq!(purged.count, 1);
    assert!(dead_letters(&admin).await.is_empty());

    // The changes are in the audit log, the refusals too.
    let audit = admin
        .client
        .admin_list_audit(pb::AdminListAudit {
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("audit")
        .entries;
    let entries: Vec<(&str, &str, &str, pb::ErrorCode)> = audit
        .iter()
        .filter(|e| e.action.ends_with("_dead_letters"))
        .map(|e| {
            (
                e.action.as_str(),
                e.subject.as_str(),
                e.detail.as_str(),
                e.outcome(),
            )
        })
        .collect();
    let retry_detail = format!("ids={}", letter.id);
    assert!(
        entries.contains(&(
            "admin_retry_dead_letters",
            "dead_letters",
            retry_detail.as_str(),
            pb::ErrorCode::Unspecified
        )),
        "{entries:?}"
    );
    assert!(
        entries.contains(&(
            "admin_purge_dead_letters",
            "dead_letters",
            "all",
            pb::ErrorCode::Unspecified
        )),
        "{entries:?}"
    );
    assert!(
        entries.contains(&(
            "admin_purge_dead_letters",
            "dead_letters",
            "all",
            pb::ErrorCode::PermissionDenied
        )),
        "{entries:?}"
    );
    assert!(
        !entries.iter().any(|e| e.0 == "admin_list_dead_letters"),
        "a read is not audited"
    );
}

/// The outbox is in the store: a call that failed before a restart is retried by the restarted
/// server, the same delivery, and delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_retries_loses_nothing() {
    let receiver = WebhookReceiver::start(SECRET.as_bytes()).await;
    receiver.set_failing(true);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = webhook_args(&receiver, dir.path(), 20);
    // Retries far enough apart that the restart falls between two of them.
    args.retain(|a| !a.starts_with("--delivery-retry"));
    args.extend([
        "--delivery-retry-base=1s".to_owned(),
        "--delivery-retry-max=2s".to_owned(),
    ]);
    let first = server(&args).await;
    let (alice, _bob, chat) = webhook_user(&first).await;
    alice.send(chat, "@bob before the restart").await;
    let tried = within(Duration::from_secs(10), async || {
        receiver.calls().len() >= 2
    })
    .await;
    assert!(tried, "no retries before the restart");
    drop(alice);
    let data = first.stop().await;
    let before = receiver.calls();
    receiver.set_failing(false);

    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _second = TestServer::start_in(data, &args).await;
    let delivered = within(Duration::from_secs(15), async || {
        receiver.calls().iter().any(|c| c.status == 204)
    })
    .await;
    assert!(
        delivered,
        "not delivered after the restart: {:?}",
        receiver.calls()
    );
    let calls = receiver.calls();
    let ok = calls.iter().find(|c| c.status == 204).expect("delivered");
    assert_eq!(ok.delivery, before[0].delivery, "the same delivery");
    assert_eq!(calls.iter().filter(|c| c.status == 204).count(), 1, "once");
}

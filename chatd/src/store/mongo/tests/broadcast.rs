//! An admin broadcast to thousands of users: every one gets one copy with an id of their own,
//! and the whole costs a few database commands per thousand users (batches), not one per user.

use chatproto::pb;
use prometheus_client::metrics::counter::Counter;

use crate::store::mongo::docs::UserDoc;
use crate::store::mongo::{MongoOptions, testserver};
use crate::store::{NotificationQuery, NotificationStore};

/// More than two batches.
const USERS: i64 = 2_500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_to_thousands_costs_a_few_commands_per_thousand_users() {
    let commands = Counter::default();
    let store = testserver::store_with(MongoOptions {
        command_counter: Some(commands.clone()),
        ..MongoOptions::default()
    })
    .await;
    // The accounts go in directly, in one insert: creating them one by one is not what is
    // measured here.
    let accounts: Vec<UserDoc> = (1..=USERS)
        .map(|id| UserDoc {
            id,
            username: format!("u{id}"),
            email: String::new(),
            email_verified: false,
            password_hash: "h".into(),
            display_name: String::new(),
            display_lower: String::new(),
            bio: String::new(),
            avatar_file_id: String::new(),
            status: pb::UserStatus::Online as i32,
            last_seen_at_ms: 0,
            role: pb::Role::User as i32,
            disabled: id == 7,
            deleted: false,
            created_at_ms: 1,
        })
        .collect();
    store.c.users.insert_many(&accounts).await.expect("users");

    let before = commands.get();
    let recorded = store
        .broadcast_notification(
            pb::Notification {
                kind: pb::NotificationKind::Broadcast as i32,
                actor_id: 1,
                preview: "maintenance".into(),
                ..Default::default()
            },
            500,
        )
        .await
        .expect("broadcast");
    let used = commands.get() - before;

    assert_eq!(
        recorded.len(),
        usize::try_from(USERS - 1).expect("fits"),
        "all but the disabled one"
    );
    let mut ids: Vec<u64> = recorded.iter().map(|(_, id)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), recorded.len(), "an id of its own each");
    assert!(recorded.iter().all(|(user, _)| *user != 7));
    for user in [1_u64, 1_000, 2_500] {
        let mine = store
            .notifications(NotificationQuery {
                user_id: user,
                limit: 10,
                ..Default::default()
            })
            .await
            .expect("list");
        assert_eq!(mine.len(), 1, "user {user}");
        assert_eq!(mine[0].preview, "maintenance");
    }
    // Per batch of 1000: a counter step, an insert, a check of what stands (with its cursor's
    // pages) and a count, plus the pages of the cursor over the users: about 8 (25 measured
    // for 2500 users on FerretDB). One per user would be thousands.
    assert!(used <= 10 * 3, "{used} commands for {USERS} users");
}

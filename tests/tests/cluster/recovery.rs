//! Password reset in cluster mode (spec section 18): two chatd processes on FerretDB send the
//! code through the shared outbox, and of two resets with one code sent to two nodes at once,
//! exactly one wins (the MongoDB store's unique claim); the winner's password then works on
//! either node and the loser's does not.

use std::time::Duration;

use chatproto::client::Client;
use chatproto::pb;
use tests::cluster::{ChatCluster, ClusterSpec};
use tests::mailpit::{Mailpit, SmtpMode};
use tests::process::eventually;
use tests::users::TestUser;

const SUBJECT: &str = "Your password reset code";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_resets_with_one_code_on_two_nodes_one_wins() {
    let mailpit = Mailpit::start(SmtpMode::Starttls).await;
    let mut args = mailpit.chatd_args(SmtpMode::Starttls);
    args.extend([
        "--email-unverified".to_owned(),
        "--delivery-poll=100ms".to_owned(),
    ]);
    let cluster = tokio::task::spawn_blocking(move || {
        ChatCluster::start_with(ClusterSpec {
            nodes: 2,
            args,
            ..ClusterSpec::default()
        })
    })
    .await
    .expect("start cluster");
    let dana = TestUser::register(cluster.client_config(0), "dana").await;
    let connect = async |node: usize| {
        Client::connect(cluster.client_config(node))
            .await
            .expect("connect")
    };
    let (first, second) = (connect(0).await, connect(1).await);
    second
        .request_password_reset(pb::RequestPasswordReset {
            account: "dana".into(),
        })
        .await
        .expect("forgot");
    let mut found = Vec::new();
    let arrived = eventually(
        Duration::from_secs(20),
        Duration::from_millis(100),
        async || {
            found = mailpit.messages_to("dana@example.com").await;
            found.retain(|m| m.subject == SUBJECT);
            !found.is_empty()
        },
    )
    .await;
    assert!(arrived, "no reset email");
    assert_eq!(found.len(), 1, "one node sent it, once");
    let text = mailpit.message(&found[0].id).await.text;
    let code = text
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 9 && l.as_bytes()[4] == b'-')
        .expect("a code")
        .to_owned();
    let reset = |password: &str| pb::ResetPassword {
        account: "dana".into(),
        code: code.clone(),
        new_password: password.into(),
    };
    let (a, b) = tokio::join!(
        first.reset_password(reset("first new password")),
        second.reset_password(reset("second new password")),
    );
    let winner = match (a.is_ok(), b.is_ok()) {
        (true, false) => "first new password",
        (false, true) => "second new password",
        other => panic!("both or neither reset: {other:?} ({a:?}, {b:?})"),
    };
    let loser = if winner.starts_with("first") {
        "second new password"
    } else {
        "first new password"
    };
    for node in [0, 1] {
        connect(node)
            .await
            .login("dana", winner, "after")
            .await
            .expect("the winner's password");
        let refused = connect(node).await.login("dana", loser, "after").await;
        assert_eq!(
            refused.err().and_then(|e| e.code()),
            Some(pb::ErrorCode::Unauthenticated)
        );
    }
    drop(dana);
}

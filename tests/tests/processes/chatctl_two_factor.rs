//! chatctl with accounts that have two-factor login (spec section 17): `login` without a code
//! says how to give one (exit 3), takes it from `--two-factor-code` or
//! `CHATCTL_TWO_FACTOR_CODE` (a recovery code too), refuses a used one; and an admin turns off
//! a user's two-factor login with `users disable-two-factor`.

use tests::authenticator::Authenticator;
use tests::client::{PASSWORD, connect};
use tests::server::TestServer;

use crate::chatctl::{
    assert_status, chatctl, server_flags, server_with_users, stable_json, stderr,
};

/// Turns on two-factor login for `name` through the SDK; its authenticator and recovery codes.
async fn turn_on(server: &TestServer, name: &str) -> (Authenticator, Vec<String>) {
    let client = connect(server).await;
    client.login(name, PASSWORD, "setup").await.expect("login");
    let on = tests::authenticator::turn_on(&client, PASSWORD).await;
    client.close().await;
    (on.app, on.recovery_codes)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_with_two_factor_login_gives_the_code_and_turns_off_a_users() {
    let (server, _root_id, alice_id) = server_with_users().await;
    let (root_app, root_recovery) = turn_on(&server, "root").await;
    turn_on(&server, "alice").await;
    let home = tempfile::tempdir().expect("home");
    let home = home.path();
    let flags = server_flags(&server);
    let login = |extra: &[&'static str]| {
        let mut args: Vec<String> = vec!["login".into()];
        args.extend(flags.iter().cloned());
        args.extend(["--user", "root", "--password-stdin"].map(String::from));
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let run_login = async |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        chatctl(home, &[], &args, &format!("{PASSWORD}\n")).await
    };

    let out = run_login(login(&[])).await;
    assert_status(&out, 3);
    assert!(
        stderr(&out).contains("--two-factor-code"),
        "{}",
        stderr(&out)
    );

    let code = root_app.code(root_app.step_now() + 1);
    let mut with_code = login(&["--two-factor-code"]);
    with_code.push(code.clone());
    let out = run_login(with_code.clone()).await;
    assert_status(&out, 0);
    let out = run_login(with_code).await;
    assert_status(&out, 3);
    assert!(stderr(&out).contains("used already"), "{}", stderr(&out));

    // A command that logs in for itself, with a recovery code from the environment.
    let env = [
        ("CHATCTL_PASSWORD", PASSWORD),
        ("CHATCTL_TWO_FACTOR_CODE", root_recovery[0].as_str()),
    ];
    let mut args: Vec<&str> = vec!["users", "disable-two-factor", "alice", "--yes", "--json"];
    args.extend(flags.iter().map(String::as_str));
    args.extend(["--user", "root"]);
    let out = chatctl(home, &env, &args, "").await;
    assert_status(&out, 0);
    insta::assert_snapshot!("users_disable_two_factor", stable_json(&out));
    let alice = server.store().two_factor(alice_id).await.expect("read");
    assert_eq!(alice, None, "alice's secret is gone");
    connect(&server)
        .await
        .login("alice", PASSWORD, "t")
        .await
        .expect("alice logs in with her password alone");

    // Turning it off again is a conflict, not a success.
    let env = [
        ("CHATCTL_PASSWORD", PASSWORD),
        ("CHATCTL_TWO_FACTOR_CODE", root_recovery[1].as_str()),
    ];
    let out = chatctl(home, &env, &args, "").await;
    assert_status(&out, 1);
    assert!(stderr(&out).contains("not on"), "{}", stderr(&out));
}

//! The errors of section 9.12 (email verification and account recovery), on servers of their
//! own that send email (through a real Mailpit): each throttled case spends a budget (per user
//! like `change_password`, or the login budgets) that the main table's users need.

use std::collections::BTreeSet;

use tests::mailpit::{Mailpit, SmtpMode};

use super::*;

fn verify(code: &str) -> Kind {
    Kind::VerifyEmail(pb::VerifyEmail { code: code.into() })
}

fn change(password: &str, new_email: &str) -> Kind {
    Kind::ChangeEmail(pb::ChangeEmail {
        password: password.into(),
        new_email: new_email.into(),
    })
}

fn forgot(account: &str) -> Kind {
    Kind::RequestPasswordReset(pb::RequestPasswordReset {
        account: account.into(),
    })
}

fn reset(account: &str, code: &str, new_password: &str) -> Kind {
    Kind::ResetPassword(pb::ResetPassword {
        account: account.into(),
        code: code.into(),
        new_password: new_password.into(),
    })
}

fn again() -> Kind {
    Kind::RequestEmailVerification(pb::RequestEmailVerification {})
}

async fn start(mailpit: &Mailpit, limits: &[&str]) -> TestServer {
    let mut args = mailpit.chatd_args(SmtpMode::Starttls);
    args.extend(limits.iter().map(|l| (*l).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    TestServer::start_with(&args).await
}

/// Runs every case; adds the (request, code) pairs answered as section 9 says to `covered`, and
/// a line to `wrong` for each other answer.
pub(super) async fn check(covered: &mut BTreeSet<(String, String)>, wrong: &mut Vec<String>) {
    let mailpit = Mailpit::start(SmtpMode::Starttls).await;
    // The address budget generous, the per-user and per-account ones the defaults' 5.
    let server = start(
        &mailpit,
        &[
            "--limit-login-address=1/s burst 1000",
            "--limit-login-account-address=1/m burst 5",
        ],
    )
    .await;
    let (una, _) = user(&server, "una").await;
    let (vic, vic_auth) = user(&server, "vic").await;
    let (wes, _) = user(&server, "wes").await;
    let (xia, _) = user(&server, "xia").await;
    let anon = Client::connect(config(&server)).await.expect("connect");
    server
        .store()
        .mark_email_verified(id(&vic_auth), "vic@example.test")
        .await
        .expect("verify vic in the store");
    let mut run = async |client: &Client, expected: E, why: &str, kind: Kind| {
        expect(client, expected, why, kind, covered, wrong).await;
    };

    // Sizes and states first: none of these is charged.
    let long_code = "a".repeat(33);
    let long_email = format!("{}@example.test", "a".repeat(250));
    run(
        &una,
        E::TooLarge,
        "a code over 32 bytes",
        verify(&long_code),
    )
    .await;
    run(&una, E::InvalidArgument, "no code", verify("")).await;
    run(
        &una,
        E::InvalidArgument,
        "no @",
        change(PASSWORD, "nowhere"),
    )
    .await;
    run(
        &una,
        E::TooLarge,
        "over 254 bytes",
        change(PASSWORD, &long_email),
    )
    .await;
    run(
        &anon,
        E::InvalidArgument,
        "not a username",
        forgot("no such name!"),
    )
    .await;
    run(&anon, E::TooLarge, "over 254 bytes", forgot(&long_email)).await;
    let good = "another good password";
    run(&anon, E::InvalidArgument, "no code", reset("una", "", good)).await;
    run(
        &anon,
        E::TooLarge,
        "a code over 32 bytes",
        reset("una", &long_code, good),
    )
    .await;
    run(
        &anon,
        E::InvalidArgument,
        "a short password",
        reset("una", "abcd-efgh", "short"),
    )
    .await;
    run(
        &anon,
        E::TooLarge,
        "over 254 bytes",
        reset(&long_email, "abcd-efgh", good),
    )
    .await;
    run(&vic, E::Conflict, "verified", again()).await;
    run(&vic, E::Conflict, "verified", verify("abcd-efgh")).await;

    // una: the same address, a check of state made before the password and not charged (with
    // a wrong one, too), then wrong codes until her budget is spent.
    let same = change("not her password", "una@example.test");
    run(&una, E::Conflict, "the same address", same).await;
    for _ in 0..5 {
        run(
            &una,
            E::PermissionDenied,
            "a wrong code",
            verify("abcd-efgh"),
        )
        .await;
    }
    run(&una, E::RateLimited, "budget spent", verify("abcd-efgh")).await;
    // wes: wrong passwords until his budget is spent.
    for _ in 0..5 {
        let wrong_password = change("wrong password", "w@example.test");
        run(&wes, E::PermissionDenied, "wrong password", wrong_password).await;
    }
    run(
        &wes,
        E::RateLimited,
        "budget spent",
        change(PASSWORD, "w@example.test"),
    )
    .await;
    // A reset for an account that does not exist: one answer, until the account's budget from
    // this address is spent.
    for _ in 0..5 {
        run(
            &anon,
            E::PermissionDenied,
            "no such account",
            reset("nobody", "abcd-efgh", good),
        )
        .await;
    }
    run(
        &anon,
        E::RateLimited,
        "budget spent",
        reset("nobody", "abcd-efgh", good),
    )
    .await;

    // xia: new codes until her budget is spent.
    let mut outcome = None;
    for _ in 0..10 {
        if let Err(e) = send(&xia, again()).await {
            outcome = e.code();
            break;
        }
    }
    match outcome {
        Some(E::RateLimited) => {
            covered.insert(("request_email_verification".into(), "RATE_LIMITED".into()));
        }
        other => wrong.push(format!(
            "request_email_verification (budget spent): got {other:?}"
        )),
    }
    // Reset requests are throttled per address only: a server with a small address budget.
    let strict = start(&mailpit, &["--limit-login-address=1/m burst 5"]).await;
    let anon = Client::connect(config(&strict)).await.expect("connect");
    let mut outcome = None;
    for i in 0..10 {
        if let Err(e) = send(&anon, forgot(&format!("someone{i}"))).await {
            outcome = e.code();
            break;
        }
    }
    match outcome {
        Some(E::RateLimited) => {
            covered.insert(("request_password_reset".into(), "RATE_LIMITED".into()));
        }
        other => wrong.push(format!(
            "request_password_reset (address budget spent): got {other:?}"
        )),
    }
}

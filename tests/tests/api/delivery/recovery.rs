//! Email verification and password reset (spec section 18) end to end, through a real Mailpit:
//! the code a registration sends verifies the address and digests then go there; a forgotten
//! password is reset with an emailed code, which revokes every session, works once, and keeps
//! two-factor login on; unknown accounts get the same answer and no email; wrong codes run out;
//! expired codes fail; a changed address is unverified again and the old one is told; and
//! chat-tui's "forgot password" form does the reset.

use std::time::Duration;

use chatproto::client::{Client, ClientEvent};
use chatproto::pb;
use pb::ErrorCode as E;
use tests::authenticator::turn_on;
use tests::client::PASSWORD;
use tests::mailpit::{Mailpit, SmtpMode};
use tests::server::TestServer;

use super::{now_ms, server, set_prefs, within};
use crate::support::{User, assert_code, assert_field, config, group, register};

const VERIFY_SUBJECT: &str = "Your email verification code";
const RESET_SUBJECT: &str = "Your password reset code";
const NEW_PASSWORD: &str = "a brand new password";

/// A server sending email through `mailpit` quickly, with `extra` settings.
async fn email_server(mailpit: &Mailpit, extra: &[&str]) -> TestServer {
    let mut args = mailpit.chatd_args(SmtpMode::Starttls);
    args.push("--delivery-poll=100ms".into());
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    server(&args).await
}

/// A fresh connection, not signed in.
async fn connect(server: &TestServer) -> Client {
    Client::connect(config(server)).await.expect("connect")
}

/// Waits for the `count`th email with `subject` to `to` and returns the code it carries.
async fn code_in_mail(mailpit: &Mailpit, to: &str, subject: &str, count: usize) -> String {
    let mut found = Vec::new();
    let arrived = within(Duration::from_secs(15), async || {
        found = mailpit.messages_to(to).await;
        found.retain(|m| m.subject == subject);
        found.len() >= count
    })
    .await;
    assert!(arrived, "no email {subject:?} #{count} to {to}: {found:?}");
    // Newest first.
    let mail = mailpit.message(&found[0].id).await;
    let code = mail
        .text
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 9 && l.as_bytes()[4] == b'-')
        .unwrap_or_else(|| panic!("no code in {}", mail.text))
        .to_owned();
    assert!(
        mail.html.contains(&format!("<strong>{code}</strong>")),
        "{}",
        mail.html
    );
    assert!(
        mail.header("List-Unsubscribe").is_none(),
        "an account email has nothing to unsubscribe from"
    );
    code
}

async fn emails_with(mailpit: &Mailpit, to: &str, subject: &str) -> usize {
    let mut all = mailpit.messages_to(to).await;
    all.retain(|m| m.subject == subject);
    all.len()
}

fn reset(account: &str, code: &str, password: &str) -> pb::ResetPassword {
    pb::ResetPassword {
        account: account.into(),
        code: code.into(),
        new_password: password.into(),
    }
}

fn forgot(account: &str) -> pb::RequestPasswordReset {
    pb::RequestPasswordReset {
        account: account.into(),
    }
}

async fn verified(user: &User) -> bool {
    user.client
        .get_me(pb::GetMe {})
        .await
        .expect("get_me")
        .email_verified
}

/// Register: the verification email arrives, its code verifies the address (once), and the
/// digests that an unverified address never got now go there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_address_gets_digests() {
    let mailpit = Mailpit::start(SmtpMode::Starttls).await;
    let server = email_server(&mailpit, &[]).await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let address = "bob@example.test";
    let code = code_in_mail(&mailpit, address, VERIFY_SUBJECT, 1).await;
    assert!(!verified(&bob).await);

    // Unverified: a digest finds no address it may use.
    let chat = group(&alice, pb::ChatKind::Group, "crew", &[&bob]).await;
    set_prefs(
        &bob,
        pb::NotificationPrefs {
            email: true,
            email_digest_minutes: 15,
            ..Default::default()
        },
    )
    .await;
    let (bob_id, bob_client) = (bob.id, bob.client);
    alice.send(chat.id, "@bob before").await;
    let mut later = now_ms() + 16 * 60_000;
    server.deliver_as_of(later).await;
    server.deliver_as_of(later).await;
    assert_eq!(
        mailpit.messages_to(address).await.len(),
        1,
        "only the verification email"
    );

    let me = bob_client
        .verify_email(pb::VerifyEmail {
            code: code.to_uppercase().replace('-', " "),
        })
        .await
        .expect("verify");
    assert!(me.email_verified && me.id == bob_id);
    assert_code(
        bob_client.verify_email(pb::VerifyEmail { code }).await,
        E::Conflict,
    );
    let stored = server.store().user(bob_id).await.expect("read");
    assert!(stored.expect("bob").email_verified);
    bob_client.close().await;
    alice.send(chat.id, "@bob after").await;
    let arrived = within(Duration::from_secs(20), async || {
        later += 16 * 60_000;
        server.deliver_as_of(later).await;
        mailpit.messages_to(address).await.len() >= 2
    })
    .await;
    assert!(arrived, "no digest to the verified address");
}

/// Forgot password: the code comes by email and resets the password once; every session is
/// revoked (a connected client is told), the old password is refused, the new one works, and
/// two-factor login still asks for its code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_code_sets_a_new_password_once_and_revokes_every_session() {
    let mailpit = Mailpit::start(SmtpMode::Starttls).await;
    let server = email_server(&mailpit, &["--email-unverified"]).await;
    let carol = register(&server, "carol").await;
    let other_device = crate::support::device(&server, &carol).await;
    let app = turn_on(&carol.client, PASSWORD).await;
    let tokens = other_device.client.tokens().expect("tokens");

    let anon = connect(&server).await;
    let sent = anon
        .request_password_reset(forgot("carol"))
        .await
        .expect("forgot");
    assert_eq!(sent.valid_for_seconds, 15 * 60);
    let code = code_in_mail(&mailpit, "carol@example.test", RESET_SUBJECT, 1).await;

    anon.reset_password(reset("carol", &code, NEW_PASSWORD))
        .await
        .expect("reset");
    for device in [&carol, &other_device] {
        device
            .wait_for(|e| matches!(e, ClientEvent::SessionRevoked(_)).then_some(()))
            .await;
    }
    // The sessions' refresh tokens and access tokens are dead too.
    assert_code(
        connect(&server).await.refresh(&tokens.refresh_token).await,
        E::Unauthenticated,
    );
    assert_code(
        connect(&server)
            .await
            .authenticate(&tokens.access_token)
            .await,
        E::Unauthenticated,
    );
    let again = connect(&server).await;
    assert_field(
        again
            .reset_password(reset("carol", &code, "yet another password"))
            .await,
        E::PermissionDenied,
        "reset_password.code",
    );
    assert_code(
        connect(&server)
            .await
            .login_with_code("carol", PASSWORD, &app.app.code(app.step), "old")
            .await,
        E::Unauthenticated,
    );
    let no_code = connect(&server)
        .await
        .login("carol", NEW_PASSWORD, "new")
        .await
        .expect_err("two-factor login is still on");
    assert!(no_code.needs_two_factor_code(), "{no_code}");
    connect(&server)
        .await
        .login_with_code("carol", NEW_PASSWORD, &app.app.code(app.step), "new")
        .await
        .expect("the new password with a code");
}

/// An unknown account, an account whose address is unverified and one just sent a code get
/// the same answer as a known one, and no email; wrong codes run out the code; reset by
/// address works like by username.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_reveal_nothing_and_wrong_codes_run_out() {
    let mailpit = Mailpit::start(SmtpMode::Starttls).await;
    // The login budgets generous: what runs out here is the code's own attempts.
    let server = email_server(
        &mailpit,
        &[
            "--limit-login-address=1/s burst 1000",
            "--limit-login-account-address=1/s burst 1000",
        ],
    )
    .await;
    let dave = register(&server, "dave").await;
    let erin = register(&server, "erin").await;
    let frank = register(&server, "frank").await;
    for user in [&dave, &erin] {
        let address = format!("{}@example.test", user.name);
        let code = code_in_mail(&mailpit, &address, VERIFY_SUBJECT, 1).await;
        user.client
            .verify_email(pb::VerifyEmail { code })
            .await
            .expect("verify");
    }
    // Frank's address stays unverified.
    code_in_mail(&mailpit, "frank@example.test", VERIFY_SUBJECT, 1).await;

    let anon = connect(&server).await;
    let answers = [
        anon.request_password_reset(forgot("dave")).await,
        anon.request_password_reset(forgot("nobody")).await,
        anon.request_password_reset(forgot("nobody@example.test"))
            .await,
        anon.request_password_reset(forgot("frank")).await,
        anon.request_password_reset(forgot("dave")).await,
    ];
    let answers: Vec<_> = answers
        .into_iter()
        .map(|a| a.expect("the same answer for all"))
        .collect();
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    let code_dave = code_in_mail(&mailpit, "dave@example.test", RESET_SUBJECT, 1).await;
    let code = code_dave.clone();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        emails_with(&mailpit, "dave@example.test", RESET_SUBJECT).await,
        1,
        "one email a minute per account"
    );
    assert!(mailpit.messages_to("nobody@example.test").await.is_empty());
    assert_eq!(
        emails_with(&mailpit, "frank@example.test", RESET_SUBJECT).await,
        0,
        "not to an unverified address"
    );
    // The same answer for an account that does not exist and a wrong code.
    let nobody = anon
        .reset_password(reset("nobody", &code, NEW_PASSWORD))
        .await;
    let frank_wrong = anon
        .reset_password(reset("frank", &code, NEW_PASSWORD))
        .await;
    let nobody = assert_code(nobody, E::PermissionDenied);
    let frank_wrong = assert_code(frank_wrong, E::PermissionDenied);
    assert_eq!(
        (nobody.message.as_str(), nobody.field.as_str()),
        (frank_wrong.message.as_str(), frank_wrong.field.as_str())
    );

    // Out of attempts: five wrong ones, then the right one fails too. By address this time.
    anon.request_password_reset(forgot("erin@example.test"))
        .await
        .expect("forgot");
    let code = code_in_mail(&mailpit, "erin@example.test", RESET_SUBJECT, 1).await;
    for wrong in [
        "aaaa-aaaa",
        "bbbb-bbbb",
        "cccc-cccc",
        "dddd-dddd",
        "eeee-eeee",
    ] {
        assert_field(
            anon.reset_password(reset("erin@example.test", wrong, NEW_PASSWORD))
                .await,
            E::PermissionDenied,
            "reset_password.code",
        );
    }
    assert_field(
        anon.reset_password(reset("erin@example.test", &code, NEW_PASSWORD))
            .await,
        E::PermissionDenied,
        "reset_password.code",
    );
    // Dave's code, untouched by all this, still works.
    anon.reset_password(reset("dave", &code_dave, NEW_PASSWORD))
        .await
        .expect("reset");
    drop(frank);
}

/// A reset code past its lifetime fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_reset_code_fails() {
    let mailpit = Mailpit::start(SmtpMode::Starttls).await;
    let server = email_server(
        &mailpit,
        &["--email-unverified", "--reset-code-lifetime=2s"],
    )
    .await;
    register(&server, "hank").await;
    let anon = connect(&server).await;
    let sent = anon
        .request_password_reset(forgot("hank"))
        .await
        .expect("forgot");
    assert_eq!(sent.valid_for_seconds, 2);
    let code = code_in_mail(&mailpit, "hank@example.test", RESET_SUBJECT, 1).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_field(
        anon.reset_password(reset("hank", &code, NEW_PASSWORD))
            .await,
        E::PermissionDenied,
        "reset_password.code",
    );
}

/// Changing the address needs the password; the new address is unverified and gets a code,
/// the old one is told; a code sent to the old address no longer verifies anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_address_is_verified_again_and_the_old_one_is_told() {
    let mailpit = Mailpit::start(SmtpMode::Starttls).await;
    let server = email_server(&mailpit, &[]).await;
    let gina = register(&server, "gina").await;
    let code = code_in_mail(&mailpit, "gina@example.test", VERIFY_SUBJECT, 1).await;
    gina.client
        .verify_email(pb::VerifyEmail { code })
        .await
        .expect("verify");
    assert_field(
        gina.client
            .change_email(pb::ChangeEmail {
                password: "not the password".into(),
                new_email: "g@example.test".into(),
            })
            .await,
        E::PermissionDenied,
        "change_email.password",
    );
    let me = gina
        .client
        .change_email(pb::ChangeEmail {
            password: PASSWORD.into(),
            new_email: "g@example.test".into(),
        })
        .await
        .expect("change");
    assert_eq!(me.email, "g@example.test");
    assert!(!me.email_verified);
    let told = within(Duration::from_secs(15), async || {
        emails_with(
            &mailpit,
            "gina@example.test",
            "Your email address was changed",
        )
        .await
            == 1
    })
    .await;
    assert!(told, "the old address was not told");
    let code = code_in_mail(&mailpit, "g@example.test", VERIFY_SUBJECT, 1).await;
    let me = gina
        .client
        .verify_email(pb::VerifyEmail { code })
        .await
        .expect("verify the new address");
    assert!(me.email_verified && me.email == "g@example.test");
}

/// chat-tui's "forgot password" form against the server: it asks for a code, the code from the
/// email and a new password set it, and the new password signs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_tui_resets_a_forgotten_password_with_the_emailed_code() {
    use crate::tui::{Tui, key};
    use chat_tui::model::Screen;
    let mailpit = Mailpit::start(SmtpMode::Starttls).await;
    let server = email_server(&mailpit, &["--email-unverified"]).await;
    let ivy = register(&server, "ivy").await;
    let mut tui = Tui::open(&server, "ivy").await;
    tui.type_keys("ivy");
    tui.apply(key("ctrl-f"));
    tui.apply(key("enter"));
    tui.until("a code was asked for", |m| match &m.screen {
        Screen::Auth(form) if form.reset => form.notice.clone(),
        _ => None,
    })
    .await;
    let code = code_in_mail(&mailpit, "ivy@example.test", RESET_SUBJECT, 1).await;
    tui.type_keys(&code);
    tui.apply(key("tab"));
    tui.type_keys(NEW_PASSWORD);
    tui.apply(key("enter"));
    tui.until("the password was reset", |m| match &m.screen {
        Screen::Auth(form) if !form.reset => form.notice.clone(),
        _ => None,
    })
    .await;
    // The old session of the SDK client is gone; the form signs in with the new password.
    ivy.wait_for(|e| matches!(e, ClientEvent::SessionRevoked(_)).then_some(()))
        .await;
    tui.type_keys(NEW_PASSWORD);
    tui.apply(key("enter"));
    tui.until("signed in", |m| m.me.is_some().then_some(()))
        .await;
    assert_eq!(tui.model.me.as_ref().map(|me| me.id), Some(ivy.id));
}

//! The errors of section 9.11 (two-factor login) and `admin_disable_two_factor`, on a server of
//! their own: their cases need users with a pending secret or with two-factor login on, and
//! each spends a budget of its own (per user, like `change_password`) that the main table's
//! users need for their own cases.

use std::collections::BTreeSet;

use tests::authenticator::{Authenticator, turn_on};

use super::*;

fn begin(password: &str) -> Kind {
    Kind::BeginTwoFactor(pb::BeginTwoFactor {
        password: password.into(),
    })
}

fn enable(code: &str) -> Kind {
    Kind::EnableTwoFactor(pb::EnableTwoFactor { code: code.into() })
}

fn disable(code: &str) -> Kind {
    Kind::DisableTwoFactor(pb::DisableTwoFactor { code: code.into() })
}

fn regenerate(code: &str) -> Kind {
    Kind::RegenerateRecoveryCodes(pb::RegenerateRecoveryCodes { code: code.into() })
}

/// Runs every case; adds the (request, code) pairs answered as section 9 says to `covered`, and
/// a line to `wrong` for each other answer.
pub(super) async fn check(covered: &mut BTreeSet<(String, String)>, wrong: &mut Vec<String>) {
    // Every budget but the per-user one generous, so that the last cases spend exactly that.
    let server = TestServer::start_with(&[
        "--limit-login-address=1/s burst 1000",
        "--limit-login-account-address=1/m burst 5",
    ])
    .await;
    let (xena, xena_auth) = user(&server, "xena").await;
    let (yuri, _) = user(&server, "yuri").await;
    let (zoe, _) = user(&server, "zoe").await;
    let (root, root_auth) = user(&server, "root").await;
    server
        .store()
        .set_role(id(&root_auth), pb::Role::Admin, None)
        .await
        .expect("make root an admin");
    let xena_id = id(&xena_auth);
    let mut run = async |client: &Client, expected: E, why: &str, kind: Kind| {
        expect(client, expected, why, kind, covered, wrong).await;
    };

    // Sizes and states first: none of these is charged.
    let long = "1".repeat(33);
    run(&xena, E::TooLarge, "a code over 32 bytes", enable(&long)).await;
    run(&xena, E::TooLarge, "a code over 32 bytes", disable(&long)).await;
    run(
        &xena,
        E::TooLarge,
        "a code over 32 bytes",
        regenerate(&long),
    )
    .await;
    run(
        &xena,
        E::FailedPrecondition,
        "nothing pending",
        enable("123456"),
    )
    .await;
    run(&xena, E::FailedPrecondition, "not on", disable("123456")).await;
    run(&xena, E::FailedPrecondition, "not on", regenerate("123456")).await;
    let admin_disable =
        || Kind::AdminDisableTwoFactor(pb::AdminDisableTwoFactor { user_id: xena_id });
    run(&root, E::Conflict, "not on", admin_disable()).await;
    run(&xena, E::PermissionDenied, "not an admin", admin_disable()).await;
    let nobody = Kind::AdminDisableTwoFactor(pb::AdminDisableTwoFactor { user_id: NONE });
    run(&root, E::NotFound, "no such user", nobody).await;

    // xena: a wrong password, then on (3 of her 5), then wrong codes.
    run(
        &xena,
        E::PermissionDenied,
        "wrong password",
        begin("wrong password"),
    )
    .await;
    let xena_app = turn_on(&xena, PASSWORD).await.app;
    run(&xena, E::Conflict, "on", begin(PASSWORD)).await;
    run(&xena, E::Conflict, "on", enable(&xena_app.wrong_code())).await;
    run(
        &xena,
        E::PermissionDenied,
        "a wrong code",
        disable(&xena_app.wrong_code()),
    )
    .await;
    run(
        &xena,
        E::PermissionDenied,
        "a wrong code",
        regenerate(&xena_app.wrong_code()),
    )
    .await;
    // Her budget is spent: the next that would check a code is refused.
    run(
        &xena,
        E::RateLimited,
        "budget spent",
        disable(&xena_app.wrong_code()),
    )
    .await;
    run(
        &xena,
        E::RateLimited,
        "budget spent",
        regenerate(&xena_app.wrong_code()),
    )
    .await;

    // yuri: pending, a wrong code, then wrong codes until his budget is spent.
    let setup = yuri
        .begin_two_factor(pb::BeginTwoFactor {
            password: PASSWORD.into(),
        })
        .await
        .expect("begin");
    let wrong_code = Authenticator::from_uri(&setup.otpauth_uri).wrong_code();
    for _ in 0..4 {
        let why = "not a code of the pending secret";
        run(&yuri, E::PermissionDenied, why, enable(&wrong_code)).await;
    }
    run(&yuri, E::RateLimited, "budget spent", enable(&wrong_code)).await;

    // zoe: wrong passwords until her budget is spent.
    for _ in 0..5 {
        run(
            &zoe,
            E::PermissionDenied,
            "wrong password",
            begin("wrong password"),
        )
        .await;
    }
    run(
        &zoe,
        E::RateLimited,
        "budget spent",
        begin("wrong password"),
    )
    .await;

    // An admin turns xena's off: then it is off.
    run(
        &root,
        E::FailedPrecondition,
        "nothing to spend",
        regenerate("123456"),
    )
    .await;
    send(&root, admin_disable())
        .await
        .expect("an admin turns it off");
    run(&root, E::Conflict, "off again", admin_disable()).await;
}

//! Access rules (spec 9.6): bans of addresses and ranges refuse new connections when they
//! arrive, expire, and go when removed; allow-list mode lets in only allowed ranges and the
//! server's exempt ones; an admin cannot shut out their own address; non-admins are refused;
//! every change is audited. The clients here connect from different loopback addresses
//! (127.0.0.1, .2, .3) to one server, which exempts only 127.0.0.3.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use chatproto::client::{Client, ClientError};
use chatproto::pb;
use chatproto::pb::AccessRuleKind as Kind;
use chatproto::pb::ErrorCode as E;

use tests::server::TestServer;

use crate::support::{
    User, assert_code, assert_field, register, register_admin, register_with, start_with,
};

/// A connection attempt from `from` (a loopback address) to the server's address, signing
/// nothing in.
async fn connect_from(server: &TestServer, from: &str) -> Result<Client, ClientError> {
    connect_to(server, server.addr(), from).await
}

/// A connection attempt from `from` to `to`, a listening address of the server.
async fn connect_to(
    server: &TestServer,
    to: SocketAddr,
    from: &str,
) -> Result<Client, ClientError> {
    let mut config = tests::client::config_for(to, &server.fingerprint());
    let bind = SocketAddr::new(from.parse::<IpAddr>().expect("address"), 0);
    config.endpoint = Some(chatproto::udp::client_endpoint(bind).expect("bind a client socket"));
    config.retry.connect_timeout = Duration::from_secs(3);
    config.retry.reconnect = false;
    Client::connect(config).await
}

#[track_caller]
fn assert_refused(result: Result<Client, ClientError>) {
    match result {
        Err(ClientError::Connect(why)) => assert!(!why.is_empty()),
        Err(other) => panic!("expected a refused connection, got {other}"),
        Ok(_) => panic!("expected a refused connection, but it was admitted"),
    }
}

fn add(cidr: &str, kind: Kind, expires_in_ms: i64) -> pb::AdminAddAccessRule {
    pb::AdminAddAccessRule {
        cidr: cidr.into(),
        kind: kind as i32,
        reason: format!("test {cidr}"),
        expires_in_ms,
    }
}

fn remove(cidr: &str, kind: Kind) -> pb::AdminRemoveAccessRule {
    pb::AdminRemoveAccessRule {
        cidr: cidr.into(),
        kind: kind as i32,
    }
}

async fn rules(root: &User) -> pb::AccessList {
    root.client
        .admin_list_access_rules(pb::AdminListAccessRules {})
        .await
        .expect("list")
}

async fn server() -> TestServer {
    start_with(&["--access-exempt=127.0.0.3/32"]).await
}

#[tokio::test]
async fn a_ban_refuses_new_connections_from_its_range_until_it_expires_or_is_removed() {
    let server = server().await;
    let root = register_admin(&server, "root").await;
    assert!(connect_from(&server, "127.0.0.2").await.is_ok());

    // Any spelling of an address; the answer is canonical.
    let rule = root
        .client
        .admin_add_access_rule(add("127.0.0.2", Kind::Ban, 0))
        .await
        .expect("ban");
    assert_eq!(
        (rule.cidr.as_str(), rule.kind()),
        ("127.0.0.2/32", Kind::Ban)
    );
    assert_eq!((rule.created_by, rule.expires_at_ms), (root.id, 0));
    assert!(rule.created_at_ms > 0);
    assert_refused(connect_from(&server, "127.0.0.2").await);
    assert!(
        connect_from(&server, "127.0.0.1").await.is_ok(),
        "other addresses"
    );
    assert!(connect_from(&server, "127.0.0.3").await.is_ok(), "exempt");
    let metrics = server.metrics().await;
    assert!(
        metrics.lines().any(|l| l.contains("rejected")
            && l.contains("reason=\"banned\"")
            && l.ends_with(" 1")),
        "{metrics}"
    );

    let listed = rules(&root).await;
    assert!(!listed.allow_list && !listed.more);
    assert_eq!(listed.caller_address, "127.0.0.1");
    assert_eq!(listed.rules, vec![rule]);

    root.client
        .admin_remove_access_rule(remove("127.0.0.2/32", Kind::Ban))
        .await
        .expect("remove");
    assert!(connect_from(&server, "127.0.0.2").await.is_ok(), "removed");
    assert_code(
        root.client
            .admin_remove_access_rule(remove("127.0.0.2", Kind::Ban))
            .await,
        E::NotFound,
    );

    // A ban for a while: refused, then admitted once it expired, and gone from the list.
    let brief = root
        .client
        .admin_add_access_rule(add("127.0.0.0/30", Kind::Ban, 1_500))
        .await;
    // 127.0.0.1 is in that range: the caller's own address.
    assert_code(brief, E::FailedPrecondition);
    root.client
        .admin_add_access_rule(add("127.0.0.2/31", Kind::Ban, 1_500))
        .await
        .expect("a brief ban");
    assert_refused(connect_from(&server, "127.0.0.2").await);
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert!(connect_from(&server, "127.0.0.2").await.is_ok(), "expired");
    assert!(rules(&root).await.rules.is_empty());
}

#[tokio::test]
async fn allow_list_mode_admits_only_allowed_and_exempt_ranges_and_never_shuts_out_its_admin() {
    let server = server().await;
    let root = register_admin(&server, "root").await;
    let on = pb::AdminSetAccessMode { allow_list: true };
    let off = pb::AdminSetAccessMode { allow_list: false };

    // Nothing allows 127.0.0.1, where root asks from.
    assert_code(
        root.client.admin_set_access_mode(on).await,
        E::FailedPrecondition,
    );
    root.client
        .admin_add_access_rule(add("127.0.0.1", Kind::Allow, 0))
        .await
        .expect("allow root's address");
    let answer = root
        .client
        .admin_set_access_mode(on)
        .await
        .expect("allow-list mode");
    assert!(answer.allow_list);
    assert_eq!(answer.rules.len(), 1);
    assert_refused(connect_from(&server, "127.0.0.2").await);
    assert!(connect_from(&server, "127.0.0.1").await.is_ok(), "allowed");
    assert!(connect_from(&server, "127.0.0.3").await.is_ok(), "exempt");
    // A ban still applies to an allowed range.
    root.client
        .admin_add_access_rule(add("127.0.0.0/24", Kind::Allow, 0))
        .await
        .expect("allow the /24");
    assert!(connect_from(&server, "127.0.0.2").await.is_ok());
    root.client
        .admin_add_access_rule(add("127.0.0.2", Kind::Ban, 0))
        .await
        .expect("ban one of them");
    assert_refused(connect_from(&server, "127.0.0.2").await);

    // Taking away the last rule that lets root in is refused; taking one of two is not.
    root.client
        .admin_remove_access_rule(remove("127.0.0.0/24", Kind::Allow))
        .await
        .expect("another rule still allows root");
    assert_code(
        root.client
            .admin_remove_access_rule(remove("127.0.0.1", Kind::Allow))
            .await,
        E::FailedPrecondition,
    );
    root.client
        .admin_set_access_mode(off)
        .await
        .expect("open again");
    root.client
        .admin_remove_access_rule(remove("127.0.0.2", Kind::Ban))
        .await
        .expect("unban");
    assert!(connect_from(&server, "127.0.0.2").await.is_ok(), "open");
}

#[tokio::test]
async fn rules_are_checked_admins_only_and_audited() {
    let server = server().await;
    let root = register_admin(&server, "root").await;
    let alice = register(&server, "alice").await;

    assert_code(
        alice
            .client
            .admin_add_access_rule(add("192.0.2.1", Kind::Ban, 0))
            .await,
        E::PermissionDenied,
    );
    assert_code(
        alice
            .client
            .admin_remove_access_rule(remove("192.0.2.1", Kind::Ban))
            .await,
        E::PermissionDenied,
    );
    assert_code(
        alice
            .client
            .admin_list_access_rules(pb::AdminListAccessRules {})
            .await,
        E::PermissionDenied,
    );
    assert_code(
        alice
            .client
            .admin_set_access_mode(pb::AdminSetAccessMode { allow_list: false })
            .await,
        E::PermissionDenied,
    );
    for bad in [
        "",
        "example.org",
        "10.0.0.1/8",
        "10.0.0.0/33",
        "2001:db8::/129",
        "1.2.3.4/-1",
    ] {
        assert_field(
            root.client
                .admin_add_access_rule(add(bad, Kind::Ban, 0))
                .await,
            E::InvalidArgument,
            "admin_add_access_rule.cidr",
        );
    }
    assert_field(
        root.client
            .admin_add_access_rule(add(&"1".repeat(65), Kind::Ban, 0))
            .await,
        E::TooLarge,
        "admin_add_access_rule.cidr",
    );
    assert_field(
        root.client
            .admin_add_access_rule(add("192.0.2.1", Kind::Unspecified, 0))
            .await,
        E::InvalidArgument,
        "admin_add_access_rule.kind",
    );
    assert_field(
        root.client
            .admin_add_access_rule(add("192.0.2.1", Kind::Ban, -1))
            .await,
        E::InvalidArgument,
        "admin_add_access_rule.expires_in_ms",
    );
    let mut long_reason = add("192.0.2.1", Kind::Ban, 0);
    long_reason.reason = "x".repeat(201);
    assert_field(
        root.client.admin_add_access_rule(long_reason).await,
        E::TooLarge,
        "admin_add_access_rule.reason",
    );

    // IPv6 ranges are stored canonically; the same range again replaces its rule.
    let v6 = root
        .client
        .admin_add_access_rule(add("2001:DB8:0::/32", Kind::Ban, 60_000))
        .await
        .expect("ban an IPv6 range");
    assert_eq!(v6.cidr, "2001:db8::/32");
    root.client
        .admin_add_access_rule(add("2001:db8::/32", Kind::Ban, 0))
        .await
        .expect("again, for good");
    let listed = rules(&root).await;
    assert_eq!(listed.rules.len(), 1);
    assert_eq!(listed.rules[0].expires_at_ms, 0);

    let log = root
        .client
        .admin_list_audit(pb::AdminListAudit {
            subject: "cidr:2001:db8::/32".into(),
            ..Default::default()
        })
        .await
        .expect("audit");
    let seen: Vec<(&str, &str, i32)> = log
        .entries
        .iter()
        .map(|e| (e.action.as_str(), e.detail.as_str(), e.outcome))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("admin_add_access_rule", "kind=ban", 0),
            ("admin_add_access_rule", "kind=ban expires_in_ms=60000", 0),
        ]
    );
    let refused = root
        .client
        .admin_list_audit(pb::AdminListAudit {
            actor_id: alice.id,
            ..Default::default()
        })
        .await
        .expect("audit");
    let actions: Vec<&str> = refused.entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "admin_set_access_mode",
            "admin_remove_access_rule",
            "admin_add_access_rule"
        ],
        "the refused changes, not the refused read"
    );
}

#[tokio::test]
async fn ipv6_addresses_are_banned_and_ipv4_ones_on_a_dual_stack_listener_match_as_ipv4() {
    let server = start_with(&["--access-exempt=none", "--listen=[::]:0"]).await;
    let port = server.addr().port();
    let v4 = SocketAddr::from(([127, 0, 0, 1], port));
    let v6: SocketAddr = format!("[::1]:{port}").parse().expect("address");
    let root = register_with(tests::client::config_for(v4, &server.fingerprint()), "root").await;
    server
        .store()
        .set_role(root.id, pb::Role::Admin, None)
        .await
        .expect("admin");
    // Root's IPv4 address reaches the IPv6 socket mapped, and is matched as IPv4.
    assert_eq!(rules(&root).await.caller_address, "127.0.0.1");

    let rule = root
        .client
        .admin_add_access_rule(add("::1", Kind::Ban, 0))
        .await
        .expect("ban ::1");
    assert_eq!(rule.cidr, "::1/128");
    assert_refused(connect_to(&server, v6, "::1").await);
    assert!(connect_to(&server, v4, "127.0.0.1").await.is_ok());
    // A mapped address is its IPv4 one: this is root's own address.
    assert_code(
        root.client
            .admin_add_access_rule(add("::ffff:127.0.0.1", Kind::Ban, 0))
            .await,
        E::FailedPrecondition,
    );
    root.client
        .admin_remove_access_rule(remove("0:0:0:0:0:0:0:1", Kind::Ban))
        .await
        .expect("remove, spelt otherwise");
    assert!(connect_to(&server, v6, "::1").await.is_ok());
}

//! Conformance cases for who may connect ([`AccessStore`]) and for the schema calls of
//! [`Store`] (`schema_status`, `migrate`, `ensure_indexes`).

use super::*;

fn rule(kind: pb::AccessRuleKind, cidr: &str, expires_at_ms: i64) -> pb::AccessRule {
    pb::AccessRule {
        cidr: cidr.into(),
        kind: kind as i32,
        reason: format!("because {cidr}"),
        created_by: 7,
        created_at_ms: T0,
        expires_at_ms,
    }
}

/// Rules come back as written, by kind then range; one of the same kind and range replaces
/// the other, of another kind stands beside it; removing names kind and range.
pub async fn access_rules_put_list_replace_delete<S: Store + 'static>(s: S) {
    use pb::AccessRuleKind::{Allow, Ban};
    assert!(s.access_rules().await.expect("rules").is_empty());
    let ban = rule(Ban, "203.0.113.0/24", 0);
    let ban6 = rule(Ban, "2001:db8::/32", T0 + 60_000);
    let allow = rule(Allow, "203.0.113.0/24", 0);
    for r in [&ban6, &allow, &ban] {
        s.put_access_rule(r.clone()).await.expect("put");
    }
    assert_eq!(
        s.access_rules().await.expect("rules"),
        vec![ban6.clone(), ban.clone(), allow.clone()],
        "by kind, then range as text"
    );
    let mut longer = ban.clone();
    longer.reason = "again".into();
    longer.expires_at_ms = T0 + 1;
    s.put_access_rule(longer.clone()).await.expect("replace");
    assert_eq!(
        s.access_rules().await.expect("rules"),
        vec![ban6.clone(), longer, allow.clone()]
    );
    s.delete_access_rule(Ban, "203.0.113.0/24")
        .await
        .expect("delete");
    assert_not_found(
        s.delete_access_rule(Ban, "203.0.113.0/24").await,
        "access rule",
    );
    assert_not_found(
        s.delete_access_rule(Allow, "2001:db8::/32").await,
        "access rule",
    );
    assert_eq!(s.access_rules().await.expect("rules"), vec![ban6, allow]);
}

/// Expired rules go, those that never expire and those still running stay.
pub async fn access_rules_expire<S: Store + 'static>(s: S) {
    use pb::AccessRuleKind::{Allow, Ban};
    s.put_access_rule(rule(Ban, "198.51.100.7/32", T0 - 1))
        .await
        .expect("put");
    s.put_access_rule(rule(Ban, "198.51.100.8/32", T0))
        .await
        .expect("put");
    s.put_access_rule(rule(Ban, "198.51.100.9/32", T0 + 1))
        .await
        .expect("put");
    s.put_access_rule(rule(Allow, "10.0.0.0/8", 0))
        .await
        .expect("put");
    assert_eq!(s.delete_expired_access_rules(T0).await.expect("expire"), 2);
    let left: Vec<String> = s
        .access_rules()
        .await
        .expect("rules")
        .into_iter()
        .map(|r| r.cidr)
        .collect();
    assert_eq!(left, ["198.51.100.9/32", "10.0.0.0/8"]);
    assert_eq!(s.delete_expired_access_rules(T0).await.expect("again"), 0);
}

/// Allow-list mode is off until set, then reads back as set.
pub async fn access_allow_list_mode<S: Store + 'static>(s: S) {
    assert!(!s.allow_list_mode().await.expect("mode"));
    s.set_allow_list_mode(true).await.expect("on");
    assert!(s.allow_list_mode().await.expect("mode"));
    s.set_allow_list_mode(true).await.expect("on again");
    s.set_allow_list_mode(false).await.expect("off");
    assert!(!s.allow_list_mode().await.expect("mode"));
}

/// A store is opened at the latest schema version with every index; migrating and ensuring
/// indexes again change nothing and say so.
pub async fn schema_is_current_and_calls_are_idempotent<S: Store + 'static>(s: S) {
    let status = s.schema_status().await.expect("status");
    assert!(status.latest_version >= 1);
    assert_eq!(status.version, status.latest_version);
    assert_eq!(status.version_before, status.version);
    assert!(status.indexes > 0);
    assert!(status.indexes_missing.is_empty(), "{status:?}");
    let migrated = s.migrate().await.expect("migrate");
    assert!(migrated.applied.is_empty() && migrated.indexes_created.is_empty());
    assert_eq!(migrated.version, status.version);
    let ensured = s.ensure_indexes().await.expect("ensure");
    assert!(ensured.indexes_created.is_empty() && ensured.indexes_missing.is_empty());
    assert_eq!(ensured, status);
}

//! Conformance cases for the admin audit log ([`AuditStore`]).

use super::*;

fn entry(at_ms: i64, actor_id: u64, action: &str, subject: &str) -> NewAuditEntry {
    NewAuditEntry {
        at_ms,
        actor_id,
        address: "192.0.2.7:4433".into(),
        action: action.into(),
        subject: subject.into(),
        detail: format!("by {actor_id}"),
        outcome: pb::ErrorCode::Unspecified,
    }
}

async fn ids<S: Store>(s: &S, query: AuditQuery) -> Vec<u64> {
    let entries = s.audit_entries(query).await.expect("audit entries");
    entries.iter().map(|e| e.id).collect()
}

/// Appended entries come back as written, newest first, with increasing ids, filtered by actor,
/// action, subject and time, and paged backwards by id.
pub async fn audit_append_filter_and_page<S: Store + 'static>(s: S) {
    let all = |limit| AuditQuery {
        limit,
        ..Default::default()
    };
    assert!(ids(&s, all(10)).await.is_empty());
    let mut denied = entry(T0, 9, "admin_delete_user", "user:3");
    denied.outcome = pb::ErrorCode::PermissionDenied;
    let written = [
        entry(T0, 1, "admin_set_role", "user:2"),
        denied,
        entry(T0 + 10, 1, "admin_delete_user", "user:3"),
        entry(T0 + 20, 2, "admin_drain_node", ""),
    ];
    let mut appended = Vec::new();
    for e in written.clone() {
        let stored = s.append_audit(e.clone()).await.expect("append");
        assert_eq!(stored.entry, e);
        appended.push(stored.id);
    }
    assert!(appended.windows(2).all(|w| w[0] < w[1]), "{appended:?}");
    let [a, b, c, d] = appended[..] else {
        unreachable!("four entries were appended")
    };
    let read = s.audit_entries(all(10)).await.expect("audit entries");
    assert_eq!(
        read.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![d, c, b, a]
    );
    assert_eq!(read[2].entry, written[1], "an entry reads back as written");

    let actor = |id| AuditQuery {
        actor_id: Some(id),
        ..all(10)
    };
    assert_eq!(ids(&s, actor(1)).await, vec![c, a]);
    assert_eq!(ids(&s, actor(5)).await, Vec::<u64>::new());
    let action = AuditQuery {
        action: Some("admin_delete_user".into()),
        ..all(10)
    };
    assert_eq!(ids(&s, action).await, vec![c, b]);
    let subject = AuditQuery {
        subject: Some("user:2".into()),
        ..all(10)
    };
    assert_eq!(ids(&s, subject).await, vec![a]);
    let since = AuditQuery {
        since_ms: Some(T0 + 10),
        ..all(10)
    };
    assert_eq!(ids(&s, since).await, vec![d, c]);
    let combined = AuditQuery {
        actor_id: Some(1),
        action: Some("admin_delete_user".into()),
        ..all(10)
    };
    assert_eq!(ids(&s, combined).await, vec![c]);

    // Paging backwards from the newest.
    assert_eq!(ids(&s, all(2)).await, vec![d, c]);
    let older = AuditQuery {
        before_id: Some(c),
        ..all(2)
    };
    assert_eq!(ids(&s, older).await, vec![b, a]);
    let none = AuditQuery {
        before_id: Some(a),
        ..all(2)
    };
    assert!(ids(&s, none).await.is_empty());
    assert!(ids(&s, all(0)).await.is_empty());
}

/// Entries appended at the same time all get distinct ids.
pub async fn audit_concurrent_appends<S: Store + 'static>(s: S) {
    let s = std::sync::Arc::new(s);
    let mut tasks = Vec::new();
    for n in 0..8u64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.append_audit(entry(T0, n, "admin_set_role", "user:1"))
                .await
                .expect("append")
                .id
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.expect("task"));
    }
    got.sort_unstable();
    got.dedup();
    assert_eq!(got.len(), 8);
    let listed = AuditQuery {
        limit: 100,
        ..Default::default()
    };
    assert_eq!(ids(&*s, listed).await.len(), 8);
}

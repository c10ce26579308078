//! Key rings, sans-IO (protocol.md 9.6, "Key rotation"): what a rotation, the end of an overlap
//! and the schedule do to the keys of one kind as the store keeps them ([`KeyRingRecord`]).
//!
//! A ring holds one current key (`retire_at_ms` 0), which signs, and the retiring keys it
//! replaced, which verify until their `retire_at_ms` (the overlap) and are dropped at the next
//! write after it. Kid 0 is the key from before the ring existed (the configured secret, or for
//! refresh tokens the plain hash): it has no stored secret. A new key takes the highest kid plus
//! one, so kids only grow. Every write moves the ring's version on by one, which the store
//! checks (compare-and-set).

use chatproto::pb;

use crate::store::{KeyRingRecord, StoredKey};

/// The kinds of `auth::keys`, in the order of `KeyKind` (the order of listings); the master
/// key's ring, listed after them, is `auth::master_key`'s.
pub const KINDS: [pb::KeyKind; 4] = [
    pb::KeyKind::Tokens,
    pb::KeyKind::Refresh,
    pb::KeyKind::Webhook,
    pb::KeyKind::Turn,
];

/// The kinds whose keys only the server knows (tokens, refresh, master); the secrets of the
/// others are shared with outside parties (webhook receivers, TURN servers): an operator gives
/// them by command, the schedule makes them as text those parties can be given.
pub fn server_made(kind: pb::KeyKind) -> bool {
    matches!(
        kind,
        pb::KeyKind::Tokens | pb::KeyKind::Refresh | pb::KeyKind::Master
    )
}

/// The short name of a kind, as commands, logs and the audit log write it.
pub fn kind_name(kind: pb::KeyKind) -> &'static str {
    match kind {
        pb::KeyKind::Tokens => "tokens",
        pb::KeyKind::Refresh => "refresh",
        pb::KeyKind::Webhook => "webhook",
        pb::KeyKind::Turn => "turn",
        pb::KeyKind::Master => "master",
        pb::KeyKind::Unspecified => "unspecified",
    }
}

/// What `key` is at `now_ms`: current, retiring, or `None` once retired.
pub fn state(key: &StoredKey, now_ms: i64) -> Option<pb::KeyState> {
    match key.retire_at_ms {
        0 => Some(pb::KeyState::Current),
        at if at > now_ms => Some(pb::KeyState::Retiring),
        _ => None,
    }
}

/// The ring after a rotation at `now_ms` to a new key sealed as `sealed`: the current key
/// (kid 0 when there is no ring yet) retires at `now_ms + overlap_ms`, retired keys are dropped,
/// and the new key becomes current.
pub fn rotated(
    ring: Option<&KeyRingRecord>,
    kind: pb::KeyKind,
    sealed: Vec<u8>,
    now_ms: i64,
    overlap_ms: i64,
) -> KeyRingRecord {
    let before = ring.map_or_else(
        || {
            vec![StoredKey {
                kid: 0,
                sealed: Vec::new(),
                created_at_ms: 0,
                retire_at_ms: 0,
            }]
        },
        |r| r.keys.clone(),
    );
    let retire_at = now_ms.saturating_add(overlap_ms.max(1));
    let mut keys: Vec<StoredKey> = before
        .into_iter()
        .filter(|k| state(k, now_ms).is_some())
        .map(|mut k| {
            if k.retire_at_ms == 0 {
                k.retire_at_ms = retire_at;
            }
            k
        })
        .collect();
    let kid = ring
        .and_then(|r| r.keys.iter().map(|k| k.kid).max())
        .unwrap_or(0)
        .saturating_add(1);
    keys.push(StoredKey {
        kid,
        sealed,
        created_at_ms: now_ms,
        retire_at_ms: 0,
    });
    KeyRingRecord {
        kind,
        version: ring.map_or(1, |r| r.version.saturating_add(1)),
        keys,
    }
}

/// The first ring of a kind whose key from before (kid 0) the schedule is to replace: kid 0
/// alone, current, and counted as made at `now_ms`, so that its age is known from then on.
pub fn adopted(kind: pb::KeyKind, now_ms: i64) -> KeyRingRecord {
    KeyRingRecord {
        kind,
        version: 1,
        keys: vec![StoredKey {
            kid: 0,
            sealed: Vec::new(),
            created_at_ms: now_ms,
            retire_at_ms: 0,
        }],
    }
}

/// The ring after the overlap was ended at `now_ms`: only the current key is left; `None` when
/// there is nothing to end (no ring, or no key retiring).
pub fn retired(ring: Option<&KeyRingRecord>) -> Option<KeyRingRecord> {
    let ring = ring?;
    let keys: Vec<StoredKey> = ring
        .keys
        .iter()
        .filter(|k| k.retire_at_ms == 0)
        .cloned()
        .collect();
    (keys.len() < ring.keys.len()).then(|| KeyRingRecord {
        kind: ring.kind,
        version: ring.version.saturating_add(1),
        keys,
    })
}

/// Whether the ring's current key is `interval_ms` old at `now_ms`, so the schedule rotates it.
pub fn due(ring: &KeyRingRecord, now_ms: i64, interval_ms: i64) -> bool {
    ring.keys
        .iter()
        .filter(|k| k.retire_at_ms == 0)
        .all(|k| now_ms.saturating_sub(k.created_at_ms) >= interval_ms)
}

/// The keys of `ring` that still verify at `now_ms`, as listings show them: the current key
/// first, then the retiring ones, newest first.
pub fn view(ring: &KeyRingRecord, now_ms: i64) -> Vec<pb::KeyInfo> {
    let mut keys: Vec<pb::KeyInfo> = ring
        .keys
        .iter()
        .filter_map(|k| {
            state(k, now_ms).map(|s| pb::KeyInfo {
                kid: k.kid,
                state: s as i32,
                created_at_ms: k.created_at_ms,
                retire_at_ms: k.retire_at_ms,
            })
        })
        .collect();
    keys.sort_by_key(|k| (k.retire_at_ms != 0, std::cmp::Reverse(k.kid)));
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000_000;

    #[test]
    fn the_first_rotation_retires_the_key_from_before() {
        let r = rotated(None, pb::KeyKind::Tokens, vec![1; 8], T, 60_000);
        assert_eq!(r.version, 1);
        assert_eq!(
            r.keys
                .iter()
                .map(|k| (k.kid, k.retire_at_ms))
                .collect::<Vec<_>>(),
            [(0, T + 60_000), (1, 0)]
        );
        assert!(r.keys[0].sealed.is_empty());
    }

    #[test]
    fn rotations_retire_the_current_key_and_drop_retired_ones() {
        let one = rotated(None, pb::KeyKind::Refresh, vec![1], T, 1_000);
        let two = rotated(Some(&one), pb::KeyKind::Refresh, vec![2], T + 10, 1_000);
        assert_eq!(two.version, 2);
        let kids = |r: &KeyRingRecord| r.keys.iter().map(|k| k.kid).collect::<Vec<_>>();
        assert_eq!(kids(&two), [0, 1, 2]);
        assert_eq!(two.keys[0].retire_at_ms, T + 1_000, "kept its own end");
        assert_eq!(two.keys[1].retire_at_ms, T + 1_010);
        // After kid 0's end it is dropped at the next write.
        let three = rotated(Some(&two), pb::KeyKind::Refresh, vec![3], T + 1_000, 1_000);
        assert_eq!(kids(&three), [1, 2, 3]);
        let shown: Vec<(u32, i32)> = view(&three, T + 1_000)
            .iter()
            .map(|k| (k.kid, k.state))
            .collect();
        let (cur, ret) = (pb::KeyState::Current as i32, pb::KeyState::Retiring as i32);
        assert_eq!(shown, [(3, cur), (2, ret), (1, ret)]);
        assert_eq!(state(&three.keys[0], T + 1_010), None);
        // Ending the overlap leaves the current key alone.
        let ended = retired(Some(&three)).expect("something retiring");
        assert_eq!((ended.version, kids(&ended)), (4, vec![3]));
        assert_eq!(retired(Some(&ended)), None);
        assert_eq!(retired(None), None);
    }

    #[test]
    fn the_schedule_rotates_a_current_key_of_the_interval_s_age() {
        let r = rotated(None, pb::KeyKind::Tokens, vec![1], T, 10);
        assert!(!due(&r, T + 999, 1_000));
        assert!(due(&r, T + 1_000, 1_000));
        assert!(server_made(pb::KeyKind::Tokens) && !server_made(pb::KeyKind::Turn));
        // A configured secret adopted by the schedule is due one interval after.
        let first = adopted(pb::KeyKind::Turn, T);
        assert!(!due(&first, T + 999, 1_000) && due(&first, T + 1_000, 1_000));
        let next = rotated(Some(&first), pb::KeyKind::Turn, vec![2], T + 1_000, 10);
        assert_eq!(
            next.keys
                .iter()
                .map(|k| (k.kid, k.retire_at_ms))
                .collect::<Vec<_>>(),
            [(0, T + 1_010), (1, 0)]
        );
    }
}

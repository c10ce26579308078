//! Who may connect (protocol.md 9.6, "Access rules"): bans of addresses and CIDR ranges, and
//! allow-list mode, in which only ranges with an allow rule may connect.
//!
//! The rules live in the store ([`AccessStore`](crate::store::AccessStore)), shared by every
//! node. Each node keeps its own snapshot ([`AccessList`]) so that the accept loop decides
//! without a round trip: a node reloads it at once when an admin changes the rules through it,
//! and in cluster mode also every `--access-refresh` (2 s by default), so a change made through
//! one node takes effect on the others within one refresh. (Alone, a node makes every change
//! itself, and reads nothing in the background: such reads would also count as successes in
//! the store's circuit breaker while its writes fail.) Expiry needs no reload: a rule is compared
//! with the clock at each decision, and a reload that finds expired rules removes them from
//! the store.
//!
//! The server's exempt ranges (`--access-exempt`, loopback by default) are always admitted, so
//! an operator on the host itself can always connect and undo a mistake; and the requests
//! refuse a change that would refuse the very address the admin asks from (see
//! [`AccessList::verdict`], which both the accept loop and that check use).
//!
//! A decision is made when a connection arrives, before the TLS handshake: a refused one
//! costs the server one packet (quinn's `refuse`). Connections open before a change stay open.

pub mod cidr;

use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chatproto::pb;
use tokio_util::sync::CancellationToken;

use self::cidr::Cidr;
use crate::clock::now_ms;
use crate::store::{Store, StoreResult};

/// What the server does with a connection from an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It may connect.
    Admit,
    /// A ban covers it.
    Banned,
    /// Allow-list mode is on and no allow rule covers it.
    NotAllowed,
}

impl Verdict {
    /// The metric label of a refusal.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Admit => "admitted",
            Verdict::Banned => "banned",
            Verdict::NotAllowed => "not_allowed",
        }
    }
}

/// One rule as a node matches it.
#[derive(Debug, Clone)]
struct Rule {
    range: Cidr,
    kind: pb::AccessRuleKind,
    /// 0: never.
    expires_at_ms: i64,
}

impl Rule {
    fn live(&self, now_ms: i64) -> bool {
        self.expires_at_ms == 0 || self.expires_at_ms > now_ms
    }
}

/// A snapshot of the rules and the mode.
#[derive(Debug, Clone, Default)]
pub struct AccessList {
    rules: Vec<Rule>,
    allow_list: bool,
}

impl AccessList {
    /// The snapshot of stored `rules` (a stored range that does not parse is skipped and
    /// logged: the requests only store what parses) and the mode.
    pub fn new(rules: &[pb::AccessRule], allow_list: bool) -> Self {
        let rules = rules
            .iter()
            .filter_map(|r| match r.cidr.parse::<Cidr>() {
                Ok(range) => Some(Rule {
                    range,
                    kind: r.kind(),
                    expires_at_ms: r.expires_at_ms,
                }),
                Err(e) => {
                    tracing::warn!(cidr = %r.cidr, error = %e, "a stored access rule does not parse");
                    None
                }
            })
            .collect();
        AccessList { rules, allow_list }
    }

    /// The verdict on `addr` at `now_ms`: an exempt address is admitted; then a live ban
    /// refuses; then, in allow-list mode, only a live allow rule admits.
    pub fn verdict(&self, addr: IpAddr, now_ms: i64, exempt: &[Cidr]) -> Verdict {
        if exempt.iter().any(|e| e.contains(addr)) {
            return Verdict::Admit;
        }
        let covered = |kind: pb::AccessRuleKind| {
            self.rules
                .iter()
                .any(|r| r.kind == kind && r.live(now_ms) && r.range.contains(addr))
        };
        if covered(pb::AccessRuleKind::Ban) {
            Verdict::Banned
        } else if self.allow_list && !covered(pb::AccessRuleKind::Allow) {
            Verdict::NotAllowed
        } else {
            Verdict::Admit
        }
    }
}

/// A node's access list, kept fresh from the store.
pub struct AccessControl {
    store: Arc<dyn Store>,
    current: RwLock<Arc<AccessList>>,
    /// Held through a whole reload: two at once (two admin changes) would otherwise install
    /// their snapshots in any order, the older last.
    reloading: tokio::sync::Mutex<()>,
    exempt: Vec<Cidr>,
    refresh: Duration,
}

impl std::fmt::Debug for AccessControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessControl")
            .field("list", &self.snapshot())
            .field("exempt", &self.exempt)
            .field("refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

impl AccessControl {
    /// Access control over `store`'s rules, admitting `exempt` always, reloading every
    /// `refresh`. Admits everyone until the first [`reload`](Self::reload).
    pub fn new(store: Arc<dyn Store>, exempt: Vec<Cidr>, refresh: Duration) -> Arc<Self> {
        Arc::new(AccessControl {
            store,
            current: RwLock::new(Arc::default()),
            reloading: tokio::sync::Mutex::new(()),
            exempt,
            refresh,
        })
    }

    /// The snapshot decisions are made on now.
    pub fn snapshot(&self) -> Arc<AccessList> {
        self.current
            .read()
            .map_or_else(|e| e.into_inner().clone(), |list| list.clone())
    }

    /// The verdict on a connection from `addr`, now.
    pub fn verdict(&self, addr: IpAddr) -> Verdict {
        self.snapshot().verdict(addr, now_ms(), &self.exempt)
    }

    /// The verdict `list` would give `addr` now (to refuse a change that would lock its own
    /// admin out).
    pub fn verdict_under(&self, list: &AccessList, addr: IpAddr) -> Verdict {
        list.verdict(addr, now_ms(), &self.exempt)
    }

    /// Reads the rules and the mode from the store and makes them the snapshot; expired rules
    /// found on the way are removed from the store (a write only when there are some).
    pub async fn reload(&self) -> StoreResult<()> {
        let _one_at_a_time = self.reloading.lock().await;
        let now = now_ms();
        let mut rules = self.store.access_rules().await?;
        if rules
            .iter()
            .any(|r| r.expires_at_ms != 0 && r.expires_at_ms <= now)
        {
            self.store.delete_expired_access_rules(now).await?;
            rules.retain(|r| r.expires_at_ms == 0 || r.expires_at_ms > now);
        }
        let allow_list = self.store.allow_list_mode().await?;
        let list = Arc::new(AccessList::new(&rules, allow_list));
        match self.current.write() {
            Ok(mut current) => *current = list,
            Err(poisoned) => *poisoned.into_inner() = list,
        }
        Ok(())
    }

    /// Reloads every `refresh` until `stop`; a failed reload keeps the last snapshot (a store
    /// outage neither opens nor closes the door) and is logged.
    pub fn start(self: &Arc<Self>, stop: CancellationToken) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(this.refresh) => {}
                }
                if let Err(e) = this.reload().await {
                    tracing::warn!(error = %e, "cannot reload the access rules; keeping the last ones");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: pb::AccessRuleKind, cidr: &str, expires_at_ms: i64) -> pb::AccessRule {
        pb::AccessRule {
            cidr: cidr.into(),
            kind: kind as i32,
            expires_at_ms,
            ..Default::default()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect(s)
    }

    #[test]
    fn bans_then_the_allow_list_decide_and_exempt_ranges_always_pass() {
        use pb::AccessRuleKind::{Allow, Ban};
        let rules = [
            rule(Ban, "203.0.113.0/24", 0),
            rule(Ban, "2001:db8:bad::/48", 0),
            rule(Ban, "198.51.100.7/32", 1_000),
            rule(Allow, "203.0.113.0/24", 0),
            rule(Allow, "10.0.0.0/8", 0),
        ];
        let exempt: [Cidr; 1] = ["127.0.0.1".parse().expect("exempt")];
        let open = AccessList::new(&rules, false);
        assert_eq!(
            open.verdict(ip("203.0.113.9"), 0, &exempt),
            Verdict::Banned,
            "ban beats allow"
        );
        assert_eq!(
            open.verdict(ip("::ffff:203.0.113.9"), 0, &exempt),
            Verdict::Banned
        );
        assert_eq!(
            open.verdict(ip("2001:db8:bad::1"), 0, &exempt),
            Verdict::Banned
        );
        assert_eq!(
            open.verdict(ip("2001:db8:beef::1"), 0, &exempt),
            Verdict::Admit
        );
        assert_eq!(
            open.verdict(ip("198.51.100.7"), 999, &exempt),
            Verdict::Banned
        );
        assert_eq!(
            open.verdict(ip("198.51.100.7"), 1_000, &exempt),
            Verdict::Admit,
            "expired"
        );
        assert_eq!(open.verdict(ip("8.8.8.8"), 0, &exempt), Verdict::Admit);
        let closed = AccessList::new(&rules, true);
        assert_eq!(closed.verdict(ip("10.1.2.3"), 0, &exempt), Verdict::Admit);
        assert_eq!(
            closed.verdict(ip("8.8.8.8"), 0, &exempt),
            Verdict::NotAllowed
        );
        assert_eq!(
            closed.verdict(ip("127.0.0.1"), 0, &exempt),
            Verdict::Admit,
            "exempt"
        );
        assert_eq!(
            closed.verdict(ip("127.0.0.2"), 0, &exempt),
            Verdict::NotAllowed
        );
        let banned_exempt = AccessList::new(&[rule(Ban, "127.0.0.0/8", 0)], false);
        assert_eq!(
            banned_exempt.verdict(ip("127.0.0.1"), 0, &exempt),
            Verdict::Admit
        );
    }
}

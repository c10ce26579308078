//! The admin audit log: which admin requests are recorded, as what, and `admin_list_audit`.
//!
//! Recording happens in [`dispatch`](super::dispatch), around the handler, so a request is
//! recorded with its outcome whatever path its handler took, refusals of non-admins included:
//! an audit log that only saw successes would miss exactly the probing it exists to show.
//! Reads are not recorded (they change nothing, and monitoring would drown the log in them),
//! except an export of a chat's history and a backup (an admin reading members' messages is
//! exactly what the members would want to know about) and the giving out of shared secrets.
//! A failure to record is logged and counted, never turned into a failure of the request,
//! which has already happened by then.

use chatproto::pb;
use chatproto::pb::request::Kind;
use chatproto::pb::response::Result as Answer;

use crate::conn::ConnCtx;
use crate::error::{ApiError, ApiResult};
use crate::handlers::admin::require_admin;
use crate::handlers::admin_access::kind_name;
use crate::handlers::cursor::IdList;
use crate::handlers::page::Page;
use crate::state::now_ms;
use crate::store::{AuditEntry, AuditQuery, NewAuditEntry};
use crate::validate::{self, FieldError};

/// Longest subject a filter may name, and longest text recorded from a request (a hostile
/// username or node id is cut to this on a character boundary).
const MAX_SUBJECT_BYTES: usize = 64;

/// What an audited request acts on and how: `(subject, detail)`.
type Record = (String, String);

/// `text` cut to [`MAX_SUBJECT_BYTES`] on a character boundary.
fn bounded(text: &str) -> &str {
    let mut end = text.len().min(MAX_SUBJECT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A range as the log records it: canonical when it parses (any spelling of one range is one
/// subject), else as given (cut to the subject's length by the caller).
fn access_subject(raw: &str) -> String {
    raw.trim()
        .parse::<crate::access::cidr::Cidr>()
        .map_or_else(|_| raw.to_owned(), |c| c.to_string())
}

/// A key kind as the log records it (`tokens`, `refresh`, `webhook`, `turn`, or `unknown`);
/// never the secret a rotation carries.
fn key_kind(kind: i32) -> &'static str {
    pb::KeyKind::try_from(kind).map_or("unknown", crate::auth::keyring::kind_name)
}

fn role_name(role: i32) -> &'static str {
    pb::Role::try_from(role).map_or("unknown", |r| r.as_str_name())
}

/// The detail of a retry or purge of dead letters: `all`, or `ids=` and the ids (bounded).
fn dead_letters(ids: &[u64], all: bool) -> String {
    if all {
        return "all".to_owned();
    }
    let list: Vec<String> = ids.iter().map(u64::to_string).collect();
    format!("ids={}", bounded(&list.join(",")))
}

/// The subject and detail of a request that the audit log records, or `None` for one it does
/// not (every kind that is not an admin change, nor an export). The subjects are the ones
/// protocol.md 9.6 lists: `user:ID`, `username:NAME`, `chat:ID`, `chat:ID/seq:SEQ`, `node:ID`,
/// `dead_letters`, `users:all`, `cidr:RANGE`, `access`, `database`, `keys:KIND`.
pub(crate) fn audited(kind: &Kind, this_node: &str) -> Option<Record> {
    let user = |id: u64| format!("user:{id}");
    Some(match kind {
        Kind::AdminSetUserDisabled(r) => (user(r.user_id), format!("disabled={}", r.disabled)),
        Kind::AdminDeleteUser(r) => (user(r.user_id), String::new()),
        Kind::AdminDisableTwoFactor(r) => (user(r.user_id), String::new()),
        Kind::AdminResetPassword(r) => (user(r.user_id), String::new()),
        Kind::AdminSetRole(r) => (user(r.user_id), format!("role={}", role_name(r.role))),
        Kind::AdminRevokeSessions(r) => {
            let which = match r.session_id {
                0 => "all".to_owned(),
                id => id.to_string(),
            };
            (user(r.user_id), format!("session={which}"))
        }
        Kind::AdminCreateUser(r) => (
            format!("username:{}", bounded(&r.username.to_lowercase())),
            format!("role={}", role_name(r.role)),
        ),
        Kind::AdminDeleteMessage(r) => (format!("chat:{}/seq:{}", r.chat_id, r.seq), String::new()),
        Kind::AdminPurgeMessages(r) => {
            let chat = match r.chat_id {
                0 => "all".to_owned(),
                id => id.to_string(),
            };
            let since = match r.since_ms {
                0 => String::new(),
                ms => format!(" since_ms={ms}"),
            };
            (user(r.user_id), format!("chat={chat}{since}"))
        }
        Kind::AdminExportHistory(r) => (
            format!("chat:{}", r.chat_id),
            format!("after_seq={}", r.after_seq),
        ),
        Kind::AdminRetryDeadLetters(r) => ("dead_letters".to_owned(), dead_letters(&r.ids, r.all)),
        Kind::AdminPurgeDeadLetters(r) => ("dead_letters".to_owned(), dead_letters(&r.ids, r.all)),
        Kind::AdminBackup(_) => (format!("node:{}", bounded(this_node)), String::new()),
        Kind::AdminAddAccessRule(r) => {
            let expiry = match r.expires_in_ms {
                0 => String::new(),
                ms => format!(" expires_in_ms={ms}"),
            };
            (
                format!("cidr:{}", bounded(&access_subject(&r.cidr))),
                format!("kind={}{expiry}", kind_name(r.kind)),
            )
        }
        Kind::AdminRemoveAccessRule(r) => (
            format!("cidr:{}", bounded(&access_subject(&r.cidr))),
            format!("kind={}", kind_name(r.kind)),
        ),
        Kind::AdminSetAccessMode(r) => {
            ("access".to_owned(), format!("allow_list={}", r.allow_list))
        }
        Kind::AdminDbMigrate(_) | Kind::AdminDbEnsureIndexes(_) => {
            ("database".to_owned(), String::new())
        }
        Kind::AdminRotateKey(r) => (format!("keys:{}", key_kind(r.kind)), String::new()),
        Kind::AdminGetKeySecrets(r) => (
            format!("keys:{}", key_kind(r.kind)),
            "secrets given".to_owned(),
        ),
        Kind::AdminRetireKeys(r) => (
            format!("keys:{}", key_kind(r.kind)),
            "overlap ended".to_owned(),
        ),
        Kind::AdminBroadcast(r) => (
            "users:all".to_owned(),
            format!("chars={}", r.text.chars().count()),
        ),
        Kind::AdminDrainNode(r) => {
            let node = if r.node_id.is_empty() {
                this_node
            } else {
                &r.node_id
            };
            (format!("node:{}", bounded(node)), String::new())
        }
        _ => return None,
    })
}

/// Records an audited request with its outcome (see the module doc for why a failure here is
/// only logged).
pub(crate) async fn record(
    ctx: &ConnCtx,
    action: &str,
    (subject, detail): Record,
    outcome: &ApiResult<Answer>,
) {
    let entry = NewAuditEntry {
        at_ms: now_ms(),
        actor_id: ctx.principal_opt().map_or(0, |p| p.user_id),
        address: ctx.remote.to_string(),
        action: action.to_owned(),
        subject,
        detail,
        outcome: outcome
            .as_ref()
            .map_or_else(|e| e.code, |_| pb::ErrorCode::Unspecified),
    };
    if let Err(e) = ctx.state.store.append_audit(entry.clone()).await {
        ctx.state.metrics.audit_lost();
        tracing::error!(
            error = %e,
            action = %entry.action,
            subject = %entry.subject,
            actor = entry.actor_id,
            "an admin action could not be written to the audit log"
        );
    }
}

/// AdminListAudit: the audit log, newest first, filtered and paged.
pub async fn admin_list_audit(ctx: &ConnCtx, req: pb::AdminListAudit) -> ApiResult<Answer> {
    require_admin(ctx).await?;
    if !req.action.is_empty() && !chatproto::request::NAMES.contains(&req.action.as_str()) {
        return Err(ApiError::invalid(
            "admin_list_audit.action",
            "not a request kind",
        ));
    }
    if req.subject.len() > MAX_SUBJECT_BYTES {
        return Err(FieldError::too_large(
            "admin_list_audit.subject",
            format!("a subject has at most {MAX_SUBJECT_BYTES} bytes"),
        )
        .into());
    }
    let limit = validate::page_limit("admin_list_audit.limit", req.limit)?;
    let before_id = IdList::Audit.decode("admin_list_audit.cursor", &req.cursor)?;
    let query = AuditQuery {
        actor_id: (req.actor_id != 0).then_some(req.actor_id),
        action: (!req.action.is_empty()).then_some(req.action),
        subject: (!req.subject.is_empty()).then_some(req.subject),
        since_ms: (req.since_ms != 0).then_some(req.since_ms),
        before_id: (before_id != 0).then_some(before_id),
        limit: limit + 1,
    };
    let entries = ctx.state.store.audit_entries(query).await?;
    let mut actors: Vec<u64> = entries.iter().map(|e| e.entry.actor_id).collect();
    actors.sort_unstable();
    actors.dedup();
    let names = ctx.state.store.users(&actors).await?;
    let username = |id: u64| {
        names
            .iter()
            .find(|u| u.id == id && !u.deleted)
            .map(|u| u.username.clone())
            .unwrap_or_default()
    };
    let page = Page::fill(
        limit,
        entries
            .into_iter()
            .map(|AuditEntry { id, entry }| pb::AuditEntry {
                id,
                at_ms: entry.at_ms,
                actor_id: entry.actor_id,
                actor_username: username(entry.actor_id),
                address: entry.address,
                action: entry.action,
                subject: entry.subject,
                outcome: entry.outcome as i32,
                detail: entry.detail,
            }),
    )?;
    let next_cursor = match page.items().last() {
        Some(last) if page.more() => IdList::Audit.encode(last.id),
        _ => String::new(),
    };
    Ok(Answer::Audit(pb::AuditLog {
        entries: page.into_items(),
        next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admin_changes_are_audited() {
        macro_rules! audited_names {
            ($({ name: $name:ident, variant: $variant:ident, message: $m:ident, doc: $doc:literal })*) => {
                [$((stringify!($name), audited(&Kind::$variant(Default::default()), "n1").is_some())),*]
            };
        }
        let audited_names: Vec<&str> = chatproto::for_each_request!(audited_names)
            .into_iter()
            .filter_map(|(name, audited)| audited.then_some(name))
            .collect();
        assert!(audited_names.iter().all(|n| n.starts_with("admin_")));
        for read in [
            "admin_list_users",
            "admin_health",
            "admin_stats",
            "admin_list_audit",
        ] {
            assert!(!audited_names.contains(&read), "{read} is a read");
        }
        for change in ["admin_delete_user", "admin_set_role", "admin_drain_node"] {
            assert!(audited_names.contains(&change), "{change} is a change");
        }
        assert!(
            audited_names.contains(&"admin_export_history"),
            "reading a chat's messages is recorded"
        );
    }

    #[test]
    fn recorded_text_from_a_request_is_bounded() {
        let drain = Kind::AdminDrainNode(pb::AdminDrainNode {
            node_id: "é".repeat(100),
        });
        let (subject, _) = audited(&drain, "n1").expect("audited");
        assert!(subject.len() <= "node:".len() + MAX_SUBJECT_BYTES);
        assert!(subject.starts_with("node:é"));
        let own = Kind::AdminDrainNode(pb::AdminDrainNode::default());
        assert_eq!(audited(&own, "n1").expect("audited").0, "node:n1");
        let role = Kind::AdminSetRole(pb::AdminSetRole {
            user_id: 4,
            role: pb::Role::Admin as i32,
        });
        assert_eq!(
            audited(&role, "n1"),
            Some(("user:4".to_owned(), "role=ROLE_ADMIN".to_owned()))
        );
    }
}

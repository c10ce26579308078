//! The admin audit log: [`AuditStore`]. Entries take ids from the `audit` counter, so the log
//! reads newest first by `_id` across every node; the unique `_id` insert is the arbiter where
//! the counter is not atomic (see `counters`).

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::{Document, doc};
use serde::{Deserialize, Serialize};

use super::counters::Sequence;
use super::docs::{i, u};
use super::error::corrupt;
use super::{MongoStore, error};
use crate::store::{AuditEntry, AuditQuery, AuditStore, NewAuditEntry, StoreResult};

/// `audit_log`: one admin action.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct AuditDoc {
    #[serde(rename = "_id")]
    id: i64,
    at_ms: i64,
    actor_id: i64,
    address: String,
    action: String,
    subject: String,
    detail: String,
    outcome: i32,
}

impl AuditDoc {
    fn record(self) -> StoreResult<AuditEntry> {
        let outcome = self
            .outcome
            .try_into()
            .map_err(|_| corrupt("audit_log", format!("unknown outcome {}", self.outcome)))?;
        Ok(AuditEntry {
            id: u(self.id),
            entry: NewAuditEntry {
                at_ms: self.at_ms,
                actor_id: u(self.actor_id),
                address: self.address,
                action: self.action,
                subject: self.subject,
                detail: self.detail,
                outcome,
            },
        })
    }
}

fn filter(q: &AuditQuery) -> Document {
    let mut filter = Document::new();
    if let Some(actor) = q.actor_id {
        filter.insert("actor_id", i(actor));
    }
    if let Some(action) = &q.action {
        filter.insert("action", action);
    }
    if let Some(subject) = &q.subject {
        filter.insert("subject", subject);
    }
    if let Some(since) = q.since_ms {
        filter.insert("at_ms", doc! { "$gte": since });
    }
    if let Some(before) = q.before_id {
        filter.insert("_id", doc! { "$lt": i(before) });
    }
    filter
}

#[async_trait]
impl AuditStore for MongoStore {
    async fn append_audit(&self, entry: NewAuditEntry) -> StoreResult<AuditEntry> {
        self.deadline(async {
            let mut stored = AuditDoc {
                id: 0,
                at_ms: entry.at_ms,
                actor_id: i(entry.actor_id),
                address: entry.address.clone(),
                action: entry.action.clone(),
                subject: entry.subject.clone(),
                detail: entry.detail.clone(),
                outcome: entry.outcome as i32,
            };
            loop {
                stored.id = self.next_id(Sequence::Audit).await?;
                match self.c.audit.insert_one(&stored).await {
                    Ok(_) => {
                        return Ok(AuditEntry {
                            id: u(stored.id),
                            entry,
                        });
                    }
                    // The id was handed out twice (see `counters`): take another.
                    Err(e) if error::is_duplicate(&e) => {}
                    Err(e) => return Err(error::map(e)),
                }
            }
        })
        .await
    }

    async fn audit_entries(&self, query: AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        self.deadline(async {
            let docs: Vec<AuditDoc> = self
                .c
                .audit
                .find(filter(&query))
                .sort(doc! { "_id": -1 })
                .limit(i64::from(query.limit))
                .await
                .map_err(error::map)?
                .try_collect()
                .await
                .map_err(error::map)?;
            docs.into_iter().map(AuditDoc::record).collect()
        })
        .await
    }
}

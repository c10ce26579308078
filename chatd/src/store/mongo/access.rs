//! Who may connect: [`AccessStore`]. A rule is one document of `access_rules` whose `_id` is
//! its kind and range (`"1:203.0.113.0/24"`), so a rule of the same kind and range replaces it;
//! the wire's `AccessRule` is kept as binary, with kind, range and expiry as fields to sort and
//! delete by. Allow-list mode is the `allow_list` document of `server_settings`.

use async_trait::async_trait;
use chatproto::pb;
use mongodb::bson::{Binary, Document, doc};
use prost::Message as _;
use serde::{Deserialize, Serialize};

use super::docs::encode;
use super::error::corrupt;
use super::{MongoStore, error, find_all};
use crate::store::{AccessStore, StoreError, StoreResult};

/// The `server_settings` document of allow-list mode.
const ALLOW_LIST: &str = "allow_list";

/// `access_rules`: one rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct AccessRuleDoc {
    #[serde(rename = "_id")]
    id: String,
    kind: i32,
    cidr: String,
    expires_at_ms: i64,
    body: Binary,
}

fn key(kind: i32, cidr: &str) -> String {
    format!("{kind}:{cidr}")
}

#[async_trait]
impl AccessStore for MongoStore {
    async fn put_access_rule(&self, rule: pb::AccessRule) -> StoreResult<()> {
        self.deadline(async {
            let id = key(rule.kind, &rule.cidr);
            let stored = AccessRuleDoc {
                id: id.clone(),
                kind: rule.kind,
                cidr: rule.cidr.clone(),
                expires_at_ms: rule.expires_at_ms,
                body: encode(&rule),
            };
            self.c
                .access_rules
                .replace_one(doc! { "_id": id }, stored)
                .upsert(true)
                .await
                .map_err(error::map)?;
            Ok(())
        })
        .await
    }

    async fn delete_access_rule(&self, kind: pb::AccessRuleKind, cidr: &str) -> StoreResult<()> {
        self.deadline(async {
            let result = self
                .c
                .access_rules
                .delete_one(doc! { "_id": key(kind as i32, cidr) })
                .await
                .map_err(error::map)?;
            if result.deleted_count == 0 {
                return Err(StoreError::NotFound("access rule"));
            }
            Ok(())
        })
        .await
    }

    async fn access_rules(&self) -> StoreResult<Vec<pb::AccessRule>> {
        self.deadline(async {
            let docs: Vec<AccessRuleDoc> = find_all(
                &self.c.access_rules,
                doc! {},
                Some(doc! { "kind": 1, "cidr": 1 }),
            )
            .await?;
            docs.into_iter()
                .map(|d| {
                    pb::AccessRule::decode(d.body.bytes.as_slice())
                        .map_err(|e| corrupt("access_rules", e))
                })
                .collect()
        })
        .await
    }

    async fn delete_expired_access_rules(&self, now_ms: i64) -> StoreResult<u64> {
        self.deadline(async {
            let result = self
                .c
                .access_rules
                .delete_many(doc! { "expires_at_ms": { "$gt": 0_i64, "$lte": now_ms } })
                .await
                .map_err(error::map)?;
            Ok(result.deleted_count)
        })
        .await
    }

    async fn allow_list_mode(&self) -> StoreResult<bool> {
        self.deadline(async {
            let found: Option<Document> = self
                .c
                .server_settings
                .find_one(doc! { "_id": ALLOW_LIST })
                .await
                .map_err(error::map)?;
            Ok(found.is_some_and(|d| d.get_bool("value").unwrap_or(false)))
        })
        .await
    }

    async fn set_allow_list_mode(&self, on: bool) -> StoreResult<()> {
        self.deadline(async {
            self.c
                .server_settings
                .replace_one(
                    doc! { "_id": ALLOW_LIST },
                    doc! { "_id": ALLOW_LIST, "value": on },
                )
                .upsert(true)
                .await
                .map_err(error::map)?;
            Ok(())
        })
        .await
    }
}

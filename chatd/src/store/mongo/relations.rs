//! Contacts and blocks: [`RelationStore`] on `contacts` and `blocks`, both one-directional
//! `{owner, target}` documents with a unique `(owner, target)` index.

use async_trait::async_trait;
use mongodb::Collection;
use mongodb::bson::{Document, doc};

use super::docs::{i, u};
use super::{MongoStore, error, find_all};
use crate::store::{RelationStore, StoreResult};

/// Which relation collection.
#[derive(Debug, Clone, Copy)]
enum Relation {
    Contact,
    Block,
}

impl MongoStore {
    fn relation(&self, relation: Relation) -> &Collection<Document> {
        match relation {
            Relation::Contact => &self.c.contacts,
            Relation::Block => &self.c.blocks,
        }
    }

    /// Adds the relation (a no-op when present). Both users must exist.
    async fn add_relation(&self, relation: Relation, owner: u64, target: u64) -> StoreResult<()> {
        self.ensure_user(owner).await?;
        self.ensure_user(target).await?;
        let key = doc! { "owner": i(owner), "target": i(target) };
        let result = self
            .relation(relation)
            .update_one(key.clone(), doc! { "$setOnInsert": key })
            .upsert(true)
            .await;
        match result {
            Ok(_) => Ok(()),
            // A concurrent add inserted it first: present, as asked.
            Err(e) if error::is_duplicate(&e) => Ok(()),
            Err(e) => Err(error::map(e)),
        }
    }

    async fn remove_relation(
        &self,
        relation: Relation,
        owner: u64,
        target: u64,
    ) -> StoreResult<()> {
        self.relation(relation)
            .delete_one(doc! { "owner": i(owner), "target": i(target) })
            .await
            .map_err(error::map)?;
        Ok(())
    }

    /// The `field` values of the relation documents matching `filter`, ascending.
    async fn relation_ids(
        &self,
        relation: Relation,
        filter: Document,
        field: &str,
    ) -> StoreResult<Vec<u64>> {
        let docs: Vec<Document> =
            find_all(self.relation(relation), filter, Some(doc! { field: 1 })).await?;
        docs.iter()
            .map(|d| {
                d.get_i64(field)
                    .map(u)
                    .map_err(|e| error::corrupt("relation", e))
            })
            .collect()
    }
}

#[async_trait]
impl RelationStore for MongoStore {
    async fn add_contact(&self, owner: u64, target: u64) -> StoreResult<()> {
        self.deadline(self.add_relation(Relation::Contact, owner, target))
            .await
    }

    async fn remove_contact(&self, owner: u64, target: u64) -> StoreResult<()> {
        self.deadline(self.remove_relation(Relation::Contact, owner, target))
            .await
    }

    async fn contacts(&self, owner: u64) -> StoreResult<Vec<u64>> {
        self.deadline(self.relation_ids(Relation::Contact, doc! { "owner": i(owner) }, "target"))
            .await
    }

    async fn contact_of(&self, target: u64) -> StoreResult<Vec<u64>> {
        self.deadline(self.relation_ids(Relation::Contact, doc! { "target": i(target) }, "owner"))
            .await
    }

    async fn block(&self, owner: u64, target: u64) -> StoreResult<()> {
        self.deadline(self.add_relation(Relation::Block, owner, target))
            .await
    }

    async fn unblock(&self, owner: u64, target: u64) -> StoreResult<()> {
        self.deadline(self.remove_relation(Relation::Block, owner, target))
            .await
    }

    async fn blocked(&self, owner: u64) -> StoreResult<Vec<u64>> {
        self.deadline(self.relation_ids(Relation::Block, doc! { "owner": i(owner) }, "target"))
            .await
    }

    async fn blocked_by(&self, target: u64) -> StoreResult<Vec<u64>> {
        self.deadline(self.relation_ids(Relation::Block, doc! { "target": i(target) }, "owner"))
            .await
    }

    async fn is_blocked(&self, owner: u64, target: u64) -> StoreResult<bool> {
        self.deadline(async {
            let found = self
                .c
                .blocks
                .find_one(doc! { "owner": i(owner), "target": i(target) })
                .await
                .map_err(error::map)?;
            Ok(found.is_some())
        })
        .await
    }
}

//! Two-factor login: the SQL behind [`TwoFactorStore`](crate::store::TwoFactorStore), with its
//! trait implementation beside it. Each method is one write command, so one savepoint: a code
//! checked and spent by two requests at once is spent by the one the writer runs first.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::convert::{get_u64, sql_u64};
use crate::store::{StoreResult, TwoFactorRecord, TwoFactorStore};

fn record(c: &Connection, user_id: u64) -> StoreResult<Option<TwoFactorRecord>> {
    let user = sql_u64(user_id);
    let found = c
        .prepare_cached("SELECT secret, enabled, last_step FROM two_factor WHERE user_id = ?1")?
        .query_row(params![user], |row| {
            Ok((
                row.get::<_, Vec<u8>>(0)?,
                row.get::<_, bool>(1)?,
                get_u64(row, 2)?,
            ))
        })
        .optional()?;
    let Some((sealed_secret, enabled, last_step)) = found else {
        return Ok(None);
    };
    let left: u32 = c
        .prepare_cached("SELECT count(*) FROM recovery_codes WHERE user_id = ?1")?
        .query_row(params![user], |row| row.get(0))?;
    Ok(Some(TwoFactorRecord {
        sealed_secret,
        enabled,
        last_step,
        recovery_codes_left: left,
    }))
}

fn is_enabled(c: &Connection, user_id: u64) -> StoreResult<bool> {
    Ok(
        c.prepare_cached("SELECT enabled FROM two_factor WHERE user_id = ?1")?
            .query_row(params![sql_u64(user_id)], |row| row.get::<_, bool>(0))
            .optional()?
            .unwrap_or(false),
    )
}

fn stage(c: &Connection, user_id: u64, sealed: &[u8]) -> StoreResult<bool> {
    if is_enabled(c, user_id)? {
        return Ok(false);
    }
    c.prepare_cached(
        "INSERT INTO two_factor (user_id, secret, enabled, last_step) VALUES (?1, ?2, 0, 0) \
         ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret",
    )?
    .execute(params![sql_u64(user_id), sealed])?;
    Ok(true)
}

fn replace_codes(c: &Connection, user_id: u64, hashes: &[String]) -> StoreResult<()> {
    let user = sql_u64(user_id);
    c.prepare_cached("DELETE FROM recovery_codes WHERE user_id = ?1")?
        .execute(params![user])?;
    let mut insert =
        c.prepare_cached("INSERT OR IGNORE INTO recovery_codes (user_id, hash) VALUES (?1, ?2)")?;
    for hash in hashes {
        insert.execute(params![user, hash])?;
    }
    Ok(())
}

fn enable(
    c: &Connection,
    user_id: u64,
    sealed: &[u8],
    step: u64,
    hashes: &[String],
) -> StoreResult<bool> {
    let changed = c
        .prepare_cached(
            "UPDATE two_factor SET enabled = 1, last_step = ?3 \
             WHERE user_id = ?1 AND enabled = 0 AND secret = ?2",
        )?
        .execute(params![sql_u64(user_id), sealed, sql_u64(step)])?;
    if changed == 0 {
        return Ok(false);
    }
    replace_codes(c, user_id, hashes)?;
    Ok(true)
}

fn spend_step(c: &Connection, user_id: u64, step: u64) -> StoreResult<bool> {
    let changed = c
        .prepare_cached(
            "UPDATE two_factor SET last_step = ?2 \
             WHERE user_id = ?1 AND enabled = 1 AND last_step < ?2",
        )?
        .execute(params![sql_u64(user_id), sql_u64(step)])?;
    Ok(changed == 1)
}

fn has_code(c: &Connection, user_id: u64, hash: &str) -> StoreResult<bool> {
    if !is_enabled(c, user_id)? {
        return Ok(false);
    }
    Ok(
        c.prepare_cached("SELECT 1 FROM recovery_codes WHERE user_id = ?1 AND hash = ?2")?
            .query_row(params![sql_u64(user_id), hash], |_| Ok(()))
            .optional()?
            .is_some(),
    )
}

fn spend_code(c: &Connection, user_id: u64, hash: &str) -> StoreResult<bool> {
    if !is_enabled(c, user_id)? {
        return Ok(false);
    }
    let removed = c
        .prepare_cached("DELETE FROM recovery_codes WHERE user_id = ?1 AND hash = ?2")?
        .execute(params![sql_u64(user_id), hash])?;
    Ok(removed == 1)
}

fn disable(c: &Connection, user_id: u64) -> StoreResult<bool> {
    let user = sql_u64(user_id);
    let removed = c
        .prepare_cached("DELETE FROM two_factor WHERE user_id = ?1 AND enabled")?
        .execute(params![user])?;
    if removed == 0 {
        return Ok(false);
    }
    c.prepare_cached("DELETE FROM recovery_codes WHERE user_id = ?1")?
        .execute(params![user])?;
    Ok(true)
}

#[async_trait]
impl TwoFactorStore for SqliteStore {
    async fn two_factor(&self, user_id: u64) -> StoreResult<Option<TwoFactorRecord>> {
        self.read(move |c| record(c, user_id)).await
    }

    async fn stage_two_factor(&self, user_id: u64, sealed_secret: Vec<u8>) -> StoreResult<bool> {
        self.write(move |c| stage(c, user_id, &sealed_secret)).await
    }

    async fn enable_two_factor(
        &self,
        user_id: u64,
        sealed_secret: Vec<u8>,
        step: u64,
        recovery_hashes: Vec<String>,
    ) -> StoreResult<bool> {
        self.write(move |c| enable(c, user_id, &sealed_secret, step, &recovery_hashes))
            .await
    }

    async fn spend_two_factor_step(&self, user_id: u64, step: u64) -> StoreResult<bool> {
        self.write(move |c| spend_step(c, user_id, step)).await
    }

    async fn has_recovery_code(&self, user_id: u64, hash: &str) -> StoreResult<bool> {
        let hash = hash.to_owned();
        self.read(move |c| has_code(c, user_id, &hash)).await
    }

    async fn spend_recovery_code(&self, user_id: u64, hash: &str) -> StoreResult<bool> {
        let hash = hash.to_owned();
        self.write(move |c| spend_code(c, user_id, &hash)).await
    }

    async fn replace_recovery_codes(
        &self,
        user_id: u64,
        recovery_hashes: Vec<String>,
    ) -> StoreResult<bool> {
        self.write(move |c| {
            if !is_enabled(c, user_id)? {
                return Ok(false);
            }
            replace_codes(c, user_id, &recovery_hashes)?;
            Ok(true)
        })
        .await
    }

    async fn disable_two_factor(&self, user_id: u64) -> StoreResult<bool> {
        self.write(move |c| disable(c, user_id)).await
    }
}

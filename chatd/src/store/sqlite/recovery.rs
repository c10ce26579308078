//! Email verification and password reset: the SQL behind
//! [`RecoveryStore`](crate::store::RecoveryStore), with its trait implementation beside it. Each
//! method is one write command, so one savepoint: of two redemptions of one code, the writer
//! runs one first, and it deletes the code before the other looks.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::convert::sql_u64;
use super::users::{USER_COLUMNS, user_from_row};
use crate::store::{
    CodePurpose, NewAccountCode, RecoveryStore, Redemption, StoreError, StoreResult, UserRecord,
};

fn users_by_email(c: &Connection, email: &str) -> StoreResult<Vec<UserRecord>> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users \
         WHERE email IN (?1, ?2) AND email <> '' AND disabled = 0 AND deleted = 0 ORDER BY id"
    );
    let users = c
        .prepare_cached(&sql)?
        .query_map(params![email, email.to_lowercase()], user_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(users)
}

fn set_email(c: &Connection, user_id: u64, email: &str) -> StoreResult<()> {
    let changed = c
        .prepare_cached(
            "UPDATE users SET email = ?2, email_verified = 0 WHERE id = ?1 AND deleted = 0",
        )?
        .execute(params![sql_u64(user_id), email])?;
    if changed == 0 {
        return Err(StoreError::NotFound("user"));
    }
    Ok(())
}

fn mark_verified(c: &Connection, user_id: u64, email: &str) -> StoreResult<bool> {
    let changed = c
        .prepare_cached(
            "UPDATE users SET email_verified = 1 \
             WHERE id = ?1 AND email = ?2 AND email <> '' AND deleted = 0",
        )?
        .execute(params![sql_u64(user_id), email])?;
    Ok(changed == 1)
}

fn put_code(c: &Connection, code: &NewAccountCode) -> StoreResult<bool> {
    let (user, purpose) = (sql_u64(code.user_id), code.purpose.number());
    let made: Option<i64> = c
        .prepare_cached(
            "SELECT created_at_ms FROM account_codes WHERE user_id = ?1 AND purpose = ?2 \
             AND expires_at_ms > ?3",
        )?
        .query_row(params![user, purpose, code.now_ms], |row| row.get(0))
        .optional()?;
    if made.is_some_and(|made| code.now_ms.saturating_sub(made) < code.resend_gap_ms) {
        return Ok(false);
    }
    c.prepare_cached(
        "INSERT INTO account_codes (user_id, purpose, hash, email, attempts, expires_at_ms, \
             created_at_ms) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6) \
         ON CONFLICT (user_id, purpose) DO UPDATE SET hash = excluded.hash, \
             email = excluded.email, attempts = 0, expires_at_ms = excluded.expires_at_ms, \
             created_at_ms = excluded.created_at_ms",
    )?
    .execute(params![
        user,
        purpose,
        code.hash,
        code.email,
        code.expires_at_ms,
        code.now_ms
    ])?;
    Ok(true)
}

fn redeem(
    c: &Connection,
    user_id: u64,
    purpose: CodePurpose,
    hash: &str,
    now_ms: i64,
    max_attempts: u32,
) -> StoreResult<Redemption> {
    let (user, purpose) = (sql_u64(user_id), purpose.number());
    let live = c
        .prepare_cached(
            "SELECT hash, email, attempts, expires_at_ms FROM account_codes \
             WHERE user_id = ?1 AND purpose = ?2",
        )?
        .query_row(params![user, purpose], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, u32>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })
        .optional()?;
    let Some((stored, email, attempts, expires_at_ms)) = live else {
        return Ok(Redemption::Missing);
    };
    let delete = |c: &Connection| -> StoreResult<()> {
        c.prepare_cached("DELETE FROM account_codes WHERE user_id = ?1 AND purpose = ?2")?
            .execute(params![user, purpose])?;
        Ok(())
    };
    if expires_at_ms <= now_ms || attempts >= max_attempts {
        delete(c)?;
        return Ok(Redemption::Missing);
    }
    if stored == hash {
        delete(c)?;
        return Ok(Redemption::Redeemed { email });
    }
    if attempts.saturating_add(1) >= max_attempts {
        delete(c)?;
    } else {
        c.prepare_cached(
            "UPDATE account_codes SET attempts = attempts + 1 WHERE user_id = ?1 AND purpose = ?2",
        )?
        .execute(params![user, purpose])?;
    }
    Ok(Redemption::Wrong)
}

#[async_trait]
impl RecoveryStore for SqliteStore {
    async fn users_by_email(&self, email: &str) -> StoreResult<Vec<UserRecord>> {
        let email = email.to_owned();
        self.read(move |c| users_by_email(c, &email)).await
    }

    async fn set_email(&self, user_id: u64, email: &str) -> StoreResult<()> {
        let email = email.to_owned();
        self.write(move |c| set_email(c, user_id, &email)).await
    }

    async fn mark_email_verified(&self, user_id: u64, email: &str) -> StoreResult<bool> {
        let email = email.to_owned();
        self.write(move |c| mark_verified(c, user_id, &email)).await
    }

    async fn put_account_code(&self, code: NewAccountCode) -> StoreResult<bool> {
        self.write(move |c| put_code(c, &code)).await
    }

    async fn redeem_account_code(
        &self,
        user_id: u64,
        purpose: CodePurpose,
        hash: &str,
        now_ms: i64,
        max_attempts: u32,
    ) -> StoreResult<Redemption> {
        let hash = hash.to_owned();
        self.write(move |c| redeem(c, user_id, purpose, &hash, now_ms, max_attempts))
            .await
    }
}

//! The storage schema (protocol.md 9.6): its version and indexes (`admin_db_status`), and the
//! two repairs chatd also makes when it starts, asked of a running server: applying missing
//! migrations (`admin_db_migrate`) and creating missing indexes (`admin_db_ensure_indexes`).
//! Both are idempotent; the answer says what they did.

use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::conn::ConnCtx;
use crate::error::ApiResult;
use crate::handlers::admin::require_admin;
use crate::store::SchemaStatus;

fn report(backend: &str, s: SchemaStatus) -> Answer {
    Answer::Schema(pb::SchemaReport {
        backend: backend.to_owned(),
        version_before: s.version_before,
        version: s.version,
        latest_version: s.latest_version,
        applied: s.applied,
        indexes_created: s.indexes_created,
        indexes: s.indexes,
        indexes_missing: s.indexes_missing,
    })
}

/// AdminDbStatus: the schema as it is; changes nothing.
pub async fn admin_db_status(ctx: &ConnCtx, _req: pb::AdminDbStatus) -> ApiResult<Answer> {
    require_admin(ctx).await?;
    let store = &ctx.state.store;
    Ok(report(store.backend(), store.schema_status().await?))
}

/// AdminDbMigrate: the missing migrations, then the missing indexes.
pub async fn admin_db_migrate(ctx: &ConnCtx, _req: pb::AdminDbMigrate) -> ApiResult<Answer> {
    let admin = require_admin(ctx).await?;
    let store = &ctx.state.store;
    let status = store.migrate().await?;
    tracing::info!(admin, applied = ?status.applied, indexes_created = ?status.indexes_created, "schema migrated by an admin");
    Ok(report(store.backend(), status))
}

/// AdminDbEnsureIndexes: the missing indexes.
pub async fn admin_db_ensure_indexes(
    ctx: &ConnCtx,
    _req: pb::AdminDbEnsureIndexes,
) -> ApiResult<Answer> {
    let admin = require_admin(ctx).await?;
    let store = &ctx.state.store;
    let status = store.ensure_indexes().await?;
    tracing::info!(admin, indexes_created = ?status.indexes_created, "indexes ensured by an admin");
    Ok(report(store.backend(), status))
}

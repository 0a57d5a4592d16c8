//! Creating and upgrading the PostgreSQL schema, and refusing what this build cannot read.
//!
//! ## Guarantees
//! - Read access (`Access::ReadExisting`) changes nothing: a database without tether's tables
//!   is "no state store", an older schema asks for `tether migrate`.
//! - Migrations are serialised across processes by an advisory lock and re-read the version
//!   under it; each step commits with its `schema_version` row.
//! - A database whose `min_reader_schema` is above this build's schema is refused.
use tether_core::store::StoreError;
use tokio_postgres::{Client, Row};

use super::{
    decode_err,
    pool::{describe, map_err},
    sql,
};

fn get<T: for<'a> tokio_postgres::types::FromSql<'a>>(
    row: &Row,
    i: usize,
) -> Result<T, StoreError> {
    row.try_get(i).map_err(|e| decode_err("migrate", e))
}

/// Refuses a database whose `min_reader_schema` is newer than this build understands.
async fn check_min_reader(
    client: &impl tokio_postgres::GenericClient,
    location: &str,
) -> Result<(), StoreError> {
    let row = client
        .query_opt(sql::MIN_READER, &[])
        .await
        .map_err(|e| map_err("open", e))?;
    let Some(row) = row else { return Ok(()) };
    let raw: String = get(&row, 0)?;
    let min: i64 = raw.trim().parse().map_err(|_| StoreError::Corrupt {
        location: location.to_string(),
        message: format!("tether_meta.min_reader_schema is not a number: {raw:?}"),
    })?;
    if min > i64::from(sql::LATEST_VERSION) {
        return Err(crate::needs_newer(
            location,
            min,
            i64::from(sql::LATEST_VERSION),
        ));
    }
    Ok(())
}

/// Checks the schema and, for `Access::Write`, creates or upgrades it, serialised across
/// processes by an advisory lock. Read access changes nothing.
pub(crate) async fn migrate(
    client: &mut Client,
    location: &str,
    access: crate::Access,
) -> Result<crate::Migrated, StoreError> {
    let probe = |op| move |e| map_err(op, e);
    let latest = i64::from(sql::LATEST_VERSION);
    // Fast path without locks: an up-to-date database (every open but the first).
    let row = client
        .query_one(sql::PROBE, &[])
        .await
        .map_err(probe("migrate"))?;
    let (has_runs, has_meta, has_version): (bool, bool, bool) =
        (get(&row, 0)?, get(&row, 1)?, get(&row, 2)?);
    if has_runs && !has_meta {
        return Err(StoreError::Corrupt {
            location: location.to_string(),
            message: "the database has a `runs` table but no `tether_meta`: it belongs to \
                      something else; left untouched, use another database"
                .into(),
        });
    }
    let mut before = 0;
    if has_version {
        let row = client
            .query_one(sql::SCHEMA_VERSION, &[])
            .await
            .map_err(probe("migrate"))?;
        before = i64::from(get::<i32>(&row, 0)?);
    }
    if has_meta {
        check_min_reader(client, location).await?;
    }
    if access == crate::Access::ReadExisting {
        if before == 0 || !has_meta {
            return Err(crate::no_store(
                location,
                "the database has no tether tables",
            ));
        }
        if before < latest {
            return Err(crate::needs_migration(location, before, latest));
        }
        return Ok(crate::Migrated {
            before,
            after: before,
        });
    }
    if before >= latest {
        return Ok(crate::Migrated {
            before,
            after: before,
        });
    }
    let tx = client.transaction().await.map_err(probe("migrate"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&sql::MIGRATION_LOCK])
        .await
        .map_err(probe("migrate"))?;
    tx.batch_execute(sql::CREATE_SCHEMA_VERSION)
        .await
        .map_err(probe("migrate"))?;
    let row = tx
        .query_one(sql::SCHEMA_VERSION, &[])
        .await
        .map_err(probe("migrate"))?;
    let v: i32 = get(&row, 0)?;
    if v > 0 {
        // Re-check under the lock: a newer tether may have migrated meanwhile.
        check_min_reader(&tx, location).await?;
    }
    for (i, step) in sql::MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(v).unwrap_or(0))
    {
        tx.batch_execute(step).await.map_err(|e| StoreError::Open {
            location: location.to_string(),
            message: format!(
                "migration to schema version {} failed: {}",
                i + 1,
                describe(&e)
            ),
            source: Some(Box::new(e)),
        })?;
        let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.execute(sql::INSERT_SCHEMA_VERSION, &[&version])
            .await
            .map_err(probe("migrate"))?;
    }
    tx.commit().await.map_err(probe("migrate"))?;
    Ok(crate::Migrated {
        before,
        after: i64::from(v).max(latest),
    })
}

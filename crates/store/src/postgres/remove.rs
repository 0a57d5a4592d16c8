//! `Store::remove_run` and `Store::prune` for PostgreSQL, one statement each.
//!
//! ## Guarantees
//! - The candidates are locked (`FOR UPDATE`) and checked (finished, readable, lease not
//!   alive by the server's clock) in the statement that deletes them with their submissions
//!   and history, so a run rerun or taken meanwhile is never removed, and nothing is removed
//!   by halves. Data-modifying CTEs all see the statement's snapshot: the final `SELECT`
//!   returns the rows as they were before the deletes.
use tether_core::{
    ids::{RunKey, Tag},
    store::{Remove, RemovedRun, RunSummary, StoreError},
};
use tokio_postgres::Row;

use super::{decode_err, PgStore};

/// The columns `PgStore::decode` reads (those of `LIST_RUNS`, no spec body), then the tags.
macro_rules! removed_columns {
    ($t:literal) => {
        concat!(
            $t,
            ".key, ",
            $t,
            ".kind, '' AS spec, ",
            $t,
            ".spec_name, ",
            $t,
            ".spec_hash, ",
            $t,
            ".phase, ",
            $t,
            ".generation, ",
            $t,
            ".tag, ",
            $t,
            ".shape, ",
            $t,
            ".external_id, ",
            $t,
            ".outcome, ",
            $t,
            ".cancel_requested, ",
            $t,
            ".epoch, ",
            $t,
            ".owner, ",
            $t,
            ".lease_expires_at_ms, ",
            $t,
            ".queued, ",
            $t,
            ".created_at_ms, ",
            $t,
            ".updated_at_ms, COALESCE(",
            $t,
            ".owner IS NOT NULL AND ",
            $t,
            ".lease_expires_at_ms > tether_now_ms(), false), ",
            $t,
            ".quarantined, ",
            $t,
            ".placement, (SELECT value FROM tether_meta WHERE name = 'store_id'), ",
            $t,
            ".base_dir, ",
            $t,
            ".instance_base, ARRAY(SELECT s.tag FROM submissions s \
             WHERE s.key = ",
            $t,
            ".key ORDER BY s.generation)"
        )
    };
}

/// Which runs may go: finished, readable, lease not alive.
macro_rules! removable {
    () => {
        "phase = 'finished' AND quarantined IS NULL \
         AND NOT COALESCE(owner IS NOT NULL AND lease_expires_at_ms > tether_now_ms(), false)"
    };
}

/// $1 key. No row: absent, or not removable (read it to say which).
const REMOVE_RUN: &str = concat!(
    "WITH r AS (SELECT key FROM runs WHERE key = $1::text AND ",
    removable!(),
    " FOR UPDATE), \
     h AS (DELETE FROM history WHERE key IN (SELECT key FROM r)), \
     s AS (DELETE FROM submissions WHERE key IN (SELECT key FROM r)), \
     d AS (DELETE FROM runs WHERE key IN (SELECT key FROM r)) \
     SELECT ",
    removed_columns!("x"),
    " FROM runs x WHERE x.key IN (SELECT key FROM r)"
);

/// $1 changed before (ms), $2 dry run. Oldest first.
const PRUNE: &str = concat!(
    "WITH r AS (SELECT key FROM runs WHERE updated_at_ms < $1::bigint AND ",
    removable!(),
    " FOR UPDATE), \
     h AS (DELETE FROM history WHERE NOT $2::boolean AND key IN (SELECT key FROM r)), \
     s AS (DELETE FROM submissions WHERE NOT $2::boolean AND key IN (SELECT key FROM r)), \
     d AS (DELETE FROM runs WHERE NOT $2::boolean AND key IN (SELECT key FROM r)) \
     SELECT ",
    removed_columns!("x"),
    " FROM runs x WHERE x.key IN (SELECT key FROM r) ORDER BY x.updated_at_ms, x.key COLLATE \"C\""
);

impl PgStore {
    fn removed(&self, op: &'static str, r: &Row) -> Result<Option<RemovedRun>, StoreError> {
        let tags: Vec<String> = r.try_get(24).map_err(|e| decode_err(op, e))?;
        // Not decodable: the statement excluded quarantined rows, so this is a row damaged
        // since; it is gone now, as asked, and is not reported as a run.
        Ok(self.decode(r).ok().map(|rec| {
            RemovedRun::new(
                RunSummary::from(&rec),
                tags.into_iter().map(Tag::from_stored).collect(),
            )
        }))
    }

    pub(super) async fn remove_run_impl(&self, key: &RunKey) -> Result<Remove, StoreError> {
        let op = "remove_run";
        let row = self
            .pool
            .query_opt(op, REMOVE_RUN, &[&key.as_str()])
            .await?;
        if let Some(r) = row {
            if let Some(removed) = self.removed(op, &r)? {
                return Ok(Remove::Removed(removed));
            }
        }
        // Nothing removed: absent (NotFound) or not finished / leased.
        Ok(Remove::NotFinished(self.must_get(op, key).await?))
    }

    pub(super) async fn prune_impl(
        &self,
        before_ms: i64,
        dry_run: bool,
    ) -> Result<Vec<RemovedRun>, StoreError> {
        let op = "prune";
        let rows = self.pool.query(op, PRUNE, &[&before_ms, &dry_run]).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.extend(self.removed(op, r)?);
        }
        Ok(out)
    }
}

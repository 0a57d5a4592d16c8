//! `Store::rerun` for PostgreSQL: a finished run becomes a fresh instance of its key.
//!
//! ## Guarantees
//! - One statement: the row is locked and checked (finished, no live lease by the server
//!   clock), reset and logged together; an unfinished run is never touched.
//! - The generation column is kept: the fresh instance submits the generation after it, so its
//!   tags differ from every tag of the earlier instance.
use tether_core::{
    ids::RunKey,
    store::{Rerun, RerunSpec, StoreError},
};

use super::PgStore;
use crate::record::rerun_reason;

/// $1 key, $2 kind, $3 spec, $4 spec_name, $5 spec_hash (NULL: keep the stored spec), $6 the
/// history reason. Returns the fresh run, or nothing if the run is not finished or leased.
const RERUN: &str = concat!(
    "WITH cur AS (
        SELECT key FROM runs
        WHERE key = $1::text AND phase = 'finished'
          AND (owner IS NULL OR lease_expires_at_ms IS NULL OR lease_expires_at_ms <= tether_now_ms())
        FOR UPDATE
    ), u AS (
        UPDATE runs r SET phase = 'empty', outcome = NULL, cancel_requested = false, owner = NULL,
            lease_expires_at_ms = NULL, kind = COALESCE($2::text, r.kind),
            spec = COALESCE($3::text, r.spec), spec_name = COALESCE($4::text, r.spec_name),
            spec_hash = COALESCE($5::text, r.spec_hash), placement = NULL, placement_host = NULL,
            instance_base = r.generation,
            updated_at_ms = tether_now_ms()
        FROM cur WHERE r.key = cur.key
        RETURNING r.*
    ), h AS (
        INSERT INTO history (key, at_ms, epoch, generation, decision, reason)
        SELECT key, tether_now_ms(), epoch, generation, 'rerun', $6::text FROM u
    )
    SELECT ",
    run_columns!(),
    " FROM u"
);

impl PgStore {
    pub(super) async fn rerun_run(
        &self,
        key: &RunKey,
        spec: Option<&RerunSpec>,
    ) -> Result<Rerun, StoreError> {
        let op = "rerun";
        let Some(before) = self.get(op, key).await? else {
            return Err(StoreError::NotFound { key: key.clone() });
        };
        let previous = match &before.journal.phase {
            tether_core::journal::Phase::Finished { outcome } => outcome.label(),
            _ => return Ok(Rerun::NotFinished(before)),
        };
        let reason = rerun_reason(&previous, spec);
        let row = self
            .pool
            .query_opt(
                op,
                RERUN,
                &[
                    &key.as_str(),
                    &spec.map(|s| s.kind.as_str()),
                    &spec.map(|s| s.spec.as_str()),
                    &spec.map(|s| s.spec_name.as_str()),
                    &spec.map(|s| s.spec_hash.as_str()),
                    &reason,
                ],
            )
            .await?;
        match row {
            Some(r) => Ok(Rerun::Fresh(self.run(&r)?)),
            // Changed between the read and the statement (another rerun, a claim): re-read.
            None => match self.get(op, key).await? {
                Some(now) => Ok(Rerun::NotFinished(now)),
                None => Err(StoreError::NotFound { key: key.clone() }),
            },
        }
    }
}

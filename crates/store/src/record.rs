//! Backend-neutral row shapes and their conversion into the core types.
//!
//! Both backends store a run as the same flat set of columns; rebuilding the [`Journal`] from
//! them lives here once, so SQLite and PostgreSQL cannot drift apart in how they read a run.
//!
//! ## Guarantees
//! - A row whose columns contradict each other (phase `submitted` without an external id, an
//!   unknown shape, an outcome that is not valid JSON) is reported as
//!   [`StoreError::Corrupt`], never papered over.
//! - An external id is absent only when the column is NULL: `"0"` and `""` are real ids.
use tether_core::{
    ids::{Epoch, ExternalId, Generation, OwnerId, RunKey, StoreId, Tag},
    journal::{Journal, Outcome, Phase, Shape, Submission},
    placement::Placement,
    store::{RunRecord, StoreError, SubmissionRecord},
};

/// Phase column values.
pub(crate) const PHASE_EMPTY: &str = "empty";
pub(crate) const PHASE_INTENT: &str = "intent";
pub(crate) const PHASE_SUBMITTED: &str = "submitted";
pub(crate) const PHASE_FINISHED: &str = "finished";

/// One `runs` row, as read by either backend.
#[derive(Debug)]
pub(crate) struct RunRow {
    pub key: String,
    pub kind: String,
    pub spec: String,
    pub spec_name: String,
    pub spec_hash: String,
    pub phase: String,
    pub generation: Option<i64>,
    pub tag: Option<String>,
    pub shape: Option<String>,
    pub external_id: Option<String>,
    pub outcome: Option<String>,
    pub cancel_requested: bool,
    pub epoch: i64,
    pub owner: Option<String>,
    pub lease_expires_at_ms: Option<i64>,
    pub queued: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Computed by the backend with its own clock.
    pub lease_alive: bool,
    /// Placement JSON of a host-bound run.
    pub placement: Option<String>,
    /// The store's id (selected with every row: journals derive tags from it).
    pub store_id: String,
    /// The submitter's working directory.
    pub base_dir: Option<String>,
    /// Last generation of the earlier instances (set by a rerun).
    pub instance_base: Option<i64>,
}

/// One `submissions` row.
#[derive(Debug)]
pub(crate) struct SubmissionRow {
    pub generation: i64,
    pub tag: String,
    pub shape: String,
    pub external_id: Option<String>,
    pub outcome: Option<String>,
    pub intent_at_ms: i64,
}

fn corrupt(location: &str, message: String) -> StoreError {
    StoreError::Corrupt {
        location: location.to_string(),
        message,
    }
}

pub(crate) fn parse_key(location: &str, key: String) -> Result<RunKey, StoreError> {
    RunKey::new(key).map_err(|e| corrupt(location, format!("stored run key is invalid: {e}")))
}

pub(crate) fn parse_shape(location: &str, s: &str) -> Result<Shape, StoreError> {
    match s {
        "normal" => Ok(Shape::Normal),
        "recovery" => Ok(Shape::Recovery),
        other => Err(corrupt(
            location,
            format!("unknown submission shape {other:?}"),
        )),
    }
}

pub(crate) fn parse_generation(location: &str, g: i64) -> Result<Generation, StoreError> {
    u32::try_from(g)
        .map(Generation)
        .map_err(|_| corrupt(location, format!("generation {g} out of range")))
}

pub(crate) fn parse_outcome(location: &str, s: &str) -> Result<Outcome, StoreError> {
    serde_json::from_str(s)
        .map_err(|e| corrupt(location, format!("stored outcome is not valid: {e}")))
}

/// The reason of a quarantine, from the decoding error.
pub(crate) fn reason(e: StoreError) -> String {
    match e {
        StoreError::Corrupt { message, .. } => message,
        other => other.to_string(),
    }
}

/// What `get_run` reports for a quarantined run.
pub(crate) fn quarantined_error(
    location: &str,
    q: &tether_core::store::QuarantinedRun,
) -> StoreError {
    corrupt(
        location,
        format!(
            "run {} is quarantined: {} (this tether cannot read it; a newer tether may, or \
             fix the row by hand)",
            q.key, q.reason
        ),
    )
}

/// Serialises an outcome for the `outcome` column.
pub(crate) fn encode_outcome(op: &'static str, outcome: &Outcome) -> Result<String, StoreError> {
    serde_json::to_string(outcome).map_err(|e| StoreError::Query {
        op,
        source: Box::new(e),
    })
}

impl RunRow {
    /// Rebuilds the record (and its journal) from the columns.
    pub(crate) fn into_record(self, location: &str) -> Result<RunRecord, StoreError> {
        let key = parse_key(location, self.key)?;
        let submission = |what: &str| -> Result<Submission, StoreError> {
            match (self.generation, &self.tag, &self.shape) {
                (Some(g), Some(tag), Some(shape)) => Ok(Submission {
                    generation: parse_generation(location, g)?,
                    tag: Tag::from_stored(tag.clone()),
                    shape: parse_shape(location, shape)?,
                }),
                _ => Err(corrupt(
                    location,
                    format!("run {key} is in phase {what} but has no generation/tag/shape"),
                )),
            }
        };
        let phase = match self.phase.as_str() {
            PHASE_EMPTY => Phase::Empty,
            PHASE_INTENT => Phase::Intent {
                submission: submission(PHASE_INTENT)?,
            },
            PHASE_SUBMITTED => {
                let submission = submission(PHASE_SUBMITTED)?;
                let external_id = self.external_id.clone().ok_or_else(|| {
                    corrupt(
                        location,
                        format!("run {key} is submitted but has no external id"),
                    )
                })?;
                Phase::Submitted {
                    submission,
                    external_id: ExternalId(external_id),
                }
            }
            PHASE_FINISHED => {
                let raw = self.outcome.as_deref().ok_or_else(|| {
                    corrupt(
                        location,
                        format!("run {key} is finished but has no outcome"),
                    )
                })?;
                Phase::Finished {
                    outcome: parse_outcome(location, raw)?,
                }
            }
            other => {
                return Err(corrupt(
                    location,
                    format!("run {key} has unknown phase {other:?}"),
                ))
            }
        };
        let store = StoreId::new(self.store_id).map_err(|e| corrupt(location, e.to_string()))?;
        let placement = self
            .placement
            .as_deref()
            .map(serde_json::from_str::<Placement>)
            .transpose()
            .map_err(|e| corrupt(location, format!("run {key} has an invalid placement: {e}")))?;
        // A rerun instance continues after the earlier instances' last generation, and its
        // submission budget counts from there.
        let after_generation = self
            .instance_base
            .map(|g| parse_generation(location, g))
            .transpose()?;
        Ok(RunRecord {
            placement,
            journal: Journal {
                store,
                key: key.clone(),
                phase,
                cancel_requested: self.cancel_requested,
                after_generation,
            },
            key,
            kind: self.kind,
            spec: self.spec,
            spec_name: self.spec_name,
            spec_hash: self.spec_hash,
            epoch: Epoch(self.epoch),
            owner: self.owner.map(OwnerId),
            lease_expires_at_ms: self.lease_expires_at_ms,
            lease_alive: self.lease_alive,
            last_generation: self
                .generation
                .map(|g| parse_generation(location, g))
                .transpose()?,
            last_external_id: self.external_id.clone().map(ExternalId),
            queued: self.queued,
            base_dir: self.base_dir,
            created_at_ms: self.created_at_ms,
            updated_at_ms: self.updated_at_ms,
        })
    }
}

impl SubmissionRow {
    pub(crate) fn into_record(self, location: &str) -> Result<SubmissionRecord, StoreError> {
        Ok(SubmissionRecord {
            submission: Submission {
                generation: parse_generation(location, self.generation)?,
                tag: Tag::from_stored(self.tag),
                shape: parse_shape(location, &self.shape)?,
            },
            external_id: self.external_id.map(ExternalId),
            outcome: self
                .outcome
                .as_deref()
                .map(|o| parse_outcome(location, o))
                .transpose()?,
            intent_at_ms: self.intent_at_ms,
        })
    }
}

/// The reason of a `lease-acquired`/`claimed` history entry: whom the lease was taken from,
/// and who has it now (history rows have no owner column, so the reason carries it).
///
/// PostgreSQL builds the same text in SQL (see `postgres::sql`); keep the two in step so
/// `tether history` reads the same on both backends.
pub(crate) fn takeover_reason(
    new_owner: &str,
    prev_owner: Option<&str>,
    prev_expiry: Option<i64>,
    now_ms: i64,
) -> String {
    match (prev_owner, prev_expiry) {
        // Taken before expiry: only when the owner's liveness signal was released (it died).
        (Some(prev), Some(exp)) if exp > now_ms => {
            let left = (exp - now_ms) as f64 / 1000.0;
            format!(
                "took over from {prev} (owner gone, lease had {left:.1}s left); new owner {new_owner}"
            )
        }
        (Some(prev), Some(exp)) => {
            let ago = (now_ms - exp).max(0) as f64 / 1000.0;
            format!("took over from {prev} (lease expired {ago:.1}s ago); new owner {new_owner}")
        }
        (Some(prev), None) => {
            format!("took over from {prev} (lease had no expiry); new owner {new_owner}")
        }
        (None, _) => format!("lease was free; new owner {new_owner}"),
    }
}

/// Milliseconds since the Unix epoch for a TTL, saturating rather than overflowing.
pub(crate) fn ttl_ms(ttl: std::time::Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4)
}

/// Serialises a placement for the `placement` column.
pub(crate) fn encode_placement(
    op: &'static str,
    placement: &Placement,
) -> Result<String, StoreError> {
    serde_json::to_string(placement).map_err(|e| StoreError::Query {
        op,
        source: Box::new(e),
    })
}

/// The history line of a rerun (both backends write the same text).
pub(crate) fn rerun_reason(previous: &str, spec: Option<&tether_core::store::RerunSpec>) -> String {
    let spec = spec
        .map(|s| format!(", with the spec from {}", s.spec_name))
        .unwrap_or_default();
    format!(
        "fresh instance after the earlier one {previous}{spec}; its submissions and history are kept"
    )
}

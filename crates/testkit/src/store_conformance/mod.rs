//! The **store conformance suite**: the promises of [`tether_core::store`] as generic properties,
//! one `async fn` each over a [`StoreHarness`], run against every `Store` implementation:
//! SQLite and PostgreSQL (`tether-store`'s `tests/conformance.rs`) and [`crate::MemoryStore`]
//! (this crate's `tests/store_conformance.rs`). [`store_conformance_tests!`] makes one test per
//! property, so a property added here runs on every store.
//!
//! Expired leases are made with a zero TTL (expiry = now, and "expired" means `<= now`), so
//! take-over properties need no sleeps.
//!
//! ## Assumptions
//! - [`StoreHarness::store`] gives a new, independent instance on one shared database each time
//!   (each instance stands for a separate process).
//!
//! ## Caveats
//! - Properties that reach behind the store's back (raw SQL, schema versions) are the SQL
//!   stores' own and stay in `tether-store`.
use std::sync::Arc;

use tether_core::{store::StoreError, Store};

mod concurrent;
pub mod helpers;
mod leases;
mod listing;
mod liveness;
mod records;
mod remove;
mod renewal;
mod rerun;
mod workers;

pub use concurrent::*;
pub use leases::*;
pub use listing::*;
pub use liveness::*;
pub use records::*;
pub use remove::*;
pub use renewal::*;
pub use rerun::*;
pub use workers::*;

/// What a property returns: an error says which promise broke, and how.
pub type R = anyhow::Result<()>;

/// A store under test.
#[async_trait::async_trait]
pub trait StoreHarness: Send + Sync + Sized {
    /// A new, independent store instance on the harness's database.
    async fn store(&self) -> anyhow::Result<Arc<dyn Store>>;
    /// Whether `source` (of a `StoreError::Query`) is the store's "stale generation" refusal
    /// (an id recorded for a generation that has no intent).
    fn is_stale_generation(&self, source: &(dyn std::error::Error + Send + Sync + 'static))
        -> bool;
    /// Cleans up (drops a scratch database); called at the end of every property.
    async fn finish(self) {}
}

fn lease_lost<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) -> R {
    match r {
        Err(StoreError::LeaseLost { .. }) => Ok(()),
        other => anyhow::bail!("{what}: expected LeaseLost, got {other:?}"),
    }
}

/// One `#[tokio::test]` per generic property, each on the harness `$make` makes (an expression
/// evaluated inside an `async fn -> anyhow::Result<()>`, so `?` and `.await` work).
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@each $make;
            create_is_idempotent,
            full_lifecycle,
            stale_epoch_writer_is_fenced,
            concurrent_fenced_writes_are_answered_each_on_its_own,
            takeover_after_expiry_bumps_epoch,
            concurrent_claims_never_double_claim,
            claim_order_and_eligibility,
            renew_all_extends_only_what_is_still_held,
            renew_all_renews_past_one_chunk_and_only_what_is_held,
            renew_all_completes_alongside_the_runs_own_writes,
            release_lets_another_acquire_at_once,
            cancel_flag,
            history_order_and_timestamps,
            external_id_zero_is_an_id,
            generations_and_reintent,
            list_runs_newest_first,
            failed_outcome_round_trips,
            listings_carry_no_spec_bodies,
            summaries_filter_by_state_kind_and_since,
            summaries_filter_by_owner,
            summary_pages_are_stable_while_inserting,
            remove_takes_only_a_finished_run_with_all_it_owns,
            prune_removes_old_finished_runs_and_a_dry_run_nothing,
            rerun_makes_a_fresh_instance_that_continues_the_generations,
            a_dead_owner_is_taken_over_at_once_a_live_one_is_not,
            an_owner_without_liveness_is_judged_by_its_lease,
            worker_registry_upserts_lists_removes_and_prunes,
        );
    };
    (@each $make:expr; $($prop:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $prop() -> $crate::store_conformance::R {
                $crate::store_conformance::$prop($make).await
            }
        )*
    };
}

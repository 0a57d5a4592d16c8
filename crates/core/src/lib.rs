//! # tether-core
//!
//! The engine of tether and the traits everything else plugs into. This crate performs no
//! I/O of its own: it talks to the outside world only through the [`store::Store`] and
//! [`connector::Connector`] traits, which makes every decision it takes testable in memory.
//!
//! - [`decide()`]: the pure resume decision over (journal, observed backend status, policy,
//!   clocks, now).
//! - [`engine`]: the run protocol (lease, intent, submitted, finished) that applies decisions.
//! - [`connector`]: what a backend must provide (submit, status, cancel) and may provide
//!   (find by tag, logs, recovery shape).
//! - [`store`]: the durable journal with fencing epochs.
//! - [`spec`]: job spec files (TOML) and the retry policy.
//!
//! ## Guarantees
//! - A submission is preceded by a committed intent, and its external id is committed before
//!   the first poll. A write from a holder of a stale epoch changes nothing and yields
//!   [`store::StoreError::LeaseLost`].
//! - An unknown backend status never leads to a resubmission.
//!
//! ## Assumptions
//! - The backend keeps the deterministic [`ids::Tag`] we hand it with the job, and can be asked
//!   for a job by that tag ([`connector::FindByTag`]); without it, a crash between submit and the
//!   id record cannot be healed and the policy decides (default: fail, never double-submit).
//!
//! ## Caveats
//! - Lease expiry uses the store's clock; owners must renew well before the TTL runs out.
#![forbid(unsafe_code)]

pub mod connector;
pub mod decide;
pub mod engine;
pub mod history;
pub mod ids;
pub mod journal;
pub mod observe;
pub mod placement;
pub mod spec;
pub mod store;
pub mod units;

pub use connector::Connector;
pub use decide::{decide, Clocks, Decision};
pub use store::Store;

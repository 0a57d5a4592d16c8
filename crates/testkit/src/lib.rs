//! # tether-testkit
//!
//! Fakes for tether's own tests, so the engine and the lease keeper can be tested inside
//! `tether-core` without a database or a backend. **Test code only** (`publish = false`, a
//! dev-dependency): nothing here is durable, and nothing here is meant for production.
//!
//! - [`MemoryStore`]: a [`tether_core::Store`] kept in memory, with its own adjustable clock
//!   ([`MemoryStore::advance`]) and injectable faults ([`MemoryStore::fail`],
//!   [`MemoryStore::outage`]), counting every call per operation ([`MemoryStore::calls`]).
//! - [`ScriptedConnector`]: a [`tether_core::Connector`] answering status calls and tag
//!   look-ups from a script, counting submits and cancels, confirming the [`Fence`] before it
//!   "creates" a job like a real connector, and able to hold calls ([`ScriptedConnector::hold`]).
//! - `http::FakeServer` (feature `http`; `tls` for HTTPS): a scripted fake HTTP server on a
//!   loopback port (expectations in order, fallback routes, injected faults, recorded requests),
//!   and `fakes::spark_standalone`, a stateful fake Spark master built on it, and
//!   `fakes::databricks` (feature `tls`), a fake Databricks Jobs API 2.2 workspace over HTTPS.
//! - `store_conformance` (feature `store-conformance`): the store conformance properties,
//!   generic over a harness, run on SQLite, PostgreSQL and [`MemoryStore`].
//!
//! ## Guarantees
//! - [`MemoryStore`] gives the promises of [`tether_core::store`] (leases with epochs, fenced
//!   writes answering `LeaseLost`, expiry judged by the store's own clock), checked by this
//!   crate's tests.
//!
//! ## Caveats
//! - A fake: it has no quarantine (nothing is ever unreadable) and no schema.
//!
//! [`Fence`]: tether_core::connector::Fence
#![forbid(unsafe_code)]

#[cfg(feature = "http")]
pub mod fakes;
#[cfg(feature = "http")]
pub mod http;
mod memory;
mod runs;
mod scripted;
#[cfg(feature = "store-conformance")]
pub mod store_conformance;

pub use memory::{Fault, MemoryStore, Op, OUTAGE_CALL_CAP};
pub use runs::{acquired, scripted_run};
pub use scripted::{Call, ScriptedConnector};

//! # tether-connectors
//!
//! One module (and Cargo feature) per backend, all implementing
//! [`tether_core::connector::Connector`], plus `conformance` (feature `conformance`, for tests
//! only): the suite every connector runs.
//!
//! - `local` (feature `local`): processes on this machine, under a supervisor of ours.
//! - `spark_standalone` (feature `spark-standalone`): Spark standalone masters through the REST
//!   submission server.
//! - `databricks` (feature `databricks`): Databricks Jobs API 2.2 runs, idempotent by token.
//! - `spark_yarn` (feature `spark-yarn`): Spark on YARN through spark-submit and the
//!   ResourceManager's REST API.
//! - `spark_k8s` (feature `spark-k8s`): Spark on Kubernetes through spark-submit and the
//!   Kubernetes API (`kube`).
//! - `livy` (feature `livy`): Apache Livy batches.
//! - `spark` (feature `spark`, enabled by every Spark backend): the shared Spark layer (OOM
//!   classifier, conf, tag places, recovery shape, spark-submit runner).
//! - `http` (feature `http`, enabled by every HTTP backend): the shared HTTP client, retry,
//!   auth and error classification.
//!
//! [`registry::Registry`] turns a spec file into a ready connector and policy through the
//! [`registry::ConnectorFactory`] of its kind; the CLI uses it, and so can any program that
//! wants the built-in backends or adds its own (`Registry::register`).
#![deny(unsafe_code)]

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "databricks")]
pub mod databricks;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "livy")]
pub mod livy;
#[cfg(feature = "local")]
pub mod local;
pub mod pool;
pub mod registry;
#[cfg(feature = "spark")]
pub mod spark;
#[cfg(feature = "spark-k8s")]
pub mod spark_k8s;
#[cfg(feature = "spark-standalone")]
pub mod spark_standalone;
#[cfg(feature = "spark-yarn")]
pub mod spark_yarn;
pub mod text;

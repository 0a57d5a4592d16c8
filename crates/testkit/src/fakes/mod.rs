//! Stateful fakes built on [`crate::http::FakeServer`].
#[cfg(feature = "tls")]
pub mod databricks;
pub mod spark_standalone;

//! Stateful fakes built on [`crate::http::FakeServer`].
#[cfg(feature = "tls")]
pub mod databricks;
#[cfg(feature = "tls")]
pub mod kubernetes;
pub mod spark_standalone;

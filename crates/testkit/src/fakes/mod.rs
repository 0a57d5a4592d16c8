//! Stateful fakes built on [`crate::http::FakeServer`].
pub mod spark_standalone;

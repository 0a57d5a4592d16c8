//! Test servers for the Spark connector's HTTP rules: the shared HTTP layer's test servers
//! (`http_support`, on the test kit's fake HTTP server), answering each request through a
//! closure. They stand in for a Spark master or worker only where the real cluster cannot
//! misbehave on demand (redirects, endless bodies, hostile messages, certificates).
#![allow(dead_code)]

#[path = "../http_support/mod.rs"]
mod base;
mod spark;
pub use base::{Reply, Seen, TestCa, TestServer};
pub use spark::*;

/// Starts a test server; `tls` makes it speak HTTPS with that certificate.
pub async fn serve(
    tls: Option<&TestCa>,
    handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
) -> TestServer {
    base::serve(tls, move |_, s| handler(s)).await
}

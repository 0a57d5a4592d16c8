//! [`ClientPool`]: HTTP clients shared by endpoint, so that every spec naming the same server
//! (and trusting the same CA) uses one client and its connection pool.
//!
//! ## Guarantees
//! - Two specs share a client only if scheme, host, port, the CA certificates they trust
//!   (the PEM bytes, not just the file name: a file rewritten between two builds gives a new
//!   client) and the client settings (request timeout) are all equal. A client never trusts a
//!   CA its spec did not give.
//! - Bounded: at most [`ClientPool::CAPACITY`] endpoints are kept; the least recently used one
//!   is dropped first (connectors built from it keep their clone).
//!
//! ## Caveats
//! - Secrets (bearer tokens) are not part of a client: they are added per request, so sharing
//!   a client never shares a token.
use std::{
    num::NonZeroUsize,
    sync::{Arc, Mutex},
    time::Duration,
};

use lru::LruCache;

/// What makes two clients interchangeable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: String,
    /// Host name or address, as written (lower-cased by URL parsing).
    pub host: String,
    /// Port, the scheme's default filled in.
    pub port: u16,
    /// PEM bytes of the extra CA certificates the client trusts.
    pub ca_pem: Option<Vec<u8>>,
    /// Per-request timeout the client enforces.
    pub timeout: Duration,
}

#[cfg(feature = "http")]
impl Endpoint {
    /// The key of `url`'s scheme, host and port (the scheme's default port filled in).
    pub fn of(url: &reqwest::Url, ca_pem: Option<Vec<u8>>, timeout: Duration) -> Endpoint {
        Endpoint {
            scheme: url.scheme().into(),
            host: url.host_str().unwrap_or_default().into(),
            port: url.port_or_known_default().unwrap_or(0),
            ca_pem,
            timeout,
        }
    }
}

/// Clients of type `C` (cheap to clone: a handle on a shared connection pool) by endpoint.
/// Cloning the pool shares it.
#[derive(Clone)]
pub struct ClientPool<C> {
    clients: Arc<Mutex<LruCache<Endpoint, C>>>,
}

impl<C> std::fmt::Debug for ClientPool<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientPool").finish_non_exhaustive()
    }
}

impl<C: Clone> Default for ClientPool<C> {
    fn default() -> Self {
        Self::with_capacity(Self::CAPACITY)
    }
}

impl<C: Clone> ClientPool<C> {
    /// Endpoints kept by [`ClientPool::default`]: far more than a fleet's masters.
    pub const CAPACITY: NonZeroUsize = match NonZeroUsize::new(64) {
        Some(n) => n,
        None => unreachable!(),
    };

    /// A pool keeping at most `capacity` endpoints.
    pub fn with_capacity(capacity: NonZeroUsize) -> Self {
        ClientPool {
            clients: Arc::new(Mutex::new(LruCache::new(capacity))),
        }
    }

    /// The client for `endpoint`, made by `make` if there is none yet. An error of `make` is
    /// returned and nothing is kept.
    pub fn get_or_try_make<E>(
        &self,
        endpoint: Endpoint,
        make: impl FnOnce() -> Result<C, E>,
    ) -> Result<C, E> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(&endpoint) {
            return Ok(c.clone());
        }
        // Made under the lock: two builds for one new endpoint must not make two clients.
        let client = make()?;
        clients.put(endpoint, client.clone());
        Ok(client)
    }

    /// Endpoints held now.
    pub fn len(&self) -> usize {
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no endpoint is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(host: &str, ca: Option<&[u8]>) -> Endpoint {
        Endpoint {
            scheme: "https".into(),
            host: host.into(),
            port: 6066,
            ca_pem: ca.map(<[u8]>::to_vec),
            timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn one_client_per_endpoint_and_ca_bounded_by_capacity() {
        let pool = ClientPool::<u32>::with_capacity(NonZeroUsize::new(2).unwrap());
        let made = std::cell::Cell::new(0);
        let get = |e: Endpoint| {
            pool.get_or_try_make(e, || {
                made.set(made.get() + 1);
                Ok::<_, ()>(made.get())
            })
            .unwrap()
        };
        assert_eq!(get(at("a", None)), 1);
        assert_eq!(get(at("a", None)), 1, "same endpoint: same client");
        assert_eq!(get(at("a", Some(b"ca"))), 2, "another CA: another client");
        assert_eq!(get(at("b", None)), 3);
        assert_eq!(pool.len(), 2, "bounded");
        assert_eq!(get(at("a", None)), 4, "least recently used was dropped");
        assert!(pool
            .get_or_try_make(at("c", None), || Err::<u32, _>("no"))
            .is_err());
        assert_eq!(pool.len(), 2, "a failed make keeps nothing");
    }
}

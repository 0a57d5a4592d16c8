//! A handful of pipelined connections that heal themselves.
//!
//! ## Guarantees
//! - No call waits forever: connecting is bounded by the connect timeout, every statement by
//!   the query timeout. Past either, the call fails with [`StoreError::Unavailable`].
//! - A connection that broke (server restarted, network cut, statement timed out) is dropped
//!   and replaced on its next use, so the store recovers by itself once the server is back.
//!
//! ## Caveats
//! - A broken connection is noticed only when used: the first call after an outage may fail
//!   with `Unavailable` (the statement may or may not have run), the next one reconnects.
//!   Statements are never retried here, because a write whose fate is unknown must not be
//!   applied twice (it would, e.g., bump an epoch twice).
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use tether_core::store::StoreError;
use tokio_postgres::{error::SqlState, types::ToSql, Client, Config, Row, Statement};

use super::tls::{tls_failure, MakeRustlsConnect};

mod lane;

/// Timeouts and pool size of the PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections kept open (each pipelines many concurrent statements).
    pub connections: usize,
    /// Bound on establishing one connection.
    pub connect_timeout: Duration,
    /// Bound on one statement (including waiting for row locks).
    pub query_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            connections: 4,
            connect_timeout: Duration::from_secs(5),
            query_timeout: Duration::from_secs(30),
        }
    }
}

/// One live connection and its prepared statements.
struct Conn {
    client: Client,
    /// Keyed by the SQL text's address: all SQL is `&'static str` from `sql.rs`.
    statements: Mutex<HashMap<usize, Statement>>,
    /// Set when a statement on it timed out: its state is unknown, so it is not reused.
    broken: AtomicBool,
    /// Statements running on it now (see [`Pool::conn`]).
    in_flight: AtomicUsize,
}

/// Counts a statement as running on its connection while it lives.
struct Busy<'a>(&'a AtomicUsize);

impl<'a> Busy<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Busy(n)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Conn {
    fn usable(&self) -> bool {
        !self.broken.load(Ordering::Relaxed) && !self.client.is_closed()
    }

    async fn statement(&self, sql: &'static str) -> Result<Statement, tokio_postgres::Error> {
        let id = sql.as_ptr() as usize;
        let cached = self
            .statements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned();
        if let Some(s) = cached {
            return Ok(s);
        }
        let s = self.client.prepare(sql).await?;
        self.statements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, s.clone());
        Ok(s)
    }
}

/// The connections of one store.
pub(crate) struct Pool {
    config: Config,
    tls: MakeRustlsConnect,
    options: PgOptions,
    slots: Vec<tokio::sync::Mutex<Option<Arc<Conn>>>>,
    next: AtomicUsize,
    /// The renewal lane: a connection of its own for a worker's renewals ([`lane`]).
    lane: tokio::sync::Mutex<Option<Arc<Conn>>>,
    /// The URL without password, for messages.
    location: String,
}

/// SQLSTATEs that mean "the server is going away or not ready", i.e. try again later.
fn is_transient_state(code: &SqlState) -> bool {
    let c = code.code();
    c.starts_with("08") // connection exception
        || c == SqlState::ADMIN_SHUTDOWN.code()
        || c == SqlState::CRASH_SHUTDOWN.code()
        || c == SqlState::CANNOT_CONNECT_NOW.code()
        || c == SqlState::TOO_MANY_CONNECTIONS.code()
        || c == SqlState::T_R_SERIALIZATION_FAILURE.code()
        || c == SqlState::T_R_DEADLOCK_DETECTED.code()
}

/// Whether an error means the server or the connection is unavailable (vs a failed query).
pub(crate) fn is_unavailable(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() || e.code().is_some_and(is_transient_state) {
        return true;
    }
    // I/O errors (refused, reset, broken pipe) carry an io::Error source and no SQLSTATE.
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if s.is::<std::io::Error>() {
            return true;
        }
        src = s.source();
    }
    false
}

/// Maps a driver error: unavailability → `Unavailable`, the rest → `Query`.
pub(crate) fn map_err(op: &'static str, e: tokio_postgres::Error) -> StoreError {
    if is_unavailable(&e) {
        StoreError::Unavailable {
            op,
            message: describe(&e),
        }
    } else {
        StoreError::Query {
            op,
            source: Box::new(e),
        }
    }
}

/// The error with its database detail, which `Display` of the driver error leaves out.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => match std::error::Error::source(e) {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        },
    }
}

/// Connects once, bounded by the connect timeout; the connection task runs on the runtime.
pub(crate) async fn connect(
    config: &Config,
    tls: &MakeRustlsConnect,
    timeout: Duration,
    op: &'static str,
    location: &str,
) -> Result<Client, StoreError> {
    let (client, connection) =
        match tokio::time::timeout(timeout, config.connect(tls.clone())).await {
            Err(_) => {
                return Err(StoreError::Unavailable {
                    op,
                    message: format!("connecting to {location} timed out after {timeout:?}"),
                })
            }
            Ok(Err(e)) => return Err(connect_error(op, location, e)),
            Ok(Ok(pair)) => pair,
        };
    tokio::spawn(async move {
        // Ends when the server goes away or every Client handle is dropped; the error (if any)
        // resurfaces as `is_closed()` on the client, so nothing is lost by dropping it here.
        let _ = connection.await;
    });
    Ok(client)
}

/// Connection failures: unreachable → `Unavailable`; refused by the server for a reason that
/// retrying will not fix (auth, missing database) → `Open`.
pub(super) fn connect_error(
    op: &'static str,
    location: &str,
    e: tokio_postgres::Error,
) -> StoreError {
    // Checked first: a refused certificate arrives as an I/O error, but retrying cannot fix it.
    if let Some(tls) = tls_failure(&e) {
        return StoreError::Open {
            location: location.to_string(),
            message: format!(
                "the TLS handshake failed: {tls}; check sslmode and sslrootcert in the URL \
                 (verify-full checks the certificate chain and the host name)"
            ),
            source: Some(Box::new(e)),
        };
    }
    if is_unavailable(&e) {
        return StoreError::Unavailable {
            op,
            message: format!("cannot connect to {location}: {}", describe(&e)),
        };
    }
    let hint = match e.code() {
        Some(c)
            if *c == SqlState::INVALID_PASSWORD
                || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            "authentication failed; check the user and password in the URL"
        }
        Some(c) if *c == SqlState::INVALID_CATALOG_NAME => {
            "the database does not exist; create it first"
        }
        _ => "check the URL and the server",
    };
    StoreError::Open {
        location: location.to_string(),
        message: format!("{hint} ({})", describe(&e)),
        source: Some(Box::new(e)),
    }
}

impl Pool {
    /// A pool whose first connection is `first` (already used for migrations).
    pub(crate) fn new(
        config: Config,
        tls: MakeRustlsConnect,
        options: PgOptions,
        location: String,
        first: Client,
    ) -> Pool {
        let n = options.connections.max(1);
        let mut slots = Vec::with_capacity(n);
        slots.push(tokio::sync::Mutex::new(Some(Arc::new(Conn {
            client: first,
            statements: Mutex::new(HashMap::new()),
            broken: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
        }))));
        slots.resize_with(n, || tokio::sync::Mutex::new(None));
        Pool {
            config,
            tls,
            options,
            slots,
            next: AtomicUsize::new(0),
            lane: tokio::sync::Mutex::new(None),
            location,
        }
    }

    pub(crate) fn location(&self) -> &str {
        &self.location
    }

    /// What opening sessions of its own needs (listening sessions, an owner's liveness
    /// session), detached from the pool (a task of its own keeps it).
    pub(crate) fn listener(&self) -> Listener {
        Listener {
            config: self.config.clone(),
            tls: self.tls.clone(),
            timeout: self.options.connect_timeout,
            location: self.location.clone(),
        }
    }

    /// A usable connection: an idle open one if there is (a short-lived process such as
    /// `tether run` then pays for one connection and its TLS handshake, not one per slot),
    /// else the next slot round-robin, (re)connecting it if needed, so a busy store grows
    /// to its full size.
    async fn conn(&self, op: &'static str) -> Result<Arc<Conn>, StoreError> {
        for slot in &self.slots {
            if let Ok(guard) = slot.try_lock() {
                if let Some(c) = guard
                    .as_ref()
                    .filter(|c| c.usable() && c.in_flight.load(Ordering::Relaxed) == 0)
                {
                    return Ok(Arc::clone(c));
                }
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[i].lock().await;
        self.reuse_or_connect(&mut slot, op).await
    }

    /// The slot's connection if it is usable, else a new one put in the slot (held locked by
    /// the caller, so one connect per slot at a time).
    async fn reuse_or_connect(
        &self,
        slot: &mut Option<Arc<Conn>>,
        op: &'static str,
    ) -> Result<Arc<Conn>, StoreError> {
        if let Some(c) = slot.as_ref().filter(|c| c.usable()) {
            return Ok(Arc::clone(c));
        }
        *slot = None;
        let client = connect(
            &self.config,
            &self.tls,
            self.options.connect_timeout,
            op,
            &self.location,
        )
        .await?;
        let c = Arc::new(Conn {
            client,
            statements: Mutex::new(HashMap::new()),
            broken: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
        });
        *slot = Some(Arc::clone(&c));
        Ok(c)
    }

    /// Classifies the result of one bounded statement, retiring the connection if it broke.
    fn settle<T>(
        &self,
        op: &'static str,
        conn: &Conn,
        timeout: Duration,
        res: Result<Result<T, tokio_postgres::Error>, tokio::time::error::Elapsed>,
    ) -> Result<T, StoreError> {
        match res {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if is_unavailable(&e) {
                    conn.broken.store(true, Ordering::Relaxed);
                }
                Err(map_err(op, e))
            }
            Err(_) => {
                // The statement may still be running server-side and this connection's
                // pipeline is in an unknown state, so it is retired rather than reused.
                conn.broken.store(true, Ordering::Relaxed);
                // Ask the server to stop it too, so it cannot land later (best effort).
                let token = conn.client.cancel_token();
                let tls = self.tls.clone();
                tokio::spawn(async move {
                    let _ = token.cancel_query(tls).await;
                });
                Err(StoreError::Unavailable {
                    op,
                    message: format!("no answer from {} within {timeout:?}", self.location),
                })
            }
        }
    }

    /// Runs one statement and returns its rows.
    pub(crate) async fn query(
        &self,
        op: &'static str,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        self.query_within(op, sql, params, self.options.query_timeout)
            .await
    }

    /// Runs one statement bounded by `timeout` (at most the query timeout) and returns its rows.
    pub(crate) async fn query_within(
        &self,
        op: &'static str,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
        timeout: Duration,
    ) -> Result<Vec<Row>, StoreError> {
        let conn = self.conn(op).await?;
        self.query_on(&conn, op, sql, params, timeout).await
    }

    /// Runs one statement on `conn` bounded by `timeout` (at most the query timeout).
    async fn query_on(
        &self,
        conn: &Arc<Conn>,
        op: &'static str,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
        timeout: Duration,
    ) -> Result<Vec<Row>, StoreError> {
        let timeout = timeout.min(self.options.query_timeout);
        let _busy = Busy::new(&conn.in_flight);
        let run = async {
            let stmt = conn.statement(sql).await?;
            conn.client.query(&stmt, params).await
        };
        let res = tokio::time::timeout(timeout, run).await;
        self.settle(op, conn, timeout, res)
    }

    /// Runs one statement expected to return at most one row.
    pub(crate) async fn query_opt(
        &self,
        op: &'static str,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        Ok(self.query(op, sql, params).await?.into_iter().next())
    }

    /// Runs one statement whose single row holds a count (`SELECT count(*) FROM u`).
    pub(crate) async fn count(
        &self,
        op: &'static str,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<i64, StoreError> {
        match self.query_opt(op, sql, params).await? {
            None => Ok(0),
            Some(r) => r.try_get::<_, i64>(0).map_err(|e| StoreError::Query {
                op,
                source: Box::new(e),
            }),
        }
    }

    /// Runs one statement and returns the number of rows it changed.
    pub(crate) async fn execute(
        &self,
        op: &'static str,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let conn = self.conn(op).await?;
        let _busy = Busy::new(&conn.in_flight);
        let run = async {
            let stmt = conn.statement(sql).await?;
            conn.client.execute(&stmt, params).await
        };
        let res = tokio::time::timeout(self.options.query_timeout, run).await;
        self.settle(op, &conn, self.options.query_timeout, res)
    }
}

/// Opens sessions that `LISTEN` (see [`Pool::listener`]).
#[derive(Clone)]
pub(crate) struct Listener {
    pub(super) config: Config,
    pub(super) tls: MakeRustlsConnect,
    pub(super) timeout: Duration,
    pub(super) location: String,
}

impl Listener {
    /// A session of its own whose notifications call `on_notify`, listening on `channel`
    /// (a constant). The returned task ends when the session does (server gone, client dropped).
    pub(crate) async fn listen(
        &self,
        op: &'static str,
        channel: &'static str,
        on_notify: impl Fn() + Send + 'static,
    ) -> Result<(Client, tokio::task::JoinHandle<()>), StoreError> {
        let timeout = self.timeout;
        let (client, mut connection) =
            match tokio::time::timeout(timeout, self.config.connect(self.tls.clone())).await {
                Err(_) => {
                    return Err(StoreError::Unavailable {
                        op,
                        message: format!(
                            "connecting to {} timed out after {timeout:?}",
                            self.location
                        ),
                    })
                }
                Ok(Err(e)) => return Err(connect_error(op, &self.location, e)),
                Ok(Ok(pair)) => pair,
            };
        // Unlike `connect`, this task reads the session's asynchronous messages: the
        // notifications arrive there, not as answers to a statement.
        let task = tokio::spawn(async move {
            while let Some(Ok(message)) =
                std::future::poll_fn(|cx| connection.poll_message(cx)).await
            {
                if let tokio_postgres::AsyncMessage::Notification(_) = message {
                    on_notify();
                }
            }
        });
        let listen = format!("LISTEN {channel}");
        match tokio::time::timeout(timeout, client.batch_execute(&listen)).await {
            Ok(Ok(())) => Ok((client, task)),
            Ok(Err(e)) => {
                task.abort();
                Err(map_err(op, e))
            }
            Err(_) => {
                task.abort();
                Err(StoreError::Unavailable {
                    op,
                    message: format!("{listen} took longer than {timeout:?}"),
                })
            }
        }
    }
}

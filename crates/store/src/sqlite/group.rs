//! Group commit: the writes that wait for the connection at the same time commit in one
//! `BEGIN IMMEDIATE` transaction, each inside its own savepoint.
//!
//! A worker driving thousands of runs issues thousands of small fenced writes (intents, id
//! records, history). With `synchronous = FULL` each commit is an fsync, and one connection
//! serialises them: ~3 ms each, which capped a worker at ~80 submissions/s. Writes that queue up
//! behind the one running now are taken together by the next leader, so the fsync is paid once
//! per batch, not once per write.
//!
//! ## Guarantees
//! - A write's answer is given only after the transaction holding it committed (or failed):
//!   "durable before the caller goes on" holds per write, exactly as with one transaction each.
//! - Each write runs in its own savepoint: its fence check, change and history entry stand or fall
//!   together, and an error of one write (a lost lease, a missing run) rolls back that write
//!   only; the others of the batch commit. Writes run in arrival order under the write lock, so
//!   each sees the effects of those before it, as if they had committed one after the other.
//! - If the batch cannot commit (or begin: the store stays busy past the busy timeout), every
//!   write in it fails with an error saying so, and nothing of it was written.
//!
//! - A batch holding a write that comes before an effect outside the store (see [`durable`])
//!   commits with `synchronous = FULL`: the WAL is fsynced before any of its writes is
//!   answered. A batch of bookkeeping only (leases, claims, poll history) commits with
//!   `synchronous = NORMAL`: atomic and kept across any process crash, written to the disk at
//!   the next fsync. The WAL is one sequential file, so that fsync (the next durable batch's,
//!   whichever process commits it, or a checkpoint's) persists every earlier commit too: a
//!   power loss can only cut a suffix of bookkeeping after the last effect, and it takes every
//!   owner on the machine down with it (SQLite's WAL is shared on one host only).
//!
//! ## Caveats
//! - A batch holds SQLite's write lock for all its writes: at most [`MAX_BATCH`] of them, well
//!   under a second, so other processes sharing the file wait no longer than for one slow write.
use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc, Mutex,
};

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tether_core::store::StoreError;

use super::{busy::retry_busy, open::map_err, Inner};

/// Most writes committed in one transaction.
pub(super) const MAX_BATCH: usize = 512;

/// Writes waiting for a leader.
#[derive(Default)]
pub(super) struct Queue {
    state: Mutex<QueueState>,
    /// Batches committed so far (what the tests count).
    commits: AtomicU64,
    /// Batches committed with `synchronous = FULL` (an fsync each).
    synced: AtomicU64,
    /// The connection's `synchronous` setting is NORMAL now (it opens as FULL).
    lax: std::sync::atomic::AtomicBool,
}

/// Whether a write of `op` must be on disk before its caller goes on: it precedes an effect
/// outside the store (a submit after the intent, a poll after the id record, the answer to a
/// person or script after the outcome, a cancel request acknowledged, files removed). A run
/// created by `tether run` itself is bookkeeping too (its intent's fsync persists it before
/// the submit); a queued submission is acknowledged, so durable (the store's `create_run`
/// says which). Everything else is bookkeeping a power loss may roll back without harm:
/// a lease taken or renewed (the owner dies with the machine; its effects were preceded by a
/// durable write that persisted the lease too), a claim, a release, a poll's history entry.
pub(super) fn durable(op: &str) -> bool {
    !matches!(
        op,
        "acquire" | "renew" | "renew_all" | "release" | "claim" | "append_history"
    )
}

impl Queue {
    /// Batches committed so far.
    #[cfg(test)]
    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Batches committed with an fsync so far.
    #[cfg(test)]
    pub(super) fn synced(&self) -> u64 {
        self.synced.load(Ordering::Relaxed)
    }

    /// Writes waiting for a leader.
    #[cfg(test)]
    pub(super) fn waiting(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .items
            .len()
    }
}

#[derive(Default)]
struct QueueState {
    items: Vec<Box<dyn Pending>>,
    /// A leader is on its way (spawned, not yet draining): a new write only joins the queue.
    scheduled: bool,
}

/// One queued write, of any result type.
trait Pending: Send {
    fn op(&self) -> &'static str;
    /// Must be on disk before it is answered ([`durable`]).
    fn durable(&self) -> bool;
    /// Runs the write inside `tx` in a savepoint and keeps its answer. `Err` means the whole
    /// batch must be rolled back (and retried if it is `Locked`).
    fn run(&mut self, tx: &Transaction<'_>, location: &str) -> Result<(), StoreError>;
    /// The batch committed: sends the kept answer.
    fn committed(self: Box<Self>);
    /// The batch did not commit: sends `error`.
    fn failed(self: Box<Self>, error: StoreError);
}

struct Item<T, F> {
    op: &'static str,
    durable: bool,
    f: F,
    answer: Option<Result<T, StoreError>>,
    reply: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Pending for Item<T, F>
where
    T: Send + 'static,
    F: Fn(&Transaction<'_>, &str) -> Result<T, StoreError> + Send + 'static,
{
    fn op(&self) -> &'static str {
        self.op
    }

    fn durable(&self) -> bool {
        self.durable
    }

    fn run(&mut self, tx: &Transaction<'_>, location: &str) -> Result<(), StoreError> {
        let sql = |s: &str| {
            tx.execute_batch(s)
                .map_err(|e| map_err(self.op, location, e))
        };
        sql("SAVEPOINT one_write")?;
        let answer = (self.f)(tx, location);
        match &answer {
            Ok(_) => {
                sql("RELEASE one_write")?;
                crate::fault::maybe_stop_holding_write_lock(self.op);
            }
            // Busy inside the write lock cannot normally happen; if it does, the whole batch
            // is rolled back and retried like a busy `BEGIN`.
            Err(StoreError::Locked { location, message }) => {
                return Err(StoreError::Locked {
                    location: location.clone(),
                    message: message.clone(),
                })
            }
            Err(_) => sql("ROLLBACK TO one_write; RELEASE one_write")?,
        }
        self.answer = Some(answer);
        Ok(())
    }

    fn committed(self: Box<Self>) {
        let answer = self.answer.unwrap_or_else(|| {
            Err(StoreError::Query {
                op: self.op,
                source: "the write was not run in its batch".into(),
            })
        });
        let _ = self.reply.send(answer);
    }

    fn failed(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

/// Queues `f` and waits for the commit of the batch it lands in, on disk if `durable`.
pub(super) async fn write<T, F>(
    inner: &Arc<Inner>,
    op: &'static str,
    durable: bool,
    f: F,
) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: Fn(&Transaction<'_>, &str) -> Result<T, StoreError> + Send + 'static,
{
    let (reply, answer) = tokio::sync::oneshot::channel();
    let lead = {
        let mut q = inner.queue.state.lock().unwrap_or_else(|p| p.into_inner());
        q.items.push(Box::new(Item {
            op,
            durable,
            f,
            answer: None,
            reply,
        }));
        !std::mem::replace(&mut q.scheduled, true)
    };
    if lead {
        spawn_leader(inner.clone());
    }
    answer.await.map_err(|_| StoreError::Query {
        op,
        source: "the batch carrying this write was dropped (its thread panicked); nothing is \
                 known to be written: read the run again"
            .into(),
    })?
}

fn spawn_leader(inner: Arc<Inner>) {
    tokio::task::spawn_blocking(move || lead(&inner));
}

/// Takes the connection, then the queue (up to [`MAX_BATCH`]), and commits it as one batch.
fn lead(inner: &Arc<Inner>) {
    let mut conn = inner.conn.lock().unwrap_or_else(|p| p.into_inner());
    let batch = {
        let mut q = inner.queue.state.lock().unwrap_or_else(|p| p.into_inner());
        let n = q.items.len().min(MAX_BATCH);
        let batch: Vec<_> = q.items.drain(..n).collect();
        if q.items.is_empty() {
            q.scheduled = false;
        } else {
            // More than one batch waits: the next leader takes the rest, after this commit
            // (readers get the connection in between).
            spawn_leader(inner.clone());
        }
        batch
    };
    if !batch.is_empty() {
        commit(&mut conn, inner, batch);
    }
}

fn commit(conn: &mut Connection, inner: &Inner, mut batch: Vec<Box<dyn Pending>>) {
    let loc = inner.location.as_str();
    let op = if batch.len() == 1 {
        batch[0].op()
    } else {
        "a batch of writes"
    };
    let sync = batch.iter().any(|item| item.durable());
    let lax = &inner.queue.lax;
    let options = &inner.options;
    let done = retry_busy(
        op,
        loc,
        options.busy_timeout,
        options.on_busy.as_ref(),
        || {
            // Switched outside the transaction. Not reaching FULL fails the batch; not
            // reaching NORMAL only costs an fsync.
            if sync == lax.load(Ordering::Relaxed) {
                let mode = if sync { "FULL" } else { "NORMAL" };
                match conn.pragma_update(None, "synchronous", mode) {
                    Ok(()) => lax.store(!sync, Ordering::Relaxed),
                    Err(e) if sync => return Err(map_err(op, loc, e)),
                    Err(_) => {}
                }
            }
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| map_err(op, loc, e))?;
            for item in batch.iter_mut() {
                item.run(&tx, loc)?;
            }
            tx.commit().map_err(|e| map_err(op, loc, e))
        },
    );
    match done {
        Ok(()) => {
            inner.queue.commits.fetch_add(1, Ordering::Relaxed);
            if !inner.queue.lax.load(Ordering::Relaxed) {
                inner.queue.synced.fetch_add(1, Ordering::Relaxed);
            }
            batch.into_iter().for_each(|item| item.committed())
        }
        Err(e) => {
            let shared = Arc::new(e);
            for item in batch {
                let error = copy_error(item.op(), &shared);
                item.failed(error);
            }
        }
    }
}

/// `e` for each write of a failed batch: transient and corrupt errors keep their kind (callers
/// retry or stop on it), others become a `Query` error of the write's own operation keeping `e`
/// as its source.
fn copy_error(op: &'static str, e: &Arc<StoreError>) -> StoreError {
    match e.as_ref() {
        StoreError::Locked { location, message } => StoreError::Locked {
            location: location.clone(),
            message: message.clone(),
        },
        StoreError::Corrupt { location, message } => StoreError::Corrupt {
            location: location.clone(),
            message: message.clone(),
        },
        StoreError::Unavailable { op, message } => StoreError::Unavailable {
            op,
            message: message.clone(),
        },
        _ => StoreError::Query {
            op,
            source: Box::new(BatchFailed(e.clone())),
        },
    }
}

/// The error that kept a batch from committing, shared by its writes.
#[derive(Debug)]
struct BatchFailed(Arc<StoreError>);

impl std::fmt::Display for BatchFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "its transaction (shared with other writes) did not commit: {}",
            self.0
        )
    }
}

impl std::error::Error for BatchFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

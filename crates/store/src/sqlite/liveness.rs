//! Owner liveness on one machine: an exclusive `flock` on a per-owner lock file next to the
//! database (`<db>.owners/<hash of the owner id>.lock`), held by the owner while it lives.
//!
//! ## Guarantees
//! - The kernel releases the lock when the owner's process dies (even by SIGKILL), so a
//!   claimer that can take it knows the owner is gone and may take its runs before their
//!   lease expires; the claim still bumps the epoch in the same transaction (fencing as ever).
//! - An owner is judged by its lock only if it registered in `owner_liveness` after taking
//!   the lock; any other owner (older builds, liveness switched off) by its lease alone. The
//!   row is written by the owner's first `acquire` or `claim`, in the same transaction as the
//!   lease it takes (one commit fewer per `tether run` than a transaction of its own): a lease
//!   never exists before its owner's row, and an owner without a lease needs no row.
//! - A frozen owner (SIGSTOP) keeps its lock: taken over at lease expiry only.
//!
//! ## Assumptions
//! - Every process sharing the database runs on this machine (as SQLite itself assumes);
//!   `flock` locks are per open file description, so even one process's second open sees
//!   its own lock as held.
//!
//! ## Caveats
//! - On a network file system `flock` may be emulated or local only: keep the store local.
use std::{
    fs::{File, OpenOptions, TryLockError},
    path::{Path, PathBuf},
};

use rusqlite::{params, Connection};
use tether_core::{
    ids::{fnv1a64, OwnerId},
    store::{Liveness, StoreError},
};

use super::open::{map_err, now_ms};

/// Directory of the owners' lock files for the database at `db`.
pub(super) fn dir_of(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".owners");
    db.with_file_name(name)
}

fn file_of(dir: &Path, owner: &str) -> PathBuf {
    dir.join(format!("{:016x}.lock", fnv1a64(owner.as_bytes())))
}

/// Removes the lock file while still holding the lock, then drops (unlocks) it.
pub(super) struct Held {
    path: PathBuf,
    _file: File,
}

impl Drop for Held {
    fn drop(&mut self) {
        // A clean exit: a missing file reads as "gone" too, so removing it first is safe.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether the owner registered at `owner` is gone: its lock file is missing or lockable.
fn gone(dir: &Path, owner: &str) -> bool {
    match File::open(file_of(dir, owner)) {
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        // Taken and dropped at once: we only wanted to know whether we could.
        Ok(f) => match f.try_lock() {
            Ok(()) => true,
            Err(TryLockError::WouldBlock) => false,
            // Cannot tell (permissions, no flock support): trust the lease.
            Err(TryLockError::Error(_)) => false,
        },
    }
}

/// The registered owners that are gone, as a JSON array for `json_each` in the claim.
pub(super) fn gone_owners(tx: &Connection, loc: &str, dir: &Path) -> Result<String, StoreError> {
    let owners: Vec<String> = tx
        .prepare_cached("SELECT owner FROM owner_liveness")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| map_err("claim", loc, e))?;
    let gone: Vec<String> = owners.into_iter().filter(|o| gone(dir, o)).collect();
    Ok(serde_json::Value::from(gone).to_string())
}

/// Whether `owner` registered and is gone (for `acquire`).
pub(super) fn owner_gone(
    tx: &Connection,
    loc: &str,
    dir: &Path,
    owner: Option<&str>,
) -> Result<bool, StoreError> {
    let Some(owner) = owner else { return Ok(false) };
    let registered = tx
        .prepare_cached("SELECT 1 FROM owner_liveness WHERE owner = ?1")
        .and_then(|mut s| s.exists([owner]))
        .map_err(|e| map_err("acquire", loc, e))?;
    Ok(registered && gone(dir, owner))
}

/// Takes `owner`'s lock file (blocking file I/O: call from the blocking pool). `None` if
/// another live process holds the same file (a hash collision): the lease alone then decides.
pub(super) fn lock(dir: &Path, loc: &str, owner: &OwnerId) -> Result<Option<Held>, StoreError> {
    let io = |what: &str, e: std::io::Error| StoreError::Open {
        location: loc.to_string(),
        message: format!(
            "cannot {what} the owners' lock directory {}: {e}; make the directory next to the \
             database writable, or switch liveness off (`liveness = false`)",
            dir.display()
        ),
        source: Some(Box::new(e)),
    };
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io("create", e))?;
    }
    let path = file_of(dir, &owner.0);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io("write in", e))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(Held { path, _file: file })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(io("lock a file in", e)),
    }
}

/// Registers `owner` (its lock is held already, so a row always means "lock held since")
/// and removes the rows and files of owners gone with no unfinished run left.
pub(super) fn register(
    tx: &Connection,
    loc: &str,
    dir: &Path,
    owner: &OwnerId,
) -> Result<(), StoreError> {
    let op = "hold_liveness";
    let owners: Vec<String> = tx
        .prepare_cached(
            "SELECT l.owner FROM owner_liveness l WHERE l.owner <> ?1 AND NOT EXISTS \
             (SELECT 1 FROM runs r WHERE r.owner = l.owner AND r.phase <> 'finished')",
        )
        .and_then(|mut s| s.query_map([&owner.0], |r| r.get(0))?.collect())
        .map_err(|e| map_err(op, loc, e))?;
    for o in owners.iter().filter(|o| gone(dir, o)) {
        tx.execute("DELETE FROM owner_liveness WHERE owner = ?1", [o])
            .map_err(|e| map_err(op, loc, e))?;
        let _ = std::fs::remove_file(file_of(dir, o));
    }
    tx.execute(
        "INSERT OR IGNORE INTO owner_liveness (owner, since_ms) VALUES (?1, ?2)",
        params![owner.0, now_ms()],
    )
    .map_err(|e| map_err(op, loc, e))?;
    Ok(())
}

impl super::SqliteStore {
    pub(super) async fn hold_liveness_impl(
        &self,
        owner: &OwnerId,
    ) -> Result<Option<Liveness>, StoreError> {
        let (dir, loc, who) = (
            self.owners_dir(),
            self.inner.location.clone(),
            owner.clone(),
        );
        let held = tokio::task::spawn_blocking(move || lock(&dir, &loc, &who))
            .await
            .map_err(|e| StoreError::Query {
                op: "hold_liveness",
                source: Box::new(e),
            })??;
        let Some(held) = held else { return Ok(None) };
        self.inner
            .unregistered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(owner.0.clone());
        Ok(Some(Liveness::new(held)))
    }

    /// Whether `owner` holds its lock here but has no `owner_liveness` row yet: the caller's
    /// lease-taking write then registers it ([`register`]) and calls [`Self::registered`].
    pub(super) fn unregistered(&self, owner: &OwnerId) -> bool {
        self.inner
            .unregistered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&owner.0)
    }

    /// `owner`'s row is committed.
    pub(super) fn registered(&self, owner: &OwnerId) {
        self.inner
            .unregistered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&owner.0);
    }
}

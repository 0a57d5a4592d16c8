//! Owner liveness on one machine: an exclusive lock on one byte of `<db>.owners/live.lock`,
//! at an offset derived from the owner id, held by the owner while it lives (an
//! open-file-description lock, `F_OFD_SETLK`, released by the kernel when the last descriptor
//! of that open file closes).
//!
//! ## Guarantees
//! - The kernel releases the lock when the owner's process dies (even by SIGKILL), so a
//!   claimer that finds the byte unlocked knows the owner is gone and may take its runs before
//!   their lease expires; the claim still bumps the epoch in the same transaction (fencing as
//!   ever).
//! - An owner is judged by its lock only if it registered in `owner_locks` after taking the
//!   lock; any other owner (liveness switched off) by its lease alone. The row is written by
//!   the owner's first `acquire` or `claim`, in the same transaction as the lease it takes: a
//!   lease never exists before its owner's row, and an owner without a lease needs no row.
//! - Owners of builds before schema 8 held a lock file of their own (`<hash>.lock`, registered
//!   in `owner_liveness`): they are still judged by that file. Builds before 8 do not read
//!   `owner_locks`, so they judge newer owners by their lease: slower, never wrong.
//! - A frozen owner (SIGSTOP) keeps its lock: taken over at lease expiry only.
//! - One file for every owner: no file is created or removed per owner (creating and removing
//!   a lock file per `tether run` cost ~3.5 ms of kernel time in ext4's inode allocation).
//!
//! ## Assumptions
//! - Every process sharing the database runs on this machine (as SQLite itself assumes). A
//!   lock is per open file description: a check opens the file afresh, so even the holder's
//!   own process sees the lock as held.
//!
//! ## Caveats
//! - Two owners whose ids hash to the same byte (47 bits) cannot both hold it: the second
//!   runs on its lease alone. On a network file system byte-range locks may be local only:
//!   keep the store local.
use std::{
    fs::{File, OpenOptions, TryLockError},
    os::fd::AsFd,
    path::{Path, PathBuf},
};

use nix::fcntl::{fcntl, FcntlArg};
use rusqlite::{params, Connection};
use tether_core::{
    ids::{fnv1a64, OwnerId},
    store::{Liveness, StoreError},
};

use super::open::{map_err, now_ms};

/// Directory of the owners' lock file for the database at `db`.
pub(super) fn dir_of(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".owners");
    db.with_file_name(name)
}

fn file_in(dir: &Path) -> PathBuf {
    dir.join("live.lock")
}

/// The byte of `owner` in the lock file.
fn offset_of(owner: &str) -> i64 {
    (fnv1a64(owner.as_bytes()) & 0x7fff_ffff_ffff) as i64
}

/// The lock file of an owner of a build before schema 8.
fn legacy_file(dir: &Path, owner: &str) -> PathBuf {
    dir.join(format!("{:016x}.lock", fnv1a64(owner.as_bytes())))
}

fn byte(kind: libc::c_short, owner: &str) -> libc::flock {
    libc::flock {
        l_type: kind,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: offset_of(owner),
        l_len: 1,
        l_pid: 0,
    }
}

/// Holds `owner`'s byte while it lives (the lock goes with the descriptor).
pub(super) struct Held {
    _file: File,
}

/// Whether `owner` (registered in `owner_locks`) is gone: nobody holds its byte. A check that
/// fails (no lock file, no OFD locks) trusts the lease.
fn gone(file: Option<&File>, owner: &str) -> bool {
    let Some(file) = file else { return false };
    let mut probe = byte(libc::F_WRLCK as libc::c_short, owner);
    match fcntl(file.as_fd(), FcntlArg::F_OFD_GETLK(&mut probe)) {
        Ok(_) => probe.l_type == libc::F_UNLCK as libc::c_short,
        Err(_) => false,
    }
}

/// Whether the pre-8 owner `owner` is gone: its lock file is missing or lockable.
fn legacy_gone(dir: &Path, owner: &str) -> bool {
    match File::open(legacy_file(dir, owner)) {
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
    let select = |sql: &str| -> Result<Vec<String>, StoreError> {
        tx.prepare_cached(sql)
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| map_err("claim", loc, e))
    };
    let file = File::open(file_in(dir)).ok();
    let mut gone_ones: Vec<String> = select("SELECT owner FROM owner_locks")?;
    gone_ones.retain(|o| gone(file.as_ref(), o));
    let mut legacy = select("SELECT owner FROM owner_liveness")?;
    legacy.retain(|o| legacy_gone(dir, o));
    gone_ones.extend(legacy);
    Ok(serde_json::Value::from(gone_ones).to_string())
}

/// Whether `owner` registered and is gone (for `acquire`).
pub(super) fn owner_gone(
    tx: &Connection,
    loc: &str,
    dir: &Path,
    owner: Option<&str>,
) -> Result<bool, StoreError> {
    let Some(owner) = owner else { return Ok(false) };
    let exists = |sql: &str| {
        tx.prepare_cached(sql)
            .and_then(|mut s| s.exists([owner]))
            .map_err(|e| map_err("acquire", loc, e))
    };
    if exists("SELECT 1 FROM owner_locks WHERE owner = ?1")? {
        return Ok(gone(File::open(file_in(dir)).ok().as_ref(), owner));
    }
    Ok(exists("SELECT 1 FROM owner_liveness WHERE owner = ?1")? && legacy_gone(dir, owner))
}

/// Takes `owner`'s byte (blocking file I/O: call from the blocking pool). `None` if another
/// live owner holds the same byte (a hash collision): the lease alone then decides.
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
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(file_in(dir))
        .map_err(|e| io("write in", e))?;
    let lock = byte(libc::F_WRLCK as libc::c_short, &owner.0);
    match fcntl(file.as_fd(), FcntlArg::F_OFD_SETLK(&lock)) {
        Ok(_) => Ok(Some(Held { _file: file })),
        Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES) => Ok(None),
        Err(e) => Err(io("lock a byte of a file in", e.into())),
    }
}

/// Registers `owner` (its lock is held already, so a row always means "lock held since")
/// and removes the rows (and pre-8 lock files) of owners gone with no unfinished run left.
pub(super) fn register(
    tx: &Connection,
    loc: &str,
    dir: &Path,
    owner: &OwnerId,
) -> Result<(), StoreError> {
    let op = "hold_liveness";
    let idle = |table: &str| -> Result<Vec<String>, StoreError> {
        tx.prepare_cached(&format!(
            "SELECT l.owner FROM {table} l WHERE l.owner <> ?1 AND NOT EXISTS \
             (SELECT 1 FROM runs r WHERE r.owner = l.owner AND r.phase <> 'finished')"
        ))
        .and_then(|mut s| s.query_map([&owner.0], |r| r.get(0))?.collect())
        .map_err(|e| map_err(op, loc, e))
    };
    let file = File::open(file_in(dir)).ok();
    for o in idle("owner_locks")?
        .iter()
        .filter(|o| gone(file.as_ref(), o))
    {
        tx.execute("DELETE FROM owner_locks WHERE owner = ?1", [o])
            .map_err(|e| map_err(op, loc, e))?;
    }
    for o in idle("owner_liveness")?
        .iter()
        .filter(|o| legacy_gone(dir, o))
    {
        tx.execute("DELETE FROM owner_liveness WHERE owner = ?1", [o])
            .map_err(|e| map_err(op, loc, e))?;
        let _ = std::fs::remove_file(legacy_file(dir, o));
    }
    tx.execute(
        "INSERT OR IGNORE INTO owner_locks (owner, since_ms) VALUES (?1, ?2)",
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

    /// Whether `owner` holds its lock here but has no `owner_locks` row yet: the caller's
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

#[cfg(test)]
#[path = "liveness_tests.rs"]
mod tests;

//! How the local backend creates, opens and trusts the files of its jobs directory.
//!
//! ## Guarantees
//! - The jobs directory and every tag directory are created `0700`, files `0600`, whatever the
//!   umask (the mode is given at creation; a umask can only remove bits).
//! - A jobs or tag directory not owned by this user, or writable by group or others, is refused
//!   ([`UnsafePath`]): nobody else can plant a record, a log symlink or a lock in it.
//! - Files in job directories are opened with `O_NOFOLLOW`: a symbolic link planted as
//!   `stdout.log` (or any record) is an error, never followed. Records ([`read_owned`]) and
//!   appended files must be owned by this user; anything else is treated as not ours.
//! - Temporary files of [`write_atomic`] are created with `O_EXCL`, a random name and mode
//!   `0600` (the `tempfile` crate), then renamed over the target.
//!
//! ## Assumptions
//! - One user runs every tether process of a jobs directory (the owner check compares with
//!   this process's effective uid).
//!
//! ## Caveats
//! - The jobs directory itself may be a symbolic link (e.g. to a bigger disk); what it points
//!   to must pass the checks. Tag directories must not be links.
//! - An existing jobs directory readable by others (`0755`) is accepted: others can read job
//!   logs there, but not change anything. `chmod 700` it if logs are confidential.
use std::{
    fs::{self, DirBuilder, File, Metadata, OpenOptions},
    io::{self, Read, Write},
    os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

use super::sys;

/// A directory or file tether refuses to use, and what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnsafePath {
    /// Owned by another user.
    #[error("{path} is owned by uid {owner} (mode {mode:o}), not by this user (uid {us}): tether only trusts files of its own user there; remove it, chown it to uid {us}, or use another jobs_dir (TETHER_JOBS_DIR)")]
    Foreign {
        /// The path.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Its permission bits.
        mode: u32,
        /// Our effective uid.
        us: u32,
    },
    /// Writable by group or others.
    #[error("{path} (owner uid {owner}, mode {mode:o}) is writable by other users, who could plant files tether would trust: run `chmod go-w {path}` or use another jobs_dir")]
    Writable {
        /// The path.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a directory (or a symbolic link where none may be).
    #[error("{path} is {what}, not a directory: remove it or use another jobs_dir")]
    NotADirectory {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        what: &'static str,
    },
    /// A symbolic link where tether never follows one.
    #[error("{path} is a symbolic link; tether never follows links in job directories: someone planted it, remove it")]
    Symlink {
        /// The path.
        path: PathBuf,
    },
    /// The check itself failed.
    #[error(
        "cannot create or inspect {path}: {source}; check that its parent exists and is writable"
    )]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error, kept as the source.
        source: io::Error,
    },
}

impl From<UnsafePath> for io::Error {
    fn from(e: UnsafePath) -> io::Error {
        let kind = match &e {
            UnsafePath::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::PermissionDenied,
        };
        io::Error::new(kind, e)
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> UnsafePath + '_ {
    move |source| UnsafePath::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Ours (owned by our uid) and not writable by group or others.
fn check_private(path: &Path, meta: &Metadata) -> Result<(), UnsafePath> {
    let us = sys::euid();
    let (owner, mode) = (meta.uid(), meta.mode() & 0o7777);
    if owner != us {
        return Err(UnsafePath::Foreign {
            path: path.to_path_buf(),
            owner,
            mode,
            us,
        });
    }
    if mode & 0o022 != 0 {
        return Err(UnsafePath::Writable {
            path: path.to_path_buf(),
            owner,
            mode,
        });
    }
    Ok(())
}

fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_file() {
        "a file"
    } else if t.is_fifo() || t.is_socket() || t.is_block_device() || t.is_char_device() {
        "a special file"
    } else {
        "something else"
    }
}

fn check_dir(path: &Path, follow: bool) -> Result<bool, UnsafePath> {
    let meta = if follow {
        fs::metadata(path)
    } else {
        fs::symlink_metadata(path)
    };
    let meta = match meta {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err(path)(e)),
    };
    if !meta.is_dir() {
        return Err(UnsafePath::NotADirectory {
            path: path.to_path_buf(),
            what: kind_of(&meta),
        });
    }
    check_private(path, &meta)?;
    Ok(true)
}

/// Checks the jobs directory: `Ok(false)` when it does not exist.
pub fn check_jobs_dir(path: &Path) -> Result<bool, UnsafePath> {
    check_dir(path, true)
}

/// Checks a tag directory (never a link): `Ok(false)` when it does not exist.
pub fn check_tag_dir(path: &Path) -> Result<bool, UnsafePath> {
    check_dir(path, false)
}

/// Creates the jobs directory (and missing parents) `0700` unless it exists, then checks it.
pub fn ensure_jobs_dir(path: &Path) -> Result<(), UnsafePath> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io_err(path))?;
    check_dir(path, true).map(drop)
}

/// Creates a tag directory `0700` in an existing jobs directory unless it exists, then checks it.
pub fn ensure_tag_dir(path: &Path) -> Result<(), UnsafePath> {
    match DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(path)(e)),
    }
    check_dir(path, false).map(drop)
}

/// Opens with `O_NOFOLLOW`, turning the `ELOOP` of a link into [`UnsafePath::Symlink`], and
/// refuses a file owned by another user.
fn open_nofollow(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    let file = options
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                UnsafePath::Symlink {
                    path: path.to_path_buf(),
                }
                .into()
            } else {
                e
            }
        })?;
    let meta = file.metadata()?;
    let us = sys::euid();
    if meta.uid() != us {
        return Err(UnsafePath::Foreign {
            path: path.to_path_buf(),
            owner: meta.uid(),
            mode: meta.mode() & 0o7777,
            us,
        }
        .into());
    }
    Ok(file)
}

/// Opens (creating `0600`) a log for appending; never through a link, never another user's.
pub fn open_append(path: &Path) -> io::Result<File> {
    open_nofollow(
        path,
        OpenOptions::new().create(true).append(true).mode(0o600),
    )
}

/// Opens (creating `0600`) a lock file without truncating it; never through a link, never
/// another user's (a foreign lock could be held forever to stall our jobs).
pub fn open_lock(path: &Path) -> io::Result<File> {
    open_nofollow(
        path,
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600),
    )
}

/// Reads a whole record: `Ok(None)` when missing; an error when it is a link or not ours.
pub fn read_owned(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let mut file = match open_nofollow(path, OpenOptions::new().read(true)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    Ok(Some(data))
}

/// Writes `data` to `path` atomically: a new temporary file (`O_EXCL`, random name, `0600`) in
/// the same directory, fsync, rename over `path`, fsync of the directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .rand_bytes(12)
        .tempfile_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    // On error the temporary file is removed when `tmp` (inside the error) drops.
    tmp.persist(path).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn links_are_never_followed_and_modes_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = dir.path().join("jobs");
        ensure_jobs_dir(&jobs).unwrap();
        let target = dir.path().join("elsewhere");
        fs::write(&target, b"keep").unwrap();
        symlink(&target, jobs.join("stdout.log")).unwrap();
        let e = open_append(&jobs.join("stdout.log")).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let e = read_owned(&jobs.join("stdout.log")).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        write_atomic(&jobs.join("r.json"), b"{}").unwrap();
        let mode = fs::metadata(jobs.join("r.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        fs::set_permissions(&jobs, fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_jobs_dir(&jobs).unwrap_err().to_string();
        assert!(
            e.contains("writable by other users") && e.contains("777"),
            "{e}"
        );
    }
}

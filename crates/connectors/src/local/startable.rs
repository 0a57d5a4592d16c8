//! Whether a shape of a local job can be started on this machine: its program exists and is
//! executable, its working directory is a directory, its arguments and environment fit the
//! kernel's limits. Checked when a spec is submitted (a spec error, exit 2) and again right
//! before each launch (a rejected submission: the run ends at once instead of being
//! resubmitted `max_submissions` times).
//!
//! ## Guarantees
//! - Every failure names the field, the path or limit, and what to do.
//!
//! ## Caveats
//! - This is a check before the fact: a program deleted after it still fails at `exec`; the
//!   supervisor records that (with its errno) and `submit` reports it as rejected when it sees it.
//! - A file with execute permission that is not a valid program (`ENOEXEC`) is only found at
//!   `exec`.
use std::{
    collections::BTreeMap,
    ffi::{OsStr, OsString},
    os::unix::{ffi::OsStrExt, fs::PermissionsExt},
    path::{Path, PathBuf},
};

use super::{spec::Shaped, sys};

/// The kernel's limit on one argument or variable (`MAX_ARG_STRLEN`: 32 pages of 4 KiB).
const MAX_ARG_STRLEN: usize = 32 * 4096;
/// Search path `execvp` uses when the environment has no `PATH`.
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// Why a shape cannot be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unstartable {
    /// No such program (`ENOENT`).
    #[error("the program {program:?} {searched}: install it, fix the path, or set PATH in env")]
    NoProgram {
        /// The program as written (or resolved).
        program: String,
        /// Where it was looked for, in words.
        searched: String,
    },
    /// Found but not an executable file (`EACCES`).
    #[error("{path} is not an executable file ({why}): chmod +x it or name the right program")]
    NotExecutable {
        /// The file.
        path: PathBuf,
        /// What it is.
        why: String,
    },
    /// The working directory is missing or not a directory.
    #[error("workdir {path} {why}: create it first or fix workdir")]
    Workdir {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// One argument or variable over `MAX_ARG_STRLEN` (`E2BIG`).
    #[error("{what} is {len} bytes, over the kernel's limit of {MAX_ARG_STRLEN} for one argument or variable (E2BIG): pass big data in a file")]
    ArgTooLong {
        /// Which argument or variable.
        what: String,
        /// Its size.
        len: usize,
    },
    /// Arguments and environment together over `ARG_MAX` (`E2BIG`).
    #[error("the arguments and environment take {total} bytes, over the kernel's limit of {limit} (E2BIG): pass big data in a file")]
    TooBig {
        /// Their size.
        total: usize,
        /// `sysconf(_SC_ARG_MAX)`.
        limit: usize,
    },
}

/// Checks `shaped` as it would start with environment `env` (the job's whole environment).
pub fn check(shaped: &Shaped, env: &BTreeMap<OsString, OsString>) -> Result<(), Unstartable> {
    if let Some(wd) = &shaped.workdir {
        match std::fs::metadata(wd) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Unstartable::Workdir {
                    path: wd.clone(),
                    why: "is not a directory".into(),
                })
            }
            Err(e) => {
                return Err(Unstartable::Workdir {
                    path: wd.clone(),
                    why: format!("cannot be used ({e})"),
                })
            }
        }
    }
    check_size(&shaped.command, env)?;
    let Some(program) = shaped.command.first() else {
        return Ok(()); // refused by the spec's validation already
    };
    if program.contains('/') {
        let path = match &shaped.workdir {
            Some(wd) => wd.join(program),
            None => PathBuf::from(program),
        };
        return executable(&path).map_err(|why| match why {
            None => Unstartable::NoProgram {
                program: program.clone(),
                searched: format!("does not exist ({})", path.display()),
            },
            Some(why) => Unstartable::NotExecutable { path, why },
        });
    }
    let search = env
        .get(OsStr::new("PATH"))
        .cloned()
        .unwrap_or_else(|| DEFAULT_PATH.into());
    let mut not_executable = None;
    for dir in std::env::split_paths(&search) {
        let path = match (&shaped.workdir, dir.is_relative()) {
            (Some(wd), true) => wd.join(&dir).join(program),
            _ => dir.join(program),
        };
        match executable(&path) {
            Ok(()) => return Ok(()),
            Err(None) => {}
            Err(Some(why)) => {
                not_executable.get_or_insert((path, why));
            }
        }
    }
    Err(match not_executable {
        Some((path, why)) => Unstartable::NotExecutable { path, why },
        None => Unstartable::NoProgram {
            program: program.clone(),
            searched: format!("is not on PATH ({})", search.to_string_lossy()),
        },
    })
}

/// `Err(None)`: does not exist; `Err(Some(why))`: exists but cannot be executed.
fn executable(path: &Path) -> Result<(), Option<String>> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => Err(Some("not a regular file".into())),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => Err(Some(format!(
            "mode {:o}, no execute permission",
            m.permissions().mode() & 0o7777
        ))),
        Ok(_) => Ok(()),
        Err(_) => Err(None),
    }
}

fn check_size(command: &[String], env: &BTreeMap<OsString, OsString>) -> Result<(), Unstartable> {
    let pointer = std::mem::size_of::<usize>();
    let mut total = 0usize;
    for (i, a) in command.iter().enumerate() {
        let len = a.len() + 1;
        if len > MAX_ARG_STRLEN {
            return Err(Unstartable::ArgTooLong {
                what: format!("command[{i}]"),
                len,
            });
        }
        total += len + pointer;
    }
    for (k, v) in env {
        let len = k.as_bytes().len() + v.as_bytes().len() + 2;
        if len > MAX_ARG_STRLEN {
            return Err(Unstartable::ArgTooLong {
                what: format!("variable {}", k.to_string_lossy()),
                len,
            });
        }
        total += len + pointer;
    }
    let limit = sys::arg_max();
    if total > limit {
        return Err(Unstartable::TooBig { total, limit });
    }
    Ok(())
}

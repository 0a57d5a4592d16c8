//! Output that never panics on a closed stream.
//!
//! `println!`/`eprintln!` panic when the reader went away (`tether ls | head -1`, a worker
//! whose log pipe closed): the CLI exited 101 and a worker's run task died holding its lease.
//! Every line goes through these macros instead.
//!
//! ## Guarantees
//! - [`say!`] writes a line to stdout; once stdout is closed (EPIPE or any other error) it
//!   stops writing quietly for the rest of the process: the command still finishes its work
//!   (a run still ends, leases are still released) and exits with its own code.
//! - [`diag!`] writes a line to stderr and ignores every error.
//! - Both strip colour where their stream shows none (`crate::style`).
use std::{
    io::Write,
    sync::atomic::{AtomicBool, Ordering},
};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` and a newline to stdout, unless stdout was found closed before.
pub fn out_line(text: std::fmt::Arguments<'_>) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    // Through anstream: styles are stripped where stdout shows no colour (see `style`).
    let mut out = anstream::AutoStream::new(
        std::io::stdout().lock(),
        crate::style::choice(crate::style::Stream::Out),
    );
    if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Writes raw bytes to stdout; false once stdout is closed (the caller may stop producing).
pub fn out_bytes(data: &[u8]) -> bool {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return false;
    }
    let mut out = std::io::stdout().lock();
    if out.write_all(data).and_then(|()| out.flush()).is_err() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        return false;
    }
    true
}

/// Writes `text` and a newline to stderr, ignoring errors (a diagnostic must never kill us).
pub fn err_line(text: std::fmt::Arguments<'_>) {
    let mut err = anstream::AutoStream::new(
        std::io::stderr().lock(),
        crate::style::choice(crate::style::Stream::Err),
    );
    let _ = writeln!(err, "{text}").and_then(|()| err.flush());
}

/// `println!` that stops quietly once stdout is closed.
macro_rules! say {
    ($($arg:tt)*) => { $crate::io::out_line(format_args!($($arg)*)) };
}

/// `eprintln!` that ignores a closed or broken stderr.
macro_rules! diag {
    ($($arg:tt)*) => { $crate::io::err_line(format_args!($($arg)*)) };
}

/// Reads a job spec from stdin (`tether run -`): ("<stdin>", text). Specs over
/// [`tether_core::spec::MAX_SPEC_BYTES`] are refused without reading further.
pub fn read_spec_stdin() -> Result<(String, String), crate::commands::CliError> {
    use std::io::Read;
    let limit = tether_core::spec::MAX_SPEC_BYTES;
    let mut text = String::new();
    std::io::stdin()
        .lock()
        .take(limit + 1)
        .read_to_string(&mut text)
        .map_err(|e| {
            crate::commands::CliError::usage(format!(
                "cannot read the job spec from stdin: {e} (`-` reads a TOML spec from stdin)"
            ))
        })?;
    if text.len() as u64 > limit {
        return Err(crate::commands::CliError::usage(format!(
            "the job spec on stdin is larger than {} KiB: a spec describes a job, it does not \
             carry its data; move large content into files the job reads",
            limit >> 10
        )));
    }
    Ok(("<stdin>".into(), text))
}

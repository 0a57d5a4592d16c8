//! Fault injection for crash and freeze tests: `TETHER_FAULT=stop-holding-write-lock:<op>`
//! makes this process stop itself (SIGSTOP) inside the SQLite write transaction of `<op>`
//! (e.g. `create_run`), so a test can freeze a real `tether` exactly while it holds the lock.
//! Nothing in normal operation sets it, and a release build ignores it (as the CLI's own
//! `TETHER_FAULT` points do), unless built with the `fault-injection` feature.

/// Whether `TETHER_FAULT` is obeyed at all in this build.
const ENABLED: bool = cfg!(any(debug_assertions, feature = "fault-injection"));

/// Stops this process with SIGSTOP if `TETHER_FAULT` asks for it at `op`.
pub(crate) fn maybe_stop_holding_write_lock(op: &str) {
    if !ENABLED {
        return;
    }
    let Ok(fault) = std::env::var("TETHER_FAULT") else {
        return;
    };
    if fault.strip_prefix("stop-holding-write-lock:") != Some(op) {
        return;
    }
    eprintln!("tether: TETHER_FAULT={fault}: stopping myself (SIGSTOP) holding the write lock");
    // kill(1) rather than libc: this crate has no unsafe code. We stop while waiting for it.
    let _ = std::process::Command::new("kill")
        .args(["-STOP", &std::process::id().to_string()])
        .status();
}

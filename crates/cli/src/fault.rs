//! Fault injection for crash tests: `TETHER_FAULT=<checkpoint>` makes this process SIGKILL
//! itself at that protocol checkpoint (`after-intent`, `after-submit`, `after-submitted`).
//! Nothing in normal operation sets it; it exists so tests can crash at exact points.
use tether_core::{engine::Checkpoint, ids::RunKey};

/// Kills this process with SIGKILL if `TETHER_FAULT` names `point`.
pub fn maybe_crash(_key: &RunKey, point: Checkpoint) {
    if std::env::var("TETHER_FAULT").ok().as_deref() == Some(point.name()) {
        eprintln!(
            "tether: TETHER_FAULT={}: killing myself with SIGKILL",
            point.name()
        );
        // SAFETY: kill(2) on our own pid with a valid signal number has no memory effects.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

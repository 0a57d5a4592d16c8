//! Fault injection for crash tests: `TETHER_FAULT=<checkpoint>` makes this process SIGKILL
//! itself at that protocol checkpoint (`after-intent`, `after-submit`, `after-submitted`);
//! `TETHER_FAULT=panic-<checkpoint>` panics there instead (inside the run's task in a worker).
//!
//! ## Guarantees
//! - Only test builds obey it: debug builds (what `cargo test` builds the binary with) or a
//!   build with the `fault-injection` feature. A release build ignores `TETHER_FAULT`, so an
//!   environment variable left in a production shell can never kill or break a run.
use tether_core::{engine::Checkpoint, ids::RunKey};

/// Whether this build obeys `TETHER_FAULT`.
const ENABLED: bool = cfg!(any(debug_assertions, feature = "fault-injection"));

/// Kills this process with SIGKILL (or panics) if `TETHER_FAULT` names `point`.
pub fn maybe_crash(_key: &RunKey, point: Checkpoint) {
    if !ENABLED {
        return;
    }
    let Ok(fault) = std::env::var("TETHER_FAULT") else {
        return;
    };
    if fault.strip_prefix("panic-") == Some(point.name()) {
        panic!("TETHER_FAULT={fault}: panicking on purpose");
    }
    if fault == point.name() {
        diag!(
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

//! Where a host-bound job lives, and who may judge it.
//!
//! Some backends run jobs on the machine of the process that submitted them (the `local`
//! backend). Such a job can only be observed from that machine, through the directory it was
//! launched in. The engine records a [`Placement`] with the run's first intent (in the same
//! fenced write), and from then on:
//!
//! ## Guarantees
//! - A process on the recorded host uses the recorded location, whatever its own configuration
//!   says (a rerun from a shell without `TETHER_JOBS_DIR` finds the job where it was started).
//! - A process on another host never judges the job: it is unknown ("lives on host X"), never
//!   lost, so no second copy is started on a guess. Workers on other hosts do not claim it.
//! - Only an operator's explicit `tether forget-host X` declares the jobs of host X lost.
//!
//! ## Assumptions
//! - Host names are unique within one state store's fleet.
use serde::{Deserialize, Serialize};

/// The machine and location of a host-bound submission.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Placement {
    /// Host name of the machine (what workers filter claims by).
    pub host: String,
    /// Kernel boot id at the time of the intent: a changed boot id on the same host means the
    /// machine rebooted since.
    pub boot_id: String,
    /// Backend-specific location on that host (the local backend: the absolute jobs directory).
    pub location: String,
}

impl Placement {
    /// `host X (location)` for messages.
    pub fn describe(&self) -> String {
        format!("host {} ({})", self.host, self.location)
    }
}

/// The machine a process runs on, as the engine and workers compare it with placements.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HostIdentity {
    /// Host name.
    pub host: String,
    /// Kernel boot id.
    pub boot_id: String,
}

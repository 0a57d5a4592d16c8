//! The local backend is host-bound: a job lives on the machine and in the jobs directory that
//! launched it (see [`tether_core::placement`]).
//!
//! ## Guarantees
//! - A process on the recorded host reaches the job through the recorded jobs directory,
//!   whatever its own `TETHER_JOBS_DIR` or state location says.
//! - A process on another host gets [`Elsewhere`]: it never reads its own jobs directory for
//!   the tag and so never calls the job lost.
//!
//! ## Caveats
//! - Same host name with another boot id is taken as the same machine after a reboot only if
//!   the recorded jobs directory exists here; its jobs died with the reboot and are then
//!   judged normally (their identity check fails: lost). Without the directory it is another
//!   machine that happens to share the name: [`Elsewhere`].
use std::{path::PathBuf, sync::Arc};

use tether_core::{
    connector::{Elsewhere, HostBound},
    placement::{HostIdentity, Placement},
    Connector,
};

use super::{identity, LocalConnector};

/// This machine: host name and boot id (empty strings where unreadable).
pub fn this_host() -> HostIdentity {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    HostIdentity {
        host: if host.is_empty() {
            "localhost".into()
        } else {
            host
        },
        boot_id: identity::boot_id().unwrap_or_default(),
    }
}

impl HostBound for LocalConnector {
    fn placement(&self) -> Placement {
        let me = this_host();
        let dir = std::fs::canonicalize(&self.jobs_dir)
            .or_else(|_| std::path::absolute(&self.jobs_dir))
            .unwrap_or_else(|_| self.jobs_dir.clone());
        Placement {
            host: me.host,
            boot_id: me.boot_id,
            location: dir.display().to_string(),
        }
    }

    fn rebind(&self, recorded: &Placement) -> Result<Arc<dyn Connector>, Elsewhere> {
        let me = this_host();
        let dir = PathBuf::from(&recorded.location);
        let same_boot = me.boot_id == recorded.boot_id;
        if me.host != recorded.host || (!same_boot && !dir.is_dir()) {
            return Err(Elsewhere {
                placement: recorded.clone(),
                reason: if me.host == recorded.host {
                    format!(
                        "this machine has the same name but another boot id, and no {}",
                        recorded.location
                    )
                } else {
                    format!("this is host {}", me.host)
                },
            });
        }
        let mut here = self.clone();
        here.jobs_dir = dir;
        Ok(Arc::new(here))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::LocalSpec;

    fn connector(dir: &std::path::Path) -> LocalConnector {
        let spec = LocalSpec::new(
            "t.toml",
            crate::local::LocalJob {
                kind: "local".into(),
                command: vec!["true".into()],
                env: Default::default(),
                workdir: None,
                memory_limit: None,
                timeout: None,
            },
            None,
            dir,
        )
        .unwrap();
        LocalConnector::new(dir.to_path_buf(), vec!["sup".into()], spec)
    }

    #[test]
    fn same_host_uses_the_recorded_directory_and_another_host_is_elsewhere() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let here = connector(a.path()).placement();
        assert_eq!(here.host, this_host().host);
        assert_eq!(
            here.location,
            std::fs::canonicalize(a.path())
                .unwrap()
                .display()
                .to_string()
        );
        // A process configured with another jobs dir reaches the recorded one.
        let other = connector(b.path());
        let rebound = other.rebind(&here).expect("same host");
        assert!(rebound.host_bound().is_some());
        assert_eq!(
            rebound.host_bound().unwrap().placement().location,
            here.location
        );
        // Another host: never judged here.
        let far = Placement {
            host: format!("{}-other", here.host),
            ..here.clone()
        };
        let e = other.rebind(&far).err().expect("elsewhere");
        assert!(e.to_string().contains(&far.host), "{e}");
        // Same name, other boot, directory absent: not this machine either.
        let ghost = Placement {
            boot_id: "another-boot".into(),
            location: "/nonexistent/tether/jobs".into(),
            ..here.clone()
        };
        assert!(other.rebind(&ghost).is_err());
        // Same name, other boot, directory present: this machine after a reboot.
        let rebooted = Placement {
            boot_id: "another-boot".into(),
            ..here
        };
        assert!(other.rebind(&rebooted).is_ok());
    }
}

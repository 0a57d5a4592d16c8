//! [`LocalFactory`]: builds local connectors from `kind = "local"` specs. It holds the
//! settings only the local kind needs: where jobs live and how a supervisor is started.
use std::{path::PathBuf, sync::Arc};

use tether_core::spec::{parse_spec, SpecError};

use super::{LocalConnector, LocalJob, LocalRecovery, LocalSpec, DEFAULT_POLL};
use crate::registry::{BuildContext, Built, ConnectorFactory};

/// The factory of the `local` kind.
#[derive(Debug, Clone)]
pub struct LocalFactory {
    jobs_dir: PathBuf,
    supervisor: Vec<String>,
}

impl LocalFactory {
    /// Local jobs keep their supervisor state and logs in `jobs_dir` (one subdirectory per
    /// tag); `supervisor` is the program and leading arguments that start the supervisor (the
    /// `tether` binary with its hidden `__supervise` subcommand, or `tether-supervisor`).
    pub fn new(jobs_dir: PathBuf, supervisor: Vec<String>) -> Self {
        LocalFactory {
            jobs_dir,
            supervisor,
        }
    }

    /// The jobs directory connectors of this factory use (until rebound to a recorded one).
    pub fn jobs_dir(&self) -> &std::path::Path {
        &self.jobs_dir
    }

    fn spec(file: &str, text: &str, ctx: &BuildContext) -> Result<LocalSpec, SpecError> {
        let spec = parse_spec::<LocalJob, LocalRecovery>(file, text)?;
        LocalSpec::new(file, spec.job, spec.recovery, &ctx.base_dir())
    }
}

impl ConnectorFactory for LocalFactory {
    fn kind(&self) -> &str {
        "local"
    }

    fn build(&self, file: &str, text: &str, ctx: &BuildContext) -> Result<Built, SpecError> {
        let spec = parse_spec::<LocalJob, LocalRecovery>(file, text)?;
        if spec.job.kind != "local" {
            return Err(SpecError::Value {
                file: file.into(),
                field: "job.kind".into(),
                message: format!(
                    "is {:?}, but this is the local backend: write kind = \"local\"",
                    spec.job.kind
                ),
            });
        }
        let local = LocalSpec::new(
            file,
            spec.job.clone(),
            spec.recovery.clone(),
            &ctx.base_dir(),
        )?;
        let policy = spec.policy(DEFAULT_POLL, local.recovery.is_some());
        let connector = LocalConnector::new(self.jobs_dir.clone(), self.supervisor.clone(), local);
        Ok(Built {
            connector: Arc::new(connector),
            policy,
            durable: spec.durable,
        })
    }

    /// Also checks on this machine that the job can start ([`LocalSpec::check_startable`]).
    fn build_to_submit(
        &self,
        file: &str,
        text: &str,
        ctx: &BuildContext,
    ) -> Result<Built, SpecError> {
        let built = self.build(file, text, ctx)?;
        Self::spec(file, text, ctx)?.check_startable(file)?;
        Ok(built)
    }
}

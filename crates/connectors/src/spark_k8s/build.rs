//! From a spec to a [`SparkK8s`]: the checks, the kubeconfig and its context (read now, so a
//! missing file or context is a spec error), the recovery plan.
use std::{sync::Arc, time::Duration};

use tether_core::spec::SpecError;

use super::{
    api::Kube,
    recovery::{k8s_recovery_plan, major_minor},
    spec::K8sJob,
    KubeTarget, SparkK8s,
};
use crate::{
    registry::{BuildContext, Built, ConnectorFactory},
    spark::spec::{resolve_paths, Opened},
};

/// The factory of the `spark-k8s` kind.
#[derive(Debug, Clone, Default)]
pub struct K8sFactory;

impl ConnectorFactory for K8sFactory {
    fn kind(&self) -> &str {
        super::KIND
    }

    fn build(&self, file: &str, text: &str, ctx: &BuildContext) -> Result<Built, SpecError> {
        let opened = Opened::<K8sJob>::open(file, text)?;
        let spec = &opened.spec;
        let mut job = spec.job.clone();
        resolve_paths(
            &ctx.base_dir(),
            [
                job.spark_home.as_mut(),
                job.kubeconfig.as_mut(),
                job.driver_pod_template.as_mut(),
                job.executor_pod_template.as_mut(),
            ],
        );
        let target = KubeTarget::load(job.kubeconfig.clone(), job.context.clone())
            .map_err(|(field, m)| opened.err(field, m))?;
        let recovery = opened.recovery();
        // A plan exists unless recovery is off or the native flag is `false` (fail-fast); its
        // shape waits for the Spark version (the spec's, else `spark-submit --version` at the
        // first recovery submission).
        let version = job.spark_version.as_deref().and_then(major_minor);
        let has_plan = recovery.enabled
            && k8s_recovery_plan(&job.conf, job.executor.cores, &recovery, version).is_some();
        let plan = has_plan.then_some(recovery);
        let kube = Kube::new(target, job.namespace.clone(), job.request_timeout.0);
        let connector = SparkK8s {
            job,
            recovery: plan,
            kube,
        };
        Ok(Built {
            connector: Arc::new(connector),
            policy: spec.policy(Duration::from_secs(2), has_plan),
            durable: spec.durable,
        })
    }
}

//! From a spec to a [`SparkK8s`]: the checks, the kubeconfig and its context (read now, so a
//! missing file or context is a spec error), the recovery plan.
use std::{sync::Arc, time::Duration};

use tether_core::spec::{parse_spec, SpecError};

use super::{
    api::Kube,
    recovery::{k8s_recovery_plan, major_minor},
    spec::K8sJob,
    KubeTarget, SparkK8s,
};
use crate::{
    registry::{BuildContext, Built, ConnectorFactory},
    spark::recovery::SparkRecovery,
};

/// The factory of the `spark-k8s` kind.
#[derive(Debug, Clone, Default)]
pub struct K8sFactory;

impl ConnectorFactory for K8sFactory {
    fn kind(&self) -> &str {
        super::KIND
    }

    fn build(&self, file: &str, text: &str, ctx: &BuildContext) -> Result<Built, SpecError> {
        let spec = parse_spec::<K8sJob, SparkRecovery>(file, text)?;
        let err = |field: &str, message: String| SpecError::Value {
            file: file.into(),
            field: field.into(),
            message,
        };
        spec.job
            .validate()
            .map_err(|e| err(e.field(), e.to_string()))?;
        let mut job = spec.job.clone();
        let base = ctx.base_dir();
        for p in [
            job.spark_home.as_mut(),
            job.kubeconfig.as_mut(),
            job.driver_pod_template.as_mut(),
            job.executor_pod_template.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        let target = KubeTarget::load(job.kubeconfig.clone(), job.context.clone())
            .map_err(|(field, m)| err(field, m))?;
        let recovery = spec.recovery.clone().unwrap_or_default();
        // The version from the spec; without it the shape every Spark understands (reading
        // `spark-submit --version` is not done yet).
        let version = job.spark_version.as_deref().and_then(major_minor);
        let plan = recovery
            .enabled
            .then(|| k8s_recovery_plan(&job.conf, job.executor.cores, &recovery, version))
            .flatten();
        let has_plan = plan.is_some();
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

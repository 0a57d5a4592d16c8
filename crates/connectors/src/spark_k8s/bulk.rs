//! Bulk status ([`BulkStatus`]): one `GET /api/v1/namespaces/{ns}/pods?labelSelector=tether-tag,
//! spark-role=driver` lists every tether driver pod of the namespace, so a worker polling
//! thousands of Kubernetes runs asks once per tick instead of once per driver pod.
//!
//! ## Guarantees
//! - A driver pod in the list is judged exactly as `status` judges it ([`state::status_of`],
//!   the same pod object `GET` would give): phase, container states, tag label, annotations.
//! - A pod absent from the list is left to `status` (deleted since, or its tag label gone:
//!   `status` says `NotFound` or `Mismatch` after its own read).
//! - A failed list is unknown for every run it covers (the fleet's observer), never lost.
//!
//! ## Caveats
//! - The endpoint is the API server and the namespace: specs reaching one namespace through
//!   different kubeconfig users share one list (a user whose RBAC could not list would still
//!   be answered from another's list; `status` and `cancel` stay per spec).
use std::collections::HashMap;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use tether_core::{
    connector::{BulkAnswer, BulkError, BulkStatus, JobRef},
    observe::JobStatus,
};

use super::{spec::TAG_LABEL, state, SparkK8s, KIND};
use crate::spark::tag::label_value;

/// The driver pods of one list, by name.
struct Listed(HashMap<String, Pod>);

#[async_trait]
impl BulkStatus for SparkK8s {
    fn endpoint(&self) -> String {
        format!(
            "{KIND} {} namespace {}",
            self.kube.target().server,
            self.job.namespace
        )
    }

    async fn fetch(&self, _jobs: &[&JobRef]) -> Result<BulkAnswer, BulkError> {
        let selector = format!("{TAG_LABEL},spark-role=driver");
        let pods = self
            .kube
            .pods_with(&selector)
            .await
            .map_err(|e| BulkError {
                reason: crate::text::clean(&e.to_string(), &[]),
            })?;
        Ok(BulkAnswer::new(Listed(
            pods.into_iter()
                .filter_map(|p| Some((p.metadata.name.clone()?, p)))
                .collect(),
        )))
    }

    fn judge(&self, answer: &BulkAnswer, job: &JobRef) -> Option<JobStatus> {
        let Listed(pods) = answer.get::<Listed>()?;
        let pod = pods.get(job.external_id.0.as_str())?;
        let status = state::status_of(pod, &label_value(&job.submission.tag));
        Some(crate::text::clean_status(status, &[]))
    }
}

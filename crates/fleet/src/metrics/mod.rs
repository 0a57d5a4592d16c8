//! Prometheus metrics of the fleet: one [`Metrics`] handle per process, counted where each event
//! happens once (the worker's claim loop, its heartbeat, the engine observer, a timing decorator
//! around each connector), rendered in the Prometheus text format by [`Metrics::encode`].
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `tether_runs` | gauge, read from the store at scrape time | `state`, `kind` |
//! | `tether_submissions_total` | counter | `reason`: `fresh`, `after_failure`, `after_lost`, `after_intent`; `kind` |
//! | `tether_adoptions_by_tag_total` | counter | `kind` |
//! | `tether_takeovers_total` | counter | |
//! | `tether_lease_losses_total` | counter | |
//! | `tether_decisions_total` | counter | `decision` (the history's word: `submit`, `poll`, …) |
//! | `tether_unknown_statuses_total` | counter | `kind` |
//! | `tether_backend_request_seconds` | histogram | `kind`, `operation`, `outcome` |
//! | `tether_lease_renewal_seconds` | histogram | |
//! | `tether_local_slots_in_use` | gauge | |
//!
//! ## Guarantees
//! - Labels are closed vocabularies (kinds, decision words, outcomes): never a key, an id, a
//!   spec's text or a backend's message, so the series stay few and secrets never reach them.
//! - `tether_runs` reads the store's listing, which never loads spec bodies; a failed read
//!   leaves the gauge as last read and is logged.
//!
//! ## Caveats
//! - Counters are per process: a worker that restarts starts from zero (Prometheus' `rate`
//!   handles the reset). `tether_runs` is the same from every process (it is the store's view).
//! - `tether_takeovers_total` counts the claims of runs some owner held before (epoch above 1):
//!   runs of dead or frozen owners, and runs released by a stopping worker.
use std::{
    fmt,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use tether_core::{
    decide::SubmitReason,
    engine::{Checkpoint, Event, Observer},
    ids::RunKey,
    Decision, Store,
};
use tokio::sync::Semaphore;

mod timed;

pub use timed::timed;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    state: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    kind: String,
    operation: &'static str,
    outcome: &'static str,
}

/// 1 ms to ~33 s: local calls take a millisecond, a busy master's submit tens of seconds.
fn latency_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 16,
    ))
}

struct Inner {
    registry: Registry,
    runs: Family<RunLabels, Gauge>,
    submissions: Family<ReasonLabels, Counter>,
    adoptions: Family<KindLabels, Counter>,
    takeovers: Counter,
    lease_losses: Counter,
    decisions: Family<DecisionLabels, Counter>,
    unknown_statuses: Family<KindLabels, Counter>,
    requests: Family<RequestLabels, Histogram, fn() -> Histogram>,
    renewals: Histogram,
    slots_in_use: Gauge,
    /// The local slot pools of the workers in this process, and their sizes: read at scrape time.
    slot_pools: Mutex<Vec<(Weak<Semaphore>, usize)>>,
    /// Where `tether_runs` is read from.
    store: Mutex<Option<Arc<dyn Store>>>,
}

/// The metrics of one process. Cheap to clone (a shared handle).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, every counter at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let runs = Family::<RunLabels, Gauge>::default();
        let submissions = Family::<ReasonLabels, Counter>::default();
        let adoptions = Family::<KindLabels, Counter>::default();
        let takeovers = Counter::default();
        let lease_losses = Counter::default();
        let decisions = Family::<DecisionLabels, Counter>::default();
        let unknown_statuses = Family::<KindLabels, Counter>::default();
        let requests = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let renewals = latency_histogram();
        let slots_in_use = Gauge::default();
        registry.register(
            "tether_runs",
            "Runs in the store by state and backend kind",
            runs.clone(),
        );
        registry.register(
            "tether_submissions",
            "Submissions by why they were made",
            submissions.clone(),
        );
        registry.register(
            "tether_adoptions_by_tag",
            "Jobs found by their tag after an intent and adopted instead of submitted again",
            adoptions.clone(),
        );
        registry.register(
            "tether_takeovers",
            "Claims of runs another owner held before",
            takeovers.clone(),
        );
        registry.register(
            "tether_lease_losses",
            "Runs this process stopped driving because another owner took them",
            lease_losses.clone(),
        );
        registry.register(
            "tether_decisions",
            "Engine decisions by kind",
            decisions.clone(),
        );
        registry.register(
            "tether_unknown_statuses",
            "Status requests the backend could not answer definitely",
            unknown_statuses.clone(),
        );
        registry.register(
            "tether_backend_request_seconds",
            "Backend request latency by kind, operation and outcome",
            requests.clone(),
        );
        registry.register(
            "tether_lease_renewal_seconds",
            "Latency of the worker's renewal of all its leases",
            renewals.clone(),
        );
        registry.register(
            "tether_local_slots_in_use",
            "Local job slots held by running local jobs",
            slots_in_use.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                runs,
                submissions,
                adoptions,
                takeovers,
                lease_losses,
                decisions,
                unknown_statuses,
                requests,
                renewals,
                slots_in_use,
                slot_pools: Mutex::default(),
                store: Mutex::default(),
            }),
        }
    }

    /// Reads `tether_runs` from `store` at each [`Metrics::refresh`].
    pub fn attach_store(&self, store: Arc<dyn Store>) {
        *lock(&self.inner.store) = Some(store);
    }

    /// Counts `slots` (created with `total` permits) in `tether_local_slots_in_use`.
    pub(crate) fn watch_slots(&self, slots: &Arc<Semaphore>, total: usize) {
        lock(&self.inner.slot_pools).push((Arc::downgrade(slots), total));
    }

    /// Reads the gauges that live elsewhere: the runs from the attached store, the slots.
    pub async fn refresh(&self) {
        let store = lock(&self.inner.store).clone();
        if let Some(store) = store {
            // One grouped count per scrape: reading every run here made a scrape O(all runs).
            match store.count_runs().await {
                Ok(counts) => {
                    // Cleared first: a state no run is in any more drops out instead of staying.
                    self.inner.runs.clear();
                    for (state, kind, n) in counts {
                        let labels = RunLabels {
                            state: state.as_str().to_string(),
                            kind,
                        };
                        self.inner
                            .runs
                            .get_or_create(&labels)
                            .set(i64::try_from(n).unwrap_or(i64::MAX));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "metrics: cannot count the runs"),
            }
        }
        let mut pools = lock(&self.inner.slot_pools);
        pools.retain(|(pool, _)| pool.strong_count() > 0);
        let used: usize = pools
            .iter()
            .filter_map(|(pool, total)| {
                pool.upgrade()
                    .map(|p| total.saturating_sub(p.available_permits()))
            })
            .sum();
        self.inner
            .slots_in_use
            .set(i64::try_from(used).unwrap_or(i64::MAX));
    }

    /// The metrics in the Prometheus text format, as they stand (see [`Metrics::render`]).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }

    /// [`Metrics::refresh`], then [`Metrics::encode`]: what `/metrics` answers.
    pub async fn render(&self) -> String {
        self.refresh().await;
        self.encode()
    }

    pub(crate) fn takeover(&self) {
        self.inner.takeovers.inc();
    }

    pub(crate) fn lease_lost(&self) {
        self.inner.lease_losses.inc();
    }

    pub(crate) fn renewal(&self, took: Duration) {
        self.inner.renewals.observe(took.as_secs_f64());
    }

    pub(crate) fn request(
        &self,
        kind: &str,
        operation: &'static str,
        outcome: &'static str,
        took: Duration,
    ) {
        self.inner
            .requests
            .get_or_create(&RequestLabels {
                kind: kind.to_string(),
                operation,
                outcome,
            })
            .observe(took.as_secs_f64());
        if operation == "status" && outcome == "unknown" {
            self.inner
                .unknown_statuses
                .get_or_create(&KindLabels {
                    kind: kind.to_string(),
                })
                .inc();
        }
    }

    /// Counts `event` (decisions, submissions, adoptions) of a run of `kind`.
    fn count(&self, kind: &str, event: &Event) {
        let Event::Decided { decision, .. } = event else {
            return;
        };
        self.inner
            .decisions
            .get_or_create(&DecisionLabels {
                decision: decision.name().to_string(),
            })
            .inc();
        match &**decision {
            Decision::Submit { reason, .. } => {
                self.inner
                    .submissions
                    .get_or_create(&ReasonLabels {
                        reason: reason_label(reason),
                        kind: kind.to_string(),
                    })
                    .inc();
            }
            Decision::Adopt { .. } => {
                self.inner
                    .adoptions
                    .get_or_create(&KindLabels {
                        kind: kind.to_string(),
                    })
                    .inc();
            }
            _ => {}
        }
    }
}

/// The `reason` label of a submission.
fn reason_label(reason: &SubmitReason) -> &'static str {
    match reason {
        SubmitReason::Fresh => "fresh",
        SubmitReason::AfterFailure(_) => "after_failure",
        SubmitReason::AfterLost => "after_lost",
        // The same generation again: its intent was recorded, its job not found (or not searchable).
        _ => "after_intent",
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An [`Observer`] that counts the engine events of one run of `kind` in [`Metrics`], then
/// hands them on.
pub(crate) struct Counted {
    pub(crate) metrics: Metrics,
    pub(crate) kind: String,
    pub(crate) inner: Arc<dyn Observer>,
}

impl Observer for Counted {
    fn event(&self, key: &RunKey, event: &Event) {
        self.metrics.count(&self.kind, event);
        self.inner.event(key, event);
    }

    fn checkpoint(&self, key: &RunKey, point: Checkpoint) {
        self.inner.checkpoint(key, point);
    }
}

#[cfg(test)]
mod tests {
    use tether_core::{engine::Quiet, ids::ExternalId};

    use super::*;

    /// Adoptions are counted by the run's kind (submissions too: the CLI's metrics test reads
    /// them from real workers; an adoption needs a crash between intent and id, so here).
    #[test]
    fn adoptions_and_submissions_carry_the_runs_kind() {
        let metrics = Metrics::new();
        let counted = |kind: &str| Counted {
            metrics: metrics.clone(),
            kind: kind.into(),
            inner: Arc::new(Quiet),
        };
        let adopt = Event::Decided {
            generation: None,
            external_id: None,
            decision: Box::new(Decision::Adopt {
                external_id: ExternalId("app-1".into()),
            }),
            reason: "found by its tag".into(),
        };
        let key = RunKey::new("k").unwrap();
        counted("spark").event(&key, &adopt);
        counted("spark").event(&key, &adopt);
        counted("yarn").event(&key, &adopt);
        let text = metrics.encode();
        assert!(
            text.contains("tether_adoptions_by_tag_total{kind=\"spark\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("tether_adoptions_by_tag_total{kind=\"yarn\"} 1\n"),
            "{text}"
        );
    }
}

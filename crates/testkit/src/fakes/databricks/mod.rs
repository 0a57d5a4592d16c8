//! A **fake** Databricks workspace serving the Jobs API 2.2 subset tether uses, over HTTPS
//! with a CA made for the test ([`TestCa`]). It is not Databricks: it runs nothing. Each run's
//! life cycle is driven by the test ([`FakeDatabricks::set_state`], [`FakeDatabricks::finish`]),
//! or, with [`Fate`]s, by the run's own spec (the conformance suite's jobs end by themselves).
//!
//! It follows the documented semantics of the routes it serves:
//! - `POST /api/2.2/jobs/runs/submit` and `POST /api/2.2/jobs/run-now`: `{"run_id"}`. With an
//!   `idempotency_token` (at most 64 characters, else `400 INVALID_PARAMETER_VALUE`): "if a run
//!   with the provided token already exists, the request does not create a new run but returns
//!   the ID of the existing run instead. If a run with the provided token is deleted, an error is
//!   returned" (`400 INVALID_PARAMETER_VALUE`). Exactly one run per token.
//! - `GET /api/2.2/jobs/runs/get?run_id=`: `state` (`life_cycle_state`, `result_state`,
//!   `state_message`), the newer `status` (`state`, `termination_details {code, type,
//!   message}`), `run_page_url`, `tasks` (each with its own `run_id`); an unknown or deleted id is
//!   `404 RESOURCE_DOES_NOT_EXIST`.
//! - `GET /api/2.2/jobs/runs/get-output?run_id=<task run id>`: `logs`, `logs_truncated`,
//!   `error`, `error_trace`, `notebook_output`; the id of a run with tasks is refused (`400`,
//!   as Databricks refuses the output of multi-task runs).
//! - `POST /api/2.2/jobs/runs/cancel {"run_id"}`: `{}`; the run goes `TERMINATING` then
//!   `TERMINATED`/`CANCELED` at its next `runs/get`. Cancelling a finished run is a no-op.
//! - `GET /api/2.2/jobs/runs/list?limit=&page_token=&active_only=`: newest first, `limit`
//!   1..=25 (default 20), `has_more` and `next_page_token`; `active_only=true` lists queued,
//!   pending, blocked, running and terminating runs only.
//! - `POST /oidc/v1/token` (basic auth with client id and secret, `grant_type=
//!   client_credentials`, `scope=all-apis`): `{"access_token", "token_type": "Bearer",
//!   "expires_in"}`; tokens expire after [`FakeDatabricks::set_token_lifetime`].
//! - Every `/api/` request needs `Authorization: Bearer <PAT or unexpired OAuth token>`, else
//!   `401` (`403` for an expired token, as Databricks answers `Token is expired`).
//!
//! Faults ([`FakeDatabricks::inject`]) are taken by the next request to a route: a `429` with
//! `Retry-After`, a 5xx, or a dropped response (**after** acting on the request: a submit that
//! was carried out but whose answer was lost).
//!
//! ## Caveats
//! - Only the fields tether reads or sends are modelled; everything else is ignored.
//! - Times are not simulated: `start_time` is a counter, `expires_in` real seconds.
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use crate::http::{FakeServer, Reply, Request, TestCa};

mod routes;

/// A route of the fake, for faults and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// `runs/submit`.
    Submit,
    /// `run-now`.
    RunNow,
    /// `runs/get`.
    Get,
    /// `runs/get-output`.
    GetOutput,
    /// `runs/cancel`.
    Cancel,
    /// `runs/list`.
    List,
    /// `/oidc/v1/token`.
    Token,
}

/// A fault the next request to a route gets.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Fault {
    /// `429 Too Many Requests` with `Retry-After: <seconds>`; nothing done.
    TooMany(u64),
    /// This 5xx; nothing done.
    Status(u16),
    /// The request is carried out, then the connection is closed without an answer.
    DropAfter,
    /// The request is carried out, and the answer comes after this wait (a client timeout).
    SlowAfter(Duration),
}

/// Where a run is in its life cycle (`life_cycle_state`; `status.state` follows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Life {
    /// `PENDING` (`status.state` `PENDING`).
    Pending,
    /// `QUEUED`.
    Queued,
    /// `BLOCKED` (status only; `life_cycle_state` says `BLOCKED` too).
    Blocked,
    /// `RUNNING`.
    Running,
    /// `TERMINATING`.
    Terminating,
    /// `TERMINATED` with a result.
    Terminated,
    /// `INTERNAL_ERROR`.
    InternalError,
    /// `SKIPPED`.
    Skipped,
}

/// How a run ends by itself, chosen by the test from the run's request ([`FakeDatabricks::fate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fate {
    /// Stays as the test drives it (the default).
    Driven,
    /// `PENDING`, `RUNNING`, then `TERMINATED`/`SUCCESS` with these logs, one step per `runs/get`.
    Succeed(String),
    /// The same, ending `FAILED` with this state message.
    Fail(String),
    /// `RUNNING` until cancelled.
    RunForever,
}

/// One run, as the fake keeps it.
#[derive(Debug, Clone)]
pub struct Run {
    /// Its id.
    pub run_id: u64,
    /// `run_name` as submitted (a run-now run: `job-<job_id>`).
    pub run_name: String,
    /// `job_id` of a run-now run.
    pub job_id: Option<u64>,
    /// The idempotency token it was created with.
    pub token: Option<String>,
    /// The request body.
    pub request: serde_json::Value,
    /// Life cycle state.
    pub life: Life,
    /// `result_state` once terminated (`SUCCESS`, `FAILED`, `CANCELED`, `TIMEDOUT`, ...).
    pub result: Option<String>,
    /// `state_message`.
    pub message: String,
    /// Task keys and their task run ids.
    pub tasks: Vec<(String, u64)>,
    /// The driver output (`logs` of `runs/get-output`).
    pub logs: String,
    /// `error` of `runs/get-output`.
    pub error: Option<String>,
    /// How it ends by itself.
    pub fate: Fate,
    /// `runs/get` calls answered for it.
    pub gets: u64,
}

type FateFn = Arc<dyn Fn(&serde_json::Value) -> Fate + Send + Sync>;

#[derive(Default)]
pub(crate) struct State {
    pub(crate) runs: BTreeMap<u64, Run>,
    pub(crate) deleted: HashMap<u64, Run>,
    pub(crate) tokens: HashMap<String, u64>,
    pub(crate) next_id: u64,
    pub(crate) faults: HashMap<Route, VecDeque<Fault>>,
    pub(crate) counts: HashMap<Route, u64>,
    pub(crate) pat: Option<String>,
    pub(crate) client: Option<(String, String)>,
    pub(crate) issued: Vec<(String, Instant)>,
    pub(crate) lifetime: Duration,
    pub(crate) created: u64,
    pub(crate) fate: Option<FateFn>,
    pub(crate) base: String,
}

/// The running fake workspace; dropping it stops the server.
pub struct FakeDatabricks {
    /// The server underneath (requests, [`FakeServer::stop`]).
    pub server: FakeServer,
    /// The CA whose PEM a client must trust.
    pub ca: TestCa,
    state: Arc<Mutex<State>>,
}

impl FakeDatabricks {
    /// Starts a workspace on a loopback port over HTTPS, accepting bearer `pat` (if any) and
    /// OAuth client `client` (`(id, secret)`, if any). Tokens live an hour unless told.
    pub async fn start(
        pat: Option<&str>,
        client: Option<(&str, &str)>,
    ) -> std::io::Result<FakeDatabricks> {
        let ca = TestCa::new(false);
        let state = Arc::new(Mutex::new(State {
            next_id: 1000,
            pat: pat.map(str::to_string),
            client: client.map(|(i, s)| (i.to_string(), s.to_string())),
            lifetime: Duration::from_secs(3600),
            ..State::default()
        }));
        let st = state.clone();
        let server = FakeServer::builder()
            .tls(&ca)
            .fallback(move |r: &Request| routes::route(r, &st))
            .start()
            .await?;
        lock(&state).base = server.url().to_string();
        Ok(FakeDatabricks { server, ca, state })
    }

    /// `https://127.0.0.1:<port>`: the workspace host.
    pub fn url(&self) -> &str {
        self.server.url()
    }

    /// Decides each new run's [`Fate`] from its request body.
    pub fn fate(&self, f: impl Fn(&serde_json::Value) -> Fate + Send + Sync + 'static) {
        lock(&self.state).fate = Some(Arc::new(f));
    }

    /// The next request to `route` gets `fault` (faults queue up per route).
    pub fn inject(&self, route: Route, fault: Fault) {
        lock(&self.state)
            .faults
            .entry(route)
            .or_default()
            .push_back(fault);
    }

    /// OAuth tokens issued from now on live `lifetime` (`expires_in`).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        lock(&self.state).lifetime = lifetime;
    }

    /// How many runs were created (a repeated idempotency token creates none).
    pub fn runs_created(&self) -> u64 {
        lock(&self.state).created
    }

    /// Requests answered (or faulted) on `route`.
    pub fn count(&self, route: Route) -> u64 {
        lock(&self.state).counts.get(&route).copied().unwrap_or(0)
    }

    /// OAuth tokens issued so far.
    pub fn tokens_issued(&self) -> usize {
        lock(&self.state).issued.len()
    }

    /// A copy of run `id`.
    pub fn run(&self, id: u64) -> Option<Run> {
        lock(&self.state).runs.get(&id).cloned()
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> Vec<Run> {
        lock(&self.state).runs.values().cloned().collect()
    }

    /// Moves run `id` to `life` (a test driving the life cycle).
    pub fn set_state(&self, id: u64, life: Life) {
        if let Some(r) = lock(&self.state).runs.get_mut(&id) {
            r.life = life;
        }
    }

    /// Ends run `id`: `TERMINATED` with `result` (`SUCCESS`, `FAILED`, `TIMEDOUT`,
    /// `CANCELED`...), `message` as `state_message`, `logs` as its driver output.
    pub fn finish(&self, id: u64, result: &str, message: &str, logs: &str) {
        if let Some(r) = lock(&self.state).runs.get_mut(&id) {
            r.life = Life::Terminated;
            r.result = Some(result.to_string());
            r.message = message.to_string();
            r.logs = logs.to_string();
            r.error = (result != "SUCCESS").then(|| message.to_string());
        }
    }

    /// Deletes run `id` (as `runs/delete` would): `runs/get` then answers 404 and its token is
    /// refused.
    pub fn delete(&self, id: u64) {
        let mut s = lock(&self.state);
        if let Some(r) = s.runs.remove(&id) {
            s.deleted.insert(id, r);
        }
    }
}

pub(crate) fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply::text(
        status,
        serde_json::json!({"error_code": code, "message": message}).to_string(),
    )
    .header("content-type", "application/json")
}

#[cfg(test)]
mod tests;

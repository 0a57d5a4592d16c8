//! The fake workspace's answers, route by route (see the parent module for the semantics).
use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use base64::Engine as _;
use serde_json::{json, Value};

use super::{error, lock, Fate, Fault, Life, Route, Run, State};
use crate::http::{Reply, Request};

const API: &str = "/api/2.2/jobs/";

pub(super) fn route(r: &Request, state: &Arc<Mutex<State>>) -> Reply {
    let (method, path) = (r.method.as_str(), r.path.as_str());
    let route = match (method, path.strip_prefix(API)) {
        _ if method == "POST" && path == "/oidc/v1/token" => Route::Token,
        ("POST", Some("runs/submit")) => Route::Submit,
        ("POST", Some("run-now")) => Route::RunNow,
        ("GET", Some("runs/get")) => Route::Get,
        ("GET", Some("runs/get-output")) => Route::GetOutput,
        ("POST", Some("runs/cancel")) => Route::Cancel,
        ("GET", Some("runs/list")) => Route::List,
        _ => {
            return error(
                404,
                "ENDPOINT_NOT_FOUND",
                &format!("No API found for '{method} {path}'"),
            )
        }
    };
    let mut s = lock(state);
    *s.counts.entry(route).or_default() += 1;
    let fault = s.faults.get_mut(&route).and_then(|q| q.pop_front());
    match fault {
        Some(Fault::TooMany(secs)) => {
            return error(429, "REQUEST_LIMIT_EXCEEDED", "rate limit exceeded")
                .header("retry-after", &secs.to_string())
        }
        Some(Fault::Status(code)) => return error(code, "TEMPORARILY_UNAVAILABLE", "injected"),
        _ => {}
    }
    let reply = if route == Route::Token {
        token(r, &mut s)
    } else if let Err(denied) = authorized(r, &s) {
        denied
    } else {
        match route {
            Route::Submit | Route::RunNow => create(r, &mut s, route),
            Route::Get => get(r, &mut s),
            Route::GetOutput => output(r, &s),
            Route::Cancel => cancel(r, &mut s),
            _ => list(r, &mut s),
        }
    };
    match fault {
        Some(Fault::DropAfter) => Reply::Drop,
        Some(Fault::SlowAfter(wait)) => reply.after(wait),
        _ => reply,
    }
}

fn ok(v: Value) -> Reply {
    Reply::json(&v)
}

fn authorized(r: &Request, s: &State) -> Result<(), Reply> {
    let Some(bearer) = r
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer ").map(str::to_string))
    else {
        return Err(error(
            401,
            "UNAUTHENTICATED",
            "Credential was not sent or was of an unsupported type for this API.",
        ));
    };
    if s.pat.as_deref() == Some(bearer.as_str()) {
        return Ok(());
    }
    match s.issued.iter().find(|(t, _)| *t == bearer) {
        Some((_, until)) if Instant::now() < *until => Ok(()),
        Some(_) => Err(error(403, "PERMISSION_DENIED", "Token is expired.")),
        None => Err(error(401, "UNAUTHENTICATED", "Invalid access token.")),
    }
}

fn token(r: &Request, s: &mut State) -> Reply {
    let basic = r
        .header("authorization")
        .and_then(|h| h.strip_prefix("Basic ").map(str::to_string))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let form: Vec<(String, String)> = form_urlencoded::parse(&r.body).into_owned().collect();
    let grant = form
        .iter()
        .any(|(k, v)| k == "grant_type" && v == "client_credentials");
    let expected = s.client.as_ref().map(|(i, sec)| format!("{i}:{sec}"));
    if !grant || basic.is_none() || basic != expected {
        return Reply::text(
            401,
            json!({"error": "invalid_client", "error_description": "Client authentication failed"})
                .to_string(),
        )
        .header("content-type", "application/json");
    }
    let n = s.issued.len();
    let access = format!("dbx-oauth-{n:04}-{}", s.next_id);
    s.issued.push((access.clone(), Instant::now() + s.lifetime));
    ok(
        json!({"access_token": access, "token_type": "Bearer", "scope": "all-apis", "expires_in": s.lifetime.as_secs()}),
    )
}

fn create(r: &Request, s: &mut State, route: Route) -> Reply {
    let Some(body) = r.json().filter(Value::is_object) else {
        return error(
            400,
            "MALFORMED_REQUEST",
            "Invalid JSON given in the body of the request",
        );
    };
    let token = body["idempotency_token"].as_str().map(str::to_string);
    if let Some(t) = &token {
        if t.chars().count() > 64 {
            return error(
                400,
                "INVALID_PARAMETER_VALUE",
                "Idempotency token must be at most 64 characters",
            );
        }
        if let Some(id) = s.tokens.get(t) {
            if s.deleted.contains_key(id) {
                return error(
                    400,
                    "INVALID_PARAMETER_VALUE",
                    &format!("The run with idempotency token {t} was deleted"),
                );
            }
            return ok(json!({"run_id": id, "number_in_job": id}));
        }
    }
    let tasks: Vec<String> = match route {
        Route::RunNow => match body["job_id"].as_u64() {
            Some(_) => vec!["main".into()],
            None => {
                return error(
                    400,
                    "INVALID_PARAMETER_VALUE",
                    "Missing required field: job_id",
                )
            }
        },
        _ => match body["tasks"].as_array() {
            Some(t) if !t.is_empty() => t
                .iter()
                .map(|t| t["task_key"].as_str().unwrap_or("task").to_string())
                .collect(),
            _ => {
                return error(
                    400,
                    "INVALID_PARAMETER_VALUE",
                    "At least one task is required",
                )
            }
        },
    };
    s.next_id += 1 + tasks.len() as u64;
    let run_id = s.next_id;
    let fate = s.fate.as_ref().map_or(Fate::Driven, |f| f(&body));
    let job_id = body["job_id"].as_u64();
    let run = Run {
        run_id,
        run_name: match job_id {
            Some(j) => format!("job-{j}"),
            None => body["run_name"].as_str().unwrap_or("Untitled").to_string(),
        },
        job_id,
        token: token.clone(),
        life: Life::Pending,
        result: None,
        message: "Waiting for cluster".into(),
        tasks: tasks
            .into_iter()
            .enumerate()
            .map(|(i, k)| (k, run_id - 1 - i as u64))
            .collect(),
        logs: String::new(),
        error: None,
        fate,
        gets: 0,
        request: body,
    };
    s.runs.insert(run_id, run);
    s.created += 1;
    if let Some(t) = token {
        s.tokens.insert(t, run_id);
    }
    ok(json!({"run_id": run_id, "number_in_job": run_id}))
}

/// One step of a run whose [`Fate`] drives it, taken at each `runs/get`.
fn step(run: &mut Run) {
    run.gets += 1;
    advance(run);
}

/// One step of a run's [`Fate`] (by `runs/get`, or by an `active_only` list, which a bulk
/// observer asks instead of getting each run).
fn advance(run: &mut Run) {
    let (end, message, logs) = match &run.fate {
        Fate::Driven => return,
        Fate::RunForever => {
            if run.life == Life::Pending {
                run.life = Life::Running;
            }
            return;
        }
        Fate::Succeed(logs) => ("SUCCESS", String::new(), logs.clone()),
        Fate::Fail(m) => ("FAILED", m.clone(), String::new()),
    };
    match run.life {
        Life::Pending => run.life = Life::Running,
        Life::Running => {
            run.life = Life::Terminated;
            run.result = Some(end.into());
            run.message = message.clone();
            run.logs = logs;
            run.error = (end != "SUCCESS").then_some(message);
        }
        _ => {}
    }
}

fn run_id(r: &Request) -> Option<u64> {
    r.query_param("run_id")?.parse().ok()
}

fn missing(id: impl std::fmt::Display) -> Reply {
    error(
        404,
        "RESOURCE_DOES_NOT_EXIST",
        &format!("Run {id} does not exist."),
    )
}

fn life_text(l: Life) -> &'static str {
    match l {
        Life::Pending => "PENDING",
        Life::Queued => "QUEUED",
        Life::Blocked => "BLOCKED",
        Life::Running => "RUNNING",
        Life::Terminating => "TERMINATING",
        Life::Terminated => "TERMINATED",
        Life::InternalError => "INTERNAL_ERROR",
        Life::Skipped => "SKIPPED",
    }
}

pub(super) fn describe(run: &Run, base: &str) -> Value {
    let life = life_text(run.life);
    let mut state = json!({"life_cycle_state": life, "state_message": run.message,
        "user_cancelled_or_timedout": run.result.as_deref() == Some("CANCELED")});
    if let Some(res) = &run.result {
        state["result_state"] = json!(res);
    }
    let status_state = match run.life {
        Life::InternalError | Life::Skipped => "TERMINATED",
        _ => life,
    };
    let mut status = json!({"state": status_state});
    if run.life == Life::Terminated || status_state == "TERMINATED" {
        let code = run
            .result
            .clone()
            .unwrap_or_else(|| "INTERNAL_ERROR".into());
        let code = if code == "FAILED" {
            "RUN_EXECUTION_ERROR".into()
        } else {
            code
        };
        status["termination_details"] = json!({"code": code,
            "type": if run.result.as_deref() == Some("SUCCESS") { "SUCCESS" } else { "CLIENT_ERROR" },
            "message": run.message});
    }
    let tasks: Vec<Value> = run
        .tasks
        .iter()
        .map(|(k, id)| {
            json!({"task_key": k, "run_id": id,
        "state": {"life_cycle_state": life}})
        })
        .collect();
    let mut v = json!({"run_id": run.run_id, "run_name": run.run_name, "state": state, "status": status,
        "tasks": tasks, "run_type": if run.job_id.is_some() { "JOB_RUN" } else { "SUBMIT_RUN" },
        "start_time": run.run_id, "run_page_url": format!("{base}/#job/runs/{}", run.run_id)});
    if let Some(j) = run.job_id {
        v["job_id"] = json!(j);
    }
    v
}

fn get(r: &Request, s: &mut State) -> Reply {
    let Some(id) = run_id(r) else {
        return error(400, "INVALID_PARAMETER_VALUE", "run_id is required");
    };
    let base = s.base.clone();
    match s.runs.get_mut(&id) {
        Some(run) => {
            if run.life == Life::Terminating {
                run.life = Life::Terminated;
            } else {
                step(run);
            }
            ok(describe(run, &base))
        }
        None => missing(id),
    }
}

fn output(r: &Request, s: &State) -> Reply {
    let Some(id) = run_id(r) else {
        return error(400, "INVALID_PARAMETER_VALUE", "run_id is required");
    };
    if s.runs.contains_key(&id) {
        // Every run the fake makes has tasks: Databricks refuses the output of such a run.
        return error(400, "INVALID_PARAMETER_VALUE",
            "Retrieving the output of runs with multiple tasks is not supported. Please retrieve the output of each individual task run instead.");
    }
    let Some(run) = s
        .runs
        .values()
        .find(|run| run.tasks.iter().any(|(_, t)| *t == id))
    else {
        return missing(id);
    };
    let mut v =
        json!({"metadata": describe(run, &s.base), "logs": run.logs, "logs_truncated": false});
    if let Some(e) = &run.error {
        v["error"] = json!(e);
        v["error_trace"] = json!(format!("Traceback: {e}"));
    }
    if run.result.as_deref() == Some("SUCCESS") {
        v["notebook_output"] =
            json!({"result": run.logs.lines().last().unwrap_or_default(), "truncated": false});
    }
    ok(v)
}

fn cancel(r: &Request, s: &mut State) -> Reply {
    let Some(id) = r.json().and_then(|v| v["run_id"].as_u64()) else {
        return error(400, "INVALID_PARAMETER_VALUE", "run_id is required");
    };
    let Some(run) = s.runs.get_mut(&id) else {
        return missing(id);
    };
    if !matches!(
        run.life,
        Life::Terminated | Life::InternalError | Life::Skipped
    ) {
        run.life = Life::Terminating;
        run.result = Some("CANCELED".into());
        run.message = "Run cancelled.".into();
    }
    ok(json!({}))
}

fn list(r: &Request, s: &mut State) -> Reply {
    let limit: usize = match r.query_param("limit").map(|l| l.parse()) {
        None => 20,
        Some(Ok(l)) if (1..=25).contains(&l) => l,
        _ => {
            return error(
                400,
                "INVALID_PARAMETER_VALUE",
                "limit must be between 1 and 25",
            )
        }
    };
    let skip: usize = match r.query_param("page_token").map(|t| t.parse()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return error(400, "INVALID_PARAMETER_VALUE", "Invalid page token"),
    };
    // `active_only=true`: "only active runs are included in the results; otherwise, lists both
    // active and completed runs. An active run is a run in the QUEUED, PENDING, RUNNING, or
    // TERMINATING".
    let active_only = r.query_param("active_only").as_deref() == Some("true");
    if active_only && skip == 0 {
        s.runs.values_mut().for_each(advance);
    }
    let all: Vec<&Run> = s
        .runs
        .values()
        .rev()
        .filter(|run| {
            !active_only
                || matches!(
                    run.life,
                    Life::Pending
                        | Life::Queued
                        | Life::Blocked
                        | Life::Running
                        | Life::Terminating
                )
        })
        .collect();
    let page: Vec<Value> = all
        .iter()
        .skip(skip)
        .take(limit)
        .map(|run| describe(run, &s.base))
        .collect();
    let more = skip + limit < all.len();
    let mut v = json!({"runs": page, "has_more": more});
    if more {
        v["next_page_token"] = json!((skip + limit).to_string());
    }
    ok(v)
}

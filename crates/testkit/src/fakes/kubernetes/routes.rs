//! The fake API server's answers, by URL (see the parent module for what is followed).
use std::{
    sync::{Arc, Mutex},
    time::SystemTime,
};

use serde_json::{json, Value};

use super::{
    lock,
    store::{not_found, rfc3339, status, Kind, Selector},
    Outage, State,
};
use crate::http::{Reply, Request};

pub(super) fn route(r: &Request, state: &Arc<Mutex<State>>) -> Reply {
    let mut s = lock(state);
    match s.outage {
        Some(Outage::Unavailable) => {
            return reply(status(
                503,
                "ServiceUnavailable",
                "the fake API server was told to be unavailable",
                json!({}),
            ))
        }
        Some(Outage::Drop) => return Reply::Drop,
        None => {}
    }
    if let Some(token) = &s.token {
        let want = format!("Bearer {token}");
        if r.header("authorization").as_deref() != Some(want.as_str()) {
            return reply(status(401, "Unauthorized", "Unauthorized", json!({})));
        }
    }
    s.requests += 1;
    let all: Vec<&str> = r.path.trim_end_matches('/').split('/').skip(1).collect();
    // `/api/v1/...` (core) or `/apis/<group>/<version>/...`: the group version, then the rest.
    let (gv, parts) = match all.as_slice() {
        ["api", "v1", rest @ ..] => ("v1".to_string(), rest),
        ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest),
        _ => (String::new(), all.as_slice()),
    };
    let kind = |plural: &str| Kind::from_url(&gv, plural);
    let m = r.method.as_str();
    let answer = match parts {
        ["version"] if gv.is_empty() => Some(Err((
            200,
            json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-tether-fake",
                   "platform": "linux/amd64"}),
        ))),
        ["namespaces", ns, plural] => kind(plural).and_then(|k| match m {
            "GET" => Some(Ok(list(r, &mut s, k, Some(ns)))),
            "POST" => Some(Err(match r.json() {
                Some(body) => {
                    let (code, o) = s.objects.create(k, ns, body);
                    if code == 201 {
                        s.created(k, ns, &o);
                    }
                    (code, o)
                }
                None => bad_body(r),
            })),
            _ => None,
        }),
        [plural] => kind(plural)
            .filter(|_| m == "GET")
            .map(|k| Ok(list(r, &mut s, k, None))),
        ["namespaces", ns, plural, name] => kind(plural).and_then(|k| match m {
            "GET" => Some(Err({
                if k == Kind::Pod {
                    s.step(ns, name);
                }
                s.objects
                    .get(k, ns, name)
                    .map_or_else(|| not_found(k, name), |o| (200, o.clone()))
            })),
            "DELETE" => Some(Err(delete(r, &mut s, k, ns, name))),
            "PATCH" => Some(Err(patch(r, &mut s, k, ns, name))),
            _ => None,
        }),
        ["namespaces", ns, "pods", name, "status"] if m == "GET" && gv == "v1" => Some(Err({
            s.step(ns, name);
            s.objects
                .get(Kind::Pod, ns, name)
                .map_or_else(|| not_found(Kind::Pod, name), |o| (200, o.clone()))
        })),
        ["namespaces", ns, "pods", name, "log"] if m == "GET" && gv == "v1" => {
            return log(r, &mut s, ns, name)
        }
        _ => None,
    };
    // `Ok`: a finished reply (a list or watch); `Err`: a JSON object to send as is.
    match answer.map(|a: Result<Reply, (u16, Value)>| a.unwrap_or_else(reply)) {
        Some(a) => a,
        None => {
            // Loud on purpose: a request Spark or a connector makes that the fake does not serve
            // is a gap in the fake, and the test that finds it should say which.
            eprintln!(
                "tether fake Kubernetes API server: UNKNOWN REQUEST {} (content-type {:?}): {}",
                r.line(),
                r.header("content-type"),
                r.body_text()
            );
            s.unknown.push(r.line());
            reply(status(
                404,
                "NotFound",
                "the server could not find the requested resource",
                json!({}),
            ))
        }
    }
}

fn reply((code, body): (u16, Value)) -> Reply {
    Reply::text(code, body.to_string()).header("content-type", "application/json")
}

fn bad_body(r: &Request) -> (u16, Value) {
    status(
        400,
        "BadRequest",
        &format!(
            "the fake reads JSON bodies only; got {:?}",
            r.header("content-type")
        ),
        json!({}),
    )
}

fn decoded(r: &Request, name: &str) -> Option<String> {
    let q = r.query.as_deref()?;
    form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn flag(r: &Request, name: &str) -> bool {
    decoded(r, name).is_some_and(|v| v == "true" || v == "1")
}

fn list(r: &Request, s: &mut State, kind: Kind, ns: Option<&str>) -> Reply {
    let selector = match Selector::parse(&decoded(r, "labelSelector").unwrap_or_default()) {
        Ok(sel) => sel,
        Err(e) => return reply(status(400, "BadRequest", &e, json!({}))),
    };
    // `metadata.name=<n>` is the one field selector clients use (watching a single object).
    let by_name = decoded(r, "fieldSelector").and_then(|f| {
        f.strip_prefix("metadata.name=")
            .or_else(|| f.strip_prefix("metadata.name=="))
            .map(str::to_string)
    });
    let items: Vec<Value> = s
        .objects
        .list(kind, ns, &selector)
        .into_iter()
        .filter(|o| {
            by_name
                .as_deref()
                .is_none_or(|n| o["metadata"]["name"] == n)
        })
        .collect();
    let rv = s.objects.version.to_string();
    if flag(r, "watch") {
        // A watch that sends the current objects as ADDED events and ends: clients re-watch
        // from the last resourceVersion, which is what they do after any closed watch.
        let events: String = items
            .into_iter()
            .map(|o| format!("{}\n", json!({"type": "ADDED", "object": o})))
            .collect();
        return Reply::text(200, events).header("content-type", "application/json");
    }
    reply((
        200,
        json!({"kind": format!("{}List", kind.name()), "apiVersion": "v1",
               "metadata": {"resourceVersion": rv}, "items": items}),
    ))
}

fn delete(r: &Request, s: &mut State, kind: Kind, ns: &str, name: &str) -> (u16, Value) {
    let grace = decoded(r, "gracePeriodSeconds")
        .and_then(|g| g.parse().ok())
        .or_else(|| r.json()?.get("gracePeriodSeconds")?.as_u64());
    let answer = s.objects.delete(kind, ns, name, grace);
    if kind == Kind::Pod && answer.0 == 200 {
        s.deleting(ns, name);
        if let Some(o) = s.objects.get(kind, ns, name) {
            return (200, o.clone());
        }
    }
    answer
}

/// Server-side apply (`application/apply-patch+yaml`, JSON being YAML) creates or replaces the
/// applied fields; a JSON merge patch (`merge-patch+json`, `strategic-merge-patch+json` read as
/// one) changes an existing object.
fn patch(r: &Request, s: &mut State, kind: Kind, ns: &str, name: &str) -> (u16, Value) {
    let Some(body) = r.json() else {
        return bad_body(r);
    };
    let ct = r.header("content-type").unwrap_or_default();
    let exists = s.objects.get(kind, ns, name).is_some();
    if ct.starts_with("application/apply-patch") {
        if !exists {
            return s.objects.create(kind, ns, body);
        }
        let updated = s.objects.update(kind, ns, name, |o| {
            for (k, v) in body.as_object().into_iter().flatten() {
                if k == "metadata" {
                    for (mk, mv) in v.as_object().into_iter().flatten() {
                        o["metadata"][mk] = mv.clone();
                    }
                } else if k != "status" {
                    o[k] = v.clone();
                }
            }
        });
        return (200, updated.unwrap_or_default());
    }
    match s.objects.update(kind, ns, name, |o| merge(o, &body)) {
        Some(o) => (200, o),
        None => not_found(kind, name),
    }
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match patch.as_object() {
        Some(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            for (k, v) in p {
                if v.is_null() {
                    target.as_object_mut().map(|t| t.remove(k));
                } else {
                    merge(&mut target[k], v);
                }
            }
        }
        None => *target = patch.clone(),
    }
}

fn log(r: &Request, s: &mut State, ns: &str, name: &str) -> Reply {
    let Some(pod) = s.objects.get(Kind::Pod, ns, name).cloned() else {
        return reply(not_found(Kind::Pod, name));
    };
    let container = pod
        .pointer("/spec/containers/0/name")
        .and_then(Value::as_str)
        .unwrap_or("main")
        .to_string();
    if pod["status"]["phase"] == "Pending" {
        return reply(status(
            400,
            "BadRequest",
            &format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
            ),
            json!({}),
        ));
    }
    let since = decoded(r, "sinceTime");
    let stamps = flag(r, "timestamps");
    let lines = s
        .logs
        .get(&(ns.to_string(), name.to_string()))
        .cloned()
        .unwrap_or_default();
    let mut out: Vec<String> = lines
        .iter()
        .filter(|(t, _)| {
            since
                .as_deref()
                .is_none_or(|since| rfc3339(*t).as_str() >= since)
        })
        .map(|(t, l)| {
            if stamps {
                format!("{} {l}", rfc3339_nanos(*t))
            } else {
                l.clone()
            }
        })
        .collect();
    if let Some(n) = decoded(r, "tailLines").and_then(|n| n.parse::<usize>().ok()) {
        let skip = out.len().saturating_sub(n);
        out.drain(..skip);
    }
    let mut text = out.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    Reply::text(200, text).header("content-type", "text/plain")
}

fn rfc3339_nanos(t: SystemTime) -> String {
    let nanos = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let secs = rfc3339(t);
    format!("{}.{nanos:09}Z", secs.trim_end_matches('Z'))
}

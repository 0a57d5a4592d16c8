//! What the tests on a real Livy share: the server's `livy.env`, curl calls to count batches
//! from outside tether, and YARN applications by tag.
#![allow(dead_code)]
use std::{collections::HashMap, process::Command};

pub fn livy_env_or_skip(test: &str) -> Option<HashMap<String, String>> {
    let Some(path) = std::env::var_os("TETHER_LIVY_ENV").filter(|p| !p.is_empty()) else {
        eprintln!(
            "SKIPPED {test}: TETHER_LIVY_ENV is not set. Start a Livy with \
             `scripts/livy-server start /tmp/livy` (on TETHER_YARN_ENV's YARN) and set \
             TETHER_LIVY_ENV=/tmp/livy/livy.env (scripts/test does both)"
        );
        return None;
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("TETHER_LIVY_ENV={path:?} cannot be read ({e}); is Livy started?")
    });
    Some(
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// `(HTTP status, body as JSON)` of a curl call; panics if curl cannot run or reach the server.
pub fn http(method: &str, url: &str, body: Option<&serde_json::Value>) -> (u16, serde_json::Value) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        // Livy answers a DELETE only once YARN has killed the app: over 30 s on a loaded
        // machine (the connector itself allows 120 s).
        "120",
        "-X",
        method,
        "-w",
        "\n%{http_code}",
    ])
    .args(["-H", "Content-Type: application/json", url]);
    if let Some(b) = body {
        cmd.args(["-d", &b.to_string()]);
    }
    let out = cmd.output().expect("run curl");
    assert!(
        out.status.success(),
        "{method} {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let (json, code) = text.rsplit_once('\n').expect("status line");
    let v = serde_json::from_str(json).unwrap_or(serde_json::Value::String(json.to_string()));
    (code.trim().parse().expect("HTTP status"), v)
}

/// `(id, state)` of every batch Livy lists whose name starts with `prefix` (counted from
/// outside tether, through Livy's own `GET /batches`).
pub fn batches_named(url: &str, prefix: &str) -> Vec<(String, String)> {
    let (code, v) = http("GET", &format!("{url}/batches?from=0&size=10000"), None);
    assert_eq!(code, 200, "{v}");
    v["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
        .map(|s| {
            (
                s["id"].to_string(),
                s["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// `(id, state, finalStatus)` of the YARN applications whose tags include one starting with
/// `prefix`, from the ResourceManager.
pub fn yarn_apps_tagged(rm: &str, prefix: &str) -> Vec<(String, String, String)> {
    let (code, v) = http("GET", &format!("{rm}/ws/v1/cluster/apps"), None);
    assert_eq!(code, 200, "{v}");
    let prefix = prefix.to_ascii_lowercase();
    v["apps"]["app"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|a| {
            a["applicationTags"]
                .as_str()
                .is_some_and(|t| t.split(',').any(|t| t.starts_with(&prefix)))
        })
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap_or("").to_string();
            (s("id"), s("state"), s("finalStatus"))
        })
        .collect()
}

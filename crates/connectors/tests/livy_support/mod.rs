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

/// A Livy server of the test's own (`scripts/livy-server start` in a scratch dir, on the YARN of
/// `TETHER_YARN_ENV`): fresh, so its first batch gets id 0, and free to stop, restart or freeze
/// without disturbing the shared one. Stopped (with the spark-submits it started) on drop.
pub struct FreshLivy {
    pub dir: std::path::PathBuf,
    pub port: u16,
    pub env: HashMap<String, String>,
}

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("repo root")
        .join("scripts/livy-server")
}

impl FreshLivy {
    /// Starts one, or None (after saying why) without a test YARN.
    pub fn start_or_skip(test: &str) -> Option<FreshLivy> {
        let yarn = std::env::var("TETHER_YARN_ENV")
            .ok()
            .filter(|p| !p.is_empty());
        let Some(yarn) = yarn else {
            eprintln!(
                "SKIPPED {test}: TETHER_YARN_ENV is not set (this test starts its own Livy on \
                 the test YARN; scripts/test sets it)"
            );
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("tether-livy-{}-{nanos}", std::process::id()));
        let mut l = FreshLivy {
            dir,
            port,
            env: HashMap::new(),
        };
        std::env::set_var("LIVY_YARN_ENV", yarn);
        l.start();
        Some(l)
    }

    /// (Re)starts the server in the same dir, on the same port, without recovery: a restarted
    /// Livy has forgotten every batch and numbers them from 0 again.
    pub fn start(&mut self) {
        let out = Command::new(script())
            .arg("start")
            .arg(&self.dir)
            .env("LIVY_PORT", self.port.to_string())
            .env_remove("LIVY_MASTER")
            .output()
            .expect("run scripts/livy-server");
        assert!(
            out.status.success(),
            "scripts/livy-server start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(self.dir.join("livy.env")).expect("livy.env");
        self.env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    }

    pub fn stop(&self) {
        let out = Command::new(script())
            .arg("stop")
            .arg(&self.dir)
            .output()
            .expect("run scripts/livy-server");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn url(&self) -> &str {
        &self.env["LIVY_URL"]
    }

    /// The server JVM's pid (to freeze it with SIGSTOP).
    pub fn pid(&self) -> u32 {
        self.env["LIVY_PID"].parse().expect("LIVY_PID")
    }
}

impl Drop for FreshLivy {
    fn drop(&mut self) {
        if let Some(pid) = self.env.get("LIVY_PID") {
            // A frozen server cannot stop: thaw it first.
            let _ = Command::new("kill").args(["-CONT", pid]).status();
        }
        let _ = Command::new(script()).arg("stop").arg(&self.dir).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

//! A scripted **fake** Spark standalone master, following Spark's REST submission API (checked
//! against the shapes the `spark-standalone` connector parses, Spark 4.3.0). It is not Spark: it
//! launches nothing, every driver it creates stays `RUNNING` forever. Loopback only.
//!
//! It answers what the connector calls:
//! - `POST /v1/submissions/create`: `CreateSubmissionResponse` with a new `driver-...` id; the
//!   tag of the submission (`spark.tether.tag` in `sparkProperties`) is remembered.
//! - `GET /v1/submissions/status/<id>`: `SubmissionStatusResponse`, `driverState: RUNNING` on
//!   `worker-bench`, or `success: false` for an id it never created.
//! - `POST /v1/submissions/kill/<id>`: `KillSubmissionResponse`, success (state unchanged).
//! - `GET /json/` (master web UI): ALIVE, one worker whose web UI is this server, and **no
//!   drivers listed**, so find-by-tag (run before every submit) answers "absent" after one
//!   request. A real master lists its active drivers, and the connector then reads the launch
//!   command of each one with the same main class: not what is measured here.
//! - `GET /log/?driverId=<id>&logType=stderr...` (worker web UI): a log page whose first line is
//!   the `Launch Command:` carrying the driver's tag, so the identity check of a driver whose tag
//!   is not cached (a restarted worker) succeeds.
//!
//! HTTP/1.1 with keep-alive, `Content-Length` bodies only (what reqwest sends).
use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

/// Counters of the fake master.
#[derive(Default)]
pub struct Stats {
    pub creates: AtomicU64,
    pub statuses: AtomicU64,
    pub master_json: AtomicU64,
    pub logs: AtomicU64,
    pub other: AtomicU64,
    pub connections_open: AtomicUsize,
    pub connections_total: AtomicU64,
    /// Drivers whose status was asked at least once.
    pub polled: Mutex<HashSet<String>>,
    /// Driver id -> tag.
    drivers: Mutex<HashMap<String, String>>,
    /// While non-zero, each `GET /json/` is answered only after this many milliseconds (a slow
    /// master, for the tests that freeze an owner inside its find-by-tag).
    pub json_delay_ms: AtomicU64,
    /// `GET /json/` requests received (counted before any delay).
    pub json_received: AtomicU64,
    /// While set, `GET /json/` answers `503 Service Unavailable` (a master that cannot list).
    pub json_unavailable: std::sync::atomic::AtomicBool,
}

impl Stats {
    pub fn polled_count(&self) -> usize {
        self.polled.lock().map(|p| p.len()).unwrap_or(0)
    }
}

/// The running fake; its accept loop (and every connection) is aborted on drop.
pub struct FakeSpark {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    task: JoinHandle<()>,
}

impl FakeSpark {
    pub async fn start() -> std::io::Result<FakeSpark> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(Stats::default());
        let st = stats.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        if let Ok((sock, _)) = accepted {
                            let st = st.clone();
                            conns.spawn(serve(sock, st, addr));
                        }
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        Ok(FakeSpark { addr, stats, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for FakeSpark {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(sock: TcpStream, st: Arc<Stats>, addr: SocketAddr) {
    st.connections_open.fetch_add(1, Ordering::Relaxed);
    st.connections_total.fetch_add(1, Ordering::Relaxed);
    let _ = sock.set_nodelay(true);
    let (rd, mut wr) = sock.into_split();
    let mut rd = BufReader::new(rd);
    let mut line = String::new();
    loop {
        // Request line and headers.
        line.clear();
        match rd.read_line(&mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut length = 0usize;
        let mut close = false;
        loop {
            let mut h = String::new();
            match rd.read_line(&mut h).await {
                Ok(0) | Err(_) => {
                    st.connections_open.fetch_sub(1, Ordering::Relaxed);
                    return;
                }
                Ok(_) => {}
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':') {
                let name = name.trim().to_ascii_lowercase();
                if name == "content-length" {
                    length = value.trim().parse().unwrap_or(0);
                } else if name == "connection" && value.trim().eq_ignore_ascii_case("close") {
                    close = true;
                }
            }
        }
        let mut body = vec![0u8; length.min(1 << 20)];
        if rd.read_exact(&mut body).await.is_err() {
            break;
        }
        let delay = st.json_delay_ms.load(Ordering::Relaxed);
        if target.starts_with("/json") {
            st.json_received.fetch_add(1, Ordering::Relaxed);
        }
        if delay > 0 && target.starts_with("/json") {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        let (status, ctype, answer) =
            if target.starts_with("/json") && st.json_unavailable.load(Ordering::Relaxed) {
                ("503 Service Unavailable", "text/plain", "busy".to_string())
            } else {
                route(&method, &target, &body, &st, addr)
            };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        );
        if wr.write_all(head.as_bytes()).await.is_err()
            || wr.write_all(answer.as_bytes()).await.is_err()
            || close
        {
            break;
        }
    }
    st.connections_open.fetch_sub(1, Ordering::Relaxed);
}

const JSON: &str = "application/json;charset=utf-8";

fn route(
    method: &str,
    target: &str,
    body: &[u8],
    st: &Stats,
    addr: SocketAddr,
) -> (&'static str, &'static str, String) {
    let ok = "200 OK";
    if method == "POST" && target == "/v1/submissions/create" {
        let n = st.creates.fetch_add(1, Ordering::Relaxed);
        let id = format!("driver-20260101000000-{n:05}");
        let tag = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                v["sparkProperties"]["spark.tether.tag"]
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_default();
        if let Ok(mut d) = st.drivers.lock() {
            d.insert(id.clone(), tag);
        }
        let msg = serde_json::json!({
            "action": "CreateSubmissionResponse",
            "message": format!("Driver successfully submitted as {id}"),
            "serverSparkVersion": "4.3.0",
            "submissionId": id,
            "success": true,
        });
        return (ok, JSON, msg.to_string());
    }
    if let Some(id) = target.strip_prefix("/v1/submissions/status/") {
        st.statuses.fetch_add(1, Ordering::Relaxed);
        let known = st.drivers.lock().is_ok_and(|d| d.contains_key(id));
        if let Ok(mut p) = st.polled.lock() {
            p.insert(id.to_string());
        }
        let msg = if known {
            serde_json::json!({
                "action": "SubmissionStatusResponse",
                "driverState": "RUNNING",
                "serverSparkVersion": "4.3.0",
                "submissionId": id,
                "success": true,
                "workerHostPort": "127.0.0.1:1",
                "workerId": "worker-bench",
            })
        } else {
            serde_json::json!({
                "action": "SubmissionStatusResponse",
                "serverSparkVersion": "4.3.0",
                "submissionId": id,
                "success": false,
            })
        };
        return (ok, JSON, msg.to_string());
    }
    if let Some(id) = target.strip_prefix("/v1/submissions/kill/") {
        st.other.fetch_add(1, Ordering::Relaxed);
        let msg = serde_json::json!({
            "action": "KillSubmissionResponse",
            "message": format!("Kill request for {id} submitted"),
            "serverSparkVersion": "4.3.0",
            "submissionId": id,
            "success": true,
        });
        return (ok, JSON, msg.to_string());
    }
    if target == "/json/" || target == "/json" {
        st.master_json.fetch_add(1, Ordering::Relaxed);
        let msg = serde_json::json!({
            "url": "spark://127.0.0.1:7077",
            "status": "ALIVE",
            "workers": [{
                "id": "worker-bench",
                "webuiaddress": format!("http://{addr}"),
                "state": "ALIVE",
            }],
            "activedrivers": [],
            "completeddrivers": [],
        });
        return (ok, JSON, msg.to_string());
    }
    if let Some(query) = target.strip_prefix("/log/?") {
        st.logs.fetch_add(1, Ordering::Relaxed);
        let id = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("driverId="))
            .unwrap_or("");
        let tag = st.drivers.lock().ok().and_then(|d| d.get(id).cloned());
        let page = match tag {
            Some(tag) => {
                let log = format!(
                    "Launch Command: \"/usr/bin/java\" \"-Dspark.tether.tag={tag}\" \
                     \"-Dspark.app.name={tag}\" \"org.apache.spark.deploy.worker.DriverWrapper\"\n"
                );
                format!(
                    "==== Bytes 0-{n} of {n} of /work/{id}/stderr ====\n{log}",
                    n = log.len()
                )
            }
            None => format!(
                "==== Bytes 0-0 of 0 of /work/{id}/stderr ====\nError: invalid log directory /work/{id}/\n"
            ),
        };
        return (ok, "text/plain", page);
    }
    st.other.fetch_add(1, Ordering::Relaxed);
    ("404 Not Found", "text/plain", "not found".into())
}

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
//!   command of each one with the same main class: not what is measured here. With
//!   [`Stats::list_drivers`] set it lists every driver it created (`RUNNING`), as a real
//!   master does: what bulk observation reads.
//! - `GET /log/?driverId=<id>&logType=stderr...` (worker web UI): a log page whose first line is
//!   the `Launch Command:` carrying the driver's tag, so the identity check of a driver whose tag
//!   is not cached (a restarted worker) succeeds.
//!
//! Served by [`crate::http::FakeServer`] (hyper, HTTP/1.1 with keep-alive) through a fallback
//! route; used by the CLI's fleet bench and its fence test, and by the connectors' tests.
use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use serde_json::json;

use crate::http::{FakeServer, Reply, Request};

/// Counters and switches of the fake master.
#[derive(Default)]
pub struct Stats {
    /// `POST /v1/submissions/create` answered.
    pub creates: AtomicU64,
    /// `GET /v1/submissions/status/<id>` answered.
    pub statuses: AtomicU64,
    /// `GET /json/` answered (not counting `503`s).
    pub master_json: AtomicU64,
    /// Worker log pages served.
    pub logs: AtomicU64,
    /// Kills and unknown routes.
    pub other: AtomicU64,
    /// Drivers whose status was asked at least once.
    pub polled: Mutex<HashSet<String>>,
    /// Driver id -> (tag, main class).
    drivers: Mutex<HashMap<String, (String, String)>>,
    /// While set, `GET /json/` lists every driver created, `RUNNING` (a real master's list).
    pub list_drivers: AtomicBool,
    /// Once set, every driver it created is `FINISHED` (status and `/json/`): the end of all
    /// runs at once, to time how soon their owners see it.
    pub finished: AtomicBool,
    /// While non-zero, each `GET /json/` is answered only after this many milliseconds (a slow
    /// master, for the tests that freeze an owner inside its find-by-tag).
    pub json_delay_ms: AtomicU64,
    /// `GET /json/` requests received (counted before any delay).
    pub json_received: AtomicU64,
    /// While set, `GET /json/` answers `503 Service Unavailable` (a master that cannot list).
    pub json_unavailable: AtomicBool,
}

impl Stats {
    /// How many distinct drivers were polled.
    pub fn polled_count(&self) -> usize {
        self.polled.lock().map(|p| p.len()).unwrap_or(0)
    }
}

/// The running fake; dropping it stops the server and every connection.
pub struct FakeSpark {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its counters and switches.
    pub stats: Arc<Stats>,
    /// The server underneath (requests, connections, [`FakeServer::stop`]).
    pub server: FakeServer,
}

impl FakeSpark {
    /// Starts a fake master on a loopback port.
    pub async fn start() -> std::io::Result<FakeSpark> {
        let stats = Arc::new(Stats::default());
        let st = stats.clone();
        let server = FakeServer::builder()
            .fallback(move |r| route(r, &st))
            .start()
            .await?;
        Ok(FakeSpark {
            addr: server.addr(),
            stats,
            server,
        })
    }

    /// `http://127.0.0.1:<port>`: the REST URL, master UI and worker UI at once.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

const JSON: &str = "application/json;charset=utf-8";

fn json(v: serde_json::Value) -> Reply {
    Reply::text(200, v.to_string()).header("content-type", JSON)
}

fn route(r: &Request, st: &Stats) -> Reply {
    let (method, path) = (r.method.as_str(), r.path.as_str());
    if path.starts_with("/json") {
        st.json_received.fetch_add(1, Ordering::Relaxed);
        let reply = if st.json_unavailable.load(Ordering::Relaxed) {
            Reply::text(503, "busy").header("content-type", "text/plain")
        } else {
            master_json(r, st)
        };
        return match st.json_delay_ms.load(Ordering::Relaxed) {
            0 => reply,
            ms => reply.after(Duration::from_millis(ms)),
        };
    }
    if method == "POST" && path == "/v1/submissions/create" {
        let n = st.creates.fetch_add(1, Ordering::Relaxed);
        let id = format!("driver-20260101000000-{n:05}");
        let body = r.json().unwrap_or_default();
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
        let tag = text(&body["sparkProperties"]["spark.tether.tag"]);
        if let Ok(mut d) = st.drivers.lock() {
            d.insert(id.clone(), (tag, text(&body["mainClass"])));
        }
        return json(json!({
            "action": "CreateSubmissionResponse",
            "message": format!("Driver successfully submitted as {id}"),
            "serverSparkVersion": "4.3.0",
            "submissionId": id,
            "success": true,
        }));
    }
    if let Some(id) = path.strip_prefix("/v1/submissions/status/") {
        st.statuses.fetch_add(1, Ordering::Relaxed);
        let known = st.drivers.lock().is_ok_and(|d| d.contains_key(id));
        if let Ok(mut p) = st.polled.lock() {
            p.insert(id.to_string());
        }
        let state = if st.finished.load(Ordering::Relaxed) {
            "FINISHED"
        } else {
            "RUNNING"
        };
        return json(if known {
            json!({
                "action": "SubmissionStatusResponse",
                "driverState": state,
                "serverSparkVersion": "4.3.0",
                "submissionId": id,
                "success": true,
                "workerHostPort": "127.0.0.1:1",
                "workerId": "worker-bench",
            })
        } else {
            json!({
                "action": "SubmissionStatusResponse",
                "serverSparkVersion": "4.3.0",
                "submissionId": id,
                "success": false,
            })
        });
    }
    if let Some(id) = path.strip_prefix("/v1/submissions/kill/") {
        st.other.fetch_add(1, Ordering::Relaxed);
        return json(json!({
            "action": "KillSubmissionResponse",
            "message": format!("Kill request for {id} submitted"),
            "serverSparkVersion": "4.3.0",
            "submissionId": id,
            "success": true,
        }));
    }
    if path == "/log/" {
        st.logs.fetch_add(1, Ordering::Relaxed);
        let id = r.query_param("driverId").unwrap_or_default();
        let tag = st
            .drivers
            .lock()
            .ok()
            .and_then(|d| d.get(&id).map(|(tag, _)| tag.clone()));
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
        return Reply::text(200, page).header("content-type", "text/plain");
    }
    st.other.fetch_add(1, Ordering::Relaxed);
    Reply::text(404, "not found").header("content-type", "text/plain")
}

/// The master's `/json/`: ALIVE, one worker whose web UI is this server (as the client reached
/// it, from `Host`), no drivers.
fn master_json(r: &Request, st: &Stats) -> Reply {
    st.master_json.fetch_add(1, Ordering::Relaxed);
    let host = r.header("host").unwrap_or_default();
    let finished = st.finished.load(Ordering::Relaxed);
    let listed: Vec<serde_json::Value> = if st.list_drivers.load(Ordering::Relaxed) {
        let drivers = st.drivers.lock().map(|d| d.clone()).unwrap_or_default();
        let state = if finished { "FINISHED" } else { "RUNNING" };
        drivers
            .into_iter()
            .map(|(id, (_, mainclass))| {
                json!({"id": id, "starttime": "1767225600000", "state": state,
                       "worker": "worker-bench", "mainclass": mainclass})
            })
            .collect()
    } else {
        Vec::new()
    };
    let (active, completed) = if finished {
        (Vec::new(), listed)
    } else {
        (listed, Vec::new())
    };
    json(json!({
        "url": "spark://127.0.0.1:7077",
        "status": "ALIVE",
        "workers": [{
            "id": "worker-bench",
            "webuiaddress": format!("http://{host}"),
            "state": "ALIVE",
        }],
        "activedrivers": active,
        "completeddrivers": completed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(url: String) -> (u16, serde_json::Value, String) {
        let r = reqwest::get(url).await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or_default(),
            text,
        )
    }

    #[tokio::test]
    async fn drivers_it_created_run_with_their_tag_and_others_are_unknown() {
        let fake = FakeSpark::start().await.unwrap();
        let create = json!({"action": "CreateSubmissionRequest",
            "sparkProperties": {"spark.tether.tag": "tag-1"}});
        let r = reqwest::Client::new()
            .post(format!("{}/v1/submissions/create", fake.url()))
            .body(create.to_string())
            .send()
            .await
            .unwrap();
        let created: serde_json::Value = r.json().await.unwrap();
        let id = created["submissionId"].as_str().unwrap().to_string();
        let (_, st, _) = get(format!("{}/v1/submissions/status/{id}", fake.url())).await;
        assert_eq!(
            (st["success"].as_bool(), st["driverState"].as_str()),
            (Some(true), Some("RUNNING"))
        );
        let (_, st, _) = get(format!("{}/v1/submissions/status/driver-x", fake.url())).await;
        assert_eq!(st["success"], false);
        let (_, master, _) = get(format!("{}/json/", fake.url())).await;
        assert_eq!(master["workers"][0]["webuiaddress"], fake.url());
        let (_, _, log) = get(format!("{}/log/?driverId={id}&logType=stderr", fake.url())).await;
        assert!(log.contains("-Dspark.tether.tag=tag-1"), "{log}");
        assert_eq!(fake.stats.creates.load(Ordering::Relaxed), 1);
        assert_eq!(fake.stats.polled_count(), 2);
        fake.stats.json_unavailable.store(true, Ordering::Relaxed);
        assert_eq!(get(format!("{}/json/", fake.url())).await.0, 503);
        assert_eq!(fake.stats.json_received.load(Ordering::Relaxed), 2);
    }
}

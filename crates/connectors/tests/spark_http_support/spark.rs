//! Spark-shaped answers of the test servers: a master's status and `/json/`, a worker's log
//! page with a launch command.
use serde_json::json;

use super::{serve, Reply, Seen, TestCa, TestServer};

/// The tag of the test runs.
pub const TAG: &str = "tether-http-test-g1";

/// A `SubmissionStatusResponse`.
pub fn status_json(id: &str, state: &str, worker: Option<&str>) -> serde_json::Value {
    json!({"action": "SubmissionStatusResponse", "success": true, "submissionId": id,
           "driverState": state, "workerId": worker, "serverSparkVersion": "4.3.0"})
}

/// A driver queued on a fake master: its status is `SUBMITTED`, so no log is read.
pub fn queued_master(seen: &Seen) -> Reply {
    let id = seen.path.rsplit('/').next().unwrap_or_default();
    Reply::json(status_json(id, "SUBMITTED", None))
}

/// A fake master whose driver `driver-1` runs on `worker-1` at `worker_ui`.
pub async fn master_with_worker(worker_ui: String, message: &'static str) -> TestServer {
    master_with_worker_over(None, worker_ui, message).await
}

/// [`master_with_worker`], over TLS with `ca`'s certificate if given.
pub async fn master_with_worker_over(
    ca: Option<&TestCa>,
    worker_ui: String,
    message: &'static str,
) -> TestServer {
    serve(ca, move |s| {
        if s.line().contains("/json/") {
            Reply::json(json!({"url": "spark://m:7077", "status": "ALIVE",
                "workers": [{"id": "worker-1", "webuiaddress": worker_ui, "state": "ALIVE"}],
                "activedrivers": [{"id": "driver-1", "starttime": "1", "state": "RUNNING",
                                   "worker": "worker-1", "mainclass": "com.example.Etl"}],
                "completeddrivers": []}))
        } else if message.is_empty() {
            Reply::json(status_json("driver-1", "RUNNING", Some("worker-1")))
        } else {
            Reply::json(
                json!({"action": "SubmissionStatusResponse", "success": false,
                               "submissionId": "driver-1", "message": message}),
            )
        }
    })
    .await
}

/// A fake master listing `driver-1` (our main class), and its worker whose launch command
/// carries our tag and `main_and_args`.
pub async fn cluster_with_launch(main_and_args: &'static str) -> (TestServer, TestServer) {
    let worker = serve(None, move |_| {
        let page = format!(
            "Launch Command: \"java\" \"-cp\" \"/opt/spark/jars/*\" \"-Dspark.tether.tag={TAG}\" \
             \"-Dspark.app.name={TAG}\" \"org.apache.spark.deploy.worker.DriverWrapper\" \
             \"spark://Worker@127.0.0.1:40411\" \"/w/driver-1/etl.jar\" {main_and_args}\n====\n"
        );
        Reply::text(format!(
            "==== Bytes 0-{n} of {n} of /w/driver-1/stderr ====\n{page}",
            n = page.len()
        ))
    })
    .await;
    let master = master_with_worker(worker.url.clone(), "").await;
    (master, worker)
}

//! A driver's stdout/stderr, read through the web UI of the worker that runs (or ran) it.
//!
//! The master does not serve driver logs. The status call names the driver's worker, the
//! master's `/json/` maps the worker to its web UI, and the worker's `/log/` page serves byte
//! ranges of `<work dir>/<driver id>/{stdout,stderr}`. The first line of stderr is the worker's
//! own `Launch Command: ... "-Dspark.tether.tag=<tag>" ...`, which is how a driver's tag is
//! read back (drivers have no name in the master's JSON).
//!
//! ## Caveats
//! - Logs live on the worker: once it is gone (or its work dir was cleaned) they are gone.
//! - Worker UIs are reached at the address the worker advertises; it must be reachable from
//!   where tether runs. The bearer token is not sent to workers.
use std::{collections::HashMap, sync::Mutex};

use async_trait::async_trait;
use tether_core::connector::{JobRef, LogChunk, LogCursor, LogError, LogStream, Logs};

use crate::text;

use super::{
    http::snippet,
    rest::{LogSlice, Rest, RestError, Secret},
    spec::TAG_PROPERTY,
    SparkStandalone,
};

/// Largest byte range asked for in one request.
pub const MAX_CHUNK: u64 = 1 << 20;

/// Why a driver's log could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogReadError {
    /// The driver is queued: it has no worker, so no log, yet.
    #[error("driver {0} has not been placed on a worker yet")]
    NotStarted(String),
    /// The master or the worker could not be reached (or answered 5xx / timed out): try later.
    #[error("{0}")]
    Unreachable(String),
    /// The log does not exist (any more): unknown driver, worker gone, work dir cleaned.
    #[error("{0}")]
    Missing(String),
}

impl From<RestError> for LogReadError {
    fn from(e: RestError) -> Self {
        match e {
            RestError::Unexpected { .. } => LogReadError::Missing(e.to_string()),
            RestError::Status { status, .. } if status < 500 => {
                LogReadError::Missing(e.to_string())
            }
            _ => LogReadError::Unreachable(e.to_string()),
        }
    }
}

/// What the launch command says about a driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchInfo {
    /// `spark.tether.tag`, if the driver was submitted by tether.
    pub tag: Option<String>,
    /// `spark.app.name`.
    pub app_name: Option<String>,
    /// The arguments of Spark's `DriverWrapper` as printed (`"<worker url>" "<jar>" "<main
    /// class>" "<arg>"...`), when the launch line was read to its end.
    pub wrapper_args: Option<String>,
}

/// The class every cluster-mode driver is started through; the user's main class and arguments
/// follow the worker URL and the jar.
const DRIVER_WRAPPER: &str = "\"org.apache.spark.deploy.worker.DriverWrapper\" ";

/// Parses `-Dkey=value` system properties and the `DriverWrapper` arguments out of the
/// `Launch Command:` line.
pub fn parse_launch(head: &str) -> Option<LaunchInfo> {
    let raw = head
        .split_inclusive('\n')
        .find(|l| l.starts_with("Launch Command:"))?;
    // A line cut by the read length would show cut arguments: unverifiable, not different.
    let complete = raw.ends_with('\n');
    let line = raw.trim_end();
    let prop = |key: &str| {
        let needle = format!("\"-D{key}=");
        let start = line.find(&needle)? + needle.len();
        let end = line[start..].find('"')?;
        Some(line[start..start + end].to_string())
    };
    let wrapper_args = line
        .find(DRIVER_WRAPPER)
        .filter(|_| complete)
        .map(|i| line[i + DRIVER_WRAPPER.len()..].to_string());
    Some(LaunchInfo {
        tag: prop(TAG_PROPERTY),
        app_name: prop("spark.app.name"),
        wrapper_args,
    })
}

/// `Some(how)` when the launch command provably runs another main class or other arguments
/// than `main_class` and `args`; `None` when they match or cannot be told (no wrapper
/// arguments, an unexpected layout, or arguments Spark redacted in the log).
pub fn app_differs(info: &LaunchInfo, main_class: &str, args: &[String]) -> Option<String> {
    let wrapper = info.wrapper_args.as_deref()?;
    if wrapper.contains("*********(redacted)") {
        return None;
    }
    // Skip `"<worker url>" "<jar>" `: Spark prints arguments quoted, unescaped, space-separated.
    let mut rest = wrapper;
    for _ in 0..2 {
        let inner = rest.strip_prefix('"')?;
        let close = inner.find('"')?;
        rest = inner[close + 1..].strip_prefix(' ')?;
    }
    let expected = std::iter::once(main_class)
        .chain(args.iter().map(String::as_str))
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(" ");
    (rest != expected).then(|| {
        format!(
            "it runs {} where the spec says {}",
            snippet(rest),
            snippet(&expected)
        )
    })
}

/// Driver log access with a cache of worker web UI addresses.
#[derive(Debug)]
pub struct DriverLogs {
    rest: Rest,
    worker_uis: Mutex<HashMap<String, String>>,
}

impl DriverLogs {
    /// Over this client.
    pub fn new(rest: Rest) -> Self {
        DriverLogs {
            rest,
            worker_uis: Mutex::new(HashMap::new()),
        }
    }

    /// The web UI of worker `worker_id`, from the cache or the master's `/json/`.
    pub async fn worker_ui(&self, worker_id: &str) -> Result<String, LogReadError> {
        if let Some(ui) = self.worker_uis.lock().expect("cache lock").get(worker_id) {
            return Ok(ui.clone());
        }
        let state = self.rest.master_state().await?;
        self.remember_workers(&state);
        match state.worker_ui(worker_id) {
            Some(w) => Ok(w.webuiaddress.clone()),
            None => Err(LogReadError::Missing(format!(
                "worker {worker_id} is no longer known to the master, its driver logs are gone"
            ))),
        }
    }

    /// Caches the worker addresses of a `/json/` answer.
    pub fn remember_workers(&self, state: &super::rest::MasterState) {
        let mut cache = self.worker_uis.lock().expect("cache lock");
        for w in &state.workers {
            if !w.webuiaddress.is_empty() {
                cache.insert(w.id.clone(), w.webuiaddress.clone());
            }
        }
    }

    /// The worker id of a driver, from its status.
    pub async fn worker_of(&self, driver_id: &str) -> Result<String, LogReadError> {
        let st = self.rest.status(driver_id).await?;
        if st.success != Some(true) {
            return Err(LogReadError::Missing(format!(
                "the master does not know driver {driver_id}"
            )));
        }
        st.worker_id
            .filter(|w| !w.is_empty() && w != "None")
            .ok_or_else(|| LogReadError::NotStarted(driver_id.into()))
    }

    /// Bytes `[offset, offset+len)` of `log_type` (`stdout`/`stderr`) of a driver on `worker_ui`.
    pub async fn read_at(
        &self,
        worker_ui: &str,
        driver_id: &str,
        log_type: &str,
        offset: u64,
        len: u64,
    ) -> Result<LogSlice, LogReadError> {
        match self.rest.driver_log(worker_ui, driver_id, log_type, offset, len.min(MAX_CHUNK)).await? {
            Some(s) => Ok(s),
            None => Err(LogReadError::Missing(format!(
                "worker {worker_ui} has no {log_type} for driver {driver_id} (unknown driver or cleaned work dir)"
            ))),
        }
    }

    /// The launch info of a driver whose worker is known.
    pub async fn launch_info(
        &self,
        worker_ui: &str,
        driver_id: &str,
    ) -> Result<LaunchInfo, LogReadError> {
        // The launch line carries the whole classpath: 64 KiB is plenty.
        let head = self
            .read_at(worker_ui, driver_id, "stderr", 0, 64 << 10)
            .await?;
        parse_launch(&String::from_utf8_lossy(&head.data)).ok_or_else(|| {
            LogReadError::Missing(format!(
                "driver {driver_id}'s stderr does not start with a launch command"
            ))
        })
    }

    /// Up to `max` bytes of a driver's `stderr`: all of it, or its end if it is longer.
    pub async fn stderr_text(
        &self,
        driver_id: &str,
        worker_id: &str,
        max: u64,
    ) -> Result<String, LogReadError> {
        let ui = self.worker_ui(worker_id).await?;
        let first = self.read_at(&ui, driver_id, "stderr", 0, MAX_CHUNK).await?;
        let (mut offset, mut data) = if first.length > max {
            (first.length - max, Vec::new())
        } else {
            (first.end, first.data)
        };
        // Bounded by the length seen first: a log that keeps growing is not chased.
        while offset < first.length {
            let s = self
                .read_at(&ui, driver_id, "stderr", offset, MAX_CHUNK)
                .await?;
            if s.end <= offset {
                break;
            }
            offset = s.end;
            data.extend_from_slice(&s.data);
        }
        Ok(String::from_utf8_lossy(&data).into_owned())
    }
}

#[async_trait]
impl Logs for SparkStandalone {
    async fn read_logs(
        &self,
        job: &JobRef,
        stream: LogStream,
        cursor: &LogCursor,
        max: usize,
    ) -> Result<LogChunk, LogError> {
        // The worker's log page reads by byte offset: the cursor is one.
        let offset = cursor.byte_offset()?;
        let id = job.external_id.0.as_str();
        let to_log_error = |e: LogReadError| match e {
            LogReadError::Unreachable(reason) => LogError::Unavailable {
                reason: self.clean(&reason),
            },
            other => LogError::NotFound {
                reason: self.clean(&other.to_string()),
            },
        };
        let worker = self.logs.worker_of(id).await.map_err(to_log_error)?;
        let ui = self.logs.worker_ui(&worker).await.map_err(to_log_error)?;
        let log_type = match stream {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        };
        let s = self
            .logs
            .read_at(&ui, id, log_type, offset, max as u64)
            .await
            .map_err(to_log_error)?;
        // The job's own output: control characters are the reader's business, the token is not.
        let secrets: Vec<&str> = self.token.iter().map(Secret::expose).collect();
        Ok(LogChunk {
            next: LogCursor::at_byte(s.end.max(offset)),
            data: text::scrub_bytes(&s.data, &secrets),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like a Spark 4.3 worker's stderr header (`DriverRunner`): java, options, the
    /// `-D` properties, `DriverWrapper`, worker URL, local jar, main class, arguments.
    fn launch(tail: &str) -> String {
        format!(
            "Launch Command: \"/usr/lib/jvm/java-17/bin/java\" \"-cp\" \"/opt/spark/conf/:/opt/spark/jars/*\" \
             \"-Xmx1024M\" \"-Dspark.tether.tag=tether-k-1-g2\" \"-Dspark.app.name=etl tether-k-1-g2\" \
             \"org.apache.spark.deploy.worker.DriverWrapper\" \"spark://Worker@127.0.0.1:40411\" \
             \"/tmp/work/driver-20261122105255-0000/etl.jar\" {tail}\n========================================\n\n"
        )
    }

    #[test]
    fn launch_command_yields_tag_and_name() {
        let head = launch("\"com.example.Etl\" \"--date\" \"2026-11-22\"");
        let info = parse_launch(&head).unwrap();
        assert_eq!(info.tag.as_deref(), Some("tether-k-1-g2"));
        assert_eq!(info.app_name.as_deref(), Some("etl tether-k-1-g2"));
        assert_eq!(
            parse_launch("Launch Command: \"java\" \"-Dspark.app.name=other\"\n"),
            Some(LaunchInfo {
                tag: None,
                app_name: Some("other".into()),
                wrapper_args: None,
            })
        );
        assert_eq!(parse_launch("no launch line\n"), None);
    }

    #[test]
    fn launch_command_shows_main_class_and_args() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ours = parse_launch(&launch("\"com.example.Etl\" \"--date\" \"2026-11-22\"")).unwrap();
        assert_eq!(
            app_differs(&ours, "com.example.Etl", &args(&["--date", "2026-11-22"])),
            None
        );
        // Another store's job under the same tag: other arguments, other class, fewer or more args.
        for (class, a) in [
            ("com.example.Etl", args(&["--date", "2026-11-23"])),
            ("com.example.Other", args(&["--date", "2026-11-22"])),
            ("com.example.Etl", args(&["--date"])),
            ("com.example.Etl", args(&["--date", "2026-11-22", "--full"])),
            ("com.example.Etl", args(&[])),
        ] {
            let d = app_differs(&ours, class, &a);
            assert!(
                d.as_deref()
                    .is_some_and(|d| d.contains("where the spec says")),
                "{class} {a:?}: {d:?}"
            );
        }
        // No arguments at all.
        let bare = parse_launch(&launch("\"a.B\"")).unwrap();
        assert_eq!(app_differs(&bare, "a.B", &[]), None);
        assert!(app_differs(&bare, "a.B", &args(&["x"])).is_some());
        // Unverifiable: a line cut by the read length, a layout without DriverWrapper, redaction.
        let cut = launch("\"com.example.Etl\" \"--da");
        let cut = &cut[..cut.find('\n').unwrap()];
        let info = parse_launch(cut).unwrap();
        assert_eq!(info.tag.as_deref(), Some("tether-k-1-g2"));
        assert_eq!(
            app_differs(&info, "com.example.Etl", &args(&["--date"])),
            None
        );
        let old =
            parse_launch("Launch Command: \"java\" \"-Dspark.tether.tag=t\" \"x.Y\"\n").unwrap();
        assert_eq!(app_differs(&old, "a.B", &[]), None);
        // Captured from a Spark 4.3.0 worker (scripts/spark-cluster), classpath shortened.
        let real = "Launch Command: \"/usr/lib/jvm/java-17-openjdk-amd64/bin/java\" \"-cp\" \"/opt/spark/jars/*\" \
                    \"-Xmx1024M\" \"-Dspark.tether.tag=tether-spark-skew-g1\" \
                    \"org.apache.spark.deploy.worker.DriverWrapper\" \"spark://Worker@127.0.0.1:52687\" \
                    \"/tmp/h-http-spark/work/driver-20261201150126-0018/tether-test-job.jar\" \
                    \"dev.tether.testjob.TestJob\" \"skew\" \"280\" \"110\" \"4\" \"4000\"\n====\n";
        let real = parse_launch(real).unwrap();
        let skew = args(&["skew", "280", "110", "4", "4000"]);
        assert_eq!(
            app_differs(&real, "dev.tether.testjob.TestJob", &skew),
            None
        );
        assert!(app_differs(&real, "dev.tether.testjob.TestJob", &args(&["pi"])).is_some());
        let red = parse_launch(&launch("\"a.B\" \"-Dpassword=*********(redacted)\"")).unwrap();
        assert_eq!(app_differs(&red, "a.B", &args(&["-Dpassword=x"])), None);
    }
}

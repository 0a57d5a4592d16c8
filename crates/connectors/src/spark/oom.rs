//! THE out-of-memory classifier of every Spark backend (standalone, YARN, Kubernetes, Livy):
//! did a failed driver or executor run out of memory, and what is the one line a person should
//! see?
//!
//! Input is [`Facts`]: log text (a driver's stderr, YARN diagnostics, a pod's log) and/or the
//! structured facts a cluster manager reports (a container's exit code, a pod's termination
//! reason). Output is a [`Verdict`] quoting its evidence.
//!
//! ## What counts as out of memory
//! Structured facts (reported by the cluster manager, so they cannot be a stray log mention):
//! - exit code **-104** / **-103** (YARN `KILLED_EXCEEDED_PMEM` / `_VMEM`) and **52** (Spark's `SparkExitCode.OOM`);
//! - exit code **137** (SIGKILL) or **143** (SIGTERM) *of a container* — that is how YARN and the
//!   kernel's OOM killer end a container over its memory limit. A user's cancel also ends in
//!   these codes: backends only classify containers that *failed*, never ones they killed.
//! - reason **`OOMKilled`** (Kubernetes container termination reason).
//!
//! In log text (line by line; the `Launch Command:` line is skipped, as JVM flags such as
//! `-XX:+ExitOnOutOfMemoryError` or `-XX:+HeapDumpOnOutOfMemoryError` would read as an OOM):
//! - `java.lang.OutOfMemoryError` (or `OutOfMemoryError` not glued to a longer identifier), from
//!   the driver or a task;
//! - an executor that "exited with code 52" / "exit code 52";
//! - "exit code 3" when the job runs its JVMs with `-XX:+ExitOnOutOfMemoryError` or the log also
//!   shows an `OutOfMemoryError`;
//! - YARN's `Container killed ... memory` and `... is running beyond the 'PHYSICAL' memory limit`;
//! - the word `OOMKilled` (Spark's Kubernetes pod watcher prints the termination reason).
//!
//! Not evidence: the letters "OOM" or "oom" (a conf key such as `spark.executor.oomKillOnly`, a
//! class name), `ExitOnOutOfMemoryError`-style flags, "exit code 137/143" *in log text* (it is
//! any SIGKILL/SIGTERM; standalone executors killed by the OOM killer are therefore `Other`).
//!
//! ## Guarantees
//! - Pure functions; `Oom` only on evidence, which is quoted back (clipped to 300 characters).
//! - Structured facts are weighed before log text.

/// What the classifier was given. Every field is optional: give what the backend knows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// Log text (driver stderr, YARN diagnostics, pod log).
    pub log: Option<&'a str>,
    /// A container's (or executor's) exit code as the cluster manager reported it.
    pub exit_code: Option<i32>,
    /// A container's termination reason as the cluster manager reported it (`OOMKilled`).
    pub reason: Option<&'a str>,
}

/// Which signal said "out of memory".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OomSignal {
    /// A `java.lang.OutOfMemoryError` (driver or task).
    OutOfMemoryError,
    /// Exit code 52, Spark's executor OOM exit.
    SparkOomExit,
    /// Exit code 3 of a JVM with `-XX:+ExitOnOutOfMemoryError` (or next to an OOM error).
    ExitOnOomFlag,
    /// YARN killed the container over its memory limit (log line or exit code -104).
    YarnMemoryLimit,
    /// Kubernetes reports the container `OOMKilled`.
    KubernetesOomKilled,
    /// A container ended by SIGKILL (137) or SIGTERM (143), as its cluster manager reported.
    ContainerKilled,
}

/// What the facts say about a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Out of memory, with the evidence.
    Oom {
        /// Which signal.
        signal: OomSignal,
        /// The matching log line, or the structured fact (`exit code -104`).
        evidence: String,
    },
    /// Anything else, with the most telling line if one was found.
    Other {
        /// E.g. `Exception in thread "main" java.lang.ClassNotFoundException: x.Y`.
        summary: Option<String>,
    },
}

/// Classifies what a backend knows about a failure: structured facts first, then the log.
pub fn classify(facts: Facts<'_>) -> Verdict {
    if let Some(reason) = facts.reason.map(str::trim) {
        if reason.eq_ignore_ascii_case("OOMKilled") {
            return oom(OomSignal::KubernetesOomKilled, &format!("reason {reason}"));
        }
    }
    let by_code = match facts.exit_code {
        Some(-104 | -103) => Some(OomSignal::YarnMemoryLimit),
        Some(52) => Some(OomSignal::SparkOomExit),
        Some(137 | 143) => Some(OomSignal::ContainerKilled),
        _ => None,
    };
    if let (Some(signal), Some(code)) = (by_code, facts.exit_code) {
        return oom(signal, &format!("exit code {code}"));
    }
    classify_log(facts.log.unwrap_or_default())
}

/// Classifies log text alone (a driver's stderr).
pub fn classify_log(text: &str) -> Verdict {
    let lines = || text.lines().filter(|l| !l.starts_with("Launch Command:"));
    let exit_on_oom_flag = text.contains("ExitOnOutOfMemoryError");
    let mut oom_error_seen = false;
    let mut exit3: Option<&str> = None;
    for line in lines() {
        if mentions_oom_error(line) {
            oom_error_seen = true;
        }
        if exited_with(line, 52) {
            return oom(OomSignal::SparkOomExit, line);
        }
        if yarn_memory_kill(line) {
            return oom(OomSignal::YarnMemoryLimit, line);
        }
        if has_word(line, "OOMKilled") {
            return oom(OomSignal::KubernetesOomKilled, line);
        }
        if exit3.is_none() && exited_with(line, 3) {
            exit3 = Some(line);
        }
    }
    if let Some(line) = exit3 {
        if exit_on_oom_flag || oom_error_seen {
            return oom(OomSignal::ExitOnOomFlag, line);
        }
    }
    if let Some(line) = lines().find(|l| mentions_oom_error(l)) {
        return oom(OomSignal::OutOfMemoryError, line);
    }
    Verdict::Other {
        summary: summary(text),
    }
}

fn oom(signal: OomSignal, evidence: &str) -> Verdict {
    Verdict::Oom {
        signal,
        evidence: clip(evidence),
    }
}

/// `Container killed ... memory` or `... beyond the 'PHYSICAL' memory limit` (YARN's words).
fn yarn_memory_kill(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    (line.contains("Container killed") && lower.contains("memory"))
        || lower.contains("beyond the 'physical' memory limit")
        || lower.contains("beyond physical memory limits")
}

/// `word` not glued to letters or digits on either side.
fn has_word(line: &str, word: &str) -> bool {
    let b = line.as_bytes();
    line.match_indices(word).any(|(i, _)| {
        let end = i + word.len();
        (i == 0 || !b[i - 1].is_ascii_alphanumeric())
            && (end == b.len() || !b[end].is_ascii_alphanumeric())
    })
}

/// The line a person should see for a non-OOM failure, if any. For an exception that killed
/// the driver's main thread, its deepest `Caused by:` is added: Spark's `DriverWrapper` calls
/// `main` by reflection, so the first line is always `InvocationTargetException`.
pub fn summary(text: &str) -> Option<String> {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("Launch Command:"))
        .collect();
    if let Some(i) = lines
        .iter()
        .position(|l| l.starts_with("Exception in thread"))
    {
        let trace = lines[i + 1..]
            .iter()
            .take_while(|l| l.starts_with(char::is_whitespace) || l.starts_with("Caused by:"));
        let cause = trace.filter(|l| l.starts_with("Caused by:")).last();
        return Some(match cause {
            Some(c) => clip(&format!("{} ({})", lines[i].trim(), c.trim())),
            None => clip(lines[i]),
        });
    }
    let pick = |pred: &dyn Fn(&str) -> bool| lines.iter().find(|l| pred(l)).map(|l| clip(l));
    pick(&|l| l.contains("Job aborted") || l.contains("aborting job")).or_else(|| {
        lines
            .iter()
            .rev()
            .find(|l| l.contains("Exception:") || l.contains("Error:"))
            .map(|l| clip(l))
    })
}

/// `java.lang.OutOfMemoryError` but not a JVM flag like `ExitOnOutOfMemoryError`.
fn mentions_oom_error(line: &str) -> bool {
    line.match_indices("OutOfMemoryError")
        .any(|(i, _)| i == 0 || !line.as_bytes()[i - 1].is_ascii_alphanumeric())
}

/// "Command exited with code N" / "exit code N" / "exited with code N", N not followed by a digit.
fn exited_with(line: &str, code: u32) -> bool {
    let code = code.to_string();
    ["exited with code ", "exit code "].iter().any(|p| {
        line.match_indices(p).any(|(i, _)| {
            let after = &line[i + p.len()..];
            after.starts_with(&code)
                && !after[code.len()..].starts_with(|c: char| c.is_ascii_digit())
        })
    })
}

fn clip(line: &str) -> String {
    let line = line.trim();
    if line.chars().count() > 300 {
        format!("{}...", line.chars().take(300).collect::<String>())
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAUNCH: &str = "Launch Command: \"java\" \"-Dspark.executor.extraJavaOptions=-XX:+HeapDumpOnOutOfMemoryError\"\n";

    #[test]
    fn executor_exit_52_is_oom() {
        // As measured: the skew job on a 512m executor running 4 tasks.
        let log = format!(
            "{LAUNCH}26/11/22 10:54:08 INFO StandaloneSchedulerBackend: Executor app-1/0 removed: Command exited with \
             code 52\n26/11/22 ERROR TaskSetManager: Task 0 in stage 0.0 failed 2 times; aborting job\n"
        );
        match classify_log(&log) {
            Verdict::Oom { evidence, signal } => {
                assert_eq!(signal, OomSignal::SparkOomExit);
                assert!(evidence.contains("code 52"), "{evidence}")
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn exit_3_needs_the_exit_on_oom_flag_or_an_oom_error() {
        let plain = "INFO Executor app-1/0 removed: Command exited with code 3\n";
        assert!(matches!(classify_log(plain), Verdict::Other { .. }));
        let flagged = format!("Launch Command: \"-Dspark.executor.extraJavaOptions=-XX:+ExitOnOutOfMemoryError\"\n{plain}");
        assert!(matches!(classify_log(&flagged), Verdict::Oom { .. }));
        assert!(matches!(
            classify_log("Command exited with code 33\n"),
            Verdict::Other { .. }
        ));
    }

    #[test]
    fn oom_errors_and_container_kills() {
        assert!(matches!(
            classify_log("WARN Lost task 1.0: java.lang.OutOfMemoryError: Java heap space\n"),
            Verdict::Oom { .. }
        ));
        assert!(matches!(
            classify_log("Container killed by YARN for exceeding physical memory limits. 5 GB of 4 GB used\n"),
            Verdict::Oom { .. }
        ));
        // The flag in the launch command alone is not an OOM.
        assert!(matches!(classify_log(LAUNCH), Verdict::Other { .. }));
    }

    #[test]
    fn other_failures_get_a_summary() {
        let log = format!("{LAUNCH}Exception in thread \"main\" java.lang.ClassNotFoundException: no.Such\n\tat x\n");
        assert_eq!(
            classify_log(&log),
            Verdict::Other {
                summary: Some(
                    "Exception in thread \"main\" java.lang.ClassNotFoundException: no.Such".into()
                )
            }
        );
        assert_eq!(
            classify_log("all quiet\n"),
            Verdict::Other { summary: None }
        );
    }

    #[test]
    fn driver_wrapper_exceptions_show_their_cause() {
        // As measured: the test job's `fail` mode through DriverWrapper.
        let log = "Exception in thread \"main\" java.lang.reflect.InvocationTargetException\n\
                   \tat x.y(Z.java:1)\n\
                   Caused by: java.lang.IllegalStateException: tether test job failing on purpose\n\
                   \tat a.b(C.java:2)\n\
                   26/11/22 INFO ShutdownHookManager: Shutdown hook called\n";
        assert_eq!(
            summary(log).unwrap(),
            "Exception in thread \"main\" java.lang.reflect.InvocationTargetException (Caused by: \
             java.lang.IllegalStateException: tether test job failing on purpose)"
        );
    }

    fn signal_of(v: Verdict) -> OomSignal {
        match v {
            Verdict::Oom { signal, .. } => signal,
            other => panic!("not an OOM: {other:?}"),
        }
    }

    #[test]
    fn driver_oom_error_is_oom() {
        let log = "Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space\n";
        assert_eq!(signal_of(classify_log(log)), OomSignal::OutOfMemoryError);
    }

    #[test]
    fn executor_oom_error_is_oom() {
        let log = "WARN TaskSetManager: Lost task 0.0 in stage 1.0 (TID 3) (10.0.0.5 executor 1): \
                   java.lang.OutOfMemoryError: GC overhead limit exceeded\n";
        assert_eq!(signal_of(classify_log(log)), OomSignal::OutOfMemoryError);
    }

    #[test]
    fn yarn_physical_memory_line_is_oom() {
        let log = "Diagnostics: Container [pid=4242,containerID=container_1700000000000_0001_01_000002] is \
                   running 1.2GB beyond the 'PHYSICAL' memory limit. Current usage: 5.2 GB of 4 GB physical \
                   memory used; Killing container.\n";
        let v = classify_log(log);
        assert_eq!(signal_of(v.clone()), OomSignal::YarnMemoryLimit);
        match v {
            Verdict::Oom { evidence, .. } => assert!(evidence.contains("PHYSICAL"), "{evidence}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn yarn_exit_minus_104_is_oom() {
        let v = classify(Facts {
            exit_code: Some(-104),
            ..Facts::default()
        });
        assert_eq!(
            v,
            Verdict::Oom {
                signal: OomSignal::YarnMemoryLimit,
                evidence: "exit code -104".into()
            }
        );
    }

    #[test]
    fn exit_52_as_a_structured_fact_is_oom() {
        let v = classify(Facts {
            exit_code: Some(52),
            ..Facts::default()
        });
        assert_eq!(signal_of(v), OomSignal::SparkOomExit);
    }

    #[test]
    fn container_exit_137_and_143_are_oom() {
        for code in [137, 143] {
            let v = classify(Facts {
                exit_code: Some(code),
                log: Some("all quiet"),
                ..Facts::default()
            });
            assert_eq!(signal_of(v), OomSignal::ContainerKilled, "{code}");
        }
    }

    #[test]
    fn kubernetes_oomkilled_reason_is_oom() {
        let v = classify(Facts {
            reason: Some("OOMKilled"),
            exit_code: Some(137),
            ..Facts::default()
        });
        assert_eq!(signal_of(v), OomSignal::KubernetesOomKilled);
        let log =
            "INFO LoggingPodStatusWatcherImpl: container status: Terminated: exit code: 137, \
                   termination reason: OOMKilled\n";
        assert_eq!(signal_of(classify_log(log)), OomSignal::KubernetesOomKilled);
    }

    #[test]
    fn mentions_of_oom_in_config_are_not_evidence() {
        let log = "INFO SparkContext: spark.executor.oomKillOnly=true\n\
                   INFO SparkContext: spark.oom.policy = OOM_RETRY, spark.driver.extraJavaOptions=-XX:+HeapDumpOnOutOfMemoryError\n\
                   INFO Utils: OOMKilledCounter reset\n\
                   INFO Executor: Finished task 0.0, exit code 137 seen earlier on another host\n";
        assert!(
            matches!(classify_log(log), Verdict::Other { .. }),
            "{:?}",
            classify_log(log)
        );
        // Other exit codes and reasons are not evidence either.
        let v = classify(Facts {
            exit_code: Some(1),
            reason: Some("Error"),
            log: Some(log),
        });
        assert!(matches!(v, Verdict::Other { .. }), "{v:?}");
    }
}

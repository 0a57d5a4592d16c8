//! Reading a failed driver's log: was it an out-of-memory failure, and what is the one line a
//! person should see?
//!
//! ## Guarantees
//! - Pure functions over the log text; the connector feeds them the driver's stderr.
//! - `oom` is said only on evidence, which is quoted back (the matching line):
//!   an executor that exited with code 52 (Spark's `SparkExitCode.OOM`), code 3 when the job
//!   runs executors with `-XX:+ExitOnOutOfMemoryError` or the log mentions `OutOfMemoryError`,
//!   a `Container killed ... memory` line, or a `java.lang.OutOfMemoryError` anywhere (driver
//!   or task).
//!
//! ## Caveats
//! - The `Launch Command:` line is ignored: JVM flags such as `-XX:+ExitOnOutOfMemoryError` or
//!   `-XX:+HeapDumpOnOutOfMemoryError` would otherwise read as an OOM.
//! - Standalone executors killed by the kernel's OOM killer exit with 137, which Spark's log does
//!   not tell apart from any other SIGKILL: that is classed `other`.

/// What the driver log says about a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Out of memory, with the line that shows it.
    Oom {
        /// The matching log line.
        evidence: String,
    },
    /// Anything else, with the most telling line if one was found.
    Other {
        /// E.g. `Exception in thread "main" java.lang.ClassNotFoundException: x.Y`.
        summary: Option<String>,
    },
}

/// Classifies a driver's stderr.
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
            return Verdict::Oom {
                evidence: clip(line),
            };
        }
        if line.contains("Container killed") && line.to_ascii_lowercase().contains("memory") {
            return Verdict::Oom {
                evidence: clip(line),
            };
        }
        if exit3.is_none() && exited_with(line, 3) {
            exit3 = Some(line);
        }
    }
    if let Some(line) = exit3 {
        if exit_on_oom_flag || oom_error_seen {
            return Verdict::Oom {
                evidence: clip(line),
            };
        }
    }
    if let Some(line) = lines().find(|l| mentions_oom_error(l)) {
        return Verdict::Oom {
            evidence: clip(line),
        };
    }
    Verdict::Other {
        summary: summary(text),
    }
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
            Verdict::Oom { evidence } => assert!(evidence.contains("code 52"), "{evidence}"),
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
}

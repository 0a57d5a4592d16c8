//! Reading spark-submit's output: the application id per cluster manager, and what a failed run
//! means for the engine ([`SubmitError`]). Pure functions.
use tether_core::connector::SubmitError;

use super::Cluster;

/// The application id in `text`: YARN `application_<digits>_<digits>`, standalone
/// `driver-<14 digits>-<4+ digits>`, Kubernetes the driver pod of `submission ID <ns>:<pod>`
/// (else `pod name: <pod>`).
pub fn find_id(cluster: Cluster, text: &str) -> Option<String> {
    match cluster {
        Cluster::Yarn => find_shaped(text, "application_", &[Digits(1), Lit('_'), Digits(1)]),
        Cluster::Standalone => find_shaped(text, "driver-", &[Exactly(14), Lit('-'), Digits(4)]),
        Cluster::Kubernetes => k8s_pod(text),
    }
}

#[derive(Clone, Copy)]
enum Part {
    /// At least n digits.
    Digits(usize),
    /// Exactly n digits.
    Exactly(usize),
    Lit(char),
}
use Part::{Digits, Exactly, Lit};

/// The first `prefix` followed by `parts`, not glued to a longer word on either side.
fn find_shaped(text: &str, prefix: &str, parts: &[Part]) -> Option<String> {
    let b = text.as_bytes();
    'next: for (start, _) in text.match_indices(prefix) {
        if start > 0 && (b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_') {
            continue;
        }
        let mut i = start + prefix.len();
        for part in parts {
            match *part {
                Lit(c) => {
                    if b.get(i) != Some(&(c as u8)) {
                        continue 'next;
                    }
                    i += 1;
                }
                Digits(min) | Exactly(min) => {
                    let n = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
                    if n < min || matches!(part, Exactly(_)) && n != min {
                        continue 'next;
                    }
                    i += n;
                }
            }
        }
        if b.get(i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            continue;
        }
        return Some(text[start..i].to_string());
    }
    None
}

/// `submission ID spark:etl-driver` (Spark's `Deployed Spark application ...` line) or
/// `pod name: etl-driver` (its pod status watcher).
fn k8s_pod(text: &str) -> Option<String> {
    let word = |s: &str| -> Option<String> {
        let w: String = s
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':'))
            .collect();
        let w = w.trim_end_matches(['.', ':']);
        (!w.is_empty()).then(|| w.to_string())
    };
    for marker in ["submission ID ", "pod name: "] {
        if let Some(i) = text.find(marker) {
            if let Some(w) = word(&text[i + marker.len()..]) {
                // `namespace:pod` -> pod.
                return Some(w.rsplit(':').next().unwrap_or(&w).to_string());
            }
        }
    }
    None
}

/// Lines that show the submission left this host (the cluster may have it).
const SENT: &[&str] = &[
    "Submission successfully created",
    "Driver successfully submitted",
    "Server responded with",
    "Submitted application",
    "Deployed Spark application",
    "Requesting a new application",
];

/// What a spark-submit run that gave no id means. `exit`: its exit code (`None`: a signal).
/// `text` is the captured output, secrets already scrubbed.
pub fn failure(exit: Option<i32>, text: &str) -> SubmitError {
    let sent = SENT.iter().any(|m| text.contains(m));
    let tail = last_lines(text, 6);
    match exit {
        None => SubmitError::Ambiguous {
            reason: format!("spark-submit was killed by a signal: {tail}"),
        },
        Some(0) => SubmitError::Ambiguous {
            reason: format!(
                "spark-submit succeeded but printed no application id (the application may exist): {tail}"
            ),
        },
        Some(code) if !sent && refused(text) => SubmitError::Unavailable {
            reason: format!(
                "spark-submit could not reach the cluster manager (exit {code}; is the master running and the \
                 master URL right?): {tail}"
            ),
        },
        Some(code) if !sent && bad_arguments(text) => SubmitError::Rejected {
            message: format!("spark-submit refused its arguments (exit {code}): {tail}"),
        },
        Some(code) => SubmitError::Ambiguous {
            reason: format!("spark-submit failed (exit {code}) and its output shows no application id: {tail}"),
        },
    }
}

fn refused(text: &str) -> bool {
    [
        "Connection refused",
        "UnknownHostException",
        "No route to host",
    ]
    .iter()
    .any(|m| text.contains(m))
}

/// spark-submit's own argument checks (`SparkSubmitArguments`), before anything is sent.
fn bad_arguments(text: &str) -> bool {
    text.lines().any(|l| {
        l.starts_with("Error: ")
            || l.starts_with("Usage: spark-submit")
            || l.contains("Unrecognized option")
            || l.contains("Master must either be yarn or start with")
    })
}

/// The last `n` non-empty lines (not stack frames), joined with ` | `.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("at "))
        .collect();
    let from = lines.len().saturating_sub(n);
    let joined = lines[from..].join(" | ");
    if joined.chars().count() > 1000 {
        let cut: String = joined.chars().take(1000).collect();
        format!("{cut}...")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_per_cluster_manager() {
        let yarn = "INFO Client: Submitted application application_1700000000000_0042\n";
        assert_eq!(
            find_id(Cluster::Yarn, yarn).as_deref(),
            Some("application_1700000000000_0042")
        );
        assert_eq!(
            find_id(Cluster::Yarn, "xapplication_1_2 application_1_"),
            None
        );
        let sa = "INFO RestSubmissionClient: Submission successfully created as driver-20261201173351-0000. Polling";
        assert_eq!(
            find_id(Cluster::Standalone, sa).as_deref(),
            Some("driver-20261201173351-0000")
        );
        assert_eq!(
            find_id(
                Cluster::Standalone,
                "driver-2026120117335-0000 driver-20261201173351-00"
            ),
            None
        );
        let k8s =
            "INFO KubernetesClientApplication: Deployed Spark application etl with application ID \
                   spark-a1 and submission ID spark:tether-etl-g1-driver into Kubernetes\n";
        assert_eq!(
            find_id(Cluster::Kubernetes, k8s).as_deref(),
            Some("tether-etl-g1-driver")
        );
        assert_eq!(
            find_id(Cluster::Kubernetes, "\t pod name: tether-x-g2-driver\n").as_deref(),
            Some("tether-x-g2-driver")
        );
    }

    #[test]
    fn failures_are_classified() {
        let refused = "Caused by: java.net.ConnectException: Connection refused\n";
        assert!(matches!(
            failure(Some(1), refused),
            SubmitError::Unavailable { .. }
        ));
        let sent_then_refused = format!("Submitted application application_1_2\n{refused}");
        assert!(matches!(
            failure(Some(1), &sent_then_refused),
            SubmitError::Ambiguous { .. }
        ));
        let usage = "Error: Master must either be yarn or start with spark, k8s, or local\nRun with --help\n";
        assert!(matches!(
            failure(Some(1), usage),
            SubmitError::Rejected { .. }
        ));
        assert!(matches!(
            failure(Some(0), "all fine"),
            SubmitError::Ambiguous { .. }
        ));
        assert!(matches!(failure(None, ""), SubmitError::Ambiguous { .. }));
        assert!(matches!(
            failure(Some(1), "java.io.IOException: reset"),
            SubmitError::Ambiguous { .. }
        ));
    }
}

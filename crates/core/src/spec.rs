//! Job spec files and the retry policy.
//!
//! A spec is a TOML file: top-level policy keys, a `[job]` table whose `kind` names the backend
//! connector (its other fields belong to that connector), and an optional `[recovery]` table of
//! overrides applied after an out-of-memory failure.
//!
//! ```toml
//! max_submissions = 3        # generations allowed, the first included
//! backoff = "2s"             # first wait between retries (doubles up to backoff_max)
//! backoff_max = "1m"
//! durable = true             # false: plain submit/poll/result, no journal
//! status_timeout = "10m"     # how long an unknown status is asked again before exit 4
//! poll_interval = "2s"
//! on_lost = "resubmit"       # or "fail": what to do when the backend forgot the job
//!
//! [job]
//! kind = "local"
//! command = ["sh", "-c", "echo hello"]
//!
//! [recovery]
//! memory_limit = "1GiB"
//! ```
//!
//! ## Guarantees
//! - Unknown fields anywhere are errors naming the file, line, column and field.
use std::time::Duration;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::units::HumanDuration;

/// A spec file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The TOML is malformed or does not match the expected fields.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        /// File name as given by the user.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong, including the field name.
        message: String,
    },
    /// `[job] kind` names a backend this build does not know.
    #[error("{file}:{line}: unknown backend kind {kind:?} in [job]; known kinds: {known}")]
    UnknownBackend {
        /// File name.
        file: String,
        /// Line of the `kind` key.
        line: usize,
        /// The kind given.
        kind: String,
        /// Comma-separated list of known kinds.
        known: String,
    },
    /// A value is well-formed but not allowed (e.g. `max_submissions = 0`).
    #[error("{file}: {field}: {message}")]
    Value {
        /// File name.
        file: String,
        /// Field path, e.g. `job.command`.
        field: String,
        /// What is wrong and what to write instead.
        message: String,
    },
}

/// What to do when the backend no longer knows a recorded job, or the id names another job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LostPolicy {
    /// Submit the next generation (if the budget allows).
    #[default]
    Resubmit,
    /// Fail the run.
    Fail,
}

/// What to do when a crash left an intent without id and the connector cannot search by tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentPolicy {
    /// Fail the run: a duplicate job is worse than a failed run (default).
    #[default]
    Fail,
    /// Submit the same generation again, accepting a possible duplicate.
    Resubmit,
}

/// A whole spec file, generic over the connector's job table `J` and recovery table `R`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SpecFile<J, R> {
    /// Generations allowed, the first included.
    #[serde(default = "default_max_submissions")]
    pub max_submissions: u32,
    /// First wait between retries.
    #[serde(default = "default_backoff")]
    pub backoff: HumanDuration,
    /// Longest wait between retries.
    #[serde(default = "default_backoff_max")]
    pub backoff_max: HumanDuration,
    /// Journal the run (default true).
    #[serde(default = "default_true")]
    pub durable: bool,
    /// How long an unknown status is asked again before giving up (exit 4, run resumable).
    #[serde(default = "default_status_timeout")]
    pub status_timeout: HumanDuration,
    /// Time between two status calls (default: the connector's choice).
    #[serde(default)]
    pub poll_interval: Option<HumanDuration>,
    /// What to do with a lost job.
    #[serde(default)]
    pub on_lost: LostPolicy,
    /// What to do with an intent that cannot be verified.
    #[serde(default)]
    pub on_unverifiable_intent: IntentPolicy,
    /// The backend's job table.
    pub job: J,
    /// Recovery overrides.
    pub recovery: Option<R>,
}

fn default_max_submissions() -> u32 {
    3
}
fn default_backoff() -> HumanDuration {
    HumanDuration(Duration::from_secs(2))
}
fn default_backoff_max() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}
fn default_true() -> bool {
    true
}
fn default_status_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(600))
}

/// The retry policy, as the decision uses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Generations allowed, the first included.
    pub max_submissions: u32,
    /// First wait between retries.
    pub backoff: Duration,
    /// Longest wait between retries.
    pub backoff_max: Duration,
    /// How long an unknown status is asked again.
    pub status_timeout: Duration,
    /// Time between two status calls.
    pub poll_interval: Duration,
    /// Lost job handling.
    pub on_lost: LostPolicy,
    /// Unverifiable intent handling.
    pub on_unverifiable_intent: IntentPolicy,
    /// Whether an OOM failure switches the next generation to the recovery shape.
    pub recovery: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_submissions: 3,
            backoff: Duration::from_secs(2),
            backoff_max: Duration::from_secs(60),
            status_timeout: Duration::from_secs(600),
            poll_interval: Duration::from_secs(2),
            on_lost: LostPolicy::Resubmit,
            on_unverifiable_intent: IntentPolicy::Fail,
            recovery: true,
        }
    }
}

impl<J, R> SpecFile<J, R> {
    /// The policy part of the spec. `default_poll` is the connector's poll interval and
    /// `recovery` whether the connector or the spec provides a recovery shape.
    pub fn policy(&self, default_poll: Duration, recovery: bool) -> Policy {
        Policy {
            max_submissions: self.max_submissions,
            backoff: self.backoff.0,
            backoff_max: self.backoff_max.0,
            status_timeout: self.status_timeout.0,
            poll_interval: self.poll_interval.map(|d| d.0).unwrap_or(default_poll),
            on_lost: self.on_lost,
            on_unverifiable_intent: self.on_unverifiable_intent,
            recovery,
        }
    }
}

/// Parses a spec's text into the connector's types; errors carry file, line, column and field.
pub fn parse_spec<J: DeserializeOwned, R: DeserializeOwned>(
    file: &str,
    text: &str,
) -> Result<SpecFile<J, R>, SpecError> {
    let spec: SpecFile<J, R> = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
    if spec.max_submissions == 0 {
        return Err(SpecError::Value {
            file: file.into(),
            field: "max_submissions".into(),
            message: "must be at least 1 (it counts the first submission)".into(),
        });
    }
    // Timing knobs outside these ranges are typos ("0s", "1000h") that would spin a loop or
    // make a run wait for ever; the bounds are wide enough for any real use.
    let day = Duration::from_secs(86_400);
    let ranges = [
        ("backoff", Some(spec.backoff.0), Duration::ZERO, day),
        ("backoff_max", Some(spec.backoff_max.0), Duration::ZERO, day),
        (
            "status_timeout",
            Some(spec.status_timeout.0),
            Duration::from_secs(1),
            30 * day,
        ),
        (
            "poll_interval",
            spec.poll_interval.map(|d| d.0),
            Duration::from_millis(50),
            Duration::from_secs(3600),
        ),
    ];
    for (field, value, min, max) in ranges {
        if let Some(value) = value {
            check_duration(file, field, value, min, max)?;
        }
    }
    if spec.backoff_max.0 < spec.backoff.0 {
        return Err(SpecError::Value {
            file: file.into(),
            field: "backoff_max".into(),
            message: format!(
                "{} is shorter than backoff ({}): make backoff_max at least backoff",
                spec.backoff_max, spec.backoff
            ),
        });
    }
    Ok(spec)
}

/// Largest spec file accepted: a spec is copied into the store and into every generation, so a
/// runaway file (a 57 MB spec was once stored) must be refused before anything is written.
pub const MAX_SPEC_BYTES: u64 = 1 << 20;

/// The spec hash stored with a run: 64 lower-case hex digits of SHA-256 of the text.
pub fn spec_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `stored` is the hash of `text`. Runs created before SHA-256 stored 16 hex digits of
/// FNV-1a; they are compared with that algorithm so an unchanged spec is never refused.
pub fn spec_hash_matches(stored: &str, text: &str) -> bool {
    if stored.len() == 16 {
        stored == format!("{:016x}", crate::ids::fnv1a64(text.as_bytes()))
    } else {
        stored == spec_hash(text)
    }
}

/// Checks that the duration knob `field` lies in `min..=max`; the error names file and field.
pub fn check_duration(
    file: &str,
    field: &str,
    value: Duration,
    min: Duration,
    max: Duration,
) -> Result<(), SpecError> {
    if value < min || value > max {
        return Err(SpecError::Value {
            file: file.into(),
            field: field.into(),
            message: format!(
                "{} is out of range: write a duration between {} and {}",
                HumanDuration(value),
                HumanDuration(min),
                HumanDuration(max)
            ),
        });
    }
    Ok(())
}

/// Reads `[job] kind` without interpreting anything else, to pick the connector.
pub fn peek_kind(file: &str, text: &str) -> Result<(String, usize), SpecError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
    let missing = |message: &str| SpecError::Invalid {
        file: file.into(),
        line: 1,
        column: 1,
        message: message.into(),
    };
    let job = table.get("job").ok_or_else(|| {
        missing("missing table [job]: add [job] with kind = \"local\" (or another backend)")
    })?;
    let job = job
        .as_table()
        .ok_or_else(|| missing("`job` must be a table: write [job]"))?;
    let kind = job
        .get("kind")
        .ok_or_else(|| missing("missing field `kind` in [job]: e.g. kind = \"local\""))?;
    let kind = kind
        .as_str()
        .ok_or_else(|| missing("field `kind` in [job] must be a string, e.g. kind = \"local\""))?;
    Ok((kind.to_string(), line_of_key(text, "kind")))
}

/// 1-based line of the first line that assigns `key`, or 1.
pub fn line_of_key(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .is_some_and(|r| r.trim_start().starts_with('='))
        })
        .map_or(1, |i| i + 1)
}

fn toml_error(file: &str, text: &str, e: &toml::de::Error) -> SpecError {
    let (line, column) = match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            (line, column)
        }
        None => (1, 1),
    };
    SpecError::Invalid {
        file: file.into(),
        line,
        column,
        message: e.message().trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct J {
        kind: String,
        command: Vec<String>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct R {
        command: Option<Vec<String>>,
    }

    #[test]
    fn defaults_apply() {
        let s: SpecFile<J, R> =
            parse_spec("a.toml", "[job]\nkind='local'\ncommand=['true']\n").unwrap();
        assert_eq!(s.max_submissions, 3);
        assert!(s.durable);
        assert_eq!(s.status_timeout.0, Duration::from_secs(600));
        assert!(s.recovery.is_none());
    }

    #[test]
    fn unknown_field_names_file_line_and_field() {
        let e = parse_spec::<J, R>(
            "a.toml",
            "[job]\nkind='local'\ncommand=['true']\ncolour='red'\n",
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("a.toml:4:1:"), "{msg}");
        assert!(msg.contains("colour"), "{msg}");
        let e = parse_spec::<J, R>(
            "a.toml",
            "max_submisions = 2\n[job]\nkind='local'\ncommand=[]\n",
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("a.toml:1:1:") && e.to_string().contains("max_submisions")
        );
    }

    #[test]
    fn wrong_types_and_missing_fields() {
        let e = parse_spec::<J, R>("b.toml", "[job]\nkind='local'\ncommand='true'\n").unwrap_err();
        assert!(e.to_string().contains("b.toml:3:"), "{e}");
        let e = parse_spec::<J, R>("b.toml", "[job]\nkind='local'\n").unwrap_err();
        assert!(e.to_string().contains("command"), "{e}");
        let e = parse_spec::<J, R>(
            "b.toml",
            "max_submissions=0\n[job]\nkind='local'\ncommand=[]\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("max_submissions"), "{e}");
        let e = parse_spec::<J, R>(
            "b.toml",
            "status_timeout='soon'\n[job]\nkind='local'\ncommand=[]\n",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("b.toml:1:") && e.to_string().contains("duration"),
            "{e}"
        );
    }

    #[test]
    fn spec_hash_is_sha256_and_accepts_old_fnv_hashes() {
        let h = spec_hash("abc");
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(spec_hash_matches(&h, "abc"));
        assert!(!spec_hash_matches(&h, "abd"));
        let old = format!("{:016x}", crate::ids::fnv1a64(b"abc"));
        assert!(spec_hash_matches(&old, "abc"));
        assert!(!spec_hash_matches(&old, "abd"));
    }

    #[test]
    fn timing_knobs_are_range_checked() {
        for (knob, field) in [
            ("poll_interval = '0s'", "poll_interval"),
            ("poll_interval = '2h'", "poll_interval"),
            ("status_timeout = '0s'", "status_timeout"),
            ("status_timeout = '365d'", "status_timeout"),
            ("backoff = '2d'", "backoff"),
            ("backoff = '10s'\nbackoff_max = '1s'", "backoff_max"),
        ] {
            let text = format!("{knob}\n[job]\nkind='local'\ncommand=['true']\n");
            let e = parse_spec::<J, R>("k.toml", &text).unwrap_err().to_string();
            assert!(e.starts_with(&format!("k.toml: {field}:")), "{knob}: {e}");
        }
        let ok = "poll_interval = '100ms'\nstatus_timeout = '1h'\n[job]\nkind='local'\ncommand=['true']\n";
        assert!(parse_spec::<J, R>("k.toml", ok).is_ok());
    }

    #[test]
    fn peek_kind_finds_the_backend() {
        assert_eq!(
            peek_kind("c", "x=1\n[job]\nkind = \"local\"\n").unwrap(),
            ("local".into(), 3)
        );
        assert!(peek_kind("c", "[jobs]\n")
            .unwrap_err()
            .to_string()
            .contains("[job]"));
        assert!(peek_kind("c", "[job]\nkind=3\n")
            .unwrap_err()
            .to_string()
            .contains("string"));
        assert!(peek_kind("c", "[job\n")
            .unwrap_err()
            .to_string()
            .starts_with("c:1:"));
    }
}

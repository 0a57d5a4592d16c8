//! Text that comes from a backend, made safe to store and print.
//!
//! ## Guarantees
//! - [`scrub`] replaces every occurrence of each known secret with `***`.
//! - [`escape_controls`] leaves no control character (C0, DEL, C1: ESC sequences, newlines,
//!   carriage returns) and no bidirectional override in the text: each is written as its Rust
//!   escape (`\u{1b}`, `\n`), so a backend's message cannot move the cursor, recolour or rewrite
//!   a terminal line, or forge extra lines in a log.
//!
//! ## Caveats
//! - A secret split across two separately scrubbed pieces (two log chunks) is not recognised.
//! - Empty secrets are ignored (they would match everywhere).

use tether_core::{
    connector::{CancelError, SubmitError},
    observe::JobStatus,
};

/// `text` with every occurrence of each non-empty secret replaced by `***`.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        if out.contains(s) {
            out = out.replace(s, "***");
        }
    }
    out
}

/// [`scrub`] for bytes (log chunks): each secret's bytes become `***`.
pub fn scrub_bytes(data: &[u8], secrets: &[&str]) -> Vec<u8> {
    let mut out = data.to_vec();
    for s in secrets
        .iter()
        .map(|s| s.as_bytes())
        .filter(|s| !s.is_empty())
    {
        let mut next = Vec::with_capacity(out.len());
        let mut i = 0;
        while i < out.len() {
            if out[i..].starts_with(s) {
                next.extend_from_slice(b"***");
                i += s.len();
            } else {
                next.push(out[i]);
                i += 1;
            }
        }
        out = next;
    }
    out
}

/// True for characters that change how a terminal shows what follows.
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with control characters and bidi overrides written as escapes (`\n`, `\u{1b}`).
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(is_unsafe) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Both: secrets scrubbed, then controls escaped. What every backend text goes through before
/// it reaches an error, a status or an outcome.
pub fn clean(text: &str, secrets: &[&str]) -> String {
    escape_controls(&scrub(text, secrets))
}

/// [`clean`] on every text of a status, for a connector's `status` (its secrets scrubbed out of
/// whatever the backend said).
pub fn clean_status(status: JobStatus, secrets: &[&str]) -> JobStatus {
    let c = |t: &str| clean(t, secrets);
    match status {
        JobStatus::Active { state, detail } => JobStatus::Active {
            state,
            detail: c(&detail),
        },
        JobStatus::Succeeded { result } => JobStatus::Succeeded {
            result: clean_json(result, secrets),
        },
        JobStatus::Failed { class, message } => JobStatus::Failed {
            class,
            message: c(&message),
        },
        JobStatus::NotFound { detail } => JobStatus::NotFound { detail: c(&detail) },
        JobStatus::Mismatch { found } => JobStatus::Mismatch { found: c(&found) },
        JobStatus::Unknown { reason } => JobStatus::Unknown { reason: c(&reason) },
    }
}

/// [`clean`] on every string (and key) of a JSON value.
pub fn clean_json(value: serde_json::Value, secrets: &[&str]) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(clean(&s, secrets)),
        Value::Array(a) => Value::Array(a.into_iter().map(|v| clean_json(v, secrets)).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (clean(&k, secrets), clean_json(v, secrets)))
                .collect(),
        ),
        other => other,
    }
}

/// [`clean`] on the backend's words in a submit error (the fence's own errors pass as they are).
pub fn clean_submit_error(e: SubmitError, secrets: &[&str]) -> SubmitError {
    match e {
        SubmitError::Rejected { message } => SubmitError::Rejected {
            message: clean(&message, secrets),
        },
        SubmitError::Unavailable { reason } => SubmitError::Unavailable {
            reason: clean(&reason, secrets),
        },
        SubmitError::Ambiguous { reason } => SubmitError::Ambiguous {
            reason: clean(&reason, secrets),
        },
        other => other,
    }
}

/// [`clean`] on the backend's words in a cancel error.
pub fn clean_cancel_error(e: CancelError, secrets: &[&str]) -> CancelError {
    match e {
        CancelError::Unavailable { reason } => CancelError::Unavailable {
            reason: clean(&reason, secrets),
        },
        CancelError::Refused { message } => CancelError::Refused {
            message: clean(&message, secrets),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_everywhere() {
        assert_eq!(
            scrub("Bearer s3cr3t failed; s3cr3t again", &["s3cr3t", ""]),
            "Bearer *** failed; *** again"
        );
        assert_eq!(scrub("nothing here", &["s3cr3t"]), "nothing here");
        assert_eq!(
            scrub_bytes(b"a s3cr3t b s3cr", &["s3cr3t"]),
            b"a *** b s3cr".to_vec()
        );
    }

    #[test]
    fn controls_are_escaped() {
        let raw = "ok\x1b[2J\x1b]0;pwned\x07\nFAKE LINE\r\u{202e}txt\u{9b}";
        let out = escape_controls(raw);
        assert!(!out.chars().any(is_unsafe), "{out:?}");
        assert_eq!(
            out,
            "ok\\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\nFAKE LINE\\r\\u{202e}txt\\u{9b}"
        );
        assert_eq!(
            escape_controls("plain text: ünïcode"),
            "plain text: ünïcode"
        );
        assert_eq!(clean("tok\nx", &["tok"]), "***\\nx");
    }
}

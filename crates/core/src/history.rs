//! The kinds of a run's history entries: the engine's decisions and the store's lease events.
//!
//! ## Guarantees
//! - A kind is stored as the same text as before it was an enum (`look-up-tag`,
//!   `lease-acquired`, ...), so existing databases read back unchanged.
//! - A text this version does not know (written by a newer tether or another tool) reads back
//!   as [`HistoryKind::Other`] and is written back as it was: history never fails to decode.
use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! kinds {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// What a history entry records. Serialized as its text (see [`HistoryKind::as_str`]).
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        #[non_exhaustive]
        pub enum HistoryKind {
            $($(#[$doc])* $variant,)*
            /// A kind this version does not know, kept as written.
            Other(String),
        }

        impl HistoryKind {
            /// The stored text: kebab-case, as history entries always had it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(HistoryKind::$variant => $text,)*
                    HistoryKind::Other(text) => text,
                }
            }
        }

        impl From<&str> for HistoryKind {
            fn from(text: &str) -> Self {
                match text {
                    $($text => HistoryKind::$variant,)*
                    other => HistoryKind::Other(other.to_string()),
                }
            }
        }
    };
}

kinds! {
    /// First submission of a run instance.
    Submit = "submit",
    /// An intent without id submitted again with the same generation and tag.
    ResubmitSameGeneration = "resubmit-same-generation",
    /// A new generation after a failure or a loss.
    Resubmit = "resubmit",
    /// Waiting out the backoff before a resubmission.
    Backoff = "backoff",
    /// Searching the backend for the intent's tag.
    LookUpTag = "look-up-tag",
    /// A job found by its tag was adopted.
    Adopt = "adopt",
    /// Asking the backend for the job's status.
    Observe = "observe",
    /// The job is active (queued or running): polling.
    Poll = "poll",
    /// No definite answer: asking again later.
    AskAgain = "ask-again",
    /// No definite answer for `status_timeout`: stopped, resumable.
    GiveUpUnknown = "give-up-unknown",
    /// Killing the job on request.
    Cancel = "cancel",
    /// The outcome was recorded.
    Finish = "finish",
    /// The outcome was already recorded.
    ReturnRecorded = "return-recorded",
    /// The backend accepted a submission and its id was recorded.
    Submitted = "submitted",
    /// Something the backend saw happen inside the running job ([`crate::connector::BackendEvents`]).
    BackendEvent = "backend-event",
    /// A lease was taken (store event).
    LeaseAcquired = "lease-acquired",
    /// A worker claimed the run (store event).
    Claimed = "claimed",
    /// A lease was given up (store event).
    Released = "released",
    /// A finished run was made fresh again (store event).
    Rerun = "rerun",
    /// The host of a host-bound run was forgotten (store event).
    HostForgotten = "host-forgotten",
}

impl From<String> for HistoryKind {
    fn from(text: String) -> Self {
        match HistoryKind::from(text.as_str()) {
            HistoryKind::Other(_) => HistoryKind::Other(text),
            known => known,
        }
    }
}

impl From<HistoryKind> for String {
    fn from(kind: HistoryKind) -> Self {
        match kind {
            HistoryKind::Other(text) => text,
            known => known.as_str().to_string(),
        }
    }
}

impl fmt::Display for HistoryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl PartialEq<str> for HistoryKind {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for HistoryKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for HistoryKind {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_keep_the_text_they_were_stored_as() {
        for (kind, text) in [
            (HistoryKind::LookUpTag, "look-up-tag"),
            (
                HistoryKind::ResubmitSameGeneration,
                "resubmit-same-generation",
            ),
            (HistoryKind::GiveUpUnknown, "give-up-unknown"),
            (HistoryKind::LeaseAcquired, "lease-acquired"),
            (HistoryKind::Poll, "poll"),
        ] {
            assert_eq!(HistoryKind::from(text), kind);
            assert_eq!(kind.as_str(), text);
            assert_eq!(serde_json::to_value(&kind).unwrap(), text);
            let back: HistoryKind = serde_json::from_value(text.into()).unwrap();
            assert_eq!(back, kind);
        }
    }

    #[test]
    fn a_kind_compares_equal_to_its_text_only() {
        let poll = HistoryKind::Poll;
        let (same, other) = (String::from("poll"), String::from("ask-again"));
        assert!(poll == *"poll" && poll == "poll" && poll == same);
        assert!(poll != *"ask-again" && poll != "ask-again" && poll != other);
    }

    #[test]
    fn an_unknown_text_reads_back_and_writes_back_unchanged() {
        let kind: HistoryKind = serde_json::from_value("made-by-tether-9".into()).unwrap();
        assert_eq!(kind, HistoryKind::Other("made-by-tether-9".into()));
        assert_eq!(String::from(kind.clone()), "made-by-tether-9");
        assert_eq!(format!("{kind:<18}|"), "made-by-tether-9  |");
    }
}

//! Identifiers of the run protocol: run key, generation, tag, epoch, external id, owner.
//!
//! ## Guarantees
//! - [`Tag::derive`] is deterministic: the same (store, run key, generation) always gives the
//!   same tag, on every machine and in every version of tether (SHA-256, not `std`'s randomised
//!   hasher).
//! - Two state stores never derive the same tag, whatever keys they use: the store's random
//!   [`StoreId`] is part of every tag (in clear, and in the hash), so staging and prod using the
//!   same key never adopt or cancel each other's jobs.
//! - Tags are at most 63 characters of `[a-z0-9-]`, so every backend can store them (K8s label
//!   values, Databricks idempotency tokens (64), YARN tags, Livy names, Spark app names).
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Error for an identifier that is not acceptable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    /// The run key is empty, too long or has characters outside `[A-Za-z0-9._:@+-]`.
    #[error("invalid run key {0:?}: use 1-128 characters from A-Z a-z 0-9 . _ : @ + -")]
    InvalidRunKey(String),
    /// A stored store id is not 8 characters of `[a-z0-9]`.
    #[error("invalid store id {0:?} in the state store: expected 8 characters of a-z 0-9")]
    InvalidStoreId(String),
}

/// The user-visible name of a run. Running the same key twice never launches a second job.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunKey(String);

impl RunKey {
    /// Validates and wraps a run key.
    ///
    /// `+` is accepted so that an Airflow `run_id` (`scheduled__2026-12-01T00:00:00+00:00`) is
    /// a key as it is, with no mapping to document or reverse; tags never carry the key raw.
    pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        let ok = !s.is_empty()
            && s.len() <= 128
            && s.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '+' | '-')
            });
        if ok {
            Ok(Self(s))
        } else {
            Err(IdError::InvalidRunKey(s))
        }
    }

    /// Derives a key from the canonical absolute path of a spec file:
    /// `<slug of stem, ≤40>-<16 hex digits of SHA-256(path)>`.
    ///
    /// The path, not the content: editing a spec (even a comment) after a crash keeps its key, so
    /// the rerun resumes the job instead of starting a second copy, and two projects with the
    /// same file name and content get two runs instead of sharing one result.
    pub fn from_path(stem: &str, canonical: &std::path::Path) -> Self {
        use sha2::{Digest, Sha256};
        let slug = slug(stem, 40);
        let slug = if slug.is_empty() {
            "run".to_string()
        } else {
            slug
        };
        let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Self(format!("{slug}-{hex}"))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RunKey {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::new(s)
    }
}
impl From<RunKey> for String {
    fn from(k: RunKey) -> String {
        k.0
    }
}
impl fmt::Display for RunKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The number of a submission within a run: 1, 2, ... A new generation is a new external job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Generation(pub u32);

impl Generation {
    /// The first generation.
    pub const FIRST: Generation = Generation(1);
    /// The generation after this one.
    pub fn next(self) -> Generation {
        Generation(self.0 + 1)
    }
}
impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Fencing token of a lease. Every take-over of a run increments it; writes carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Epoch(pub i64);
impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The random identity of a state store, created with its schema: 8 characters of `[a-z0-9]`.
/// It scopes every tag to one store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StoreId(String);

impl StoreId {
    /// Length of a store id.
    pub const LEN: usize = 8;

    /// Validates a stored id.
    pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        let ok = s.len() == Self::LEN
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if ok {
            Ok(Self(s))
        } else {
            Err(IdError::InvalidStoreId(s))
        }
    }

    /// A store id from random bytes (the caller brings the randomness: core does no I/O).
    pub fn from_random(bytes: [u8; 8]) -> Self {
        const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        Self(
            bytes
                .iter()
                .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
                .collect(),
        )
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for StoreId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::new(s)
    }
}
impl From<StoreId> for String {
    fn from(k: StoreId) -> String {
        k.0
    }
}
impl fmt::Display for StoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The deterministic label a submission carries into the backend, derived from the store, the
/// run key and the generation. Finding a job by its tag heals a crash between "submitted" and
/// "id recorded".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tag(String);

impl Tag {
    /// `tether-<slug of key, ≤22>-<store id>-<12 hex of SHA-256(store id "/" key)>-g<generation>`,
    /// at most 63 characters (7 + 22 + 1 + 8 + 1 + 12 + 2 + 10).
    pub fn derive(store: &StoreId, key: &RunKey, generation: Generation) -> Tag {
        let s = slug(key.as_str(), 22);
        let digest = Sha256::digest(format!("{store}/{key}").as_bytes());
        let h: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        if s.is_empty() {
            Tag(format!("tether-{store}-{h}-g{}", generation.0))
        } else {
            Tag(format!("tether-{s}-{store}-{h}-g{}", generation.0))
        }
    }
    /// Wraps a tag read back from a store or a backend (no validation: it is compared, not built).
    pub fn from_stored(s: impl Into<String>) -> Tag {
        Tag(s.into())
    }
    /// The tag as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The backend's id for a submitted job. Opaque text; `"0"` and other "falsy" values are valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExternalId(pub String);
impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who holds a lease: a `tether run` process or a worker (`host:pid:nonce`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OwnerId(pub String);
impl fmt::Display for OwnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// FNV-1a, 64 bit. Stable across platforms and releases, which is all a tag needs.
pub fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Lower-case `[a-z0-9-]` version of `s`, at most `max` characters, no leading/trailing dash.
fn slug(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
        if out.len() >= max {
            break;
        }
    }
    out.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(s: &str) -> StoreId {
        StoreId::new(s).unwrap()
    }

    #[test]
    fn tag_is_deterministic_short_and_backend_safe() {
        let k = RunKey::new("Nightly_ETL:2026-11-22@eu.west-very-long-name-indeed-yes").unwrap();
        let st = store("a1b2c3d4");
        let a = Tag::derive(&st, &k, Generation(3));
        assert_eq!(a, Tag::derive(&st, &k, Generation(3)));
        assert_ne!(a, Tag::derive(&st, &k, Generation(4)));
        let longest = Tag::derive(&st, &k, Generation(u32::MAX));
        assert!(longest.as_str().len() <= 63, "{longest}");
        assert!(a
            .as_str()
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        assert!(a.as_str().ends_with("-g3"));
        assert!(a.as_str().contains("-a1b2c3d4-"), "{a}");
        // Pinned value: changing the derivation would orphan every in-flight run.
        assert_eq!(
            Tag::derive(
                &store("abcdefgh"),
                &RunKey::new("k").unwrap(),
                Generation(1)
            )
            .as_str(),
            "tether-k-abcdefgh-5d0b01e7aaeb-g1"
        );
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn separators_collapse_in_the_tag_slug() {
        // Pinned: runs of separators become one dash, none leads or trails. Changing this
        // would give in-flight runs with such keys new tags (and orphan their jobs).
        let st = store("abcdefgh");
        let tag = |k: &str| Tag::derive(&st, &RunKey::new(k).unwrap(), Generation(1));
        assert!(tag("__a..__b--")
            .as_str()
            .starts_with("tether-a-b-abcdefgh-"));
        assert!(tag("--").as_str().starts_with("tether-abcdefgh-"));
    }

    #[test]
    fn two_stores_never_share_a_tag_for_the_same_key() {
        let k = RunKey::new("nightly-2026-11-22").unwrap();
        let (a, b) = (store("stagingx"), store("prod0001"));
        assert_ne!(
            Tag::derive(&a, &k, Generation(1)),
            Tag::derive(&b, &k, Generation(1))
        );
    }

    #[test]
    fn store_ids_are_validated_and_random_ones_are_valid() {
        assert!(StoreId::new("abc").is_err());
        assert!(StoreId::new("ABCDEFGH").is_err());
        let r = StoreId::from_random([0, 35, 36, 255, 7, 8, 9, 10]);
        assert_eq!(StoreId::new(r.as_str()), Ok(r.clone()));
    }

    #[test]
    fn run_keys_are_validated() {
        assert!(RunKey::new("nightly-2026-11-22").is_ok());
        assert!(RunKey::new("").is_err());
        assert!(RunKey::new("a b").is_err());
        assert!(RunKey::new("x".repeat(129)).is_err());
        // Airflow run ids are keys as they are (the `+` of the UTC offset included).
        let airflow = "manual__2026-12-01T12:03:00.123456+00:00";
        assert_eq!(
            RunKey::new(airflow).map(|k| k.as_str().to_string()),
            Ok(airflow.into())
        );
        let p = std::path::Path::new("/a/hello.toml");
        let k = RunKey::from_path("hello.toml", p);
        assert!(k.as_str().starts_with("hello-toml-"));
        assert_eq!(k.as_str().len(), "hello-toml-".len() + 16);
        assert_eq!(k, RunKey::from_path("hello.toml", p));
        assert_ne!(
            k,
            RunKey::from_path("hello.toml", std::path::Path::new("/b/hello.toml"))
        );
        // Pinned: SHA-256("/a/hello.toml") starts with these 8 bytes; changing the derivation
        // would give every existing spec a new key (and a second run).
        assert_eq!(RunKey::from_path("", p).as_str().len(), "run-".len() + 16);
    }
}

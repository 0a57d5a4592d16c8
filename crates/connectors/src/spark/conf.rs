//! Spark conf handling shared by the Spark backends: the values a spec's `[job.conf]` holds, key
//! validation, the merge of the user's conf with tether's own keys, and redaction of secrets for
//! anything displayed or written to history.
//!
//! ## Guarantees
//! - [`SparkConf`] keeps keys in order (sorted, as the spec's table is), one value per key.
//! - A key is non-empty printable ASCII without spaces or `=` (`spark-submit --conf k=v` splits
//!   at the first `=`); a bad key is an error naming the spec field and the key.
//! - [`SparkConf::merge`]: tether's keys always win, and a user conf setting one of them is an
//!   error naming the key (never a silent override of what adoption depends on).
//! - [`SparkConf::redacted`] / [`redact`] replace the value of every secret-looking key (see
//!   [`is_secret_key`]) by `***`.
//!
//! ## Caveats
//! - Redaction is by key name, like Spark's own `spark.redaction.regex`: a secret stored under an
//!   innocent key name is not recognised. Secrets belong in files or the environment, not conf.
use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};

/// A `[job.conf]` value: TOML strings, integers, floats and booleans are all accepted and sent
/// to Spark as text (`"spark.executor.cores" = 4` and `= "4"` mean the same).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConfValue {
    /// Text.
    Text(String),
    /// Integer.
    Int(i64),
    /// Float.
    Float(f64),
    /// Boolean.
    Bool(bool),
}

impl fmt::Display for ConfValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfValue::Text(s) => f.write_str(s),
            ConfValue::Int(i) => write!(f, "{i}"),
            ConfValue::Float(x) => write!(f, "{x}"),
            ConfValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// Why a conf cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfError {
    /// A key Spark (or `spark-submit --conf`) cannot take.
    #[error("key {key:?} {why}: write keys like \"spark.executor.memory\"")]
    BadKey {
        /// The spec field, e.g. `job.conf`.
        field: String,
        /// The key (keys are never secret).
        key: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The user set a key tether sets itself.
    #[error(
        "{key} is set by tether itself (adoption and the identity check depend on it); remove it"
    )]
    Reserved {
        /// The spec field, e.g. `job.conf`.
        field: String,
        /// The key.
        key: String,
    },
}

impl ConfError {
    /// The spec field at fault, e.g. `job.conf`.
    pub fn field(&self) -> &str {
        match self {
            ConfError::BadKey { field, .. } | ConfError::Reserved { field, .. } => field,
        }
    }
}

/// An ordered Spark conf: key -> value as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SparkConf(BTreeMap<String, String>);

impl SparkConf {
    /// The conf of a spec table (`field` names it in errors), keys validated.
    pub fn from_spec(field: &str, table: &BTreeMap<String, ConfValue>) -> Result<Self, ConfError> {
        let mut conf = SparkConf::default();
        for (k, v) in table {
            validate_key(field, k)?;
            conf.0.insert(k.clone(), v.to_string());
        }
        Ok(conf)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Sets `key` (replacing any value).
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.insert(key.into(), value.into());
    }

    /// Sets `key` unless it is set.
    pub fn set_default(&mut self, key: &str, value: impl Into<String>) {
        self.0
            .entry(key.to_string())
            .or_insert_with(|| value.into());
    }

    /// Whether `key` is set.
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Keys and values in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The user's conf (`self`, from spec field `field`) with tether's own `keys` on top; a user
    /// key among tether's is [`ConfError::Reserved`].
    pub fn merge<K, V>(
        mut self,
        field: &str,
        keys: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        for (k, v) in keys {
            let k = k.into();
            if self.0.contains_key(&k) {
                return Err(ConfError::Reserved {
                    field: field.into(),
                    key: k,
                });
            }
            self.0.insert(k, v.into());
        }
        Ok(self)
    }

    /// The conf as a plain map (what a backend sends).
    pub fn into_map(self) -> BTreeMap<String, String> {
        self.0
    }

    /// Every pair with secret values replaced by `***`: what may be displayed or stored.
    pub fn redacted(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(k, v)| (k.to_string(), redact(k, v).to_string()))
            .collect()
    }
}

impl From<BTreeMap<String, String>> for SparkConf {
    fn from(map: BTreeMap<String, String>) -> Self {
        SparkConf(map)
    }
}

/// Checks a conf key (see the module's guarantees).
pub fn validate_key(field: &str, key: &str) -> Result<(), ConfError> {
    let why = if key.is_empty() {
        Some("is empty")
    } else if key.contains('=') {
        Some("contains '='")
    } else if !key.bytes().all(|b| b.is_ascii_graphic()) {
        Some("contains spaces, control or non-ASCII characters")
    } else {
        None
    };
    match why {
        Some(why) => Err(ConfError::BadKey {
            field: field.into(),
            key: key.into(),
            why,
        }),
        None => Ok(()),
    }
}

/// Key fragments whose values are secrets (case-insensitive), after Spark's default
/// `spark.redaction.regex` (`(?i)secret|password|token|access[.]?key`) plus credentials.
const SECRET_FRAGMENTS: &[&str] = &[
    "secret",
    "password",
    "token",
    "accesskey",
    "access.key",
    "credential",
];

/// Whether the value of `key` is a secret (`spark.authenticate.secret`,
/// `spark.ssl.keyStorePassword`, `spark.hadoop.fs.s3a.access.key`, `*token*`, ...).
pub fn is_secret_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    SECRET_FRAGMENTS.iter().any(|f| lower.contains(f))
}

/// `value`, or `***` when `key` holds a secret.
pub fn redact<'a>(key: &str, value: &'a str) -> &'a str {
    if is_secret_key(key) {
        "***"
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, ConfValue)]) -> BTreeMap<String, ConfValue> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn spec_values_become_text_in_key_order() {
        let t = table(&[
            ("spark.executor.memory", ConfValue::Text("4g".into())),
            ("spark.executor.cores", ConfValue::Int(4)),
            ("spark.task.cpus", ConfValue::Float(1.5)),
            ("spark.dynamicAllocation.enabled", ConfValue::Bool(true)),
        ]);
        let conf = SparkConf::from_spec("job.conf", &t).unwrap();
        let pairs: Vec<_> = conf.iter().collect();
        assert_eq!(
            pairs,
            [
                ("spark.dynamicAllocation.enabled", "true"),
                ("spark.executor.cores", "4"),
                ("spark.executor.memory", "4g"),
                ("spark.task.cpus", "1.5"),
            ]
        );
    }

    #[test]
    fn bad_keys_name_the_field_and_key() {
        for (key, why) in [
            ("", "is empty"),
            ("spark.a=b", "'='"),
            ("spark a", "spaces"),
            ("spark.\u{e9}", "non-ASCII"),
        ] {
            let e =
                SparkConf::from_spec("job.conf", &table(&[(key, ConfValue::Int(1))])).unwrap_err();
            let text = e.to_string();
            assert_eq!(e.field(), "job.conf");
            assert!(text.starts_with("key") && text.contains(why), "{text}");
        }
    }

    #[test]
    fn tether_keys_win_and_a_user_setting_one_is_an_error() {
        let user = SparkConf::from_spec(
            "job.conf",
            &table(&[("spark.executor.memory", ConfValue::Text("1g".into()))]),
        )
        .unwrap();
        let merged = user
            .clone()
            .merge("job.conf", [("spark.tether.tag", "tether-x-g1")])
            .unwrap();
        assert_eq!(merged.get("spark.tether.tag"), Some("tether-x-g1"));
        assert_eq!(merged.get("spark.executor.memory"), Some("1g"));
        let mut clash = user;
        clash.set("spark.tether.tag", "mine");
        let e = clash
            .merge("job.conf", [("spark.tether.tag", "tether-x-g1")])
            .unwrap_err();
        assert_eq!(
            e,
            ConfError::Reserved {
                field: "job.conf".into(),
                key: "spark.tether.tag".into()
            }
        );
        assert!(
            e.to_string().contains("spark.tether.tag is set by tether"),
            "{e}"
        );
    }

    #[test]
    fn secret_values_are_redacted() {
        let mut conf = SparkConf::default();
        conf.set("spark.authenticate.secret", "s3cr3t");
        conf.set("spark.ssl.keyStorePassword", "pw");
        conf.set("spark.hadoop.fs.s3a.access.key", "AKIA");
        conf.set("spark.kubernetes.authenticate.oauthToken", "tok");
        conf.set("spark.executor.memory", "4g");
        let shown = format!("{:?}", conf.redacted());
        for secret in ["s3cr3t", "\"pw\"", "AKIA", "tok\""] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("\"4g\""), "{shown}");
        assert_eq!(redact("spark.executor.memory", "4g"), "4g");
        assert_eq!(
            redact("spark.yarn.access.hadoopFileSystems.token", "x"),
            "***"
        );
    }
}

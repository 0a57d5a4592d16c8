//! The environment local jobs and their supervisors get: tether's own, scrubbed of tether's
//! settings and of anything that looks like a credential, plus the spec's `env`.
//!
//! The rule ([`is_scrubbed`]), on the variable's name, upper-cased:
//! - it starts with `TETHER_` (tether's settings: state store URL, config, test hooks);
//! - it starts with `PG` (libpq: `PGPASSWORD`, `PGHOST`, `PGSERVICEFILE`, ...);
//! - it is `DATABASE_URL`;
//! - it contains `TOKEN`, `SECRET`, `PASSWORD`, `PASSWD`, `CREDENTIAL` or `KEY`
//!   (`GITHUB_TOKEN`, `AWS_SECRET_ACCESS_KEY`, `API_KEY`, ...).
//!
//! ## Guarantees
//! - Neither the supervisor nor the job sees a scrubbed variable of the submitting tether
//!   process; the supervisor applies the rule again when it starts the job, so a supervisor
//!   started by hand cannot leak its own either.
//! - The spec's `env` always wins: a variable it sets reaches the job, whatever its name (that
//!   is how a job is given a credential on purpose).
//!
//! ## Caveats
//! - The rule is by name: a secret in a variable with an innocent name (`MY_CONN=...pw...`)
//!   still reaches the job. Keep secrets out of the environment of workers that run `local`.
//! - A harmless variable whose name matches (`KEYBOARD_LAYOUT`) is dropped too; set it in the
//!   spec's `env` if the job needs it.
use std::{
    collections::BTreeMap,
    ffi::{OsStr, OsString},
};

/// Substrings (upper case) that mark a variable as a credential.
const SECRET_WORDS: [&str; 6] = ["TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "KEY"];

/// Is the variable `name` kept from local jobs and supervisors (see the module docs)?
pub fn is_scrubbed(name: &OsStr) -> bool {
    let upper = name.to_string_lossy().to_ascii_uppercase();
    upper.starts_with("TETHER_")
        || upper.starts_with("PG")
        || upper == "DATABASE_URL"
        || SECRET_WORDS.iter().any(|w| upper.contains(w))
}

/// This process's environment without the scrubbed variables.
pub fn scrubbed() -> BTreeMap<OsString, OsString> {
    std::env::vars_os()
        .filter(|(k, _)| !is_scrubbed(k))
        .collect()
}

/// What a job gets: [`scrubbed`] plus `spec_env` (which wins).
pub fn for_job(spec_env: &BTreeMap<String, String>) -> BTreeMap<OsString, OsString> {
    let mut env = scrubbed();
    env.extend(
        spec_env
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v))),
    );
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_names_what_it_drops() {
        for name in [
            "TETHER_STATE",
            "PGPASSWORD",
            "pgpassfile",
            "DATABASE_URL",
            "GITHUB_TOKEN",
            "aws_secret_access_key",
            "API_KEY",
            "DB_PASSWD",
            "GOOGLE_APPLICATION_CREDENTIALS",
        ] {
            assert!(is_scrubbed(OsStr::new(name)), "{name} should be dropped");
        }
        for name in ["PATH", "HOME", "LANG", "USER", "DATABASE", "SPARK_HOME"] {
            assert!(!is_scrubbed(OsStr::new(name)), "{name} should be kept");
        }
    }

    #[test]
    fn the_spec_env_wins() {
        let spec = BTreeMap::from([("MY_TOKEN".to_string(), "given".to_string())]);
        assert_eq!(
            for_job(&spec).get(OsStr::new("MY_TOKEN")),
            Some(&OsString::from("given"))
        );
    }
}

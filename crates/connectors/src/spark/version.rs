//! The Spark version of a distribution, from the banner of its `spark-submit --version`, for
//! choices that depend on it (the recovery shape on Kubernetes: Spark ≥ 4.2 has a native flag).
//!
//! ## Guarantees
//! - One `spark-submit --version` per distribution (per `spark_home`) per process: a found
//!   version is cached; a failure is not (the next call tries again).
//! - The child gets tether's allowed environment only (no tokens), no stdin, a time limit, and
//!   is killed with tether.
//!
//! ## Caveats
//! - The version is the submitting distribution's; the image's Spark (what runs the driver) is
//!   assumed to be the same. A spec's `spark_version` overrides both.
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Mutex, OnceLock},
    time::Duration,
};

use tokio::process::Command;

fn cache() -> &'static Mutex<HashMap<PathBuf, String>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The version already read for `spark_home`, if any.
pub fn cached(spark_home: &Path) -> Option<String> {
    cache().lock().ok()?.get(spark_home).cloned()
}

/// The version in a `spark-submit --version` banner (`   /___/ .__/\_,_/_/ /_/\_\   version
/// 4.3.0`): the first `version X.Y…` before the `Using Scala version` line.
pub fn parse_banner(text: &str) -> Option<String> {
    text.lines()
        .take_while(|l| !l.trim_start().starts_with("Using Scala"))
        .find_map(|l| {
            let (_, after) = l.rsplit_once("version ")?;
            let v = after.split_whitespace().next()?;
            let digits = v.split(['.', '-']).take(2).collect::<Vec<_>>();
            (digits.len() == 2 && digits.iter().all(|d| d.parse::<u32>().is_ok()))
                .then(|| v.to_string())
        })
}

/// The version of the distribution at `spark_home` (cached), or why it could not be read.
pub async fn spark_version(spark_home: &Path, timeout: Duration) -> Result<String, String> {
    if let Some(v) = cached(spark_home) {
        return Ok(v);
    }
    let program = spark_home.join("bin").join("spark-submit");
    let mut cmd = Command::new(&program);
    cmd.arg("--version")
        .env_clear()
        .envs(super::submit::allowed_env(&[]))
        .env("SPARK_HOME", spark_home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    super::submit::die_with_parent(&mut cmd);
    let out = match tokio::time::timeout(timeout, cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(format!("cannot run {} --version: {e}", program.display())),
        Err(_) => {
            return Err(format!(
                "{} --version did not answer within {timeout:?}",
                program.display()
            ))
        }
    };
    // Spark prints its banner on stderr (stdout in some versions): read both.
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let version = parse_banner(&text).ok_or_else(|| {
        format!(
            "{} --version printed no version banner (exit {:?}): set spark_version in the spec",
            program.display(),
            out.status.code()
        )
    })?;
    if let Ok(mut c) = cache().lock() {
        c.insert(spark_home.to_path_buf(), version.clone());
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_gives_the_version_not_scala_s() {
        let banner = "26/12/02 WARN Utils: x\nWelcome to\n      ____              __\n     / __/__  ___ _____/ /__\n    _\\ \\/ _ \\/ _ `/ __/  '_/\n   /___/ .__/\\_,_/_/ /_/\\_\\   version 4.3.0\n      /_/\n\nUsing Scala version 2.13.18, OpenJDK\n";
        assert_eq!(parse_banner(banner).as_deref(), Some("4.3.0"));
        assert_eq!(
            parse_banner("Using Scala version 2.13.18\n version 4.1.0\n"),
            None
        );
        assert_eq!(
            parse_banner("   version 3.5.1-SNAPSHOT\n").as_deref(),
            Some("3.5.1-SNAPSHOT")
        );
    }
}

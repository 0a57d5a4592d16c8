//! Secret conf handed to spark-submit through an in-memory properties file instead of
//! `--conf k=v` arguments, which any user of the host can read in the process list.
//!
//! ## Guarantees
//! - On Linux, the values of secret keys ([`crate::spark::conf::is_secret_key`]) never appear in
//!   spark-submit's arguments: they are written to an anonymous memory file (`memfd_create`,
//!   close-on-exec) passed as `--properties-file /dev/fd/N`. Only that one child gets the
//!   descriptor (its close-on-exec flag is cleared after the fork, in the child); other processes
//!   tether starts at the same time (local jobs) never inherit it. Nothing is written to disk, and
//!   the memory is freed when the last holder exits, whatever way tether dies.
//! - `--properties-file` makes spark-submit skip `spark-defaults.conf` (before Spark 4.0 always,
//!   since then unless `--load-spark-defaults`), so the file starts with that file's contents
//!   (from `SPARK_CONF_DIR`, else `$SPARK_HOME/conf`): the conf Spark ends up with is the same
//!   as with `--conf` arguments, on every Spark version.
//!
//! ## Caveats
//! - Spark trims the values it reads from a properties file: a secret with leading or trailing
//!   whitespace loses it (with `--conf` it would not).
//! - Elsewhere than Linux the secrets stay `--conf` arguments (the runner's caveat).
use std::path::{Path, PathBuf};

/// Java properties text: `spark-defaults.conf`'s contents, then the secret pairs escaped.
pub fn text(defaults: &str, secrets: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(defaults.len() + 64 * secrets.len());
    out.push_str(defaults);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for (k, v) in secrets {
        out.push_str(&escape(k, true));
        out.push('=');
        out.push_str(&escape(v, false));
        out.push('\n');
    }
    out
}

/// Escapes `s` for `java.util.Properties::load` (keys also escape spaces; a value's leading
/// space only, as the format requires).
fn escape(s: &str, key: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0c' => out.push_str("\\f"),
            '=' | ':' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            ' ' if key || i == 0 => out.push_str("\\ "),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Where spark-submit reads `spark-defaults.conf`: `SPARK_CONF_DIR` (the run's own setting
/// first, then ours), else `$SPARK_HOME/conf`.
pub fn defaults_path(home: &Path, env: &[(String, String)]) -> PathBuf {
    let dir = env
        .iter()
        .rev()
        .find(|(k, _)| k == "SPARK_CONF_DIR")
        .map(|(_, v)| PathBuf::from(v))
        .or_else(|| std::env::var_os("SPARK_CONF_DIR").map(PathBuf::from))
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| home.join("conf"));
    dir.join("spark-defaults.conf")
}

/// Reads `spark-defaults.conf` (absent: empty).
pub fn read_defaults(path: &Path) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e),
    }
}

/// An anonymous memory file holding `text`, close-on-exec; [`inherit`] hands it to one child.
#[cfg(target_os = "linux")]
pub fn memory_file(text: &str) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::{io::Write, os::fd::FromRawFd};
    // SAFETY: memfd_create reads the NUL-terminated name and returns a new descriptor we own.
    #[allow(unsafe_code)]
    let fd = unsafe { libc::memfd_create(c"tether-spark-conf".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    #[allow(unsafe_code)]
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(owned);
    file.write_all(text.as_bytes())?;
    Ok(file.into())
}

/// Lets the child `cmd` starts (and only it) inherit `fd`, at the same number.
#[cfg(target_os = "linux")]
pub fn inherit(cmd: &mut tokio::process::Command, fd: std::os::fd::RawFd) {
    // SAFETY: runs in the forked child before exec; fcntl is async-signal-safe and touches no
    // memory of the parent. The parent's descriptor keeps its close-on-exec flag.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_follow_the_defaults_escaped_for_java_properties() {
        let t = text(
            "spark.eventLog.enabled true",
            &[("spark.a.password", "p=w:d #1!\\x\n"), ("spark.k", " lead")],
        );
        assert_eq!(
            t,
            "spark.eventLog.enabled true\nspark.a.password=p\\=w\\:d \\#1\\!\\\\x\\n\nspark.k=\\ lead\n"
        );
        assert_eq!(text("", &[("k", "\u{1}")]), "k=\\u0001\n");
    }

    #[test]
    fn the_run_s_conf_dir_wins_then_ours_then_the_distribution_s() {
        let home = Path::new("/opt/spark");
        let env = vec![("SPARK_CONF_DIR".to_string(), "/etc/spark".to_string())];
        assert_eq!(
            defaults_path(home, &env),
            Path::new("/etc/spark/spark-defaults.conf")
        );
        if std::env::var_os("SPARK_CONF_DIR").is_none() {
            assert_eq!(
                defaults_path(home, &[]),
                Path::new("/opt/spark/conf/spark-defaults.conf")
            );
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_memory_file_holds_the_text_and_is_close_on_exec() {
        use std::os::fd::AsRawFd;
        let fd = memory_file("k=v\n").unwrap();
        let path = format!("/dev/fd/{}", fd.as_raw_fd());
        // Each open starts at offset 0: the launcher and spark-submit's JVM both read it whole.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "k=v\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "k=v\n");
        // SAFETY: F_GETFD reads the flags of a descriptor we own.
        #[allow(unsafe_code)]
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
    }
}

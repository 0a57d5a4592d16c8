//! The job's own output while `tether run` waits (`--logs`), and the tail of its stderr when
//! it failed.
//!
//! ## Guarantees
//! - `--logs` copies the job's stdout to stdout and its stderr to stderr as the backend serves
//!   them (local files, Spark driver logs, any connector with the `Logs` capability), following
//!   newer generations; the status line stays below them on a terminal.
//! - A backend without logs is said once, and the run goes on.
//! - The failure tail holds at most [`TAIL_BYTES`] in memory however large the log.
use std::collections::VecDeque;

use tether_core::ids::RunKey;
use tether_fleet::{
    logs::{LogsError, LogsOptions},
    Ctx,
};

use crate::progress::Progress;

/// Bytes of stderr kept to find its last lines.
pub const TAIL_BYTES: usize = 64 << 10;

/// Follows both streams of run `key`'s jobs until the run is finished.
pub async fn follow(ctx: &Ctx, key: &RunKey, progress: &Progress) {
    let stream = |stderr: bool| async move {
        let mut options = LogsOptions::new();
        options.follow = true;
        options.stderr = stderr;
        let mut out = |data: &[u8]| progress.job_output(stderr, data);
        match tether_fleet::logs::logs(ctx, key, &options, &mut out).await {
            Ok(()) => {}
            // Said once (for stdout), not once per stream.
            Err(e @ LogsError::NoLogs(_)) if !stderr => {
                progress.line(&format!("tether: --logs: {e}; the run goes on"))
            }
            Err(LogsError::NoLogs(_)) => {}
            Err(e) => progress.line(&format!(
                "tether: --logs: cannot follow the job's {}: {e}",
                if stderr { "stderr" } else { "stdout" }
            )),
        }
    };
    tokio::join!(stream(false), stream(true));
}

/// The last `n` lines of the latest job's stderr, or None if the backend has none to give.
pub async fn stderr_tail(ctx: &Ctx, key: &RunKey, n: usize) -> Option<Vec<String>> {
    let mut options = LogsOptions::new();
    options.stderr = true;
    let mut kept: VecDeque<u8> = VecDeque::new();
    let mut out = |data: &[u8]| {
        kept.extend(data);
        let excess = kept.len().saturating_sub(TAIL_BYTES);
        kept.drain(..excess);
        true
    };
    tether_fleet::logs::logs(ctx, key, &options, &mut out)
        .await
        .ok()?;
    let bytes: Vec<u8> = kept.into();
    Some(last_lines(&bytes, n))
}

/// The last `n` lines of `bytes` (a trailing newline does not make an empty last line).
pub fn last_lines(bytes: &[u8], n: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.trim_end_matches('\n').split('\n').collect();
    if lines == [""] {
        return Vec::new();
    }
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::last_lines;

    #[test]
    fn last_lines_of_a_log() {
        assert_eq!(last_lines(b"a\nb\nc\n", 2), ["b", "c"]);
        assert_eq!(last_lines(b"a\nb", 5), ["a", "b"]);
        assert!(last_lines(b"", 5).is_empty());
    }
}

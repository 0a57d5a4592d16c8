//! `tether logs` for Livy batches: `GET /batches/{id}/log?from=&size=`, paged by line.
//!
//! ## Guarantees
//! - The cursor is `l<line index>` ([`LogCursor::from_token`]); a cursor of another connector
//!   is [`LogError::ForeignCursor`].
//! - No line is shown twice or skipped while the batch runs. Livy builds the log as
//!   `["stdout: ", <output lines>, "\nstderr: ", <error lines>, "\nYARN Diagnostics: ", ...]`,
//!   so the trailer after the output moves down as the output grows: a running batch's log is
//!   read up to that trailer only, and the trailer is read once the batch has ended.
//!
//! ## Caveats
//! - A single line longer than the reader's `max` is cut to `max` bytes (the rest is skipped).
use async_trait::async_trait;
use tether_core::connector::{JobRef, LogChunk, LogCursor, LogError, LogStream, Logs};

use super::Livy;
use crate::http::{HttpError, Outcome};
use crate::text;

/// Livy's first log line (a marker, not output).
const STDOUT_MARKER: &str = "stdout:";
/// Where the moving trailer starts.
const STDERR_MARKER: &str = "stderr:";
/// Most lines asked for in one page.
const MAX_LINES: u64 = 5000;

fn line_of(cursor: &LogCursor) -> Result<u64, LogError> {
    if cursor.is_start() {
        return Ok(0);
    }
    cursor
        .token()
        .strip_prefix('l')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| LogError::ForeignCursor {
            cursor: cursor.token().to_string(),
            expected: "a line number (l<line>)",
        })
}

impl Livy {
    fn log_error(&self, e: HttpError) -> LogError {
        let s = self.secrets();
        let s: Vec<&str> = s.iter().map(String::as_str).collect();
        let reason = text::clean(&e.to_string(), &s);
        match e.outcome() {
            Outcome::Definite => LogError::NotFound { reason },
            _ => LogError::Unavailable { reason },
        }
    }
}

#[async_trait]
impl Logs for Livy {
    async fn read_logs(
        &self,
        job: &JobRef,
        // Livy merges the driver's stdout and stderr into one log: both streams read it.
        _stream: LogStream,
        cursor: &LogCursor,
        max: usize,
    ) -> Result<LogChunk, LogError> {
        let from = line_of(cursor)?;
        let id = job.external_id.0.as_str();
        if let Some(app) = super::yarn::adopted(id) {
            return Err(LogError::NotFound {
                reason: format!(
                    "this run follows YARN application {app} (Livy forgot its batch), which has no \
                     Livy log: read it with `yarn logs -applicationId {app}`"
                ),
            });
        }
        let size = (max as u64 / 40).clamp(1, MAX_LINES);
        let not_found = || LogError::NotFound {
            reason: format!("Livy does not track batch {id}"),
        };
        let page = self
            .api
            .log(id, Some(from), size)
            .await
            .map_err(|e| self.log_error(e))?
            .ok_or_else(not_found)?;
        let mut data = Vec::new();
        let mut line = page.from.max(from);
        let mut ended: Option<bool> = None;
        for l in &page.log {
            let trimmed = l.trim();
            if line == 0 && trimmed == STDOUT_MARKER {
                line += 1;
                continue;
            }
            if trimmed == STDERR_MARKER && ended.is_none() {
                let state = self
                    .api
                    .state(id)
                    .await
                    .map_err(|e| self.log_error(e))?
                    .ok_or_else(not_found)?;
                ended = Some(matches!(
                    state.as_str(),
                    "success" | "dead" | "killed" | "error"
                ));
            }
            if ended == Some(false) {
                break;
            }
            let bytes = l.trim_start_matches('\n').as_bytes();
            if !data.is_empty() && data.len() + bytes.len() + 1 > max {
                break;
            }
            let take = bytes.len().min(max.saturating_sub(1).max(1));
            data.extend_from_slice(&bytes[..take]);
            data.push(b'\n');
            line += 1;
        }
        let s = self.secrets();
        let s: Vec<&str> = s.iter().map(String::as_str).collect();
        Ok(LogChunk {
            data: text::scrub_bytes(&data, &s),
            next: LogCursor::from_token(format!("l{line}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_lines_and_foreign_ones_are_refused() {
        assert_eq!(line_of(&LogCursor::start()).unwrap(), 0);
        assert_eq!(line_of(&LogCursor::from_token("l42")).unwrap(), 42);
        assert!(matches!(
            line_of(&LogCursor::at_byte(3)),
            Err(LogError::ForeignCursor { .. })
        ));
    }
}

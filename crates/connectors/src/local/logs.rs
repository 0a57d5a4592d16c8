//! `Logs` of the local connector: the job's `stdout.log`/`stderr.log`, read by byte offset (the
//! cursor is [`LogCursor::at_byte`]), never through a link and only from a directory no other
//! user can write.
use std::{
    fs::OpenOptions,
    io::{self, Read, Seek, SeekFrom},
    os::unix::fs::OpenOptionsExt,
};

use async_trait::async_trait;
use tether_core::connector::{JobRef, LogChunk, LogCursor, LogError, LogStream, Logs};

use super::{identity::read_json, layout::SupervisorRecord, LocalConnector};

#[async_trait]
impl Logs for LocalConnector {
    async fn read_logs(
        &self,
        job: &JobRef,
        stream: LogStream,
        cursor: &LogCursor,
        max: usize,
    ) -> Result<LogChunk, LogError> {
        let offset = cursor.byte_offset()?;
        let tag = &job.submission.tag;
        let not_found = |reason: String| LogError::NotFound { reason };
        let dir = self
            .dir(tag)
            .ok_or_else(|| not_found(format!("{tag:?} cannot be the tag of a local job")))?;
        self.trusted(&dir).map_err(|e| LogError::Unavailable {
            reason: e.to_string(),
        })?;
        match read_json::<SupervisorRecord>(&dir.supervisor()) {
            Ok(Some(r)) if r.supervisor.external_id() == job.external_id.0 => {}
            Ok(Some(r)) => {
                return Err(not_found(format!(
                    "tag {tag} belongs to local job {}, not {}",
                    r.supervisor.external_id(),
                    job.external_id
                )))
            }
            Ok(None) => return Err(not_found(format!("no local job with tag {tag}"))),
            Err(e) => {
                return Err(LogError::Unavailable {
                    reason: e.to_string(),
                })
            }
        }
        let path = match stream {
            LogStream::Stdout => dir.stdout(),
            LogStream::Stderr => dir.stderr(),
        };
        let mut file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(f) => f,
            // Not started yet (waiting for the slot): nothing written so far.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(LogChunk {
                    data: Vec::new(),
                    next: cursor.clone(),
                })
            }
            Err(e) => {
                return Err(LogError::Unavailable {
                    reason: format!("{}: {e}", path.display()),
                })
            }
        };
        let unavailable = |e: io::Error| LogError::Unavailable {
            reason: format!("{}: {e}", path.display()),
        };
        file.seek(SeekFrom::Start(offset)).map_err(unavailable)?;
        let mut data = Vec::new();
        file.take(u64::try_from(max).unwrap_or(u64::MAX))
            .read_to_end(&mut data)
            .map_err(unavailable)?;
        let next = LogCursor::at_byte(offset + data.len() as u64);
        Ok(LogChunk { data, next })
    }
}

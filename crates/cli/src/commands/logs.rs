//! `tether logs`: the library's log reader (`tether_fleet::logs`) into stdout, as it comes or
//! (`--json`) as JSON lines, one object per line of the job's output.
use serde::Serialize;
use tether_core::{connector::LogError, ids::RunKey};
use tether_fleet::{
    logs::{LogsError, LogsOptions},
    view::{iso_time, SCHEMA_VERSION},
    Ctx,
};

use super::{parse_key, CliError, Exit};
use crate::args::LogsArgs;

/// One line of a job's log (`log_line` in the JSON schema).
#[derive(Serialize)]
struct LogLine<'a> {
    schema_version: u32,
    key: &'a RunKey,
    stream: &'static str,
    generation: Option<u32>,
    line: &'a str,
    read_at: String,
}

/// Cuts the byte stream into lines and prints each as a [`LogLine`]; a last line without its
/// newline is printed by [`JsonLines::finish`].
struct JsonLines<'a> {
    key: &'a RunKey,
    stream: &'static str,
    generation: Option<u32>,
    pending: Vec<u8>,
}

impl JsonLines<'_> {
    fn emit(&self, raw: &[u8]) -> bool {
        let text = String::from_utf8_lossy(raw);
        let line = LogLine {
            schema_version: SCHEMA_VERSION,
            key: self.key,
            stream: self.stream,
            generation: self.generation,
            line: text.strip_suffix('\r').unwrap_or(&text),
            read_at: iso_time(now_ms()),
        };
        crate::io::out_bytes(format!("{}\n", crate::output::json_line(&line)).as_bytes())
    }

    fn push(&mut self, data: &[u8]) -> bool {
        self.pending.extend_from_slice(data);
        let mut start = 0;
        let mut open = true;
        while let Some(nl) = self.pending[start..].iter().position(|b| *b == b'\n') {
            open &= self.emit(&self.pending[start..start + nl]);
            start += nl + 1;
        }
        self.pending.drain(..start);
        open
    }

    fn finish(&mut self) {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.emit(&rest);
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub async fn logs(ctx: &Ctx, args: LogsArgs) -> Result<Exit, CliError> {
    let key = parse_key(&args.key)?;
    let mut options = LogsOptions::new();
    options.stderr = args.stderr;
    options.follow = args.follow;
    options.generation = args.generation;
    let result = if args.json {
        let mut lines = JsonLines {
            key: &key,
            stream: if args.stderr { "stderr" } else { "stdout" },
            generation: args.generation,
            pending: Vec::new(),
        };
        let r = tether_fleet::logs::logs(ctx, &key, &options, &mut |d: &[u8]| lines.push(d)).await;
        lines.finish();
        r
    } else {
        let mut print = |data: &[u8]| crate::io::out_bytes(data);
        tether_fleet::logs::logs(ctx, &key, &options, &mut print).await
    };
    match result {
        Ok(()) => Ok(Exit::Succeeded),
        Err(LogsError::Open(e)) => Err(e.into()),
        Err(LogsError::Store(e)) => Err(CliError::store(e)),
        Err(
            e @ (LogsError::NoRun(_) | LogsError::NoGeneration { .. } | LogsError::NotSubmitted(_)),
        ) => Err(CliError::not_found(e.to_string())),
        // The backend keeps no log for that job (gone, expired): not found, like a missing run.
        Err(e @ LogsError::Read(LogError::NotFound { .. })) => {
            Err(CliError::not_found(e.to_string()))
        }
        Err(e @ LogsError::Read(_)) => Err(CliError {
            code: Exit::LogsUnreadable,
            message: e.to_string(),
        }),
        Err(e) => Err(CliError::usage(e.to_string())),
    }
}

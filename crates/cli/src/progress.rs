//! Progress on stderr: a live status line on a terminal, plain log lines otherwise.
use std::{
    io::{IsTerminal, Write},
    sync::Mutex,
    time::Instant,
};

use tether_core::{
    engine::{Checkpoint, Event, Observer},
    ids::RunKey,
};

pub struct Progress {
    tty: bool,
    started: Instant,
    last: Mutex<String>,
}

impl Progress {
    pub fn new() -> Self {
        Progress {
            tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
            last: Mutex::new(String::new()),
        }
    }

    /// Ends the live line so that later output starts on a fresh line.
    pub fn finish(&self) {
        if self.tty {
            diag!("");
        }
    }

    fn show(&self, dedupe: &str, line: String) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = self.started.elapsed().as_secs_f32();
        let mut err = std::io::stderr().lock();
        if self.tty {
            // Redraw one line; keep it short enough for a terminal.
            let mut s = format!("[{elapsed:6.1}s] {line}");
            if s.len() > 160 {
                let mut cut = 157;
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                s.truncate(cut);
                s.push_str("...");
            }
            let _ = write!(err, "\r\x1b[2K{s}");
            let _ = err.flush();
        } else if *last != dedupe {
            let _ = writeln!(err, "tether: [{elapsed:.1}s] {line}");
        }
        *last = dedupe.to_string();
    }
}

impl Observer for Progress {
    fn event(&self, key: &RunKey, event: &Event) {
        match event {
            Event::Acquired { epoch } => self.show(
                &format!("acq{epoch}"),
                format!("{key}: lease taken (epoch {epoch})"),
            ),
            Event::Following { record } => {
                let owner = record
                    .owner
                    .as_ref()
                    .map(|o| o.to_string())
                    .unwrap_or_else(|| "nobody".into());
                let (generation, id) = record.current();
                let state = format!(
                    "{key}: driven by {owner} (epoch {}); {} gen {} id {}; following, not submitting",
                    record.epoch,
                    record.journal.phase.label(),
                    generation.map(|g| g.to_string()).unwrap_or_else(|| "-".into()),
                    id.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
                );
                self.show(&state, state.clone());
            }
            Event::Decided {
                generation,
                external_id,
                decision,
                reason,
            } => {
                // "Observe" only precedes the answer's own decision: not worth a line.
                if matches!(**decision, tether_core::Decision::Observe) {
                    return;
                }
                let g = generation
                    .map(|g| g.to_string())
                    .unwrap_or_else(|| "-".into());
                let id = external_id
                    .as_ref()
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "-".into());
                let line = format!("{key} gen {g} id {id}: {}: {reason}", decision.name());
                self.show(&format!("{}{g}{id}", decision.name()), line);
            }
        }
    }

    fn checkpoint(&self, key: &RunKey, point: Checkpoint) {
        crate::fault::maybe_crash(key, point);
    }
}

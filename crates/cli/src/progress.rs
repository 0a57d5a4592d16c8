//! What a person sees on stderr while `tether run` waits.
//!
//! ## Guarantees
//! - On a terminal: one status line (`⠋ KEY · running · gen 1 · local 4242 · 00:03:12`),
//!   redrawn in place by `indicatif` and cut to the terminal's width so it never wraps; the
//!   elapsed time ticks every second whatever the poll interval. Other lines (the job's output
//!   with `--logs`, `-v` details) are printed above it, never through it.
//! - Elsewhere (cron, Airflow, CI): one line per change of state plus a heartbeat line every
//!   `--heartbeat`, each starting with an ISO 8601 UTC timestamp.
//! - Decisions and their reasons are in `tether history`; `-v` prints them here too.
//!
//! ## Caveats
//! - The width is read when the message changes: a terminal narrowed in between may wrap the
//!   line until the next change.
use std::{
    io::{IsTerminal, Write},
    sync::Mutex,
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tether_core::{
    engine::{Checkpoint, Event, Observer},
    ids::RunKey,
    observe::ActiveState,
    Decision,
};

/// How to show progress.
pub struct ProgressOptions {
    /// The backend kind shown before the job id (`local`, `spark-standalone`).
    pub kind: String,
    /// Print every decision with its reason (`-v`).
    pub verbose: bool,
    /// Lease time to live (to say when a follower takes over).
    pub lease_ttl: Duration,
}

#[derive(Default)]
struct State {
    /// The run (set by the first event when not known at the start).
    key: String,
    /// "starting", "queued", "running", "following OWNER", …
    phase: String,
    generation: Option<String>,
    id: Option<String>,
    /// We held the lease at some point (so "lease released" is true on interrupt).
    acquired: bool,
    /// The live owner we follow, and since when.
    following: Option<(String, Instant)>,
    /// The last line printed in plain mode (a line is printed only when it changes).
    last: String,
}

pub struct Progress {
    opts: ProgressOptions,
    started: Instant,
    /// Present on a terminal.
    bar: Option<ProgressBar>,
    state: Mutex<State>,
}

/// Now as ISO 8601 UTC, to the second.
pub fn now_iso() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// `6.1s`, `3m 12s`, `1h 03m`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{}h {:02}m", s / 3600, (s / 60) % 60)
    }
}

/// `3.2 MiB`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

impl Progress {
    /// Progress of some run, learnt from the engine's events (`tether cancel`).
    pub fn new() -> Self {
        let opts = ProgressOptions {
            kind: "job".into(),
            verbose: false,
            lease_ttl: Duration::from_secs(30),
        };
        Self::with_terminal(None, opts, std::io::stderr().is_terminal())
    }

    /// Progress of run `key`.
    pub fn for_run(key: &RunKey, opts: ProgressOptions) -> Self {
        Self::with_terminal(Some(key), opts, std::io::stderr().is_terminal())
    }

    fn with_terminal(key: Option<&RunKey>, opts: ProgressOptions, tty: bool) -> Self {
        let bar = tty.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{spinner} {msg} · {elapsed_precise}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            // Ticks redraw the spinner and the elapsed time, independent of the poll interval.
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        let p = Progress {
            opts,
            started: Instant::now(),
            bar,
            state: Mutex::new(State {
                key: key.map(|k| k.to_string()).unwrap_or_default(),
                phase: "starting".into(),
                ..State::default()
            }),
        };
        if key.is_some() {
            p.changed(&mut p.lock());
        }
        p
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_terminal(&self) -> bool {
        self.bar.is_some()
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The owner this process followed, if it never drove the run itself.
    pub fn followed(&self) -> Option<String> {
        let s = self.lock();
        (!s.acquired).then(|| s.following.as_ref().map(|(o, _)| o.clone()))?
    }

    /// A line for a person on stderr: above the status line on a terminal, with a timestamp
    /// elsewhere.
    pub fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| diag!("{text}")),
            None => diag!("{} {text}", now_iso()),
        }
    }

    /// The job's own output (`--logs`), written raw to stdout or stderr.
    pub fn job_output(&self, stderr: bool, data: &[u8]) -> bool {
        let write = || {
            if stderr {
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(data).and_then(|()| err.flush());
                true
            } else {
                crate::io::out_bytes(data)
            }
        };
        match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    /// A heartbeat line (plain mode only): the job is not silent for an hour.
    pub fn heartbeat(&self) {
        if self.bar.is_none() {
            let s = self.lock();
            diag!(
                "{} tether: {}: still {} · elapsed {}",
                now_iso(),
                s.key,
                self.describe(&s),
                human_duration(self.elapsed())
            );
        }
    }

    /// Removes the status line (a terminal) so that the summary takes its place.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// `running · gen 1 · local 4242`
    fn describe(&self, s: &State) -> String {
        self.describe_with(s, s.phase.clone())
    }

    fn describe_with(&self, s: &State, mut text: String) -> String {
        if let Some(g) = &s.generation {
            text.push_str(&format!(" · gen {g}"));
        }
        if let Some(id) = &s.id {
            text.push_str(&format!(" · {} {id}", self.opts.kind));
        }
        text
    }

    fn changed(&self, s: &mut State) {
        match &self.bar {
            Some(bar) => {
                // Spinner, separator and `00:00:00` take 14 columns; the rest is the message.
                let width = console::Term::stderr().size().1 as usize;
                let room = width.saturating_sub(15).max(10);
                // The state matters more than the end of a long key: cut the key first.
                // The state word in its colour where stderr shows colour (`indicatif` writes
                // straight to the terminal, not through `anstream`).
                let phase = crate::style::state_on(crate::style::Stream::Err, &s.phase);
                let rest = self.describe_with(s, phase);
                let key_room = room
                    .saturating_sub(console::measure_text_width(&rest) + 3)
                    .max(12);
                let key = console::truncate_str(&s.key, key_room, "…");
                let text = format!("{key} · {rest}");
                bar.set_message(console::truncate_str(&text, room, "…").into_owned());
            }
            None => {
                let text = format!("{} · {}", s.key, self.describe(s));
                if s.last != text {
                    diag!("{} tether: {text}", now_iso());
                    s.last = text;
                }
            }
        }
    }

    fn following(&self, s: &mut State, record: &tether_core::store::RunRecord) {
        let owner = record
            .owner
            .as_ref()
            .map(|o| tether_connectors::text::escape_controls(&o.0))
            .unwrap_or_else(|| "nobody".into());
        let since = match &s.following {
            Some((o, since)) if *o == owner => *since,
            _ => Instant::now(),
        };
        s.following = Some((owner.clone(), since));
        let (generation, id) = record.current();
        s.generation = generation.map(|g| g.to_string());
        s.id = id.map(|i| tether_connectors::text::escape_controls(&i.0));
        // Why we wait: the owner renews its lease every ttl/3; past that it stopped renewing.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let ttl = self.opts.lease_ttl.as_millis() as i64;
        // `why` counts seconds; `reason` is what a plain-mode line is printed again for.
        let (why, reason) = match record.lease_expires_at_ms {
            Some(exp) if exp > now_ms => {
                let silent = now_ms - (exp - ttl);
                if silent > ttl / 3 + 1000 {
                    let why = format!(
                        "owner stopped renewing {}s ago; taking over in ≤ {}s",
                        silent / 1000,
                        (exp - now_ms + 999) / 1000
                    );
                    (why, "stopped renewing")
                } else {
                    ("its lease is alive".to_string(), "alive")
                }
            }
            _ => ("its lease expired; taking over".to_string(), "expired"),
        };
        s.phase = format!(
            "following {owner} for {} ({why}; {})",
            human_duration(since.elapsed()),
            record.journal.phase.label()
        );
        if self.bar.is_none() {
            // Plain mode prints on change only: the ticking duration and the countdown of a
            // silent owner are not changes (one line when it stops renewing, not one a second).
            let stable = format!("{} · following {owner} ({reason})", s.key);
            if s.last == stable {
                return;
            }
            diag!(
                "{} tether: {} · following {owner} ({why}); {}",
                now_iso(),
                s.key,
                record.journal.phase.label()
            );
            s.last = stable;
            return;
        }
        self.changed(s);
    }
}

/// The phase a decision leads to, or None if it changes nothing a person needs to see.
fn phase_of(decision: &Decision) -> Option<String> {
    Some(match decision {
        Decision::Submit { .. } => "submitting".into(),
        Decision::Backoff { after, .. } => {
            format!("waiting {} before resubmitting", human_duration(*after))
        }
        Decision::LookUp { .. } => "looking for the job".into(),
        Decision::Adopt { .. } => "found the job".into(),
        Decision::Poll { state, .. } => match state {
            ActiveState::Queued => "queued".into(),
            _ => "running".into(),
        },
        Decision::AskAgain { .. } => "backend not answering; asking again with backoff".into(),
        Decision::Cancel { .. } => "cancelling".into(),
        Decision::GiveUp { .. } | Decision::Finish(_) | Decision::Return(_) => "ending".into(),
        _ => return None,
    })
}

impl Observer for Progress {
    fn event(&self, key: &RunKey, event: &Event) {
        let mut s = self.lock();
        if s.key.is_empty() {
            s.key = key.to_string();
        }
        match event {
            Event::Acquired { epoch } => {
                s.acquired = true;
                s.following = None;
                if self.opts.verbose {
                    self.line(&format!("tether: {key}: lease taken (epoch {epoch})"));
                }
                s.phase = "starting".into();
                self.changed(&mut s);
            }
            Event::Following { record } => self.following(&mut s, record),
            Event::Decided {
                generation,
                external_id,
                decision,
                reason,
            } => {
                if self.opts.verbose && !matches!(**decision, Decision::Observe) {
                    self.line(&format!(
                        "tether: {key}: {}: {}",
                        decision.name(),
                        tether_connectors::text::escape_controls(reason)
                    ));
                }
                let Some(mut phase) = phase_of(decision) else {
                    return;
                };
                if matches!(**decision, Decision::AskAgain { .. }) && external_id.is_none() {
                    phase = "backend unreachable, no job yet; retrying with backoff".into();
                }
                // The searches between the retries of an unreachable backend are not news.
                if matches!(**decision, Decision::LookUp { .. }) && s.phase.starts_with("backend") {
                    return;
                }
                s.phase = phase;
                s.generation = generation.map(|g| g.to_string());
                s.id = external_id
                    .as_ref()
                    .map(|i| tether_connectors::text::escape_controls(&i.0));
                self.changed(&mut s);
            }
        }
    }

    fn checkpoint(&self, key: &RunKey, point: Checkpoint) {
        crate::fault::maybe_crash(key, point);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_in_words() {
        assert_eq!(human_duration(Duration::from_millis(6100)), "6.1s");
        assert_eq!(human_duration(Duration::from_secs(192)), "3m 12s");
        assert_eq!(human_duration(Duration::from_secs(3780)), "1h 03m");
        assert_eq!(human_bytes(3 * 1024 * 1024 + 512 * 1024), "3.5 MiB");
        assert_eq!(human_bytes(2048), "2.0 KiB");
    }

    #[test]
    fn timestamps_are_iso_8601_utc_to_the_second() {
        let t = now_iso();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }
}

//! Rendering runs for people (stdout tables) and scripts (`--json`).
use tether_core::{
    journal::{Outcome, Phase},
    store::{HistoryEntry, RunRecord, SubmissionRecord},
};
use tether_fleet::view::RunSummaryView;
pub use tether_fleet::view::{iso_time, state};

/// A JSON view as one line (a view always serializes: plain data, string keys).
pub fn json_line(view: &impl serde::Serialize) -> String {
    serde_json::to_string(view).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

pub fn outcome_detail(o: &Outcome) -> String {
    match o {
        Outcome::Succeeded { result } => format!("succeeded: {result}"),
        Outcome::Failed { class, message } => {
            format!("failed: {}: {}", class.as_str(), esc(message))
        }
        Outcome::Cancelled { message } => format!("cancelled: {}", esc(message)),
    }
}

pub fn print_status(run: &RunRecord, submissions: &[SubmissionRecord]) {
    let (generation, id) = run.current();
    say!("key:       {}", run.key);
    say!("state:     {}", crate::style::state(&state(run)));
    say!("backend:   {} ({})", run.kind, run.spec_name);
    if let Some(g) = generation {
        say!("generation: {g}");
    }
    if let Some(id) = id {
        say!("external id: {}", esc(&id.0));
    }
    say!("epoch:     {}", run.epoch);
    match (&run.owner, run.lease_alive) {
        (Some(o), true) => say!("owner:     {o} (lease alive)"),
        (Some(o), false) => {
            say!("owner:     {o} (lease expired: any tether run/worker takes over)")
        }
        (None, _) => say!("owner:     none"),
    }
    if let Some(p) = &run.placement {
        let unfinished = !matches!(run.journal.phase, Phase::Finished { .. });
        if unfinished && !run.lease_alive {
            say!(
                "placement: {} — waiting for a worker (or `tether run`) on host {}; if that host \
                 is gone for good: `tether forget-host {}`",
                p.describe(),
                p.host,
                p.host
            );
        } else {
            say!("placement: {}", p.describe());
        }
    }
    if run.journal.cancel_requested {
        say!("cancel:    requested");
    }
    if let Phase::Finished { outcome } = &run.journal.phase {
        say!("outcome:   {}", outcome_detail(outcome));
    }
    for s in submissions {
        say!(
            "  gen {} tag {} shape {} id {} {}",
            s.submission.generation,
            s.submission.tag,
            s.submission.shape.as_str(),
            s.external_id
                .as_ref()
                .map(|i| esc(&i.0))
                .unwrap_or_else(|| "-".into()),
            s.outcome
                .as_ref()
                .map(|o| o.label())
                .unwrap_or_else(|| "-".into()),
        );
    }
}

pub fn print_ls(runs: &[RunSummaryView], wide: bool) {
    let head = format!(
        "{:<40} {:<16} {:>5} {:>4} {:<28} OWNER",
        "KEY", "STATE", "EPOCH", "GEN", "EXTERNAL ID"
    );
    if wide {
        say!("{head:<130} {:<18} {:<24} UPDATED", "KIND", "SPEC");
    } else {
        say!("{head}");
    }
    for r in runs {
        let (g, id) = (r.generation, r.external_id.as_ref());
        let owner = match (&r.owner, r.lease_alive) {
            (Some(o), true) => o.to_string(),
            (Some(o), false) => format!("{o} (expired)"),
            (None, _) => "-".into(),
        };
        let state = match r.failure_class {
            Some(class) => format!("{}: {class}", r.state),
            None => r.state.to_string(),
        };
        let line = format!(
            "{:<40} {} {:>5} {:>4} {:<28} {}",
            r.key.as_str(),
            crate::style::state_padded(&state, 16),
            r.epoch,
            g.map(|g| g.to_string()).unwrap_or_else(|| "-".into()),
            id.map(|i| esc(&i.0)).unwrap_or_else(|| "-".into()),
            owner
        );
        if wide {
            // Padded by its width on screen: the state's colour codes take no room.
            let pad = 130usize.saturating_sub(console::measure_text_width(&line));
            say!(
                "{line}{} {:<18} {:<24} {}",
                " ".repeat(pad),
                r.kind,
                esc(&r.spec_name),
                iso_time(r.updated_at_ms)
            );
        } else {
            say!("{line}");
        }
    }
}

pub fn print_history(entries: &[HistoryEntry]) {
    for e in entries {
        let secs = e.at_ms / 1000;
        let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
        say!(
            "{h:02}:{m:02}:{s:02}.{:03}Z epoch {:>3} gen {:>3}  {:<24} {}",
            e.at_ms % 1000,
            e.epoch.0,
            e.generation
                .map(|g| g.to_string())
                .unwrap_or_else(|| "-".into()),
            e.decision,
            esc(&e.reason)
        );
    }
}

/// Text that came from a backend (ids, messages) with control characters escaped, so an id or
/// message carrying terminal escape sequences or newlines cannot rewrite what the user sees.
fn esc(text: &str) -> String {
    tether_connectors::text::escape_controls(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_text_never_reaches_the_terminal_raw() {
        let o = Outcome::Failed {
            class: tether_core::observe::FailureClass::Other,
            message: "boom\u{1b}[2J\nfake: succeeded".into(),
        };
        let shown = outcome_detail(&o);
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\n'),
            "{shown}"
        );
        assert!(shown.contains("\\u{1b}[2J\\nfake"), "{shown}");
    }
}

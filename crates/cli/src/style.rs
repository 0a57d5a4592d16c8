//! Colour for people, plain text for pipes, files and those who asked for none.
//!
//! ## Guarantees
//! - Whether a stream gets colour is `anstream`'s answer for it, taken once per process:
//!   `NO_COLOR` (non-empty) means never and wins over everything, then `CLICOLOR_FORCE=1`
//!   means always, then `CLICOLOR=0` means never, else colour only on a terminal.
//! - Every line of [`say!`]/[`diag!`] passes through an `anstream` stream, so a style that
//!   reaches a stream without colour is stripped there: piped output carries no escape codes.
//! - Colour marks words only (a state, `error:`); the text is the same with or without it, so
//!   scripts matching words work either way.
//!
//! ## Caveats
//! - The job's own output (`--logs`, `tether logs`) is written as the job wrote it.
use std::sync::OnceLock;

use anstream::ColorChoice;
use anstyle::{AnsiColor, Effects, Style};

/// A standard stream of this process.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    Out,
    Err,
}

/// The choice for `stream` (asked once: environment and terminal do not change under us).
pub fn choice(stream: Stream) -> ColorChoice {
    static OUT: OnceLock<ColorChoice> = OnceLock::new();
    static ERR: OnceLock<ColorChoice> = OnceLock::new();
    match stream {
        Stream::Out => *OUT.get_or_init(|| anstream::AutoStream::choice(&std::io::stdout())),
        Stream::Err => *ERR.get_or_init(|| anstream::AutoStream::choice(&std::io::stderr())),
    }
}

/// Whether `stream` shows colour.
pub fn enabled(stream: Stream) -> bool {
    choice(stream) != ColorChoice::Never
}

/// The colour of a state word: green success, red failure, yellow cancelled, cyan while it
/// runs; None for words that are not states.
fn state_style(word: &str) -> Option<Style> {
    let colour = match word.split(':').next().unwrap_or(word).trim() {
        "succeeded" => AnsiColor::Green,
        "failed" => AnsiColor::Red,
        "cancelled" | "was cancelled" | "cancelling" => AnsiColor::Yellow,
        "running" | "submitting" | "starting" | "found the job" | "looking for the job" => {
            AnsiColor::Cyan
        }
        "queued" => AnsiColor::Blue,
        _ => return None,
    };
    Some(
        Style::new()
            .fg_color(Some(colour.into()))
            .effects(Effects::BOLD),
    )
}

fn paint(style: Option<Style>, text: &str) -> String {
    match style {
        Some(s) => format!("{s}{text}{s:#}"),
        None => text.to_string(),
    }
}

/// `word` (a run state such as `failed: oom`) in its colour, for a line of [`say!`]/[`diag!`]
/// (those strip it where colour is off).
pub fn state(word: &str) -> String {
    paint(state_style(word), word)
}

/// Like [`state`], for text written to `stream` by other means (the status line of
/// `indicatif`): coloured only where that stream shows colour.
pub fn state_on(stream: Stream, word: &str) -> String {
    if enabled(stream) {
        state(word)
    } else {
        word.to_string()
    }
}

/// `failed: oom: message` with only its leading state word (`failed`) coloured.
pub fn lead(text: &str) -> String {
    let (word, rest) = text.split_at(text.find(':').unwrap_or(text.len()));
    format!("{}{rest}", paint(state_style(word), word))
}

/// `error:` in bold red.
pub fn error_label() -> String {
    let s = Style::new()
        .fg_color(Some(AnsiColor::Red.into()))
        .effects(Effects::BOLD);
    paint(Some(s), "error:")
}

/// `text` padded to `width` columns, then coloured (the padding of a table column must not
/// count the escape codes).
pub fn state_padded(word: &str, width: usize) -> String {
    let pad = width.saturating_sub(console::measure_text_width(word));
    format!("{}{}", state(word), " ".repeat(pad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_coloured_and_padding_ignores_the_escapes() {
        assert!(state("failed: oom").starts_with("\u{1b}["));
        assert!(state("failed: oom").contains("failed: oom"));
        assert_eq!(state("following"), "following");
        let padded = state_padded("running", 10);
        assert_eq!(console::measure_text_width(&padded), 10, "{padded:?}");
        assert!(padded.ends_with("   "));
    }
}

//! The operator's line for a run's end.
use tether_core::{
    engine::{EngineError, Finish},
    ids::RunKey,
};

use crate::context::Notices;

pub(super) fn report(key: &RunKey, result: &Result<Finish, EngineError>, say: &Notices) {
    let line = match result {
        Ok(Finish::Outcome(o)) => format!("tether worker: {key}: {}", o.label()),
        Ok(Finish::GaveUp { reason }) => {
            format!("tether worker: {key}: status unknown, released: {reason}")
        }
        Ok(Finish::Elsewhere(e)) => format!("tether worker: {key}: released: {e}"),
        Err(EngineError::LeaseLost { .. }) => {
            format!("tether worker: {key}: lease lost, dropped (another owner has it)")
        }
        Err(e) => format!("tether worker: {key}: {e}"),
    };
    tracing::info!(%key, "{line}");
    say(&line);
}

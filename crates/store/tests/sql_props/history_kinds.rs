//! Conformance property of history kinds (included by `conformance.rs`; SQL only: it writes rows behind the store's back): rows written as text,
//! before the kind was an enum, read back as the same kinds.
use anyhow::ensure;
use tether_core::history::HistoryKind;

use super::{common::*, R};

pub async fn history_rows_written_as_text_read_back_as_kinds(h: Harness) -> R {
    let s = h.store().await?;
    create(&s, "old").await?;
    // As an older tether wrote them (and as a newer one may write a kind unknown here).
    h.exec(
        "INSERT INTO history (key, at_ms, epoch, generation, decision, reason) VALUES
         ('old', 1, 1, 1, 'look-up-tag', 'a'),
         ('old', 2, 1, 1, 'resubmit-same-generation', 'b'),
         ('old', 3, 1, NULL, 'lease-acquired', 'c'),
         ('old', 4, 1, NULL, 'paused-by-v9', 'd')",
    )
    .await?;
    let l = acquire(&s, "old", "w", LONG).await?;
    s.append_history(&l, &entry(l.epoch, Some(1), "poll", "e"))
        .await?;
    let kinds: Vec<(HistoryKind, String)> = s
        .history(&key("old"))
        .await?
        .into_iter()
        .filter(|e| e.reason.len() == 1)
        .map(|e| (e.decision, e.reason))
        .collect();
    let want = [
        (HistoryKind::LookUpTag, "a"),
        (HistoryKind::ResubmitSameGeneration, "b"),
        (HistoryKind::LeaseAcquired, "c"),
        (HistoryKind::Other("paused-by-v9".into()), "d"),
        (HistoryKind::Poll, "e"),
    ];
    ensure!(
        kinds.len() == want.len()
            && kinds
                .iter()
                .zip(want)
                .all(|((k, r), (wk, wr))| *k == wk && r == wr),
        "{kinds:?}"
    );
    h.finish().await;
    Ok(())
}

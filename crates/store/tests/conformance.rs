//! The store conformance suite on SQLite (`sqlite::*`) and PostgreSQL (`postgres::*`): the
//! generic properties of `tether_testkit::store_conformance` (which also run on the in-memory
//! store), and here the SQL stores' own, which reach behind the store's back (raw SQL damage,
//! schema versions).
#[macro_use]
mod common;
#[path = "sql_props/history_kinds.rs"]
mod history_kinds;

use anyhow::ensure;
use common::*;
use history_kinds::history_rows_written_as_text_read_back_as_kinds;
use tether_core::store::StoreError;

type R = anyhow::Result<()>;

async fn undecodable_rows_are_quarantined_not_fatal(h: Harness) -> R {
    let s = h.store().await?;
    for k in ["good", "future", "garbled"] {
        create(&s, k).await?;
    }
    // A phase written by a newer tether, and an outcome damaged on disk.
    h.exec("UPDATE runs SET phase = 'paused-by-v9' WHERE key = 'future'")
        .await?;
    h.exec("UPDATE runs SET phase = 'finished', outcome = '{not json' WHERE key = 'garbled'")
        .await?;
    let keys: Vec<String> = s
        .list_runs()
        .await?
        .into_iter()
        .map(|r| r.key.to_string())
        .collect();
    ensure!(
        keys == ["good"],
        "listing goes on without the bad rows: {keys:?}"
    );
    let claimed = s
        .claim(
            &owner("w1"),
            LONG,
            10,
            &tether_core::store::ClaimFilter::default(),
        )
        .await?;
    let claimed: Vec<&str> = claimed.iter().map(|(l, _)| l.key.as_str()).collect();
    ensure!(
        claimed == ["good"],
        "the claim skips the bad row: {claimed:?}"
    );
    // Set aside for good: no second claimer takes it (no epoch churn, no stalled tick).
    ensure!(s
        .claim(
            &owner("w2"),
            LONG,
            10,
            &tether_core::store::ClaimFilter::default()
        )
        .await?
        .is_empty());
    let mut q = h.store().await?.quarantined().await?;
    q.sort_by(|a, b| a.key.cmp(&b.key));
    ensure!(q.len() == 2, "{q:?}");
    ensure!(
        q[0].key == "future" && q[0].reason.contains("paused-by-v9"),
        "{q:?}"
    );
    ensure!(
        q[1].key == "garbled" && q[1].reason.contains("outcome"),
        "{q:?}"
    );
    match s.get_run(&key("future")).await {
        Err(StoreError::Corrupt { message, .. }) => {
            ensure!(message.contains("quarantined"), "{message}")
        }
        other => anyhow::bail!("expected a quarantine error, got {other:?}"),
    }
    h.finish().await;
    Ok(())
}

async fn read_access_creates_nothing_and_migrate_reports_versions(h: Harness) -> R {
    match tether_store::open_existing(h.location()).await {
        Err(StoreError::Open { message, .. }) => {
            ensure!(message.contains("no state store"), "{message}")
        }
        other => anyhow::bail!("expected no state store, got {:?}", other.map(|_| ())),
    }
    // Nothing was created: the migration starts from zero.
    let m = tether_store::migrate(h.location(), &Default::default()).await?;
    ensure!((m.before, m.after) == (0, 8), "{m:?}");
    let m = tether_store::migrate(h.location(), &Default::default()).await?;
    ensure!((m.before, m.after) == (8, 8), "{m:?}");
    ensure!(tether_store::open_existing(h.location())
        .await?
        .list_runs()
        .await?
        .is_empty());
    h.finish().await;
    Ok(())
}

async fn a_store_for_newer_readers_is_refused(h: Harness) -> R {
    create(&h.store().await?, "r").await?;
    h.exec("UPDATE tether_meta SET value = '99' WHERE name = 'min_reader_schema'")
        .await?;
    for r in [
        tether_store::open(h.location()).await,
        tether_store::open_existing(h.location()).await,
    ] {
        match r {
            Err(StoreError::Open { message, .. }) => ensure!(
                message.contains("needs tether >= schema 99") && message.contains("upgrade"),
                "{message}"
            ),
            other => anyhow::bail!("expected a refusal, got {:?}", other.map(|_| ())),
        }
    }
    h.finish().await;
    Ok(())
}

conformance!(
    undecodable_rows_are_quarantined_not_fatal,
    read_access_creates_nothing_and_migrate_reports_versions,
    a_store_for_newer_readers_is_refused,
    history_rows_written_as_text_read_back_as_kinds,
);

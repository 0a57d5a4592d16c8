//! Properties of `Store::remove_run` and `Store::prune`.
use anyhow::{bail, ensure};
use tether_core::{
    journal::Outcome,
    store::{Remove, RunQuery},
};

use super::{helpers::*, StoreHarness, R};

async fn finish_ok(s: &std::sync::Arc<dyn tether_core::Store>, k: &str) -> R {
    let l = acquire(s, k, "w", LONG).await?;
    s.record_intent(
        &l,
        &submission(k, 1),
        None,
        None,
        &entry(l.epoch, Some(1), "submit", "go"),
    )
    .await?;
    let done = Outcome::Succeeded {
        result: serde_json::json!({}),
    };
    s.record_finished(&l, &done, &entry(l.epoch, None, "finish", "done"))
        .await?;
    Ok(())
}

/// Property: `remove_run` removes a finished run with its submissions and history and returns
/// its tags; it refuses an unfinished run (or one whose lease is alive) and an absent key.
pub async fn remove_takes_only_a_finished_run_with_all_it_owns<H: StoreHarness>(h: H) -> R {
    let s = h.store().await?;
    create(&s, "done").await?;
    finish_ok(&s, "done").await?;
    create(&s, "live").await?;
    let l = acquire(&s, "live", "w", LONG).await?;
    s.record_intent(
        &l,
        &submission("live", 1),
        None,
        None,
        &entry(l.epoch, Some(1), "submit", "go"),
    )
    .await?;
    create(&s, "waiting").await?;

    for k in ["live", "waiting"] {
        match s.remove_run(&key(k)).await? {
            Remove::NotFinished(r) => ensure!(r.key == key(k)),
            other => bail!("{k}: an unfinished run was removed: {other:?}"),
        }
        ensure!(s.get_run(&key(k)).await?.is_some(), "{k} is gone");
    }
    match s.remove_run(&key("done")).await? {
        Remove::Removed(r) => {
            ensure!(r.run.key == key("done"));
            ensure!(r.tags == [submission("done", 1).tag], "{:?}", r.tags);
        }
        other => bail!("a finished run was not removed: {other:?}"),
    }
    let other = h.store().await?;
    ensure!(other.get_run(&key("done")).await?.is_none(), "run row kept");
    ensure!(
        other.history(&key("done")).await?.is_empty(),
        "history kept"
    );
    ensure!(
        other.submissions(&key("done")).await?.is_empty(),
        "submissions kept"
    );
    ensure!(other.list_summaries(&RunQuery::new()).await?.runs.len() == 2);
    match s.remove_run(&key("done")).await {
        Err(tether_core::store::StoreError::NotFound { .. }) => {}
        other => bail!("removing it twice: {other:?}"),
    }
    // The key is free for a new run.
    create(&s, "done").await?;
    h.finish().await;
    Ok(())
}

/// Property: `prune` removes the finished runs changed before the cutoff (oldest first), never
/// an unfinished one; a dry run returns the same list and changes nothing.
pub async fn prune_removes_old_finished_runs_and_a_dry_run_nothing<H: StoreHarness>(h: H) -> R {
    let s = h.store().await?;
    for k in ["old1", "old2"] {
        create(&s, k).await?;
        finish_ok(&s, k).await?;
    }
    create(&s, "queued").await?;
    let runs = s.list_summaries(&RunQuery::new()).await?.runs;
    let first = runs.iter().map(|r| r.updated_at_ms).min().unwrap_or(0);
    ensure!(s.prune(first, false).await?.is_empty(), "nothing is older");
    // A cutoff in the future: every finished run is older.
    let cutoff = runs.iter().map(|r| r.updated_at_ms).max().unwrap_or(0) + 60_000;
    let dry = s.prune(cutoff, true).await?;
    let dry_keys: Vec<String> = dry.iter().map(|r| r.run.key.to_string()).collect();
    ensure!(dry_keys == ["old1", "old2"], "dry run: {dry_keys:?}");
    ensure!(
        s.list_summaries(&RunQuery::new()).await?.runs.len() == 3,
        "dry run removed"
    );
    let done = s.prune(cutoff, false).await?;
    ensure!(done == dry, "{done:?} != {dry:?}");
    ensure!(
        done[0].tags == [submission("old1", 1).tag],
        "{:?}",
        done[0].tags
    );
    let left = s.list_summaries(&RunQuery::new()).await?.runs;
    ensure!(left.len() == 1 && left[0].key == key("queued"), "{left:?}");
    ensure!(s.history(&key("old1")).await?.is_empty());
    ensure!(s.prune(cutoff, false).await?.is_empty(), "pruned twice");
    h.finish().await;
    Ok(())
}

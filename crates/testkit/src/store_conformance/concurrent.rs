//! Many fenced writes at once (a worker driving thousands of runs): each is answered on its own
//! (see the [module docs](super)). A store may commit concurrent writes together (SQLite's group
//! commit); what a caller sees must not change.
use anyhow::{ensure, Context};
use tether_core::{
    ids::{Epoch, Generation},
    journal::Phase,
};

use super::{helpers::*, lease_lost, StoreHarness, R};

/// Property: intents and id records of many runs written concurrently each land on their own
/// run, and a stale lease among them is fenced without failing or touching the others.
pub async fn concurrent_fenced_writes_are_answered_each_on_its_own<H: StoreHarness>(h: H) -> R {
    let s = h.store().await?;
    const N: usize = 24;
    let mut leases = Vec::new();
    for i in 0..N {
        let k = format!("many-{i:02}");
        create(&s, &k).await?;
        leases.push(acquire(&s, &k, "worker", LONG).await?);
    }
    // The last run's lease is stale (another owner took it over, as far as this writer knows).
    let stale = N - 1;
    leases[stale].epoch = Epoch(leases[stale].epoch.0 + 1);
    for step in ["intent", "submitted"] {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, lease) in leases.iter().cloned().enumerate() {
            let s = s.clone();
            let k = format!("many-{i:02}");
            tasks.spawn(async move {
                let e = entry(lease.epoch, Some(1), step, &k);
                let r = if step == "intent" {
                    s.record_intent(&lease, &submission(&k, 1), None, None, &e)
                        .await
                } else {
                    s.record_submitted(&lease, Generation(1), &ext(&format!("id-{k}")), &e)
                        .await
                };
                (i, r)
            });
        }
        while let Some(done) = tasks.join_next().await {
            let (i, r) = done.context("writer task")?;
            if i == stale {
                lease_lost(r, &format!("{step} with a stale lease"))?;
            } else {
                r.with_context(|| format!("{step} of run {i}"))?;
            }
        }
    }
    for i in 0..N {
        let k = format!("many-{i:02}");
        let run = s.get_run(&key(&k)).await?.context("run")?;
        if i == stale {
            ensure!(
                run.journal.phase == Phase::Empty,
                "stale writer changed {k}: {:?}",
                run.journal.phase
            );
            continue;
        }
        match &run.journal.phase {
            Phase::Submitted { external_id, .. } => {
                ensure!(
                    external_id == &ext(&format!("id-{k}")),
                    "{k} got {external_id}"
                )
            }
            other => anyhow::bail!("{k}: expected submitted, got {other:?}"),
        }
        let mine = s
            .history(&key(&k))
            .await?
            .into_iter()
            .filter(|e| e.reason == k)
            .count();
        ensure!(
            mine == 2,
            "{k}: {mine} history entries of its own, expected 2"
        );
    }
    h.finish().await;
    Ok(())
}

//! `Store::rerun` (see the [module docs](super)).
use anyhow::{ensure, Context};
use tether_core::{
    decide,
    ids::Generation,
    journal::{Outcome, Phase},
    observe::Observed,
    spec::Policy,
    store::{Rerun, RerunSpec, StoreError},
    Decision,
};

use super::{helpers::*, StoreHarness, R};

/// Drives generation `g` of `k` to `outcome` under a fresh lease of `o`.
async fn one_generation(
    s: &std::sync::Arc<dyn tether_core::Store>,
    k: &str,
    o: &str,
    g: u32,
    outcome: &Outcome,
) -> R {
    let l = acquire(s, k, o, LONG).await?;
    let sub = submission(k, g);
    // Placed on a host, as a local run is: a rerun must free it for any host.
    let placed = tether_core::placement::Placement {
        host: "h1".into(),
        boot_id: "b1".into(),
        location: "/jobs".into(),
    };
    s.record_intent(
        &l,
        &sub,
        None,
        Some(&placed),
        &entry(l.epoch, Some(g), "submit", "go"),
    )
    .await?;
    s.record_submitted(
        &l,
        Generation(g),
        &ext(&format!("id-{g}")),
        &entry(l.epoch, Some(g), "submitted", "id"),
    )
    .await?;
    s.record_finished(&l, outcome, &entry(l.epoch, Some(g), "finish", "done"))
        .await?;
    Ok(())
}

/// Property: rerun makes a fresh instance that continues the generations.
pub async fn rerun_makes_a_fresh_instance_that_continues_the_generations<H: StoreHarness>(
    h: H,
) -> R {
    let s = h.store().await?;
    let ok = Outcome::Succeeded {
        result: serde_json::json!({"exit": 0}),
    };
    match s.rerun(&key("absent"), None).await {
        Err(StoreError::NotFound { .. }) => {}
        other => anyhow::bail!("rerun of an absent key: expected NotFound, got {other:?}"),
    }
    // An unfinished run (leased, mid-flight) is left untouched.
    create(&s, "busy").await?;
    let l = acquire(&s, "busy", "w1", LONG).await?;
    s.record_intent(
        &l,
        &submission("busy", 1),
        None,
        None,
        &entry(l.epoch, Some(1), "submit", "go"),
    )
    .await?;
    let before = s.get_run(&key("busy")).await?.context("busy")?;
    match s.rerun(&key("busy"), None).await? {
        Rerun::NotFinished(r) => ensure!(r == before, "{r:?}"),
        other => anyhow::bail!("rerun of an unfinished run: {other:?}"),
    }
    ensure!(s.get_run(&key("busy")).await?.context("busy")? == before);

    create(&s, "re").await?;
    one_generation(&s, "re", "w1", 1, &ok).await?;
    let fresh = match s.rerun(&key("re"), None).await? {
        Rerun::Fresh(r) => r,
        other => anyhow::bail!("rerun of a succeeded run: {other:?}"),
    };
    ensure!(fresh.journal.phase == Phase::Empty, "{:?}", fresh.journal);
    ensure!(fresh.journal.after_generation == Some(Generation(1)));
    ensure!(fresh.last_generation == Some(Generation(1)));
    ensure!(
        fresh.placement.is_none(),
        "a fresh instance is bound to no host yet"
    );
    ensure!(!fresh.journal.cancel_requested && fresh.owner.is_none() && !fresh.lease_alive);
    // Twice in a row: the second finds an unfinished (empty) run and changes nothing.
    ensure!(matches!(
        s.rerun(&key("re"), None).await?,
        Rerun::NotFinished(_)
    ));
    // The fresh instance decides generation 2: a new tag, never generation 1's job.
    match decide(
        &fresh.journal,
        &Observed::Nothing,
        &Policy::default(),
        tether_core::Clocks::default(),
        std::time::Duration::ZERO,
    )
    .0
    {
        Decision::Submit { submission, .. } => {
            ensure!(
                submission.generation == Generation(2)
                    && submission.tag
                        == tether_core::ids::Tag::derive(s.store_id(), &key("re"), Generation(2)),
                "{submission:?}"
            )
        }
        d => anyhow::bail!("fresh instance must submit: {d:?}"),
    }
    // It is claimable and runs; the earlier submission and history stay.
    ensure!(s.request_cancel(&key("re")).await?);
    let cancelled = Outcome::Cancelled {
        message: "by test".into(),
    };
    one_generation(&s, "re", "w2", 2, &cancelled).await?;
    let subs = s.submissions(&key("re")).await?;
    ensure!(subs.len() == 2, "{subs:?}");
    ensure!(subs[0].outcome == Some(ok.clone()) && subs[1].outcome == Some(cancelled));
    let hist: Vec<String> = s
        .history(&key("re"))
        .await?
        .into_iter()
        .map(|e| e.decision.into())
        .collect();
    ensure!(
        hist.iter().filter(|d| *d == "rerun").count() == 1,
        "{hist:?}"
    );

    // A cancelled run reruns too, with its cancel flag cleared and a new spec if given.
    let spec = RerunSpec {
        kind: "local".into(),
        spec: "[job]\nkind = \"local\"\ncommand = [\"true\"]\n".into(),
        spec_name: "new.toml".into(),
        spec_hash: "hash-new".into(),
    };
    let again = match s.rerun(&key("re"), Some(&spec)).await? {
        Rerun::Fresh(r) => r,
        other => anyhow::bail!("rerun of a cancelled run: {other:?}"),
    };
    ensure!(!again.journal.cancel_requested, "cancel flag cleared");
    ensure!(again.journal.after_generation == Some(Generation(2)));
    ensure!(again.spec == spec.spec && again.spec_name == "new.toml");
    ensure!(again.spec_hash == "hash-new");
    let last = s.history(&key("re")).await?.pop().context("history")?;
    ensure!(last.decision == "rerun" && last.generation == Some(Generation(2)));
    ensure!(last.reason.contains("cancelled") && last.reason.contains("new.toml"));
    h.finish().await;
    Ok(())
}

//! Leases, fencing and claims (see the [module docs](super)).
use std::{collections::HashMap, sync::Arc, time::Duration};

use anyhow::{ensure, Context};
use tether_core::{
    ids::{Epoch, Generation},
    journal::{Outcome, Phase},
    store::{Acquire, Created, StoreError},
};

use super::{helpers::*, lease_lost, StoreHarness, R};

/// Property: create is idempotent.
pub async fn create_is_idempotent<H: StoreHarness>(h: H) -> R {
    let s = h.store().await?;
    let first = match s.create_run(&new_run("idem", true)).await? {
        Created::New(r) => r,
        Created::Existing(_) => anyhow::bail!("first create must be New"),
    };
    ensure!(
        first.journal.phase == Phase::Empty && first.epoch == Epoch(0) && first.owner.is_none()
    );
    ensure!(first.queued && !first.lease_alive && first.spec_hash == "hash-idem");
    // Same key again, even with another spec: the existing run comes back unchanged.
    let mut other = new_run("idem", false);
    other.spec_hash = "different".into();
    match s.create_run(&other).await? {
        Created::Existing(r) => ensure!(r == first, "existing run changed: {r:?}"),
        Created::New(_) => anyhow::bail!("second create must be Existing"),
    }
    ensure!(s.list_runs().await?.len() == 1);
    ensure!(s.get_run(&key("absent")).await?.is_none());
    h.finish().await;
    Ok(())
}

/// Property: full lifecycle.
pub async fn full_lifecycle<H: StoreHarness>(h: H) -> R {
    let s = h.store().await?;
    create(&s, "life").await?;
    let l = acquire(&s, "life", "w1", LONG).await?;
    ensure!(l.epoch == Epoch(1));
    let sub = submission("life", 1);
    s.record_intent(
        &l,
        &sub,
        None,
        None,
        &entry(l.epoch, Some(1), "submit", "first submission"),
    )
    .await?;
    let r = s.get_run(&key("life")).await?.context("run")?;
    ensure!(
        r.journal.phase
            == Phase::Intent {
                submission: sub.clone()
            },
        "{:?}",
        r.journal.phase
    );
    ensure!(r.current() == (Some(Generation(1)), None));
    ensure!(r.lease_alive && r.owner == Some(owner("w1")));

    s.record_submitted(
        &l,
        Generation(1),
        &ext("app-1"),
        &entry(l.epoch, Some(1), "submitted", "id app-1"),
    )
    .await?;
    let r = s.get_run(&key("life")).await?.context("run")?;
    ensure!(
        r.journal.phase
            == Phase::Submitted {
                submission: sub.clone(),
                external_id: ext("app-1")
            },
        "{:?}",
        r.journal.phase
    );
    s.renew(&l, LONG).await?;

    let outcome = Outcome::Succeeded {
        result: serde_json::json!({"exit_code": 0, "rows": [1, 2]}),
    };
    s.record_finished(
        &l,
        &outcome,
        &entry(l.epoch, Some(1), "finish", "job succeeded"),
    )
    .await?;
    let r = s.get_run(&key("life")).await?.context("run")?;
    ensure!(
        r.journal.phase
            == Phase::Finished {
                outcome: outcome.clone()
            }
    );
    ensure!(r.owner.is_none() && r.lease_expires_at_ms.is_none() && !r.lease_alive);
    ensure!(r.epoch == Epoch(1), "finishing does not bump the epoch");
    ensure!(r.updated_at_ms >= r.created_at_ms);

    let subs = s.submissions(&key("life")).await?;
    ensure!(subs.len() == 1);
    ensure!(subs[0].submission == sub && subs[0].external_id == Some(ext("app-1")));
    ensure!(subs[0].outcome == Some(outcome) && subs[0].intent_at_ms > 0);

    // A finished run is never leased again, and its epoch does not move.
    match s.acquire(&key("life"), &owner("w2"), LONG).await? {
        Acquire::Held(r) => ensure!(r.epoch == Epoch(1) && r.owner.is_none()),
        Acquire::Acquired(..) => anyhow::bail!("acquired a finished run"),
    }
    ensure!(s
        .claim(
            &owner("w2"),
            LONG,
            10,
            &tether_core::store::ClaimFilter::default()
        )
        .await?
        .is_empty());
    // The old lease is gone with the finish.
    lease_lost(
        s.append_history(&l, &entry(l.epoch, None, "x", "y")).await,
        "append after finish",
    )?;
    lease_lost(s.renew(&l, LONG).await, "renew after finish")?;

    let hist: Vec<String> = s
        .history(&key("life"))
        .await?
        .into_iter()
        .map(|e| e.decision.into())
        .collect();
    ensure!(
        hist == ["lease-acquired", "submit", "submitted", "finish"],
        "{hist:?}"
    );
    h.finish().await;
    Ok(())
}

/// Property: stale epoch writer is fenced.
pub async fn stale_epoch_writer_is_fenced<H: StoreHarness>(h: H) -> R {
    let s = h.store().await?;
    let s2 = h.store().await?;
    create(&s, "fence").await?;
    let old = acquire(&s, "fence", "old", Duration::ZERO).await?;
    s.record_intent(
        &old,
        &submission("fence", 1),
        None,
        None,
        &entry(old.epoch, Some(1), "submit", "g1"),
    )
    .await?;
    let new = acquire(&s2, "fence", "new", LONG).await?;
    ensure!(new.epoch == Epoch(old.epoch.0 + 1));

    let before = s.get_run(&key("fence")).await?.context("run")?;
    let hist_before = s.history(&key("fence")).await?;
    let subs_before = s.submissions(&key("fence")).await?;
    let e = |d: &str| entry(old.epoch, Some(1), d, "stale writer");
    lease_lost(
        s.record_intent(&old, &submission("fence", 2), None, None, &e("submit"))
            .await,
        "intent",
    )?;
    lease_lost(
        s.record_submitted(&old, Generation(1), &ext("zombie"), &e("submitted"))
            .await,
        "submitted",
    )?;
    let failed = Outcome::Cancelled {
        message: "stale".into(),
    };
    lease_lost(
        s.record_finished(&old, &failed, &e("finish")).await,
        "finished",
    )?;
    lease_lost(s.append_history(&old, &e("note")).await, "history")?;
    lease_lost(s.renew(&old, LONG).await, "renew")?;
    lease_lost(s.release(&old).await, "release")?;
    // Same epoch, other owner: also fenced (the owner is part of the fence).
    let mut forged = new.clone();
    forged.owner = owner("old");
    lease_lost(s.release(&forged).await, "forged owner")?;

    let after = s.get_run(&key("fence")).await?.context("run")?;
    ensure!(
        before == after,
        "stale writes changed the run:\n{before:?}\n{after:?}"
    );
    ensure!(
        hist_before == s.history(&key("fence")).await?,
        "stale writes added history"
    );
    ensure!(
        subs_before == s.submissions(&key("fence")).await?,
        "stale writes touched submissions"
    );
    // The new owner is unaffected.
    s2.record_submitted(
        &new,
        Generation(1),
        &ext("real"),
        &entry(new.epoch, Some(1), "submitted", "ok"),
    )
    .await?;
    h.finish().await;
    Ok(())
}

/// Property: takeover after expiry bumps epoch.
pub async fn takeover_after_expiry_bumps_epoch<H: StoreHarness>(h: H) -> R {
    let s = h.store().await?;
    create(&s, "take").await?;
    let a = acquire(&s, "take", "host-a:1:aa", Duration::ZERO).await?;
    let b = acquire(&s, "take", "host-b:2:bb", LONG).await?;
    ensure!(a.epoch == Epoch(1) && b.epoch == Epoch(2));
    let hist = s.history(&key("take")).await?;
    let last = hist.last().context("history")?;
    ensure!(
        last.decision == "lease-acquired" && last.epoch == Epoch(2),
        "{last:?}"
    );
    ensure!(
        last.reason.contains("took over from host-a:1:aa"),
        "{}",
        last.reason
    );
    ensure!(
        last.reason.contains("lease expired") && last.reason.contains("host-b:2:bb"),
        "{}",
        last.reason
    );
    // A live lease is not taken.
    match s.acquire(&key("take"), &owner("host-c"), LONG).await? {
        Acquire::Held(r) => {
            ensure!(r.epoch == Epoch(2) && r.owner == Some(owner("host-b:2:bb")) && r.lease_alive)
        }
        Acquire::Acquired(..) => anyhow::bail!("took a live lease"),
    }
    match s.acquire(&key("nope"), &owner("x"), LONG).await {
        Err(StoreError::NotFound { .. }) => {}
        other => anyhow::bail!("acquire of an absent run: {other:?}"),
    }
    h.finish().await;
    Ok(())
}

/// Property: concurrent claims never double claim.
pub async fn concurrent_claims_never_double_claim<H: StoreHarness>(h: H) -> R {
    const RUNS: usize = 200;
    const CLAIMERS: usize = 8;
    let setup = h.store().await?;
    for i in 0..RUNS {
        setup
            .create_run(&new_run(&format!("c-{i:03}"), i % 2 == 0))
            .await?;
    }
    // Four instances (processes), two claimers each.
    let mut stores = Vec::new();
    for _ in 0..CLAIMERS / 2 {
        stores.push(h.store().await?);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CLAIMERS {
        let s = Arc::clone(&stores[c % stores.len()]);
        tasks.spawn(async move {
            let me = owner(&format!("claimer-{c}"));
            let mut got = Vec::new();
            loop {
                let batch = s
                    .claim(&me, LONG, 7, &tether_core::store::ClaimFilter::default())
                    .await?;
                if batch.is_empty() {
                    return Ok::<_, StoreError>(got);
                }
                for (lease, rec) in batch {
                    assert_eq!(rec.owner.as_ref(), Some(&me));
                    got.push(lease);
                }
            }
        });
    }
    let mut seen: HashMap<String, String> = HashMap::new();
    while let Some(res) = tasks.join_next().await {
        for lease in res.context("claimer panicked")?? {
            ensure!(lease.epoch == Epoch(1), "{lease:?}");
            if let Some(prev) = seen.insert(lease.key.to_string(), lease.owner.0.clone()) {
                anyhow::bail!("{} claimed twice: by {prev} and {}", lease.key, lease.owner);
            }
        }
    }
    ensure!(seen.len() == RUNS, "claimed {} of {RUNS}", seen.len());
    h.finish().await;
    Ok(())
}

/// Property: claim order and eligibility.
pub async fn claim_order_and_eligibility<H: StoreHarness>(h: H) -> R {
    let s = h.store().await?;
    s.create_run(&new_run("old-direct", false)).await?;
    s.create_run(&new_run("live", true)).await?;
    s.create_run(&new_run("expired", true)).await?;
    s.create_run(&new_run("done", true)).await?;
    s.create_run(&new_run("new-queued", true)).await?;
    acquire(&s, "live", "other", LONG).await?;
    let x = acquire(&s, "expired", "crashed-worker", Duration::ZERO).await?;
    let d = acquire(&s, "done", "other", LONG).await?;
    s.record_finished(
        &d,
        &Outcome::Cancelled {
            message: "c".into(),
        },
        &entry(d.epoch, None, "finish", ""),
    )
    .await?;

    let got = s
        .claim(
            &owner("w"),
            LONG,
            10,
            &tether_core::store::ClaimFilter::default(),
        )
        .await?;
    let keys: Vec<&str> = got.iter().map(|(l, _)| l.key.as_str()).collect();
    // Queued first (oldest first among them), then the rest; never live or finished runs.
    ensure!(keys == ["expired", "new-queued", "old-direct"], "{keys:?}");
    let (lease, rec) = &got[0];
    ensure!(lease.epoch == Epoch(x.epoch.0 + 1) && rec.epoch == lease.epoch && rec.lease_alive);
    let last = s.history(&key("expired")).await?.pop().context("history")?;
    ensure!(
        last.decision == "claimed" && last.reason.contains("took over from crashed-worker"),
        "{last:?}"
    );
    let last = s
        .history(&key("new-queued"))
        .await?
        .pop()
        .context("history")?;
    ensure!(
        last.decision == "claimed" && last.epoch == Epoch(1),
        "{last:?}"
    );
    ensure!(s
        .claim(
            &owner("w2"),
            LONG,
            10,
            &tether_core::store::ClaimFilter::default()
        )
        .await?
        .is_empty());
    ensure!(s
        .claim(
            &owner("w2"),
            LONG,
            0,
            &tether_core::store::ClaimFilter::default()
        )
        .await?
        .is_empty());
    h.finish().await;
    Ok(())
}

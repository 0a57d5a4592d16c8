//! The store conformance suite: every property is one generic `async fn` over the harness,
//! run once against SQLite (`sqlite::*`) and once against PostgreSQL (`postgres::*`).
//!
//! Expired leases are made with a zero TTL (expiry = now, and "expired" means `<= now`), so
//! take-over tests need no sleeps.
#[macro_use]
mod common;
#[path = "conformance_props/history_kinds.rs"]
mod history_kinds;
#[path = "conformance_props/rerun.rs"]
mod rerun;

use std::{collections::HashMap, sync::Arc, time::Duration};

use anyhow::{ensure, Context};
use common::*;
use history_kinds::history_rows_written_as_text_read_back_as_kinds;
use rerun::rerun_makes_a_fresh_instance_that_continues_the_generations;
use tether_core::{
    ids::{Epoch, Generation},
    journal::{Outcome, Phase, Shape, Submission},
    store::{Acquire, Created, StoreError},
};

type R = anyhow::Result<()>;

fn lease_lost<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) -> R {
    match r {
        Err(StoreError::LeaseLost { .. }) => Ok(()),
        other => anyhow::bail!("{what}: expected LeaseLost, got {other:?}"),
    }
}

async fn create_is_idempotent(h: Harness) -> R {
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

async fn full_lifecycle(h: Harness) -> R {
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

async fn stale_epoch_writer_is_fenced(h: Harness) -> R {
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

async fn takeover_after_expiry_bumps_epoch(h: Harness) -> R {
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

async fn concurrent_claims_never_double_claim(h: Harness) -> R {
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

async fn claim_order_and_eligibility(h: Harness) -> R {
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

async fn renew_all_extends_only_what_is_still_held(h: Harness) -> R {
    let s = h.store().await?;
    for k in ["r1", "r2", "r3", "r4"] {
        create(&s, k).await?;
    }
    let w = "worker-1";
    let l1 = acquire(&s, "r1", w, Duration::ZERO).await?;
    acquire(&s, "r2", w, Duration::from_secs(1)).await?;
    let l3 = acquire(&s, "r3", w, LONG).await?;
    let l4 = acquire(&s, "r4", w, Duration::ZERO).await?;
    s.record_finished(
        &l3,
        &Outcome::Cancelled {
            message: "x".into(),
        },
        &entry(l3.epoch, None, "finish", ""),
    )
    .await?;
    let taken = acquire(&s, "r4", "thief", LONG).await?; // r4 expired and was taken over
    ensure!(taken.epoch.0 == l4.epoch.0 + 1);

    ensure!(s.request_cancel(&key("r2")).await?);
    let mut held: Vec<_> = s
        .renew_all(&owner(w), LONG)
        .await?
        .into_iter()
        .map(|r| (r.key, r.epoch, r.cancel_requested))
        .collect();
    held.sort();
    ensure!(
        held == [(key("r1"), l1.epoch, false), (key("r2"), Epoch(1), true)],
        "{held:?}"
    );
    // r1 was expired but not taken: renewing revives it, and now it is alive again.
    let r1 = s.get_run(&key("r1")).await?.context("r1")?;
    ensure!(r1.lease_alive && r1.epoch == l1.epoch);
    ensure!(s.renew_all(&owner("nobody"), LONG).await?.is_empty());
    h.finish().await;
    Ok(())
}

async fn release_lets_another_acquire_at_once(h: Harness) -> R {
    let s = h.store().await?;
    create(&s, "rel").await?;
    let a = acquire(&s, "rel", "a", LONG).await?;
    s.release(&a).await?;
    let r = s.get_run(&key("rel")).await?.context("run")?;
    ensure!(
        r.owner.is_none()
            && r.lease_expires_at_ms.is_none()
            && r.epoch == a.epoch
            && !r.lease_alive
    );
    let b = acquire(&s, "rel", "b", LONG).await?;
    ensure!(b.epoch == Epoch(a.epoch.0 + 1));
    let hist: Vec<(String, i64)> = s
        .history(&key("rel"))
        .await?
        .into_iter()
        .map(|e| (e.decision.into(), e.epoch.0))
        .collect();
    ensure!(
        hist == [
            ("lease-acquired".into(), 1),
            ("released".into(), 1),
            ("lease-acquired".into(), 2)
        ],
        "{hist:?}"
    );
    lease_lost(s.release(&a).await, "double release with the old epoch")?;
    h.finish().await;
    Ok(())
}

async fn cancel_flag(h: Harness) -> R {
    let s = h.store().await?;
    create(&s, "can").await?;
    ensure!(
        !s.get_run(&key("can"))
            .await?
            .context("run")?
            .journal
            .cancel_requested
    );
    ensure!(s.request_cancel(&key("can")).await?);
    ensure!(s.request_cancel(&key("can")).await?, "asking twice is fine");
    ensure!(
        s.get_run(&key("can"))
            .await?
            .context("run")?
            .journal
            .cancel_requested
    );
    let l = acquire(&s, "can", "w", LONG).await?;
    let out = Outcome::Cancelled {
        message: "cancelled by request".into(),
    };
    s.record_finished(&l, &out, &entry(l.epoch, None, "finish", "cancel"))
        .await?;
    ensure!(!s.request_cancel(&key("can")).await?, "finished run: false");
    match s.request_cancel(&key("absent")).await {
        Err(StoreError::NotFound { .. }) => {}
        other => anyhow::bail!("cancel of an absent run: {other:?}"),
    }
    h.finish().await;
    Ok(())
}

async fn history_order_and_timestamps(h: Harness) -> R {
    let s = h.store().await?;
    create(&s, "hist").await?;
    let l = acquire(&s, "hist", "w", LONG).await?;
    for i in 0..20 {
        s.append_history(
            &l,
            &entry(l.epoch, Some(1), &format!("d{i}"), &format!("reason {i}")),
        )
        .await?;
    }
    let mut given = entry(l.epoch, None, "explicit", "time given");
    given.at_ms = 42;
    s.append_history(&l, &given).await?;
    let hist = s.history(&key("hist")).await?;
    ensure!(hist.len() == 22);
    for (i, e) in hist[1..21].iter().enumerate() {
        ensure!(
            e.decision == format!("d{i}") && e.reason == format!("reason {i}"),
            "{e:?}"
        );
        ensure!(
            e.at_ms > 1_600_000_000_000 && e.generation == Some(Generation(1)),
            "{e:?}"
        );
    }
    ensure!(hist[21] == given);
    ensure!(s.history(&key("other")).await?.is_empty());
    h.finish().await;
    Ok(())
}

async fn external_id_zero_is_an_id(h: Harness) -> R {
    let s = h.store().await?;
    create(&s, "zero").await?;
    let l = acquire(&s, "zero", "w", LONG).await?;
    s.record_intent(
        &l,
        &submission("zero", 1),
        None,
        None,
        &entry(l.epoch, Some(1), "submit", ""),
    )
    .await?;
    s.record_submitted(
        &l,
        Generation(1),
        &ext("0"),
        &entry(l.epoch, Some(1), "submitted", ""),
    )
    .await?;
    let r = s.get_run(&key("zero")).await?.context("run")?;
    ensure!(
        r.current() == (Some(Generation(1)), Some(&ext("0"))),
        "{:?}",
        r.journal.phase
    );
    ensure!(s.submissions(&key("zero")).await?[0].external_id == Some(ext("0")));
    // An empty id is also kept as an id, not turned into "absent".
    create(&s, "empty-id").await?;
    let l = acquire(&s, "empty-id", "w", LONG).await?;
    s.record_intent(
        &l,
        &submission("empty-id", 1),
        None,
        None,
        &entry(l.epoch, Some(1), "submit", ""),
    )
    .await?;
    s.record_submitted(
        &l,
        Generation(1),
        &ext(""),
        &entry(l.epoch, Some(1), "submitted", ""),
    )
    .await?;
    let r = s.get_run(&key("empty-id")).await?.context("run")?;
    ensure!(r.current().1 == Some(&ext("")));
    h.finish().await;
    Ok(())
}

async fn generations_and_reintent(h: Harness) -> R {
    let s = h.store().await?;
    create(&s, "gen").await?;
    let l = acquire(&s, "gen", "w", LONG).await?;
    // Submitting an id before any intent, or for another generation, is refused and writes nothing.
    match s
        .record_submitted(
            &l,
            Generation(1),
            &ext("x"),
            &entry(l.epoch, Some(1), "submitted", ""),
        )
        .await
    {
        Err(StoreError::Query { source, .. }) => {
            ensure!(source.is::<tether_store::StaleGeneration>(), "{source}")
        }
        other => anyhow::bail!("submitted without intent: {other:?}"),
    }
    s.record_intent(
        &l,
        &submission("gen", 1),
        None,
        None,
        &entry(l.epoch, Some(1), "submit", ""),
    )
    .await?;
    // A crash before submitting: the same generation is intended again, with the same tag.
    s.record_intent(
        &l,
        &submission("gen", 1),
        None,
        None,
        &entry(l.epoch, Some(1), "submit", "again"),
    )
    .await?;
    s.record_submitted(
        &l,
        Generation(1),
        &ext("g1"),
        &entry(l.epoch, Some(1), "submitted", ""),
    )
    .await?;
    match s
        .record_submitted(
            &l,
            Generation(2),
            &ext("x"),
            &entry(l.epoch, Some(2), "submitted", ""),
        )
        .await
    {
        Err(StoreError::Query { source, .. }) => {
            ensure!(source.is::<tether_store::StaleGeneration>())
        }
        other => anyhow::bail!("submitted for a future generation: {other:?}"),
    }
    let recovery = Submission {
        shape: Shape::Recovery,
        ..submission("gen", 2)
    };
    let oom = Outcome::Failed {
        class: tether_core::observe::FailureClass::Oom,
        message: "executor lost".into(),
    };
    s.record_intent(
        &l,
        &recovery,
        Some(&oom),
        None,
        &entry(l.epoch, Some(2), "resubmit", "oom"),
    )
    .await?;
    let r = s.get_run(&key("gen")).await?.context("run")?;
    ensure!(
        r.journal.phase
            == Phase::Intent {
                submission: recovery.clone()
            },
        "{:?}",
        r.journal.phase
    );
    s.record_submitted(
        &l,
        Generation(2),
        &ext("g2"),
        &entry(l.epoch, Some(2), "submitted", ""),
    )
    .await?;
    let subs = s.submissions(&key("gen")).await?;
    ensure!(subs.len() == 2);
    ensure!(subs[0].external_id == Some(ext("g1")) && subs[0].submission.shape == Shape::Normal);
    ensure!(
        subs[0].outcome == Some(oom.clone()),
        "{:?}",
        subs[0].outcome
    );
    ensure!(subs[1].outcome.is_none());
    ensure!(subs[1].external_id == Some(ext("g2")) && subs[1].submission == recovery);
    let decisions: Vec<String> = s
        .history(&key("gen"))
        .await?
        .into_iter()
        .map(|e| e.decision.into())
        .collect();
    ensure!(
        decisions
            == [
                "lease-acquired",
                "submit",
                "submit",
                "submitted",
                "resubmit",
                "submitted"
            ],
        "{decisions:?}"
    );
    h.finish().await;
    Ok(())
}

async fn list_runs_newest_first(h: Harness) -> R {
    let s = h.store().await?;
    for k in ["l1", "l2", "l3", "l4", "l5"] {
        create(&s, k).await?;
    }
    let keys: Vec<String> = s
        .list_runs()
        .await?
        .into_iter()
        .map(|r| r.key.to_string())
        .collect();
    ensure!(keys == ["l5", "l4", "l3", "l2", "l1"], "{keys:?}");
    // A second instance sees the same data (shared database, not per-connection state).
    let other = h.store().await?;
    ensure!(other.list_runs().await?.len() == 5);
    h.finish().await;
    Ok(())
}

async fn failed_outcome_round_trips(h: Harness) -> R {
    let s = h.store().await?;
    create(&s, "fail").await?;
    let l = acquire(&s, "fail", "w", LONG).await?;
    let out = Outcome::Failed {
        class: tether_core::observe::FailureClass::Oom,
        message: "executor lost: \"OOM\" ✗\n".into(),
    };
    s.record_finished(&l, &out, &entry(l.epoch, None, "finish", "gave up"))
        .await?;
    let r = h
        .store()
        .await?
        .get_run(&key("fail"))
        .await?
        .context("run")?;
    ensure!(r.journal.phase == Phase::Finished { outcome: out });
    h.finish().await;
    Ok(())
}

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

async fn listings_carry_no_spec_bodies(h: Harness) -> R {
    let s = h.store().await?;
    create(&s, "big").await?;
    let listed = s.list_runs().await?;
    ensure!(listed.len() == 1 && listed[0].spec.is_empty(), "{listed:?}");
    let one = s.get_run(&key("big")).await?.context("run")?;
    ensure!(one.spec.contains("echo"), "get_run still has the spec");
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
    ensure!((m.before, m.after) == (0, 4), "{m:?}");
    let m = tether_store::migrate(h.location(), &Default::default()).await?;
    ensure!((m.before, m.after) == (4, 4), "{m:?}");
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
    create_is_idempotent,
    full_lifecycle,
    stale_epoch_writer_is_fenced,
    takeover_after_expiry_bumps_epoch,
    concurrent_claims_never_double_claim,
    claim_order_and_eligibility,
    renew_all_extends_only_what_is_still_held,
    release_lets_another_acquire_at_once,
    cancel_flag,
    history_order_and_timestamps,
    external_id_zero_is_an_id,
    generations_and_reintent,
    list_runs_newest_first,
    failed_outcome_round_trips,
    undecodable_rows_are_quarantined_not_fatal,
    listings_carry_no_spec_bodies,
    read_access_creates_nothing_and_migrate_reports_versions,
    a_store_for_newer_readers_is_refused,
    rerun_makes_a_fresh_instance_that_continues_the_generations,
    history_rows_written_as_text_read_back_as_kinds,
);

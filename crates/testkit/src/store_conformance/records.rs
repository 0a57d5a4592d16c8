//! Cancel flags, history, ids, generations, listings (see the [module docs](super)).
use std::time::Duration;

use anyhow::{ensure, Context};
use tether_core::{
    ids::{Epoch, Generation},
    journal::{Outcome, Phase, Shape, Submission},
    store::StoreError,
};

use super::{helpers::*, lease_lost, StoreHarness, R};

/// Property: renew all extends only what is still held.
pub async fn renew_all_extends_only_what_is_still_held<H: StoreHarness>(h: H) -> R {
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

/// Property: release lets another acquire at once.
pub async fn release_lets_another_acquire_at_once<H: StoreHarness>(h: H) -> R {
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

/// Property: cancel flag.
pub async fn cancel_flag<H: StoreHarness>(h: H) -> R {
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

/// Property: history order and timestamps.
pub async fn history_order_and_timestamps<H: StoreHarness>(h: H) -> R {
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

/// Property: external id zero is an id.
pub async fn external_id_zero_is_an_id<H: StoreHarness>(h: H) -> R {
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

/// Property: generations and reintent.
pub async fn generations_and_reintent<H: StoreHarness>(h: H) -> R {
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
            ensure!(h.is_stale_generation(&*source), "{source}")
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
            ensure!(h.is_stale_generation(&*source))
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

/// Property: list runs newest first.
pub async fn list_runs_newest_first<H: StoreHarness>(h: H) -> R {
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

/// Property: failed outcome round trips.
pub async fn failed_outcome_round_trips<H: StoreHarness>(h: H) -> R {
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

/// Property: listings carry no spec bodies.
pub async fn listings_carry_no_spec_bodies<H: StoreHarness>(h: H) -> R {
    let s = h.store().await?;
    create(&s, "big").await?;
    let listed = s.list_runs().await?;
    ensure!(listed.len() == 1 && listed[0].spec.is_empty(), "{listed:?}");
    let one = s.get_run(&key("big")).await?.context("run")?;
    ensure!(one.spec.contains("echo"), "get_run still has the spec");
    h.finish().await;
    Ok(())
}

//! A worker's renewal at scale (issue 15): `renew_all` over more rows than one statement of the
//! PostgreSQL store renews (it works in chunks), and alongside the runs' own fenced writes
//! (PostgreSQL skips the rows they lock; the next beat renews them). What a caller sees must
//! not change: every lease still held is answered, none that was lost is extended.
use std::{collections::HashMap, time::Duration};

use anyhow::{ensure, Context};
use tether_core::{
    ids::{Epoch, RunKey},
    journal::Outcome,
    store::ClaimFilter,
};

use super::{helpers::*, StoreHarness, R};

/// More than two chunks of the PostgreSQL store (`RENEW_CHUNK_ROWS` = 500).
const MANY: usize = 1_100;

/// Property: `renew_all` over 1,100 leases (several chunks) answers and renews every lease the
/// owner still holds, in whatever chunk it falls, and none it lost or finished.
pub async fn renew_all_renews_past_one_chunk_and_only_what_is_held<H: StoreHarness>(h: H) -> R {
    let s = h.store().await?;
    let name = |i: usize| format!("many-{i:04}");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..MANY {
        let s = s.clone();
        let k = name(i);
        tasks.spawn(async move { create(&s, &k).await.map(|_| ()) });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("create task")??;
    }
    let w = owner("worker-1");
    // Zero TTL: every lease is expired (but not taken) when the renewal comes.
    let claimed = s
        .claim(&w, Duration::ZERO, MANY, &ClaimFilter::default())
        .await?;
    ensure!(claimed.len() == MANY, "claimed {}", claimed.len());
    let mut expect: HashMap<RunKey, Epoch> = claimed
        .iter()
        .map(|(l, _)| (l.key.clone(), l.epoch))
        .collect();
    // Taken over in the first, middle and last chunk; one finished.
    for i in [0, 550, MANY - 1] {
        acquire(&s, &name(i), "thief", LONG).await?;
        expect.remove(&key(&name(i)));
    }
    let done = &claimed
        .iter()
        .find(|(l, _)| l.key == key(&name(700)))
        .context("run 700")?
        .0;
    s.record_finished(
        done,
        &Outcome::Cancelled {
            message: "x".into(),
        },
        &entry(done.epoch, None, "finish", ""),
    )
    .await?;
    expect.remove(&done.key);

    let renewed = s.renew_all(&w, LONG).await?;
    ensure!(
        renewed.len() == expect.len(),
        "answered {} leases, {} held",
        renewed.len(),
        expect.len()
    );
    let got: HashMap<RunKey, Epoch> = renewed.into_iter().map(|r| (r.key, r.epoch)).collect();
    ensure!(got == expect, "answer differs from the leases held");
    for i in (0..MANY).step_by(37).chain([1, 549, 551, MANY - 2]) {
        let run = s.get_run(&key(&name(i))).await?.context("run")?;
        let mine = expect.contains_key(&run.key);
        ensure!(
            run.lease_alive == (mine || run.owner == Some(owner("thief"))),
            "{}: alive {} (held by {:?})",
            run.key,
            run.lease_alive,
            run.owner
        );
    }
    h.finish().await;
    Ok(())
}

/// Property: renewals running alongside the runs' own fenced writes complete, answer every
/// lease held, and fail no write; once the writes are done, one renewal renews every lease.
pub async fn renew_all_completes_alongside_the_runs_own_writes<H: StoreHarness>(h: H) -> R {
    let s = h.store().await?;
    const N: usize = 40;
    for i in 0..N {
        create(&s, &format!("busy-{i:02}")).await?;
    }
    let w = owner("worker-1");
    let claimed = s
        .claim(&w, Duration::ZERO, N, &ClaimFilter::default())
        .await?;
    ensure!(claimed.len() == N, "claimed {}", claimed.len());
    let expect: HashMap<RunKey, Epoch> = claimed
        .iter()
        .map(|(l, _)| (l.key.clone(), l.epoch))
        .collect();
    let mut writers = tokio::task::JoinSet::new();
    for (lease, _) in claimed {
        let s = s.clone();
        writers.spawn(async move {
            for n in 0..10 {
                s.append_history(&lease, &entry(lease.epoch, None, "note", &format!("{n}")))
                    .await?;
            }
            anyhow::Ok(())
        });
    }
    for beat in 0..3 {
        let got: HashMap<RunKey, Epoch> = s
            .renew_all(&w, LONG)
            .await
            .with_context(|| format!("renewal {beat} during the writes"))?
            .into_iter()
            .map(|r| (r.key, r.epoch))
            .collect();
        ensure!(
            got == expect,
            "renewal {beat}: answer differs from the leases held"
        );
    }
    while let Some(done) = writers.join_next().await {
        done.context("writer task")?.context("a run's own write")?;
    }
    ensure!(s.renew_all(&w, LONG).await?.len() == N);
    for k in expect.keys() {
        let run = s.get_run(k).await?.context("run")?;
        ensure!(run.lease_alive, "{k} not renewed after the writes");
    }
    h.finish().await;
    Ok(())
}

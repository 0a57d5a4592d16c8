//! Properties of [`Store::list_summaries`](tether_core::Store::list_summaries): filters, order,
//! keyset paging stable while runs are inserted, summaries that match their records.
use std::{collections::HashSet, sync::Arc, time::Duration};

use anyhow::{ensure, Context};
use tether_core::{
    journal::Outcome,
    observe::FailureClass,
    store::{Created, RunQuery, RunState, RunSummary},
    Store,
};

use super::{helpers::*, StoreHarness, R};

async fn create_kind(s: &Arc<dyn Store>, k: &str, kind: &str) -> anyhow::Result<()> {
    let mut new = new_run(k, false);
    new.kind = kind.into();
    match s.create_run(&new).await? {
        Created::New(_) => Ok(()),
        Created::Existing(_) => anyhow::bail!("run {k} already existed"),
    }
}

async fn finish(s: &Arc<dyn Store>, k: &str, out: Outcome) -> R {
    let l = acquire(s, k, "w", LONG).await?;
    s.record_intent(
        &l,
        &submission(k, 1),
        None,
        None,
        &entry(l.epoch, Some(1), "submit", "go"),
    )
    .await?;
    s.record_finished(&l, &out, &entry(l.epoch, None, "finish", "done"))
        .await?;
    Ok(())
}

fn keys(runs: &[RunSummary]) -> Vec<String> {
    runs.iter().map(|r| r.key.to_string()).collect()
}

async fn all(s: &Arc<dyn Store>, q: RunQuery) -> anyhow::Result<Vec<String>> {
    let page = s.list_summaries(&q).await?;
    ensure!(page.next.is_none(), "one page expected without a limit");
    Ok(keys(&page.runs))
}

/// Property: `list_summaries` filters by owner (the lease holder, exactly; a released lease
/// has none), ANDed with the other filters; a run with no holder matches no owner filter.
pub async fn summaries_filter_by_owner<H: StoreHarness>(h: H) -> R {
    let s = h.store().await?;
    create_kind(&s, "never", "local").await?;
    create_kind(&s, "a1", "local").await?;
    create_kind(&s, "a2", "spark").await?;
    create_kind(&s, "b1", "local").await?;
    create_kind(&s, "c1", "local").await?;
    acquire(&s, "a1", "worker-a", LONG).await?;
    acquire(&s, "a2", "worker-a", LONG).await?;
    acquire(&s, "b1", "worker-b", LONG).await?;
    let c = acquire(&s, "c1", "worker-c", LONG).await?;
    s.release(&c).await?;

    let mut a = all(&s, RunQuery::new().owners(["worker-a"])).await?;
    a.sort();
    ensure!(a == ["a1", "a2"], "owner worker-a: {a:?}");
    let mut both = all(&s, RunQuery::new().owners(["worker-a", "worker-b"])).await?;
    both.sort();
    ensure!(both == ["a1", "a2", "b1"], "owners a and b: {both:?}");
    let a_spark = all(&s, RunQuery::new().owners(["worker-a"]).kinds(["spark"])).await?;
    ensure!(a_spark == ["a2"], "owner a, kind spark: {a_spark:?}");
    let released = all(&s, RunQuery::new().owners(["worker-c"])).await?;
    ensure!(released.is_empty(), "released lease matched: {released:?}");
    // Exact match: a prefix of an owner id is not that owner.
    let prefix = all(&s, RunQuery::new().owners(["worker"])).await?;
    ensure!(prefix.is_empty(), "prefix matched: {prefix:?}");
    let everything = all(&s, RunQuery::new()).await?;
    ensure!(everything.len() == 5, "no owner filter: {everything:?}");
    Ok(())
}

/// Property: `list_summaries` filters by state, kind and change time (AND), newest first.
pub async fn summaries_filter_by_state_kind_and_since<H: StoreHarness>(h: H) -> R {
    let s = h.store().await?;
    create_kind(&s, "q", "local").await?;
    create_kind(&s, "r", "spark").await?;
    let l = acquire(&s, "r", "w", LONG).await?;
    s.record_intent(
        &l,
        &submission("r", 1),
        None,
        None,
        &entry(l.epoch, Some(1), "submit", "go"),
    )
    .await?;
    s.record_submitted(
        &l,
        submission("r", 1).generation,
        &ext("app-7"),
        &entry(l.epoch, Some(1), "submitted", "id"),
    )
    .await?;
    create_kind(&s, "ok", "local").await?;
    finish(
        &s,
        "ok",
        Outcome::Succeeded {
            result: serde_json::json!({}),
        },
    )
    .await?;
    create_kind(&s, "bad", "spark").await?;
    let failed = Outcome::Failed {
        class: FailureClass::Oom,
        message: "m".into(),
    };
    finish(&s, "bad", failed).await?;
    create_kind(&s, "stop", "yarn").await?;
    finish(
        &s,
        "stop",
        Outcome::Cancelled {
            message: "asked".into(),
        },
    )
    .await?;

    let everything = all(&s, RunQuery::new()).await?;
    ensure!(everything.len() == 5, "{everything:?}");
    for (st, want) in [
        (RunState::Queued, "q"),
        (RunState::Running, "r"),
        (RunState::Succeeded, "ok"),
        (RunState::Failed, "bad"),
        (RunState::Cancelled, "stop"),
    ] {
        let got = all(&s, RunQuery::new().states([st])).await?;
        ensure!(got == [want], "state {st}: {got:?}");
    }
    let mut two = all(
        &s,
        RunQuery::new().states([RunState::Failed, RunState::Queued]),
    )
    .await?;
    two.sort();
    ensure!(two == ["bad", "q"], "two states: {two:?}");
    let mut spark = all(&s, RunQuery::new().kinds(["spark"])).await?;
    spark.sort();
    ensure!(spark == ["bad", "r"], "kind spark: {spark:?}");
    let both = all(
        &s,
        RunQuery::new().kinds(["spark"]).states([RunState::Running]),
    )
    .await?;
    ensure!(both == ["r"], "kind AND state: {both:?}");
    let none = all(&s, RunQuery::new().kinds(["nope"])).await?;
    ensure!(none.is_empty(), "unknown kind: {none:?}");

    // Newest first by last change; `since` keeps what changed at or after it.
    let page = s.list_summaries(&RunQuery::new()).await?;
    let times: Vec<i64> = page.runs.iter().map(|r| r.updated_at_ms).collect();
    ensure!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "not newest first: {times:?}"
    );
    let newest = times[0];
    let since = all(&s, RunQuery::new().since_ms(Some(newest))).await?;
    let at_newest = times.iter().filter(|t| **t == newest).count();
    ensure!(
        since.len() == at_newest,
        "since {newest}: {since:?} of {times:?}"
    );
    ensure!(all(&s, RunQuery::new().since_ms(Some(newest + 1)))
        .await?
        .is_empty());
    ensure!(
        all(&s, RunQuery::new().since_ms(Some(times[4])))
            .await?
            .len()
            == 5
    );

    // The summary says what the record says, without the spec.
    let r = page
        .runs
        .iter()
        .find(|r| r.key.as_str() == "r")
        .context("run r")?;
    ensure!(r.state == RunState::Running && r.kind == "spark" && r.spec_name == "r.toml");
    ensure!(r.generation == Some(submission("r", 1).generation), "{r:?}");
    ensure!(r.external_id == Some(ext("app-7")), "{r:?}");
    ensure!(
        r.owner == Some(owner("w")) && r.lease_alive && r.epoch == l.epoch,
        "{r:?}"
    );
    ensure!(
        r.lease_expires_at_ms.is_some_and(|t| t > r.updated_at_ms),
        "{r:?}"
    );
    let bad = page
        .runs
        .iter()
        .find(|r| r.key.as_str() == "bad")
        .context("run bad")?;
    ensure!(matches!(
        bad.outcome(),
        Some(Outcome::Failed {
            class: FailureClass::Oom,
            ..
        })
    ));
    ensure!(
        bad.external_id.is_none() && bad.generation.is_some(),
        "{bad:?}"
    );
    h.finish().await;
    Ok(())
}

/// Property: pages follow each other by cursor without a gap or a duplicate, and runs created
/// while a client pages (newer than every cursor) do not shift the later pages.
pub async fn summary_pages_are_stable_while_inserting<H: StoreHarness>(h: H) -> R {
    let s = h.store().await?;
    for k in ["p1", "p2", "p3", "p4", "p5", "p6", "p7"] {
        create(&s, k).await?;
    }
    let before = all(&s, RunQuery::new()).await?;
    ensure!(before.len() == 7);
    let mut seen = Vec::new();
    let mut q = RunQuery::new().limit(3);
    let mut pages = 0;
    loop {
        let page = s.list_summaries(&q).await?;
        ensure!(
            page.runs.len() <= 3,
            "page too long: {:?}",
            keys(&page.runs)
        );
        seen.extend(keys(&page.runs));
        pages += 1;
        // Runs created between pages, a little later than everything listed so far; keys that
        // sort before and after the ones listed.
        tokio::time::sleep(Duration::from_millis(3)).await;
        create(&s, &format!("a{pages}")).await?;
        create(&s, &format!("z{pages}")).await?;
        match page.next {
            // The cursor survives its text (clients pass it back as a string).
            Some(c) => q = q.after(Some(c.to_string().parse()?)),
            None => break,
        }
        ensure!(pages < 10, "paging does not end");
    }
    ensure!(seen == before, "pages {seen:?} != first listing {before:?}");
    ensure!(pages == 3, "7 runs by 3: {pages} pages");
    let unique: HashSet<_> = seen.iter().collect();
    ensure!(unique.len() == 7);
    // A fresh listing sees the new runs first.
    let fresh = s.list_summaries(&RunQuery::new().limit(2)).await?;
    ensure!(
        fresh
            .runs
            .iter()
            .all(|r| !before.contains(&r.key.to_string())),
        "{fresh:?}"
    );
    ensure!(fresh.next.is_some());
    h.finish().await;
    Ok(())
}

//! Conformance of the store id and of host-bound placements, on SQLite and PostgreSQL.
#[macro_use]
mod common;

use anyhow::{ensure, Context};
use common::*;
use tether_core::{
    ids::Tag,
    placement::Placement,
    store::{ClaimFilter, NewRun},
};

type R = anyhow::Result<()>;

fn placed(host: &str) -> Placement {
    Placement {
        host: host.into(),
        boot_id: "boot-1".into(),
        location: format!("/var/lib/tether/{host}/jobs"),
    }
}

fn on(host: &str) -> ClaimFilter {
    ClaimFilter {
        host: Some(host.into()),
        kinds: None,
    }
}

/// The id is created with the schema, kept across reopenings, differs between two stores,
/// and reaches every journal (tags derive from it).
async fn store_id_is_stable_and_scopes_journals(h: Harness) -> R {
    let s = h.store().await?;
    let id = s.store_id().clone();
    ensure!(id.as_str().len() == 8, "{id}");
    ensure!(
        h.store().await?.store_id() == &id,
        "reopened store has another id"
    );
    let other = Harness::sqlite()?;
    ensure!(
        other.store().await?.store_id() != &id,
        "two stores share an id"
    );
    other.finish().await;
    let r = create(&s, "sid").await?;
    ensure!(r.journal.store == id);
    let tag = Tag::derive(&r.journal.store, &r.key, tether_core::ids::Generation(1));
    ensure!(tag.as_str().contains(id.as_str()), "{tag}");
    h.finish().await;
    Ok(())
}

/// The first intent places the run; later intents keep the first placement; a placed run is
/// claimed only by a worker of its host, an unplaced one by anyone.
async fn placement_binds_claims_to_the_host(h: Harness) -> R {
    let s = h.store().await?;
    create(&s, "bound").await?;
    create(&s, "free").await?;
    let l = acquire(&s, "bound", "a", SHORT).await?;
    s.record_intent(
        &l,
        &submission("bound", 1),
        None,
        Some(&placed("alpha")),
        &entry(l.epoch, Some(1), "submit", "g1"),
    )
    .await?;
    // A later intent (after a takeover on the same host) does not move the run.
    let r = s.get_run(&key("bound")).await?.context("run")?;
    ensure!(r.placement == Some(placed("alpha")), "{:?}", r.placement);

    tokio::time::sleep(SHORT * 2).await; // let the lease expire
    let got = s.claim(&owner("w-beta"), LONG, 10, &on("beta")).await?;
    let keys: Vec<&str> = got.iter().map(|(l, _)| l.key.as_str()).collect();
    ensure!(keys == ["free"], "beta claimed {keys:?}");
    ensure!(
        s.claim(&owner("w-none"), LONG, 10, &ClaimFilter::default())
            .await?
            .is_empty(),
        "a claimer without a host took a placed run"
    );
    let got = s.claim(&owner("w-alpha"), LONG, 10, &on("alpha")).await?;
    let (l2, rec) = got.into_iter().next().context("alpha claims its run")?;
    ensure!(l2.key.as_str() == "bound" && rec.placement == Some(placed("alpha")));
    s.record_intent(
        &l2,
        &submission("bound", 2),
        None,
        Some(&placed("gamma")),
        &entry(l2.epoch, Some(2), "submit", "g2"),
    )
    .await?;
    let r = s.get_run(&key("bound")).await?.context("run")?;
    ensure!(
        r.placement == Some(placed("alpha")),
        "placement moved: {:?}",
        r.placement
    );
    h.finish().await;
    Ok(())
}

/// `--kinds`: only runs of the listed kinds are claimed.
async fn claim_filters_by_kind(h: Harness) -> R {
    let s = h.store().await?;
    for (k, kind) in [("l", "local"), ("sp", "spark-standalone"), ("x", "other")] {
        s.create_run(&NewRun {
            kind: kind.into(),
            ..new_run(k, true)
        })
        .await?;
    }
    let filter = ClaimFilter {
        host: Some("h".into()),
        kinds: Some(vec!["spark-standalone".into(), "other".into()]),
    };
    let got = s.claim(&owner("w"), LONG, 10, &filter).await?;
    let mut kinds: Vec<String> = got.into_iter().map(|(_, r)| r.kind).collect();
    kinds.sort();
    ensure!(kinds == ["other", "spark-standalone"], "{kinds:?}");
    h.finish().await;
    Ok(())
}

/// `forget_host`: the host's unfinished runs lose placement and lease, with a history entry;
/// other hosts' runs and finished runs are untouched.
async fn forget_host_unplaces_only_that_host(h: Harness) -> R {
    let s = h.store().await?;
    for (k, host) in [("ga", "gone"), ("st", "staying")] {
        create(&s, k).await?;
        let l = acquire(&s, k, "o", LONG).await?;
        s.record_intent(
            &l,
            &submission(k, 1),
            None,
            Some(&placed(host)),
            &entry(l.epoch, Some(1), "submit", "g1"),
        )
        .await?;
    }
    let keys = s.forget_host("gone", "operator: host gone is dead").await?;
    ensure!(keys.len() == 1 && keys[0].as_str() == "ga", "{keys:?}");
    let ga = s.get_run(&key("ga")).await?.context("ga")?;
    ensure!(ga.placement.is_none() && ga.owner.is_none() && !ga.lease_alive);
    let st = s.get_run(&key("st")).await?.context("st")?;
    ensure!(st.placement == Some(placed("staying")) && st.lease_alive);
    let h_ga = s.history(&key("ga")).await?;
    ensure!(
        h_ga.iter()
            .any(|e| e.decision == "host-forgotten"
                && e.reason.contains("operator: host gone is dead")),
        "{h_ga:?}"
    );
    // Anyone may claim it now.
    let got = s.claim(&owner("w"), LONG, 10, &on("elsewhere")).await?;
    ensure!(got.len() == 1 && got[0].0.key.as_str() == "ga");
    h.finish().await;
    Ok(())
}

conformance!(
    store_id_is_stable_and_scopes_journals,
    placement_binds_claims_to_the_host,
    claim_filters_by_kind,
    forget_host_unplaces_only_that_host,
);

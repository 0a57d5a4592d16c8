//! A worker claims only runs of the kinds it can build: a run of a kind unknown to its
//! registry is never claimed (and released again at every tick), so its epoch stays 0 and
//! a worker that knows the kind gets it untouched.
mod common;

use std::time::Duration;

use common::*;
use tether_core::{
    ids::{Epoch, RunKey},
    store::NewRun,
};

#[test]
fn a_worker_never_claims_a_run_of_a_kind_it_cannot_build() {
    never_claims_an_unknown_kind(&Env::new());
}

#[test]
fn a_worker_never_claims_a_run_of_a_kind_it_cannot_build_on_postgres() {
    let db = PgScratch::create();
    never_claims_an_unknown_kind(&Env::with_state(&db.url));
}

fn never_claims_an_unknown_kind(env: &Env) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A run this worker can build: once it is done, the worker has been claiming for a while.
    let spec = env.spec("known.toml", "[job]\nkind = 'local'\ncommand = ['true']\n");
    let out = env.run(&["submit", spec.to_str().unwrap(), "--key", "known"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // A run queued by a binary that knows a kind this one does not.
    let alien = RunKey::new("alien").unwrap();
    rt.block_on(async {
        let store = tether_store::open(&env.state).await.unwrap();
        store
            .create_run(&NewRun {
                key: alien.clone(),
                kind: "yarn".into(),
                spec: "[job]\nkind = \"yarn\"\nqueue = \"etl\"\n".into(),
                spec_name: "alien.toml".into(),
                spec_hash: "alien".into(),
                queued: true,
                base_dir: None,
            })
            .await
            .unwrap();
    });
    let mut worker = env.spawn(&["worker"], &[]);
    assert!(
        wait_until(Duration::from_secs(120), || env
            .status("known")
            .is_some_and(|s| s["phase"]["phase"] == "finished")),
        "the worker did not drive the run it can build"
    );
    // Claims run every 500 ms: several ticks more in which the other run was claimable.
    std::thread::sleep(Duration::from_millis(2000));
    signal(worker.id(), "TERM");
    wait_child(&mut worker, Duration::from_secs(30));
    let record = rt.block_on(async {
        let store = tether_store::open(&env.state).await.unwrap();
        store
            .get_run(&alien)
            .await
            .unwrap()
            .expect("the run is there")
    });
    assert_eq!(record.epoch, Epoch(0), "claimed: {record:?}");
    assert_eq!(record.owner, None);
}

/// `--exit-when-idle` waits only for runs this worker could claim: a run of a kind it does not
/// build (left for another worker) does not keep it running forever.
#[test]
fn exit_when_idle_ignores_runs_the_worker_cannot_claim() {
    let env = Env::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let spec = env.spec("known.toml", "[job]\nkind = 'local'\ncommand = ['true']\n");
    let out = env.run(&["submit", spec.to_str().unwrap(), "--key", "known"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    rt.block_on(async {
        let store = tether_store::open(&env.state).await.unwrap();
        store
            .create_run(&NewRun {
                key: RunKey::new("alien").unwrap(),
                kind: "yarn".into(),
                spec: "[job]\nkind = \"yarn\"\n".into(),
                spec_name: "alien.toml".into(),
                spec_hash: "alien".into(),
                queued: true,
                base_dir: None,
            })
            .await
            .unwrap();
    });
    let mut worker = env.spawn(&["worker", "--exit-when-idle"], &[]);
    let status = wait_child(&mut worker, Duration::from_secs(60));
    assert_eq!(status.code(), Some(0));
    assert_eq!(env.status("known").unwrap()["state"], "succeeded");
    assert_eq!(env.status("alien").unwrap()["epoch"], 0);
}

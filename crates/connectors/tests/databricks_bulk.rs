//! Bulk observation of the databricks connector (issue 15 part 2) against the test kit's fake
//! workspace: `runs/list?active_only=true`, 25 runs a page, judges the active runs; ended,
//! terminating and foreign runs are left to the per-run `runs/get`.
mod databricks_support;

use std::sync::Arc;

use databricks_support::*;
use tether_connectors::registry::{BuildContext, Registry};
use tether_core::{
    connector::{JobRef, NoFence, SubmitRequest},
    ids::{Generation, RunKey, StoreId, Tag},
    journal::{Shape, Submission},
    observe::{ActiveState, JobStatus},
    Connector,
};
use tether_testkit::fakes::databricks::{Fault, Life, Route};

fn submission(i: usize) -> Submission {
    Submission {
        generation: Generation(1),
        tag: Tag::derive(
            &StoreId::new("dbxbulk1").unwrap(),
            &RunKey::new(format!("run-{i}")).unwrap(),
            Generation(1),
        ),
        shape: Shape::Normal,
    }
}

#[tokio::test]
async fn active_runs_are_listed_in_pages_of_25_and_judged_each() {
    set_credentials();
    let fake = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = ca_file(&fake, dir.path());
    let text = spec(fake.url(), &ca, Cred::Pat, "driven.py", "");
    let c: Arc<dyn Connector> = Registry::builtin()
        .build("dbx.toml", &text, &BuildContext::default())
        .unwrap()
        .connector;
    let mut jobs = vec![];
    for i in 0..60 {
        let s = submission(i);
        let req = SubmitRequest::new(
            RunKey::new(format!("run-{i}")).unwrap(),
            s.clone(),
            Arc::new(NoFence),
        );
        let id = c.submit(&req).await.unwrap();
        jobs.push(JobRef {
            external_id: id,
            submission: s,
        });
    }
    // 0..20 pending, 20..40 running, 40..50 terminating, 50..60 ended.
    for (i, j) in jobs.iter().enumerate() {
        let id: u64 = j.external_id.0.parse().unwrap();
        match i {
            20..=39 => fake.set_state(id, Life::Running),
            40..=49 => fake.set_state(id, Life::Terminating),
            50.. => fake.finish(id, "SUCCESS", "", "done"),
            _ => {}
        }
    }
    let bulk = c.bulk_status().expect("databricks offers bulk status");
    let gets = fake.count(Route::Get);
    let answer = bulk.fetch(&jobs.iter().collect::<Vec<_>>()).await.unwrap();
    // 50 active runs: two pages of 25 (and one more would be an empty third page, not asked).
    assert_eq!(fake.count(Route::List), 2);
    for (i, j) in jobs.iter().enumerate() {
        let got = bulk.judge(&answer, j);
        match i {
            0..=19 => assert!(
                matches!(
                    got,
                    Some(JobStatus::Active {
                        state: ActiveState::Queued,
                        ..
                    })
                ),
                "{i}: {got:?}"
            ),
            20..=39 => assert!(
                matches!(
                    got,
                    Some(JobStatus::Active {
                        state: ActiveState::Running,
                        ..
                    })
                ),
                "{i}: {got:?}"
            ),
            _ => assert_eq!(
                got, None,
                "{i}: terminating or ended runs are asked per run"
            ),
        }
    }
    // Another tag under a listed id: its own status words the mismatch.
    let foreign = JobRef {
        external_id: jobs[0].external_id.clone(),
        submission: submission(999),
    };
    assert_eq!(bulk.judge(&answer, &foreign), None);
    assert_eq!(
        fake.count(Route::Get),
        gets,
        "no runs/get for the bulk call"
    );
    // A failed page is an error for all (unknown for every run it covers).
    fake.inject(Route::List, Fault::Status(503));
    fake.inject(Route::List, Fault::Status(503));
    fake.inject(Route::List, Fault::Status(503));
    fake.inject(Route::List, Fault::Status(503));
    assert!(bulk.fetch(&jobs.iter().collect::<Vec<_>>()).await.is_err());
    // Two specs with the same credentials share an endpoint; other credentials do not.
    let other = Registry::builtin()
        .build(
            "dbx2.toml",
            &spec(fake.url(), &ca, Cred::OAuth, "driven.py", ""),
            &BuildContext::default(),
        )
        .unwrap()
        .connector;
    assert_ne!(
        bulk.endpoint(),
        other.bulk_status().unwrap().endpoint(),
        "PAT and OAuth specs do not share answers"
    );
    assert!(!bulk.endpoint().contains(PAT), "no secret in the endpoint");
}

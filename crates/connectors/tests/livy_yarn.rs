//! The Livy connector when Livy forgot a batch (a crash and a restart without recovery) but its
//! YARN application runs on, and the bulk status of the Livy and YARN connectors, offline: the
//! test kit's fake HTTP server plays Livy (`/batches`) and the ResourceManager
//! (`/ws/v1/cluster/apps`) with the shapes of the recorded real answers.
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tether_connectors::registry::{BuildContext, Registry};
use tether_core::{
    connector::JobRef,
    ids::{ExternalId, Generation, Tag},
    journal::{Shape, Submission},
    observe::{ActiveState, JobStatus, Lookup},
    Connector,
};
use tether_testkit::http::{FakeServer, Reply, Request};

const TAG: &str = "tether-k-0123456789abcdef-g1";

fn livy(url: &str, rm: &str) -> Arc<dyn Connector> {
    let text = format!(
        "[job]\nkind = \"livy\"\nurl = \"{url}\"\nfile = \"local:/jobs/alloc.py\"\n\
         request_timeout = \"2s\"\n{rm}"
    );
    Registry::builtin()
        .build("livy.toml", &text, &BuildContext::default())
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .connector
}

fn yarn(rm: &str) -> Arc<dyn Connector> {
    let text = format!(
        "[job]\nkind = \"spark-yarn\"\nrm_url = \"{rm}\"\napp_resource = \"local:/jobs/a.jar\"\n\
         main_class = \"a.B\"\nrequest_timeout = \"2s\"\n"
    );
    Registry::builtin()
        .build("yarn.toml", &text, &BuildContext::default())
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .connector
}

fn job_tagged(id: &str, tag: &str) -> JobRef {
    JobRef {
        submission: Submission {
            tag: Tag::from_stored(tag),
            generation: Generation(1),
            shape: Shape::Normal,
        },
        external_id: ExternalId(id.into()),
    }
}

fn job(id: &str) -> JobRef {
    job_tagged(id, TAG)
}

fn app(id: &str, state: &str, fin: &str, tag: &str) -> Value {
    json!({"id": id, "state": state, "finalStatus": fin, "diagnostics": "",
           "applicationTags": format!("team,{tag}")})
}

fn apps(list: &[Value]) -> Reply {
    Reply::json(&json!({"apps": {"app": list}}))
}

/// A fake answering Livy's and the RM's paths with `rm_apps` (mutable) and an empty Livy.
async fn forgetful(rm_apps: Arc<Mutex<Reply>>) -> FakeServer {
    FakeServer::builder()
        .fallback(move |r: &Request| match r.path.as_str() {
            "/batches" => Reply::json(&json!({"from": 0, "total": 0, "sessions": []})),
            "/ws/v1/cluster/apps" => rm_apps.lock().unwrap().clone(),
            p if p.starts_with("/ws/v1/cluster/apps/application_1_0007") => {
                Reply::json(&json!({"app": app("application_1_0007", "RUNNING", "UNDEFINED", TAG)}))
            }
            // Livy's own 404 for a batch it does not track.
            p => Reply::text(
                404,
                json!({"msg": format!("Session '{p}' not found.")}).to_string(),
            )
            .header("content-type", "application/json"),
        })
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_batch_livy_forgot_whose_yarn_app_runs_is_active_never_lost() {
    let rm = Arc::new(Mutex::new(apps(&[
        app("application_1_0001", "RUNNING", "UNDEFINED", "someone-else"),
        app("application_1_0007", "RUNNING", "UNDEFINED", TAG),
    ])));
    let s = forgetful(rm.clone()).await;
    let c = livy(s.url(), &format!("rm_url = \"{}\"", s.url()));
    match c.status(&job("0")).await {
        JobStatus::Active {
            state: ActiveState::Running,
            detail,
        } => assert!(
            detail.contains("Livy forgot the batch") && detail.contains("application_1_0007"),
            "{detail}"
        ),
        other => panic!("{other:?}"),
    }
    let asked = s
        .requests()
        .into_iter()
        .find(|r| r.path == "/ws/v1/cluster/apps")
        .expect("the RM was asked");
    assert_eq!(asked.query_param("applicationTags").as_deref(), Some(TAG));

    // Done on YARN: the work was done, succeeded (not lost, which would run it again).
    *rm.lock().unwrap() = apps(&[app("application_1_0007", "FINISHED", "SUCCEEDED", TAG)]);
    assert!(
        matches!(c.status(&job("0")).await, JobStatus::Succeeded { .. }),
        "succeeded on YARN"
    );
    // Killed on YARN (a graceful Livy stop kills its apps): Livy's own answer, with YARN's word.
    *rm.lock().unwrap() = apps(&[app("application_1_0007", "KILLED", "KILLED", TAG)]);
    match c.status(&job("0")).await {
        JobStatus::NotFound { detail } => assert!(detail.contains("KILLED"), "{detail}"),
        other => panic!("{other:?}"),
    }
    // Nothing on YARN: lost, as before.
    *rm.lock().unwrap() = apps(&[]);
    match c.status(&job("0")).await {
        JobStatus::NotFound { detail } => {
            assert!(detail.contains("no application with the tag"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    // The RM cannot answer: unknown (asked again), never lost.
    *rm.lock().unwrap() = Reply::server_error(500);
    assert!(
        matches!(c.status(&job("0")).await, JobStatus::Unknown { .. }),
        "unknown while YARN cannot say"
    );
    // Without an RM address nothing changes: Livy's 404 is not found.
    let plain = livy(s.url(), "");
    assert!(matches!(
        plain.status(&job("0")).await,
        JobStatus::NotFound { .. }
    ));
}

#[tokio::test]
async fn a_reused_id_with_our_app_alive_on_yarn_is_active() {
    let rm = Arc::new(Mutex::new(apps(&[app(
        "application_1_0007",
        "ACCEPTED",
        "UNDEFINED",
        TAG,
    )])));
    let rm2 = rm.clone();
    let s = FakeServer::builder()
        .fallback(move |r: &Request| match r.path.as_str() {
            "/batches/0" => Reply::json(&json!({"id": 0, "name": "stranger", "state": "running"})),
            "/ws/v1/cluster/apps" => rm2.lock().unwrap().clone(),
            _ => Reply::text(404, r#"{"msg":"Session '0' not found."}"#),
        })
        .start()
        .await
        .unwrap();
    let c = livy(s.url(), &format!("rm_url = \"{}\"", s.url()));
    match c.status(&job("0")).await {
        JobStatus::Active {
            state: ActiveState::Queued,
            detail,
        } => assert!(detail.contains("stranger"), "{detail}"),
        other => panic!("{other:?}"),
    }
    *rm.lock().unwrap() = apps(&[]);
    match c.status(&job("0")).await {
        JobStatus::Mismatch { found } => assert!(found.contains("stranger"), "{found}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn find_by_tag_adopts_the_yarn_app_livy_forgot_and_follows_it_on_yarn() {
    let rm = Arc::new(Mutex::new(apps(&[
        app("application_1_0009", "RUNNING", "UNDEFINED", TAG),
        app("application_1_0007", "RUNNING", "UNDEFINED", TAG),
    ])));
    let s = forgetful(rm.clone()).await;
    let c = livy(s.url(), &format!("rm_url = \"{}\"", s.url()));
    let found = c
        .find_by_tag()
        .unwrap()
        .find_by_tag(&Tag::from_stored(TAG))
        .await;
    // The earliest application: the one a crash may have left first.
    assert_eq!(
        found,
        Lookup::Found {
            external_id: ExternalId("yarn:application_1_0007".into())
        }
    );
    assert!(matches!(
        c.status(&job("yarn:application_1_0007")).await,
        JobStatus::Active {
            state: ActiveState::Running,
            ..
        }
    ));
    *rm.lock().unwrap() = Reply::server_error(503);
    assert!(matches!(
        c.find_by_tag()
            .unwrap()
            .find_by_tag(&Tag::from_stored(TAG))
            .await,
        Lookup::Unknown { .. }
    ));
    *rm.lock().unwrap() = apps(&[]);
    assert_eq!(
        c.find_by_tag()
            .unwrap()
            .find_by_tag(&Tag::from_stored(TAG))
            .await,
        Lookup::Absent
    );
}

fn batch(id: u64, tag: &str, state: &str) -> Value {
    json!({"id": id, "name": tag, "state": state, "appId": null, "appInfo": {}, "log": []})
}

fn tag(i: usize) -> String {
    format!("tether-k-0123456789abcdef-r{i}-g1")
}

#[tokio::test]
async fn livy_bulk_pages_the_batch_list_and_judges_each_run() {
    // 450 batches: three pages of 200.
    let all: Vec<Value> = (0..450)
        .map(|i| {
            let state = match i % 3 {
                0 => "running",
                1 => "starting",
                _ => "success",
            };
            batch(i as u64, &tag(i), state)
        })
        .collect();
    let mut s = FakeServer::builder()
        .fallback(move |r: &Request| match r.path.as_str() {
            "/batches" => {
                let from: usize = r.query_param("from").unwrap().parse().unwrap();
                let size: usize = r.query_param("size").unwrap().parse().unwrap();
                let page: Vec<_> = all.iter().skip(from).take(size).cloned().collect();
                Reply::json(&json!({"from": from, "total": all.len(), "sessions": page}))
            }
            _ => Reply::status(404),
        })
        .start()
        .await
        .unwrap();
    let c = livy(s.url(), "");
    let bulk = c.bulk_status().expect("livy offers bulk status");
    let jobs: Vec<JobRef> = (0..450)
        .map(|i| job_tagged(&i.to_string(), &tag(i)))
        .collect();
    let answer = bulk.fetch(&jobs.iter().collect::<Vec<_>>()).await.unwrap();
    assert_eq!(s.requests().len(), 3, "one request per page of 200");
    for (i, j) in jobs.iter().enumerate() {
        let got = bulk.judge(&answer, j);
        match i % 3 {
            0 => assert!(
                matches!(
                    got,
                    Some(JobStatus::Active {
                        state: ActiveState::Running,
                        ..
                    })
                ),
                "{i}: {got:?}"
            ),
            1 => assert!(
                matches!(
                    got,
                    Some(JobStatus::Active {
                        state: ActiveState::Queued,
                        ..
                    })
                ),
                "{i}: {got:?}"
            ),
            // Ended: its own status classifies it.
            _ => assert_eq!(got, None, "{i}"),
        }
    }
    // Absent from the list, a reused id, an adopted YARN app: asked per run.
    assert_eq!(bulk.judge(&answer, &job_tagged("9999", &tag(1))), None);
    assert_eq!(bulk.judge(&answer, &job_tagged("0", &tag(1))), None);
    assert_eq!(
        bulk.judge(&answer, &job_tagged("yarn:application_1_1", &tag(0))),
        None
    );
    s.stop().await;
    assert!(
        bulk.fetch(&jobs.iter().collect::<Vec<_>>()).await.is_err(),
        "a failed list is an error"
    );
}

#[tokio::test]
async fn yarn_bulk_lists_unfinished_apps_once_and_judges_each_run() {
    let listed: Vec<Value> = (0..300)
        .map(|i| {
            let state = if i % 2 == 0 { "RUNNING" } else { "ACCEPTED" };
            app(
                &format!("application_1_{i:04}"),
                state,
                "UNDEFINED",
                &tag(i),
            )
        })
        .collect();
    let mut s = FakeServer::builder()
        .fallback(move |r: &Request| match r.path.as_str() {
            "/ws/v1/cluster/apps" => apps(&listed),
            _ => Reply::status(404),
        })
        .start()
        .await
        .unwrap();
    let c = yarn(s.url());
    let bulk = c.bulk_status().expect("spark-yarn offers bulk status");
    let jobs: Vec<JobRef> = (0..300)
        .map(|i| job_tagged(&format!("application_1_{i:04}"), &tag(i)))
        .collect();
    let answer = bulk.fetch(&jobs.iter().collect::<Vec<_>>()).await.unwrap();
    let reqs = s.requests();
    assert_eq!(reqs.len(), 1, "one request for every run");
    assert_eq!(
        reqs[0]
            .query_param("states")
            .map(|s| s.replace("%2C", ","))
            .as_deref(),
        Some("NEW,NEW_SAVING,SUBMITTED,ACCEPTED,RUNNING")
    );
    for (i, j) in jobs.iter().enumerate() {
        let want = if i % 2 == 0 {
            ActiveState::Running
        } else {
            ActiveState::Queued
        };
        match bulk.judge(&answer, j) {
            Some(JobStatus::Active { state, .. }) => assert_eq!(state, want, "{i}"),
            other => panic!("{i}: {other:?}"),
        }
    }
    // Ended (absent from the unfinished list) or someone else's tag: asked per run.
    assert_eq!(
        bulk.judge(&answer, &job_tagged("application_1_9999", &tag(0))),
        None
    );
    assert_eq!(
        bulk.judge(&answer, &job_tagged("application_1_0000", &tag(5))),
        None
    );
    s.stop().await;
    assert!(
        bulk.fetch(&jobs.iter().collect::<Vec<_>>()).await.is_err(),
        "a failed list is an error"
    );
}

use std::time::Duration;

use serde_json::{json, Value};

use super::*;

fn client(fake: &FakeDatabricks) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(fake.ca.ca_pem.as_bytes()).unwrap();
    reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn call(
    c: &reqwest::Client,
    fake: &FakeDatabricks,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}{path}", fake.url());
    let req = match method {
        "GET" => c.get(url),
        _ => c.post(url).body(body.unwrap_or_default().to_string()),
    };
    let r = req.bearer_auth(token).send().await.unwrap();
    let status = r.status().as_u16();
    (
        status,
        serde_json::from_str(&r.text().await.unwrap()).unwrap_or_default(),
    )
}

fn submit_body(token: &str) -> Value {
    json!({"run_name": "etl", "idempotency_token": token,
        "tasks": [{"task_key": "main", "spark_python_task": {"python_file": "dbfs:/etl.py"}, "existing_cluster_id": "c-1"}]})
}

#[tokio::test]
async fn one_run_per_idempotency_token_and_a_deleted_runs_token_is_an_error() {
    let fake = FakeDatabricks::start(Some("pat-1"), None).await.unwrap();
    let c = client(&fake);
    let (s1, a) = call(
        &c,
        &fake,
        "pat-1",
        "POST",
        "/api/2.2/jobs/runs/submit",
        Some(submit_body("tok-a")),
    )
    .await;
    let (s2, b) = call(
        &c,
        &fake,
        "pat-1",
        "POST",
        "/api/2.2/jobs/runs/submit",
        Some(submit_body("tok-a")),
    )
    .await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(a["run_id"], b["run_id"], "same token, same run");
    assert_eq!(fake.runs_created(), 1);
    let (_, other) = call(
        &c,
        &fake,
        "pat-1",
        "POST",
        "/api/2.2/jobs/runs/submit",
        Some(submit_body("tok-b")),
    )
    .await;
    assert_ne!(other["run_id"], a["run_id"]);
    let long = "x".repeat(65);
    let (s, e) = call(
        &c,
        &fake,
        "pat-1",
        "POST",
        "/api/2.2/jobs/runs/submit",
        Some(submit_body(&long)),
    )
    .await;
    assert_eq!(
        (s, e["error_code"].as_str()),
        (400, Some("INVALID_PARAMETER_VALUE"))
    );
    let id = a["run_id"].as_u64().unwrap();
    fake.delete(id);
    let (s, e) = call(
        &c,
        &fake,
        "pat-1",
        "POST",
        "/api/2.2/jobs/runs/submit",
        Some(submit_body("tok-a")),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    assert!(e["message"].as_str().unwrap().contains("deleted"), "{e}");
    let (s, e) = call(
        &c,
        &fake,
        "pat-1",
        "GET",
        &format!("/api/2.2/jobs/runs/get?run_id={id}"),
        None,
    )
    .await;
    assert_eq!(
        (s, e["error_code"].as_str()),
        (404, Some("RESOURCE_DOES_NOT_EXIST"))
    );
    assert_eq!(fake.runs_created(), 2);
    let (s, _) = call(&c, &fake, "wrong", "GET", "/api/2.2/jobs/runs/list", None).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn the_test_drives_the_life_cycle_output_is_per_task_and_cancel_terminates() {
    let fake = FakeDatabricks::start(Some("p"), None).await.unwrap();
    let c = client(&fake);
    let (_, a) = call(
        &c,
        &fake,
        "p",
        "POST",
        "/api/2.2/jobs/runs/submit",
        Some(submit_body("t1")),
    )
    .await;
    let id = a["run_id"].as_u64().unwrap();
    let get = format!("/api/2.2/jobs/runs/get?run_id={id}");
    let (_, r) = call(&c, &fake, "p", "GET", &get, None).await;
    assert_eq!(r["state"]["life_cycle_state"], "PENDING");
    fake.set_state(id, Life::Queued);
    let (_, r) = call(&c, &fake, "p", "GET", &get, None).await;
    assert_eq!(
        (
            r["state"]["life_cycle_state"].as_str(),
            r["status"]["state"].as_str()
        ),
        (Some("QUEUED"), Some("QUEUED"))
    );
    fake.finish(id, "SUCCESS", "", "hello\n42");
    let (_, r) = call(&c, &fake, "p", "GET", &get, None).await;
    assert_eq!(r["state"]["result_state"], "SUCCESS");
    assert_eq!(r["status"]["termination_details"]["code"], "SUCCESS");
    let (s, _) = call(
        &c,
        &fake,
        "p",
        "GET",
        &format!("/api/2.2/jobs/runs/get-output?run_id={id}"),
        None,
    )
    .await;
    assert_eq!(s, 400, "a run with tasks has no output of its own");
    let task = r["tasks"][0]["run_id"].as_u64().unwrap();
    let (_, o) = call(
        &c,
        &fake,
        "p",
        "GET",
        &format!("/api/2.2/jobs/runs/get-output?run_id={task}"),
        None,
    )
    .await;
    assert_eq!(
        (o["logs"].as_str(), o["notebook_output"]["result"].as_str()),
        (Some("hello\n42"), Some("42"))
    );
    let (_, b) = call(
        &c,
        &fake,
        "p",
        "POST",
        "/api/2.2/jobs/runs/submit",
        Some(submit_body("t2")),
    )
    .await;
    let id2 = b["run_id"].as_u64().unwrap();
    fake.set_state(id2, Life::Running);
    let (s, _) = call(
        &c,
        &fake,
        "p",
        "POST",
        "/api/2.2/jobs/runs/cancel",
        Some(json!({"run_id": id2})),
    )
    .await;
    assert_eq!(s, 200);
    let (_, r) = call(
        &c,
        &fake,
        "p",
        "GET",
        &format!("/api/2.2/jobs/runs/get?run_id={id2}"),
        None,
    )
    .await;
    assert_eq!(
        (
            r["state"]["life_cycle_state"].as_str(),
            r["state"]["result_state"].as_str()
        ),
        (Some("TERMINATED"), Some("CANCELED"))
    );
}

#[tokio::test]
async fn runs_list_pages_and_faults_hit_the_next_request_of_their_route() {
    let fake = FakeDatabricks::start(Some("p"), None).await.unwrap();
    let c = client(&fake);
    for i in 0..5 {
        call(
            &c,
            &fake,
            "p",
            "POST",
            "/api/2.2/jobs/runs/submit",
            Some(submit_body(&format!("t{i}"))),
        )
        .await;
    }
    let (mut seen, mut next) = (vec![], None::<String>);
    loop {
        let q = next
            .as_ref()
            .map_or(String::new(), |t| format!("&page_token={t}"));
        let (_, p) = call(
            &c,
            &fake,
            "p",
            "GET",
            &format!("/api/2.2/jobs/runs/list?limit=2{q}"),
            None,
        )
        .await;
        seen.extend(
            p["runs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["run_id"].as_u64().unwrap()),
        );
        if !p["has_more"].as_bool().unwrap() {
            break;
        }
        next = p["next_page_token"].as_str().map(str::to_string);
    }
    assert_eq!(seen.len(), 5);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seen:?}"
    );
    fake.inject(Route::Submit, Fault::TooMany(7));
    let r = client(&fake)
        .post(format!("{}/api/2.2/jobs/runs/submit", fake.url()))
        .bearer_auth("p")
        .body(submit_body("t9").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["retry-after"].to_str().unwrap()
        ),
        (429, "7")
    );
    assert_eq!(fake.runs_created(), 5, "a 429 creates nothing");
    fake.inject(Route::Submit, Fault::DropAfter);
    let dropped = client(&fake)
        .post(format!("{}/api/2.2/jobs/runs/submit", fake.url()))
        .bearer_auth("p")
        .body(submit_body("t9").to_string())
        .send()
        .await;
    assert!(dropped.is_err());
    assert_eq!(fake.runs_created(), 6, "a dropped answer was acted upon");
}

#[tokio::test]
async fn oauth_tokens_are_issued_to_the_client_and_expire() {
    let fake = FakeDatabricks::start(None, Some(("sp-id", "sp-secret")))
        .await
        .unwrap();
    fake.set_token_lifetime(Duration::from_secs(1));
    let c = client(&fake);
    let ask = |secret: &'static str| {
        c.post(format!("{}/oidc/v1/token", fake.url()))
            .basic_auth("sp-id", Some(secret))
            .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")])
            .send()
    };
    assert_eq!(ask("nope").await.unwrap().status().as_u16(), 401);
    let t: Value = ask("sp-secret").await.unwrap().json().await.unwrap();
    assert_eq!(t["expires_in"], 1);
    let token = t["access_token"].as_str().unwrap().to_string();
    let (s, _) = call(&c, &fake, &token, "GET", "/api/2.2/jobs/runs/list", None).await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, e) = call(&c, &fake, &token, "GET", "/api/2.2/jobs/runs/list", None).await;
    assert_eq!((s, e["message"].as_str()), (403, Some("Token is expired.")));
    assert_eq!(fake.tokens_issued(), 1);
}

use std::time::Duration;

use serde_json::{json, Value};

use super::*;

fn client(fake: &FakeKubernetes) -> reqwest::Client {
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
    fake: &FakeKubernetes,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}{path}", fake.url());
    let req = c
        .request(method.parse().unwrap(), url)
        .bearer_auth("tok")
        .header("content-type", "application/json");
    let req = match body {
        Some(b) => req.body(b.to_string()),
        None => req,
    };
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (
        status,
        serde_json::from_str(&r.text().await.unwrap()).unwrap_or_default(),
    )
}

fn pod(name: &str, labels: Value) -> Value {
    json!({"metadata": {"name": name, "labels": labels},
           "spec": {"containers": [{"name": "spark-kubernetes-driver", "image": "spark:4"}]}})
}

const PODS: &str = "/api/v1/namespaces/ns1/pods";

#[tokio::test]
async fn a_second_create_of_a_name_is_409_already_exists_and_creates_nothing() {
    let fake = FakeKubernetes::start(Some("tok")).await.unwrap();
    let c = client(&fake);
    let (s1, a) = call(&c, &fake, "POST", PODS, Some(pod("d", json!({})))).await;
    let (s2, b) = call(&c, &fake, "POST", PODS, Some(pod("d", json!({})))).await;
    assert_eq!((s1, s2), (201, 409), "{a} {b}");
    assert_eq!(b["reason"], "AlreadyExists", "{b}");
    assert_eq!(b["kind"], "Status", "{b}");
    assert_eq!(a["status"]["phase"], "Pending", "{a}");
    assert_eq!(fake.pods_created(), 1);
    let (s, _) = call(&c, &fake, "GET", &format!("{PODS}/missing"), None).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn a_request_without_the_token_is_401() {
    let fake = FakeKubernetes::start(Some("tok")).await.unwrap();
    let r = client(&fake)
        .get(format!("{}{PODS}", fake.url()))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn label_selectors_pick_pods_and_resource_versions_grow() {
    let fake = FakeKubernetes::start(Some("tok")).await.unwrap();
    let c = client(&fake);
    for (n, l) in [
        ("a", json!({"app": "x", "role": "driver"})),
        ("b", json!({"app": "x"})),
        ("c", json!({"app": "y"})),
    ] {
        call(&c, &fake, "POST", PODS, Some(pod(n, l))).await;
    }
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    for (sel, want) in [
        ("app%3Dx", vec!["a", "b"]),
        ("app%3Dx%2Crole", vec!["a"]),
        ("app%3Dx%2C%21role", vec!["b"]),
        ("app%20in%20%28y%2Cz%29", vec!["c"]),
        ("app%21%3Dx", vec!["c"]),
    ] {
        let (s, v) = call(
            &c,
            &fake,
            "GET",
            &format!("{PODS}?labelSelector={sel}"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(names(&v), want, "selector {sel}");
    }
    let before = fake.pod("ns1", "a").unwrap()["metadata"]["resourceVersion"].clone();
    fake.set_running("ns1", "a");
    let after = fake.pod("ns1", "a").unwrap();
    assert_ne!(after["metadata"]["resourceVersion"], before);
    assert!(after["status"]["containerStatuses"][0]["state"]["running"].is_object());
}

#[tokio::test]
async fn deleting_the_owner_collects_what_it_owns_and_grace_periods_are_kept() {
    let fake = FakeKubernetes::start(Some("tok")).await.unwrap();
    let c = client(&fake);
    let (_, d) = call(&c, &fake, "POST", PODS, Some(pod("drv", json!({})))).await;
    let owner =
        json!([{"apiVersion": "v1", "kind": "Pod", "name": "drv", "uid": d["metadata"]["uid"]}]);
    let mut exec = pod("exec-1", json!({}));
    exec["metadata"]["ownerReferences"] = owner.clone();
    call(&c, &fake, "POST", PODS, Some(exec)).await;
    let cm =
        json!({"metadata": {"name": "drv-conf", "ownerReferences": owner}, "data": {"a": "b"}});
    let (s, _) = call(
        &c,
        &fake,
        "POST",
        "/api/v1/namespaces/ns1/configmaps",
        Some(cm),
    )
    .await;
    assert_eq!(s, 201);
    // Graceful: the pod is terminating, still there.
    let (s, v) = call(
        &c,
        &fake,
        "DELETE",
        &format!("{PODS}/drv"),
        Some(json!({"gracePeriodSeconds": 30})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(fake.pod("ns1", "drv").unwrap()["metadata"]["deletionTimestamp"].is_string());
    assert!(fake.pod("ns1", "exec-1").is_some());
    fake.finish_deletions();
    assert!(fake.pod("ns1", "drv").is_none());
    assert!(
        fake.pod("ns1", "exec-1").is_none(),
        "owned executor collected"
    );
    assert!(
        fake.get(Kind::ConfigMap, "ns1", "drv-conf").is_none(),
        "owned configmap collected"
    );
    assert!(fake.unknown_requests().is_empty());
}

#[tokio::test]
async fn logs_are_refused_while_pending_then_served_with_tail_and_timestamps() {
    let fake = FakeKubernetes::start(None).await.unwrap();
    let c = client(&fake);
    call(&c, &fake, "POST", PODS, Some(pod("d", json!({})))).await;
    let url = format!("{}{PODS}/d/log", fake.url());
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    fake.set_running("ns1", "d");
    fake.append_log("ns1", "d", "one\ntwo\nthree");
    let text = c
        .get(format!("{url}?tailLines=2"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "two\nthree\n");
    let text = c
        .get(format!("{url}?timestamps=true&follow=true"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let first = text.lines().next().unwrap();
    assert!(first.ends_with("Z one") && first.contains('T'), "{first}");
}

#[tokio::test]
async fn an_outage_answers_503_and_an_unknown_route_is_recorded() {
    let fake = FakeKubernetes::start(None).await.unwrap();
    let c = client(&fake);
    let (s, _) = call(&c, &fake, "GET", "/apis/batch/v1/jobs", None).await;
    assert_eq!(s, 404);
    assert_eq!(
        fake.unknown_requests(),
        vec!["GET /apis/batch/v1/jobs".to_string()]
    );
    fake.outage(Some(Outage::Unavailable));
    let (s, _) = call(&c, &fake, "GET", PODS, None).await;
    assert_eq!(s, 503);
}

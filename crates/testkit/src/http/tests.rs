use std::time::Duration;

use super::*;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

#[tokio::test]
async fn serves_expectations_in_order_and_records_requests() {
    let srv = FakeServer::start().await.unwrap();
    srv.expect(Expect::new(
        "POST",
        "/v1/create",
        Reply::json(&serde_json::json!({"id": 7})),
    ))
    .expect(Expect::new(
        "GET",
        "/v1/status/*",
        Reply::too_many_requests(3),
    ))
    .expect(Expect::new("GET", "/v1/status/*", Reply::server_error(503)));
    let c = client();
    let r = c
        .post(format!("{}/v1/create?dry=1", srv.url()))
        .header("x-trace", "abc")
        .body("{\"a\":1}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "{\"id\":7}");
    let r = c
        .get(format!("{}/v1/status/d1", srv.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "3");
    let r = c
        .get(format!("{}/v1/status/d1", srv.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    srv.assert_done();
    let seen = srv.requests();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].line(), "POST /v1/create?dry=1");
    assert_eq!(seen[0].query_param("dry").as_deref(), Some("1"));
    assert_eq!(seen[0].header("X-Trace").as_deref(), Some("abc"));
    assert_eq!(seen[0].json(), Some(serde_json::json!({"a": 1})));
    assert_eq!((seen[2].index, seen[2].path.as_str()), (2, "/v1/status/d1"));
}

#[tokio::test]
async fn assert_done_names_what_is_left_and_what_was_unexpected() {
    let srv = FakeServer::start().await.unwrap();
    srv.expect(Expect::new("GET", "/a", Reply::status(204)));
    let r = client()
        .get(format!("{}/b", srv.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let msg =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| srv.assert_done())).unwrap_err();
    let msg = msg.downcast_ref::<String>().unwrap();
    assert!(
        msg.contains("1 expectation(s) never met: [GET /a]")
            && msg.contains("unexpected request(s): [GET /b (expected GET /a)]"),
        "{msg}"
    );
}

#[tokio::test]
async fn faults_delay_lost_response_and_refused() {
    let mut srv = FakeServer::builder()
        .fallback(|r| match r.index {
            0 => Reply::status(200).after(Duration::from_secs(5)),
            1 => Reply::Drop,
            _ => Reply::text(200, "fine"),
        })
        .start()
        .await
        .unwrap();
    let c = client();
    let e = c.get(srv.url()).send().await.unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    let e = c.get(srv.url()).send().await.unwrap_err();
    assert!(
        !e.is_timeout() && !e.is_connect(),
        "a lost response, not {e:?}"
    );
    assert_eq!(srv.count(), 2, "the dropped request was read first");
    let ok = c.get(srv.url()).send().await.unwrap();
    assert_eq!(ok.text().await.unwrap(), "fine");
    srv.stop().await;
    let e = c.get(srv.url()).send().await.unwrap_err();
    assert!(e.is_connect(), "refused once stopped, not {e:?}");
}

#[tokio::test]
async fn endless_bodies_stop_when_the_client_goes() {
    let srv = FakeServer::builder()
        .fallback(|_| Reply::Endless)
        .start()
        .await
        .unwrap();
    let mut r = client().get(srv.url()).send().await.unwrap();
    let first = r.chunk().await.unwrap().unwrap();
    assert!(first.iter().all(|b| *b == b' '));
    drop(r);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = srv.streamed().load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(srv.streamed().load(Ordering::Relaxed), sent);
    assert!(sent > 0 && sent < 64 << 20, "{sent}");
}

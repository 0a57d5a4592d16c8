//! The shared HTTP layer (issue 8, item 1) against test servers on loopback ports (see
//! `http_support`): retry with `Retry-After` and its bounds, no retry of a create, the
//! refused / ambiguous / definite classification, OAuth2 client credentials with a cached and
//! refreshed token, mutual TLS, and the body cap.
#![cfg(feature = "http")]
mod http_support;

use std::{
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant, SystemTime},
};

use http_support::*;
use tether_connectors::http::{
    Auth, Client, ClientConfig, HttpError, OAuth2, Outcome, Retry, Safety, Secret,
};
use tether_core::connector::SubmitError;

const CAP: usize = 1 << 20;

fn client(config: ClientConfig, auth: Auth, retry: Retry) -> Client {
    Client::new(&config, auth, retry).unwrap()
}

fn quick_retry(attempts: u32, max_total: Duration) -> Retry {
    Retry {
        attempts,
        base: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_total,
    }
}

async fn get(c: &Client, url: &str, safety: Safety) -> Result<u16, HttpError> {
    let a = c.exchange(safety, url, CAP, |r| r.get(url)).await?;
    Ok(a.status)
}

#[tokio::test]
async fn retry_honours_retry_after_and_stops_at_the_bound() {
    // Two "not now, come back in 1 s" (seconds, then an HTTP date), then an answer.
    let srv = serve(None, |i, _| match i {
        0 => Reply::with("503 Service Unavailable", &["Retry-After: 1"], "busy"),
        1 => {
            let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
            Reply::with(
                "429 Too Many Requests",
                &[&format!("Retry-After: {at}")],
                "slow down",
            )
        }
        _ => Reply::with("200 OK", &[], "done"),
    })
    .await;
    let c = client(
        ClientConfig::new(Duration::from_secs(5)),
        Auth::None,
        quick_retry(5, Duration::from_secs(20)),
    );
    let t = Instant::now();
    assert_eq!(get(&c, &srv.url, Safety::Idempotent).await.unwrap(), 200);
    // 1 s, then at least 1 s to a date 2 s ahead at whole-second precision.
    assert!(t.elapsed() >= Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(srv.count(), 3);

    // Always 502: exactly `attempts` requests, then the last answer.
    let srv = serve(None, |_, _| Reply::with("502 Bad Gateway", &[], "down")).await;
    let c = client(
        ClientConfig::new(Duration::from_secs(5)),
        Auth::None,
        quick_retry(3, Duration::from_secs(20)),
    );
    assert_eq!(get(&c, &srv.url, Safety::Idempotent).await.unwrap(), 502);
    assert_eq!(srv.count(), 3, "attempts bound");

    // A Retry-After beyond the total budget: no wait is started, the answer comes back now.
    let srv = serve(None, |_, _| {
        Reply::with("503 Service Unavailable", &["Retry-After: 30"], "later")
    })
    .await;
    let c = client(
        ClientConfig::new(Duration::from_secs(5)),
        Auth::None,
        quick_retry(5, Duration::from_secs(3)),
    );
    let t = Instant::now();
    let a = c
        .exchange(Safety::Idempotent, &srv.url, CAP, |r| r.get(&srv.url))
        .await
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(srv.count(), 1, "total-time bound");
    let e = c.success(&srv.url, a).unwrap_err();
    assert_eq!(e.outcome(), Outcome::Ambiguous, "{e}");
}

#[tokio::test]
async fn a_post_is_never_retried() {
    let srv = serve(None, |_, _| {
        Reply::with("503 Service Unavailable", &["Retry-After: 0"], "busy")
    })
    .await;
    let c = client(
        ClientConfig::new(Duration::from_secs(5)),
        Auth::None,
        quick_retry(5, Duration::from_secs(20)),
    );
    let url = srv.url.clone();
    let a = c
        .exchange(Safety::Once, &url, CAP, |r| r.post(&url).body("{}"))
        .await
        .unwrap();
    assert_eq!(a.status, 503);
    assert_eq!(srv.count(), 1, "a create is sent once");
    assert!(matches!(
        c.success(&url, a).unwrap_err().submit_error(),
        SubmitError::Ambiguous { .. }
    ));
}

#[tokio::test]
async fn outcomes_are_refused_ambiguous_or_definite_and_never_show_secrets() {
    let secret = "tok-s3cr3t";
    let c = client(
        ClientConfig::new(Duration::from_millis(700)),
        Auth::Bearer(Secret::new(secret.into())),
        Retry::never(),
    );
    // Refused: a port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://user:pw-s3cr3t@127.0.0.1:{closed}/x");
    let e = get(&c, &url, Safety::Once).await.unwrap_err();
    assert!(matches!(e, HttpError::Connect { .. }), "{e}");
    assert!(
        !e.to_string().contains("pw-s3cr3t") && e.to_string().contains("***@"),
        "{e}"
    );
    assert_eq!(e.outcome(), Outcome::Refused);
    assert!(!e.may_have_arrived());
    assert!(matches!(e.submit_error(), SubmitError::Unavailable { .. }));

    // Ambiguous: sent, no answer in time; sent, connection dropped; a 5xx.
    let srv = serve(None, move |i, _| match i {
        0 => Reply::Hang,
        1 => Reply::Close,
        2 => Reply::with("500 Internal Server Error", &[], "boom"),
        // Definite: a 4xx with a body, echoing our token.
        _ => Reply::with(
            "400 Bad Request",
            &[],
            &format!("bad request, token {secret}\nstack"),
        ),
    })
    .await;
    let mut errors = vec![];
    for expect in ["Timeout", "Transport", "Status"] {
        let e = c
            .exchange(Safety::Once, &srv.url, CAP, |r| r.get(&srv.url))
            .await
            .and_then(|a| c.success(&srv.url, a))
            .unwrap_err();
        assert!(format!("{e:?}").starts_with(expect), "{expect}: {e:?}");
        assert_eq!(e.outcome(), Outcome::Ambiguous, "{e}");
        assert!(e.may_have_arrived());
        assert!(matches!(e.submit_error(), SubmitError::Ambiguous { .. }));
        errors.push(e);
    }
    let a = c
        .exchange(Safety::Once, &srv.url, CAP, |r| r.get(&srv.url))
        .await
        .unwrap();
    let e = c.success(&srv.url, a).unwrap_err();
    assert_eq!(e.outcome(), Outcome::Definite, "{e}");
    match e.submit_error() {
        SubmitError::Rejected { message } => {
            assert!(message.contains("bad request, token ***"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    errors.push(e);
    // The bearer token went out, and comes back in no error.
    assert_eq!(
        srv.requests()[0].header("authorization").as_deref(),
        Some("Bearer tok-s3cr3t")
    );
    for e in &errors {
        assert!(!e.to_string().contains(secret), "{e}");
    }
}

/// A test token endpoint: counts requests, answers `tok-<n>` living `life` seconds.
async fn token_endpoint(life: u64) -> TestServer {
    serve(None, move |i, _| {
        Reply::with(
            "200 OK",
            &["Content-Type: application/json"],
            &format!(
                r#"{{"access_token":"tok-{}","token_type":"Bearer","expires_in":{life}}}"#,
                i + 1
            ),
        )
    })
    .await
}

#[tokio::test]
async fn oauth2_token_is_fetched_once_cached_and_refreshed_after_expiry() {
    let idp = token_endpoint(1).await;
    let api = serve(None, |_, _| Reply::with("200 OK", &[], "ok")).await;
    let oauth = OAuth2::new(
        &format!("{}/token", idp.url),
        "tether".into(),
        Secret::new("client-s3cr3t".into()),
        Some("jobs".into()),
    )
    .unwrap();
    let c = client(
        ClientConfig::new(Duration::from_secs(5)),
        Auth::OAuth2(Arc::new(oauth)),
        Retry::never(),
    );
    // Eight at once: one fetch, the others wait for it.
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (c, url) = (c.clone(), api.url.clone());
        calls.spawn(async move { get(&c, &url, Safety::Idempotent).await });
    }
    while let Some(r) = calls.join_next().await {
        assert_eq!(r.unwrap().unwrap(), 200);
    }
    assert_eq!(idp.count(), 1, "one token fetch for concurrent requests");
    let req = &idp.requests()[0];
    assert!(req.line().starts_with("POST /token"), "{req:?}");
    let body = req.body_text();
    assert!(body.contains("grant_type=client_credentials") && body.contains("scope=jobs"));
    assert!(req.header("authorization").unwrap().starts_with("Basic "));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get(&c, &api.url, Safety::Idempotent).await.unwrap(), 200);
    assert_eq!(idp.count(), 2, "refreshed after expiry");
    let auths: Vec<_> = api
        .requests()
        .iter()
        .map(|r| r.header("authorization").unwrap())
        .collect();
    assert!(auths[..8].iter().all(|a| a == "Bearer tok-1"), "{auths:?}");
    assert_eq!(auths[8], "Bearer tok-2");

    // A token endpoint that says no: the request is never sent, the outcome is definite, and
    // the client secret it echoes is scrubbed.
    let idp = serve(None, |_, _| {
        Reply::with("401 Unauthorized", &[], "invalid_client client-s3cr3t")
    })
    .await;
    let api = serve(None, |_, _| Reply::with("200 OK", &[], "ok")).await;
    let oauth = OAuth2::new(
        &idp.url,
        "tether".into(),
        Secret::new("client-s3cr3t".into()),
        None,
    )
    .unwrap();
    let c = client(
        ClientConfig::new(Duration::from_secs(5)),
        Auth::OAuth2(Arc::new(oauth)),
        Retry::never(),
    );
    let e = get(&c, &api.url, Safety::Once).await.unwrap_err();
    assert!(matches!(e, HttpError::Auth { .. }), "{e}");
    assert_eq!(e.outcome(), Outcome::Definite);
    assert!(!e.may_have_arrived());
    let shown = format!("{e}: {}", tether_connectors::http::root_cause(&e));
    assert!(
        !shown.contains("client-s3cr3t") && shown.contains("***"),
        "{shown}"
    );
    assert_eq!(api.count(), 0);
}

#[tokio::test]
async fn the_client_certificate_is_presented_when_the_server_requires_one() {
    let ca = TestCa::new(true);
    let srv = serve(Some(&ca), |_, _| Reply::with("200 OK", &[], "hello")).await;
    let base = ClientConfig {
        ca_pem: Some(ca.ca_pem.clone().into_bytes()),
        ..ClientConfig::new(Duration::from_secs(5))
    };
    // Without a certificate the handshake fails: nothing was served.
    let c = client(base.clone(), Auth::None, Retry::never());
    let e = get(&c, &srv.url, Safety::Once).await.unwrap_err();
    assert_eq!(srv.count(), 0, "{e}");
    let with_cert = ClientConfig {
        identity_pem: Some(Secret::new(ca.client_pem.clone())),
        ..base
    };
    assert!(!format!("{with_cert:?}").contains("PRIVATE KEY"));
    let c = client(with_cert, Auth::None, Retry::never());
    assert_eq!(get(&c, &srv.url, Safety::Once).await.unwrap(), 200);
    assert_eq!(srv.count(), 1);
    // A key that is not PEM is a clear build error that does not quote it.
    let bad = ClientConfig {
        identity_pem: Some(Secret::new("not-a-pem-s3cr3t".into())),
        ..ClientConfig::new(Duration::from_secs(1))
    };
    let e = Client::new(&bad, Auth::None, Retry::never()).unwrap_err();
    assert!(
        e.contains("client certificate") && !e.contains("s3cr3t"),
        "{e}"
    );
}

#[tokio::test]
async fn bodies_are_capped() {
    let srv = serve(None, |i, _| match i {
        0 => Reply::Full("200 OK", vec![], vec![b'x'; 5000]),
        _ => Reply::Endless,
    })
    .await;
    let c = client(
        ClientConfig::new(Duration::from_secs(10)),
        Auth::None,
        Retry::never(),
    );
    let url = srv.url.clone();
    for _ in 0..2 {
        let e = c
            .exchange(Safety::Once, &url, 4096, |r| r.get(&url))
            .await
            .unwrap_err();
        assert!(matches!(e, HttpError::TooLarge { limit: 4096, .. }), "{e}");
        assert_eq!(e.outcome(), Outcome::Ambiguous);
    }
    // The endless body was abandoned: the server's writes stall once socket buffers fill.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = srv.endless_sent.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        srv.endless_sent.load(Ordering::Relaxed),
        sent,
        "still sending"
    );
    assert!(sent < (64 << 20), "{sent}");
}

#[tokio::test]
async fn basic_auth_is_sent_and_never_shown() {
    let srv = serve(None, |_, _| Reply::with("403 Forbidden", &[], "no")).await;
    let auth = Auth::Basic {
        user: "tether".into(),
        password: Secret::new("pw-s3cr3t".into()),
    };
    assert!(!format!("{auth:?}").contains("pw-s3cr3t"));
    let c = client(
        ClientConfig::new(Duration::from_secs(5)),
        auth,
        Retry::never(),
    );
    let a = c
        .exchange(Safety::Once, &srv.url, CAP, |r| r.get(&srv.url))
        .await
        .unwrap();
    let e = c.success(&srv.url, a).unwrap_err();
    assert_eq!(e.outcome(), Outcome::Definite);
    // "tether:pw-s3cr3t" in base64.
    assert_eq!(
        srv.requests()[0].header("authorization").as_deref(),
        Some("Basic dGV0aGVyOnB3LXMzY3IzdA==")
    );
}

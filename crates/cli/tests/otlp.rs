//! `tether worker --otlp-endpoint`: the fleet's spans reach an OTLP/HTTP collector (a tiny one
//! made here: it records each request's path and protobuf body and answers 200).
mod common;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::*;

type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Serves HTTP/1.1 POSTs (keep-alive) on a free port, recording them.
fn collector() -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let keep = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let seen = keep.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut conn = conn;
                loop {
                    let mut request = String::new();
                    if reader.read_line(&mut request).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = request.split(' ').nth(1).unwrap_or("").to_string();
                    let mut length = 0usize;
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 {
                            return;
                        }
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    seen.lock().unwrap().push((path, body));
                    let _ = conn.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
                    );
                }
            });
        }
    });
    (port, seen)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_workers_spans_reach_an_otlp_collector() {
    let env = Env::new();
    let (port, seen) = collector();
    let key = "traced-run";
    let spec = env.spec("t.toml", "[job]\nkind = 'local'\ncommand = ['true']\n");
    let out = env.run(&["submit", spec.to_str().unwrap(), "--key", key]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut w = env.spawn(
        &["worker", "--exit-when-idle", "--otlp-endpoint", &endpoint],
        &[],
    );
    let status = wait_child(&mut w, Duration::from_secs(60));
    assert!(status.success(), "{status:?}");
    let seen = seen.lock().unwrap();
    let traces: Vec<&Vec<u8>> = seen
        .iter()
        .filter(|(p, _)| p == "/v1/traces")
        .map(|(_, b)| b)
        .collect();
    assert!(
        !traces.is_empty(),
        "no export reached the collector: {:?}",
        seen.iter().map(|(p, b)| (p, b.len())).collect::<Vec<_>>()
    );
    // Protobuf keeps strings as they are: the run span, its key, the service name.
    assert!(
        traces
            .iter()
            .any(|b| contains(b, b"run") && contains(b, key.as_bytes())),
        "no span of run {key}"
    );
    assert!(
        traces.iter().any(|b| contains(b, b"tether")),
        "no service name"
    );
}

#[test]
fn without_an_endpoint_nothing_is_exported() {
    let env = Env::new();
    let (port, seen) = collector();
    let spec = env.spec("t.toml", "[job]\nkind = 'local'\ncommand = ['true']\n");
    let out = env.run(&["submit", spec.to_str().unwrap(), "--key", "quiet"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut w = env.spawn(&["worker", "--exit-when-idle"], &[]);
    assert!(wait_child(&mut w, Duration::from_secs(60)).success());
    assert!(
        seen.lock().unwrap().is_empty(),
        "exported to port {port} unasked"
    );
}

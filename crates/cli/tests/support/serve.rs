//! What the `tether serve` tests share: a real server process started over a test [`Env`]'s
//! store, its tokens, and small HTTP helpers. Included with
//! `#[path = "support/serve.rs"] mod serve;` next to `mod common;`.
#![allow(dead_code)]

use std::{
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::common::{wait_until, Env};

/// A `tether serve` process, killed on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT` (or `https://…`), without `/api/v1`.
    pub base: String,
    log: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `tether serve --listen 127.0.0.1:0 ARGS` with the extra environment `extra`, once it
    /// says where it serves.
    pub fn start(env: &Env, extra: &[(&str, &str)], args: &[&str]) -> Server {
        let log = env.path(&format!(
            "serve-{}.err",
            Instant::now().elapsed().as_nanos()
        ));
        let mut cmd = env.cmd();
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn tether serve");
        let mut base = String::new();
        let up = wait_until(Duration::from_secs(30), || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            match text.split("serving the API on ").nth(1) {
                Some(rest) => {
                    let url = rest.split_whitespace().next().unwrap_or("");
                    base = url.trim_end_matches("/api/v1").to_string();
                    true
                }
                None => false,
            }
        });
        assert!(
            up,
            "tether serve did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Server { child, base, log }
    }

    /// A server with the read and write tokens `read`, `write` (from the environment).
    pub fn with_tokens(env: &Env, read: &str, write: &str) -> Server {
        Server::start(
            env,
            &[
                ("TETHER_SERVE_TOKEN_READ", read),
                ("TETHER_SERVE_TOKEN_WRITE", write),
            ],
            &[],
        )
    }

    /// What the server wrote on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A JSON client of one server, with a default token for [`Api::get`].
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    read: String,
}

impl Api {
    /// A client of `server` reading with `read`.
    pub fn new(server: &Server, read: &str) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: server.base.clone(),
            read: read.to_string(),
        }
    }

    /// `method path` with `token` and a JSON `body`: the status and the JSON answer (a JSON
    /// string when the answer is not JSON).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    /// `GET path` with the read token.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, Some(&self.read), None).await
    }
}

/// A client that does not follow redirects (the UI tests look at them).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `GET url` with an optional bearer token: the status and the text.
pub async fn get(http: &reqwest::Client, url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = http.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("GET");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// A local spec running `script` with `sh -c`.
pub fn local_spec(script: &str) -> String {
    format!("[job]\nkind = 'local'\ncommand = ['sh', '-c', '{script}']\n")
}

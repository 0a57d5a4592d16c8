//! What the fake server receives ([`Request`]) and what it is told to answer ([`Reply`],
//! [`Expect`]).
use std::time::Duration;

/// A request as the fake server received it, recorded for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its position among the requests the server received (0-based, in order of arrival).
    pub index: usize,
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query (`/v1/submissions/status/driver-1`).
    pub path: String,
    /// The query after `?`, if any (undecoded).
    pub query: Option<String>,
    /// Header names (lower case, as hyper gives them) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// The value of header `name` (case-insensitive); the first one if repeated.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
    /// The path and query as sent (`/log/?driverId=d&logType=stderr`).
    pub fn target(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }
    /// `METHOD target`, e.g. `GET /json/`.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.target())
    }
    /// The value of query parameter `name` (undecoded).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.as_deref()?.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then(|| v.to_string())
        })
    }
    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The body parsed as JSON, if it is.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// What the fake server does with a request. Faults are replies too: a [`Reply::Hang`] stands
/// for "longer than the client's timeout", a [`Reply::Drop`] for a lost response.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Reply {
    /// A complete response (hyper adds `content-length`).
    Full {
        /// The status code.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
    },
    /// The reply, after a wait (a slow backend; longer than the client's timeout, a timeout).
    Delayed(Duration, Box<Reply>),
    /// Reads the request and never answers.
    Hang,
    /// Reads the request, then closes the connection without a word: the request may have been
    /// acted upon, the response is lost.
    Drop,
    /// `200` without a length, then spaces for as long as the client reads (counted in
    /// [`crate::http::FakeServer::streamed`]).
    Endless,
}

impl Reply {
    /// `status` with no body.
    pub fn status(status: u16) -> Reply {
        Reply::Full {
            status,
            headers: vec![],
            body: vec![],
        }
    }
    /// `status` with a text body.
    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Full {
            status,
            headers: vec![],
            body: body.into(),
        }
    }
    /// `200` with a JSON body and `content-type: application/json`.
    pub fn json(body: &serde_json::Value) -> Reply {
        Reply::text(200, body.to_string()).header("content-type", "application/json")
    }
    /// `429 Too Many Requests` with `Retry-After: <seconds>`.
    pub fn too_many_requests(retry_after_secs: u64) -> Reply {
        Reply::text(429, "slow down").header("retry-after", &retry_after_secs.to_string())
    }
    /// A 5xx (`503` unless told) with a short text body.
    pub fn server_error(status: u16) -> Reply {
        Reply::text(status, "the fake server was told to fail")
    }
    /// This reply with one more header (only a [`Reply::Full`] has headers; others unchanged).
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Full { headers, .. } = &mut self {
            headers.push((name.to_string(), value.to_string()));
        }
        self
    }
    /// This reply after `wait`.
    pub fn after(self, wait: Duration) -> Reply {
        Reply::Delayed(wait, Box::new(self))
    }
}

/// Which paths an expectation accepts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PathMatch {
    /// Exactly this path (query not compared).
    Exact(String),
    /// Any path starting with this.
    Prefix(String),
}

impl PathMatch {
    fn accepts(&self, path: &str) -> bool {
        match self {
            PathMatch::Exact(p) => path == p,
            PathMatch::Prefix(p) => path.starts_with(p.as_str()),
        }
    }
}

impl From<&str> for PathMatch {
    /// `"/x"` is exact, `"/x/*"` a prefix (`/x/`).
    fn from(p: &str) -> PathMatch {
        match p.strip_suffix('*') {
            Some(prefix) => PathMatch::Prefix(prefix.to_string()),
            None => PathMatch::Exact(p.to_string()),
        }
    }
}

/// One scripted exchange: a request the server expects next, and its reply.
#[derive(Debug, Clone)]
pub struct Expect {
    /// Expected method.
    pub method: String,
    /// Expected path.
    pub path: PathMatch,
    /// The reply.
    pub reply: Reply,
}

impl Expect {
    /// Expects `method` on `path` (see [`PathMatch`]'s `From<&str>`), answering `reply`.
    pub fn new(method: &str, path: impl Into<PathMatch>, reply: Reply) -> Expect {
        Expect {
            method: method.to_ascii_uppercase(),
            path: path.into(),
            reply,
        }
    }
    pub(crate) fn accepts(&self, r: &Request) -> bool {
        self.method == r.method && self.path.accepts(&r.path)
    }
    pub(crate) fn describe(&self) -> String {
        match &self.path {
            PathMatch::Exact(p) => format!("{} {p}", self.method),
            PathMatch::Prefix(p) => format!("{} {p}*", self.method),
        }
    }
}

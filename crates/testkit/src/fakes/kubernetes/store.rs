//! The fake API server's objects: namespaced pods, configmaps and services kept as JSON, with
//! `uid`, `resourceVersion`, `creationTimestamp`, label selectors, graceful deletion and
//! owner-reference garbage collection (see the parent module for what is followed).
use std::{
    collections::BTreeMap,
    time::{Duration, Instant, SystemTime},
};

use serde_json::{json, Map, Value};

/// A kind of object the fake keeps (its plural resource name in the URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// `pods` (`Pod`).
    Pod,
    /// `configmaps` (`ConfigMap`).
    ConfigMap,
    /// `services` (`Service`).
    Service,
    /// `networkpolicies` (`NetworkPolicy`, `networking.k8s.io/v1`): Spark 4.3 applies one per
    /// application.
    NetworkPolicy,
}

impl Kind {
    /// From the API group version (`v1`, `networking.k8s.io/v1`) and plural name of the URL.
    pub fn from_url(group_version: &str, plural: &str) -> Option<Kind> {
        [
            Kind::Pod,
            Kind::ConfigMap,
            Kind::Service,
            Kind::NetworkPolicy,
        ]
        .into_iter()
        .find(|k| k.plural() == plural && k.api_version() == group_version)
    }
    /// The object's `apiVersion`.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::NetworkPolicy => "networking.k8s.io/v1",
            _ => "v1",
        }
    }
    /// The object's `kind`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::ConfigMap => "ConfigMap",
            Kind::Service => "Service",
            Kind::NetworkPolicy => "NetworkPolicy",
        }
    }
    /// The plural resource name (`pods`).
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Pod => "pods",
            Kind::ConfigMap => "configmaps",
            Kind::Service => "services",
            Kind::NetworkPolicy => "networkpolicies",
        }
    }
}

/// (kind, namespace, name).
pub(crate) type Key = (Kind, String, String);

#[derive(Default)]
pub(crate) struct Objects {
    pub(crate) items: BTreeMap<Key, Value>,
    /// Objects being deleted gracefully: gone at this instant.
    pub(crate) dying: BTreeMap<Key, Instant>,
    pub(crate) version: u64,
    pub(crate) uids: u64,
    pub(crate) pods_created: u64,
}

/// A `metav1.Status` failure, as the API server answers errors.
pub(crate) fn status(code: u16, reason: &str, message: &str, details: Value) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "details": details, "code": code}),
    )
}

pub(crate) fn not_found(kind: Kind, name: &str) -> (u16, Value) {
    status(
        404,
        "NotFound",
        &format!("{} \"{name}\" not found", kind.plural()),
        json!({"name": name, "kind": kind.plural()}),
    )
}

/// RFC 3339 in UTC, seconds resolution (as `creationTimestamp`).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (H. Hinnant's algorithm): a test kit needs no date crate for this.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl Objects {
    fn bump(&mut self) -> String {
        self.version += 1;
        self.version.to_string()
    }

    /// Creates `obj` (its `metadata.name` set): `409 AlreadyExists` if the name is taken.
    pub(crate) fn create(&mut self, kind: Kind, ns: &str, mut obj: Value) -> (u16, Value) {
        self.reap();
        let Some(name) = obj.pointer("/metadata/name").and_then(Value::as_str) else {
            return status(
                422,
                "Invalid",
                &format!(
                    "{} \"\" is invalid: metadata.name: Required value",
                    kind.name()
                ),
                json!({"kind": kind.plural()}),
            );
        };
        let name = name.to_string();
        let key = (kind, ns.to_string(), name.clone());
        if self.items.contains_key(&key) {
            return status(
                409,
                "AlreadyExists",
                &format!("{} \"{name}\" already exists", kind.plural()),
                json!({"name": name, "kind": kind.plural()}),
            );
        }
        self.uids += 1;
        let uid = format!("00000000-0000-4000-8000-{:012x}", self.uids);
        let rv = self.bump();
        let o = obj.as_object_mut().expect("checked: has metadata.name");
        o.insert("kind".into(), kind.name().into());
        o.insert("apiVersion".into(), kind.api_version().into());
        let meta = o
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
            .expect("checked");
        meta.insert("namespace".into(), ns.into());
        meta.insert("uid".into(), uid.into());
        meta.insert("resourceVersion".into(), rv.into());
        meta.insert(
            "creationTimestamp".into(),
            rfc3339(SystemTime::now()).into(),
        );
        if kind == Kind::Pod {
            self.pods_created += 1;
            o.insert(
                "status".into(),
                json!({"phase": "Pending", "conditions": [], "qosClass": "Burstable"}),
            );
        }
        self.items.insert(key, obj.clone());
        (201, obj)
    }

    pub(crate) fn get(&mut self, kind: Kind, ns: &str, name: &str) -> Option<&mut Value> {
        self.reap();
        self.items
            .get_mut(&(kind, ns.to_string(), name.to_string()))
    }

    /// Changes object `name` with `f` and gives it a new `resourceVersion`.
    pub(crate) fn update(
        &mut self,
        kind: Kind,
        ns: &str,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> Option<Value> {
        let rv = self.bump();
        let obj = self.get(kind, ns, name)?;
        f(obj);
        obj["metadata"]["resourceVersion"] = rv.into();
        Some(obj.clone())
    }

    /// Objects of `kind` in `ns` matching `selector` (already parsed), by name.
    pub(crate) fn list(&mut self, kind: Kind, ns: Option<&str>, selector: &Selector) -> Vec<Value> {
        self.reap();
        self.items
            .iter()
            .filter(|((k, n, _), _)| *k == kind && ns.is_none_or(|ns| ns == n))
            .filter(|(_, v)| selector.matches(v.pointer("/metadata/labels")))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Deletes `name`: at once with grace 0 (or any non-pod), else marks it terminating
    /// (`deletionTimestamp`) and removes it once `grace` has passed. Returns the object.
    pub(crate) fn delete(
        &mut self,
        kind: Kind,
        ns: &str,
        name: &str,
        grace: Option<u64>,
    ) -> (u16, Value) {
        self.reap();
        let key = (kind, ns.to_string(), name.to_string());
        let Some(obj) = self.items.get(&key).cloned() else {
            return not_found(kind, name);
        };
        let grace = if kind == Kind::Pod {
            grace.unwrap_or(30)
        } else {
            0
        };
        if grace == 0 {
            self.remove(&key);
            return (200, obj);
        }
        let rv = self.bump();
        let now = SystemTime::now();
        let obj = self.items.get_mut(&key).expect("present");
        obj["metadata"]["deletionTimestamp"] = rfc3339(now + Duration::from_secs(grace)).into();
        obj["metadata"]["deletionGracePeriodSeconds"] = grace.into();
        obj["metadata"]["resourceVersion"] = rv.into();
        let obj = obj.clone();
        self.dying
            .entry(key)
            .or_insert_with(|| Instant::now() + Duration::from_secs(grace));
        (200, obj)
    }

    /// Ends every graceful deletion now (the kubelet confirmed the containers are gone).
    pub(crate) fn finish_deletions(&mut self) {
        let keys: Vec<Key> = self.dying.keys().cloned().collect();
        for k in keys {
            self.remove(&k);
        }
    }

    /// Removes what has passed its grace period.
    fn reap(&mut self) {
        let now = Instant::now();
        let due: Vec<Key> = self
            .dying
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            self.remove(&k);
        }
    }

    /// Removes `key` and, as the garbage collector does (background propagation), every object
    /// in its namespace that names it as an owner, recursively.
    pub(crate) fn remove(&mut self, key: &Key) {
        self.dying.remove(key);
        let Some(obj) = self.items.remove(key) else {
            return;
        };
        self.bump();
        let Some(uid) = obj.pointer("/metadata/uid").and_then(Value::as_str) else {
            return;
        };
        let owned: Vec<Key> = self
            .items
            .iter()
            .filter(|((_, ns, _), _)| *ns == key.1)
            .filter(|(_, v)| {
                v.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in owned {
            self.remove(&k);
        }
    }
}

/// A parsed label selector: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x,y)`,
/// joined by commas (all must hold).
#[derive(Debug, Clone, Default)]
pub struct Selector(Vec<Req>);

#[derive(Debug, Clone)]
enum Req {
    Eq(String, String),
    Ne(String, String),
    Exists(String),
    Absent(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

impl Selector {
    /// Parses a selector as the API server does; `Err` names what it could not read.
    pub fn parse(s: &str) -> Result<Selector, String> {
        let mut reqs = Vec::new();
        let mut rest = s.trim();
        while !rest.is_empty() {
            // A comma inside `in (a,b)` does not end the requirement.
            let end = match rest.find('(') {
                Some(p) if rest.find(',').is_some_and(|c| c > p) => rest[p..]
                    .find(')')
                    .map(|q| p + q + 1)
                    .ok_or_else(|| format!("unclosed '(' in label selector {s:?}"))?,
                _ => rest.find(',').unwrap_or(rest.len()),
            };
            let part = rest[..end].trim();
            rest = rest[end..].trim_start_matches(',').trim();
            reqs.push(Self::requirement(part).ok_or_else(|| {
                format!("unable to parse requirement {part:?} of label selector {s:?}")
            })?);
        }
        Ok(Selector(reqs))
    }

    fn requirement(p: &str) -> Option<Req> {
        let set = |rest: &str| -> Option<Vec<String>> {
            let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
            Some(inner.split(',').map(|v| v.trim().to_string()).collect())
        };
        if let Some((k, v)) = p.split_once("!=") {
            return Some(Req::Ne(k.trim().into(), v.trim().into()));
        }
        if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
            return Some(Req::Eq(k.trim().into(), v.trim().into()));
        }
        if let Some((k, v)) = p.split_once(" notin ") {
            return Some(Req::NotIn(k.trim().into(), set(v)?));
        }
        if let Some((k, v)) = p.split_once(" in ") {
            return Some(Req::In(k.trim().into(), set(v)?));
        }
        if let Some(k) = p.strip_prefix('!') {
            return Some(Req::Absent(k.trim().into()));
        }
        (!p.contains(' ')).then(|| Req::Exists(p.into()))
    }

    /// Whether labels `labels` (an object, or none) satisfy every requirement.
    pub fn matches(&self, labels: Option<&Value>) -> bool {
        let empty = Map::new();
        let l = labels.and_then(Value::as_object).unwrap_or(&empty);
        let get = |k: &str| l.get(k).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => get(k) == Some(v),
            Req::Ne(k, v) => get(k) != Some(v),
            Req::Exists(k) => l.contains_key(k),
            Req::Absent(k) => !l.contains_key(k),
            Req::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Req::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
        })
    }
}

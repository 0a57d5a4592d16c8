//! The Spark layer shared by every Spark backend (standalone today; YARN, Kubernetes and Livy
//! next): one out-of-memory classifier ([`oom`]), conf handling and redaction ([`conf`]), where
//! the tag goes ([`tag`]), the recovery shape ([`recovery`]) and the spark-submit runner
//! ([`submit`]). Backends keep only what is theirs (their API, their ids, their states).
pub mod conf;
pub mod oom;
pub mod recovery;
pub mod spec;
pub mod submit;
pub mod tag;
pub mod version;

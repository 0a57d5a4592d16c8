//! The owners' byte locks ([`super`]): judged from a fresh open, so this process's own holds
//! count as held; pre-8 owners by their own file.
use rusqlite::Connection;
use tether_core::ids::OwnerId;

use super::{gone_owners, legacy_file, lock, owner_gone, register};

fn db() -> Connection {
    let c = Connection::open_in_memory().expect("memory db");
    c.execute_batch(
        "CREATE TABLE runs (key TEXT, owner TEXT, phase TEXT);
         CREATE TABLE owner_liveness (owner TEXT PRIMARY KEY, since_ms INTEGER NOT NULL);
         CREATE TABLE owner_locks (owner TEXT PRIMARY KEY, since_ms INTEGER NOT NULL);",
    )
    .expect("schema");
    c
}

fn gone_list(c: &Connection, dir: &std::path::Path) -> Vec<String> {
    serde_json::from_str(&gone_owners(c, "t", dir).expect("gone")).expect("json")
}

#[test]
fn a_held_byte_is_alive_and_a_dropped_one_gone_without_any_file_per_owner() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("s.db.owners");
    let c = db();
    let (a, b) = (OwnerId("run@h:1:a".into()), OwnerId("worker@h:2".into()));
    let held_a = lock(&dir, "t", &a).expect("lock a").expect("a held");
    let _held_b = lock(&dir, "t", &b).expect("lock b").expect("b held");
    register(&c, "t", &dir, &a).expect("register a");
    register(&c, "t", &dir, &b).expect("register b");
    assert!(gone_list(&c, &dir).is_empty(), "both alive");
    assert!(!owner_gone(&c, "t", &dir, Some(&a.0)).expect("a"));
    // The same owner cannot be held twice, even from this process.
    assert!(lock(&dir, "t", &a).expect("again").is_none());
    drop(held_a);
    assert_eq!(gone_list(&c, &dir), vec![a.0.clone()]);
    assert!(owner_gone(&c, "t", &dir, Some(&a.0)).expect("a"));
    assert!(!owner_gone(&c, "t", &dir, Some(&b.0)).expect("b"));
    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(files, vec!["live.lock"], "one file for every owner");
    // An unregistered owner is judged by its lease: never "gone" here.
    assert!(!owner_gone(&c, "t", &dir, Some("stranger")).expect("stranger"));
}

#[test]
fn an_owner_of_an_older_build_is_judged_by_its_own_lock_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("s.db.owners");
    std::fs::create_dir_all(&dir).expect("dir");
    let c = db();
    let old = "run@h:3:old";
    c.execute(
        "INSERT INTO owner_liveness (owner, since_ms) VALUES (?1, 0)",
        [old],
    )
    .expect("row");
    let file = std::fs::File::create(legacy_file(&dir, old)).expect("file");
    file.lock().expect("flock");
    assert!(!owner_gone(&c, "t", &dir, Some(old)).expect("old"), "held");
    drop(file);
    assert!(
        owner_gone(&c, "t", &dir, Some(old)).expect("old"),
        "lockable"
    );
    // Registering a new owner clears the gone old one (row and file): it holds no run.
    let new = OwnerId("run@h:4:new".into());
    let _held = lock(&dir, "t", &new).expect("lock").expect("held");
    register(&c, "t", &dir, &new).expect("register");
    assert!(!legacy_file(&dir, old).exists());
    let left: i64 = c
        .query_row("SELECT COUNT(*) FROM owner_liveness", [], |r| r.get(0))
        .expect("count");
    assert_eq!(left, 0);
}

//! The statements a worker runs at every tick read O(batch) rows, not every run: checked on
//! SQLite's own query plans (`EXPLAIN QUERY PLAN`) of a migrated database holding runs.
use std::time::Duration;

use rusqlite::{params, Connection};

use super::{open, sql};

/// A migrated database with `n` leased, unfinished runs and a few free and finished ones.
fn database(dir: &tempfile::TempDir, n: i64) -> Connection {
    let path = dir.path().join("plan.db");
    let opened = open::open_blocking(
        &path,
        "plan.db",
        Duration::from_secs(5),
        crate::Access::Write,
    )
    .expect("open");
    let c = opened.conn;
    c.execute(
        "WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM i WHERE n < ?1)
         INSERT INTO runs (key, kind, spec, spec_name, spec_hash, phase, queued, created_at_ms,
                           updated_at_ms, owner, lease_expires_at_ms, epoch)
         SELECT 'r' || n, 'local', '', 's', 'h',
                CASE WHEN n % 10 = 0 THEN 'finished' WHEN n % 7 = 0 THEN 'empty' ELSE 'submitted' END,
                1, n, n, CASE WHEN n % 7 = 0 OR n % 10 = 0 THEN NULL ELSE 'w' || (n % 3) END,
                CASE WHEN n % 7 = 0 OR n % 10 = 0 THEN NULL ELSE 9000000000000 END, 1 FROM i",
        params![n],
    )
    .expect("insert runs");
    c
}

/// The plan's lines, for messages.
fn plan(c: &Connection, statement: &str, args: impl rusqlite::Params) -> Vec<String> {
    let mut s = c
        .prepare(&format!("EXPLAIN QUERY PLAN {statement}"))
        .expect("explain");
    let rows = s
        .query_map(args, |r| r.get::<_, String>(3))
        .expect("plan")
        .collect::<Result<Vec<_>, _>>()
        .expect("plan rows");
    rows
}

#[test]
fn claim_candidates_are_found_through_indexes_not_by_scanning_every_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = database(&dir, 5_000);
    let lines = plan(
        &c,
        sql::CLAIM_CANDIDATES,
        params![1_000_i64, 100_i64, "h", r#"["local"]"#, r#"["w1"]"#],
    );
    // A `SCAN` of `runs` reads every row it walks: only the walk of the free runs in claim
    // order is allowed (it stops after `limit` admitted rows); the other parts are `SEARCH`es.
    // The single-`WHERE` statement this replaced scanned `runs_claim` (every unfinished run)
    // and sorted them all.
    let scans: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("SCAN runs") && !l.contains("USING INDEX runs_free"))
        .collect();
    assert!(
        scans.is_empty(),
        "a claim must not scan the runs (O(all runs) at every claim tick): {lines:#?}"
    );
    // The free runs are walked in claim order on their index: no sort of every free run.
    let free = lines
        .iter()
        .position(|l| l.contains("SCAN runs USING INDEX runs_free"))
        .unwrap_or_else(|| panic!("free runs not read through runs_free: {lines:#?}"));
    assert!(
        !lines[free + 1..]
            .iter()
            .take_while(|l| !l.contains("runs_claim"))
            .any(|l| l.contains("TEMP B-TREE FOR ORDER BY")),
        "the free runs are sorted instead of walked in claim order: {lines:#?}"
    );
}

#[test]
fn claim_candidates_keep_the_claim_order_across_their_parts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = database(&dir, 200);
    // r1..: w0/w1/w2 hold leases that never expire; r7, r14, ... are free. Make r2 expired
    // and let w1 be gone: their runs come in creation order with the free ones.
    c.execute(
        "UPDATE runs SET lease_expires_at_ms = 10 WHERE key = 'r2'",
        [],
    )
    .expect("expire r2");
    let keys: Vec<String> = c
        .prepare(sql::CLAIM_CANDIDATES)
        .expect("prepare")
        .query_map(
            params![1_000_i64, 6_i64, "h", Option::<String>::None, r#"["w1"]"#],
            |r| r.get(0),
        )
        .expect("claim")
        .collect::<Result<_, _>>()
        .expect("rows");
    // w1 holds runs with n % 3 = 1 (not multiples of 7 or 10): r1, r4, r13, ...
    assert_eq!(keys, ["r1", "r2", "r4", "r7", "r13", "r14"]);
}

#[test]
fn the_idle_check_and_the_run_gauge_do_not_read_the_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = database(&dir, 1_000);
    let any: bool = c
        .query_row(sql::ANY_UNFINISHED, params!["h", r#"["local"]"#], |r| {
            r.get(0)
        })
        .expect("any");
    assert!(any);
    let none: bool = c
        .query_row(sql::ANY_UNFINISHED, params!["h", r#"["yarn"]"#], |r| {
            r.get(0)
        })
        .expect("none");
    assert!(!none, "no run of that kind");
    let counts: Vec<(String, String, i64)> = c
        .prepare(sql::COUNT_RUNS)
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("count")
        .collect::<Result<_, _>>()
        .expect("rows");
    let total: i64 = counts.iter().map(|c| c.2).sum();
    assert_eq!(
        total, 900,
        "finished runs have no readable outcome here: {counts:?}"
    );
}

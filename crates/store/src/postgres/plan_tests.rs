//! The claim a worker runs at every tick reads O(batch) rows, not every leased run: checked
//! on PostgreSQL's own plan (`EXPLAIN ANALYZE`) of a migrated scratch database holding 20,000
//! leased runs (needs the test server: see `scripts/postgres`).
use tokio_postgres::NoTls;

use super::{scratch::ScratchDb, sql, PgStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_reads_no_leased_run_that_it_cannot_take() {
    let db = ScratchDb::create_from_env()
        .await
        .expect("scratch database");
    // Opening migrates the schema.
    let store = PgStore::connect(db.url()).await.expect("open");
    let (client, conn) = tokio_postgres::connect(db.url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
        .batch_execute(
            "INSERT INTO runs (key, kind, spec, spec_name, spec_hash, phase, queued,
                               created_at_ms, updated_at_ms, owner, lease_expires_at_ms, epoch)
             SELECT 'r' || n, 'local', '', 's', 'h',
                    CASE WHEN n % 10 = 0 THEN 'finished' ELSE 'submitted' END, true, n, n,
                    CASE WHEN n % 10 = 0 THEN NULL ELSE 'w' || (n % 50) END,
                    CASE WHEN n % 10 = 0 THEN NULL ELSE 9000000000000 END, 1
             FROM generate_series(1, 20000) n;
             INSERT INTO owner_liveness (owner, since_ms) VALUES ('w1', 0);
             ANALYZE runs;",
        )
        .await
        .expect("insert runs");
    let explain = format!("EXPLAIN (ANALYZE, COSTS OFF, FORMAT TEXT) {}", sql::CLAIM);
    // In a transaction rolled back: EXPLAIN ANALYZE runs the statement (w1 is "gone": nobody
    // holds its advisory lock, so its runs are taken; that is what the plan must find fast).
    client.batch_execute("BEGIN").await.expect("begin");
    let rows = client
        .query(
            explain.as_str(),
            &[
                &100_i64,
                &"claimer",
                &9_000_i64,
                &"h",
                &Some(vec!["local".to_string()]),
            ],
        )
        .await
        .expect("explain the claim");
    client.batch_execute("ROLLBACK").await.expect("rollback");
    let lines: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let text = lines.join("\n");
    // The most rows any plan node read (returned plus removed by its filter): the
    // single-`WHERE` claim this replaced walked the leased runs on `runs_claim` in claim order
    // (~4,400 here before it found 100 of w1's), at every claim tick of every worker.
    let number_after = |l: &str, word: &str| -> Option<u64> {
        let at = l.find(word)?;
        l[at + word.len()..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    let most = lines
        .iter()
        .map(|l| {
            number_after(l, "rows=").unwrap_or(0)
                + number_after(l, "Rows Removed by Filter: ").unwrap_or(0)
        })
        .max()
        .unwrap_or(0);
    assert!(!text.contains("Seq Scan on runs"), "{text}");
    // w1's 400 runs are read once to order them: O(gone owner's runs + batch).
    assert!(most <= 1_000, "a plan node read {most} rows:\n{text}");
    drop(store);
    drop(client);
    db.drop_db().await;
}

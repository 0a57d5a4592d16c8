//! SQLite-only properties: refusing foreign files untouched, lock timeouts, open errors.
#![cfg(feature = "sqlite")]
mod common;

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use common::*;
use tether_core::store::StoreError;
use tether_store::sqlite::{SqliteOptions, SqliteStore};

type R = anyhow::Result<()>;

fn corrupt<T: std::fmt::Debug>(r: Result<T, StoreError>) -> R {
    match r {
        Err(StoreError::Corrupt { message, .. }) => {
            ensure!(message.contains("left untouched"), "{message}");
            Ok(())
        }
        other => anyhow::bail!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_refused_untouched() -> R {
    let dir = tempfile::tempdir()?;
    for (name, bytes) in [
        ("notes.db", b"these are my notes, not a database\n".to_vec()),
        ("short.db", b"SQLite".to_vec()),
        ("binary.db", (0..=255u8).cycle().take(8192).collect()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes)?;
        corrupt(
            tether_store::open(path.to_str().context("utf-8")?)
                .await
                .map(|_| ()),
        )?;
        ensure!(std::fs::read(&path)? == bytes, "{name} was modified");
        ensure!(
            !dir.path().join(format!("{name}-wal")).exists(),
            "{name}: a WAL file was created"
        );
    }
    Ok(())
}

#[tokio::test]
async fn an_sqlite_db_of_another_application_is_refused_untouched() -> R {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("other.db");
    {
        let c = rusqlite::Connection::open(&path)?;
        c.execute_batch("CREATE TABLE runs (id INTEGER PRIMARY KEY, x TEXT); INSERT INTO runs (x) VALUES ('mine');")?;
    }
    let before = std::fs::read(&path)?;
    corrupt(SqliteStore::open(&path).await)?;
    ensure!(std::fs::read(&path)? == before, "foreign database modified");

    let path2 = dir.path().join("other-app.db");
    {
        let c = rusqlite::Connection::open(&path2)?;
        c.execute_batch("PRAGMA application_id = 1234; CREATE TABLE t (x);")?;
    }
    let before = std::fs::read(&path2)?;
    corrupt(SqliteStore::open(&path2).await)?;
    ensure!(
        std::fs::read(&path2)? == before,
        "foreign database modified"
    );
    Ok(())
}

#[tokio::test]
async fn empty_files_and_empty_databases_are_initialised() -> R {
    let dir = tempfile::tempdir()?;
    let empty = dir.path().join("touched.db");
    std::fs::write(&empty, b"")?;
    let s = tether_store::open(empty.to_str().context("utf-8")?).await?;
    create(&s, "a").await?;

    let blank = dir.path().join("blank.db");
    rusqlite::Connection::open(&blank)?.execute_batch("PRAGMA user_version = 0; VACUUM;")?;
    let s = SqliteStore::open(&blank).await?;
    ensure!(tether_core::Store::list_runs(&s).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn data_survives_reopen_and_concurrent_openers_agree() -> R {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("deep").join("er").join("t.db");
    let loc = format!("sqlite://{}", path.display());
    // Eight "processes" open a brand-new file at once: all succeed, schema created once.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let loc = loc.clone();
        tasks.spawn(async move { tether_store::open(&loc).await.map(|_| ()) });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    {
        let s = tether_store::open(&loc).await?;
        create(&s, "persist").await?;
        acquire(&s, "persist", "w", LONG).await?;
    }
    let s = tether_store::open(path.to_str().context("utf-8")?).await?;
    let r = s
        .get_run(&key("persist"))
        .await?
        .context("run after reopen")?;
    ensure!(r.epoch.0 == 1 && r.lease_alive);
    let c = rusqlite::Connection::open(&path)?;
    let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    ensure!(mode == "wal", "{mode}");
    let versions: i64 = c.query_row("SELECT COUNT(*) FROM schema_version", [], |r| r.get(0))?;
    ensure!(versions == 8, "one row per schema version");
    Ok(())
}

#[tokio::test]
async fn a_database_locked_beyond_the_busy_timeout_is_locked() -> R {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("locked.db");
    let opts = SqliteOptions {
        busy_timeout: Duration::from_millis(300),
        ..SqliteOptions::default()
    };
    let store: std::sync::Arc<dyn tether_core::Store> =
        std::sync::Arc::new(SqliteStore::open_with(&path, opts.clone()).await?);
    create(&store, "before").await?;

    // Another "process" holds the write lock.
    let other = rusqlite::Connection::open(&path)?;
    other.execute_batch("BEGIN EXCLUSIVE")?;
    let t0 = Instant::now();
    match store.create_run(&new_run("during", false)).await {
        Err(e @ StoreError::Locked { .. }) => ensure!(e.is_transient(), "Locked must be transient"),
        other => anyhow::bail!("expected Locked, got {other:?}"),
    }
    ensure!(
        t0.elapsed() >= Duration::from_millis(250),
        "gave up before the busy timeout"
    );
    // Reads still work (WAL), and the write goes through once the lock is gone.
    ensure!(store.get_run(&key("before")).await?.is_some());
    other.execute_batch("COMMIT")?;
    create(&store, "after").await?;

    // A fresh file locked during its first open (migration) is Locked too, not a crash.
    let fresh = dir.path().join("fresh.db");
    let holder = rusqlite::Connection::open(&fresh)?;
    holder.execute_batch("BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS scratch (x);")?;
    match SqliteStore::open_with(&fresh, opts).await {
        Err(StoreError::Locked { .. }) => {}
        other => anyhow::bail!("expected Locked on open, got {other:?}"),
    }
    holder.execute_batch("ROLLBACK")?;
    Ok(())
}

#[tokio::test]
async fn an_unwritable_location_says_what_to_do() -> R {
    let dir = tempfile::tempdir()?;
    // A regular file where a directory is needed fails for root too (unlike permissions).
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x")?;
    let loc = blocker.join("sub").join("tether.db");
    match tether_store::open(loc.to_str().context("utf-8")?).await {
        Err(StoreError::Open { message, .. }) => {
            ensure!(
                message.contains("--state") && message.contains("TETHER_STATE"),
                "{message}"
            )
        }
        other => anyhow::bail!("expected Open, got {:?}", other.map(|_| ())),
    }
    match tether_store::open(dir.path().to_str().context("utf-8")?).await {
        Err(StoreError::Open { .. }) => {}
        other => anyhow::bail!(
            "a directory as the store: expected Open, got {:?}",
            other.map(|_| ())
        ),
    }
    Ok(())
}

#[test]
fn default_path_follows_xdg() {
    // Only this test touches these variables in this binary.
    std::env::set_var("XDG_STATE_HOME", "/xdg/state");
    assert_eq!(
        tether_store::default_sqlite_path(),
        std::path::Path::new("/xdg/state/tether/tether.db")
    );
    std::env::set_var("XDG_STATE_HOME", "relative/ignored");
    std::env::set_var("HOME", "/home/someone");
    assert_eq!(
        tether_store::default_sqlite_path(),
        std::path::Path::new("/home/someone/.local/state/tether/tether.db")
    );
}

/// Several OS processes (this test binary re-run as children) claim from one file at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_sharing_a_file_never_double_claim() -> R {
    const CHILD_ENV: &str = "TETHER_STORE_TEST_CHILD_DB";
    const NAME: &str = "processes_sharing_a_file_never_double_claim";
    if let Ok(loc) = std::env::var(CHILD_ENV) {
        // Child: claim until nothing is left, printing what was taken.
        let s = tether_store::open(&loc).await?;
        let me = owner(&format!("pid-{}", std::process::id()));
        loop {
            let batch = s
                .claim(&me, LONG, 5, &tether_core::store::ClaimFilter::default())
                .await?;
            if batch.is_empty() {
                return Ok(());
            }
            for (lease, _) in batch {
                println!("CLAIMED {} {}", lease.key, lease.epoch);
            }
        }
    }
    const RUNS: usize = 300;
    let dir = tempfile::tempdir()?;
    let loc = format!("sqlite://{}", dir.path().join("shared.db").display());
    let s = tether_store::open(&loc).await?;
    for i in 0..RUNS {
        s.create_run(&new_run(&format!("p-{i:03}"), true)).await?;
    }
    let exe = std::env::current_exe()?;
    let children: Vec<std::process::Child> = (0..4)
        .map(|_| {
            std::process::Command::new(&exe)
                .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, &loc)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    let mut seen = std::collections::HashMap::new();
    for (i, child) in children.into_iter().enumerate() {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
        ensure!(
            out.status.success(),
            "child {i} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // With --nocapture the harness's "test NAME ... " may share the first line.
            if let Some(rest) = line.find("CLAIMED ").map(|i| &line[i + "CLAIMED ".len()..]) {
                ensure!(rest.ends_with(" 1"), "epoch should be 1: {rest}");
                if let Some(prev) = seen.insert(rest.to_string(), i) {
                    anyhow::bail!("{rest} claimed by child {prev} and child {i}");
                }
            }
        }
    }
    ensure!(seen.len() == RUNS, "claimed {} of {RUNS}", seen.len());
    Ok(())
}

/// Closing does not checkpoint (issue 15, durability overhead): the WAL written by one
/// process is the one the next appends to (not deleted at exit and created again, with its
/// header and the directory fsynced), and nothing committed is lost by leaving it there.
#[tokio::test]
async fn closing_keeps_the_wal_and_the_next_process_appends_to_it() -> R {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("t.db");
    let wal = dir.path().join("t.db-wal");
    {
        let s = tether_store::open(path.to_str().context("utf-8")?).await?;
        create(&s, "first").await?;
    }
    let before = std::fs::metadata(&wal).context("the WAL was deleted at close")?;
    ensure!(before.len() > 0, "the WAL was emptied at close");
    {
        let s = tether_store::open(path.to_str().context("utf-8")?).await?;
        ensure!(s.get_run(&key("first")).await?.is_some(), "lost at close");
        create(&s, "second").await?;
    }
    let after = std::fs::metadata(&wal)?;
    ensure!(after.ino() == before.ino(), "the WAL was created again");
    // Another SQLite reader (checkpointing on its own close) sees both runs.
    let c = rusqlite::Connection::open(&path)?;
    let n: i64 = c.query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))?;
    ensure!(n == 2, "{n} runs");
    Ok(())
}

//! PostgreSQL-only properties: outages (through a real TCP proxy in front of the real server),
//! timeouts, password redaction, concurrent migrations, foreign databases.
#![cfg(feature = "postgres")]
mod common;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{ensure, Context};
use common::*;
use tether_core::{store::StoreError, Store};
use tether_store::postgres::{scratch::ScratchDb, PgOptions, PgStore};
use tokio::{net::TcpListener, task::AbortHandle};

type R = anyhow::Result<()>;

/// What the proxy does with a connection.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Pass bytes both ways to the real server.
    Forward,
    /// Accept and then say nothing (a hung server or a black-holed network).
    Stall,
}

/// A TCP proxy in front of the real PostgreSQL, so a test can cut the server off and bring it
/// back without stopping the shared server other tests use.
struct Proxy {
    port: u16,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(port: u16, mode: Mode) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        let tasks: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let t = Arc::clone(&tasks);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if mode == Mode::Stall {
                        std::future::pending::<()>().await;
                    }
                    if let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", 5432)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                t.lock().expect("proxy task list").push(conn.abort_handle());
            }
        });
        tasks
            .lock()
            .expect("proxy task list")
            .push(accept.abort_handle());
        Ok(Proxy { port, tasks })
    }

    /// Closes the listener and every proxied connection (the server "goes away").
    fn stop(&self) {
        for t in self.tasks.lock().expect("proxy task list").drain(..) {
            t.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

fn via_port(url: &str, port: u16) -> String {
    url.replace("127.0.0.1:5432", &format!("127.0.0.1:{port}"))
}

fn quick() -> PgOptions {
    PgOptions {
        connections: 2,
        connect_timeout: Duration::from_secs(1),
        query_timeout: Duration::from_secs(2),
    }
}

fn unavailable<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) -> R {
    match r {
        Err(e @ StoreError::Unavailable { .. }) => {
            ensure!(e.is_transient(), "Unavailable must be transient");
            Ok(())
        }
        other => anyhow::bail!("{what}: expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_the_server_going_away_and_coming_back() -> R {
    let db = ScratchDb::create_from_env().await?;
    let proxy = Proxy::start(0, Mode::Forward).await?;
    let url = via_port(db.url(), proxy.port);
    let store: Arc<dyn Store> = Arc::new(PgStore::connect_with(&url, quick()).await?);
    create(&store, "outage").await?;
    let lease = acquire(&store, "outage", "w", LONG).await?;

    // Down: every call fails fast with Unavailable; none hangs, none panics.
    proxy.stop();
    for _ in 0..4 {
        let t0 = Instant::now();
        unavailable(store.get_run(&key("outage")).await, "get_run while down")?;
        unavailable(store.renew(&lease, LONG).await, "renew while down")?;
        ensure!(
            t0.elapsed() < Duration::from_secs(5),
            "a call while down took {:?}",
            t0.elapsed()
        );
    }

    // Back (same address): the store reconnects by itself.
    let _back = Proxy::start(proxy.port, Mode::Forward).await?;
    let mut recovered = false;
    for _ in 0..10 {
        match store.get_run(&key("outage")).await {
            Ok(r) => {
                ensure!(r.context("run")?.epoch == lease.epoch);
                recovered = true;
                break;
            }
            Err(e) => ensure!(e.is_transient(), "non-transient error after recovery: {e}"),
        }
    }
    ensure!(recovered, "the store did not reconnect");
    store.renew(&lease, LONG).await?;
    create(&store, "after-outage").await?;
    db.drop_db().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_its_sessions_are_killed() -> R {
    let db = ScratchDb::create_from_env().await?;
    let store: Arc<dyn Store> = Arc::new(PgStore::connect_with(db.url(), quick()).await?);
    create(&store, "killed").await?;
    // What a server restart does to sessions: terminate them all (57P01 admin_shutdown).
    let (client, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    client
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db.name()],
        )
        .await?;
    let mut ok = 0;
    for _ in 0..6 {
        match store.get_run(&key("killed")).await {
            Ok(r) => {
                ensure!(r.is_some());
                ok += 1;
            }
            Err(e) => ensure!(
                matches!(e, StoreError::Unavailable { .. }),
                "expected Unavailable, got {e:?}"
            ),
        }
    }
    // Each of the two connections may fail once, then it is replaced.
    ensure!(
        ok >= 4,
        "only {ok} of 6 calls succeeded after the sessions were killed"
    );
    drop(client);
    db.drop_db().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_server_times_out_instead_of_hanging() -> R {
    let stall = Proxy::start(0, Mode::Stall).await?;
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", stall.port);
    let t0 = Instant::now();
    unavailable(
        PgStore::connect_with(&url, quick()).await,
        "open against a hung server",
    )?;
    ensure!(
        t0.elapsed() < Duration::from_secs(4),
        "took {:?}",
        t0.elapsed()
    );
    // Nothing listening at all: refused at once.
    let t0 = Instant::now();
    unavailable(
        tether_store::open("postgres://postgres@127.0.0.1:1/postgres")
            .await
            .map(|_| ()),
        "refused",
    )?;
    ensure!(
        t0.elapsed() < Duration::from_secs(6),
        "took {:?}",
        t0.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn passwords_never_appear_in_errors() -> R {
    let secret = "hunter2-Sup3rSecret";
    for url in [
        format!("postgres://tether:{secret}@127.0.0.1:1/tether"),
        format!("postgresql://tether@127.0.0.1:1/tether?password={secret}"),
        format!("postgres://tether:{secret}@127.0.0.1:1/tether?port=notaport"),
    ] {
        let err = match tether_store::open(&url).await {
            Err(e) => e,
            Ok(_) => anyhow::bail!("opened {url}?"),
        };
        let mut text = format!("{err} {err:?}");
        let mut src = std::error::Error::source(&err);
        while let Some(s) = src {
            text.push_str(&format!(" {s} {s:?}"));
            src = s.source();
        }
        ensure!(
            !text.contains(secret) && !text.contains("Sup3r"),
            "password leaked: {text}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_openers_migrate_once() -> R {
    let db = ScratchDb::create_from_env().await?;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let url = db.url().to_string();
        tasks.spawn(async move { PgStore::connect_with(&url, quick()).await.map(|_| ()) });
    }
    while let Some(r) = tasks.join_next().await {
        r.context("opener panicked")??;
    }
    let (client, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let n: i64 = client
        .query_one("SELECT count(*) FROM schema_version", &[])
        .await?
        .get(0);
    // One row per schema version (1..=8), each written once although eight processes raced.
    ensure!(n == 8, "{n} schema versions");
    drop(client);
    db.drop_db().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_database_is_refused_untouched() -> R {
    let db = ScratchDb::create_from_env().await?;
    let (client, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    client.batch_execute("CREATE TABLE runs (id serial PRIMARY KEY, note text); INSERT INTO runs (note) VALUES ('mine');").await?;
    match tether_store::open(db.url()).await {
        Err(StoreError::Corrupt { .. }) => {}
        other => anyhow::bail!("expected Corrupt, got {:?}", other.map(|_| ())),
    }
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .await?
        .get(0);
    ensure!(tables == 1, "the foreign database gained tables");
    drop(client);
    db.drop_db().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_expiry_uses_the_server_clock() -> R {
    let db = ScratchDb::create_from_env().await?;
    let store = tether_store::open(db.url()).await?;
    create(&store, "clock").await?;
    let (client, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let before: i64 = client
        .query_one("SELECT tether_now_ms()", &[])
        .await?
        .get(0);
    acquire(&store, "clock", "w", Duration::from_secs(30)).await?;
    let after: i64 = client
        .query_one("SELECT tether_now_ms()", &[])
        .await?
        .get(0);
    let exp = store
        .get_run(&key("clock"))
        .await?
        .context("run")?
        .lease_expires_at_ms
        .context("expiry")?;
    ensure!(
        exp >= before + 30_000 && exp <= after + 30_000,
        "{before} {exp} {after}"
    );
    // Move the lease into the past by the server's reckoning: it is free at once.
    client
        .execute(
            "UPDATE runs SET lease_expires_at_ms = tether_now_ms() - 1 WHERE key = 'clock'",
            &[],
        )
        .await?;
    ensure!(
        !store
            .get_run(&key("clock"))
            .await?
            .context("run")?
            .lease_alive
    );
    acquire(&store, "clock", "w2", LONG).await?;
    drop(client);
    db.drop_db().await;
    Ok(())
}

/// The backend pid holding an advisory lock in `db` (only liveness sessions take one there).
async fn liveness_holder(admin: &tokio_postgres::Client, db: &str) -> anyhow::Result<Option<i32>> {
    let row = admin
        .query_opt(
            "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
             WHERE l.locktype = 'advisory' AND l.granted AND d.datname = $1",
            &[&db],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_liveness_session_killed_under_a_live_owner_is_taken_again() -> R {
    let db = ScratchDb::create_from_env().await?;
    let store: Arc<dyn Store> = Arc::new(PgStore::connect_with(db.url(), quick()).await?);
    let owner = tether_core::ids::OwnerId("run@test:1:0000000000000001".into());
    let alive = store
        .hold_liveness(&owner)
        .await?
        .context("the liveness lock was not taken")?;
    let (admin, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let first = liveness_holder(&admin, db.name())
        .await?
        .context("no session holds the liveness lock")?;
    // What a server-side kill (or a restart) does to the owner's session.
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&first])
        .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let again = loop {
        match liveness_holder(&admin, db.name()).await? {
            Some(pid) if pid != first => break pid,
            _ => {
                ensure!(
                    Instant::now() < deadline,
                    "the liveness lock was not taken again within 30 s of its session's end"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    // Dropping the guard ends the new session too: the lock is free.
    drop(alive);
    let deadline = Instant::now() + Duration::from_secs(30);
    while liveness_holder(&admin, db.name()).await?.is_some() {
        ensure!(
            Instant::now() < deadline,
            "session {again} kept the lock after the guard was dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(admin);
    db.drop_db().await;
    Ok(())
}

/// A row locked by a write in flight (here a transaction held open) does not hold up the
/// worker's renewal: the other leases are renewed at once, the locked one is answered as held
/// but not renewed, and a takeover that write commits is never extended by the renewal.
/// (One statement over every held row used to wait for that lock until its TTL/5 bound.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_skips_rows_locked_by_a_write_in_flight() -> R {
    let db = ScratchDb::create_from_env().await?;
    let store = tether_store::open(db.url()).await?;
    for k in ["a", "b", "c"] {
        create(&store, k).await?;
        acquire(&store, k, "w", Duration::ZERO).await?;
    }
    let (mut client, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let tx = client.transaction().await?;
    tx.execute("SELECT 1 FROM runs WHERE key = 'b' FOR UPDATE", &[])
        .await?;
    let ttl = Duration::from_secs(30); // renewal bound TTL/5 = 6 s
    let started = Instant::now();
    let mut held: Vec<String> = store
        .renew_all(&owner("w"), ttl)
        .await?
        .into_iter()
        .map(|r| r.key.to_string())
        .collect();
    let took = started.elapsed();
    held.sort();
    ensure!(held == ["a", "b", "c"], "answer: {held:?}");
    ensure!(took < Duration::from_secs(2), "renewal waited {took:?}");
    for (k, renewed) in [("a", true), ("b", false), ("c", true)] {
        let run = store.get_run(&key(k)).await?.context("run")?;
        ensure!(run.lease_alive == renewed, "{k}: alive {}", run.lease_alive);
    }
    // The write holding `b` turns out to be a takeover (as a claim of an expired lease is).
    tx.execute(
        "UPDATE runs SET owner = 'thief', epoch = epoch + 1,
             lease_expires_at_ms = tether_now_ms() + 1000 WHERE key = 'b'",
        &[],
    )
    .await?;
    tx.commit().await?;
    let mut held: Vec<String> = store
        .renew_all(&owner("w"), ttl)
        .await?
        .into_iter()
        .map(|r| r.key.to_string())
        .collect();
    held.sort();
    ensure!(held == ["a", "c"], "answer after the takeover: {held:?}");
    let b = store.get_run(&key("b")).await?.context("run b")?;
    let now: i64 = client
        .query_one("SELECT tether_now_ms()", &[])
        .await?
        .get(0);
    ensure!(b.owner == Some(owner("thief")), "b: {:?}", b.owner);
    ensure!(
        b.lease_expires_at_ms.context("expiry")? <= now + 1000,
        "the takeover's lease was extended by the old owner's renewal"
    );
    drop(client);
    db.drop_db().await;
    Ok(())
}

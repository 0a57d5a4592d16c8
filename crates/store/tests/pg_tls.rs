//! TLS to PostgreSQL and the renewal bound, against the real local server (TLS on, with a
//! certificate for localhost/127.0.0.1 signed by the CA in `TETHER_TEST_PG_CA`; see
//! `scripts/postgres`).
#![cfg(feature = "postgres")]

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use tether_core::{
    ids::{OwnerId, RunKey},
    store::{Acquire, NewRun, StoreError},
    Store,
};
use tether_store::postgres::{scratch::ScratchDb, PgStore};

type R = anyhow::Result<()>;

fn with_query(url: &str, q: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{q}")
}

fn ca(var: &str) -> anyhow::Result<String> {
    std::env::var(var)
        .with_context(|| format!("{var} is not set: eval \"$(scripts/postgres env)\""))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmodes_follow_libpq() -> R {
    let db = ScratchDb::create_from_env().await?;
    let good = ca("TETHER_TEST_PG_CA")?;
    let wrong = ca("TETHER_TEST_PG_WRONG_CA")?;

    for (q, encrypted) in [
        ("sslmode=require".to_string(), true),
        (format!("sslmode=verify-full&sslrootcert={good}"), true),
        (format!("sslmode=verify-ca&sslrootcert={good}"), true),
        ("sslmode=prefer".to_string(), true),
        ("sslmode=disable".to_string(), false),
    ] {
        let store = PgStore::connect(&with_query(db.url(), &q))
            .await
            .with_context(|| q.clone())?;
        // The server's own view of this very connection.
        ensure!(
            store.connection_encrypted().await? == encrypted,
            "{q}: encrypted should be {encrypted}"
        );
        ensure!(store.list_runs().await?.is_empty());
    }

    for mode in ["verify-full", "verify-ca", "require"] {
        // `require` with a root certificate checks the chain, as libpq does.
        let url = with_query(db.url(), &format!("sslmode={mode}&sslrootcert={wrong}"));
        match PgStore::connect(&url).await {
            Err(StoreError::Open { message, .. }) => ensure!(
                message.contains("TLS") && message.contains("certificate"),
                "{mode}: the error names the certificate problem: {message}"
            ),
            other => anyhow::bail!("{mode} with a wrong CA must fail, got {other:?}"),
        }
    }
    match PgStore::connect(&with_query(db.url(), "sslmode=verify-everything")).await {
        Err(StoreError::Open { message, .. }) => {
            ensure!(message.contains("verify-full"), "{message}")
        }
        other => anyhow::bail!("unknown sslmode must be refused, got {other:?}"),
    }
    db.drop_db().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_renewal_fails_well_before_the_lease_expires() -> R {
    let db = ScratchDb::create_from_env().await?;
    let store = PgStore::connect(db.url()).await?;
    let key = RunKey::new("held")?;
    store
        .create_run(&NewRun {
            key: key.clone(),
            kind: "local".into(),
            spec: "x".into(),
            spec_name: "x.toml".into(),
            spec_hash: "h".into(),
            queued: false,
        })
        .await?;
    let ttl = Duration::from_secs(3);
    let lease = match store.acquire(&key, &OwnerId("w".into()), ttl).await? {
        Acquire::Acquired(l, _) => l,
        Acquire::Held(_) => anyhow::bail!("not acquired"),
    };
    // Another session holds the row lock: the renewal's UPDATE waits for it.
    let (client, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    client
        .batch_execute("BEGIN; SELECT * FROM runs WHERE key = 'held' FOR UPDATE;")
        .await?;
    let t = Instant::now();
    let r = store.renew(&lease, ttl).await;
    let took = t.elapsed();
    ensure!(
        matches!(r, Err(StoreError::Unavailable { .. })),
        "a hung renewal is reported as transient: {r:?}"
    );
    ensure!(
        took < ttl / 3,
        "the renewal gave up after {took:?}, not well below ttl/3"
    );
    client.batch_execute("ROLLBACK").await?;
    drop(client);
    db.drop_db().await;
    Ok(())
}

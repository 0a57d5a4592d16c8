//! The fence sits right before the create: an owner frozen (SIGSTOP) inside Spark's find-by-tag,
//! taken over meanwhile and then resumed, creates nothing. Against the test kit's fake Spark
//! master (`tether_testkit::fakes::spark_standalone`; a **fake**: it follows Spark's REST
//! submission API but launches nothing), whose `/json/` answers slowly on demand so the owner
//! can be frozen inside the look-up.
mod common;

use tether_testkit::fakes::spark_standalone as fake_spark;

use std::{sync::atomic::Ordering, time::Duration};

use common::*;

const T: Duration = Duration::from_secs(60);

#[test]
fn an_owner_frozen_inside_the_lookup_creates_nothing_after_a_takeover() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = rt.block_on(fake_spark::FakeSpark::start()).unwrap();
    let url = fake.url();
    let env = Env::new(); // lease TTL 3 s
    let spec = env.spec(
        "spark.toml",
        &format!(
            "poll_interval = \"1s\"\n[job]\nkind = \"spark-standalone\"\nmaster_rest = \"{url}\"\n\
             master_ui = \"{url}\"\napp_resource = \"file:/fence/app.jar\"\nmain_class = \"fence.Main\"\n"
        ),
    );
    let spec = spec.to_str().unwrap();

    // A's look-up (inside its submit, after its intent) hangs for 8 s: freeze A right there.
    fake.stats.json_delay_ms.store(8_000, Ordering::Relaxed);
    let mut a = env.spawn(&["run", spec, "--key", "fz"], &[]);
    assert!(
        wait_until(T, || fake.stats.json_received.load(Ordering::Relaxed) >= 1),
        "A never looked the tag up"
    );
    signal(a.id(), "STOP");
    fake.stats.json_delay_ms.store(0, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(4)); // A's 3 s lease expires

    // B takes the run over and submits the same generation.
    let mut b = env.spawn(&["run", spec, "--key", "fz"], &[]);
    assert!(
        wait_until(T, || fake.stats.creates.load(Ordering::Relaxed) >= 1),
        "B never created its driver"
    );
    // A wakes up, gets its (late) look-up answer: the fence must stop it before the POST.
    signal(a.id(), "CONT");
    let status = wait_child(&mut a, T);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        fake.stats.creates.load(Ordering::Relaxed),
        1,
        "a second driver was created by the resumed ex-owner"
    );
    assert_eq!(
        status.code(),
        Some(5),
        "A must stand down (exit 5: lease lost)"
    );
    signal(b.id(), "KILL");
    wait_child(&mut b, T);
    drop(fake);
}

#[test]
fn a_lookup_that_cannot_answer_inside_submit_creates_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = rt.block_on(fake_spark::FakeSpark::start()).unwrap();
    let url = fake.url();
    let env = Env::new();
    let spec = env.spec(
        "spark.toml",
        &format!(
            "status_timeout = \"3s\"\n[job]\nkind = \"spark-standalone\"\nmaster_rest = \"{url}\"\n\
             master_ui = \"{url}\"\napp_resource = \"file:/fence/app.jar\"\nmain_class = \"fence.Main\"\n"
        ),
    );
    // The master cannot list its drivers: whether our tag already has one is unknown.
    fake.stats.json_unavailable.store(true, Ordering::Relaxed);
    let mut first = env.spawn(&["run", spec.to_str().unwrap(), "--key", "lk"], &[]);
    let done = wait_until(Duration::from_secs(30), || {
        fake.stats.creates.load(Ordering::Relaxed) > 0 || matches!(first.try_wait(), Ok(Some(_)))
    });
    assert!(done, "tether run neither created nor gave up");
    if first.try_wait().ok().flatten().is_none() {
        signal(first.id(), "KILL"); // it created a driver and polls it: stop it
    }
    let status = wait_child(&mut first, T);
    assert!(fake.stats.json_received.load(Ordering::Relaxed) >= 1);
    assert_eq!(
        fake.stats.creates.load(Ordering::Relaxed),
        0,
        "a driver was created on a guess"
    );
    assert_eq!(status.code(), Some(4), "gives up with the run resumable");
    // Once the master can answer again, the run goes on and creates exactly one driver.
    fake.stats.json_unavailable.store(false, Ordering::Relaxed);
    let mut again = env.spawn(&["run", spec.to_str().unwrap(), "--key", "lk"], &[]);
    assert!(
        wait_until(T, || fake.stats.creates.load(Ordering::Relaxed) >= 1),
        "no driver after the master recovered"
    );
    signal(again.id(), "KILL");
    wait_child(&mut again, T);
    assert_eq!(fake.stats.creates.load(Ordering::Relaxed), 1);
}

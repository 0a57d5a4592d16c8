//! Two state stores (staging and prod, two teams) using the same run key on one machine, with
//! one jobs directory: each store runs its own job and gets its own outcome, because the
//! store's random id is part of every tag.
mod common;

use common::*;

#[test]
fn two_stores_with_the_same_key_never_adopt_each_others_job() {
    let staging = Env::new();
    let mut prod = Env::new();
    prod.jobs = staging.jobs.clone(); // one machine, one jobs directory
    let counter = staging.path("counter");
    let spec_ok = staging.spec("ok.toml", &counter_spec(&counter, "exit 0", ""));
    let spec_bad = prod.spec(
        "bad.toml",
        &counter_spec(&counter, "exit 7", "max_submissions = 1"),
    );

    let a = staging.run(&[
        "run",
        spec_ok.to_str().unwrap(),
        "--key",
        "nightly-2026-11-22",
    ]);
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    let b = prod.run(&[
        "run",
        spec_bad.to_str().unwrap(),
        "--key",
        "nightly-2026-11-22",
        "--json",
    ]);
    assert_eq!(
        b.status.code(),
        Some(1),
        "prod must run its own (failing) job, not adopt staging's success: {}",
        stderr(&b)
    );
    assert_eq!(count_lines(&counter), 2, "each store runs its own job");
    let tag = |env: &Env| {
        env.status("nightly-2026-11-22").unwrap()["submissions"][0]["submission"]["tag"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_ne!(tag(&staging), tag(&prod));
}

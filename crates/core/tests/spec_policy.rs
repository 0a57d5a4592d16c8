//! `SpecFile::policy`: every policy setting of a spec reaches the engine's `Policy`.
use std::time::Duration;

use serde::Deserialize;
use tether_core::spec::{parse_spec, IntentPolicy, LostPolicy, Policy, SpecFile};

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Job {
    kind: String,
}

#[test]
fn a_specs_settings_reach_the_policy() {
    let text = "max_submissions = 5\nbackoff = \"7s\"\nbackoff_max = \"70s\"\n\
                status_timeout = \"9m\"\npoll_interval = \"3s\"\non_lost = \"fail\"\n\
                on_unverifiable_intent = \"resubmit\"\n[job]\nkind = \"x\"\n";
    let spec: SpecFile<Job, toml::Value> = parse_spec("p.toml", text).unwrap();
    let expected = Policy {
        max_submissions: 5,
        backoff: Duration::from_secs(7),
        backoff_max: Duration::from_secs(70),
        status_timeout: Duration::from_secs(540),
        poll_interval: Duration::from_secs(3),
        on_lost: LostPolicy::Fail,
        on_unverifiable_intent: IntentPolicy::Resubmit,
        recovery: false,
    };
    assert_eq!(spec.policy(Duration::from_secs(2), false), expected);
    // Without poll_interval the connector's default applies; `recovery` is the caller's.
    let plain: SpecFile<Job, toml::Value> = parse_spec("p.toml", "[job]\nkind = \"x\"\n").unwrap();
    let p = plain.policy(Duration::from_millis(1500), true);
    assert_eq!(p.poll_interval, Duration::from_millis(1500));
    assert!(p.recovery);
}

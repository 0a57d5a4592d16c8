//! The connector conformance suite on the real Livy (0.7.1 on the test YARN, or a local-mode
//! Livy), plus the checks only a real Livy can make: a second submit of the same tag is refused
//! by Livy as a duplicate name and adopted (one batch), and a cancel leaves a killed batch.
//!
//! Needs `TETHER_LIVY_ENV=<dir>/livy.env` (`scripts/livy-server start <dir>`); skipped with a
//! message without it. The job is `tests/spark-job/python/alloc.py`, which Livy must be allowed
//! to read (`livy.file.local-dir-whitelist`): `TETHER_LIVY_JOB` overrides its path.
mod livy_support;

use std::{collections::HashMap, sync::Arc, time::Duration};

use livy_support::livy_env_or_skip;

use tether_connectors::{
    conformance::{self, Fixture},
    registry::{BuildContext, Registry},
};
use tether_core::{ids::ExternalId, Connector};

fn job_file() -> String {
    std::env::var("TETHER_LIVY_JOB").unwrap_or_else(|_| {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/spark-job/python/alloc.py");
        p.canonicalize()
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .display()
            .to_string()
    })
}

fn connector(e: &HashMap<String, String>, args: &[&str]) -> Arc<dyn Connector> {
    let text = format!(
        "[job]\nkind = \"livy\"\nurl = \"{}\"\nfile = \"{}\"\nargs = {args:?}\ndriver_memory = \"512m\"\n\
         [job.conf]\n\"spark.yarn.jars\" = \"local:{}/jars/*\"\n\"spark.yarn.maxAppAttempts\" = \"1\"\n",
        e["LIVY_URL"],
        job_file(),
        e["SPARK_HOME"],
    );
    match Registry::builtin().build("livy.toml", &text, &BuildContext::default()) {
        Ok(b) => b.connector,
        Err(err) => panic!("{err}\n{text}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_suite_on_a_real_livy() {
    let Some(e) = livy_env_or_skip("conformance_suite_on_a_real_livy") else {
        return;
    };
    let fixture = Fixture {
        name: "livy".into(),
        succeeds: connector(&e, &["16", "0"]),
        // A ValueError in the driver: the batch ends `dead`.
        fails: connector(&e, &["not-a-number"]),
        runs_long: connector(&e, &["16", "3600"]),
        unknown_id: ExternalId("987654321".into()),
        timeout: Duration::from_secs(400),
        poll: Duration::from_secs(1),
    };
    let verdicts = conformance::run_all(&fixture)
        .await
        .unwrap_or_else(|f| panic!("{f} (Livy {})", e["LIVY_URL"]));
    for (check, v) in &verdicts {
        eprintln!("{check}: {v:?}");
    }
}

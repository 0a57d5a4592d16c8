//! Shared by the Databricks connector tests and the CLI's Databricks crash tests: the fake
//! workspace (`tether_testkit::fakes::databricks`, HTTPS with its own CA) with fates chosen by
//! the task's python file, and specs for it.
#![allow(dead_code)]
use std::path::Path;

use tether_testkit::fakes::databricks::{FakeDatabricks, Fate};

/// The personal access token the fake accepts (set in [`PAT_ENV`]).
pub const PAT: &str = "dapi-fake-0123456789abcdef-SECRET";
/// The variable a spec names for it.
pub const PAT_ENV: &str = "TETHER_TOKEN_DBX_TEST_PAT";
/// OAuth client of the fake, and the variables holding it.
pub const CLIENT: (&str, &str) = ("sp-app-id-7", "dose-oauth-secret-SECRET");
pub const CLIENT_ID_ENV: &str = "TETHER_TOKEN_DBX_TEST_CLIENT_ID";
pub const CLIENT_SECRET_ENV: &str = "TETHER_TOKEN_DBX_TEST_CLIENT_SECRET";

/// Sets the credential variables of this process (once; every test sets the same values).
pub fn set_credentials() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::env::set_var(PAT_ENV, PAT);
        std::env::set_var(CLIENT_ID_ENV, CLIENT.0);
        std::env::set_var(CLIENT_SECRET_ENV, CLIENT.1);
    });
}

/// A fake workspace taking both credentials, whose runs end by their python file's name:
/// `succeeds.py` (with output `done 42`), `fails.py`, `oom.py` (the driver died), `long.py`
/// (runs until cancelled); any other file is driven by the test.
pub async fn fake() -> FakeDatabricks {
    let fake = FakeDatabricks::start(Some(PAT), Some(CLIENT))
        .await
        .unwrap();
    fake.fate(|body| {
        let file = body["tasks"][0]["spark_python_task"]["python_file"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match file.rsplit('/').next().unwrap_or_default() {
            "succeeds.py" => Fate::Succeed("starting\ndone 42".into()),
            "fails.py" => Fate::Fail("Task main failed with message: ZeroDivisionError".into()),
            "oom.py" => {
                Fate::Fail("The spark driver has stopped unexpectedly and is restarting.".into())
            }
            "long.py" => Fate::RunForever,
            _ => Fate::Driven,
        }
    });
    fake
}

/// Writes the fake's CA into `dir` and returns its path.
pub fn ca_file(fake: &FakeDatabricks, dir: &Path) -> String {
    let p = dir.join("dbx-ca.pem");
    std::fs::write(&p, &fake.ca.ca_pem).unwrap();
    p.display().to_string()
}

/// Which credential a spec uses.
#[derive(Clone, Copy)]
pub enum Cred {
    Pat,
    OAuth,
}

/// A one-time run of `file` on a new cluster, with `[recovery]` (4 worker cores, a larger node).
pub fn spec(host: &str, ca: &str, cred: Cred, file: &str, top: &str) -> String {
    let (pat, oauth) = match cred {
        Cred::Pat => (format!("token_env = \"{PAT_ENV}\"\n"), String::new()),
        Cred::OAuth => (String::new(), format!(
            "[job.oauth]\nclient_id_env = \"{CLIENT_ID_ENV}\"\nclient_secret_env = \"{CLIENT_SECRET_ENV}\"\n"
        )),
    };
    format!(
        "{top}poll_interval = \"100ms\"\nbackoff = \"100ms\"\n\n[job]\nkind = \"databricks\"\nhost = \"{host}\"\n\
         ca_file = \"{ca}\"\nrun_name = \"etl\"\nrequest_timeout = \"2s\"\n{pat}\n\
         [[job.tasks]]\ntask_key = \"main\"\nspark_python_task = {{ python_file = \"dbfs:/jobs/{file}\" }}\n\
         new_cluster = {{ spark_version = \"15.4.x-scala2.12\", node_type_id = \"i3.xlarge\", num_workers = 2 }}\n\n\
         {oauth}\n[recovery]\nworker_cores = 4\nnode_type_id = \"i3.2xlarge\"\n"
    )
}

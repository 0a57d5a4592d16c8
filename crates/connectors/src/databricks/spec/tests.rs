use tether_core::ids::{Generation, RunKey, StoreId};

use super::*;

fn job(extra: &str) -> DatabricksJob {
    let extra = extra
        .replace("[[tasks]]", "[[job.tasks]]")
        .replace("[job_parameters]", "[job.job_parameters]")
        .replace("[oauth]", "[job.oauth]");
    let text = format!("[job]\nkind = \"databricks\"\nhost = \"https://dbc.example\"\ntoken_env = \"TETHER_TOKEN_X\"\n{extra}");
    tether_core::spec::parse_spec::<DatabricksJob, DatabricksRecovery>("s.toml", &text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .job
}

fn tag() -> Tag {
    Tag::derive(
        &StoreId::new("specst00").unwrap(),
        &RunKey::new("k").unwrap(),
        Generation(3),
    )
}

const TASK: &str = "[[tasks]]\ntask_key = \"m\"\nnotebook_task = { notebook_path = \"/n\" }\n";

#[test]
fn a_one_time_run_carries_the_tag_as_token_and_in_its_name() {
    let j = job(&format!(
        "run_name = \"etl\"\ntimeout_seconds = 60\n{TASK}existing_cluster_id = \"c\"\n"
    ));
    j.validate().unwrap();
    let b = j.body(&tag(), None);
    assert_eq!(b["idempotency_token"], tag().as_str());
    assert_eq!(b["run_name"], format!("etl [{}]", tag()));
    assert_eq!(
        (
            b["timeout_seconds"].as_u64(),
            b["tasks"][0]["existing_cluster_id"].as_str()
        ),
        (Some(60), Some("c"))
    );
    assert!(tag().as_str().len() <= 64);
}

#[test]
fn run_now_carries_job_id_parameters_and_token() {
    let j = job("job_id = 42\n[job_parameters]\nday = \"2026-12-01\"\n");
    j.validate().unwrap();
    let b = j.body(&tag(), Some(&DatabricksRecovery::default()));
    assert_eq!(
        (b["job_id"].as_u64(), b["job_parameters"]["day"].as_str()),
        (Some(42), Some("2026-12-01"))
    );
    assert_eq!(b["idempotency_token"], tag().as_str());
    assert!(b.get("tasks").is_none());
}

#[test]
fn invalid_jobs_name_their_field() {
    let cases = [
        (job(""), "job.tasks"),
        (
            job(&format!("job_id = 1\n{TASK}existing_cluster_id = \"c\"\n")),
            "job.job_id",
        ),
        (job(TASK), "job.tasks"),
        (
            job(&format!(
                "{TASK}existing_cluster_id = \"c\"\nnew_cluster = {{}}\n"
            )),
            "job.tasks",
        ),
        (
            job("job_id = 1\n[oauth]\nclient_id_env = \"A\"\nclient_secret_env = \"B\"\n"),
            "job.oauth",
        ),
        (
            job("job_id = 1\nrequest_timeout = \"1h\"\n"),
            "job.request_timeout",
        ),
    ];
    for (j, field) in cases {
        assert_eq!(j.validate().unwrap_err().0, field, "{j:?}");
    }
    let mut j = job("job_id = 1\n");
    j.host = "http://dbc.example".into();
    assert_eq!(j.validate().unwrap_err().0, "job.host");
    j.host = "https://user:pw@dbc.example".into();
    let (field, message) = j.validate().unwrap_err();
    assert!(field == "job.host" && !message.contains("pw"), "{message}");
}

#[test]
fn the_recovery_shape_only_touches_new_clusters() {
    let j = job(&format!("{TASK}new_cluster = {{ node_type_id = \"small\", spark_conf = {{ \"spark.x\" = \"1\" }} }}\n\
        [[tasks]]\ntask_key = \"e\"\nspark_jar_task = {{ main_class_name = \"M\" }}\nexisting_cluster_id = \"c\"\n"));
    j.validate().unwrap();
    let r = DatabricksRecovery {
        worker_cores: Some(8),
        driver_node_type_id: Some("big".into()),
        ..DatabricksRecovery::default()
    };
    let b = j.body(&tag(), Some(&r));
    let c = &b["tasks"][0]["new_cluster"];
    assert_eq!(
        (
            c["spark_conf"]["spark.task.cpus"].as_str(),
            c["spark_conf"]["spark.x"].as_str()
        ),
        (Some("8"), Some("1"))
    );
    assert_eq!(
        (
            c["node_type_id"].as_str(),
            c["driver_node_type_id"].as_str()
        ),
        (Some("small"), Some("big"))
    );
    assert_eq!(
        b["tasks"][1], j.tasks[1],
        "an existing cluster is left alone"
    );
    assert!(r.describe().contains("spark.task.cpus = 8") && r.changes_something());
    assert!(!DatabricksRecovery::default().changes_something());
}

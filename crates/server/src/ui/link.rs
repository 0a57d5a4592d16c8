//! The backend's page of a run's job, from the spec's addresses and the external id.
//!
//! ## Guarantees
//! - Only an `http(s)` URL without credentials is returned ([`web_url`]); the external id is
//!   added as one escaped path segment or query value, never as markup.
//!
//! ## Caveats
//! - Addresses come from the stored spec only: a YARN run whose ResourceManager is found in
//!   `HADOOP_CONF_DIR` rather than `rm_url` has no link. Databricks links use the workspace's
//!   `/jobs/runs/{run_id}` page (the `run_page_url` the API reports is not stored).
use tether_connectors::http::web_url;
use tether_core::ids::ExternalId;
use url::Url;

/// The link of the job `id` of a run of `kind` with the spec `spec`, where known.
pub(super) fn job_link(kind: &str, spec: &str, id: Option<&ExternalId>) -> Option<String> {
    let table: toml::Table = toml::from_str(spec).ok()?;
    let job = table.get("job")?.as_table()?;
    let field = |name: &str| -> Option<Url> { web_url(job.get(name)?.as_str()?).ok() };
    let url = match kind {
        "spark-standalone" => match field("master_ui") {
            Some(ui) => ui,
            None => {
                // The master's UI: the REST address's host on port 8080 (the connector's
                // default too).
                let mut rest = field("master_rest")?;
                rest.set_port(Some(8080)).ok()?;
                rest.set_path("/");
                rest
            }
        },
        "spark-yarn" => segments(field("rm_url")?, &["cluster", "app", &id?.0])?,
        "databricks" => segments(field("host")?, &["jobs", "runs", &id?.0])?,
        "livy" => segments(field("url")?, &["ui", "batch", &id?.0, "log"])?,
        _ => return None,
    };
    Some(url.to_string())
}

fn segments(mut base: Url, parts: &[&str]) -> Option<Url> {
    base.path_segments_mut().ok()?.pop_if_empty().extend(parts);
    Some(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_built_from_the_spec_and_never_leave_http() {
        let id = ExternalId("application_1_0001".into());
        let yarn = "[job]\nkind='spark-yarn'\nrm_url='http://rm:8088/'\n";
        assert_eq!(
            job_link("spark-yarn", yarn, Some(&id)).as_deref(),
            Some("http://rm:8088/cluster/app/application_1_0001")
        );
        let spark = "[job]\nkind='spark-standalone'\nmaster_rest='http://m:6066'\n";
        assert_eq!(
            job_link("spark-standalone", spark, None).as_deref(),
            Some("http://m:8080/")
        );
        let hostile = ExternalId("../x?<script>".into());
        let db = "[job]\nkind='databricks'\nhost='https://w.example'\n";
        let link = job_link("databricks", db, Some(&hostile)).unwrap();
        assert!(link.starts_with("https://w.example/jobs/runs/"), "{link}");
        assert!(!link.contains('<') && !link.contains("?<"), "{link}");
        let js = "[job]\nkind='databricks'\nhost='javascript:alert(1)'\n";
        assert_eq!(job_link("databricks", js, Some(&id)), None);
        assert_eq!(job_link("local", "[job]\nkind='local'\n", Some(&id)), None);
    }
}

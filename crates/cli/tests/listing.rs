//! `tether ls` paging over the store's keyset listing, and `rm`/`prune` (issue 9).
mod common;

use common::*;

fn names(out: &std::process::Output) -> Vec<String> {
    assert!(out.status.success(), "{}", stderr(out));
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The cursor `ls` prints on stderr when there is a next page.
fn cursor(out: &std::process::Output) -> Option<String> {
    let err = stderr(out);
    let at = err.find("--after ")?;
    Some(
        err[at + "--after ".len()..]
            .split(|c: char| c.is_whitespace() || c == '`')
            .next()?
            .to_string(),
    )
}

#[test]
fn ls_pages_with_a_cursor_and_new_runs_do_not_shift_later_pages() {
    let env = Env::new();
    let spec = env.spec("job.toml", "[job]\nkind = 'local'\ncommand = ['true']\n");
    for k in ["k1", "k2", "k3", "k4", "k5"] {
        let out = env.run(&["submit", spec.to_str().unwrap(), "--key", k]);
        assert!(out.status.success(), "{}", stderr(&out));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let first = env.run(&["ls", "-o", "name", "--limit", "2"]);
    assert_eq!(names(&first), ["k5", "k4"]);
    let c = cursor(&first).unwrap_or_else(|| panic!("no cursor: {}", stderr(&first)));
    // A run submitted between pages is newer than the cursor: it does not appear later.
    let out = env.run(&["submit", spec.to_str().unwrap(), "--key", "k0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let second = env.run(&["ls", "-o", "name", "--limit", "2", "--after", &c]);
    assert_eq!(names(&second), ["k3", "k2"]);
    let c = cursor(&second).expect("a third page");
    let third = env.run(&["ls", "-o", "json", "--limit", "2", "--after", &c]);
    let v: serde_json::Value = serde_json::from_slice(&third.stdout).unwrap();
    assert_eq!(v[0]["key"], "k1", "{v}");
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    assert!(cursor(&third).is_none(), "last page: {}", stderr(&third));
    // Several states at once; a bad cursor is a usage error that says what to pass.
    let q = env.run(&["ls", "-o", "name", "--status", "queued,failed"]);
    assert_eq!(names(&q).len(), 6);
    let bad = env.run(&["ls", "--after", "nonsense"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("cursor"), "{}", stderr(&bad));
}

/// The page the HTTP server serves (`tether_fleet::view::list`) matches the documented `page`
/// definition, and its `next` continues the listing.
#[tokio::test]
async fn the_list_page_view_matches_the_documented_schema() {
    use tether_core::{store::RunQuery, Store};
    let dir = tempfile::tempdir().unwrap();
    let store = tether_store::sqlite::SqliteStore::open(dir.path().join("state.db"))
        .await
        .unwrap();
    for k in ["a", "b", "c"] {
        let new = tether_core::store::NewRun {
            key: tether_core::ids::RunKey::new(k).unwrap(),
            kind: "local".into(),
            spec: "[job]\nkind = 'local'\ncommand = ['true']\n".into(),
            spec_name: format!("{k}.toml"),
            spec_hash: format!("h{k}"),
            queued: true,
            base_dir: None,
        };
        store.create_run(&new).await.unwrap();
    }
    let page = tether_fleet::view::list(&store, &RunQuery::new().limit(2))
        .await
        .unwrap();
    let v = serde_json::to_value(&page).unwrap();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/json-schema/tether-v1.schema.json"
    );
    let mut schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    schema["$ref"] = serde_json::json!("#/$defs/page");
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}\n{v:#}");
    assert_eq!(v["runs"].as_array().map(Vec::len), Some(2), "{v}");
    let next: tether_core::store::RunCursor = v["next"].as_str().unwrap().parse().unwrap();
    let rest = tether_fleet::view::list(&store, &RunQuery::new().limit(2).after(Some(next)))
        .await
        .unwrap();
    assert_eq!(rest.runs.len(), 1);
    assert!(rest.next.is_none());
    let mut all: Vec<String> = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_string())
        .chain(rest.runs.iter().map(|r| r.key.to_string()))
        .collect();
    all.sort();
    assert_eq!(all, ["a", "b", "c"]);
}

fn job_dirs(env: &Env) -> usize {
    std::fs::read_dir(&env.jobs)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn rm_removes_a_finished_run_and_its_job_dir_and_refuses_an_unfinished_one() {
    let env = Env::new();
    let spec = env.spec("job.toml", "[job]\nkind = 'local'\ncommand = ['true']\n");
    let out = env.run(&["run", spec.to_str().unwrap(), "--key", "done"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(job_dirs(&env), 1, "the run's job directory");
    let out = env.run(&["submit", spec.to_str().unwrap(), "--key", "waiting"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let refused = env.run(&["rm", "waiting"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("has not finished") && stderr(&refused).contains("tether cancel"),
        "{}",
        stderr(&refused)
    );
    let out = env.run(&["rm", "done"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        said.contains("removed done (succeeded, 1 submission, 1 job directory)"),
        "{said}"
    );
    assert_eq!(job_dirs(&env), 0, "job directory left behind");
    assert_eq!(names(&env.run(&["ls", "-o", "name"])), ["waiting"]);
    assert_eq!(env.run(&["history", "done"]).status.code(), Some(6));
    assert_eq!(
        env.run(&["rm", "done"]).status.code(),
        Some(6),
        "gone: not found"
    );
    // The key is free again.
    let out = env.run(&["run", spec.to_str().unwrap(), "--key", "done"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn prune_is_a_dry_run_unless_told_yes() {
    let env = Env::new();
    let spec = env.spec("job.toml", "[job]\nkind = 'local'\ncommand = ['true']\n");
    for k in ["a", "b"] {
        let out = env.run(&["run", spec.to_str().unwrap(), "--key", k]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = env.run(&["submit", spec.to_str().unwrap(), "--key", "queued"]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::thread::sleep(std::time::Duration::from_millis(1100));

    let young = env.run(&["prune", "--older-than", "1h"]);
    assert!(young.status.success(), "{}", stderr(&young));
    assert!(
        young.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&young.stdout)
    );

    let dry = env.run(&["prune", "--older-than", "1s"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let text = String::from_utf8_lossy(&dry.stdout).to_string();
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("would remove"))
            .count(),
        2,
        "{text}"
    );
    assert!(stderr(&dry).contains("add --yes"), "{}", stderr(&dry));
    assert_eq!(
        names(&env.run(&["ls", "-o", "name"])).len(),
        3,
        "dry run removed"
    );
    assert_eq!(job_dirs(&env), 2);

    let done = env.run(&["prune", "--older-than", "1s", "--yes"]);
    assert!(done.status.success(), "{}", stderr(&done));
    let text = String::from_utf8_lossy(&done.stdout).to_string();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("removed")).count(),
        2,
        "{text}"
    );
    assert_eq!(names(&env.run(&["ls", "-o", "name"])), ["queued"]);
    assert_eq!(job_dirs(&env), 0, "job directories left behind");
}

#[test]
fn logs_json_prints_one_documented_object_per_line_and_an_unreadable_log_exits_8() {
    let env = Env::new();
    let spec = env.spec(
        "job.toml",
        "[job]\nkind = 'local'\ncommand = ['sh', '-c', 'echo one; printf \"two \\\"q\\\"\"']\n",
    );
    let out = env.run(&["run", spec.to_str().unwrap(), "--key", "j"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env.run(&["logs", "j", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/json-schema/tether-v1.schema.json"
    );
    let mut schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    schema["$ref"] = serde_json::json!("#/$defs/log_line");
    let validator = jsonschema::validator_for(&schema).unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for l in &lines {
        let errors: Vec<String> = validator.iter_errors(l).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}: {l}");
    }
    let texts: Vec<&str> = lines.iter().map(|l| l["line"].as_str().unwrap()).collect();
    assert_eq!(texts, ["one", "two \"q\""], "the last line has no newline");
    assert!(lines
        .iter()
        .all(|l| l["stream"] == "stdout" && l["key"] == "j"));

    // A log that exists but cannot be read: its own exit code, and a JSON error in --json mode.
    let dir = std::fs::read_dir(&env.jobs)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.path().is_dir())
        .unwrap()
        .path();
    std::fs::remove_file(dir.join("stdout.log")).unwrap();
    std::fs::create_dir(dir.join("stdout.log")).unwrap();
    let out = env.run(&["logs", "j", "--json"]);
    assert_eq!(out.status.code(), Some(8), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "logs_unreadable", "{v}");
    // A job whose log is gone: not found.
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(env.run(&["logs", "j"]).status.code(), Some(6));
}

/// A `durable = false` run is never in the store: it says so, and (stderr not a terminal) its
/// notices carry ISO timestamps like every other non-tty line.
#[test]
fn a_non_durable_run_says_status_and_ls_will_not_show_it_with_timestamps() {
    let env = Env::new();
    let spec = env.spec(
        "job.toml",
        "durable = false\n[job]\nkind = 'local'\ncommand = ['true']\n",
    );
    let out = env.run(&["run", spec.to_str().unwrap(), "--key", "plain"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("`tether status plain` and `tether ls` will not show this run"),
        "{err}"
    );
    for line in err.lines().filter(|l| !l.trim().is_empty()) {
        let stamp = line.split(' ').next().unwrap_or("");
        assert!(
            stamp.len() == 20 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "no ISO timestamp: {line:?}"
        );
    }
}

/// `ls --owner`: the runs a given owner (here a `tether run` process) holds, by its exact id;
/// a queued run (no holder) and another owner id match nothing.
#[test]
fn ls_owner_lists_the_runs_an_owner_holds() {
    let env = Env::new();
    let long = env.spec(
        "long.toml",
        "[job]\nkind = 'local'\ncommand = ['sleep', '30']\n",
    );
    let quick = env.spec("quick.toml", "[job]\nkind = 'local'\ncommand = ['true']\n");
    let out = env.run(&["submit", quick.to_str().unwrap(), "--key", "queued"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut driver = env.spawn(&["run", long.to_str().unwrap(), "--key", "held"], &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let owner = loop {
        let out = env.run(&["ls", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let held = v
            .as_array()
            .and_then(|runs| runs.iter().find(|r| r["key"] == "held"))
            .and_then(|r| r["owner"].as_str().map(str::to_string));
        if let Some(o) = held {
            break o;
        }
        assert!(std::time::Instant::now() < deadline, "never held: {v}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let mine = env.run(&["ls", "-o", "name", "--owner", &owner]);
    let other = env.run(&["ls", "-o", "name", "--owner", "nobody@nowhere:1:0"]);
    let _ = driver.kill();
    let _ = driver.wait();
    assert_eq!(names(&mine), ["held"]);
    assert!(names(&other).is_empty());
}

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

//! `tether worker` logs through `tracing`: timestamps, levels, `--log-format json`, and no
//! event printed twice (a resubmission used to print each line twice).
mod common;

use common::{stderr, Env};

fn resubmitted_run(env: &Env) {
    let spec = env.spec(
        "fails.toml",
        "max_submissions = 2\n[job]\nkind = 'local'\ncommand = ['sh', '-c', 'exit 3']\n",
    );
    let out = env.run(&["submit", spec.to_str().unwrap(), "--key", "twice"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn worker_lines_have_timestamps_and_levels_and_none_is_printed_twice() {
    let env = Env::new();
    resubmitted_run(&env);
    let out = env.run(&["worker", "--exit-when-idle"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.is_empty()).collect();
    assert!(lines.len() >= 5, "{err}");
    let mut seen = std::collections::HashSet::new();
    for line in &lines {
        let (stamp, rest) = line.split_once(' ').unwrap_or(("", line));
        assert!(
            stamp.len() >= 20 && stamp.as_bytes()[10] == b'T' && stamp.ends_with('Z'),
            "no timestamp: {line}"
        );
        let level = rest.split_whitespace().next().unwrap_or("");
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level),
            "no level: {line}"
        );
        assert!(
            seen.insert(rest.to_string()),
            "printed twice: {rest}\n{err}"
        );
    }
    // Both generations and the end are in the log.
    assert!(err.contains("decision=resubmit"), "{err}");
    assert!(err.contains("twice: failed"), "{err}");
}

#[test]
fn worker_log_format_json_is_one_object_per_line() {
    let env = Env::new();
    resubmitted_run(&env);
    let out = env.run(&["worker", "--exit-when-idle", "--log-format", "json"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let mut decisions = Vec::new();
    for line in err.lines().filter(|l| !l.is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{line}"
        );
        assert!(v["level"].is_string(), "{line}");
        if let Some(d) = v["fields"]["decision"].as_str() {
            decisions.push(d.to_string());
        }
    }
    assert!(decisions.contains(&"resubmit".to_string()), "{err}");
}

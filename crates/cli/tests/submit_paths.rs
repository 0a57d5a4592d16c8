//! A submitted spec's relative paths are taken from the submitter's directory, whichever
//! process (a worker started elsewhere) drives the run.
mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

#[test]
fn relative_paths_of_a_submitted_spec_resolve_against_the_submitters_directory() {
    let env = Env::new();
    let proj = env.path("proj");
    std::fs::create_dir_all(proj.join("data")).unwrap();
    let out_file = env.path("where");
    // The program is taken from the workdir, like a shell would after `cd data`.
    let script = proj.join("data").join("job.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\npwd > {}\n", out_file.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        proj.join("job.toml"),
        "[job]\nkind = \"local\"\ncommand = [\"./job.sh\"]\nworkdir = \"data\"\n",
    )
    .unwrap();

    // Submitted from proj/ ...
    let out = env
        .cmd()
        .current_dir(&proj)
        .args(["submit", "job.toml", "--key", "rel"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // ... driven by a worker whose working directory is elsewhere.
    let out = env
        .cmd()
        .current_dir("/")
        .args(["worker", "--exit-when-idle"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let st = env.status("rel").unwrap();
    assert_eq!(st["state"], "succeeded", "{st}\n{}", stderr(&out));
    let ran_in = std::fs::read_to_string(&out_file).unwrap();
    assert_eq!(
        std::path::Path::new(ran_in.trim()),
        std::fs::canonicalize(proj.join("data")).unwrap()
    );
}

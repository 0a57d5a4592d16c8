#!/usr/bin/env python3
"""Runs the workspace's test binaries side by side (called by scripts/test).

`cargo test --workspace` runs one test binary after the other; ours spend most of their time
waiting for real clusters (Spark, YARN, Livy) and real processes, so binaries that share nothing
run in parallel here, in lanes: the binaries that use the Spark standalone cluster one after the
other, those that use YARN or Livy (Livy runs on the YARN) one after the other, and the rest on
TETHER_TEST_JOBS - 2 (default 1) more workers, the slowest first. Each binary runs as cargo
would run it (working directory and CARGO_MANIFEST_DIR = its package, same arguments), its output
is printed whole when it ends, and the script fails if any binary failed.

Usage: run-tests.py [--offline] [test args...]   (e.g. a name filter, passed to every binary)

--offline runs the tier that needs nothing outside the machine's own processes and files: every
crate's unit tests and each integration test binary whose source names no PostgreSQL, Spark,
YARN or Livy helper nor the browser (decided from the source, so new tests are placed without a
list to keep),
plus the SQLite half of the store conformance suite. It starts nothing and needs no network.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

# Known slow binaries start first so the tail of the run is short ones.
SLOW_FIRST = [
    "spark_crash", "spark_standalone", "yarn_cluster", "yarn", "yarn_crash", "livy",
    "livy_crash", "livy_fresh", "livy_server", "spark_k8s_conformance", "k8s_crash", "fleet", "spark_submit", "crash_local", "pg_outage",
    "ui_browser",
]


def binaries():
    cmd = ["cargo", "test", "--workspace", "--no-run", "--message-format=json", "--quiet"]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    found = []
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
            continue
        if not msg.get("profile", {}).get("test"):
            continue
        target = msg["target"]
        pkg_dir = os.path.dirname(msg["manifest_path"])
        name = target["name"] if "test" in target["kind"] else f"{target['name']} (unit)"
        found.append((name, msg["executable"], pkg_dir))
    order = {n: i for i, n in enumerate(SLOW_FIRST)}
    found.sort(key=lambda b: order.get(b[0], len(order)))
    return found


# What makes an integration test binary need something outside: its source mentions one of these.
NEEDS_OUTSIDE = re.compile(
    r"PgScratch|ScratchDb|Harness::postgres|postgres|conformance!|TETHER_SPARK_ENV|spark_support|"
    r"yarn_support|livy_support|TETHER_YARN_ENV|TETHER_LIVY_ENV|browser-env"
)
# Binaries that mix offline and outside tests (the SQL stores' `conformance!` runs each property
# on SQLite and PostgreSQL): the offline tier runs them with this filter.
OFFLINE_FILTER = {"conformance": "sqlite::", "placement": "sqlite::"}


def offline_args(binary, args):
    """The arguments for `binary` in the offline tier, or None to leave it out."""
    name, _exe, pkg_dir = binary
    if name.endswith("(unit)"):
        return args
    if name in OFFLINE_FILTER:
        return [OFFLINE_FILTER[name], *args]
    src = os.path.join(pkg_dir, "tests", f"{name}.rs")
    try:
        text = open(src, encoding="utf-8").read()
    except OSError:
        return None
    return None if NEEDS_OUTSIDE.search(text) else args


def lane(name):
    """Binaries of one cluster share its capacity: they run one after the other."""
    if name in ("spark_yarn",) or name.startswith(("yarn", "livy")):
        return "yarn"
    # spark-k8s runs spark-submit against the fake API server and spark_bulk a fake master: they
    # use no cluster, so they run beside the lanes.
    if name.startswith("spark_k8s") or name in ("spark_fixtures", "spark_http", "spark_bulk"):
        return None
    if name.startswith("spark_"):
        return "spark"
    return None


def run(binary, args):
    name, exe, cwd = binary
    if OFFLINE:
        args = offline_args(binary, args)
        if args is None:
            return name, 0, 0.0, "(not in the offline tier)\n"
    start = time.monotonic()
    with tempfile.TemporaryFile(mode="w+") as log:
        env = dict(os.environ, CARGO_MANIFEST_DIR=cwd)
        rc = subprocess.run([exe, *args], cwd=cwd, env=env, stdout=log,
                            stderr=subprocess.STDOUT).returncode
        log.seek(0)
        text = log.read()
    return name, rc, time.monotonic() - start, text


OFFLINE = False


def main():
    global OFFLINE
    args = sys.argv[1:]
    if args[:1] == ["--offline"]:
        OFFLINE, args = True, args[1:]
    bins = binaries()
    jobs = int(os.environ.get("TETHER_TEST_JOBS", "3"))
    lanes = {}
    for b in bins:
        lanes.setdefault(lane(b[0]), []).append(b)
    free = lanes.pop(None, [])
    lock = threading.Lock()
    failed = []

    def report(result):
        name, rc, secs, text = result
        with lock:
            print(f"==== {name}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {secs:.0f}s", flush=True)
            sys.stdout.write(text)
            sys.stdout.flush()
            if rc != 0:
                failed.append(name)

    def run_lane(members):
        for b in members:
            report(run(b, args))

    with ThreadPoolExecutor(max_workers=len(lanes) + max(1, jobs - 2)) as pool:
        waits = [pool.submit(run_lane, members) for members in lanes.values()]
        waits += [pool.submit(lambda b=b: report(run(b, args))) for b in free]
        for w in waits:
            w.result()
    doc = subprocess.run(["cargo", "test", "--workspace", "--doc", "--quiet", "--", *args])
    if doc.returncode != 0:
        failed.append("doc-tests")
    if failed:
        print(f"run-tests: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"run-tests: {len(bins)} test binaries and the doc-tests passed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

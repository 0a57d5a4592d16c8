//! The SQL text of the SQLite store. Parameters are positional (`?1`...) and documented per
//! statement; every owner write carries `key = ?1 AND epoch = ?2 AND owner = ?3` (the fence).

/// `PRAGMA application_id` of a tether database ("TETH"), so `file(1)`-style checks and our own
/// open can tell a tether DB from any other SQLite file without reading its tables.
pub const APPLICATION_ID: i64 = 0x5445_5448;

/// The schema version this build writes. Bump it and append to [`MIGRATIONS`] to change it.
pub const LATEST_VERSION: i64 = 8;

/// Migrations, index `i` bringing the schema from version `i` to `i + 1`. Each runs inside the
/// same `BEGIN IMMEDIATE` transaction as its `schema_version` row, so a crash or a concurrent
/// opener never sees half a schema.
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE IF NOT EXISTS tether_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT OR IGNORE INTO tether_meta (name, value) VALUES ('application', 'tether');

CREATE TABLE IF NOT EXISTS runs (
    key                 TEXT PRIMARY KEY,
    kind                TEXT NOT NULL,
    spec                TEXT NOT NULL,
    spec_name           TEXT NOT NULL,
    spec_hash           TEXT NOT NULL,
    phase               TEXT NOT NULL DEFAULT 'empty',
    generation          INTEGER,
    tag                 TEXT,
    shape               TEXT,
    external_id         TEXT,
    outcome             TEXT,
    cancel_requested    INTEGER NOT NULL DEFAULT 0,
    epoch               INTEGER NOT NULL DEFAULT 0,
    owner               TEXT,
    lease_expires_at_ms INTEGER,
    queued              INTEGER NOT NULL,
    created_at_ms       INTEGER NOT NULL,
    updated_at_ms       INTEGER NOT NULL
);
-- claim: unfinished runs, free or expired first found by expiry (NULL = free sorts first).
CREATE INDEX IF NOT EXISTS runs_claim ON runs (lease_expires_at_ms) WHERE phase <> 'finished';
-- renew_all: a worker's leases.
CREATE INDEX IF NOT EXISTS runs_owner ON runs (owner) WHERE owner IS NOT NULL;

CREATE TABLE IF NOT EXISTS submissions (
    key             TEXT NOT NULL,
    generation      INTEGER NOT NULL,
    tag             TEXT NOT NULL,
    shape           TEXT NOT NULL,
    external_id     TEXT,
    outcome         TEXT,
    intent_at_ms    INTEGER NOT NULL,
    submitted_at_ms INTEGER,
    finished_at_ms  INTEGER,
    PRIMARY KEY (key, generation)
);

CREATE TABLE IF NOT EXISTS history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    key        TEXT NOT NULL,
    at_ms      INTEGER NOT NULL,
    epoch      INTEGER NOT NULL,
    generation INTEGER,
    decision   TEXT NOT NULL,
    reason     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_key ON history (key, id);
"#,
    // 2: the store id (scopes every tag to this store) and the placement of host-bound runs.
    r#"
INSERT OR IGNORE INTO tether_meta (name, value) VALUES ('store_id', lower(hex(randomblob(4))));
ALTER TABLE runs ADD COLUMN placement TEXT;
ALTER TABLE runs ADD COLUMN placement_host TEXT;
CREATE INDEX IF NOT EXISTS runs_placement_host ON runs (placement_host) WHERE placement_host IS NOT NULL;
"#,
    // 3: quarantine of rows this build cannot decode, and the oldest schema that may read.
    r#"
-- A row this build (or an older one) could not decode: set aside with the reason, skipped by
-- claims, shown by `ls`/`status`.
ALTER TABLE runs ADD COLUMN quarantined TEXT;
ALTER TABLE runs ADD COLUMN quarantined_at_ms INTEGER;
INSERT OR REPLACE INTO tether_meta (name, value) VALUES ('min_reader_schema', '3');
"#,
    // 4: the submitter's working directory, for the relative paths of its spec.
    r#"
ALTER TABLE runs ADD COLUMN base_dir TEXT;
-- Last generation of the earlier instances (`tether rerun`): the budget counts from it.
ALTER TABLE runs ADD COLUMN instance_base INTEGER;
"#,
    // 5: owners holding a liveness lock file (`<db>.owners/`): their runs are taken over as
    // soon as that lock is free, not at lease expiry.
    r#"
CREATE TABLE IF NOT EXISTS owner_liveness (
    owner    TEXT PRIMARY KEY,
    since_ms INTEGER NOT NULL
);
"#,
    // 6: free unfinished runs in claim order, so that a claim reads O(batch) rows instead of
    // every unfinished run (see `CLAIM_CANDIDATES`). An index only: older builds read as before.
    r#"
CREATE INDEX IF NOT EXISTS runs_free ON runs (queued DESC, created_at_ms)
    WHERE phase <> 'finished' AND owner IS NULL;
"#,
    // 7: the worker registry (`tether serve`'s fleet page): one row per worker, idle or not,
    // upserted at each of its heartbeats. Advisory: no lease or claim reads it.
    r#"
CREATE TABLE IF NOT EXISTS workers (
    owner           TEXT PRIMARY KEY,
    host            TEXT NOT NULL,
    pid             INTEGER NOT NULL,
    started_at_ms   INTEGER NOT NULL,
    heartbeat_at_ms INTEGER NOT NULL,
    concurrency     INTEGER NOT NULL,
    version         TEXT NOT NULL
);
"#,
    // 8: owners holding a byte of `<db>.owners/live.lock` (one file for all, instead of a
    // file per owner). Builds before 8 do not read this table: they judge these owners by
    // their lease alone (see `liveness`).
    r#"
CREATE TABLE IF NOT EXISTS owner_locks (
    owner    TEXT PRIMARY KEY,
    since_ms INTEGER NOT NULL
);
"#,
];

/// Creates the version table (first thing a migration transaction does).
pub const CREATE_SCHEMA_VERSION: &str = "CREATE TABLE IF NOT EXISTS schema_version (
    version       INTEGER PRIMARY KEY,
    applied_at_ms INTEGER NOT NULL
)";

/// Current schema version, 0 if none. Only valid once `schema_version` exists.
pub const SCHEMA_VERSION: &str = "SELECT COALESCE(MAX(version), 0) FROM schema_version";

/// ?1 version, ?2 now.
pub const INSERT_SCHEMA_VERSION: &str =
    "INSERT OR IGNORE INTO schema_version (version, applied_at_ms) VALUES (?1, ?2)";

/// Table names, to recognise a database that belongs to someone else.
pub const TABLE_NAMES: &str = "SELECT name FROM sqlite_master WHERE type = 'table'";

/// The `runs` columns in the order `row_to_run` reads them.
/// The store id comes from `tether_meta` by an uncorrelated subquery, which the engine evaluates
/// once per statement (not per row): every record carries the id its tags were made with.
macro_rules! run_columns {
    () => {
        "key, kind, spec, spec_name, spec_hash, phase, generation, tag, shape, external_id, \
         outcome, cancel_requested, epoch, owner, lease_expires_at_ms, queued, created_at_ms, \
         updated_at_ms, placement, (SELECT value FROM tether_meta WHERE name = 'store_id'), base_dir, \
         instance_base"
    };
}

/// ?1 key, ?2 kind, ?3 spec, ?4 spec_name, ?5 spec_hash, ?6 queued, ?7 now.
pub const INSERT_RUN: &str = "INSERT INTO runs
    (key, kind, spec, spec_name, spec_hash, phase, queued, created_at_ms, updated_at_ms, base_dir)
    VALUES (?1, ?2, ?3, ?4, ?5, 'empty', ?6, ?7, ?7, ?8)
    ON CONFLICT (key) DO NOTHING";

/// `min_reader_schema` of `tether_meta`, if set (only once `tether_meta` exists).
pub const MIN_READER: &str = "SELECT value FROM tether_meta WHERE name = 'min_reader_schema'";

/// ?1 key. The last column is the quarantine reason (NULL for a healthy run).
pub const GET_RUN: &str = concat!(
    "SELECT ",
    run_columns!(),
    ", quarantined FROM runs WHERE key = ?1"
);

/// Newest first; rowid breaks ties between runs created in the same millisecond. The spec body
/// is not loaded (`''`): listings never need it.
pub const LIST_RUNS: &str = "SELECT key, kind, '' AS spec, spec_name, spec_hash, phase, \
     generation, tag, shape, external_id, outcome, cancel_requested, epoch, owner, \
     lease_expires_at_ms, queued, created_at_ms, updated_at_ms, placement, \
     (SELECT value FROM tether_meta WHERE name = 'store_id'), base_dir, instance_base, quarantined \
     FROM runs ORDER BY created_at_ms DESC, rowid DESC";

/// A page of the listing (`Store::list_summaries`): the columns of [`LIST_RUNS`] (no spec
/// body). ?1 states (JSON array of state words, NULL: any), ?2 kinds (JSON array, NULL: any),
/// ?3 changed at or after (ms), ?4/?5 the cursor's `updated_at_ms`/key (NULL: first page),
/// ?6 row limit (-1: none). The state word is derived from `phase` and the outcome's tag,
/// matched as text (a damaged outcome must not fail the whole listing, as a JSON function
/// would). Keys compare bytewise (BINARY collation), as the cursor does.
pub const LIST_SUMMARIES: &str = "SELECT key, kind, '' AS spec, spec_name, spec_hash, phase, \
     generation, tag, shape, external_id, outcome, cancel_requested, epoch, owner, \
     lease_expires_at_ms, queued, created_at_ms, updated_at_ms, placement, \
     (SELECT value FROM tether_meta WHERE name = 'store_id'), base_dir, instance_base, quarantined \
     FROM runs \
     WHERE (?1 IS NULL OR (CASE phase WHEN 'empty' THEN 'queued' WHEN 'intent' THEN 'running' \
            WHEN 'submitted' THEN 'running' WHEN 'finished' THEN \
              CASE WHEN outcome LIKE '{\"outcome\":\"succeeded\"%' THEN 'succeeded' \
                   WHEN outcome LIKE '{\"outcome\":\"failed\"%' THEN 'failed' \
                   WHEN outcome LIKE '{\"outcome\":\"cancelled\"%' THEN 'cancelled' END END) \
            IN (SELECT value FROM json_each(?1))) \
       AND (?2 IS NULL OR kind IN (SELECT value FROM json_each(?2))) \
       AND (?3 IS NULL OR updated_at_ms >= ?3) \
       AND (?4 IS NULL OR updated_at_ms < ?4 OR (updated_at_ms = ?4 AND key < ?5)) \
       AND (?7 IS NULL OR owner IN (SELECT value FROM json_each(?7))) \
     ORDER BY updated_at_ms DESC, key DESC LIMIT ?6";

/// ?1 key, ?2 reason, ?3 now. Sets a run aside; it keeps its lease fields as they were.
pub const QUARANTINE: &str =
    "UPDATE runs SET quarantined = ?2, quarantined_at_ms = ?3 WHERE key = ?1";

/// ?1 key. Oldest first.
pub const HISTORY: &str = "SELECT at_ms, epoch, generation, decision, reason
    FROM history WHERE key = ?1 ORDER BY id";

/// ?1 key.
pub const SUBMISSIONS: &str = "SELECT generation, tag, shape, external_id, outcome, intent_at_ms
    FROM submissions WHERE key = ?1 ORDER BY generation";

/// ?1 key, ?2 at_ms, ?3 epoch, ?4 generation, ?5 decision, ?6 reason.
pub const INSERT_HISTORY: &str =
    "INSERT INTO history (key, at_ms, epoch, generation, decision, reason)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// ?1 key. What acquire needs to decide, inside its write transaction.
pub const LEASE_STATE: &str =
    "SELECT owner, lease_expires_at_ms, phase, epoch, generation FROM runs WHERE key = ?1";

/// The columns a claim candidate is read with (see [`CLAIM_CANDIDATES`]).
macro_rules! claim_cand {
    () => {
        "runs.key, owner, lease_expires_at_ms, epoch, generation, queued, created_at_ms"
    };
}

/// What every claim candidate must also be: readable, not placed on another host, of an
/// allowed kind (see [`CLAIM_CANDIDATES`]).
macro_rules! claim_admits {
    () => {
        "quarantined IS NULL AND (placement_host IS NULL OR placement_host = ?3)
         AND (?4 IS NULL OR kind IN (SELECT value FROM json_each(?4)))"
    };
}

/// ?1 now, ?2 limit, ?3 the claimer's host (NULL: none), ?4 JSON array of kinds (NULL: all),
/// ?5 JSON array of owners known gone (their liveness lock is free).
/// Claimable runs: unfinished, free or expired or of a gone owner, not placed on another
/// host, of an allowed kind; queued first, then oldest.
///
/// Three index-driven parts, each at most ?2 rows, merged: free runs walked in claim order on
/// `runs_free` (it stops after ?2 admitted rows), expired leases by range on `runs_claim`, and
/// the gone owners' runs on `runs_owner`. One `WHERE` over all unfinished runs scanned every
/// run (and sorted them) at each claim tick: O(all runs) with 100,000 in flight. (A lease
/// always has an expiry: no statement sets an owner without one.)
pub const CLAIM_CANDIDATES: &str = concat!(
    "SELECT key, owner, lease_expires_at_ms, epoch, generation FROM (
    SELECT * FROM (SELECT runs.rowid AS rid, ",
    claim_cand!(),
    " FROM runs INDEXED BY runs_free
        WHERE phase <> 'finished' AND owner IS NULL AND ",
    claim_admits!(),
    " ORDER BY queued DESC, created_at_ms, runs.rowid LIMIT ?2)
    UNION
    SELECT * FROM (SELECT runs.rowid AS rid, ",
    claim_cand!(),
    " FROM runs INDEXED BY runs_claim
        WHERE phase <> 'finished' AND lease_expires_at_ms <= ?1 AND ",
    claim_admits!(),
    " ORDER BY queued DESC, created_at_ms, runs.rowid LIMIT ?2)
    UNION
    SELECT * FROM (SELECT runs.rowid AS rid, ",
    claim_cand!(),
    " FROM json_each(?5) AS gone CROSS JOIN runs INDEXED BY runs_owner ON runs.owner = gone.value
        WHERE phase <> 'finished' AND ",
    claim_admits!(),
    " ORDER BY queued DESC, created_at_ms, runs.rowid LIMIT ?2)
) ORDER BY queued DESC, created_at_ms, rid LIMIT ?2"
);

/// ?1 the worker's host (NULL: none), ?2 JSON array of kinds (NULL: all). Whether an
/// unfinished readable run is left that such a worker may claim; stops at the first one.
pub const ANY_UNFINISHED: &str = "SELECT EXISTS (SELECT 1 FROM runs
    WHERE phase IN ('empty', 'intent', 'submitted') AND quarantined IS NULL
      AND (placement_host IS NULL OR placement_host = ?1)
      AND (?2 IS NULL OR kind IN (SELECT value FROM json_each(?2))))";

/// Readable runs per state word and kind: one grouped count, no row decoded. The state word
/// as in [`LIST_SUMMARIES`]; a row whose phase or outcome this build cannot tell is left out
/// (as `list_runs` leaves it out).
pub const COUNT_RUNS: &str = "SELECT st, kind, COUNT(*) FROM (SELECT kind, \
     CASE phase WHEN 'empty' THEN 'queued' WHEN 'intent' THEN 'running' \
            WHEN 'submitted' THEN 'running' WHEN 'finished' THEN \
              CASE WHEN outcome LIKE '{\"outcome\":\"succeeded\"%' THEN 'succeeded' \
                   WHEN outcome LIKE '{\"outcome\":\"failed\"%' THEN 'failed' \
                   WHEN outcome LIKE '{\"outcome\":\"cancelled\"%' THEN 'cancelled' END END AS st \
     FROM runs WHERE quarantined IS NULL) WHERE st IS NOT NULL GROUP BY st, kind";

/// ?1 key, ?2 expected (old) epoch, ?3 new owner, ?4 expiry, ?5 now. Takes the lease with a
/// new epoch; matching on the old epoch keeps it a compare-and-set even outside a transaction.
pub const TAKE_LEASE: &str = "UPDATE runs
    SET epoch = epoch + 1, owner = ?3, lease_expires_at_ms = ?4, updated_at_ms = ?5
    WHERE key = ?1 AND epoch = ?2";

/// ?1 key, ?2 epoch, ?3 owner, ?4 expiry. Renewal is not a change of state: `updated_at_ms`
/// stays, so listings show when the run last moved, not when it was last heartbeated.
pub const RENEW: &str = "UPDATE runs SET lease_expires_at_ms = ?4
    WHERE key = ?1 AND epoch = ?2 AND owner = ?3 AND phase <> 'finished'";

/// ?1 owner, ?2 expiry. One statement for all of a worker's leases.
pub const RENEW_ALL: &str = "UPDATE runs SET lease_expires_at_ms = ?2
    WHERE owner = ?1 AND phase <> 'finished'
    RETURNING key, epoch, cancel_requested";

/// ?1 key, ?2 epoch, ?3 owner, ?4 now. Epoch unchanged: the next taker bumps it.
pub const RELEASE: &str = "UPDATE runs
    SET owner = NULL, lease_expires_at_ms = NULL, updated_at_ms = ?4
    WHERE key = ?1 AND epoch = ?2 AND owner = ?3
    RETURNING generation";

/// ?1 key, ?2 epoch, ?3 owner. Fence check for writes that touch no `runs` column.
pub const FENCE: &str = "SELECT generation FROM runs WHERE key = ?1 AND epoch = ?2 AND owner = ?3";

/// ?1 key, ?2 epoch, ?3 owner, ?4 generation, ?5 tag, ?6 shape, ?7 now, ?8 placement JSON,
/// ?9 placement host. A placed run keeps its placement.
pub const RECORD_INTENT: &str = "UPDATE runs
    SET phase = 'intent', generation = ?4, tag = ?5, shape = ?6, external_id = NULL,
        updated_at_ms = ?7, placement = COALESCE(placement, ?8),
        placement_host = COALESCE(placement_host, ?9)
    WHERE key = ?1 AND epoch = ?2 AND owner = ?3 AND phase <> 'finished'";

/// ?1 key, ?2 generation, ?3 tag, ?4 shape, ?5 now. Re-intending a generation (a crash before
/// submitting) resets what the previous attempt at it may have recorded.
pub const UPSERT_SUBMISSION: &str =
    "INSERT INTO submissions (key, generation, tag, shape, intent_at_ms)
    VALUES (?1, ?2, ?3, ?4, ?5)
    ON CONFLICT (key, generation) DO UPDATE SET
        tag = excluded.tag, shape = excluded.shape, external_id = NULL,
        submitted_at_ms = NULL, outcome = NULL, finished_at_ms = NULL";

/// ?1 key, ?2 generation of the new intent, ?3 outcome JSON of the one before, ?4 now.
pub const PREVIOUS_OUTCOME: &str = "UPDATE submissions
    SET outcome = ?3, finished_at_ms = ?4
    WHERE key = ?1 AND generation = ?2 - 1 AND outcome IS NULL";

/// ?1 key, ?2 epoch, ?3 owner, ?4 generation, ?5 external id, ?6 now.
pub const RECORD_SUBMITTED: &str = "UPDATE runs
    SET phase = 'submitted', external_id = ?5, updated_at_ms = ?6
    WHERE key = ?1 AND epoch = ?2 AND owner = ?3
      AND generation = ?4 AND phase IN ('intent', 'submitted')";

/// ?1 key, ?2 generation, ?3 external id, ?4 now.
pub const SUBMISSION_SUBMITTED: &str = "UPDATE submissions
    SET external_id = ?3, submitted_at_ms = ?4
    WHERE key = ?1 AND generation = ?2";

/// ?1 key, ?2 epoch, ?3 owner, ?4 outcome JSON, ?5 now. Finishing also gives the lease up.
pub const RECORD_FINISHED: &str = "UPDATE runs
    SET phase = 'finished', outcome = ?4, owner = NULL, lease_expires_at_ms = NULL,
        updated_at_ms = ?5
    WHERE key = ?1 AND epoch = ?2 AND owner = ?3 AND phase <> 'finished'
    RETURNING generation";

/// ?1 key, ?2 generation, ?3 outcome JSON, ?4 now.
pub const SUBMISSION_FINISHED: &str = "UPDATE submissions
    SET outcome = ?3, finished_at_ms = ?4
    WHERE key = ?1 AND generation = ?2";

/// ?1 key, ?2 now.
pub const REQUEST_CANCEL: &str = "UPDATE runs SET cancel_requested = 1, updated_at_ms = ?2
    WHERE key = ?1 AND phase <> 'finished'";

/// ?1 key.
pub const RUN_EXISTS: &str = "SELECT 1 FROM runs WHERE key = ?1";

/// ?1 host, ?2 now. Unplaces the host's unfinished runs and frees their leases.
pub const FORGET_HOST: &str = "UPDATE runs
    SET placement = NULL, placement_host = NULL, owner = NULL, lease_expires_at_ms = NULL,
        updated_at_ms = ?2
    WHERE placement_host = ?1 AND phase <> 'finished'
    RETURNING key, epoch, generation";

/// The store's id.
pub const STORE_ID: &str = "SELECT value FROM tether_meta WHERE name = 'store_id'";

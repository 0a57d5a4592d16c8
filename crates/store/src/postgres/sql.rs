//! The SQL text of the PostgreSQL store.
//!
//! Every operation is **one statement**: the client pipelines concurrent queries on a few shared
//! connections, which rules out multi-statement transactions, and a single statement is atomic
//! anyway. Changes that span tables (the run, its submission, its history entry) are written
//! with data-modifying CTEs that all hang off the fenced `UPDATE ... RETURNING` of the run, so
//! when the fence matches no row, nothing at all is written.
//!
//! Times come from the server (`tether_now_ms()`, created by the migration), never the caller.
//! Parameters carry explicit casts so prepared statements get the intended types.

/// Advisory lock key taken by migrations ("tether" + 1), so concurrent openers serialise.
pub const MIGRATION_LOCK: i64 = 0x7465_7468_6572_0001;

/// The schema version this build writes.
pub const LATEST_VERSION: i32 = 8;

/// `min_reader_schema` of `tether_meta`, if set.
pub const MIN_READER: &str = "SELECT value FROM tether_meta WHERE name = 'min_reader_schema'";

/// `(runs exists, tether_meta exists, schema_version exists)`, to spot foreign databases.
pub const PROBE: &str =
    "SELECT to_regclass('runs') IS NOT NULL, to_regclass('tether_meta') IS NOT NULL, \
     to_regclass('schema_version') IS NOT NULL";

/// Current schema version (only once `schema_version` exists).
pub const SCHEMA_VERSION: &str = "SELECT COALESCE(MAX(version), 0) FROM schema_version";

/// Migrations, index `i` bringing the schema from version `i` to `i + 1`, each applied in one
/// transaction under [`MIGRATION_LOCK`] together with its `schema_version` row.
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE IF NOT EXISTS tether_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO tether_meta (name, value) VALUES ('application', 'tether') ON CONFLICT DO NOTHING;

-- The lease clock. STABLE and based on now(): one consistent instant per statement.
CREATE OR REPLACE FUNCTION tether_now_ms() RETURNS BIGINT LANGUAGE sql STABLE AS
    $$ SELECT floor(extract(epoch FROM now()) * 1000)::bigint $$;

CREATE TABLE IF NOT EXISTS runs (
    key                 TEXT PRIMARY KEY,
    seq                 BIGINT GENERATED ALWAYS AS IDENTITY,
    kind                TEXT NOT NULL,
    spec                TEXT NOT NULL,
    spec_name           TEXT NOT NULL,
    spec_hash           TEXT NOT NULL,
    phase               TEXT NOT NULL DEFAULT 'empty',
    generation          BIGINT,
    tag                 TEXT,
    shape               TEXT,
    external_id         TEXT,
    outcome             TEXT,
    cancel_requested    BOOLEAN NOT NULL DEFAULT false,
    epoch               BIGINT NOT NULL DEFAULT 0,
    owner               TEXT,
    lease_expires_at_ms BIGINT,
    queued              BOOLEAN NOT NULL,
    created_at_ms       BIGINT NOT NULL,
    updated_at_ms       BIGINT NOT NULL
);
-- claim: unfinished runs in claim order (queued first, then oldest).
CREATE INDEX IF NOT EXISTS runs_claim ON runs (queued DESC, created_at_ms, seq) WHERE phase <> 'finished';
-- claim/expiry scans: unfinished runs by lease expiry.
CREATE INDEX IF NOT EXISTS runs_expiry ON runs (lease_expires_at_ms) WHERE phase <> 'finished';
-- renew_all: a worker's leases.
CREATE INDEX IF NOT EXISTS runs_owner ON runs (owner) WHERE owner IS NOT NULL;

CREATE TABLE IF NOT EXISTS submissions (
    key             TEXT NOT NULL,
    generation      BIGINT NOT NULL,
    tag             TEXT NOT NULL,
    shape           TEXT NOT NULL,
    external_id     TEXT,
    outcome         TEXT,
    intent_at_ms    BIGINT NOT NULL,
    submitted_at_ms BIGINT,
    finished_at_ms  BIGINT,
    PRIMARY KEY (key, generation)
);

CREATE TABLE IF NOT EXISTS history (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key        TEXT NOT NULL,
    at_ms      BIGINT NOT NULL,
    epoch      BIGINT NOT NULL,
    generation BIGINT,
    decision   TEXT NOT NULL,
    reason     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_key ON history (key, id);
"#,
    // 2: the store id (scopes every tag to this store) and the placement of host-bound runs.
    r#"
INSERT INTO tether_meta (name, value)
    VALUES ('store_id', substr(md5(random()::text || clock_timestamp()::text), 1, 8))
    ON CONFLICT DO NOTHING;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS placement TEXT;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS placement_host TEXT;
CREATE INDEX IF NOT EXISTS runs_placement_host ON runs (placement_host) WHERE placement_host IS NOT NULL;
"#,
    // 3: quarantine of rows this build cannot decode, and the oldest schema that may read.
    r#"
-- A row this build (or an older one) could not decode: set aside with the reason, skipped by
-- claims, shown by `ls`/`status`.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS quarantined TEXT;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS quarantined_at_ms BIGINT;
INSERT INTO tether_meta (name, value) VALUES ('min_reader_schema', '3')
    ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value;
"#,
    // 4: the submitter's working directory, for the relative paths of its spec.
    r#"
ALTER TABLE runs ADD COLUMN IF NOT EXISTS base_dir TEXT;
-- Last generation of the earlier instances (`tether rerun`): the budget counts from it.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS instance_base BIGINT;
"#,
    // 5: owners holding a liveness lock (a session advisory lock on the hash of their id):
    // their runs are taken over as soon as that lock is free, not at lease expiry.
    r#"
CREATE TABLE IF NOT EXISTS owner_liveness (
    owner    TEXT PRIMARY KEY,
    since_ms BIGINT NOT NULL
);
"#,
    // 6: free unfinished runs in claim order, so that a claim reads O(batch) rows instead of
    // every unfinished run (see `CLAIM`). An index only: older builds read as before.
    r#"
CREATE INDEX IF NOT EXISTS runs_free ON runs (queued DESC, created_at_ms, seq)
    WHERE phase <> 'finished' AND owner IS NULL;
"#,
    // 7: the worker registry (`tether serve`'s fleet page): one row per worker, idle or not,
    // upserted at each of its heartbeats. Advisory: no lease or claim reads it.
    r#"
CREATE TABLE IF NOT EXISTS workers (
    owner           TEXT PRIMARY KEY,
    host            TEXT NOT NULL,
    pid             BIGINT NOT NULL,
    started_at_ms   BIGINT NOT NULL,
    heartbeat_at_ms BIGINT NOT NULL,
    concurrency     BIGINT NOT NULL,
    version         TEXT NOT NULL
);
"#,
    // 8: nothing here (SQLite's owners moved to one lock file, `owner_locks`); the version
    // keeps both stores' numbers the same.
    "SELECT 1;",
];

/// The channel of the claimable-run notifications ([`INSTALL_CLAIMABLE_TRIGGERS`]).
pub const CLAIMABLE_CHANNEL: &str = "tether_claimable";

/// Wakes claimers (`LISTEN tether_claimable`) when a run becomes claimable: a queued run is
/// created, a lease is released, or a finished run is rerun. Sent at commit; identical
/// notifications of one transaction are folded into one. The WHEN clauses keep claims and
/// renewals (which set an owner) from calling the function at all. A dead owner cannot notify:
/// its runs are found by the claimers' poll (see `notify.rs`).
///
/// Installed when missing by the first worker that listens, under the migration lock, rather
/// than as a schema version: triggers change no table, so older builds read the database as
/// before, and SQLite (which has no such thing) stays at the same schema version.
pub const INSTALL_CLAIMABLE_TRIGGERS: &str = r#"
DO $install$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                   WHERE tgrelid = 'runs'::regclass AND tgname = 'runs_released_claimable') THEN
        CREATE OR REPLACE FUNCTION tether_notify_claimable() RETURNS trigger LANGUAGE plpgsql AS
            $fn$ BEGIN PERFORM pg_notify('tether_claimable', ''); RETURN NULL; END $fn$;
        DROP TRIGGER IF EXISTS runs_created_claimable ON runs;
        CREATE TRIGGER runs_created_claimable AFTER INSERT ON runs
            FOR EACH ROW WHEN (NEW.queued AND NEW.owner IS NULL)
            EXECUTE FUNCTION tether_notify_claimable();
        CREATE TRIGGER runs_released_claimable AFTER UPDATE OF owner, phase ON runs
            FOR EACH ROW WHEN (NEW.owner IS NULL AND NEW.phase <> 'finished'
                               AND (OLD.owner IS NOT NULL OR OLD.phase = 'finished'))
            EXECUTE FUNCTION tether_notify_claimable();
    END IF;
END
$install$"#;

/// Creates the version table.
pub const CREATE_SCHEMA_VERSION: &str = "CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";

/// $1 version.
pub const INSERT_SCHEMA_VERSION: &str =
    "INSERT INTO schema_version (version) VALUES ($1::int) ON CONFLICT DO NOTHING";

/// The run columns in the order `row_to_run` reads them; `lease_alive` by the server clock.
/// The store id comes from `tether_meta` by an uncorrelated subquery, which the engine evaluates
/// once per statement (not per row): every record carries the id its tags were made with.
macro_rules! run_columns {
    () => {
        "key, kind, spec, spec_name, spec_hash, phase, generation, tag, shape, external_id, \
         outcome, cancel_requested, epoch, owner, lease_expires_at_ms, queued, created_at_ms, \
         updated_at_ms, \
         COALESCE(owner IS NOT NULL AND lease_expires_at_ms > tether_now_ms(), false) AS lease_alive, \
         quarantined, placement, (SELECT value FROM tether_meta WHERE name = 'store_id') AS store_id, \
         base_dir, instance_base"
    };
}

/// The reason of a take-over history entry, from `prev_owner`, `prev_exp` and the new owner
/// `$2`. Mirrors `record::takeover_reason` (SQLite), so both backends read the same.
macro_rules! takeover_reason {
    () => {
        "CASE
            WHEN prev_owner IS NULL THEN 'lease was free; new owner ' || $2::text
            WHEN prev_exp IS NULL THEN
                'took over from ' || prev_owner || ' (lease had no expiry); new owner ' || $2::text
            WHEN prev_exp > tether_now_ms() THEN 'took over from ' || prev_owner
                || ' (owner gone, lease had '
                || to_char((prev_exp - tether_now_ms()) / 1000.0, 'FM999999999990.0')
                || 's left); new owner ' || $2::text
            ELSE 'took over from ' || prev_owner || ' (lease expired '
                || to_char(greatest(tether_now_ms() - prev_exp, 0) / 1000.0, 'FM999999999990.0')
                || 's ago); new owner ' || $2::text
         END"
    };
}

/// A run is free to take: unowned, or its lease expired by the server clock, or its owner
/// registered a liveness lock (`owner_liveness`) that this transaction can take: the session
/// that held it is gone (the owner died). The lock is transaction-scoped, so it is released at
/// once with the claim's commit; an owner still alive holds it and the try fails.
macro_rules! free {
    () => {
        "phase <> 'finished' AND quarantined IS NULL
         AND (owner IS NULL OR lease_expires_at_ms IS NULL OR lease_expires_at_ms <= tether_now_ms()
              OR owner IN (SELECT l.owner FROM owner_liveness l
                           WHERE pg_try_advisory_xact_lock(hashtextextended(l.owner, 0))))"
    };
}

/// What every claim candidate must also be (see [`CLAIM`]): readable, not placed on another
/// host ($4), of an allowed kind ($5).
macro_rules! claim_admits {
    () => {
        "quarantined IS NULL AND (placement_host IS NULL OR placement_host = $4::text)
         AND ($5::text[] IS NULL OR kind = ANY($5::text[]))"
    };
}

/// $1 key, $2 kind, $3 spec, $4 spec_name, $5 spec_hash, $6 queued. Returns the row if new.
pub const INSERT_RUN: &str = concat!(
    "INSERT INTO runs (key, kind, spec, spec_name, spec_hash, phase, queued, created_at_ms, updated_at_ms,
                       base_dir)
     VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, 'empty', $6::bool,
             tether_now_ms(), tether_now_ms(), $7::text)
     ON CONFLICT (key) DO NOTHING
     RETURNING ",
    run_columns!()
);

/// $1 key.
pub const GET_RUN: &str = concat!("SELECT ", run_columns!(), " FROM runs WHERE key = $1::text");

/// Newest first. The spec body is not loaded (`''`): listings never need it.
pub const LIST_RUNS: &str = "SELECT key, kind, '' AS spec, spec_name, spec_hash, phase, \
     generation, tag, shape, external_id, outcome, cancel_requested, epoch, owner, \
     lease_expires_at_ms, queued, created_at_ms, updated_at_ms, \
     COALESCE(owner IS NOT NULL AND lease_expires_at_ms > tether_now_ms(), false), quarantined, \
     placement, (SELECT value FROM tether_meta WHERE name = 'store_id'), base_dir, instance_base \
     FROM runs ORDER BY created_at_ms DESC, seq DESC";

/// A page of the listing (`Store::list_summaries`): the columns of [`LIST_RUNS`] (no spec
/// body). $1 states (state words, NULL: any), $2 kinds (NULL: any), $3 changed at or after
/// (ms), $4/$5 the cursor's `updated_at_ms`/key (NULL: first page), $6 row limit (NULL: none).
/// The state word is derived from `phase` and the outcome's tag, matched as text (a damaged
/// outcome must not fail the whole listing, as a `::jsonb` cast would). Keys compare bytewise
/// (`COLLATE "C"`), as the cursor does, whatever the database's collation.
pub const LIST_SUMMARIES: &str = "SELECT key, kind, '' AS spec, spec_name, spec_hash, phase, \
     generation, tag, shape, external_id, outcome, cancel_requested, epoch, owner, \
     lease_expires_at_ms, queued, created_at_ms, updated_at_ms, \
     COALESCE(owner IS NOT NULL AND lease_expires_at_ms > tether_now_ms(), false), quarantined, \
     placement, (SELECT value FROM tether_meta WHERE name = 'store_id'), base_dir, instance_base \
     FROM runs \
     WHERE ($1::text[] IS NULL OR (CASE phase WHEN 'empty' THEN 'queued' \
            WHEN 'intent' THEN 'running' WHEN 'submitted' THEN 'running' WHEN 'finished' THEN \
              CASE WHEN outcome LIKE '{\"outcome\":\"succeeded\"%' THEN 'succeeded' \
                   WHEN outcome LIKE '{\"outcome\":\"failed\"%' THEN 'failed' \
                   WHEN outcome LIKE '{\"outcome\":\"cancelled\"%' THEN 'cancelled' END END) \
            = ANY($1::text[])) \
       AND ($2::text[] IS NULL OR kind = ANY($2::text[])) \
       AND ($3::bigint IS NULL OR updated_at_ms >= $3::bigint) \
       AND ($4::bigint IS NULL OR updated_at_ms < $4::bigint \
            OR (updated_at_ms = $4::bigint AND key COLLATE \"C\" < $5::text)) \
       AND ($7::text[] IS NULL OR owner = ANY($7::text[])) \
     ORDER BY updated_at_ms DESC, key COLLATE \"C\" DESC LIMIT $6::bigint";

/// $1 the worker's host (NULL: none), $2 kinds (NULL: all). Whether an unfinished readable
/// run is left that such a worker may claim; stops at the first one.
pub const ANY_UNFINISHED: &str = "SELECT EXISTS (SELECT 1 FROM runs \
     WHERE phase IN ('empty', 'intent', 'submitted') AND quarantined IS NULL \
       AND (placement_host IS NULL OR placement_host = $1::text) \
       AND ($2::text[] IS NULL OR kind = ANY($2::text[])))";

/// Readable runs per state word and kind: one grouped count, no row decoded. The state word
/// as in [`LIST_SUMMARIES`]; a row whose phase or outcome this build cannot tell is left out.
pub const COUNT_RUNS: &str = "SELECT st, kind, COUNT(*) FROM (SELECT kind, \
     CASE phase WHEN 'empty' THEN 'queued' WHEN 'intent' THEN 'running' \
            WHEN 'submitted' THEN 'running' WHEN 'finished' THEN \
              CASE WHEN outcome LIKE '{\"outcome\":\"succeeded\"%' THEN 'succeeded' \
                   WHEN outcome LIKE '{\"outcome\":\"failed\"%' THEN 'failed' \
                   WHEN outcome LIKE '{\"outcome\":\"cancelled\"%' THEN 'cancelled' END END AS st \
     FROM runs WHERE quarantined IS NULL) AS c WHERE st IS NOT NULL GROUP BY st, kind";

/// $1 key, $2 reason, $3 owner. Sets a run this build cannot read aside and gives back the
/// lease the claim just took on it.
pub const QUARANTINE: &str = "UPDATE runs SET quarantined = $2::text,
        quarantined_at_ms = tether_now_ms(), owner = NULL, lease_expires_at_ms = NULL
    WHERE key = $1::text AND owner = $3::text";

/// $1 key. Oldest first.
pub const HISTORY: &str = "SELECT at_ms, epoch, generation, decision, reason
    FROM history WHERE key = $1::text ORDER BY id";

/// $1 key.
pub const SUBMISSIONS: &str = "SELECT generation, tag, shape, external_id, outcome, intent_at_ms
    FROM submissions WHERE key = $1::text ORDER BY generation";

/// $1 key, $2 owner, $3 ttl ms. Takes the lease if free (row lock first, so the previous
/// holder recorded in history is the one actually displaced). Returns the run if taken.
pub const ACQUIRE: &str = concat!(
    "WITH cur AS (
        SELECT key, owner AS prev_owner, lease_expires_at_ms AS prev_exp FROM runs
        WHERE key = $1::text AND ",
    free!(),
    "   FOR UPDATE
    ), u AS (
        UPDATE runs r SET epoch = r.epoch + 1, owner = $2::text,
            lease_expires_at_ms = tether_now_ms() + $3::bigint, updated_at_ms = tether_now_ms()
        FROM cur WHERE r.key = cur.key
        RETURNING r.*, cur.prev_owner, cur.prev_exp
    ), h AS (
        INSERT INTO history (key, at_ms, epoch, generation, decision, reason)
        SELECT key, tether_now_ms(), epoch, generation, 'lease-acquired', ",
    takeover_reason!(),
    " FROM u
    )
    SELECT ",
    run_columns!(),
    " FROM u"
);

/// $1 limit, $2 owner, $3 ttl ms. One statement: pick free runs in claim order, skipping rows
/// another claimer has locked, take them with a new epoch and log each take-over.
///
/// The candidates come from three index-driven parts, each locking at most $1 rows: free runs
/// walked in claim order on `runs_free`, expired leases by range on `runs_expiry`, the runs of
/// gone owners on `runs_owner`; the first $1 of them in claim order are taken (the others stay
/// locked, untouched, until this statement commits). One `WHERE` over all unfinished runs
/// walked every leased run at every claim tick (~200 ms with 90,000 in flight). Each part
/// re-checks its own condition on the locked row (`FOR UPDATE`), so a run taken meanwhile by
/// another claimer is never taken twice. (No statement sets an owner without an expiry.)
pub const CLAIM: &str = concat!(
    "WITH gone AS (
        SELECT l.owner FROM owner_liveness l
        WHERE pg_try_advisory_xact_lock(hashtextextended(l.owner, 0))
    ), free_runs AS (
        SELECT key, owner, lease_expires_at_ms, queued, created_at_ms, seq FROM runs
        WHERE phase <> 'finished' AND owner IS NULL AND ",
    claim_admits!(),
    "   ORDER BY queued DESC, created_at_ms, seq LIMIT $1::bigint
        FOR UPDATE SKIP LOCKED
    ), expired AS (
        SELECT key, owner, lease_expires_at_ms, queued, created_at_ms, seq FROM runs
        WHERE phase <> 'finished' AND lease_expires_at_ms <= tether_now_ms() AND ",
    claim_admits!(),
    "   ORDER BY queued DESC, created_at_ms, seq LIMIT $1::bigint
        FOR UPDATE SKIP LOCKED
    ), orphan_keys AS MATERIALIZED (
        -- Found through `runs_owner` first (no ORDER BY here: with one, the planner walks the
        -- claim order through every leased run, hoping to stop early).
        SELECT key, queued, created_at_ms, seq FROM runs
        WHERE owner = ANY(ARRAY(SELECT owner FROM gone)) AND phase <> 'finished' AND ",
    claim_admits!(),
    "), orphaned AS (
        SELECT key, owner, lease_expires_at_ms, queued, created_at_ms, seq FROM runs
        WHERE key IN (SELECT key FROM orphan_keys
                      ORDER BY queued DESC, created_at_ms, seq LIMIT $1::bigint)
          AND owner = ANY(ARRAY(SELECT owner FROM gone)) AND phase <> 'finished'
        FOR UPDATE SKIP LOCKED
    ), cur AS (
        SELECT key, owner AS prev_owner, lease_expires_at_ms AS prev_exp FROM (
            SELECT * FROM free_runs UNION SELECT * FROM expired UNION SELECT * FROM orphaned
        ) c
        ORDER BY queued DESC, created_at_ms, seq
        LIMIT $1::bigint
    ), u AS (
        UPDATE runs r SET epoch = r.epoch + 1, owner = $2::text,
            lease_expires_at_ms = tether_now_ms() + $3::bigint, updated_at_ms = tether_now_ms()
        -- The array lets the planner fetch the batch by primary key instead of hash-joining
        -- it against a scan of every run.
        FROM cur WHERE r.key = cur.key AND r.key = ANY(ARRAY(SELECT key FROM cur))
        RETURNING r.*, cur.prev_owner, cur.prev_exp
    ), h AS (
        INSERT INTO history (key, at_ms, epoch, generation, decision, reason)
        SELECT key, tether_now_ms(), epoch, generation, 'claimed', ",
    takeover_reason!(),
    " FROM u
    )
    SELECT ",
    run_columns!(),
    " FROM u ORDER BY queued DESC, created_at_ms, seq"
);

/// $1 key, $2 epoch, $3 owner, $4 ttl ms. Renewal does not touch `updated_at_ms`.
pub const RENEW: &str = "UPDATE runs SET lease_expires_at_ms = tether_now_ms() + $4::bigint
    WHERE key = $1::text AND epoch = $2::bigint AND owner = $3::text AND phase <> 'finished'
    RETURNING key";

/// $1 owner. The unfinished runs `owner` holds, the least time left first: what `renew_all`
/// renews, chunk by chunk ([`RENEW_CHUNK`]). A plain read: no row locks, no rewrite.
pub const HELD: &str = "SELECT key FROM runs
    WHERE owner = $1::text AND phase <> 'finished'
    ORDER BY lease_expires_at_ms NULLS FIRST, key";

/// $1 owner, $2 ttl ms, $3 keys (one chunk of [`HELD`]). Renews those still held and not
/// locked by a write in flight (`SKIP LOCKED`: typically the run's own fenced write, a few ms
/// long; the next beat renews it), and answers every key still held: renewed ones as renewed,
/// the locked ones as of the statement's snapshot (not renewed). The lock re-checks owner and
/// phase on the newest row version, so a lease taken over meanwhile is never extended.
pub const RENEW_CHUNK: &str = "WITH l AS (
        SELECT key FROM runs
        WHERE key = ANY($3::text[]) AND owner = $1::text AND phase <> 'finished'
        FOR UPDATE SKIP LOCKED
    ), u AS (
        UPDATE runs r SET lease_expires_at_ms = tether_now_ms() + $2::bigint
        FROM l WHERE r.key = l.key AND r.owner = $1::text AND r.phase <> 'finished'
        RETURNING r.key, r.epoch, r.cancel_requested
    )
    SELECT key, epoch, cancel_requested FROM u
    UNION ALL
    SELECT key, epoch, cancel_requested FROM runs
    WHERE key = ANY($3::text[]) AND owner = $1::text AND phase <> 'finished'
        AND key NOT IN (SELECT key FROM u)";

/// $1 key, $2 epoch, $3 owner. Returns 1 row if released (and logged).
pub const RELEASE: &str = "WITH u AS (
        UPDATE runs SET owner = NULL, lease_expires_at_ms = NULL, updated_at_ms = tether_now_ms()
        WHERE key = $1::text AND epoch = $2::bigint AND owner = $3::text
        RETURNING key, epoch, generation
    ), h AS (
        INSERT INTO history (key, at_ms, epoch, generation, decision, reason)
        SELECT key, tether_now_ms(), epoch, generation, 'released', 'lease released by ' || $3::text
        FROM u
    )
    SELECT count(*) FROM u";

/// The history row of a fenced write, inserted once per row of the CTE `u`. Takes the
/// placeholders of at_ms (0 = now), epoch, generation, decision and reason.
macro_rules! history_from_u {
    ($at:literal, $epoch:literal, $g:literal, $decision:literal, $reason:literal) => {
        concat!(
            "h AS (
            INSERT INTO history (key, at_ms, epoch, generation, decision, reason)
            SELECT key, COALESCE(NULLIF(",
            $at,
            "::bigint, 0), tether_now_ms()), ",
            $epoch,
            "::bigint, ",
            $g,
            "::bigint, ",
            $decision,
            "::text, ",
            $reason,
            "::text
            FROM u
        )"
        )
    };
}

/// $1 key, $2 epoch, $3 owner, $4 generation, $5 tag, $6 shape, $7..$11 history entry.
pub const RECORD_INTENT: &str = concat!(
    "WITH u AS (
        UPDATE runs SET phase = 'intent', generation = $4::bigint, tag = $5::text,
            shape = $6::text, external_id = NULL, updated_at_ms = tether_now_ms(),
            placement = COALESCE(placement, $13::text),
            placement_host = COALESCE(placement_host, $14::text)
        WHERE key = $1::text AND epoch = $2::bigint AND owner = $3::text AND phase <> 'finished'
        RETURNING key
    ), s AS (
        INSERT INTO submissions (key, generation, tag, shape, intent_at_ms)
        SELECT key, $4::bigint, $5::text, $6::text, tether_now_ms() FROM u
        ON CONFLICT (key, generation) DO UPDATE SET
            tag = EXCLUDED.tag, shape = EXCLUDED.shape, external_id = NULL,
            submitted_at_ms = NULL, outcome = NULL, finished_at_ms = NULL
    ), p AS (
        UPDATE submissions SET outcome = $12::text, finished_at_ms = tether_now_ms()
        WHERE $12::text IS NOT NULL AND key IN (SELECT key FROM u)
          AND generation = $4::bigint - 1 AND outcome IS NULL
    ), ",
    history_from_u!("$7", "$8", "$9", "$10", "$11"),
    " SELECT count(*) FROM u"
);

/// $1 key, $2 epoch, $3 owner, $4 generation, $5 external id, $6..$10 history entry.
pub const RECORD_SUBMITTED: &str = concat!(
    "WITH u AS (
        UPDATE runs SET phase = 'submitted', external_id = $5::text, updated_at_ms = tether_now_ms()
        WHERE key = $1::text AND epoch = $2::bigint AND owner = $3::text
          AND generation = $4::bigint AND phase IN ('intent', 'submitted')
        RETURNING key
    ), s AS (
        UPDATE submissions SET external_id = $5::text, submitted_at_ms = tether_now_ms()
        WHERE key IN (SELECT key FROM u) AND generation = $4::bigint
    ), ",
    history_from_u!("$6", "$7", "$8", "$9", "$10"),
    " SELECT count(*) FROM u"
);

/// $1 key, $2 epoch, $3 owner, $4 outcome JSON, $5..$9 history entry. Finishing also gives
/// the lease up.
pub const RECORD_FINISHED: &str = concat!(
    "WITH u AS (
        UPDATE runs SET phase = 'finished', outcome = $4::text, owner = NULL,
            lease_expires_at_ms = NULL, updated_at_ms = tether_now_ms()
        WHERE key = $1::text AND epoch = $2::bigint AND owner = $3::text AND phase <> 'finished'
        RETURNING key, generation
    ), s AS (
        UPDATE submissions sub SET outcome = $4::text, finished_at_ms = tether_now_ms()
        FROM u WHERE sub.key = u.key AND sub.generation = u.generation
    ), ",
    history_from_u!("$5", "$6", "$7", "$8", "$9"),
    " SELECT count(*) FROM u"
);

/// $1 key, $2 epoch, $3 owner, $4..$8 history entry. `FOR SHARE` makes a concurrent
/// take-over wait for us or fence us out, never slip in between check and insert.
pub const APPEND_HISTORY: &str = concat!(
    "WITH u AS (
        SELECT key FROM runs
        WHERE key = $1::text AND epoch = $2::bigint AND owner = $3::text
        FOR SHARE
    ), ",
    history_from_u!("$4", "$5", "$6", "$7", "$8"),
    " SELECT count(*) FROM u"
);

/// $1 key, $2 epoch, $3 owner. Returns the current generation if the fence holds.
pub const FENCE: &str =
    "SELECT generation FROM runs WHERE key = $1::text AND epoch = $2::bigint AND owner = $3::text";

/// $1 key.
pub const REQUEST_CANCEL: &str =
    "UPDATE runs SET cancel_requested = true, updated_at_ms = tether_now_ms()
    WHERE key = $1::text AND phase <> 'finished'";

/// $1 key.
pub const RUN_EXISTS: &str = "SELECT 1 FROM runs WHERE key = $1::text";

/// $1 host, $2 reason. Unplaces the host's unfinished runs, frees their leases, notes why.
pub const FORGET_HOST: &str = "WITH u AS (
        UPDATE runs SET placement = NULL, placement_host = NULL, owner = NULL,
            lease_expires_at_ms = NULL, updated_at_ms = tether_now_ms()
        WHERE placement_host = $1::text AND phase <> 'finished'
        RETURNING key, epoch, generation
    ), h AS (
        INSERT INTO history (key, at_ms, epoch, generation, decision, reason)
        SELECT key, tether_now_ms(), epoch, generation, 'host-forgotten', $2::text FROM u
    )
    SELECT key FROM u";

/// The store's id.
pub const STORE_ID: &str = "SELECT value FROM tether_meta WHERE name = 'store_id'";

/// Whether the current connection is TLS-encrypted.
pub const SSL_IN_USE: &str = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

/// $1 owner. Taken by the owner's dedicated session and held for as long as it lives (false:
/// another live session holds the same hash, then the lease alone decides).
pub const LIVENESS_LOCK: &str = "SELECT pg_try_advisory_lock(hashtextextended($1::text, 0))";

/// $1 owner. Registered after the lock is held, so a row always means "lock held since".
/// Rows of owners that are gone and own no unfinished run are removed on the way.
pub const LIVENESS_REGISTER: &str = "WITH gone AS (
        DELETE FROM owner_liveness l
        WHERE l.owner <> $1::text
          AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.owner = l.owner AND r.phase <> 'finished')
          AND pg_try_advisory_xact_lock(hashtextextended(l.owner, 0))
    )
    INSERT INTO owner_liveness (owner, since_ms) VALUES ($1::text, tether_now_ms())
    ON CONFLICT (owner) DO NOTHING";

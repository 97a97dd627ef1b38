//! Schema and migrations, versioned by SQLite's `user_version` pragma.
//!
//! `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`. A database at version `n`
//! runs the migrations after `n` in one `BEGIN IMMEDIATE` transaction, re-reading the
//! version inside it, so two processes opening a fresh file at once migrate it once. A
//! database newer than [`LATEST`] is refused rather than written to. Migrations are only ever
//! appended: a released one never changes.

use rusqlite::{Connection, TransactionBehavior};

/// Schema version this build writes.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

const MIGRATIONS: &[&str] = &[
    // 1: history, rendered manifests, per-object results, inventory, pins, audit.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );
    -- Key for the HMAC fingerprints that replace Secret values in user-visible output.
    INSERT INTO meta (key, value) VALUES ('redaction_key', randomblob(32));

    CREATE TABLE syncs (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused
        app              TEXT    NOT NULL,
        commit_id        TEXT    NOT NULL,
        revision         TEXT    NOT NULL,                   -- JSON driftless_core::Revision
        trigger_name     TEXT    NOT NULL,
        manifests_digest TEXT    NOT NULL,
        outcome          TEXT    NOT NULL,
        plan_summary     TEXT,                               -- JSON, Secret values masked
        message          TEXT    NOT NULL DEFAULT '',        -- Secret values masked
        started_at       INTEGER NOT NULL,
        finished_at      INTEGER,
        owner            TEXT    NOT NULL,                   -- liveness lock of the writer
        pid              INTEGER NOT NULL
    );
    CREATE INDEX syncs_by_app ON syncs (app, id DESC);
    CREATE INDEX syncs_running ON syncs (owner) WHERE outcome = 'running';

    -- Kept apart from `syncs` so that no history query can select them by accident.
    CREATE TABLE sync_manifests (
        sync_id   INTEGER PRIMARY KEY REFERENCES syncs (id) ON DELETE CASCADE,
        manifests TEXT NOT NULL                              -- JSON as rendered, Secrets included
    );

    CREATE TABLE sync_results (
        sync_id   INTEGER NOT NULL REFERENCES syncs (id) ON DELETE CASCADE,
        seq       INTEGER NOT NULL,
        obj_group TEXT    NOT NULL,
        kind      TEXT    NOT NULL,
        namespace TEXT    NOT NULL,                          -- '' for cluster-scoped
        name      TEXT    NOT NULL,
        action    TEXT    NOT NULL,
        result    TEXT    NOT NULL,
        message   TEXT    NOT NULL,                          -- Secret values masked
        PRIMARY KEY (sync_id, seq)
    ) WITHOUT ROWID;

    CREATE TABLE inventories (
        app       TEXT PRIMARY KEY,
        commit_id TEXT    NOT NULL,
        revision  TEXT    NOT NULL,                          -- JSON driftless_core::Revision
        saved_at  INTEGER NOT NULL
    );
    CREATE TABLE inventory_objects (
        app       TEXT NOT NULL REFERENCES inventories (app) ON DELETE CASCADE,
        obj_group TEXT NOT NULL,
        kind      TEXT NOT NULL,
        namespace TEXT NOT NULL,                             -- '' for cluster-scoped
        name      TEXT NOT NULL,
        PRIMARY KEY (app, obj_group, kind, namespace, name)
    ) WITHOUT ROWID;

    -- A pinned sync cannot be deleted while pinned (foreign key), so its manifests stay.
    CREATE TABLE pins (
        app       TEXT PRIMARY KEY,
        sync_id   INTEGER NOT NULL REFERENCES syncs (id),
        commit_id TEXT    NOT NULL,
        pinned_at INTEGER NOT NULL
    );

    CREATE TABLE audit (
        seq    INTEGER PRIMARY KEY AUTOINCREMENT,
        at     INTEGER NOT NULL,
        actor  TEXT    NOT NULL,
        action TEXT    NOT NULL,
        app    TEXT,
        detail TEXT    NOT NULL                              -- JSON, Secret values masked
    );
    CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    "#,
];

/// What [`migrate`] found.
pub(crate) enum Migration {
    /// The schema is at [`LATEST`] (migrated if it was older).
    Current,
    /// The file is newer than this build.
    TooNew(i64),
}

/// Brings the schema to [`LATEST`].
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<Migration> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > LATEST {
        return Ok(Migration::TooNew(version));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
    }
    tx.commit()?;
    Ok(Migration::Current)
}

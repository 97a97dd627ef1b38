//! The [`Store`] handle and its operations.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use driftless_core::{ObjectRef, Revision};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::owner::{self, OwnerLock};
use crate::redact::Redactor;
use crate::schema::{self, Migration};
use crate::types::*;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "driftless.db";

/// How long a write waits for another process's write to finish before failing with a
/// retryable error.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const OWNERS_DIR: &str = "owners";

/// A sync found `running` whose process is gone, now marked `interrupted`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterruptedSync {
    /// Application name.
    pub app: String,
    /// The sync.
    pub id: SyncId,
    /// Process id that had begun it.
    pub pid: u32,
}

/// The embedded store: one SQLite file per data directory.
///
/// `Store` is `Send + Sync`: share it behind an `Arc`. Calls are serialized on one
/// connection (a `Mutex<Connection>`); each call is short (a few statements in one
/// transaction), which suits a store written a few times per sync. Other processes (the CLI
/// beside a daemon) open their own `Store` on the same directory; SQLite's WAL mode lets
/// them read while one writes, and writes wait up to [`BUSY_TIMEOUT`] for each other.
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
    owners_dir: PathBuf,
    redaction_key: Vec<u8>,
    recovered: Vec<InterruptedSync>,
    // Declared last so it is released after the connection is closed.
    owner: OwnerLock,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("owner", &self.owner.id())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) `data_dir/driftless.db`, migrates its schema and marks
    /// syncs left `running` by dead processes as `interrupted` (see
    /// [`recovered_at_open`](Store::recovered_at_open)).
    ///
    /// On Unix a data directory created here is `0700` and a database file created here is
    /// `0600` (SQLite gives its `-wal` and `-shm` files the same mode): the file holds
    /// rendered manifests with Secret values.
    pub fn open(data_dir: &Path) -> Result<Store> {
        let dir_err = |source| Error::Directory {
            path: data_dir.to_path_buf(),
            source,
        };
        create_private_dir(data_dir).map_err(dir_err)?;
        let owners_dir = data_dir.join(OWNERS_DIR);
        create_private_dir(&owners_dir).map_err(|source| Error::Directory {
            path: owners_dir.clone(),
            source,
        })?;
        let path = data_dir.join(DB_FILE);
        create_private_file(&path).map_err(|source| Error::Directory {
            path: path.clone(),
            source,
        })?;

        let sql_err = |operation: &str| {
            let path = path.clone();
            let operation = operation.to_owned();
            move |source| Error::Sqlite {
                path,
                operation,
                source,
            }
        };
        let mut conn = Connection::open(&path).map_err(sql_err("open"))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql_err("set busy timeout"))?;
        // WAL: readers never block the writer and the CLI can read while a daemon writes.
        // synchronous=FULL: a history entry that says "running" must survive a power cut,
        // not only a process crash; the store writes little, so the cost is small.
        let _mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(sql_err("enable WAL journal"))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql_err("set synchronous"))?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(sql_err("enable foreign keys"))?;

        match schema::migrate(&mut conn).map_err(sql_err("migrate schema"))? {
            Migration::Current => {}
            Migration::TooNew(found) => {
                return Err(Error::SchemaTooNew {
                    path,
                    found,
                    supported: schema::LATEST,
                });
            }
        }
        let redaction_key: Vec<u8> = conn
            .query_row("SELECT value FROM meta WHERE key = 'redaction_key'", [], |row| {
                row.get(0)
            })
            .map_err(sql_err("read redaction key"))?;

        let owner = OwnerLock::acquire(&owners_dir)?;
        let mut store = Store {
            conn: Mutex::new(conn),
            path,
            owners_dir,
            redaction_key,
            recovered: Vec::new(),
            owner,
        };
        store.recovered = store.mark_interrupted()?;
        Ok(store)
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Schema version of the open database (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<i64> {
        self.conn()
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(self.sql("read schema version"))
    }

    /// The syncs [`open`](Store::open) found left running by dead processes and marked
    /// `interrupted`, for the caller to report.
    pub fn recovered_at_open(&self) -> &[InterruptedSync] {
        &self.recovered
    }

    // ----- history ------------------------------------------------------------------------

    /// Records that a sync starts, with outcome `running`. Call it before anything is
    /// applied: if the process dies before [`finish_sync`](Store::finish_sync), the entry
    /// becomes `interrupted` rather than disappearing.
    pub fn begin_sync(&self, sync: &NewSync) -> Result<SyncId> {
        check_app(&sync.app)?;
        let op = || format!("begin sync for app {}", sync.app);
        let revision = to_json(&sync.revision);
        let manifests = sync.rendered_manifests.to_string();
        let mut conn = self.conn();
        let tx = self.write_tx(&mut conn, &op)?;
        tx.execute(
            "INSERT INTO syncs (app, commit_id, revision, trigger_name, manifests_digest, \
             outcome, started_at, owner, pid) VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7, ?8)",
            params![
                sync.app,
                sync.revision.commit,
                revision,
                sync.trigger,
                sync.manifests_digest,
                sync.started_at,
                self.owner.id(),
                std::process::id(),
            ],
        )
        .map_err(self.sql(op()))?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO sync_manifests (sync_id, manifests) VALUES (?1, ?2)",
            params![id, manifests],
        )
        .map_err(self.sql(op()))?;
        tx.commit().map_err(self.sql(op()))?;
        Ok(SyncId(id))
    }

    /// Records how a sync ended. Secret values (from this sync's manifests, and any Secret
    /// object inside `plan_summary`) are masked in everything written here.
    ///
    /// A `running` or `interrupted` sync can be finished (a late finish replaces
    /// `interrupted` because the real outcome is now known); a sync that already has a final
    /// outcome is not overwritten ([`Error::AlreadyFinished`]).
    pub fn finish_sync(&self, id: SyncId, outcome: Outcome) -> Result<()> {
        let mut conn = self.conn();
        let op = || format!("finish sync {id}");
        let tx = self.write_tx(&mut conn, &op)?;
        let row: Option<(String, String, String)> = tx
            .query_row(
                "SELECT s.app, s.outcome, m.manifests FROM syncs s \
                 JOIN sync_manifests m ON m.sync_id = s.id WHERE s.id = ?1",
                [id.0],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(self.sql(op()))?;
        let Some((app, current, manifests)) = row else {
            return Err(Error::UnknownSync { id });
        };
        if outcome.outcome == SyncOutcome::Running {
            return Err(Error::Invalid {
                app,
                reason: format!("sync {id} cannot be finished with outcome `running`"),
            });
        }
        let current = self.parse_outcome(&current, &app, id)?;
        if !matches!(current, SyncOutcome::Running | SyncOutcome::Interrupted) {
            return Err(Error::AlreadyFinished {
                app,
                id,
                outcome: current,
            });
        }
        let manifests: Value = serde_json::from_str(&manifests).map_err(|e| Error::Corrupt {
            path: self.path.clone(),
            what: format!("manifests of sync {id} of app {app}"),
            reason: e.to_string(),
        })?;
        let redactor = Redactor::new(&self.redaction_key, Some(&manifests));
        let op = || format!("finish sync {id} of app {app}");
        tx.execute(
            "UPDATE syncs SET outcome = ?2, plan_summary = ?3, message = ?4, finished_at = ?5 \
             WHERE id = ?1",
            params![
                id.0,
                outcome.outcome.as_str(),
                redactor.value(&outcome.plan_summary).to_string(),
                redactor.text(&outcome.message),
                outcome.finished_at,
            ],
        )
        .map_err(self.sql(op()))?;
        tx.execute("DELETE FROM sync_results WHERE sync_id = ?1", [id.0])
            .map_err(self.sql(op()))?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO sync_results (sync_id, seq, obj_group, kind, namespace, name, \
                     action, result, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(self.sql(op()))?;
            for (seq, r) in outcome.results.iter().enumerate() {
                insert
                    .execute(params![
                        id.0,
                        seq as i64,
                        r.object.group,
                        r.object.kind,
                        r.object.namespace.as_deref().unwrap_or(""),
                        r.object.name,
                        r.action,
                        r.result.as_str(),
                        redactor.text(&r.message),
                    ])
                    .map_err(self.sql(op()))?;
            }
        }
        tx.commit().map_err(self.sql(op()))
    }

    /// Marks every `running` sync whose process is gone as `interrupted` and returns them.
    ///
    /// Safe to call at any time from any process: a sync belongs to the liveness lock of the
    /// `Store` handle that began it (see the `owner` module docs), and only syncs whose lock
    /// is no longer held are touched; this handle's own syncs never are. [`open`](Store::open)
    /// calls it; a long-running daemon may call it periodically to pick up syncs of a CLI
    /// process that crashed meanwhile.
    pub fn mark_interrupted(&self) -> Result<Vec<InterruptedSync>> {
        let owners: Vec<String> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare("SELECT DISTINCT owner FROM syncs WHERE outcome = 'running' AND owner != ?1")
                .map_err(self.sql("list running syncs"))?;
            stmt.query_map([self.owner.id()], |r| r.get(0))
                .and_then(|rows| rows.collect::<rusqlite::Result<_>>())
                .map_err(self.sql("list running syncs"))?
        };
        let mut dead = Vec::new();
        for owner in owners {
            if !owner::is_alive(&self.owners_dir, &owner)? {
                dead.push(owner);
            }
        }
        let mut found = Vec::new();
        if !dead.is_empty() {
            let op = || "mark interrupted syncs".to_owned();
            let now = now();
            let mut conn = self.conn();
            let tx = self.write_tx(&mut conn, &op)?;
            for owner in &dead {
                let rows: Vec<(i64, String, u32)> = {
                    let mut stmt = tx
                        .prepare(
                            "SELECT id, app, pid FROM syncs \
                             WHERE outcome = 'running' AND owner = ?1 ORDER BY id",
                        )
                        .map_err(self.sql(op()))?;
                    stmt.query_map([owner], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                        .and_then(|rows| rows.collect::<rusqlite::Result<_>>())
                        .map_err(self.sql(op()))?
                };
                for (id, app, pid) in rows {
                    tx.execute(
                        "UPDATE syncs SET outcome = 'interrupted', finished_at = ?2, message = ?3 \
                         WHERE id = ?1 AND outcome = 'running'",
                        params![
                            id,
                            now,
                            format!(
                                "interrupted: process {pid} stopped before the sync finished; \
                                 the cluster may be partly applied, sync again to converge"
                            )
                        ],
                    )
                    .map_err(self.sql(op()))?;
                    found.push(InterruptedSync {
                        app,
                        id: SyncId(id),
                        pid,
                    });
                }
            }
            tx.commit().map_err(self.sql(op()))?;
        }
        owner::sweep(&self.owners_dir);
        Ok(found)
    }

    /// The newest `limit` syncs of `app`, newest first, with Secret values masked.
    pub fn history(&self, app: &str, limit: usize) -> Result<Vec<SyncEntry>> {
        let op = || format!("read history of app {app}");
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!("{SELECT_SYNC} WHERE app = ?1 ORDER BY id DESC LIMIT ?2"))
            .map_err(self.sql(op()))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![app, limit], RawSync::from_row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.sql(op()))?;
        rows.into_iter().map(|raw| self.entry(&conn, raw)).collect()
    }

    /// One sync of `app`, with Secret values masked.
    pub fn get_sync(&self, app: &str, id: SyncId) -> Result<SyncEntry> {
        let conn = self.conn();
        let raw = conn
            .query_row(
                &format!("{SELECT_SYNC} WHERE app = ?1 AND id = ?2"),
                params![app, id.0],
                RawSync::from_row,
            )
            .optional()
            .map_err(self.sql(format!("read sync {id} of app {app}")))?
            .ok_or_else(|| Error::SyncNotFound {
                app: app.to_owned(),
                id,
            })?;
        self.entry(&conn, raw)
    }

    /// The rendered manifests of a sync for display: every Secret's `data`/`stringData`
    /// value replaced by a fingerprint.
    pub fn redacted_manifests(&self, app: &str, id: SyncId) -> Result<Value> {
        let (_, manifests) = self.manifests(app, id)?;
        Ok(Redactor::new(&self.redaction_key, Some(&manifests)).value(&manifests))
    }

    /// The rendered manifests of a sync exactly as recorded, **Secret values in clear**, for
    /// rolling back to it. Never show the result to users; use
    /// [`redacted_manifests`](Store::redacted_manifests) for that.
    pub fn rollback_manifests(&self, app: &str, id: SyncId) -> Result<RollbackManifests> {
        let (revision, manifests) = self.manifests(app, id)?;
        Ok(RollbackManifests {
            sync_id: id,
            revision,
            manifests,
        })
    }

    // ----- inventory ----------------------------------------------------------------------

    /// Replaces what `app` owns with `objects` at `revision`, in one transaction: readers
    /// see the old inventory or the new one, never a mix, and a failure leaves the old one.
    /// Call it before applying (invariant "inventory before effect"). Duplicates are kept
    /// once.
    pub fn save_inventory(&self, app: &str, objects: &[ObjectRef], revision: &Revision) -> Result<()> {
        check_app(app)?;
        let op = || format!("save inventory of app {app}");
        let mut conn = self.conn();
        let tx = self.write_tx(&mut conn, &op)?;
        tx.execute("DELETE FROM inventory_objects WHERE app = ?1", [app])
            .map_err(self.sql(op()))?;
        tx.execute(
            "INSERT INTO inventories (app, commit_id, revision, saved_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (app) DO UPDATE SET commit_id = excluded.commit_id, \
             revision = excluded.revision, saved_at = excluded.saved_at",
            params![app, revision.commit, to_json(revision), now()],
        )
        .map_err(self.sql(op()))?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT OR IGNORE INTO inventory_objects (app, obj_group, kind, namespace, name) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(self.sql(op()))?;
            for object in objects {
                // Checked inside the transaction on purpose: a bad entry anywhere in the
                // list rolls back the delete above, so the old inventory survives.
                if object.kind.is_empty() || object.name.is_empty() {
                    return Err(Error::Invalid {
                        app: app.to_owned(),
                        reason: format!(
                            "inventory object `{object}` has an empty kind or name; \
                             inventory left unchanged"
                        ),
                    });
                }
                insert
                    .execute(params![
                        app,
                        object.group,
                        object.kind,
                        object.namespace.as_deref().unwrap_or(""),
                        object.name,
                    ])
                    .map_err(self.sql(op()))?;
            }
        }
        tx.commit().map_err(self.sql(op()))
    }

    /// What `app` owns, sorted; empty if no inventory was ever saved.
    pub fn inventory(&self, app: &str) -> Result<Vec<ObjectRef>> {
        Ok(self.inventory_record(app)?.map(|inv| inv.objects).unwrap_or_default())
    }

    /// The saved inventory of `app` with its revision and time, `None` if never saved.
    pub fn inventory_record(&self, app: &str) -> Result<Option<Inventory>> {
        let op = || format!("read inventory of app {app}");
        let conn = self.conn();
        let head: Option<(String, i64)> = conn
            .query_row(
                "SELECT revision, saved_at FROM inventories WHERE app = ?1",
                [app],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.sql(op()))?;
        let Some((revision, saved_at)) = head else {
            return Ok(None);
        };
        let revision = self.decode(&revision, || format!("inventory revision of app {app}"))?;
        let mut stmt = conn
            .prepare("SELECT obj_group, kind, namespace, name FROM inventory_objects WHERE app = ?1")
            .map_err(self.sql(op()))?;
        let mut objects: Vec<ObjectRef> = stmt
            .query_map([app], |r| {
                Ok(ObjectRef {
                    group: r.get(0)?,
                    kind: r.get(1)?,
                    namespace: namespace_of(r.get(2)?),
                    name: r.get(3)?,
                })
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<_>>())
            .map_err(self.sql(op()))?;
        objects.sort();
        Ok(Some(Inventory {
            app: app.to_owned(),
            objects,
            revision,
            saved_at,
        }))
    }

    // ----- pins ---------------------------------------------------------------------------

    /// Pins `app` to the manifests of sync `sync_id`, whose commit must be `commit` (a
    /// prefix of at least 7 hex digits is accepted; the full id is stored). Replaces an
    /// earlier pin. While pinned, that sync cannot be deleted from history.
    pub fn pin(&self, app: &str, sync_id: SyncId, commit: &str) -> Result<Pin> {
        check_app(app)?;
        let op = || format!("pin app {app} to sync {sync_id}");
        let mut conn = self.conn();
        let tx = self.write_tx(&mut conn, &op)?;
        let full: String = tx
            .query_row(
                "SELECT commit_id FROM syncs WHERE app = ?1 AND id = ?2",
                params![app, sync_id.0],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sql(op()))?
            .ok_or_else(|| Error::SyncNotFound {
                app: app.to_owned(),
                id: sync_id,
            })?;
        let matches = commit == full || (commit.len() >= 7 && full.starts_with(commit) && !commit.is_empty());
        if !matches {
            return Err(Error::Invalid {
                app: app.to_owned(),
                reason: format!("cannot pin to sync {sync_id} at commit {commit}: that sync synced commit {full}"),
            });
        }
        let pin = Pin {
            app: app.to_owned(),
            sync_id,
            commit: full,
            pinned_at: now(),
        };
        tx.execute(
            "INSERT INTO pins (app, sync_id, commit_id, pinned_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (app) DO UPDATE SET sync_id = excluded.sync_id, \
             commit_id = excluded.commit_id, pinned_at = excluded.pinned_at",
            params![pin.app, pin.sync_id.0, pin.commit, pin.pinned_at],
        )
        .map_err(self.sql(op()))?;
        tx.commit().map_err(self.sql(op()))?;
        Ok(pin)
    }

    /// The pin of `app`, if any.
    pub fn pin_of(&self, app: &str) -> Result<Option<Pin>> {
        self.conn()
            .query_row(
                "SELECT sync_id, commit_id, pinned_at FROM pins WHERE app = ?1",
                [app],
                |r| {
                    Ok(Pin {
                        app: app.to_owned(),
                        sync_id: SyncId(r.get(0)?),
                        commit: r.get(1)?,
                        pinned_at: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(self.sql(format!("read pin of app {app}")))
    }

    /// Removes the pin of `app`; returns whether there was one.
    pub fn unpin(&self, app: &str) -> Result<bool> {
        let n = self
            .conn()
            .execute("DELETE FROM pins WHERE app = ?1", [app])
            .map_err(self.sql(format!("unpin app {app}")))?;
        Ok(n > 0)
    }

    // ----- audit --------------------------------------------------------------------------

    /// Appends `event` to the audit log (Secret objects in `detail` masked) and returns its
    /// sequence number. The log is append-only: the schema refuses updates and deletes.
    pub fn audit(&self, event: &AuditEvent) -> Result<i64> {
        let op = || format!("append audit event {} by {}", event.action, event.actor);
        let detail = Redactor::new(&self.redaction_key, None).value(&event.detail);
        let conn = self.conn();
        conn.execute(
            "INSERT INTO audit (at, actor, action, app, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![now(), event.actor, event.action, event.app, detail.to_string()],
        )
        .map_err(self.sql(op()))?;
        Ok(conn.last_insert_rowid())
    }

    /// The newest `limit` audit events, newest first.
    pub fn audit_log(&self, limit: usize) -> Result<Vec<AuditRecord>> {
        let op = || "read audit log".to_owned();
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT seq, at, actor, action, app, detail FROM audit ORDER BY seq DESC LIMIT ?1")
            .map_err(self.sql(op()))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(i64, i64, String, String, Option<String>, String)> = stmt
            .query_map([limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<_>>())
            .map_err(self.sql(op()))?;
        rows.into_iter()
            .map(|(seq, at, actor, action, app, detail)| {
                Ok(AuditRecord {
                    seq,
                    at,
                    event: AuditEvent {
                        actor,
                        action,
                        app,
                        detail: self.decode(&detail, || format!("audit event {seq}"))?,
                    },
                })
            })
            .collect()
    }

    // ----- internals ----------------------------------------------------------------------

    /// The connection. A panic in another thread while holding it cannot leave it
    /// mid-transaction (an unfinished `Transaction` rolls back on drop), so a poisoned lock
    /// is taken over rather than propagated.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `BEGIN IMMEDIATE`: takes the write lock up front, so the busy timeout applies and a
    /// read-then-write transaction cannot fail half-way with `SQLITE_BUSY`.
    fn write_tx<'c>(&self, conn: &'c mut Connection, op: &dyn Fn() -> String) -> Result<Transaction<'c>> {
        conn.transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(self.sql(op()))
    }

    fn sql(&self, operation: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
        let operation = operation.into();
        move |source| Error::Sqlite {
            path: self.path.clone(),
            operation,
            source,
        }
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, json: &str, what: impl FnOnce() -> String) -> Result<T> {
        serde_json::from_str(json).map_err(|e| Error::Corrupt {
            path: self.path.clone(),
            what: what(),
            reason: e.to_string(),
        })
    }

    fn parse_outcome(&self, s: &str, app: &str, id: SyncId) -> Result<SyncOutcome> {
        s.parse().map_err(|reason| Error::Corrupt {
            path: self.path.clone(),
            what: format!("sync {id} of app {app}"),
            reason,
        })
    }

    fn manifests(&self, app: &str, id: SyncId) -> Result<(Revision, Value)> {
        let row: Option<(String, String)> = self
            .conn()
            .query_row(
                "SELECT s.revision, m.manifests FROM syncs s \
                 JOIN sync_manifests m ON m.sync_id = s.id WHERE s.app = ?1 AND s.id = ?2",
                params![app, id.0],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.sql(format!("read manifests of sync {id} of app {app}")))?;
        let (revision, manifests) = row.ok_or_else(|| Error::SyncNotFound {
            app: app.to_owned(),
            id,
        })?;
        let what = || format!("sync {id} of app {app}");
        Ok((self.decode(&revision, what)?, self.decode(&manifests, what)?))
    }

    fn entry(&self, conn: &Connection, raw: RawSync) -> Result<SyncEntry> {
        let id = SyncId(raw.id);
        let what = || format!("sync {id} of app {}", raw.app);
        let op = || format!("read results of sync {id} of app {}", raw.app);
        let mut stmt = conn
            .prepare_cached(
                "SELECT obj_group, kind, namespace, name, action, result, message \
                 FROM sync_results WHERE sync_id = ?1 ORDER BY seq",
            )
            .map_err(self.sql(op()))?;
        let rows: Vec<(ObjectRef, String, String, String)> = stmt
            .query_map([raw.id], |r| {
                Ok((
                    ObjectRef {
                        group: r.get(0)?,
                        kind: r.get(1)?,
                        namespace: namespace_of(r.get(2)?),
                        name: r.get(3)?,
                    },
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<_>>())
            .map_err(self.sql(op()))?;
        let results = rows
            .into_iter()
            .map(|(object, action, result, message)| {
                let result = result.parse().map_err(|reason| Error::Corrupt {
                    path: self.path.clone(),
                    what: what(),
                    reason,
                })?;
                Ok(ObjectResult {
                    object,
                    action,
                    result,
                    message,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let plan_summary = match &raw.plan_summary {
            Some(json) => self.decode(json, what)?,
            None => Value::Null,
        };
        Ok(SyncEntry {
            id,
            revision: self.decode(&raw.revision, what)?,
            outcome: self.parse_outcome(&raw.outcome, &raw.app, id)?,
            app: raw.app,
            trigger: raw.trigger,
            manifests_digest: raw.manifests_digest,
            plan_summary,
            results,
            message: raw.message,
            started_at: raw.started_at,
            finished_at: raw.finished_at,
            pid: raw.pid,
        })
    }
}

const SELECT_SYNC: &str = "SELECT id, app, revision, trigger_name, manifests_digest, outcome, \
     plan_summary, message, started_at, finished_at, pid FROM syncs";

/// A `syncs` row before its JSON columns are decoded.
struct RawSync {
    id: i64,
    app: String,
    revision: String,
    trigger: String,
    manifests_digest: String,
    outcome: String,
    plan_summary: Option<String>,
    message: String,
    started_at: i64,
    finished_at: Option<i64>,
    pid: u32,
}

impl RawSync {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<RawSync> {
        Ok(RawSync {
            id: r.get(0)?,
            app: r.get(1)?,
            revision: r.get(2)?,
            trigger: r.get(3)?,
            manifests_digest: r.get(4)?,
            outcome: r.get(5)?,
            plan_summary: r.get(6)?,
            message: r.get(7)?,
            started_at: r.get(8)?,
            finished_at: r.get(9)?,
            pid: r.get(10)?,
        })
    }
}

fn check_app(app: &str) -> Result<()> {
    if app.trim().is_empty() {
        return Err(Error::Invalid {
            app: String::new(),
            reason: "application name is empty".to_owned(),
        });
    }
    Ok(())
}

fn namespace_of(stored: String) -> Option<String> {
    (!stored.is_empty()).then_some(stored)
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serializing plain structs of strings and integers cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

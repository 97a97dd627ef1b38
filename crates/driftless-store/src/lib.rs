//! driftless-store: sync history, inventory, rollback pins and the audit log, in one
//! embedded SQLite file (`<data_dir>/driftless.db`).
//!
//! The store records; it decides nothing (no business rules live here). The engine calls it
//! at the points the architecture's invariants name:
//!
//! * **Every change is recorded.** [`Store::begin_sync`] writes a `running` entry before
//!   anything is applied, [`Store::finish_sync`] writes the outcome. A process killed in
//!   between leaves its entry `running`; the next [`Store::open`] (or any
//!   [`Store::mark_interrupted`]) turns it into `interrupted`, so history never has a gap.
//!   Whose entries are whose is decided by OS file locks, not guesses about pids: each
//!   `Store` handle holds a lock file for its lifetime and stamps its syncs with it; an
//!   entry is interrupted only when its lock is free (its process is dead). So the CLI can
//!   open the store while a daemon syncs without touching the daemon's running entries.
//! * **Inventory before effect.** [`Store::save_inventory`] replaces an app's inventory in
//!   one transaction, to be called before apply.
//! * **Secrets never leak.** See below.
//!
//! # Secrets
//!
//! Rollback needs the manifests as they were rendered, and rendering decrypts SOPS, so
//! recorded manifests hold Secret values in clear. The decision: store them as rendered,
//! in their own table, and protect them three ways rather than encrypt them (encryption
//! would need a key the same process can read, which protects little on a single host and
//! adds key management; it can be added later behind the same API):
//!
//! 1. the database file is created `0600` in a `0700` directory;
//! 2. only one method returns them in clear, [`Store::rollback_manifests`], whose result's
//!    `Debug` does not print them; everything else ([`Store::history`], [`Store::get_sync`],
//!    [`Store::redacted_manifests`], [`Store::audit_log`]) masks them;
//! 3. masking happens when history and audit records are *written* (plan summary, messages,
//!    per-object messages, audit detail), so no read path can forget it. Secret values
//!    become `<redacted:0123456789ab>`, a keyed fingerprint that shows *that* a value
//!    changed, not what it is; known values are also scrubbed from free text. Details and
//!    limits in the `redact` module docs.
//!
//! An alternative worth considering once rendering is deterministic and cached: store no
//! Secret values at all and re-render the pinned commit on rollback.
//!
//! # Concurrency
//!
//! A `Store` is `Send + Sync` (one connection behind a `Mutex`); share it with `Arc`.
//! Several processes may open the same directory: WAL mode lets readers proceed during a
//! write, writes use `BEGIN IMMEDIATE` and wait up to [`BUSY_TIMEOUT`] for each other;
//! an error that outlasts it reports [`Error::is_retryable`].
//!
//! # Schema
//!
//! Versioned by `PRAGMA user_version`; migrations run at open, once, under the write lock.
//! A database from a newer driftless is refused ([`Error::SchemaTooNew`]), never altered.

#![warn(missing_docs)]

mod error;
mod owner;
mod redact;
mod schema;
mod store;
mod types;

pub use error::{Error, Result};
pub use redact::{MIN_SCRUB_LEN, REDACTED};
pub use schema::LATEST as SCHEMA_VERSION;
pub use store::{BUSY_TIMEOUT, DB_FILE, InterruptedSync, Store};
pub use types::{
    ApplyResult, AuditEvent, AuditRecord, Inventory, NewSync, ObjectResult, Outcome, Pin, RollbackManifests, SyncEntry,
    SyncId, SyncOutcome,
};

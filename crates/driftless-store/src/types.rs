//! The records the store reads and writes.
//!
//! These types belong to the store rather than to `driftless-core`: they describe what is
//! *recorded* about a sync (strings and JSON that stay readable after the engine's own types
//! change), not the engine's in-memory plan. Times are seconds since the Unix epoch, like
//! [`Revision::time`].

use std::fmt;
use std::str::FromStr;

use driftless_core::{ObjectRef, Revision};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Identifier of one sync in one store: a positive integer, increasing, never reused (also
/// not after history is pruned), shown to users as `#12`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SyncId(pub i64);

impl fmt::Display for SyncId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What [`Store::begin_sync`](crate::Store::begin_sync) records before anything is applied.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSync {
    /// Application name.
    pub app: String,
    /// The revision being synced.
    pub revision: Revision,
    /// What started the sync: `cli`, `webhook`, `poll`, `rollback`, `self-heal`, ...
    pub trigger: String,
    /// Digest of the rendered manifests (lets the console tell "same manifests" at a glance).
    pub manifests_digest: String,
    /// The rendered objects, kept for rollback: usually a JSON array of Kubernetes objects
    /// (or a serialized `DesiredSet`). Secret values in here are stored as rendered and are
    /// only returned by [`Store::rollback_manifests`](crate::Store::rollback_manifests); see
    /// the crate docs.
    pub rendered_manifests: Value,
    /// When the sync started.
    pub started_at: i64,
}

/// Where a sync ended up. `Running` until [`Store::finish_sync`](crate::Store::finish_sync);
/// `Interrupted` when its process died before finishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncOutcome {
    /// Started, not finished yet (or its process is still alive).
    Running,
    /// Everything applied and healthy.
    Succeeded,
    /// Fetch, render or apply failed.
    Failed,
    /// Applied, but health verification failed.
    Degraded,
    /// Refused by policy or signature checks; nothing was applied.
    Denied,
    /// Skipped or stopped on purpose (e.g. a newer revision superseded it).
    Cancelled,
    /// The process recording it died before it finished.
    Interrupted,
}

impl SyncOutcome {
    /// The stored (and displayed) name, e.g. `succeeded`.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncOutcome::Running => "running",
            SyncOutcome::Succeeded => "succeeded",
            SyncOutcome::Failed => "failed",
            SyncOutcome::Degraded => "degraded",
            SyncOutcome::Denied => "denied",
            SyncOutcome::Cancelled => "cancelled",
            SyncOutcome::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for SyncOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SyncOutcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "running" => SyncOutcome::Running,
            "succeeded" => SyncOutcome::Succeeded,
            "failed" => SyncOutcome::Failed,
            "degraded" => SyncOutcome::Degraded,
            "denied" => SyncOutcome::Denied,
            "cancelled" => SyncOutcome::Cancelled,
            "interrupted" => SyncOutcome::Interrupted,
            other => return Err(format!("unknown sync outcome `{other}`")),
        })
    }
}

/// What applying one object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyResult {
    /// The object did not exist and was created.
    Created,
    /// The object existed and was changed.
    Configured,
    /// The object already matched.
    Unchanged,
    /// The object was pruned.
    Deleted,
    /// The object was not touched (e.g. an earlier wave failed).
    Skipped,
    /// Applying or deleting the object failed.
    Failed,
}

impl ApplyResult {
    /// The stored (and displayed) name, e.g. `configured`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyResult::Created => "created",
            ApplyResult::Configured => "configured",
            ApplyResult::Unchanged => "unchanged",
            ApplyResult::Deleted => "deleted",
            ApplyResult::Skipped => "skipped",
            ApplyResult::Failed => "failed",
        }
    }
}

impl fmt::Display for ApplyResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApplyResult {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "created" => ApplyResult::Created,
            "configured" => ApplyResult::Configured,
            "unchanged" => ApplyResult::Unchanged,
            "deleted" => ApplyResult::Deleted,
            "skipped" => ApplyResult::Skipped,
            "failed" => ApplyResult::Failed,
            other => return Err(format!("unknown apply result `{other}`")),
        })
    }
}

/// The recorded result for one object of a sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectResult {
    /// The object.
    pub object: ObjectRef,
    /// The planned action as the planner named it (`create`, `update`, `prune`, ...).
    pub action: String,
    /// What happened.
    pub result: ApplyResult,
    /// Detail for the user (error text, "field is immutable", ...); may be empty.
    pub message: String,
}

/// What [`Store::finish_sync`](crate::Store::finish_sync) records when a sync ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// How the sync ended; `Running` is refused.
    pub outcome: SyncOutcome,
    /// A summary of the plan (counts, diff excerpts, ...). Secret values in it are masked
    /// before it is written.
    pub plan_summary: Value,
    /// Per-object results in apply order.
    pub results: Vec<ObjectResult>,
    /// A one-line summary or error for the user; may be empty.
    pub message: String,
    /// When the sync ended.
    pub finished_at: i64,
}

/// One history entry as shown to users: never holds Secret values in clear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncEntry {
    /// Store-wide id.
    pub id: SyncId,
    /// Application name.
    pub app: String,
    /// The revision that was synced.
    pub revision: Revision,
    /// What started it (`cli`, `webhook`, `poll`, `rollback`, ...).
    pub trigger: String,
    /// Digest of the rendered manifests.
    pub manifests_digest: String,
    /// Current outcome (`running` until finished).
    pub outcome: SyncOutcome,
    /// Plan summary, Secret values masked; `null` while running.
    pub plan_summary: Value,
    /// Per-object results, empty while running.
    pub results: Vec<ObjectResult>,
    /// Summary message; for interrupted syncs it says which process was lost.
    pub message: String,
    /// When it started.
    pub started_at: i64,
    /// When it finished (or was found interrupted); `None` while running.
    pub finished_at: Option<i64>,
    /// Process id of the process that began the sync (diagnostics only).
    pub pid: u32,
}

/// Everything an application owned at one revision, as last saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    /// Application name.
    pub app: String,
    /// Owned objects, sorted and without duplicates.
    pub objects: Vec<ObjectRef>,
    /// The revision the inventory was saved for.
    pub revision: Revision,
    /// When it was saved.
    pub saved_at: i64,
}

/// A rollback pin: the application stays at this sync's commit until unpinned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// Application name.
    pub app: String,
    /// The sync whose manifests the application is pinned to.
    pub sync_id: SyncId,
    /// That sync's commit.
    pub commit: String,
    /// When the pin was set.
    pub pinned_at: i64,
}

/// Something a person or the engine did, for the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Who: a user name, `webhook:<source>`, `engine`, ...
    pub actor: String,
    /// What: `sync`, `rollback`, `pin`, `unpin`, `policy.override`, ...
    pub action: String,
    /// Which application, if any.
    pub app: Option<String>,
    /// Free-form detail. Secret values in it are masked before it is written.
    pub detail: Value,
}

/// An audit event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the log, increasing.
    pub seq: i64,
    /// When it was recorded (store clock).
    pub at: i64,
    /// The event (detail already masked).
    pub event: AuditEvent,
}

/// The full rendered manifests of a sync, Secret values included, for rollback only.
///
/// `Debug` prints only the sync id so the manifests cannot reach a log by accident.
#[derive(Clone, PartialEq)]
pub struct RollbackManifests {
    /// The sync these manifests belong to.
    pub sync_id: SyncId,
    /// That sync's revision.
    pub revision: Revision,
    /// The manifests exactly as given to `begin_sync`.
    pub manifests: Value,
}

impl fmt::Debug for RollbackManifests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RollbackManifests")
            .field("sync_id", &self.sync_id)
            .field("commit", &self.revision.commit)
            .field("manifests", &"<not shown: may contain Secret data>")
            .finish()
    }
}

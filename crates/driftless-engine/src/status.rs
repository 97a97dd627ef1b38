//! Live status of an application: per-object sync state and health.

use driftless_cluster::{ClusterClient, ClusterError};
use driftless_core::ObjectRef;
use driftless_core::health::{self, HealthReport};
use driftless_core::plan::{Action, Plan};
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;

use crate::prepare::Prepared;

/// Whether the cluster matches Git.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SyncState {
    /// Nothing to create, update or prune.
    Synced,
    /// Something differs.
    OutOfSync,
    /// Could not be determined (fetch, render or cluster error).
    Unknown,
}

/// One object's state.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectStatus {
    /// Identity.
    pub object: ObjectRef,
    /// Planned action (`create`, `update`, `unchanged`, `prune`, `prune-skipped`).
    pub action: String,
    /// Health of the live object.
    pub health: HealthReport,
}

/// An application's state.
#[derive(Debug, Clone, Serialize)]
pub struct AppStatus {
    /// Name.
    pub name: String,
    /// Head commit of the app's ref (or its pin).
    pub revision: String,
    /// Sync state.
    pub sync: SyncState,
    /// Worst health.
    pub health: HealthReport,
    /// Per object.
    pub objects: Vec<ObjectStatus>,
    /// Problems that prevented a full answer, and notes (pinned, policy warnings).
    pub message: String,
    /// Policy violations of the desired objects (deny and warn).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<driftless_policy::Violation>,
}

/// Action name for people and JSON.
pub fn action_name(a: &Action) -> &'static str {
    match a {
        Action::Create => "create",
        Action::Update => "update",
        Action::Unchanged => "unchanged",
        Action::Prune => "prune",
        Action::PruneSkipped { .. } => "prune-skipped",
    }
}

/// Reads every prepared object and assesses its health.
pub async fn assess_objects(
    cluster: &ClusterClient,
    prepared: &Prepared,
) -> Result<Vec<(ObjectRef, HealthReport)>, ClusterError> {
    let futs: Vec<_> = prepared.objects.iter().map(|p| assess_one(cluster, p)).collect();
    futures::stream::iter(futs)
        .buffered(crate::PARALLELISM)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

async fn assess_one(
    cluster: &ClusterClient,
    p: &crate::prepare::PreparedObject,
) -> Result<(ObjectRef, HealthReport), ClusterError> {
    let r = p.desired.object_ref().unwrap_or_else(|| ObjectRef {
        group: String::new(),
        kind: String::new(),
        namespace: None,
        name: String::new(),
    });
    let live = match &p.resolved {
        Some(res) => cluster.get(res, r.namespace.as_deref(), &r.name).await?,
        None => {
            let av = p.desired.object.get("apiVersion").and_then(Value::as_str).unwrap_or("");
            match cluster.resolve(av, &r.kind).await {
                Ok(res) => cluster.get(&res, r.namespace.as_deref(), &r.name).await?,
                Err(ClusterError::KindNotServed { .. }) => None,
                Err(e) => return Err(e),
            }
        }
    };
    Ok((r, health::assess_live(live.as_ref())))
}

/// Builds the status from a plan and live health.
pub fn from_plan(name: &str, revision: &str, plan: &Plan, healths: Vec<(ObjectRef, HealthReport)>) -> AppStatus {
    let sync = if plan.has_changes() {
        SyncState::OutOfSync
    } else {
        SyncState::Synced
    };
    let objects: Vec<ObjectStatus> = plan
        .steps
        .iter()
        .map(|s| ObjectStatus {
            object: s.object.clone(),
            action: action_name(&s.action).into(),
            health: healths
                .iter()
                .find(|(r, _)| r == &s.object)
                .map(|(_, h)| h.clone())
                .unwrap_or_else(|| HealthReport {
                    status: health::HealthStatus::Unknown,
                    message: "not assessed (being pruned)".into(),
                }),
        })
        .collect();
    let worst = app_health(&healths);
    AppStatus {
        name: name.into(),
        revision: revision.into(),
        sync,
        health: worst,
        objects,
        message: String::new(),
        violations: Vec::new(),
    }
}

/// The app's health: the worst of its objects; when all are healthy, say how many.
pub fn app_health(healths: &[(ObjectRef, HealthReport)]) -> HealthReport {
    let worst = health::worst(healths.iter().map(|(_, h)| h));
    if worst.status == health::HealthStatus::Healthy {
        return HealthReport {
            status: worst.status,
            message: format!("{} object(s) healthy", healths.len()),
        };
    }
    let unhealthy = healths
        .iter()
        .filter(|(_, h)| h.status == worst.status)
        .map(|(o, h)| format!("{o}: {}", h.message))
        .collect::<Vec<_>>();
    HealthReport {
        status: worst.status,
        message: unhealthy.join("; "),
    }
}

//! The planner: from desired, live and predicted objects to an ordered list of steps.
//!
//! Pure. The cluster layer gathers the inputs (live objects, server-side-apply dry-run
//! results, live copies of inventory entries that are no longer desired) and applies the
//! result; everything that decides *what* to do and *in which order* lives here.
//!
//! Decisions:
//!
//! * **Action.** No live object → `Create`. Otherwise the live object is compared with the
//!   dry-run prediction ([`crate::diff`]): `Update` if it differs, `Unchanged` if not, so an
//!   unchanged revision makes no writes (invariant 5). Without a prediction (dry run not
//!   possible), the manifest itself stands in for it, which over-reports changes rather than
//!   hiding them.
//! * **Prune only what we own.** Prune candidates are inventory entries that are no longer
//!   desired *and* still exist (the caller passes their live copies). A live object the
//!   inventory does not list is never pruned, whatever the caller passes. An object annotated
//!   `driftless.dev/prune: disabled`, or any candidate when the app has prune off, becomes
//!   `PruneSkipped` with the reason, and stays in the inventory ([`Plan::inventory_after`]).
//! * **Order.** By sync wave (annotation `driftless.dev/sync-wave`, default 0), then by kind
//!   rank ([`kind_rank`]: CRDs and Namespaces, RBAC, ServiceAccounts, ConfigMaps and Secrets,
//!   Services, workloads, the rest), then kind, namespace and name for determinism. Prunes come
//!   last, in exactly the reverse order, so workloads go before the Services and Namespaces
//!   they depend on.
//! * **Doubt stops the plan.** Two declarations of one object or a malformed wave annotation
//!   are errors naming the file and line; guessing could apply the wrong one.
//! * **Prune safety** ([`check_prune`]) is separate from planning so the plan can always be
//!   shown, even when executing its prunes would be refused.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diff::{IgnoreRule, ObjectDiff, object_diff_with};
use crate::error::{Error, Result};
use crate::object::{DesiredObject, ObjectRef, Origin};

/// Annotation holding an object's sync wave, an integer (default 0; lower waves go first).
pub const SYNC_WAVE_ANNOTATION: &str = "driftless.dev/sync-wave";
/// Annotation that, set to [`PRUNE_DISABLED`], keeps an object from ever being pruned.
pub const PRUNE_ANNOTATION: &str = "driftless.dev/prune";
/// Value of [`PRUNE_ANNOTATION`] that disables pruning.
pub const PRUNE_DISABLED: &str = "disabled";

/// One desired object with what the cluster says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanEntry {
    /// The rendered object, namespace filled in.
    pub desired: DesiredObject,
    /// The live object, `None` when it does not exist.
    pub live: Option<Value>,
    /// The server-side-apply dry-run result, `None` for creates (or when no dry run was made).
    pub predicted: Option<Value>,
}

/// Everything the planner needs.
#[derive(Debug, Clone, Default)]
pub struct PlanInput {
    /// Desired objects in render order.
    pub entries: Vec<PlanEntry>,
    /// What the application owned after its previous sync.
    pub inventory: Vec<ObjectRef>,
    /// Live copies of inventory entries that are no longer desired (absent = already gone).
    pub orphans: Vec<Value>,
    /// The app's `sync.prune`.
    pub prune_enabled: bool,
    /// Fields to leave out of comparisons.
    pub ignore: Vec<IgnoreRule>,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Action {
    /// Create an object that does not exist.
    Create,
    /// Apply changes to an existing object.
    Update,
    /// Nothing to do.
    Unchanged,
    /// Delete an object Git no longer declares.
    Prune,
    /// Would be pruned, but is kept.
    PruneSkipped {
        /// Why it is kept.
        reason: String,
    },
}

impl Action {
    /// Whether this is a prune or skipped prune (ordered last).
    pub fn is_prune(&self) -> bool {
        matches!(self, Action::Prune | Action::PruneSkipped { .. })
    }
}

/// One object's step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The object.
    pub object: ObjectRef,
    /// What to do with it.
    pub action: Action,
    /// Its sync wave.
    pub wave: i32,
    /// Where it was declared (`None` for prunes).
    pub origin: Option<Origin>,
    /// The diff for creates and updates (`None` for unchanged objects and prunes).
    pub diff: Option<ObjectDiff>,
}

/// An ordered list of steps: apply from first to last.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Steps in apply order; prunes last.
    pub steps: Vec<Step>,
}

/// Counts of steps by action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSummary {
    /// Objects to create.
    pub create: usize,
    /// Objects to update.
    pub update: usize,
    /// Objects already as desired.
    pub unchanged: usize,
    /// Objects to prune.
    pub prune: usize,
    /// Prunes skipped.
    pub prune_skipped: usize,
}

impl fmt::Display for PlanSummary {
    /// `2 to create, 1 to update, 1 to prune (1 kept), 5 unchanged`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} to create, {} to update, {} to prune",
            self.create, self.update, self.prune
        )?;
        if self.prune_skipped > 0 {
            write!(f, " ({} kept)", self.prune_skipped)?;
        }
        write!(f, ", {} unchanged", self.unchanged)
    }
}

impl Plan {
    /// Counts by action.
    pub fn summary(&self) -> PlanSummary {
        let mut s = PlanSummary::default();
        for step in &self.steps {
            match step.action {
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Unchanged => s.unchanged += 1,
                Action::Prune => s.prune += 1,
                Action::PruneSkipped { .. } => s.prune_skipped += 1,
            }
        }
        s
    }

    /// Whether executing the plan would write to the cluster.
    pub fn has_changes(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.action, Action::Create | Action::Update | Action::Prune))
    }

    /// The objects this plan deletes, in deletion order.
    pub fn prune_candidates(&self) -> impl Iterator<Item = &ObjectRef> {
        self.steps
            .iter()
            .filter(|s| s.action == Action::Prune)
            .map(|s| &s.object)
    }

    /// What the app owns once the plan is executed: everything but the pruned objects
    /// (kept prunes stay owned, so enabling prune later still removes them). Sorted.
    pub fn inventory_after(&self) -> Vec<ObjectRef> {
        let set: BTreeSet<&ObjectRef> = self
            .steps
            .iter()
            .filter(|s| s.action != Action::Prune)
            .map(|s| &s.object)
            .collect();
        set.into_iter().cloned().collect()
    }

    /// The same plan without its prune steps (what runs when a prune is refused).
    pub fn without_prunes(&self) -> Plan {
        Plan {
            steps: self.steps.iter().filter(|s| !s.action.is_prune()).cloned().collect(),
        }
    }
}

/// Apply order of a kind within a wave; lower goes first. Built-in kinds are matched with
/// their API group, so a custom `Deployment` in another group is not mistaken for a workload.
pub fn kind_rank(group: &str, kind: &str) -> u8 {
    match (group, kind) {
        ("apiextensions.k8s.io", "CustomResourceDefinition") | ("", "Namespace") => 0,
        ("rbac.authorization.k8s.io", "ClusterRole" | "ClusterRoleBinding" | "Role" | "RoleBinding") => 1,
        ("", "ServiceAccount") => 2,
        ("", "ConfigMap" | "Secret") => 3,
        ("", "Service") => 4,
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("batch", "Job" | "CronJob")
        | ("", "Pod") => 5,
        _ => 6,
    }
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get("metadata")?.get("annotations")?.get(key)?.as_str()
}

/// The object's sync wave: `Ok(0)` without the annotation, `Err(value)` when malformed.
pub fn sync_wave(obj: &Value) -> std::result::Result<i32, String> {
    match obj
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(SYNC_WAVE_ANNOTATION))
    {
        None => Ok(0),
        Some(Value::String(s)) => s.trim().parse::<i32>().map_err(|_| s.chars().take(64).collect()),
        // Annotations are strings; a number here means the manifest is invalid for the API server.
        Some(other) => Err(other.to_string().chars().take(64).collect()),
    }
}

type SortKey = (i32, u8, String, String, Option<String>, String);

fn sort_key(step: &Step) -> SortKey {
    let o = &step.object;
    (
        step.wave,
        kind_rank(&o.group, &o.kind),
        o.kind.clone(),
        o.group.clone(),
        o.namespace.clone(),
        o.name.clone(),
    )
}

/// Builds the plan. Errors on duplicate declarations, objects without identity and malformed
/// sync waves.
pub fn plan(input: &PlanInput) -> Result<Plan> {
    let mut seen: BTreeMap<ObjectRef, &Origin> = BTreeMap::new();
    let mut apply_steps = Vec::with_capacity(input.entries.len());
    for entry in &input.entries {
        let origin = &entry.desired.origin;
        let Some(object) = entry.desired.object_ref() else {
            return Err(Error::NotAnObject {
                origin: origin.clone(),
                reason: "apiVersion, kind and metadata.name are required".to_owned(),
            });
        };
        if let Some(first) = seen.insert(object.clone(), origin) {
            return Err(Error::DuplicateObject {
                object: Box::new(object),
                first: first.clone(),
                second: origin.clone(),
            });
        }
        let wave = sync_wave(&entry.desired.object).map_err(|value| Error::InvalidSyncWave {
            object: Box::new(object.clone()),
            origin: origin.clone(),
            value,
        })?;
        let predicted = entry.predicted.as_ref().unwrap_or(&entry.desired.object);
        let diff = object_diff_with(entry.live.as_ref(), predicted, &input.ignore);
        let (action, diff) = match (&entry.live, diff.changed) {
            (None, _) => (Action::Create, Some(diff)),
            (Some(_), true) => (Action::Update, Some(diff)),
            (Some(_), false) => (Action::Unchanged, None),
        };
        apply_steps.push(Step {
            object,
            action,
            wave,
            origin: Some(origin.clone()),
            diff,
        });
    }

    let inventory: BTreeSet<&ObjectRef> = input.inventory.iter().collect();
    let mut prune_steps = Vec::new();
    let mut pruned: BTreeSet<ObjectRef> = BTreeSet::new();
    for live in &input.orphans {
        let Some(object) = ObjectRef::from_object(live) else {
            continue;
        };
        if seen.contains_key(&object) || !inventory.contains(&object) || !pruned.insert(object.clone()) {
            continue;
        }
        let action = if annotation(live, PRUNE_ANNOTATION) == Some(PRUNE_DISABLED) {
            Action::PruneSkipped {
                reason: format!("annotated {PRUNE_ANNOTATION}: {PRUNE_DISABLED}"),
            }
        } else if !input.prune_enabled {
            Action::PruneSkipped {
                reason: "prune is off (sync.prune: false)".to_owned(),
            }
        } else {
            Action::Prune
        };
        prune_steps.push(Step {
            object,
            action,
            // A malformed wave on an object being deleted is not worth blocking the sync.
            wave: sync_wave(live).unwrap_or(0),
            origin: None,
            diff: None,
        });
    }

    apply_steps.sort_by_cached_key(sort_key);
    prune_steps.sort_by_cached_key(sort_key);
    prune_steps.reverse();
    apply_steps.append(&mut prune_steps);
    Ok(Plan { steps: apply_steps })
}

/// The app's prune safety settings and the operator's confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneSafety {
    /// `sync.allowEmpty`.
    pub allow_empty: bool,
    /// `sync.pruneThreshold`, percent of the inventory.
    pub threshold_percent: u8,
    /// The operator passed `--confirm-prune`.
    pub confirmed: bool,
    /// The render produced no objects.
    pub desired_is_empty: bool,
}

/// Why the prunes of a plan must not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PruneRefusal {
    /// The desired set is empty and the app does not allow that.
    #[error(
        "refusing to prune {count} of {inventory} objects: the desired set is empty, which usually means a failed or misconfigured render; if the app really should own nothing, set sync.allowEmpty: true"
    )]
    EmptyDesiredSet {
        /// Objects that would be pruned.
        count: usize,
        /// Inventory size.
        inventory: usize,
    },
    /// The prune exceeds the share of the inventory allowed without confirmation.
    #[error(
        "refusing to prune {count} of {inventory} objects ({percent}%, above the pruneThreshold of {threshold}%) without confirmation; review the plan and pass --confirm-prune"
    )]
    AboveThreshold {
        /// Objects that would be pruned.
        count: usize,
        /// Inventory size.
        inventory: usize,
        /// Share of the inventory, rounded up.
        percent: usize,
        /// The configured threshold.
        threshold: u8,
    },
}

/// Decides whether the prunes of `plan` may run. Invariant 1: an empty desired set never
/// prunes unless `allow_empty` (confirmation does not override that: an empty render is a
/// symptom, not an intent), and a prune of more than `threshold_percent` of the inventory
/// needs `confirmed`.
pub fn check_prune(plan: &Plan, inventory_len: usize, safety: PruneSafety) -> std::result::Result<(), PruneRefusal> {
    let count = plan.prune_candidates().count();
    if count == 0 {
        return Ok(());
    }
    // An inventory smaller than the prune is inconsistent; treat it as pruning everything.
    let inventory = inventory_len.max(count);
    if safety.desired_is_empty && !safety.allow_empty {
        return Err(PruneRefusal::EmptyDesiredSet { count, inventory });
    }
    let over = count.saturating_mul(100) > usize::from(safety.threshold_percent).saturating_mul(inventory);
    if over && !safety.confirmed {
        return Err(PruneRefusal::AboveThreshold {
            count,
            inventory,
            percent: count.saturating_mul(100).div_ceil(inventory),
            threshold: safety.threshold_percent,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;

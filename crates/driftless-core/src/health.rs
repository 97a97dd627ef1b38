//! Health assessment in the style of kstatus: a pure function of one live object.
//!
//! Each object gets a [`HealthStatus`] and a message saying why (`0/3 replicas available`).
//! Statuses are ordered by severity so an application's health is simply the worst of its
//! objects ([`worst`]):
//! `Healthy < Suspended < Progressing < Missing < Degraded < Unknown`.
//! `Unknown` is the most severe because "we cannot tell" must never read as "fine".
//!
//! Rules, in order:
//! 1. an object being deleted is `Progressing`;
//! 2. a controller that has not yet observed the latest `metadata.generation`
//!    (`status.observedGeneration` lower) is `Progressing`: its status is stale;
//! 3. per-kind rules for built-in kinds (matched with their API group): Deployment,
//!    StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod, PersistentVolumeClaim, Service,
//!    Ingress, CustomResourceDefinition;
//! 4. for anything else, the standard conditions: `Stalled=True` is `Degraded`,
//!    `Reconciling=True` is `Progressing`, `Ready` True/False/Unknown is
//!    `Healthy`/`Degraded`/`Progressing` (with its reason and message);
//! 5. an object without status conditions (ConfigMap, Role, ...) is `Healthy` once it exists.
//!
//! Time is not an input: "progressing for too long" is the engine's call (the app's
//! `healthTimeout`), which keeps this function pure and testable with fixtures.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::object::{DesiredObject, ObjectRef, Origin};
use crate::yaml::{YamlLimits, parse_documents};

/// Health of an object or application, ordered by severity (derive `Ord`: later is worse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum HealthStatus {
    /// Converged and serving.
    Healthy,
    /// Deliberately paused or suspended.
    Suspended,
    /// Moving towards the desired state.
    Progressing,
    /// Declared but absent from the cluster.
    Missing,
    /// Failed or stuck.
    Degraded,
    /// Status cannot be read.
    Unknown,
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A status with the reason for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// The status.
    pub status: HealthStatus,
    /// Why, for humans: `0/3 replicas available`.
    pub message: String,
}

impl HealthReport {
    fn new(status: HealthStatus, message: impl Into<String>) -> HealthReport {
        HealthReport {
            status,
            message: message.into(),
        }
    }

    /// The report for a declared object that does not exist.
    pub fn missing() -> HealthReport {
        HealthReport::new(HealthStatus::Missing, "object does not exist")
    }
}

impl fmt::Display for HealthReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

/// The worst report (first among equals); `Healthy` with "no objects" when empty.
pub fn worst<'a>(reports: impl IntoIterator<Item = &'a HealthReport>) -> HealthReport {
    let mut worst: Option<&HealthReport> = None;
    for r in reports {
        if worst.is_none_or(|w| r.status > w.status) {
            worst = Some(r);
        }
    }
    worst
        .cloned()
        .unwrap_or_else(|| HealthReport::new(HealthStatus::Healthy, "no objects"))
}

/// [`assess`] for a lookup that may have found nothing.
pub fn assess_live(obj: Option<&Value>) -> HealthReport {
    obj.map_or_else(HealthReport::missing, assess)
}

/// Assesses one live object.
pub fn assess(obj: &Value) -> HealthReport {
    use HealthStatus::*;
    let (Some(api_version), Some(kind)) = (str_at(obj, &["apiVersion"]), str_at(obj, &["kind"])) else {
        return HealthReport::new(Unknown, "not a Kubernetes object (no apiVersion or kind)");
    };
    let group = crate::object::group_of(api_version);
    if obj.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null()) {
        return HealthReport::new(Progressing, "being deleted");
    }
    if let (Some(generation), Some(observed)) = (
        int_at(obj, &["metadata", "generation"]),
        int_at(obj, &["status", "observedGeneration"]),
    ) && observed < generation
    {
        return HealthReport::new(
            Progressing,
            format!("waiting for the controller to observe generation {generation} (observed {observed})"),
        );
    }
    match (group, kind) {
        ("apps", "Deployment") => deployment(obj),
        ("apps", "StatefulSet") => stateful_set(obj),
        ("apps", "DaemonSet") => daemon_set(obj),
        ("apps", "ReplicaSet") => replica_set(obj),
        ("batch", "Job") => job(obj),
        ("batch", "CronJob") => cron_job(obj),
        ("", "Pod") => pod(obj),
        ("", "PersistentVolumeClaim") => pvc(obj),
        ("", "Service") => service(obj),
        ("networking.k8s.io" | "extensions", "Ingress") => ingress(obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(obj),
        _ => generic(obj),
    }
}

// ---- field access ---------------------------------------------------------------------------

fn at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, k| v.get(k))
}

fn str_at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(obj, path)?.as_str()
}

fn int_at(obj: &Value, path: &[&str]) -> Option<i64> {
    at(obj, path)?.as_i64()
}

fn bool_at(obj: &Value, path: &[&str]) -> bool {
    at(obj, path).and_then(Value::as_bool).unwrap_or(false)
}

/// A status condition.
struct Condition<'a> {
    status: &'a str,
    reason: &'a str,
    message: &'a str,
}

impl Condition<'_> {
    fn is_true(&self) -> bool {
        self.status == "True"
    }
    fn is_false(&self) -> bool {
        self.status == "False"
    }
    /// `reason: message`, whichever parts exist.
    fn explain(&self) -> String {
        match (self.reason.is_empty(), self.message.is_empty()) {
            (false, false) => format!("{}: {}", self.reason, self.message),
            (false, true) => self.reason.to_owned(),
            (true, false) => self.message.to_owned(),
            (true, true) => String::new(),
        }
    }
}

fn condition<'a>(obj: &'a Value, type_: &str) -> Option<Condition<'a>> {
    let c = at(obj, &["status", "conditions"])?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))?;
    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
    Some(Condition {
        status: s("status"),
        reason: s("reason"),
        message: s("message"),
    })
}

fn with_detail(base: String, detail: String) -> String {
    if detail.is_empty() {
        base
    } else {
        format!("{base}: {detail}")
    }
}

// ---- per-kind rules -------------------------------------------------------------------------

fn deployment(obj: &Value) -> HealthReport {
    use HealthStatus::*;
    if bool_at(obj, &["spec", "paused"]) {
        return HealthReport::new(Suspended, "rollout paused");
    }
    if let Some(c) = condition(obj, "Progressing")
        && c.is_false()
        && c.reason == "ProgressDeadlineExceeded"
    {
        return HealthReport::new(
            Degraded,
            with_detail("rollout exceeded its progress deadline".into(), c.message.to_owned()),
        );
    }
    if at(obj, &["status"]).is_none() {
        return HealthReport::new(Progressing, "waiting for the controller to report status");
    }
    let want = int_at(obj, &["spec", "replicas"]).unwrap_or(1);
    let updated = int_at(obj, &["status", "updatedReplicas"]).unwrap_or(0);
    let total = int_at(obj, &["status", "replicas"]).unwrap_or(0);
    let available = int_at(obj, &["status", "availableReplicas"]).unwrap_or(0);
    if updated < want {
        return HealthReport::new(Progressing, format!("{updated}/{want} replicas updated"));
    }
    if total > updated {
        return HealthReport::new(
            Progressing,
            format!("{} old replicas pending termination", total.saturating_sub(updated)),
        );
    }
    if available < updated {
        return HealthReport::new(Progressing, format!("{available}/{want} replicas available"));
    }
    if let Some(c) = condition(obj, "Available")
        && c.is_false()
    {
        return HealthReport::new(Progressing, with_detail("not available".into(), c.explain()));
    }
    HealthReport::new(Healthy, format!("{available}/{want} replicas available"))
}

fn stateful_set(obj: &Value) -> HealthReport {
    use HealthStatus::*;
    if at(obj, &["status"]).is_none() {
        return HealthReport::new(Progressing, "waiting for the controller to report status");
    }
    let want = int_at(obj, &["spec", "replicas"]).unwrap_or(1);
    let ready = int_at(obj, &["status", "readyReplicas"]).unwrap_or(0);
    let updated = int_at(obj, &["status", "updatedReplicas"]).unwrap_or(0);
    if ready < want {
        return HealthReport::new(Progressing, format!("{ready}/{want} replicas ready"));
    }
    let on_delete = str_at(obj, &["spec", "updateStrategy", "type"]) == Some("OnDelete");
    let partition = int_at(obj, &["spec", "updateStrategy", "rollingUpdate", "partition"]).unwrap_or(0);
    if !on_delete {
        if partition > 0 {
            let expected = want.saturating_sub(partition).max(0);
            if updated < expected {
                return HealthReport::new(
                    Progressing,
                    format!("partitioned rollout: {updated}/{expected} replicas updated"),
                );
            }
        } else if let (Some(current), Some(update)) = (
            str_at(obj, &["status", "currentRevision"]),
            str_at(obj, &["status", "updateRevision"]),
        ) && current != update
        {
            return HealthReport::new(
                Progressing,
                format!("rolling update in progress: {updated}/{want} replicas updated"),
            );
        }
    }
    HealthReport::new(Healthy, format!("{ready}/{want} replicas ready"))
}

fn daemon_set(obj: &Value) -> HealthReport {
    use HealthStatus::*;
    if at(obj, &["status"]).is_none() {
        return HealthReport::new(Progressing, "waiting for the controller to report status");
    }
    let desired = int_at(obj, &["status", "desiredNumberScheduled"]).unwrap_or(0);
    let updated = int_at(obj, &["status", "updatedNumberScheduled"]).unwrap_or(0);
    let available = int_at(obj, &["status", "numberAvailable"]).unwrap_or(0);
    let on_delete = str_at(obj, &["spec", "updateStrategy", "type"]) == Some("OnDelete");
    if !on_delete && updated < desired {
        return HealthReport::new(Progressing, format!("{updated}/{desired} pods updated"));
    }
    if available < desired {
        return HealthReport::new(Progressing, format!("{available}/{desired} pods available"));
    }
    HealthReport::new(Healthy, format!("{available}/{desired} pods available"))
}

fn replica_set(obj: &Value) -> HealthReport {
    use HealthStatus::*;
    if let Some(c) = condition(obj, "ReplicaFailure")
        && c.is_true()
    {
        return HealthReport::new(Degraded, with_detail("replica failure".into(), c.explain()));
    }
    let want = int_at(obj, &["spec", "replicas"]).unwrap_or(1);
    let available = int_at(obj, &["status", "availableReplicas"]).unwrap_or(0);
    if available < want {
        return HealthReport::new(Progressing, format!("{available}/{want} replicas available"));
    }
    HealthReport::new(Healthy, format!("{available}/{want} replicas available"))
}

fn job(obj: &Value) -> HealthReport {
    use HealthStatus::*;
    if let Some(c) = condition(obj, "Failed")
        && c.is_true()
    {
        return HealthReport::new(Degraded, with_detail("job failed".into(), c.explain()));
    }
    if let Some(c) = condition(obj, "Complete")
        && c.is_true()
    {
        return HealthReport::new(Healthy, "job complete");
    }
    if bool_at(obj, &["spec", "suspend"]) {
        return HealthReport::new(Suspended, "job suspended");
    }
    let active = int_at(obj, &["status", "active"]).unwrap_or(0);
    let succeeded = int_at(obj, &["status", "succeeded"]).unwrap_or(0);
    let failed = int_at(obj, &["status", "failed"]).unwrap_or(0);
    HealthReport::new(
        Progressing,
        format!("running: {active} active, {succeeded} succeeded, {failed} failed"),
    )
}

fn cron_job(obj: &Value) -> HealthReport {
    if bool_at(obj, &["spec", "suspend"]) {
        return HealthReport::new(HealthStatus::Suspended, "cron job suspended");
    }
    let last = str_at(obj, &["status", "lastScheduleTime"])
        .map(|t| format!(", last scheduled {t}"))
        .unwrap_or_default();
    let schedule = str_at(obj, &["spec", "schedule"]).unwrap_or("?");
    HealthReport::new(HealthStatus::Healthy, format!("schedule {schedule:?}{last}"))
}

const BROKEN_WAITING_REASONS: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

fn pod(obj: &Value) -> HealthReport {
    use HealthStatus::*;
    let phase = str_at(obj, &["status", "phase"]).unwrap_or("");
    match phase {
        "Succeeded" => return HealthReport::new(Healthy, "completed"),
        "Failed" => {
            let why = str_at(obj, &["status", "reason"]).or(str_at(obj, &["status", "message"]));
            return HealthReport::new(Degraded, with_detail("pod failed".into(), why.unwrap_or("").to_owned()));
        }
        _ => {}
    }
    let statuses = ["initContainerStatuses", "containerStatuses"]
        .iter()
        .filter_map(|k| at(obj, &["status", k]).and_then(Value::as_array))
        .flatten();
    let mut total = 0;
    let mut ready = 0;
    for cs in statuses {
        let name = cs.get("name").and_then(Value::as_str).unwrap_or("?");
        if let Some(reason) = cs.pointer("/state/waiting/reason").and_then(Value::as_str)
            && BROKEN_WAITING_REASONS.contains(&reason)
        {
            return HealthReport::new(Degraded, format!("container {name}: {reason}"));
        }
        if cs.get("ready").is_some() {
            total += 1;
            if cs.get("ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
        }
    }
    if phase == "Pending" || phase.is_empty() {
        let why = condition(obj, "PodScheduled")
            .filter(Condition::is_false)
            .map(|c| c.explain())
            .unwrap_or_default();
        return HealthReport::new(Progressing, with_detail("pending".into(), why));
    }
    match condition(obj, "Ready") {
        Some(c) if c.is_true() => HealthReport::new(Healthy, "running and ready"),
        _ if phase == "Running" => HealthReport::new(Progressing, format!("running, {ready}/{total} containers ready")),
        _ => HealthReport::new(Unknown, "pod phase is unknown"),
    }
}

fn pvc(obj: &Value) -> HealthReport {
    use HealthStatus::*;
    match str_at(obj, &["status", "phase"]) {
        Some("Bound") => HealthReport::new(Healthy, "bound"),
        Some("Lost") => HealthReport::new(Degraded, "lost its volume"),
        Some("Pending") | None => HealthReport::new(Progressing, "waiting for a volume (Pending)"),
        Some(_) => HealthReport::new(Unknown, "unrecognised phase"),
    }
}

fn has_lb_ingress(obj: &Value) -> bool {
    at(obj, &["status", "loadBalancer", "ingress"])
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

fn service(obj: &Value) -> HealthReport {
    if str_at(obj, &["spec", "type"]) == Some("LoadBalancer") && !has_lb_ingress(obj) {
        return HealthReport::new(HealthStatus::Progressing, "waiting for a load balancer address");
    }
    HealthReport::new(HealthStatus::Healthy, "service exists")
}

fn ingress(obj: &Value) -> HealthReport {
    if !has_lb_ingress(obj) {
        return HealthReport::new(HealthStatus::Progressing, "waiting for a load balancer address");
    }
    HealthReport::new(HealthStatus::Healthy, "has a load balancer address")
}

fn crd(obj: &Value) -> HealthReport {
    use HealthStatus::*;
    if let Some(c) = condition(obj, "NamesAccepted")
        && c.is_false()
    {
        return HealthReport::new(Degraded, with_detail("names not accepted".into(), c.explain()));
    }
    match condition(obj, "Established") {
        Some(c) if c.is_true() => HealthReport::new(Healthy, "established"),
        Some(c) => HealthReport::new(Progressing, with_detail("not yet established".into(), c.explain())),
        None => HealthReport::new(Progressing, "not yet established"),
    }
}

fn generic(obj: &Value) -> HealthReport {
    use HealthStatus::*;
    if let Some(c) = condition(obj, "Stalled")
        && c.is_true()
    {
        return HealthReport::new(Degraded, with_detail("stalled".into(), c.explain()));
    }
    if let Some(c) = condition(obj, "Reconciling")
        && c.is_true()
    {
        return HealthReport::new(Progressing, with_detail("reconciling".into(), c.explain()));
    }
    match condition(obj, "Ready") {
        Some(c) if c.is_true() => HealthReport::new(Healthy, with_detail("ready".into(), c.message.to_owned())),
        Some(c) if c.is_false() => HealthReport::new(Degraded, with_detail("not ready".into(), c.explain())),
        Some(c) => HealthReport::new(Progressing, with_detail("readiness unknown".into(), c.explain())),
        None => HealthReport::new(Healthy, "exists"),
    }
}

// ---- input for `driftless health -f FILE` ---------------------------------------------------

/// Parses every object in a YAML text (several documents; `kind: List` and other `*List`
/// documents are expanded into their items), with `file:line` origins.
pub fn parse_objects(text: &str, file: &str) -> Result<Vec<DesiredObject>> {
    let mut out = Vec::new();
    for (line, value) in parse_documents(text, file, YamlLimits::MANIFESTS)? {
        let origin = Origin {
            file: file.to_owned(),
            line,
        };
        let is_list = value
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.ends_with("List"))
            && value.get("items").is_some_and(Value::is_array);
        let items = if is_list {
            match value {
                Value::Object(mut map) => match map.remove("items") {
                    Some(Value::Array(items)) => items,
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            }
        } else {
            vec![value]
        };
        for object in items {
            if ObjectRef::from_object(&object).is_none() {
                return Err(Error::NotAnObject {
                    origin,
                    reason: "apiVersion, kind and metadata.name are required".to_owned(),
                });
            }
            out.push(DesiredObject {
                object,
                origin: origin.clone(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;

//! Simulated controllers, so that health checks have something to observe: workloads become
//! ready after a delay, Jobs complete, PVCs bind, LoadBalancers get an address, CRDs become
//! Established (and their kinds servable), namespaces are emptied on deletion, and dependents
//! are garbage-collected through ownerReferences.
//!
//! No pods are scheduled or run: workload *status* is written directly, shaped like the real
//! controllers' status. Faults are injected per object with the annotation
//! `kubesim.driftless.dev/fault` (`never-ready`, `crash-loop`, `progress-deadline`, `fail`)
//! and the delay can be overridden with `kubesim.driftless.dev/ready-after` (e.g. `3s`).

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use kubesim_schema::ResourceType;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::api::{Shared, all_uids, owner_uids};
use crate::state::{ObjKey, ResKey, State};
use crate::time::now_rfc3339;

/// Annotation selecting a fault.
pub const FAULT_ANNOTATION: &str = "kubesim.driftless.dev/fault";
/// Annotation overriding the readiness delay.
pub const READY_AFTER_ANNOTATION: &str = "kubesim.driftless.dev/ready-after";

/// What the API layer tells the controllers.
#[derive(Debug)]
pub enum ControllerMsg {
    /// An object was written through the API.
    Changed {
        /// Its resource.
        res: ResKey,
        /// Its key.
        key: ObjKey,
    },
    /// A namespace was marked for deletion.
    NamespaceDeleted(String),
    /// Something was deleted: look for orphaned dependents.
    CollectGarbage,
}

type Key = (ResKey, ObjKey);

struct Controllers {
    shared: Weak<Shared>,
    delay: Duration,
    /// (generation, when that generation was first seen) per workload.
    seen: HashMap<Key, (i64, Instant)>,
    /// When each key needs another look.
    due: HashMap<Key, Instant>,
    /// Namespaces being torn down.
    terminating: Vec<String>,
}

/// Runs the controllers until the server is dropped.
pub async fn run(shared: Weak<Shared>, mut rx: mpsc::UnboundedReceiver<ControllerMsg>, delay: Duration) {
    let mut c = Controllers {
        shared,
        delay,
        seen: HashMap::new(),
        due: HashMap::new(),
        terminating: Vec::new(),
    };
    loop {
        let next = c
            .due
            .values()
            .min()
            .copied()
            .or_else(|| (!c.terminating.is_empty()).then(|| Instant::now() + Duration::from_millis(100)));
        let msg = match next {
            Some(at) => tokio::select! {
                m = rx.recv() => m.map(Some),
                _ = tokio::time::sleep_until(at) => Some(None),
            },
            None => rx.recv().await.map(Some),
        };
        let Some(msg) = msg else { return };
        let Some(shared) = c.shared.upgrade() else {
            return;
        };
        match msg {
            Some(ControllerMsg::Changed { res, key }) => c.reconcile(&shared, (res, key)),
            Some(ControllerMsg::NamespaceDeleted(ns)) if !c.terminating.contains(&ns) => c.terminating.push(ns),
            Some(ControllerMsg::NamespaceDeleted(_)) => {}
            Some(ControllerMsg::CollectGarbage) => collect_garbage(&mut shared.lock()),
            None => {}
        }
        let now = Instant::now();
        let ready: Vec<Key> = c
            .due
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in ready {
            c.due.remove(&k);
            c.reconcile(&shared, k);
        }
        if !c.terminating.is_empty() {
            let mut st = shared.lock();
            c.terminating.retain(|ns| !teardown_namespace(&mut st, ns));
            collect_garbage(&mut st);
        }
    }
}

fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    if let Some(sec) = s.strip_suffix('s') {
        return sec
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0 && *v < 86_400.0)
            .map(Duration::from_secs_f64);
    }
    if let Some(m) = s.strip_suffix('m') {
        return m
            .parse::<u64>()
            .ok()
            .filter(|v| *v < 1440)
            .map(|v| Duration::from_secs(v * 60));
    }
    None
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

impl Controllers {
    fn reconcile(&mut self, shared: &Arc<Shared>, key: Key) {
        let mut st = shared.lock();
        let Some(obj) = st.get(&key.0, &key.1) else {
            self.seen.remove(&key);
            return;
        };
        let Some(rt) = st
            .types
            .values()
            .find(|t| t.group == key.0.0 && t.plural == key.0.1)
            .cloned()
        else {
            return;
        };
        if obj.pointer("/metadata/deletionTimestamp").is_some() {
            return;
        }
        if rt.kind == "CustomResourceDefinition" {
            // Established shortly after creation; the kinds are served from then on.
            let at = self.seen.entry(key.clone()).or_insert((0, Instant::now())).1
                + self.delay.min(Duration::from_millis(50));
            if Instant::now() < at {
                self.due.insert(key, at);
            } else {
                establish_crd(&mut st, &key, &obj);
            }
            return;
        }
        // Kinds without a simulated status (ConfigMaps, Secrets, ...) are not tracked: with
        // 100,000 of them `seen` alone would cost tens of MiB.
        if simulated_status(&rt, &obj, 1, false, "").is_none() {
            self.seen.remove(&key);
            return;
        }
        let generation = obj.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
        let entry = self.seen.entry(key.clone()).or_insert((generation, Instant::now()));
        if entry.0 != generation {
            *entry = (generation, Instant::now());
        }
        let delay = annotation(&obj, READY_AFTER_ANNOTATION)
            .and_then(parse_duration)
            .unwrap_or(self.delay);
        let ready_at = entry.1 + delay;
        let ready = Instant::now() >= ready_at;
        let fault = annotation(&obj, FAULT_ANNOTATION).unwrap_or("");
        let Some(status) = simulated_status(&rt, &obj, generation, ready, fault) else {
            return;
        };
        if !ready {
            self.due.insert(key.clone(), ready_at);
        }
        if obj.get("status") != Some(&status) {
            let mut updated = (*obj).clone();
            updated["status"] = status;
            st.put(&key.0, key.1, updated);
        }
    }
}

fn condition(ty: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": ty, "status": status, "lastUpdateTime": now, "lastTransitionTime": now, "reason": reason, "message": message})
}

/// Keeps the timestamps of conditions whose status/reason did not change, so that a
/// status does not change on every reconcile.
fn keep_times(old: Option<&Value>, mut new: Value) -> Value {
    let Some(old_conds) = old.and_then(|s| s.get("conditions")).and_then(Value::as_array) else {
        return new;
    };
    if let Some(conds) = new.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in conds.iter_mut() {
            if let Some(prev) = old_conds.iter().find(|p| {
                p.get("type") == c.get("type")
                    && p.get("status") == c.get("status")
                    && p.get("reason") == c.get("reason")
            }) {
                for k in ["lastUpdateTime", "lastTransitionTime", "lastProbeTime"] {
                    if let Some(v) = prev.get(k) {
                        c[k] = v.clone();
                    }
                }
            }
        }
    }
    new
}

fn name_hash(obj: &Value) -> String {
    // A stable pod-template-hash-like suffix derived from the template.
    let tpl = obj.pointer("/spec/template").map(|t| t.to_string()).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tpl.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x1000_0000_01b3);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10)
        .map(|i| ALPHABET[((h >> (i * 6)) % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

/// The status a real controller would eventually write, given readiness and fault.
fn simulated_status(rt: &ResourceType, obj: &Value, generation: i64, ready: bool, fault: &str) -> Option<Value> {
    let now = now_rfc3339();
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let replicas = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let healthy = ready && !matches!(fault, "never-ready" | "crash-loop" | "progress-deadline" | "fail");
    let old = obj.get("status");
    let status = match (rt.group.as_str(), rt.kind.as_str()) {
        ("apps", "Deployment") => {
            let rs = format!("{name}-{}", name_hash(obj));
            let avail = if healthy || replicas == 0 { replicas } else { 0 };
            let mut s = json!({"observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas});
            if avail > 0 {
                s["readyReplicas"] = json!(avail);
                s["availableReplicas"] = json!(avail);
            }
            if replicas - avail > 0 {
                s["unavailableReplicas"] = json!(replicas - avail);
            }
            let available = if avail >= replicas {
                condition(
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.",
                    &now,
                )
            } else {
                condition(
                    "Available",
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                    &now,
                )
            };
            let progressing = if healthy || replicas == 0 {
                condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    &format!("ReplicaSet \"{rs}\" has successfully progressed."),
                    &now,
                )
            } else if fault == "progress-deadline" && ready {
                condition(
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    &format!("ReplicaSet \"{rs}\" has timed out progressing."),
                    &now,
                )
            } else {
                condition(
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    &format!("ReplicaSet \"{rs}\" is progressing."),
                    &now,
                )
            };
            s["conditions"] = json!([available, progressing]);
            s
        }
        ("apps", "StatefulSet") => {
            let rev = format!("{name}-{}", &name_hash(obj)[..8]);
            let avail = if healthy { replicas } else { 0 };
            let mut s = json!({"observedGeneration": generation, "replicas": replicas, "currentReplicas": replicas, "updatedReplicas": replicas, "currentRevision": rev, "updateRevision": rev, "collisionCount": 0, "availableReplicas": avail});
            if avail > 0 {
                s["readyReplicas"] = json!(avail);
            }
            s
        }
        ("apps", "DaemonSet") => {
            let n = if healthy { 1 } else { 0 };
            let mut s = json!({"observedGeneration": generation, "desiredNumberScheduled": 1, "currentNumberScheduled": 1, "updatedNumberScheduled": 1, "numberMisscheduled": 0, "numberReady": n, "numberAvailable": n});
            if n == 0 {
                s["numberUnavailable"] = json!(1);
                s.as_object_mut()?.remove("numberAvailable");
            }
            s
        }
        ("apps", "ReplicaSet") => {
            let avail = if healthy { replicas } else { 0 };
            let mut s =
                json!({"observedGeneration": generation, "replicas": replicas, "fullyLabeledReplicas": replicas});
            if avail > 0 {
                s["readyReplicas"] = json!(avail);
                s["availableReplicas"] = json!(avail);
            }
            s
        }
        ("batch", "Job") => {
            if obj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
                json!({"conditions": [condition("Suspended", "True", "JobSuspended", "Job suspended", &now)]})
            } else if !ready || matches!(fault, "never-ready" | "crash-loop") {
                json!({"active": 1, "startTime": old.and_then(|s| s.get("startTime")).cloned().unwrap_or(json!(now)), "ready": 0, "uncountedTerminatedPods": {}})
            } else if fault == "fail" {
                let backoff = obj.pointer("/spec/backoffLimit").and_then(Value::as_i64).unwrap_or(6);
                json!({"failed": backoff + 1, "startTime": old.and_then(|s| s.get("startTime")).cloned().unwrap_or(json!(now)), "ready": 0, "uncountedTerminatedPods": {},
                       "conditions": [condition("FailureTarget", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit", &now), condition("Failed", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit", &now)]})
            } else {
                let completions = obj.pointer("/spec/completions").and_then(Value::as_i64).unwrap_or(1);
                json!({"succeeded": completions, "startTime": old.and_then(|s| s.get("startTime")).cloned().unwrap_or(json!(now)), "completionTime": old.and_then(|s| s.get("completionTime")).cloned().unwrap_or(json!(now)), "ready": 0, "uncountedTerminatedPods": {},
                       "conditions": [condition("SuccessCriteriaMet", "True", "CompletionsReached", "Reached expected number of succeeded pods", &now), condition("Complete", "True", "CompletionsReached", "Reached expected number of succeeded pods", &now)]})
            }
        }
        ("", "Pod") => {
            let containers = obj
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let crash = fault == "crash-loop" && ready;
            let statuses: Vec<Value> = containers
                .iter()
                .map(|c| {
                    let cname = c.get("name").cloned().unwrap_or(json!(""));
                    let image = c.get("image").cloned().unwrap_or(json!(""));
                    if crash {
                        json!({"name": cname, "image": image, "imageID": "", "ready": false, "started": false, "restartCount": 5, "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}}})
                    } else if healthy {
                        json!({"name": cname, "image": image, "imageID": "", "ready": true, "started": true, "restartCount": 0, "state": {"running": {"startedAt": now}}})
                    } else {
                        json!({"name": cname, "image": image, "imageID": "", "ready": false, "started": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}})
                    }
                })
                .collect();
            let r = if healthy { "True" } else { "False" };
            json!({"phase": if healthy || crash { "Running" } else { "Pending" }, "hostIP": "172.18.0.2", "podIP": "10.244.0.10", "startTime": old.and_then(|s| s.get("startTime")).cloned().unwrap_or(json!(now)),
                   "conditions": [{"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}, {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}, {"type": "ContainersReady", "status": r, "lastProbeTime": null, "lastTransitionTime": now}, {"type": "Ready", "status": r, "lastProbeTime": null, "lastTransitionTime": now}],
                   "containerStatuses": statuses, "qosClass": "BestEffort"})
        }
        ("", "PersistentVolumeClaim") => {
            if healthy {
                let storage = obj
                    .pointer("/spec/resources/requests/storage")
                    .cloned()
                    .unwrap_or(json!("1Gi"));
                json!({"phase": "Bound", "accessModes": obj.pointer("/spec/accessModes").cloned().unwrap_or(json!(["ReadWriteOnce"])), "capacity": {"storage": storage}})
            } else {
                json!({"phase": "Pending"})
            }
        }
        ("", "Service") => {
            if obj.pointer("/spec/type").and_then(Value::as_str) != Some("LoadBalancer") {
                return None;
            }
            if healthy {
                json!({"loadBalancer": {"ingress": [{"ip": "172.18.255.200", "ipMode": "VIP"}]}})
            } else {
                json!({"loadBalancer": {}})
            }
        }
        ("networking.k8s.io", "Ingress") => {
            if healthy {
                json!({"loadBalancer": {"ingress": [{"ip": "172.18.255.201"}]}})
            } else {
                json!({"loadBalancer": {}})
            }
        }
        _ => return None,
    };
    Some(keep_times(old, status))
}

fn establish_crd(st: &mut State, key: &Key, crd: &Value) {
    let crd_name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let s = |k: &str| names.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(kind), Some(plural)) = (s("kind"), s("plural")) else {
        return;
    };
    let singular = s("singular").unwrap_or_else(|| kind.to_ascii_lowercase());
    let list = |k: &str| {
        names
            .get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let namespaced = crd.pointer("/spec/scope").and_then(Value::as_str) != Some("Cluster");
    let mut added = Vec::new();
    let mut stored_versions = Vec::new();
    unregister_types(st, &crd_name);
    for v in crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(version) = v.get("name").and_then(Value::as_str) else {
            continue;
        };
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            stored_versions.push(json!(version));
        }
        if v.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let rt = ResourceType {
            group: group.clone(),
            version: version.to_owned(),
            kind: kind.clone(),
            plural: plural.clone(),
            singular: singular.clone(),
            namespaced,
            short_names: list("shortNames"),
            categories: list("categories"),
            status_subresource: v.pointer("/subresources/status").is_some(),
            scale_subresource: v.pointer("/subresources/scale").is_some(),
        };
        let k = (group.clone(), version.to_owned(), plural.clone());
        st.types.insert(k.clone(), Arc::new(rt));
        added.push(k);
    }
    st.crd_types.insert(crd_name, added);
    let now = now_rfc3339();
    let mut updated = crd.clone();
    let status = json!({
        "conditions": [condition_crd("NamesAccepted", "NoConflicts", "no conflicts found", &now), condition_crd("Established", "InitialNamesAccepted", "the initial names have been accepted", &now)],
        "acceptedNames": names,
        "storedVersions": stored_versions,
    });
    let status = keep_times(crd.get("status"), status);
    if crd.get("status") != Some(&status) {
        updated["status"] = status;
        st.put(&key.0, key.1.clone(), updated);
    }
}

fn condition_crd(ty: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": ty, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message})
}

fn unregister_types(st: &mut State, crd_name: &str) -> Vec<(String, String, String)> {
    let keys = st.crd_types.remove(crd_name).unwrap_or_default();
    for k in &keys {
        st.types.remove(k);
    }
    keys
}

/// Stops serving a CRD's kinds and drops their objects (the CRD itself is already gone).
pub fn unregister_crd(st: &mut State, crd_name: &str) {
    let keys = unregister_types(st, crd_name);
    let mut gone = std::collections::HashSet::new();
    for (g, _, p) in keys {
        gone.insert((g, p));
    }
    for res in gone {
        let keys: Vec<ObjKey> = st
            .objects
            .get(&res)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for k in keys {
            st.remove(&res, &k);
        }
    }
}

/// Deletes what is left in a terminating namespace; returns true once the namespace is gone.
fn teardown_namespace(st: &mut State, ns: &str) -> bool {
    let namespaced: Vec<ResKey> = st
        .objects
        .keys()
        .filter(|r| !(r.0.is_empty() && r.1 == "namespaces"))
        .cloned()
        .collect();
    let mut remaining = 0;
    for res in namespaced {
        let keys: Vec<(ObjKey, Arc<Value>)> = st.list(&res, Some(ns)).map(|(k, o)| (k.clone(), o.clone())).collect();
        for (k, o) in keys {
            if k.0 != ns {
                continue;
            }
            let has_finalizers = o
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty());
            if has_finalizers {
                remaining += 1;
                if o.pointer("/metadata/deletionTimestamp").is_none() {
                    let mut m = (*o).clone();
                    m["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
                    m["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                    st.put(&res, k, m);
                }
            } else {
                st.remove(&res, &k);
            }
        }
    }
    if remaining == 0 {
        st.remove(&(String::new(), "namespaces".into()), &(String::new(), ns.to_owned()));
        true
    } else {
        false
    }
}

/// Deletes objects whose owners are all gone, and finishes foreground deletions whose
/// dependents are gone. Repeats until nothing changes, so chains cascade in one call.
pub fn collect_garbage(st: &mut State) {
    loop {
        let uids = all_uids(st);
        let mut orphans: Vec<(ResKey, ObjKey, Arc<Value>)> = Vec::new();
        let mut foreground: Vec<(ResKey, ObjKey, Arc<Value>)> = Vec::new();
        for (res, objs) in &st.objects {
            for (k, o) in objs {
                let owners: Vec<&str> = owner_uids(o).collect();
                if !owners.is_empty() && owners.iter().all(|u| !uids.contains(*u)) {
                    orphans.push((res.clone(), k.clone(), o.clone()));
                }
                let fg = o
                    .pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|f| f.iter().any(|x| x == "foregroundDeletion"));
                if fg && o.pointer("/metadata/deletionTimestamp").is_some() {
                    foreground.push((res.clone(), k.clone(), o.clone()));
                }
            }
        }
        let mut changed = false;
        for (res, k, o) in orphans {
            let has_finalizers = o
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty());
            if has_finalizers {
                if o.pointer("/metadata/deletionTimestamp").is_none() {
                    let mut m = (*o).clone();
                    m["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
                    st.put(&res, k, m);
                    changed = true;
                }
            } else {
                st.remove(&res, &k);
                changed = true;
            }
        }
        for (res, k, owner) in foreground {
            let uid = owner
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let dependents: Vec<(ResKey, ObjKey, bool)> = st
                .objects
                .iter()
                .flat_map(|(r, m)| m.iter().map(move |(kk, o)| (r, kk, o)))
                .filter(|(_, _, o)| owner_uids(o).any(|u| u == uid))
                .map(|(r, kk, o)| {
                    (
                        r.clone(),
                        kk.clone(),
                        o.pointer("/metadata/finalizers")
                            .and_then(Value::as_array)
                            .is_some_and(|f| !f.is_empty()),
                    )
                })
                .collect();
            if dependents.is_empty() {
                let mut m = (*owner).clone();
                if let Some(Value::Array(f)) = m.pointer_mut("/metadata/finalizers") {
                    f.retain(|x| x != "foregroundDeletion");
                }
                let empty = m
                    .pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty);
                if empty {
                    st.remove(&res, &k);
                } else {
                    st.put(&res, k, m);
                }
                changed = true;
            } else {
                for (r, kk, fin) in dependents {
                    if !fin {
                        st.remove(&r, &kk);
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3s"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("NaNs"), None);
        assert_eq!(parse_duration("x"), None);
    }

    #[test]
    fn deployment_status_shapes() {
        let rt = kubesim_schema::builtin_types()
            .into_iter()
            .find(|t| t.kind == "Deployment")
            .unwrap();
        let d = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3, "template": {}}});
        let s = simulated_status(&rt, &d, 2, true, "").unwrap();
        assert_eq!(s["availableReplicas"], 3);
        assert_eq!(s["observedGeneration"], 2);
        assert_eq!(s["conditions"][0]["status"], "True");
        let s = simulated_status(&rt, &d, 2, true, "never-ready").unwrap();
        assert_eq!(s["unavailableReplicas"], 3);
        assert_eq!(s["conditions"][0]["status"], "False");
        let s = simulated_status(&rt, &d, 2, true, "progress-deadline").unwrap();
        assert_eq!(s["conditions"][1]["reason"], "ProgressDeadlineExceeded");
    }
}

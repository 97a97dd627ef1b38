//! Defaulting, as kube-apiserver 1.32 applies it when an object is decoded (the scheme's
//! `SetDefaults_*` functions plus the few defaults the registries add in `PrepareForCreate`).
//!
//! Scope: the fields that show up as diff noise between a manifest and what a real cluster
//! returns. Values follow the semantics of `pkg/apis/*/v1/defaults.go`:
//!
//! * A field is defaulted when it is absent **or JSON `null`** (Go decodes both to nil).
//!   Integer fields that Go declares without a pointer (probe timings) are also defaulted when 0.
//! * A field that exists with the wrong JSON type is left alone; validation reports it.
//! * Defaulting is idempotent: applying it twice gives the same object.
//! * Pod templates of Jobs and CronJobs get no `restartPolicy` default: the real server leaves it
//!   empty and validation then asks for `OnFailure` or `Never`.
//! * Two serialization artifacts of the real server are reproduced because GitOps diffs see
//!   them: containers always carry `resources: {}` and pod/claim templates carry
//!   `metadata.creationTimestamp: null`.
//! * State-dependent defaults are the server's: `spec.clusterIP(s)` allocation, node ports,
//!   Job selectors (they need the UID, see [`job_selector_defaults`]), service-account admission.
//!   Services are defaulted as on a single-stack IPv4 cluster.

use serde_json::{Map, Value, json};

use crate::kinds::ResourceType;

/// Applies kube-apiserver's defaults for `rt` to `obj` in place. Unknown kinds and objects of
/// unexpected shape are left untouched where the shape does not fit; never panics.
pub fn apply_defaults(rt: &ResourceType, obj: &mut Value) {
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => default_pod(root),
        ("", "Service") => default_service(root),
        ("", "Namespace") => default_namespace(root),
        ("", "Secret") => default_secret(root),
        ("", "PersistentVolumeClaim") => default_pvc(root),
        ("", "Endpoints") => default_endpoints(root),
        ("apps", "Deployment") => default_deployment(root),
        ("apps", "StatefulSet") => default_statefulset(root),
        ("apps", "DaemonSet") => default_daemonset(root),
        ("apps", "ReplicaSet") => {
            if let Some(spec) = child(root, "spec") {
                set(spec, "replicas", json!(1));
                default_template(spec, true);
            }
        }
        ("batch", "Job") => default_job(root),
        ("batch", "CronJob") => default_cronjob(root),
        ("networking.k8s.io", "NetworkPolicy") => default_network_policy(root),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => default_binding(root),
        ("autoscaling", "HorizontalPodAutoscaler") => default_hpa(root),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => default_crd(root),
        _ => {}
    }
}

/// The labels and selector kube-apiserver's Job strategy adds on create when
/// `spec.manualSelector` is not `true`; they need the UID the server assigns, so the server
/// calls this after assigning `metadata.uid`. No-op for a manual selector or a missing UID.
pub fn job_selector_defaults(job: &mut Value) {
    let Some(root) = job.as_object_mut() else {
        return;
    };
    let name = root
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let Some(uid) = root
        .get("metadata")
        .and_then(|m| m.get("uid"))
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return;
    };
    let Some(spec) = child(root, "spec") else {
        return;
    };
    if spec.get("manualSelector").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let labels = [
        ("batch.kubernetes.io/controller-uid", uid.as_str()),
        ("batch.kubernetes.io/job-name", name.as_str()),
        ("controller-uid", uid.as_str()),
        ("job-name", name.as_str()),
    ];
    set(spec, "selector", json!({ "matchLabels": { labels[0].0: labels[0].1 } }));
    if let Some(tl) = child(spec, "template")
        .and_then(|t| child(t, "metadata"))
        .and_then(|m| child(m, "labels"))
    {
        for (k, v) in labels {
            tl.insert(k.to_owned(), json!(v));
        }
    }
}

/// Inserts `value` at `key` if the key is absent or `null`.
fn set(map: &mut Map<String, Value>, key: &str, value: Value) {
    match map.get(key) {
        None | Some(Value::Null) => {
            map.insert(key.to_owned(), value);
        }
        _ => {}
    }
}

/// Like [`set`] but also replaces a numeric 0 (Go non-pointer ints).
fn set_nonzero(map: &mut Map<String, Value>, key: &str, value: Value) {
    match map.get(key) {
        None | Some(Value::Null) => {
            map.insert(key.to_owned(), value);
        }
        Some(v) if v.as_f64() == Some(0.0) => {
            map.insert(key.to_owned(), value);
        }
        _ => {}
    }
}

/// The object at `key`, created empty if absent or null; `None` if it has another type.
fn child<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    set(map, key, json!({}));
    map.get_mut(key).and_then(Value::as_object_mut)
}

/// The object at `key` only if it already exists.
fn existing<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    map.get_mut(key).and_then(Value::as_object_mut)
}

/// Each object element of the array at `key`, if it exists.
fn each<'a>(map: &'a mut Map<String, Value>, key: &str) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    map.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

fn default_deployment(root: &mut Map<String, Value>) {
    let Some(spec) = child(root, "spec") else {
        return;
    };
    set(spec, "replicas", json!(1));
    if let Some(strategy) = child(spec, "strategy") {
        set(strategy, "type", json!("RollingUpdate"));
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            && let Some(ru) = child(strategy, "rollingUpdate")
        {
            set(ru, "maxUnavailable", json!("25%"));
            set(ru, "maxSurge", json!("25%"));
        }
    }
    set(spec, "revisionHistoryLimit", json!(10));
    set(spec, "progressDeadlineSeconds", json!(600));
    default_template(spec, true);
}

fn default_statefulset(root: &mut Map<String, Value>) {
    let Some(spec) = child(root, "spec") else {
        return;
    };
    set(spec, "replicas", json!(1));
    set(spec, "podManagementPolicy", json!("OrderedReady"));
    if let Some(us) = child(spec, "updateStrategy") {
        set(us, "type", json!("RollingUpdate"));
        if us.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            && let Some(ru) = child(us, "rollingUpdate")
        {
            set(ru, "partition", json!(0));
        }
    }
    set(spec, "revisionHistoryLimit", json!(10));
    if let Some(p) = child(spec, "persistentVolumeClaimRetentionPolicy") {
        set(p, "whenDeleted", json!("Retain"));
        set(p, "whenScaled", json!("Retain"));
    }
    for pvc in each(spec, "volumeClaimTemplates") {
        if let Some(meta) = child(pvc, "metadata") {
            set(meta, "creationTimestamp", Value::Null);
        }
        default_pvc(pvc);
    }
    default_template(spec, true);
}

fn default_daemonset(root: &mut Map<String, Value>) {
    let Some(spec) = child(root, "spec") else {
        return;
    };
    if let Some(us) = child(spec, "updateStrategy") {
        set(us, "type", json!("RollingUpdate"));
        if us.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            && let Some(ru) = child(us, "rollingUpdate")
        {
            set(ru, "maxUnavailable", json!(1));
            set(ru, "maxSurge", json!(0));
        }
    }
    set(spec, "revisionHistoryLimit", json!(10));
    default_template(spec, true);
}

fn default_job(root: &mut Map<String, Value>) {
    // A Job without labels takes its template's labels.
    let template_labels = root
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    if let Some(labels) = template_labels
        && let Some(meta) = child(root, "metadata")
    {
        let empty = match meta.get("labels") {
            None | Some(Value::Null) => true,
            Some(Value::Object(m)) => m.is_empty(),
            Some(_) => false,
        };
        if empty {
            meta.insert("labels".into(), labels);
        }
    }
    let Some(spec) = child(root, "spec") else {
        return;
    };
    let missing = |s: &Map<String, Value>, k: &str| s.get(k).is_none_or(Value::is_null);
    if missing(spec, "completions") && missing(spec, "parallelism") {
        spec.insert("completions".into(), json!(1));
    }
    set(spec, "parallelism", json!(1));
    if missing(spec, "backoffLimitPerIndex") {
        set(spec, "backoffLimit", json!(6));
    } else {
        set(spec, "backoffLimit", json!(i32::MAX));
    }
    set(spec, "completionMode", json!("NonIndexed"));
    set(spec, "suspend", json!(false));
    let has_failure_policy = !missing(spec, "podFailurePolicy");
    set(
        spec,
        "podReplacementPolicy",
        json!(if has_failure_policy {
            "Failed"
        } else {
            "TerminatingOrFailed"
        }),
    );
    if let Some(pfp) = existing(spec, "podFailurePolicy") {
        for rule in each(pfp, "rules") {
            for cond in each(rule, "onPodConditions") {
                set(cond, "status", json!("True"));
            }
        }
    }
    default_template(spec, false);
}

fn default_cronjob(root: &mut Map<String, Value>) {
    let Some(spec) = child(root, "spec") else {
        return;
    };
    set(spec, "concurrencyPolicy", json!("Allow"));
    set(spec, "suspend", json!(false));
    set(spec, "successfulJobsHistoryLimit", json!(3));
    set(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(jt) = child(spec, "jobTemplate") {
        if let Some(meta) = child(jt, "metadata") {
            set(meta, "creationTimestamp", Value::Null);
        }
        if let Some(js) = child(jt, "spec") {
            default_template(js, false);
        }
    }
}

/// Defaults `spec.template` (metadata artifact + pod spec) of a workload spec.
fn default_template(spec: &mut Map<String, Value>, restart_always: bool) {
    let Some(template) = child(spec, "template") else {
        return;
    };
    if let Some(meta) = child(template, "metadata") {
        set(meta, "creationTimestamp", Value::Null);
    }
    if let Some(ps) = child(template, "spec") {
        default_pod_spec(ps, restart_always);
    }
}

fn default_pod(root: &mut Map<String, Value>) {
    let Some(spec) = child(root, "spec") else {
        return;
    };
    default_pod_spec(spec, true);
    set(spec, "enableServiceLinks", json!(true));
    let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    for key in ["initContainers", "containers"] {
        for c in each(spec, key) {
            // Requests default to limits for a Pod (not for templates).
            let limits = c
                .get("resources")
                .and_then(|r| r.get("limits"))
                .and_then(Value::as_object)
                .cloned();
            if let Some(limits) = limits
                && let Some(res) = child(c, "resources")
                && let Some(req) = child(res, "requests")
            {
                for (k, v) in limits {
                    req.entry(k).or_insert(v);
                }
            }
            if host_network {
                for p in each(c, "ports") {
                    if let Some(cp) = p.get("containerPort").cloned() {
                        set_nonzero(p, "hostPort", cp);
                    }
                }
            }
        }
    }
}

/// `SetDefaults_PodSpec` and the per-container, per-volume defaults below it.
fn default_pod_spec(spec: &mut Map<String, Value>, restart_always: bool) {
    set(spec, "dnsPolicy", json!("ClusterFirst"));
    if restart_always {
        set(spec, "restartPolicy", json!("Always"));
    }
    set(spec, "terminationGracePeriodSeconds", json!(30));
    set(spec, "securityContext", json!({}));
    set(spec, "schedulerName", json!("default-scheduler"));
    for key in ["initContainers", "containers", "ephemeralContainers"] {
        for c in each(spec, key) {
            default_container(c);
        }
    }
    for vol in each(spec, "volumes") {
        default_volume(vol);
    }
}

/// `imagePullPolicy` default for an image reference: `Always` when the tag is `latest` or
/// absent (and no digest is given), `IfNotPresent` otherwise.
pub fn default_pull_policy(image: &str) -> &'static str {
    if image.is_empty() {
        return "IfNotPresent";
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last_segment = name.rsplit('/').next().unwrap_or(name);
    let tag = last_segment.rsplit_once(':').map(|(_, t)| t);
    match (tag, digest) {
        (Some("latest"), _) | (None, None) => "Always",
        _ => "IfNotPresent",
    }
}

fn default_container(c: &mut Map<String, Value>) {
    set(c, "terminationMessagePath", json!("/dev/termination-log"));
    set(c, "terminationMessagePolicy", json!("File"));
    let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
    let policy = default_pull_policy(image);
    set(c, "imagePullPolicy", json!(policy));
    set(c, "resources", json!({}));
    for p in each(c, "ports") {
        set(p, "protocol", json!("TCP"));
    }
    for e in each(c, "env") {
        if let Some(fr) = existing(e, "valueFrom").and_then(|vf| existing(vf, "fieldRef")) {
            set(fr, "apiVersion", json!("v1"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = existing(c, probe) {
            set_nonzero(p, "timeoutSeconds", json!(1));
            set_nonzero(p, "periodSeconds", json!(10));
            set_nonzero(p, "successThreshold", json!(1));
            set_nonzero(p, "failureThreshold", json!(3));
            default_handler(p);
        }
    }
    if let Some(lc) = existing(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = existing(lc, hook) {
                default_handler(h);
            }
        }
    }
}

fn default_handler(h: &mut Map<String, Value>) {
    if let Some(g) = existing(h, "httpGet") {
        match g.get("path") {
            None | Some(Value::Null) => {
                g.insert("path".into(), json!("/"));
            }
            Some(Value::String(s)) if s.is_empty() => {
                g.insert("path".into(), json!("/"));
            }
            _ => {}
        }
        set(g, "scheme", json!("HTTP"));
    }
}

const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

fn default_volume(v: &mut Map<String, Value>) {
    if !VOLUME_SOURCES.iter().any(|s| v.get(*s).is_some_and(|x| !x.is_null())) {
        v.insert("emptyDir".into(), json!({}));
    }
    for src in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = existing(v, src) {
            set(s, "defaultMode", json!(420));
        }
    }
    if let Some(h) = existing(v, "hostPath") {
        set(h, "type", json!(""));
    }
    if let Some(d) = existing(v, "downwardAPI") {
        for item in each(d, "items") {
            if let Some(fr) = existing(item, "fieldRef") {
                set(fr, "apiVersion", json!("v1"));
            }
        }
    }
    if let Some(p) = existing(v, "projected") {
        for src in each(p, "sources") {
            if let Some(d) = existing(src, "downwardAPI") {
                for item in each(d, "items") {
                    if let Some(fr) = existing(item, "fieldRef") {
                        set(fr, "apiVersion", json!("v1"));
                    }
                }
            }
            if let Some(t) = existing(src, "serviceAccountToken") {
                set(t, "expirationSeconds", json!(3600));
            }
        }
    }
    if let Some(spec) = existing(v, "ephemeral")
        .and_then(|e| existing(e, "volumeClaimTemplate"))
        .and_then(|t| existing(t, "spec"))
    {
        set(spec, "volumeMode", json!("Filesystem"));
    }
}

fn default_service(root: &mut Map<String, Value>) {
    let Some(spec) = child(root, "spec") else {
        return;
    };
    set(spec, "type", json!("ClusterIP"));
    set(spec, "sessionAffinity", json!("None"));
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_owned();
    if spec.get("sessionAffinity").and_then(Value::as_str) == Some("ClientIP")
        && let Some(cfg) = child(spec, "sessionAffinityConfig")
        && let Some(cip) = child(cfg, "clientIP")
    {
        set(cip, "timeoutSeconds", json!(10800));
    }
    for p in each(spec, "ports") {
        set(p, "protocol", json!("TCP"));
        let unset = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(Value::Number(n)) => n.as_f64() == Some(0.0),
            _ => false,
        };
        if unset && let Some(port) = p.get("port").cloned() {
            p.insert("targetPort".into(), port);
        }
    }
    if ty == "ExternalName" {
        return;
    }
    set(spec, "internalTrafficPolicy", json!("Cluster"));
    if ty == "NodePort" || ty == "LoadBalancer" {
        set(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
    let has_selector = spec
        .get("selector")
        .and_then(Value::as_object)
        .is_some_and(|s| !s.is_empty());
    if headless {
        set(spec, "clusterIPs", json!(["None"]));
    }
    // Single-stack IPv4 cluster: headless services without a selector ask for both families.
    let policy = if headless && !has_selector {
        "RequireDualStack"
    } else {
        "SingleStack"
    };
    set(spec, "ipFamilyPolicy", json!(policy));
    set(spec, "ipFamilies", json!(["IPv4"]));
}

fn default_namespace(root: &mut Map<String, Value>) {
    let name = root
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(name) = name
        && let Some(meta) = child(root, "metadata")
        && let Some(labels) = child(meta, "labels")
    {
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    if let Some(spec) = child(root, "spec") {
        set(spec, "finalizers", json!(["kubernetes"]));
    }
    if let Some(status) = child(root, "status") {
        set(status, "phase", json!("Active"));
    }
}

/// `type: Opaque`, and `stringData` merged into `data` (base64-encoded, overriding) as the
/// v1 → internal conversion does; the stored object carries no `stringData`.
fn default_secret(root: &mut Map<String, Value>) {
    set(root, "type", json!("Opaque"));
    let Some(Value::Object(string_data)) = root.remove("stringData") else {
        return;
    };
    if string_data.is_empty() {
        return;
    }
    if let Some(data) = child(root, "data") {
        for (k, v) in string_data {
            let text = v.as_str().unwrap_or_default();
            data.insert(k, json!(crate::names::base64_encode(text.as_bytes())));
        }
    }
}

fn default_pvc(root: &mut Map<String, Value>) {
    if let Some(spec) = child(root, "spec") {
        set(spec, "volumeMode", json!("Filesystem"));
    }
    if let Some(status) = child(root, "status") {
        set(status, "phase", json!("Pending"));
    }
}

fn default_endpoints(root: &mut Map<String, Value>) {
    for subset in each(root, "subsets") {
        for p in each(subset, "ports") {
            set(p, "protocol", json!("TCP"));
        }
    }
}

fn default_network_policy(root: &mut Map<String, Value>) {
    let Some(spec) = child(root, "spec") else {
        return;
    };
    for dir in ["ingress", "egress"] {
        for rule in each(spec, dir) {
            for p in each(rule, "ports") {
                set(p, "protocol", json!("TCP"));
            }
        }
    }
    let has_types = spec
        .get("policyTypes")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if !has_types {
        let has_egress = spec
            .get("egress")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        let types = if has_egress {
            json!(["Ingress", "Egress"])
        } else {
            json!(["Ingress"])
        };
        spec.insert("policyTypes".into(), types);
    }
}

fn default_binding(root: &mut Map<String, Value>) {
    if let Some(rr) = existing(root, "roleRef") {
        match rr.get("apiGroup") {
            None | Some(Value::Null) => {
                rr.insert("apiGroup".into(), json!("rbac.authorization.k8s.io"));
            }
            Some(Value::String(s)) if s.is_empty() => {
                rr.insert("apiGroup".into(), json!("rbac.authorization.k8s.io"));
            }
            _ => {}
        }
    }
    for s in each(root, "subjects") {
        let group = match s.get("kind").and_then(Value::as_str) {
            Some("ServiceAccount") => "",
            Some("User" | "Group") => "rbac.authorization.k8s.io",
            _ => continue,
        };
        let empty = s.get("apiGroup").is_none_or(|g| g.is_null() || g.as_str() == Some(""));
        if empty && !group.is_empty() {
            s.insert("apiGroup".into(), json!(group));
        }
    }
}

fn default_hpa(root: &mut Map<String, Value>) {
    let Some(spec) = child(root, "spec") else {
        return;
    };
    set(spec, "minReplicas", json!(1));
    let no_metrics = spec.get("metrics").and_then(Value::as_array).is_none_or(Vec::is_empty);
    if no_metrics {
        spec.insert(
            "metrics".into(),
            json!([{
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": { "type": "Utilization", "averageUtilization": 80 },
                },
            }]),
        );
    }
    if let Some(b) = existing(spec, "behavior") {
        if let Some(up) = child(b, "scaleUp") {
            set(up, "stabilizationWindowSeconds", json!(0));
            set(up, "selectPolicy", json!("Max"));
            set(
                up,
                "policies",
                json!([
                    { "type": "Pods", "value": 4, "periodSeconds": 15 },
                    { "type": "Percent", "value": 100, "periodSeconds": 15 },
                ]),
            );
        }
        if let Some(down) = child(b, "scaleDown") {
            set(down, "selectPolicy", json!("Max"));
            set(
                down,
                "policies",
                json!([{ "type": "Percent", "value": 100, "periodSeconds": 15 }]),
            );
        }
    }
}

fn default_crd(root: &mut Map<String, Value>) {
    let Some(spec) = child(root, "spec") else {
        return;
    };
    if let Some(names) = existing(spec, "names") {
        let kind = names.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
        if !kind.is_empty() {
            let empty =
                |n: &Map<String, Value>, k: &str| n.get(k).is_none_or(|v| v.is_null() || v.as_str() == Some(""));
            if empty(names, "singular") {
                names.insert("singular".into(), json!(kind.to_ascii_lowercase()));
            }
            if empty(names, "listKind") {
                names.insert("listKind".into(), json!(format!("{kind}List")));
            }
        }
    }
    if let Some(conv) = child(spec, "conversion") {
        set(conv, "strategy", json!("None"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::builtin_types;

    fn rt(kind: &str) -> ResourceType {
        builtin_types().into_iter().find(|t| t.kind == kind).unwrap()
    }

    fn defaulted(kind: &str, mut obj: Value) -> Value {
        apply_defaults(&rt(kind), &mut obj);
        let once = obj.clone();
        apply_defaults(&rt(kind), &mut obj);
        assert_eq!(once, obj, "defaulting must be idempotent");
        obj
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                        "ports": [{"containerPort": 80}]}]}
                }
            }
        })
    }

    #[test]
    fn deployment_spec_defaults() {
        let d = defaulted("Deployment", deployment());
        let s = &d["spec"];
        assert_eq!(s["replicas"], 1);
        assert_eq!(
            s["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(s["revisionHistoryLimit"], 10);
        assert_eq!(s["progressDeadlineSeconds"], 600);
        assert_eq!(s["template"]["metadata"]["creationTimestamp"], Value::Null);
        assert!(
            s["template"]["metadata"]
                .as_object()
                .unwrap()
                .contains_key("creationTimestamp")
        );
    }

    #[test]
    fn deployment_explicit_values_are_kept() {
        let mut d = deployment();
        d["spec"]["replicas"] = json!(3);
        d["spec"]["strategy"] = json!({"type": "Recreate"});
        d["spec"]["revisionHistoryLimit"] = json!(0);
        let d = defaulted("Deployment", d);
        assert_eq!(d["spec"]["replicas"], 3);
        assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_eq!(d["spec"]["revisionHistoryLimit"], 0);

        let mut d = deployment();
        d["spec"]["strategy"] = json!({"rollingUpdate": {"maxSurge": 1}});
        d["spec"]["replicas"] = Value::Null;
        let d = defaulted("Deployment", d);
        assert_eq!(d["spec"]["replicas"], 1, "null is defaulted like absent");
        assert_eq!(
            d["spec"]["strategy"],
            json!({"rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}, "type": "RollingUpdate"})
        );
    }

    #[test]
    fn pod_template_and_container_defaults() {
        let d = defaulted("Deployment", deployment());
        let ps = &d["spec"]["template"]["spec"];
        assert_eq!(ps["restartPolicy"], "Always");
        assert_eq!(ps["dnsPolicy"], "ClusterFirst");
        assert_eq!(ps["schedulerName"], "default-scheduler");
        assert_eq!(ps["terminationGracePeriodSeconds"], 30);
        assert_eq!(ps["securityContext"], json!({}));
        assert!(ps.get("enableServiceLinks").is_none(), "Pod-only default");
        let c = &ps["containers"][0];
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["resources"], json!({}));
        assert_eq!(c["ports"][0], json!({"containerPort": 80, "protocol": "TCP"}));
    }

    #[test]
    fn image_pull_policy_rules() {
        assert_eq!(default_pull_policy("nginx"), "Always");
        assert_eq!(default_pull_policy("nginx:latest"), "Always");
        assert_eq!(default_pull_policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(default_pull_policy("localhost:5000/nginx"), "Always");
        assert_eq!(default_pull_policy("localhost:5000/nginx:v2"), "IfNotPresent");
        assert_eq!(
            default_pull_policy("nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            "IfNotPresent"
        );
        assert_eq!(default_pull_policy("nginx:latest@sha256:abc"), "Always");
        assert_eq!(default_pull_policy(""), "IfNotPresent");
        let mut d = deployment();
        d["spec"]["template"]["spec"]["initContainers"] = json!([{"name": "init", "image": "busybox"}]);
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("Never");
        let d = defaulted("Deployment", d);
        let ps = &d["spec"]["template"]["spec"];
        assert_eq!(ps["initContainers"][0]["imagePullPolicy"], "Always");
        assert_eq!(ps["initContainers"][0]["terminationMessagePolicy"], "File");
        assert_eq!(ps["containers"][0]["imagePullPolicy"], "Never");
    }

    #[test]
    fn probes_env_and_volumes() {
        let mut d = deployment();
        let ps = &mut d["spec"]["template"]["spec"];
        ps["containers"][0]["livenessProbe"] = json!({"httpGet": {"port": 80}});
        ps["containers"][0]["readinessProbe"] = json!({"tcpSocket": {"port": 80}, "periodSeconds": 5});
        ps["containers"][0]["env"] = json!([
            {"name": "A", "value": "1"},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}
        ]);
        ps["volumes"] = json!([
            {"name": "cfg", "configMap": {"name": "cfg"}},
            {"name": "sec", "secret": {"secretName": "s", "defaultMode": 256}},
            {"name": "scratch"},
            {"name": "host", "hostPath": {"path": "/var"}}
        ]);
        let d = defaulted("Deployment", d);
        let ps = &d["spec"]["template"]["spec"];
        let c = &ps["containers"][0];
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                   "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(c["readinessProbe"]["periodSeconds"], 5);
        assert_eq!(c["env"][0], json!({"name": "A", "value": "1"}));
        assert_eq!(c["env"][1]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(ps["volumes"][0]["configMap"]["defaultMode"], 420);
        assert_eq!(ps["volumes"][1]["secret"]["defaultMode"], 256);
        assert_eq!(ps["volumes"][2]["emptyDir"], json!({}));
        assert_eq!(ps["volumes"][3]["hostPath"]["type"], "");
    }

    #[test]
    fn pod_defaults() {
        let p = defaulted(
            "Pod",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "image": "busybox:1.36",
                    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}}]}}),
        );
        let s = &p["spec"];
        assert_eq!(s["restartPolicy"], "Always");
        assert_eq!(s["enableServiceLinks"], true);
        assert_eq!(
            s["containers"][0]["resources"]["requests"],
            json!({"cpu": "500m", "memory": "1Gi"})
        );
    }

    #[test]
    fn statefulset_defaults() {
        let s = defaulted(
            "StatefulSet",
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
                "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                    "template": {"metadata": {"labels": {"app": "db"}},
                        "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}},
                    "volumeClaimTemplates": [{"metadata": {"name": "data"},
                        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}),
        );
        let sp = &s["spec"];
        assert_eq!(sp["replicas"], 1);
        assert_eq!(sp["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            sp["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(sp["revisionHistoryLimit"], 10);
        assert_eq!(
            sp["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        let vct = &sp["volumeClaimTemplates"][0];
        assert_eq!(vct["spec"]["volumeMode"], "Filesystem");
        assert_eq!(vct["status"]["phase"], "Pending");
        assert_eq!(
            sp["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );

        let s = defaulted("StatefulSet", json!({"spec": {"updateStrategy": {"type": "OnDelete"}}}));
        assert_eq!(s["spec"]["updateStrategy"], json!({"type": "OnDelete"}));
    }

    #[test]
    fn daemonset_and_replicaset_defaults() {
        let d = defaulted(
            "DaemonSet",
            json!({"spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "agent"}]}}}}),
        );
        assert_eq!(
            d["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "Always"
        );
        let r = defaulted("ReplicaSet", json!({"spec": {}}));
        assert_eq!(r["spec"]["replicas"], 1);
    }

    fn job() -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
            "spec": {"template": {"metadata": {"labels": {"app": "pi"}}, "spec": {
                "containers": [{"name": "pi", "image": "perl:5.34"}]}}}})
    }

    #[test]
    fn job_defaults() {
        let j = defaulted("Job", job());
        let s = &j["spec"];
        assert_eq!(s["completions"], 1);
        assert_eq!(s["parallelism"], 1);
        assert_eq!(s["backoffLimit"], 6);
        assert_eq!(s["completionMode"], "NonIndexed");
        assert_eq!(s["suspend"], false);
        assert_eq!(s["podReplacementPolicy"], "TerminatingOrFailed");
        assert!(s.get("manualSelector").is_none());
        assert!(s["template"]["spec"].get("restartPolicy").is_none());
        assert_eq!(s["template"]["spec"]["dnsPolicy"], "ClusterFirst");
        assert_eq!(j["metadata"]["labels"], json!({"app": "pi"}));

        let mut j = job();
        j["spec"]["parallelism"] = json!(3);
        let j = defaulted("Job", j);
        assert!(j["spec"].get("completions").is_none());
        assert_eq!(j["spec"]["parallelism"], 3);
    }

    #[test]
    fn job_selector_defaults_use_uid() {
        let mut j = job();
        j["metadata"]["uid"] = json!("1234");
        job_selector_defaults(&mut j);
        assert_eq!(
            j["spec"]["selector"],
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "1234"}})
        );
        assert_eq!(j["spec"]["template"]["metadata"]["labels"]["job-name"], "pi");
        assert_eq!(j["spec"]["template"]["metadata"]["labels"]["app"], "pi");
        let mut manual = job();
        manual["metadata"]["uid"] = json!("1");
        manual["spec"]["manualSelector"] = json!(true);
        let before = manual.clone();
        job_selector_defaults(&mut manual);
        assert_eq!(before, manual);
    }

    #[test]
    fn cronjob_defaults() {
        let c = defaulted(
            "CronJob",
            json!({"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "OnFailure"}}}}}}),
        );
        let s = &c["spec"];
        assert_eq!(s["concurrencyPolicy"], "Allow");
        assert_eq!(s["suspend"], false);
        assert_eq!(s["successfulJobsHistoryLimit"], 3);
        assert_eq!(s["failedJobsHistoryLimit"], 1);
        let ps = &s["jobTemplate"]["spec"]["template"]["spec"];
        assert_eq!(ps["restartPolicy"], "OnFailure");
        assert_eq!(ps["schedulerName"], "default-scheduler");
        assert_eq!(ps["containers"][0]["imagePullPolicy"], "Always");
        assert!(s["jobTemplate"]["spec"].get("backoffLimit").is_none());
    }

    #[test]
    fn service_defaults() {
        let s = defaulted(
            "Service",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}, {"port": 443, "targetPort": "https", "protocol": "TCP"}]}}),
        );
        let sp = &s["spec"];
        assert_eq!(sp["type"], "ClusterIP");
        assert_eq!(sp["sessionAffinity"], "None");
        assert_eq!(sp["ports"][0], json!({"port": 80, "protocol": "TCP", "targetPort": 80}));
        assert_eq!(sp["ports"][1]["targetPort"], "https");
        assert_eq!(sp["internalTrafficPolicy"], "Cluster");
        assert_eq!(sp["ipFamilyPolicy"], "SingleStack");
        assert_eq!(sp["ipFamilies"], json!(["IPv4"]));
        assert!(sp.get("externalTrafficPolicy").is_none());
        assert!(sp.get("clusterIP").is_none(), "allocation is the server's");

        let lb = defaulted(
            "Service",
            json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}),
        );
        assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);

        let en = defaulted(
            "Service",
            json!({"spec": {"type": "ExternalName", "externalName": "example.com"}}),
        );
        assert!(en["spec"].get("ipFamilies").is_none());
        assert!(en["spec"].get("internalTrafficPolicy").is_none());
        assert_eq!(en["spec"]["sessionAffinity"], "None");

        let headless = defaulted(
            "Service",
            json!({"spec": {"clusterIP": "None", "ports": [{"port": 5432}]}}),
        );
        assert_eq!(headless["spec"]["ipFamilyPolicy"], "RequireDualStack");
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));

        let sticky = defaulted(
            "Service",
            json!({"spec": {"sessionAffinity": "ClientIP", "selector": {"a": "b"}}}),
        );
        assert_eq!(
            sticky["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
            10800
        );
    }

    #[test]
    fn namespace_secret_pvc_defaults() {
        let n = defaulted(
            "Namespace",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}),
        );
        assert_eq!(n["metadata"]["labels"]["kubernetes.io/metadata.name"], "team-a");
        assert_eq!(n["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(n["status"]["phase"], "Active");

        let s = defaulted("Secret", json!({"metadata": {"name": "s"}, "data": {}}));
        assert_eq!(s["type"], "Opaque");
        let s = defaulted("Secret", json!({"type": "kubernetes.io/tls"}));
        assert_eq!(s["type"], "kubernetes.io/tls");
        let s = defaulted(
            "Secret",
            json!({"data": {"a": "YQ==", "b": "Yg=="}, "stringData": {"b": "hello", "c": "x"}}),
        );
        assert_eq!(s["data"], json!({"a": "YQ==", "b": "aGVsbG8=", "c": "eA=="}));
        assert!(s.get("stringData").is_none());

        let p = defaulted(
            "PersistentVolumeClaim",
            json!({"spec": {"accessModes": ["ReadWriteOnce"]}}),
        );
        assert_eq!(p["spec"]["volumeMode"], "Filesystem");
        assert_eq!(p["status"]["phase"], "Pending");

        let cm = json!({"metadata": {"name": "c"}, "data": {"a": "b"}});
        assert_eq!(defaulted("ConfigMap", cm.clone()), cm);
        let ing = json!({"spec": {"rules": []}});
        assert_eq!(defaulted("Ingress", ing.clone()), ing);
    }

    #[test]
    fn rbac_netpol_hpa_crd_defaults() {
        let rb = defaulted(
            "RoleBinding",
            json!({"roleRef": {"kind": "Role", "name": "r"},
                "subjects": [{"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "sa"}]}),
        );
        assert_eq!(rb["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
        assert_eq!(rb["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
        assert!(rb["subjects"][1].get("apiGroup").is_none());

        let np = defaulted(
            "NetworkPolicy",
            json!({"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}}),
        );
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(np["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");

        let hpa = defaulted("HorizontalPodAutoscaler", json!({"spec": {"maxReplicas": 5}}));
        assert_eq!(hpa["spec"]["minReplicas"], 1);
        assert_eq!(
            hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );

        let crd = defaulted(
            "CustomResourceDefinition",
            json!({"spec": {"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"}}}),
        );
        assert_eq!(crd["spec"]["names"]["singular"], "widget");
        assert_eq!(crd["spec"]["names"]["listKind"], "WidgetList");
        assert_eq!(crd["spec"]["conversion"], json!({"strategy": "None"}));
    }

    #[test]
    fn odd_shapes_do_not_panic() {
        for t in builtin_types() {
            for mut v in [
                json!(null),
                json!(42),
                json!({"spec": 3}),
                json!({"spec": {"template": []}}),
                json!({"spec": {"template": {"spec": {"containers": [1, null, {"image": 5}]}}}}),
                json!({"metadata": "x", "spec": {"ports": "x", "jobTemplate": 1}}),
            ] {
                apply_defaults(&t, &mut v);
            }
        }
    }
}

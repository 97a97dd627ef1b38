//! How lists and maps behave, decided from their position in the object.
//!
//! Both strategic merge patch and server-side apply need to know, for each
//! list, whether it is *atomic* (replaced wholesale), a *set* of scalars, or an
//! *associative list* keyed by some fields; and for each map whether it is
//! atomic (e.g. a `LabelSelector`). Kubernetes gets this from Go struct tags /
//! OpenAPI extensions. We do not carry the full OpenAPI here; instead a small
//! [`Schema`] trait answers from the *path of field names* leading to the
//! node (list items elided), e.g. `["spec", "template", "spec", "containers",
//! "ports"]`. That is enough to tell container `ports` from Service
//! `spec.ports`, and lets the server plug in CRD schemas (or treat every CRD
//! list as atomic with [`AtomicListsSchema`]).

use serde_json::{Value, json};

/// One key field of an associative list.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyField {
    /// Field name inside each item, e.g. `containerPort`.
    pub name: String,
    /// Value assumed when an item omits the field (Kubernetes declares e.g.
    /// `protocol` defaulting to `TCP` so that apply configurations may omit
    /// it).
    pub default: Option<Value>,
}

impl KeyField {
    /// A key field without a default.
    pub fn new(name: &str) -> Self {
        KeyField {
            name: name.to_string(),
            default: None,
        }
    }

    /// A key field with a default value.
    pub fn with_default(name: &str, default: Value) -> Self {
        KeyField {
            name: name.to_string(),
            default: Some(default),
        }
    }
}

/// Semantics of a list.
#[derive(Debug, Clone, PartialEq)]
pub enum ListKind {
    /// Replaced as a whole; owned as a single leaf (`+listType=atomic`).
    Atomic,
    /// A set of scalars, merged by union (`+listType=set`, SMP
    /// `patchStrategy=merge` on primitives, e.g. `metadata.finalizers`).
    Set,
    /// Items are objects identified by key fields (`+listType=map`). The first
    /// key is the strategic-merge-patch `patchMergeKey`; server-side apply
    /// uses all of them (`+listMapKey`).
    Map(Vec<KeyField>),
}

/// Semantics of a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapKind {
    /// A struct with named fields: merged field by field; the map itself is
    /// not a member of an applier's field set.
    Struct,
    /// A free-form `map[string]T` (labels, annotations, data, ...): merged
    /// entry by entry, each entry is a member.
    Granular,
    /// Replaced as a whole and owned as a leaf (`+structType=atomic` /
    /// `+mapType=atomic`, e.g. `LabelSelector`).
    Atomic,
}

/// Answers list/map semantics for a path of field names from the object
/// root. List items are not part of the path.
pub trait Schema {
    /// Semantics of the list found at `path`.
    fn list_kind(&self, path: &[String]) -> ListKind;

    /// Semantics of the map found at `path` (the root has an empty path).
    fn map_kind(&self, path: &[String]) -> MapKind;

    /// The object Kubernetes compares against when recording field ownership
    /// for a *create*. Kube-apiserver diffs against the Go zero value of the
    /// kind, which for built-ins contains non-`omitempty` structs such as
    /// `spec` and `spec.template`; those therefore do not get a `.` marker in
    /// the creating manager's `fieldsV1`. Unstructured kinds (CRDs) start from
    /// `{}`.
    fn create_baseline(&self) -> Value {
        json!({})
    }
}

/// Every list atomic, every map a struct: the right default for custom
/// resources whose schema declares no list types.
#[derive(Debug, Clone, Copy, Default)]
pub struct AtomicListsSchema;

impl Schema for AtomicListsSchema {
    fn list_kind(&self, _path: &[String]) -> ListKind {
        ListKind::Atomic
    }
    fn map_kind(&self, path: &[String]) -> MapKind {
        granular_metadata_map(path).unwrap_or(MapKind::Struct)
    }
}

/// Metadata maps are the same for every kind.
fn granular_metadata_map(path: &[String]) -> Option<MapKind> {
    match path {
        [m, f] if m == "metadata" && (f == "labels" || f == "annotations") => Some(MapKind::Granular),
        _ => None,
    }
}

/// List and map semantics of the Kubernetes built-in kinds, following the
/// `patchMergeKey`/`listType`/`listMapKey` tags of `k8s.io/api`.
///
/// Rules are keyed by field name and parent field, so they apply wherever a
/// pod template appears (Pod, Deployment, StatefulSet, Job, CronJob...).
#[derive(Debug, Clone, Default)]
pub struct BuiltinSchema {
    kind: Option<String>,
}

impl BuiltinSchema {
    /// Rules for a specific kind (used to disambiguate `spec.ports` and to
    /// choose a [`Schema::create_baseline`]).
    pub fn for_kind(kind: &str) -> Self {
        BuiltinSchema {
            kind: Some(kind.to_string()),
        }
    }

    fn is_kind(&self, k: &str) -> bool {
        self.kind.as_deref().is_none_or(|mine| mine == k)
    }
}

fn is_container_list(name: &str) -> bool {
    matches!(name, "containers" | "initContainers" | "ephemeralContainers")
}

impl Schema for BuiltinSchema {
    fn list_kind(&self, path: &[String]) -> ListKind {
        let Some((last, parents)) = path.split_last() else {
            return ListKind::Atomic;
        };
        let parent = parents.last().map(String::as_str);
        let by = |k: &str| ListKind::Map(vec![KeyField::new(k)]);
        match last.as_str() {
            n if is_container_list(n) => by("name"),
            "env" if parent.is_some_and(is_container_list) => by("name"),
            "volumeMounts" if parent.is_some_and(is_container_list) => by("mountPath"),
            "volumeDevices" if parent.is_some_and(is_container_list) => by("devicePath"),
            "ports" if parent.is_some_and(is_container_list) => ListKind::Map(vec![
                KeyField::new("containerPort"),
                KeyField::with_default("protocol", json!("TCP")),
            ]),
            // Service spec.ports: SMP merges by `port`, SSA keys by port+protocol.
            "ports" if parents.len() == 1 && parent == Some("spec") && self.is_kind("Service") => ListKind::Map(vec![
                KeyField::new("port"),
                KeyField::with_default("protocol", json!("TCP")),
            ]),
            "volumes" | "imagePullSecrets" | "schedulingGates" | "resourceClaims" if parent == Some("spec") => {
                by("name")
            }
            "hostAliases" if parent == Some("spec") => by("ip"),
            "topologySpreadConstraints" if parent == Some("spec") => {
                ListKind::Map(vec![KeyField::new("topologyKey"), KeyField::new("whenUnsatisfiable")])
            }
            "conditions" => by("type"),
            "ownerReferences" if parents.len() == 1 && parent == Some("metadata") => by("uid"),
            "finalizers" if parents.len() == 1 && parent == Some("metadata") => ListKind::Set,
            _ => ListKind::Atomic,
        }
    }

    fn map_kind(&self, path: &[String]) -> MapKind {
        if let Some(k) = granular_metadata_map(path) {
            return k;
        }
        let Some((last, parents)) = path.split_last() else {
            return MapKind::Struct;
        };
        let parent = parents.last().map(String::as_str);
        match last.as_str() {
            // LabelSelector is +structType=atomic; Service spec.selector is
            // +mapType=atomic.
            "selector" | "labelSelector" | "namespaceSelector" => MapKind::Atomic,
            "labels" | "annotations" if parent == Some("metadata") => MapKind::Granular,
            "data" | "stringData" | "binaryData" if parents.is_empty() => MapKind::Granular,
            "nodeSelector" if parent == Some("spec") => MapKind::Granular,
            "limits" | "requests" if parent == Some("resources") => MapKind::Granular,
            _ => MapKind::Struct,
        }
    }

    fn create_baseline(&self) -> Value {
        // The JSON form of the Go zero value of each kind (non-omitempty
        // fields only); see Schema::create_baseline.
        let meta = json!({"creationTimestamp": null});
        let template = json!({"metadata": meta, "spec": {"containers": null}});
        match self.kind.as_deref() {
            Some("Deployment") => json!({
                "metadata": meta,
                "spec": {"selector": null, "template": template, "strategy": {}},
                "status": {}
            }),
            Some("ReplicaSet") => json!({
                "metadata": meta,
                "spec": {"selector": null, "template": template},
                "status": {"replicas": 0}
            }),
            Some("StatefulSet") => json!({
                "metadata": meta,
                "spec": {"selector": null, "template": template, "serviceName": "",
                         "updateStrategy": {}},
                "status": {"replicas": 0, "availableReplicas": 0}
            }),
            Some("DaemonSet") => json!({
                "metadata": meta,
                "spec": {"selector": null, "template": template, "updateStrategy": {}},
                "status": {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                           "desiredNumberScheduled": 0, "numberReady": 0}
            }),
            Some("Job") => json!({"metadata": meta, "spec": {"template": template}, "status": {}}),
            Some("Pod") => json!({"metadata": meta, "spec": {"containers": null}, "status": {}}),
            Some("Service") => {
                json!({"metadata": meta, "spec": {}, "status": {"loadBalancer": {}}})
            }
            Some("Namespace") => json!({"metadata": meta, "spec": {}, "status": {}}),
            Some(_) => json!({"metadata": meta}),
            None => json!({}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn ports_depend_on_context() {
        let s = BuiltinSchema::for_kind("Deployment");
        match s.list_kind(&p(&["spec", "template", "spec", "containers", "ports"])) {
            ListKind::Map(keys) => assert_eq!(keys[0].name, "containerPort"),
            other => panic!("{other:?}"),
        }
        assert_eq!(s.list_kind(&p(&["spec", "ports"])), ListKind::Atomic);
        let svc = BuiltinSchema::for_kind("Service");
        match svc.list_kind(&p(&["spec", "ports"])) {
            ListKind::Map(keys) => assert_eq!(keys[0].name, "port"),
            other => panic!("{other:?}"),
        }
        assert_eq!(svc.list_kind(&p(&["metadata", "finalizers"])), ListKind::Set);
        assert_eq!(
            svc.list_kind(&p(&["spec", "template", "spec", "containers", "args"])),
            ListKind::Atomic
        );
        assert_eq!(
            AtomicListsSchema.list_kind(&p(&["spec", "containers"])),
            ListKind::Atomic
        );
    }
}

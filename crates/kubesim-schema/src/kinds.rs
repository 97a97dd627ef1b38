//! The resource types kubesim serves out of the box.
//!
//! Custom resource types are built at runtime from CustomResourceDefinitions with the same
//! [`ResourceType`] struct, so the server treats both alike.

use serde_json::{Value, json};

/// One servable resource (a `group/version/plural` endpoint) and what discovery says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// API group, empty for core.
    pub group: String,
    /// Version, e.g. `v1`.
    pub version: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Lower-case plural used in URLs, e.g. `deployments`.
    pub plural: String,
    /// Lower-case singular, e.g. `deployment`.
    pub singular: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// kubectl short names (`deploy`, `cm`, ...).
    pub short_names: Vec<String>,
    /// Categories such as `all`.
    pub categories: Vec<String>,
    /// Whether a `/status` subresource is served.
    pub status_subresource: bool,
    /// Whether a `/scale` subresource is served.
    pub scale_subresource: bool,
}

impl ResourceType {
    /// `group/version`, or just `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Verbs reported by discovery.
    pub fn verbs(&self) -> Vec<&'static str> {
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }

    /// The `APIResource` discovery entry (as in `/apis/{group}/{version}`).
    pub fn api_resource(&self) -> Value {
        let mut v = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": self.verbs(),
        });
        if !self.short_names.is_empty() {
            v["shortNames"] = json!(self.short_names);
        }
        if !self.categories.is_empty() {
            v["categories"] = json!(self.categories);
        }
        v
    }
}

struct Spec {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    all: bool,
    status: bool,
    scale: bool,
}

#[rustfmt::skip]
const BUILTIN: &[Spec] = &[
    Spec { group: "", version: "v1", kind: "Namespace", plural: "namespaces", namespaced: false, short: &["ns"], all: false, status: true, scale: false },
    Spec { group: "", version: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true, short: &["cm"], all: false, status: false, scale: false },
    Spec { group: "", version: "v1", kind: "Secret", plural: "secrets", namespaced: true, short: &[], all: false, status: false, scale: false },
    Spec { group: "", version: "v1", kind: "Service", plural: "services", namespaced: true, short: &["svc"], all: true, status: true, scale: false },
    Spec { group: "", version: "v1", kind: "ServiceAccount", plural: "serviceaccounts", namespaced: true, short: &["sa"], all: false, status: false, scale: false },
    Spec { group: "", version: "v1", kind: "Pod", plural: "pods", namespaced: true, short: &["po"], all: true, status: true, scale: false },
    Spec { group: "", version: "v1", kind: "PersistentVolumeClaim", plural: "persistentvolumeclaims", namespaced: true, short: &["pvc"], all: false, status: true, scale: false },
    Spec { group: "", version: "v1", kind: "Endpoints", plural: "endpoints", namespaced: true, short: &["ep"], all: false, status: false, scale: false },
    Spec { group: "", version: "v1", kind: "Event", plural: "events", namespaced: true, short: &["ev"], all: false, status: false, scale: false },
    Spec { group: "apps", version: "v1", kind: "Deployment", plural: "deployments", namespaced: true, short: &["deploy"], all: true, status: true, scale: true },
    Spec { group: "apps", version: "v1", kind: "StatefulSet", plural: "statefulsets", namespaced: true, short: &["sts"], all: true, status: true, scale: true },
    Spec { group: "apps", version: "v1", kind: "DaemonSet", plural: "daemonsets", namespaced: true, short: &["ds"], all: true, status: true, scale: false },
    Spec { group: "apps", version: "v1", kind: "ReplicaSet", plural: "replicasets", namespaced: true, short: &["rs"], all: true, status: true, scale: true },
    Spec { group: "batch", version: "v1", kind: "Job", plural: "jobs", namespaced: true, short: &[], all: true, status: true, scale: false },
    Spec { group: "batch", version: "v1", kind: "CronJob", plural: "cronjobs", namespaced: true, short: &["cj"], all: true, status: true, scale: false },
    Spec { group: "networking.k8s.io", version: "v1", kind: "Ingress", plural: "ingresses", namespaced: true, short: &["ing"], all: false, status: true, scale: false },
    Spec { group: "networking.k8s.io", version: "v1", kind: "NetworkPolicy", plural: "networkpolicies", namespaced: true, short: &["netpol"], all: false, status: false, scale: false },
    Spec { group: "rbac.authorization.k8s.io", version: "v1", kind: "Role", plural: "roles", namespaced: true, short: &[], all: false, status: false, scale: false },
    Spec { group: "rbac.authorization.k8s.io", version: "v1", kind: "RoleBinding", plural: "rolebindings", namespaced: true, short: &[], all: false, status: false, scale: false },
    Spec { group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRole", plural: "clusterroles", namespaced: false, short: &[], all: false, status: false, scale: false },
    Spec { group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRoleBinding", plural: "clusterrolebindings", namespaced: false, short: &[], all: false, status: false, scale: false },
    Spec { group: "policy", version: "v1", kind: "PodDisruptionBudget", plural: "poddisruptionbudgets", namespaced: true, short: &["pdb"], all: false, status: true, scale: false },
    Spec { group: "autoscaling", version: "v2", kind: "HorizontalPodAutoscaler", plural: "horizontalpodautoscalers", namespaced: true, short: &["hpa"], all: true, status: true, scale: false },
    Spec { group: "coordination.k8s.io", version: "v1", kind: "Lease", plural: "leases", namespaced: true, short: &[], all: false, status: false, scale: false },
    Spec { group: "apiextensions.k8s.io", version: "v1", kind: "CustomResourceDefinition", plural: "customresourcedefinitions", namespaced: false, short: &["crd", "crds"], all: false, status: true, scale: false },
];

/// All built-in resource types, in a stable order (core first, then by group as listed).
pub fn builtin_types() -> Vec<ResourceType> {
    BUILTIN
        .iter()
        .map(|s| ResourceType {
            group: s.group.to_owned(),
            version: s.version.to_owned(),
            kind: s.kind.to_owned(),
            plural: s.plural.to_owned(),
            singular: s.kind.to_ascii_lowercase(),
            namespaced: s.namespaced,
            short_names: s.short.iter().map(|s| (*s).to_owned()).collect(),
            categories: if s.all { vec!["all".to_owned()] } else { vec![] },
            status_subresource: s.status,
            scale_subresource: s.scale,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_types_are_unique_by_group_and_plural() {
        let types = builtin_types();
        let mut seen = std::collections::HashSet::new();
        for t in &types {
            assert!(seen.insert((t.group.clone(), t.plural.clone())), "{t:?}");
        }
        assert!(
            types
                .iter()
                .any(|t| t.kind == "Deployment" && t.api_version() == "apps/v1")
        );
    }
}

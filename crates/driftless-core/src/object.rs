//! Object identity and the desired set produced by rendering.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Identity of a Kubernetes object as driftless tracks it.
///
/// The API version is deliberately not part of the identity: `apps/v1 Deployment` and a
/// future `apps/v2 Deployment` name the same object, so only the group is kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    /// API group, empty for the core group.
    pub group: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Namespace, `None` for cluster-scoped objects (or namespaced objects whose namespace
    /// is filled in later from the application's default namespace).
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectRef {
    /// Builds a reference from a Kubernetes object (`apiVersion`, `kind`, `metadata`).
    /// Returns `None` when `apiVersion`, `kind` or `metadata.name` is missing.
    pub fn from_object(obj: &Value) -> Option<ObjectRef> {
        let api_version = obj.get("apiVersion")?.as_str()?;
        let kind = obj.get("kind")?.as_str()?;
        let meta = obj.get("metadata")?;
        let name = meta.get("name")?.as_str()?;
        let namespace = meta
            .get("namespace")
            .and_then(Value::as_str)
            .filter(|ns| !ns.is_empty())
            .map(str::to_owned);
        Some(ObjectRef {
            group: group_of(api_version).to_owned(),
            kind: kind.to_owned(),
            namespace,
            name: name.to_owned(),
        })
    }
}

/// The group part of an `apiVersion` (`apps/v1` -> `apps`, `v1` -> ``).
pub fn group_of(api_version: &str) -> &str {
    match api_version.rsplit_once('/') {
        Some((group, _)) => group,
        None => "",
    }
}

impl fmt::Display for ObjectRef {
    /// kubectl-like: `Deployment/web/frontend` (namespaced) or `ClusterRole/admin`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// Where a rendered object came from, for error messages (`file:line`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// Path relative to the repository root (or a renderer name such as `kustomize:apps/web`).
    pub file: String,
    /// 1-based line of the document start within `file`; 0 when unknown.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}", self.file, self.line)
        } else {
            f.write_str(&self.file)
        }
    }
}

/// One object the application declares, with where it was declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredObject {
    /// The full object as rendered (a JSON object with apiVersion, kind, metadata, ...).
    pub object: Value,
    /// Where it came from.
    pub origin: Origin,
}

impl DesiredObject {
    /// The object's identity; `None` if the object lacks apiVersion/kind/metadata.name
    /// (renderers reject such documents, so this is `Some` for rendered objects).
    pub fn object_ref(&self) -> Option<ObjectRef> {
        ObjectRef::from_object(&self.object)
    }
}

/// Everything an application declares at one revision, in render order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DesiredSet {
    /// Rendered objects in a deterministic order (the renderer's order).
    pub objects: Vec<DesiredObject>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn object_ref_from_namespaced_and_cluster_objects() {
        let d = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"prod"}});
        let r = ObjectRef::from_object(&d).unwrap();
        assert_eq!(r.group, "apps");
        assert_eq!(r.to_string(), "Deployment/prod/web");
        let c = json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"prod"}});
        let r = ObjectRef::from_object(&c).unwrap();
        assert_eq!(r.group, "");
        assert_eq!(r.to_string(), "Namespace/prod");
        assert!(ObjectRef::from_object(&json!({"kind":"X"})).is_none());
    }
}

//! From rendered objects to objects ready to apply: each kind resolved through discovery,
//! namespaces filled in from the app's destination, and the inventory label added.

use driftless_cluster::{ClusterClient, ClusterError, Resolved};
use driftless_core::spec::Application;
use driftless_core::{DesiredObject, ObjectRef};
use serde_json::{Value, json};

/// Label on every applied object naming the application that owns it; the inventory can be
/// rebuilt from it if the store is lost.
pub const APP_LABEL: &str = "driftless.dev/app";

/// One desired object, ready for the cluster.
#[derive(Debug, Clone)]
pub struct PreparedObject {
    /// The object (namespace filled, label added).
    pub desired: DesiredObject,
    /// How to reach it; `None` when its CRD is part of the same desired set and not served yet.
    pub resolved: Option<Resolved>,
}

/// The desired set, prepared.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// Objects in render order.
    pub objects: Vec<PreparedObject>,
    /// The destination namespace, when the app asks for it to be created and it is missing.
    pub create_namespace: Option<String>,
}

impl Prepared {
    /// The prepared object with this identity.
    pub fn find(&self, r: &ObjectRef) -> Option<&PreparedObject> {
        self.objects.iter().find(|p| p.desired.object_ref().as_ref() == Some(r))
    }
}

/// Whether a CRD in `objects` defines `group`/`kind`, and if so whether it is namespaced.
fn crd_scope(objects: &[DesiredObject], group: &str, kind: &str) -> Option<bool> {
    objects.iter().find_map(|o| {
        let obj = &o.object;
        let is_crd = obj.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition");
        let matches = obj.pointer("/spec/group").and_then(Value::as_str) == Some(group)
            && obj.pointer("/spec/names/kind").and_then(Value::as_str) == Some(kind);
        (is_crd && matches).then(|| obj.pointer("/spec/scope").and_then(Value::as_str) != Some("Cluster"))
    })
}

/// Resolves every object's kind and fills namespaces and labels.
pub async fn prepare(
    app: &Application,
    cluster: &ClusterClient,
    objects: Vec<DesiredObject>,
) -> Result<Prepared, ClusterError> {
    let dest_ns = app.spec.destination.namespace.clone();
    let mut out = Prepared::default();
    for mut d in objects.iter().cloned() {
        let api_version = d
            .object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let kind = d.object.get("kind").and_then(Value::as_str).unwrap_or("").to_owned();
        let group = driftless_core::object::group_of(&api_version).to_owned();
        let (resolved, namespaced) = match cluster.resolve(&api_version, &kind).await {
            Ok(r) => {
                let ns = r.namespaced;
                (Some(r), ns)
            }
            Err(ClusterError::KindNotServed { .. }) if crd_scope(&objects, &group, &kind).is_some() => {
                (None, crd_scope(&objects, &group, &kind).unwrap_or(true))
            }
            Err(e) => return Err(e),
        };
        let Some(meta) = d.object.get_mut("metadata").and_then(Value::as_object_mut) else {
            continue;
        };
        if namespaced {
            let has_ns = meta
                .get("namespace")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty());
            if !has_ns {
                meta.insert("namespace".into(), json!(dest_ns));
            }
        } else {
            // kube-apiserver ignores a namespace on cluster-scoped objects; dropping it keeps
            // the object's identity (and the inventory) right.
            meta.remove("namespace");
        }
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.insert(APP_LABEL.into(), json!(app.metadata.name));
        }
        out.objects.push(PreparedObject { desired: d, resolved });
    }
    if app.spec.sync_policy.create_namespace {
        let declared = out.objects.iter().any(|p| {
            p.desired.object.get("kind").and_then(Value::as_str) == Some("Namespace")
                && p.desired.object.pointer("/metadata/name").and_then(Value::as_str) == Some(dest_ns.as_str())
        });
        if !declared {
            let ns = cluster.resolve("v1", "Namespace").await?;
            if cluster.get(&ns, None, &dest_ns).await?.is_none() {
                out.create_namespace = Some(dest_ns);
            }
        }
    }
    Ok(out)
}

/// Creates the destination namespace (not part of the inventory: deleting an app never
/// deletes a namespace it did not declare — THREATS: a shared namespace deleted with one app).
pub async fn ensure_namespace(cluster: &ClusterClient, ns: &str, app: &str) -> Result<(), ClusterError> {
    let r = cluster.resolve("v1", "Namespace").await?;
    let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "annotations": {"driftless.dev/created-for": app}}});
    cluster.apply(&r, &obj, false, false).await.map(|_| ())
}

/// Finds how to reach an inventory entry (which records group and kind, not version).
pub async fn resolve_ref(cluster: &ClusterClient, r: &ObjectRef) -> Result<Option<Resolved>, ClusterError> {
    Ok(cluster
        .resolved_kinds()
        .await?
        .into_iter()
        .find(|k| k.api_resource.group == r.group && k.api_resource.kind == r.kind))
}

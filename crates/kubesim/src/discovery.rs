//! Discovery documents: `/version`, `/api`, `/apis`, per group-version resource lists, and the
//! aggregated (apidiscovery.k8s.io/v2) form that kubectl 1.26+ and kube-rs ask for first.

use std::collections::BTreeMap;
use std::sync::Arc;

use kubesim_schema::ResourceType;
use serde_json::{Value, json};

/// Media type of aggregated discovery responses.
pub const AGGREGATED_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether the request's Accept header asks for aggregated discovery (v2).
pub fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let p: Vec<&str> = part.split(';').map(str::trim).collect();
        p.contains(&"g=apidiscovery.k8s.io") && p.contains(&"v=v2") && p.contains(&"as=APIGroupDiscoveryList")
    })
}

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-kubesim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// Groups in discovery order: the order kube-apiserver uses for the built-in groups, then
/// custom groups alphabetically. The order matters: clients pick the first group serving a
/// kind when a short name is ambiguous.
fn group_rank(group: &str) -> (usize, String) {
    const ORDER: &[&str] = &[
        "",
        "apps",
        "batch",
        "autoscaling",
        "networking.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
        "coordination.k8s.io",
        "apiextensions.k8s.io",
    ];
    match ORDER.iter().position(|g| *g == group) {
        Some(i) => (i, String::new()),
        None => (ORDER.len(), group.to_owned()),
    }
}

/// A group's types by version.
type Versions = BTreeMap<String, Vec<Arc<ResourceType>>>;

/// Types grouped as group -> version -> types, in discovery order.
fn by_group<'a>(types: impl Iterator<Item = &'a Arc<ResourceType>>) -> Vec<(String, Versions)> {
    let mut groups: BTreeMap<(usize, String), (String, Versions)> = BTreeMap::new();
    for t in types {
        let e = groups
            .entry(group_rank(&t.group))
            .or_insert_with(|| (t.group.clone(), BTreeMap::new()));
        e.1.entry(t.version.clone()).or_default().push(t.clone());
    }
    groups.into_values().collect()
}

/// Versions of a group, preferred first (v2 > v1 > v1beta1 > v1alpha1, as Kubernetes sorts).
fn sorted_versions(versions: &BTreeMap<String, Vec<Arc<ResourceType>>>) -> Vec<String> {
    let mut v: Vec<String> = versions.keys().cloned().collect();
    v.sort_by_key(|s| std::cmp::Reverse(version_priority(s)));
    v
}

fn version_priority(v: &str) -> (u32, u32, u32) {
    // (stability, major, minor): GA > beta > alpha > other
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let major = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        (3, major, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, major, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, major, n.parse().unwrap_or(0))
    } else {
        (0, major, 0)
    }
}

/// `/api` (legacy form).
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

/// `/apis` (legacy form).
pub fn api_group_list<'a>(types: impl Iterator<Item = &'a Arc<ResourceType>>) -> Value {
    let groups: Vec<Value> = by_group(types)
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, versions)| api_group(&g, &versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn api_group(group: &str, versions: &BTreeMap<String, Vec<Arc<ResourceType>>>) -> Value {
    let sorted = sorted_versions(versions);
    let vs: Vec<Value> = sorted
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
    })
}

/// `/apis/{group}` (legacy form).
pub fn single_group<'a>(types: impl Iterator<Item = &'a Arc<ResourceType>>, group: &str) -> Option<Value> {
    by_group(types)
        .into_iter()
        .find(|(g, _)| g == group)
        .map(|(g, versions)| {
            let mut v = api_group(&g, &versions);
            v["kind"] = json!("APIGroup");
            v["apiVersion"] = json!("v1");
            v
        })
}

/// `/api/v1` or `/apis/{group}/{version}`: an APIResourceList including subresources.
pub fn resource_list<'a>(
    types: impl Iterator<Item = &'a Arc<ResourceType>>,
    group: &str,
    version: &str,
) -> Option<Value> {
    let matching: Vec<&Arc<ResourceType>> = types.filter(|t| t.group == group && t.version == version).collect();
    if matching.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for t in matching {
        resources.push(t.api_resource());
        if t.status_subresource {
            resources.push(json!({"name": format!("{}/status", t.plural), "singularName": "", "namespaced": t.namespaced, "kind": t.kind, "verbs": ["get", "patch", "update"]}));
        }
        if t.scale_subresource {
            resources.push(json!({"name": format!("{}/scale", t.plural), "singularName": "", "namespaced": t.namespaced, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
        }
    }
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
}

/// Aggregated discovery for `/api` (`core = true`) or `/apis`.
pub fn aggregated<'a>(types: impl Iterator<Item = &'a Arc<ResourceType>>, core: bool) -> Value {
    let items: Vec<Value> = by_group(types)
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, versions)| {
            let vs: Vec<Value> = sorted_versions(&versions)
                .into_iter()
                .map(|v| {
                    let resources: Vec<Value> = versions[&v].iter().map(|t| aggregated_resource(t)).collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": vs})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

fn aggregated_resource(t: &ResourceType) -> Value {
    let kind = json!({"group": t.group, "version": t.version, "kind": t.kind});
    let mut subs = Vec::new();
    if t.status_subresource {
        subs.push(json!({"subresource": "status", "responseKind": kind, "verbs": ["get", "patch", "update"]}));
    }
    if t.scale_subresource {
        subs.push(json!({"subresource": "scale", "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"}, "verbs": ["get", "patch", "update"]}));
    }
    let mut r = json!({
        "resource": t.plural,
        "responseKind": kind,
        "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": t.singular,
        "verbs": t.verbs(),
    });
    if !t.short_names.is_empty() {
        r["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        r["categories"] = json!(t.categories);
    }
    if !subs.is_empty() {
        r["subresources"] = Value::Array(subs);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubesim_schema::builtin_types;

    #[test]
    fn aggregated_accept_detection() {
        assert!(wants_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        ));
        assert!(!wants_aggregated("application/json"));
        assert!(!wants_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
        ));
    }

    #[test]
    fn discovery_lists_groups_and_subresources() {
        let types: Vec<Arc<ResourceType>> = builtin_types().into_iter().map(Arc::new).collect();
        let groups = api_group_list(types.iter());
        let names: Vec<&str> = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap())
            .collect();
        assert_eq!(names[0], "apps");
        assert!(names.contains(&"apiextensions.k8s.io"));
        let apps = resource_list(types.iter(), "apps", "v1").unwrap();
        let rs: Vec<&str> = apps["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(rs.contains(&"deployments") && rs.contains(&"deployments/status") && rs.contains(&"deployments/scale"));
        let agg = aggregated(types.iter(), true);
        assert_eq!(agg["items"][0]["metadata"]["name"], "");
        assert!(
            version_priority("v2") > version_priority("v1") && version_priority("v1") > version_priority("v1beta1")
        );
    }
}

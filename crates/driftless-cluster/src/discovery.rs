//! Which kinds the cluster serves, cached.
//!
//! Two caches, because the two questions differ in cost:
//!
//! * [`crate::ClusterClient::resolve`] asks about one `apiVersion`. Its answer comes from a
//!   per-group-version cache of `APIResourceList`s; a miss (the group-version was never
//!   fetched, or the kind is not in it) refetches just that group-version — one request —
//!   and looks again. That is the "refresh once on a miss" that lets a CRD applied a moment
//!   ago be found, without re-running full discovery for every unknown kind in a render.
//!   The `apiVersion` requested is the one used, not the group's preferred version: the
//!   object is written in that version.
//! * [`crate::ClusterClient::resolved_kinds`] needs every listable kind: full discovery
//!   (core `v1` plus each group's preferred version), cached until
//!   [`crate::ClusterClient::refresh_discovery`] or a CRD wait invalidates it.
//!
//! Group and version strings come from manifests, so they are checked before being put in a
//! URL path.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use kube::discovery::ApiResource;

/// A kind the cluster serves, resolved through discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// Group, version, kind and plural (the URL segment).
    pub api_resource: ApiResource,
    /// Whether objects of this kind live in namespaces.
    pub namespaced: bool,
}

impl Resolved {
    /// Builds a `Resolved` without discovery (for well-known kinds and tests).
    pub fn new(api_resource: ApiResource, namespaced: bool) -> Resolved {
        Resolved {
            api_resource,
            namespaced,
        }
    }

    /// `Deployment`.
    pub fn kind(&self) -> &str {
        &self.api_resource.kind
    }

    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> &str {
        &self.api_resource.api_version
    }

    /// The API group, empty for the core group.
    pub fn group(&self) -> &str {
        &self.api_resource.group
    }

    /// The plural resource name used in URLs (`deployments`).
    pub fn plural(&self) -> &str {
        &self.api_resource.plural
    }

    /// `CustomResourceDefinition` in `apiextensions.k8s.io/v1`.
    pub fn custom_resource_definition() -> Resolved {
        Resolved::new(
            ApiResource {
                group: "apiextensions.k8s.io".into(),
                version: "v1".into(),
                api_version: "apiextensions.k8s.io/v1".into(),
                kind: "CustomResourceDefinition".into(),
                plural: "customresourcedefinitions".into(),
            },
            false,
        )
    }

    /// The collection URL path, in `namespace` when given.
    pub(crate) fn collection_path(&self, namespace: Option<&str>) -> String {
        let ar = &self.api_resource;
        let base = if ar.group.is_empty() {
            format!("/api/{}", ar.version)
        } else {
            format!("/apis/{}/{}", ar.group, ar.version)
        };
        match namespace {
            Some(ns) => format!("{base}/namespaces/{ns}/{}", ar.plural),
            None => format!("{base}/{}", ar.plural),
        }
    }
}

/// One top-level resource of a group-version, with the verbs it supports.
#[derive(Clone, Debug)]
pub(crate) struct Served {
    pub(crate) resolved: Resolved,
    pub(crate) verbs: Vec<String>,
}

/// The discovery caches shared by clones of a client.
#[derive(Default)]
pub(crate) struct Cache {
    by_api_version: RwLock<HashMap<String, Arc<Vec<Served>>>>,
    all: RwLock<Option<Arc<Vec<Resolved>>>>,
}

impl Cache {
    /// The cached resource of `kind` in `api_version`, if any.
    pub(crate) fn lookup(&self, api_version: &str, kind: &str) -> Option<Resolved> {
        let map = self.by_api_version.read().unwrap_or_else(|e| e.into_inner());
        map.get(api_version)?
            .iter()
            .find(|s| s.resolved.kind() == kind)
            .map(|s| s.resolved.clone())
    }

    pub(crate) fn store_version(&self, api_version: &str, served: Vec<Served>) {
        self.by_api_version
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(api_version.to_owned(), Arc::new(served));
    }

    pub(crate) fn all(&self) -> Option<Arc<Vec<Resolved>>> {
        self.all.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn store_all(&self, all: Vec<Resolved>) -> Arc<Vec<Resolved>> {
        let all = Arc::new(all);
        *self.all.write().unwrap_or_else(|e| e.into_inner()) = Some(all.clone());
        all
    }

    /// Forgets everything; the next questions go to the API server.
    pub(crate) fn clear(&self) {
        self.by_api_version.write().unwrap_or_else(|e| e.into_inner()).clear();
        self.invalidate_all();
    }

    /// Forgets the full list only (new kinds appeared).
    pub(crate) fn invalidate_all(&self) {
        *self.all.write().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Splits an `apiVersion` into (group, version) when both are well-formed DNS-ish names:
/// `v1` → `("", "v1")`, `apps/v1` → `("apps", "v1")`. Anything else (empty parts, extra
/// slashes, characters that do not belong in a URL path) is `None`.
pub(crate) fn split_api_version(api_version: &str) -> Option<(&str, &str)> {
    let (group, version, has_group) = match api_version.split_once('/') {
        Some((g, v)) => (g, v, true),
        None => ("", api_version, false),
    };
    let dns_ok = |s: &str, dots: bool| {
        let alnum = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        alnum(s.bytes().next())
            && alnum(s.bytes().last())
            && s.len() <= 253
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || (dots && b == b'.'))
    };
    let group_ok = if has_group { dns_ok(group, true) } else { true };
    (group_ok && dns_ok(version, false)).then_some((group, version))
}

/// Converts an `APIResourceList` into the top-level resources it lists.
pub(crate) fn parse_resource_list(
    group: &str,
    version: &str,
    list: &k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList,
) -> Vec<Served> {
    let api_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    list.resources
        .iter()
        // Subresources (`deployments/status`) are not kinds of their own.
        .filter(|r| !r.name.contains('/'))
        .map(|r| Served {
            resolved: Resolved::new(
                ApiResource {
                    group: r.group.clone().unwrap_or_else(|| group.to_owned()),
                    version: r.version.clone().unwrap_or_else(|| version.to_owned()),
                    api_version: match (&r.group, &r.version) {
                        (Some(g), Some(v)) if g.is_empty() => v.clone(),
                        (Some(g), Some(v)) => format!("{g}/{v}"),
                        _ => api_version.clone(),
                    },
                    kind: r.kind.clone(),
                    plural: r.name.clone(),
                },
                r.namespaced,
            ),
            verbs: r.verbs.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_are_checked_before_use_in_urls() {
        assert_eq!(split_api_version("v1"), Some(("", "v1")));
        assert_eq!(split_api_version("apps/v1"), Some(("apps", "v1")));
        assert_eq!(
            split_api_version("example.com/v1alpha1"),
            Some(("example.com", "v1alpha1"))
        );
        for bad in [
            "",
            "/v1",
            "apps/",
            "a/b/c",
            "../v1",
            "apps/v1?x=1",
            "Apps/v1",
            "apps/v.1",
        ] {
            assert_eq!(split_api_version(bad), None, "{bad}");
        }
    }

    #[test]
    fn collection_paths() {
        let crd = Resolved::custom_resource_definition();
        assert_eq!(
            crd.collection_path(None),
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        );
        let cm = Resolved::new(
            ApiResource {
                group: String::new(),
                version: "v1".into(),
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                plural: "configmaps".into(),
            },
            true,
        );
        assert_eq!(
            cm.collection_path(Some("default")),
            "/api/v1/namespaces/default/configmaps"
        );
    }
}

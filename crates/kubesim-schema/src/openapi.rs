//! OpenAPI v3 documents (`/openapi/v3` and `/openapi/v3/{api|apis/group}/{version}`), shaped the
//! way kube-apiserver 1.32 serves them, for any list of [`ResourceType`]s (built-in or custom).
//!
//! # What kubectl 1.32 actually reads
//!
//! * `GET /openapi/v3` — an index `{"paths": {"apis/apps/v1": {"serverRelativeURL": ...}}}`.
//!   The key is the group-version path without a leading slash; the URL carries a `hash` query
//!   parameter that kubectl uses as a cache key (its disk cache treats the URL as immutable), so
//!   the hash must change whenever the document does: we hash the document's serialized bytes.
//! * `GET <serverRelativeURL>` — the group-version document. kubectl's field-validation
//!   verifier (`QueryParamVerifierV3`) walks `paths`, takes the **PATCH operation** whose
//!   `x-kubernetes-group-version-kind` equals the object's GVK and looks for a parameter named
//!   `fieldValidation` among the **operation's** parameters. Go map iteration order is random,
//!   so *every* PATCH operation tagged with a kind (the item path and its `/status` path) lists
//!   `fieldValidation`; otherwise kubectl would fall back to client-side validation, which needs
//!   `/openapi/v2` (protobuf) and fails with "failed to download openapi".
//! * Client-side `kubectl apply` looks for a PATCH operation accepting
//!   `application/strategic-merge-patch+json` and then for a component schema carrying
//!   `x-kubernetes-group-version-kind` for the kind. It dereferences `components` without a nil
//!   check (an absent `components` prints "OpenAPI V3 Components is nil"), so `components.schemas`
//!   is always present. **No component schema carries `x-kubernetes-group-version-kind`**: a
//!   hand-written schema missing a `x-kubernetes-patch-merge-key` would make kubectl compute a
//!   wrong strategic merge patch, whereas without one kubectl falls back to its compiled-in Go
//!   types (built-in kinds) or a JSON merge patch (custom kinds) — exactly what it does against
//!   a real server for custom resources. The component schemas are therefore minimal
//!   (`type: object`, unknown fields preserved) and exist only so every `$ref` resolves.
//!
//! Custom resources do not accept strategic merge patches, so their PATCH request bodies omit
//! that media type, as the real server does.

use serde_json::{Map, Value, json};

use crate::kinds::ResourceType;

/// Version reported in `info.version` of every document.
pub const KUBERNETES_VERSION: &str = "v1.32.0";

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";

/// The URL path (no leading slash) of a group-version: `api/v1` or `apis/{group}/{version}`.
pub fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The distinct `(group, version)` pairs of `types`, in first-seen order.
pub fn group_versions(types: &[ResourceType]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for t in types {
        if !out.iter().any(|(g, v)| *g == t.group && *v == t.version) {
            out.push((t.group.clone(), t.version.clone()));
        }
    }
    out
}

/// The `/openapi/v3` index: one entry per group-version of `types`, each pointing at
/// `/openapi/v3/{path}?hash={hash}` where the hash is [`document_hash`] of that group-version's
/// document. Core (`api/v1`) sorts first, then the rest by path, as the real server lists them.
pub fn openapi_v3_index(types: &[ResourceType]) -> Value {
    let mut gvs = group_versions(types);
    gvs.sort_by_key(|(g, v)| (!g.is_empty(), group_version_path(g, v)));
    let mut paths = Map::new();
    for (g, v) in gvs {
        let Some(doc) = openapi_v3_group_version(types, &g, &v) else {
            continue;
        };
        let path = group_version_path(&g, &v);
        let url = format!("/openapi/v3/{path}?hash={}", document_hash(&doc));
        paths.insert(path, json!({ "serverRelativeURL": url }));
    }
    json!({ "paths": paths })
}

/// The OpenAPI v3 document of one group-version, or `None` if no type of `types` belongs to it.
///
/// For every resource it lists, in the real server's layout: the collection path (list,
/// create, deletecollection), the item path (read, replace, patch, delete), `/status` and
/// `/scale` when those subresources are served, the all-namespaces list path for namespaced
/// resources, and the deprecated `watch/` paths. Each operation carries `operationId`,
/// `x-kubernetes-action`, `x-kubernetes-group-version-kind` and its query parameters.
pub fn openapi_v3_group_version(types: &[ResourceType], group: &str, version: &str) -> Option<Value> {
    let members: Vec<&ResourceType> = types
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if members.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for t in &members {
        add_resource_paths(&mut paths, t);
        let name = schema_name(t);
        schemas.insert(
            name.clone(),
            minimal_schema(&format!("{} is served by kubesim.", t.kind)),
        );
        schemas.insert(
            format!("{name}List"),
            minimal_schema(&format!("{}List is a list of {}.", t.kind, t.kind)),
        );
        if t.scale_subresource {
            schemas.insert(
                SCALE_SCHEMA.to_owned(),
                minimal_schema("Scale represents a scaling request for a resource."),
            );
        }
    }
    for (name, desc) in [
        (
            "DeleteOptions",
            "DeleteOptions may be provided when deleting an API object.",
        ),
        (
            "Patch",
            "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.",
        ),
        (
            "Status",
            "Status is a return value for calls that don't return other objects.",
        ),
        ("WatchEvent", "Event represents a single event to a watched resource."),
    ] {
        schemas.insert(format!("{META}.{name}"), minimal_schema(desc));
    }
    let mut sorted: Vec<(String, Value)> = schemas.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": KUBERNETES_VERSION },
        "paths": paths,
        "components": { "schemas": sorted.into_iter().collect::<Map<_, _>>() },
    }))
}

/// A deterministic content hash of a document (128-bit FNV-1a over its compact JSON
/// serialization, upper-case hex), used as the `hash` query parameter in the index.
pub fn document_hash(doc: &Value) -> String {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let bytes = serde_json::to_vec(doc).unwrap_or_default();
    let mut h = OFFSET;
    for b in bytes {
        h ^= u128::from(b);
        h = h.wrapping_mul(PRIME);
    }
    format!("{h:032X}")
}

const SCALE_SCHEMA: &str = "io.k8s.api.autoscaling.v1.Scale";

fn minimal_schema(description: &str) -> Value {
    json!({
        "description": description,
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Whether a type is one of the compiled-in kinds (as opposed to a custom resource).
fn is_builtin(t: &ResourceType) -> bool {
    crate::kinds::builtin_types()
        .iter()
        .any(|b| b.group == t.group && b.version == t.version && b.plural == t.plural)
}

/// The component schema name the real server uses, e.g. `io.k8s.api.apps.v1.Deployment`, or
/// the reversed group for custom resources (`com.example.stable.v1.CronTab`).
pub fn schema_name(t: &ResourceType) -> String {
    if is_builtin(t) {
        let pkg = match t.group.as_str() {
            "" => "io.k8s.api.core".to_owned(),
            "apiextensions.k8s.io" => "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions".to_owned(),
            g => format!(
                "io.k8s.api.{}",
                g.strip_suffix(".k8s.io").unwrap_or(g).split('.').next().unwrap_or(g)
            ),
        };
        format!("{pkg}.{}.{}", t.version, t.kind)
    } else {
        let mut parts: Vec<&str> = t.group.split('.').filter(|s| !s.is_empty()).collect();
        parts.reverse();
        let mut name = parts.join(".");
        if !name.is_empty() {
            name.push('.');
        }
        format!("{name}{}.{}", t.version, t.kind)
    }
}

fn upper_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `Apps`, `Core`, `RbacAuthorization`, `StableExampleCom`.
fn group_camel(t: &ResourceType) -> String {
    let group = if t.group.is_empty() {
        "core"
    } else {
        t.group.strip_suffix(".k8s.io").unwrap_or(&t.group)
    };
    group.split(['.', '-']).map(upper_first).collect()
}

/// `AppsV1`, `CoreV1`, `RbacAuthorizationV1`, `StableExampleComV1` (operationId infix).
fn op_prefix(t: &ResourceType) -> String {
    format!("{}{}", group_camel(t), upper_first(&t.version))
}

/// `apps_v1`, `core_v1`, `rbacAuthorization_v1`.
fn tag(t: &ResourceType) -> String {
    let g = group_camel(t);
    let mut chars = g.chars();
    let lower: String = match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    format!("{lower}_{}", t.version)
}

fn param(name: &str, location: &str, ty: &str, description: &str) -> Value {
    let mut p = Map::new();
    if !description.is_empty() {
        p.insert("description".into(), json!(description));
    }
    p.insert("in".into(), json!(location));
    p.insert("name".into(), json!(name));
    if location == "path" {
        p.insert("required".into(), json!(true));
    }
    p.insert("schema".into(), json!({ "type": ty, "uniqueItems": true }));
    Value::Object(p)
}

fn q(name: &str) -> Value {
    let (ty, desc) = match name {
        "allowWatchBookmarks" => (
            "boolean",
            "allowWatchBookmarks requests watch events with type \"BOOKMARK\".",
        ),
        "continue" => (
            "string",
            "The continue option should be set when retrieving more results from the server.",
        ),
        "dryRun" => (
            "string",
            "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
        ),
        "fieldManager" => (
            "string",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
        ),
        "fieldSelector" => (
            "string",
            "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
        ),
        "fieldValidation" => (
            "string",
            "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict",
        ),
        "force" => (
            "boolean",
            "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
        ),
        "gracePeriodSeconds" => (
            "integer",
            "The duration in seconds before the object should be deleted.",
        ),
        "ignoreStoreReadErrorWithClusterBreakingPotential" => (
            "boolean",
            "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error.",
        ),
        "labelSelector" => (
            "string",
            "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
        ),
        "limit" => (
            "integer",
            "limit is a maximum number of responses to return for a list call.",
        ),
        "orphanDependents" => ("boolean", "Deprecated: please use the PropagationPolicy."),
        "pretty" => ("string", "If 'true', then the output is pretty printed."),
        "propagationPolicy" => (
            "string",
            "Whether and how garbage collection will be performed. Acceptable values are: 'Orphan', 'Background', 'Foreground'.",
        ),
        "resourceVersion" => (
            "string",
            "resourceVersion sets a constraint on what resource versions a request may be served from.",
        ),
        "resourceVersionMatch" => (
            "string",
            "resourceVersionMatch determines how resourceVersion is applied to list calls.",
        ),
        "sendInitialEvents" => (
            "boolean",
            "`sendInitialEvents=true` may be set together with `watch=true`.",
        ),
        "timeoutSeconds" => ("integer", "Timeout for the list/watch call."),
        "watch" => (
            "boolean",
            "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
        ),
        _ => ("string", ""),
    };
    param(name, "query", ty, desc)
}

const LIST_PARAMS: &[&str] = &[
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
];
const DELETECOLLECTION_PARAMS: &[&str] = &[
    "continue",
    "dryRun",
    "fieldSelector",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "labelSelector",
    "limit",
    "orphanDependents",
    "propagationPolicy",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
];
const WRITE_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation"];
const PATCH_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "force"];
const DELETE_PARAMS: &[&str] = &[
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "orphanDependents",
    "propagationPolicy",
    "dryRun",
];

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn content(schema: &str, media: &[&str]) -> Value {
    let mut m = Map::new();
    for t in media {
        m.insert((*t).to_owned(), json!({ "schema": schema_ref(schema) }));
    }
    Value::Object(m)
}

const OBJ_MEDIA: &[&str] = &[
    "application/json",
    "application/vnd.kubernetes.protobuf",
    "application/yaml",
];
const CR_MEDIA: &[&str] = &["application/json", "application/yaml"];
const WATCH_MEDIA: &[&str] = &[
    "application/json",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf",
    "application/vnd.kubernetes.protobuf;stream=watch",
    "application/yaml",
];

struct OpSpec<'a> {
    action: &'a str,
    op_id: String,
    description: String,
    params: &'a [&'a str],
    request: Option<Value>,
    responses: Vec<(&'a str, &'a str, String)>,
    gvk: Value,
}

fn operation(t: &ResourceType, builtin: bool, o: OpSpec<'_>) -> Value {
    let media = if builtin { OBJ_MEDIA } else { CR_MEDIA };
    let mut op = Map::new();
    op.insert("description".into(), json!(o.description));
    op.insert("operationId".into(), json!(o.op_id));
    if !o.params.is_empty() {
        op.insert(
            "parameters".into(),
            Value::Array(o.params.iter().map(|p| q(p)).collect()),
        );
    }
    if let Some(body) = o.request {
        op.insert("requestBody".into(), body);
    }
    let mut responses = Map::new();
    for (code, desc, schema) in &o.responses {
        let m = if o.action.starts_with("watch") {
            WATCH_MEDIA
        } else {
            media
        };
        responses.insert(
            (*code).to_owned(),
            json!({ "content": content(schema, m), "description": desc }),
        );
    }
    op.insert("responses".into(), Value::Object(responses));
    op.insert("tags".into(), json!([tag(t)]));
    op.insert("x-kubernetes-action".into(), json!(o.action));
    op.insert("x-kubernetes-group-version-kind".into(), o.gvk);
    Value::Object(op)
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "kind": kind, "version": version })
}

fn add_resource_paths(paths: &mut Map<String, Value>, t: &ResourceType) {
    let prefix = format!("/{}", group_version_path(&t.group, &t.version));
    let ns = if t.namespaced { "Namespaced" } else { "" };
    let op = op_prefix(t);
    let kind = &t.kind;
    let obj = schema_name(t);
    let list = format!("{obj}List");
    let status = format!("{META}.Status");
    let my_gvk = gvk(&t.group, &t.version, kind);
    let builtin = is_builtin(t);
    let scope = if t.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", t.plural)
    } else {
        format!("{prefix}/{}", t.plural)
    };
    let name_param = param("name", "path", "string", &format!("name of the {}", t.kind));
    let ns_param = param(
        "namespace",
        "path",
        "string",
        "object name and auth scope, such as for teams and projects",
    );
    let pretty = q("pretty");
    let collection_params = if t.namespaced {
        vec![ns_param.clone(), pretty.clone()]
    } else {
        vec![pretty.clone()]
    };
    let item_params = if t.namespaced {
        vec![name_param.clone(), ns_param.clone(), pretty.clone()]
    } else {
        vec![name_param.clone(), pretty.clone()]
    };
    let json_body =
        |schema: &str| json!({ "content": { "application/json": { "schema": schema_ref(schema) } }, "required": true });
    let patch_body = || {
        let mut types = vec![
            "application/apply-patch+yaml",
            "application/json-patch+json",
            "application/merge-patch+json",
        ];
        if builtin {
            types.push("application/strategic-merge-patch+json");
        }
        let mut m = Map::new();
        for ty in types {
            m.insert(ty.to_owned(), json!({ "schema": schema_ref(&format!("{META}.Patch")) }));
        }
        json!({ "content": m, "required": true })
    };
    let ok = |schema: &str| ("200", "OK", schema.to_owned());
    let created = |schema: &str| ("201", "Created", schema.to_owned());
    let accepted = |schema: &str| ("202", "Accepted", schema.to_owned());

    // Collection: list, create, deletecollection.
    let mut coll = Map::new();
    coll.insert(
        "delete".into(),
        operation(
            t,
            builtin,
            OpSpec {
                action: "deletecollection",
                op_id: format!("delete{op}Collection{ns}{kind}"),
                description: format!("delete collection of {kind}"),
                params: DELETECOLLECTION_PARAMS,
                request: Some(json_body(&format!("{META}.DeleteOptions"))),
                responses: vec![ok(&status)],
                gvk: my_gvk.clone(),
            },
        ),
    );
    coll.insert(
        "get".into(),
        operation(
            t,
            builtin,
            OpSpec {
                action: "list",
                op_id: format!("list{op}{ns}{kind}"),
                description: format!("list or watch objects of kind {kind}"),
                params: LIST_PARAMS,
                request: None,
                responses: vec![ok(&list)],
                gvk: my_gvk.clone(),
            },
        ),
    );
    coll.insert("parameters".into(), Value::Array(collection_params));
    coll.insert(
        "post".into(),
        operation(
            t,
            builtin,
            OpSpec {
                action: "post",
                op_id: format!("create{op}{ns}{kind}"),
                description: format!("create a {kind}"),
                params: WRITE_PARAMS,
                request: Some(json_body(&obj)),
                responses: vec![ok(&obj), created(&obj), accepted(&obj)],
                gvk: my_gvk.clone(),
            },
        ),
    );
    paths.insert(scope.clone(), Value::Object(coll));

    // Item: read, replace, patch, delete.
    let mut item = Map::new();
    item.insert(
        "delete".into(),
        operation(
            t,
            builtin,
            OpSpec {
                action: "delete",
                op_id: format!("delete{op}{ns}{kind}"),
                description: format!("delete a {kind}"),
                params: DELETE_PARAMS,
                request: Some(json_body(&format!("{META}.DeleteOptions"))),
                responses: vec![ok(&obj), accepted(&obj)],
                gvk: my_gvk.clone(),
            },
        ),
    );
    item.insert(
        "get".into(),
        operation(
            t,
            builtin,
            OpSpec {
                action: "get",
                op_id: format!("read{op}{ns}{kind}"),
                description: format!("read the specified {kind}"),
                params: &[],
                request: None,
                responses: vec![ok(&obj)],
                gvk: my_gvk.clone(),
            },
        ),
    );
    item.insert("parameters".into(), Value::Array(item_params.clone()));
    item.insert(
        "patch".into(),
        operation(
            t,
            builtin,
            OpSpec {
                action: "patch",
                op_id: format!("patch{op}{ns}{kind}"),
                description: format!("partially update the specified {kind}"),
                params: PATCH_PARAMS,
                request: Some(patch_body()),
                responses: vec![ok(&obj), created(&obj)],
                gvk: my_gvk.clone(),
            },
        ),
    );
    item.insert(
        "put".into(),
        operation(
            t,
            builtin,
            OpSpec {
                action: "put",
                op_id: format!("replace{op}{ns}{kind}"),
                description: format!("replace the specified {kind}"),
                params: WRITE_PARAMS,
                request: Some(json_body(&obj)),
                responses: vec![ok(&obj), created(&obj)],
                gvk: my_gvk.clone(),
            },
        ),
    );
    paths.insert(format!("{scope}/{{name}}"), Value::Object(item));

    // Subresources: status (same kind) and scale (autoscaling/v1 Scale).
    let mut subresources: Vec<(&str, String, Value)> = Vec::new();
    if t.status_subresource {
        subresources.push(("status", obj.clone(), my_gvk.clone()));
    }
    if t.scale_subresource {
        subresources.push(("scale", SCALE_SCHEMA.to_owned(), gvk("autoscaling", "v1", "Scale")));
    }
    for (sub, schema, sub_gvk) in subresources {
        let suffix = if sub == "status" { "Status" } else { "Scale" };
        let what = if sub == "status" {
            format!("status of the specified {kind}")
        } else {
            format!("scale of the specified {kind}")
        };
        let mut p = Map::new();
        p.insert(
            "get".into(),
            operation(
                t,
                builtin,
                OpSpec {
                    action: "get",
                    op_id: format!("read{op}{ns}{kind}{suffix}"),
                    description: format!("read {what}"),
                    params: &[],
                    request: None,
                    responses: vec![ok(&schema)],
                    gvk: sub_gvk.clone(),
                },
            ),
        );
        p.insert("parameters".into(), Value::Array(item_params.clone()));
        p.insert(
            "patch".into(),
            operation(
                t,
                builtin,
                OpSpec {
                    action: "patch",
                    op_id: format!("patch{op}{ns}{kind}{suffix}"),
                    description: format!("partially update {what}"),
                    params: PATCH_PARAMS,
                    request: Some(patch_body()),
                    responses: vec![ok(&schema), created(&schema)],
                    gvk: sub_gvk.clone(),
                },
            ),
        );
        p.insert(
            "put".into(),
            operation(
                t,
                builtin,
                OpSpec {
                    action: "put",
                    op_id: format!("replace{op}{ns}{kind}{suffix}"),
                    description: format!("replace {what}"),
                    params: WRITE_PARAMS,
                    request: Some(json_body(&schema)),
                    responses: vec![ok(&schema), created(&schema)],
                    gvk: sub_gvk,
                },
            ),
        );
        paths.insert(format!("{scope}/{{name}}/{sub}"), Value::Object(p));
    }

    // Watch paths (deprecated, still served) and the all-namespaces list.
    let watch_event = format!("{META}.WatchEvent");
    let list_path_params = |extra: Vec<Value>| {
        let mut v: Vec<Value> = LIST_PARAMS.iter().map(|p| q(p)).collect();
        v.extend(extra);
        v.push(q("pretty"));
        v.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        Value::Array(v)
    };
    let watch_scope = if t.namespaced {
        format!("{prefix}/watch/namespaces/{{namespace}}/{}", t.plural)
    } else {
        format!("{prefix}/watch/{}", t.plural)
    };
    let scope_extra = if t.namespaced { vec![ns_param.clone()] } else { vec![] };
    let mut item_extra = vec![name_param];
    item_extra.extend(scope_extra.clone());
    let watch_get = |action: &str, op_id: String, description: String| {
        operation(
            t,
            builtin,
            OpSpec {
                action,
                op_id,
                description,
                params: &[],
                request: None,
                responses: vec![ok(&watch_event)],
                gvk: my_gvk.clone(),
            },
        )
    };
    paths.insert(
        watch_scope.clone(),
        json!({
            "get": watch_get("watchlist", format!("watch{op}{ns}{kind}List"), format!("watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead.")),
            "parameters": list_path_params(scope_extra),
        }),
    );
    paths.insert(
        format!("{watch_scope}/{{name}}"),
        json!({
            "get": watch_get("watch", format!("watch{op}{ns}{kind}"), format!("watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter.")),
            "parameters": list_path_params(item_extra),
        }),
    );
    if t.namespaced {
        let all = operation(
            t,
            builtin,
            OpSpec {
                action: "list",
                op_id: format!("list{op}{kind}ForAllNamespaces"),
                description: format!("list or watch objects of kind {kind}"),
                params: &[],
                request: None,
                responses: vec![ok(&list)],
                gvk: my_gvk.clone(),
            },
        );
        paths.insert(
            format!("{prefix}/{}", t.plural),
            json!({ "get": all, "parameters": list_path_params(vec![]) }),
        );
        paths.insert(
            format!("{prefix}/watch/{}", t.plural),
            json!({
                "get": watch_get("watchlist", format!("watch{op}{kind}ListForAllNamespaces"), format!("watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead.")),
                "parameters": list_path_params(vec![]),
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::builtin_types;

    fn custom() -> ResourceType {
        ResourceType {
            group: "stable.example.com".into(),
            version: "v1".into(),
            kind: "CronTab".into(),
            plural: "crontabs".into(),
            singular: "crontab".into(),
            namespaced: true,
            short_names: vec!["ct".into()],
            categories: vec![],
            status_subresource: true,
            scale_subresource: false,
        }
    }

    fn param_names(op: &Value) -> Vec<String> {
        op["parameters"]
            .as_array()
            .map(|a| a.iter().filter_map(|p| p["name"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    /// What kubectl's QueryParamVerifierV3 does: the first PATCH op tagged with the GVK decides.
    fn kubectl_supports_field_validation(doc: &Value, g: &str, v: &str, k: &str) -> bool {
        let mut found = false;
        for (_, item) in doc["paths"].as_object().unwrap() {
            let Some(patch) = item.get("patch") else {
                continue;
            };
            let x = &patch["x-kubernetes-group-version-kind"];
            if x["group"] == g && x["version"] == v && x["kind"] == k {
                if !param_names(patch).iter().any(|n| n == "fieldValidation") {
                    return false;
                }
                found = true;
            }
        }
        found
    }

    #[test]
    fn index_lists_every_group_version_with_hashed_urls() {
        let types = builtin_types();
        let idx = openapi_v3_index(&types);
        let paths = idx["paths"].as_object().unwrap();
        for (g, v) in group_versions(&types) {
            let key = group_version_path(&g, &v);
            let url = paths[&key]["serverRelativeURL"].as_str().unwrap();
            let doc = openapi_v3_group_version(&types, &g, &v).unwrap();
            assert_eq!(url, format!("/openapi/v3/{key}?hash={}", document_hash(&doc)));
        }
        assert_eq!(paths.len(), group_versions(&types).len());
        assert_eq!(paths.keys().next().unwrap(), "api/v1");
        assert!(paths.contains_key("apis/apps/v1"));
        assert!(paths.contains_key("apis/autoscaling/v2"));
        assert!(paths.contains_key("apis/rbac.authorization.k8s.io/v1"));
    }

    #[test]
    fn index_is_deterministic_and_hash_tracks_content() {
        let types = builtin_types();
        assert_eq!(openapi_v3_index(&types), openapi_v3_index(&types));
        let mut more = types.clone();
        more.push(ResourceType {
            group: "apps".into(),
            version: "v1".into(),
            kind: "ControllerRevision".into(),
            plural: "controllerrevisions".into(),
            singular: "controllerrevision".into(),
            namespaced: true,
            short_names: vec![],
            categories: vec![],
            status_subresource: false,
            scale_subresource: false,
        });
        let a = openapi_v3_index(&types);
        let b = openapi_v3_index(&more);
        assert_ne!(
            a["paths"]["apis/apps/v1"]["serverRelativeURL"],
            b["paths"]["apis/apps/v1"]["serverRelativeURL"]
        );
        assert_eq!(a["paths"]["api/v1"], b["paths"]["api/v1"]);
        assert_eq!(document_hash(&json!({})).len(), 32);
    }

    #[test]
    fn unknown_group_version_has_no_document() {
        assert!(openapi_v3_group_version(&builtin_types(), "apps", "v2").is_none());
        assert!(openapi_v3_group_version(&[], "", "v1").is_none());
    }

    #[test]
    fn deployment_patch_declares_field_validation_everywhere() {
        let doc = openapi_v3_group_version(&builtin_types(), "apps", "v1").unwrap();
        let item = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
        let patch = &item["patch"];
        assert_eq!(patch["x-kubernetes-action"], "patch");
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "kind": "Deployment", "version": "v1"})
        );
        assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
        assert_eq!(
            param_names(patch),
            ["dryRun", "fieldManager", "fieldValidation", "force"]
        );
        assert!(
            patch["requestBody"]["content"]
                .get("application/strategic-merge-patch+json")
                .is_some()
        );
        assert_eq!(param_names(item), ["name", "namespace", "pretty"]);
        for k in ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"] {
            assert!(kubectl_supports_field_validation(&doc, "apps", "v1", k), "{k}");
        }
        // status and scale
        let status = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"];
        assert_eq!(status["patch"]["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        assert!(param_names(&status["patch"]).contains(&"fieldValidation".to_owned()));
        let scale = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
        assert_eq!(
            scale["put"]["x-kubernetes-group-version-kind"],
            json!({"group": "autoscaling", "kind": "Scale", "version": "v1"})
        );
        assert!(doc["components"]["schemas"][SCALE_SCHEMA].is_object());
        // DaemonSet has no scale
        assert!(
            doc["paths"]
                .get("/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}/scale")
                .is_none()
        );
    }

    #[test]
    fn every_builtin_kind_supports_field_validation() {
        let types = builtin_types();
        for t in &types {
            let doc = openapi_v3_group_version(&types, &t.group, &t.version).unwrap();
            assert!(
                kubectl_supports_field_validation(&doc, &t.group, &t.version, &t.kind),
                "{}",
                t.kind
            );
        }
    }

    #[test]
    fn namespaced_paths_and_operations() {
        let doc = openapi_v3_group_version(&builtin_types(), "", "v1").unwrap();
        let p = &doc["paths"];
        let coll = &p["/api/v1/namespaces/{namespace}/configmaps"];
        assert_eq!(coll["get"]["x-kubernetes-action"], "list");
        assert_eq!(coll["get"]["operationId"], "listCoreV1NamespacedConfigMap");
        assert_eq!(coll["post"]["x-kubernetes-action"], "post");
        assert_eq!(coll["delete"]["x-kubernetes-action"], "deletecollection");
        assert_eq!(
            param_names(&coll["post"]),
            ["dryRun", "fieldManager", "fieldValidation"]
        );
        assert!(param_names(&coll["get"]).contains(&"labelSelector".to_owned()));
        assert_eq!(param_names(coll), ["namespace", "pretty"]);
        let item = &p["/api/v1/namespaces/{namespace}/configmaps/{name}"];
        for verb in ["get", "put", "patch", "delete"] {
            assert_eq!(
                item[verb]["x-kubernetes-group-version-kind"],
                json!({"group": "", "kind": "ConfigMap", "version": "v1"}),
                "{verb}"
            );
        }
        assert!(param_names(&item["delete"]).contains(&"propagationPolicy".to_owned()));
        let all = &p["/api/v1/configmaps"];
        assert_eq!(all["get"]["x-kubernetes-action"], "list");
        assert_eq!(all["get"]["operationId"], "listCoreV1ConfigMapForAllNamespaces");
        assert!(all.get("post").is_none());
        assert!(p["/api/v1/watch/namespaces/{namespace}/configmaps"]["get"].is_object());
        // ConfigMap has no status subresource
        assert!(
            p.get("/api/v1/namespaces/{namespace}/configmaps/{name}/status")
                .is_none()
        );
        assert!(doc["components"]["schemas"]["io.k8s.api.core.v1.ConfigMap"].is_object());
    }

    #[test]
    fn cluster_scoped_paths() {
        let doc = openapi_v3_group_version(&builtin_types(), "", "v1").unwrap();
        let p = &doc["paths"];
        let ns = &p["/api/v1/namespaces/{name}"];
        assert_eq!(ns["patch"]["operationId"], "patchCoreV1Namespace");
        assert_eq!(param_names(ns), ["name", "pretty"]);
        assert_eq!(p["/api/v1/namespaces"]["post"]["operationId"], "createCoreV1Namespace");
        assert!(p["/api/v1/namespaces/{name}/status"]["patch"].is_object());
        assert!(kubectl_supports_field_validation(&doc, "", "v1", "Namespace"));

        let rbac = openapi_v3_group_version(&builtin_types(), "rbac.authorization.k8s.io", "v1").unwrap();
        let crb = &rbac["paths"]["/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{name}"];
        assert_eq!(
            crb["patch"]["operationId"],
            "patchRbacAuthorizationV1ClusterRoleBinding"
        );
        assert_eq!(crb["patch"]["tags"], json!(["rbacAuthorization_v1"]));
        assert!(
            rbac["paths"]
                .get("/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/clusterroles")
                .is_none()
        );
    }

    #[test]
    fn custom_resources_are_served_without_strategic_merge() {
        let mut types = builtin_types();
        types.push(custom());
        let idx = openapi_v3_index(&types);
        assert!(idx["paths"]["apis/stable.example.com/v1"]["serverRelativeURL"].is_string());
        let doc = openapi_v3_group_version(&types, "stable.example.com", "v1").unwrap();
        let item = &doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"];
        assert_eq!(item["patch"]["operationId"], "patchStableExampleComV1NamespacedCronTab");
        let content = item["patch"]["requestBody"]["content"].as_object().unwrap();
        assert!(content.contains_key("application/merge-patch+json"));
        assert!(!content.contains_key("application/strategic-merge-patch+json"));
        assert!(kubectl_supports_field_validation(
            &doc,
            "stable.example.com",
            "v1",
            "CronTab"
        ));
        assert!(doc["components"]["schemas"]["com.example.stable.v1.CronTab"].is_object());
    }

    #[test]
    fn no_component_schema_claims_a_kind_and_all_refs_resolve() {
        let mut types = builtin_types();
        types.push(custom());
        for (g, v) in group_versions(&types) {
            let doc = openapi_v3_group_version(&types, &g, &v).unwrap();
            let schemas = doc["components"]["schemas"].as_object().unwrap();
            for (name, s) in schemas {
                assert!(s.get("x-kubernetes-group-version-kind").is_none(), "{name}");
            }
            let text = serde_json::to_string(&doc).unwrap();
            for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
                let name = &piece[..piece.find('"').unwrap()];
                assert!(schemas.contains_key(name), "{g}/{v}: dangling ref {name}");
            }
        }
    }

    #[test]
    fn schema_names_follow_the_real_server() {
        let types = builtin_types();
        let by_kind = |k: &str| types.iter().find(|t| t.kind == k).unwrap().clone();
        assert_eq!(schema_name(&by_kind("Deployment")), "io.k8s.api.apps.v1.Deployment");
        assert_eq!(schema_name(&by_kind("Pod")), "io.k8s.api.core.v1.Pod");
        assert_eq!(schema_name(&by_kind("Ingress")), "io.k8s.api.networking.v1.Ingress");
        assert_eq!(schema_name(&by_kind("Role")), "io.k8s.api.rbac.v1.Role");
        assert_eq!(
            schema_name(&by_kind("CustomResourceDefinition")),
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"
        );
        assert_eq!(schema_name(&custom()), "com.example.stable.v1.CronTab");
    }
}

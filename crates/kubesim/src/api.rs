//! The REST layer: parses Kubernetes API paths, runs each verb with kube-apiserver semantics
//! against [`State`], and answers with objects, lists, watch streams or `Status` errors.
//!
//! Paths are parsed by hand rather than with a router table because the set of resources
//! changes at runtime (CRDs) and the namespace/name/subresource shapes overlap.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use kubesim_schema::ResourceType;
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::controllers::ControllerMsg;
use crate::debug::{FaultConfig, Faults, Injected, Stats};
use crate::discovery;
use crate::error::{ApiError, qualified};
use crate::machinery::{self, PatchKind};
use crate::selector::{FieldSelector, LabelSelector};
use crate::state::{Event, EventType, ObjKey, ResKey, State};
use crate::time::now_rfc3339;

/// Largest request body accepted (kube-apiserver's limit is 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;
/// Largest stored object (etcd's default request limit is 1.5 MiB).
pub const MAX_OBJECT: usize = 1536 * 1024;

/// Runtime options the handlers need.
#[derive(Debug, Clone)]
pub struct Options {
    /// Bearer token required on every request, if set.
    pub token: Option<String>,
    /// How often watches with `allowWatchBookmarks` receive a BOOKMARK.
    pub bookmark_interval: Duration,
}

/// Everything the handlers share.
pub struct Shared {
    /// The object store.
    pub state: Mutex<State>,
    /// Request counters.
    pub stats: Stats,
    /// Fault injection.
    pub faults: Faults,
    /// Options.
    pub opts: Options,
    /// Notifications to the simulated controllers.
    pub controller: mpsc::UnboundedSender<ControllerMsg>,
    /// `host:port` clients reach us at.
    pub server_address: String,
    /// Bumped to drop every open watch connection (reliability tests).
    pub drop_watches: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    /// Locks the state; a poisoned lock (a panic elsewhere) still yields the data, because
    /// every mutation is a single map operation that leaves the store consistent.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Parsed query string.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Query {
        Query(q.and_then(|q| serde_urlencoded::from_str(q).ok()).unwrap_or_default())
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.as_str())
    }
    fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true") | Some("1"))
    }
    fn dry_run(&self) -> bool {
        self.0.iter().any(|(k, v)| k == "dryRun" && v == "All")
    }
}

/// A resolved resource request.
struct Target {
    rt: Arc<ResourceType>,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
    custom: bool,
}

impl Target {
    fn res(&self) -> ResKey {
        (self.rt.group.clone(), self.rt.plural.clone())
    }
    fn key(&self) -> ObjKey {
        (
            self.namespace.clone().unwrap_or_default(),
            self.name.clone().unwrap_or_default(),
        )
    }
    fn resource_label(&self) -> String {
        let q = qualified(&self.rt.group, &self.rt.plural);
        match &self.sub {
            Some(s) => format!("{q}/{s}"),
            None => q,
        }
    }
}

enum Route {
    Version,
    Healthz,
    Api,
    Apis,
    Group(String),
    GroupVersion(String, String),
    OpenApiV3Index,
    OpenApiV3(String),
    Resource(Target),
    Debug(String),
}

fn json_response(code: u16, v: &impl serde::Serialize) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap_or_default()
}

fn error_response(e: &ApiError) -> Response {
    let mut r = json_response(e.code, &e.to_status());
    if let Some(s) = e.retry_after
        && let Ok(v) = HeaderValue::from_str(&s.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// The single entry point for every request.
pub async fn handle(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let is_debug = path.starts_with("/debug/") || matches!(path.as_str(), "/healthz" | "/readyz" | "/livez");
    if !is_debug && let Some(token) = &shared.opts.token {
        let ok = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes()));
        if !ok {
            return error_response(&ApiError::unauthorized());
        }
    }
    match serve(&shared, req, is_debug).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn verb_of(method: &Method, t: &Target, q: &Query) -> &'static str {
    match *method {
        Method::GET if q.flag("watch") => "watch",
        Method::GET if t.name.is_none() => "list",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if t.name.is_none() => "deletecollection",
        Method::DELETE => "delete",
        _ => "unknown",
    }
}

async fn serve(shared: &Arc<Shared>, req: Request, is_debug: bool) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let q = Query::parse(parts.uri.query());
    let route = {
        let st = shared.lock();
        route(&st, parts.uri.path())?
    };
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();

    let (verb, resource_label, write) = match &route {
        Route::Resource(t) => {
            let v = verb_of(&parts.method, t, &q);
            let write = matches!(v, "create" | "update" | "patch" | "delete" | "deletecollection") && !q.dry_run();
            (v, t.resource_label(), write)
        }
        Route::Debug(_) => ("debug", "debug".to_owned(), false),
        Route::OpenApiV3Index | Route::OpenApiV3(_) => ("get", "openapi".to_owned(), false),
        _ => ("get", "discovery".to_owned(), false),
    };
    if !is_debug {
        shared.stats.record(verb, &resource_label, write);
        let (latency, injected) = shared.faults.decide(verb);
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        match injected {
            Injected::None => {}
            Injected::Error => return Err(ApiError::internal("kubesim: injected fault")),
            Injected::Throttle(s) => return Err(ApiError::too_many_requests(s)),
        }
    }

    let body = axum::body::to_bytes(body, MAX_BODY + 1)
        .await
        .map_err(|_| ApiError::too_large("Request entity too large: limit is 3145728"))?;
    if body.len() > MAX_BODY {
        return Err(ApiError::too_large("Request entity too large: limit is 3145728"));
    }

    match route {
        Route::Version => Ok(json_response(200, &discovery::version())),
        Route::Healthz => Ok(Response::builder()
            .status(200)
            .body(Body::from("ok"))
            .unwrap_or_default()),
        Route::Api => {
            let st = shared.lock();
            if discovery::wants_aggregated(&accept) {
                Ok(aggregated_response(discovery::aggregated(st.types.values(), true)))
            } else {
                Ok(json_response(200, &discovery::api_versions(&shared.server_address)))
            }
        }
        Route::Apis => {
            let st = shared.lock();
            if discovery::wants_aggregated(&accept) {
                Ok(aggregated_response(discovery::aggregated(st.types.values(), false)))
            } else {
                Ok(json_response(200, &discovery::api_group_list(st.types.values())))
            }
        }
        Route::Group(g) => {
            let st = shared.lock();
            discovery::single_group(st.types.values(), &g)
                .map(|v| json_response(200, &v))
                .ok_or_else(ApiError::no_route)
        }
        Route::GroupVersion(g, v) => {
            let st = shared.lock();
            discovery::resource_list(st.types.values(), &g, &v)
                .map(|v| json_response(200, &v))
                .ok_or_else(ApiError::no_route)
        }
        Route::OpenApiV3Index | Route::OpenApiV3(_) => {
            // Documents are cached per set of served types (see crate::openapi).
            let types: Vec<Arc<ResourceType>> = shared.lock().types.values().cloned().collect();
            let path = match &route {
                Route::OpenApiV3(gv) => Some(gv.as_str()),
                _ => None,
            };
            let body = crate::openapi::cached(&types, path).ok_or_else(ApiError::no_route)?;
            Ok(Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .unwrap_or_default())
        }
        Route::Debug(what) => debug_endpoint(shared, &parts.method, &what, &body),
        Route::Resource(t) => {
            let ctx = Ctx {
                shared,
                q: &q,
                accept: &accept,
                user_agent: parts
                    .headers
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned(),
            };
            match verb {
                "get" => ctx.get(&t),
                "list" => ctx.list(&t),
                "watch" => ctx.watch(&t),
                "create" => ctx.create(&t, &decode_body(&body, &content_type)?),
                "update" => ctx.update(&t, decode_body(&body, &content_type)?),
                "patch" => {
                    let kind = PatchKind::from_content_type(&content_type)
                        .ok_or_else(|| ApiError::unsupported_media_type(&content_type))?;
                    ctx.patch(&t, kind, &decode_body(&body, &content_type)?)
                }
                "delete" => ctx.delete(&t, &decode_optional(&body)?),
                "deletecollection" => ctx.delete_collection(&t, &decode_optional(&body)?),
                _ => Err(ApiError::method_not_allowed(format!(
                    "the server does not allow this method on the requested resource: {}",
                    parts.method
                ))),
            }
        }
    }
}

fn aggregated_response(v: Value) -> Response {
    let mut r = json_response(200, &v);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(discovery::AGGREGATED_V2));
    r
}

fn decode_body(body: &Bytes, content_type: &str) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("the body of the request was empty"));
    }
    if content_type.contains("cbor") || content_type.contains("protobuf") {
        return Err(ApiError::unsupported_media_type(content_type));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => Ok(v),
        Err(json_err) => {
            // YAML is accepted for create/update/apply bodies, as kube-apiserver does.
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("the body of the request is not valid UTF-8"))?;
            let looks_yaml = content_type.contains("yaml");
            if !looks_yaml {
                return Err(ApiError::bad_request(format!("error decoding JSON body: {json_err}")));
            }
            serde_saphyr::from_str::<Value>(text)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML body: {e}")))
        }
    }
}

fn decode_optional(body: &Bytes) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))
}

fn route(st: &State, path: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["version"] => Ok(Route::Version),
        ["healthz"] | ["readyz"] | ["livez"] => Ok(Route::Healthz),
        ["api"] => Ok(Route::Api),
        ["apis"] => Ok(Route::Apis),
        ["openapi", "v3"] => Ok(Route::OpenApiV3Index),
        ["openapi", "v3", rest @ ..] => Ok(Route::OpenApiV3(rest.join("/"))),
        ["debug", "kubesim", what] => Ok(Route::Debug((*what).to_owned())),
        ["api", "v1"] => Ok(Route::GroupVersion(String::new(), "v1".into())),
        ["apis", g] => Ok(Route::Group((*g).to_owned())),
        ["apis", g, v] => Ok(Route::GroupVersion((*g).to_owned(), (*v).to_owned())),
        ["api", "v1", rest @ ..] => resource_route(st, "", "v1", rest),
        ["apis", g, v, rest @ ..] => resource_route(st, g, v, rest),
        _ => Err(ApiError::no_route()),
    }
}

fn resource_route(st: &State, group: &str, version: &str, rest: &[&str]) -> Result<Route, ApiError> {
    let lookup = |plural: &str| st.resource(group, version, plural);
    let (namespace, rest) = match rest {
        // `namespaces/{ns}/{plural}...` addresses namespaced resources, unless what follows the
        // namespace name is one of the Namespace's own subresources.
        ["namespaces", ns, plural, tail @ ..]
            if group.is_empty()
                && !(tail.is_empty() && matches!(*plural, "status" | "finalize"))
                && lookup(plural).is_some() =>
        {
            (
                Some((*ns).to_owned()),
                std::iter::once(*plural).chain(tail.iter().copied()).collect::<Vec<_>>(),
            )
        }
        ["namespaces", ns, plural, tail @ ..] if !group.is_empty() => (
            Some((*ns).to_owned()),
            std::iter::once(*plural).chain(tail.iter().copied()).collect::<Vec<_>>(),
        ),
        other => (None, other.to_vec()),
    };
    let (plural, name, sub) = match rest.as_slice() {
        [p] => (*p, None, None),
        [p, n] => (*p, Some((*n).to_owned()), None),
        [p, n, s] => (*p, Some((*n).to_owned()), Some((*s).to_owned())),
        _ => return Err(ApiError::no_route()),
    };
    let rt = lookup(plural).ok_or_else(ApiError::no_route)?;
    if namespace.is_some() && !rt.namespaced {
        return Err(ApiError::no_route());
    }
    if let Some(s) = &sub {
        let ok = (s == "status" && rt.status_subresource)
            || (s == "scale" && rt.scale_subresource)
            || (s == "finalize" && rt.kind == "Namespace");
        if !ok {
            return Err(ApiError::no_route());
        }
    }
    let custom = !st.crd_types.is_empty()
        && st
            .crd_types
            .values()
            .flatten()
            .any(|(g, v, p)| g == group && v == version && p == plural);
    Ok(Route::Resource(Target {
        rt,
        namespace,
        name,
        sub,
        custom,
    }))
}

fn debug_endpoint(shared: &Arc<Shared>, method: &Method, what: &str, body: &Bytes) -> Result<Response, ApiError> {
    match (method, what) {
        (&Method::GET, "stats") => Ok(json_response(
            200,
            &serde_json::to_value(shared.stats.snapshot()).unwrap_or_default(),
        )),
        (&Method::DELETE, "stats") => {
            shared.stats.reset();
            Ok(json_response(200, &json!({"reset": true})))
        }
        (&Method::GET, "faults") => Ok(json_response(
            200,
            &serde_json::to_value(shared.faults.get()).unwrap_or_default(),
        )),
        (&Method::PUT, "faults") | (&Method::POST, "faults") => {
            let cfg: FaultConfig = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid fault config: {e}")))?;
            shared.faults.set(cfg.clone());
            Ok(json_response(200, &serde_json::to_value(cfg).unwrap_or_default()))
        }
        (&Method::POST, "drop-watches") => {
            shared.drop_watches.send_modify(|n| *n += 1);
            Ok(json_response(200, &json!({"dropped": true})))
        }
        _ => Err(ApiError::no_route()),
    }
}

/// Per-request context for resource verbs.
struct Ctx<'a> {
    shared: &'a Arc<Shared>,
    q: &'a Query,
    /// The Accept header (`as=Table` asks for server-side printing, see [`crate::table`]).
    accept: &'a str,
    user_agent: String,
}

/// Serves `obj` at the version the request addressed (custom resources may be stored at one
/// version and served at several; only apiVersion changes, as with `conversion: None`).
fn at_version(obj: &Value, rt: &ResourceType) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.insert("apiVersion".into(), Value::String(rt.api_version()));
        m.insert("kind".into(), Value::String(rt.kind.clone()));
    }
    o
}

/// [`at_version`] without the copy when `obj` is stored at the served version already (the
/// common case), so reads serialise the stored object directly.
fn served<'v>(obj: &'v Value, rt: &ResourceType) -> Cow<'v, Value> {
    let same = obj.get("kind").and_then(Value::as_str) == Some(rt.kind.as_str())
        && obj.get("apiVersion").and_then(Value::as_str) == Some(rt.api_version().as_str());
    if same {
        Cow::Borrowed(obj)
    } else {
        Cow::Owned(at_version(obj, rt))
    }
}

fn meta(obj: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    obj.get("metadata")
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

fn meta_str<'v>(obj: &'v Value, k: &str) -> Option<&'v str> {
    meta(obj).get(k).and_then(Value::as_str)
}

/// Everything except metadata and status: a change here bumps `metadata.generation`.
fn spec_part(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    o
}

/// For no-op detection: the object without resourceVersion and managedFields timestamps.
fn comparable(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        if let Some(Value::Array(mf)) = m.get_mut("managedFields") {
            for e in mf.iter_mut() {
                if let Some(e) = e.as_object_mut() {
                    e.remove("time");
                }
            }
        }
    }
    o
}

/// Whether kube-apiserver maintains `metadata.generation` for this kind: kinds with a
/// spec/status split and every custom resource. ConfigMaps, Secrets, Services, Pods and
/// the like have no generation on a real cluster.
fn tracks_generation(rt: &ResourceType, custom: bool) -> bool {
    custom
        || matches!(
            (rt.group.as_str(), rt.kind.as_str()),
            ("apps", _)
                | ("batch", _)
                | ("networking.k8s.io", _)
                | ("policy", "PodDisruptionBudget")
                | ("apiextensions.k8s.io", "CustomResourceDefinition")
                | ("autoscaling", "HorizontalPodAutoscaler")
        )
}

fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

fn validate_name(rt: &ResourceType, name: &str) -> Result<(), ApiError> {
    let (ok, rule) = match rt.kind.as_str() {
        "Namespace" => (
            is_dns1123_label(name),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ),
        "Service" => (
            is_dns1123_label(name) && name.as_bytes()[0].is_ascii_lowercase(),
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
        ),
        // RBAC objects accept any path segment name.
        "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" => (
            !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('%'),
            "may not contain '/' or '%'",
        ),
        _ => (
            is_dns1123_subdomain(name),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
    };
    if ok {
        Ok(())
    } else {
        let msg = format!(
            "{}{} \"{}\" is invalid: metadata.name: Invalid value: \"{}\": {}",
            rt.kind,
            if rt.group.is_empty() {
                String::new()
            } else {
                format!(".{}", rt.group)
            },
            name,
            name,
            rule
        );
        Err(ApiError::invalid(
            &rt.group,
            &rt.kind,
            name,
            msg,
            vec![
                json!({"reason": "FieldValueInvalid", "message": format!("Invalid value: \"{name}\": {rule}"), "field": "metadata.name"}),
            ],
        ))
    }
}

impl Ctx<'_> {
    fn manager(&self, default_verb: &str) -> String {
        if let Some(m) = self.q.get("fieldManager").filter(|m| !m.is_empty()) {
            return m.to_owned();
        }
        // kube-apiserver derives the manager from the user agent's program name.
        let prog = self.user_agent.split('/').next().unwrap_or("").trim();
        if prog.is_empty() {
            format!("unknown-{default_verb}")
        } else {
            prog.to_owned()
        }
    }

    fn get(&self, t: &Target) -> Result<Response, ApiError> {
        // Only the Arc is taken under the lock: copying and serialising happen after it is
        // released, so concurrent requests do not queue behind JSON encoding.
        let obj = self
            .shared
            .lock()
            .get(&t.res(), &t.key())
            .ok_or_else(|| ApiError::not_found(&t.rt.group, &t.rt.plural, t.name.as_deref().unwrap_or("")))?;
        if t.sub.as_deref() == Some("scale") {
            return Ok(json_response(200, &scale_of(&obj)));
        }
        if let Some(v) = crate::table::wanted(self.accept).filter(|_| t.sub.is_none()) {
            let include = crate::table::Include::parse(self.q.get("includeObject"));
            return Ok(json_response(
                200,
                &crate::table::object(&t.rt, &served(&obj, &t.rt), include, v),
            ));
        }
        Ok(json_response(200, &served(&obj, &t.rt)))
    }

    fn list(&self, t: &Target) -> Result<Response, ApiError> {
        let labels = LabelSelector::parse(self.q.get("labelSelector").unwrap_or(""))?;
        let fields = FieldSelector::parse(self.q.get("fieldSelector").unwrap_or(""))?;
        let limit: usize = self
            .q
            .get("limit")
            .and_then(|l| l.parse().ok())
            .filter(|l| *l > 0)
            .unwrap_or(usize::MAX);
        let st = self.shared.lock();
        let start_after: Option<ObjKey> = match self.q.get("continue").filter(|c| !c.is_empty()) {
            Some(c) => Some(decode_continue(c, st.compacted_rv)?),
            None => None,
        };
        // Only Arcs are collected under the lock; the copies are made after it is released.
        let mut items: Vec<Arc<Value>> = Vec::new();
        let mut next: Option<ObjKey> = None;
        let mut remaining = 0usize;
        for (k, obj) in st.list(&t.res(), t.namespace.as_deref()) {
            if start_after.as_ref().is_some_and(|s| k <= s) {
                continue;
            }
            if !labels.matches(obj) || !fields.matches(obj) {
                continue;
            }
            if items.len() >= limit {
                remaining += 1;
                continue;
            }
            items.push(obj.clone());
            if items.len() == limit {
                next = Some(k.clone());
            }
        }
        let mut metadata = json!({"resourceVersion": st.rv.to_string()});
        if remaining > 0
            && let Some(k) = next
        {
            metadata["continue"] = json!(encode_continue(&k, st.rv));
            metadata["remainingItemCount"] = json!(remaining);
        }
        drop(st);
        let items: Vec<Cow<'_, Value>> = items.iter().map(|o| served(o, &t.rt)).collect();
        if let Some(v) = crate::table::wanted(self.accept) {
            let include = crate::table::Include::parse(self.q.get("includeObject"));
            let table = crate::table::list(&t.rt, items.iter().map(|o| &**o), metadata, include, v);
            return Ok(json_response(200, &table));
        }
        // Serialised straight from the stored objects: `json!` would deep-copy every item.
        #[derive(serde::Serialize)]
        struct List<'a> {
            kind: String,
            #[serde(rename = "apiVersion")]
            api_version: String,
            metadata: Value,
            items: Vec<Cow<'a, Value>>,
        }
        Ok(json_response(
            200,
            &List {
                kind: format!("{}List", t.rt.kind),
                api_version: t.rt.api_version(),
                metadata,
                items,
            },
        ))
    }

    fn watch(&self, t: &Target) -> Result<Response, ApiError> {
        let labels = LabelSelector::parse(self.q.get("labelSelector").unwrap_or(""))?;
        let fields = FieldSelector::parse(self.q.get("fieldSelector").unwrap_or(""))?;
        let bookmarks = self.q.flag("allowWatchBookmarks");
        let send_initial = self.q.flag("sendInitialEvents");
        let timeout = self
            .q
            .get("timeoutSeconds")
            .and_then(|s| s.parse::<u64>().ok())
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(1800));
        let rv_param = self.q.get("resourceVersion").filter(|s| !s.is_empty());
        let filter = WatchFilter {
            res: t.res(),
            namespace: t.namespace.clone(),
            name: t.name.clone(),
            labels,
            fields,
        };

        let mut initial: Vec<Value> = Vec::new();
        let (rx, start_rv) = {
            let st = self.shared.lock();
            let rx = st.events.subscribe();
            match rv_param {
                Some(rv) if rv != "0" && !send_initial => {
                    let rv: u64 = rv
                        .parse()
                        .map_err(|_| ApiError::bad_request(format!("invalid resource version {rv:?}")))?;
                    if rv < st.compacted_rv {
                        let gone = ApiError::expired(format!("too old resource version: {rv} ({})", st.compacted_rv));
                        initial.push(json!({"type": "ERROR", "object": gone.to_status()}));
                    } else {
                        for ev in st.history.iter().filter(|e| e.rv > rv) {
                            if let Some(v) = filter.event_json(ev, &t.rt) {
                                initial.push(v);
                            }
                        }
                    }
                }
                _ => {
                    for (_, obj) in st.list(&t.res(), t.namespace.as_deref()) {
                        if filter.matches(obj) {
                            initial.push(json!({"type": "ADDED", "object": at_version(obj, &t.rt)}));
                        }
                    }
                    if send_initial {
                        initial.push(json!({"type": "BOOKMARK", "object": {"kind": t.rt.kind, "apiVersion": t.rt.api_version(), "metadata": {"resourceVersion": st.rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}}}));
                    }
                }
            }
            (rx, st.rv)
        };
        let failed_start = initial.first().is_some_and(|e| e["type"] == "ERROR");
        let rt = t.rt.clone();
        let interval = self.shared.opts.bookmark_interval;
        let mut dropper = self.shared.drop_watches.subscribe();
        let (tx, body_rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(256);
        tokio::spawn(async move {
            for ev in initial {
                if tx.send(Ok(line(&ev))).await.is_err() {
                    return;
                }
            }
            if failed_start {
                return;
            }
            let mut rx = rx;
            let mut last_rv = start_rv;
            let deadline = tokio::time::sleep(timeout);
            tokio::pin!(deadline);
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                tokio::select! {
                    _ = &mut deadline => return,
                    _ = dropper.changed() => return,
                    _ = ticker.tick(), if bookmarks => {
                        let bm = json!({"type": "BOOKMARK", "object": {"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": {"resourceVersion": last_rv.to_string()}}});
                        if tx.send(Ok(line(&bm))).await.is_err() { return; }
                    }
                    ev = rx.recv() => match ev {
                        Ok(ev) => {
                            last_rv = last_rv.max(ev.rv);
                            if let Some(v) = filter.event_json(&ev, &rt) && tx.send(Ok(line(&v))).await.is_err() { return; }
                        }
                        // A watcher too slow to keep up is closed; clients re-watch from their
                        // last resourceVersion, as with a real apiserver's watch cache.
                        Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            }
        });
        let stream = tokio_stream_from(body_rx);
        Ok(Response::builder()
            .status(200)
            .header(header::CONTENT_TYPE, "application/json")
            .header("Transfer-Encoding", "chunked")
            .body(Body::from_stream(stream))
            .unwrap_or_default())
    }

    fn check_namespace(&self, st: &State, t: &Target) -> Result<(), ApiError> {
        if let Some(ns) = &t.namespace {
            match st.get(&(String::new(), "namespaces".into()), &(String::new(), ns.clone())) {
                None => return Err(ApiError::not_found("", "namespaces", ns)),
                Some(n) if meta(&n).contains_key("deletionTimestamp") => {
                    let mut e = ApiError::forbidden(format!(
                        "{} \"{}\" is forbidden: unable to create new content in namespace {} because it is being terminated",
                        qualified(&t.rt.group, &t.rt.plural),
                        t.name.as_deref().unwrap_or(""),
                        ns
                    ));
                    e.details = Some(Box::new(
                        json!({"causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]}),
                    ));
                    return Err(e);
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Checks apiVersion/kind/namespace of a body against the URL.
    fn check_body(&self, t: &Target, obj: &mut Value) -> Result<(), ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request("the body of the request must be a JSON object"));
        }
        if let Some(av) = obj.get("apiVersion").and_then(Value::as_str)
            && av != t.rt.api_version()
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({})",
                t.rt.api_version()
            )));
        }
        if let Some(k) = obj.get("kind").and_then(Value::as_str)
            && k != t.rt.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                t.rt.kind
            )));
        }
        obj["apiVersion"] = json!(t.rt.api_version());
        obj["kind"] = json!(t.rt.kind);
        let m = meta_mut(obj);
        if t.rt.namespaced {
            let url_ns = t.namespace.clone().unwrap_or_default();
            match m.get("namespace").and_then(Value::as_str) {
                Some(ns) if !ns.is_empty() && ns != url_ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {
                    m.insert("namespace".into(), json!(url_ns));
                }
            }
        } else {
            // Cluster-scoped objects never carry a namespace; kube-apiserver clears it.
            m.remove("namespace");
        }
        if let Some(n) = &t.name {
            match m.get("name").and_then(Value::as_str) {
                Some(b) if b != n => {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({b}) does not match the name on the URL ({n})"
                    )));
                }
                _ => {
                    m.insert("name".into(), json!(n));
                }
            }
        }
        Ok(())
    }

    /// Defaulting, validation, size, generation and status handling shared by every write.
    /// `old` is the stored object for updates.
    fn finish(&self, st: &mut State, t: &Target, obj: &mut Value, old: Option<&Value>) -> Result<(), ApiError> {
        let name = meta_str(obj, "name").unwrap_or("").to_owned();
        validate_name(&t.rt, &name)?;
        machinery::apply_defaults(&t.rt, t.custom, obj);
        if t.rt.kind == "Service" && old.is_none() && !self.q.dry_run() {
            let ty = obj.pointer("/spec/type").and_then(Value::as_str).unwrap_or("ClusterIP");
            let requested = obj
                .pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            if ty != "ExternalName" && requested.as_deref() != Some("None") {
                let ip = st.allocate_ip(requested.as_deref()).map_err(|m| {
                    ApiError::invalid(
                        "",
                        "Service",
                        &name,
                        format!(
                            "Service \"{name}\" is invalid: spec.clusterIPs: Invalid value: []string{{{:?}}}: {m}",
                            requested.clone().unwrap_or_default()
                        ),
                        vec![],
                    )
                })?;
                obj["spec"]["clusterIP"] = json!(ip);
                obj["spec"]["clusterIPs"] = json!([ip]);
            } else if requested.as_deref() == Some("None") {
                obj["spec"]["clusterIPs"] = json!(["None"]);
            }
        } else if t.rt.kind == "Service" && old.is_none() && obj.pointer("/spec/clusterIP").is_none() {
            obj["spec"]["clusterIP"] = json!("10.96.0.1");
            obj["spec"]["clusterIPs"] = json!(["10.96.0.1"]);
        }
        machinery::validate(&t.rt, obj, old)?;
        let size = serde_json::to_vec(obj).map(|v| v.len()).unwrap_or(0);
        if size > MAX_OBJECT {
            return Err(ApiError::too_large(format!(
                "etcdserver: request is too large ({size} bytes > {MAX_OBJECT})"
            )));
        }
        Ok(())
    }

    fn create(&self, t: &Target, body: &Value) -> Result<Response, ApiError> {
        if t.name.is_some() {
            return Err(ApiError::method_not_allowed("POST is not allowed on a named object"));
        }
        let mut obj = body.clone();
        self.check_body(t, &mut obj)?;
        let now = now_rfc3339();
        let manager = self.manager("create");
        let mut st = self.shared.lock();
        let t = &Target {
            name: None,
            ..t.clone_shallow()
        };
        self.check_namespace(&st, t)?;
        let name = match meta_str(&obj, "name").filter(|n| !n.is_empty()) {
            Some(n) => n.to_owned(),
            None => match meta_str(&obj, "generateName").filter(|n| !n.is_empty()) {
                Some(prefix) => {
                    let n = format!("{prefix}{}", st.name_suffix());
                    meta_mut(&mut obj).insert("name".into(), json!(n));
                    n
                }
                None => {
                    return Err(ApiError::invalid(
                        &t.rt.group,
                        &t.rt.kind,
                        "",
                        format!(
                            "{}{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                            t.rt.kind,
                            if t.rt.group.is_empty() {
                                String::new()
                            } else {
                                format!(".{}", t.rt.group)
                            }
                        ),
                        vec![
                            json!({"reason": "FieldValueRequired", "message": "Required value: name or generateName is required", "field": "metadata.name"}),
                        ],
                    ));
                }
            },
        };
        let key = (t.namespace.clone().unwrap_or_default(), name.clone());
        if st.get(&t.res(), &key).is_some() {
            return Err(ApiError::already_exists(&t.rt.group, &t.rt.plural, &name));
        }
        let stored = self.insert_new(&mut st, t, key, obj, &now, Some(&manager))?;
        Ok(json_response(201, &at_version(&stored, &t.rt)))
    }

    /// The shared tail of every create (POST, or server-side apply of a missing object):
    /// drops status where a status subresource owns it, stamps server metadata, defaults and
    /// validates, records field ownership for `update_manager` (apply already did), and
    /// stores unless this is a dry run.
    fn insert_new(
        &self,
        st: &mut State,
        t: &Target,
        key: ObjKey,
        mut obj: Value,
        now: &str,
        update_manager: Option<&str>,
    ) -> Result<Value, ApiError> {
        if t.rt.status_subresource
            && t.rt.kind != "Namespace"
            && t.rt.kind != "CustomResourceDefinition"
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }
        self.stamp_new(st, t, &mut obj, now, update_manager.is_none());
        self.finish(st, t, &mut obj, None)?;
        if let Some(manager) = update_manager {
            machinery::track_update(None, &mut obj, manager, &t.rt, t.custom, now, None)?;
        }
        Ok(if self.q.dry_run() {
            obj
        } else {
            self.store(st, t, key, obj)
        })
    }

    /// Sets the metadata a new object gets from the server. `keep_managed` keeps the
    /// managedFields that server-side apply just computed.
    fn stamp_new(&self, st: &mut State, t: &Target, obj: &mut Value, now: &str, keep_managed: bool) {
        let (rt, custom) = (&t.rt, t.custom);
        let uid = st.new_uid();
        let m = meta_mut(obj);
        m.insert("uid".into(), json!(uid));
        m.insert("creationTimestamp".into(), json!(now));
        if tracks_generation(rt, custom) {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
        m.remove("resourceVersion");
        m.remove("deletionTimestamp");
        if !keep_managed {
            m.remove("managedFields");
        }
        m.remove("selfLink");
    }

    /// Stores and notifies controllers; returns the stored object.
    fn store(&self, st: &mut State, t: &Target, key: ObjKey, obj: Value) -> Value {
        let stored = st.put(&t.res(), key.clone(), obj);
        let _ = self
            .shared
            .controller
            .send(ControllerMsg::Changed { res: t.res(), key });
        (*stored).clone()
    }

    /// The shared tail of PUT and PATCH: preconditions, status/spec split, generation,
    /// defaulting, validation, no-op detection, store.
    fn write_update(
        &self,
        st: &mut State,
        t: &Target,
        old: &Value,
        mut obj: Value,
        how: Writer<'_>,
    ) -> Result<Value, ApiError> {
        let Writer { manager, now, apply } = how;
        let name = t.name.clone().unwrap_or_default();
        // Optimistic concurrency: a resourceVersion in the body must match.
        if let Some(rv) = meta_str(&obj, "resourceVersion").filter(|s| !s.is_empty())
            && Some(rv) != meta_str(old, "resourceVersion")
        {
            return Err(ApiError::stale(&t.rt.group, &t.rt.plural, &name));
        }
        if let Some(uid) = meta_str(&obj, "uid").filter(|s| !s.is_empty())
            && Some(uid) != meta_str(old, "uid")
        {
            return Err(ApiError::stale(&t.rt.group, &t.rt.plural, &name));
        }
        // System metadata is the server's.
        {
            let om = meta(old).clone();
            let m = meta_mut(&mut obj);
            for k in [
                "uid",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ] {
                match om.get(k) {
                    Some(v) => {
                        m.insert(k.into(), v.clone());
                    }
                    None => {
                        m.remove(k);
                    }
                }
            }
            m.insert(
                "resourceVersion".into(),
                om.get("resourceVersion").cloned().unwrap_or(Value::Null),
            );
        }
        let status_only = t.sub.as_deref() == Some("status");
        if status_only {
            // Writes to /status change only status (and metadata stays as stored).
            let status = obj.get("status").cloned();
            let mut merged = old.clone();
            match status {
                Some(s) => merged["status"] = s,
                None => {
                    if let Some(m) = merged.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            if apply && let Some(mf) = meta(&obj).get("managedFields") {
                meta_mut(&mut merged).insert("managedFields".into(), mf.clone());
            }
            obj = merged;
        } else if t.rt.status_subresource {
            // The main resource endpoint ignores status changes.
            match old.get("status") {
                Some(s) => obj["status"] = s.clone(),
                None => {
                    if let Some(m) = obj.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        if !status_only && tracks_generation(&t.rt, t.custom) && spec_part(&obj) != spec_part(old) {
            let g = meta(old).get("generation").and_then(Value::as_i64).unwrap_or(1);
            meta_mut(&mut obj).insert("generation".into(), json!(g + 1));
        }
        self.finish(st, t, &mut obj, Some(old))?;
        if !apply {
            machinery::track_update(Some(old), &mut obj, manager, &t.rt, t.custom, now, t.sub.as_deref())?;
        }
        if comparable(&obj) == comparable(old) {
            // kube-apiserver skips the etcd write when nothing changed: no new resourceVersion,
            // no watch event.
            return Ok(old.clone());
        }
        // Removing the last finalizer of an object being deleted completes the deletion.
        let finalizers_empty = meta(&obj)
            .get("finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if meta(&obj).contains_key("deletionTimestamp") && finalizers_empty && t.rt.kind != "Namespace" {
            if self.q.dry_run() {
                return Ok(obj);
            }
            st.remove(&t.res(), &t.key());
            self.after_delete(st, t, old);
            return Ok(obj);
        }
        if self.q.dry_run() {
            return Ok(obj);
        }
        Ok(self.store(st, t, t.key(), obj))
    }

    fn update(&self, t: &Target, mut body: Value) -> Result<Response, ApiError> {
        if t.name.is_none() {
            return Err(ApiError::method_not_allowed("PUT is not allowed on a collection"));
        }
        if t.sub.as_deref() == Some("scale") {
            return self.scale_write(t, &body);
        }
        self.check_body(t, &mut body)?;
        let now = now_rfc3339();
        let manager = self.manager("update");
        let mut st = self.shared.lock();
        let old = st
            .get(&t.res(), &t.key())
            .ok_or_else(|| ApiError::not_found(&t.rt.group, &t.rt.plural, t.name.as_deref().unwrap_or("")))?;
        if meta_str(&body, "resourceVersion").is_none_or(str::is_empty) && t.custom {
            return Err(ApiError::invalid(
                &t.rt.group,
                &t.rt.kind,
                t.name.as_deref().unwrap_or(""),
                format!(
                    "{}.{} \"{}\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
                    t.rt.kind,
                    t.rt.group,
                    t.name.as_deref().unwrap_or("")
                ),
                vec![],
            ));
        }
        let obj = self.write_update(
            &mut st,
            t,
            &old,
            body,
            Writer {
                manager: &manager,
                now: &now,
                apply: false,
            },
        )?;
        Ok(json_response(200, &at_version(&obj, &t.rt)))
    }

    fn patch(&self, t: &Target, kind: PatchKind, body: &Value) -> Result<Response, ApiError> {
        if t.name.is_none() {
            return Err(ApiError::method_not_allowed("PATCH is not allowed on a collection"));
        }
        if t.sub.as_deref() == Some("scale") {
            let st = self.shared.lock();
            let old = st
                .get(&t.res(), &t.key())
                .ok_or_else(|| ApiError::not_found(&t.rt.group, &t.rt.plural, t.name.as_deref().unwrap_or("")))?;
            let scale = scale_of(&old);
            drop(st);
            let patched = machinery::patch(PatchKind::Merge, &scale, body, &t.rt, true)?;
            return self.scale_write(t, &patched);
        }
        let now = now_rfc3339();
        let mut st = self.shared.lock();
        let old = st.get(&t.res(), &t.key());
        if kind == PatchKind::Apply {
            let manager = self.q.get("fieldManager").filter(|m| !m.is_empty()).ok_or_else(|| ApiError::bad_request("PATCH requests with an apply patch must set fieldManager: fieldManager is required for apply requests"))?.to_owned();
            let force = self.q.flag("force");
            let mut config = body.clone();
            self.check_body(t, &mut config)?;
            if t.rt.status_subresource
                && t.sub.is_none()
                && let Some(m) = config.as_object_mut()
            {
                m.remove("status");
            }
            let sub = t.sub.as_deref();
            match old {
                None => {
                    if sub.is_some() {
                        return Err(ApiError::not_found(
                            &t.rt.group,
                            &t.rt.plural,
                            t.name.as_deref().unwrap_or(""),
                        ));
                    }
                    self.check_namespace(&st, t)?;
                    let obj =
                        machinery::server_side_apply(None, &config, &manager, force, &t.rt, t.custom, &now, None)?;
                    let stored = self.insert_new(&mut st, t, t.key(), obj, &now, None)?;
                    return Ok(json_response(201, &at_version(&stored, &t.rt)));
                }
                Some(old) => {
                    let new =
                        machinery::server_side_apply(Some(&old), &config, &manager, force, &t.rt, t.custom, &now, sub)?;
                    let obj = self.write_update(
                        &mut st,
                        t,
                        &old,
                        new,
                        Writer {
                            manager: &manager,
                            now: &now,
                            apply: true,
                        },
                    )?;
                    return Ok(json_response(200, &at_version(&obj, &t.rt)));
                }
            }
        }
        let old = old.ok_or_else(|| ApiError::not_found(&t.rt.group, &t.rt.plural, t.name.as_deref().unwrap_or("")))?;
        let manager = self.manager("patch");
        let mut new = machinery::patch(kind, &old, body, &t.rt, t.custom)?;
        if !new.is_object() {
            return Err(ApiError::bad_request("the patch did not produce an object"));
        }
        self.check_body(t, &mut new)?;
        // A patch without resourceVersion is unconditional: drop the one copied from `old`.
        if body.pointer("/metadata/resourceVersion").is_none() {
            meta_mut(&mut new).remove("resourceVersion");
        }
        let obj = self.write_update(
            &mut st,
            t,
            &old,
            new,
            Writer {
                manager: &manager,
                now: &now,
                apply: false,
            },
        )?;
        Ok(json_response(200, &at_version(&obj, &t.rt)))
    }

    fn scale_write(&self, t: &Target, scale: &Value) -> Result<Response, ApiError> {
        let replicas = scale
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .ok_or_else(|| ApiError::bad_request("Scale.spec.replicas is required"))?;
        let now = now_rfc3339();
        let manager = self.manager("scale");
        let mut st = self.shared.lock();
        let old = st
            .get(&t.res(), &t.key())
            .ok_or_else(|| ApiError::not_found(&t.rt.group, &t.rt.plural, t.name.as_deref().unwrap_or("")))?;
        let mut new = (*old).clone();
        new["spec"]["replicas"] = json!(replicas);
        meta_mut(&mut new).remove("resourceVersion");
        let main = Target {
            sub: None,
            ..t.clone_shallow()
        };
        let obj = self.write_update(
            &mut st,
            &main,
            &old,
            new,
            Writer {
                manager: &manager,
                now: &now,
                apply: false,
            },
        )?;
        Ok(json_response(200, &scale_of(&obj)))
    }

    fn delete(&self, t: &Target, opts: &Value) -> Result<Response, ApiError> {
        let mut st = self.shared.lock();
        let old = st
            .get(&t.res(), &t.key())
            .ok_or_else(|| ApiError::not_found(&t.rt.group, &t.rt.plural, t.name.as_deref().unwrap_or("")))?;
        if let Some(uid) = opts.pointer("/preconditions/uid").and_then(Value::as_str)
            && Some(uid) != meta_str(&old, "uid")
        {
            return Err(ApiError::stale(
                &t.rt.group,
                &t.rt.plural,
                t.name.as_deref().unwrap_or(""),
            ));
        }
        if let Some(rv) = opts.pointer("/preconditions/resourceVersion").and_then(Value::as_str)
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::stale(
                &t.rt.group,
                &t.rt.plural,
                t.name.as_deref().unwrap_or(""),
            ));
        }
        let dry = self.q.dry_run()
            || opts
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| v == "All"));
        let policy = self
            .q
            .get("propagationPolicy")
            .map(str::to_owned)
            .or_else(|| opts.get("propagationPolicy").and_then(Value::as_str).map(str::to_owned))
            .or_else(|| {
                // Deprecated orphanDependents.
                match opts.get("orphanDependents").and_then(Value::as_bool) {
                    Some(true) => Some("Orphan".into()),
                    Some(false) => Some("Background".into()),
                    None => None,
                }
            });
        let policy = policy.unwrap_or_else(|| "Background".into());
        if !matches!(policy.as_str(), "Background" | "Foreground" | "Orphan") {
            return Err(ApiError::bad_request(format!(
                "DeleteOptions.propagationPolicy: Unsupported value: {policy:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
            )));
        }
        let out = self.delete_one(&mut st, t, &old, &policy, dry);
        Ok(json_response(200, &at_version(&out, &t.rt)))
    }

    /// Deletes one object: immediately, or by marking it with a deletionTimestamp when
    /// finalizers (including `foregroundDeletion`) or namespace teardown must run first.
    fn delete_one(&self, st: &mut State, t: &Target, old: &Value, policy: &str, dry: bool) -> Value {
        let mut finalizers: Vec<Value> = meta(old)
            .get("finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let is_ns = t.rt.kind == "Namespace";
        let uid = meta_str(old, "uid").unwrap_or("").to_owned();
        if policy == "Foreground" && !finalizers.iter().any(|f| f == "foregroundDeletion") && has_dependents(st, &uid) {
            finalizers.push(json!("foregroundDeletion"));
        }
        if finalizers.is_empty() && !is_ns {
            if dry {
                return old.clone();
            }
            if policy == "Orphan" {
                orphan_dependents(st, &uid);
            }
            let removed = st
                .remove(&t.res(), &t.key())
                .map(|o| (*o).clone())
                .unwrap_or_else(|| old.clone());
            self.after_delete(st, t, old);
            return removed;
        }
        if meta(old).contains_key("deletionTimestamp") {
            return old.clone();
        }
        let mut marked = old.clone();
        {
            let m = meta_mut(&mut marked);
            m.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            if !finalizers.is_empty() {
                m.insert("finalizers".into(), Value::Array(finalizers));
            }
        }
        if is_ns {
            marked["status"]["phase"] = json!("Terminating");
        }
        if dry {
            return marked;
        }
        if policy == "Orphan" {
            orphan_dependents(st, &uid);
        }
        let stored = self.store(st, t, t.key(), marked);
        if is_ns {
            let _ = self
                .shared
                .controller
                .send(ControllerMsg::NamespaceDeleted(t.name.clone().unwrap_or_default()));
        }
        if policy == "Foreground" {
            let _ = self.shared.controller.send(ControllerMsg::CollectGarbage);
        }
        stored
    }

    fn after_delete(&self, st: &mut State, t: &Target, old: &Value) {
        if t.rt.kind == "CustomResourceDefinition" {
            crate::controllers::unregister_crd(st, meta_str(old, "name").unwrap_or(""));
        }
        let _ = self.shared.controller.send(ControllerMsg::CollectGarbage);
    }

    fn delete_collection(&self, t: &Target, opts: &Value) -> Result<Response, ApiError> {
        let labels = LabelSelector::parse(self.q.get("labelSelector").unwrap_or(""))?;
        let fields = FieldSelector::parse(self.q.get("fieldSelector").unwrap_or(""))?;
        let policy = self
            .q
            .get("propagationPolicy")
            .or_else(|| opts.get("propagationPolicy").and_then(Value::as_str))
            .unwrap_or("Background")
            .to_owned();
        let dry = self.q.dry_run() || body_dry_run(opts);
        let mut st = self.shared.lock();
        let victims: Vec<(ObjKey, Arc<Value>)> = st
            .list(&t.res(), t.namespace.as_deref())
            .filter(|(_, o)| labels.matches(o) && fields.matches(o))
            .map(|(k, o)| (k.clone(), o.clone()))
            .collect();
        let mut items = Vec::new();
        for (key, obj) in victims {
            let one = Target {
                namespace: if t.rt.namespaced { Some(key.0.clone()) } else { None },
                name: Some(key.1.clone()),
                ..t.clone_shallow()
            };
            items.push(at_version(&self.delete_one(&mut st, &one, &obj, &policy, dry), &t.rt));
        }
        Ok(json_response(
            200,
            &json!({"kind": format!("{}List", t.rt.kind), "apiVersion": t.rt.api_version(), "metadata": {"resourceVersion": st.rv.to_string()}, "items": items}),
        ))
    }
}

/// Who writes and how, for [`Ctx::write_update`].
#[derive(Clone, Copy)]
struct Writer<'a> {
    manager: &'a str,
    now: &'a str,
    /// Server-side apply (managed fields already computed) rather than an update.
    apply: bool,
}

impl Target {
    fn clone_shallow(&self) -> Target {
        Target {
            rt: self.rt.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            sub: self.sub.clone(),
            custom: self.custom,
        }
    }
}

/// `DeleteOptions.dryRun: ["All"]` in a request body.
fn body_dry_run(opts: &Value) -> bool {
    opts.get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|v| v == "All"))
}

/// The autoscaling/v1 Scale view of a workload.
fn scale_of(obj: &Value) -> Value {
    let m = meta(obj);
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|l| {
            l.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": m.get("name"), "namespace": m.get("namespace"), "uid": m.get("uid"), "resourceVersion": m.get("resourceVersion"), "creationTimestamp": m.get("creationTimestamp")},
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {"replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)), "selector": selector}
    })
}

fn has_dependents(st: &State, uid: &str) -> bool {
    !uid.is_empty()
        && st
            .objects
            .values()
            .flat_map(|m| m.values())
            .any(|o| owner_uids(o).any(|u| u == uid))
}

/// uids in an object's ownerReferences.
pub fn owner_uids(obj: &Value) -> impl Iterator<Item = &str> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("uid").and_then(Value::as_str))
}

fn orphan_dependents(st: &mut State, uid: &str) {
    let mut updates = Vec::new();
    for (res, objs) in &st.objects {
        for (key, o) in objs {
            if owner_uids(o).any(|u| u == uid) {
                let mut n = (**o).clone();
                if let Some(Value::Array(refs)) = n.pointer_mut("/metadata/ownerReferences") {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
                }
                updates.push((res.clone(), key.clone(), n));
            }
        }
    }
    for (res, key, n) in updates {
        st.put(&res, key, n);
    }
}

fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

fn tokio_stream_from(
    mut rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn encode_continue(k: &ObjKey, rv: u64) -> String {
    let raw = json!({"ns": k.0, "name": k.1, "rv": rv}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_continue(token: &str, compacted: u64) -> Result<ObjKey, ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v.get("rv").and_then(Value::as_u64).ok_or_else(bad)?;
    if rv < compacted {
        return Err(ApiError::expired(
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
        ));
    }
    Ok((
        v.get("ns").and_then(Value::as_str).unwrap_or("").to_owned(),
        v.get("name").and_then(Value::as_str).ok_or_else(bad)?.to_owned(),
    ))
}

/// What one watch connection wants to see.
struct WatchFilter {
    res: ResKey,
    namespace: Option<String>,
    name: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl WatchFilter {
    fn matches(&self, obj: &Value) -> bool {
        if let Some(n) = &self.name
            && meta_str(obj, "name") != Some(n.as_str())
        {
            return false;
        }
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    /// The event as the client should see it, or None when it is filtered out. A
    /// modification that moves an object out of the selector is sent as DELETED, into it as
    /// ADDED, as kube-apiserver's watch cache does.
    fn event_json(&self, ev: &Event, rt: &ResourceType) -> Option<Value> {
        if ev.res != self.res {
            return None;
        }
        if let Some(ns) = &self.namespace
            && &ev.namespace != ns
        {
            return None;
        }
        let now = self.matches(&ev.object);
        let before = ev.old.as_ref().map(|o| self.matches(o));
        let etype = match (ev.etype, before, now) {
            (EventType::Modified, Some(true), true) => "MODIFIED",
            (EventType::Modified, Some(false), true) => "ADDED",
            (EventType::Modified, Some(true), false) => "DELETED",
            (EventType::Modified, _, false) => return None,
            (EventType::Modified, None, true) => "MODIFIED",
            (t, _, true) => t.as_str(),
            (_, _, false) => return None,
        };
        Some(json!({"type": etype, "object": at_version(&ev.object, rt)}))
    }
}

/// uids of every stored object (for garbage collection).
pub fn all_uids(st: &State) -> HashSet<String> {
    st.objects
        .values()
        .flat_map(|m| m.values())
        .filter_map(|o| meta_str(o, "uid").map(str::to_owned))
        .collect()
}

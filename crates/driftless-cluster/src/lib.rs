//! driftless-cluster: all Kubernetes API access for driftless.
//!
//! [`ClusterClient`] loads a kubeconfig (refusing exec credential plugins unless allowed),
//! resolves `apiVersion` + `kind` through a discovery cache, and gets, server-side applies,
//! deletes and lists objects as plain `serde_json::Value`s. It carries out decisions; it
//! never makes them: whether to sync, what to prune and in which order belong to the engine.
//!
//! # Decisions
//!
//! * **Objects stay JSON.** Requests are built with `kube::core::Request` and answered as
//!   `serde_json::Value`, not `DynamicObject`: a typed round trip through `ObjectMeta`
//!   would reorder or drop metadata the diff compares, and the engine works on `Value`s.
//! * **Server-side apply only**, field manager [`FIELD_MANAGER`]. Dry-run uses
//!   `dryRun=All`, which the API server guarantees to write nothing; the diff is the dry-run
//!   result against the live object.
//! * **Retries are bounded** ([`RetryPolicy`], default 5 attempts): 429 honouring
//!   `Retry-After`, 5xx, connection errors, and optimistic-concurrency 409s. Field-manager
//!   conflicts are never retried away, because resolving them means taking fields from
//!   another owner — a person decides that (`force`). See the `retry` module.
//! * **No guessing a namespace.** A namespaced object without `metadata.namespace` is an
//!   error here; the engine fills the application's default namespace before applying, so
//!   the kubeconfig's namespace can never silently decide where things land.
//! * **Errors are classified** ([`ClusterError::is_retryable`]) and name the object as
//!   `Kind/ns/name`. They never include request bodies, and messages about Secrets have
//!   quoted values redacted.
//! * **Untrusted strings are checked before reaching a URL**: apiVersions (from manifests),
//!   names and namespaces must be valid path segments (no `/`, `%`, `?`, `#`, `.`, `..`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), driftless_cluster::ClusterError> {
//! use driftless_cluster::ClusterClient;
//! let cluster = ClusterClient::connect(None, None, false).await?;
//! let cm = cluster.resolve("v1", "ConfigMap").await?;
//! let obj = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
//!     "metadata": {"name": "settings", "namespace": "default"}, "data": {"k": "v"}});
//! let preview = cluster.apply(&cm, &obj, true, false).await?; // dry run: no writes
//! # let _ = preview; Ok(()) }
//! ```

#![warn(missing_docs)]

mod discovery;
mod error;
mod kubeconfig;
mod retry;
pub mod watch;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{DeleteParams, GetParams, ListParams, Patch, PatchParams, PropagationPolicy};
use serde_json::Value;

pub use discovery::Resolved;
pub use error::{ClusterError, redact_secret_message};
pub use retry::RetryPolicy;
pub use watch::{APP_LABEL, DriftEvent, DriftKind, DriftWatcher};

use discovery::{Cache, Served, parse_resource_list, split_api_version};
use retry::Target;

/// The field manager driftless applies as.
pub const FIELD_MANAGER: &str = "driftless";

/// How dependents of a deleted object are deleted (Kubernetes `propagationPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Delete the object now; the garbage collector deletes dependents afterwards.
    #[default]
    Background,
    /// Delete dependents first; the object disappears after them.
    Foreground,
    /// Leave dependents in place, without an owner.
    Orphan,
}

/// A connection to one cluster. Cheap to clone; clones share the discovery cache.
#[derive(Clone)]
pub struct ClusterClient {
    client: kube::Client,
    server: Arc<str>,
    context: Option<Arc<str>>,
    cache: Arc<Cache>,
    retry: RetryPolicy,
    requests: Arc<RequestCounts>,
}

/// API calls made through a [`ClusterClient`] (and its clones), by verb: one per logical
/// call, retries not counted. Watches are counted by the watcher's own re-list/re-watch.
#[derive(Default, Debug)]
pub struct RequestCounts {
    get: std::sync::atomic::AtomicU64,
    list: std::sync::atomic::AtomicU64,
    patch: std::sync::atomic::AtomicU64,
    delete: std::sync::atomic::AtomicU64,
    discovery: std::sync::atomic::AtomicU64,
}

impl RequestCounts {
    fn inc(counter: &std::sync::atomic::AtomicU64) {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl std::fmt::Debug for ClusterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterClient")
            .field("server", &self.server)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl ClusterClient {
    /// Loads a kubeconfig: `path` if given, else `$KUBECONFIG`, else `~/.kube/config`;
    /// `context` or the current one.
    ///
    /// Exec credential plugins (and `auth-provider` `cmd-path`) are refused unless
    /// `allow_exec`, because they run programs named by whoever wrote the kubeconfig
    /// (Flux CVE-2022-24817). Connecting makes no request; see [`ClusterClient::ping`].
    pub async fn connect(
        path: Option<&std::path::Path>,
        context: Option<&str>,
        allow_exec: bool,
    ) -> Result<ClusterClient, ClusterError> {
        let mut loaded = kubeconfig::load(path, context, allow_exec).await?;
        // kube-rs's own retry layer (on by default) retries 429/503/504 up to 15 times with
        // a backoff capped at 1000 s: under sustained throttling a request could hang for
        // many minutes, and on top of ours attempts would multiply. Retries are ours alone.
        loaded.config.default_retry = false;
        let server = loaded.config.cluster_url.to_string();
        let server = server.trim_end_matches('/').to_owned();
        let client = kube::Client::try_from(loaded.config).map_err(|e| {
            ClusterError::Kubeconfig(format!(
                "cannot build a client for context {:?} ({server}): {}",
                loaded.context,
                error::error_chain(&e)
            ))
        })?;
        let mut cluster = ClusterClient::from_client_with_server(client, server);
        cluster.context = Some(Arc::from(loaded.context.as_str()));
        Ok(cluster)
    }

    /// Wraps an existing kube client. Its server URL is unknown to us, so messages say
    /// "the configured cluster"; prefer [`ClusterClient::from_client_with_server`].
    ///
    /// Build the client from a `kube::Config` with `default_retry = false`, or kube-rs's
    /// own retry layer runs underneath this crate's bounded retries (see [`RetryPolicy`]).
    pub fn from_client(client: kube::Client) -> ClusterClient {
        ClusterClient::from_client_with_server(client, "the configured cluster")
    }

    /// Wraps an existing kube client whose API server URL is `server` (for messages).
    pub fn from_client_with_server(client: kube::Client, server: impl Into<String>) -> ClusterClient {
        ClusterClient {
            client,
            server: Arc::from(server.into().as_str()),
            context: None,
            cache: Arc::new(Cache::default()),
            retry: RetryPolicy::default(),
            requests: Arc::default(),
        }
    }

    /// The same client with another retry policy (clones keep sharing the cache).
    pub fn with_retry(mut self, policy: RetryPolicy) -> ClusterClient {
        self.retry = policy;
        self
    }

    /// The API server URL (for messages).
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The kubeconfig context in use, when connected through [`ClusterClient::connect`].
    pub fn context(&self) -> Option<&str> {
        self.context.as_deref()
    }

    /// The underlying kube client, for watchers (kube-runtime) and anything not wrapped here.
    pub fn kube_client(&self) -> &kube::Client {
        &self.client
    }

    /// Checks that the API server answers; returns its version (`v1.33.0`).
    pub async fn ping(&self) -> Result<String, ClusterError> {
        let info = retry::run(&self.retry, self.target("/version", ""), || {
            self.client.apiserver_version()
        })
        .await?;
        Ok(info.git_version)
    }

    /// Resolves `apiVersion` + `kind` through discovery. Cached; on a miss the one
    /// group-version is fetched again, so kinds of a CRD created moments ago are found.
    pub async fn resolve(&self, api_version: &str, kind: &str) -> Result<Resolved, ClusterError> {
        let not_served = || ClusterError::KindNotServed {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        };
        if split_api_version(api_version).is_none() || kind.is_empty() {
            return Err(not_served());
        }
        if let Some(r) = self.cache.lookup(api_version, kind) {
            return Ok(r);
        }
        self.refresh_version(api_version).await?;
        self.cache.lookup(api_version, kind).ok_or_else(not_served)
    }

    /// Fetches one group-version's resources into the cache. A group-version the server
    /// does not serve (404) is cached as empty.
    async fn refresh_version(&self, api_version: &str) -> Result<Vec<Served>, ClusterError> {
        let Some((group, version)) = split_api_version(api_version) else {
            return Ok(Vec::new());
        };
        let what = format!("discovery of {api_version}");
        let result = retry::run(&self.retry, self.target(&what, ""), || async {
            if group.is_empty() {
                self.client.list_core_api_resources(version).await
            } else {
                self.client.list_api_group_resources(api_version).await
            }
        })
        .await;
        let served = match result {
            Ok(list) => parse_resource_list(group, version, &list),
            Err(ClusterError::Api { code: 404, .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        self.cache.store_version(api_version, served.clone());
        Ok(served)
    }

    /// Forgets cached discovery; the next questions go to the API server.
    pub fn refresh_discovery(&self) {
        self.cache.clear();
    }

    /// Totals of API calls by verb (`get`, `list`, `patch`, `delete`, `discovery`) since the
    /// client was created, shared by its clones — for metrics.
    pub fn request_counts(&self) -> Vec<(String, u64)> {
        let r = &self.requests;
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        vec![
            ("get".into(), load(&r.get)),
            ("list".into(), load(&r.list)),
            ("patch".into(), load(&r.patch)),
            ("delete".into(), load(&r.delete)),
            ("discovery".into(), load(&r.discovery)),
        ]
    }

    /// Lists every listable kind discovery knows: core `v1` and each group's preferred
    /// version, subresources excluded. Cached until [`ClusterClient::refresh_discovery`]
    /// or a successful [`ClusterClient::wait_crd_established`].
    ///
    /// A group whose API is unavailable (an aggregated API answering 503, say) is left out
    /// with a warning rather than failing the whole list.
    pub async fn resolved_kinds(&self) -> Result<Vec<Resolved>, ClusterError> {
        if let Some(all) = self.cache.all() {
            return Ok(all.as_ref().clone());
        }
        RequestCounts::inc(&self.requests.discovery);
        let mut api_versions = Vec::new();
        let core = retry::run(&self.retry, self.target("discovery of /api", ""), || {
            self.client.list_core_api_versions()
        })
        .await?;
        api_versions.extend(core.versions);
        let groups = retry::run(&self.retry, self.target("discovery of /apis", ""), || {
            self.client.list_api_groups()
        })
        .await?;
        for g in groups.groups {
            let preferred = g
                .preferred_version
                .map(|v| v.group_version)
                .or_else(|| g.versions.first().map(|v| v.group_version.clone()));
            if let Some(gv) = preferred {
                api_versions.push(gv);
            }
        }
        let mut all = Vec::new();
        for api_version in api_versions {
            match self.refresh_version(&api_version).await {
                Ok(served) => all.extend(
                    served
                        .into_iter()
                        .filter(|s| s.verbs.iter().any(|v| v == "list"))
                        .map(|s| s.resolved),
                ),
                Err(e @ ClusterError::Api { .. }) => {
                    tracing::warn!(api_version, error = %e, "skipping unavailable API group");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(self.cache.store_all(all).as_ref().clone())
    }

    /// GETs one object; `Ok(None)` when it (or its namespace) does not exist.
    pub async fn get(&self, r: &Resolved, namespace: Option<&str>, name: &str) -> Result<Option<Value>, ClusterError> {
        RequestCounts::inc(&self.requests.get);
        let object = describe(r.kind(), namespace, name);
        let namespace = scope(r, namespace, &object)?;
        check_segment("name", name, &object)?;
        let request = kube::core::Request::new(r.collection_path(namespace));
        let result = retry::run(&self.retry, self.target(&object, r.kind()), || async {
            let req = request
                .get(name, &GetParams::default())
                .map_err(kube::Error::BuildRequest)?;
            self.client.request::<Value>(req).await
        })
        .await;
        match result {
            Ok(v) => Ok(Some(v)),
            Err(ClusterError::Api { code: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Server-side applies `obj` with field manager [`FIELD_MANAGER`] and returns the
    /// object as the server holds it afterwards (or would, when `dry_run`: `dryRun=All`
    /// writes nothing). `force` takes fields owned by other managers (`force=true`).
    ///
    /// `obj` must carry `metadata.name`, and `metadata.namespace` when the kind is
    /// namespaced; a missing `apiVersion`/`kind` is filled from `r`. A namespace on a
    /// cluster-scoped object is dropped, as the API server would ignore it.
    ///
    /// Retries as described in the crate docs; a field conflict is
    /// [`ClusterError::Conflict`] (retried only when `force`).
    pub async fn apply(&self, r: &Resolved, obj: &Value, dry_run: bool, force: bool) -> Result<Value, ClusterError> {
        RequestCounts::inc(&self.requests.patch);
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let namespace = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .filter(|ns| !ns.is_empty());
        let object = describe(r.kind(), namespace.filter(|_| r.namespaced), name);
        if !obj.is_object() {
            return Err(invalid(&object, "the manifest is not a JSON/YAML object"));
        }
        if name.is_empty() {
            return Err(invalid(&object, "metadata.name is required"));
        }
        check_segment("name", name, &object)?;
        let body = normalized_body(r, obj, &object)?;
        let namespace = if r.namespaced {
            let ns = namespace.ok_or_else(|| {
                invalid(
                    &object,
                    &format!("{} is namespaced but metadata.namespace is not set", r.kind()),
                )
            })?;
            check_segment("namespace", ns, &object)?;
            Some(ns)
        } else {
            None
        };
        let params = PatchParams {
            dry_run,
            force,
            field_manager: Some(FIELD_MANAGER.to_owned()),
            field_validation: None,
        };
        let request = kube::core::Request::new(r.collection_path(namespace));
        let target = Target {
            retry_field_conflicts: force,
            ..self.target(&object, r.kind())
        };
        retry::run(&self.retry, target, || async {
            let req = request
                .patch(name, &params, &Patch::Apply(body.as_ref()))
                .map_err(kube::Error::BuildRequest)?;
            self.client.request::<Value>(req).await
        })
        .await
    }

    /// DELETEs one object with `propagationPolicy=Background`; `Ok(false)` if it was
    /// already gone. An object with finalizers may linger (with a `deletionTimestamp`)
    /// after this returns `true`.
    pub async fn delete(&self, r: &Resolved, namespace: Option<&str>, name: &str) -> Result<bool, ClusterError> {
        self.delete_with(r, namespace, name, Propagation::Background).await
    }

    /// [`ClusterClient::delete`] with a chosen propagation policy.
    pub async fn delete_with(
        &self,
        r: &Resolved,
        namespace: Option<&str>,
        name: &str,
        propagation: Propagation,
    ) -> Result<bool, ClusterError> {
        RequestCounts::inc(&self.requests.delete);
        let object = describe(r.kind(), namespace, name);
        let namespace = scope(r, namespace, &object)?;
        check_segment("name", name, &object)?;
        let params = DeleteParams {
            propagation_policy: Some(match propagation {
                Propagation::Background => PropagationPolicy::Background,
                Propagation::Foreground => PropagationPolicy::Foreground,
                Propagation::Orphan => PropagationPolicy::Orphan,
            }),
            ..DeleteParams::default()
        };
        let request = kube::core::Request::new(r.collection_path(namespace));
        let result = retry::run(&self.retry, self.target(&object, r.kind()), || async {
            let req = request.delete(name, &params).map_err(kube::Error::BuildRequest)?;
            // The answer is the object (finalizers pending) or a Status; either is JSON.
            self.client.request::<Value>(req).await
        })
        .await;
        match result {
            Ok(_) => Ok(true),
            Err(ClusterError::Api { code: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Lists objects of one kind matching `label_selector`, in all namespaces, following
    /// pagination. Items get `apiVersion` and `kind` filled in (list responses omit them).
    pub async fn list(&self, r: &Resolved, label_selector: &str) -> Result<Vec<Value>, ClusterError> {
        RequestCounts::inc(&self.requests.list);
        let what = if label_selector.is_empty() {
            format!("{} (all)", r.kind())
        } else {
            format!("{} with labels {label_selector}", r.kind())
        };
        let request = kube::core::Request::new(r.collection_path(None));
        let mut items = Vec::new();
        let mut continue_token: Option<String> = None;
        loop {
            let params = ListParams {
                label_selector: (!label_selector.is_empty()).then(|| label_selector.to_owned()),
                limit: Some(500),
                continue_token: continue_token.clone(),
                ..ListParams::default()
            };
            let page = retry::run(&self.retry, self.target(&what, r.kind()), || async {
                let req = request.list(&params).map_err(kube::Error::BuildRequest)?;
                self.client.request::<Value>(req).await
            })
            .await?;
            let Value::Object(mut page) = page else {
                return Err(ClusterError::Api {
                    object: what,
                    code: 0,
                    message: "the API server's list response is not an object".into(),
                });
            };
            if let Some(Value::Array(page_items)) = page.remove("items") {
                for mut item in page_items {
                    if let Some(map) = item.as_object_mut() {
                        map.entry("apiVersion").or_insert_with(|| Value::from(r.api_version()));
                        map.entry("kind").or_insert_with(|| Value::from(r.kind()));
                    }
                    items.push(item);
                }
            }
            continue_token = page
                .get("metadata")
                .and_then(|m| m.get("continue"))
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(str::to_owned);
            if continue_token.is_none() {
                return Ok(items);
            }
        }
    }

    /// Waits until the CustomResourceDefinition `crd_name` has condition
    /// `Established=True` and discovery serves its kind in every served version, or
    /// `timeout` passes ([`ClusterError::Timeout`], saying what was last seen).
    ///
    /// Polls (every 200 ms) rather than watching: a CRD is established within a second or
    /// two, polling goes through the same retrying GET as everything else, and discovery
    /// has no watch anyway. On success the full kind list is invalidated, so
    /// [`ClusterClient::resolved_kinds`] sees the new kinds.
    pub async fn wait_crd_established(&self, crd_name: &str, timeout: Duration) -> Result<(), ClusterError> {
        let crd = Resolved::custom_resource_definition();
        let object = describe(crd.kind(), None, crd_name);
        check_segment("name", crd_name, &object)?;
        let mut last_seen = String::from("not checked yet");
        let poll = async {
            loop {
                match self.crd_ready(&crd, crd_name).await {
                    Ok(None) => return Ok(()),
                    Ok(Some(why_not)) => last_seen = why_not,
                    Err(e) if e.is_retryable() => last_seen = e.to_string(),
                    Err(e) => return Err(e),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        // Bound the whole wait, retries of each GET included.
        let outcome = tokio::time::timeout(timeout, poll).await;
        match outcome {
            Ok(Ok(())) => {
                self.cache.invalidate_all();
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ClusterError::Timeout(format!(
                "{object} not Established after {:.1}s ({last_seen})",
                timeout.as_secs_f64()
            ))),
        }
    }

    /// `None` when the CRD is established and its kinds are served; otherwise what is
    /// missing.
    async fn crd_ready(&self, crd: &Resolved, name: &str) -> Result<Option<String>, ClusterError> {
        let Some(obj) = self.get(crd, None, name).await? else {
            return Ok(Some("it does not exist".into()));
        };
        let conditions = obj
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let condition = |t: &str| {
            conditions
                .iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some(t))
        };
        if let Some(c) = condition("NamesAccepted")
            && c.get("status").and_then(Value::as_str) == Some("False")
        {
            let message = c.get("message").and_then(Value::as_str).unwrap_or("");
            return Ok(Some(format!("NamesAccepted=False: {message}")));
        }
        match condition("Established") {
            Some(c) if c.get("status").and_then(Value::as_str) == Some("True") => {}
            Some(c) => {
                let message = c.get("message").and_then(Value::as_str).unwrap_or("");
                return Ok(Some(format!("Established is not True: {message}")));
            }
            None => return Ok(Some("no Established condition yet".into())),
        }
        let group = obj.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default();
        let kind = obj
            .pointer("/spec/names/kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let versions = obj
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for v in versions {
            if v.get("served").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let Some(version) = v.get("name").and_then(Value::as_str) else {
                continue;
            };
            let api_version = format!("{group}/{version}");
            match self.resolve(&api_version, kind).await {
                Ok(_) => {}
                Err(ClusterError::KindNotServed { .. }) => {
                    return Ok(Some(format!(
                        "Established, but discovery does not serve {kind} ({api_version}) yet"
                    )));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    fn target<'a>(&'a self, object: &'a str, kind: &'a str) -> Target<'a> {
        Target {
            server: &self.server,
            object,
            kind,
            retry_field_conflicts: false,
        }
    }
}

/// `Kind/ns/name` or `Kind/name`, as kubectl prints objects.
fn describe(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{kind}/{ns}/{name}"),
        _ => format!("{kind}/{name}"),
    }
}

fn invalid(object: &str, message: &str) -> ClusterError {
    ClusterError::Invalid {
        object: object.to_owned(),
        message: message.to_owned(),
    }
}

/// The namespace to put in the URL: required for namespaced kinds, ignored for
/// cluster-scoped ones.
fn scope<'a>(r: &Resolved, namespace: Option<&'a str>, object: &str) -> Result<Option<&'a str>, ClusterError> {
    if !r.namespaced {
        return Ok(None);
    }
    match namespace.filter(|ns| !ns.is_empty()) {
        Some(ns) => {
            check_segment("namespace", ns, object)?;
            Ok(Some(ns))
        }
        None => Err(invalid(
            object,
            &format!("{} is namespaced: a namespace is required", r.kind()),
        )),
    }
}

/// Names and namespaces become URL path segments: refuse what would change the path or
/// query (the API server's own rule for names plus URL delimiters and control characters).
fn check_segment(what: &str, value: &str, object: &str) -> Result<(), ClusterError> {
    let bad = value.is_empty()
        || value == "."
        || value == ".."
        || value.len() > 253
        || value
            .chars()
            .any(|c| matches!(c, '/' | '%' | '?' | '#') || c.is_whitespace() || c.is_control());
    if bad {
        return Err(invalid(
            object,
            &format!("{what} {value:?} is not a valid name for the API path"),
        ));
    }
    Ok(())
}

/// The apply body: `apiVersion`/`kind` filled from `r` when absent (and refused when they
/// contradict it), a namespace on a cluster-scoped object removed. Borrowed when nothing
/// changes.
fn normalized_body<'a>(r: &Resolved, obj: &'a Value, object: &str) -> Result<Cow<'a, Value>, ClusterError> {
    let mut body = Cow::Borrowed(obj);
    for (field, expected) in [("apiVersion", r.api_version()), ("kind", r.kind())] {
        match obj.get(field) {
            Some(Value::String(s)) if s == expected => {}
            None | Some(Value::Null) => {
                if let Some(map) = body.to_mut().as_object_mut() {
                    map.insert(field.to_owned(), Value::from(expected));
                }
            }
            Some(other) => {
                return Err(invalid(
                    object,
                    &format!("{field} is {other}, but it was resolved as {expected}"),
                ));
            }
        }
    }
    if !r.namespaced
        && obj.pointer("/metadata/namespace").is_some()
        && let Some(meta) = body.to_mut().get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.remove("namespace");
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm() -> Resolved {
        Resolved::new(
            kube::discovery::ApiResource {
                group: String::new(),
                version: "v1".into(),
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                plural: "configmaps".into(),
            },
            true,
        )
    }

    #[test]
    fn segments_that_would_change_the_url_are_refused() {
        for bad in ["", ".", "..", "a/b", "a%2f", "a?x", "a#b", "a b", "a\nb"] {
            assert!(check_segment("name", bad, "X/y").is_err(), "{bad:?}");
        }
        for good in ["a", "a.b", "a-b-1", "A_b:c"] {
            assert!(check_segment("name", good, "X/y").is_ok(), "{good:?}");
        }
    }

    #[test]
    fn body_is_completed_or_refused() {
        let obj = json!({"metadata": {"name": "a", "namespace": "d"}});
        let body = normalized_body(&cm(), &obj, "ConfigMap/d/a").unwrap();
        assert_eq!(body["apiVersion"], "v1");
        assert_eq!(body["kind"], "ConfigMap");
        let obj = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}});
        assert!(matches!(
            normalized_body(&cm(), &obj, "ConfigMap/d/a"),
            Err(ClusterError::Invalid { .. })
        ));
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
        assert!(matches!(normalized_body(&cm(), &obj, "x").unwrap(), Cow::Borrowed(_)));
        let crd = Resolved::custom_resource_definition();
        let obj = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "a", "namespace": "x"}});
        let body = normalized_body(&crd, &obj, "x").unwrap();
        assert!(body.pointer("/metadata/namespace").is_none());
    }

    #[test]
    fn client_is_send_sync_and_cheap_to_clone() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<ClusterClient>();
        assert_send_sync::<Resolved>();
    }

    #[test]
    fn describe_like_kubectl() {
        assert_eq!(describe("ConfigMap", Some("d"), "a"), "ConfigMap/d/a");
        assert_eq!(describe("ClusterRole", None, "admin"), "ClusterRole/admin");
    }
}

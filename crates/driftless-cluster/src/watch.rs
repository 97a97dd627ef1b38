//! Drift watching: one kube-runtime watcher per kind, reporting changes to objects that
//! carry [`APP_LABEL`].
//!
//! [`DriftWatcher`] runs, for every kind it is asked to watch, one tokio task driving
//! `kube::runtime::watcher` over `Api<DynamicObject>::all_with` (all namespaces) with the
//! existence selector `driftless.dev/app`. Never one watch per object: a cluster with ten
//! thousand managed ConfigMaps costs one watch connection.
//!
//! # Behaviour
//!
//! * **The initial list is the starting state, not drift.** The first
//!   `Event::Init`/`InitApply`/`InitDone` cycle of a kind is only remembered. Only changes
//!   after its `InitDone` are reported.
//! * **Re-lists are compared, not replayed.** When the watcher has to list again (its
//!   resourceVersion expired: `410 Gone`), the new list is compared with what the watcher
//!   had seen: objects that appeared or changed are reported as [`DriftKind::Applied`],
//!   objects that vanished as [`DriftKind::Deleted`]. So changes made while the watch was
//!   down are not lost, and unchanged objects produce no event. A dropped connection
//!   without `410` resumes from the last resourceVersion and the server replays what was
//!   missed (kube-runtime does this).
//! * **Noise is suppressed.** Each object's last seen version is kept as a 64-bit hash of
//!   the object *without* `status`, `apiVersion`, `kind`, `metadata.resourceVersion`,
//!   `metadata.managedFields`, `metadata.generation` and `metadata.selfLink`
//!   (see [`fingerprint`]). A modification whose hash equals the previous one — a
//!   controller writing status, a managedFields timestamp bump — is not reported. Labels,
//!   annotations, finalizers, owner references, `deletionTimestamp` and `uid` are part of the
//!   hash, so changing them is drift. Object keys are hashed in sorted order, so a server
//!   reordering fields causes no event.
//! * **Memory.** Per watched object: its namespace and name, the app name and the hash —
//!   roughly 100–200 bytes with the map's overhead (about 1.5 MB per 10 000 objects), twice
//!   that briefly during a re-list. Objects themselves are not kept.
//! * **Who changed it is unknown.** driftless's own applies are reported like anyone
//!   else's (the engine re-diffs and finds nothing). An object created with the label is
//!   reported as `Applied`. An object losing the label leaves the selector; the API server
//!   then sends a deletion, which is reported as `Applied` for the app that owned it (the
//!   object still exists — it changed), not `Deleted`.
//! * **A lagging consumer never stalls the API connection.** Events go through a bounded
//!   channel ([`DEFAULT_CHANNEL_CAPACITY`]). When it is full, each watcher keeps reading its
//!   watch stream and *coalesces* undelivered events per object in a small outbox: several
//!   changes to one object become one event carrying the latest kind (`Applied` after
//!   `Deleted` is `Applied`, and the other way round). The outbox holds at most
//!   [`DEFAULT_MAX_PENDING`] distinct objects per kind; beyond that new events are dropped
//!   with a warning. Dropped events are why the daemon should still resync periodically.
//! * **Errors never end a watcher.** kube-runtime's errors (list or watch failures,
//!   expired resourceVersions, connection loss) are logged with `tracing` and retried with
//!   [`kube::runtime::WatchStreamExt::default_backoff`]. A watcher stops only on
//!   [`DriftWatcher::shutdown`] (or drop), or when the receiver is dropped.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use driftless_core::ObjectRef;
use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{ClusterClient, Resolved};

/// Label every driftless-managed object carries (keep in sync with driftless-engine's
/// `APP_LABEL`).
pub const APP_LABEL: &str = "driftless.dev/app";

/// Capacity of the channel returned by [`DriftWatcher::new`].
pub const DEFAULT_CHANNEL_CAPACITY: usize = 1024;

/// Most distinct objects one kind's watcher holds back while the channel is full; further
/// events are dropped (with a warning) until the consumer catches up.
pub const DEFAULT_MAX_PENDING: usize = 10_000;

/// One change to an object managed by driftless (carrying label [`APP_LABEL`]).
#[derive(Debug, Clone)]
pub struct DriftEvent {
    /// The application owning the object (the value of [`APP_LABEL`]).
    pub app: String,
    /// The object that changed.
    pub object: ObjectRef,
    /// What happened to it.
    pub kind: DriftKind,
}

/// What happened to a watched object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftKind {
    /// Added or modified (beyond status and bookkeeping metadata).
    Applied,
    /// Deleted.
    Deleted,
}

/// Watches every managed object with one kube-runtime watcher per kind (all namespaces,
/// label selector [`APP_LABEL`]), never one per object. See the module docs for what is
/// reported and what is suppressed.
///
/// Methods take `&self`; share it behind an `Arc`. Watchers are tokio tasks, so
/// [`DriftWatcher::watch_kind`] must be called within a tokio runtime (outside one it logs
/// an error and does nothing).
pub struct DriftWatcher {
    client: ClusterClient,
    max_pending: usize,
    inner: Mutex<Inner>,
}

struct Inner {
    /// `None` after shutdown: no new watchers, and the receiver ends once the tasks stop.
    tx: Option<mpsc::Sender<DriftEvent>>,
    /// By (group, kind): the version does not matter, objects are the same.
    tasks: BTreeMap<(String, String), Task>,
}

struct Task {
    handle: JoinHandle<()>,
    ready: Arc<AtomicBool>,
}

impl std::fmt::Debug for DriftWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriftWatcher")
            .field("server", &self.client.server())
            .field("kinds", &self.kinds())
            .finish_non_exhaustive()
    }
}

impl DriftWatcher {
    /// Starts with no kinds; events are sent on the returned receiver (capacity
    /// [`DEFAULT_CHANNEL_CAPACITY`]). When the consumer lags, events coalesce per object and,
    /// past [`DEFAULT_MAX_PENDING`] objects per kind, are dropped; the watch connections are
    /// never blocked. The receiver yields `None` after [`DriftWatcher::shutdown`].
    pub fn new(client: ClusterClient) -> (DriftWatcher, mpsc::Receiver<DriftEvent>) {
        DriftWatcher::with_capacity(client, DEFAULT_CHANNEL_CAPACITY, DEFAULT_MAX_PENDING)
    }

    /// [`DriftWatcher::new`] with a chosen channel capacity and per-kind outbox size (both
    /// at least 1).
    pub fn with_capacity(
        client: ClusterClient,
        channel_capacity: usize,
        max_pending: usize,
    ) -> (DriftWatcher, mpsc::Receiver<DriftEvent>) {
        let (tx, rx) = mpsc::channel(channel_capacity.max(1));
        let watcher = DriftWatcher {
            client,
            max_pending: max_pending.max(1),
            inner: Mutex::new(Inner {
                tx: Some(tx),
                tasks: BTreeMap::new(),
            }),
        };
        (watcher, rx)
    }

    /// Ensures a watcher runs for this kind (idempotent; cheap to call on every sync with
    /// the kinds the app uses). Kinds are told apart by group and kind: another version of
    /// a watched kind is the same objects and starts nothing. A watcher whose task ended
    /// (it never should) is restarted. Does nothing after [`DriftWatcher::shutdown`].
    pub fn watch_kind(&self, kind: &Resolved) {
        let mut inner = self.lock();
        let Some(tx) = inner.tx.clone() else {
            tracing::debug!(kind = %label(kind), "drift watcher is shut down; not watching");
            return;
        };
        let key = (kind.group().to_owned(), kind.kind().to_owned());
        if let Some(task) = inner.tasks.get(&key)
            && !task.handle.is_finished()
        {
            return;
        }
        let runtime = match tokio::runtime::Handle::try_current() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(kind = %label(kind), error = %e, "cannot start a drift watcher outside a tokio runtime");
                return;
            }
        };
        let ready = Arc::new(AtomicBool::new(false));
        let run = KindWatch {
            client: self.client.kube_client().clone(),
            server: self.client.server().to_owned(),
            resolved: kind.clone(),
            tx,
            ready: ready.clone(),
            max_pending: self.max_pending,
        };
        tracing::debug!(kind = %label(kind), "starting drift watcher");
        let handle = runtime.spawn(run.run());
        inner.tasks.insert(key, Task { handle, ready });
    }

    /// Kinds being watched, as `Kind.group` (`Deployment.apps`; just `ConfigMap` for the
    /// core group), sorted.
    pub fn kinds(&self) -> Vec<String> {
        let inner = self.lock();
        inner
            .tasks
            .keys()
            .map(|(group, kind)| kind_label(group, kind))
            .collect()
    }

    /// Whether this kind's watcher has finished its initial list, so that later changes
    /// are reported. `false` for kinds not watched.
    pub fn is_ready(&self, kind: &Resolved) -> bool {
        let inner = self.lock();
        inner
            .tasks
            .get(&(kind.group().to_owned(), kind.kind().to_owned()))
            .is_some_and(|t| t.ready.load(Ordering::Acquire))
    }

    /// Stops every watcher (also on drop). Final: later [`DriftWatcher::watch_kind`] calls
    /// do nothing, and the receiver yields `None` once buffered events are read.
    pub fn shutdown(&self) {
        let mut inner = self.lock();
        inner.tx = None;
        for (_, task) in std::mem::take(&mut inner.tasks) {
            task.handle.abort();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves `Inner` consistent, so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for DriftWatcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn kind_label(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{group}")
    }
}

fn label(r: &Resolved) -> String {
    kind_label(r.group(), r.kind())
}

/// One kind's watcher task.
struct KindWatch {
    client: kube::Client,
    server: String,
    resolved: Resolved,
    tx: mpsc::Sender<DriftEvent>,
    ready: Arc<AtomicBool>,
    max_pending: usize,
}

impl KindWatch {
    async fn run(self) {
        let kind = label(&self.resolved);
        let api = Api::<DynamicObject>::all_with(self.client, &self.resolved.api_resource);
        let stream = watcher::watcher(api, watcher::Config::default().labels(APP_LABEL)).default_backoff();
        let mut stream = std::pin::pin!(stream);
        let mut state = KindState::new(self.resolved.group(), self.resolved.kind());
        let mut outbox = Outbox::new(self.max_pending);
        loop {
            tokio::select! {
                biased;
                permit = self.tx.reserve(), if !outbox.is_empty() => {
                    let Ok(permit) = permit else { return };
                    if let Some(event) = outbox.pop() {
                        permit.send(event);
                    }
                }
                _ = self.tx.closed() => {
                    tracing::debug!(%kind, "drift receiver dropped; stopping watcher");
                    return;
                }
                item = stream.next() => match item {
                    Some(Ok(event)) => {
                        let init_done = matches!(event, Event::InitDone);
                        for drift in state.handle(event) {
                            if outbox.push(drift) {
                                tracing::warn!(%kind, max_pending = self.max_pending,
                                    "drift consumer lagging: outbox full, dropping events");
                            }
                        }
                        if init_done {
                            self.ready.store(true, Ordering::Release);
                            tracing::debug!(%kind, objects = state.len(), "drift watcher listed");
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(%kind, server = %self.server, error = %e,
                            "drift watch failed; retrying with backoff");
                    }
                    None => {
                        // kube-runtime's watcher never ends; if it does, watch_kind restarts it.
                        tracing::warn!(%kind, "drift watch stream ended");
                        return;
                    }
                },
            }
        }
    }
}

/// `(namespace, name)`; namespace empty for cluster-scoped objects.
type Key = (String, String);

/// What the watcher remembers of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    app: Option<Box<str>>,
    hash: u64,
}

/// Per-kind bookkeeping: the objects last seen, and the re-list in progress.
struct KindState {
    group: String,
    kind: String,
    known: HashMap<Key, Seen>,
    /// Between `Init` and `InitDone`.
    relist: Option<HashMap<Key, Seen>>,
    /// Whether one `InitDone` was seen (the first list is the starting state).
    listed: bool,
}

impl KindState {
    fn new(group: &str, kind: &str) -> KindState {
        KindState {
            group: group.to_owned(),
            kind: kind.to_owned(),
            known: HashMap::new(),
            relist: None,
            listed: false,
        }
    }

    fn len(&self) -> usize {
        self.known.len()
    }

    /// Digests one watcher event; returns the drift to report.
    fn handle(&mut self, event: Event<DynamicObject>) -> Vec<DriftEvent> {
        let mut out = Vec::new();
        match event {
            Event::Init => self.relist = Some(HashMap::new()),
            Event::InitApply(obj) => {
                let (key, seen) = observe(&obj);
                self.relist.get_or_insert_with(HashMap::new).insert(key, seen);
            }
            Event::InitDone => {
                let listed = self.relist.take().unwrap_or_default();
                if self.listed {
                    for (key, seen) in &listed {
                        if self.known.get(key).is_none_or(|old| old.hash != seen.hash) {
                            if let Some(old) = self.known.get(key) {
                                self.left_app(key, old, seen, &mut out);
                            }
                            self.emit(key, seen.app.as_deref(), DriftKind::Applied, &mut out);
                        }
                    }
                    for (key, old) in &self.known {
                        if !listed.contains_key(key) {
                            self.emit(key, old.app.as_deref(), DriftKind::Deleted, &mut out);
                        }
                    }
                }
                self.known = listed;
                self.listed = true;
            }
            Event::Apply(obj) => {
                let (key, seen) = observe(&obj);
                match self.known.entry(key.clone()) {
                    Entry::Occupied(mut e) => {
                        if e.get().hash == seen.hash {
                            return out;
                        }
                        let old = e.insert(seen.clone());
                        self.left_app(&key, &old, &seen, &mut out);
                    }
                    Entry::Vacant(e) => {
                        e.insert(seen.clone());
                    }
                }
                self.emit(&key, seen.app.as_deref(), DriftKind::Applied, &mut out);
            }
            Event::Delete(obj) => {
                let (key, seen) = observe(&obj);
                let old = self.known.remove(&key);
                match (seen.app, old.and_then(|o| o.app)) {
                    // Still labelled: really deleted.
                    (Some(app), _) => self.emit(&key, Some(&app), DriftKind::Deleted, &mut out),
                    // The label was removed, so it left the selector: it changed, it exists.
                    (None, Some(old_app)) => self.emit(&key, Some(&old_app), DriftKind::Applied, &mut out),
                    (None, None) => {}
                }
            }
        }
        out
    }

    /// When an object's app label changed, the app it left hears of it too.
    fn left_app(&self, key: &Key, old: &Seen, new: &Seen, out: &mut Vec<DriftEvent>) {
        if old.app.is_some() && old.app != new.app {
            self.emit(key, old.app.as_deref(), DriftKind::Applied, out);
        }
    }

    fn emit(&self, key: &Key, app: Option<&str>, kind: DriftKind, out: &mut Vec<DriftEvent>) {
        let Some(app) = app else { return };
        out.push(DriftEvent {
            app: app.to_owned(),
            object: ObjectRef {
                group: self.group.clone(),
                kind: self.kind.clone(),
                namespace: (!key.0.is_empty()).then(|| key.0.clone()),
                name: key.1.clone(),
            },
            kind,
        });
    }
}

fn observe(obj: &DynamicObject) -> (Key, Seen) {
    let key = (
        obj.metadata.namespace.clone().unwrap_or_default(),
        obj.metadata.name.clone().unwrap_or_default(),
    );
    let app = obj
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(APP_LABEL))
        .map(|a| Box::from(a.as_str()));
    (
        key,
        Seen {
            app,
            hash: fingerprint(obj),
        },
    )
}

/// Top-level fields left out of [`fingerprint`].
const IGNORED_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "status"];
/// `metadata` fields left out of [`fingerprint`]: they change without the object's desired
/// state changing.
const IGNORED_METADATA: &[&str] = &["resourceVersion", "managedFields", "generation", "selfLink"];

/// A 64-bit hash of `obj` without `status`, `apiVersion`, `kind`, `metadata.resourceVersion`,
/// `metadata.managedFields`, `metadata.generation` and `metadata.selfLink`, object keys in
/// sorted order. Equal hashes mean "no drift worth
/// reporting" (a collision, about 2^-64 per change, would hide one change until the next).
pub fn fingerprint(obj: &DynamicObject) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    let metadata = serde_json::to_value(&obj.metadata).unwrap_or(Value::Null);
    hash_object_except(&metadata, IGNORED_METADATA, &mut h);
    hash_object_except(&obj.data, IGNORED_FIELDS, &mut h);
    h.finish()
}

fn hash_object_except(v: &Value, skip: &[&str], h: &mut impl Hasher) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().filter(|k| !skip.contains(&k.as_str())).collect();
            keys.sort_unstable();
            5u8.hash(h);
            keys.len().hash(h);
            for k in keys {
                k.hash(h);
                hash_value(&map[k], h);
            }
        }
        other => hash_value(other, h),
    }
}

fn hash_value(v: &Value, h: &mut impl Hasher) {
    match v {
        Value::Null => 0u8.hash(h),
        Value::Bool(b) => {
            1u8.hash(h);
            b.hash(h);
        }
        Value::Number(n) => {
            2u8.hash(h);
            n.to_string().hash(h);
        }
        Value::String(s) => {
            3u8.hash(h);
            s.hash(h);
        }
        Value::Array(items) => {
            4u8.hash(h);
            items.len().hash(h);
            for item in items {
                hash_value(item, h);
            }
        }
        Value::Object(_) => hash_object_except(v, &[], h),
    }
}

/// Undelivered events, at most one per object (the latest kind wins), in first-seen order.
struct Outbox {
    order: VecDeque<ObjectRef>,
    pending: HashMap<ObjectRef, DriftEvent>,
    max: usize,
    /// Whether events were dropped since the outbox last emptied (warn once per episode).
    overflowed: bool,
}

impl Outbox {
    fn new(max: usize) -> Outbox {
        Outbox {
            order: VecDeque::new(),
            pending: HashMap::new(),
            max,
            overflowed: false,
        }
    }

    fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Queues or coalesces `event`, or drops it when the outbox is full. Returns `true` when
    /// this drop starts an overflow episode, so the caller warns once per episode.
    fn push(&mut self, event: DriftEvent) -> bool {
        if let Some(pending) = self.pending.get_mut(&event.object) {
            *pending = event;
            return false;
        }
        if self.pending.len() >= self.max {
            return !std::mem::replace(&mut self.overflowed, true);
        }
        self.order.push_back(event.object.clone());
        self.pending.insert(event.object.clone(), event);
        false
    }

    fn pop(&mut self) -> Option<DriftEvent> {
        let key = self.order.pop_front()?;
        let event = self.pending.remove(&key);
        if self.order.is_empty() {
            self.overflowed = false;
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> DynamicObject {
        serde_json::from_value(v).unwrap()
    }

    fn cm(name: &str, rv: &str, data: Value) -> DynamicObject {
        obj(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "d", "resourceVersion": rv, "uid": format!("u-{name}"),
                "labels": {APP_LABEL: "demo"}},
            "data": data
        }))
    }

    fn kinds(events: &[DriftEvent]) -> Vec<(String, DriftKind)> {
        events.iter().map(|e| (e.object.name.clone(), e.kind)).collect()
    }

    #[test]
    fn fingerprint_ignores_status_and_bookkeeping() {
        let a = obj(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "w", "namespace": "d", "resourceVersion": "1", "generation": 1,
                "managedFields": [{"manager": "a"}], "labels": {"x": "1", "y": "2"}},
            "spec": {"replicas": 1, "a": {"b": 1, "c": 2}}, "status": {"readyReplicas": 0}
        }));
        let b = obj(json!({
            "kind": "Deployment",
            "metadata": {"labels": {"y": "2", "x": "1"}, "namespace": "d", "name": "w", "resourceVersion": "9",
                "generation": 2, "managedFields": [{"manager": "b"}]},
            "spec": {"a": {"c": 2, "b": 1}, "replicas": 1}, "status": {"readyReplicas": 1}
        }));
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let mut c = b.clone();
        c.data["spec"]["replicas"] = json!(2);
        assert_ne!(fingerprint(&a), fingerprint(&c));
        let mut d = b.clone();
        d.metadata.annotations = Some([("k".to_owned(), "v".to_owned())].into());
        assert_ne!(fingerprint(&a), fingerprint(&d));
    }

    #[test]
    fn first_list_is_silent_later_changes_are_reported() {
        let mut s = KindState::new("", "ConfigMap");
        assert!(s.handle(Event::Init).is_empty());
        assert!(s.handle(Event::InitApply(cm("a", "1", json!({"k": "1"})))).is_empty());
        assert!(s.handle(Event::InitDone).is_empty());
        // Same content, new resourceVersion: nothing.
        assert!(s.handle(Event::Apply(cm("a", "2", json!({"k": "1"})))).is_empty());
        let e = s.handle(Event::Apply(cm("a", "3", json!({"k": "2"}))));
        assert_eq!(kinds(&e), [("a".to_owned(), DriftKind::Applied)]);
        assert_eq!(e[0].app, "demo");
        assert_eq!(e[0].object.namespace.as_deref(), Some("d"));
        assert_eq!(e[0].object.kind, "ConfigMap");
        let e = s.handle(Event::Apply(cm("new", "4", json!({}))));
        assert_eq!(kinds(&e), [("new".to_owned(), DriftKind::Applied)]);
        let e = s.handle(Event::Delete(cm("new", "5", json!({}))));
        assert_eq!(kinds(&e), [("new".to_owned(), DriftKind::Deleted)]);
    }

    #[test]
    fn relist_reports_only_differences() {
        let mut s = KindState::new("", "ConfigMap");
        s.handle(Event::Init);
        s.handle(Event::InitApply(cm("same", "1", json!({}))));
        s.handle(Event::InitApply(cm("changed", "1", json!({"k": "1"}))));
        s.handle(Event::InitApply(cm("gone", "1", json!({}))));
        s.handle(Event::InitDone);
        s.handle(Event::Init);
        s.handle(Event::InitApply(cm("same", "7", json!({}))));
        s.handle(Event::InitApply(cm("changed", "7", json!({"k": "2"}))));
        s.handle(Event::InitApply(cm("added", "7", json!({}))));
        let mut e = kinds(&s.handle(Event::InitDone));
        e.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            e,
            [
                ("added".to_owned(), DriftKind::Applied),
                ("changed".to_owned(), DriftKind::Applied),
                ("gone".to_owned(), DriftKind::Deleted),
            ]
        );
    }

    #[test]
    fn losing_the_label_is_a_change_for_the_old_app() {
        let mut s = KindState::new("", "ConfigMap");
        s.handle(Event::Init);
        s.handle(Event::InitApply(cm("a", "1", json!({}))));
        s.handle(Event::InitDone);
        let mut unlabelled = cm("a", "2", json!({}));
        unlabelled.metadata.labels = None;
        let e = s.handle(Event::Delete(unlabelled));
        assert_eq!(kinds(&e), [("a".to_owned(), DriftKind::Applied)]);
        assert_eq!(e[0].app, "demo");
        let mut moved = cm("b", "1", json!({}));
        s.handle(Event::Apply(moved.clone()));
        moved.metadata.labels = Some([(APP_LABEL.to_owned(), "other".to_owned())].into());
        let mut apps: Vec<String> = s.handle(Event::Apply(moved)).into_iter().map(|e| e.app).collect();
        apps.sort();
        assert_eq!(apps, ["demo", "other"]);
    }

    #[test]
    fn outbox_coalesces_per_object_and_is_bounded() {
        let ev = |name: &str, kind| DriftEvent {
            app: "demo".into(),
            object: ObjectRef {
                group: String::new(),
                kind: "ConfigMap".into(),
                namespace: Some("d".into()),
                name: name.into(),
            },
            kind,
        };
        let mut o = Outbox::new(2);
        assert!(!o.push(ev("a", DriftKind::Applied)));
        assert!(!o.push(ev("b", DriftKind::Applied)));
        assert!(!o.push(ev("a", DriftKind::Deleted)));
        assert!(o.push(ev("c", DriftKind::Applied)), "the first drop is reported");
        assert!(
            !o.push(ev("d", DriftKind::Applied)),
            "later drops in the episode are quiet"
        );
        let a = o.pop().unwrap();
        assert_eq!((a.object.name.as_str(), a.kind), ("a", DriftKind::Deleted));
        assert_eq!(o.pop().unwrap().object.name, "b");
        assert!(o.pop().is_none() && o.is_empty());
        assert!(!o.push(ev("c", DriftKind::Applied)));
        assert_eq!(o.pop().unwrap().object.name, "c");
    }

    #[test]
    fn watcher_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<DriftWatcher>();
        assert_send_sync::<DriftEvent>();
    }
}

//! The in-memory object store: resource registry, objects, resource versions and the event
//! history that watches replay from.
//!
//! One mutex guards everything. Every request holds it only for map operations and the pure
//! machinery calls (no I/O under the lock), which keeps kubesim simple and linearizable like
//! etcd, and is far from the bottleneck at the request rates tests and benchmarks reach.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use kubesim_schema::{ResourceType, builtin_types};
use serde_json::Value;
use tokio::sync::broadcast;

/// Identifies a stored resource independent of the version it is served at.
pub type ResKey = (String, String); // (group, plural)

/// Where an object lives inside its resource: (namespace or "", name).
pub type ObjKey = (String, String);

/// Kind of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed.
    Deleted,
}

impl EventType {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, kept in the history for watches.
#[derive(Debug, Clone)]
pub struct Event {
    /// Resource version the change produced.
    pub rv: u64,
    /// What happened.
    pub etype: EventType,
    /// Which resource.
    pub res: ResKey,
    /// Namespace ("" for cluster-scoped).
    pub namespace: String,
    /// The object after the change (before it, for deletions).
    pub object: Arc<Value>,
    /// The object before the change, for MODIFIED (selector transitions).
    pub old: Option<Arc<Value>>,
}

/// Everything kubesim stores.
pub struct State {
    /// Served resource types by (group, version, plural).
    pub types: BTreeMap<(String, String, String), Arc<ResourceType>>,
    /// For each CRD name, the (group, version, plural) entries it added.
    pub crd_types: HashMap<String, Vec<(String, String, String)>>,
    /// Objects by resource then (namespace, name).
    pub objects: HashMap<ResKey, BTreeMap<ObjKey, Arc<Value>>>,
    /// Last resource version handed out.
    pub rv: u64,
    /// Bounded history of changes for watch replay.
    pub history: VecDeque<Arc<Event>>,
    /// Oldest resource version a watch may still start from.
    pub compacted_rv: u64,
    /// Maximum history length.
    pub history_cap: usize,
    /// Live watchers.
    pub events: broadcast::Sender<Arc<Event>>,
    /// Next ClusterIP offset (10.96.0.0/12).
    pub next_ip: u32,
    /// Allocated ClusterIPs.
    pub allocated_ips: std::collections::HashSet<String>,
    /// Counter for generateName suffixes and uids.
    pub seq: u64,
}

impl State {
    /// A store serving the built-in types, holding nothing but the `default`,
    /// `kube-system`, `kube-public` and `kube-node-lease` namespaces (added by the caller).
    pub fn new(history_cap: usize) -> State {
        let mut types = BTreeMap::new();
        for t in builtin_types() {
            types.insert((t.group.clone(), t.version.clone(), t.plural.clone()), Arc::new(t));
        }
        let (events, _) = broadcast::channel(65536);
        State {
            types,
            crd_types: HashMap::new(),
            objects: HashMap::new(),
            rv: 1,
            history: VecDeque::new(),
            compacted_rv: 1,
            history_cap,
            events,
            next_ip: 10,
            allocated_ips: Default::default(),
            seq: 0,
        }
    }

    /// Looks up a served type.
    pub fn resource(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .get(&(group.to_owned(), version.to_owned(), plural.to_owned()))
            .cloned()
    }

    /// Finds the type serving `kind` in `group` (any version; the first one).
    pub fn resource_for_kind(&self, group: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.types
            .values()
            .find(|t| t.group == group && t.kind == kind)
            .cloned()
    }

    /// A fresh, process-unique uid in UUID format.
    pub fn new_uid(&mut self) -> String {
        self.seq += 1;
        let n = self.seq;
        let salt = std::process::id() as u64;
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (salt & 0xffff_ffff) as u32,
            (n >> 48) & 0xffff,
            (n >> 36) & 0xfff,
            (n >> 24) & 0xfff,
            n & 0xffff_ffff_ffff
        )
    }

    /// A generateName suffix (5 lower-case alphanumerics, like the real one).
    pub fn name_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        self.seq += 1;
        let mut x = self.seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (std::process::id() as u64);
        let mut s = String::with_capacity(5);
        for _ in 0..5 {
            s.push(ALPHABET[(x % ALPHABET.len() as u64) as usize] as char);
            x /= ALPHABET.len() as u64;
        }
        s
    }

    /// Gets one object.
    pub fn get(&self, res: &ResKey, key: &ObjKey) -> Option<Arc<Value>> {
        self.objects.get(res).and_then(|m| m.get(key)).cloned()
    }

    /// Stores `obj` (whose resourceVersion this sets) and records the event.
    /// Returns the stored object.
    pub fn put(&mut self, res: &ResKey, key: ObjKey, mut obj: Value) -> Arc<Value> {
        self.rv += 1;
        let rv = self.rv;
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let obj = Arc::new(obj);
        let old = self
            .objects
            .entry(res.clone())
            .or_default()
            .insert(key.clone(), obj.clone());
        let etype = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(Event {
            rv,
            etype,
            res: res.clone(),
            namespace: key.0,
            object: obj.clone(),
            old,
        });
        obj
    }

    /// Removes an object and records the DELETED event (carrying a new resourceVersion, as
    /// etcd-backed watches do).
    pub fn remove(&mut self, res: &ResKey, key: &ObjKey) -> Option<Arc<Value>> {
        let old = self.objects.get_mut(res)?.remove(key)?;
        self.rv += 1;
        let rv = self.rv;
        let mut last = (*old).clone();
        if let Some(meta) = last.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        if let Some(ip) = last.pointer("/spec/clusterIP").and_then(Value::as_str) {
            self.allocated_ips.remove(ip);
        }
        let last = Arc::new(last);
        self.record(Event {
            rv,
            etype: EventType::Deleted,
            res: res.clone(),
            namespace: key.0.clone(),
            object: last.clone(),
            old: None,
        });
        Some(last)
    }

    fn record(&mut self, ev: Event) {
        let ev = Arc::new(ev);
        self.history.push_back(ev.clone());
        while self.history.len() > self.history_cap {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted_rv = dropped.rv;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(ev);
    }

    /// All objects of a resource, optionally in one namespace, in (namespace, name) order.
    pub fn list<'a>(
        &'a self,
        res: &ResKey,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a ObjKey, &'a Arc<Value>)> + 'a {
        self.objects.get(res).into_iter().flat_map(move |m| {
            let range: Box<dyn Iterator<Item = (&ObjKey, &Arc<Value>)>> = match namespace {
                Some(ns) => Box::new(
                    m.range((ns.to_owned(), String::new())..)
                        .take_while(move |(k, _)| k.0 == ns),
                ),
                None => Box::new(m.iter()),
            };
            range
        })
    }

    /// Allocates a ClusterIP from 10.96.0.0/12, or reserves the requested one.
    pub fn allocate_ip(&mut self, requested: Option<&str>) -> Result<String, String> {
        if let Some(ip) = requested {
            if self.allocated_ips.contains(ip) {
                return Err(format!("failed to allocate IP {ip}: provided IP is already allocated"));
            }
            self.allocated_ips.insert(ip.to_owned());
            return Ok(ip.to_owned());
        }
        loop {
            let n = self.next_ip;
            self.next_ip = if n >= (1 << 20) - 2 { 10 } else { n + 1 };
            let ip = format!("10.{}.{}.{}", 96 + (n >> 16), (n >> 8) & 0xff, n & 0xff);
            if self.allocated_ips.insert(ip.clone()) {
                return Ok(ip);
            }
        }
    }
}

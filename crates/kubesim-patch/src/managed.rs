//! Server-side apply and managed-fields bookkeeping.
//!
//! This follows structured-merge-diff (`merge.Updater`) and the
//! kube-apiserver field manager stack closely enough for kubectl and kube-rs
//! to see real-cluster behaviour:
//!
//! * **Apply** ([`apply`]): the manager's new set is the set of fields in the
//!   configuration. The configuration is merged into the live object, fields
//!   the manager applied last time but dropped now (and nobody else owns) are
//!   pruned, and the result is diffed against the live object. Fields another
//!   manager owns whose value changed (or that were added) are conflicts;
//!   `force` transfers them instead. Equal values are shared, not conflicts.
//! * **Update** ([`record_update`]): for create/PUT/PATCH the writer takes
//!   every field it added or changed away from the other managers; fields that
//!   disappeared leave every set.
//! * Entries are identified like kube-apiserver does: manager name +
//!   operation + subresource, plus API version for updates only (an applier
//!   keeps one entry across versions).
//! * Some kube-apiserver extras that clients observe are reproduced:
//!   the `before-first-apply` manager for objects that have no managed fields
//!   yet, the client-side-apply upgrade path for manager `kubectl` (conflicts
//!   on fields listed in `kubectl.kubernetes.io/last-applied-configuration` are
//!   forced, and that annotation is kept in sync), resetting managed fields
//!   with `managedFields: [{}]`, and keeping an entry's timestamp when an
//!   apply is a no-op (so repeated applies do not change the object).
//!
//! Not reproduced: the cap of ten update managers, version conversion of
//! field sets (all sets are compared as if in one version), and
//! `x-kubernetes-list-type` beyond what the [`Schema`] says.

use serde_json::{Map, Value, json};

use crate::fieldset::FieldSet;
use crate::path::{FieldPath, PathElement};
use crate::schema::Schema;
use crate::typed::{compare, fieldset_of, fieldset_of_strict, merge_apply, remove_paths};

/// Annotation written by client-side `kubectl apply`.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Manager name kube-apiserver gives to fields that existed before the first
/// server-side apply on an object without managed fields.
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// How a manager wrote its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write (create, update, patch).
    Update,
}

impl Operation {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedFieldsEntry {
    /// Field manager name.
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// API version the fields were written with.
    pub api_version: String,
    /// RFC 3339 time of the last change of this entry.
    pub time: Option<String>,
    /// `status` for writes through the status subresource.
    pub subresource: Option<String>,
    /// The owned fields.
    pub fields: FieldSet,
}

impl ManagedFieldsEntry {
    /// Decodes one entry. `fieldsType` must be `FieldsV1` when present.
    pub fn from_value(v: &Value) -> Result<Self, ApplyError> {
        let bad = |m: String| ApplyError::InvalidManagedFields(m);
        let o = v.as_object().ok_or_else(|| bad("entry is not an object".into()))?;
        let s = |k: &str| -> Result<Option<String>, ApplyError> {
            match o.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(bad(format!("{k} must be a string, got {other}"))),
            }
        };
        let operation = match s("operation")?.as_deref() {
            Some("Apply") => Operation::Apply,
            Some("Update") => Operation::Update,
            other => return Err(bad(format!("unknown operation {other:?}"))),
        };
        if let Some(t) = s("fieldsType")?
            && t != "FieldsV1"
        {
            return Err(bad(format!("unsupported fieldsType {t:?}")));
        }
        let fields = match o.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::new(),
            Some(f) => FieldSet::from_fields_v1(f).map_err(|e| bad(e.to_string()))?,
        };
        Ok(ManagedFieldsEntry {
            manager: s("manager")?.unwrap_or_default(),
            operation,
            api_version: s("apiVersion")?.unwrap_or_default(),
            time: s("time")?,
            subresource: s("subresource")?.filter(|s| !s.is_empty()),
            fields,
        })
    }

    /// Encodes the entry with Kubernetes' field order.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation.as_str()));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if let Some(s) = &self.subresource {
            m.insert("subresource".into(), json!(s));
        }
        Value::Object(m)
    }

    /// Whether `self` is the entry of (manager, operation, api_version,
    /// subresource). Appliers are one entry regardless of API version.
    fn is(&self, manager: &str, op: Operation, api_version: &str, sub: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == op
            && self.subresource.as_deref() == sub
            && (op == Operation::Apply || self.api_version == api_version)
    }

    /// kube-apiserver's manager identifier (`BuildManagerIdentifier`), used to
    /// order conflicts.
    fn identifier(&self) -> String {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation.as_str()));
        if self.operation == Operation::Update && !self.api_version.is_empty() {
            m.insert("apiVersion".into(), json!(self.api_version));
        }
        if let Some(s) = &self.subresource {
            m.insert("subresource".into(), json!(s));
        }
        Value::Object(m).to_string()
    }
}

/// Reads `metadata.managedFields` of an object (absent → empty).
pub fn read_managed_fields(obj: &Value) -> Result<Vec<ManagedFieldsEntry>, ApplyError> {
    match obj.pointer("/metadata/managedFields") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(ManagedFieldsEntry::from_value).collect(),
        Some(_) => Err(ApplyError::InvalidManagedFields(
            "metadata.managedFields is not a list".into(),
        )),
    }
}

/// Writes entries to `metadata.managedFields` in kube-apiserver's order
/// (Apply before Update, then by time, manager, API version, subresource);
/// removes the field when there are none.
pub fn write_managed_fields(obj: &mut Value, mut entries: Vec<ManagedFieldsEntry>) {
    entries.retain(|e| !e.fields.is_empty());
    entries.sort_by(|a, b| {
        a.operation
            .cmp(&b.operation)
            .then_with(|| a.time.cmp(&b.time))
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| a.api_version.cmp(&b.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    let Some(o) = obj.as_object_mut() else { return };
    if entries.is_empty() {
        if let Some(Value::Object(md)) = o.get_mut("metadata") {
            md.shift_remove("managedFields");
        }
        return;
    }
    let md = o.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if !md.is_object() {
        *md = Value::Object(Map::new());
    }
    if let Value::Object(md) = md {
        md.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(ManagedFieldsEntry::to_value).collect()),
        );
    }
}

/// Which part of the object a write may own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The kind has no status subresource (ConfigMap, most CRDs without
    /// `subresources.status`): every field is in scope.
    WholeObject,
    /// A write to the main resource of a kind with a status subresource:
    /// `status` is out of scope. For apply, `status` in the configuration is
    /// ignored (kube-apiserver strips it; we ignore it defensively too).
    MainResource,
    /// A write through `/status`: only `status` is in scope, and the entry
    /// records `subresource: status`. For apply, only the configuration's
    /// `status` is merged.
    StatusSubresource,
}

impl Scope {
    fn subresource(self) -> Option<&'static str> {
        match self {
            Scope::StatusSubresource => Some("status"),
            _ => None,
        }
    }

    fn filter(self, set: &mut FieldSet) {
        strip_ignored(set);
        let status = [PathElement::Field("status".into())];
        match self {
            Scope::WholeObject => {}
            Scope::MainResource => set.remove_subtree(&status),
            Scope::StatusSubresource => *set = set.retain_subtree(&status),
        }
    }

    fn config(self, config: &Value) -> Value {
        let mut c = config.clone();
        if let Value::Object(m) = &mut c {
            match self {
                Scope::WholeObject => {}
                Scope::MainResource => {
                    m.shift_remove("status");
                }
                Scope::StatusSubresource => m.retain(|k, _| k == "status"),
            }
        }
        c
    }
}

/// Fields never tracked in managed fields (kube-apiserver's strip-meta list).
fn strip_ignored(set: &mut FieldSet) {
    let f = |s: &str| PathElement::Field(s.to_string());
    set.remove_subtree(&[f("apiVersion")]);
    set.remove_subtree(&[f("kind")]);
    for m in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        set.remove_subtree(&[f("metadata"), f(m)]);
    }
}

/// Parameters shared by [`apply`] and [`record_update`].
#[derive(Clone, Copy)]
pub struct ManagerOptions<'a> {
    /// RFC 3339 timestamp to record (no clock is read in this crate).
    pub time: &'a str,
    /// What part of the object this write may own.
    pub scope: Scope,
    /// List/map semantics of the kind.
    pub schema: &'a dyn Schema,
}

/// One manager's conflicting fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// Its operation.
    pub operation: Operation,
    /// Its API version.
    pub api_version: String,
    /// Its subresource, if any.
    pub subresource: Option<String>,
    /// Conflicting fields, in Kubernetes order.
    pub fields: Vec<FieldPath>,
}

impl Conflict {
    /// How kube-apiserver names the manager in messages: `"m"` for appliers,
    /// `"m" using apps/v1` for updaters, with `with subresource "status"` when
    /// applicable.
    pub fn manager_description(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

/// One `causes` entry of the 409 Status kube-apiserver returns for conflicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictCause {
    /// `conflict with "m" using v1`
    pub message: String,
    /// `.spec.replicas`
    pub field: String,
}

fn conflicts_message(conflicts: &[Conflict]) -> String {
    let n: usize = conflicts.iter().map(|c| c.fields.len()).sum();
    if n == 1
        && let Some(c) = conflicts.first()
        && let Some(f) = c.fields.first()
    {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {f}",
            c.manager_description()
        );
    }
    let mut lines = Vec::new();
    for c in conflicts {
        lines.push(format!("conflicts with {}:", c.manager_description()));
        lines.extend(c.fields.iter().map(|f| format!("- {f}")));
    }
    format!("Apply failed with {n} conflicts: {}", lines.join("\n"))
}

/// Errors of [`apply`] and [`record_update`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApplyError {
    /// Fields owned by other managers would change (HTTP 409). The Display
    /// text is kube-apiserver's message.
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The apply configuration is malformed (HTTP 400/422).
    #[error("invalid apply configuration: {0}")]
    InvalidConfig(String),
    /// `metadata.managedFields` of the live object cannot be decoded.
    #[error("failed to decode managed fields: {0}")]
    InvalidManagedFields(String),
    /// The object passed in is not a JSON object.
    #[error("invalid object: {0}")]
    InvalidObject(String),
}

impl ApplyError {
    /// Status causes for a conflict error (type `FieldManagerConflict`);
    /// empty for other errors.
    pub fn conflict_causes(&self) -> Vec<ConflictCause> {
        match self {
            ApplyError::Conflicts(cs) => cs
                .iter()
                .flat_map(|c| {
                    c.fields.iter().map(move |f| ConflictCause {
                        message: format!("conflict with {}", c.manager_description()),
                        field: f.to_string(),
                    })
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

fn without_managed_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(Value::Object(md)) = v.get_mut("metadata") {
        md.shift_remove("managedFields");
    }
    v
}

/// Server-side apply of `config` by `manager`.
///
/// Returns the new object with `metadata.managedFields` rewritten. `live` is
/// the current object (with its managed fields) or `None` for a create. The
/// configuration must not carry `metadata.managedFields`. Server-populated
/// metadata (`uid`, `resourceVersion`, ...) is merged like any other field;
/// the caller overwrites it afterwards. With [`Scope::MainResource`] the
/// caller is expected to strip `status` from the configuration (it is ignored
/// here regardless); with [`Scope::StatusSubresource`] only `status` is used.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    opts: &ManagerOptions<'_>,
) -> Result<Value, ApplyError> {
    let schema = opts.schema;
    let cfg = config
        .as_object()
        .ok_or_else(|| ApplyError::InvalidConfig("must be a JSON object".into()))?;
    if config.pointer("/metadata/managedFields").is_some_and(|v| !v.is_null()) {
        return Err(ApplyError::InvalidConfig("metadata.managedFields must be nil".into()));
    }
    let api_version = cfg
        .get("apiVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApplyError::InvalidConfig("apiVersion must be set".into()))?;
    if manager.is_empty() {
        return Err(ApplyError::InvalidConfig("fieldManager is required for apply".into()));
    }
    if let Some(l) = live
        && !l.is_object()
    {
        return Err(ApplyError::InvalidObject("live object is not a JSON object".into()));
    }

    let mut entries = live.map(read_managed_fields).transpose()?.unwrap_or_default();
    let live_obj = live.map(without_managed_fields).unwrap_or_else(|| json!({}));

    // An object written without field tracking: its existing fields belong to
    // a synthetic updater, so that apply can still detect conflicts on them.
    if live.is_some() && entries.is_empty() {
        let mut fs = fieldset_of(&live_obj, schema);
        Scope::WholeObject.filter(&mut fs);
        if !fs.is_empty() {
            entries.push(ManagedFieldsEntry {
                manager: BEFORE_FIRST_APPLY.into(),
                operation: Operation::Update,
                api_version: live_obj
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or(api_version)
                    .to_string(),
                time: Some(opts.time.to_string()),
                subresource: None,
                fields: fs,
            });
        }
    }

    let scoped = opts.scope.config(config);
    let mut new_set = fieldset_of_strict(&scoped, schema).map_err(ApplyError::InvalidConfig)?;
    opts.scope.filter(&mut new_set);
    let mut merged = merge_apply(&live_obj, &scoped, schema).map_err(ApplyError::InvalidConfig)?;

    let sub = opts.scope.subresource();
    let me = entries
        .iter()
        .position(|e| e.is(manager, Operation::Apply, api_version, sub));

    // Prune what this manager applied before, dropped now, and nobody else
    // (nor the new configuration) claims. A node it owned only as existing
    // (`.`) keeps whatever is still claimed below it (see `remove_paths`).
    if let Some(i) = me {
        let mut claimed = new_set.clone();
        for (j, e) in entries.iter().enumerate() {
            if j != i {
                claimed = claimed.union(&e.fields);
            }
        }
        let prune = entries[i].fields.difference(&claimed);
        if !prune.is_empty() {
            remove_paths(&mut merged, &prune, &claimed, &scoped, schema);
        }
    }

    let cmp = compare(Some(&live_obj), Some(&merged), schema);
    let changed = cmp.added.union(&cmp.modified);

    let conflicts: Vec<(usize, FieldSet)> = entries
        .iter()
        .enumerate()
        .filter(|(j, _)| Some(*j) != me)
        .map(|(j, e)| (j, e.fields.intersection(&changed)))
        .filter(|(_, s)| !s.is_empty())
        .collect();
    if !conflicts.is_empty() && !force {
        // kubectl's client-side → server-side apply upgrade path: conflicts on
        // fields kubectl itself applied client-side are taken over silently.
        let allowed = if manager == "kubectl" {
            last_applied_fieldset(&live_obj, schema)
        } else {
            None
        };
        let remaining: Vec<(usize, FieldSet)> = conflicts
            .iter()
            .map(|(j, s)| (*j, allowed.as_ref().map_or_else(|| s.clone(), |a| s.difference(a))))
            .filter(|(_, s)| !s.is_empty())
            .collect();
        if !remaining.is_empty() {
            return Err(ApplyError::Conflicts(build_conflicts(&entries, &remaining)));
        }
    }
    for (j, s) in &conflicts {
        entries[*j].fields = entries[*j].fields.difference(s);
    }
    for e in entries.iter_mut() {
        e.fields = e.fields.difference(&cmp.removed);
    }

    // Keep the timestamp of a no-op apply so that re-applying the same
    // configuration leaves the object byte-for-byte identical.
    let time = match me {
        Some(i) if entries[i].fields == new_set && merged == live_obj => entries[i].time.clone(),
        _ => Some(opts.time.to_string()),
    };
    let entry = ManagedFieldsEntry {
        manager: manager.to_string(),
        operation: Operation::Apply,
        api_version: api_version.to_string(),
        time,
        subresource: sub.map(str::to_string),
        fields: new_set,
    };
    match me {
        Some(i) => entries[i] = entry,
        None => entries.push(entry),
    }

    if manager == "kubectl" {
        sync_last_applied(&mut merged, config);
    }
    write_managed_fields(&mut merged, entries);
    Ok(merged)
}

fn build_conflicts(entries: &[ManagedFieldsEntry], sets: &[(usize, FieldSet)]) -> Vec<Conflict> {
    let mut out: Vec<(String, Conflict)> = sets
        .iter()
        .filter_map(|(j, s)| {
            let e = entries.get(*j)?;
            Some((
                e.identifier(),
                Conflict {
                    manager: e.manager.clone(),
                    operation: e.operation,
                    api_version: e.api_version.clone(),
                    subresource: e.subresource.clone(),
                    fields: s.paths(),
                },
            ))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, c)| c).collect()
}

fn last_applied(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/annotations")?
        .get(LAST_APPLIED_ANNOTATION)?
        .as_str()
}

fn last_applied_fieldset(live: &Value, schema: &dyn Schema) -> Option<FieldSet> {
    let parsed: Value = serde_json::from_str(last_applied(live)?).ok()?;
    let mut fs = fieldset_of(&parsed, schema);
    strip_ignored(&mut fs);
    Some(fs)
}

/// kube-apiserver keeps the client-side-apply annotation current when
/// `kubectl` applies server-side, so a later client-side apply still works.
fn sync_last_applied(obj: &mut Value, config: &Value) {
    if last_applied(obj).is_none() {
        return;
    }
    let mut cfg = config.clone();
    if let Some(Value::Object(ann)) = cfg.pointer_mut("/metadata/annotations") {
        ann.shift_remove(LAST_APPLIED_ANNOTATION);
        if ann.is_empty()
            && let Some(Value::Object(md)) = cfg.get_mut("metadata")
        {
            md.shift_remove("annotations");
        }
    }
    let text = format!("{}\n", sorted(&cfg));
    if let Some(Value::Object(ann)) = obj.pointer_mut("/metadata/annotations") {
        ann.insert(LAST_APPLIED_ANNOTATION.into(), Value::String(text));
    }
}

/// Go's encoding/json sorts map keys; mimic it for annotation text.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&m[k]))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Records a non-apply write (create, update, any patch) by `manager`.
///
/// `old` is the stored object (`None` for a create), `new` the object about
/// to be stored; its `metadata.managedFields` is rewritten in place. The
/// manager takes ownership of every field it added or changed (taking it
/// from other managers — updates never conflict); fields that disappeared
/// leave every set. If `new` carries its own non-empty, valid
/// `managedFields` those are used as the starting point (clients may edit
/// them); `managedFields: [{}]` clears them entirely, like kube-apiserver.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    opts: &ManagerOptions<'_>,
) -> Result<(), ApplyError> {
    if !new.is_object() {
        return Err(ApplyError::InvalidObject("new object is not a JSON object".into()));
    }
    let api_version = new
        .get("apiVersion")
        .or_else(|| old.and_then(|o| o.get("apiVersion")))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();

    let from_old = || old.and_then(|o| read_managed_fields(o).ok()).unwrap_or_default();
    let mut entries = match new.pointer("/metadata/managedFields") {
        Some(Value::Array(a)) if a.len() == 1 && a[0].as_object().is_some_and(Map::is_empty) => {
            write_managed_fields(new, Vec::new());
            return Ok(());
        }
        Some(Value::Array(a)) if !a.is_empty() => match read_managed_fields(new) {
            Ok(e) if !e.is_empty() => e,
            _ => from_old(),
        },
        _ => from_old(),
    };

    let new_obj = without_managed_fields(new);
    let base = match old {
        Some(o) => without_managed_fields(o),
        None => {
            // Every object has metadata; never let `.metadata` itself become
            // an owned member just because the baseline lacks it.
            let mut b = opts.schema.create_baseline();
            if let Value::Object(m) = &mut b {
                m.entry("metadata").or_insert_with(|| json!({}));
            }
            b
        }
    };
    let cmp = compare(Some(&base), Some(&new_obj), opts.schema);
    let mut changed = cmp.added.union(&cmp.modified);
    opts.scope.filter(&mut changed);

    let sub = opts.scope.subresource();
    let me = entries
        .iter()
        .position(|e| e.is(manager, Operation::Update, &api_version, sub));
    for (j, e) in entries.iter_mut().enumerate() {
        e.fields = e.fields.difference(&cmp.removed);
        if Some(j) != me {
            e.fields = e.fields.difference(&changed);
        }
    }
    if !changed.is_empty() {
        match me {
            Some(i) => {
                entries[i].fields = entries[i].fields.union(&changed);
                entries[i].time = Some(opts.time.to_string());
            }
            None => entries.push(ManagedFieldsEntry {
                manager: manager.to_string(),
                operation: Operation::Update,
                api_version,
                time: Some(opts.time.to_string()),
                subresource: sub.map(str::to_string),
                fields: changed,
            }),
        }
    }
    write_managed_fields(new, entries);
    Ok(())
}

//! Schema-aware walks over JSON objects: field sets, comparisons, the apply
//! merge, and removal of owned paths.
//!
//! These are the building blocks of server-side apply (see `managed.rs`).
//! Every walk tracks two parallel paths: the [`PathElement`]s (for field
//! sets) and the field names alone (for [`Schema`] lookups, which do not care
//! which list item we are in).
//!
//! Live objects may contain data we cannot key (a container without a name,
//! duplicates written by a non-validating client...). Walks over *live* data
//! therefore degrade such a list to atomic instead of failing; only the
//! *apply configuration* is validated strictly, as kube-apiserver does.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::fieldset::FieldSet;
use crate::path::PathElement;
use crate::schema::{ListKind, MapKind, Schema};

/// Walk position: element path plus field-name path.
struct Pos {
    path: Vec<PathElement>,
    names: Vec<String>,
}

impl Pos {
    fn root() -> Self {
        Pos {
            path: Vec::new(),
            names: Vec::new(),
        }
    }
    fn push_field(&mut self, k: &str) {
        self.path.push(PathElement::Field(k.to_string()));
        self.names.push(k.to_string());
    }
    fn pop_field(&mut self) {
        self.path.pop();
        self.names.pop();
    }
}

fn map_kind(schema: &dyn Schema, pos: &Pos, is_item: bool) -> MapKind {
    if pos.path.is_empty() || is_item {
        MapKind::Struct
    } else {
        schema.map_kind(&pos.names)
    }
}

/// The path element identifying `item` in a list of the given kind.
pub(crate) fn item_element(item: &Value, kind: &ListKind) -> Result<PathElement, String> {
    match kind {
        ListKind::Map(keys) => {
            let obj = item
                .as_object()
                .ok_or_else(|| format!("associative list item is not an object: {item}"))?;
            let mut pairs = Vec::with_capacity(keys.len());
            for k in keys {
                match obj.get(&k.name).filter(|v| !v.is_null()) {
                    Some(v) => pairs.push((k.name.clone(), v.clone())),
                    None => match &k.default {
                        Some(d) => pairs.push((k.name.clone(), d.clone())),
                        None => {
                            return Err(format!("associative list item omits key field {:?}: {item}", k.name));
                        }
                    },
                }
            }
            Ok(PathElement::key(pairs))
        }
        ListKind::Set => match item {
            Value::Object(_) | Value::Array(_) => Err(format!("set list item is not a scalar: {item}")),
            v => Ok(PathElement::Value(v.clone())),
        },
        ListKind::Atomic => Err("atomic lists have no item identity".to_string()),
    }
}

/// Elements for all items, rejecting duplicates.
pub(crate) fn list_elements(items: &[Value], kind: &ListKind) -> Result<Vec<PathElement>, String> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let pe = item_element(item, kind)?;
        if out.contains(&pe) {
            return Err(format!("duplicate entries for key {pe}"));
        }
        out.push(pe);
    }
    Ok(out)
}

/// The set of fields present in `value`, as structured-merge-diff's
/// `ToFieldSet` computes it for an apply configuration: scalars, atomic
/// lists/maps, list items and free-form map entries are members; struct maps
/// only appear as prefixes; empty structs and lists contribute nothing.
///
/// Lists that cannot be keyed are treated as atomic.
pub fn fieldset_of(value: &Value, schema: &dyn Schema) -> FieldSet {
    let mut out = FieldSet::new();
    // Lenient mode never errors.
    let _ = collect(value, &mut Pos::root(), false, schema, false, &mut out);
    out
}

/// Like [`fieldset_of`] but fails on lists whose items cannot be keyed or
/// contain duplicates (used on apply configurations).
pub(crate) fn fieldset_of_strict(value: &Value, schema: &dyn Schema) -> Result<FieldSet, String> {
    let mut out = FieldSet::new();
    collect(value, &mut Pos::root(), false, schema, true, &mut out)?;
    Ok(out)
}

fn collect(
    v: &Value,
    pos: &mut Pos,
    is_item: bool,
    schema: &dyn Schema,
    strict: bool,
    out: &mut FieldSet,
) -> Result<(), String> {
    match v {
        Value::Object(m) => {
            let kind = map_kind(schema, pos, is_item);
            if kind == MapKind::Atomic {
                out.insert(&pos.path);
                return Ok(());
            }
            for (k, cv) in m {
                pos.push_field(k);
                let r = collect(cv, pos, false, schema, strict, out);
                if kind == MapKind::Granular {
                    out.insert(&pos.path);
                }
                pos.pop_field();
                r?;
            }
            Ok(())
        }
        Value::Array(items) => {
            let kind = schema.list_kind(&pos.names);
            if kind == ListKind::Atomic {
                out.insert(&pos.path);
                return Ok(());
            }
            let pes = match list_elements(items, &kind) {
                Ok(p) => p,
                Err(e) if strict => return Err(format!("{}: {e}", display(&pos.path))),
                Err(_) => {
                    out.insert(&pos.path);
                    return Ok(());
                }
            };
            for (item, pe) in items.iter().zip(pes) {
                pos.path.push(pe);
                let r = if matches!(kind, ListKind::Map(_)) {
                    collect(item, pos, true, schema, strict, out)
                } else {
                    Ok(())
                };
                out.insert(&pos.path);
                pos.path.pop();
                r?;
            }
            Ok(())
        }
        _ => {
            out.insert(&pos.path);
            Ok(())
        }
    }
}

fn display(path: &[PathElement]) -> String {
    if path.is_empty() {
        return "<root>".to_string();
    }
    path.iter().map(|p| p.to_string()).collect()
}

/// What changed between two versions of an object, as structured-merge-diff's
/// `Compare`: leaves whose value changed are *modified*; paths (leaves, maps,
/// list items, non-atomic lists) that appear are *added*, those that
/// disappear are *removed*.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Paths present only in the new object.
    pub added: FieldSet,
    /// Leaves present in both with different values.
    pub modified: FieldSet,
    /// Paths present only in the old object.
    pub removed: FieldSet,
}

impl Comparison {
    /// True when nothing changed.
    pub fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
}

/// Compares `lhs` (old) with `rhs` (new).
pub fn compare(lhs: Option<&Value>, rhs: Option<&Value>, schema: &dyn Schema) -> Comparison {
    let mut c = Comparison::default();
    compare_at(lhs, rhs, &mut Pos::root(), false, schema, &mut c);
    c
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Map,
    List,
    Leaf,
}

fn shape(v: Option<&Value>) -> Option<Shape> {
    match v? {
        Value::Null => None, // null is a wildcard: it takes the other side's shape
        Value::Object(_) => Some(Shape::Map),
        Value::Array(_) => Some(Shape::List),
        _ => Some(Shape::Leaf),
    }
}

fn is_empty_container(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

fn compare_leaf(lhs: Option<&Value>, rhs: Option<&Value>, path: &[PathElement], c: &mut Comparison) {
    match (lhs, rhs) {
        (None, Some(_)) => c.added.insert(path),
        (Some(_), None) => c.removed.insert(path),
        (Some(a), Some(b)) if a != b => c.modified.insert(path),
        _ => {}
    }
}

fn compare_at(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    pos: &mut Pos,
    is_item: bool,
    schema: &dyn Schema,
    c: &mut Comparison,
) {
    let s = match (shape(lhs), shape(rhs)) {
        (Some(a), Some(b)) if a != b => Shape::Leaf,
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => Shape::Leaf,
    };
    // Empty/null on both sides is promoted to a leaf so that `{}` vs absent
    // is still recorded (the "f:resources: {}" entries Kubernetes shows).
    let s = if s != Shape::Leaf && is_empty_container(lhs) && is_empty_container(rhs) {
        Shape::Leaf
    } else {
        s
    };
    match s {
        Shape::Leaf => compare_leaf(lhs, rhs, &pos.path, c),
        Shape::Map => {
            if map_kind(schema, pos, is_item) == MapKind::Atomic {
                compare_leaf(lhs, rhs, &pos.path, c);
                return;
            }
            let empty = Map::new();
            let lm = lhs.and_then(Value::as_object).unwrap_or(&empty);
            let rm = rhs.and_then(Value::as_object).unwrap_or(&empty);
            let mut keys: Vec<&String> = lm.keys().collect();
            keys.extend(rm.keys().filter(|k| !lm.contains_key(*k)));
            for k in keys {
                pos.push_field(k);
                compare_at(lm.get(k), rm.get(k), pos, false, schema, c);
                pos.pop_field();
            }
            post_item(lhs, rhs, &pos.path, c);
        }
        Shape::List => {
            let kind = schema.list_kind(&pos.names);
            let empty = Vec::new();
            let la = lhs.and_then(Value::as_array).unwrap_or(&empty);
            let ra = rhs.and_then(Value::as_array).unwrap_or(&empty);
            let (lp, rp) = match (&kind, list_elements(la, &kind), list_elements(ra, &kind)) {
                (ListKind::Atomic, _, _) | (_, Err(_), _) | (_, _, Err(_)) => {
                    compare_leaf(lhs, rhs, &pos.path, c);
                    return;
                }
                (_, Ok(l), Ok(r)) => (l, r),
            };
            let lmap: BTreeMap<&PathElement, &Value> = lp.iter().zip(la).collect();
            let rmap: BTreeMap<&PathElement, &Value> = rp.iter().zip(ra).collect();
            let mut pes: Vec<&PathElement> = lp.iter().collect();
            pes.extend(rp.iter().filter(|p| !lmap.contains_key(p)));
            for pe in pes {
                pos.path.push(pe.clone());
                compare_at(lmap.get(pe).copied(), rmap.get(pe).copied(), pos, true, schema, c);
                pos.path.pop();
            }
            post_item(lhs, rhs, &pos.path, c);
        }
    }
}

/// Non-leaf nodes that appear or disappear are recorded too.
fn post_item(lhs: Option<&Value>, rhs: Option<&Value>, path: &[PathElement], c: &mut Comparison) {
    if path.is_empty() {
        return;
    }
    match (lhs, rhs) {
        (None, Some(_)) => c.added.insert(path),
        (Some(_), None) => c.removed.insert(path),
        _ => {}
    }
}

/// Merges an apply configuration into a live object: maps recursively,
/// associative and set lists item by item, atomic lists and maps replaced.
///
/// List order follows structured-merge-diff: items of the configuration come
/// in configuration order; live-only items keep their place relative to the
/// shared items around them.
///
/// Fails when the configuration has un-keyable or duplicate list items.
pub(crate) fn merge_apply(live: &Value, config: &Value, schema: &dyn Schema) -> Result<Value, String> {
    merge_at(Some(live), config, &mut Pos::root(), false, schema)
}

fn merge_at(
    live: Option<&Value>,
    cfg: &Value,
    pos: &mut Pos,
    is_item: bool,
    schema: &dyn Schema,
) -> Result<Value, String> {
    match cfg {
        Value::Object(cm) => {
            if map_kind(schema, pos, is_item) == MapKind::Atomic {
                return Ok(cfg.clone());
            }
            let mut out = match live {
                Some(Value::Object(lm)) => lm.clone(),
                _ => Map::new(),
            };
            for (k, cv) in cm {
                pos.push_field(k);
                let merged = merge_at(out.get(k), cv, pos, false, schema);
                pos.pop_field();
                out.insert(k.clone(), merged?);
            }
            Ok(Value::Object(out))
        }
        Value::Array(citems) => {
            let kind = schema.list_kind(&pos.names);
            if kind == ListKind::Atomic {
                return Ok(cfg.clone());
            }
            let cpes = list_elements(citems, &kind).map_err(|e| format!("{}: {e}", display(&pos.path)))?;
            let litems: &[Value] = match live {
                Some(Value::Array(a)) => a,
                _ => &[],
            };
            // Un-keyable live data is replaced rather than merged.
            let (litems, lpes) = match list_elements(litems, &kind) {
                Ok(p) => (litems, p),
                Err(_) => (&[][..], Vec::new()),
            };
            let cidx: BTreeMap<&PathElement, usize> = cpes.iter().enumerate().map(|(i, p)| (p, i)).collect();
            let lidx: BTreeMap<&PathElement, usize> = lpes.iter().enumerate().map(|(i, p)| (p, i)).collect();
            let mut out = Vec::with_capacity(litems.len() + citems.len());
            let (mut li, mut ri) = (0, 0);
            while li < lpes.len() || ri < cpes.len() {
                if li < lpes.len() {
                    let pe = &lpes[li];
                    match cidx.get(pe) {
                        // Live-only item: keep it where it is.
                        None => {
                            out.push(litems[li].clone());
                            li += 1;
                            continue;
                        }
                        // Shared item already emitted in config order.
                        Some(&ci) if ci < ri => {
                            li += 1;
                            continue;
                        }
                        Some(_) => {}
                    }
                }
                if ri < cpes.len() {
                    let pe = &cpes[ri];
                    let litem = lidx.get(pe).map(|&i| &litems[i]);
                    pos.path.push(pe.clone());
                    let merged = if matches!(kind, ListKind::Map(_)) {
                        merge_at(litem, &citems[ri], pos, true, schema)
                    } else {
                        Ok(citems[ri].clone())
                    };
                    pos.path.pop();
                    out.push(merged?);
                    ri += 1;
                } else {
                    li += 1;
                }
            }
            Ok(Value::Array(out))
        }
        _ => Ok(cfg.clone()),
    }
}

/// Removes the paths of `set` from `value`: `set` is what an applier owned
/// before and nobody claims any more, `claimed` is everything still owned
/// (the newly applied set and every other manager's set), `config` the
/// applied configuration.
///
/// A member with no claimed path below it is removed with everything below
/// it (structured-merge-diff's `RemoveItems`). A member that is a map or list
/// item with claimed descendants, or that the configuration contains, was
/// only owned as "this node exists" (the `.` marker): like
/// structured-merge-diff, which adds back whatever anyone still owns after
/// pruning, its unclaimed owned descendants are removed and the node itself
/// is dropped only if nothing is left of it (a list item: nothing but its
/// key fields) and the configuration does not contain it.
///
/// Maps and lists left empty by the removal are removed too (structured-merge-diff
/// turns them into null, which the API server drops), unless the configuration
/// explicitly contains them, so that applying `labels: {}` twice is still a
/// no-op. The key fields of list items that stay are never removed.
pub(crate) fn remove_paths(value: &mut Value, set: &FieldSet, claimed: &FieldSet, config: &Value, schema: &dyn Schema) {
    remove_at(value, set, Some(claimed), Some(config), &mut Pos::root(), schema, &[]);
}

/// Whether the member `pe` of the removal set is removed with its whole
/// subtree rather than only marking an existing node (see [`remove_paths`]).
fn removes_subtree(value: &Value, pe: &PathElement, claimed: Option<&FieldSet>, cfg: Option<&Value>) -> bool {
    let container = value.is_object() || value.is_array();
    let claimed_below = claimed.is_some_and(|c| c.child(pe).is_some());
    cfg.is_none() && !(container && claimed_below)
}

/// A list item with nothing but its key fields.
fn only_key_fields(item: &Value, key_names: &[String]) -> bool {
    !key_names.is_empty()
        && item
            .as_object()
            .is_some_and(|m| m.keys().all(|k| key_names.contains(k)))
}

fn remove_at(
    value: &mut Value,
    set: &FieldSet,
    claimed: Option<&FieldSet>,
    cfg: Option<&Value>,
    pos: &mut Pos,
    schema: &dyn Schema,
    key_names: &[String],
) {
    match value {
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if key_names.contains(&k) {
                    continue;
                }
                let pe = PathElement::Field(k.clone());
                let member = set.has_member(&pe);
                let child = set.child(&pe);
                let Some(v) = m.get_mut(&k).filter(|_| member || child.is_some()) else {
                    continue;
                };
                let cv = cfg.and_then(|c| c.get(&k));
                if member && removes_subtree(v, &pe, claimed, cv) {
                    m.shift_remove(&k);
                    continue;
                }
                let was_empty = is_empty_container(Some(v));
                if let Some(child) = child {
                    pos.push_field(&k);
                    remove_at(v, child, claimed.and_then(|c| c.child(&pe)), cv, pos, schema, &[]);
                    pos.pop_field();
                }
                // An emptied map or list goes; so does an empty node that was
                // owned only as existing.
                if cv.is_none() && is_empty_container(Some(v)) && (member || !was_empty) {
                    m.shift_remove(&k);
                }
            }
        }
        Value::Array(items) => {
            let kind = schema.list_kind(&pos.names);
            if kind == ListKind::Atomic {
                return;
            }
            let item_keys: Vec<String> = match &kind {
                ListKind::Map(keys) => keys.iter().map(|k| k.name.clone()).collect(),
                _ => Vec::new(),
            };
            let cfg_items: BTreeMap<PathElement, &Value> = cfg
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|i| item_element(i, &kind).ok().map(|pe| (pe, i)))
                        .collect()
                })
                .unwrap_or_default();
            items.retain_mut(|item| {
                let Ok(pe) = item_element(item, &kind) else {
                    return true;
                };
                let member = set.has_member(&pe);
                let ci = cfg_items.get(&pe).copied();
                if member && removes_subtree(item, &pe, claimed, ci) {
                    return false;
                }
                if let Some(child) = set.child(&pe) {
                    let claimed_below = claimed.and_then(|c| c.child(&pe));
                    pos.path.push(pe);
                    remove_at(item, child, claimed_below, ci, pos, schema, &item_keys);
                    pos.path.pop();
                }
                !(member && ci.is_none() && only_key_fields(item, &item_keys))
            });
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::BuiltinSchema;
    use serde_json::json;

    fn v1(set: &FieldSet) -> Value {
        set.to_fields_v1()
    }

    #[test]
    fn fieldset_of_deployment_config() {
        let cfg = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [
                    {"name": "web", "image": "nginx", "ports": [{"containerPort": 80}],
                     "resources": {}}
                ]}}
            }
        });
        let s = fieldset_of(&cfg, &BuiltinSchema::for_kind("Deployment"));
        assert_eq!(
            v1(&s),
            json!({
                "f:apiVersion": {}, "f:kind": {},
                "f:metadata": {"f:labels": {"f:app": {}}, "f:name": {}},
                "f:spec": {
                    "f:replicas": {}, "f:selector": {},
                    "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                        ".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                            ".": {}, "f:containerPort": {}}}
                    }}}}
                }
            })
        );
    }

    #[test]
    fn strict_fieldset_rejects_bad_lists() {
        let s = BuiltinSchema::default();
        let dup = json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}});
        assert!(fieldset_of_strict(&dup, &s).unwrap_err().contains("duplicate"));
        let nokey = json!({"spec": {"containers": [{"image": "x"}]}});
        assert!(fieldset_of_strict(&nokey, &s).is_err());
        // Lenient mode degrades to atomic.
        assert!(fieldset_of(&nokey, &s).contains(&[
            PathElement::Field("spec".into()),
            PathElement::Field("containers".into())
        ]));
    }

    #[test]
    fn compare_marks_new_maps_and_items() {
        let s = BuiltinSchema::default();
        let old = json!({"metadata": {"name": "a"}, "spec": {"containers": [{"name": "a", "image": "x"}]}});
        let new = json!({"metadata": {"name": "a", "labels": {"k": "v"}},
                         "spec": {"containers": [{"name": "a", "image": "y"}, {"name": "b"}]}});
        let c = compare(Some(&old), Some(&new), &s);
        assert_eq!(
            v1(&c.added),
            json!({"f:metadata": {"f:labels": {".": {}, "f:k": {}}},
                   "f:spec": {"f:containers": {"k:{\"name\":\"b\"}": {".": {}, "f:name": {}}}}})
        );
        assert_eq!(
            v1(&c.modified),
            json!({"f:spec": {"f:containers": {"k:{\"name\":\"a\"}": {"f:image": {}}}}})
        );
        assert!(c.removed.is_empty());
        let back = compare(Some(&new), Some(&old), &s);
        assert_eq!(back.removed, c.added);
    }

    #[test]
    fn merge_orders_like_smd() {
        let s = BuiltinSchema::default();
        let live = json!({"spec": {"containers": [{"name": "a"}, {"name": "x", "image": "keep"}, {"name": "b"}]}});
        let cfg = json!({"spec": {"containers": [{"name": "b", "image": "1"}, {"name": "c"}, {"name": "a"}]}});
        let out = merge_apply(&live, &cfg, &s).unwrap();
        let names: Vec<&str> = out["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["b", "c", "a", "x"]);
        assert_eq!(out["spec"]["containers"][0]["image"], "1");
    }

    #[test]
    fn remove_paths_drops_items_and_keys() {
        let s = BuiltinSchema::default();
        let mut obj = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["x", "y"]},
                             "spec": {"containers": [{"name": "a"}, {"name": "b", "image": "i", "tty": true}]}});
        let set = FieldSet::from_fields_v1(&json!({
            "f:metadata": {"f:labels": {"f:a": {}}, "f:finalizers": {"v:\"y\"": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"a\"}": {}, "k:{\"name\":\"b\"}": {"f:tty": {}}}}
        }))
        .unwrap();
        remove_paths(&mut obj, &set, &FieldSet::new(), &json!({}), &s);
        assert_eq!(
            obj,
            json!({"metadata": {"labels": {"b": "2"}, "finalizers": ["x"]},
                   "spec": {"containers": [{"name": "b", "image": "i"}]}})
        );
        let mut obj = json!({"metadata": {"name": "n", "labels": {"a": "1"}}, "data": {"k": "v"}});
        let set = FieldSet::from_fields_v1(&json!({
            "f:metadata": {"f:labels": {"f:a": {}}}, "f:data": {"f:k": {}}
        }))
        .unwrap();
        remove_paths(&mut obj, &set, &FieldSet::new(), &json!({}), &s);
        assert_eq!(obj, json!({"metadata": {"name": "n"}}));
    }

    #[test]
    fn remove_paths_keeps_dot_owned_nodes_with_claimed_descendants() {
        let s = BuiltinSchema::default();
        let fs = |v: Value| FieldSet::from_fields_v1(&v).unwrap();
        let obj = json!({"spec": {"containers": [
            {"name": "a", "image": "i", "tty": true},
            {"name": "b", "image": "j"}
        ]}});
        // Items `a` and `b` were owned with `.`; someone still owns `a.image`.
        let set = fs(json!({"f:spec": {"f:containers": {
            "k:{\"name\":\"a\"}": {".": {}, "f:name": {}, "f:tty": {}},
            "k:{\"name\":\"b\"}": {".": {}, "f:name": {}}
        }}}));
        let claimed = fs(json!({"f:spec": {"f:containers": {
            "k:{\"name\":\"a\"}": {"f:image": {}}
        }}}));
        let mut out = obj.clone();
        remove_paths(&mut out, &set, &claimed, &json!({}), &s);
        // `a` stays with its key and the claimed field; `b` goes whole.
        assert_eq!(out, json!({"spec": {"containers": [{"name": "a", "image": "i"}]}}));
        // Claims that no longer match anything do not keep an emptied item.
        let stale = fs(json!({"f:spec": {"f:containers": {
            "k:{\"name\":\"a\"}": {"f:gone": {}}
        }}}));
        let set = fs(json!({"f:spec": {"f:containers": {
            "k:{\"name\":\"a\"}": {".": {}, "f:name": {}, "f:image": {}, "f:tty": {}}
        }}}));
        let mut out = obj.clone();
        remove_paths(&mut out, &set, &stale, &json!({}), &s);
        assert_eq!(out, json!({"spec": {"containers": [{"name": "b", "image": "j"}]}}));
        // A map the configuration contains is kept even when emptied.
        let mut out = json!({"spec": {"x": 1}});
        let set = fs(json!({"f:spec": {".": {}, "f:x": {}}}));
        remove_paths(&mut out, &set, &FieldSet::new(), &json!({"spec": {}}), &s);
        assert_eq!(out, json!({"spec": {}}));
    }
}

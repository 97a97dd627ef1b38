//! Strategic merge patch, as kube-apiserver applies it to built-in kinds.
//!
//! Maps merge recursively and `null` deletes a key. Lists follow the
//! [`Schema`]: associative lists merge item by item on their merge key (the
//! first key field), primitive "merge" lists (finalizers) take the union,
//! everything else is replaced. Directives:
//!
//! * `$patch: replace` (map replaces the original map; a `{"$patch":
//!   "replace"}` element makes the rest of the list replace the original),
//!   `$patch: delete` (on a map: delete it; on a list item: delete the item
//!   with that key), `$patch: merge` (the default);
//! * `$retainKeys: [..]` drops original keys not listed;
//! * `$deleteFromPrimitiveList/<field>: [..]` removes values from a
//!   primitive list;
//! * `$setElementOrder/<field>: [..]` orders the listed items first, in the
//!   given order, followed by items it does not mention in their existing
//!   order (kube-apiserver interleaves those more cleverly; clients only send
//!   orders that cover the whole list in practice).
//!
//! Malformed patches produce [`PatchError`], never a panic.

use serde_json::{Map, Value};

use crate::PatchError;
use crate::schema::{ListKind, Schema};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";

/// Applies a strategic merge patch to `original`.
pub fn strategic_merge_patch(original: &Value, patch: &Value, schema: &dyn Schema) -> Result<Value, PatchError> {
    let orig = original
        .as_object()
        .ok_or_else(|| PatchError::InvalidPatch("original object is not a JSON object".into()))?;
    let p = patch
        .as_object()
        .ok_or_else(|| PatchError::InvalidPatch("strategic merge patch must be a JSON object".into()))?;
    let mut out = orig.clone();
    let mut names = Vec::new();
    match merge_map(&mut out, p, &mut names, schema)? {
        Outcome::Keep => Ok(Value::Object(out)),
        Outcome::Delete => Ok(Value::Object(Map::new())),
    }
}

enum Outcome {
    Keep,
    Delete,
}

fn at(names: &[String]) -> String {
    if names.is_empty() {
        "<root>".into()
    } else {
        names.join(".")
    }
}

fn merge_map(
    orig: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    names: &mut Vec<String>,
    schema: &dyn Schema,
) -> Result<Outcome, PatchError> {
    match patch.get(PATCH) {
        None => {}
        Some(Value::String(d)) if d == "merge" => {}
        Some(Value::String(d)) if d == "delete" => return Ok(Outcome::Delete),
        Some(Value::String(d)) if d == "replace" => {
            // Replace: the patch (minus directives, processed against an
            // empty original) becomes the map.
            let mut rest = patch.clone();
            rest.shift_remove(PATCH);
            let mut fresh = Map::new();
            merge_map(&mut fresh, &rest, names, schema)?;
            *orig = fresh;
            return Ok(Outcome::Keep);
        }
        Some(other) => {
            return Err(PatchError::InvalidPatch(format!(
                "unknown $patch directive {other} at {}",
                at(names)
            )));
        }
    }

    if let Some(rk) = patch.get(RETAIN_KEYS) {
        let keys = rk
            .as_array()
            .ok_or_else(|| PatchError::InvalidPatch(format!("$retainKeys must be a list at {}", at(names))))?;
        let mut keep = Vec::with_capacity(keys.len());
        for k in keys {
            keep.push(k.as_str().ok_or_else(|| {
                PatchError::InvalidPatch(format!("$retainKeys entries must be strings at {}", at(names)))
            })?);
        }
        orig.retain(|k, _| keep.contains(&k.as_str()));
    }

    // Deletions from primitive lists happen before merging, so a patch can
    // delete and re-add in one go.
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            let values = v
                .as_array()
                .ok_or_else(|| PatchError::InvalidPatch(format!("{k} must be a list at {}", at(names))))?;
            if let Some(Value::Array(items)) = orig.get_mut(field) {
                items.retain(|i| !values.contains(i));
            }
        }
    }

    let mut orders = Vec::new();
    for (k, v) in patch {
        if k == PATCH || k == RETAIN_KEYS || k.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            continue;
        }
        if let Some(field) = k.strip_prefix(SET_ELEMENT_ORDER) {
            let order = v
                .as_array()
                .ok_or_else(|| PatchError::InvalidPatch(format!("{k} must be a list at {}", at(names))))?;
            orders.push((field.to_string(), order));
            continue;
        }
        if k.starts_with('$') {
            return Err(PatchError::InvalidPatch(format!(
                "unknown directive {k:?} at {}",
                at(names)
            )));
        }
        names.push(k.clone());
        let r = merge_value(orig, k, v, names, schema);
        names.pop();
        r?;
    }

    for (field, order) in orders {
        names.push(field.clone());
        let kind = schema.list_kind(names);
        names.pop();
        if let Some(Value::Array(items)) = orig.get_mut(&field) {
            apply_order(items, order, &kind);
        }
    }
    Ok(Outcome::Keep)
}

fn merge_value(
    orig: &mut Map<String, Value>,
    k: &str,
    v: &Value,
    names: &mut Vec<String>,
    schema: &dyn Schema,
) -> Result<(), PatchError> {
    match v {
        Value::Null => {
            orig.shift_remove(k);
        }
        Value::Object(pm) => {
            let mut target = match orig.get(k) {
                Some(Value::Object(om)) => om.clone(),
                _ => Map::new(),
            };
            match merge_map(&mut target, pm, names, schema)? {
                Outcome::Keep => {
                    orig.insert(k.to_string(), Value::Object(target));
                }
                Outcome::Delete => {
                    orig.shift_remove(k);
                }
            }
        }
        Value::Array(items) => {
            let merged = merge_list(orig.get(k), items, names, schema)?;
            orig.insert(k.to_string(), Value::Array(merged));
        }
        scalar => {
            orig.insert(k.to_string(), scalar.clone());
        }
    }
    Ok(())
}

fn directive(item: &Value) -> Option<&Value> {
    item.as_object()?.get(PATCH)
}

fn merge_list(
    orig: Option<&Value>,
    patch: &[Value],
    names: &mut Vec<String>,
    schema: &dyn Schema,
) -> Result<Vec<Value>, PatchError> {
    let kind = schema.list_kind(names);
    // `{"$patch": "replace"}` as an element: the other elements replace the list.
    let replace = patch
        .iter()
        .any(|i| directive(i).and_then(Value::as_str) == Some("replace"));
    let orig_items: Vec<Value> = match orig {
        Some(Value::Array(a)) if !replace => a.clone(),
        _ => Vec::new(),
    };
    match &kind {
        ListKind::Atomic => {
            let mut out = Vec::with_capacity(patch.len());
            for item in patch {
                if directive(item).is_some() {
                    if replace {
                        continue;
                    }
                    return Err(PatchError::InvalidPatch(format!(
                        "$patch directive in a list without merge key at {}",
                        at(names)
                    )));
                }
                out.push(item.clone());
            }
            Ok(out)
        }
        ListKind::Set => {
            let mut out = orig_items;
            for item in patch {
                if directive(item).is_some() {
                    if replace {
                        continue;
                    }
                    return Err(PatchError::InvalidPatch(format!(
                        "unsupported $patch directive in primitive list at {}",
                        at(names)
                    )));
                }
                if item.is_object() || item.is_array() {
                    return Err(PatchError::InvalidPatch(format!(
                        "non-primitive item {item} in primitive merge list at {}",
                        at(names)
                    )));
                }
                if !out.contains(item) {
                    out.push(item.clone());
                }
            }
            Ok(out)
        }
        ListKind::Map(keys) => {
            let key = keys.first().map(|k| k.name.as_str()).unwrap_or("name");
            let mut out = orig_items;
            for item in patch {
                let pm = item.as_object().ok_or_else(|| {
                    PatchError::InvalidPatch(format!(
                        "list item {item} at {} must be an object with merge key {key:?}",
                        at(names)
                    ))
                })?;
                let d = pm.get(PATCH);
                if d.and_then(Value::as_str) == Some("replace") {
                    continue;
                }
                let kv = pm.get(key).ok_or_else(|| PatchError::MissingMergeKey {
                    path: at(names),
                    key: key.to_string(),
                })?;
                let pos = out.iter().position(|o| o.get(key) == Some(kv));
                match d {
                    Some(Value::String(s)) if s == "delete" => {
                        out.retain(|o| o.get(key) != Some(kv));
                    }
                    None => merge_item(&mut out, pos, pm, names, schema)?,
                    Some(Value::String(s)) if s == "merge" => merge_item(&mut out, pos, pm, names, schema)?,
                    Some(other) => {
                        return Err(PatchError::InvalidPatch(format!(
                            "unknown $patch directive {other} in list at {}",
                            at(names)
                        )));
                    }
                }
            }
            Ok(out)
        }
    }
}

fn merge_item(
    out: &mut Vec<Value>,
    pos: Option<usize>,
    pm: &Map<String, Value>,
    names: &mut Vec<String>,
    schema: &dyn Schema,
) -> Result<(), PatchError> {
    let mut target = match pos.and_then(|i| out.get(i)) {
        Some(Value::Object(om)) => om.clone(),
        _ => Map::new(),
    };
    let outcome = merge_map(&mut target, pm, names, schema)?;
    match (outcome, pos) {
        (Outcome::Keep, Some(i)) => out[i] = Value::Object(target),
        (Outcome::Keep, None) => out.push(Value::Object(target)),
        (Outcome::Delete, Some(i)) => {
            out.remove(i);
        }
        (Outcome::Delete, None) => {}
    }
    Ok(())
}

fn apply_order(items: &mut Vec<Value>, order: &[Value], kind: &ListKind) {
    let matches = |item: &Value, o: &Value| -> bool {
        match kind {
            ListKind::Map(keys) => match o.as_object() {
                Some(om) => keys
                    .iter()
                    .filter(|k| om.contains_key(&k.name))
                    .all(|k| item.get(&k.name) == om.get(&k.name)),
                None => false,
            },
            _ => item == o,
        }
    };
    let mut rest = std::mem::take(items);
    for o in order {
        if let Some(i) = rest.iter().position(|it| matches(it, o)) {
            items.push(rest.remove(i));
        }
    }
    items.extend(rest);
}

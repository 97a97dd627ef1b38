//! Normalisation and the per-object diff a user reads before a sync.
//!
//! The diff compares the *live* object with the object the API server *predicts* after a
//! server-side-apply dry run. Comparing against the predicted object rather than the manifest
//! removes defaulting noise (the server fills the same defaults in both); what is left to strip
//! is server-owned bookkeeping ([`SERVER_METADATA`], `status`) and the
//! `last-applied-configuration` annotation, which duplicates the whole object (and, for a
//! Secret, its data in clear: CVE-2023-40029).
//!
//! **Secrets.** For `kind: Secret` every value under `data` and `stringData` is replaced by
//! [`SECRET_MASK`] before rendering; a value that differs between live and predicted becomes
//! [`SECRET_MASK_CHANGED`] on the predicted side, so the diff shows *which key* changed but
//! never a value. Equality is decided on the real values first, so masking cannot hide a
//! change.
//!
//! **Rendering.** Both sides are rendered as YAML with keys in a canonical order
//! (`apiVersion`, `kind`, `metadata`, then alphabetical) so that the API server's key order
//! never shows up as a change. The unified diff has three lines of context.
//!
//! **Ignore rules** remove the value at a JSON pointer (`/spec/replicas`, with `*` matching
//! every element) from both sides before comparing, for fields another controller owns (an
//! HPA's replicas). Pointers are bounded in length and depth; evaluation is linear in the
//! object size (no user expression language: CVE-2024-32476).

use serde_json::{Map, Value};
use similar::TextDiff;

use crate::object::ObjectRef;

/// `metadata` fields the API server owns; never part of a comparison.
pub const SERVER_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
    "selfLink",
];

/// The kubectl client-side-apply annotation; a full copy of the object, Secret data included.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What a Secret value is shown as.
pub const SECRET_MASK: &str = "++++++++";
/// What a changed Secret value is shown as on the predicted side.
pub const SECRET_MASK_CHANGED: &str = "++++++++ (changed)";

/// Returns a copy of `obj` without server-owned metadata, `status` and the
/// last-applied annotation; an emptied `annotations` map is dropped as well.
pub fn normalize_for_compare(obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(map) = out.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in SERVER_METADATA {
                meta.remove(*field);
            }
            if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                annotations.remove(LAST_APPLIED_ANNOTATION);
                if annotations.is_empty() {
                    meta.remove("annotations");
                }
            }
        }
    }
    out
}

/// Why an ignore rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ignore rule {pointer:?}: {reason}")]
pub struct IgnoreRuleError {
    /// The pointer as written (truncated).
    pub pointer: String,
    /// What is wrong.
    pub reason: &'static str,
}

/// A field to leave out of comparisons: a JSON pointer, optionally only for one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreRule {
    /// Only objects of this kind, or all when `None`.
    pub kind: Option<String>,
    segments: Vec<String>,
}

impl IgnoreRule {
    /// Longest pointer accepted.
    pub const MAX_POINTER_LEN: usize = 512;
    /// Deepest pointer accepted.
    pub const MAX_SEGMENTS: usize = 32;

    /// Parses an RFC 6901 pointer (`/spec/replicas`, `/metadata/labels/app.kubernetes.io~1name`);
    /// a `*` segment matches every key or element.
    pub fn new(pointer: &str) -> Result<IgnoreRule, IgnoreRuleError> {
        let err = |reason| IgnoreRuleError {
            pointer: pointer.chars().take(80).collect(),
            reason,
        };
        if pointer.len() > Self::MAX_POINTER_LEN {
            return Err(err("longer than 512 bytes"));
        }
        let Some(rest) = pointer.strip_prefix('/') else {
            return Err(err("must start with '/'"));
        };
        let segments: Vec<String> = rest
            .split('/')
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect();
        if segments.len() > Self::MAX_SEGMENTS {
            return Err(err("deeper than 32 segments"));
        }
        if segments.first().is_some_and(|s| s == "metadata")
            && segments.get(1).is_some_and(|s| s == "name" || s == "namespace")
        {
            return Err(err("the object's name and namespace cannot be ignored"));
        }
        Ok(IgnoreRule { kind: None, segments })
    }

    /// Restricts the rule to objects of `kind`.
    pub fn for_kind(mut self, kind: impl Into<String>) -> IgnoreRule {
        self.kind = Some(kind.into());
        self
    }

    /// Removes the addressed values from `obj` (no-op when absent or the kind differs).
    pub fn apply(&self, obj: &mut Value) {
        if let Some(kind) = &self.kind
            && obj.get("kind").and_then(Value::as_str) != Some(kind)
        {
            return;
        }
        remove_at(obj, &self.segments);
    }
}

fn remove_at(value: &mut Value, segments: &[String]) {
    let Some((first, rest)) = segments.split_first() else {
        return;
    };
    match value {
        Value::Object(map) => {
            if rest.is_empty() {
                if first == "*" {
                    map.clear();
                } else {
                    map.remove(first);
                }
            } else if first == "*" {
                map.values_mut().for_each(|v| remove_at(v, rest));
            } else if let Some(child) = map.get_mut(first) {
                remove_at(child, rest);
            }
        }
        Value::Array(items) => {
            if first == "*" {
                if rest.is_empty() {
                    items.clear();
                } else {
                    items.iter_mut().for_each(|v| remove_at(v, rest));
                }
            } else if let Ok(i) = first.parse::<usize>() {
                if rest.is_empty() {
                    // Null rather than remove, so later indices still line up on both sides.
                    if let Some(v) = items.get_mut(i) {
                        *v = Value::Null;
                    }
                } else if let Some(child) = items.get_mut(i) {
                    remove_at(child, rest);
                }
            }
        }
        _ => {}
    }
}

/// The comparison of one object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectDiff {
    /// Whether applying would change the object (always true for a create).
    pub changed: bool,
    /// A unified diff of the YAML renderings, with a header naming `Kind/ns/name`; empty when
    /// unchanged. Secret values are masked.
    pub unified: String,
}

/// Compares the live object (absent for a create) with the predicted one.
pub fn object_diff(live: Option<&Value>, predicted: &Value) -> ObjectDiff {
    object_diff_with(live, predicted, &[])
}

/// [`object_diff`] with ignore rules applied to both sides first.
pub fn object_diff_with(live: Option<&Value>, predicted: &Value, ignore: &[IgnoreRule]) -> ObjectDiff {
    let mut after = normalize_for_compare(predicted);
    let mut before = live.map(normalize_for_compare);
    for rule in ignore {
        rule.apply(&mut after);
        if let Some(b) = before.as_mut() {
            rule.apply(b);
        }
    }
    let changed = before.as_ref() != Some(&after);
    if !changed {
        return ObjectDiff {
            changed,
            unified: String::new(),
        };
    }
    if is_secret(predicted) || live.is_some_and(is_secret) {
        mask_secret(before.as_mut(), &mut after);
    }
    let name = ObjectRef::from_object(predicted)
        .or_else(|| live.and_then(ObjectRef::from_object))
        .map_or_else(|| "object".to_owned(), |r| r.to_string());
    let before_text = before.as_ref().map(to_yaml).unwrap_or_default();
    let after_text = to_yaml(&after);
    let text_diff = TextDiff::from_lines(&before_text, &after_text);
    let unified = text_diff
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("{name} (live{})", if live.is_none() { ": absent" } else { "" }),
            &format!("{name} (predicted)"),
        )
        .to_string();
    ObjectDiff { changed, unified }
}

fn is_secret(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("Secret")
        && obj.get("apiVersion").and_then(Value::as_str) == Some("v1")
}

fn mask_secret(before: Option<&mut Value>, after: &mut Value) {
    let mut before = before;
    for field in ["data", "stringData"] {
        let old = before.as_deref().and_then(|b| b.get(field)).cloned();
        if let Some(new) = after.get_mut(field) {
            *new = mask_values(old.as_ref(), new);
        }
        if let Some(b) = before.as_deref_mut()
            && let Some(old) = b.get_mut(field)
        {
            *old = mask_values(None, old);
        }
    }
}

/// Masks every value of a data map; with `previous`, values that differ are marked changed.
fn mask_values(previous: Option<&Value>, data: &Value) -> Value {
    let Some(map) = data.as_object() else {
        // A malformed `data` (not a map) is masked whole: it may still hold secret text.
        return Value::String(SECRET_MASK.to_owned());
    };
    let masked: Map<String, Value> = map
        .iter()
        .map(|(k, v)| {
            let same = previous.is_none_or(|p| p.get(k) == Some(v));
            let mask = if same { SECRET_MASK } else { SECRET_MASK_CHANGED };
            (k.clone(), Value::String(mask.to_owned()))
        })
        .collect();
    Value::Object(masked)
}

/// Canonical YAML rendering used in diffs.
pub fn to_yaml(value: &Value) -> String {
    let canonical = canonical_order(value, true);
    serde_saphyr::to_string(&canonical).unwrap_or_else(|_| {
        // Rendering a JSON value cannot fail in practice; fall back to JSON rather than panic.
        serde_json::to_string_pretty(&canonical).unwrap_or_default()
    })
}

fn canonical_order(value: &Value, top: bool) -> Value {
    match value {
        Value::Object(map) => {
            let rank = |k: &str| match (top, k) {
                (true, "apiVersion") => 0,
                (true, "kind") => 1,
                (true, "metadata") => 2,
                _ => 3,
            };
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical_order(&map[k], false)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| canonical_order(v, false)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests;

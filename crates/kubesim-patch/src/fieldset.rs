//! [`FieldSet`]: a set of field paths stored as a trie, and its `fieldsV1`
//! serialisation.
//!
//! The shape mirrors structured-merge-diff's `fieldpath.Set`: at every node
//! there are *members* (paths that end here) and *children* (paths that
//! continue). A node can be both — e.g. an associative-list item that the
//! manager owns as a whole (`.`) and some of whose fields it owns too. That is
//! exactly what `fieldsV1` encodes: `{}` for a member leaf, `{".": {}, ...}`
//! for a member with children, `{...}` without `.` for a pure prefix.
//!
//! Invariant: no child set is ever empty (operations prune them), so
//! structural equality is set equality.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::path::{FieldPath, PathElement};

/// A set of [`FieldPath`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

/// `fieldsV1` could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fieldsV1: {0}")]
pub struct FieldsV1Error(pub String);

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when the set holds no path.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Adds one path. The empty path (the object root) is never stored.
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// True when exactly this path is a member.
    pub fn contains(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.contains(rest)),
        }
    }

    /// The subset of paths starting with `pe`, with `pe` stripped.
    pub fn child(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    /// True when `pe` is a member at this level.
    pub fn has_member(&self, pe: &PathElement) -> bool {
        self.members.contains(pe)
    }

    /// Paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, c) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(c),
                None => c.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    /// Paths in `self` that are not in `other` (path-wise, not recursive:
    /// removing `.a` does not remove `.a.b`).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            members: self.members.difference(&other.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (pe, c) in &self.children {
            let d = match other.children.get(pe) {
                Some(o) => c.difference(o),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(pe.clone(), d);
            }
        }
        out
    }

    /// Paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            members: self.members.intersection(&other.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (pe, c) in &self.children {
            if let Some(o) = other.children.get(pe) {
                let i = c.intersection(o);
                if !i.is_empty() {
                    out.children.insert(pe.clone(), i);
                }
            }
        }
        out
    }

    /// Removes `path` and every path below it (structured-merge-diff's
    /// `RecursiveDifference` for a single prefix).
    pub fn remove_subtree(&mut self, path: &[PathElement]) {
        match path {
            [] => *self = FieldSet::new(),
            [last] => {
                self.members.remove(last);
                self.children.remove(last);
            }
            [first, rest @ ..] => {
                if let Some(c) = self.children.get_mut(first) {
                    c.remove_subtree(rest);
                    if c.is_empty() {
                        self.children.remove(first);
                    }
                }
            }
        }
    }

    /// Keeps only `path` and the paths below it.
    pub fn retain_subtree(&self, path: &[PathElement]) -> FieldSet {
        match path {
            [] => self.clone(),
            [first, rest @ ..] => {
                let mut out = FieldSet::new();
                if rest.is_empty() && self.members.contains(first) {
                    out.members.insert(first.clone());
                }
                if let Some(c) = self.children.get(first) {
                    let sub = c.retain_subtree(rest);
                    if !sub.is_empty() {
                        out.children.insert(first.clone(), sub);
                    }
                }
                out
            }
        }
    }

    /// All member paths, in Kubernetes' iteration order: at each level the
    /// members first (sorted), then the children (sorted). This is the order
    /// in which kube-apiserver lists conflicting fields.
    pub fn paths(&self) -> Vec<FieldPath> {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        self.collect_paths(&mut prefix, &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<FieldPath>) {
        for m in &self.members {
            let mut p = prefix.clone();
            p.push(m.clone());
            out.push(FieldPath(p));
        }
        for (pe, c) in &self.children {
            prefix.push(pe.clone());
            c.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// Number of member paths.
    pub fn len(&self) -> usize {
        self.members.len() + self.children.values().map(FieldSet::len).sum::<usize>()
    }

    /// Serialises to the `fieldsV1` JSON object Kubernetes stores in
    /// `metadata.managedFields[].fieldsV1`.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.fields_v1_object(false))
    }

    fn fields_v1_object(&self, include_self: bool) -> Map<String, Value> {
        let mut m = Map::new();
        if include_self {
            m.insert(".".to_string(), Value::Object(Map::new()));
        }
        // Members and children interleaved in one sorted sequence.
        let keys: BTreeSet<&PathElement> = self.members.iter().chain(self.children.keys()).collect();
        for pe in keys {
            let v = match self.children.get(pe) {
                Some(c) => c.fields_v1_object(self.members.contains(pe)),
                None => Map::new(),
            };
            m.insert(pe.to_fields_v1_key(), Value::Object(v));
        }
        m
    }

    /// Parses a `fieldsV1` JSON object.
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, FieldsV1Error> {
        let obj = v
            .as_object()
            .ok_or_else(|| FieldsV1Error("expected a JSON object".into()))?;
        let (set, _) = Self::parse_object(obj)?;
        Ok(set)
    }

    /// Returns the set below this node and whether the node itself is marked
    /// with `.`.
    fn parse_object(obj: &Map<String, Value>) -> Result<(FieldSet, bool), FieldsV1Error> {
        let mut set = FieldSet::new();
        let mut dot = false;
        for (k, v) in obj {
            let child_obj = v
                .as_object()
                .ok_or_else(|| FieldsV1Error(format!("value of {k:?} is not an object")))?;
            if k == "." {
                dot = true;
                continue;
            }
            let pe = PathElement::from_fields_v1_key(k).map_err(FieldsV1Error)?;
            let (child, child_dot) = Self::parse_object(child_obj)?;
            if child_obj.is_empty() || child_dot {
                set.members.insert(pe.clone());
            }
            if !child.is_empty() {
                set.children.insert(pe, child);
            }
        }
        Ok((set, dot))
    }
}

impl FromIterator<FieldPath> for FieldSet {
    fn from_iter<T: IntoIterator<Item = FieldPath>>(iter: T) -> Self {
        let mut s = FieldSet::new();
        for p in iter {
            s.insert(&p.0);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(s: &str) -> PathElement {
        PathElement::Field(s.into())
    }

    #[test]
    fn fields_v1_round_trip_kubernetes_shape() {
        let v = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}
                }}}
            }
        });
        let s = FieldSet::from_fields_v1(&v).unwrap();
        assert!(s.contains(&[f("spec"), f("replicas")]));
        assert!(s.contains(&[f("metadata"), f("labels")]));
        assert!(!s.contains(&[f("spec")]));
        assert_eq!(s.to_fields_v1(), v);
        // Key order in the output is the Kubernetes order, not input order.
        let text = serde_json::to_string(&s.to_fields_v1()).unwrap();
        assert!(text.starts_with(r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}}"#));
    }

    #[test]
    fn malformed_fields_v1_is_an_error() {
        assert!(FieldSet::from_fields_v1(&json!([])).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"f:a": 1})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"bogus": {}})).is_err());
    }

    #[test]
    fn set_algebra() {
        let mut a = FieldSet::new();
        a.insert(&[f("a"), f("b")]);
        a.insert(&[f("a"), f("c")]);
        a.insert(&[f("d")]);
        let mut b = FieldSet::new();
        b.insert(&[f("a"), f("b")]);
        let d = a.difference(&b);
        assert_eq!(d.len(), 2);
        assert!(!d.contains(&[f("a"), f("b")]));
        assert_eq!(a.intersection(&b), b);
        assert_eq!(d.union(&b), a);
        let mut r = a.clone();
        r.remove_subtree(&[f("a")]);
        assert_eq!(r.len(), 1);
        assert_eq!(a.retain_subtree(&[f("a")]).len(), 2);
        let paths: Vec<String> = a.paths().iter().map(|p| p.to_string()).collect();
        assert_eq!(paths, vec![".d", ".a.b", ".a.c"]);
    }
}

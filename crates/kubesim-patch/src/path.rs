//! Path elements and field paths, in the vocabulary of structured-merge-diff.
//!
//! A field path names one node of an object: a struct/map field (`f:`), an
//! associative-list item identified by its key fields (`k:`), a set-list item
//! identified by its own value (`v:`), or a positional list item (`i:`, only
//! ever produced for data we could not key; Kubernetes itself never emits it
//! for built-in kinds).
//!
//! Ordering matters because `fieldsV1` objects and conflict listings are
//! emitted in sorted order by Kubernetes: fields sort before keys, keys before
//! values, values before indices, and within a kind by name/value.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Value};

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathElement {
    /// A named field of a map or struct (`f:<name>`).
    Field(String),
    /// An associative-list item identified by its key fields (`k:{...}`).
    /// The pairs are kept sorted by field name, as Kubernetes serialises them.
    Key(Vec<(String, Value)>),
    /// A set-list item identified by its own (scalar) value (`v:<json>`).
    Value(Value),
    /// A positional list item (`i:<n>`).
    Index(usize),
}

impl PathElement {
    /// Builds a key element, sorting the pairs by field name.
    pub fn key(mut pairs: Vec<(String, Value)>) -> Self {
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        PathElement::Key(pairs)
    }

    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `fieldsV1` spelling of this element, e.g. `f:spec` or
    /// `k:{"containerPort":80,"protocol":"TCP"}`.
    pub fn to_fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(pairs) => {
                // preserve_order is on, so insertion order (already sorted) is kept.
                let mut m = Map::new();
                for (k, v) in pairs {
                    m.insert(k.clone(), v.clone());
                }
                format!("k:{}", Value::Object(m))
            }
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `fieldsV1` key (anything but `.`).
    pub fn from_fields_v1_key(s: &str) -> Result<Self, String> {
        let (prefix, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("invalid fieldsV1 key {s:?}: missing prefix"))?;
        match prefix {
            "f" => Ok(PathElement::Field(rest.to_string())),
            "k" => {
                let v: Value = serde_json::from_str(rest).map_err(|e| format!("invalid fieldsV1 key {s:?}: {e}"))?;
                match v {
                    Value::Object(m) => Ok(PathElement::key(m.into_iter().collect())),
                    _ => Err(format!("invalid fieldsV1 key {s:?}: k: needs a JSON object")),
                }
            }
            "v" => serde_json::from_str(rest)
                .map(PathElement::Value)
                .map_err(|e| format!("invalid fieldsV1 key {s:?}: {e}")),
            "i" => rest
                .parse()
                .map(PathElement::Index)
                .map_err(|e| format!("invalid fieldsV1 key {s:?}: {e}")),
            _ => Err(format!("invalid fieldsV1 key {s:?}: unknown prefix")),
        }
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((ka, va), (kb, vb)) in a.iter().zip(b.iter()) {
                    let o = ka.cmp(kb).then_with(|| cmp_value(va, vb));
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => cmp_value(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A total order on JSON values: by type (null, bool, number, string, array,
/// object), then by content. Numbers compare numerically.
pub(crate) fn cmp_value(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            Value::Array(_) => 4,
            Value::Object(_) => 5,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => {
            match (x.as_i64(), y.as_i64()) {
                (Some(i), Some(j)) => i.cmp(&j),
                _ => {
                    let (fx, fy) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                    fx.partial_cmp(&fy)
                        .unwrap_or(Ordering::Equal)
                        // Keep the order total for distinct big numbers.
                        .then_with(|| x.to_string().cmp(&y.to_string()))
                }
            }
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y.iter()) {
                let o = cmp_value(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xs: Vec<_> = x.iter().collect();
            let mut ys: Vec<_> = y.iter().collect();
            xs.sort_by(|p, q| p.0.cmp(q.0));
            ys.sort_by(|p, q| p.0.cmp(q.0));
            for ((kp, vp), (kq, vq)) in xs.iter().zip(ys.iter()) {
                let o = kp.cmp(kq).then_with(|| cmp_value(vp, vq));
                if o != Ordering::Equal {
                    return o;
                }
            }
            xs.len().cmp(&ys.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

impl fmt::Display for PathElement {
    /// Formats like structured-merge-diff's `PathElement.String()`, which is
    /// what kube-apiserver prints in conflict messages: `.name`,
    /// `[name="web"]`, `[=value]`, `[3]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(pairs) => {
                f.write_str("[")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{k}={v}")?;
                }
                f.write_str("]")
            }
            PathElement::Value(v) => write!(f, "[={v}]"),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path from the object root to one field, list item or map entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct FieldPath(pub Vec<PathElement>);

impl FieldPath {
    /// Convenience constructor for a path made only of field names,
    /// e.g. `FieldPath::fields(&["spec", "replicas"])`.
    pub fn fields(names: &[&str]) -> Self {
        FieldPath(names.iter().map(|n| PathElement::Field((*n).to_string())).collect())
    }
}

impl fmt::Display for FieldPath {
    /// `.spec.template.spec.containers[name="web"].image`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pe in &self.0 {
            write!(f, "{pe}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_v1_keys_round_trip() {
        let k = PathElement::key(vec![
            ("protocol".into(), json!("TCP")),
            ("containerPort".into(), json!(80)),
        ]);
        let s = k.to_fields_v1_key();
        assert_eq!(s, r#"k:{"containerPort":80,"protocol":"TCP"}"#);
        assert_eq!(PathElement::from_fields_v1_key(&s).unwrap(), k);
        let v = PathElement::Value(json!("example.com/fin"));
        assert_eq!(v.to_fields_v1_key(), r#"v:"example.com/fin""#);
        assert_eq!(PathElement::from_fields_v1_key(&v.to_fields_v1_key()).unwrap(), v);
        assert!(PathElement::from_fields_v1_key("x:1").is_err());
        assert!(PathElement::from_fields_v1_key("k:[1]").is_err());
        assert!(PathElement::from_fields_v1_key("nocolon").is_err());
    }

    #[test]
    fn display_matches_smd() {
        let p = FieldPath(vec![
            PathElement::Field("spec".into()),
            PathElement::Field("containers".into()),
            PathElement::key(vec![("name".into(), json!("web"))]),
            PathElement::Field("image".into()),
        ]);
        assert_eq!(p.to_string(), r#".spec.containers[name="web"].image"#);
        let p = FieldPath(vec![
            PathElement::Field("ports".into()),
            PathElement::key(vec![
                ("containerPort".into(), json!(80)),
                ("protocol".into(), json!("TCP")),
            ]),
        ]);
        assert_eq!(p.to_string(), r#".ports[containerPort=80,protocol="TCP"]"#);
    }

    #[test]
    fn ordering_is_kind_then_content() {
        let mut v = [
            PathElement::Value(json!("a")),
            PathElement::key(vec![("port".into(), json!(443))]),
            PathElement::Field("z".into()),
            PathElement::key(vec![("port".into(), json!(80))]),
            PathElement::Field("a".into()),
        ];
        v.sort();
        let s: Vec<String> = v.iter().map(|p| p.to_string()).collect();
        assert_eq!(s, vec![".a", ".z", "[port=80]", "[port=443]", "[=\"a\"]"]);
    }
}

//! Bounded YAML parsing with line numbers.
//!
//! All YAML that reaches driftless (application specs, manifests, `health -f` input) goes
//! through here so the same limits apply everywhere:
//!
//! * the text size is checked before parsing ([`YamlLimits::max_bytes`]);
//! * serde-saphyr's [`Budget`](serde_saphyr::Budget) caps events, nodes, nesting depth, aliases,
//!   anchors and alias replay, so an alias bomb (CVE-2022-31016 class) is an error, not an
//!   out-of-memory kill;
//! * duplicate keys are errors (YAML forbids them and the "last one wins" reading of other tools
//!   hides typos);
//! * only YAML 1.2 booleans (`true`/`false`), so `name: y` or `country: no` stays a string,
//!   while `0644` stays octal as in kubectl (file modes in manifests depend on it);
//! * error messages never carry a source snippet: the snippet could show Secret data.
//!
//! Documents are parsed into a small tree whose nodes remember their line, so later stages can
//! say `file:line` for any field without a second parse.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::Spanned;

use crate::error::{Error, Result};

/// Size and structure limits for one YAML text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YamlLimits {
    /// Maximum text length in bytes.
    pub max_bytes: usize,
    /// Maximum number of documents in the text.
    pub max_documents: usize,
    /// Maximum nesting depth of mappings and sequences.
    pub max_depth: usize,
    /// Maximum number of nodes (scalars, mappings, sequences), counting alias replays.
    pub max_nodes: usize,
}

impl YamlLimits {
    /// Limits for application spec files: small, hand-written documents.
    pub const SPEC: YamlLimits = YamlLimits {
        max_bytes: 1024 * 1024,
        max_documents: 256,
        max_depth: 32,
        max_nodes: 100_000,
    };

    /// Limits for Kubernetes manifests (rendered output, `kubectl get -o yaml` dumps). CRD
    /// schemas nest deeply, hence the larger depth.
    pub const MANIFESTS: YamlLimits = YamlLimits {
        max_bytes: 64 * 1024 * 1024,
        max_documents: 10_000,
        max_depth: 128,
        max_nodes: 5_000_000,
    };

    fn options(&self) -> serde_saphyr::Options {
        let mut budget = serde_saphyr::Budget::default();
        budget.max_documents = self.max_documents;
        budget.max_depth = self.max_depth;
        budget.max_nodes = self.max_nodes;
        budget.max_events = self.max_nodes.saturating_mul(4);
        budget.max_total_scalar_bytes = self.max_bytes;
        let mut options = serde_saphyr::Options::default();
        options.budget = Some(budget);
        options.with_snippet = false;
        // `name: y` or `country: no` must stay strings (YAML 1.2 core booleans only).
        options.strict_booleans = true;
        // `defaultMode: 0644` means octal in Kubernetes tooling (go-yaml); keep that meaning.
        options.legacy_octal_numbers = true;
        // Aliases are legal YAML but never needed in manifests; bound their replay tightly.
        options.alias_limits.max_total_replayed_events = self.max_nodes.min(100_000);
        options
    }
}

/// A YAML node with the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub line: usize,
    pub kind: NodeKind,
}

/// The shape of a YAML node, already in JSON's data model.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Seq(Vec<Node>),
    /// Keys with the line of the key itself, in document order.
    Map(Vec<(String, usize, Node)>),
}

impl Node {
    /// The node as a JSON value (the form every other stage works with).
    pub fn to_value(&self) -> Value {
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Number(n) => Value::Number(n.clone()),
            NodeKind::String(s) => Value::String(s.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            NodeKind::Map(entries) => {
                let mut map = Map::with_capacity(entries.len());
                for (k, _, v) in entries {
                    map.insert(k.clone(), v.to_value());
                }
                Value::Object(map)
            }
        }
    }

    /// The line of the node at a dotted path's key (`["spec", "source", "repoURL"]`), or of the
    /// deepest existing ancestor when the path does not exist (so "required" errors point at the
    /// mapping that lacks the field).
    pub fn line_of(&self, path: &[&str]) -> usize {
        let mut node = self;
        let mut line = self.line;
        for segment in path {
            let next = match &node.kind {
                NodeKind::Map(entries) => entries
                    .iter()
                    .find(|(k, _, _)| k == segment)
                    .map(|(_, key_line, v)| (*key_line, v)),
                NodeKind::Seq(items) => segment
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.get(i))
                    .map(|v| (v.line, v)),
                _ => None,
            };
            match next {
                Some((key_line, child)) => {
                    line = if key_line > 0 { key_line } else { child.line };
                    node = child;
                }
                None => break,
            }
        }
        line
    }
}

/// Parses every document of `text` (empty documents are skipped) into located nodes.
pub(crate) fn parse_nodes(text: &str, file: &str, limits: YamlLimits) -> Result<Vec<Node>> {
    if text.len() > limits.max_bytes {
        return Err(Error::TooLarge {
            file: file.to_owned(),
            size: text.len() as u64,
            limit: limits.max_bytes as u64,
        });
    }
    serde_saphyr::from_str_multiple_with_options::<Node, Vec<Node>>(text, limits.options())
        .map_err(|e| yaml_error(file, &e))
}

/// Parses every non-empty document of `text` into a JSON value with its starting line.
///
/// This is the entry point for manifests. `file` is only used in error messages.
pub fn parse_documents(text: &str, file: &str, limits: YamlLimits) -> Result<Vec<(usize, Value)>> {
    Ok(parse_nodes(text, file, limits)?
        .into_iter()
        .filter(|n| n.kind != NodeKind::Null)
        .map(|n| (n.line, n.to_value()))
        .collect())
}

fn yaml_error(file: &str, e: &serde_saphyr::Error) -> Error {
    let inner = e.without_snippet();
    let line = inner.location().map_or(0, |l| l.line() as usize);
    let mut message = inner.to_string();
    // The rendered message repeats the position and may advise the developer; keep one line
    // of text for the user.
    if let Some(first) = message.lines().next() {
        message = first.to_owned();
    }
    if let Some(i) = message.rfind(" at line ") {
        message.truncate(i);
    }
    message = message.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    Error::Yaml {
        file: file.to_owned(),
        line,
        message,
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<NodeKind>::deserialize(deserializer)?;
        Ok(Node {
            line: spanned.referenced.line() as usize,
            kind: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for NodeKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

fn float<E: de::Error>(v: f64) -> Result<NodeKind, E> {
    Number::from_f64(v)
        .map(NodeKind::Number)
        .ok_or_else(|| E::custom("non-finite numbers (.nan, .inf) are not supported"))
}

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = NodeKind;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<NodeKind, D::Error> {
        NodeKind::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<NodeKind, E> {
        Ok(NodeKind::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<NodeKind, E> {
        Ok(NodeKind::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<NodeKind, E> {
        Ok(NodeKind::Number(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<NodeKind, E> {
        match i64::try_from(v) {
            Ok(i) => Ok(NodeKind::Number(i.into())),
            Err(_) => float(v as f64),
        }
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<NodeKind, E> {
        match u64::try_from(v) {
            Ok(i) => Ok(NodeKind::Number(i.into())),
            Err(_) => float(v as f64),
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<NodeKind, E> {
        float(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<NodeKind, E> {
        Ok(NodeKind::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<NodeKind, E> {
        Ok(NodeKind::String(v))
    }
    fn visit_bytes<E: de::Error>(self, _v: &[u8]) -> Result<NodeKind, E> {
        Err(E::custom("!!binary scalars are not supported"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeKind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(NodeKind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeKind, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Key>>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key.value.0, key.referenced.line() as usize, value));
        }
        Ok(NodeKind::Map(entries))
    }
}

/// A mapping key: any scalar, read as its text (JSON keys are strings).
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Key, E> {
                Ok(Key("null".to_owned()))
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_keep_their_start_line_and_skip_empty_ones() {
        let text = "a: 1\n---\n# only a comment\n---\nkind: X\nmetadata:\n  name: y\n";
        let docs = parse_documents(text, "f.yaml", YamlLimits::MANIFESTS).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0], (1, json!({"a": 1})));
        assert_eq!(docs[1].0, 5);
        assert_eq!(docs[1].1, json!({"kind": "X", "metadata": {"name": "y"}}));
    }

    #[test]
    fn line_of_finds_keys_and_falls_back_to_the_parent() {
        let text = "spec:\n  source:\n    path: a\n    ref: main\n";
        let nodes = parse_nodes(text, "f.yaml", YamlLimits::SPEC).unwrap();
        assert_eq!(nodes[0].line_of(&["spec", "source", "ref"]), 4);
        assert_eq!(nodes[0].line_of(&["spec", "source", "repoURL"]), 2);
    }

    #[test]
    fn alias_bomb_is_an_error_not_an_oom() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse_documents(&text, "bomb.yaml", YamlLimits::MANIFESTS).unwrap_err();
        assert!(matches!(err, Error::Yaml { .. }), "{err}");
    }

    #[test]
    fn deep_nesting_and_duplicate_keys_are_errors() {
        let deep = "[".repeat(10_000);
        assert!(parse_documents(&deep, "d.yaml", YamlLimits::MANIFESTS).is_err());
        let dup = "a: 1\na: 2\n";
        let err = parse_documents(dup, "dup.yaml", YamlLimits::MANIFESTS).unwrap_err();
        assert!(err.to_string().starts_with("dup.yaml:2:"), "{err}");
    }

    #[test]
    fn oversized_text_is_refused_before_parsing() {
        let limits = YamlLimits {
            max_bytes: 10,
            ..YamlLimits::SPEC
        };
        let err = parse_documents("a: 0123456789\n", "big.yaml", limits).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }));
    }

    #[test]
    fn syntax_errors_never_echo_the_source_text() {
        let text = "kind: Secret\ndata:\n  password: c2VjcmV0LXZhbHVl\n  bad: [unclosed\n";
        let err = parse_documents(text, "s.yaml", YamlLimits::MANIFESTS).unwrap_err();
        let msg = err.to_string();
        assert!(!msg.contains("c2VjcmV0LXZhbHVl"), "{msg}");
        assert!(msg.starts_with("s.yaml:"), "{msg}");
    }

    #[test]
    fn hostile_scalars_do_not_panic() {
        for text in [
            "a: .nan\n",
            "a: !!binary aGVsbG8=\n",
            "? [a, b]\n: c\n",
            "a: 99999999999999999999999999999999999999\n",
            "\u{0}",
            "a: *nope\n",
            "&a [*a]\n",
            "---\n...\n---\n",
        ] {
            let _ = parse_documents(text, "h.yaml", YamlLimits::MANIFESTS);
        }
    }
}

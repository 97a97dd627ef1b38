//! Turning manifest text (YAML streams, JSON) into [`DesiredObject`]s.
//!
//! Decisions:
//! - **YAML dialect.** Booleans follow YAML 1.2 (`yes`/`on` stay strings) and numbers with a
//!   leading zero are octal (`defaultMode: 0644` is 420). That is exactly what Kustomize
//!   (kyaml) produces, so a directory renders the same whether or not it has a kustomization,
//!   and it keeps the ubiquitous `0644` file modes right.
//! - **Duplicate keys are an error** (serde-saphyr's default, and what recent kubectl does):
//!   silently keeping one of two values hides mistakes.
//! - **Budgets.** serde-saphyr's budget and alias-replay limits stop alias bombs ("billion
//!   laughs") and nesting bombs before they allocate; the byte limits are enforced by the
//!   caller before parsing. Node and event budgets are scaled to the 64 MiB total limit so a
//!   large but honest CRD bundle is not refused.
//! - **What is an object.** A document without `apiVersion`/`kind` (a Helm values file, a
//!   CI config) is skipped with a warning; a document with both but without `metadata.name`
//!   is an error — it was meant to be an object and applying the rest without it would be
//!   wrong. `List` (and `FooList` with an `items` array) is flattened.
//! - **Origins.** A YAML object's line is the line where its document's content starts (the
//!   first key, after any `---` and comments); list items share their list's line. JSON
//!   streams get the line of each value's opening brace.

use driftless_core::object::{DesiredObject, Origin};
use serde_json::Value;

use crate::error::RenderError;

/// Parser options shared by every YAML read (manifests, kustomizations, Kustomize output).
pub(crate) fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 20_000_000,
            max_nodes: 10_000_000,
            max_documents: 100_000,
            max_aliases: 10_000,
            max_anchors: 10_000,
            max_depth: 100,
            max_total_scalar_bytes: 64 * 1024 * 1024,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 1_000_000,
        },
        strict_booleans: true,
        legacy_octal_numbers: true,
        with_snippet: false,
        emit_comments: false,
    }
}

/// Where documents come from: a file (lines are source lines) or tool output (lines are
/// 1-based document indexes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineMode {
    SourceLine,
    DocumentIndex,
}

/// Collects objects and warnings of one render.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    pub(crate) objects: Vec<DesiredObject>,
    pub(crate) warnings: Vec<String>,
}

/// Parses a YAML stream into JSON values with their document lines.
pub(crate) fn parse_yaml_documents(text: &str, file: &str) -> Result<Vec<(Value, usize)>, RenderError> {
    let docs: Vec<serde_saphyr::Spanned<Value>> =
        serde_saphyr::from_multiple_with_options(text, yaml_options()).map_err(|e| yaml_error(file, &e))?;
    Ok(docs
        .into_iter()
        .map(|d| {
            let line = usize::try_from(d.referenced.line()).unwrap_or(0);
            (d.value, line)
        })
        .collect())
}

/// Converts a serde-saphyr error into [`RenderError::Syntax`] with the parser's location.
pub(crate) fn yaml_error(file: &str, e: &serde_saphyr::Error) -> RenderError {
    let (line, column) = e
        .location()
        .map(|l| {
            (
                usize::try_from(l.line()).unwrap_or(0),
                usize::try_from(l.column()).unwrap_or(0),
            )
        })
        .unwrap_or((0, 0));
    let message = strip_location_suffix(&e.without_snippet().to_string());
    RenderError::Syntax {
        file: file.to_owned(),
        line,
        column,
        message,
    }
}

/// serde-saphyr appends ` at line X, column Y` (and for aliases where they were defined) to
/// plain messages; we print the location as `file:line:column` in front instead, drop advice
/// aimed at programmers, and say what a budget breach means for a manifest author.
fn strip_location_suffix(msg: &str) -> String {
    let first = msg.lines().next().unwrap_or(msg).trim();
    let mut text = match first.find(" at line ") {
        Some(i) => first[..i].trim_end_matches(',').to_owned(),
        None => first.to_owned(),
    };
    if let Some(i) = text.find(", set DuplicateKeyPolicy") {
        text.truncate(i);
    }
    if text.starts_with("budget breached") || text.to_lowercase().contains("alias replay") {
        text = format!(
            "{text} — the document exceeds the YAML safety limits (anchors/aliases expanding too far, or too many nodes or too deep nesting); this looks like an alias bomb"
        );
    }
    text
}

/// Parses a YAML stream and collects its objects.
pub(crate) fn collect_yaml(text: &str, file: &str, mode: LineMode, out: &mut Collector) -> Result<(), RenderError> {
    for (index, (value, line)) in parse_yaml_documents(text, file)?.into_iter().enumerate() {
        let line = match mode {
            LineMode::SourceLine => line,
            LineMode::DocumentIndex => index + 1,
        };
        accept_document(value, file, line, out, 0)?;
    }
    Ok(())
}

/// Parses a JSON file (one value, or a stream of values) and collects its objects.
pub(crate) fn collect_json(text: &str, file: &str, out: &mut Collector) -> Result<(), RenderError> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut line = 1usize;
    let mut counted = 0usize;
    loop {
        // The value starts at the first non-whitespace byte after the previous one.
        let offset = stream.byte_offset();
        let start = text
            .get(offset..)
            .and_then(|rest| rest.find(|c: char| !c.is_whitespace()))
            .map_or(text.len(), |i| offset + i);
        line += text
            .get(counted..start)
            .map_or(0, |between| between.matches('\n').count());
        counted = start;
        match stream.next() {
            None => break,
            Some(Ok(value)) => accept_document(value, file, line, out, 0)?,
            Some(Err(e)) => {
                return Err(RenderError::Syntax {
                    file: file.to_owned(),
                    line: e.line(),
                    column: e.column(),
                    message: strip_location_suffix(&e.to_string()),
                });
            }
        }
    }
    Ok(())
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

/// Validates one document and adds the object(s) it declares.
fn accept_document(
    value: Value,
    file: &str,
    line: usize,
    out: &mut Collector,
    list_depth: usize,
) -> Result<(), RenderError> {
    let Value::Object(map) = &value else {
        if !value.is_null() {
            out.warnings.push(format!(
                "{file}:{line}: document is {} rather than a Kubernetes object; skipped",
                describe(&value)
            ));
        }
        return Ok(());
    };
    let (Some(api_version), Some(kind)) = (map.get("apiVersion"), map.get("kind")) else {
        if list_depth > 0 {
            return Err(invalid(
                file,
                line,
                "List item",
                "an item has no apiVersion or kind; every List item must be a Kubernetes object",
            ));
        }
        out.warnings.push(format!(
            "{file}:{line}: document has no apiVersion/kind, so it is not a Kubernetes object; skipped"
        ));
        return Ok(());
    };
    let kind = match kind {
        Value::String(k) if !k.is_empty() => k.clone(),
        _ => {
            return Err(invalid(
                file,
                line,
                "<unknown kind>",
                "`kind` must be a non-empty string",
            ));
        }
    };
    if !matches!(api_version, Value::String(a) if !a.is_empty()) {
        return Err(invalid(file, line, &kind, "`apiVersion` must be a non-empty string"));
    }
    if kind.ends_with("List") {
        match map.get("items") {
            Some(Value::Array(_)) => {
                if list_depth >= 4 {
                    return Err(invalid(
                        file,
                        line,
                        &kind,
                        "Lists nested more than 4 deep; flatten them",
                    ));
                }
                let Value::Object(mut map) = value else {
                    return Ok(());
                };
                let Some(Value::Array(items)) = map.remove("items") else {
                    return Ok(());
                };
                for item in items {
                    accept_document(item, file, line, out, list_depth + 1)?;
                }
                return Ok(());
            }
            None if kind == "List" => {
                return Err(invalid(file, line, &kind, "a List needs an `items` sequence"));
            }
            Some(_) if kind == "List" => {
                return Err(invalid(file, line, &kind, "`items` must be a sequence"));
            }
            // `FooList` without items is an ordinary kind that happens to end in "List".
            _ => {}
        }
    }
    let name_ok = match map.get("metadata") {
        Some(Value::Object(meta)) => {
            if let Some(ns) = meta.get("namespace")
                && !matches!(ns, Value::String(_) | Value::Null)
            {
                return Err(invalid(file, line, &kind, "`metadata.namespace` must be a string"));
            }
            matches!(meta.get("name"), Some(Value::String(n)) if !n.is_empty())
        }
        None | Some(Value::Null) => false,
        Some(_) => {
            return Err(invalid(file, line, &kind, "`metadata` must be a mapping"));
        }
    };
    if !name_ok {
        return Err(invalid(
            file,
            line,
            &kind,
            "`metadata.name` is missing or empty; give the object a name (generateName is not supported: server-side apply needs a name)",
        ));
    }
    out.objects.push(DesiredObject {
        object: value,
        origin: Origin {
            file: file.to_owned(),
            line,
        },
    });
    Ok(())
}

fn invalid(file: &str, line: usize, kind: &str, reason: &str) -> RenderError {
    RenderError::InvalidObject {
        file: file.to_owned(),
        line,
        kind: kind.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Result<Collector, RenderError> {
        let mut c = Collector::default();
        collect_yaml(text, "f.yaml", LineMode::SourceLine, &mut c)?;
        Ok(c)
    }

    #[test]
    fn multi_document_lines_and_empty_documents() {
        let c = yaml(
            "# leading comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\n# c\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
        )
        .unwrap();
        let lines: Vec<_> = c.objects.iter().map(|o| o.origin.line).collect();
        assert_eq!(lines, vec![3, 9]);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn yaml_dialect_matches_kustomize() {
        let c = yaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {a: yes, b: on, m: 0644, t: true}\n")
            .unwrap();
        let data = &c.objects[0].object["data"];
        assert_eq!(data["a"], "yes");
        assert_eq!(data["b"], "on");
        assert_eq!(data["m"], 420);
        assert_eq!(data["t"], true);
    }

    #[test]
    fn lists_are_flattened() {
        let c = yaml(
            "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n",
        )
        .unwrap();
        assert_eq!(c.objects.len(), 2);
        let c = yaml(
            "apiVersion: v1\nkind: ConfigMapList\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n",
        )
        .unwrap();
        assert_eq!(c.objects.len(), 1);
        // A kind ending in List without items is just a kind.
        let c = yaml("apiVersion: x/v1\nkind: AllowList\nmetadata: {name: a}\n").unwrap();
        assert_eq!(c.objects[0].object["kind"], "AllowList");
        assert!(matches!(
            yaml("apiVersion: v1\nkind: List\n"),
            Err(RenderError::InvalidObject { .. })
        ));
        assert!(matches!(
            yaml("apiVersion: v1\nkind: List\nitems: [{a: 1}]\n"),
            Err(RenderError::InvalidObject { .. })
        ));
    }

    #[test]
    fn non_objects_are_skipped_with_warnings() {
        let c = yaml("replicas: 3\nimage: nginx\n---\n- a\n---\njust text\n").unwrap();
        assert!(c.objects.is_empty());
        assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
        assert!(c.warnings[0].starts_with("f.yaml:1:"), "{}", c.warnings[0]);
    }

    #[test]
    fn missing_name_and_bad_fields_are_errors() {
        let e = yaml("a: 1\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {}\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("f.yaml:3: ConfigMap:"), "{msg}");
        assert!(msg.contains("metadata.name"), "{msg}");
        assert!(yaml("apiVersion: v1\nkind: ConfigMap\n").is_err());
        assert!(yaml("apiVersion: v1\nkind: 3\nmetadata: {name: a}\n").is_err());
        assert!(yaml("apiVersion: v1\nkind: X\nmetadata: [a]\n").is_err());
        assert!(yaml("apiVersion: v1\nkind: X\nmetadata: {name: a, namespace: [1]}\n").is_err());
    }

    #[test]
    fn syntax_errors_have_locations() {
        let e = yaml("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [a\n").unwrap_err();
        let RenderError::Syntax { line, .. } = &e else {
            panic!("{e:?}")
        };
        assert!(*line >= 4, "{e}");
        assert!(e.to_string().starts_with("f.yaml:"), "{e}");
        let e = yaml("a: 1\na: 2\n").unwrap_err();
        let RenderError::Syntax { line, message, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(*line, 2, "{e}");
        assert!(message.to_lowercase().contains("duplicate"), "{e}");
    }

    #[test]
    fn json_streams() {
        let mut c = Collector::default();
        collect_json(
            "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"}}\n\n{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"b\"}}\n",
            "f.json",
            &mut c,
        )
        .unwrap();
        let lines: Vec<_> = c.objects.iter().map(|o| o.origin.line).collect();
        assert_eq!(lines, vec![1, 3]);
        let e = collect_json("{\n\"a\": }", "f.json", &mut c).unwrap_err();
        assert!(e.to_string().starts_with("f.json:2:"), "{e}");
    }

    #[test]
    fn alias_bomb_is_refused() {
        let bomb = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n\
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n\
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n\
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n\
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n\
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n\
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n\
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n\
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
        let e = yaml(bomb).unwrap_err();
        assert!(matches!(e, RenderError::Syntax { .. }), "{e}");
    }

    /// A cheap stand-in for a fuzz target: random YAML-ish and JSON-ish bytes never panic.
    #[test]
    fn random_input_never_panics() {
        const ALPHABET: &[u8] = b"ab:- \n\t{}[],&*!|>'\"#%@`?0123456789.~\\";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..3000 {
            let len = (state % 200) as usize;
            let mut bytes = Vec::with_capacity(len);
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.push(ALPHABET[(state % ALPHABET.len() as u64) as usize]);
            }
            let text = String::from_utf8(bytes).unwrap();
            let mut c = Collector::default();
            let _ = collect_yaml(&text, "f.yaml", LineMode::SourceLine, &mut c);
            let _ = collect_json(&text, "f.json", &mut c);
            let prefixed = format!("apiVersion: v1\nkind: List\nitems:\n- {text}");
            let _ = collect_yaml(&prefixed, "f.yaml", LineMode::DocumentIndex, &mut c);
        }
    }
}

//! Reading and writing the four file formats (sops's `stores/*`).
//!
//! * YAML: one or more documents, each a mapping; the `sops` key is appended to
//!   every document on write and read from the first one. Comments are not
//!   carried over: the parser does not expose them, and since SOPS never puts
//!   comments into the MAC, dropping them keeps the MAC valid. Scalars are typed
//!   like go-yaml v3 does: YAML 1.2 booleans only (`yes`/`on` stay strings).
//! * JSON: a top-level object; numbers become int64 when they fit, else float.
//! * dotenv: `KEY=VALUE` lines (`\n` escapes newlines), `#` comments (which sops
//!   encrypts, with the additional data `:`), metadata flattened into
//!   `sops_*` keys.
//! * binary: the whole file is the string value of a `data` key in a JSON
//!   document.

use zeroize::Zeroizing;

use crate::SopsError;
use crate::value::{Map, Value, YamlValue};

/// A loaded document: its branches, the raw metadata tree if any, and for dotenv the comment layout.
pub(crate) struct Loaded {
    pub docs: Vec<Value>,
    pub meta: Option<Value>,
    /// dotenv only: `None` marks the next entry of `docs[0]`, `Some(text)` a comment line.
    pub dotenv_layout: Option<Vec<Option<Zeroizing<String>>>>,
}

fn yaml_options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    // go-yaml v3 (used by sops) follows YAML 1.2: only true/false are booleans.
    o.strict_booleans = true;
    #[allow(clippy::needless_update)]
    {
        o.emit_comments = false;
    }
    o
}

fn ser_options() -> serde_saphyr::SerializerOptions {
    let mut o = serde_saphyr::SerializerOptions::default();
    o.indent_step = 4;
    o.compact_list_indent = false;
    o.prefer_block_scalars = false;
    o
}

fn split_meta_key(docs: &mut [Value]) -> Result<Option<Value>, SopsError> {
    let mut meta = None;
    for (i, doc) in docs.iter_mut().enumerate() {
        let Value::Map(m) = doc else { continue };
        let mut j = 0;
        while j < m.len() {
            if m[j].0 == "sops" {
                let (_, v) = m.remove(j);
                if i == 0 {
                    if meta.is_some() {
                        return Err(SopsError::InvalidMetadata("duplicate `sops` entry".into()));
                    }
                    meta = Some(v);
                }
            } else {
                j += 1;
            }
        }
    }
    Ok(meta)
}

pub(crate) fn load_yaml(text: &[u8]) -> Result<Loaded, SopsError> {
    let text = std::str::from_utf8(text).map_err(|e| SopsError::Parse {
        format: "YAML",
        line: None,
        column: Some(e.valid_up_to() as u64),
    })?;
    let raw: Vec<Value> =
        serde_saphyr::from_multiple_with_options(text, yaml_options()).map_err(|e| SopsError::yaml(&e))?;
    let mut docs = Vec::with_capacity(raw.len());
    for d in raw {
        match d {
            Value::Map(_) => docs.push(d),
            Value::Null => docs.push(Value::Map(Vec::new())),
            Value::Seq(_) => {
                return Err(SopsError::Structure(
                    "YAML documents that are sequences are not supported".into(),
                ));
            }
            _ => {
                return Err(SopsError::Structure(
                    "YAML documents that are values are not supported".into(),
                ));
            }
        }
    }
    let meta = split_meta_key(&mut docs)?;
    Ok(Loaded {
        docs,
        meta,
        dotenv_layout: None,
    })
}

pub(crate) fn load_json(text: &[u8]) -> Result<Loaded, SopsError> {
    let v: Value = serde_json::from_slice(text).map_err(|e| SopsError::json(&e))?;
    if !matches!(v, Value::Map(_)) {
        return Err(SopsError::Structure(
            "JSON documents must be an object at the top level".into(),
        ));
    }
    let mut docs = vec![v];
    let meta = split_meta_key(&mut docs)?;
    Ok(Loaded {
        docs,
        meta,
        dotenv_layout: None,
    })
}

pub(crate) fn load_dotenv(text: &[u8]) -> Result<Loaded, SopsError> {
    let text = std::str::from_utf8(text).map_err(|_| SopsError::Parse {
        format: "dotenv",
        line: None,
        column: None,
    })?;
    let mut entries: Map = Vec::new();
    let mut meta_entries = Vec::new();
    let mut layout = Vec::new();
    for (n, line) in text.split('\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            layout.push(Some(Zeroizing::new(c.to_string())));
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(SopsError::Parse {
                format: "dotenv",
                line: Some(n as u64 + 1),
                column: None,
            });
        };
        let v = Value::str(v.replace("\\n", "\n"));
        if let Some(mk) = k.strip_prefix("sops_") {
            meta_entries.push((mk.to_string(), v));
        } else {
            entries.push((k.to_string(), v));
            layout.push(None);
        }
    }
    let meta = if meta_entries.is_empty() {
        None
    } else {
        Some(crate::metadata::unflatten(meta_entries)?)
    };
    Ok(Loaded {
        docs: vec![Value::Map(entries)],
        meta,
        dotenv_layout: Some(layout),
    })
}

pub(crate) fn load_binary_plain(data: &[u8]) -> Loaded {
    // sops stores the file as a Go string, which may hold any bytes; we keep non-UTF-8 content as bytes.
    let v = match std::str::from_utf8(data) {
        Ok(s) => Value::str(s),
        Err(_) => Value::Bytes(Zeroizing::new(data.to_vec())),
    };
    Loaded {
        docs: vec![Value::Map(vec![("data".into(), v)])],
        meta: None,
        dotenv_layout: None,
    }
}

fn wrap(s: String) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(s.into_bytes())
}

pub(crate) fn emit_yaml(docs: &[Value]) -> Result<Zeroizing<Vec<u8>>, SopsError> {
    let views: Vec<YamlValue<'_>> = docs.iter().map(YamlValue).collect();
    let s = serde_saphyr::to_string_multiple_with_options(&views, ser_options())
        .map_err(|_| SopsError::Structure("cannot serialize YAML".into()))?;
    Ok(wrap(s))
}

pub(crate) fn emit_json(doc: &Value) -> Result<Zeroizing<Vec<u8>>, SopsError> {
    let mut out = Zeroizing::new(Vec::new());
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut *out, fmt);
    serde::Serialize::serialize(doc, &mut ser).map_err(|_| SopsError::Structure("cannot serialize JSON".into()))?;
    out.push(b'\n');
    Ok(out)
}

/// Writes dotenv lines: `entries` in order, interleaved with comments per `layout`, then `extra` (metadata).
pub(crate) fn emit_dotenv(
    doc: &Value,
    layout: Option<&[Option<Zeroizing<String>>]>,
    extra: &[(String, Value)],
) -> Result<Zeroizing<Vec<u8>>, SopsError> {
    let Value::Map(entries) = doc else {
        return Err(SopsError::Structure("dotenv document is not a map".into()));
    };
    let mut out = Zeroizing::new(String::new());
    let mut it = entries.iter();
    let write_entry = |out: &mut String, k: &str, v: &Value| -> Result<(), SopsError> {
        let text: Zeroizing<String> = match v {
            Value::Str(s) => Zeroizing::new(s.replace('\n', "\\n")),
            Value::Bytes(b) => Zeroizing::new(String::from_utf8_lossy(b).replace('\n', "\\n")),
            Value::Int(i) => Zeroizing::new(i.to_string()),
            Value::Float(f) => Zeroizing::new(crate::value::go_format_float(*f)),
            Value::Bool(b) => Zeroizing::new(b.to_string()),
            Value::Null => Zeroizing::new(String::new()),
            Value::Seq(_) | Value::Map(_) => {
                return Err(SopsError::UnsupportedValue {
                    path: k.to_string(),
                    format: "dotenv",
                    reason: "complex values are not allowed",
                });
            }
        };
        out.push_str(k);
        out.push('=');
        out.push_str(&text);
        out.push('\n');
        Ok(())
    };
    if let Some(layout) = layout {
        for item in layout {
            match item {
                Some(c) => {
                    out.push('#');
                    out.push_str(c);
                    out.push('\n');
                }
                None => {
                    if let Some((k, v)) = it.next() {
                        write_entry(&mut out, k, v)?;
                    }
                }
            }
        }
    }
    for (k, v) in it {
        write_entry(&mut out, k, v)?;
    }
    for (k, v) in extra {
        write_entry(&mut out, k, v)?;
    }
    Ok(Zeroizing::new(std::mem::take(&mut *out).into_bytes()))
}

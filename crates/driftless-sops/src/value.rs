//! The in-memory document tree.
//!
//! SOPS works on an *ordered* tree (`TreeBranch` is a list of key/value items),
//! because the MAC is a hash over the values in document order. [`Value`] keeps
//! maps as vectors of pairs for the same reason; it deserializes from any serde
//! format through `deserialize_any`, so the same type serves YAML (serde-saphyr)
//! and JSON (serde_json).
//!
//! String and byte leaves are held in [`Zeroizing`] buffers so that decrypted
//! plaintext is wiped when the tree is dropped. `Debug` is redacted.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// One node of a document.
#[derive(Clone)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Zeroizing<String>),
    Bytes(Zeroizing<Vec<u8>>),
    Seq(Vec<Value>),
    Map(Map),
}

/// An ordered map. Keys are strings, as SOPS requires.
pub(crate) type Map = Vec<(String, Value)>;

impl Value {
    pub(crate) fn str(s: impl Into<String>) -> Value {
        Value::Str(Zeroizing::new(s.into()))
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("Null"),
            Value::Seq(s) => f.debug_list().entries(s).finish(),
            Value::Map(m) => f.debug_map().entries(m.iter().map(|(k, v)| (k, v))).finish(),
            _ => f.write_str("<redacted>"),
        }
    }
}

/// Formats a float like Go's `strconv.FormatFloat(f, 'f', -1, 64)`, which SOPS uses
/// both for encrypting floats and for the MAC.
pub(crate) fn go_format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        // Rust's Display for f64 is the shortest round-trip representation without an exponent: same as Go's 'f', -1.
        format!("{f}")
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        // Like sops's JSON store: an integer that does not fit int64 becomes a float.
        Ok(i64::try_from(v).map(Value::Int).unwrap_or(Value::Float(v as f64)))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(i64::try_from(v).map(Value::Int).unwrap_or(Value::Float(v as f64)))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(i64::try_from(v).map(Value::Int).unwrap_or(Value::Float(v as f64)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::str(v))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(Zeroizing::new(v)))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(Zeroizing::new(v.to_vec())))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(Zeroizing::new(v)))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Seq(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out: Map = Vec::new();
        while let Some(k) = map.next_key_seed(KeySeed)? {
            let v: Value = map.next_value()?;
            out.push((k, v));
        }
        Ok(Value::Map(out))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

/// Map keys must be strings (SOPS: "Only string keys are supported").
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<String, E> {
        Err(E::custom("non-string key"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<String, E> {
        Err(E::custom("non-string key"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<String, E> {
        Err(E::custom("non-string key"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<String, E> {
        Err(E::custom("non-string key"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Err(E::custom("non-string key"))
    }
}

/// Serializes a value for JSON (and as the base of the YAML adapter).
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            // Go (sops) writes a float64 with an integral value without a fraction (`42`, not `42.0`), in JSON and YAML.
            Value::Float(f)
                if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 && (*f != 0.0 || f.is_sign_positive()) =>
            {
                s.serialize_i64(*f as i64)
            }
            Value::Float(f) => s.serialize_f64(*f),
            Value::Str(v) => s.serialize_str(v),
            // Non-UTF-8 bytes cannot be written as JSON/YAML text; emit them lossily (sops writes Go strings, which
            // JSON-encode invalid bytes as U+FFFD too).
            Value::Bytes(b) => s.serialize_str(&Zeroizing::new(String::from_utf8_lossy(b).into_owned())),
            Value::Seq(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Map(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// YAML flavour: multi-line strings as literal block scalars (`|`), as sops writes the armored keys.
pub(crate) struct YamlValue<'a>(pub &'a Value);

impl Serialize for YamlValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Str(v) if v.contains('\n') && !v.contains('\r') => serde_saphyr::LitStr(v).serialize(s),
            Value::Seq(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(&YamlValue(v))?;
                }
                seq.end()
            }
            Value::Map(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, &YamlValue(v))?;
                }
                map.end()
            }
            other => other.serialize(s),
        }
    }
}

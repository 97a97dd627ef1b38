//! Masking of Secret values in anything the store shows to users.
//!
//! Two defences, both applied when history and audit records are *written* (so a later read
//! path cannot forget them) and again when manifests are read for display:
//!
//! 1. **Structural**: any JSON object anywhere in a value whose `kind` is `Secret` gets every
//!    value under `data` and `stringData` replaced by a fingerprint
//!    `<redacted:0123456789ab>`, and its `kubectl.kubernetes.io/last-applied-configuration`
//!    annotation (which repeats the data) replaced by `<redacted>`. The fingerprint is an
//!    HMAC-SHA256 of the value under a random key kept in the database, so a user can see
//!    *that* a value changed between two syncs (the fingerprint changes) but cannot guess it
//!    offline from the fingerprint, even for short passwords.
//! 2. **By value**: the Secret values of a sync's own manifests (as given and, for `data`,
//!    base64-decoded) are collected and every occurrence in free text (messages, diff lines
//!    in the plan summary) is replaced by `<redacted>`. This catches an apply error or a
//!    text diff that echoes a value. Values shorter than [`MIN_SCRUB_LEN`] characters are
//!    not scrubbed by value (they would mangle ordinary words); they are still masked
//!    structurally.
//!
//! Limit: a decrypted SOPS value placed in a non-Secret object (a ConfigMap, a Helm value)
//! is not recognised; the renderer would have to mark such values.

use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Shortest Secret value that is scrubbed from free text.
pub const MIN_SCRUB_LEN: usize = 4;

/// Replacement text for a value scrubbed from free text.
pub const REDACTED: &str = "<redacted>";

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Masks Secret values in JSON values and free text.
#[derive(Clone)]
pub(crate) struct Redactor {
    key: Vec<u8>,
    values: Vec<String>,
}

impl Redactor {
    /// A redactor using `key` for fingerprints that also scrubs the Secret values found in
    /// `manifests` from free text.
    pub(crate) fn new(key: &[u8], manifests: Option<&Value>) -> Redactor {
        let mut values = Vec::new();
        if let Some(manifests) = manifests {
            collect_secret_values(manifests, &mut values);
        }
        // Longest first so a value containing another is replaced whole.
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        Redactor {
            key: key.to_vec(),
            values,
        }
    }

    /// A copy of `value` with Secret data masked and known values scrubbed from strings.
    pub(crate) fn value(&self, value: &Value) -> Value {
        let mut out = value.clone();
        self.mask_in_place(&mut out);
        out
    }

    /// `text` with known Secret values replaced by [`REDACTED`].
    pub(crate) fn text(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), REDACTED);
            }
        }
        out
    }

    fn mask_in_place(&self, value: &mut Value) {
        match value {
            Value::String(s) => {
                if !self.values.is_empty() {
                    *s = self.text(s);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.mask_in_place(v)),
            Value::Object(map) => {
                if is_secret(map) {
                    self.mask_secret(map);
                }
                map.values_mut().for_each(|v| self.mask_in_place(v));
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    fn mask_secret(&self, map: &mut Map<String, Value>) {
        for field in ["data", "stringData"] {
            if let Some(Value::Object(data)) = map.get_mut(field) {
                for v in data.values_mut() {
                    *v = Value::String(self.fingerprint(v));
                }
            } else if let Some(other) = map.get_mut(field) {
                // Not a map (malformed): hide it whole rather than guess its shape.
                if !other.is_null() {
                    *other = Value::String(REDACTED.to_owned());
                }
            }
        }
        if let Some(Value::Object(annotations)) = map.get_mut("metadata").and_then(|m| m.get_mut("annotations"))
            && let Some(v) = annotations.get_mut(LAST_APPLIED)
        {
            *v = Value::String(REDACTED.to_owned());
        }
    }

    fn fingerprint(&self, value: &Value) -> String {
        let bytes = match value {
            Value::String(s) => s.as_bytes().to_vec(),
            other => other.to_string().into_bytes(),
        };
        let mac = hmac_sha256(&self.key, &bytes);
        let hex: String = mac[..6].iter().map(|b| format!("{b:02x}")).collect();
        format!("<redacted:{hex}>")
    }
}

fn is_secret(map: &Map<String, Value>) -> bool {
    map.get("kind").and_then(Value::as_str) == Some("Secret")
}

/// Collects the values of every Secret's `data` (raw and base64-decoded) and `stringData`.
fn collect_secret_values(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| collect_secret_values(v, out)),
        Value::Object(map) => {
            if is_secret(map) {
                for (field, decode) in [("data", true), ("stringData", false)] {
                    let Some(Value::Object(data)) = map.get(field) else {
                        continue;
                    };
                    for v in data.values().filter_map(Value::as_str) {
                        push_value(out, v);
                        if decode
                            && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(v)
                            && let Ok(text) = String::from_utf8(bytes)
                        {
                            push_value(out, &text);
                            // A multi-line file (a key, a kubeconfig) may be echoed one
                            // line at a time.
                            for line in text.lines() {
                                push_value(out, line.trim());
                            }
                        }
                    }
                }
                if let Some(v) = map
                    .get("metadata")
                    .and_then(|m| m.get("annotations"))
                    .and_then(|a| a.get(LAST_APPLIED))
                    .and_then(Value::as_str)
                {
                    push_value(out, v);
                }
            }
            map.values().for_each(|v| collect_secret_values(v, out));
        }
        _ => {}
    }
}

fn push_value(out: &mut Vec<String>, v: &str) {
    if v.chars().count() >= MIN_SCRUB_LEN {
        out.push(v.to_owned());
    }
}

/// HMAC-SHA256 (RFC 2104) over `message` with `key`.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block_key = [0u8; BLOCK];
    if key.len() > BLOCK {
        block_key[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block_key[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = block_key.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = block_key.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new().chain_update(&ipad).chain_update(message).finalize();
    Sha256::new().chain_update(&opad).chain_update(inner).finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret() -> Value {
        json!([
            {"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","annotations":{
                LAST_APPLIED: "{\"data\":{\"password\":\"aHVudGVyMjIy\"}}"}},
             "data":{"password":"aHVudGVyMjIy"},"stringData":{"token":"s3cr3t-token"}},
            {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg"},"data":{"k":"visible"}}
        ])
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn secret_data_is_masked_and_config_maps_are_not() {
        let r = Redactor::new(b"key", None);
        let out = r.value(&secret()).to_string();
        for leaked in ["aHVudGVyMjIy", "s3cr3t-token"] {
            assert!(!out.contains(leaked), "{leaked} leaked in {out}");
        }
        assert!(out.contains("<redacted:"));
        assert!(out.contains("visible"));
    }

    #[test]
    fn fingerprints_show_change_not_value() {
        let r = Redactor::new(b"key", None);
        let a = r.fingerprint(&json!("one"));
        assert_eq!(a, r.fingerprint(&json!("one")));
        assert_ne!(a, r.fingerprint(&json!("two")));
        assert_ne!(a, Redactor::new(b"other key", None).fingerprint(&json!("one")));
    }

    #[test]
    fn known_values_are_scrubbed_from_text_decoded_too() {
        let r = Redactor::new(b"key", Some(&secret()));
        let text = r.text("apply failed: value hunter222 and s3cr3t-token rejected");
        assert_eq!(text, "apply failed: value <redacted> and <redacted> rejected");
        let v = r.value(&json!({"diff": ["- password: hunter222"]}));
        assert_eq!(v, json!({"diff": ["- password: <redacted>"]}));
    }
}

//! Walking the tree: which values are encrypted, additional data, and the MAC.
//!
//! This mirrors `sops.go` (`walkBranch`, `walkSlice`, `shouldBeEncrypted`,
//! `Tree.Encrypt`, `Tree.Decrypt`, `ToBytes`):
//!
//! * The path of a value is the list of map keys leading to it; list indices are
//!   *not* part of the path, so every element of a list under `a` has path `[a]`.
//! * The additional data of a value is the path joined with `:` plus a trailing
//!   `:` (`a:b:`); a top-level comment in a dotenv file has the path `:`.
//! * Null leaves are neither encrypted nor hashed. Empty strings stay empty
//!   (SOPS does not encrypt them) but are hashed (as zero bytes).
//! * The MAC is SHA-512 over every value's byte form (`ToBytes`: ints in
//!   decimal, floats as Go `FormatFloat('f', -1)`, booleans as `True`/`False`)
//!   in document order, or, with `mac_only_encrypted`, over only the values that
//!   end up encrypted, after hashing a fixed 32-byte prefix. Comments are never
//!   hashed. The result is printed as upper-case hex.
//! * The rules are applied in SOPS's order: unencrypted suffix, encrypted
//!   suffix, unencrypted regex, encrypted regex; a rule matches if *any* key on
//!   the path matches (regexes are unanchored searches, like Go's `regexp.Match`).

use regex::{Regex, RegexBuilder};
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use crate::SopsError;
use crate::cipher::{self, CipherError, ValueType};
use crate::value::{Value, go_format_float};

/// `sops.MACOnlyEncryptedInitialization`.
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b, 0x0b, 0x97, 0x5b,
    0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// Nesting limit for the walk (the parsers enforce their own, lower, limits first).
pub(crate) const MAX_DEPTH: usize = 128;

/// The encryption rule of a file (SOPS allows at most one).
#[derive(Debug, Clone, Default)]
pub(crate) enum Rule {
    #[default]
    None,
    UnencryptedSuffix(String),
    EncryptedSuffix(String),
    UnencryptedRegex(Regex),
    EncryptedRegex(Regex),
}

pub(crate) fn compile_regex(pattern: &str, which: &'static str) -> Result<Regex, SopsError> {
    RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map_err(|_| SopsError::InvalidRegex { which })
}

impl Rule {
    pub(crate) fn should_encrypt(&self, path: &[String]) -> bool {
        match self {
            Rule::None => true,
            Rule::UnencryptedSuffix(s) => !path.iter().any(|k| k.ends_with(s.as_str())),
            Rule::EncryptedSuffix(s) => path.iter().any(|k| k.ends_with(s.as_str())),
            Rule::UnencryptedRegex(r) => !path.iter().any(|k| r.is_match(k)),
            Rule::EncryptedRegex(r) => path.iter().any(|k| r.is_match(k)),
        }
    }
}

/// Settings shared by the encrypting and decrypting walks.
pub(crate) struct Walk<'a> {
    pub key: &'a [u8; 32],
    pub rule: &'a Rule,
    pub mac_only_encrypted: bool,
}

pub(crate) fn dotted(path: &[String]) -> String {
    if path.is_empty() {
        "(top level)".to_string()
    } else {
        path.join(".")
    }
}

fn aad(path: &[String]) -> String {
    let mut s = path.join(":");
    s.push(':');
    s
}

/// `ToBytes` of a plaintext leaf; `None` for null and containers.
fn to_bytes(v: &Value) -> Option<Zeroizing<Vec<u8>>> {
    Some(Zeroizing::new(match v {
        Value::Str(s) => s.as_bytes().to_vec(),
        Value::Bytes(b) => b.to_vec(),
        Value::Int(i) => i.to_string().into_bytes(),
        Value::Float(f) => go_format_float(*f).into_bytes(),
        Value::Bool(true) => b"True".to_vec(),
        Value::Bool(false) => b"False".to_vec(),
        Value::Null | Value::Seq(_) | Value::Map(_) => return None,
    }))
}

/// What [`walk_leaves`] calls on each leaf: the value and its key path.
type LeafFn<'a> = dyn FnMut(&mut Value, &[String]) -> Result<(), SopsError> + 'a;

/// Visits every non-null leaf of `v` in document order with its key path (sequence items share
/// their parent's path, as in sops), refusing nesting deeper than [`MAX_DEPTH`].
fn walk_leaves(v: &mut Value, path: &mut Vec<String>, depth: usize, leaf: &mut LeafFn<'_>) -> Result<(), SopsError> {
    if depth > MAX_DEPTH {
        return Err(SopsError::Structure(format!("nesting deeper than {MAX_DEPTH} levels")));
    }
    match v {
        Value::Map(m) => {
            for (k, child) in m.iter_mut() {
                path.push(k.clone());
                let r = walk_leaves(child, path, depth + 1, leaf);
                path.pop();
                r?;
            }
            Ok(())
        }
        Value::Seq(items) => items
            .iter_mut()
            .try_for_each(|child| walk_leaves(child, path, depth + 1, leaf)),
        Value::Null => Ok(()),
        other => leaf(other, path),
    }
}

impl Walk<'_> {
    fn new_hasher(&self) -> Sha512 {
        let mut h = Sha512::new();
        if self.mac_only_encrypted {
            h.update(MAC_ONLY_ENCRYPTED_INIT);
        }
        h
    }

    /// Encrypts the documents in place; returns the MAC (upper-case hex).
    pub(crate) fn encrypt_docs(&self, docs: &mut [Value]) -> Result<String, SopsError> {
        let mut h = self.new_hasher();
        for doc in docs.iter_mut() {
            walk_leaves(doc, &mut Vec::new(), 0, &mut |leaf, path| {
                self.encrypt_leaf(leaf, path, &mut h)
            })?;
        }
        Ok(hex::encode_upper(h.finalize()))
    }

    fn encrypt_leaf(&self, leaf: &mut Value, path: &[String], h: &mut Sha512) -> Result<(), SopsError> {
        let encrypted = self.rule.should_encrypt(path);
        let bytes = to_bytes(leaf).unwrap_or_default();
        if !self.mac_only_encrypted || encrypted {
            h.update(&bytes[..]);
        }
        if !encrypted {
            return Ok(());
        }
        let ty = match leaf {
            Value::Int(_) => ValueType::Int,
            Value::Float(_) => ValueType::Float,
            Value::Bool(_) => ValueType::Bool,
            // sops turns []byte into string before encrypting.
            _ => ValueType::Str,
        };
        if bytes.is_empty() && ty == ValueType::Str {
            // sops leaves empty strings as they are.
            *leaf = Value::str("");
            return Ok(());
        }
        let enc =
            cipher::encrypt(&bytes, self.key, &aad(path), ty).map_err(|e| SopsError::Encryption(e.to_string()))?;
        *leaf = Value::str(enc);
        Ok(())
    }

    /// Decrypts the documents in place; returns the MAC (upper-case hex) of the plaintext.
    pub(crate) fn decrypt_docs(&self, docs: &mut [Value]) -> Result<String, SopsError> {
        let mut h = self.new_hasher();
        for doc in docs.iter_mut() {
            walk_leaves(doc, &mut Vec::new(), 0, &mut |leaf, path| {
                self.decrypt_in_place(leaf, path, &mut h)
            })?;
        }
        Ok(hex::encode_upper(h.finalize()))
    }

    fn decrypt_in_place(&self, leaf: &mut Value, path: &[String], h: &mut Sha512) -> Result<(), SopsError> {
        let encrypted = self.rule.should_encrypt(path);
        if encrypted {
            let Value::Str(s) = &*leaf else {
                return Err(SopsError::InvalidValue {
                    path: dotted(path),
                    reason: "expected an encrypted string",
                });
            };
            if !s.is_empty() {
                let plain = self.decrypt_leaf(s, path)?;
                *leaf = plain;
            }
        }
        if (!self.mac_only_encrypted || encrypted)
            && let Some(bytes) = to_bytes(leaf)
        {
            h.update(&bytes[..]);
        }
        Ok(())
    }

    fn decrypt_leaf(&self, s: &str, path: &[String]) -> Result<Value, SopsError> {
        let (plain, ty) = cipher::decrypt(s, self.key, &aad(path)).map_err(|e| match e {
            CipherError::Malformed(reason) => SopsError::InvalidValue {
                path: dotted(path),
                reason,
            },
            CipherError::Authentication => SopsError::ValueAuthentication { path: dotted(path) },
        })?;
        typed_plaintext(plain, ty).ok_or_else(|| SopsError::InvalidValue {
            path: dotted(path),
            reason: "decrypted value does not match its type",
        })
    }

    /// Encrypts a comment (dotenv) at the given path; comments are never part of the MAC.
    pub(crate) fn encrypt_comment(&self, text: &str, path: &[String]) -> Result<String, SopsError> {
        if text.is_empty() || !self.rule.should_encrypt(path) {
            return Ok(text.to_string());
        }
        cipher::encrypt(text.as_bytes(), self.key, &aad(path), ValueType::Comment)
            .map_err(|e| SopsError::Encryption(e.to_string()))
    }

    /// Decrypts a comment if it is encrypted; like sops, comments that do not decrypt are kept as they are.
    pub(crate) fn decrypt_comment(&self, text: &str, path: &[String]) -> Zeroizing<String> {
        if self.rule.should_encrypt(path)
            && cipher::looks_encrypted(text)
            && let Ok((plain, _)) = cipher::decrypt(text, self.key, &aad(path))
            && let Ok(s) = std::str::from_utf8(&plain)
        {
            return Zeroizing::new(s.to_string());
        }
        Zeroizing::new(text.to_string())
    }
}

/// Converts decrypted bytes to a typed value, like the type switch in sops's `aes.Cipher.Decrypt`.
fn typed_plaintext(plain: Zeroizing<Vec<u8>>, ty: ValueType) -> Option<Value> {
    let text = std::str::from_utf8(&plain).ok();
    Some(match ty {
        ValueType::Bytes => Value::Bytes(plain),
        ValueType::Str | ValueType::Time | ValueType::Comment => match text {
            Some(t) => Value::str(t),
            None => Value::Bytes(plain),
        },
        ValueType::Int => Value::Int(text?.parse().ok()?),
        ValueType::Float => Value::Float(parse_go_float(text?)?),
        ValueType::Bool => Value::Bool(match text? {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
            "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
            _ => return None,
        }),
    })
}

fn parse_go_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Encrypts the MAC with the data key, authenticated with the `lastmodified` timestamp (as Go formats it).
pub(crate) fn encrypt_mac(mac: &str, key: &[u8; 32], lastmodified_aad: &str) -> Result<String, SopsError> {
    cipher::encrypt(mac.as_bytes(), key, lastmodified_aad, ValueType::Str).map_err(|e| SopsError::Encryption(e.into()))
}

/// Decrypts the stored MAC and compares it with the computed one.
pub(crate) fn verify_mac(
    stored: &str,
    computed: &str,
    key: &[u8; 32],
    lastmodified_aad: &str,
) -> Result<(), SopsError> {
    if stored.is_empty() {
        return Err(SopsError::MacMismatch);
    }
    let (plain, _) = cipher::decrypt(stored, key, lastmodified_aad).map_err(|_| SopsError::MacMismatch)?;
    // Not secret (it is a hash of the plaintext, stored encrypted), but compare without early exit anyway.
    let a = plain.as_slice();
    let b = computed.as_bytes();
    let mut diff = a.len() ^ b.len();
    for (x, y) in a.iter().zip(b) {
        diff |= usize::from(x ^ y);
    }
    if diff == 0 { Ok(()) } else { Err(SopsError::MacMismatch) }
}

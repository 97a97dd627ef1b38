//! The `sops` metadata section.
//!
//! Reading is lenient in the way SOPS's `mapstructure` decoding is ("weakly
//! typed": a version or threshold may be a number, `mac_only_encrypted` may be
//! the string `"true"`, key lists of other key services may be `null`). Writing
//! follows `stores.SerializeMetadata`: the keys of every map are sorted by
//! name, so the section reads `age`, `lastmodified`, `mac`, `pgp`,
//! `unencrypted_suffix`, `version`. For dotenv the section is flattened into
//! `sops_`-prefixed keys with `__map_` and `__list_N` separators
//! (`stores/flatten.go`).

use crate::SopsError;
use crate::tree::{Rule, compile_regex};
use crate::value::{Map, Value};

/// The version this crate writes. It is the sops release whose format it follows.
pub(crate) const WRITE_VERSION: &str = "3.10.2";

#[derive(Debug, Clone, Default)]
pub(crate) struct AgeStanza {
    pub recipient: String,
    pub enc: String,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct PgpStanza {
    pub fp: String,
    pub enc: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Metadata {
    pub age: Vec<AgeStanza>,
    pub pgp: Vec<PgpStanza>,
    /// Names of other key services present (kms, gcp_kms, ...), for error messages.
    pub other_key_services: Vec<String>,
    pub lastmodified: String,
    pub mac: String,
    pub version: String,
    pub unencrypted_suffix: Option<String>,
    pub encrypted_suffix: Option<String>,
    pub unencrypted_regex: Option<String>,
    pub encrypted_regex: Option<String>,
    pub mac_only_encrypted: bool,
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.to_string()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(crate::value::go_format_float(*f)),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn get<'a>(m: &'a Map, key: &str) -> Option<&'a Value> {
    m.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn opt_string(m: &Map, key: &str) -> Result<Option<String>, SopsError> {
    match get(m, key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => scalar_string(v)
            .map(|s| if s.is_empty() { None } else { Some(s) })
            .ok_or_else(|| SopsError::InvalidMetadata(format!("`{key}` is not a string"))),
    }
}

fn list<'a>(m: &'a Map, key: &str) -> Result<&'a [Value], SopsError> {
    match get(m, key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Seq(items)) => Ok(items),
        Some(_) => Err(SopsError::InvalidMetadata(format!("`{key}` is not a list"))),
    }
}

fn entry_map<'a>(v: &'a Value, key: &str) -> Result<&'a Map, SopsError> {
    match v {
        Value::Map(m) => Ok(m),
        _ => Err(SopsError::InvalidMetadata(format!("an entry of `{key}` is not a map"))),
    }
}

const OTHER_SERVICES: [&str; 5] = ["kms", "gcp_kms", "azure_kv", "hc_vault", "hckms"];

impl Metadata {
    /// Parses the metadata map; checks the version and the encryption-rule exclusivity.
    pub(crate) fn parse(v: &Value) -> Result<Metadata, SopsError> {
        let Value::Map(m) = v else {
            return Err(SopsError::InvalidMetadata("`sops` is not a map".into()));
        };
        let mut md = Metadata {
            version: opt_string(m, "version")?.ok_or_else(|| SopsError::InvalidMetadata("missing `version`".into()))?,
            ..Default::default()
        };
        let major = md.version.split('.').next().unwrap_or("");
        if !matches!(major, "1" | "2" | "3") {
            let mut shown = md.version.clone();
            shown.truncate(32);
            return Err(SopsError::UnsupportedVersion(shown));
        }
        md.lastmodified = opt_string(m, "lastmodified")?.unwrap_or_default();
        md.mac = opt_string(m, "mac")?.unwrap_or_default();
        md.unencrypted_suffix = opt_string(m, "unencrypted_suffix")?;
        md.encrypted_suffix = opt_string(m, "encrypted_suffix")?;
        md.unencrypted_regex = opt_string(m, "unencrypted_regex")?;
        md.encrypted_regex = opt_string(m, "encrypted_regex")?;
        md.mac_only_encrypted = match get(m, "mac_only_encrypted") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::Str(s)) if matches!(s.as_str(), "true" | "True" | "TRUE" | "1" | "t" | "T") => true,
            Some(Value::Str(s)) if matches!(s.as_str(), "false" | "False" | "FALSE" | "0" | "f" | "F" | "") => false,
            Some(Value::Int(i)) => *i != 0,
            Some(_) => {
                return Err(SopsError::InvalidMetadata(
                    "`mac_only_encrypted` is not a boolean".into(),
                ));
            }
        };
        for key in ["unencrypted_comment_regex", "encrypted_comment_regex"] {
            if opt_string(m, key)?.is_some() {
                return Err(SopsError::Unsupported(format!(
                    "`{key}` (comment-based encryption rules)"
                )));
            }
        }

        let groups = list(m, "key_groups")?;
        let (top_age, top_pgp) = (list(m, "age")?, list(m, "pgp")?);
        let mut group_maps: Vec<&Map> = vec![m];
        if top_age.is_empty() && top_pgp.is_empty() && !groups.is_empty() {
            if groups.len() > 1 {
                return Err(SopsError::Unsupported(format!(
                    "{} key groups (Shamir secret sharing)",
                    groups.len()
                )));
            }
            group_maps = vec![entry_map(&groups[0], "key_groups")?];
        }
        for g in group_maps {
            for e in list(g, "age")? {
                let e = entry_map(e, "age")?;
                md.age.push(AgeStanza {
                    recipient: opt_string(e, "recipient")?.unwrap_or_default(),
                    enc: opt_string(e, "enc")?.unwrap_or_default(),
                });
            }
            for e in list(g, "pgp")? {
                let e = entry_map(e, "pgp")?;
                md.pgp.push(PgpStanza {
                    fp: opt_string(e, "fp")?.unwrap_or_default(),
                    enc: opt_string(e, "enc")?.unwrap_or_default(),
                    created_at: opt_string(e, "created_at")?.unwrap_or_default(),
                });
            }
            for other in OTHER_SERVICES {
                if !list(g, other)?.is_empty() {
                    md.other_key_services.push(other.to_string());
                }
            }
        }
        Ok(md)
    }

    /// The single encryption rule; SOPS's default is `unencrypted_suffix: _unencrypted`.
    pub(crate) fn rule(&self) -> Result<Rule, SopsError> {
        let count = [
            &self.unencrypted_suffix,
            &self.encrypted_suffix,
            &self.unencrypted_regex,
            &self.encrypted_regex,
        ]
        .iter()
        .filter(|o| o.is_some())
        .count();
        if count > 1 {
            return Err(SopsError::InvalidMetadata(
                "more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex".into(),
            ));
        }
        Ok(if let Some(s) = &self.unencrypted_suffix {
            Rule::UnencryptedSuffix(s.clone())
        } else if let Some(s) = &self.encrypted_suffix {
            Rule::EncryptedSuffix(s.clone())
        } else if let Some(r) = &self.unencrypted_regex {
            Rule::UnencryptedRegex(compile_regex(r, "unencrypted_regex")?)
        } else if let Some(r) = &self.encrypted_regex {
            Rule::EncryptedRegex(compile_regex(r, "encrypted_regex")?)
        } else {
            Rule::UnencryptedSuffix(crate::DEFAULT_UNENCRYPTED_SUFFIX.to_string())
        })
    }

    /// The metadata as a tree, keys sorted like sops's `goToSops`.
    pub(crate) fn to_value(&self) -> Value {
        let mut m: Map = Vec::new();
        if !self.age.is_empty() {
            let items = self
                .age
                .iter()
                .map(|a| {
                    Value::Map(vec![
                        ("enc".into(), Value::str(&a.enc)),
                        ("recipient".into(), Value::str(&a.recipient)),
                    ])
                })
                .collect();
            m.push(("age".into(), Value::Seq(items)));
        }
        m.push(("lastmodified".into(), Value::str(&self.lastmodified)));
        m.push(("mac".into(), Value::str(&self.mac)));
        if self.mac_only_encrypted {
            m.push(("mac_only_encrypted".into(), Value::Bool(true)));
        }
        if !self.pgp.is_empty() {
            let items = self
                .pgp
                .iter()
                .map(|p| {
                    Value::Map(vec![
                        ("created_at".into(), Value::str(&p.created_at)),
                        ("enc".into(), Value::str(&p.enc)),
                        ("fp".into(), Value::str(&p.fp)),
                    ])
                })
                .collect();
            m.push(("pgp".into(), Value::Seq(items)));
        }
        for (k, v) in [
            ("encrypted_regex", &self.encrypted_regex),
            ("encrypted_suffix", &self.encrypted_suffix),
            ("unencrypted_regex", &self.unencrypted_regex),
            ("unencrypted_suffix", &self.unencrypted_suffix),
        ] {
            if let Some(v) = v {
                m.push((k.into(), Value::str(v)));
            }
        }
        m.push(("version".into(), Value::str(&self.version)));
        m.sort_by(|a, b| a.0.cmp(&b.0));
        Value::Map(m)
    }
}

/// Flattens a metadata tree into `(key, value)` pairs: `age__list_0__map_enc`.
pub(crate) fn flatten(v: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Map(m) => {
            for (k, child) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}__map_{k}")
                };
                flatten(child, &key, out);
            }
        }
        Value::Seq(items) => {
            for (i, child) in items.iter().enumerate() {
                flatten(child, &format!("{prefix}__list_{i}"), out);
            }
        }
        leaf => out.push((prefix.to_string(), leaf.clone())),
    }
}

enum Token {
    Map(String),
    List(usize),
}

fn tokenize(path: &str) -> Result<Vec<Token>, SopsError> {
    let mut tokens = Vec::new();
    let mut rest = path;
    let mut kind_is_list = false;
    loop {
        let next_map = rest.find("__map_");
        let next_list = rest.find("__list_");
        let (end, sep_len, next_is_list) = match (next_map, next_list) {
            (Some(a), Some(b)) if b < a => (b, 7, true),
            (Some(a), _) => (a, 6, false),
            (None, Some(b)) => (b, 7, true),
            (None, None) => (rest.len(), 0, false),
        };
        let part = &rest[..end];
        tokens.push(if kind_is_list {
            Token::List(
                part.parse()
                    .ok()
                    .filter(|i| *i < 1024)
                    .ok_or_else(|| SopsError::InvalidMetadata("bad list index in flattened metadata".into()))?,
            )
        } else {
            Token::Map(part.to_string())
        });
        if sep_len == 0 {
            return Ok(tokens);
        }
        rest = &rest[end + sep_len..];
        kind_is_list = next_is_list;
    }
}

fn place(root: &mut Value, tokens: &[Token], value: Value) -> Result<(), SopsError> {
    let mismatch = || SopsError::InvalidMetadata("conflicting flattened metadata keys".into());
    let Some((first, rest)) = tokens.split_first() else {
        if matches!(root, Value::Null) {
            *root = value;
            return Ok(());
        }
        return Err(mismatch());
    };
    match first {
        Token::Map(k) => {
            if matches!(root, Value::Null) {
                *root = Value::Map(Vec::new());
            }
            let Value::Map(m) = root else { return Err(mismatch()) };
            let idx = match m.iter().position(|(key, _)| key == k) {
                Some(i) => i,
                None => {
                    m.push((k.clone(), Value::Null));
                    m.len() - 1
                }
            };
            place(&mut m[idx].1, rest, value)
        }
        Token::List(i) => {
            if matches!(root, Value::Null) {
                *root = Value::Seq(Vec::new());
            }
            let Value::Seq(items) = root else {
                return Err(mismatch());
            };
            while items.len() <= *i {
                items.push(Value::Null);
            }
            place(&mut items[*i], rest, value)
        }
    }
}

/// Rebuilds the metadata tree from flattened `(key, value)` pairs (keys without the `sops_` prefix).
pub(crate) fn unflatten(entries: Vec<(String, Value)>) -> Result<Value, SopsError> {
    let mut root = Value::Map(Vec::new());
    for (k, v) in entries {
        let tokens = tokenize(&k)?;
        place(&mut root, &tokens, v)?;
    }
    Ok(root)
}

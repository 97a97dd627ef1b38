//! Editing an encrypted file the way `sops edit` does, and reading how a file was encrypted.
//!
//! [`reencrypt`] keeps the file's data key and its key stanzas exactly as they are, so the
//! edited file is readable by the same recipients (age and OpenPGP alike: re-wrapping the data
//! key for an OpenPGP recipient would need its public key, which the file does not hold) and
//! is encrypted under the same rule (`encrypted_regex`, suffixes, `mac_only_encrypted`). Only
//! the values, `lastmodified` and the MAC change. The original is decrypted and its MAC
//! verified first, so a tampered file is never re-sealed as if it were genuine.
//!
//! [`encryption_info`] reads the recipients and rules from the metadata without any key.
//!
//! The sealing step shared with [`crate::encrypt`] ([`load_plain`], [`seal`]) lives here too.

use crate::metadata::{self, Metadata};
use crate::stores::{self, Loaded};
use crate::tree::{self, Rule, Walk};
use crate::value::Value;
use crate::{Format, Keys, SopsError, Zeroizing, check_size, load_encrypted, time};

/// How a SOPS file is encrypted, as its `sops` metadata says: recipients and encryption rule.
/// Nothing here is secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EncryptionInfo {
    /// age recipients (`age1...`) the data key is encrypted for.
    pub age_recipients: Vec<String>,
    /// Fingerprints of the OpenPGP keys the data key is encrypted for.
    pub pgp_fingerprints: Vec<String>,
    /// Other key services present (`kms`, `gcp_kms`, ...), which this crate cannot use.
    pub other_key_services: Vec<String>,
    /// `encrypted_regex`, if set.
    pub encrypted_regex: Option<String>,
    /// `unencrypted_regex`, if set.
    pub unencrypted_regex: Option<String>,
    /// `encrypted_suffix`, if set.
    pub encrypted_suffix: Option<String>,
    /// `unencrypted_suffix`, if set.
    pub unencrypted_suffix: Option<String>,
    /// Whether the MAC covers encrypted values only.
    pub mac_only_encrypted: bool,
    /// The sops version that wrote the file.
    pub version: String,
    /// When the file was last encrypted (RFC 3339, as stored).
    pub lastmodified: String,
}

/// Reads the recipients and the encryption rule from an encrypted file's metadata. Needs no key
/// and checks no MAC; fails with [`SopsError::NotEncrypted`] when there is no `sops` metadata.
pub fn encryption_info(text: &[u8], format: Format) -> Result<EncryptionInfo, SopsError> {
    let loaded = load_encrypted(text, format)?;
    let md = Metadata::parse(&loaded.meta.ok_or(SopsError::NotEncrypted)?)?;
    Ok(EncryptionInfo {
        age_recipients: md.age.into_iter().map(|a| a.recipient).collect(),
        pgp_fingerprints: md.pgp.into_iter().map(|p| p.fp).collect(),
        other_key_services: md.other_key_services,
        encrypted_regex: md.encrypted_regex,
        unencrypted_regex: md.unencrypted_regex,
        encrypted_suffix: md.encrypted_suffix,
        unencrypted_suffix: md.unencrypted_suffix,
        mac_only_encrypted: md.mac_only_encrypted,
        version: md.version,
        lastmodified: md.lastmodified,
    })
}

/// Encrypts `plain` (a new version of the document) like `sops edit`: with the data key,
/// recipients and rule of `original`, an encrypted file in the same `format`. `keys` must be able
/// to decrypt `original`, whose MAC is verified first. Files with key services this crate cannot
/// write back (KMS, Vault, ...) are refused rather than silently losing those recipients.
pub fn reencrypt(original: &[u8], plain: &[u8], format: Format, keys: &Keys) -> Result<Vec<u8>, SopsError> {
    let Loaded { mut docs, meta, .. } = load_encrypted(original, format)?;
    let mut md = Metadata::parse(&meta.ok_or(SopsError::NotEncrypted)?)?;
    if !md.other_key_services.is_empty() {
        return Err(SopsError::Unsupported(format!(
            "re-encrypting a file that also uses {}",
            md.other_key_services.join(", ")
        )));
    }
    if md.age.is_empty() && md.pgp.is_empty() {
        return Err(SopsError::InvalidMetadata("no keys found in file".into()));
    }
    let rule = md.rule()?;
    let lastmodified = time::normalize_rfc3339(&md.lastmodified)
        .ok_or_else(|| SopsError::InvalidMetadata("`lastmodified` is not an RFC 3339 timestamp".into()))?;
    let data_key = keys.decrypt_data_key(&md.age, &md.pgp)?;
    let walk = Walk {
        key: &data_key,
        rule: &rule,
        mac_only_encrypted: md.mac_only_encrypted,
    };
    let computed = walk.decrypt_docs(&mut docs)?;
    tree::verify_mac(&md.mac, &computed, &data_key, &lastmodified)?;
    drop(docs);

    let loaded = load_plain(plain, format)?;
    md.lastmodified = time::now_rfc3339();
    md.version = metadata::WRITE_VERSION.to_string();
    seal(loaded, format, md, &rule, &data_key)
}

/// Parses a plaintext document for encryption (refusing one that already has `sops` metadata).
pub(crate) fn load_plain(plain: &[u8], format: Format) -> Result<Loaded, SopsError> {
    check_size(plain)?;
    let mut loaded = match format {
        Format::Yaml => stores::load_yaml(plain)?,
        Format::Json => stores::load_json(plain)?,
        Format::Dotenv => stores::load_dotenv(plain)?,
        Format::Binary => stores::load_binary_plain(plain),
    };
    if loaded.meta.is_some() {
        return Err(SopsError::AlreadyEncrypted);
    }
    if loaded.docs.is_empty() {
        loaded.docs.push(Value::Map(Vec::new()));
    }
    Ok(loaded)
}

/// Encrypts the loaded plaintext under `data_key` and `rule`, computes and encrypts the MAC
/// (authenticated with `md.lastmodified`), and serializes the document with `md` (whose key
/// stanzas the caller has filled) as its `sops` section.
pub(crate) fn seal(
    loaded: Loaded,
    format: Format,
    mut md: Metadata,
    rule: &Rule,
    data_key: &[u8; 32],
) -> Result<Vec<u8>, SopsError> {
    let Loaded {
        mut docs,
        dotenv_layout,
        ..
    } = loaded;
    let walk = Walk {
        key: data_key,
        rule,
        mac_only_encrypted: md.mac_only_encrypted,
    };
    let mac = walk.encrypt_docs(&mut docs)?;
    md.mac = tree::encrypt_mac(&mac, data_key, &md.lastmodified)?;
    let meta = md.to_value();

    let out = match format {
        Format::Yaml | Format::Json | Format::Binary => {
            for doc in docs.iter_mut() {
                if let Value::Map(m) = doc {
                    m.push(("sops".into(), meta.clone()));
                }
            }
            if format == Format::Yaml {
                stores::emit_yaml(&docs)?
            } else {
                stores::emit_json(&docs[0])?
            }
        }
        Format::Dotenv => {
            let mut layout = Vec::new();
            for item in dotenv_layout.unwrap_or_default() {
                layout.push(match item {
                    Some(c) => Some(Zeroizing::new(walk.encrypt_comment(&c, &[])?)),
                    None => None,
                });
            }
            let mut flat = Vec::new();
            metadata::flatten(&meta, "", &mut flat);
            let flat: Vec<(String, Value)> = flat.into_iter().map(|(k, v)| (format!("sops_{k}"), v)).collect();
            stores::emit_dotenv(&docs[0], Some(&layout), &flat)?
        }
    };
    Ok(out.to_vec())
}

//! Native support for [SOPS](https://github.com/getsops/sops)-encrypted files.
//!
//! This crate reads and writes the SOPS file format without the `sops` binary:
//! YAML, JSON, dotenv and binary documents, with age (X25519) and OpenPGP key
//! sources. It follows sops 3.x: every leaf value is encrypted separately with
//! AES-256-GCM under a random 32-byte data key, authenticated with its key path;
//! a SHA-512 MAC over all plaintext values, itself encrypted, detects any change
//! to the document; the data key is stored encrypted for each recipient in the
//! `sops` metadata section.
//!
//! Design decisions:
//!
//! * **Nothing is returned until the MAC is verified.** [`decrypt`] decrypts the
//!   whole tree in memory, checks the MAC and only then serializes the output,
//!   so a tampered file yields [`SopsError::MacMismatch`] and no partial plaintext.
//! * **Secrets never reach errors or `Debug`.** Errors carry key paths
//!   (`data.password`), field names and counts; parser errors are reduced to a
//!   line and column because parsers quote the input. Plaintext lives in
//!   [`Zeroizing`] buffers (best effort: serializers may reallocate).
//! * **Hostile input is bounded**: [`MAX_INPUT_BYTES`], parser depth/node
//!   budgets, a tree-walk depth limit and regex size limits.
//! * **Keys are explicit.** [`Keys`] only holds what the caller adds (or what
//!   `SOPS_AGE_KEY`/`SOPS_AGE_KEY_FILE` name); no gpg-agent, no `~/.gnupg`.
//!
//! Not supported (clear [`SopsError::Unsupported`] errors): Shamir key groups,
//! cloud KMS / Vault key sources, comment-based encryption rules, age plugins.
//! YAML comments are dropped (they are not part of the MAC).

mod cipher;
mod dir;
mod edit;
mod error;
mod keys;
mod metadata;
mod stores;
mod time;
mod tree;
mod value;

use std::path::Path;

pub use dir::{DirError, MAX_FILES, decrypt_dir, find_encrypted};
pub use edit::{EncryptionInfo, encryption_info, reencrypt};
pub use error::SopsError;
pub use keys::Keys;
pub use zeroize::Zeroizing;

use metadata::Metadata;
use stores::Loaded;
use tree::{Rule, Walk, compile_regex};
use value::Value;

/// Largest input accepted by [`decrypt`], [`encrypt`] and [`is_encrypted`] (16 MiB).
pub const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;

/// The suffix sops uses by default to leave values unencrypted.
pub const DEFAULT_UNENCRYPTED_SUFFIX: &str = "_unencrypted";

/// The file format of a SOPS document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// YAML (`.yaml`, `.yml`).
    Yaml,
    /// JSON (`.json`).
    Json,
    /// dotenv (`.env`).
    Dotenv,
    /// Any other file: stored as `{"data": "<whole file>"}` in JSON.
    Binary,
}

impl Format {
    /// Picks the format from the path's suffix exactly like sops (`strings.HasSuffix`, case-sensitive):
    /// `.yaml`/`.yml`, `.json`, `.env` (including a file named `.env`), anything else binary.
    /// sops's INI store is not implemented, so `.ini` files are treated as binary.
    pub fn from_path(path: &Path) -> Format {
        let p = path.to_string_lossy();
        if p.ends_with(".yaml") || p.ends_with(".yml") {
            Format::Yaml
        } else if p.ends_with(".json") {
            Format::Json
        } else if p.ends_with(".env") {
            Format::Dotenv
        } else {
            Format::Binary
        }
    }
}

fn check_size(text: &[u8]) -> Result<(), SopsError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(SopsError::InputTooLarge {
            size: text.len(),
            limit: MAX_INPUT_BYTES,
        });
    }
    Ok(())
}

fn load_encrypted(text: &[u8], format: Format) -> Result<Loaded, SopsError> {
    check_size(text)?;
    match format {
        Format::Yaml => stores::load_yaml(text),
        Format::Json | Format::Binary => stores::load_json(text),
        Format::Dotenv => stores::load_dotenv(text),
    }
}

/// True when the text is a SOPS document (has a top-level `sops` map with `mac` and a version),
/// for renderers deciding whether to decrypt. Never fails: unparsable input is "not encrypted".
pub fn is_encrypted(text: &[u8], format: Format) -> bool {
    let Ok(loaded) = load_encrypted(text, format) else {
        return false;
    };
    match loaded.meta {
        Some(Value::Map(m)) => {
            let has = |k: &str| m.iter().any(|(key, v)| key == k && !matches!(v, Value::Null));
            has("mac") && has("version")
        }
        _ => false,
    }
}

/// Decrypts a whole file, verifying the MAC. The result is the plaintext in the same format
/// (for [`Format::Binary`], the original bytes).
pub fn decrypt(text: &[u8], format: Format, keys: &Keys) -> Result<Zeroizing<Vec<u8>>, SopsError> {
    let Loaded {
        mut docs,
        meta,
        dotenv_layout,
    } = load_encrypted(text, format)?;
    let meta = meta.ok_or(SopsError::NotEncrypted)?;
    let md = Metadata::parse(&meta)?;
    let rule = md.rule()?;
    let lastmodified = time::normalize_rfc3339(&md.lastmodified)
        .ok_or_else(|| SopsError::InvalidMetadata("`lastmodified` is not an RFC 3339 timestamp".into()))?;
    if md.age.is_empty() && md.pgp.is_empty() {
        return Err(if md.other_key_services.is_empty() {
            SopsError::InvalidMetadata("no keys found in file".into())
        } else {
            SopsError::Unsupported(format!("key services {}", md.other_key_services.join(", ")))
        });
    }
    let data_key = keys.decrypt_data_key(&md.age, &md.pgp)?;
    let walk = Walk {
        key: &data_key,
        rule: &rule,
        mac_only_encrypted: md.mac_only_encrypted,
    };
    let computed = walk.decrypt_docs(&mut docs)?;
    tree::verify_mac(&md.mac, &computed, &data_key, &lastmodified)?;

    match format {
        Format::Yaml => stores::emit_yaml(&docs),
        Format::Json => stores::emit_json(&docs[0]),
        Format::Dotenv => {
            let layout = dotenv_layout.map(|l| {
                l.into_iter()
                    .map(|c| c.map(|c| walk.decrypt_comment(&c, &[])))
                    .collect::<Vec<_>>()
            });
            stores::emit_dotenv(&docs[0], layout.as_deref(), &[])
        }
        Format::Binary => {
            let Value::Map(m) = &docs[0] else {
                return Err(SopsError::Structure("document is not a map".into()));
            };
            match m.iter().find(|(k, _)| k == "data").map(|(_, v)| v) {
                Some(Value::Str(s)) => Ok(Zeroizing::new(s.as_bytes().to_vec())),
                Some(Value::Bytes(b)) => Ok(Zeroizing::new(b.to_vec())),
                _ => Err(SopsError::Structure("binary document has no string `data` key".into())),
            }
        }
    }
}

/// Options for [`encrypt`]. At most one of the four rules may be set; with none, sops's default
/// `unencrypted_suffix: _unencrypted` applies.
#[derive(Debug, Clone, Default)]
pub struct EncryptOptions {
    /// age recipients (`age1...`).
    pub age_recipients: Vec<String>,
    /// ASCII-armored OpenPGP public keys.
    pub pgp_public_keys: Vec<String>,
    /// Encrypt only values whose key path contains a key matching this regex.
    pub encrypted_regex: Option<String>,
    /// Leave values whose key path contains a key matching this regex unencrypted.
    pub unencrypted_regex: Option<String>,
    /// Encrypt only values whose key path contains a key ending in this suffix.
    pub encrypted_suffix: Option<String>,
    /// Leave values whose key path contains a key ending in this suffix unencrypted
    /// (`None` with no other rule means `_unencrypted`, as in sops).
    pub unencrypted_suffix: Option<String>,
    /// Compute the MAC over encrypted values only (sops `--mac-only-encrypted`).
    pub mac_only_encrypted: bool,
}

/// Encrypts a plaintext document for the given recipients, producing a SOPS file in the same format.
pub fn encrypt(plain: &[u8], format: Format, opts: &EncryptOptions) -> Result<Vec<u8>, SopsError> {
    check_size(plain)?;
    if opts.age_recipients.is_empty() && opts.pgp_public_keys.is_empty() {
        return Err(SopsError::Options(
            "no age recipients or OpenPGP public keys given".into(),
        ));
    }
    let rules = [
        &opts.unencrypted_suffix,
        &opts.encrypted_suffix,
        &opts.unencrypted_regex,
        &opts.encrypted_regex,
    ];
    if rules.iter().filter(|r| r.is_some()).count() > 1 {
        return Err(SopsError::Options(
            "only one of encrypted_regex, unencrypted_regex, encrypted_suffix, unencrypted_suffix may be set".into(),
        ));
    }
    let empty = |o: &Option<String>| o.as_deref().is_some_and(str::is_empty);
    if rules.iter().any(|r| empty(r)) {
        return Err(SopsError::Options("encryption rules must not be empty strings".into()));
    }
    let mut md = Metadata {
        unencrypted_suffix: opts.unencrypted_suffix.clone(),
        encrypted_suffix: opts.encrypted_suffix.clone(),
        unencrypted_regex: opts.unencrypted_regex.clone(),
        encrypted_regex: opts.encrypted_regex.clone(),
        mac_only_encrypted: opts.mac_only_encrypted,
        version: metadata::WRITE_VERSION.to_string(),
        ..Default::default()
    };
    if rules.iter().all(|r| r.is_none()) {
        md.unencrypted_suffix = Some(DEFAULT_UNENCRYPTED_SUFFIX.to_string());
    }
    let rule = match (
        &md.unencrypted_suffix,
        &md.encrypted_suffix,
        &md.unencrypted_regex,
        &md.encrypted_regex,
    ) {
        (Some(s), ..) => Rule::UnencryptedSuffix(s.clone()),
        (_, Some(s), ..) => Rule::EncryptedSuffix(s.clone()),
        (_, _, Some(r), _) => Rule::UnencryptedRegex(compile_regex(r, "unencrypted_regex")?),
        (_, _, _, Some(r)) => Rule::EncryptedRegex(compile_regex(r, "encrypted_regex")?),
        _ => Rule::None,
    };

    let loaded = edit::load_plain(plain, format)?;

    let mut data_key = Zeroizing::new([0u8; 32]);
    rand::RngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut data_key[..])
        .map_err(|_| SopsError::Encryption("random number generator failed".into()))?;
    md.lastmodified = time::now_rfc3339();
    for r in &opts.age_recipients {
        md.age.push(keys::age_encrypt(r, &data_key)?);
    }
    for k in &opts.pgp_public_keys {
        md.pgp.push(keys::pgp_encrypt(k, &data_key, &md.lastmodified)?);
    }

    edit::seal(loaded, format, md, &rule, &data_key)
}

//! Key sources: age (X25519) and OpenPGP.
//!
//! * age: the data key is encrypted for each recipient separately into an
//!   ASCII-armored age file (`-----BEGIN AGE ENCRYPTED FILE-----`), exactly what
//!   `age -r RECIPIENT -a` produces and what sops's `age/keysource.go` writes.
//! * OpenPGP: the data key is encrypted into an armored OpenPGP message (PKESK
//!   v3 + SEIPD v1 with AES-256, uncompressed), which GnuPG and sops's Go
//!   OpenPGP fallback both read. Secret keys must be unprotected; we never
//!   read `~/.gnupg` or talk to gpg-agent, unlike sops, so key material only
//!   comes from what the caller hands in.
//!
//! `Keys` has a redacted `Debug` and never exposes identities.

use std::fmt;
use std::io::{BufReader, Read};
use std::str::FromStr;

use pgp::composed::{ArmorOptions, Deserializable, Message, MessageBuilder, SignedPublicKey, SignedSecretKey};
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::types::{KeyDetails, Password};
use zeroize::Zeroizing;

use crate::SopsError;
use crate::metadata::{AgeStanza, PgpStanza};

/// Decryption keys: age identities and OpenPGP secret keys.
#[derive(Default, Clone)]
pub struct Keys {
    age: Vec<age::x25519::Identity>,
    pgp: Vec<SignedSecretKey>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("age_identities", &self.age.len())
            .field("pgp_secret_keys", &self.pgp.len())
            .finish()
    }
}

impl Keys {
    /// No keys.
    pub fn new() -> Keys {
        Keys::default()
    }

    /// Number of age identities.
    pub fn age_identity_count(&self) -> usize {
        self.age.len()
    }

    /// Number of OpenPGP secret keys.
    pub fn pgp_key_count(&self) -> usize {
        self.pgp.len()
    }

    /// True when no key at all was added.
    pub fn is_empty(&self) -> bool {
        self.age.is_empty() && self.pgp.is_empty()
    }

    /// Adds age identities from text in the format of an age identity file / `SOPS_AGE_KEY_FILE`:
    /// `AGE-SECRET-KEY-1...` lines, `#` comments and blank lines ignored. Several identities
    /// separated by whitespace on one line are accepted too (the `SOPS_AGE_KEY` form).
    /// Returns how many were added. Errors name the line number, never the line.
    pub fn add_age_identities(&mut self, text: &str) -> Result<usize, SopsError> {
        let mut added = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            for word in line.split_whitespace() {
                if word.starts_with("AGE-PLUGIN-") || word.starts_with("AGE-SECRET-KEY-PQ-") {
                    return Err(SopsError::Unsupported(format!(
                        "age plugin / post-quantum identity on line {}",
                        n + 1
                    )));
                }
                let id = age::x25519::Identity::from_str(word)
                    .map_err(|_| SopsError::InvalidKey(format!("line {} is not an age X25519 identity", n + 1)))?;
                added.push(id);
            }
        }
        let count = added.len();
        self.age.extend(added);
        Ok(count)
    }

    /// Adds unprotected ASCII-armored OpenPGP secret keys (`gpg --export-secret-keys --armor`).
    /// Returns how many were added.
    pub fn add_pgp_secret_key(&mut self, armored: &str) -> Result<usize, SopsError> {
        let (iter, _) = SignedSecretKey::from_armor_many(armored.as_bytes())
            .map_err(|_| SopsError::InvalidKey("not an armored OpenPGP secret key".into()))?;
        let mut added = Vec::new();
        for key in iter {
            let key = key.map_err(|_| SopsError::InvalidKey("malformed OpenPGP secret key".into()))?;
            added.push(key);
        }
        if added.is_empty() {
            return Err(SopsError::InvalidKey("no OpenPGP secret key found".into()));
        }
        let count = added.len();
        self.pgp.extend(added);
        Ok(count)
    }

    /// Loads age identities the way sops does from the environment: `SOPS_AGE_KEY` (identities
    /// separated by whitespace or newlines) and the file named by `SOPS_AGE_KEY_FILE`.
    /// `SOPS_AGE_KEY_CMD`, `~/.config/sops/age/keys.txt` and `~/.gnupg` are deliberately not read:
    /// a GitOps engine should only use keys it was given explicitly.
    pub fn from_env() -> Result<Keys, SopsError> {
        let mut keys = Keys::new();
        if let Ok(v) = std::env::var("SOPS_AGE_KEY") {
            let v = Zeroizing::new(v);
            keys.add_age_identities(&v)?;
        }
        if let Some(path) = std::env::var_os("SOPS_AGE_KEY_FILE") {
            let shown = path.to_string_lossy().into_owned();
            let text = std::fs::read(&path).map_err(|source| SopsError::Io {
                path: shown.clone(),
                source,
            })?;
            let text = Zeroizing::new(text);
            let text =
                std::str::from_utf8(&text).map_err(|_| SopsError::InvalidKey(format!("{shown} is not UTF-8 text")))?;
            keys.add_age_identities(text)?;
        }
        Ok(keys)
    }

    /// Tries every stanza with the keys we have; returns the 32-byte data key.
    pub(crate) fn decrypt_data_key(
        &self,
        age_stanzas: &[AgeStanza],
        pgp_stanzas: &[PgpStanza],
    ) -> Result<Zeroizing<[u8; 32]>, SopsError> {
        let mut bad_length = false;
        let mut try_key = |plain: Zeroizing<Vec<u8>>| -> Option<Zeroizing<[u8; 32]>> {
            if plain.len() == 32 {
                let mut k = Zeroizing::new([0u8; 32]);
                k.copy_from_slice(&plain);
                Some(k)
            } else {
                bad_length = true;
                None
            }
        };
        if !self.age.is_empty() {
            for stanza in age_stanzas {
                if let Some(plain) = age_decrypt(&stanza.enc, &self.age)
                    && let Some(k) = try_key(plain)
                {
                    return Ok(k);
                }
            }
        }
        if !self.pgp.is_empty() {
            for stanza in pgp_stanzas {
                if let Some(plain) = pgp_decrypt(&stanza.enc, &self.pgp)
                    && let Some(k) = try_key(plain)
                {
                    return Ok(k);
                }
            }
        }
        if bad_length {
            return Err(SopsError::InvalidDataKey);
        }
        Err(SopsError::NoMatchingKey {
            file_age: age_stanzas.len(),
            file_pgp: pgp_stanzas.len(),
            have_age: self.age.len(),
            have_pgp: self.pgp.len(),
        })
    }
}

/// Upper bound when reading a decrypted data key (it is 32 bytes).
const MAX_DATA_KEY_READ: u64 = 4096;

fn age_decrypt(enc: &str, ids: &[age::x25519::Identity]) -> Option<Zeroizing<Vec<u8>>> {
    let reader = age::armor::ArmoredReader::new(enc.trim_start().as_bytes());
    let decryptor = age::Decryptor::new(reader).ok()?;
    let mut r = decryptor.decrypt(ids.iter().map(|i| i as &dyn age::Identity)).ok()?;
    let mut out = Zeroizing::new(Vec::new());
    (&mut r).take(MAX_DATA_KEY_READ).read_to_end(&mut out).ok()?;
    Some(out)
}

fn pgp_decrypt(enc: &str, keys: &[SignedSecretKey]) -> Option<Zeroizing<Vec<u8>>> {
    let (msg, _) = Message::from_armor(BufReader::new(enc.trim_start().as_bytes())).ok()?;
    let pw = Password::empty();
    let mut msg = msg
        .decrypt_with_keys(keys.iter().map(|_| &pw).collect(), keys.iter().collect())
        .ok()?;
    if msg.is_compressed() {
        msg = msg.decompress().ok()?;
    }
    let mut out = Zeroizing::new(Vec::new());
    (&mut msg).take(MAX_DATA_KEY_READ).read_to_end(&mut out).ok()?;
    Some(out)
}

/// Encrypts the data key to an age recipient (`age1...`), as an armored age file.
pub(crate) fn age_encrypt(recipient: &str, data_key: &[u8; 32]) -> Result<AgeStanza, SopsError> {
    let recipient = recipient.trim();
    let r = age::x25519::Recipient::from_str(recipient)
        .map_err(|_| SopsError::InvalidKey("not an age X25519 recipient (age1...)".into()))?;
    let armored = age::encrypt_and_armor(&r, data_key).map_err(|e| SopsError::Encryption(format!("age: {e}")))?;
    Ok(AgeStanza {
        recipient: recipient.to_string(),
        enc: armored,
    })
}

/// Encrypts the data key to an armored OpenPGP public key.
pub(crate) fn pgp_encrypt(armored_public: &str, data_key: &[u8; 32], created_at: &str) -> Result<PgpStanza, SopsError> {
    let (key, _) = SignedPublicKey::from_armor_single(armored_public.as_bytes())
        .map_err(|_| SopsError::InvalidKey("not an armored OpenPGP public key".into()))?;
    key.verify_bindings()
        .map_err(|_| SopsError::InvalidKey("OpenPGP public key has invalid self-signatures".into()))?;
    let fp = format!("{:X}", key.fingerprint());
    let mut rng = rand::thread_rng();
    let mut builder =
        MessageBuilder::from_bytes("", data_key.to_vec()).seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES256);
    // Prefer the newest subkey flagged for encryption (what gpg picks); fall back to the primary key.
    let subkey = key.public_subkeys.iter().rev().find(|sk| {
        sk.key.algorithm().can_encrypt()
            && sk
                .signatures
                .iter()
                .any(|sig| sig.key_flags().encrypt_comms() || sig.key_flags().encrypt_storage())
    });
    match subkey {
        Some(sk) => builder.encrypt_to_key(&mut rng, sk),
        None if key.primary_key.algorithm().can_encrypt() => builder.encrypt_to_key(&mut rng, &key.primary_key),
        None => return Err(SopsError::InvalidKey(format!("OpenPGP key {fp} has no encryption key"))),
    }
    .map_err(|e| SopsError::Encryption(format!("OpenPGP: {e}")))?;
    let armored = builder
        .to_armored_string(&mut rng, ArmorOptions::default())
        .map_err(|e| SopsError::Encryption(format!("OpenPGP: {e}")))?;
    Ok(PgpStanza {
        fp,
        enc: armored,
        created_at: created_at.to_string(),
    })
}

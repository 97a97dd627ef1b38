//! Trusted keys: OpenPGP certificates and SSH public keys.

use std::fmt;
use std::path::Path;

use pgp::composed::{Deserializable, SignedPublicKey, SignedPublicSubKey};
use pgp::packet::{Signature, SignatureType, SubpacketData};
use pgp::types::{Fingerprint, KeyDetails, KeyId, Tag};

use crate::VerifyError;

/// Largest trusted-key file read by [`TrustedKeys::parse_files`].
const MAX_KEY_FILE_BYTES: u64 = 1024 * 1024;

/// The keys whose signatures are trusted: OpenPGP public keys (primary keys and their signing
/// subkeys) and SSH public keys.
///
/// OpenPGP key state is read from the key's own self-signatures when it is parsed: a key or
/// subkey with a valid revocation is revoked; its expiry is taken from the newest valid
/// self-signature and checked against the current time at verification. Subkeys count only with
/// a valid binding signature that allows signing.
#[derive(Clone, Default)]
pub struct TrustedKeys {
    pub(crate) pgp: Vec<PgpComponent>,
    pub(crate) ssh: Vec<SshKey>,
}

/// One OpenPGP key that may sign: a primary key or a signing subkey.
#[derive(Clone)]
pub(crate) struct PgpComponent {
    /// The primary key's fingerprint (what the operator knows the key by).
    pub primary_fpr: Fingerprint,
    /// The first user id of the certificate, for messages.
    pub user_id: Option<String>,
    pub fingerprint: Fingerprint,
    pub key_id: KeyId,
    pub key: PgpKey,
    /// Revoked (the key, or for a subkey also its primary).
    pub revoked: bool,
    /// Expiry (unix seconds), the earliest of this key's and its primary's.
    pub expires_at: Option<u64>,
}

#[derive(Clone)]
pub(crate) enum PgpKey {
    Primary(Box<pgp::packet::PublicKey>),
    Sub(Box<SignedPublicSubKey>),
}

/// A trusted SSH public key.
#[derive(Clone)]
pub(crate) struct SshKey {
    pub key: ssh_key::PublicKey,
    /// allowed_signers principals, if the key came from such a line.
    pub principals: Option<String>,
    /// allowed_signers `namespaces="…"` (None: any namespace).
    pub namespaces: Option<Vec<String>>,
}

impl SshKey {
    /// `SHA256:… principal` or `SHA256:… comment`.
    pub fn describe(&self) -> String {
        let fp = self.key.fingerprint(ssh_key::HashAlg::Sha256);
        match (&self.principals, self.key.comment()) {
            (Some(p), _) => format!("{fp} {p}"),
            (None, c) if !c.is_empty() => format!("{fp} {c}"),
            _ => fp.to_string(),
        }
    }
}

impl PgpComponent {
    pub fn describe(&self) -> String {
        let mut s = format!("{:X}", self.primary_fpr);
        if self.fingerprint != self.primary_fpr {
            s.push_str(&format!(" (subkey {:X})", self.fingerprint));
        }
        if let Some(uid) = &self.user_id {
            s.push_str(&format!(" {uid}"));
        }
        s
    }
}

impl fmt::Debug for TrustedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedKeys")
            .field("pgp", &self.pgp.iter().map(|c| c.describe()).collect::<Vec<_>>())
            .field("ssh", &self.ssh.iter().map(|k| k.describe()).collect::<Vec<_>>())
            .finish()
    }
}

fn invalid(entry: &str, reason: impl Into<String>) -> VerifyError {
    VerifyError::InvalidTrustedKey {
        entry: entry.to_string(),
        reason: reason.into(),
    }
}

impl TrustedKeys {
    /// Parse trusted keys. Each entry is text holding any number of: armored OpenPGP public key
    /// blocks (`gpg --export --armor`), SSH public key lines (`ssh-ed25519 AAAA… comment`) and
    /// allowed_signers lines (`principal[,principal…] [namespaces="git"] ssh-ed25519 AAAA…`).
    /// Empty lines and `#` comments are skipped. An entry with no key is an error, as is an
    /// allowed_signers option other than `namespaces` (`cert-authority`, `valid-after`,
    /// `valid-before` are not supported).
    pub fn parse(entries: &[String]) -> Result<TrustedKeys, VerifyError> {
        let mut keys = TrustedKeys::default();
        for (i, entry) in entries.iter().enumerate() {
            keys.add_text(&format!("#{}", i + 1), entry)?;
        }
        Ok(keys)
    }

    /// Like [`TrustedKeys::parse`], reading each entry from a file (at most 1 MiB). A file may
    /// also be a binary OpenPGP keyring export (`gpg --export FPR > key.gpg`).
    pub fn parse_files<P: AsRef<Path>>(paths: &[P]) -> Result<TrustedKeys, VerifyError> {
        let mut keys = TrustedKeys::default();
        for path in paths {
            let path = path.as_ref();
            let label = path.display().to_string();
            let meta = std::fs::metadata(path).map_err(|e| invalid(&label, format!("cannot read the file: {e}")))?;
            if meta.len() > MAX_KEY_FILE_BYTES {
                return Err(invalid(
                    &label,
                    format!("the file is larger than {MAX_KEY_FILE_BYTES} bytes"),
                ));
            }
            let bytes = std::fs::read(path).map_err(|e| invalid(&label, format!("cannot read the file: {e}")))?;
            match String::from_utf8(bytes) {
                Ok(text) => keys.add_text(&label, &text)?,
                Err(e) => keys.add_pgp_binary(&label, e.as_bytes())?,
            }
        }
        Ok(keys)
    }

    /// Adds every key of `other`.
    pub fn extend(&mut self, other: TrustedKeys) {
        self.pgp.extend(other.pgp);
        self.ssh.extend(other.ssh);
    }

    /// No keys at all (every signature would be untrusted).
    pub fn is_empty(&self) -> bool {
        self.pgp.is_empty() && self.ssh.is_empty()
    }

    /// Fingerprints of the trusted OpenPGP primary keys (uppercase hex), deduplicated.
    pub fn pgp_fingerprints(&self) -> Vec<String> {
        let mut v: Vec<String> = self.pgp.iter().map(|c| format!("{:X}", c.primary_fpr)).collect();
        v.dedup();
        v
    }

    /// Fingerprints (`SHA256:…`) of the trusted SSH keys.
    pub fn ssh_fingerprints(&self) -> Vec<String> {
        self.ssh
            .iter()
            .map(|k| k.key.fingerprint(ssh_key::HashAlg::Sha256).to_string())
            .collect()
    }

    fn add_text(&mut self, label: &str, text: &str) -> Result<(), VerifyError> {
        let before = self.pgp.len() + self.ssh.len();
        let mut lines = text.lines().enumerate();
        while let Some((n, line)) = lines.next() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let where_ = format!("{label} line {}", n + 1);
            if line == "-----BEGIN PGP PUBLIC KEY BLOCK-----" {
                let mut block = String::from(line);
                block.push('\n');
                let mut closed = false;
                for (_, l) in lines.by_ref() {
                    let l = l.trim_end();
                    block.push_str(l);
                    block.push('\n');
                    if l == "-----END PGP PUBLIC KEY BLOCK-----" {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err(invalid(&where_, "the OpenPGP key block has no END line"));
                }
                self.add_pgp_armored(&where_, &block)?;
            } else if line.starts_with("-----BEGIN") {
                let reason = if line.contains("PRIVATE") || line.contains("SECRET") {
                    "this is a private key: give the public key only, and treat this private key as leaked"
                } else {
                    "not an OpenPGP public key block"
                };
                return Err(invalid(&where_, reason));
            } else {
                self.add_ssh_line(&where_, line)?;
            }
        }
        if self.pgp.len() + self.ssh.len() == before {
            return Err(invalid(label, "no key in it"));
        }
        Ok(())
    }

    fn add_pgp_armored(&mut self, label: &str, block: &str) -> Result<(), VerifyError> {
        let (certs, _) = SignedPublicKey::from_string_many(block)
            .map_err(|e| invalid(label, format!("not an OpenPGP public key: {e}")))?;
        self.add_pgp_certs(label, certs)
    }

    fn add_pgp_binary(&mut self, label: &str, bytes: &[u8]) -> Result<(), VerifyError> {
        let certs = SignedPublicKey::from_bytes_many(bytes)
            .map_err(|e| invalid(label, format!("not text, nor a binary OpenPGP public key: {e}")))?;
        self.add_pgp_certs(label, certs)
    }

    fn add_pgp_certs(
        &mut self,
        label: &str,
        certs: impl Iterator<Item = pgp::errors::Result<SignedPublicKey>>,
    ) -> Result<(), VerifyError> {
        let mut any = false;
        for cert in certs {
            let cert = cert.map_err(|e| invalid(label, format!("not an OpenPGP public key: {e}")))?;
            self.add_pgp_cert(&cert);
            any = true;
        }
        if !any {
            return Err(invalid(label, "the OpenPGP block holds no public key"));
        }
        Ok(())
    }

    fn add_pgp_cert(&mut self, cert: &SignedPublicKey) {
        let primary = &cert.primary_key;
        let primary_fpr = primary.fingerprint();
        let user_id = cert
            .details
            .users
            .iter()
            .find(|u| u.is_primary())
            .or(cert.details.users.first())
            .map(|u| String::from_utf8_lossy(u.id.id()).into_owned());
        let primary_revoked = cert
            .details
            .revocation_signatures
            .iter()
            .any(|s| s.typ() == Some(SignatureType::KeyRevocation) && s.verify_key(primary).is_ok());
        // The newest valid self-signature over the primary key (user id certifications and
        // direct-key signatures) carries its expiry and flags.
        let mut self_sigs: Vec<&Signature> = Vec::new();
        for user in &cert.details.users {
            for sig in &user.signatures {
                if sig.verify_certification(primary, Tag::UserId, &user.id).is_ok() {
                    self_sigs.push(sig);
                }
            }
        }
        for sig in &cert.details.direct_signatures {
            if sig.verify_key(primary).is_ok() {
                self_sigs.push(sig);
            }
        }
        let newest = self_sigs
            .iter()
            .max_by_key(|s| s.created().map(|t| t.as_secs()).unwrap_or(0));
        let primary_created = u64::from(primary.created_at().as_secs());
        let primary_expires = newest.and_then(|s| expiry(primary_created, s));
        let primary_may_sign = newest.is_none_or(|s| !has_key_flags(s) || s.key_flags().sign());
        if primary_may_sign {
            self.pgp.push(PgpComponent {
                primary_fpr: primary_fpr.clone(),
                user_id: user_id.clone(),
                fingerprint: primary_fpr.clone(),
                key_id: primary.legacy_key_id(),
                key: PgpKey::Primary(Box::new(primary.clone())),
                revoked: primary_revoked,
                expires_at: primary_expires,
            });
        }
        for sub in &cert.public_subkeys {
            let valid: Vec<&Signature> = sub
                .signatures
                .iter()
                .filter(|s| s.verify_subkey_binding(primary, &sub.key).is_ok())
                .collect();
            let revoked = valid.iter().any(|s| s.typ() == Some(SignatureType::SubkeyRevocation));
            let Some(binding) = valid
                .iter()
                .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
                .max_by_key(|s| s.created().map(|t| t.as_secs()).unwrap_or(0))
            else {
                continue;
            };
            if !binding.key_flags().sign() {
                continue;
            }
            let sub_expires = expiry(u64::from(sub.key.created_at().as_secs()), binding);
            let expires_at = match (primary_expires, sub_expires) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            self.pgp.push(PgpComponent {
                primary_fpr: primary_fpr.clone(),
                user_id: user_id.clone(),
                fingerprint: sub.key.fingerprint(),
                key_id: sub.key.legacy_key_id(),
                key: PgpKey::Sub(Box::new(sub.clone())),
                revoked: revoked || primary_revoked,
                expires_at,
            });
        }
    }

    fn add_ssh_line(&mut self, label: &str, line: &str) -> Result<(), VerifyError> {
        if let Ok(key) = ssh_key::PublicKey::from_openssh(line) {
            self.ssh.push(SshKey {
                key,
                principals: None,
                namespaces: None,
            });
            return Ok(());
        }
        // allowed_signers: principals [options] keytype base64 [comment]
        let tokens = split_quoted(line);
        let bad = || {
            invalid(
                label,
                "neither an SSH public key line nor an allowed_signers line (`principal [namespaces=\"git\"] ssh-ed25519 AAAA…`)",
            )
        };
        if tokens.len() < 3 {
            return Err(bad());
        }
        let principals = tokens[0].trim_matches('"').to_string();
        let (options, key_at) = if looks_like_key_type(tokens[1]) {
            (None, 1)
        } else {
            (Some(tokens[1]), 2)
        };
        if key_at >= tokens.len() {
            return Err(bad());
        }
        let key_text = tokens[key_at..].join(" ");
        let key = ssh_key::PublicKey::from_openssh(&key_text)
            .map_err(|e| invalid(label, format!("the SSH public key of the allowed_signers line: {e}")))?;
        let mut namespaces = None;
        if let Some(options) = options {
            for opt in split_options(options) {
                let (name, value) = opt.split_once('=').unwrap_or((opt, ""));
                match name.to_ascii_lowercase().as_str() {
                    "namespaces" => {
                        let v = value.trim_matches('"');
                        namespaces = Some(v.split(',').map(|s| s.trim().to_string()).collect());
                    }
                    other => {
                        return Err(invalid(
                            label,
                            format!("the allowed_signers option `{other}` is not supported (only `namespaces`)"),
                        ));
                    }
                }
            }
        }
        self.ssh.push(SshKey {
            key,
            principals: Some(principals),
            namespaces,
        });
        Ok(())
    }
}

fn looks_like_key_type(t: &str) -> bool {
    t.starts_with("ssh-") || t.starts_with("ecdsa-") || t.starts_with("sk-")
}

/// Whitespace-separated tokens, with double-quoted spans kept whole.
fn split_quoted(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => {
                quoted = !quoted;
                start.get_or_insert(i);
            }
            c if c.is_whitespace() && !quoted => {
                if let Some(s) = start.take() {
                    out.push(&line[s..i]);
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        out.push(&line[s..]);
    }
    out
}

/// Comma-separated options, with double-quoted spans kept whole.
fn split_options(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().filter(|o| !o.is_empty()).collect()
}

fn has_key_flags(sig: &Signature) -> bool {
    sig.config().is_some_and(|c| {
        c.hashed_subpackets()
            .any(|p| matches!(p.data, SubpacketData::KeyFlags(_)))
    })
}

/// Expiry (unix seconds) from a self-signature's key expiration time, relative to `created`.
fn expiry(created: u64, sig: &Signature) -> Option<u64> {
    let secs = sig.key_expiration_time()?.as_secs();
    (secs > 0).then(|| created + u64::from(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fixture_keys() {
        let pgp = include_str!("../tests/fixtures/pgp-key.asc").to_string();
        let ssh = include_str!("../tests/fixtures/ssh-key.pub").to_string();
        let keys = TrustedKeys::parse(&[pgp, ssh.clone()]).unwrap();
        assert_eq!(keys.pgp_fingerprints().len(), 1);
        assert_eq!(keys.ssh_fingerprints().len(), 1);
        let line = format!("# comment\n\nalice@example.com,bob namespaces=\"git,file\" {ssh}");
        let keys = TrustedKeys::parse(&[line]).unwrap();
        assert_eq!(keys.ssh[0].principals.as_deref(), Some("alice@example.com,bob"));
        assert_eq!(
            keys.ssh[0].namespaces,
            Some(vec!["git".to_string(), "file".to_string()])
        );
        assert!(keys.ssh[0].describe().starts_with("SHA256:"));
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        let ssh = include_str!("../tests/fixtures/ssh-key.pub").trim().to_string();
        for bad in [
            String::new(),
            "# only a comment".to_string(),
            "garbage".to_string(),
            format!("alice cert-authority {ssh}"),
            format!("alice valid-before=\"20300101\" {ssh}"),
            "-----BEGIN OPENSSH PRIVATE KEY-----".to_string(),
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxyz\n".to_string(),
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxyz\n-----END PGP PUBLIC KEY BLOCK-----\n".to_string(),
        ] {
            let err = TrustedKeys::parse(std::slice::from_ref(&bad)).unwrap_err();
            assert!(matches!(err, VerifyError::InvalidTrustedKey { .. }), "{bad}: {err:?}");
            assert!(err.to_string().contains("signature"), "{err}");
        }
    }

    #[test]
    fn quoted_tokens() {
        assert_eq!(split_quoted(r#"a  b="c d",e f"#), vec!["a", r#"b="c d",e"#, "f"]);
        assert_eq!(
            split_options(r#"namespaces="git,file",x"#),
            vec![r#"namespaces="git,file""#, "x"]
        );
    }
}

//! driftless-verify: signed-commit verification.
//!
//! Verifies the signature of a raw git commit or annotated tag object ([`verify_object`])
//! against [`TrustedKeys`], and applies an application's policy ([`Mode`]) to a revision with
//! [`verify_revision`]. Raw objects come from `driftless_source::GitCache::raw_commit` and
//! `raw_tags_for`.
//!
//! - **Commits** carry the signature in a `gpgsig` header (`gpgsig-sha256` for SHA-256 objects)
//!   whose continuation lines start with a space; the signed payload is the object without that
//!   header (and without the other-hash `gpgsig*` header, as git does).
//! - **Annotated tags** carry the signature after the message; the payload is the object up to
//!   the signature.
//! - **OpenPGP** (`gpg.format=openpgp`) with rpgp: one binary detached signature, matched to a
//!   trusted primary key or signing subkey by issuer fingerprint or key id. Revoked keys and
//!   subkeys (by a valid revocation self-signature in the trusted key) and expired ones (by the
//!   newest valid self-signature, against the current time) are refused. Not checked: signature
//!   expiration subpackets, the back-signature of signing subkeys (the operator's exported key is
//!   trusted as a whole), and revocations published elsewhere than in the trusted key — re-export
//!   the key after revoking it.
//! - **SSH** (`gpg.format=ssh`): the `sshsig` format with namespace `git`, matched to a trusted
//!   SSH public key (plain public key line, or allowed_signers line whose `namespaces`, if given,
//!   includes `git`). SSH certificates are not supported.
//! - **Refused as ambiguous**: several signature headers or blocks, anything after the signature
//!   block, unknown `gpgsig*` headers, objects larger than [`MAX_OBJECT_BYTES`].
//!
//! Nothing here panics on input; see `fuzz/` for the fuzz target.

#![warn(missing_docs)]

mod error;
mod keys;
mod object;

use std::fmt;
use std::str::FromStr;

use pgp::composed::{Deserializable, DetachedSignature};
use pgp::packet::SignatureType;

pub use error::VerifyError;
pub use keys::TrustedKeys;
pub use object::MAX_OBJECT_BYTES;

use keys::{PgpComponent, PgpKey};
use object::{BlockKind, ObjectKind, SignedObject};

/// What an application requires to be signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The commit being deployed carries a trusted signature.
    #[default]
    Head,
    /// An annotated tag pointing at the commit carries a trusted signature.
    Tag,
    /// Both the commit and a tag pointing at it.
    Both,
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Mode, String> {
        match s.to_ascii_lowercase().as_str() {
            "head" | "commit" => Ok(Mode::Head),
            "tag" => Ok(Mode::Tag),
            "both" => Ok(Mode::Both),
            _ => Err(format!(
                "unknown signature verification mode '{s}' (expected head, tag or both)"
            )),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Head => "head",
            Mode::Tag => "tag",
            Mode::Both => "both",
        })
    }
}

/// The kind of signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureKind {
    /// OpenPGP (`gpg.format=openpgp`).
    Pgp,
    /// SSH `sshsig` (`gpg.format=ssh`).
    Ssh,
}

/// A signature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Who signed: the OpenPGP primary key fingerprint (uppercase hex, with the signing subkey
    /// and the primary user id), or the SSH key fingerprint (`SHA256:…`) with the
    /// allowed_signers principals or the key comment.
    pub signer: String,
    /// OpenPGP or SSH.
    pub kind: SignatureKind,
    /// `commit <sha>` or `tag <name>`.
    pub object: String,
}

/// Verify a raw git commit or annotated tag object's signature (the `gpgsig` header, or the
/// `-----BEGIN PGP SIGNATURE-----` / `-----BEGIN SSH SIGNATURE-----` block after a tag message)
/// against the trusted keys.
pub fn verify_object(raw: &[u8], keys: &TrustedKeys) -> Result<Verified, VerifyError> {
    let obj = object::parse(raw)?;
    verify_parsed(&obj, keys)
}

/// Apply `mode` to a commit: verify the raw commit (`Head`), an annotated tag pointing at it
/// (`Tag`: any one of `tags` whose signature is trusted), or both. `tags` are
/// `(ref name under refs/tags/, raw tag object)`, as `GitCache::raw_tags_for` returns them; a
/// tag whose object does not point at this commit, or whose `tag` header differs from its ref
/// name (a re-pointed ref), does not count. Returns what verified.
pub fn verify_revision(
    mode: Mode,
    raw_commit: &[u8],
    tags: &[(String, Vec<u8>)],
    keys: &TrustedKeys,
) -> Result<Vec<Verified>, VerifyError> {
    let commit = object::parse(raw_commit)?;
    if commit.kind != ObjectKind::Commit {
        return Err(VerifyError::Malformed {
            object: commit.description,
            reason: "expected a commit object".into(),
        });
    }
    let mut out = Vec::new();
    if matches!(mode, Mode::Head | Mode::Both) {
        out.push(verify_parsed(&commit, keys)?);
    }
    if matches!(mode, Mode::Tag | Mode::Both) {
        out.push(verify_tags(&commit, tags, keys)?);
    }
    Ok(out)
}

fn verify_tags(commit: &SignedObject, tags: &[(String, Vec<u8>)], keys: &TrustedKeys) -> Result<Verified, VerifyError> {
    let mut first_err: Option<VerifyError> = None;
    for (name, raw) in tags {
        let result = object::parse(raw).and_then(|tag| {
            if tag.kind != ObjectKind::Tag {
                return Err(VerifyError::Malformed {
                    object: format!("tag {name}"),
                    reason: "not an annotated tag object".into(),
                });
            }
            if tag.target != commit.target || tag.target_type.as_deref() != Some("commit") {
                return Err(VerifyError::Malformed {
                    object: tag.description.clone(),
                    reason: format!("the tag points at {}, not at {}", tag.target, commit.description),
                });
            }
            if tag.tag_name.as_deref() != Some(name.as_str()) {
                return Err(VerifyError::Malformed {
                    object: tag.description.clone(),
                    reason: format!("the tag object is stored as refs/tags/{name} (a re-pointed tag ref)"),
                });
            }
            verify_parsed(&tag, keys)
        });
        match result {
            Ok(v) => return Ok(v),
            // Prefer explaining a real problem over "unsigned".
            Err(e) => match &first_err {
                None | Some(VerifyError::Unsigned { .. }) => first_err = Some(e),
                Some(_) => {}
            },
        }
    }
    Err(first_err.unwrap_or_else(|| VerifyError::Unsigned {
        object: format!("{} (no annotated tag points at it)", commit.description),
    }))
}

fn verify_parsed(obj: &SignedObject, keys: &TrustedKeys) -> Result<Verified, VerifyError> {
    let Some((kind, block)) = &obj.signature else {
        return Err(VerifyError::Unsigned {
            object: obj.description.clone(),
        });
    };
    match kind {
        BlockKind::Pgp => verify_pgp(obj, block, keys),
        BlockKind::Ssh => verify_ssh(obj, block, keys),
    }
}

fn malformed(obj: &SignedObject, reason: impl Into<String>) -> VerifyError {
    VerifyError::Malformed {
        object: obj.description.clone(),
        reason: reason.into(),
    }
}

fn is_unsupported_pgp(e: &pgp::errors::Error) -> bool {
    matches!(
        e,
        pgp::errors::Error::Unsupported { .. } | pgp::errors::Error::Unimplemented { .. }
    )
}

fn verify_pgp(obj: &SignedObject, block: &str, keys: &TrustedKeys) -> Result<Verified, VerifyError> {
    let parsed = DetachedSignature::from_string_many(block).map_err(|e| {
        if is_unsupported_pgp(&e) {
            VerifyError::UnsupportedAlgorithm {
                object: obj.description.clone(),
                algorithm: e.to_string(),
            }
        } else {
            malformed(obj, format!("cannot parse the OpenPGP signature: {e}"))
        }
    })?;
    let mut sigs = Vec::new();
    for sig in parsed.0 {
        let sig = sig.map_err(|e| malformed(obj, format!("cannot parse the OpenPGP signature: {e}")))?;
        sigs.push(sig);
        if sigs.len() > 1 {
            return Err(malformed(obj, "more than one OpenPGP signature packet"));
        }
    }
    let Some(sig) = sigs.pop() else {
        return Err(malformed(obj, "no OpenPGP signature packet"));
    };
    let sig = sig.signature;
    if sig.config().is_none() {
        return Err(VerifyError::UnsupportedAlgorithm {
            object: obj.description.clone(),
            algorithm: format!("OpenPGP signature version {:?}", sig.version()),
        });
    }
    if sig.typ() != Some(SignatureType::Binary) {
        return Err(malformed(
            obj,
            format!(
                "an OpenPGP signature of type {:?}, expected a binary document signature",
                sig.typ()
            ),
        ));
    }
    let issuer_fprs = sig.issuer_fingerprint();
    let issuer_ids = sig.issuer_key_id();
    let issuer = issuer_fprs
        .first()
        .map(|f| format!("{f:X}"))
        .or_else(|| issuer_ids.first().map(|k| hex::encode_upper(k.as_ref())));
    let Some(issuer) = issuer else {
        return Err(malformed(obj, "the OpenPGP signature does not name its key"));
    };
    let candidates: Vec<&PgpComponent> = keys
        .pgp
        .iter()
        .filter(|c| issuer_fprs.contains(&&c.fingerprint) || issuer_ids.contains(&&c.key_id))
        .collect();
    if candidates.is_empty() {
        return Err(VerifyError::UntrustedKey {
            object: obj.description.clone(),
            fingerprint: issuer,
        });
    }
    let mut last_err = None;
    for c in candidates {
        let result = match &c.key {
            PgpKey::Primary(k) => sig.verify(k.as_ref(), obj.payload.as_slice()),
            PgpKey::Sub(k) => sig.verify(&k.key, obj.payload.as_slice()),
        };
        match result {
            Ok(()) => {
                let fingerprint = format!("{:X}", c.fingerprint);
                if c.revoked {
                    return Err(VerifyError::RevokedKey {
                        object: obj.description.clone(),
                        fingerprint,
                    });
                }
                if let Some(at) = c.expires_at {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    if now >= at {
                        return Err(VerifyError::ExpiredKey {
                            object: obj.description.clone(),
                            fingerprint,
                            expired_at: at,
                        });
                    }
                }
                return Ok(Verified {
                    signer: c.describe(),
                    kind: SignatureKind::Pgp,
                    object: obj.description.clone(),
                });
            }
            Err(e) if is_unsupported_pgp(&e) => {
                return Err(VerifyError::UnsupportedAlgorithm {
                    object: obj.description.clone(),
                    algorithm: e.to_string(),
                });
            }
            Err(e) => last_err = Some((c.describe(), e.to_string())),
        }
    }
    let (signer, reason) = last_err.unwrap_or_default();
    Err(VerifyError::BadSignature {
        object: obj.description.clone(),
        signer,
        reason,
    })
}

/// The sshsig namespace git signs with.
const GIT_NAMESPACE: &str = "git";

fn verify_ssh(obj: &SignedObject, block: &str, keys: &TrustedKeys) -> Result<Verified, VerifyError> {
    let sig = ssh_key::SshSig::from_pem(block).map_err(|e| match e {
        ssh_key::Error::AlgorithmUnknown | ssh_key::Error::AlgorithmUnsupported { .. } => {
            VerifyError::UnsupportedAlgorithm {
                object: obj.description.clone(),
                algorithm: format!("SSH signature: {e}"),
            }
        }
        _ => malformed(obj, format!("cannot parse the SSH signature: {e}")),
    })?;
    let fingerprint = sig.public_key().fingerprint(ssh_key::HashAlg::Sha256).to_string();
    let candidates: Vec<&keys::SshKey> = keys
        .ssh
        .iter()
        .filter(|k| k.key.key_data() == sig.public_key())
        .filter(|k| {
            k.namespaces
                .as_ref()
                .is_none_or(|ns| ns.iter().any(|n| n == GIT_NAMESPACE))
        })
        .collect();
    let Some(key) = candidates.first() else {
        return Err(VerifyError::UntrustedKey {
            object: obj.description.clone(),
            fingerprint,
        });
    };
    if sig.namespace() != GIT_NAMESPACE {
        return Err(VerifyError::BadSignature {
            object: obj.description.clone(),
            signer: key.describe(),
            reason: format!("the SSH signature is for namespace '{}', not 'git'", sig.namespace()),
        });
    }
    match key.key.verify(GIT_NAMESPACE, &obj.payload, &sig) {
        Ok(()) => Ok(Verified {
            signer: key.describe(),
            kind: SignatureKind::Ssh,
            object: obj.description.clone(),
        }),
        Err(e @ (ssh_key::Error::AlgorithmUnknown | ssh_key::Error::AlgorithmUnsupported { .. })) => {
            Err(VerifyError::UnsupportedAlgorithm {
                object: obj.description.clone(),
                algorithm: format!("SSH signature: {e}"),
            })
        }
        Err(e) => Err(VerifyError::BadSignature {
            object: obj.description.clone(),
            signer: key.describe(),
            reason: format!("SSH signature check failed: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMIT: &[u8] = include_bytes!("../tests/fixtures/pgp-commit.txt");
    const TAG: &[u8] = include_bytes!("../tests/fixtures/pgp-tag.txt");
    const SSH_COMMIT: &[u8] = include_bytes!("../tests/fixtures/ssh-commit.txt");

    fn keys() -> TrustedKeys {
        TrustedKeys::parse(&[
            include_str!("../tests/fixtures/pgp-key.asc").to_string(),
            include_str!("../tests/fixtures/ssh-key.pub").to_string(),
        ])
        .unwrap()
    }

    #[test]
    fn fixtures_verify() {
        let keys = keys();
        let v = verify_object(COMMIT, &keys).unwrap();
        assert_eq!(v.kind, SignatureKind::Pgp);
        assert!(v.object.starts_with("commit "));
        assert!(v.signer.starts_with(&keys.pgp_fingerprints()[0]), "{v:?}");
        let v = verify_object(TAG, &keys).unwrap();
        assert_eq!(v.object, "tag v1");
        let v = verify_object(SSH_COMMIT, &keys).unwrap();
        assert_eq!(v.kind, SignatureKind::Ssh);
        assert!(v.signer.starts_with("SHA256:"), "{v:?}");
    }

    #[test]
    fn flipped_message_byte_is_a_bad_signature() {
        let keys = keys();
        for raw in [COMMIT, TAG, SSH_COMMIT] {
            let mut forged = raw.to_vec();
            let pos = if raw == TAG {
                raw.windows(7).position(|w| w == b"tag msg").unwrap()
            } else {
                raw.len() - 2
            };
            forged[pos] ^= 0x01;
            let err = verify_object(&forged, &keys).unwrap_err();
            assert!(matches!(err, VerifyError::BadSignature { .. }), "{err:?}");
            assert!(err.to_string().contains("signature"));
        }
    }

    #[test]
    fn untrusted_without_keys() {
        let none = TrustedKeys::default();
        for raw in [COMMIT, TAG, SSH_COMMIT] {
            let err = verify_object(raw, &none).unwrap_err();
            assert!(matches!(err, VerifyError::UntrustedKey { .. }), "{err:?}");
        }
    }

    #[test]
    fn revision_modes() {
        let keys = keys();
        let tag_target = String::from_utf8_lossy(&TAG[7..47]).into_owned();
        let commit_id = include_str!("../tests/fixtures/pgp-commit.id").trim();
        assert_eq!(tag_target, commit_id);
        let tags = vec![("v1".to_string(), TAG.to_vec())];
        assert_eq!(verify_revision(Mode::Head, COMMIT, &[], &keys).unwrap().len(), 1);
        assert_eq!(verify_revision(Mode::Both, COMMIT, &tags, &keys).unwrap().len(), 2);
        assert_eq!(
            verify_revision(Mode::Tag, COMMIT, &tags, &keys).unwrap()[0].object,
            "tag v1"
        );
        let err = verify_revision(Mode::Tag, COMMIT, &[], &keys).unwrap_err();
        assert!(matches!(err, VerifyError::Unsigned { .. }), "{err}");
        // the tag ref was re-pointed: refs/tags/v2 holds the object of v1
        let moved = vec![("v2".to_string(), TAG.to_vec())];
        let err = verify_revision(Mode::Tag, COMMIT, &moved, &keys).unwrap_err();
        assert!(matches!(err, VerifyError::Malformed { .. }), "{err}");
        // a tag of another commit does not count
        let err = verify_revision(Mode::Tag, SSH_COMMIT, &tags, &keys).unwrap_err();
        assert!(matches!(err, VerifyError::Malformed { .. }), "{err}");
        assert_eq!("BOTH".parse::<Mode>(), Ok(Mode::Both));
        assert!("x".parse::<Mode>().is_err());
    }

    /// xorshift64*: deterministic pseudo-random bytes without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    #[test]
    fn random_bytes_and_mutations_never_panic() {
        let keys = keys();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let seeds: [&[u8]; 3] = [COMMIT, TAG, SSH_COMMIT];
        for i in 0..3000 {
            let mut data: Vec<u8> = if i % 3 == 0 {
                let len = (rng.next() % 600) as usize;
                let mut v: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                if i % 2 == 0 {
                    let mut p = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\ngpgsig ".to_vec();
                    p.append(&mut v);
                    v = p;
                }
                v
            } else {
                seeds[i % 3].to_vec()
            };
            // mutate: flip, insert, delete or truncate a few bytes
            for _ in 0..(rng.next() % 4) {
                if data.is_empty() {
                    break;
                }
                let pos = (rng.next() as usize) % data.len();
                match rng.next() % 4 {
                    0 => data[pos] ^= 1 << (rng.next() % 8),
                    1 => data.insert(pos, b"\n -=AZaz09"[(rng.next() % 10) as usize]),
                    2 => {
                        data.remove(pos);
                    }
                    _ => data.truncate(pos),
                }
            }
            let _ = verify_object(&data, &keys);
            let _ = verify_revision(Mode::Both, &data, &[("v1".into(), data.clone())], &keys);
        }
    }
}

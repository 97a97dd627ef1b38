//! Why a signature did not verify, worded for the operator: every message names the object and
//! says what to do, and contains the word "signature" (so logs can be searched for it).

/// A signature that did not verify, or trusted keys that could not be read.
///
/// `object` is `"commit <sha>"`, `"tag <name>"`, or `"git object"` when the object could not
/// even be identified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The object carries no signature (or, in tag mode, no annotated tag points at the commit).
    #[error(
        "{object} has no signature: sign it with a trusted key (`git commit -S`, `git tag -s`) \
         or turn off signature verification for this application"
    )]
    Unsigned {
        /// The object, e.g. `commit 1a2b…`.
        object: String,
    },
    /// The signature names a key that is not among the trusted keys.
    #[error(
        "{object} has a signature by key {fingerprint}, which is not trusted: add its public key \
         to the application's trusted signature keys if it should be"
    )]
    UntrustedKey {
        /// The object.
        object: String,
        /// The issuer: an OpenPGP fingerprint (or key id when the signature names no
        /// fingerprint), or an SSH key fingerprint (`SHA256:…`).
        fingerprint: String,
    },
    /// The signature does not match the object: it was changed after signing, or forged.
    #[error(
        "{object} has a BAD signature by trusted key {signer} ({reason}): the object was changed \
         after it was signed or the signature is forged; do not deploy it and find out who pushed it"
    )]
    BadSignature {
        /// The object.
        object: String,
        /// The trusted key the signature claims to be from.
        signer: String,
        /// What did not match.
        reason: String,
    },
    /// The object or its signature block cannot be parsed, or is ambiguous (several signature
    /// blocks, trailing data, oversized object).
    #[error(
        "{object} has a malformed or ambiguous signature ({reason}): re-sign it with `git commit -S` / `git tag -s`"
    )]
    Malformed {
        /// The object.
        object: String,
        /// What is wrong.
        reason: String,
    },
    /// A signature format or algorithm this verifier does not handle (X.509/gpgsm, SSH
    /// certificates, unknown OpenPGP or SSH algorithms).
    #[error(
        "{object} has a signature in an unsupported format or algorithm ({algorithm}): sign with an \
         OpenPGP key (Ed25519, RSA, ECDSA) or an SSH key (Ed25519, RSA, ECDSA P-256/P-384)"
    )]
    UnsupportedAlgorithm {
        /// The object.
        object: String,
        /// What was found.
        algorithm: String,
    },
    /// The signature is good but the trusted OpenPGP key (or the signing subkey) is revoked.
    #[error(
        "{object} has a good signature by key {fingerprint}, but that key is revoked: re-sign with \
         a current key and remove the revoked one from the trusted signature keys"
    )]
    RevokedKey {
        /// The object.
        object: String,
        /// The revoked key's fingerprint.
        fingerprint: String,
    },
    /// The signature is good but the trusted OpenPGP key (or the signing subkey) has expired.
    #[error(
        "{object} has a good signature by key {fingerprint}, but that key expired at unix time \
         {expired_at}: extend the key's expiry and re-export it into the trusted signature keys, or \
         re-sign with a current key"
    )]
    ExpiredKey {
        /// The object.
        object: String,
        /// The expired key's fingerprint.
        fingerprint: String,
        /// When it expired (seconds since the Unix epoch).
        expired_at: u64,
    },
    /// A trusted-key entry could not be read or parsed.
    #[error("trusted signature key {entry} is unusable ({reason}): {hint}", hint = TRUSTED_KEY_HINT)]
    InvalidTrustedKey {
        /// Which entry: `#N` (1-based) for [`crate::TrustedKeys::parse`], or the file path.
        entry: String,
        /// What is wrong.
        reason: String,
    },
}

const TRUSTED_KEY_HINT: &str = "give an armored OpenPGP public key (`gpg --export --armor FPR`), an SSH public key line \
     (`ssh-ed25519 AAAA… comment`) or an allowed_signers line (`principal ssh-ed25519 AAAA…`)";

impl VerifyError {
    /// The object the error is about (`commit <sha>`, `tag <name>`), if any.
    pub fn object(&self) -> Option<&str> {
        match self {
            VerifyError::Unsigned { object }
            | VerifyError::UntrustedKey { object, .. }
            | VerifyError::BadSignature { object, .. }
            | VerifyError::Malformed { object, .. }
            | VerifyError::UnsupportedAlgorithm { object, .. }
            | VerifyError::RevokedKey { object, .. }
            | VerifyError::ExpiredKey { object, .. } => Some(object),
            VerifyError::InvalidTrustedKey { .. } => None,
        }
    }
}

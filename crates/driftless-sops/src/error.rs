//! The crate's error type.
//!
//! Design rule: no variant ever carries a plaintext value, a data key or key
//! material. Errors may name the *path* of a value inside the document (for
//! example `data.password`), metadata field names, and counts. Parser errors
//! from the YAML/JSON libraries are reduced to a line and column, because their
//! messages can quote the offending input (which may be a secret).

use std::fmt;

/// Everything that can go wrong while reading keys, decrypting or encrypting a SOPS document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SopsError {
    /// The input exceeds [`crate::MAX_INPUT_BYTES`].
    #[error("input is {size} bytes, more than the limit of {limit} bytes")]
    InputTooLarge {
        /// Size of the input.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The document is not valid in its format (YAML, JSON, dotenv).
    #[error("invalid {format} document{}", Location(*line, *column))]
    Parse {
        /// "YAML", "JSON" or "dotenv".
        format: &'static str,
        /// 1-based line of the problem, when known.
        line: Option<u64>,
        /// 1-based column of the problem, when known.
        column: Option<u64>,
    },
    /// The document has a shape SOPS does not accept (e.g. a top-level list).
    #[error("unsupported document structure: {0}")]
    Structure(String),
    /// The document has no `sops` metadata: it is not SOPS-encrypted.
    #[error("document is not SOPS-encrypted (no sops metadata with mac and version)")]
    NotEncrypted,
    /// Asked to encrypt a document that already carries `sops` metadata.
    #[error("document already contains a top-level `sops` key (already encrypted?)")]
    AlreadyEncrypted,
    /// The `sops` metadata is malformed; the text names the field.
    #[error("invalid sops metadata: {0}")]
    InvalidMetadata(String),
    /// The file was written by a SOPS major version this crate does not know.
    #[error("unsupported sops file version {0:?}")]
    UnsupportedVersion(String),
    /// A SOPS feature this crate does not implement (e.g. Shamir key groups, KMS-only files).
    #[error("unsupported sops feature: {0}")]
    Unsupported(String),
    /// A key (age identity, OpenPGP key, recipient) could not be parsed or used.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// None of the available keys could decrypt the data key.
    #[error(
        "no available key can decrypt the data key (file has {file_age} age and {file_pgp} pgp recipients; \
         {have_age} age identities and {have_pgp} pgp secret keys were available)"
    )]
    NoMatchingKey {
        /// age recipient stanzas in the file.
        file_age: usize,
        /// pgp stanzas in the file.
        file_pgp: usize,
        /// age identities available.
        have_age: usize,
        /// OpenPGP secret keys available.
        have_pgp: usize,
    },
    /// The decrypted data key is not 32 bytes.
    #[error("decrypted data key has an invalid length")]
    InvalidDataKey,
    /// A value is not a well-formed `ENC[AES256_GCM,...]` string.
    #[error("malformed encrypted value at {path}: {reason}")]
    InvalidValue {
        /// Dotted key path of the value.
        path: String,
        /// What is wrong (never the value itself).
        reason: &'static str,
    },
    /// AES-GCM authentication of a value failed: tampered, moved to another path, or another data key.
    #[error("encrypted value at {path} failed authentication (tampered, moved, or encrypted with another data key)")]
    ValueAuthentication {
        /// Dotted key path of the value.
        path: String,
    },
    /// The MAC over the document does not match: the file was tampered with.
    #[error("MAC mismatch: the document was modified after encryption")]
    MacMismatch,
    /// A value cannot be represented in the chosen format (e.g. a nested map in dotenv).
    #[error("cannot represent value at {path} in {format}: {reason}")]
    UnsupportedValue {
        /// Dotted key path of the value.
        path: String,
        /// Target format.
        format: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// One of the regular expressions in the options or metadata is invalid.
    #[error("invalid {which}")]
    InvalidRegex {
        /// Which option: `encrypted_regex` or `unencrypted_regex`.
        which: &'static str,
    },
    /// Invalid encryption options.
    #[error("invalid encryption options: {0}")]
    Options(String),
    /// A cryptographic operation failed while encrypting.
    #[error("encryption failed: {0}")]
    Encryption(String),
    /// Reading a key file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

struct Location(Option<u64>, Option<u64>);

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(l), Some(c)) => write!(f, " at line {l}, column {c}"),
            (Some(l), None) => write!(f, " at line {l}"),
            _ => Ok(()),
        }
    }
}

impl SopsError {
    pub(crate) fn yaml(e: &serde_saphyr::Error) -> Self {
        let loc = e.location();
        SopsError::Parse {
            format: "YAML",
            line: loc.map(|l| l.line()).filter(|l| *l > 0),
            column: loc.map(|l| l.column()).filter(|c| *c > 0),
        }
    }

    pub(crate) fn json(e: &serde_json::Error) -> Self {
        SopsError::Parse {
            format: "JSON",
            line: Some(e.line() as u64).filter(|l| *l > 0),
            column: Some(e.column() as u64).filter(|c| *c > 0),
        }
    }
}

//! API tokens and webhook secrets.
//!
//! Decisions:
//! * Tokens are kept only as SHA-256 digests. Checking a presented token hashes it and compares
//!   the digest with **every** configured digest using [`subtle::ConstantTimeEq`], without an
//!   early exit, so timing reveals neither a prefix match nor which token matched nor the
//!   token's length.
//! * Secrets ([`Secret`]) never appear in `Debug` output or error messages; [`ConfigError`]
//!   names the file and line, never its content.
//! * A token file that grants nothing (no tokens) is an error rather than a silent lock-out.
//! * Tokens shorter than [`MIN_TOKEN_LEN`] bytes and files readable by other users are accepted
//!   but logged as warnings.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Forge;

/// Tokens shorter than this are accepted with a warning.
pub const MIN_TOKEN_LEN: usize = 16;

/// A secret value (webhook secret or token). `Debug` prints `Secret(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Secret(value.into())
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Constant-time comparison with a presented value (digest-then-compare, so the length of
    /// the secret is not revealed either).
    pub fn matches(&self, presented: &[u8]) -> bool {
        ct_eq_digest(&self.0, presented)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Compares two byte strings in constant time with respect to their content (both are hashed
/// first, so unequal lengths do not short-circuit).
pub fn ct_eq_digest(a: &[u8], b: &[u8]) -> bool {
    let da = Sha256::digest(a);
    let db = Sha256::digest(b);
    da.ct_eq(&db).into()
}

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// GET endpoints only.
    Read,
    /// Everything.
    Admin,
}

impl Role {
    /// `"read"` or `"admin"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Admin => "admin",
        }
    }
}

#[derive(Clone)]
struct TokenEntry {
    digest: [u8; 32],
    role: Role,
    name: String,
}

/// The caller a valid token identifies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The token's name from the token file (or `token-LINE` when unnamed).
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// API bearer tokens.
///
/// File format, one token per line: `TOKEN [ROLE [NAME]]`, where ROLE is `admin` (default) or
/// `read` and NAME is a label for logs (default `token-LINE`). `#` starts a comment line; blank
/// lines are ignored.
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Vec<TokenEntry>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<(&str, &str)> = self
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.role.as_str()))
            .collect();
        f.debug_struct("Tokens").field("tokens", &names).finish()
    }
}

impl Tokens {
    /// No token file: anonymous reads are allowed, mutations are refused.
    pub fn none() -> Tokens {
        Tokens::default()
    }

    /// Whether a token file is configured.
    pub fn is_configured(&self) -> bool {
        !self.entries.is_empty()
    }

    /// Loads a token file (see the type docs for the format).
    pub fn load(path: &Path) -> Result<Tokens, ConfigError> {
        let text = read_file(path)?;
        warn_if_world_readable(path);
        let tokens = Tokens::parse(&text).map_err(|e| e.with_path(path))?;
        if tokens.entries.is_empty() {
            return Err(ConfigError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(tokens)
    }

    /// Parses token file content. An empty result is allowed here (it means "no tokens").
    pub fn parse(text: &str) -> Result<Tokens, ConfigError> {
        let mut entries: Vec<TokenEntry> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let Some(token) = fields.next() else { continue };
            let role = match fields.next() {
                None | Some("admin") => Role::Admin,
                Some("read") => Role::Read,
                Some(other) => {
                    return Err(ConfigError::InvalidRole {
                        path: PathBuf::new(),
                        line: line_no,
                        role: truncate(other, 32),
                    });
                }
            };
            let name = fields
                .next()
                .map(str::to_string)
                .unwrap_or_else(|| format!("token-{line_no}"));
            if fields.next().is_some() {
                return Err(ConfigError::Syntax {
                    path: PathBuf::new(),
                    line: line_no,
                    reason: "expected `TOKEN [ROLE [NAME]]`",
                });
            }
            if token.len() < MIN_TOKEN_LEN {
                tracing::warn!(line = line_no, name = %name, "API token is shorter than {MIN_TOKEN_LEN} bytes");
            }
            let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            if entries.iter().any(|e| e.digest == digest) {
                return Err(ConfigError::Syntax {
                    path: PathBuf::new(),
                    line: line_no,
                    reason: "duplicate token",
                });
            }
            entries.push(TokenEntry { digest, role, name });
        }
        Ok(Tokens { entries })
    }

    /// Builds tokens in code (tests, embedding): `(token, role, name)`.
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = (&'a str, Role, &'a str)>) -> Tokens {
        Tokens {
            entries: entries
                .into_iter()
                .map(|(t, role, name)| TokenEntry {
                    digest: Sha256::digest(t.as_bytes()).into(),
                    role,
                    name: name.to_string(),
                })
                .collect(),
        }
    }

    /// The principal a presented token identifies. Compares against every configured token in
    /// constant time.
    pub fn authenticate(&self, presented: &str) -> Option<Principal> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found: Option<&TokenEntry> = None;
        for entry in &self.entries {
            let eq: bool = entry.digest.ct_eq(&digest).into();
            if eq && found.is_none() {
                found = Some(entry);
            }
        }
        found.map(|e| Principal {
            name: e.name.clone(),
            role: e.role,
        })
    }
}

/// Webhook secrets: one shared by all forges and/or one per forge (a per-forge secret wins).
#[derive(Clone, Debug, Default)]
pub struct WebhookSecrets {
    /// Used for every forge without its own secret.
    pub shared: Option<Secret>,
    /// Per-forge secrets.
    pub per_forge: HashMap<Forge, Secret>,
}

impl WebhookSecrets {
    /// Reads a shared secret from a file; surrounding whitespace (a trailing newline) is
    /// stripped. An empty secret is an error.
    pub fn load_shared(path: &Path) -> Result<Self, ConfigError> {
        Ok(WebhookSecrets {
            shared: Some(load_secret(path)?),
            per_forge: HashMap::new(),
        })
    }

    /// A shared secret given in code.
    pub fn shared(secret: impl Into<Vec<u8>>) -> Self {
        WebhookSecrets {
            shared: Some(Secret::new(secret)),
            per_forge: HashMap::new(),
        }
    }

    /// Adds a per-forge secret.
    pub fn with_forge(mut self, forge: Forge, secret: impl Into<Vec<u8>>) -> Self {
        self.per_forge.insert(forge, Secret::new(secret));
        self
    }

    /// The secret that applies to `forge`, if any.
    pub fn for_forge(&self, forge: Forge) -> Option<&Secret> {
        self.per_forge.get(&forge).or(self.shared.as_ref())
    }
}

/// Reads a secret file (trimmed; empty is an error).
pub fn load_secret(path: &Path) -> Result<Secret, ConfigError> {
    let text = read_file(path)?;
    warn_if_world_readable(path);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ConfigError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(Secret::new(trimmed.as_bytes().to_vec()))
}

/// An error loading tokens or secrets. Messages name the file and line, never its content.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not UTF-8.
    #[error("{} is not valid UTF-8", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
    /// The file holds no token or secret.
    #[error("{} contains no token or secret", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A role other than `admin` or `read`.
    #[error("{}:{line}: unknown role {role:?} (expected admin or read)", path.display())]
    InvalidRole {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The role given.
        role: String,
    },
    /// A malformed line.
    #[error("{}:{line}: {reason}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

impl ConfigError {
    fn with_path(self, p: &Path) -> Self {
        match self {
            ConfigError::InvalidRole { line, role, .. } => ConfigError::InvalidRole {
                path: p.to_path_buf(),
                line,
                role,
            },
            ConfigError::Syntax { line, reason, .. } => ConfigError::Syntax {
                path: p.to_path_buf(),
                line,
                reason,
            },
            other => other,
        }
    }
}

fn read_file(path: &Path) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| ConfigError::NotUtf8 {
        path: path.to_path_buf(),
    })
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(unix)]
fn warn_if_world_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o004 != 0
    {
        tracing::warn!(path = %path.display(), "secret file is readable by other users; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_world_readable(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_token_file() {
        let t = Tokens::parse("# comment\n\nadmintoken-123456\nreadtoken-1234567 read ci\n  x admin ops  \n").unwrap();
        assert_eq!(t.entries.len(), 3);
        assert_eq!(
            t.authenticate("admintoken-123456"),
            Some(Principal {
                name: "token-3".into(),
                role: Role::Admin
            })
        );
        assert_eq!(
            t.authenticate("readtoken-1234567"),
            Some(Principal {
                name: "ci".into(),
                role: Role::Read
            })
        );
        assert_eq!(
            t.authenticate("x"),
            Some(Principal {
                name: "ops".into(),
                role: Role::Admin
            })
        );
        assert_eq!(t.authenticate("readtoken-123456"), None);
        assert_eq!(t.authenticate(""), None);
    }

    #[test]
    fn rejects_bad_lines_without_echoing_tokens() {
        let e = Tokens::parse("supersecret owner").err().unwrap();
        assert!(matches!(e, ConfigError::InvalidRole { line: 1, .. }));
        let e = Tokens::parse("supersecret read a b").err().unwrap();
        assert!(!e.to_string().contains("supersecret"));
        let e = Tokens::parse("supersecret\nsupersecret read").err().unwrap();
        assert!(!e.to_string().contains("supersecret"), "{e}");
    }

    #[test]
    fn load_errors_and_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokens");
        std::fs::write(&p, "# nothing\n").unwrap();
        assert!(matches!(Tokens::load(&p), Err(ConfigError::Empty { .. })));
        std::fs::write(&p, "abcdefabcdefabcdef read\n").unwrap();
        let t = Tokens::load(&p).unwrap();
        assert!(t.is_configured());
        assert!(!format!("{t:?}").contains("abcdef"));
        assert!(Tokens::load(&dir.path().join("missing")).is_err());
        std::fs::write(&p, "  s3cret\n\n").unwrap();
        let s = WebhookSecrets::load_shared(&p).unwrap();
        assert_eq!(s.for_forge(Forge::GitHub).unwrap().expose(), b"s3cret");
        assert_eq!(format!("{s:?}").matches("s3cret").count(), 0);
        std::fs::write(&p, "\n \n").unwrap();
        assert!(WebhookSecrets::load_shared(&p).is_err());
    }

    #[test]
    fn per_forge_secret_wins() {
        let s = WebhookSecrets::shared("a").with_forge(Forge::GitLab, "b");
        assert_eq!(s.for_forge(Forge::GitHub).unwrap().expose(), b"a");
        assert_eq!(s.for_forge(Forge::GitLab).unwrap().expose(), b"b");
        assert!(WebhookSecrets::default().for_forge(Forge::GitHub).is_none());
    }

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq_digest(b"abc", b"abc"));
        assert!(!ct_eq_digest(b"abc", b"abd"));
        assert!(!ct_eq_digest(b"abc", b"abcd"));
        assert!(!ct_eq_digest(b"", b"a"));
        assert!(ct_eq_digest(b"", b""));
        assert!(Secret::new("tok").matches(b"tok"));
        assert!(!Secret::new("tok").matches(b"to"));
    }
}

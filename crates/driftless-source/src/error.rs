//! Errors, classified by what the engine should do next.

use std::path::PathBuf;
use std::time::Duration;

/// What the engine should do with a [`SourceError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Transient (network, timeout, server error): retry soon with backoff.
    Retryable,
    /// Credentials missing, wrong or rejected: wait for the user to fix them.
    Auth,
    /// The ref, commit, path or repository does not exist: wait for a change in Git or the spec.
    NotFound,
    /// The repository content or the request is refused (unsafe path, symlink escape, size
    /// limit, bad URL): stalled until someone changes it.
    Refused,
    /// Anything else (local I/O, corrupt cache): retry later, and alert if it persists.
    Internal,
}

/// An error from the Git source. Messages never contain credentials: URLs are shown through
/// [`crate::redact_url`] and messages from git and gix are scrubbed of known secrets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The URL cannot be used.
    #[error("invalid repository URL {url}: {reason}")]
    InvalidUrl {
        /// Redacted URL.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The server rejected the credentials, or asked for credentials that were not configured.
    #[error("authentication failed for {url}: {hint}")]
    Auth {
        /// Redacted URL.
        url: String,
        /// What to check, e.g. "check DRIFTLESS_GIT_PASSWORD_FILE".
        hint: String,
    },
    /// Could not reach the server or the transfer broke off.
    #[error("could not fetch {url}: {message}")]
    Network {
        /// Redacted URL.
        url: String,
        /// Scrubbed transport message.
        message: String,
    },
    /// The fetch did not finish in time.
    #[error("fetching {url} timed out after {}s{}", after.as_secs(), if *waiting_for_lock { " (waiting for another fetch of the same repository)" } else { "" })]
    Timeout {
        /// Redacted URL.
        url: String,
        /// The configured timeout.
        after: Duration,
        /// Whether the time ran out while another fetch of the same URL held the lock.
        waiting_for_lock: bool,
    },
    /// The repository does not exist at that URL (or is not readable).
    #[error("repository {url} not found: {message}")]
    RepositoryNotFound {
        /// Redacted URL.
        url: String,
        /// Scrubbed message from the transport.
        message: String,
    },
    /// [`crate::GitCache::resolve`] or a read was called before a successful fetch.
    #[error("repository {url} has not been fetched yet; call fetch first")]
    NotFetched {
        /// Redacted URL.
        url: String,
    },
    /// No branch, tag, commit or semver-matching tag for the requested ref.
    #[error("{}", ref_not_found_message(requested, url, branches, tags, reason.as_deref()))]
    RefNotFound {
        /// The ref as written by the user.
        requested: String,
        /// Redacted URL.
        url: String,
        /// Up to 5 branch names, closest to the request first.
        branches: Vec<String>,
        /// Up to 5 tag names, closest to the request first.
        tags: Vec<String>,
        /// Extra detail, e.g. "no tag matches the semver range".
        reason: Option<String>,
    },
    /// A path does not exist in the tree of the commit.
    #[error("path '{path}' not found at commit {commit} of {url}")]
    PathNotFound {
        /// Redacted URL.
        url: String,
        /// Commit id.
        commit: String,
        /// Requested path.
        path: String,
    },
    /// A requested path is absolute, contains `..`, or a tree entry has an unsafe name.
    #[error("unsafe path '{path}': {reason}")]
    UnsafePath {
        /// The path as given (or the tree entry's path).
        path: String,
        /// Why it was refused.
        reason: String,
    },
    /// A symlink in the repository points outside the repository root (or is absolute).
    #[error("symlink '{file}' points outside the repository (target '{target}'); refusing to read it")]
    SymlinkEscape {
        /// Path of the symlink in the repository.
        file: String,
        /// Its target, as stored.
        target: String,
    },
    /// Symlinks that form a loop or chain too long to follow.
    #[error("symlink '{file}' could not be resolved: {reason}")]
    SymlinkLoop {
        /// Path of the symlink in the repository.
        file: String,
        /// Why.
        reason: String,
    },
    /// A single file is larger than the configured limit.
    #[error("file '{file}' is {size} bytes, larger than the limit of {limit} bytes")]
    FileTooLarge {
        /// Path in the repository.
        file: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The files under a path add up to more than the configured limit.
    #[error(
        "files under '{path}' exceed the total limit of {limit} bytes (or {max_files} files); refusing to materialize"
    )]
    TotalTooLarge {
        /// Requested path.
        path: String,
        /// Byte limit.
        limit: u64,
        /// File count limit.
        max_files: usize,
    },
    /// Credentials could not be loaded (missing env var file, unreadable key).
    #[error("invalid credentials configuration: {0}")]
    Credentials(String),
    /// The cached mirror or an object in it could not be read.
    #[error("git error for {url}: {message}")]
    Git {
        /// Redacted URL.
        url: String,
        /// Scrubbed message.
        message: String,
    },
    /// Local filesystem error.
    #[error("I/O error at {}: {source}", path.display())]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

fn ref_not_found_message(
    requested: &str,
    url: &str,
    branches: &[String],
    tags: &[String],
    reason: Option<&str>,
) -> String {
    let mut m = format!("ref '{requested}' not found in {url}");
    if let Some(r) = reason {
        m.push_str(": ");
        m.push_str(r);
    }
    let list = |v: &[String]| {
        if v.is_empty() {
            "(none)".to_string()
        } else {
            v.join(", ")
        }
    };
    m.push_str(&format!("; branches: {}; tags: {}", list(branches), list(tags)));
    m
}

impl SourceError {
    /// What the engine should do next.
    pub fn class(&self) -> ErrorClass {
        match self {
            SourceError::Network { .. } | SourceError::Timeout { .. } => ErrorClass::Retryable,
            SourceError::Auth { .. } | SourceError::Credentials(_) => ErrorClass::Auth,
            SourceError::RepositoryNotFound { .. }
            | SourceError::NotFetched { .. }
            | SourceError::RefNotFound { .. }
            | SourceError::PathNotFound { .. } => ErrorClass::NotFound,
            SourceError::InvalidUrl { .. }
            | SourceError::UnsafePath { .. }
            | SourceError::SymlinkEscape { .. }
            | SourceError::SymlinkLoop { .. }
            | SourceError::FileTooLarge { .. }
            | SourceError::TotalTooLarge { .. } => ErrorClass::Refused,
            SourceError::Git { .. } | SourceError::Io { .. } => ErrorClass::Internal,
        }
    }

    /// Network trouble or a timeout: worth retrying soon.
    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Retryable
    }

    /// Credentials are missing, invalid or rejected.
    pub fn is_auth(&self) -> bool {
        self.class() == ErrorClass::Auth
    }

    /// A ref, commit, path or repository does not exist.
    pub fn is_not_found(&self) -> bool {
        self.class() == ErrorClass::NotFound
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> SourceError {
        SourceError::Io {
            path: path.into(),
            source,
        }
    }
}

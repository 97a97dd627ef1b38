//! The render error type.
//!
//! Every variant names *where* the problem is (a path relative to the repository root, with a
//! line where one is known) and its message ends with what to do about it. Errors never embed
//! file contents: a secret in a broken manifest must not reach a log through an error message.
//! Kustomize's stderr is the one exception we cannot fully control; it is truncated and URL
//! credentials are masked (see the `kustomize` module).

use std::path::PathBuf;

/// What the caller should do after a render failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// A transient condition (I/O, a tool that timed out or is missing): retrying the same
    /// revision may succeed.
    RetrySoon,
    /// The repository content is wrong or refused: the same revision will fail the same way, so
    /// wait for a new commit.
    WaitForChange,
}

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The application path is absolute, contains `..`, or otherwise cannot name a place
    /// inside the repository.
    #[error("invalid application path `{path}`: {reason}; use a relative path inside the repository without `..`")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Why it was refused.
        reason: String,
    },

    /// A file or directory resolves (through `..` or a symlink) to a place outside the
    /// repository root.
    #[error(
        "{file}: resolves outside the repository ({reason}); refusing to read it — keep every referenced file and symlink target inside the repository"
    )]
    OutsideRepository {
        /// Where the reference was found, relative to the repository root (with `:line` or
        /// a kustomization field when known).
        file: String,
        /// What escaped (the symlink or reference and, where safe, its target).
        reason: String,
    },

    /// The application path or a referenced file does not exist.
    #[error("{file}: not found{hint}")]
    NotFound {
        /// Path relative to the repository root.
        file: String,
        /// Extra advice, empty or starting with `; `.
        hint: String,
    },

    /// Reading a file or directory failed.
    #[error("{file}: cannot read: {source}; check the checkout is complete and readable")]
    Io {
        /// Path relative to the repository root (or the cache file).
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// One file is larger than [`crate::RenderOptions::max_file_bytes`].
    #[error("{file}: {size} bytes exceeds the per-file limit of {limit} bytes; split the file or raise the limit")]
    FileTooLarge {
        /// Path relative to the repository root.
        file: String,
        /// Observed size.
        size: u64,
        /// Configured limit.
        limit: u64,
    },

    /// The files read so far add up to more than [`crate::RenderOptions::max_total_bytes`].
    #[error(
        "{file}: reading this file brings the total to {total} bytes, over the limit of {limit} bytes; narrow the application path or raise the limit"
    )]
    TotalTooLarge {
        /// The file that crossed the limit.
        file: String,
        /// Total bytes including that file.
        total: u64,
        /// Configured limit.
        limit: u64,
    },

    /// A manifest is not valid UTF-8.
    #[error("{file}: not valid UTF-8; manifests must be UTF-8 text")]
    NotUtf8 {
        /// Path relative to the repository root.
        file: String,
    },

    /// YAML or JSON could not be parsed (syntax, duplicate keys, alias bombs and other budget
    /// breaches).
    #[error("{file}:{line}:{column}: {message}; fix the document")]
    Syntax {
        /// Path relative to the repository root, or `kustomize:<path>`.
        file: String,
        /// 1-based line, 0 when unknown.
        line: usize,
        /// 1-based column, 0 when unknown.
        column: usize,
        /// The parser's message (without source excerpts).
        message: String,
    },

    /// A document with `apiVersion` and `kind` that is not a valid object (no
    /// `metadata.name`, wrong field types, a `List` without `items`).
    #[error("{file}:{line}: {kind}: {reason}")]
    InvalidObject {
        /// Path relative to the repository root, or `kustomize:<path>`.
        file: String,
        /// 1-based line of the document (or document index for kustomize output).
        line: usize,
        /// The document's kind, for orientation.
        kind: String,
        /// What is wrong and what to do.
        reason: String,
    },

    /// Two documents declare the same object.
    #[error(
        "{object} is declared twice, at {first} and at {second}; remove one of them (or give one of them another name or namespace)"
    )]
    DuplicateObject {
        /// `Kind/namespace/name`.
        object: String,
        /// Origin of the first declaration.
        first: String,
        /// Origin of the second declaration.
        second: String,
    },

    /// A directory holds a kustomization but Kustomize is disabled.
    #[error(
        "{dir}: contains a kustomization but Kustomize rendering is disabled; enable Kustomize for this application or remove the kustomization file"
    )]
    KustomizeDisabled {
        /// Directory relative to the repository root.
        dir: String,
    },

    /// A kustomization refers to a remote base while remote bases are not allowed.
    #[error(
        "{file}: {field} entry `{entry}` is a remote reference; remote bases are disabled — vendor it into the repository or allow remote bases for this application"
    )]
    RemoteRefused {
        /// The kustomization file, relative to the repository root.
        file: String,
        /// The field (`resources`, `components`, ...).
        field: String,
        /// The entry, with any credentials masked.
        entry: String,
    },

    /// A kustomization asks for something driftless never runs: Helm inflation or
    /// exec/container/external plugins.
    #[error("{file}: {what} is not allowed; {advice}")]
    PluginRefused {
        /// The file, relative to the repository root.
        file: String,
        /// What was found.
        what: String,
        /// What to do instead.
        advice: String,
    },

    /// The kustomization graph references itself.
    #[error("kustomization cycle: {chain}; break the loop (a base must not include its overlay)")]
    KustomizeCycle {
        /// The chain of directories, ` -> `-separated, ending with the repeated one.
        chain: String,
    },

    /// The kustomization graph is nested more deeply than allowed.
    #[error("kustomization nesting deeper than {limit} levels at {dir}; flatten the bases (chain: {chain})")]
    KustomizeTooDeep {
        /// Directory where the limit was crossed.
        dir: String,
        /// The limit.
        limit: usize,
        /// The chain of directories leading there.
        chain: String,
    },

    /// A kustomization file itself is malformed.
    #[error("{file}: invalid kustomization: {reason}")]
    InvalidKustomization {
        /// The kustomization file, relative to the repository root.
        file: String,
        /// What is wrong and what to do.
        reason: String,
    },

    /// Neither `kustomize` nor `kubectl` is on `PATH`.
    #[error("{dir}: neither `kustomize` nor `kubectl` was found on PATH; install one of them on the driftless host")]
    KustomizeMissing {
        /// Directory relative to the repository root.
        dir: String,
    },

    /// The Kustomize process failed.
    #[error("{dir}: `{tool}` failed ({status}): {stderr}")]
    KustomizeFailed {
        /// Directory relative to the repository root.
        dir: String,
        /// The command line that ran (`kustomize build` or `kubectl kustomize`).
        tool: String,
        /// Exit status description.
        status: String,
        /// The tool's stderr, truncated, credentials masked.
        stderr: String,
    },

    /// The Kustomize process ran out of time and was killed.
    #[error(
        "{dir}: `{tool}` did not finish within {timeout:?} and was killed; simplify the kustomization or raise the render timeout"
    )]
    KustomizeTimeout {
        /// Directory relative to the repository root.
        dir: String,
        /// The command line that ran.
        tool: String,
        /// The timeout.
        timeout: std::time::Duration,
    },

    /// The Kustomize output exceeded the total size limit.
    #[error(
        "{dir}: kustomize output exceeds {limit} bytes; the process was stopped — reduce the output or raise the total size limit"
    )]
    KustomizeOutputTooLarge {
        /// Directory relative to the repository root.
        dir: String,
        /// Configured limit.
        limit: u64,
    },

    /// Reading or writing the render cache failed.
    #[error("render cache {file}: {source}; check the cache directory is writable")]
    Cache {
        /// The cache file.
        file: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl RenderError {
    /// Whether retrying the same revision can help.
    pub fn next_step(&self) -> NextStep {
        match self {
            RenderError::Io { .. }
            | RenderError::KustomizeMissing { .. }
            | RenderError::KustomizeTimeout { .. }
            | RenderError::Cache { .. } => NextStep::RetrySoon,
            // A remote base can fail transiently (network), but we cannot tell from stderr;
            // the engine's normal interval retries it anyway.
            _ => NextStep::WaitForChange,
        }
    }
}

//! The crate's error type.
//!
//! One enum for the whole crate (see ARCHITECTURE.md §6). Every variant carries where the
//! problem is (`file:line`, the field path, or the object `Kind/ns/name`) so that the text can
//! be shown to a user as is. Variants are grouped by what should happen next: all of them are
//! *stalled until the input changes* (a fix in Git or in the app spec); none is worth retrying.
//!
//! Messages never quote values from Kubernetes objects (they could be Secret data); spec
//! messages may quote spec values, which are not secret.

use std::fmt;

use crate::object::{ObjectRef, Origin};

/// One problem found in an application spec, located to the line and the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as the caller named it.
    pub file: String,
    /// 1-based line; 0 when unknown.
    pub line: usize,
    /// Dotted field path, e.g. `spec.source.repoURL`; empty for document-level problems.
    pub field: String,
    /// What is wrong, e.g. `required`.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    /// `apps/web.yaml:7: spec.source.repoURL: required`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Errors of the driftless vocabulary crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The path as the caller named it.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A file is larger than the limit for its kind of content.
    #[error("{file}: file is {size} bytes, larger than the limit of {limit} bytes")]
    TooLarge {
        /// The file.
        file: String,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },

    /// The text is not valid YAML, or exceeds a parser budget (alias bombs, depth, size).
    #[error("{}: invalid YAML: {message}", located(file, *line))]
    Yaml {
        /// The file.
        file: String,
        /// 1-based line, 0 when unknown.
        line: usize,
        /// The parser's message (without a source snippet, which could show secret values).
        message: String,
    },

    /// One or more application specs are invalid; each diagnostic names file, line and field.
    #[error("{}", join_lines(diagnostics))]
    InvalidSpec {
        /// All problems found, in file order.
        diagnostics: Vec<Diagnostic>,
    },

    /// Two application specs use the same name.
    #[error("application {name:?} is defined twice: in {first} and in {second}; names must be unique")]
    DuplicateApplication {
        /// The application name.
        name: String,
        /// Where it is first defined.
        first: Origin,
        /// Where it is defined again.
        second: Origin,
    },

    /// A manifest document is not a Kubernetes object (no apiVersion, kind or metadata.name).
    #[error("{origin}: not a Kubernetes object: {reason}")]
    NotAnObject {
        /// The document.
        origin: Origin,
        /// What is missing.
        reason: String,
    },

    /// The desired set declares the same object twice.
    #[error("{object} is declared twice: at {first} and at {second}; remove one of them")]
    DuplicateObject {
        /// The object (boxed to keep `Result`s small).
        object: Box<ObjectRef>,
        /// First declaration.
        first: Origin,
        /// Second declaration.
        second: Origin,
    },

    /// A `driftless.dev/sync-wave` annotation is not an integer.
    #[error(
        "{origin}: {object}: annotation driftless.dev/sync-wave must be an integer such as \"-1\" or \"2\", got {value:?}"
    )]
    InvalidSyncWave {
        /// The object (boxed to keep `Result`s small).
        object: Box<ObjectRef>,
        /// Where it was declared.
        origin: Origin,
        /// The annotation value as written (annotations are never secret data).
        value: String,
    },
}

fn located(file: &str, line: usize) -> String {
    if line > 0 {
        format!("{file}:{line}")
    } else {
        file.to_owned()
    }
}

fn join_lines(diagnostics: &[Diagnostic]) -> String {
    let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

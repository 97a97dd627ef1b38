//! Errors of loading and evaluating policies.

use std::path::PathBuf;
use std::time::Duration;

/// Why policies could not be loaded or evaluated.
///
/// A violation is not an error: it is a [`crate::Violation`] in the [`crate::Report`]. Errors
/// are about the policies themselves (they do not parse, they fail at run time, they run too
/// long), and each names the policy and, at evaluation, the object.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A policy file or directory could not be read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A Rego module does not parse or does not compile (unsafe variables, unknown functions,
    /// conflicting rules). `policy` is the file name (or a baseline's name).
    #[error("policy {policy}: invalid Rego: {message}")]
    Rego {
        /// File or baseline name.
        policy: String,
        /// The parser's or compiler's message, with line and column.
        message: String,
    },
    /// A YAML policy file is not valid YAML.
    #[error("{file}: invalid YAML: {message}")]
    Yaml {
        /// The file.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// A Gatekeeper `ConstraintTemplate` is malformed or its Rego is broken.
    #[error("{file}: ConstraintTemplate {template}: {message}")]
    Template {
        /// The file holding the template.
        file: String,
        /// `metadata.name` of the template (or `?` when it has none).
        template: String,
        /// What is wrong.
        message: String,
    },
    /// A Gatekeeper constraint is malformed, or no loaded template defines its kind.
    #[error("{file}: constraint {kind}/{name}: {message}")]
    Constraint {
        /// The file holding the constraint.
        file: String,
        /// The constraint's kind (the template's `spec.crd.spec.names.kind`).
        kind: String,
        /// `metadata.name` of the constraint.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// [`crate::PolicySet::add_baseline`] was given a name that is not a baseline policy.
    #[error("unknown baseline policy {name:?}; known: {}", crate::PolicySet::baseline_names().join(", "))]
    UnknownBaseline {
        /// The name asked for.
        name: String,
    },
    /// A policy failed while evaluating one object (a builtin raised an error, a complete
    /// rule produced conflicting values, ...).
    #[error("policy {policy} failed on {object}: {message}")]
    Runtime {
        /// The policy (file, baseline name or `Kind/constraint`).
        policy: String,
        /// The object being evaluated (`Kind/ns/name`).
        object: String,
        /// The engine's message.
        message: String,
    },
    /// A policy ran longer than [`crate::Limits::timeout`] on one object.
    #[error("policy {policy} exceeded its evaluation limit of {limit:?} on {object}")]
    Timeout {
        /// The policy.
        policy: String,
        /// The object being evaluated.
        object: String,
        /// The limit in force.
        limit: Duration,
    },
}

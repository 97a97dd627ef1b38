//! Pure Kubernetes patch and apply machinery for kubesim.
//!
//! Everything here is a function over [`serde_json::Value`] with no I/O and
//! no clock (timestamps are passed in), so the HTTP server stays thin and
//! the semantics are unit-testable:
//!
//! * [`json_merge_patch`] (RFC 7386) and [`json_patch()`] (RFC 6902);
//! * [`strategic_merge_patch`] with the list semantics of built-in kinds;
//! * server-side apply ([`apply`]) and managed-fields tracking for other
//!   writes ([`record_update`]), producing `metadata.managedFields` in
//!   Kubernetes' exact `fieldsV1` form;
//! * [`FieldSet`] / [`fieldset_of`] / [`compare`] for callers that need to
//!   reason about field ownership themselves.
//!
//! List and map semantics come from a [`Schema`], looked up by the path of
//! field names (see [`schema`]). [`BuiltinSchema`] covers the built-in kinds'
//! merge keys; [`AtomicListsSchema`] treats every list as atomic (CRDs
//! without list-type annotations).
//!
//! Design notes:
//! * Field sets follow structured-merge-diff's model (members + children
//!   trie), because kubectl and kube-rs read `fieldsV1` and conflict
//!   messages verbatim; matching the model is simpler than emulating its
//!   output.
//! * Strategic merge patch uses the *first* key of an associative list as
//!   its merge key, as `patchMergeKey` does, while apply keys on all of
//!   them (`listMapKey`), e.g. container ports are merged by `containerPort`
//!   but owned as `k:{"containerPort":80,"protocol":"TCP"}`.
//!
//! # Example
//!
//! ```
//! use kubesim_patch::{apply, record_update, BuiltinSchema, ManagerOptions, Scope};
//! use serde_json::json;
//!
//! let schema = BuiltinSchema::for_kind("ConfigMap");
//! let opts = ManagerOptions { time: "2024-01-01T00:00:00Z", scope: Scope::WholeObject, schema: &schema };
//!
//! // POST by a client: the creator owns everything it wrote.
//! let mut live = json!({"apiVersion": "v1", "kind": "ConfigMap",
//!                       "metadata": {"name": "c"}, "data": {"a": "1"}});
//! record_update(None, &mut live, "kubectl-create", &opts).unwrap();
//!
//! // An apply that changes `data.a` conflicts unless forced.
//! let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap",
//!                  "metadata": {"name": "c"}, "data": {"a": "2"}});
//! let err = apply(Some(&live), &cfg, "driftless", false, &opts).unwrap_err();
//! assert_eq!(err.to_string(),
//!     r#"Apply failed with 1 conflict: conflict with "kubectl-create" using v1: .data.a"#);
//! let applied = apply(Some(&live), &cfg, "driftless", true, &opts).unwrap();
//! assert_eq!(applied["data"]["a"], "2");
//! assert_eq!(applied["metadata"]["managedFields"][0]["manager"], "driftless");
//! ```
//!
//! # Division of labour with the server
//!
//! The server decodes the request, strips `status` from main-resource apply
//! configurations (or passes [`Scope::MainResource`], which ignores it),
//! resets `status`/`spec` for main/status updates as the kind's strategy
//! requires, and sets server-owned metadata (`uid`, `resourceVersion`,
//! `generation`, `creationTimestamp`) *after* calling [`apply`] /
//! [`record_update`]; those fields are never part of field sets.
#![deny(missing_docs)]

mod fieldset;
mod json;
mod managed;
pub mod path;
pub mod schema;
mod smp;
mod typed;

pub use fieldset::{FieldSet, FieldsV1Error};
pub use json::{json_merge_patch, json_patch};
pub use managed::{
    ApplyError, BEFORE_FIRST_APPLY, Conflict, ConflictCause, LAST_APPLIED_ANNOTATION, ManagedFieldsEntry,
    ManagerOptions, Operation, Scope, apply, read_managed_fields, record_update, write_managed_fields,
};
pub use path::{FieldPath, PathElement};
pub use schema::{AtomicListsSchema, BuiltinSchema, KeyField, ListKind, MapKind, Schema};
pub use smp::strategic_merge_patch;
pub use typed::{Comparison, compare, fieldset_of};

/// Errors of the patch functions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The JSON patch document is not a list of valid operations.
    #[error("invalid JSON patch: {0}")]
    InvalidJsonPatch(String),
    /// A JSON patch operation failed (missing path, failed `test`, ...).
    #[error("JSON patch failed: {0}")]
    JsonPatchFailed(String),
    /// The strategic merge patch is malformed.
    #[error("invalid strategic merge patch: {0}")]
    InvalidPatch(String),
    /// A list item in a strategic merge patch lacks the list's merge key
    /// (kube-apiserver: `map: ... does not contain declared merge key`).
    #[error("list item at {path} does not contain declared merge key: {key}")]
    MissingMergeKey {
        /// Field path of the list.
        path: String,
        /// The merge key.
        key: String,
    },
}

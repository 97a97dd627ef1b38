//! What kubesim serves: the built-in resource types, and the defaulting, validation and
//! OpenAPI documents kube-apiserver applies to them.
//!
//! Pure data and functions over `serde_json::Value`; no I/O, no panics on any input.
//!
//! * [`kinds`] — the resource types served ([`ResourceType`], [`builtin_types`]).
//! * [`defaults`] — [`apply_defaults`], kube-apiserver's defaulting.
//! * [`validation`] — [`validate`] (create and update rules) and the 422 [`Invalid`] error.
//! * [`names`] — name, label and key syntax checks shared by validation and the server.
//! * [`openapi`] — the `/openapi/v3` index and group-version documents kubectl needs.

pub mod defaults;
pub mod kinds;
pub mod names;
pub mod openapi;
pub mod validation;

pub use defaults::apply_defaults;
pub use kinds::{ResourceType, builtin_types};
pub use openapi::{document_hash, openapi_v3_group_version, openapi_v3_index};
pub use validation::{Cause, CauseType, Invalid, validate};

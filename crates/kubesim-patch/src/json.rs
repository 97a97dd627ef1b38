//! RFC 7386 JSON merge patch and RFC 6902 JSON patch, via the `json-patch`
//! crate.

use serde_json::Value;

use crate::PatchError;

/// Applies an RFC 7386 JSON merge patch. Never fails: a non-object patch
/// replaces the document, `null` deletes keys, lists are replaced.
pub fn json_merge_patch(target: &Value, patch: &Value) -> Value {
    let mut doc = target.clone();
    json_patch::merge(&mut doc, patch);
    doc
}

/// Applies an RFC 6902 JSON patch (a list of operations). The patch is
/// atomic: on error the target is untouched (a new value is returned).
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| PatchError::InvalidJsonPatch(e.to_string()))?;
    let mut doc = target.clone();
    json_patch::patch(&mut doc, &ops).map_err(|e| PatchError::JsonPatchFailed(e.to_string()))?;
    Ok(doc)
}

//! `values.schema.json`: the coalesced values of a chart and of each subchart are checked
//! against their chart's JSON Schema before anything renders, as Helm's
//! `ValidateAgainstSchema` does.
//!
//! One deliberate difference: Helm fetches `$ref`s to `http(s)://` URLs while rendering;
//! driftless never lets a chart make the renderer fetch URLs (THREATS.md), so a schema whose
//! references are not inside the document fails with a message saying so.

use serde_json::Value as J;

use crate::chart::Chart;

/// Checks `values` against `chart`'s schema and, recursively, each subchart's values against
/// its own. The error lists every failing chart as Helm does (`NAME:\n- at '/path': …`).
pub fn validate(chart: &Chart, values: &J) -> Result<(), String> {
    let mut report = String::new();
    validate_into(chart, values, &mut report, 0);
    if report.is_empty() { Ok(()) } else { Err(report) }
}

fn validate_into(chart: &Chart, values: &J, report: &mut String, depth: usize) {
    if depth > crate::chart::MAX_CHART_DEPTH {
        return;
    }
    if let Some(schema) = &chart.schema
        && let Err(e) = validate_one(values, schema)
    {
        report.push_str(&format!("{}:\n{e}", chart.metadata.name));
    }
    for sub in &chart.dependencies {
        match values.get(&sub.metadata.name) {
            None | Some(J::Null) => {}
            Some(v @ J::Object(_)) => validate_into(sub, v, report, depth + 1),
            Some(other) => report.push_str(&format!(
                "{}:\ninvalid type for values: expected object (map), got {}\n",
                sub.metadata.name,
                crate::chart::json_to_value(other).type_name()
            )),
        }
    }
}

fn validate_one(values: &J, schema: &[u8]) -> Result<(), String> {
    let schema: J =
        serde_json::from_slice(schema).map_err(|e| format!("- values.schema.json is not valid JSON: {e}\n"))?;
    let validator = jsonschema::options().build(&schema).map_err(|e| {
        format!("- values.schema.json cannot be used: {e} (references outside the schema document are not fetched)\n")
    })?;
    let mut out = String::new();
    for err in validator.iter_errors(values) {
        let path = err.instance_path().to_string();
        out.push_str(&format!(
            "- at '{}': {}\n",
            if path.is_empty() { "" } else { &path },
            err
        ));
    }
    if out.is_empty() { Ok(()) } else { Err(out) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_errors_name_the_chart_and_path() {
        let schema = br#"{"type":"object","properties":{"replicas":{"type":"integer"}},"required":["image"]}"#;
        assert!(validate_one(&json!({"replicas": 3.0, "image": "x"}), schema).is_ok());
        let e = validate_one(&json!({"replicas": "three"}), schema).unwrap_err();
        assert!(e.contains("- at '/replicas'"), "{e}");
        assert!(e.contains("image"), "{e}");
        let e = validate_one(&json!({}), br#"{"$ref":"https://example.com/s.json"}"#).unwrap_err();
        assert!(e.contains("not fetched"), "{e}");
    }
}

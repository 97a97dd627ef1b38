//! Values: how Helm combines a chart's defaults with what the user supplies, turns
//! dependencies on and off (`condition`, `tags`), renames them (`alias`) and imports their
//! values (`import-values`).
//!
//! This follows Helm's `chartutil` coalescing (`CoalesceValues`, `MergeValues`,
//! `coalesceGlobals`, `coalesceTablesFullKey`) and `ProcessDependencies` rule by rule,
//! including `null` deleting a default and `global` flowing into every subchart. It works on
//! JSON data (`serde_json::Value`), where Go works on `map[string]interface{}`: a JSON `null`
//! is Go's `nil`, an integer number is an `int64` (from `--set`), a float a `float64`.

use serde_json::{Map, Value as J};

use crate::chart::{Chart, Dependency};
use crate::sprig::semver;

/// The key of global values.
pub const GLOBAL_KEY: &str = "global";

fn table(v: &J) -> Option<&Map<String, J>> {
    v.as_object()
}

/// `CoalesceValues(chart, vals)`: user values over the chart's defaults, recursively into
/// subcharts; a `null` in the user values deletes the default.
pub fn coalesce_values(chart: &Chart, vals: &J) -> J {
    let mut dest = match vals {
        J::Object(m) => m.clone(),
        _ => Map::new(),
    };
    coalesce(chart, &mut dest, false);
    J::Object(dest)
}

/// `MergeValues`: as [`coalesce_values`] but `null`s are kept (used for import-values).
pub fn merge_values(chart: &Chart, vals: &J) -> J {
    let mut dest = match vals {
        J::Object(m) => m.clone(),
        _ => Map::new(),
    };
    coalesce(chart, &mut dest, true);
    J::Object(dest)
}

fn coalesce(chart: &Chart, dest: &mut Map<String, J>, merge: bool) {
    coalesce_chart_values(chart, dest, merge);
    coalesce_deps(chart, dest, merge);
}

fn coalesce_deps(chart: &Chart, dest: &mut Map<String, J>, merge: bool) {
    for sub in &chart.dependencies {
        let name = sub.metadata.name.clone();
        match dest.get(&name) {
            None => {
                dest.insert(name.clone(), J::Object(Map::new()));
            }
            Some(J::Object(_)) => {}
            // Helm returns an error "type mismatch on NAME" here; the subchart then sees no
            // values of its own. Keep the user's value and skip the subchart's coalescing.
            Some(_) => continue,
        }
        let parent_globals = dest.get(GLOBAL_KEY).cloned();
        if let Some(J::Object(sub_vals)) = dest.get_mut(&name) {
            coalesce_globals(sub_vals, parent_globals.as_ref());
            coalesce(sub, sub_vals, merge);
        }
    }
}

/// Copies the parent's globals into the subchart's `global`, the subchart's own globals
/// winning for plain values and tables merged.
fn coalesce_globals(dest: &mut Map<String, J>, src_globals: Option<&J>) {
    let mut dg = match dest.get(GLOBAL_KEY) {
        None => Map::new(),
        Some(J::Object(m)) => m.clone(),
        Some(_) => return,
    };
    let sg = match src_globals {
        None => Map::new(),
        Some(J::Object(m)) => m.clone(),
        Some(_) => return,
    };
    for (key, val) in sg {
        if let J::Object(vv) = &val {
            let mut vv = vv.clone();
            match dg.get(&key) {
                None => {
                    dg.insert(key, J::Object(vv));
                }
                Some(J::Object(destv)) => {
                    // Helm: coalesceTablesFullKey(vv, destv, merge=true), then dg[key] = vv: the
                    // parent's table is the base and the child's entries fill gaps only.
                    let destv = destv.clone();
                    coalesce_tables(&mut vv, destv, true);
                    dg.insert(key, J::Object(vv));
                }
                Some(_) => {}
            }
        } else if matches!(dg.get(&key), Some(J::Object(_))) {
            // key is a table in the subchart: skipped
        } else {
            dg.insert(key, val);
        }
    }
    dest.insert(GLOBAL_KEY.to_string(), J::Object(dg));
}

fn coalesce_chart_values(chart: &Chart, v: &mut Map<String, J>, merge: bool) {
    let Some(defaults) = table(&chart.values) else {
        return;
    };
    for (key, val) in defaults.clone() {
        match v.get_mut(&key) {
            Some(value) => {
                if value.is_null() && !merge {
                    v.remove(&key);
                } else if let J::Object(dest) = value {
                    if let J::Object(mut src) = val {
                        let merge = merge || chart.dependencies.iter().any(|d| d.metadata.name == key);
                        if !merge {
                            clean_nil_values(&mut src);
                        }
                        coalesce_tables(dest, src, merge);
                    }
                }
            }
            None => {
                if !merge {
                    if val.is_null() {
                        continue;
                    }
                    let mut val = val;
                    if let J::Object(sub) = &mut val {
                        clean_nil_values(sub);
                    }
                    v.insert(key, val);
                } else {
                    v.insert(key, val);
                }
            }
        }
    }
}

/// `coalesceTablesFullKey(dst, src, merge)`: fills `dst` from `src` where `dst` has nothing;
/// tables recurse; a `null` in `dst` deletes (unless merging).
pub fn coalesce_tables(dst: &mut Map<String, J>, mut src: Map<String, J>, merge: bool) {
    let src_non_nil: std::collections::HashSet<String> =
        src.iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k.clone()).collect();
    for (key, val) in dst.iter() {
        if val.is_null() {
            src.insert(key.clone(), J::Null);
        }
    }
    for (key, val) in src {
        match dst.get_mut(&key) {
            Some(dv) if !merge && dv.is_null() && src_non_nil.contains(&key) => {
                dst.remove(&key);
            }
            None => {
                dst.insert(key, val);
            }
            Some(dv) => {
                if let J::Object(sv) = val {
                    if let J::Object(dvm) = dv {
                        coalesce_tables(dvm, sv, merge);
                    }
                }
            }
        }
    }
}

fn clean_nil_values(m: &mut Map<String, J>) {
    m.retain(|_, v| !v.is_null());
    for v in m.values_mut() {
        if let J::Object(sub) = v {
            clean_nil_values(sub);
        }
    }
}

/// A value at a dotted path (`a.b.c`), as Helm's `Values.PathValue` (only non-table leaves).
fn path_value<'a>(vals: &'a J, path: &str) -> Option<&'a J> {
    let mut cur = vals;
    for part in path.split('.') {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

/// A table at a dotted path, as Helm's `Values.Table`.
fn path_table<'a>(vals: &'a J, path: &str) -> Option<&'a Map<String, J>> {
    path_value(vals, path)?.as_object()
}

/// Whether `version` satisfies `constraint` (Helm's `IsCompatibleRange`); an empty or invalid
/// constraint or version is not compatible.
pub fn is_compatible_range(constraint: &str, version: &str) -> bool {
    let Ok(v) = semver::parse_version(version) else {
        return false;
    };
    let Ok(c) = semver::parse_constraints(constraint) else {
        return false;
    };
    c.check(&v)
}

/// `ProcessDependencies`: enables/disables subcharts by `condition` and `tags` against the
/// coalesced values (aliases applied), then imports values. Warnings (non-bool conditions,
/// missing import tables) are appended to `warnings`.
pub fn process_dependencies(chart: &mut Chart, vals: &J, warnings: &mut Vec<String>) {
    process_enabled(chart, vals, "", warnings);
    process_import_values_rec(chart, warnings);
}

fn process_enabled(chart: &mut Chart, vals: &J, path: &str, warnings: &mut Vec<String>) {
    if chart.metadata.dependencies.is_empty() {
        return;
    }
    // Subcharts present in charts/ but not declared stay as they are.
    let existing = std::mem::take(&mut chart.dependencies);
    let mut deps: Vec<Chart> = existing
        .iter()
        .filter(|c| {
            !chart
                .metadata
                .dependencies
                .iter()
                .any(|r| c.metadata.name == r.name && is_compatible_range(&r.version, &c.metadata.version))
        })
        .cloned()
        .collect();
    for req in &mut chart.metadata.dependencies {
        if let Some(found) = existing
            .iter()
            .find(|c| c.metadata.name == req.name && is_compatible_range(&req.version, &c.metadata.version))
        {
            let mut out = found.clone();
            if !req.alias.is_empty() {
                out.metadata.name = req.alias.clone();
            }
            deps.push(out);
        }
        if !req.alias.is_empty() {
            req.name = req.alias.clone();
        }
    }
    chart.dependencies = deps;
    for r in &mut chart.metadata.dependencies {
        r.enabled = true;
    }
    let cvals = coalesce_values(chart, vals);
    process_tags(&mut chart.metadata.dependencies, &cvals, warnings);
    process_conditions(&mut chart.metadata.dependencies, &cvals, path, warnings);
    let disabled: Vec<String> = chart
        .metadata
        .dependencies
        .iter()
        .filter(|r| !r.enabled)
        .map(|r| r.name.clone())
        .collect();
    chart.dependencies.retain(|c| !disabled.contains(&c.metadata.name));
    chart.metadata.dependencies.retain(|r| !disabled.contains(&r.name));
    for sub in &mut chart.dependencies {
        let subpath = format!("{path}{}.", sub.metadata.name);
        process_enabled(sub, &cvals, &subpath, warnings);
    }
}

fn process_tags(reqs: &mut [Dependency], cvals: &J, warnings: &mut Vec<String>) {
    let Some(tags) = path_table(cvals, "tags") else {
        return;
    };
    for r in reqs {
        let (mut has_true, mut has_false) = (false, false);
        for k in &r.tags {
            match tags.get(k) {
                Some(J::Bool(true)) => has_true = true,
                Some(J::Bool(false)) => has_false = true,
                Some(_) => warnings.push(format!("tag {k:?} of dependency {}: not a boolean, ignored", r.name)),
                None => {}
            }
        }
        if !has_true && has_false {
            r.enabled = false;
        } else {
            r.enabled = true;
        }
    }
}

fn process_conditions(reqs: &mut [Dependency], cvals: &J, path: &str, warnings: &mut Vec<String>) {
    for r in reqs {
        for cond in r.condition.trim().split(',') {
            if cond.is_empty() {
                continue;
            }
            match path_value(cvals, &format!("{path}{cond}")) {
                Some(J::Bool(b)) => {
                    r.enabled = *b;
                    break;
                }
                Some(J::Object(_)) | None => {}
                Some(_) => warnings.push(format!(
                    "condition {cond:?} of dependency {}: not a boolean, ignored",
                    r.name
                )),
            }
        }
    }
}

fn process_import_values_rec(chart: &mut Chart, warnings: &mut Vec<String>) {
    for d in &mut chart.dependencies {
        process_import_values_rec(d, warnings);
    }
    process_import_values(chart, warnings);
}

/// Nests `data` under a dotted `path` (`.` is the root).
fn path_to_map(path: &str, data: Map<String, J>) -> Map<String, J> {
    if path == "." {
        return data;
    }
    let mut cur = data;
    for part in path.split('.').rev() {
        let mut m = Map::new();
        m.insert(part.to_string(), J::Object(cur));
        cur = m;
    }
    cur
}

fn process_import_values(chart: &mut Chart, warnings: &mut Vec<String>) {
    if chart.metadata.dependencies.is_empty() {
        return;
    }
    let cvals = merge_values(chart, &J::Null);
    let mut b = Map::new();
    for r in &chart.metadata.dependencies {
        for iv in &r.import_values {
            let (child, parent) = match iv {
                J::Object(m) => (go_sprint(m.get("child")), go_sprint(m.get("parent"))),
                J::String(s) => (format!("exports.{s}"), ".".to_string()),
                _ => continue,
            };
            match path_table(&cvals, &format!("{}.{child}", r.name)) {
                Some(t) => coalesce_tables(&mut b, path_to_map(&parent, t.clone()), true),
                None => warnings.push(format!(
                    "import-values of dependency {}: no table {child:?} in its values",
                    r.name
                )),
            }
        }
    }
    let J::Object(mut cv) = cvals else { return };
    coalesce_tables(&mut cv, b, true);
    chart.values = J::Object(cv);
}

/// `fmt.Sprintf("%v", x)` of a JSON scalar (`<nil>` for absent).
fn go_sprint(v: Option<&J>) -> String {
    match v {
        None | Some(J::Null) => "<nil>".into(),
        Some(J::String(s)) => s.clone(),
        Some(other) => crate::chart::json_to_value(other).format_v(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::{ChartFile, load_files};
    use serde_json::json;

    fn chart(files: &[(&str, &str)]) -> Chart {
        load_files(
            "t",
            files
                .iter()
                .map(|(n, d)| ChartFile {
                    name: n.to_string(),
                    data: d.as_bytes().to_vec(),
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn user_values_override_and_null_deletes() {
        let c = chart(&[
            ("Chart.yaml", "apiVersion: v2\nname: t\nversion: 1.0.0\n"),
            ("values.yaml", "a: 1\nb: {x: 1, y: 2}\nc: keep\nd: gone\n"),
        ]);
        let v = coalesce_values(&c, &json!({"b": {"y": 3, "x": null}, "d": null, "e": 5}));
        assert_eq!(v, json!({"a": 1.0, "b": {"y": 3}, "c": "keep", "e": 5}));
    }

    #[test]
    fn subchart_values_and_globals() {
        let c = chart(&[
            ("Chart.yaml", "apiVersion: v2\nname: t\nversion: 1.0.0\n"),
            ("values.yaml", "global: {region: eu, db: {port: 1}}\nsub: {replicas: 2}\n"),
            ("charts/sub/Chart.yaml", "apiVersion: v2\nname: sub\nversion: 0.1.0\n"),
            ("charts/sub/values.yaml", "replicas: 1\nimage: nginx\nglobal: {db: {host: h}, region: us}\n"),
        ]);
        let v = coalesce_values(&c, &json!({"sub": {"image": "custom"}}));
        assert_eq!(v["sub"]["replicas"], json!(2.0));
        assert_eq!(v["sub"]["image"], json!("custom"));
        // The parent's plain globals win; tables merge.
        assert_eq!(v["sub"]["global"]["region"], json!("eu"));
        assert_eq!(v["sub"]["global"]["db"], json!({"port": 1.0, "host": "h"}));
    }
}

//! Charts: `Chart.yaml` (v1 with `requirements.yaml`, and v2), values, templates, files,
//! subcharts in `charts/` as directories or `.tgz` archives — loaded as Helm's
//! `loader.LoadFiles` does, from files the caller has already read (the directory walk, with
//! its confinement to the repository, lives in driftless-render).
//!
//! Archives are hostile input (THREATS.md): gzip and tar are read with limits on the
//! decompressed size of each file and of the whole chart, on the number of entries, and every
//! entry must be a regular file or directory whose path stays inside the chart (no `..`, no
//! absolute paths, no links).

use std::io::Read;

use serde::Deserialize;

use crate::value::Value;

/// Largest decompressed file in a chart archive (Helm: 5 MiB).
pub const MAX_ARCHIVE_FILE_BYTES: u64 = 5 * 1024 * 1024;
/// Largest decompressed chart archive (Helm: 100 MiB).
pub const MAX_ARCHIVE_BYTES: u64 = 100 * 1024 * 1024;
/// Most entries accepted in one chart archive.
pub const MAX_ARCHIVE_ENTRIES: usize = 10_000;
/// Deepest nesting of subcharts accepted.
pub const MAX_CHART_DEPTH: usize = 20;

/// A file of a chart, by its path relative to the chart root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartFile {
    /// `/`-separated path relative to the chart root (`templates/x.yaml`).
    pub name: String,
    /// The bytes (a UTF-8 BOM already removed, as Helm does).
    pub data: Vec<u8>,
}

/// Why a chart could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{chart}: {message}")]
pub struct ChartError {
    /// The chart's path (`parent/charts/child`) or the file that failed.
    pub chart: String,
    /// What went wrong and what to do.
    pub message: String,
}

fn chart_err(chart: &str, message: impl Into<String>) -> ChartError {
    ChartError {
        chart: chart.to_string(),
        message: message.into(),
    }
}

/// A dependency as declared in `Chart.yaml` (or v1's `requirements.yaml`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Dependency {
    /// Chart name.
    pub name: String,
    /// Version constraint.
    pub version: String,
    /// Where it comes from (a repository URL, `file://`, `oci://`, or an alias `@repo`).
    pub repository: String,
    /// Comma-separated value paths; the first that holds a bool decides.
    pub condition: String,
    /// Tags enabling the dependency.
    pub tags: Vec<String>,
    /// Whether it is enabled (computed).
    pub enabled: bool,
    /// `import-values`: strings (`exports.X`) or `{child, parent}` maps.
    #[serde(rename = "import-values")]
    pub import_values: Vec<serde_json::Value>,
    /// Name the dependency is known by in the parent.
    pub alias: String,
}

/// `Chart.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Metadata {
    /// Chart name.
    pub name: String,
    /// Home page.
    pub home: String,
    /// Source URLs.
    pub sources: Vec<String>,
    /// SemVer 2 version.
    pub version: String,
    /// One-line description.
    pub description: String,
    /// Keywords.
    pub keywords: Vec<String>,
    /// Maintainers (kept as written).
    pub maintainers: Vec<serde_json::Value>,
    /// Icon URL.
    pub icon: String,
    /// `v1` or `v2`.
    pub api_version: String,
    /// Condition (deprecated in Chart.yaml).
    pub condition: String,
    /// Tags (deprecated in Chart.yaml).
    pub tags: String,
    /// Version of the application.
    pub app_version: String,
    /// Deprecated chart.
    pub deprecated: bool,
    /// Annotations.
    pub annotations: std::collections::BTreeMap<String, String>,
    /// Kubernetes version constraint.
    pub kube_version: String,
    /// Dependencies.
    pub dependencies: Vec<Dependency>,
    /// `application` (default) or `library`.
    #[serde(rename = "type")]
    pub chart_type: String,
}

/// `requirements.yaml` (v1 charts).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Requirements {
    dependencies: Vec<Dependency>,
}

/// A loaded chart.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    /// `Chart.yaml`.
    pub metadata: Metadata,
    /// `values.yaml` (a map; empty when absent). Numbers are `float64`, as Helm reads them.
    pub values: serde_json::Value,
    /// `values.schema.json`.
    pub schema: Option<Vec<u8>>,
    /// Files under `templates/`.
    pub templates: Vec<ChartFile>,
    /// Every other file (what `.Files` sees; `crds/` are among them).
    pub files: Vec<ChartFile>,
    /// Subcharts found in `charts/`.
    pub dependencies: Vec<Chart>,
    /// Whether a `Chart.lock`/`requirements.lock` was present.
    pub has_lock: bool,
}

impl Chart {
    /// Whether this is a library chart (templates are not rendered on their own).
    pub fn is_library(&self) -> bool {
        self.metadata.chart_type == "library"
    }

    /// The CRD files of this chart and its subcharts (`crds/*.yaml|yml|json`), with their
    /// full paths (`parent/charts/child/crds/x.yaml`).
    pub fn crds(&self, full_path: &str) -> Vec<(String, &ChartFile)> {
        let mut out = Vec::new();
        for f in &self.files {
            if f.name.starts_with("crds/") && has_manifest_extension(&f.name) {
                out.push((format!("{full_path}/{}", f.name), f));
            }
        }
        for d in &self.dependencies {
            out.extend(d.crds(&format!("{full_path}/charts/{}", d.metadata.name)));
        }
        out
    }
}

fn has_manifest_extension(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json")
}

/// Parses YAML text into JSON data, numbers as `float64` the way `sigs.k8s.io/yaml` gives
/// them to Helm. Multi-document input is merged (values files) when `merge_docs` is true.
pub(crate) fn yaml_to_json(text: &str, merge_docs: bool) -> Result<serde_json::Value, String> {
    let opts = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 5_000_000,
            max_nodes: 2_000_000,
            max_documents: 10_000,
            max_aliases: 10_000,
            max_anchors: 10_000,
            max_depth: 100,
            max_total_scalar_bytes: 64 * 1024 * 1024,
        },
        alias_limits: serde_saphyr::alias_limits! { max_total_replayed_events: 1_000_000 },
        legacy_octal_numbers: true,
        with_snippet: false,
    };
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple_with_options(text, opts).map_err(|e| e.without_snippet().to_string())?;
    if !merge_docs {
        return Ok(docs.into_iter().next().unwrap_or(serde_json::Value::Null));
    }
    let mut out = serde_json::Value::Object(serde_json::Map::new());
    for d in docs {
        match d {
            serde_json::Value::Null => {}
            serde_json::Value::Object(_) => merge_maps(&mut out, d),
            other => return Err(format!("cannot unmarshal {} into a map of values", json_kind(&other))),
        }
    }
    Ok(out)
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Helm's `MergeMaps`: maps merge recursively, anything else in `b` replaces.
fn merge_maps(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(existing @ serde_json::Value::Object(_)) if v.is_object() => merge_maps(existing, v),
                    _ => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (a, b) => *a = b,
    }
}

/// Normalises JSON numbers as Helm's YAML reading does: every number a `float64`.
pub(crate) fn numbers_to_float(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Number(n) if !n.is_f64() => {
            if let Some(f) = n.as_f64().and_then(serde_json::Number::from_f64) {
                *n = f;
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(numbers_to_float),
        serde_json::Value::Object(o) => o.values_mut().for_each(numbers_to_float),
        _ => {}
    }
}

/// Converts JSON data to template values, keeping the JSON number's kind: a float stays
/// `float64`, an integer is an `int64` (only `--set` produces those).
pub fn json_to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) if !n.is_f64() => Value::int64(i),
            _ => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::Array(a) => Value::list(a.iter().map(json_to_value).collect()),
        serde_json::Value::Object(o) => Value::map(o.iter().map(|(k, v)| (k.clone(), json_to_value(v))).collect()),
        other => Value::from_json(other),
    }
}

/// Loads a chart from its files, as Helm's `loader.LoadFiles`.
///
/// `path` names the chart in messages (the chart directory relative to the repository, or the
/// archive's name).
pub fn load_files(path: &str, files: Vec<ChartFile>) -> Result<Chart, ChartError> {
    load_files_at(path, files, 0)
}

fn load_files_at(path: &str, files: Vec<ChartFile>, depth: usize) -> Result<Chart, ChartError> {
    if depth > MAX_CHART_DEPTH {
        return Err(chart_err(
            path,
            format!("subcharts nested deeper than {MAX_CHART_DEPTH} levels"),
        ));
    }
    let mut chart = Chart {
        values: serde_json::Value::Object(serde_json::Map::new()),
        ..Chart::default()
    };
    let chart_yaml = files
        .iter()
        .find(|f| f.name == "Chart.yaml")
        .ok_or_else(|| chart_err(path, "Chart.yaml file is missing"))?;
    let text = utf8(path, chart_yaml)?;
    let meta = yaml_to_json(text, false).map_err(|e| chart_err(path, format!("cannot load Chart.yaml: {e}")))?;
    chart.metadata = if meta.is_null() {
        Metadata::default()
    } else {
        serde_json::from_value(meta).map_err(|e| chart_err(path, format!("cannot load Chart.yaml: {e}")))?
    };
    if chart.metadata.api_version.is_empty() {
        chart.metadata.api_version = "v1".into();
    }
    let mut subcharts: std::collections::BTreeMap<String, Vec<ChartFile>> = std::collections::BTreeMap::new();
    for f in files {
        match f.name.as_str() {
            "Chart.yaml" => {}
            "Chart.lock" | "requirements.lock" => {
                chart.has_lock = true;
                if f.name == "requirements.lock" && chart.metadata.api_version == "v1" {
                    chart.files.push(f);
                }
            }
            "values.yaml" => {
                let text = utf8(path, &f)?;
                let mut v =
                    yaml_to_json(text, true).map_err(|e| chart_err(path, format!("cannot load values.yaml: {e}")))?;
                numbers_to_float(&mut v);
                chart.values = v;
            }
            "values.schema.json" => chart.schema = Some(f.data),
            "requirements.yaml" => {
                let text = utf8(path, &f)?;
                let req = yaml_to_json(text, false)
                    .map_err(|e| chart_err(path, format!("cannot load requirements.yaml: {e}")))?;
                if !req.is_null() {
                    let req: Requirements = serde_json::from_value(req)
                        .map_err(|e| chart_err(path, format!("cannot load requirements.yaml: {e}")))?;
                    chart.metadata.dependencies = req.dependencies;
                }
                if chart.metadata.api_version == "v1" {
                    chart.files.push(f);
                }
            }
            name if name.starts_with("templates/") => chart.templates.push(f),
            name if name.starts_with("charts/") => {
                if name.ends_with(".prov") {
                    chart.files.push(f);
                    continue;
                }
                let rest = &name["charts/".len()..];
                let (sub, inner) = rest.split_once('/').unwrap_or((rest, ""));
                subcharts.entry(sub.to_string()).or_default().push(ChartFile {
                    name: if inner.is_empty() {
                        sub.to_string()
                    } else {
                        inner.to_string()
                    },
                    data: f.data,
                });
            }
            _ => chart.files.push(f),
        }
    }
    validate_metadata(path, &chart.metadata)?;
    for (name, files) in subcharts {
        if name.starts_with('_') || name.starts_with('.') {
            continue;
        }
        let sub_path = format!("{path}/charts/{name}");
        let sub = if name.ends_with(".tgz") {
            let Some(file) = files.into_iter().find(|f| f.name == name) else {
                continue;
            };
            load_archive_at(&sub_path, &file.data, depth + 1)?
        } else {
            let files: Vec<ChartFile> = files.into_iter().filter(|f| f.name != name).collect();
            load_files_at(&sub_path, files, depth + 1)
                .map_err(|e| chart_err(path, format!("error unpacking subchart {name}: {e}")))?
        };
        chart.dependencies.push(sub);
    }
    Ok(chart)
}

fn utf8<'a>(path: &str, f: &'a ChartFile) -> Result<&'a str, ChartError> {
    std::str::from_utf8(&f.data).map_err(|_| chart_err(path, format!("{}: not valid UTF-8", f.name)))
}

/// Helm's `Metadata.Validate` checks that matter for rendering.
fn validate_metadata(path: &str, md: &Metadata) -> Result<(), ChartError> {
    if md.name.is_empty() {
        return Err(chart_err(path, "validation: chart.metadata.name is required"));
    }
    if md.name == "." || md.name == ".." || md.name.contains('/') || md.name.contains('\\') {
        return Err(chart_err(
            path,
            format!("validation: chart.metadata.name {:?} is invalid", md.name),
        ));
    }
    if md.version.is_empty() {
        return Err(chart_err(path, "validation: chart.metadata.version is required"));
    }
    if !matches!(md.chart_type.as_str(), "" | "application" | "library") {
        return Err(chart_err(
            path,
            "validation: chart.metadata.type must be application or library",
        ));
    }
    if md.api_version != "v1" && md.api_version != "v2" && md.api_version != "v3" {
        return Err(chart_err(
            path,
            format!(
                "validation: chart.metadata.apiVersion {:?} is not valid; use v2",
                md.api_version
            ),
        ));
    }
    Ok(())
}

/// Loads a chart archive (`.tgz`), with the limits of this module.
pub fn load_archive(path: &str, bytes: &[u8]) -> Result<Chart, ChartError> {
    load_archive_at(path, bytes, 0)
}

fn load_archive_at(path: &str, bytes: &[u8], depth: usize) -> Result<Chart, ChartError> {
    let files = read_archive(path, bytes)?;
    load_files_at(path, files, depth)
}

/// Reads the files of a chart archive: the first path component (the chart's directory) is
/// removed, as Helm does.
pub fn read_archive(path: &str, bytes: &[u8]) -> Result<Vec<ChartFile>, ChartError> {
    let gz = flate2::read::GzDecoder::new(bytes);
    // The whole decompressed stream is bounded, so a gzip bomb stops at the limit.
    let mut archive = tar::Archive::new(gz.take(MAX_ARCHIVE_BYTES + 1));
    let entries = archive
        .entries()
        .map_err(|e| chart_err(path, format!("not a chart archive (gzip-compressed tar): {e}")))?;
    let mut files = Vec::new();
    let mut total: u64 = 0;
    for (count, entry) in entries.enumerate() {
        if count >= MAX_ARCHIVE_ENTRIES {
            return Err(chart_err(
                path,
                format!("archive has more than {MAX_ARCHIVE_ENTRIES} entries"),
            ));
        }
        let mut entry = entry.map_err(|e| chart_err(path, format!("corrupt chart archive: {e}")))?;
        let kind = entry.header().entry_type();
        let raw_name = entry
            .path()
            .map_err(|e| chart_err(path, format!("bad entry name: {e}")))?
            .to_string_lossy()
            .replace('\\', "/");
        if kind.is_dir() || kind == tar::EntryType::XGlobalHeader || kind == tar::EntryType::XHeader {
            continue;
        }
        if !kind.is_file() {
            return Err(chart_err(
                path,
                format!("{raw_name}: archive entry is not a regular file (links and devices are refused)"),
            ));
        }
        if raw_name.starts_with('/') || raw_name.split('/').any(|c| c == "..") {
            return Err(chart_err(
                path,
                format!("{raw_name}: chart illegally contains content outside the base directory"),
            ));
        }
        let size = entry.header().size().unwrap_or(u64::MAX);
        if size > MAX_ARCHIVE_FILE_BYTES {
            return Err(chart_err(
                path,
                format!("{raw_name}: decompressed file is larger than the limit of {MAX_ARCHIVE_FILE_BYTES} bytes"),
            ));
        }
        total = total.saturating_add(size);
        if total > MAX_ARCHIVE_BYTES {
            return Err(chart_err(
                path,
                format!("decompressed chart is larger than the limit of {MAX_ARCHIVE_BYTES} bytes"),
            ));
        }
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        entry
            .read_to_end(&mut data)
            .map_err(|e| chart_err(path, format!("{raw_name}: cannot read: {e}")))?;
        let name = raw_name.trim_start_matches("./");
        let Some((_, rest)) = name.split_once('/') else {
            continue;
        };
        if rest.is_empty() {
            continue;
        }
        if data.starts_with(&[0xEF, 0xBB, 0xBF]) {
            data.drain(..3);
        }
        files.push(ChartFile {
            name: rest.to_string(),
            data,
        });
    }
    if files.is_empty() {
        return Err(chart_err(path, "no files in chart archive"));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, data: &str) -> ChartFile {
        ChartFile {
            name: name.into(),
            data: data.as_bytes().to_vec(),
        }
    }

    #[test]
    fn loads_a_chart_with_subcharts() {
        let c = load_files(
            "web",
            vec![
                f("Chart.yaml", "apiVersion: v2\nname: web\nversion: 1.0.0\ndependencies:\n- name: db\n  version: ~1\n  repository: file://charts/db\n  alias: database\n  condition: db.enabled\n"),
                f("values.yaml", "replicas: 3\nimage: {tag: \"1\"}\n---\nextra: true\n"),
                f("templates/deploy.yaml", "kind: Deployment"),
                f("templates/_helpers.tpl", ""),
                f("files/a.txt", "A"),
                f("charts/db/Chart.yaml", "apiVersion: v2\nname: db\nversion: 1.2.0\n"),
                f("charts/db/templates/s.yaml", "x"),
                f("charts/_skip/Chart.yaml", "apiVersion: v2\nname: skip\nversion: 1.0.0\n"),
            ],
        )
        .unwrap();
        assert_eq!(c.metadata.name, "web");
        assert_eq!(c.metadata.dependencies[0].alias, "database");
        assert_eq!(c.values["replicas"], serde_json::json!(3.0));
        assert!(c.values["replicas"].as_f64().is_some() && !c.values["replicas"].is_i64());
        assert_eq!(
            c.values["extra"],
            serde_json::json!(true),
            "documents of values.yaml are merged"
        );
        assert_eq!(c.templates.len(), 2);
        assert_eq!(c.files.len(), 1);
        assert_eq!(c.dependencies.len(), 1);
        assert_eq!(c.dependencies[0].metadata.name, "db");
        assert_eq!(c.dependencies[0].templates[0].name, "templates/s.yaml");
    }

    #[test]
    fn v1_requirements_and_missing_fields() {
        let c = load_files(
            "old",
            vec![
                f("Chart.yaml", "name: old\nversion: 0.1.0\n"),
                f(
                    "requirements.yaml",
                    "dependencies:\n- name: x\n  version: 1.0.0\n  repository: \"\"\n",
                ),
            ],
        )
        .unwrap();
        assert_eq!(c.metadata.api_version, "v1");
        assert_eq!(c.metadata.dependencies[0].name, "x");
        assert_eq!(
            c.files[0].name, "requirements.yaml",
            "v1 keeps requirements.yaml among its files"
        );

        let e = load_files("bad", vec![f("values.yaml", "a: 1")]).unwrap_err();
        assert_eq!(e.to_string(), "bad: Chart.yaml file is missing");
        let e = load_files("bad", vec![f("Chart.yaml", "apiVersion: v2\nname: x\n")]).unwrap_err();
        assert!(e.message.contains("version is required"), "{e}");
        let e = load_files(
            "bad",
            vec![f("Chart.yaml", "apiVersion: v2\nname: ../x\nversion: 1.0.0\n")],
        )
        .unwrap_err();
        assert!(e.message.contains("is invalid"), "{e}");
    }

    fn tgz(entries: &[(&str, &[u8], tar::EntryType)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        for (name, data, kind) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            // Write the raw name so that hostile names ("../x") reach the reader unchanged.
            let bytes = name.as_bytes();
            h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            h.set_cksum();
            builder.append(&h, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn archives_load_and_hostile_ones_are_refused() {
        let reg = tar::EntryType::Regular;
        let good = tgz(&[
            ("db/Chart.yaml", b"apiVersion: v2\nname: db\nversion: 1.0.0\n", reg),
            ("db/templates/x.yaml", b"kind: X", reg),
        ]);
        let c = load_archive("db-1.0.0.tgz", &good).unwrap();
        assert_eq!(c.metadata.name, "db");
        assert_eq!(c.templates[0].name, "templates/x.yaml");

        let escape = tgz(&[("db/../../etc/passwd", b"x", reg)]);
        let e = load_archive("evil.tgz", &escape).unwrap_err();
        assert!(e.message.contains("outside the base directory"), "{e}");

        let link = tgz(&[("db/Chart.yaml", b"", tar::EntryType::Symlink)]);
        let e = load_archive("evil.tgz", &link).unwrap_err();
        assert!(e.message.contains("not a regular file"), "{e}");

        let e = load_archive("junk.tgz", b"not gzip").unwrap_err();
        assert!(e.message.contains("chart archive"), "{e}");
    }

    #[test]
    fn subchart_archives_inside_charts_dir() {
        let reg = tar::EntryType::Regular;
        let sub = tgz(&[(
            "lib/Chart.yaml",
            b"apiVersion: v2\nname: lib\nversion: 0.1.0\ntype: library\n",
            reg,
        )]);
        let c = load_files(
            "app",
            vec![
                f("Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.0.0\n"),
                ChartFile {
                    name: "charts/lib-0.1.0.tgz".into(),
                    data: sub,
                },
            ],
        )
        .unwrap();
        assert_eq!(c.dependencies.len(), 1);
        assert!(c.dependencies[0].is_library());
    }
}

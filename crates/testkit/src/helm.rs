//! The real Helm as a test oracle for the native chart renderer.
//!
//! - [`helm_binary`]: where the real `helm` is (installed by `scripts/install-helm.sh`).
//! - [`helm_template`]: runs `helm template` with [`HelmArgs`] and parses its output with
//!   [`parse_rendered`] into `(source, document)` pairs.
//! - [`compare_objects`]: an order-insensitive, semantic comparison of two renderings that names
//!   the object and the first differing JSON path.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The environment variable naming the helm binary (exported by `scripts/test.sh`).
pub const HELM_ENV: &str = "DRIFTLESS_TEST_HELM";

/// The real helm binary for conformance tests: `$DRIFTLESS_TEST_HELM`, else
/// `<workspace>/target/test-tools/bin/helm`; `None` when absent, after printing a skip line to
/// stderr (the test then returns). When the environment variable `CI` is set, absence panics so
/// CI cannot silently skip; a `DRIFTLESS_TEST_HELM` naming a missing file always panics.
pub fn helm_binary() -> Option<PathBuf> {
    if let Some(configured) = std::env::var_os(HELM_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(configured);
        assert!(path.is_file(), "{HELM_ENV}={} does not name a file", path.display());
        return Some(path);
    }
    let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-tools/bin/helm");
    if default.is_file() {
        return Some(default);
    }
    let hint = "run scripts/install-helm.sh (or scripts/test.sh), or set DRIFTLESS_TEST_HELM";
    if std::env::var_os("CI").is_some() {
        panic!(
            "the real helm is required under CI and was not found at {}: {hint}",
            default.display()
        );
    }
    eprintln!(
        "skipping: the real helm was not found at {} ({hint})",
        default.display()
    );
    None
}

/// The arguments of one `helm template` run. Empty fields add no flag.
#[derive(Debug, Clone, Default)]
pub struct HelmArgs {
    /// The release name (first positional argument).
    pub release: String,
    /// The chart directory (or packaged `.tgz`).
    pub chart_dir: PathBuf,
    /// `--namespace`; omitted when empty (helm then uses `default`).
    pub namespace: String,
    /// `--values FILE`, in order.
    pub values_files: Vec<PathBuf>,
    /// `--set k=v`, in order.
    pub set: Vec<String>,
    /// `--set-string k=v`, in order.
    pub set_string: Vec<String>,
    /// `--set-json k=JSON`, in order.
    pub set_json: Vec<String>,
    /// `--set-file k=PATH`, in order.
    pub set_file: Vec<String>,
    /// `--kube-version`.
    pub kube_version: Option<String>,
    /// `--api-versions`, one flag each.
    pub api_versions: Vec<String>,
    /// Further arguments appended verbatim (e.g. `--include-crds`, `--is-upgrade`).
    pub extra: Vec<String>,
}

impl HelmArgs {
    /// The full argument list after the binary: `template RELEASE CHART ...`.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "template".to_owned(),
            self.release.clone(),
            self.chart_dir.display().to_string(),
        ];
        if !self.namespace.is_empty() {
            args.extend(["--namespace".to_owned(), self.namespace.clone()]);
        }
        for file in &self.values_files {
            args.extend(["--values".to_owned(), file.display().to_string()]);
        }
        let repeated = [
            ("--set", &self.set),
            ("--set-string", &self.set_string),
            ("--set-json", &self.set_json),
            ("--set-file", &self.set_file),
            ("--api-versions", &self.api_versions),
        ];
        for (flag, values) in repeated {
            for value in values {
                args.extend([flag.to_owned(), value.clone()]);
            }
        }
        if let Some(version) = &self.kube_version {
            args.extend(["--kube-version".to_owned(), version.clone()]);
        }
        args.extend(self.extra.iter().cloned());
        args
    }
}

/// Runs `helm template` with `args` and returns its documents parsed by [`parse_rendered`].
/// Helm runs with its cache, config and data homes in a temporary directory, so the user's
/// repositories and plugins play no part. `Err` is helm's stderr (trailing newline stripped)
/// when it fails, or a parse error of its output.
pub fn helm_template(helm: &Path, args: &HelmArgs) -> Result<Vec<(String, Value)>, String> {
    let home = tempfile::tempdir().map_err(|e| format!("temporary helm home: {e}"))?;
    let output = Command::new(helm)
        .args(args.to_args())
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .env_remove("KUBECONFIG")
        .env_remove("HELM_NAMESPACE")
        .env_remove("HELM_KUBECONTEXT")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", helm.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(stderr.strip_suffix('\n').unwrap_or(&stderr).to_owned());
    }
    let stdout = String::from_utf8(output.stdout).map_err(|e| format!("helm printed non-UTF-8 output: {e}"))?;
    parse_rendered(&stdout).map_err(|e| format!("{e}\n--- helm output ---\n{stdout}"))
}

/// Splits a multi-document rendering (as `helm template` prints it) on `---` lines and parses
/// each document with serde-saphyr into a JSON value (numbers keep their YAML type: `1` is an
/// integer, `1.0` a float). Each document's origin is the path of its first `# Source: ` comment
/// (e.g. `chart/templates/x.yaml`); a document without one (helm prints only one per template
/// file, so the second document of a `crds/` file or a document after an empty `---` has none)
/// inherits the previous document's origin, `""` at the start. Documents that are empty, only
/// comments, or `null` are dropped.
pub fn parse_rendered(text: &str) -> Result<Vec<(String, Value)>, String> {
    let mut documents = Vec::new();
    let mut source = String::new();
    for (index, doc) in split_documents(text).into_iter().enumerate() {
        if let Some(s) = doc.lines().find_map(|l| l.strip_prefix("# Source: ")) {
            s.trim_end().clone_into(&mut source);
        }
        let source = source.clone();
        if doc
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            continue;
        }
        let value: Value = serde_saphyr::from_str(&doc)
            .map_err(|e| format!("document #{index} (source {source:?}) is not valid YAML: {e}"))?;
        if !value.is_null() {
            documents.push((source, value));
        }
    }
    Ok(documents)
}

/// The documents of `text`: the text between lines that are `---` (optionally followed by
/// spaces or a comment). A `---` inside a block scalar would be split too, as helm does.
fn split_documents(text: &str) -> Vec<String> {
    let mut documents = vec![String::new()];
    for line in text.lines() {
        let rest = line.strip_prefix("---");
        if rest.is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t'])) {
            documents.push(String::new());
            let rest = rest.unwrap_or_default().trim_start();
            if !rest.is_empty() {
                let current = documents.last_mut().expect("pushed");
                current.push_str(rest);
                current.push('\n');
            }
            continue;
        }
        let current = documents.last_mut().expect("never empty");
        current.push_str(line);
        current.push('\n');
    }
    documents
}

/// How many differences [`compare_objects`] lists before summarizing the rest.
const MAX_REPORTED: usize = 20;

/// Compares two renderings, order-insensitively: objects are matched by (apiVersion, kind,
/// metadata.namespace, metadata.name) — and by occurrence for duplicates; documents lacking
/// apiVersion, kind or metadata.name are matched by origin and index among such documents of
/// that origin. `Err` lists, one line each, every object missing from `ours`, every extra object
/// in `ours`, and for every differing object its name and the first differing JSON path, e.g.
/// `Deployment/web: .spec.template.spec.containers[0].image: helm "nginx:1.2" vs driftless
/// "nginx:1.3"`. Matched objects with different origins are reported as a `# Source` difference.
pub fn compare_objects(helm: &[(String, Value)], ours: &[(String, Value)]) -> Result<(), String> {
    let theirs = keyed(helm);
    let mut mine = keyed(ours);
    let mut problems = Vec::new();
    for (key, (helm_source, helm_value)) in &theirs {
        match mine.remove(key) {
            None => problems.push(format!(
                "{}: missing in driftless (helm renders it from {helm_source})",
                key.label
            )),
            Some((our_source, our_value)) => {
                if let Some(diff) = first_difference(helm_value, &our_value, &mut String::new()) {
                    problems.push(format!("{}: {diff}", key.label));
                } else if *helm_source != our_source {
                    problems.push(format!(
                        "{}: # Source: helm {helm_source:?} vs driftless {our_source:?}",
                        key.label
                    ));
                }
            }
        }
    }
    for (key, (our_source, _)) in &mine {
        problems.push(format!(
            "{}: extra in driftless (from {our_source}), helm does not render it",
            key.label
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    let total = problems.len();
    let mut message = format!("{total} difference(s) between helm and driftless:\n");
    for problem in problems.iter().take(MAX_REPORTED) {
        let _ = writeln!(message, "  {problem}");
    }
    if total > MAX_REPORTED {
        let _ = writeln!(message, "  ... and {} more", total - MAX_REPORTED);
    }
    Err(message.trim_end().to_owned())
}

/// The identity of a document in a rendering; `label` names it in messages.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    /// (apiVersion, kind, namespace, name) or (origin, "", "", "") for anonymous documents.
    identity: (String, String, String, String),
    /// The occurrence of this identity (duplicates, anonymous documents of one origin).
    occurrence: usize,
    label: String,
}

fn keyed(documents: &[(String, Value)]) -> BTreeMap<Key, (String, Value)> {
    let mut seen: BTreeMap<(String, String, String, String), usize> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (source, value) in documents {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
        let api_version = text(value.get("apiVersion"));
        let kind = text(value.get("kind"));
        let namespace = text(value.pointer("/metadata/namespace"));
        let name = text(value.pointer("/metadata/name"));
        let named = !api_version.is_empty() && !kind.is_empty() && !name.is_empty();
        let identity = if named {
            (api_version.clone(), kind.clone(), namespace.clone(), name.clone())
        } else {
            (source.clone(), String::new(), String::new(), String::new())
        };
        let occurrence = {
            let n = seen.entry(identity.clone()).or_default();
            *n += 1;
            *n - 1
        };
        let mut label = if named {
            if namespace.is_empty() {
                format!("{kind}/{name}")
            } else {
                format!("{kind}/{namespace}/{name}")
            }
        } else {
            format!("unnamed document #{occurrence} of {source:?}")
        };
        if named && occurrence > 0 {
            let _ = write!(label, " (occurrence #{occurrence})");
        }
        out.insert(
            Key {
                identity,
                occurrence,
                label,
            },
            (source.clone(), value.clone()),
        );
    }
    out
}

/// The first difference between `helm` and `ours` (depth first, in helm's key order, then the
/// keys only `ours` has), as `PATH: helm X vs driftless Y`; `path` is the path so far.
fn first_difference(helm: &Value, ours: &Value, path: &mut String) -> Option<String> {
    match (helm, ours) {
        (Value::Object(h), Value::Object(o)) => {
            for (key, hv) in h {
                let len = path.len();
                push_key(path, key);
                let diff = match o.get(key) {
                    Some(ov) => first_difference(hv, ov, path),
                    None => at(path, &show(hv), "<absent>"),
                };
                path.truncate(len);
                if diff.is_some() {
                    return diff;
                }
            }
            let key = o.keys().find(|k| !h.contains_key(*k))?;
            push_key(path, key);
            at(path, "<absent>", &show(&o[key]))
        }
        (Value::Array(h), Value::Array(o)) => {
            for (i, (hv, ov)) in h.iter().zip(o).enumerate() {
                let len = path.len();
                let _ = write!(path, "[{i}]");
                let diff = first_difference(hv, ov, path);
                path.truncate(len);
                if diff.is_some() {
                    return diff;
                }
            }
            if h.len() != o.len() {
                let at = if path.is_empty() { "." } else { path.as_str() };
                return Some(format!("{at}: helm has {} items vs driftless {}", h.len(), o.len()));
            }
            None
        }
        _ if helm == ours => None,
        _ => at(path, &show(helm), &show(ours)),
    }
}

/// `PATH: helm H vs driftless O` (the root path is `.`).
fn at(path: &str, helm: &str, ours: &str) -> Option<String> {
    let path = if path.is_empty() { "." } else { path };
    Some(format!("{path}: helm {helm} vs driftless {ours}"))
}

/// Appends `.key`, or `["key"]` when the key is not a plain identifier-like word.
fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        path.push('.');
        path.push_str(key);
    } else {
        let _ = write!(path, "[{}]", Value::String(key.to_owned()));
    }
}

/// A value as compact JSON, shortened when long.
fn show(value: &Value) -> String {
    const MAX: usize = 160;
    let text = value.to_string();
    if text.chars().count() <= MAX {
        return text;
    }
    let head: String = text.chars().take(MAX).collect();
    format!("{head}... ({} chars)", text.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(source: &str, value: Value) -> (String, Value) {
        (source.to_owned(), value)
    }

    fn deployment(image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c", "image": image}]}}}
        })
    }

    fn config_map(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns"}, "data": {"a": "1"}})
    }

    #[test]
    fn equal_renderings_in_any_order_compare_equal() {
        let helm = vec![
            doc("c/templates/d.yaml", deployment("nginx:1.2")),
            doc("c/templates/cm.yaml", config_map("x")),
        ];
        let ours = vec![helm[1].clone(), helm[0].clone()];
        assert_eq!(compare_objects(&helm, &ours), Ok(()));
    }

    #[test]
    fn a_differing_value_names_the_object_and_the_first_path() {
        let helm = vec![doc("c/templates/d.yaml", deployment("nginx:1.2"))];
        let ours = vec![doc("c/templates/d.yaml", deployment("nginx:1.3"))];
        let err = compare_objects(&helm, &ours).unwrap_err();
        assert!(
            err.contains(
                r#"Deployment/web: .spec.template.spec.containers[0].image: helm "nginx:1.2" vs driftless "nginx:1.3""#
            ),
            "{err}"
        );
    }

    #[test]
    fn an_int_and_a_float_differ() {
        let helm = vec![doc("s", json!({"n": 1}))];
        let ours = vec![doc("s", json!({"n": 1.0}))];
        let err = compare_objects(&helm, &ours).unwrap_err();
        assert!(
            err.contains("unnamed document #0 of \"s\": .n: helm 1 vs driftless 1.0"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_object_is_reported() {
        let helm = vec![
            doc("c/templates/d.yaml", deployment("a")),
            doc("c/templates/cm.yaml", config_map("x")),
        ];
        let ours = vec![doc("c/templates/d.yaml", deployment("a"))];
        let err = compare_objects(&helm, &ours).unwrap_err();
        assert!(err.contains("ConfigMap/ns/x: missing in driftless"), "{err}");
    }

    #[test]
    fn an_extra_object_is_reported() {
        let helm = vec![doc("c/templates/d.yaml", deployment("a"))];
        let ours = vec![
            doc("c/templates/d.yaml", deployment("a")),
            doc("c/templates/cm.yaml", config_map("y")),
        ];
        let err = compare_objects(&helm, &ours).unwrap_err();
        assert!(err.contains("ConfigMap/ns/y: extra in driftless"), "{err}");
    }

    #[test]
    fn an_extra_key_and_a_missing_key_are_reported_with_quoted_paths() {
        let helm = vec![doc("c/templates/d.yaml", deployment("a"))];
        let mut extra = deployment("a");
        extra["metadata"]["labels"]["app.kubernetes.io/part-of"] = json!("x");
        let err = compare_objects(&helm, &[doc("c/templates/d.yaml", extra)]).unwrap_err();
        assert!(
            err.contains(
                r#"Deployment/web: .metadata.labels["app.kubernetes.io/part-of"]: helm <absent> vs driftless "x""#
            ),
            "{err}"
        );
        let mut missing = deployment("a");
        missing["spec"].as_object_mut().unwrap().remove("replicas");
        let err = compare_objects(&helm, &[doc("c/templates/d.yaml", missing)]).unwrap_err();
        assert!(
            err.contains("Deployment/web: .spec.replicas: helm 1 vs driftless <absent>"),
            "{err}"
        );
    }

    #[test]
    fn list_lengths_and_sources_are_compared() {
        let helm = vec![doc("s", json!({"l": [1, 2]}))];
        let err = compare_objects(&helm, &[doc("s", json!({"l": [1, 2, 3]}))]).unwrap_err();
        assert!(err.contains(".l: helm has 2 items vs driftless 3"), "{err}");
        let helm = vec![doc("c/templates/a.yaml", config_map("x"))];
        let err = compare_objects(&helm, &[doc("c/templates/b.yaml", config_map("x"))]).unwrap_err();
        assert!(
            err.contains(r#"ConfigMap/ns/x: # Source: helm "c/templates/a.yaml" vs driftless "c/templates/b.yaml""#)
        );
    }

    #[test]
    fn parse_rendered_keeps_sources_numbers_and_drops_empty_documents() {
        let text = "---\n# Source: c/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  i: 1\n  f: 1.0\n  e: 1e6\n  s: \"1\"\n---\n# Source: c/templates/empty.yaml\n---\n# Source: c/templates/null.yaml\nnull\n---\n# Source: c/templates/b.yaml\nx: [1, 2]\n---\ny: 1\n";
        let docs = parse_rendered(text).unwrap();
        assert_eq!(docs.len(), 3, "{docs:?}");
        assert_eq!(docs[0].0, "c/templates/a.yaml");
        assert_eq!(docs[0].1["data"]["i"], json!(1));
        assert!(docs[0].1["data"]["i"].is_i64());
        assert!(docs[0].1["data"]["f"].is_f64());
        assert!(docs[0].1["data"]["e"].is_f64());
        assert_eq!(docs[0].1["data"]["s"], json!("1"));
        assert_eq!(docs[1], doc("c/templates/b.yaml", json!({"x": [1, 2]})));
        assert_eq!(
            docs[2],
            doc("c/templates/b.yaml", json!({"y": 1})),
            "inherits the origin"
        );
    }

    #[test]
    fn helm_args_build_the_command_line() {
        let args = HelmArgs {
            release: "rel".into(),
            chart_dir: "charts/basic".into(),
            namespace: "ns".into(),
            values_files: vec!["ci/a.yaml".into()],
            set: vec!["a=1".into()],
            set_string: vec!["b=2".into()],
            kube_version: Some("1.30.0".into()),
            api_versions: vec!["x/v1".into()],
            extra: vec!["--include-crds".into()],
            ..HelmArgs::default()
        };
        assert_eq!(
            args.to_args().join(" "),
            "template rel charts/basic --namespace ns --values ci/a.yaml --set a=1 --set-string b=2 \
             --api-versions x/v1 --kube-version 1.30.0 --include-crds"
        );
    }

    #[test]
    fn helm_template_runs_the_real_helm_when_present() {
        let Some(helm) = helm_binary() else { return };
        let dir = tempfile::tempdir().unwrap();
        let chart = dir.path().join("c");
        std::fs::create_dir_all(chart.join("templates")).unwrap();
        std::fs::write(chart.join("Chart.yaml"), "apiVersion: v2\nname: c\nversion: 0.1.0\n").unwrap();
        std::fs::write(chart.join("values.yaml"), "n: 3\n").unwrap();
        std::fs::write(
            chart.join("templates/cm.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n  namespace: {{ .Release.Namespace }}\ndata:\n  n: {{ .Values.n | quote }}\n",
        )
        .unwrap();
        let args = HelmArgs {
            release: "rel".into(),
            chart_dir: chart.clone(),
            namespace: "ns".into(),
            set: vec!["n=4".into()],
            ..HelmArgs::default()
        };
        let docs = helm_template(&helm, &args).unwrap();
        let expected = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "rel", "namespace": "ns"}, "data": {"n": "4"}});
        assert_eq!(compare_objects(&docs, &[doc("c/templates/cm.yaml", expected)]), Ok(()));
        std::fs::write(chart.join("templates/bad.yaml"), "{{ fail \"boom\" }}\n").unwrap();
        let err = helm_template(&helm, &args).unwrap_err();
        assert!(err.contains("boom"), "{err}");
    }
}

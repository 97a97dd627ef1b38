//! Rendering a loaded chart as `helm template` does: dependencies enabled or disabled,
//! values coalesced, every template of the chart and its subcharts parsed into one set
//! (so named templates are shared), each non-partial template executed with its chart's
//! scope, `<no value>` removed, `NOTES.txt` set aside, the output split into documents and
//! hooks separated from ordinary manifests.
//!
//! Helm's sources followed: `pkg/action/action.go` (`renderResources`), `pkg/engine/engine.go`
//! (`Render`, `allTemplates`, `sortTemplates`), `pkg/chart/common/util/values.go`
//! (`ToRenderValues`) and `pkg/release/v1/util/manifest_sorter.go` (`SortManifests`).

use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::Value as J;

use crate::chart::{Chart, json_to_value};
use crate::funcs::{Env, FuncMap};
use crate::objects::{Capabilities, Files};
use crate::template::{self, ExecOptions, Host, Templates};
use crate::value::Value;
use crate::values;

/// The release a chart is rendered for (`.Release`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseOptions {
    /// Release name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Revision (`helm template`: 1).
    pub revision: i64,
    /// `.Release.IsInstall` (`helm template`: true).
    pub is_install: bool,
    /// `.Release.IsUpgrade` (`helm template`: false).
    pub is_upgrade: bool,
}

/// One document of the output.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The template it came from (`chart/templates/x.yaml`, or `chart/crds/x.yaml`).
    pub source: String,
    /// The YAML text of the document.
    pub text: String,
}

/// A hook document (`helm.sh/hook` annotation).
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    /// The document.
    pub manifest: Manifest,
    /// Events, lower-cased (`pre-install`, `post-upgrade`, `test`, ...).
    pub events: Vec<String>,
    /// `helm.sh/hook-weight` (0 when absent or not an integer, as Helm).
    pub weight: i64,
    /// `helm.sh/hook-delete-policy` entries.
    pub delete_policies: Vec<String>,
}

/// What a chart renders to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RenderedChart {
    /// CRDs from `crds/` directories (not templated), parent chart first.
    pub crds: Vec<Manifest>,
    /// Ordinary manifests, in Helm's install order (kind order, then file and document order).
    pub manifests: Vec<Manifest>,
    /// Hooks, in Helm's order.
    pub hooks: Vec<Hook>,
    /// The top chart's `NOTES.txt`, rendered.
    pub notes: String,
    /// Things the user should know (non-deterministic functions, ignored conditions, ...).
    pub warnings: Vec<String>,
}

/// Why a chart could not be rendered. `message` is Helm's text where Helm has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RenderError {
    /// The message (template errors carry `chart/templates/x.yaml:LINE:COL`).
    pub message: String,
    /// The template file at fault, when known.
    pub template: Option<String>,
    /// 1-based line in that template (0 when unknown).
    pub line: usize,
    /// Column as Go reports it (0 when unknown).
    pub column: usize,
}

impl RenderError {
    fn plain(message: impl Into<String>) -> RenderError {
        RenderError {
            message: message.into(),
            template: None,
            line: 0,
            column: 0,
        }
    }
}

/// Read-only access to the live cluster for `lookup`.
pub trait Lookup {
    /// One object (`name` non-empty) or a list (`{items: [...]}`), as Helm's `lookup`;
    /// an empty map when not found.
    fn lookup(&mut self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Result<J, String>;
}

/// Everything a render depends on besides the chart.
pub struct RenderInput<'a> {
    /// User-supplied values (already combined from files, inline values and `--set`).
    pub values: J,
    /// The release.
    pub release: ReleaseOptions,
    /// `.Capabilities`.
    pub capabilities: Capabilities,
    /// `lookup` against a cluster; `None` makes `lookup` return empty maps (as `helm template`).
    pub lookup: Option<&'a mut dyn Lookup>,
    /// Execution limits.
    pub limits: ExecOptions,
}

/// The functions charts can call: sprig (without `env`/`expandenv`), Helm's own, and
/// the engine's `include`/`tpl`.
pub fn func_map() -> FuncMap {
    let mut map = FuncMap::new();
    crate::sprig::register(&mut map);
    crate::helmfuncs::register(&mut map);
    map.remove("env");
    map.remove("expandenv");
    map.insert("include", template::include_func);
    map.insert("tpl", template::tpl_func);
    map.insert("lookup", lookup_func);
    // `helm template` without --enable-dns: getHostByName returns "" (Helm's engine).
    map.insert("getHostByName", |_env, _args| Ok(Value::str("")));
    map
}

fn lookup_func(env: &mut dyn Env, args: &[Value]) -> Result<Value, String> {
    let a = crate::funcs::Args::new(args);
    a.exactly("lookup", 4)?;
    env.lookup(a.str(0)?, a.str(1)?, a.str(2)?, a.str(3)?)
}

struct RenderHost<'a, 'b> {
    lookup: Option<&'a mut (dyn Lookup + 'b)>,
    warnings: Vec<String>,
}

impl Host for RenderHost<'_, '_> {
    fn lookup(&mut self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Result<Value, String> {
        match &mut self.lookup {
            None => Ok(Value::empty_map()),
            Some(l) => l.lookup(api_version, kind, namespace, name).map(|j| json_to_value(&j)),
        }
    }
    fn warn(&mut self, _template: &str, message: String) {
        if !self.warnings.contains(&message) {
            self.warnings.push(message);
        }
    }
}

/// A template to execute, with the data of its chart.
struct Renderable {
    data: Value,
    base_path: String,
}

/// Renders `chart` (consumed: dependency processing rewrites it, as Helm's does).
pub fn render_chart(mut chart: Chart, input: RenderInput<'_>) -> Result<RenderedChart, RenderError> {
    let mut out = RenderedChart::default();
    let caps = &input.capabilities;
    if !chart.metadata.kube_version.is_empty()
        && !values::is_compatible_range(&chart.metadata.kube_version, &caps.kube_version.normalized)
    {
        return Err(RenderError::plain(format!(
            "chart requires kubeVersion: {} which is incompatible with Kubernetes {}",
            chart.metadata.kube_version, caps.kube_version.version
        )));
    }
    values::process_dependencies(&mut chart, &input.values, &mut out.warnings);
    let vals = values::coalesce_values(&chart, &input.values);
    crate::schema::validate(&chart, &vals).map_err(|e| {
        RenderError::plain(format!(
            "values don't meet the specifications of the schema(s) in the following chart(s):\n{e}"
        ))
    })?;
    let release = Value::map(BTreeMap::from([
        ("Name".to_string(), Value::str(input.release.name.as_str())),
        ("Namespace".to_string(), Value::str(input.release.namespace.as_str())),
        ("IsUpgrade".to_string(), Value::Bool(input.release.is_upgrade)),
        ("IsInstall".to_string(), Value::Bool(input.release.is_install)),
        ("Revision".to_string(), Value::int(input.release.revision)),
        ("Service".to_string(), Value::str("Helm")),
    ]));
    let caps_value = caps.to_value();
    let root_values = json_to_value(&vals);

    let mut templates = Templates::new();
    let mut renderables: BTreeMap<String, Renderable> = BTreeMap::new();
    let mut sources: BTreeMap<String, String> = BTreeMap::new();
    collect(
        &chart,
        chart.metadata.name.clone(),
        true,
        &root_values,
        &release,
        &caps_value,
        &mut renderables,
        &mut sources,
    );
    // Helm parses every template into one set, deepest paths first (so that a parent's
    // `define` replaces a subchart's of the same name).
    let mut order: Vec<&String> = sources.keys().collect();
    order.sort_by(|a, b| {
        let (ca, cb) = (a.matches('/').count(), b.matches('/').count());
        cb.cmp(&ca).then_with(|| b.cmp(a))
    });
    for name in &order {
        templates.parse(name, &sources[*name]).map_err(|e| RenderError {
            message: template_parse_message(name, &e),
            template: Some((*name).clone()),
            line: e.line,
            column: e.col,
        })?;
    }
    let funcs = func_map();
    let mut host = RenderHost {
        lookup: input.lookup,
        warnings: Vec::new(),
    };
    let mut rendered: BTreeMap<String, String> = BTreeMap::new();
    for name in &order {
        let base = name.rsplit('/').next().unwrap_or(name);
        if base.starts_with('_') {
            continue;
        }
        let Some(r) = renderables.get(*name) else { continue };
        if let Value::Map(m) = &r.data {
            m.borrow_mut().insert(
                "Template".into(),
                Value::map(BTreeMap::from([
                    ("Name".to_string(), Value::str(name.as_str())),
                    ("BasePath".to_string(), Value::str(r.base_path.as_str())),
                ])),
            );
        }
        let text = template::execute(&templates, &funcs, name, &r.data, &mut host, &input.limits).map_err(|e| {
            RenderError {
                message: template::helm_error_message(&e),
                template: Some(e.template.clone()),
                line: e.line,
                column: e.col,
            }
        })?;
        rendered.insert((*name).clone(), text.replace("<no value>", ""));
    }
    out.warnings.extend(host.warnings);

    let top_notes = format!("{}/templates/NOTES.txt", chart.metadata.name);
    rendered.retain(|k, v| {
        if k.ends_with("NOTES.txt") {
            if *k == top_notes {
                out.notes = std::mem::take(v);
            }
            return false;
        }
        true
    });
    sort_manifests(&rendered, &mut out)?;
    for (path, f) in chart.crds(&chart.metadata.name) {
        out.crds.push(Manifest {
            source: path,
            text: String::from_utf8_lossy(&f.data).into_owned(),
        });
    }
    Ok(out)
}

fn template_parse_message(name: &str, e: &template::TemplateError) -> String {
    // Helm: "parse error at (NAME:LINE): MESSAGE"
    let _ = name;
    format!("parse error at ({}:{}): {}", e.template, e.line, e.message)
}

/// Helm's `recAllTpls`: the data of each chart's templates (`.Values` scoped to the
/// subchart, `.Chart` its metadata, `.Files` its files, `.Subcharts` its children's data).
#[allow(clippy::too_many_arguments)]
fn collect(
    chart: &Chart,
    full_path: String,
    is_root: bool,
    parent_values: &Value,
    release: &Value,
    caps: &Value,
    renderables: &mut BTreeMap<String, Renderable>,
    sources: &mut BTreeMap<String, String>,
) -> Value {
    let values = if is_root {
        parent_values.clone()
    } else {
        match parent_values {
            Value::Map(m) => match m.borrow().get(&chart.metadata.name) {
                Some(v @ Value::Map(_)) => v.clone(),
                _ => Value::empty_map(),
            },
            _ => Value::empty_map(),
        }
    };
    let subcharts = Value::empty_map();
    let files = Files::new(
        chart
            .files
            .iter()
            .map(|f| (f.name.clone(), Rc::from(f.data.as_slice())))
            .collect(),
    );
    let data = Value::map(BTreeMap::from([
        ("Chart".to_string(), metadata_value(chart, is_root)),
        ("Files".to_string(), files.into_value()),
        ("Release".to_string(), release.clone()),
        ("Capabilities".to_string(), caps.clone()),
        ("Values".to_string(), values.clone()),
        ("Subcharts".to_string(), subcharts.clone()),
    ]));
    for child in &chart.dependencies {
        let child_path = format!("{full_path}/charts/{}", child.metadata.name);
        let child_data = collect(child, child_path, false, &values, release, caps, renderables, sources);
        if let Value::Map(m) = &subcharts {
            m.borrow_mut().insert(child.metadata.name.clone(), child_data);
        }
    }
    for t in &chart.templates {
        if chart.is_library() && !t.name.rsplit('/').next().unwrap_or("").starts_with('_') {
            continue;
        }
        let name = format!("{full_path}/{}", t.name);
        sources.insert(name.clone(), String::from_utf8_lossy(&t.data).into_owned());
        renderables.insert(
            name,
            Renderable {
                // Each template gets its own top-level map (Helm mutates `Template` on it);
                // the maps inside are shared, as in Helm.
                data: shallow_copy(&data),
                base_path: format!("{full_path}/templates"),
            },
        );
    }
    data
}

fn shallow_copy(v: &Value) -> Value {
    match v {
        Value::Map(m) => Value::map(m.borrow().clone()),
        other => other.clone(),
    }
}

/// `.Chart`: Helm v4 gives the metadata struct as a map keyed by Go field names.
fn metadata_value(chart: &Chart, is_root: bool) -> Value {
    let md = &chart.metadata;
    let strs = |v: &[String]| Value::list(v.iter().map(|s| Value::str(s.as_str())).collect());
    let deps = md
        .dependencies
        .iter()
        .map(|d| {
            Value::map(BTreeMap::from([
                ("Name".to_string(), Value::str(d.name.as_str())),
                ("Version".to_string(), Value::str(d.version.as_str())),
                ("Repository".to_string(), Value::str(d.repository.as_str())),
                ("Condition".to_string(), Value::str(d.condition.as_str())),
                ("Tags".to_string(), strs(&d.tags)),
                ("Enabled".to_string(), Value::Bool(d.enabled)),
                (
                    "ImportValues".to_string(),
                    Value::list(d.import_values.iter().map(json_to_value).collect()),
                ),
                ("Alias".to_string(), Value::str(d.alias.as_str())),
            ]))
        })
        .collect();
    Value::map(BTreeMap::from([
        ("Name".to_string(), Value::str(md.name.as_str())),
        ("Home".to_string(), Value::str(md.home.as_str())),
        ("Sources".to_string(), strs(&md.sources)),
        ("Version".to_string(), Value::str(md.version.as_str())),
        ("Description".to_string(), Value::str(md.description.as_str())),
        ("Keywords".to_string(), strs(&md.keywords)),
        (
            "Maintainers".to_string(),
            Value::list(md.maintainers.iter().map(json_to_value).collect()),
        ),
        ("Icon".to_string(), Value::str(md.icon.as_str())),
        ("APIVersion".to_string(), Value::str(md.api_version.as_str())),
        ("Condition".to_string(), Value::str(md.condition.as_str())),
        ("Tags".to_string(), Value::str(md.tags.as_str())),
        ("AppVersion".to_string(), Value::str(md.app_version.as_str())),
        ("Deprecated".to_string(), Value::Bool(md.deprecated)),
        (
            "Annotations".to_string(),
            Value::map(
                md.annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::str(v.as_str())))
                    .collect(),
            ),
        ),
        ("KubeVersion".to_string(), Value::str(md.kube_version.as_str())),
        ("Dependencies".to_string(), Value::list(deps)),
        ("Type".to_string(), Value::str(md.chart_type.as_str())),
        ("IsRoot".to_string(), Value::Bool(is_root)),
    ]))
}

/// Helm's kind install order.
const INSTALL_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// Splits rendered files into documents as Helm's `SplitManifests` (`^---` at a line start),
/// in document order.
pub fn split_manifests(text: &str) -> Vec<String> {
    let text = text.trim_start();
    let mut docs = Vec::new();
    let mut current = String::new();
    for line in text.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix("---") {
            let rest_trim = rest.trim_start_matches([' ', '\t']);
            docs.push(std::mem::take(&mut current));
            current.push_str(rest_trim);
            continue;
        }
        current.push_str(line);
    }
    docs.push(current);
    docs.into_iter()
        .filter(|d| !d.trim().is_empty())
        .map(|d| d.trim_start().to_string())
        .collect()
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Head {
    kind: String,
    metadata: Option<HeadMeta>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct HeadMeta {
    annotations: Option<BTreeMap<String, J>>,
}

fn sort_manifests(files: &BTreeMap<String, String>, out: &mut RenderedChart) -> Result<(), RenderError> {
    let mut generic: Vec<(String, Manifest)> = Vec::new();
    let mut hooks: Vec<(String, Hook)> = Vec::new();
    for (path, content) in files {
        let base = path.rsplit('/').next().unwrap_or(path);
        if base.starts_with('_') || content.trim().is_empty() {
            continue;
        }
        for doc in split_manifests(content) {
            let head_json = crate::chart::yaml_to_json(&doc, false).map_err(|e| RenderError {
                message: format!("YAML parse error on {path}: {e}"),
                template: Some(path.clone()),
                line: 0,
                column: 0,
            })?;
            let head: Head = if head_json.is_object() {
                serde_json::from_value(head_json).unwrap_or_default()
            } else {
                Head::default()
            };
            let manifest = Manifest {
                source: path.clone(),
                text: doc,
            };
            let annotations = head.metadata.and_then(|m| m.annotations).unwrap_or_default();
            let Some(hook_types) = annotations.get("helm.sh/hook").and_then(|v| v.as_str()) else {
                generic.push((head.kind, manifest));
                continue;
            };
            let events: Vec<String> = hook_types.split(',').map(|h| h.trim().to_ascii_lowercase()).collect();
            if events.iter().any(|e| !KNOWN_HOOKS.contains(&e.as_str())) {
                out.warnings.push(format!(
                    "{path}: unknown hook type in helm.sh/hook: {hook_types:?}; the document is skipped, as Helm does"
                ));
                continue;
            }
            let events = events
                .into_iter()
                .map(|e| if e == "test-success" { "test".to_string() } else { e })
                .collect();
            let weight = annotations
                .get("helm.sh/hook-weight")
                .and_then(|v| v.as_str())
                .and_then(|w| w.trim().parse::<i64>().ok())
                .unwrap_or(0);
            let delete_policies = annotations
                .get("helm.sh/hook-delete-policy")
                .and_then(|v| v.as_str())
                .map(|p| p.split(',').map(|s| s.trim().to_ascii_lowercase()).collect())
                .unwrap_or_default();
            hooks.push((
                head.kind,
                Hook {
                    manifest,
                    events,
                    weight,
                    delete_policies,
                },
            ));
        }
    }
    let rank = |kind: &str| INSTALL_ORDER.iter().position(|k| *k == kind).unwrap_or(INSTALL_ORDER.len());
    // Stable sorts keep file and document order within a kind, as Helm's sort.SliceStable.
    generic.sort_by_key(|(kind, _)| rank(kind));
    hooks.sort_by(|(ka, a), (kb, b)| a.weight.cmp(&b.weight).then_with(|| rank(ka).cmp(&rank(kb))));
    out.manifests = generic.into_iter().map(|(_, m)| m).collect();
    out.hooks = hooks.into_iter().map(|(_, h)| h).collect();
    Ok(())
}

const KNOWN_HOOKS: &[&str] = &[
    "pre-install",
    "post-install",
    "pre-delete",
    "post-delete",
    "pre-upgrade",
    "post-upgrade",
    "pre-rollback",
    "post-rollback",
    "test",
    "test-success",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_like_helm() {
        let docs = split_manifests("\n---\na: 1\n---   # c\nb: 2\n---\n\n---\nc: 3\n");
        assert_eq!(docs, vec!["a: 1\n", "# c\nb: 2\n", "c: 3\n"]);
        assert_eq!(split_manifests("x: 1\n--- \ny: 2"), vec!["x: 1\n", "y: 2"]);
        assert!(split_manifests("  \n").is_empty());
    }
}

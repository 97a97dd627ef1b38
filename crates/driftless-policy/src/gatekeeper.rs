//! Gatekeeper `ConstraintTemplate`s and constraints, evaluated without Gatekeeper.
//!
//! Decisions:
//! - **Documents are taken as they are** (`templates.gatekeeper.sh/*` `ConstraintTemplate`,
//!   `constraints.gatekeeper.sh/*` constraints), so the public gatekeeper-library and a
//!   cluster's own templates can be reused unchanged. Other documents in the same file (a
//!   `kustomization.yaml`, sample objects) are skipped with a debug log.
//! - **Rego**: `spec.targets[0].rego` + `libs`, or, for templates that also carry CEL, the
//!   `code[]` entry with `engine: Rego` (`source.rego`, `source.libs`). CEL-only templates
//!   (`K8sNativeValidation` without Rego) are refused: driftless has no CEL evaluator.
//!   Both Rego v0 (Gatekeeper's default) and v1 are accepted.
//! - **One engine per template**: the library reuses package names such as
//!   `lib.exempt_container` with different contents across templates, so templates never
//!   share an engine. Each template is compiled and run once on an empty review when it is
//!   added, so broken Rego is reported at load time, naming the template.
//! - **Input** is Gatekeeper's admission review of a `CREATE`: `input.review.object`,
//!   `kind {group, version, kind}`, `name`, `namespace` (omitted when empty, as in an
//!   `AdmissionRequest`), `operation`, `dryRun: true`, `userInfo.username: driftless`, and
//!   `input.parameters` (the constraint's `spec.parameters`, `{}` when absent).
//! - **`data.inventory`** (Gatekeeper's synced cluster state, used by uniqueness templates)
//!   is built from the rendered objects being evaluated:
//!   `inventory.namespace[ns][apiVersion][kind][name]` and
//!   `inventory.cluster[apiVersion][kind][name]`. It is only built for templates whose Rego
//!   mentions `data.inventory`.
//! - **Matching** follows Gatekeeper's `match` semantics: `kinds` (`"*"` and empty lists match
//!   everything), `namespaces`/`excludedNamespaces` with `prefix*`/`*suffix` globs (a
//!   Namespace object matches by its own name; an object without a namespace cannot be
//!   disqualified, as in gator), `labelSelector`, `namespaceSelector` (against the labels of
//!   the Namespace object in the same render; an unknown namespace cannot be disqualified),
//!   `name` (glob) and `scope` (`Cluster` = no namespace).
//! - **Severity** from `spec.enforcementAction`: `deny` (default) is deny; `warn` and `dryrun`
//!   are warn; `scoped` takes the strictest of `spec.scopedEnforcementActions[].action`.

use std::collections::BTreeMap;

use driftless_core::object::group_of;
use regorus::Engine;
use serde_json::{Map, Value, json};

use crate::error::PolicyError;
use crate::rego;
use crate::report::Severity;

/// A compiled `ConstraintTemplate`.
#[derive(Clone)]
pub(crate) struct Template {
    /// `metadata.name`.
    pub(crate) name: String,
    /// `spec.crd.spec.names.kind`, the kind of its constraints.
    pub(crate) kind: String,
    /// The file it came from.
    pub(crate) file: String,
    /// `data.<package>.violation`.
    pub(crate) entry: String,
    /// Whether the Rego reads `data.inventory`.
    pub(crate) uses_inventory: bool,
    /// The engine holding its modules, already prepared.
    pub(crate) engine: Engine,
}

/// A constraint (an instance of a template's kind).
#[derive(Debug, Clone)]
pub(crate) struct Constraint {
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) file: String,
    pub(crate) parameters: Value,
    pub(crate) matcher: Match,
    pub(crate) severity: Severity,
}

impl Constraint {
    /// `Kind/name`, the policy name in reports.
    pub(crate) fn policy_name(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

/// What one YAML file held.
#[derive(Default)]
pub(crate) struct Parsed {
    pub(crate) templates: Vec<Template>,
    pub(crate) constraints: Vec<Constraint>,
}

/// Parses every document of a YAML file, compiling templates and reading constraints.
pub(crate) fn parse_file(file: &str, text: &str) -> Result<Parsed, PolicyError> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| PolicyError::Yaml {
        file: file.to_owned(),
        message: e.to_string().lines().next().unwrap_or_default().to_owned(),
    })?;
    let mut out = Parsed::default();
    for doc in docs {
        if doc.is_null() {
            continue;
        }
        let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
        let group = group_of(api_version);
        if group == "templates.gatekeeper.sh" && kind == "ConstraintTemplate" {
            out.templates.push(compile_template(file, &doc)?);
        } else if group == "constraints.gatekeeper.sh" {
            out.constraints.push(parse_constraint(file, &doc)?);
        } else {
            tracing::debug!(
                file,
                api_version,
                kind,
                "skipping a document that is not a Gatekeeper policy"
            );
        }
    }
    Ok(out)
}

fn compile_template(file: &str, doc: &Value) -> Result<Template, PolicyError> {
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned();
    let err = |message: String| PolicyError::Template {
        file: file.to_owned(),
        template: name.clone(),
        message,
    };
    let kind = doc
        .pointer("/spec/crd/spec/names/kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| err("spec.crd.spec.names.kind is missing".into()))?
        .to_owned();
    let target = doc
        .pointer("/spec/targets/0")
        .ok_or_else(|| err("spec.targets is empty".into()))?;
    if doc.pointer("/spec/targets/1").is_some() {
        return Err(err("more than one target (Gatekeeper allows exactly one)".into()));
    }
    let (source, libs) = rego_of(target).ok_or_else(|| {
        err("no Rego source (spec.targets[0].rego or a code entry with engine: Rego); CEL-only templates are not supported".into())
    })?;

    let mut engine = Engine::new();
    let main_path = format!("{name}.rego");
    let package = rego::add_module(&mut engine, &main_path, &source).map_err(&err)?;
    for (i, lib) in libs.iter().enumerate() {
        rego::add_module(&mut engine, &format!("{name}.lib{i}.rego"), lib).map_err(&err)?;
    }
    if !engine
        .has_declared_rule_rooted_at(&main_path, "violation")
        .unwrap_or(false)
    {
        return Err(err(format!("{package} has no violation rule")));
    }
    let uses_inventory = source.contains("data.inventory") || libs.iter().any(|l| l.contains("data.inventory"));
    let entry = format!("{package}.violation");
    // Compile now (and prepare the engine for cheap clones): unsafe variables, unknown
    // functions and type errors surface here rather than on the first object.
    engine.set_input(rego::to_rego(&json!({"review": {"object": {}}, "parameters": {}})));
    engine
        .eval_rule(entry.clone())
        .map_err(|e| err(rego::clean_error(&e.to_string())))?;
    Ok(Template {
        name,
        kind,
        file: file.to_owned(),
        entry,
        uses_inventory,
        engine,
    })
}

/// The main Rego module and libraries of a template target.
fn rego_of(target: &Value) -> Option<(String, Vec<String>)> {
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    if let Some(rego) = target.get("rego").and_then(Value::as_str) {
        return Some((rego.to_owned(), strings(target.get("libs"))));
    }
    let code = target.get("code")?.as_array()?;
    let entry = code
        .iter()
        .find(|c| c.get("engine").and_then(Value::as_str) == Some("Rego"))?;
    let source = entry.get("source")?;
    let rego = source.get("rego")?.as_str()?;
    Some((rego.to_owned(), strings(source.get("libs"))))
}

fn parse_constraint(file: &str, doc: &Value) -> Result<Constraint, PolicyError> {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned();
    let err = |message: String| PolicyError::Constraint {
        file: file.to_owned(),
        kind: kind.clone(),
        name: name.clone(),
        message,
    };
    if kind.is_empty() {
        return Err(err("kind is missing".into()));
    }
    let spec = doc.get("spec").cloned().unwrap_or_else(|| json!({}));
    let parameters = spec.get("parameters").cloned().unwrap_or_else(|| json!({}));
    let matcher = match spec.get("match") {
        None | Some(Value::Null) => Match::default(),
        Some(m) => Match::parse(m).map_err(&err)?,
    };
    let severity = severity_of(&spec).map_err(&err)?;
    Ok(Constraint {
        kind,
        name,
        file: file.to_owned(),
        parameters,
        matcher,
        severity,
    })
}

fn severity_of(spec: &Value) -> Result<Severity, String> {
    let action = spec.get("enforcementAction").and_then(Value::as_str).unwrap_or("deny");
    action_severity(action)
        .or_else(|| {
            if !action.eq_ignore_ascii_case("scoped") {
                return None;
            }
            let scoped = spec.get("scopedEnforcementActions")?.as_array()?;
            let actions: Vec<Severity> = scoped
                .iter()
                .filter_map(|s| s.get("action").and_then(Value::as_str))
                .filter_map(action_severity)
                .collect();
            Some(actions.into_iter().min().unwrap_or(Severity::Warn))
        })
        .ok_or_else(|| format!("unknown enforcementAction {action:?} (expected deny, warn, dryrun or scoped)"))
}

fn action_severity(action: &str) -> Option<Severity> {
    match action.to_ascii_lowercase().as_str() {
        "deny" | "" => Some(Severity::Deny),
        "warn" | "dryrun" => Some(Severity::Warn),
        _ => None,
    }
}

/// A constraint's `spec.match`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Match {
    kinds: Vec<(Vec<String>, Vec<String>)>,
    namespaces: Vec<String>,
    excluded_namespaces: Vec<String>,
    label_selector: Option<Selector>,
    namespace_selector: Option<Selector>,
    name: Option<String>,
    scope: Option<String>,
}

/// What matching needs to know about an object.
pub(crate) struct Target<'a> {
    pub(crate) object: &'a Value,
    pub(crate) group: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) name: &'a str,
    pub(crate) namespace: Option<&'a str>,
    /// Labels of the object's Namespace, when that Namespace is part of the render.
    pub(crate) namespace_labels: Option<&'a Map<String, Value>>,
}

impl Match {
    fn parse(m: &Value) -> Result<Match, String> {
        let strings = |v: Option<&Value>, what: &str| -> Result<Vec<String>, String> {
            match v {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|s| {
                        s.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| format!("{what} must hold strings"))
                    })
                    .collect(),
                Some(_) => Err(format!("{what} must be a list")),
            }
        };
        let mut kinds = Vec::new();
        if let Some(list) = m.get("kinds").filter(|v| !v.is_null()) {
            let list = list.as_array().ok_or("match.kinds must be a list")?;
            for k in list {
                kinds.push((
                    strings(k.get("apiGroups"), "match.kinds[].apiGroups")?,
                    strings(k.get("kinds"), "match.kinds[].kinds")?,
                ));
            }
        }
        let selector = |key: &str| -> Result<Option<Selector>, String> {
            match m.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => Selector::parse(v).map(Some).map_err(|e| format!("match.{key}: {e}")),
            }
        };
        Ok(Match {
            kinds,
            namespaces: strings(m.get("namespaces"), "match.namespaces")?,
            excluded_namespaces: strings(m.get("excludedNamespaces"), "match.excludedNamespaces")?,
            label_selector: selector("labelSelector")?,
            namespace_selector: selector("namespaceSelector")?,
            name: m.get("name").and_then(Value::as_str).map(str::to_owned),
            scope: m.get("scope").and_then(Value::as_str).map(str::to_owned),
        })
    }

    /// Whether the constraint applies to `t`.
    pub(crate) fn matches(&self, t: &Target<'_>) -> bool {
        self.kinds_match(t)
            && self.namespaces_match(t)
            && self.scope_match(t)
            && self.name_match(t)
            && {
                let labels = t.object.pointer("/metadata/labels").and_then(Value::as_object);
                self.label_selector.as_ref().is_none_or(|s| s.matches(labels))
            }
            && self.namespace_selector_match(t)
    }

    fn kinds_match(&self, t: &Target<'_>) -> bool {
        if self.kinds.is_empty() {
            return true;
        }
        self.kinds.iter().any(|(groups, kinds)| {
            let group_ok = groups.is_empty() || groups.iter().any(|g| g == "*" || g == t.group);
            let kind_ok = kinds.is_empty() || kinds.iter().any(|k| k == "*" || k == t.kind);
            group_ok && kind_ok
        })
    }

    /// The namespace used for namespace matching: a Namespace's own name, else the object's
    /// namespace; `None` when it has none (which never disqualifies).
    fn effective_namespace<'a>(t: &Target<'a>) -> Option<&'a str> {
        if t.group.is_empty() && t.kind == "Namespace" {
            Some(t.name)
        } else {
            t.namespace
        }
    }

    fn namespaces_match(&self, t: &Target<'_>) -> bool {
        let Some(ns) = Self::effective_namespace(t) else {
            return true;
        };
        if !self.namespaces.is_empty() && !self.namespaces.iter().any(|p| wildcard(p, ns)) {
            return false;
        }
        !self.excluded_namespaces.iter().any(|p| wildcard(p, ns))
    }

    fn scope_match(&self, t: &Target<'_>) -> bool {
        match self.scope.as_deref() {
            Some("Cluster") => t.namespace.is_none(),
            Some("Namespaced") => t.namespace.is_some(),
            _ => true,
        }
    }

    fn name_match(&self, t: &Target<'_>) -> bool {
        self.name.as_deref().is_none_or(|p| p.is_empty() || wildcard(p, t.name))
    }

    fn namespace_selector_match(&self, t: &Target<'_>) -> bool {
        let Some(sel) = &self.namespace_selector else {
            return true;
        };
        if t.group.is_empty() && t.kind == "Namespace" {
            return sel.matches(t.object.pointer("/metadata/labels").and_then(Value::as_object));
        }
        if t.namespace.is_none() {
            return true;
        }
        match t.namespace_labels {
            Some(labels) => sel.matches(Some(labels)),
            // The Namespace is not in the render: its labels are unknown, and what cannot be
            // known cannot disqualify the match.
            None => true,
        }
    }
}

/// Gatekeeper's namespace/name globs: `*` at the start and/or end of the pattern.
fn wildcard(pattern: &str, value: &str) -> bool {
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        _ if pattern == "*" => true,
        (Some(rest), _) if rest.ends_with('*') => value.contains(&rest[..rest.len() - 1]),
        (Some(suffix), _) => value.ends_with(suffix),
        (None, Some(prefix)) => value.starts_with(prefix),
        (None, None) => pattern == value,
    }
}

/// A Kubernetes label selector (`matchLabels` and `matchExpressions`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Selector {
    labels: BTreeMap<String, String>,
    expressions: Vec<(String, String, Vec<String>)>,
}

impl Selector {
    fn parse(v: &Value) -> Result<Selector, String> {
        let mut sel = Selector::default();
        if let Some(ml) = v.get("matchLabels").and_then(Value::as_object) {
            for (k, val) in ml {
                let val = val.as_str().ok_or("matchLabels values must be strings")?;
                sel.labels.insert(k.clone(), val.to_owned());
            }
        }
        if let Some(exprs) = v.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e
                    .get("key")
                    .and_then(Value::as_str)
                    .ok_or("matchExpressions[].key is missing")?;
                let op = e
                    .get("operator")
                    .and_then(Value::as_str)
                    .ok_or("matchExpressions[].operator is missing")?;
                if !matches!(op, "In" | "NotIn" | "Exists" | "DoesNotExist") {
                    return Err(format!("unknown matchExpressions operator {op:?}"));
                }
                let values = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default();
                sel.expressions.push((key.to_owned(), op.to_owned(), values));
            }
        }
        Ok(sel)
    }

    fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.labels.iter().all(|(k, v)| get(k) == Some(v.as_str()))
            && self.expressions.iter().all(|(k, op, values)| match op.as_str() {
                "In" => get(k).is_some_and(|v| values.iter().any(|x| x == v)),
                "NotIn" => get(k).is_none_or(|v| !values.iter().any(|x| x == v)),
                "Exists" => get(k).is_some(),
                _ => get(k).is_none(),
            })
    }
}

/// Gatekeeper's review input for one object under one constraint.
#[cfg(test)]
pub(crate) fn review_input(object: &Value, parameters: &Value) -> Value {
    let mut input = review_input_without_object(object, parameters);
    input["review"]["object"] = object.clone();
    input
}

/// [`review_input`] without `review.object`, which the caller splices in (already
/// converted for the engine, so a large object is not copied once per constraint).
pub(crate) fn review_input_without_object(object: &Value, parameters: &Value) -> Value {
    let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let (group, version) = match api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
    let mut review = json!({
        "kind": {"group": group, "version": version, "kind": kind},
        "operation": "CREATE",
        "dryRun": true,
        "userInfo": {"username": "driftless"},
    });
    for (field, ptr) in [("name", "/metadata/name"), ("namespace", "/metadata/namespace")] {
        if let Some(v) = object.pointer(ptr).and_then(Value::as_str).filter(|v| !v.is_empty()) {
            review[field] = json!(v);
        }
    }
    json!({"review": review, "parameters": parameters})
}

/// Gatekeeper's `data.inventory` for a set of objects.
pub(crate) fn inventory(objects: &[&Value]) -> Value {
    let mut namespaced = Map::new();
    let mut cluster = Map::new();
    for obj in objects {
        let (Some(api_version), Some(kind), Some(name)) = (
            obj.get("apiVersion").and_then(Value::as_str),
            obj.get("kind").and_then(Value::as_str),
            obj.pointer("/metadata/name").and_then(Value::as_str),
        ) else {
            continue;
        };
        let root = match obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            Some(ns) => namespaced
                .entry(ns.to_owned())
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("inserted as object"),
            None => &mut cluster,
        };
        let by_kind = root
            .entry(api_version.to_owned())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("inserted as object")
            .entry(kind.to_owned())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("inserted as object");
        by_kind.insert(name.to_owned(), (*obj).clone());
    }
    json!({"inventory": {"namespace": namespaced, "cluster": cluster}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard("kube-*", "kube-system"));
        assert!(!wildcard("kube-*", "prod"));
        assert!(wildcard("*-system", "kube-system"));
        assert!(wildcard("*", "x"));
        assert!(wildcard("prod", "prod"));
        assert!(!wildcard("prod", "prod2"));
    }

    #[test]
    fn selectors() {
        let sel = Selector::parse(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                                 {"key": "skip", "operator": "DoesNotExist"}]
        }))
        .unwrap();
        let l = |v: Value| v.as_object().cloned().unwrap();
        assert!(sel.matches(Some(&l(json!({"app": "web", "tier": "a"})))));
        assert!(!sel.matches(Some(&l(json!({"app": "web", "tier": "c"})))));
        assert!(!sel.matches(Some(&l(json!({"app": "web", "tier": "a", "skip": "1"})))));
        assert!(!sel.matches(None));
        assert!(Selector::parse(&json!({"matchExpressions": [{"key": "a", "operator": "Near"}]})).is_err());
    }

    #[test]
    fn enforcement_actions() {
        assert_eq!(severity_of(&json!({})).unwrap(), Severity::Deny);
        assert_eq!(
            severity_of(&json!({"enforcementAction": "warn"})).unwrap(),
            Severity::Warn
        );
        assert_eq!(
            severity_of(&json!({"enforcementAction": "dryrun"})).unwrap(),
            Severity::Warn
        );
        let scoped = json!({"enforcementAction": "scoped", "scopedEnforcementActions": [
            {"action": "warn"}, {"action": "deny"}]});
        assert_eq!(severity_of(&scoped).unwrap(), Severity::Deny);
        assert!(severity_of(&json!({"enforcementAction": "block"})).is_err());
    }

    #[test]
    fn review_shape() {
        let obj =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "prod"}});
        let input = review_input(&obj, &json!({"a": 1}));
        assert_eq!(
            input["review"]["kind"],
            json!({"group": "apps", "version": "v1", "kind": "Deployment"})
        );
        assert_eq!(input["review"]["namespace"], "prod");
        assert_eq!(input["review"]["name"], "web");
        assert_eq!(input["parameters"]["a"], 1);
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}});
        let input = review_input(&ns, &json!({}));
        assert!(input["review"].get("namespace").is_none());
        assert_eq!(input["review"]["kind"]["group"], "");
    }
}

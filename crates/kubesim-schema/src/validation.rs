//! Validation of built-in kinds as kube-apiserver 1.32 does it on create and update, with
//! the error vocabulary of `k8s.io/apimachinery/pkg/util/validation/field`.
//!
//! # Decisions
//!
//! * [`validate`] expects an object that has already gone through
//!   [`crate::defaults::apply_defaults`], as the real server validates defaulted objects; on an
//!   undefaulted object it still works, but skips checks on fields that defaulting would fill.
//! * Each problem is a [`Cause`] whose `field`, `reason` and `message` are exactly what the
//!   server puts into `Status.details.causes` (`message` is Go's `ErrorBody()`, e.g.
//!   `Unsupported value: "Never": supported values: "Always"`). [`Invalid::message`] builds the
//!   aggregated 422 message (`Deployment.apps "web" is invalid: ...`, several causes joined in
//!   `[a, b]`, duplicates dropped) and [`Invalid::status`] the whole `Status` object.
//! * Bad values of structured types are rendered as compact JSON where Go would print a Go
//!   struct literal (`v1.LabelSelector{...}`); strings and numbers render as Go does.
//! * Immutability is checked when `old` is given. Most immutable fields report
//!   `FieldValueInvalid` / `field is immutable`; where the real server reports `Forbidden`
//!   (immutable ConfigMaps/Secrets, PVC specs, StatefulSet specs) so do we.
//! * Secret `data` values that are not base64 are reported as `FieldValueInvalid` causes; the
//!   real server fails earlier, when decoding, with a 400 whose message contains the same
//!   `illegal base64 data at input byte N`.
//! * Custom resources get metadata validation only; their OpenAPI schema is not enforced.
//! * What needs server state (namespace existence, scope of `metadata.namespace`, UID and
//!   resourceVersion handling, clusterIP allocation) is the server's.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::kinds::ResourceType;
use crate::names;

/// The reason of one cause, with its Kubernetes string form ([`CauseType::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CauseType {
    /// `FieldValueNotFound`.
    FieldValueNotFound,
    /// `FieldValueRequired`.
    FieldValueRequired,
    /// `FieldValueDuplicate`.
    FieldValueDuplicate,
    /// `FieldValueInvalid`.
    FieldValueInvalid,
    /// `FieldValueNotSupported`.
    FieldValueNotSupported,
    /// `FieldValueForbidden`.
    FieldValueForbidden,
    /// `FieldValueTooLong`.
    FieldValueTooLong,
    /// `FieldValueTooMany`.
    FieldValueTooMany,
    /// `InternalError`.
    InternalError,
    /// `FieldValueTypeInvalid`.
    FieldValueTypeInvalid,
}

impl CauseType {
    /// The `reason` string of `Status.details.causes[]`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FieldValueNotFound => "FieldValueNotFound",
            Self::FieldValueRequired => "FieldValueRequired",
            Self::FieldValueDuplicate => "FieldValueDuplicate",
            Self::FieldValueInvalid => "FieldValueInvalid",
            Self::FieldValueNotSupported => "FieldValueNotSupported",
            Self::FieldValueForbidden => "FieldValueForbidden",
            Self::FieldValueTooLong => "FieldValueTooLong",
            Self::FieldValueTooMany => "FieldValueTooMany",
            Self::InternalError => "InternalError",
            Self::FieldValueTypeInvalid => "FieldValueTypeInvalid",
        }
    }

    /// The human phrase that starts the message (`Required value`, `Unsupported value`, ...).
    pub fn phrase(self) -> &'static str {
        match self {
            Self::FieldValueNotFound => "Not found",
            Self::FieldValueRequired => "Required value",
            Self::FieldValueDuplicate => "Duplicate value",
            Self::FieldValueInvalid | Self::FieldValueTypeInvalid => "Invalid value",
            Self::FieldValueNotSupported => "Unsupported value",
            Self::FieldValueForbidden => "Forbidden",
            Self::FieldValueTooLong => "Too long",
            Self::FieldValueTooMany => "Too many",
            Self::InternalError => "Internal error",
        }
    }
}

/// One validation problem, as in `Status.details.causes[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// JSON-path-like field, e.g. `spec.template.spec.containers[0].image`.
    pub field: String,
    /// Kind of problem.
    pub reason: CauseType,
    /// The message body, e.g. `Required value` or `Invalid value: 0: must be between ...`.
    pub message: String,
}

impl Cause {
    fn new(field: &str, reason: CauseType, value: Option<&Value>, detail: &str) -> Self {
        Self::with_rendered(field, reason, value.map(render).as_deref(), detail)
    }

    fn with_rendered(field: &str, reason: CauseType, value: Option<&str>, detail: &str) -> Self {
        let mut message = reason.phrase().to_owned();
        if let Some(v) = value {
            message.push_str(": ");
            message.push_str(v);
        }
        if !detail.is_empty() {
            message.push_str(": ");
            message.push_str(detail);
        }
        Self {
            field: field.to_owned(),
            reason,
            message,
        }
    }

    /// `Required value[: detail]`.
    pub fn required(field: &str, detail: &str) -> Self {
        Self::new(field, CauseType::FieldValueRequired, None, detail)
    }

    /// `Invalid value: <value>: detail`.
    pub fn invalid(field: &str, value: &Value, detail: &str) -> Self {
        Self::new(field, CauseType::FieldValueInvalid, Some(value), detail)
    }

    /// `Unsupported value: <value>: supported values: "a", "b"`.
    pub fn not_supported(field: &str, value: &Value, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
        let detail = format!("supported values: {}", list.join(", "));
        Self::new(field, CauseType::FieldValueNotSupported, Some(value), &detail)
    }

    /// `Forbidden: detail`.
    pub fn forbidden(field: &str, detail: &str) -> Self {
        Self::new(field, CauseType::FieldValueForbidden, None, detail)
    }

    /// `Duplicate value: <value>`.
    pub fn duplicate(field: &str, value: &Value) -> Self {
        Self::new(field, CauseType::FieldValueDuplicate, Some(value), "")
    }

    /// `Not found: <value>`.
    pub fn not_found(field: &str, value: &Value) -> Self {
        Self::new(field, CauseType::FieldValueNotFound, Some(value), "")
    }

    /// `Too long: may not be more than N bytes`.
    pub fn too_long(field: &str, max: usize) -> Self {
        Self::new(
            field,
            CauseType::FieldValueTooLong,
            None,
            &format!("may not be more than {max} bytes"),
        )
    }

    /// `field: message`, the form used in aggregated messages.
    pub fn error_string(&self) -> String {
        if self.field.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.field, self.message)
        }
    }
}

/// Go's `%q` for a string (close enough for printable input: quotes, backslashes and control
/// characters are escaped).
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// How Go's `ErrorBody` prints a bad value.
fn render(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::String(s) => go_quote(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// A rejected object: the causes of a 422 `Invalid` status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", aggregate(&self.causes))]
pub struct Invalid {
    /// Every problem found, in discovery order.
    pub causes: Vec<Cause>,
}

/// Joins cause strings the way `utilerrors.NewAggregate(...).Error()` does.
fn aggregate(causes: &[Cause]) -> String {
    let mut seen = BTreeSet::new();
    let mut parts = Vec::new();
    for c in causes {
        let s = c.error_string();
        if seen.insert(s.clone()) {
            parts.push(s);
        }
    }
    match parts.len() {
        0 => String::new(),
        1 => parts.remove(0),
        _ => format!("[{}]", parts.join(", ")),
    }
}

impl Invalid {
    /// kube-apiserver's message: `Deployment.apps "web" is invalid: <causes>` (the core group
    /// is just `Kind`).
    pub fn message(&self, rt: &ResourceType, name: &str) -> String {
        let gk = if rt.group.is_empty() {
            rt.kind.clone()
        } else {
            format!("{}.{}", rt.kind, rt.group)
        };
        let agg = aggregate(&self.causes);
        if agg.is_empty() {
            format!("{gk} {} is invalid", go_quote(name))
        } else {
            format!("{gk} {} is invalid: {agg}", go_quote(name))
        }
    }

    /// The full `Status` (code 422, reason `Invalid`) the server returns.
    pub fn status(&self, rt: &ResourceType, name: &str) -> Value {
        let causes: Vec<Value> = self
            .causes
            .iter()
            .map(|c| json!({ "reason": c.reason.as_str(), "message": c.message, "field": c.field }))
            .collect();
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message(rt, name),
            "reason": "Invalid",
            "details": { "name": name, "group": rt.group, "kind": rt.kind, "causes": causes },
            "code": 422,
        })
    }
}

/// Validates `obj` (already defaulted) of type `rt`; with `old`, also the update rules
/// (immutable fields). Never panics, whatever the input.
pub fn validate(rt: &ResourceType, obj: &Value, old: Option<&Value>) -> Result<(), Invalid> {
    let mut e = Errs::default();
    let empty = Map::new();
    let root = obj.as_object().unwrap_or(&empty);
    validate_metadata(rt, root, &mut e);
    let builtin = crate::kinds::builtin_types()
        .iter()
        .any(|b| b.group == rt.group && b.version == rt.version && b.kind == rt.kind);
    if builtin {
        let spec = obj_of(root, "spec");
        match rt.kind.as_str() {
            "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => validate_workload(&rt.kind, spec, &mut e),
            "Pod" => pod_spec(spec, "spec", Restart::Any, &mut e),
            "Service" => validate_service(spec, &mut e),
            "ConfigMap" => validate_configmap(root, &mut e),
            "Secret" => validate_secret(root, &mut e),
            "Job" => validate_job_spec(spec, "spec", &mut e),
            "CronJob" => validate_cronjob(spec, &mut e),
            "PersistentVolumeClaim" => validate_pvc(spec, &mut e),
            "Ingress" => validate_ingress(spec, &mut e),
            "NetworkPolicy" => validate_network_policy(spec, &mut e),
            "Role" | "ClusterRole" => validate_role(&rt.kind, root, &mut e),
            "RoleBinding" | "ClusterRoleBinding" => validate_binding(&rt.kind, root, &mut e),
            "PodDisruptionBudget" => validate_pdb(spec, &mut e),
            "HorizontalPodAutoscaler" => validate_hpa(spec, &mut e),
            "CustomResourceDefinition" => validate_crd(root, &mut e),
            _ => {}
        }
        if let Some(old) = old.and_then(Value::as_object) {
            validate_update(&rt.kind, root, old, &mut e);
        }
    }
    if e.0.is_empty() {
        Ok(())
    } else {
        Err(Invalid { causes: e.0 })
    }
}

#[derive(Default)]
struct Errs(Vec<Cause>);

impl Errs {
    fn push(&mut self, c: Cause) {
        self.0.push(c);
    }
    fn required(&mut self, f: &str, detail: &str) {
        self.push(Cause::required(f, detail));
    }
    fn invalid(&mut self, f: &str, v: &Value, detail: &str) {
        self.push(Cause::invalid(f, v, detail));
    }
    fn not_supported(&mut self, f: &str, v: &Value, supported: &[&str]) {
        self.push(Cause::not_supported(f, v, supported));
    }
    fn forbidden(&mut self, f: &str, detail: &str) {
        self.push(Cause::forbidden(f, detail));
    }
    /// Unsupported-value check for an optional string enum field.
    fn enum_field(&mut self, m: &Map<String, Value>, key: &str, f: &str, supported: &[&str]) {
        if let Some(v) = m.get(key).filter(|v| !v.is_null())
            && !v.as_str().is_some_and(|s| supported.contains(&s))
        {
            self.not_supported(f, v, supported);
        }
    }
    /// Non-negative check for an optional integer field.
    fn non_negative(&mut self, m: &Map<String, Value>, key: &str, f: &str) {
        if let Some(v) = m.get(key)
            && v.as_f64().is_some_and(|n| n < 0.0)
        {
            self.invalid(f, v, "must be greater than or equal to 0");
        }
    }
}

fn obj_of<'a>(m: &'a Map<String, Value>, key: &str) -> &'a Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    m.get(key)
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

fn arr_of<'a>(m: &'a Map<String, Value>, key: &str) -> &'a [Value] {
    m.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn str_of<'a>(m: &'a Map<String, Value>, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or("")
}

fn present(m: &Map<String, Value>, key: &str) -> bool {
    m.get(key).is_some_and(|v| !v.is_null())
}

fn validate_metadata(rt: &ResourceType, root: &Map<String, Value>, e: &mut Errs) {
    let meta = obj_of(root, "metadata");
    let name = str_of(meta, "name");
    if name.is_empty() {
        if str_of(meta, "generateName").is_empty() {
            e.required("metadata.name", "name or generateName is required");
        }
    } else {
        let msgs = match rt.kind.as_str() {
            "Namespace" if rt.group.is_empty() => names::dns1123_label(name),
            "Service" if rt.group.is_empty() => names::dns1035_label(name),
            "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding"
                if rt.group == "rbac.authorization.k8s.io" =>
            {
                names::path_segment_name(name)
            }
            _ => names::dns1123_subdomain(name),
        };
        for m in msgs {
            e.invalid("metadata.name", &json!(name), &m);
        }
        if rt.kind == "CronJob" && rt.group == "batch" && name.len() > 52 {
            e.invalid("metadata.name", &json!(name), "must be no more than 52 characters");
        }
    }
    labels(obj_of(meta, "labels"), "metadata.labels", e);
    let annotations = obj_of(meta, "annotations");
    let mut total = 0;
    for (k, v) in annotations {
        for m in names::qualified_name(&k.to_ascii_lowercase()) {
            e.invalid("metadata.annotations", &json!(k), &m);
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > names::TOTAL_ANNOTATION_SIZE_MAX {
        e.push(Cause::too_long(
            "metadata.annotations",
            names::TOTAL_ANNOTATION_SIZE_MAX,
        ));
    }
}

fn labels(m: &Map<String, Value>, f: &str, e: &mut Errs) {
    for (k, v) in m {
        for msg in names::qualified_name(k) {
            e.invalid(f, &json!(k), &msg);
        }
        if let Some(s) = v.as_str() {
            for msg in names::label_value(s) {
                e.invalid(f, v, &msg);
            }
        }
    }
}

/// Go-style rendering of a `map[string]string`, as in the selector-mismatch message.
fn go_string_map(m: &Map<String, Value>) -> String {
    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let body: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v.as_str().unwrap_or(""))))
        .collect();
    format!("map[string]string{{{}}}", body.join(", "))
}

/// Whether a label selector (`matchLabels` + `matchExpressions`) selects `labels`.
pub fn selector_matches(selector: &Map<String, Value>, labels: &Map<String, Value>) -> bool {
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    for (k, v) in obj_of(selector, "matchLabels") {
        if get(k) != v.as_str() {
            return false;
        }
    }
    for expr in arr_of(selector, "matchExpressions") {
        let Some(x) = expr.as_object() else {
            return false;
        };
        let key = str_of(x, "key");
        let values: Vec<&str> = arr_of(x, "values").iter().filter_map(Value::as_str).collect();
        let ok = match str_of(x, "operator") {
            "In" => get(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => get(key).is_none_or(|v| !values.contains(&v)),
            "Exists" => get(key).is_some(),
            "DoesNotExist" => get(key).is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

fn label_selector(sel: &Map<String, Value>, f: &str, e: &mut Errs) {
    labels(obj_of(sel, "matchLabels"), &format!("{f}.matchLabels"), e);
    for (i, expr) in arr_of(sel, "matchExpressions").iter().enumerate() {
        let Some(x) = expr.as_object() else { continue };
        let ef = format!("{f}.matchExpressions[{i}]");
        let op = x.get("operator").cloned().unwrap_or(json!(""));
        let n = arr_of(x, "values").len();
        match op.as_str() {
            Some("In" | "NotIn") if n == 0 => e.required(
                &format!("{ef}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            ),
            Some("Exists" | "DoesNotExist") if n > 0 => e.forbidden(
                &format!("{ef}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            ),
            Some("In" | "NotIn" | "Exists" | "DoesNotExist") => {}
            _ => e.invalid(&format!("{ef}.operator"), &op, "not a valid selector operator"),
        }
        for msg in names::qualified_name(str_of(x, "key")) {
            e.invalid(&format!("{ef}.key"), &json!(str_of(x, "key")), &msg);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Restart {
    /// Workload templates: only `Always`.
    Always,
    /// Pods: `Always`, `OnFailure`, `Never`.
    Any,
    /// Job templates: `OnFailure` or `Never`, required.
    Job,
}

fn port_in_range(v: &Value) -> bool {
    v.as_i64().is_some_and(|n| (1..=65535).contains(&n))
}

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const RANGE_MSG: &str = "must be between 1 and 65535, inclusive";

fn pod_spec(spec: &Map<String, Value>, f: &str, restart: Restart, e: &mut Errs) {
    // Volumes.
    let mut volumes = BTreeSet::new();
    for (i, v) in arr_of(spec, "volumes").iter().enumerate() {
        let vf = format!("{f}.volumes[{i}].name");
        let name = v.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            e.required(&vf, "");
        } else {
            for m in names::dns1123_label(name) {
                e.invalid(&vf, &json!(name), &m);
            }
            if !volumes.insert(name.to_owned()) {
                e.push(Cause::duplicate(&vf, &json!(name)));
            }
        }
    }
    // Containers.
    let containers = arr_of(spec, "containers");
    if containers.is_empty() {
        e.required(&format!("{f}.containers"), "");
    }
    let mut container_names = BTreeSet::new();
    for key in ["initContainers", "containers"] {
        for (i, c) in arr_of(spec, key).iter().enumerate() {
            let cf = format!("{f}.{key}[{i}]");
            let Some(c) = c.as_object() else {
                e.invalid(&cf, c, "must be an object");
                continue;
            };
            container(c, &cf, &volumes, &mut container_names, e);
        }
    }
    // Pod-level enums.
    match spec.get("restartPolicy").filter(|v| !v.is_null()) {
        None => {
            if restart == Restart::Job {
                e.required(&format!("{f}.restartPolicy"), "valid values: \"OnFailure\", \"Never\"");
            }
        }
        Some(v) => {
            let supported: &[&str] = match restart {
                Restart::Always => &["Always"],
                Restart::Any => &["Always", "OnFailure", "Never"],
                Restart::Job => &["OnFailure", "Never"],
            };
            if !v.as_str().is_some_and(|s| supported.contains(&s)) {
                e.not_supported(&format!("{f}.restartPolicy"), v, supported);
            }
        }
    }
    e.enum_field(
        spec,
        "dnsPolicy",
        &format!("{f}.dnsPolicy"),
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
    );
    e.non_negative(
        spec,
        "terminationGracePeriodSeconds",
        &format!("{f}.terminationGracePeriodSeconds"),
    );
    if let Some(v) = spec.get("activeDeadlineSeconds")
        && v.as_i64().is_some_and(|n| n <= 0)
    {
        e.invalid(
            &format!("{f}.activeDeadlineSeconds"),
            v,
            "must be between 1 and 2147483647, inclusive",
        );
    }
}

fn container(c: &Map<String, Value>, f: &str, volumes: &BTreeSet<String>, seen: &mut BTreeSet<String>, e: &mut Errs) {
    let name = str_of(c, "name");
    if name.is_empty() {
        e.required(&format!("{f}.name"), "");
    } else {
        for m in names::dns1123_label(name) {
            e.invalid(&format!("{f}.name"), &json!(name), &m);
        }
        if !seen.insert(name.to_owned()) {
            e.push(Cause::duplicate(&format!("{f}.name"), &json!(name)));
        }
    }
    let image = str_of(c, "image");
    if image.trim().is_empty() {
        e.required(&format!("{f}.image"), "");
    } else if image.trim() != image {
        e.invalid(
            &format!("{f}.image"),
            &json!(image),
            "must not have leading or trailing whitespace",
        );
    }
    e.enum_field(
        c,
        "imagePullPolicy",
        &format!("{f}.imagePullPolicy"),
        &["Always", "IfNotPresent", "Never"],
    );
    e.enum_field(
        c,
        "terminationMessagePolicy",
        &format!("{f}.terminationMessagePolicy"),
        &["File", "FallbackToLogsOnError"],
    );
    let mut port_names = BTreeSet::new();
    for (i, p) in arr_of(c, "ports").iter().enumerate() {
        let Some(p) = p.as_object() else { continue };
        let pf = format!("{f}.ports[{i}]");
        match p.get("containerPort") {
            None | Some(Value::Null) => e.required(&format!("{pf}.containerPort"), ""),
            Some(v) if !port_in_range(v) => e.invalid(&format!("{pf}.containerPort"), v, RANGE_MSG),
            _ => {}
        }
        if let Some(v) = p.get("hostPort")
            && !v.is_null()
            && v.as_i64() != Some(0)
            && !port_in_range(v)
        {
            e.invalid(&format!("{pf}.hostPort"), v, RANGE_MSG);
        }
        let pname = str_of(p, "name");
        if !pname.is_empty() {
            for m in names::iana_svc_name(pname) {
                e.invalid(&format!("{pf}.name"), &json!(pname), &m);
            }
            if !port_names.insert(pname.to_owned()) {
                e.push(Cause::duplicate(&format!("{pf}.name"), &json!(pname)));
            }
        }
        e.enum_field(p, "protocol", &format!("{pf}.protocol"), PROTOCOLS);
    }
    for (i, env) in arr_of(c, "env").iter().enumerate() {
        if env.get("name").and_then(Value::as_str).unwrap_or("").is_empty() {
            e.required(&format!("{f}.env[{i}].name"), "");
        }
    }
    for (i, vm) in arr_of(c, "volumeMounts").iter().enumerate() {
        let Some(vm) = vm.as_object() else { continue };
        let vf = format!("{f}.volumeMounts[{i}]");
        let n = str_of(vm, "name");
        if n.is_empty() {
            e.required(&format!("{vf}.name"), "");
        } else if !volumes.contains(n) {
            e.push(Cause::not_found(&format!("{vf}.name"), &json!(n)));
        }
        if str_of(vm, "mountPath").is_empty() {
            e.required(&format!("{vf}.mountPath"), "");
        }
    }
}

/// Pod template + selector checks shared by Deployment, ReplicaSet, StatefulSet, DaemonSet.
fn validate_workload(kind: &str, spec: &Map<String, Value>, e: &mut Errs) {
    e.non_negative(spec, "replicas", "spec.replicas");
    e.non_negative(spec, "minReadySeconds", "spec.minReadySeconds");
    e.non_negative(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit");
    let template = obj_of(spec, "template");
    let tmeta = obj_of(template, "metadata");
    let tlabels = obj_of(tmeta, "labels");
    match spec.get("selector").and_then(Value::as_object) {
        None => e.required("spec.selector", ""),
        Some(sel) => {
            let empty = obj_of(sel, "matchLabels").is_empty() && arr_of(sel, "matchExpressions").is_empty();
            if empty {
                let what = match kind {
                    "DaemonSet" => "daemonset",
                    "StatefulSet" => "statefulset",
                    _ => "deployment",
                };
                e.invalid(
                    "spec.selector",
                    &Value::Object(sel.clone()),
                    &format!("empty selector is invalid for {what}"),
                );
            } else {
                label_selector(sel, "spec.selector", e);
                if !selector_matches(sel, tlabels) {
                    e.push(Cause::with_rendered(
                        "spec.template.metadata.labels",
                        CauseType::FieldValueInvalid,
                        Some(&go_string_map(tlabels)),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
        }
    }
    labels(tlabels, "spec.template.metadata.labels", e);
    let restart = Restart::Always;
    pod_spec(obj_of(template, "spec"), "spec.template.spec", restart, e);
    match kind {
        "Deployment" => {
            let strategy = obj_of(spec, "strategy");
            e.enum_field(strategy, "type", "spec.strategy.type", &["Recreate", "RollingUpdate"]);
            let ru = obj_of(strategy, "rollingUpdate");
            if str_of(strategy, "type") == "Recreate" && present(strategy, "rollingUpdate") {
                e.forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                );
            }
            let surge = int_or_percent(ru.get("maxSurge"), "spec.strategy.rollingUpdate.maxSurge", e);
            let unavail = int_or_percent(
                ru.get("maxUnavailable"),
                "spec.strategy.rollingUpdate.maxUnavailable",
                e,
            );
            if str_of(strategy, "type") == "RollingUpdate" && surge == Some(0) && unavail == Some(0) {
                e.invalid(
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    ru.get("maxUnavailable").unwrap_or(&json!(0)),
                    "may not be 0 when `maxSurge` is 0",
                );
            }
            if let Some(pds) = spec.get("progressDeadlineSeconds").and_then(Value::as_i64) {
                let mrs = spec.get("minReadySeconds").and_then(Value::as_i64).unwrap_or(0);
                if pds <= mrs {
                    e.invalid(
                        "spec.progressDeadlineSeconds",
                        &json!(pds),
                        "must be greater than minReadySeconds",
                    );
                }
            }
        }
        "StatefulSet" => {
            e.enum_field(
                spec,
                "podManagementPolicy",
                "spec.podManagementPolicy",
                &["OrderedReady", "Parallel"],
            );
            let us = obj_of(spec, "updateStrategy");
            e.enum_field(us, "type", "spec.updateStrategy.type", &["OnDelete", "RollingUpdate"]);
            for (i, pvc) in arr_of(spec, "volumeClaimTemplates").iter().enumerate() {
                let n = pvc
                    .get("metadata")
                    .and_then(|m| m.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if n.is_empty() {
                    e.required(&format!("spec.volumeClaimTemplates[{i}].metadata.name"), "");
                }
            }
        }
        "DaemonSet" => {
            let us = obj_of(spec, "updateStrategy");
            e.enum_field(us, "type", "spec.updateStrategy.type", &["OnDelete", "RollingUpdate"]);
        }
        _ => {}
    }
}

/// Validates an int-or-percent value; returns its numeric part when valid.
fn int_or_percent(v: Option<&Value>, f: &str, e: &mut Errs) -> Option<i64> {
    let v = v.filter(|v| !v.is_null())?;
    if let Some(n) = v.as_i64() {
        if n < 0 {
            e.invalid(f, v, "must be greater than or equal to 0");
        }
        return Some(n);
    }
    if let Some(s) = v.as_str()
        && let Some(p) = s.strip_suffix('%')
        && let Ok(n) = p.parse::<i64>()
    {
        if n < 0 {
            e.invalid(f, v, "must be greater than or equal to 0");
        } else if n > 100 {
            e.invalid(f, v, "must not be greater than 100%");
        }
        return Some(n);
    }
    e.invalid(f, v, "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')");
    None
}

fn validate_service(spec: &Map<String, Value>, e: &mut Errs) {
    let ty = spec.get("type").cloned().unwrap_or(json!("ClusterIP"));
    let ty_s = ty.as_str().unwrap_or("");
    if !["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"].contains(&ty_s) {
        e.not_supported(
            "spec.type",
            &ty,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        );
    }
    let cluster_ip = str_of(spec, "clusterIP");
    let headless = cluster_ip == "None";
    if !cluster_ip.is_empty() && !headless && cluster_ip.parse::<std::net::IpAddr>().is_err() {
        e.invalid(
            "spec.clusterIP",
            &json!(cluster_ip),
            "must be empty, 'None', or a valid IP address",
        );
    }
    if ty_s == "ExternalName" {
        let name = str_of(spec, "externalName");
        if name.is_empty() {
            e.required("spec.externalName", "");
        } else {
            for m in names::dns1123_subdomain(name.trim_end_matches('.')) {
                e.invalid("spec.externalName", &json!(name), &m);
            }
        }
    }
    let ports = arr_of(spec, "ports");
    if ports.is_empty() && !headless && ty_s != "ExternalName" {
        e.required("spec.ports", "");
    }
    let mut seen = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let Some(p) = p.as_object() else { continue };
        let pf = format!("spec.ports[{i}]");
        let name = str_of(p, "name");
        if name.is_empty() {
            if ports.len() > 1 {
                e.required(&format!("{pf}.name"), "");
            }
        } else {
            for m in names::dns1123_label(name) {
                e.invalid(&format!("{pf}.name"), &json!(name), &m);
            }
            if !seen.insert(name.to_owned()) {
                e.push(Cause::duplicate(&format!("{pf}.name"), &json!(name)));
            }
        }
        match p.get("port") {
            None | Some(Value::Null) => e.invalid(&format!("{pf}.port"), &json!(0), RANGE_MSG),
            Some(v) if !port_in_range(v) => e.invalid(&format!("{pf}.port"), v, RANGE_MSG),
            _ => {}
        }
        e.enum_field(p, "protocol", &format!("{pf}.protocol"), PROTOCOLS);
        match p.get("targetPort") {
            Some(v @ Value::Number(_)) if !port_in_range(v) => e.invalid(&format!("{pf}.targetPort"), v, RANGE_MSG),
            Some(Value::String(s)) if !s.is_empty() => {
                for m in names::iana_svc_name(s) {
                    e.invalid(&format!("{pf}.targetPort"), &json!(s), &m);
                }
            }
            _ => {}
        }
        if let Some(np) = p.get("nodePort").filter(|v| !v.is_null() && v.as_i64() != Some(0)) {
            if ty_s == "ClusterIP" || ty_s == "ExternalName" {
                e.forbidden(
                    &format!("{pf}.nodePort"),
                    &format!("may not be used when `type` is '{ty_s}'"),
                );
            } else if !port_in_range(np) {
                e.invalid(&format!("{pf}.nodePort"), np, RANGE_MSG);
            }
        }
    }
    labels(obj_of(spec, "selector"), "spec.selector", e);
    e.enum_field(spec, "sessionAffinity", "spec.sessionAffinity", &["ClientIP", "None"]);
    e.enum_field(
        spec,
        "externalTrafficPolicy",
        "spec.externalTrafficPolicy",
        &["Cluster", "Local"],
    );
    e.enum_field(
        spec,
        "internalTrafficPolicy",
        "spec.internalTrafficPolicy",
        &["Cluster", "Local"],
    );
}

const MAX_CONFIG_BYTES: usize = 1024 * 1024;

fn config_keys(m: &Map<String, Value>, field: &str, e: &mut Errs) -> usize {
    let mut size = 0;
    for (k, v) in m {
        for msg in names::config_map_key(k) {
            e.invalid(&format!("{field}[{k}]"), &json!(k), &msg);
        }
        size += k.len() + v.as_str().map_or(0, str::len);
    }
    size
}

fn validate_configmap(root: &Map<String, Value>, e: &mut Errs) {
    let data = obj_of(root, "data");
    let binary = obj_of(root, "binaryData");
    let mut size = config_keys(data, "data", e);
    size += config_keys(binary, "binaryData", e);
    for k in binary.keys() {
        if data.contains_key(k) {
            e.invalid(
                &format!("data[{k}]"),
                &json!(k),
                "duplicate of key present in binaryData",
            );
        }
    }
    for (k, v) in binary {
        if let Some(s) = v.as_str()
            && let Some(off) = names::base64_error_offset(s)
        {
            e.invalid(
                &format!("binaryData[{k}]"),
                v,
                &format!("illegal base64 data at input byte {off}"),
            );
        }
    }
    if size > MAX_CONFIG_BYTES {
        e.push(Cause::too_long("", MAX_CONFIG_BYTES));
    }
}

fn validate_secret(root: &Map<String, Value>, e: &mut Errs) {
    let data = obj_of(root, "data");
    let string_data = obj_of(root, "stringData");
    let mut size = config_keys(data, "data", e);
    size += config_keys(string_data, "stringData", e);
    for (k, v) in data {
        if let Some(s) = v.as_str()
            && let Some(off) = names::base64_error_offset(s)
        {
            e.invalid(
                &format!("data[{k}]"),
                v,
                &format!("illegal base64 data at input byte {off}"),
            );
        }
    }
    if size > MAX_CONFIG_BYTES {
        e.push(Cause::too_long("data", MAX_CONFIG_BYTES));
    }
    let has = |k: &str| data.contains_key(k) || string_data.contains_key(k);
    let required: &[&str] = match str_of(root, "type") {
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        _ => &[],
    };
    for k in required {
        if !has(k) {
            e.required(&format!("data[{k}]"), "");
        }
    }
    if str_of(root, "type") == "kubernetes.io/service-account-token" {
        let ann = obj_of(obj_of(root, "metadata"), "annotations");
        if str_of(ann, "kubernetes.io/service-account.name").is_empty() {
            e.required("metadata.annotations[kubernetes.io/service-account.name]", "");
        }
    }
}

fn validate_job_spec(spec: &Map<String, Value>, f: &str, e: &mut Errs) {
    for k in [
        "parallelism",
        "completions",
        "backoffLimit",
        "activeDeadlineSeconds",
        "ttlSecondsAfterFinished",
    ] {
        e.non_negative(spec, k, &format!("{f}.{k}"));
    }
    e.enum_field(
        spec,
        "completionMode",
        &format!("{f}.completionMode"),
        &["Indexed", "NonIndexed"],
    );
    if str_of(spec, "completionMode") == "Indexed" && !present(spec, "completions") {
        e.required(&format!("{f}.completions"), "when completion mode is Indexed");
    }
    let template = obj_of(spec, "template");
    let tlabels = obj_of(obj_of(template, "metadata"), "labels");
    let manual = spec.get("manualSelector").and_then(Value::as_bool) == Some(true);
    match spec.get("selector").and_then(Value::as_object) {
        None if manual => e.required(&format!("{f}.selector"), ""),
        None => {}
        Some(sel) => {
            label_selector(sel, &format!("{f}.selector"), e);
            if !selector_matches(sel, tlabels) {
                e.push(Cause::with_rendered(
                    &format!("{f}.template.metadata.labels"),
                    CauseType::FieldValueInvalid,
                    Some(&go_string_map(tlabels)),
                    "`selector` does not match template `labels`",
                ));
            }
        }
    }
    labels(tlabels, &format!("{f}.template.metadata.labels"), e);
    pod_spec(obj_of(template, "spec"), &format!("{f}.template.spec"), Restart::Job, e);
}

/// Checks a standard 5-field cron expression or a `@descriptor`; returns the problem.
pub fn cron_schedule_error(s: &str) -> Option<String> {
    let s = s.trim();
    if s.starts_with("TZ=") || s.starts_with("CRON_TZ=") {
        return Some("cannot use TZ or CRON_TZ in schedule, use timeZone field instead".into());
    }
    if let Some(d) = s.strip_prefix('@') {
        return match d {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => None,
            _ if d.starts_with("every ") => None,
            _ => Some(format!("unrecognized descriptor: {s}")),
        };
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Some(format!("expected exactly 5 fields, found {}: {s}", fields.len()));
    }
    const BOUNDS: [(u32, u32); 5] = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    for (i, field) in fields.iter().enumerate() {
        let (lo, hi) = BOUNDS[i];
        let value = |t: &str| -> Option<u32> {
            if let Ok(n) = t.parse::<u32>() {
                return Some(n);
            }
            let t = t.to_ascii_lowercase();
            match i {
                3 => MONTHS.iter().position(|m| *m == t).map(|p| p as u32 + 1),
                4 => DAYS.iter().position(|d| *d == t).map(|p| p as u32),
                _ => None,
            }
        };
        for part in field.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, st)) => (r, Some(st)),
                None => (part, None),
            };
            if let Some(st) = step
                && st.parse::<u32>().map_or(true, |n| n == 0)
            {
                return Some(format!("failed to parse int from {st}: {s}"));
            }
            if range == "*" || range == "?" {
                continue;
            }
            let (a, b) = range.split_once('-').unwrap_or((range, range));
            let (Some(a), Some(b)) = (value(a), value(b)) else {
                return Some(format!("failed to parse int from {range}: {s}"));
            };
            if a < lo || b > hi || a > b {
                return Some(format!("end of range ({b}) above maximum ({hi}): {part}"));
            }
        }
    }
    None
}

fn validate_cronjob(spec: &Map<String, Value>, e: &mut Errs) {
    match spec.get("schedule").and_then(Value::as_str) {
        None | Some("") => e.required("spec.schedule", ""),
        Some(s) => {
            if let Some(msg) = cron_schedule_error(s) {
                e.invalid("spec.schedule", &json!(s), &msg);
            }
        }
    }
    e.enum_field(
        spec,
        "concurrencyPolicy",
        "spec.concurrencyPolicy",
        &["Allow", "Forbid", "Replace"],
    );
    for k in [
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
        "startingDeadlineSeconds",
    ] {
        e.non_negative(spec, k, &format!("spec.{k}"));
    }
    match spec.get("jobTemplate").and_then(Value::as_object) {
        None => e.required("spec.jobTemplate", ""),
        Some(jt) => {
            labels(
                obj_of(obj_of(jt, "metadata"), "labels"),
                "spec.jobTemplate.metadata.labels",
                e,
            );
            validate_job_spec(obj_of(jt, "spec"), "spec.jobTemplate.spec", e)
        }
    }
}

fn validate_pvc(spec: &Map<String, Value>, e: &mut Errs) {
    let modes = arr_of(spec, "accessModes");
    if modes.is_empty() && !present(spec, "dataSourceRef") {
        e.required("spec.accessModes", "at least 1 access mode is required");
    }
    let supported = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"];
    for (i, m) in modes.iter().enumerate() {
        if !m.as_str().is_some_and(|s| supported.contains(&s)) {
            e.not_supported(&format!("spec.accessModes[{i}]"), m, &supported);
        }
    }
    let requests = obj_of(obj_of(spec, "resources"), "requests");
    if !present(requests, "storage") {
        e.required("spec.resources[storage]", "");
    }
    e.enum_field(spec, "volumeMode", "spec.volumeMode", &["Block", "Filesystem"]);
}

fn validate_ingress(spec: &Map<String, Value>, e: &mut Errs) {
    let rules = arr_of(spec, "rules");
    if rules.is_empty() && !present(spec, "defaultBackend") {
        e.invalid(
            "spec",
            &json!(rules),
            "either `defaultBackend` or `rules` must be specified",
        );
    }
    if let Some(b) = spec.get("defaultBackend").and_then(Value::as_object) {
        ingress_backend(b, "spec.defaultBackend", e);
    }
    for (i, r) in rules.iter().enumerate() {
        let Some(r) = r.as_object() else { continue };
        let host = str_of(r, "host");
        if !host.is_empty() {
            let h = host.strip_prefix("*.").unwrap_or(host);
            for m in names::dns1123_subdomain(h) {
                e.invalid(&format!("spec.rules[{i}].host"), &json!(host), &m);
            }
        }
        let Some(http) = r.get("http").and_then(Value::as_object) else {
            continue;
        };
        let paths = arr_of(http, "paths");
        if paths.is_empty() {
            e.required(&format!("spec.rules[{i}].http.paths"), "");
        }
        for (j, p) in paths.iter().enumerate() {
            let Some(p) = p.as_object() else { continue };
            let pf = format!("spec.rules[{i}].http.paths[{j}]");
            let types = ["Exact", "ImplementationSpecific", "Prefix"];
            match p.get("pathType").filter(|v| !v.is_null()) {
                None => e.required(&format!("{pf}.pathType"), "pathType must be specified"),
                Some(t) if !t.as_str().is_some_and(|s| types.contains(&s)) => {
                    e.not_supported(&format!("{pf}.pathType"), t, &types)
                }
                Some(t) => {
                    let path = str_of(p, "path");
                    if t != "ImplementationSpecific" && !path.starts_with('/') {
                        e.invalid(&format!("{pf}.path"), &json!(path), "must be an absolute path");
                    }
                }
            }
            match p.get("backend").and_then(Value::as_object) {
                Some(b) => ingress_backend(b, &format!("{pf}.backend"), e),
                None => e.required(&format!("{pf}.backend"), ""),
            }
        }
    }
}

fn ingress_backend(b: &Map<String, Value>, f: &str, e: &mut Errs) {
    let svc = b.get("service").and_then(Value::as_object);
    let res = present(b, "resource");
    match (svc, res) {
        (Some(_), true) => e.invalid(
            f,
            &Value::Object(b.clone()),
            "cannot set both resource and service backends",
        ),
        (None, false) => e.invalid(f, &Value::Object(b.clone()), "resource or service backend is required"),
        (Some(s), false) => {
            if str_of(s, "name").is_empty() {
                e.required(&format!("{f}.service.name"), "");
            }
            let port = obj_of(s, "port");
            let has_name = !str_of(port, "name").is_empty();
            let has_num = port.get("number").and_then(Value::as_i64).is_some_and(|n| n != 0);
            if has_name && has_num {
                e.invalid(
                    &format!("{f}.service.port"),
                    &Value::Object(port.clone()),
                    "cannot set both port name & port number",
                );
            } else if !has_name && !has_num {
                e.invalid(
                    &format!("{f}.service.port"),
                    &Value::Object(port.clone()),
                    "port name or number is required",
                );
            } else if has_num && !port_in_range(&port["number"]) {
                e.invalid(&format!("{f}.service.port.number"), &port["number"], RANGE_MSG);
            }
        }
        (None, true) => {}
    }
}

fn validate_network_policy(spec: &Map<String, Value>, e: &mut Errs) {
    for (i, t) in arr_of(spec, "policyTypes").iter().enumerate() {
        if !matches!(t.as_str(), Some("Ingress" | "Egress")) {
            e.not_supported(&format!("spec.policyTypes[{i}]"), t, &["Ingress", "Egress"]);
        }
    }
    for dir in ["ingress", "egress"] {
        for (i, r) in arr_of(spec, dir).iter().enumerate() {
            let Some(r) = r.as_object() else { continue };
            for (j, p) in arr_of(r, "ports").iter().enumerate() {
                if let Some(p) = p.as_object() {
                    e.enum_field(
                        p,
                        "protocol",
                        &format!("spec.{dir}[{i}].ports[{j}].protocol"),
                        PROTOCOLS,
                    );
                }
            }
        }
    }
}

fn validate_role(kind: &str, root: &Map<String, Value>, e: &mut Errs) {
    let aggregated = present(root, "aggregationRule");
    for (i, r) in arr_of(root, "rules").iter().enumerate() {
        let Some(r) = r.as_object() else { continue };
        let rf = format!("rules[{i}]");
        if arr_of(r, "verbs").is_empty() {
            e.required(&format!("{rf}.verbs"), "verbs must contain at least one value");
        }
        let urls = arr_of(r, "nonResourceURLs");
        if kind == "Role" && !urls.is_empty() {
            e.invalid(
                &format!("{rf}.nonResourceURLs"),
                &json!(urls),
                "namespaced rules cannot apply to non-resource URLs",
            );
        }
        if urls.is_empty() && !aggregated {
            if !arr_of(r, "resources").is_empty() && arr_of(r, "apiGroups").is_empty() {
                e.required(
                    &format!("{rf}.apiGroups"),
                    "resource rules must supply at least one api group",
                );
            }
            if arr_of(r, "resources").is_empty() && kind == "Role" {
                e.required(
                    &format!("{rf}.resources"),
                    "resource rules must supply at least one resource",
                );
            }
        }
    }
}

fn validate_binding(kind: &str, root: &Map<String, Value>, e: &mut Errs) {
    let rr = obj_of(root, "roleRef");
    let supported: &[&str] = if kind == "RoleBinding" {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    let rk = rr.get("kind").cloned().unwrap_or(json!(""));
    if !rk.as_str().is_some_and(|s| supported.contains(&s)) {
        e.not_supported("roleRef.kind", &rk, supported);
    }
    let group = rr.get("apiGroup").cloned().unwrap_or(json!(""));
    if group != "rbac.authorization.k8s.io" {
        e.not_supported("roleRef.apiGroup", &group, &["rbac.authorization.k8s.io"]);
    }
    let name = str_of(rr, "name");
    if name.is_empty() {
        e.required("roleRef.name", "");
    } else {
        for m in names::path_segment_name(name) {
            e.invalid("roleRef.name", &json!(name), &m);
        }
    }
    for (i, s) in arr_of(root, "subjects").iter().enumerate() {
        let Some(s) = s.as_object() else { continue };
        let sf = format!("subjects[{i}]");
        if str_of(s, "name").is_empty() {
            e.required(&format!("{sf}.name"), "");
        }
        let sk = s.get("kind").cloned().unwrap_or(json!(""));
        match sk.as_str() {
            Some("ServiceAccount") => {
                let g = str_of(s, "apiGroup");
                if !g.is_empty() {
                    e.not_supported(&format!("{sf}.apiGroup"), &json!(g), &[""]);
                }
                if kind == "ClusterRoleBinding" && str_of(s, "namespace").is_empty() {
                    e.required(&format!("{sf}.namespace"), "");
                }
            }
            Some("User" | "Group") => {
                let g = s.get("apiGroup").cloned().unwrap_or(json!(""));
                if g != "rbac.authorization.k8s.io" {
                    e.not_supported(&format!("{sf}.apiGroup"), &g, &["rbac.authorization.k8s.io"]);
                }
            }
            _ => e.not_supported(&format!("{sf}.kind"), &sk, &["ServiceAccount", "User", "Group"]),
        }
    }
}

fn validate_pdb(spec: &Map<String, Value>, e: &mut Errs) {
    if present(spec, "minAvailable") && present(spec, "maxUnavailable") {
        e.invalid(
            "spec",
            &Value::Object(spec.clone()),
            "minAvailable and maxUnavailable cannot be both set",
        );
    }
    int_or_percent(spec.get("minAvailable"), "spec.minAvailable", e);
    int_or_percent(spec.get("maxUnavailable"), "spec.maxUnavailable", e);
    if let Some(sel) = spec.get("selector").and_then(Value::as_object) {
        label_selector(sel, "spec.selector", e);
    }
    e.enum_field(
        spec,
        "unhealthyPodEvictionPolicy",
        "spec.unhealthyPodEvictionPolicy",
        &["AlwaysAllow", "IfHealthyBudget"],
    );
}

fn validate_hpa(spec: &Map<String, Value>, e: &mut Errs) {
    let target = obj_of(spec, "scaleTargetRef");
    for k in ["kind", "name"] {
        if str_of(target, k).is_empty() {
            e.required(&format!("spec.scaleTargetRef.{k}"), "");
        }
    }
    let min = spec.get("minReplicas").and_then(Value::as_i64);
    if let Some(m) = min
        && m < 1
    {
        e.invalid("spec.minReplicas", &json!(m), "must be greater than or equal to 1");
    }
    match spec.get("maxReplicas").and_then(Value::as_i64) {
        None => e.invalid("spec.maxReplicas", &json!(0), "must be greater than 0"),
        Some(m) if m < 1 => e.invalid("spec.maxReplicas", &json!(m), "must be greater than 0"),
        Some(m) if min.is_some_and(|n| m < n) => e.invalid(
            "spec.maxReplicas",
            &json!(m),
            "must be greater than or equal to `minReplicas`",
        ),
        _ => {}
    }
}

fn validate_crd(root: &Map<String, Value>, e: &mut Errs) {
    let spec = obj_of(root, "spec");
    let group = str_of(spec, "group");
    if group.is_empty() {
        e.required("spec.group", "");
    } else {
        for m in names::dns1123_subdomain(group) {
            e.invalid("spec.group", &json!(group), &m);
        }
        if !group.contains('.') {
            e.invalid("spec.group", &json!(group), "should be a domain with at least one dot");
        }
    }
    let n = obj_of(spec, "names");
    let plural = str_of(n, "plural");
    for k in ["plural", "kind"] {
        if str_of(n, k).is_empty() {
            e.required(&format!("spec.names.{k}"), "");
        }
    }
    if !plural.is_empty() {
        for m in names::dns1123_label(plural) {
            e.invalid("spec.names.plural", &json!(plural), &m);
        }
    }
    let name = str_of(obj_of(root, "metadata"), "name");
    if !name.is_empty() && !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        e.invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        );
    }
    let scope = spec.get("scope").cloned().unwrap_or(json!(""));
    if !matches!(scope.as_str(), Some("Cluster" | "Namespaced")) {
        e.not_supported("spec.scope", &scope, &["Cluster", "Namespaced"]);
    }
    let versions = arr_of(spec, "versions");
    if versions.is_empty() {
        e.invalid(
            "spec.versions",
            &json!(versions),
            "must have exactly one version marked as storage version",
        );
        return;
    }
    let storage = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if storage != 1 {
        e.invalid(
            "spec.versions",
            &json!(versions),
            "must have exactly one version marked as storage version",
        );
    }
    if !versions
        .iter()
        .any(|v| v.get("served").and_then(Value::as_bool) == Some(true))
    {
        e.invalid(
            "spec.versions",
            &json!(versions),
            "must have at least one version marked as served",
        );
    }
    let mut seen = BTreeSet::new();
    for (i, v) in versions.iter().enumerate() {
        let vf = format!("spec.versions[{i}]");
        let vn = v.get("name").and_then(Value::as_str).unwrap_or("");
        if vn.is_empty() {
            e.required(&format!("{vf}.name"), "");
        } else {
            for m in names::dns1035_label(vn) {
                e.invalid(&format!("{vf}.name"), &json!(vn), &m);
            }
            if !seen.insert(vn.to_owned()) {
                e.push(Cause::duplicate(&format!("{vf}.name"), &json!(vn)));
            }
        }
        let has_schema = v
            .get("schema")
            .and_then(|s| s.get("openAPIV3Schema"))
            .is_some_and(|s| !s.is_null());
        if !has_schema {
            e.required(&format!("{vf}.schema.openAPIV3Schema"), "schemas are required");
        }
    }
}

/// Update-only rules: immutable fields.
fn validate_update(kind: &str, new: &Map<String, Value>, old: &Map<String, Value>, e: &mut Errs) {
    let ns = obj_of(new, "spec");
    let os = obj_of(old, "spec");
    let immutable = |e: &mut Errs, f: &str, n: Option<&Value>, o: Option<&Value>| {
        let n = n.filter(|v| !v.is_null());
        let o = o.filter(|v| !v.is_null());
        if n != o {
            e.invalid(f, n.unwrap_or(&Value::Null), "field is immutable");
        }
    };
    match kind {
        "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet" => {
            immutable(e, "spec.selector", ns.get("selector"), os.get("selector"));
            if kind == "StatefulSet" {
                let strip = |s: &Map<String, Value>| {
                    let mut s = s.clone();
                    for k in [
                        "replicas",
                        "ordinals",
                        "template",
                        "updateStrategy",
                        "revisionHistoryLimit",
                        "persistentVolumeClaimRetentionPolicy",
                        "minReadySeconds",
                        "selector",
                    ] {
                        s.remove(k);
                    }
                    s
                };
                if strip(ns) != strip(os) {
                    e.forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden");
                }
            }
        }
        "Job" => {
            for k in ["selector", "template", "completions", "completionMode"] {
                immutable(e, &format!("spec.{k}"), ns.get(k), os.get(k));
            }
        }
        "Service" => {
            let oip = str_of(os, "clusterIP");
            let nip = str_of(ns, "clusterIP");
            let to_or_from_external = str_of(ns, "type") == "ExternalName" || str_of(os, "type") == "ExternalName";
            if !oip.is_empty() && !nip.is_empty() && oip != nip && !to_or_from_external {
                e.invalid("spec.clusterIP", &json!(nip), "field is immutable");
            }
        }
        "ConfigMap" | "Secret" => {
            if old.get("immutable").and_then(Value::as_bool) == Some(true) {
                const MSG: &str = "field is immutable when `immutable` is set";
                if new.get("immutable").and_then(Value::as_bool) != Some(true) {
                    e.forbidden("immutable", MSG);
                }
                let keys: &[&str] = if kind == "Secret" {
                    &["data"]
                } else {
                    &["data", "binaryData"]
                };
                for k in keys {
                    let n = new
                        .get(*k)
                        .filter(|v| !v.is_null() && v.as_object().is_none_or(|m| !m.is_empty()));
                    let o = old
                        .get(*k)
                        .filter(|v| !v.is_null() && v.as_object().is_none_or(|m| !m.is_empty()));
                    if n != o {
                        e.forbidden(k, MSG);
                    }
                }
                if kind == "Secret" && !obj_of(new, "stringData").is_empty() {
                    e.forbidden("data", MSG);
                }
            }
            if kind == "Secret" {
                let nt = new.get("type").and_then(Value::as_str).unwrap_or("Opaque");
                let ot = old.get("type").and_then(Value::as_str).unwrap_or("Opaque");
                if nt != ot {
                    e.invalid("type", &json!(nt), "field is immutable");
                }
            }
        }
        "PersistentVolumeClaim" => {
            let strip = |s: &Map<String, Value>| {
                let mut s = s.clone();
                if let Some(r) = s.get_mut("resources").and_then(Value::as_object_mut) {
                    r.remove("requests");
                    if r.is_empty() {
                        s.remove("resources");
                    }
                }
                s.remove("volumeAttributesClassName");
                // Binding fills volumeName once.
                if str_of(os, "volumeName").is_empty() {
                    s.remove("volumeName");
                }
                s
            };
            if strip(ns) != strip(os) {
                e.forbidden("spec", "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims");
            }
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            let n = new.get("roleRef");
            let o = old.get("roleRef");
            if n != o {
                e.invalid("roleRef", n.unwrap_or(&Value::Null), "cannot change roleRef");
            }
        }
        "CustomResourceDefinition" => {
            immutable(e, "spec.scope", ns.get("scope"), os.get("scope"));
            immutable(e, "spec.group", ns.get("group"), os.get("group"));
            let nn = obj_of(ns, "names");
            let on = obj_of(os, "names");
            immutable(e, "spec.names.plural", nn.get("plural"), on.get("plural"));
            immutable(e, "spec.names.kind", nn.get("kind"), on.get("kind"));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults::apply_defaults;
    use crate::kinds::builtin_types;

    fn rt(kind: &str) -> ResourceType {
        builtin_types().into_iter().find(|t| t.kind == kind).unwrap()
    }

    /// Defaults then validates, as the server does.
    fn check(kind: &str, mut obj: Value) -> Result<(), Invalid> {
        apply_defaults(&rt(kind), &mut obj);
        validate(&rt(kind), &obj, None)
    }

    fn errors(kind: &str, obj: Value) -> Vec<String> {
        match check(kind, obj) {
            Ok(()) => vec![],
            Err(e) => e.causes.iter().map(Cause::error_string).collect(),
        }
    }

    fn update(kind: &str, mut old: Value, mut new: Value) -> Vec<String> {
        apply_defaults(&rt(kind), &mut old);
        apply_defaults(&rt(kind), &mut new);
        match validate(&rt(kind), &new, Some(&old)) {
            Ok(()) => vec![],
            Err(e) => e.causes.iter().map(Cause::error_string).collect(),
        }
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web", "tier": "fe"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                        "ports": [{"name": "http", "containerPort": 80}]}]}
                }
            }
        })
    }

    #[test]
    fn valid_fixtures_pass() {
        assert_eq!(errors("Deployment", deployment()), Vec::<String>::new());
        let mut sts = deployment();
        sts["kind"] = json!("StatefulSet");
        sts["spec"]["serviceName"] = json!("web");
        assert_eq!(errors("StatefulSet", sts.clone()), Vec::<String>::new());
        sts["spec"].as_object_mut().unwrap().remove("replicas");
        assert_eq!(errors("DaemonSet", sts.clone()), Vec::<String>::new());
        assert_eq!(errors("ReplicaSet", sts), Vec::<String>::new());
        assert!(
            check(
                "ConfigMap",
                json!({"metadata": {"name": "cfg"}, "data": {"app.properties": "a=b"}})
            )
            .is_ok()
        );
        assert!(check("Namespace", json!({"metadata": {"name": "team-a"}})).is_ok());
        assert!(check("Lease", json!({"metadata": {"name": "x.y"}, "spec": {}})).is_ok());
        assert!(check("ServiceAccount", json!({"metadata": {"name": "builder"}})).is_ok());
    }

    #[test]
    fn aggregated_message_format() {
        let mut d = deployment();
        d["spec"]["template"]["spec"]["containers"][0]
            .as_object_mut()
            .unwrap()
            .remove("image");
        let err = check("Deployment", d.clone()).unwrap_err();
        assert_eq!(
            err.message(&rt("Deployment"), "web"),
            "Deployment.apps \"web\" is invalid: spec.template.spec.containers[0].image: Required value"
        );
        assert_eq!(err.causes[0].reason.as_str(), "FieldValueRequired");
        assert_eq!(err.causes[0].field, "spec.template.spec.containers[0].image");
        assert_eq!(err.causes[0].message, "Required value");
        let status = err.status(&rt("Deployment"), "web");
        assert_eq!(status["code"], 422);
        assert_eq!(status["reason"], "Invalid");
        assert_eq!(status["details"]["group"], "apps");
        assert_eq!(status["details"]["kind"], "Deployment");
        assert_eq!(status["details"]["causes"][0]["reason"], "FieldValueRequired");

        d["spec"]["replicas"] = json!(-1);
        let err = check("Deployment", d).unwrap_err();
        assert_eq!(
            err.message(&rt("Deployment"), "web"),
            "Deployment.apps \"web\" is invalid: [spec.replicas: Invalid value: -1: must be greater than or equal to 0, spec.template.spec.containers[0].image: Required value]"
        );
        assert_eq!(
            err.to_string(),
            "[spec.replicas: Invalid value: -1: must be greater than or equal to 0, spec.template.spec.containers[0].image: Required value]"
        );

        let cm = Invalid {
            causes: vec![Cause::required("data", ""), Cause::required("data", "")],
        };
        assert_eq!(
            cm.message(&rt("ConfigMap"), "c"),
            "ConfigMap \"c\" is invalid: data: Required value"
        );
    }

    #[test]
    fn names_per_kind() {
        let e = errors("ConfigMap", json!({"metadata": {"name": "Bad_Name"}}));
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"));
        let e = errors("Namespace", json!({"metadata": {"name": "team.a"}}));
        assert!(e[0].contains("a lowercase RFC 1123 label"), "{e:?}");
        let e = errors(
            "Service",
            json!({"metadata": {"name": "1web"}, "spec": {"ports": [{"port": 80}]}}),
        );
        assert!(e[0].contains("a DNS-1035 label"), "{e:?}");
        assert!(errors("ClusterRole", json!({"metadata": {"name": "system:aggregate-to-edit"}})).is_empty());
        let e = errors("ConfigMap", json!({"metadata": {}}));
        assert_eq!(e, ["metadata.name: Required value: name or generateName is required"]);
        assert!(errors("ConfigMap", json!({"metadata": {"generateName": "x-"}})).is_empty());
        let e = errors("ConfigMap", json!({"metadata": {"name": "a".repeat(254)}}));
        assert!(e[0].ends_with("must be no more than 253 characters"));
        let e = errors("Namespace", json!({"metadata": {"name": "a".repeat(64)}}));
        assert!(e[0].ends_with("must be no more than 63 characters"));
    }

    #[test]
    fn labels_and_annotations() {
        let e = errors(
            "ConfigMap",
            json!({"metadata": {"name": "c", "labels": {"bad key": "ok", "k": "-bad"}}}),
        );
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("metadata.labels: Invalid value: \"bad key\": name part must consist of"));
        assert!(e[1].starts_with("metadata.labels: Invalid value: \"-bad\": a valid label must be an empty string"));
        let big = "x".repeat(300 * 1024);
        let e = errors(
            "ConfigMap",
            json!({"metadata": {"name": "c", "annotations": {"a": big}}}),
        );
        assert_eq!(e, ["metadata.annotations: Too long: may not be more than 262144 bytes"]);
        let e = errors(
            "ConfigMap",
            json!({"metadata": {"name": "c", "annotations": {"Example.com/X": "y", "a b": ""}}}),
        );
        assert_eq!(e.len(), 1, "{e:?}");
    }

    #[test]
    fn workload_selector_rules() {
        let mut d = deployment();
        d["spec"].as_object_mut().unwrap().remove("selector");
        assert_eq!(errors("Deployment", d), ["spec.selector: Required value"]);
        let mut d = deployment();
        d["spec"]["selector"] = json!({"matchLabels": {"app": "api"}});
        assert_eq!(
            errors("Deployment", d),
            [
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\", \"tier\":\"fe\"}: `selector` does not match template `labels`"
            ]
        );
        let mut d = deployment();
        d["spec"]["selector"] =
            json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]});
        assert!(errors("Deployment", d).is_empty());
        let mut d = deployment();
        d["spec"]["selector"] = json!({});
        let e = errors("Deployment", d);
        assert_eq!(
            e,
            ["spec.selector: Invalid value: {}: empty selector is invalid for deployment"]
        );
        let mut d = deployment();
        d["spec"]["selector"] = json!({"matchExpressions": [{"key": "tier", "operator": "Has"}]});
        assert!(
            errors("Deployment", d)[0]
                .starts_with("spec.selector.matchExpressions[0].operator: Invalid value: \"Has\"")
        );
    }

    #[test]
    fn containers() {
        let mut d = deployment();
        d["spec"]["template"]["spec"]["containers"] = json!([]);
        assert_eq!(
            errors("Deployment", d),
            ["spec.template.spec.containers: Required value"]
        );
        let mut d = deployment();
        d["spec"]["template"]["spec"]["containers"] = json!([
            {"name": "web", "image": "a", "ports": [{"containerPort": 70000, "protocol": "tcp"}]},
            {"name": "web", "image": "b", "volumeMounts": [{"name": "data", "mountPath": "/d"}]},
            {"image": "c"}
        ]);
        d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        let e = errors("Deployment", d);
        assert_eq!(
            e,
            [
                "spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.template.spec.containers[0].ports[0].protocol: Unsupported value: \"tcp\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "spec.template.spec.containers[1].name: Duplicate value: \"web\"",
                "spec.template.spec.containers[1].volumeMounts[0].name: Not found: \"data\"",
                "spec.template.spec.containers[2].name: Required value",
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
            ]
        );
        let mut d = deployment();
        d["spec"]["template"]["spec"]["containers"][0]["name"] = json!("Web");
        assert!(
            errors("Deployment", d)[0].starts_with(
                "spec.template.spec.containers[0].name: Invalid value: \"Web\": a lowercase RFC 1123 label"
            )
        );
        let mut d = deployment();
        d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}});
        assert_eq!(
            errors("Deployment", d),
            ["spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"]
        );
    }

    #[test]
    fn pods() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}});
        assert!(check("Pod", pod).is_ok());
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}});
        assert_eq!(errors("Pod", pod), ["spec.containers[0].image: Required value"]);
    }

    #[test]
    fn services() {
        let ok = json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}, {"name": "https", "port": 443}]}});
        assert!(check("Service", ok).is_ok());
        assert!(
            check(
                "Service",
                json!({"metadata": {"name": "db"}, "spec": {"clusterIP": "None"}})
            )
            .is_ok()
        );
        assert!(
            check(
                "Service",
                json!({"metadata": {"name": "ext"}, "spec": {"type": "ExternalName", "externalName": "db.example.com"}})
            )
            .is_ok()
        );
        assert_eq!(
            errors("Service", json!({"metadata": {"name": "web"}, "spec": {}})),
            ["spec.ports: Required value"]
        );
        let e = errors(
            "Service",
            json!({"metadata": {"name": "web"}, "spec": {"type": "Foo", "ports": [{"port": 0}, {"port": 80, "nodePort": 30000}]}}),
        );
        assert_eq!(
            e,
            [
                "spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
                "spec.ports[0].name: Required value",
                "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[1].name: Required value",
            ]
        );
        let e = errors(
            "Service",
            json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80, "nodePort": 30000}]}}),
        );
        assert_eq!(
            e,
            ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]
        );
        let e = errors(
            "Service",
            json!({"metadata": {"name": "ext"}, "spec": {"type": "ExternalName"}}),
        );
        assert_eq!(e, ["spec.externalName: Required value"]);
    }

    #[test]
    fn configmaps_and_secrets() {
        let e = errors(
            "ConfigMap",
            json!({"metadata": {"name": "c"}, "data": {"bad key": "x", "ok": "y"}}),
        );
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("data[bad key]: Invalid value: \"bad key\": a valid config key must consist of"));
        let e = errors(
            "Secret",
            json!({"metadata": {"name": "s"}, "data": {"password": "hunter2!"}}),
        );
        assert_eq!(
            e,
            ["data[password]: Invalid value: \"hunter2!\": illegal base64 data at input byte 7"]
        );
        assert!(check("Secret", json!({"metadata": {"name": "s"}, "data": {"password": "aHVudGVyMg=="}, "stringData": {"user": "admin"}})).is_ok());
        let e = errors(
            "Secret",
            json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "YQ=="}}),
        );
        assert_eq!(e, ["data[tls.key]: Required value"]);
    }

    fn job() -> Value {
        json!({"metadata": {"name": "pi"}, "spec": {"template": {"spec": {
            "containers": [{"name": "pi", "image": "perl:5.34"}], "restartPolicy": "Never"}}}})
    }

    #[test]
    fn jobs_and_cronjobs() {
        assert!(check("Job", job()).is_ok());
        let mut j = job();
        j["spec"]["template"]["spec"]
            .as_object_mut()
            .unwrap()
            .remove("restartPolicy");
        assert_eq!(
            errors("Job", j),
            ["spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""]
        );
        let mut j = job();
        j["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        assert_eq!(
            errors("Job", j),
            [
                "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
            ]
        );
        let cj = json!({"metadata": {"name": "nightly"}, "spec": {"schedule": "0 3 * * 1-5", "jobTemplate": {"spec": job()["spec"].clone()}}});
        assert!(check("CronJob", cj.clone()).is_ok());
        let mut bad = cj.clone();
        bad["spec"]["schedule"] = json!("every day");
        assert_eq!(
            errors("CronJob", bad),
            ["spec.schedule: Invalid value: \"every day\": expected exactly 5 fields, found 2: every day"]
        );
        let mut bad = cj.clone();
        bad["spec"].as_object_mut().unwrap().remove("schedule");
        bad["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        assert_eq!(
            errors("CronJob", bad),
            [
                "spec.schedule: Required value",
                "spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"",
            ]
        );
        assert!(cron_schedule_error("@hourly").is_none());
        assert!(cron_schedule_error("*/15 0-6 1,15 jan-mar sun").is_none());
        assert!(cron_schedule_error("61 * * * *").is_some());
        assert!(cron_schedule_error("TZ=UTC 0 * * * *").is_some());
    }

    #[test]
    fn rbac() {
        let ok = json!({"metadata": {"name": "r"}, "roleRef": {"kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "default"}, {"kind": "User", "name": "alice"}]});
        assert!(check("RoleBinding", ok).is_ok());
        let e = errors(
            "ClusterRoleBinding",
            json!({"metadata": {"name": "r"}, "roleRef": {"kind": "Role"},
            "subjects": [{"kind": "ServiceAccount", "name": "sa"}, {"kind": "Robot", "name": "x"}]}),
        );
        assert_eq!(
            e,
            [
                "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
                "roleRef.name: Required value",
                "subjects[0].namespace: Required value",
                "subjects[1].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
            ]
        );
        let e = errors(
            "Role",
            json!({"metadata": {"name": "r"}, "rules": [{"resources": ["pods"], "verbs": []}]}),
        );
        assert_eq!(e.len(), 2, "{e:?}");
    }

    #[test]
    fn pdb_hpa_pvc_ingress() {
        assert!(check("PodDisruptionBudget", json!({"metadata": {"name": "p"}, "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"a": "b"}}}})).is_ok());
        let e = errors(
            "PodDisruptionBudget",
            json!({"metadata": {"name": "p"}, "spec": {"minAvailable": 1, "maxUnavailable": "150%"}}),
        );
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[1].ends_with("must not be greater than 100%"));

        assert!(check("HorizontalPodAutoscaler", json!({"metadata": {"name": "h"}, "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5}})).is_ok());
        let e = errors(
            "HorizontalPodAutoscaler",
            json!({"metadata": {"name": "h"}, "spec": {"minReplicas": 3, "maxReplicas": 2, "scaleTargetRef": {"kind": "Deployment"}}}),
        );
        assert_eq!(
            e,
            [
                "spec.scaleTargetRef.name: Required value",
                "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`"
            ]
        );

        assert!(check("PersistentVolumeClaim", json!({"metadata": {"name": "d"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})).is_ok());
        let e = errors("PersistentVolumeClaim", json!({"metadata": {"name": "d"}, "spec": {}}));
        assert_eq!(
            e,
            [
                "spec.accessModes: Required value: at least 1 access mode is required",
                "spec.resources[storage]: Required value"
            ]
        );

        let ing = json!({"metadata": {"name": "i"}, "spec": {"rules": [{"host": "example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}});
        assert!(check("Ingress", ing).is_ok());
        let e = errors(
            "Ingress",
            json!({"metadata": {"name": "i"}, "spec": {"rules": [{"http": {"paths": [
            {"path": "api", "backend": {"service": {"name": "web", "port": {}}}}]}}]}}),
        );
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(
            e[0],
            "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"
        );
    }

    fn crd() -> Value {
        json!({"metadata": {"name": "widgets.example.com"}, "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}}}]}})
    }

    #[test]
    fn crds() {
        assert!(check("CustomResourceDefinition", crd()).is_ok());
        let mut c = crd();
        c["metadata"]["name"] = json!("widget.example.com");
        c["spec"]["versions"] = json!([
            {"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {}}},
            {"name": "v2", "served": true, "storage": true}
        ]);
        let e = errors("CustomResourceDefinition", c);
        assert_eq!(e.len(), 3, "{e:?}");
        assert_eq!(
            e[0],
            "metadata.name: Invalid value: \"widget.example.com\": must be spec.names.plural+\".\"+spec.group"
        );
        assert!(
            e[1].starts_with("spec.versions: Invalid value: [")
                && e[1].ends_with("must have exactly one version marked as storage version")
        );
        assert_eq!(
            e[2],
            "spec.versions[1].schema.openAPIV3Schema: Required value: schemas are required"
        );
    }

    #[test]
    fn immutable_fields() {
        let mut new = deployment();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "tier": "fe"}});
        let e = update("Deployment", deployment(), new);
        assert_eq!(
            e,
            ["spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"web\",\"tier\":\"fe\"}}: field is immutable"]
        );
        let mut new = deployment();
        new["spec"]["replicas"] = json!(5);
        assert!(update("Deployment", deployment(), new).is_empty());

        let svc = |ip: &str| json!({"metadata": {"name": "web"}, "spec": {"clusterIP": ip, "ports": [{"port": 80}]}});
        assert_eq!(
            update("Service", svc("10.0.0.5"), svc("10.0.0.6")),
            ["spec.clusterIP: Invalid value: \"10.0.0.6\": field is immutable"]
        );
        assert!(update("Service", svc("10.0.0.5"), svc("10.0.0.5")).is_empty());

        let mut j2 = job();
        j2["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5.36");
        let e = update("Job", job(), j2);
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("spec.template: Invalid value: {") && e[0].ends_with("field is immutable"));

        let cm = |v: &str, imm: bool| json!({"metadata": {"name": "c"}, "data": {"k": v}, "immutable": imm});
        assert!(update("ConfigMap", cm("a", false), cm("b", false)).is_empty());
        assert_eq!(
            update("ConfigMap", cm("a", true), cm("b", false)),
            [
                "immutable: Forbidden: field is immutable when `immutable` is set",
                "data: Forbidden: field is immutable when `immutable` is set"
            ]
        );
        assert!(update("ConfigMap", cm("a", false), cm("a", true)).is_empty());

        let s = |t: &str| json!({"metadata": {"name": "s"}, "type": t, "data": {"tls.crt": "YQ==", "tls.key": "YQ=="}});
        assert_eq!(
            update("Secret", s("Opaque"), s("kubernetes.io/tls")),
            ["type: Invalid value: \"kubernetes.io/tls\": field is immutable"]
        );

        let pvc = |size: &str, class: &str| json!({"metadata": {"name": "d"}, "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": class, "resources": {"requests": {"storage": size}}}});
        assert!(update("PersistentVolumeClaim", pvc("1Gi", "std"), pvc("2Gi", "std")).is_empty());
        assert_eq!(
            update("PersistentVolumeClaim", pvc("1Gi", "std"), pvc("1Gi", "fast")),
            [
                "spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"
            ]
        );

        let mut sts = deployment();
        sts["spec"]["serviceName"] = json!("web");
        let mut sts2 = sts.clone();
        sts2["spec"]["serviceName"] = json!("other");
        sts2["spec"]["replicas"] = json!(9);
        let e = update("StatefulSet", sts, sts2);
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("spec: Forbidden: updates to statefulset spec"));

        let rb = |role: &str| json!({"metadata": {"name": "r"}, "roleRef": {"kind": "ClusterRole", "name": role}});
        assert_eq!(update("RoleBinding", rb("view"), rb("edit")).len(), 1);

        let mut c2 = crd();
        c2["spec"]["scope"] = json!("Cluster");
        assert_eq!(
            update("CustomResourceDefinition", crd(), c2),
            ["spec.scope: Invalid value: \"Cluster\": field is immutable"]
        );
    }

    #[test]
    fn custom_resources_get_metadata_checks_only() {
        let cr = ResourceType {
            group: "example.com".into(),
            version: "v1".into(),
            kind: "Widget".into(),
            plural: "widgets".into(),
            singular: "widget".into(),
            namespaced: true,
            short_names: vec![],
            categories: vec![],
            status_subresource: false,
            scale_subresource: false,
        };
        assert!(validate(&cr, &json!({"metadata": {"name": "w"}, "spec": {"anything": 1}}), None).is_ok());
        let err = validate(&cr, &json!({"metadata": {"name": "W"}}), None).unwrap_err();
        assert!(
            err.message(&cr, "W")
                .starts_with("Widget.example.com \"W\" is invalid: metadata.name: Invalid value: \"W\"")
        );
    }

    #[test]
    fn odd_shapes_do_not_panic() {
        for t in builtin_types() {
            for v in [
                json!(null),
                json!("x"),
                json!({"metadata": 1, "spec": []}),
                json!({"metadata": {"name": 5, "labels": [1]}, "spec": {"selector": 1, "template": {"spec": {"containers": [null, 1, {"ports": [1, {"containerPort": "x"}]}]}}}}),
                json!({"spec": {"ports": [{"port": "80", "targetPort": true}], "versions": [1], "rules": [1], "schedule": 5}}),
            ] {
                let _ = validate(&t, &v, Some(&v));
                let _ = validate(&t, &v, Some(&json!(1)));
            }
        }
    }
}

//! Server-side printing: `meta.k8s.io/v1` `Table` responses, which `kubectl get` asks for
//! with `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...` and prints as its
//! human-readable columns.
//!
//! The columns and cell formats follow kube-apiserver's printers
//! (`pkg/printers/internalversion/printers.go`) for the common kinds; every other kind, and
//! custom resources, get NAME and AGE. Ages are rendered server-side like
//! `duration.HumanDuration`. Rows carry a `PartialObjectMetadata` (`includeObject=Metadata`,
//! the default), the full object (`includeObject=Object`, what `kubectl get --sort-by` asks
//! for) or nothing (`includeObject=None`).

use kubesim_schema::ResourceType;
use serde_json::{Map, Value, json};

/// What the client asked for in its Accept header, if it is a Table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableVersion {
    /// `meta.k8s.io/v1`.
    V1,
    /// `meta.k8s.io/v1beta1` (only old clients ask for this alone).
    V1beta1,
}

impl TableVersion {
    fn api_version(self) -> &'static str {
        match self {
            TableVersion::V1 => "meta.k8s.io/v1",
            TableVersion::V1beta1 => "meta.k8s.io/v1beta1",
        }
    }
}

/// The Table version requested by `accept`, or None when a plain object/list is wanted.
/// The first acceptable media range wins, as in kube-apiserver's content negotiation.
pub fn wanted(accept: &str) -> Option<TableVersion> {
    for range in accept.split(',') {
        let mut params = range.split(';').map(str::trim);
        let mime = params.next().unwrap_or("");
        if !matches!(mime, "application/json" | "*/*" | "application/*") {
            continue;
        }
        let (mut as_, mut g, mut v) = (None, None, None);
        for p in params {
            match p.split_once('=') {
                Some(("as", x)) => as_ = Some(x),
                Some(("g", x)) => g = Some(x),
                Some(("v", x)) => v = Some(x),
                _ => {}
            }
        }
        match (as_, g, v) {
            (None, _, _) => return None,
            (Some("Table"), Some("meta.k8s.io"), Some("v1")) => return Some(TableVersion::V1),
            (Some("Table"), Some("meta.k8s.io"), Some("v1beta1")) => return Some(TableVersion::V1beta1),
            // Another `as=` (e.g. PartialObjectMetadata) is not served here: try the next range.
            _ => continue,
        }
    }
    None
}

/// What each row carries (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    /// Nothing.
    None,
    /// A `PartialObjectMetadata` (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl Include {
    /// Parses the `includeObject` query parameter (default Metadata).
    pub fn parse(v: Option<&str>) -> Include {
        match v {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        }
    }
}

/// A Table for a list: `items` are the objects as served (at the requested version) and
/// `list_meta` the list's metadata (resourceVersion, continue, remainingItemCount).
pub fn list<'a>(
    rt: &ResourceType,
    items: impl Iterator<Item = &'a Value>,
    list_meta: Value,
    include: Include,
    version: TableVersion,
) -> Value {
    let now = now_secs();
    let rows: Vec<Value> = items.map(|o| row(rt, o, include, version, now)).collect();
    json!({
        "kind": "Table",
        "apiVersion": version.api_version(),
        "metadata": list_meta,
        "columnDefinitions": columns(rt),
        "rows": rows,
    })
}

/// A Table with the single row of `obj`.
pub fn object(rt: &ResourceType, obj: &Value, include: Include, version: TableVersion) -> Value {
    let rv = obj
        .pointer("/metadata/resourceVersion")
        .cloned()
        .unwrap_or(Value::String(String::new()));
    json!({
        "kind": "Table",
        "apiVersion": version.api_version(),
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": columns(rt),
        "rows": [row(rt, obj, include, version, now_secs())],
    })
}

fn row(rt: &ResourceType, obj: &Value, include: Include, version: TableVersion, now: i64) -> Value {
    let mut r = Map::new();
    r.insert("cells".into(), Value::Array(cells(rt, obj, now)));
    match include {
        Include::None => {}
        Include::Object => {
            r.insert("object".into(), obj.clone());
        }
        Include::Metadata => {
            let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
            r.insert(
                "object".into(),
                json!({"kind": "PartialObjectMetadata", "apiVersion": version.api_version(), "metadata": meta}),
            );
        }
    }
    Value::Object(r)
}

const NAME_DESC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// (name, type, priority, description); priority 1 columns show only with `-o wide`.
type Col = (&'static str, &'static str, u8, &'static str);

fn kind_columns(rt: &ResourceType) -> &'static [Col] {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("apps", "Deployment") => &[
            ("Ready", "string", 0, "Number of the pod with ready state"),
            (
                "Up-to-date",
                "string",
                0,
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            ),
            (
                "Available",
                "string",
                0,
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            ),
            ("Age", "string", 0, AGE_DESC),
            ("Containers", "string", 1, "Names of each container in the template."),
            (
                "Images",
                "string",
                1,
                "Images referenced by each container in the template.",
            ),
            (
                "Selector",
                "string",
                1,
                "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
            ),
        ],
        ("apps", "StatefulSet") => &[
            ("Ready", "string", 0, "Number of the pod with ready state"),
            ("Age", "string", 0, AGE_DESC),
            ("Containers", "string", 1, "Names of each container in the template."),
            (
                "Images",
                "string",
                1,
                "Images referenced by each container in the template.",
            ),
        ],
        ("", "Pod") => &[
            (
                "Ready",
                "string",
                0,
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            (
                "Status",
                "string",
                0,
                "The aggregate status of the containers in this pod.",
            ),
            (
                "Restarts",
                "string",
                0,
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            ("Age", "string", 0, AGE_DESC),
            (
                "IP",
                "string",
                1,
                "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
            ),
            (
                "Node",
                "string",
                1,
                "NodeName is a request to schedule this pod onto a specific node.",
            ),
        ],
        ("", "Service") => &[
            ("Type", "string", 0, "type determines how the Service is exposed."),
            (
                "Cluster-IP",
                "string",
                0,
                "clusterIP is the IP address of the service and is usually assigned randomly.",
            ),
            (
                "External-IP",
                "string",
                0,
                "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
            ),
            (
                "Port(s)",
                "string",
                0,
                "The list of ports that are exposed by this service.",
            ),
            ("Age", "string", 0, AGE_DESC),
            (
                "Selector",
                "string",
                1,
                "Route service traffic to pods with label keys and values matching this selector.",
            ),
        ],
        ("", "ConfigMap") => &[
            ("Data", "integer", 0, "Data contains the configuration data."),
            ("Age", "string", 0, AGE_DESC),
        ],
        ("", "Secret") => &[
            (
                "Type",
                "string",
                0,
                "Used to facilitate programmatic handling of secret data.",
            ),
            ("Data", "integer", 0, "Data contains the secret data."),
            ("Age", "string", 0, AGE_DESC),
        ],
        ("", "Namespace") => &[
            ("Status", "string", 0, "The status of the namespace"),
            ("Age", "string", 0, AGE_DESC),
        ],
        ("batch", "Job") => &[
            ("Status", "string", 0, "Status of the job."),
            (
                "Completions",
                "string",
                0,
                "The desired number of successfully finished pods the job should be run with.",
            ),
            ("Duration", "string", 0, "Time required to complete the job."),
            ("Age", "string", 0, AGE_DESC),
            ("Containers", "string", 1, "Names of each container in the template."),
            (
                "Images",
                "string",
                1,
                "Images referenced by each container in the template.",
            ),
            (
                "Selector",
                "string",
                1,
                "A label query over pods that should match the pod count.",
            ),
        ],
        _ => &[("Age", "string", 0, AGE_DESC)],
    }
}

fn columns(rt: &ResourceType) -> Vec<Value> {
    std::iter::once(
        json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DESC, "priority": 0}),
    )
    .chain(
        kind_columns(rt)
            .iter()
            .map(|(n, t, p, d)| json!({"name": n, "type": t, "format": "", "description": d, "priority": p})),
    )
    .collect()
}

fn s<'v>(obj: &'v Value, ptr: &str) -> &'v str {
    obj.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn i(obj: &Value, ptr: &str) -> i64 {
    obj.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn len(obj: &Value, ptr: &str) -> usize {
    match obj.pointer(ptr) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    }
}

fn age(obj: &Value, now: i64) -> Value {
    let cell = parse_rfc3339(s(obj, "/metadata/creationTimestamp"))
        .map(|t| human_duration(now - t))
        .unwrap_or_else(|| "<unknown>".into());
    Value::String(cell)
}

fn or_none(v: String) -> String {
    if v.is_empty() { "<none>".into() } else { v }
}

/// `name1,name2` / `image1,image2` of a pod template's containers.
fn containers(obj: &Value, ptr: &str, field: &str) -> Value {
    let joined = obj
        .pointer(ptr)
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| c.get(field).and_then(Value::as_str).unwrap_or(""))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!(joined)
}

/// A LabelSelector rendered like `metav1.FormatLabelSelector`.
fn selector(sel: Option<&Value>) -> Value {
    let Some(sel) = sel else { return json!("<none>") };
    let mut parts: Vec<String> = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = s(e, "/key");
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|vs| vs.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        parts.push(match s(e, "/operator") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_owned(),
            "DoesNotExist" => format!("!{key}"),
            op => format!("{key} {op}"),
        });
    }
    json!(or_none(parts.join(",")))
}

fn cells(rt: &ResourceType, obj: &Value, now: i64) -> Vec<Value> {
    let mut c = vec![json!(s(obj, "/metadata/name"))];
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("apps", "Deployment") => {
            let desired = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            c.push(json!(format!("{}/{desired}", i(obj, "/status/readyReplicas"))));
            c.push(json!(i(obj, "/status/updatedReplicas")));
            c.push(json!(i(obj, "/status/availableReplicas")));
            c.push(age(obj, now));
            c.push(containers(obj, "/spec/template/spec/containers", "name"));
            c.push(containers(obj, "/spec/template/spec/containers", "image"));
            c.push(selector(obj.pointer("/spec/selector")));
        }
        ("apps", "StatefulSet") => {
            let desired = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            c.push(json!(format!("{}/{desired}", i(obj, "/status/readyReplicas"))));
            c.push(age(obj, now));
            c.push(containers(obj, "/spec/template/spec/containers", "name"));
            c.push(containers(obj, "/spec/template/spec/containers", "image"));
        }
        ("", "Pod") => {
            let (ready, total, restarts, status) = pod_summary(obj);
            c.push(json!(format!("{ready}/{total}")));
            c.push(json!(status));
            c.push(json!(restarts.to_string()));
            c.push(age(obj, now));
            c.push(json!(or_none(s(obj, "/status/podIP").to_owned())));
            c.push(json!(or_none(s(obj, "/spec/nodeName").to_owned())));
        }
        ("", "Service") => {
            let ty = match s(obj, "/spec/type") {
                "" => "ClusterIP",
                t => t,
            };
            c.push(json!(ty));
            c.push(json!(or_none(s(obj, "/spec/clusterIP").to_owned())));
            c.push(json!(service_external_ip(obj, ty)));
            c.push(json!(service_ports(obj)));
            c.push(age(obj, now));
            let sel = obj
                .pointer("/spec/selector")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            c.push(json!(or_none(sel)));
        }
        ("", "ConfigMap") => {
            c.push(json!(len(obj, "/data") + len(obj, "/binaryData")));
            c.push(age(obj, now));
        }
        ("", "Secret") => {
            c.push(json!(s(obj, "/type")));
            c.push(json!(len(obj, "/data")));
            c.push(age(obj, now));
        }
        ("", "Namespace") => {
            c.push(json!(s(obj, "/status/phase")));
            c.push(age(obj, now));
        }
        ("batch", "Job") => {
            c.push(json!(job_status(obj)));
            c.push(json!(job_completions(obj)));
            let start = parse_rfc3339(s(obj, "/status/startTime"));
            let end = parse_rfc3339(s(obj, "/status/completionTime"));
            let duration = match (start, end) {
                (None, _) => String::new(),
                (Some(st), None) => human_duration(now - st),
                (Some(st), Some(en)) => human_duration(en - st),
            };
            c.push(json!(duration));
            c.push(age(obj, now));
            c.push(containers(obj, "/spec/template/spec/containers", "name"));
            c.push(containers(obj, "/spec/template/spec/containers", "image"));
            c.push(selector(obj.pointer("/spec/selector")));
        }
        _ => c.push(age(obj, now)),
    }
    c
}

/// (ready containers, containers, restarts, STATUS) like kubectl's printPod.
fn pod_summary(obj: &Value) -> (usize, usize, i64, String) {
    let total = len(obj, "/spec/containers");
    let mut reason = match s(obj, "/status/reason") {
        "" => s(obj, "/status/phase").to_owned(),
        r => r.to_owned(),
    };
    let mut ready = 0;
    let mut restarts = 0;
    let statuses = obj
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut has_running = false;
    for cs in statuses.iter().rev() {
        restarts += i(cs, "/restartCount");
        let waiting = s(cs, "/state/waiting/reason");
        let terminated = s(cs, "/state/terminated/reason");
        if !waiting.is_empty() {
            reason = waiting.to_owned();
        } else if !terminated.is_empty() {
            reason = terminated.to_owned();
        } else if cs.pointer("/state/terminated").is_some() {
            let code = i(cs, "/state/terminated/exitCode");
            let signal = i(cs, "/state/terminated/signal");
            reason = if signal != 0 {
                format!("Signal:{signal}")
            } else {
                format!("ExitCode:{code}")
            };
        } else if cs.get("ready").and_then(Value::as_bool) == Some(true) && cs.pointer("/state/running").is_some() {
            has_running = true;
            ready += 1;
        }
    }
    if reason == "Completed" && has_running {
        reason = "Running".into();
    }
    if obj.pointer("/metadata/deletionTimestamp").is_some() {
        reason = if s(obj, "/status/reason") == "NodeLost" {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    if reason.is_empty() {
        reason = "Pending".into();
    }
    (ready, total, restarts, reason)
}

fn service_external_ip(obj: &Value, ty: &str) -> String {
    let external: Vec<&str> = obj
        .pointer("/spec/externalIPs")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match ty {
        "ClusterIP" | "NodePort" => or_none(external.join(",")),
        "ExternalName" => s(obj, "/spec/externalName").to_owned(),
        "LoadBalancer" => {
            let mut ips: Vec<String> = obj
                .pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|ing| {
                            let ip = s(ing, "/ip");
                            let host = s(ing, "/hostname");
                            if !ip.is_empty() {
                                Some(ip.to_owned())
                            } else if !host.is_empty() {
                                Some(host.to_owned())
                            } else {
                                None
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            ips.extend(external.iter().map(|s| (*s).to_owned()));
            if ips.is_empty() {
                "<pending>".into()
            } else {
                ips.join(",")
            }
        }
        _ => "<unknown>".into(),
    }
}

fn service_ports(obj: &Value) -> String {
    let ports: Vec<String> = obj
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|p| {
                    let proto = match s(p, "/protocol") {
                        "" => "TCP",
                        x => x,
                    };
                    let port = i(p, "/port");
                    match p.get("nodePort").and_then(Value::as_i64).filter(|n| *n != 0) {
                        Some(np) => format!("{port}:{np}/{proto}"),
                        None => format!("{port}/{proto}"),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    or_none(ports.join(","))
}

fn has_condition(obj: &Value, ty: &str) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| s(c, "/type") == ty && s(c, "/status") == "True"))
}

fn job_status(obj: &Value) -> &'static str {
    if has_condition(obj, "Complete") {
        "Complete"
    } else if has_condition(obj, "Failed") {
        "Failed"
    } else if obj.pointer("/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else if has_condition(obj, "Suspended") {
        "Suspended"
    } else if has_condition(obj, "FailureTarget") {
        "FailureTarget"
    } else if has_condition(obj, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    }
}

fn job_completions(obj: &Value) -> String {
    let succeeded = i(obj, "/status/succeeded");
    match obj.pointer("/spec/completions").and_then(Value::as_i64) {
        Some(c) => format!("{succeeded}/{c}"),
        None => {
            let parallelism = i(obj, "/spec/parallelism");
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Seconds since the epoch of an RFC 3339 timestamp (`2026-11-22T03:44:57Z`, fractional
/// seconds and numeric offsets accepted).
pub fn parse_rfc3339(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| t.get(r).and_then(|x| x.parse::<i64>().ok());
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &t[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o[1..3].parse::<i64>().ok()? * 3600 + o[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    // Howard Hinnant's days-from-civil.
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se - offset)
}

/// `k8s.io/apimachinery/pkg/util/duration.HumanDuration`, from seconds.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(wanted(kubectl), Some(TableVersion::V1));
        assert_eq!(
            wanted("application/json;as=Table;v=v1beta1;g=meta.k8s.io"),
            Some(TableVersion::V1beta1)
        );
        assert_eq!(wanted("application/json"), None);
        assert_eq!(wanted(""), None);
        assert_eq!(
            wanted("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"),
            None
        );
    }

    #[test]
    fn durations_and_timestamps() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(3600 * 5 + 60 * 7), "5h7m");
        assert_eq!(human_duration(86_400 * 3), "3d");
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2026-11-22T03:44:57Z"), Some(1_795_319_097));
        assert_eq!(parse_rfc3339("2026-11-22T04:44:57.123+01:00"), Some(1_795_319_097));
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(parse_rfc3339("garbage"), None);
    }

    #[test]
    fn deployment_and_service_cells() {
        let types = kubesim_schema::builtin_types();
        let rt = |k: &str| types.iter().find(|t| t.kind == k).unwrap().clone();
        let d = json!({"metadata": {"name": "web", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        let t = object(&rt("Deployment"), &d, Include::Metadata, TableVersion::V1);
        assert_eq!(t["rows"][0]["cells"][1], "2/2");
        assert_eq!(t["rows"][0]["cells"][7], "app=web");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(&names[..5], ["Name", "Ready", "Up-to-date", "Available", "Age"]);
        let svc = json!({"metadata": {"name": "s"}, "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.10", "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}});
        let cells = &object(&rt("Service"), &svc, Include::None, TableVersion::V1)["rows"][0]["cells"];
        assert_eq!(cells[2], "10.96.0.10");
        assert_eq!(cells[3], "<pending>");
        assert_eq!(cells[4], "80:30080/TCP");
        assert_eq!(cells[5], "<unknown>");
    }
}

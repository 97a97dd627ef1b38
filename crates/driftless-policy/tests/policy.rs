//! Behaviour of PolicySet: baselines, Conftest-style modules, Gatekeeper templates,
//! broken and hostile policies, and the report formats.

use std::path::Path;
use std::time::{Duration, Instant};

use driftless_core::object::{DesiredObject, Origin};
use driftless_policy::{Limits, PolicyError, PolicySet, Report, Severity};
use serde_json::{Value, json};

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

fn obj(file: &str, line: usize, object: Value) -> DesiredObject {
    DesiredObject {
        object,
        origin: Origin {
            file: file.into(),
            line,
        },
    }
}

fn deployment(name: &str, ns: &str, containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": name}},
                 "spec": {"containers": containers}}}
    })
}

fn good_container(name: &str) -> Value {
    json!({"name": name, "image": "registry.example.com/web:1.4.2",
           "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}})
}

fn baseline(names: &[&str]) -> PolicySet {
    let mut set = PolicySet::new();
    set.add_baseline(&names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .unwrap();
    set
}

fn eval(set: &PolicySet, objects: &[DesiredObject]) -> Report {
    set.evaluate(objects, &Limits::default()).unwrap()
}

/// `(severity, object, policy, message)` of every violation.
fn lines(report: &Report) -> Vec<(Severity, String, String, String)> {
    report
        .violations
        .iter()
        .map(|v| (v.severity, v.object.to_string(), v.policy.clone(), v.message.clone()))
        .collect()
}

fn messages(report: &Report) -> Vec<String> {
    report.violations.iter().map(|v| v.message.clone()).collect()
}

// ---------------------------------------------------------------------------------------
// Baselines

#[test]
fn baseline_names_are_all_loadable() {
    let names: Vec<String> = PolicySet::baseline_names().iter().map(|s| s.to_string()).collect();
    assert_eq!(names.len(), 5);
    let mut set = PolicySet::new();
    set.add_baseline(&names).unwrap();
    // A compliant workload passes all of them.
    let ok = obj(
        "apps/web.yaml",
        1,
        deployment("web", "prod", json!([good_container("web")])),
    );
    let report = eval(&set, &[ok]);
    assert!(report.violations.is_empty(), "{}", report.human());
    assert_eq!(report.policies, {
        let mut n = names.clone();
        n.sort();
        n
    });
    let err = set.add_baseline(&["no-root".to_string()]).unwrap_err();
    assert!(matches!(err, PolicyError::UnknownBaseline { .. }));
    assert!(err.to_string().contains("no-latest-tag"), "{err}");
}

#[test]
fn baseline_no_latest_tag() {
    let set = baseline(&["no-latest-tag"]);
    let c = |name: &str, image: &str| json!({"name": name, "image": image});
    let bad = obj(
        "apps/web.yaml",
        3,
        deployment(
            "web",
            "prod",
            json!([
                c("web", "nginx"),
                c("side", "nginx:latest"),
                c("port", "registry:5000/app")
            ]),
        ),
    );
    let good = obj(
        "apps/ok.yaml",
        1,
        deployment(
            "ok",
            "prod",
            json!([
                c("a", "nginx:1.27"),
                c("b", "registry:5000/team/app:v2"),
                c("c", "nginx@sha256:0123456789abcdef"),
                c("d", "nginx:latest@sha256:0123456789abcdef"),
            ]),
        ),
    );
    let report = eval(&set, &[bad, good]);
    assert_eq!(
        messages(&report),
        vec![
            "container port uses an untagged image (registry:5000/app)",
            "container side uses the :latest tag (nginx:latest)",
            "container web uses an untagged image (nginx)",
        ]
    );
    assert!(
        report
            .violations
            .iter()
            .all(|v| v.object.to_string() == "Deployment/prod/web")
    );
    assert!(report.denied());
    // Also Pods, CronJobs and init containers.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                     "spec": {"initContainers": [c("init", "busybox")], "containers": [c("x", "x:1")]}});
    let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj", "namespace": "ops"},
                      "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [c("job", "job:latest")]}}}}}});
    let report = eval(&set, &[obj("p.yaml", 1, pod), obj("cj.yaml", 1, cron)]);
    assert_eq!(
        lines(&report)
            .into_iter()
            .map(|(_, o, _, m)| format!("{o}: {m}"))
            .collect::<Vec<_>>(),
        vec![
            "CronJob/ops/cj: container job uses the :latest tag (job:latest)",
            "Pod/p: init container init uses an untagged image (busybox)",
        ]
    );
}

#[test]
fn baseline_no_privileged() {
    let set = baseline(&["no-privileged"]);
    let mut priv_c = good_container("web");
    priv_c["securityContext"] = json!({"privileged": true});
    let mut unpriv = good_container("web");
    unpriv["securityContext"] = json!({"privileged": false});
    let report = eval(
        &set,
        &[
            obj("a.yaml", 1, deployment("bad", "prod", json!([priv_c]))),
            obj(
                "b.yaml",
                1,
                deployment("good", "prod", json!([unpriv, good_container("x")])),
            ),
        ],
    );
    assert_eq!(
        lines(&report),
        vec![(
            Severity::Deny,
            "Deployment/prod/bad".into(),
            "no-privileged".into(),
            "container web runs privileged (securityContext.privileged: true)".into()
        )]
    );
}

#[test]
fn baseline_resources_requests() {
    let set = baseline(&["resources-requests"]);
    let none = json!({"name": "none", "image": "a:1"});
    let cpu_only = json!({"name": "cpu", "image": "a:1", "resources": {"requests": {"cpu": "1"}}});
    let limits_only = json!({"name": "lim", "image": "a:1", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}});
    let report = eval(
        &set,
        &[
            obj("a.yaml", 1, deployment("bad", "prod", json!([none, cpu_only]))),
            obj(
                "b.yaml",
                1,
                deployment("good", "prod", json!([limits_only, good_container("x")])),
            ),
        ],
    );
    assert_eq!(
        messages(&report),
        vec![
            "container cpu sets no memory request (resources.requests.memory)",
            "container none sets no cpu request (resources.requests.cpu)",
            "container none sets no memory request (resources.requests.memory)",
        ]
    );
    // Objects without pods are not concerned.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "prod"}});
    assert!(eval(&set, &[obj("c.yaml", 1, cm)]).violations.is_empty());
}

#[test]
fn baseline_no_host_path_and_network() {
    let set = baseline(&["no-host-path", "no-host-network"]);
    let mut bad = deployment("bad", "prod", json!([good_container("web")]));
    bad["spec"]["template"]["spec"]["hostNetwork"] = json!(true);
    bad["spec"]["template"]["spec"]["volumes"] = json!([
        {"name": "logs", "hostPath": {"path": "/var/log"}},
        {"name": "tmp", "emptyDir": {}}
    ]);
    let mut good = deployment("good", "prod", json!([good_container("web")]));
    good["spec"]["template"]["spec"]["hostNetwork"] = json!(false);
    good["spec"]["template"]["spec"]["volumes"] = json!([{"name": "tmp", "emptyDir": {}}]);
    let pv = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv"},
                    "spec": {"hostPath": {"path": "/data"}}});
    let report = eval(
        &set,
        &[obj("a.yaml", 1, bad), obj("b.yaml", 1, good), obj("pv.yaml", 1, pv)],
    );
    assert_eq!(
        lines(&report)
            .into_iter()
            .map(|(_, o, p, m)| format!("{o} [{p}] {m}"))
            .collect::<Vec<_>>(),
        vec![
            "Deployment/prod/bad [no-host-network] pod uses the host network (hostNetwork: true)",
            "Deployment/prod/bad [no-host-path] volume logs mounts the host path /var/log",
            "PersistentVolume/pv [no-host-path] PersistentVolume uses the host path /data",
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Conftest-style modules

#[test]
fn conftest_deny_and_warn_v0() {
    let mut set = PolicySet::new();
    set.add_rego(
        "policy/main.rego",
        r#"
package main

deny[msg] {
  input.kind == "Deployment"
  not input.metadata.labels.team
  msg := sprintf("%s has no team label", [input.metadata.name])
}

warn[msg] {
  input.kind == "Deployment"
  input.spec.replicas < 2
  msg := "a single replica is not highly available"
}

deny_no_namespace[msg] {
  not input.metadata.namespace
  msg := "objects must name their namespace"
}
"#,
    )
    .unwrap();
    set.validate().unwrap();
    let mut d = deployment("web", "prod", json!([good_container("web")]));
    d["spec"]["replicas"] = json!(1);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}});
    let report = eval(&set, &[obj("apps/web.yaml", 3, d), obj("apps/cm.yaml", 9, cm)]);
    assert_eq!(
        lines(&report),
        vec![
            (
                Severity::Deny,
                "ConfigMap/cfg".into(),
                "policy/main.rego".into(),
                "objects must name their namespace".into()
            ),
            (
                Severity::Warn,
                "Deployment/prod/web".into(),
                "policy/main.rego".into(),
                "a single replica is not highly available".into()
            ),
            (
                Severity::Deny,
                "Deployment/prod/web".into(),
                "policy/main.rego".into(),
                "web has no team label".into()
            ),
        ]
    );
    assert_eq!(report.violations[2].origin.to_string(), "apps/web.yaml:3");
}

#[test]
fn conftest_contains_if_syntax_any_package_and_structured_messages() {
    let mut set = PolicySet::new();
    set.add_rego(
        "k8s.rego",
        r#"
package k8s.rules

import rego.v1

deny contains msg if {
	input.kind == "Service"
	input.spec.type == "LoadBalancer"
	msg := "LoadBalancer services are not allowed"
}

violation contains {"msg": msg, "details": {"type": input.spec.type}} if {
	input.spec.type == "NodePort"
	msg := "NodePort services are not allowed"
}

warn contains "services should set ipFamilyPolicy" if {
	input.kind == "Service"
	not input.spec.ipFamilyPolicy
}
"#,
    )
    .unwrap();
    // A boolean rule is a failure named after the rule.
    set.add_rego(
        "bool.rego",
        "package bool\n\nimport rego.v1\n\ndeny if input.metadata.name == \"forbidden\"\n",
    )
    .unwrap();
    set.validate().unwrap();
    let svc = |name: &str, ty: &str| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "n"}, "spec": {"type": ty}});
    let report = eval(
        &set,
        &[
            obj("s.yaml", 1, svc("lb", "LoadBalancer")),
            obj("s.yaml", 5, svc("np", "NodePort")),
            obj("s.yaml", 9, svc("forbidden", "ClusterIP")),
        ],
    );
    assert_eq!(
        lines(&report),
        vec![
            (
                Severity::Deny,
                "Service/n/forbidden".into(),
                "bool.rego".into(),
                "deny".into()
            ),
            (
                Severity::Warn,
                "Service/n/forbidden".into(),
                "k8s.rego".into(),
                "services should set ipFamilyPolicy".into()
            ),
            (
                Severity::Deny,
                "Service/n/lb".into(),
                "k8s.rego".into(),
                "LoadBalancer services are not allowed".into()
            ),
            (
                Severity::Warn,
                "Service/n/lb".into(),
                "k8s.rego".into(),
                "services should set ipFamilyPolicy".into()
            ),
            (
                Severity::Deny,
                "Service/n/np".into(),
                "k8s.rego".into(),
                "NodePort services are not allowed".into()
            ),
            (
                Severity::Warn,
                "Service/n/np".into(),
                "k8s.rego".into(),
                "services should set ipFamilyPolicy".into()
            ),
        ]
    );
}

#[test]
fn load_dir_mixes_rego_and_gatekeeper_and_skips_the_rest() {
    let set = PolicySet::load_dir(&fixtures().join("policydir")).unwrap();
    assert_eq!(
        set.policy_names(),
        vec![
            "K8sRequiredLabels/deployments-need-owner",
            "K8sRequiredLabels/public-services-need-cost-center",
            "k8s/labels.rego",
            "main.rego",
        ]
    );
    let mut d = deployment("web", "prod", json!([good_container("web")]));
    d["metadata"]["labels"] = json!({"app": "web", "owner": "web.team"});
    d["spec"]["template"]["spec"]["securityContext"] = json!({"runAsNonRoot": true});
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "prod"}});
    let report = eval(&set, &[obj("web.yaml", 1, d), obj("svc.yaml", 1, svc)]);
    assert_eq!(
        report.human(),
        "deny  Service/prod/api (svc.yaml:1) [k8s/labels.rego]: Service has no app label\n\
         deny  Service/prod/api (svc.yaml:1) [k8s/labels.rego]: services name their team\n"
    );
    assert_eq!(report.objects, 2);
    assert_eq!(report.policies.len(), 4);

    assert!(matches!(
        PolicySet::load_dir(&fixtures().join("nope")),
        Err(PolicyError::Io { .. })
    ));
}

#[test]
fn rego_errors_name_the_policy() {
    let mut set = PolicySet::new();
    let err = set
        .add_rego("bad.rego", "package x\n\ndeny[msg] {\n  msg := \n")
        .unwrap_err();
    assert!(
        matches!(&err, PolicyError::Rego { policy, .. } if policy == "bad.rego"),
        "{err}"
    );
    // The failed module did not poison the set: the name is free and other modules load.
    set.add_rego(
        "bad.rego",
        "package x\n\nimport rego.v1\n\ndeny contains \"x\" if false\n",
    )
    .unwrap();
    let err = set.add_rego("bad.rego", "package y\n").unwrap_err();
    assert!(err.to_string().contains("already loaded"), "{err}");

    // Unknown functions are compile errors, found by validate().
    let mut set = PolicySet::new();
    set.add_rego(
        "unknown.rego",
        "package z\n\nimport rego.v1\n\ndeny contains msg if {\n\tmsg := no_such_function(input)\n}\n",
    )
    .unwrap();
    let err = set.validate().unwrap_err();
    assert!(
        matches!(&err, PolicyError::Rego { policy, .. } if policy == "unknown.rego"),
        "{err}"
    );
}

#[test]
fn runtime_errors_name_policy_and_object() {
    let mut set = PolicySet::new();
    set.add_rego(
        "conflict.rego",
        r#"
package conflict

import rego.v1

# Two definitions of a complete rule that disagree for objects with a name.
name := input.metadata.name
name := "other" if input.metadata.name

deny contains name if name == "x"
"#,
    )
    .unwrap();
    set.validate().unwrap();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "ns"}});
    let err = set.evaluate(&[obj("cm.yaml", 1, cm)], &Limits::default()).unwrap_err();
    match &err {
        PolicyError::Runtime { policy, object, .. } => {
            assert_eq!(policy, "conflict.rego");
            assert_eq!(object, "ConfigMap/ns/cfg");
        }
        other => panic!("expected a runtime error, got {other}"),
    }
}

#[test]
fn long_running_rule_hits_the_time_limit() {
    let mut set = PolicySet::new();
    set.add_rego(
        "slow.rego",
        r#"
package slow

import rego.v1

# 8e12 iterations: runs for hours without a limit.
deny contains "never" if {
	input.kind
	some a in numbers.range(1, 20000)
	some b in numbers.range(1, 20000)
	some c in numbers.range(1, 20000)
	a + b + c < 0
}
"#,
    )
    .unwrap();
    set.validate().unwrap();
    let limits = Limits {
        timeout: Duration::from_millis(300),
        max_instructions: None,
    };
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}});
    let started = Instant::now();
    let err = set.evaluate(&[obj("cm.yaml", 1, cm)], &limits).unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(&err, PolicyError::Timeout { policy, object, .. } if policy == "slow.rego" && object == "ConfigMap/cfg"),
        "{err}"
    );
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert!(err.to_string().contains("exceeded its evaluation limit"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Gatekeeper

fn gatekeeper_set(files: &[&str]) -> PolicySet {
    let mut set = PolicySet::new();
    for f in files {
        let text = std::fs::read_to_string(fixtures().join("gatekeeper").join(f)).unwrap();
        set.add_gatekeeper_yaml(f, &text).unwrap();
    }
    set.validate().unwrap();
    set
}

#[test]
fn gatekeeper_match_by_kind_namespace_and_parameters() {
    let set = gatekeeper_set(&["requiredlabels.yaml"]);
    let labelled = |name: &str, ns: &str, labels: Value| {
        let mut d = deployment(name, ns, json!([good_container("c")]));
        d["metadata"]["labels"] = labels;
        d
    };
    let objects = [
        obj("a.yaml", 1, labelled("missing", "prod", json!({}))),
        obj("a.yaml", 20, labelled("badvalue", "prod", json!({"owner": "Bob"}))),
        obj("a.yaml", 40, labelled("ok", "prod", json!({"owner": "web.team"}))),
        // Excluded namespace (kube-* glob).
        obj("a.yaml", 60, labelled("system", "kube-system", json!({}))),
        // Not a Deployment: the constraint does not match ConfigMaps.
        obj(
            "cm.yaml",
            1,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "prod"}}),
        ),
    ];
    let report = eval(&set, &objects);
    assert_eq!(
        lines(&report),
        vec![
            (
                Severity::Deny,
                "Deployment/prod/badvalue".into(),
                "K8sRequiredLabels/deployments-need-owner".into(),
                "label <owner: Bob> does not match the regex ^[a-z]+\\.(team|agent)$".into()
            ),
            (
                Severity::Deny,
                "Deployment/prod/missing".into(),
                "K8sRequiredLabels/deployments-need-owner".into(),
                "you must provide labels: {\"owner\"}".into()
            ),
        ]
    );
}

#[test]
fn gatekeeper_label_selector_and_warn_action() {
    let set = gatekeeper_set(&["requiredlabels.yaml"]);
    let svc = |name: &str, labels: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "web", "labels": labels}});
    let report = eval(
        &set,
        &[
            obj("s.yaml", 1, svc("public", json!({"exposure": "public"}))),
            obj("s.yaml", 8, svc("internal", json!({"exposure": "internal"}))),
            obj(
                "s.yaml",
                16,
                svc("paid", json!({"exposure": "public", "cost-center": "42"})),
            ),
        ],
    );
    assert_eq!(
        lines(&report),
        vec![(
            Severity::Warn,
            "Service/web/public".into(),
            "K8sRequiredLabels/public-services-need-cost-center".into(),
            "you must provide labels: {\"cost-center\"}".into()
        )]
    );
    assert!(!report.denied());
}

#[test]
fn gatekeeper_code_form_with_rego_v1_and_namespaces() {
    let set = gatekeeper_set(&["allowedrepos.yaml"]);
    let pod = |name: &str, ns: Option<&str>, image: &str| {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                           "spec": {"containers": [{"name": "main", "image": image}]}});
        if let Some(ns) = ns {
            p["metadata"]["namespace"] = json!(ns);
        }
        p
    };
    let report = eval(
        &set,
        &[
            obj("p.yaml", 1, pod("evil", Some("prod"), "docker.io/evil:1")),
            obj("p.yaml", 2, pod("ours", Some("prod"), "registry.example.com/app:1")),
            obj("p.yaml", 3, pod("dev", Some("dev"), "docker.io/evil:1")),
            // No namespace: Gatekeeper cannot disqualify it, neither do we.
            obj("p.yaml", 4, pod("nons", None, "docker.io/evil:1")),
        ],
    );
    assert_eq!(
        lines(&report)
            .into_iter()
            .map(|(s, o, _, _)| format!("{} {o}", s.as_str()))
            .collect::<Vec<_>>(),
        vec!["deny Pod/nons", "deny Pod/prod/evil"]
    );
    assert_eq!(
        report.violations[1].message,
        "container <main> has an invalid image repo <docker.io/evil:1>, allowed repos are [\"registry.example.com/\"]"
    );
}

#[test]
fn gatekeeper_broken_templates_and_orphan_constraints() {
    let template = |rego: &str| {
        let head = [
            "apiVersion: templates.gatekeeper.sh/v1",
            "kind: ConstraintTemplate",
            "metadata:",
            "  name: k8sbroken",
            "spec:",
            "  crd: {spec: {names: {kind: K8sBroken}}}",
            "  targets:",
            "  - target: admission.k8s.gatekeeper.sh",
            "    rego: |",
        ]
        .join("\n");
        let body: String = rego.lines().map(|l| format!("      {l}\n")).collect();
        format!("{head}\n{body}")
    };
    let mut set = PolicySet::new();
    // Syntax error.
    let err = set
        .add_gatekeeper_yaml(
            "broken.yaml",
            &template("package k8sbroken\nviolation[{\"msg\": msg}] {\n"),
        )
        .unwrap_err();
    assert!(
        matches!(&err, PolicyError::Template { file, template, .. } if file == "broken.yaml" && template == "k8sbroken"),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("broken.yaml: ConstraintTemplate k8sbroken: "),
        "{err}"
    );
    // Compiles only in parts: unknown function.
    let err = set
        .add_gatekeeper_yaml(
            "broken.yaml",
            &template("package k8sbroken\nviolation[{\"msg\": msg}] {\n  msg := nope(input.review)\n}\n"),
        )
        .unwrap_err();
    assert!(matches!(&err, PolicyError::Template { .. }), "{err}");
    // No violation rule.
    let err = set
        .add_gatekeeper_yaml("broken.yaml", &template("package k8sbroken\nallow := true\n"))
        .unwrap_err();
    assert!(err.to_string().contains("no violation rule"), "{err}");
    // CEL only.
    let cel = [
        "apiVersion: templates.gatekeeper.sh/v1",
        "kind: ConstraintTemplate",
        "metadata: {name: k8scel}",
        "spec:",
        "  crd: {spec: {names: {kind: K8sCel}}}",
        "  targets:",
        "  - target: admission.k8s.gatekeeper.sh",
        "    code:",
        "    - engine: K8sNativeValidation",
        "      source: {validations: [{expression: 'true'}]}",
    ]
    .join("\n");
    let err = set.add_gatekeeper_yaml("cel.yaml", &cel).unwrap_err();
    assert!(err.to_string().contains("CEL-only"), "{err}");
    // A constraint without its template.
    set.add_gatekeeper_yaml(
        "c.yaml",
        "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sMissing\nmetadata: {name: m}\nspec: {}\n",
    )
    .unwrap();
    let err = set.validate().unwrap_err();
    assert_eq!(
        err.to_string(),
        "c.yaml: constraint K8sMissing/m: no ConstraintTemplate defines kind K8sMissing"
    );
    assert!(set.evaluate(&[], &Limits::default()).is_err());
    // Invalid YAML.
    let err = PolicySet::new().add_gatekeeper_yaml("y.yaml", "a: [").unwrap_err();
    assert!(matches!(err, PolicyError::Yaml { .. }), "{err}");
}

#[test]
fn gatekeeper_inventory_holds_the_render() {
    let mut set = PolicySet::new();
    set.add_gatekeeper_yaml(
        "unique.yaml",
        r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8suniquehost}
spec:
  crd: {spec: {names: {kind: K8sUniqueHost}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package k8suniquehost
      violation[{"msg": msg}] {
        host := input.review.object.spec.rules[_].host
        other := data.inventory.namespace[ns][apiversion]["Ingress"][name]
        other.spec.rules[_].host == host
        not same(other, input.review)
        msg := sprintf("host %v is also used by %v/%v", [host, ns, name])
      }
      same(obj, review) {
        obj.metadata.namespace == review.object.metadata.namespace
        obj.metadata.name == review.object.metadata.name
      }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sUniqueHost
metadata: {name: unique-hosts}
spec:
  match:
    kinds: [{apiGroups: ["networking.k8s.io"], kinds: ["Ingress"]}]
"#,
    )
    .unwrap();
    let ing = |name: &str, ns: &str, host: &str| {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name, "namespace": ns},
               "spec": {"rules": [{"host": host}]}})
    };
    let report = eval(
        &set,
        &[
            obj("i.yaml", 1, ing("a", "x", "example.com")),
            obj("i.yaml", 2, ing("b", "y", "example.com")),
            obj("i.yaml", 3, ing("c", "y", "other.example.com")),
        ],
    );
    assert_eq!(
        messages(&report),
        vec![
            "host example.com is also used by y/b",
            "host example.com is also used by x/a"
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Reports

fn sample_report() -> Report {
    let mut set = baseline(&["no-latest-tag", "no-privileged"]);
    set.add_rego(
        "warn.rego",
        "package w\n\nimport rego.v1\n\nwarn contains \"<odd> & \\\"quoted\\\"\" if input.kind == \"Pod\"\n",
    )
    .unwrap();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "prod"},
                     "spec": {"containers": [{"name": "web", "image": "nginx"}]}});
    let ok = deployment("ok", "prod", json!([good_container("web")]));
    eval(&set, &[obj("apps/pod.yaml", 3, pod), obj("apps/ok.yaml", 1, ok)])
}

#[test]
fn human_lines() {
    assert_eq!(
        sample_report().human(),
        "deny  Pod/prod/p (apps/pod.yaml:3) [no-latest-tag]: container web uses an untagged image (nginx)\n\
         warn  Pod/prod/p (apps/pod.yaml:3) [warn.rego]: <odd> & \"quoted\"\n"
    );
}

#[test]
fn json_shape() {
    let j = sample_report().to_json();
    assert_eq!(j["denied"], true);
    assert_eq!(j["summary"], json!({"deny": 1, "warn": 1, "objects": 2, "policies": 3}));
    assert_eq!(j["policies"], json!(["no-latest-tag", "no-privileged", "warn.rego"]));
    assert_eq!(
        j["violations"][0],
        json!({
            "severity": "deny",
            "policy": "no-latest-tag",
            "object": {"group": "", "kind": "Pod", "namespace": "prod", "name": "p"},
            "objectName": "Pod/prod/p",
            "origin": {"file": "apps/pod.yaml", "line": 3},
            "message": "container web uses an untagged image (nginx)",
        })
    );
    assert_eq!(j["violations"][1]["severity"], "warn");
    let empty = Report::default().to_json();
    assert_eq!(empty["denied"], false);
    assert_eq!(empty["violations"], json!([]));
}

#[test]
fn junit_is_well_formed() {
    use quick_xml::events::Event;
    let xml = sample_report().to_junit("driftless <policy>");
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut stack: Vec<String> = Vec::new();
    let mut testcases = Vec::new();
    let mut failures = 0;
    let mut text = String::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                if name == "testcase" {
                    testcases.push(attr(&e, "name"));
                }
                if name == "failure" {
                    failures += 1;
                }
                stack.push(name);
            }
            Event::Empty(e) if e.name().as_ref() == b"testcase" => testcases.push(attr(&e, "name")),
            Event::End(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                assert_eq!(stack.pop().as_deref(), Some(name.as_str()), "balanced tags");
            }
            Event::Text(t) => text.push_str(&t.decode().unwrap()),
            Event::GeneralRef(r) => text.push_str(&format!("&{};", String::from_utf8_lossy(&r))),
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(stack.is_empty());
    assert_eq!(testcases, vec!["no-latest-tag", "no-privileged", "warn.rego"]);
    assert_eq!(failures, 1);
    assert!(
        xml.contains("<testsuite name=\"driftless &lt;policy&gt;\" tests=\"3\" failures=\"1\""),
        "{xml}"
    );
    assert!(text.contains("Pod/prod/p (apps/pod.yaml:3): container web uses an untagged image (nginx)"));
    assert!(
        xml.contains("warn: Pod/prod/p (apps/pod.yaml:3): &lt;odd&gt; &amp; &quot;quoted&quot;"),
        "{xml}"
    );
}

fn attr(e: &quick_xml::events::BytesStart<'_>, key: &str) -> String {
    e.attributes()
        .map(|a| a.unwrap())
        .find(|a| a.key.as_ref() == key.as_bytes())
        .map(|a| a.unescape_value().unwrap().into_owned())
        .unwrap_or_default()
}

#[test]
fn results_are_deterministic() {
    let set = {
        let mut s = PolicySet::load_dir(&fixtures().join("policydir")).unwrap();
        s.add_baseline(
            &PolicySet::baseline_names()
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        s
    };
    let c = |name: &str, image: &str| json!({"name": name, "image": image});
    let mut objects: Vec<DesiredObject> = (0..6)
        .map(|i| {
            obj(
                &format!("f{i}.yaml"),
                i,
                deployment(&format!("d{i}"), "prod", json!([c("a", "x"), c("b", "y:latest")])),
            )
        })
        .collect();
    let first = eval(&set, &objects);
    objects.reverse();
    let second = eval(&set, &objects);
    assert_eq!(first, second);
    assert_eq!(first.to_junit("s"), second.to_junit("s"));
    assert!(first.violations.len() > 20);
    let keys: Vec<_> = first
        .violations
        .iter()
        .map(|v| {
            (
                v.object.kind.clone(),
                v.object.namespace.clone(),
                v.object.name.clone(),
                v.policy.clone(),
                v.message.clone(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

#[test]
fn empty_set_and_empty_render() {
    let set = PolicySet::new();
    assert!(set.is_empty());
    let report = eval(&set, &[obj("a.yaml", 1, deployment("d", "n", json!([])))]);
    assert!(report.violations.is_empty() && !report.denied());
    assert_eq!(report.human(), "");
    let report = eval(&baseline(&["no-privileged"]), &[]);
    assert_eq!(report.policies, vec!["no-privileged"]);
}

//! Acceptance suite for server-side printing: `kubectl get` asks for `meta.k8s.io/v1`
//! `Table`s and prints the columns kubesim computes, as it does against kube-apiserver.
//! Like tests/kubectl.rs, these fail (they do not skip) when kubectl is missing.

mod common;

use std::time::Duration;

use common::{DEPLOY, env, wait_until};

/// The header line and the row starting with `name`, split on runs of spaces.
fn row(out: &str, name: &str) -> (Vec<String>, Vec<String>) {
    let split = |l: &str| {
        l.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let header = split(out.lines().next().unwrap_or(""));
    let row = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .map(split)
        .unwrap_or_else(|| panic!("no row {name} in:\n{out}"));
    (header, row)
}

fn cell<'a>(header: &[String], row: &'a [String], column: &str) -> &'a str {
    let i = header
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("no column {column} in {header:?}"));
    &row[i]
}

#[test]
fn get_deployments_shows_ready_columns() {
    let e = env();
    e.apply(DEPLOY);
    e.ok(&["wait", "--for=condition=Available", "deploy/web", "--timeout=20s"]);
    wait_until(
        Duration::from_secs(20),
        || {
            let out = e.ok(&["get", "deploy"]);
            let (h, r) = row(&out, "web");
            assert_eq!(h, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"], "{out}");
            cell(&h, &r, "READY") == "2/2" && cell(&h, &r, "AVAILABLE") == "2"
        },
        "READY 2/2",
    );
    // A single object is printed from a one-row Table too, and -o wide adds the priority-1 columns.
    let out = e.ok(&["get", "deploy", "web", "-o", "wide"]);
    let (h, r) = row(&out, "web");
    assert_eq!(cell(&h, &r, "READY"), "2/2", "{out}");
    assert_eq!(cell(&h, &r, "IMAGES"), "nginx:1.27", "{out}");
    assert_eq!(cell(&h, &r, "SELECTOR"), "app=web", "{out}");
    // Across namespaces kubectl adds NAMESPACE from the rows' object metadata.
    let out = e.ok(&["get", "deploy", "-A"]);
    let (h, r) = row(&out, "default");
    assert_eq!(cell(&h, &r, "NAME"), "web", "{out}");
    // --sort-by needs the full objects (includeObject=Object).
    let out = e.ok(&["get", "deploy", "--sort-by=.metadata.name"]);
    assert!(out.contains("2/2"), "{out}");
}

#[test]
fn get_services_shows_cluster_ip_and_ports() {
    let e = env();
    e.apply(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n",
    );
    let ip = e.ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    assert!(ip.starts_with("10."), "clusterIP {ip:?}");
    let out = e.ok(&["get", "svc"]);
    let (h, r) = row(&out, "web");
    assert_eq!(
        h,
        ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
        "{out}"
    );
    assert_eq!(cell(&h, &r, "TYPE"), "ClusterIP");
    assert_eq!(cell(&h, &r, "CLUSTER-IP"), ip);
    assert_eq!(cell(&h, &r, "EXTERNAL-IP"), "<none>");
    assert_eq!(cell(&h, &r, "PORT(S)"), "80/TCP");
}

#[test]
fn get_namespaces_configmaps_and_secrets() {
    let e = env();
    let out = e.ok(&["get", "ns"]);
    let (h, r) = row(&out, "default");
    assert_eq!(h, ["NAME", "STATUS", "AGE"], "{out}");
    assert_eq!(cell(&h, &r, "STATUS"), "Active");
    assert!(out.contains("kube-system"), "{out}");

    e.apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: \"1\", b: \"2\"}\n");
    let out = e.ok(&["get", "cm", "cfg"]);
    let (h, r) = row(&out, "cfg");
    assert_eq!(h, ["NAME", "DATA", "AGE"], "{out}");
    assert_eq!(cell(&h, &r, "DATA"), "2");

    e.apply("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {password: x}\n");
    let out = e.ok(&["get", "secret", "s"]);
    let (h, r) = row(&out, "s");
    assert_eq!(h, ["NAME", "TYPE", "DATA", "AGE"], "{out}");
    assert_eq!(cell(&h, &r, "TYPE"), "Opaque");
    assert_eq!(cell(&h, &r, "DATA"), "1");

    // Kinds without dedicated printers get NAME and AGE; so does `--no-headers` output.
    e.apply("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: robot}\n");
    let out = e.ok(&["get", "sa", "robot"]);
    let (h, _) = row(&out, "robot");
    assert_eq!(h, ["NAME", "AGE"], "{out}");
}

#[test]
fn get_jobs_shows_status_and_completions() {
    let e = env();
    e.apply(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: once}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: busybox}]\n",
    );
    wait_until(
        Duration::from_secs(20),
        || {
            let out = e.ok(&["get", "job", "once"]);
            let (h, r) = row(&out, "once");
            assert_eq!(h, ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"], "{out}");
            cell(&h, &r, "STATUS") == "Complete" && cell(&h, &r, "COMPLETIONS") == "1/1"
        },
        "job Complete 1/1",
    );
}

//! The benchmark's inputs: a Git repository of N applications of M objects, the Application
//! specs that point at it, and the same objects as plain manifests for the kubectl peer.
//!
//! Object `k` of an application is the `k % 5`-th kind of the podinfo set — ConfigMap,
//! Deployment, Service, HorizontalPodAutoscaler, ServiceAccount — named `podinfo-{k / 5}`, so
//! `--objects 5` is one podinfo, `--objects 1` is one ConfigMap, and `--objects 1000` is 200
//! podinfos. The objects follow podinfo's own manifests (probes, resources, ports, an HPA on
//! CPU), so their size and the server's defaulting work are realistic.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::procs::git;

/// Kinds of the podinfo set, in the order objects are numbered.
pub const KINDS: [&str; 5] = [
    "ConfigMap",
    "Deployment",
    "Service",
    "HorizontalPodAutoscaler",
    "ServiceAccount",
];

/// The label driftless puts on every object it applies (and the peer's prune selector).
pub const APP_LABEL: &str = "driftless.dev/app";

/// File name of object `k` in an application directory.
pub fn file_name(k: usize) -> String {
    format!("{k:05}-{}.yaml", KINDS[k % 5].to_ascii_lowercase())
}

/// Name of object `k`.
pub fn object_name(k: usize) -> String {
    format!("podinfo-{}", k / 5)
}

/// Object `k` as YAML, without a namespace; `message` goes into the ConfigMap's data (the
/// webhook scenario changes it).
pub fn object(k: usize, message: &str) -> String {
    let name = object_name(k);
    match k % 5 {
        0 => format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels: {{app.kubernetes.io/name: {name}}}\ndata:\n  PODINFO_UI_MESSAGE: \"{message}\"\n  PODINFO_UI_COLOR: \"#34577c\"\n  PODINFO_CACHE_SERVER: \"\"\n"
        ),
        1 => format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  labels: {{app.kubernetes.io/name: {name}}}\nspec:\n  replicas: 2\n  revisionHistoryLimit: 5\n  progressDeadlineSeconds: 60\n  strategy:\n    type: RollingUpdate\n    rollingUpdate: {{maxUnavailable: 0}}\n  selector:\n    matchLabels: {{app.kubernetes.io/name: {name}}}\n  template:\n    metadata:\n      labels: {{app.kubernetes.io/name: {name}}}\n      annotations: {{prometheus.io/scrape: \"true\", prometheus.io/port: \"9797\"}}\n    spec:\n      serviceAccountName: {name}\n      containers:\n      - name: podinfod\n        image: ghcr.io/stefanprodan/podinfo:6.7.0\n        imagePullPolicy: IfNotPresent\n        ports:\n        - {{name: http, containerPort: 9898, protocol: TCP}}\n        - {{name: http-metrics, containerPort: 9797, protocol: TCP}}\n        - {{name: grpc, containerPort: 9999, protocol: TCP}}\n        command: [./podinfo, --port=9898, --port-metrics=9797, --grpc-port=9999, --level=info]\n        envFrom:\n        - configMapRef: {{name: {name}}}\n        livenessProbe:\n          httpGet: {{path: /healthz, port: 9898}}\n          initialDelaySeconds: 1\n          timeoutSeconds: 5\n        readinessProbe:\n          httpGet: {{path: /readyz, port: 9898}}\n          initialDelaySeconds: 1\n          timeoutSeconds: 5\n        resources:\n          limits: {{cpu: 2000m, memory: 512Mi}}\n          requests: {{cpu: 100m, memory: 64Mi}}\n"
        ),
        2 => format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  labels: {{app.kubernetes.io/name: {name}}}\nspec:\n  type: ClusterIP\n  selector: {{app.kubernetes.io/name: {name}}}\n  ports:\n  - {{name: http, port: 9898, protocol: TCP, targetPort: http}}\n  - {{name: grpc, port: 9999, protocol: TCP, targetPort: grpc}}\n"
        ),
        3 => format!(
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: {name}\n  labels: {{app.kubernetes.io/name: {name}}}\nspec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {name}}}\n  minReplicas: 2\n  maxReplicas: 4\n  metrics:\n  - type: Resource\n    resource:\n      name: cpu\n      target: {{type: Utilization, averageUtilization: 99}}\n"
        ),
        _ => format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n  labels: {{app.kubernetes.io/name: {name}}}\n"
        ),
    }
}

/// Object `k` as the cluster receives it: in namespace `ns`, with driftless's app label.
fn peer_object(k: usize, ns: &str, app: &str) -> String {
    object(k, "0").replacen(
        &format!("  labels: {{app.kubernetes.io/name: {}}}\n", object_name(k)),
        &format!(
            "  namespace: {ns}\n  labels: {{app.kubernetes.io/name: {}, {APP_LABEL}: {app}}}\n",
            object_name(k)
        ),
        1,
    )
}

/// Name of application `a` (also its namespace).
pub fn app_name(a: usize) -> String {
    format!("app{a}")
}

/// A benchmark's inputs on disk.
pub struct Workload {
    /// The Git repository (one directory per application).
    pub repo: PathBuf,
    /// Application specs, one file per application.
    pub apps_dir: PathBuf,
    /// The same objects as plain manifests for kubectl: one file per application, its
    /// Namespace first, every object with its namespace and the app label.
    pub peer_dir: PathBuf,
}

impl Workload {
    /// Writes `apps` applications of `objects` objects under `root` and commits them.
    pub fn create(root: &Path, apps: usize, objects: usize) -> Result<Workload> {
        let repo = root.join("repo");
        let apps_dir = root.join("apps");
        let peer_dir = root.join("peer");
        for d in [&repo, &apps_dir, &peer_dir] {
            std::fs::create_dir_all(d)?;
        }
        git(&repo, &["init", "-q", "-b", "main"])?;
        for a in 0..apps {
            let app = app_name(a);
            let d = repo.join(&app);
            std::fs::create_dir_all(&d)?;
            let mut peer = format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {app}\n  labels: {{{APP_LABEL}: {app}}}\n"
            );
            for k in 0..objects {
                std::fs::write(d.join(file_name(k)), object(k, "0"))?;
                let _ = write!(peer, "---\n{}", peer_object(k, &app, &app));
            }
            std::fs::write(peer_dir.join(format!("{app}.yaml")), peer)?;
            std::fs::write(
                apps_dir.join(format!("{app}.yaml")),
                format!(
                    "apiVersion: driftless.dev/v1alpha1\nkind: Application\nmetadata:\n  name: {app}\nspec:\n  source: {{repoURL: \"file://{}\", ref: main, path: {app}}}\n  destination: {{namespace: {app}}}\n  sync: {{automated: true, selfHeal: true, prune: true, createNamespace: true}}\n  refreshInterval: 1h\n  healthTimeout: 5m\n",
                    repo.display()
                ),
            )?;
        }
        git(&repo, &["add", "-A"])?;
        git(&repo, &["commit", "-q", "-m", "bench"])?;
        Ok(Workload {
            repo,
            apps_dir,
            peer_dir,
        })
    }

    /// Repository URL as the Application specs name it.
    pub fn repo_url(&self) -> String {
        format!("file://{}", self.repo.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_cycle_through_the_podinfo_set() {
        assert!(object(0, "x").contains("kind: ConfigMap"));
        assert!(object(0, "x").contains("PODINFO_UI_MESSAGE: \"x\""));
        assert!(object(6, "x").contains("kind: Deployment") && object(6, "x").contains("name: podinfo-1"));
        assert!(object(9, "x").contains("kind: ServiceAccount"));
        assert_eq!(file_name(3), "00003-horizontalpodautoscaler.yaml");
    }

    #[test]
    fn peer_objects_carry_namespace_and_label() {
        for k in 0..5 {
            let y = peer_object(k, "app7", "app7");
            assert!(y.contains("  namespace: app7\n"), "{y}");
            assert!(y.contains("driftless.dev/app: app7"), "{y}");
        }
    }
}

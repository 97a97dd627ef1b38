//! End-to-end: the built `driftless` binary against kubesim and a local Git repository, with
//! the real `kubectl` confirming the live state after every step.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use kubesim::{Config, KubeSim};
use serde_json::Value;

struct World {
    sim: KubeSim,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    repo: PathBuf,
    apps: PathBuf,
    data: PathBuf,
}

fn git(repo: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(repo)
        .env("GIT_AUTHOR_NAME", "Ada")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n";
const SVC: &str =
    "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n";
const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: hello\n";

impl World {
    fn new() -> World {
        let sim = KubeSim::spawn(Config {
            ready_delay: Duration::from_millis(150),
            ..Config::default()
        })
        .expect("kubesim");
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig).unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(repo.join("apps/guestbook")).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        std::fs::write(repo.join("apps/guestbook/deployment.yaml"), DEPLOY).unwrap();
        std::fs::write(repo.join("apps/guestbook/service.yaml"), SVC).unwrap();
        std::fs::write(repo.join("apps/guestbook/config.yaml"), CM).unwrap();
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "guestbook v1"]);
        let apps = dir.path().join("apps.yaml");
        std::fs::write(
            &apps,
            format!(
                "apiVersion: driftless.dev/v1alpha1\nkind: Application\nmetadata:\n  name: guestbook\nspec:\n  source:\n    repoURL: file://{}\n    ref: main\n    path: apps/guestbook\n  destination:\n    namespace: guestbook\n  syncPolicy:\n    prune: true\n    createNamespace: true\n  healthTimeout: 20s\n",
                repo.display()
            ),
        )
        .unwrap();
        let data = dir.path().join("data");
        World {
            sim,
            dir,
            kubeconfig,
            repo,
            apps,
            data,
        }
    }

    fn driftless(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_driftless"))
            .args(args)
            .env("DRIFTLESS_APPS", &self.apps)
            .env("DRIFTLESS_DATA_DIR", &self.data)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("NO_COLOR", "1")
            .output()
            .expect("driftless runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.driftless(args);
        assert!(
            out.status.success(),
            "driftless {args:?} exited {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn kubectl_json(&self, args: &[&str]) -> Option<Value> {
        let out = Command::new("kubectl")
            .args(args)
            .args(["-o", "json"])
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("kubectl runs");
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    fn commit(&self, msg: &str, change: impl FnOnce(&Path)) {
        change(&self.repo.join("apps/guestbook"));
        git(&self.repo, &["add", "-A"]);
        git(&self.repo, &["commit", "-q", "-m", msg]);
    }
}

#[test]
fn sync_diff_prune_rollback_end_to_end() {
    let w = World::new();

    // First sync creates everything and waits for health.
    let out = w.ok(&["sync", "guestbook"]);
    assert!(out.contains("synced"), "{out}");
    let d = w
        .kubectl_json(&["get", "deploy", "web", "-n", "guestbook"])
        .expect("deployment exists");
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["metadata"]["labels"]["driftless.dev/app"], "guestbook");
    assert_eq!(d["status"]["availableReplicas"], 2);
    assert!(w.kubectl_json(&["get", "cm", "settings", "-n", "guestbook"]).is_some());

    // In sync: diff exits 0, and a resync makes zero writes.
    let diff = w.driftless(&["diff", "guestbook"]);
    assert_eq!(diff.status.code(), Some(0), "{}", String::from_utf8_lossy(&diff.stderr));
    let before = w.sim.stats().writes;
    w.ok(&["sync", "guestbook"]);
    assert_eq!(w.sim.stats().writes, before, "a no-op resync must not write");

    // A commit shows in diff (exit 1) and sync applies it.
    w.commit("scale to 3", |dir| {
        std::fs::write(
            dir.join("deployment.yaml"),
            DEPLOY.replace("replicas: 2", "replicas: 3"),
        )
        .unwrap()
    });
    let diff = w.driftless(&["diff", "guestbook"]);
    assert_eq!(diff.status.code(), Some(1));
    let text = String::from_utf8_lossy(&diff.stdout);
    assert!(
        text.contains("-  replicas: 2") && text.contains("+  replicas: 3"),
        "{text}"
    );
    w.ok(&["sync", "guestbook"]);
    assert_eq!(
        w.kubectl_json(&["get", "deploy", "web", "-n", "guestbook"]).unwrap()["spec"]["replicas"],
        3
    );

    // Deleting a file prunes its object.
    w.commit("drop the config map", |dir| {
        std::fs::remove_file(dir.join("config.yaml")).unwrap()
    });
    w.ok(&["sync", "guestbook"]);
    assert!(
        w.kubectl_json(&["get", "cm", "settings", "-n", "guestbook"]).is_none(),
        "pruned"
    );

    // History lists every sync; rollback to the first restores its state and pins it.
    let history: Value = serde_json::from_str(&w.ok(&["history", "guestbook", "-o", "json"])).unwrap();
    let entries = history.as_array().unwrap();
    assert!(entries.len() >= 4, "{history}");
    assert!(
        entries
            .iter()
            .all(|e| e["id"].is_number() && e["revision"].is_string() && e["outcome"].is_string())
    );
    let first = entries.last().unwrap()["id"].as_i64().unwrap().to_string();
    w.ok(&["rollback", "guestbook", &first]);
    assert_eq!(
        w.kubectl_json(&["get", "deploy", "web", "-n", "guestbook"]).unwrap()["spec"]["replicas"],
        2
    );
    assert!(
        w.kubectl_json(&["get", "cm", "settings", "-n", "guestbook"]).is_some(),
        "rollback restores the config map"
    );
    // Pinned: a plain sync keeps the rolled-back state until a newer commit arrives.
    w.ok(&["sync", "guestbook"]);
    assert_eq!(
        w.kubectl_json(&["get", "deploy", "web", "-n", "guestbook"]).unwrap()["spec"]["replicas"],
        2
    );
    let apps = w.ok(&["apps"]);
    assert!(apps.contains("pinned"), "{apps}");
    w.ok(&["rollback", "guestbook", "--unpin"]);
    w.ok(&["sync", "guestbook", "--confirm-prune"]);
    assert_eq!(
        w.kubectl_json(&["get", "deploy", "web", "-n", "guestbook"]).unwrap()["spec"]["replicas"],
        3
    );
    let _ = &w.dir;
}

#[test]
fn failed_render_never_prunes_and_empty_render_needs_allow_empty() {
    let w = World::new();
    w.ok(&["sync", "guestbook"]);
    // A broken manifest: the sync fails, nothing is pruned.
    w.commit("broken yaml", |dir| {
        std::fs::remove_file(dir.join("config.yaml")).unwrap();
        std::fs::write(
            dir.join("deployment.yaml"),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web\n",
        )
        .unwrap();
    });
    let out = w.driftless(&["sync", "guestbook"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("deployment.yaml") && err.contains("nothing was applied or pruned"),
        "{err}"
    );
    assert!(
        w.kubectl_json(&["get", "cm", "settings", "-n", "guestbook"]).is_some(),
        "a failed render must not prune"
    );

    // An empty render: refused unless the app allows it.
    w.commit("empty", |dir| {
        for f in ["deployment.yaml", "service.yaml"] {
            std::fs::remove_file(dir.join(f)).unwrap();
        }
        std::fs::write(dir.join("README.md"), "nothing here").unwrap();
    });
    let out = w.driftless(&["sync", "guestbook", "--confirm-prune"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("allowEmpty"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        w.kubectl_json(&["get", "deploy", "web", "-n", "guestbook"]).is_some(),
        "an empty render must not prune"
    );
}

#[test]
fn prune_above_threshold_needs_confirmation() {
    let w = World::new();
    w.ok(&["sync", "guestbook"]);
    w.commit("keep only the config map", |dir| {
        std::fs::remove_file(dir.join("deployment.yaml")).unwrap();
        std::fs::remove_file(dir.join("service.yaml")).unwrap();
    });
    let out = w.driftless(&["sync", "guestbook"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--confirm-prune"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(w.kubectl_json(&["get", "deploy", "web", "-n", "guestbook"]).is_some());
    w.ok(&["sync", "guestbook", "--confirm-prune"]);
    assert!(w.kubectl_json(&["get", "deploy", "web", "-n", "guestbook"]).is_none());
}

#[test]
fn unhealthy_workload_fails_the_sync_naming_the_object() {
    let w = World::new();
    w.commit("never ready", |dir| {
        std::fs::write(
            dir.join("deployment.yaml"),
            DEPLOY.replace(
                "  name: web\n",
                "  name: web\n  annotations: {kubesim.driftless.dev/fault: never-ready}\n",
            ),
        )
        .unwrap();
    });
    std::fs::write(
        &w.apps,
        std::fs::read_to_string(&w.apps)
            .unwrap()
            .replace("healthTimeout: 20s", "healthTimeout: 2s"),
    )
    .unwrap();
    let out = w.driftless(&["sync", "guestbook"]);
    assert_eq!(out.status.code(), Some(1));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("Deployment/guestbook/web") && all.contains("Progressing"),
        "{all}"
    );
    let h: Value = serde_json::from_str(&w.ok(&["history", "guestbook", "-o", "json"])).unwrap();
    assert_eq!(h[0]["outcome"], "degraded");
}

#[test]
fn health_command_reads_a_file() {
    let w = World::new();
    let f = w.dir.path().join("objs.yaml");
    std::fs::write(&f, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a, generation: 1}\nspec: {replicas: 1}\nstatus: {observedGeneration: 1, replicas: 1, updatedReplicas: 1, availableReplicas: 1, readyReplicas: 1, conditions: [{type: Available, status: \"True\"}]}\n---\napiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nstatus: {conditions: [{type: Failed, status: \"True\", reason: BackoffLimitExceeded, message: too many failures}]}\n").unwrap();
    let out = w.driftless(&["health", "-f", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Deployment/a")
            && text.contains("Healthy")
            && text.contains("Job/j")
            && text.contains("Degraded"),
        "{text}"
    );
}

//! The kubectl harness shared by tests/kubectl.rs and tests/kubectl_table.rs: a kubesim, a
//! kubeconfig for it, and the real `kubectl` run against them. kubectl is the judge of
//! kubesim's realism, so these helpers fail (they do not skip) when kubectl is missing.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kubesim::{Config, KubeSim};
use serde_json::Value;

/// Deployment `web`: 2 replicas of nginx:1.27, selector `app=web`. tests/kubectl.rs edits it
/// as text (`replicas: 2`, the `image: nginx:1.27` line), so keep those lines as they are.
pub const DEPLOY: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports: [{containerPort: 80}]
        env: [{name: A, value: "1"}]
"#;

pub struct Env {
    pub sim: KubeSim,
    _dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

pub fn env_with(config: Config) -> Env {
    let sim = KubeSim::spawn(config).expect("kubesim starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig written");
    Env {
        sim,
        _dir: dir,
        kubeconfig,
    }
}

/// A kubesim whose Deployments become ready after 200 ms.
pub fn env() -> Env {
    env_with(Config {
        ready_delay: Duration::from_millis(200),
        ..Config::default()
    })
}

impl Env {
    pub fn kubectl_in(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new("kubectl");
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECTL_EXTERNAL_DIFF", "diff -u -N")
            .env_remove("KUBECTL_KUBERC")
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .expect("kubectl must be installed: it is the judge of kubesim's realism");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        child.wait_with_output().expect("kubectl runs")
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_in(args, None)
    }

    /// Runs kubectl and returns stdout, failing the test with kubectl's stderr otherwise.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_in(args, None)
    }

    pub fn ok_in(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.kubectl_in(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn apply(&self, yaml: &str) -> String {
        self.ok_in(&["apply", "-f", "-"], Some(yaml))
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).expect("kubectl printed JSON")
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Polls `f` every 100 ms until it returns true; panics naming `what` after `timeout`.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool, what: &str) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

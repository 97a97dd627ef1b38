//! The peer: `kubectl apply --server-side` of the same objects against a kubesim of its own,
//! in the same run, so driftless's figures can be given as ratios.
//!
//! kubectl gets its best case: one invocation for all applications (`-f DIR -R`), each file
//! holding an application's Namespace and objects with their namespace filled in — what
//! driftless applies. The pruning variant uses an ApplySet (`KUBECTL_APPLYSET=true --prune
//! --applyset applysetparents.bench.driftless.dev/peer`): kubectl refuses `--prune -l` with
//! `--server-side`, and a Secret parent cannot span namespaces, so the parent is a
//! cluster-scoped custom resource created beforehand (untimed), as kubectl requires.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::procs::Sim;

/// One kubectl run.
pub struct PeerRun {
    /// Wall time of the kubectl process.
    pub seconds: f64,
    /// API writes kubesim counted during the run.
    pub writes: u64,
    /// kubesim's CPU seconds during the run.
    pub kubesim_cpu_seconds: f64,
}

/// Runs `kubectl apply --server-side -f dir -R` (with pruning if asked) against `sim`.
pub async fn kubectl_apply(sim: &Sim, http: &reqwest::Client, dir: &Path, prune: bool) -> Result<PeerRun> {
    let cache = tempfile::tempdir().context("creating kubectl's cache directory")?;
    let mut cmd = tokio::process::Command::new("kubectl");
    cmd.arg("--kubeconfig")
        .arg(&sim.kubeconfig)
        .arg("--cache-dir")
        .arg(cache.path())
        .args(["apply", "--server-side", "--field-manager", "kubectl-bench", "-R", "-f"])
        .arg(dir);
    if prune {
        create_applyset_parent(sim, cache.path()).await?;
        cmd.env("KUBECTL_APPLYSET", "true")
            .args(["--prune", "--applyset", "applysetparents.bench.driftless.dev/peer"]);
    }
    cmd.stdout(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true);
    let writes_before = sim.writes(http).await?;
    let cpu_before = sim.proc.cpu_seconds();
    let started = Instant::now();
    let out = cmd
        .output()
        .await
        .context("running kubectl (is it installed? pass --no-peer to skip the peer)")?;
    let seconds = started.elapsed().as_secs_f64();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String = err.lines().rev().take(5).collect::<Vec<_>>().join(" / ");
        bail!("kubectl apply --server-side failed ({}): {tail}", out.status);
    }
    Ok(PeerRun {
        seconds,
        writes: sim.writes(http).await? - writes_before,
        kubesim_cpu_seconds: sim.proc.cpu_seconds() - cpu_before,
    })
}

const APPLYSET_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: applysetparents.bench.driftless.dev
  labels: {applyset.kubernetes.io/is-parent-type: \"true\"}
spec:
  group: bench.driftless.dev
  scope: Cluster
  names: {plural: applysetparents, singular: applysetparent, kind: ApplySetParent}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
";

/// The parent, with the annotations kubectl requires of a parent it did not create. The id
/// is `applyset-` + unpadded base64url(sha256("peer..ApplySetParent.bench.driftless.dev"))
/// + `-v1` (name, empty namespace, kind, group), as the ApplySet specification defines it.
const APPLYSET_PARENT: &str = "apiVersion: bench.driftless.dev/v1
kind: ApplySetParent
metadata:
  name: peer
  labels: {applyset.kubernetes.io/id: applyset-57gpyRXafyoWkonYaZfE0xUfXRj0jm6hcZBdOZKECE8-v1}
  annotations: {applyset.kubernetes.io/tooling: kubectl/v1.32.4, applyset.kubernetes.io/contains-group-kinds: \"\"}
";

/// Creates the ApplySet parent's CRD and the parent (retrying until the CRD is served).
async fn create_applyset_parent(sim: &Sim, cache: &Path) -> Result<()> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let (crd, parent) = (dir.path().join("crd.yaml"), dir.path().join("parent.yaml"));
    std::fs::write(&crd, APPLYSET_CRD)?;
    std::fs::write(&parent, APPLYSET_PARENT)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    for (file, what) in [(&crd, "the ApplySet CRD"), (&parent, "the ApplySet parent")] {
        loop {
            let out = tokio::process::Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&sim.kubeconfig)
                .arg("--cache-dir")
                .arg(cache)
                .args(["apply", "--server-side", "--field-manager", "kubectl-applyset", "-f"])
                .arg(file)
                .output()
                .await
                .context("running kubectl")?;
            if out.status.success() {
                break;
            }
            if Instant::now() > deadline {
                bail!("creating {what}: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

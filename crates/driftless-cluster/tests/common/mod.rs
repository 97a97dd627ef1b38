//! Setup shared by tests/kubesim.rs and tests/watch.rs: a kubesim in this runtime, a
//! kubeconfig file for it, and a [`ClusterClient`] connected through that file.
#![allow(dead_code)]

use std::path::PathBuf;

use driftless_cluster::ClusterClient;
use kubesim::{Config, KubeSim};

pub struct Env {
    pub sim: KubeSim,
    /// Holds the kubeconfig; tests may put other files here.
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub cluster: ClusterClient,
}

pub async fn env_with(config: Config) -> Env {
    let sim = KubeSim::start(config).await.expect("kubesim starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig written");
    let cluster = ClusterClient::connect(Some(&kubeconfig), None, false)
        .await
        .expect("connect");
    Env {
        sim,
        dir,
        kubeconfig,
        cluster,
    }
}

pub async fn env() -> Env {
    env_with(Config::default()).await
}

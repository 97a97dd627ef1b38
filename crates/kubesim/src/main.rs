//! `kubesim` binary: serves the in-memory Kubernetes API in the foreground until SIGTERM or
//! Ctrl-C, after writing a kubeconfig that kubectl and kube-rs load unchanged.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;

/// An in-memory Kubernetes API server for tests and demos (not for production).
#[derive(Parser, Debug)]
#[command(name = "kubesim", version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:6443")]
    addr: SocketAddr,
    /// Write a kubeconfig for this server here (current context `kubesim`).
    #[arg(long, value_name = "FILE")]
    kubeconfig_out: Option<PathBuf>,
    /// Serve HTTPS with a generated CA (written into the kubeconfig).
    #[arg(long)]
    tls: bool,
    /// Require a bearer token, read from this file (written into the kubeconfig).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// How long simulated workloads take to become ready, in milliseconds.
    #[arg(long, default_value_t = 300)]
    ready_delay_ms: u64,
    /// Interval between watch bookmarks, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    bookmark_interval_ms: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let token = match &args.token_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading token file {}", p.display()))?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let config = kubesim::Config {
        addr: args.addr,
        tls: args.tls,
        token,
        ready_delay: Duration::from_millis(args.ready_delay_ms),
        bookmark_interval: Duration::from_millis(args.bookmark_interval_ms.max(10)),
        ..Default::default()
    };
    let sim = kubesim::KubeSim::start(config).await?;
    if let Some(path) = &args.kubeconfig_out {
        sim.write_kubeconfig(path)?;
    }
    eprintln!(
        "kubesim serving at {} (kubeconfig: {})",
        sim.url(),
        args.kubeconfig_out
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "not written".into())
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing SIGTERM handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    sim.shutdown();
    eprintln!("kubesim stopped");
    Ok(())
}

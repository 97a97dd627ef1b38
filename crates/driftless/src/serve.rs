//! `driftless serve`: wires the daemon (driftless-engine) to the HTTP server
//! (driftless-server). Only glue lives here: the `Backend` adapter and flag handling.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use driftless_engine::daemon::{AppsSource, Daemon, DaemonOptions, Trigger};
use driftless_engine::{Engine, EngineError, SyncOptions};
use driftless_server::{
    AppSummary, Backend, BackendError, Forge, PushEvent, ServerConfig, SyncRequest, Tokens, WebhookSecrets,
};
use serde_json::Value;

/// Flags of `driftless serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address of the HTTP API, webhook receiver and /metrics.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Load Application specs from this Git repository instead of --apps (apps-of-apps).
    #[arg(long, value_name = "URL")]
    pub apps_repo: Option<String>,
    /// Ref of --apps-repo.
    #[arg(long, default_value = "main")]
    pub apps_ref: String,
    /// Directory (or file) of Application specs in --apps-repo.
    #[arg(long, default_value = "")]
    pub apps_path: String,
    /// How often the apps source is re-read (a push to --apps-repo reloads at once).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub apps_reload: Duration,
    /// Shared secret for webhook signatures (all forges unless a per-forge file is given).
    #[arg(long, value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Per-forge webhook secret, `FORGE=FILE` (github, gitlab, gitea, bitbucket, bitbucket-server, generic); repeatable.
    #[arg(long, value_name = "FORGE=FILE")]
    pub forge_secret_file: Vec<String>,
    /// API bearer tokens, one per line: `TOKEN [admin|read [NAME]]`.
    #[arg(long, value_name = "FILE")]
    pub api_token_file: Option<PathBuf>,
    /// Notification receivers and subscriptions (YAML or JSON).
    #[arg(long, value_name = "FILE")]
    pub notifications: Option<PathBuf>,
    /// Reconciles running at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// How long SIGTERM waits for running syncs before exiting.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    driftless_core::duration::parse_duration(s).map_err(|e| e.to_string())
}

struct DaemonBackend(Daemon);

fn engine_error(e: EngineError) -> BackendError {
    match e {
        EngineError::UnknownApp(n) => BackendError::NotFound(n),
        e @ (EngineError::PruneRefused { .. }
        | EngineError::Render { .. }
        | EngineError::Plan { .. }
        | EngineError::Signature { .. }
        | EngineError::Decrypt { .. }
        | EngineError::Keys { .. }
        | EngineError::Policy { .. }
        | EngineError::PolicyDenied { .. }) => BackendError::Conflict(e.to_string()),
        e @ (EngineError::Source { .. } | EngineError::Cluster { .. }) => BackendError::Unavailable(e.to_string()),
        e => BackendError::Internal(e.to_string()),
    }
}

fn found<T>(name: &str, v: Option<T>) -> Result<T, BackendError> {
    v.ok_or_else(|| BackendError::NotFound(format!("application {name:?}")))
}

impl Backend for DaemonBackend {
    async fn apps(&self) -> Vec<AppSummary> {
        self.0
            .summaries()
            .into_iter()
            .map(|v| AppSummary {
                name: v["name"].as_str().unwrap_or_default().to_owned(),
                sync: v["sync"].as_str().unwrap_or_default().to_owned(),
                health: v["health"].as_str().unwrap_or_default().to_owned(),
                revision: v["revision"].as_str().unwrap_or_default().to_owned(),
                message: v["message"].as_str().unwrap_or_default().to_owned(),
                automated: v["automated"].as_bool().unwrap_or(false),
                last_sync: v.get("lastSync").cloned().filter(|l| !l.is_null()),
                held_back: v["heldBack"].as_str().map(str::to_owned),
                violations: v["violations"].as_array().cloned().unwrap_or_default(),
            })
            .collect()
    }

    async fn app(&self, name: &str) -> Result<Value, BackendError> {
        found(name, self.0.app(name))
    }

    async fn diff(&self, name: &str) -> Result<Value, BackendError> {
        found(name, self.0.diff(name).await.map_err(engine_error)?)
    }

    async fn refresh(&self, name: &str) -> Result<(), BackendError> {
        if self.0.refresh(name, Trigger::Manual) {
            Ok(())
        } else {
            Err(BackendError::NotFound(format!("application {name:?}")))
        }
    }

    async fn sync(&self, name: &str, req: SyncRequest) -> Result<Value, BackendError> {
        let opts = SyncOptions {
            dry_run: req.dry_run,
            prune: req.prune,
            confirm_prune: req.confirm_prune,
            force_conflicts: req.force_conflicts,
            trigger: "api".into(),
            wait_health: true,
        };
        found(name, self.0.sync_now(name, opts).await.map_err(engine_error)?)
    }

    async fn history(&self, name: &str, limit: usize) -> Result<Value, BackendError> {
        let entries = found(name, self.0.history(name, limit).map_err(engine_error)?)?;
        Ok(Value::Array(entries.iter().map(crate::history_json).collect()))
    }

    async fn rollback(&self, name: &str, id: i64) -> Result<Value, BackendError> {
        found(name, self.0.rollback(name, id).await.map_err(engine_error)?)
    }

    async fn push(&self, event: PushEvent) -> Vec<String> {
        self.0.push(&event.repo_urls, &event.git_ref)
    }

    fn ready(&self) -> bool {
        self.0.ready()
    }

    fn metrics_text(&self) -> String {
        self.0.metrics_text()
    }

    fn record_webhook(&self, forge: &str, result: &str) {
        self.0.record_webhook(forge, result)
    }
}

/// Runs the daemon and the HTTP server until SIGTERM/SIGINT.
pub async fn run(cli: &crate::Cli, args: &ServeArgs, data_dir: PathBuf) -> Result<u8> {
    let apps = match &args.apps_repo {
        Some(url) => AppsSource::Git {
            url: url.clone(),
            git_ref: args.apps_ref.clone(),
            path: args.apps_path.clone(),
        },
        None => AppsSource::Path(cli.apps.clone()),
    };
    let tokens = match &args.api_token_file {
        Some(p) => Tokens::load(p).with_context(|| format!("reading API tokens from {}", p.display()))?,
        None => Tokens::none(),
    };
    let mut secrets = match &args.webhook_secret_file {
        Some(p) => WebhookSecrets::load_shared(p)
            .with_context(|| format!("reading the webhook secret from {}", p.display()))?,
        None => WebhookSecrets::default(),
    };
    for spec in &args.forge_secret_file {
        let (forge, file) = spec
            .split_once('=')
            .with_context(|| format!("--forge-secret-file {spec:?}: expected FORGE=FILE"))?;
        let forge = Forge::from_name(forge).with_context(|| format!("--forge-secret-file: unknown forge {forge:?}"))?;
        let secret = std::fs::read(file).with_context(|| format!("reading the {forge} webhook secret from {file}"))?;
        let trimmed = String::from_utf8_lossy(&secret).trim().as_bytes().to_vec();
        secrets = secrets.with_forge(forge, trimmed);
    }
    let notifier = match &args.notifications {
        Some(p) => driftless_notify::Notifier::new(
            driftless_notify::NotifyConfig::load(p)
                .with_context(|| format!("reading notifications from {}", p.display()))?,
        ),
        None => driftless_notify::Notifier::disabled(),
    };
    let engine = Engine::open(&data_dir).with_context(|| format!("opening the data dir {}", data_dir.display()))?;
    let recovered = engine.store().recovered_at_open().len();
    if recovered > 0 {
        tracing::warn!(
            count = recovered,
            "syncs left running by a previous process are marked interrupted"
        );
    }
    let daemon = Daemon::start(
        engine,
        DaemonOptions {
            apps,
            kubeconfig: cli.kubeconfig.clone(),
            context: cli.context.clone(),
            allow_exec: cli.allow_exec_credentials,
            concurrency: args.concurrency,
            notifier,
            apps_reload: args.apps_reload,
            shutdown_grace: args.shutdown_grace,
        },
    )
    .await?;
    let config = ServerConfig {
        listen: args.listen,
        tokens,
        webhook_secrets: secrets,
        max_webhook_body: driftless_server::DEFAULT_MAX_WEBHOOK_BODY,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "driftless serve is up");
    eprintln!(
        "driftless serve: listening on http://{}",
        listener.local_addr().map(|a| a.to_string()).unwrap_or_default()
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let backend = Arc::new(DaemonBackend(daemon.clone()));
    let server = tokio::spawn(driftless_server::serve_on(listener, backend, config, async move {
        let _ = stop_rx.await;
    }));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!(
        "driftless serve: shutting down (waiting up to {}s for running syncs)",
        args.shutdown_grace.as_secs()
    );
    daemon.shutdown().await;
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    Ok(0)
}

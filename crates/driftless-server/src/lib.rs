//! # driftless-server
//!
//! The HTTP face of the driftless daemon: a JSON API over the applications, a receiver for
//! forge push webhooks, and a Prometheus `/metrics` endpoint. This crate contains **no sync
//! logic**: every decision about applications is delegated to a [`Backend`], which the daemon
//! implements. The server only authenticates, validates, translates and counts.
//!
//! ## Endpoints
//!
//! | method | path | auth |
//! |---|---|---|
//! | GET | `/healthz` | none; always 200 |
//! | GET | `/readyz` | none; 503 until [`Backend::ready`] |
//! | GET | `/metrics` | as API reads (see below) |
//! | GET | `/api/v1/apps` | read |
//! | GET | `/api/v1/apps/{name}` | read |
//! | GET | `/api/v1/apps/{name}/diff` | read |
//! | GET | `/api/v1/apps/{name}/history?limit=N` | read (N defaults to 20, at most 1000) |
//! | POST | `/api/v1/apps/{name}/refresh` | admin |
//! | POST | `/api/v1/apps/{name}/sync` | admin; optional JSON body [`SyncRequest`] |
//! | POST | `/api/v1/apps/{name}/rollback/{id}` | admin |
//! | POST | `/api/webhook`, `/api/webhook/{forge}` | the forge's signature or token |
//!
//! ## Authentication decisions
//!
//! * With a token file ([`Tokens::load`]) every `/api/v1/*` call and `/metrics` need
//!   `Authorization: Bearer TOKEN`. `read` tokens may use GET; anything else needs an `admin`
//!   token. A missing or unknown token is 401 (with `WWW-Authenticate: Bearer`), a read token on
//!   a mutating endpoint is 403.
//! * Without a token file ([`Tokens::none`]) reads — including `/metrics` — are anonymous, so a
//!   Prometheus scrape works out of the box on a trusted network, but **mutating endpoints are
//!   always refused** with 401 telling the operator to start the server with
//!   `--api-token-file`. There is no configuration in which an anonymous caller can sync,
//!   refresh or roll back.
//! * `/metrics` follows the read rule rather than being always open, because metric labels
//!   carry application names, and once an operator locks the API with a token file they expect
//!   names not to leak (CVE-2024-36106). Prometheus sends a read token with
//!   `authorization: { credentials_file: ... }`.
//! * Authentication runs as middleware over the whole `/api/v1` tree, *before* routing to a
//!   handler and before any lookup, so an unauthenticated caller cannot learn whether an app
//!   (or even a route) exists.
//! * Tokens are stored as SHA-256 digests and compared in constant time against every
//!   configured token (no early exit), see [`Tokens`].
//!
//! ## Errors
//!
//! Every error is JSON `{"error": "...", "code": N}`. [`BackendError::Internal`] details are
//! logged and replaced with `"internal error"`; the other backend variants carry messages the
//! backend wrote for clients. Server-generated messages never contain paths, secrets or
//! request content.
//!
//! ## Webhooks
//!
//! See [`webhook`]: the body is read with a hard length limit (413 before reading more than
//! [`ServerConfig::max_webhook_body`] bytes), the signature or token is verified on the raw
//! bytes before any JSON parsing, unsigned deliveries are never accepted, and the payload
//! parsers are total functions over arbitrary bytes.
#![deny(missing_docs)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

mod api;
mod auth;
pub mod config;
pub mod webhook;

pub use config::{ConfigError, Principal, Role, Secret, Tokens, WebhookSecrets};

/// What the server needs from the daemon. Implemented by the daemon; the server never decides
/// anything about applications itself.
pub trait Backend: Send + Sync + 'static {
    /// All applications with a one-line summary each.
    fn apps(&self) -> impl Future<Output = Vec<AppSummary>> + Send;
    /// One application with per-object status.
    fn app(&self, name: &str) -> impl Future<Output = Result<serde_json::Value, BackendError>> + Send;
    /// The current diff between Git and the cluster for one application.
    fn diff(&self, name: &str) -> impl Future<Output = Result<serde_json::Value, BackendError>> + Send;
    /// Fetch now; auto-sync if the application is automated.
    fn refresh(&self, name: &str) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// Sync one application.
    fn sync(
        &self,
        name: &str,
        req: SyncRequest,
    ) -> impl Future<Output = Result<serde_json::Value, BackendError>> + Send;
    /// The last `limit` sync records of one application, newest first.
    fn history(&self, name: &str, limit: usize)
    -> impl Future<Output = Result<serde_json::Value, BackendError>> + Send;
    /// Roll one application back to the sync record `id`.
    fn rollback(&self, name: &str, id: i64) -> impl Future<Output = Result<serde_json::Value, BackendError>> + Send;
    /// A verified push: refresh the apps using this repository and branch; returns their names.
    fn push(&self, event: PushEvent) -> impl Future<Output = Vec<String>> + Send;
    /// Whether the daemon is ready to serve (`/readyz`).
    fn ready(&self) -> bool;
    /// Prometheus text exposition of all metrics (the daemon owns the registry).
    fn metrics_text(&self) -> String;
    /// Counts a webhook delivery by forge and result ("accepted", "bad_signature", "malformed",
    /// "too_large", "ignored", "unauthenticated"). The forge is [`Forge::as_str`], or
    /// `"unknown"` when it could not be detected.
    fn record_webhook(&self, forge: &str, result: &str);
}

/// One line per application in `GET /api/v1/apps`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppSummary {
    /// Application name.
    pub name: String,
    /// Sync state, e.g. `Synced`, `OutOfSync`, `Unknown`.
    pub sync: String,
    /// Health, e.g. `Healthy`, `Progressing`, `Degraded`.
    pub health: String,
    /// The Git revision last seen or synced.
    pub revision: String,
    /// A human-readable status message.
    pub message: String,
    /// Whether the application syncs automatically.
    pub automated: bool,
    /// The last sync record, if any.
    pub last_sync: Option<serde_json::Value>,
    /// Why an automated sync is not happening (sync window, retries, policy denial).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_back: Option<String>,
    /// Policy violations of the desired objects (deny and warn), each with its object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<serde_json::Value>,
}

/// Options of `POST /api/v1/apps/{name}/sync`; every field defaults to `false` and the body
/// may be omitted.
#[derive(Deserialize, Default, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct SyncRequest {
    /// Delete objects that left Git.
    pub prune: bool,
    /// Plan only; change nothing.
    pub dry_run: bool,
    /// Confirm a prune above the application's threshold.
    pub confirm_prune: bool,
    /// Take fields owned by other field managers.
    pub force_conflicts: bool,
}

/// A verified push delivered by a forge.
#[derive(Clone, Debug, PartialEq)]
pub struct PushEvent {
    /// The forge that sent it.
    pub forge: Forge,
    /// Every URL form the payload gives (clone/https, ssh, git, html), deduplicated, in payload
    /// order. The backend normalises and matches them against application sources.
    pub repo_urls: Vec<String>,
    /// The full ref, e.g. `refs/heads/main` or `refs/tags/v1.2.0`.
    pub git_ref: String,
    /// The commit the ref now points to; `None` when the payload gives none or the ref was
    /// deleted (all-zero hash).
    pub after: Option<String>,
}

/// A source of webhooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Forge {
    /// GitHub and GitHub Enterprise.
    GitHub,
    /// GitLab.
    GitLab,
    /// Gitea and Forgejo.
    Gitea,
    /// Bitbucket Cloud (bitbucket.org).
    BitbucketCloud,
    /// Bitbucket Server / Data Center.
    BitbucketServer,
    /// Any sender using driftless's own generic payload and `X-Driftless-Signature`.
    Generic,
}

impl Forge {
    /// All forges.
    pub const ALL: [Forge; 6] = [
        Forge::GitHub,
        Forge::GitLab,
        Forge::Gitea,
        Forge::BitbucketCloud,
        Forge::BitbucketServer,
        Forge::Generic,
    ];

    /// The name used in `/api/webhook/{forge}` and in metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Forge::GitHub => "github",
            Forge::GitLab => "gitlab",
            Forge::Gitea => "gitea",
            Forge::BitbucketCloud => "bitbucket",
            Forge::BitbucketServer => "bitbucket-server",
            Forge::Generic => "generic",
        }
    }

    /// Parses a name as used in `/api/webhook/{forge}` (`forgejo` is accepted for Gitea).
    pub fn from_name(name: &str) -> Option<Forge> {
        match name {
            "forgejo" => Some(Forge::Gitea),
            _ => Forge::ALL.into_iter().find(|f| f.as_str() == name),
        }
    }
}

impl std::fmt::Display for Forge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from the [`Backend`], mapped to an HTTP status by the server.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    /// 404; the message is shown to the (authenticated) client.
    #[error("not found: {0}")]
    NotFound(String),
    /// 400; the message is shown to the client.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 409 (e.g. a sync is already running); the message is shown to the client.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 503 (e.g. the cluster or Git is unreachable); the message is shown to the client.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// 500; the detail is logged, never returned to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Server configuration.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// API tokens; [`Tokens::none`] allows anonymous reads and refuses all mutations.
    pub tokens: Tokens,
    /// Webhook secrets; a forge without a secret has its deliveries refused.
    pub webhook_secrets: WebhookSecrets,
    /// Largest accepted webhook body in bytes ([`DEFAULT_MAX_WEBHOOK_BODY`]).
    pub max_webhook_body: usize,
}

/// The default [`ServerConfig::max_webhook_body`]: 1 MiB (GitHub caps payloads at 25 MB, but
/// push payloads that matter are far smaller; larger ones are refused with 413).
pub const DEFAULT_MAX_WEBHOOK_BODY: usize = 1024 * 1024;

impl ServerConfig {
    /// A configuration listening on `listen` with no tokens, no webhook secrets and the default
    /// body limit.
    pub fn new(listen: SocketAddr) -> Self {
        ServerConfig {
            listen,
            tokens: Tokens::none(),
            webhook_secrets: WebhookSecrets::default(),
            max_webhook_body: DEFAULT_MAX_WEBHOOK_BODY,
        }
    }
}

/// An error starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Builds the router: API, webhooks, health and metrics. Useful for embedding and for tests
/// (drive it with `tower::ServiceExt::oneshot`).
pub fn router<B: Backend>(backend: Arc<B>, config: &ServerConfig) -> axum::Router {
    api::router(backend, config)
}

/// Binds [`ServerConfig::listen`] and serves until `shutdown` completes (graceful: in-flight
/// requests finish).
pub async fn serve<B: Backend>(
    backend: Arc<B>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
    serve_on(listener, backend, config, shutdown).await
}

/// Like [`serve`] on an already bound listener (e.g. `127.0.0.1:0` in tests; read the port
/// with `listener.local_addr()` first). [`ServerConfig::listen`] is ignored.
pub async fn serve_on<B: Backend>(
    listener: tokio::net::TcpListener,
    backend: Arc<B>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let app = router(backend, &config);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "API server listening");
    }
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

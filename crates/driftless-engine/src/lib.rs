//! The sync pipeline: `Source -> Render -> Plan -> Apply -> Verify -> Record`, and rollback.
//!
//! The engine decides *whether* and *what* to change; the pure decisions (plan, prune safety,
//! health) live in `driftless-core`, and the I/O at the edges (git, renderers, the cluster,
//! the store) in their own crates. Invariants kept here (ARCHITECTURE.md §4):
//! - never destroy on doubt: fetch, render or plan failures return before anything is
//!   applied or pruned; prunes pass [`driftless_core::plan::check_prune`]; a failed apply
//!   stops the sync before any prune;
//! - inventory before effect: the union of the previous inventory and the new desired set is
//!   saved before the first write, and every applied object carries the `driftless.dev/app`
//!   label from which the inventory can be rebuilt;
//! - every change is recorded: the history entry is written before the first write and
//!   completed at the end (a crash leaves it `interrupted`, see `driftless-store`);
//! - idempotent: unchanged objects (SSA dry-run equals live) are not written.

// Errors carry the app, commit and cause a person needs; they are rare (one per failed
// sync), so their size on the happy path's `Result` does not matter.
#![allow(clippy::result_large_err)]

pub mod daemon;
mod gates;
pub mod metrics;
mod prepare;
mod status;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use driftless_cluster::{ClusterClient, ClusterError};
use driftless_core::health::{HealthReport, HealthStatus};
use driftless_core::plan::{self, Action, Plan, PruneRefusal, PruneSafety};
use driftless_core::spec::Application;
use driftless_core::{DesiredObject, ObjectRef, Revision};
use driftless_render::{RenderCache, RenderError, RenderOptions};
use driftless_source::{Credentials, GitCache, SourceError};
use driftless_store::{ApplyResult, NewSync, ObjectResult, Outcome, Store, SyncId, SyncOutcome};
use futures::StreamExt;
use serde_json::{Value, json};

pub use prepare::{APP_LABEL, Prepared};
pub use status::{AppStatus, ObjectStatus, SyncState, action_name as status_action};

/// Objects applied or read concurrently within one wave.
const PARALLELISM: usize = 8;

/// Why a sync (or diff, or rollback) did not complete.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No application with that name in the loaded specs.
    #[error("no application named {0:?}: check the name with `driftless apps`")]
    UnknownApp(String),
    /// Git fetch or ref resolution failed; nothing was applied or pruned.
    #[error("app {app}: fetching {url} failed, nothing was applied or pruned: {source}")]
    Source {
        /// Application.
        app: String,
        /// Repository URL without credentials.
        url: String,
        /// Cause.
        source: SourceError,
    },
    /// Rendering failed; nothing was applied or pruned.
    #[error("app {app}: rendering {path:?} at commit {commit} failed, nothing was applied or pruned: {source}")]
    Render {
        /// Application.
        app: String,
        /// Commit.
        commit: String,
        /// Path in the repository.
        path: String,
        /// Cause.
        source: RenderError,
    },
    /// The rendered objects could not be planned (duplicates, bad waves, missing identity).
    #[error("app {app}: commit {commit}: {source}")]
    Plan {
        /// Application.
        app: String,
        /// Commit.
        commit: String,
        /// Cause.
        source: driftless_core::Error,
    },
    /// The cluster refused or could not be reached.
    #[error("app {app}: {source}")]
    Cluster {
        /// Application.
        app: String,
        /// Cause.
        source: ClusterError,
    },
    /// A prune was refused by the safety rules; nothing was applied or pruned.
    #[error("app {app}: {refusal}")]
    PruneRefused {
        /// Application.
        app: String,
        /// Why.
        refusal: PruneRefusal,
    },
    /// The commit to deploy does not carry a trusted signature; nothing was applied or pruned.
    #[error(
        "app {app}: commit {} refused: {reason}; nothing was applied or pruned. Sign the commit with a key listed in spec.source.verify.keys",
        short(commit)
    )]
    Signature {
        /// Application.
        app: String,
        /// Commit.
        commit: String,
        /// What did not verify (the word "signature" is in it).
        reason: String,
    },
    /// The keys for the app's SOPS files could not be loaded; nothing was applied or pruned.
    #[error("app {app}: SOPS keys: {reason}; nothing was applied or pruned")]
    Keys {
        /// Application.
        app: String,
        /// Why (never key material).
        reason: String,
    },
    /// A SOPS file did not decrypt; nothing was applied or pruned.
    #[error(
        "app {app}: commit {}: cannot decrypt the SOPS file {file}: {source}; nothing was applied or pruned. \
         Give driftless a key that opens it (spec.decryption.keyFile or secretRef, or SOPS_AGE_KEY_FILE)",
        short(commit)
    )]
    Decrypt {
        /// Application.
        app: String,
        /// Commit.
        commit: String,
        /// File, relative to the repository root.
        file: String,
        /// Cause (never a plaintext value).
        source: driftless_sops::SopsError,
    },
    /// The app's policies could not be loaded or evaluated; nothing was applied or pruned.
    #[error(
        "app {app}: commit {}: policy check failed: {reason}; nothing was applied or pruned",
        short(commit)
    )]
    Policy {
        /// Application.
        app: String,
        /// Commit.
        commit: String,
        /// Why.
        reason: String,
    },
    /// A deny rule fired on the rendered objects; nothing was applied or pruned.
    #[error(
        "app {app}: commit {}: denied by policy ({} violation(s)), nothing was applied or pruned:\n{}",
        short(commit),
        report.count(driftless_policy::Severity::Deny),
        report.human().trim_end()
    )]
    PolicyDenied {
        /// Application.
        app: String,
        /// Commit.
        commit: String,
        /// Every violation (warnings included).
        report: driftless_policy::Report,
    },
    /// The history store failed.
    #[error(transparent)]
    Store(#[from] driftless_store::Error),
    /// Local I/O (temporary directories) failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// What the user asked for on top of the app's sync policy.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Plan only: print what would change, write nothing, record nothing.
    pub dry_run: bool,
    /// `--prune`: prune even if the app's policy does not.
    pub prune: bool,
    /// `--confirm-prune`: allow a prune above the app's threshold.
    pub confirm_prune: bool,
    /// `--force-conflicts`: take over fields other managers own.
    pub force_conflicts: bool,
    /// What started the sync (`cli`, `rollback`, ...), recorded in history.
    pub trigger: String,
    /// Wait for health after applying (up to the app's healthTimeout).
    pub wait_health: bool,
}

/// Progress of a running sync, for the CLI to show.
#[derive(Debug, Clone)]
pub enum Progress {
    /// The revision being synced.
    Revision(Revision),
    /// The plan, before anything is applied.
    Planned(Plan),
    /// One object done.
    Applied(ObjectResult),
    /// Still waiting for these objects to become healthy.
    Waiting(Vec<(ObjectRef, HealthReport)>),
}

/// The result of a sync.
#[derive(Debug, Clone)]
pub struct SyncReport {
    /// History entry (None for dry runs).
    pub id: Option<SyncId>,
    /// Revision synced.
    pub revision: Revision,
    /// The plan that was executed.
    pub plan: Plan,
    /// Per-object results.
    pub results: Vec<ObjectResult>,
    /// Health of each desired object after the sync (empty if not waited for).
    pub health: Vec<(ObjectRef, HealthReport)>,
    /// Worst health.
    pub app_health: HealthReport,
    /// Final outcome.
    pub outcome: SyncOutcome,
    /// One line for people.
    pub message: String,
}

/// The engine: caches and the store under one data directory.
pub struct Engine {
    /// Fetch the repository on every resolve (the CLI); the daemon turns this off and fetches
    /// each repository once per interval itself.
    auto_fetch: std::sync::atomic::AtomicBool,
    pub(crate) git: GitCache,
    renders: RenderCache,
    store: Store,
    creds: Credentials,
    render_options: RenderOptions,
    data_dir: PathBuf,
    policies: gates::PolicyCache,
}

/// What an app should look like: the revision, its objects, and what the gates found.
#[derive(Debug, Clone)]
pub struct Desired {
    /// Revision (the head of the ref, or a rollback pin).
    pub revision: Revision,
    /// Rendered objects.
    pub objects: Vec<DesiredObject>,
    /// Render warnings and notes.
    pub warnings: Vec<String>,
    /// Policy report (None when the app has no policy).
    pub policy: Option<driftless_policy::Report>,
}

pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Engine {
    /// Opens (creating) the data directory: `git/` mirrors, `render/` cache, `driftless.db`.
    pub fn open(data_dir: &Path) -> Result<Engine, EngineError> {
        std::fs::create_dir_all(data_dir).map_err(|source| EngineError::Io {
            context: format!("creating data dir {}", data_dir.display()),
            source,
        })?;
        let store = Store::open(data_dir)?;
        let renders = RenderCache::new(data_dir.join("render")).map_err(|e| EngineError::Io {
            context: format!("opening the render cache in {}", data_dir.display()),
            source: std::io::Error::other(e.to_string()),
        })?;
        let creds = Credentials::from_env().map_err(|source| EngineError::Source {
            app: String::new(),
            url: "(credentials from environment)".into(),
            source,
        })?;
        Ok(Engine {
            auto_fetch: std::sync::atomic::AtomicBool::new(true),
            git: GitCache::new(data_dir.join("git")),
            renders,
            store,
            creds,
            render_options: RenderOptions::default(),
            data_dir: data_dir.to_owned(),
            policies: gates::PolicyCache::default(),
        })
    }

    /// The store (history, inventory, pins).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Whether [`Engine::resolve`] fetches first (default true).
    pub fn set_auto_fetch(&self, on: bool) {
        self.auto_fetch.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Runs blocking git work for `app` off the async runtime; git errors name the app and
    /// the repository (without credentials).
    async fn git_task<T: Send + 'static>(
        &self,
        app: &Application,
        work: impl FnOnce(&GitCache, &str) -> Result<T, SourceError> + Send + 'static,
    ) -> Result<T, EngineError> {
        let git = self.git.clone();
        let url = app.spec.source.repo_url.clone();
        let name = app.metadata.name.clone();
        tokio::task::spawn_blocking(move || {
            work(&git, &url).map_err(|source| EngineError::Source {
                app: name,
                url: driftless_source::redact_url(&url),
                source,
            })
        })
        .await
        .map_err(|e| EngineError::Io {
            context: "git task".into(),
            source: std::io::Error::other(e.to_string()),
        })?
    }

    /// Fetches a repository into its mirror.
    pub async fn fetch(&self, app: &Application) -> Result<(), EngineError> {
        let creds = self.creds.clone();
        self.git_task(app, move |git, url| git.fetch(url, &creds)).await
    }

    /// Resolves the app's ref (fetching first unless auto-fetch is off).
    pub async fn resolve(&self, app: &Application) -> Result<Revision, EngineError> {
        if self.auto_fetch.load(std::sync::atomic::Ordering::Relaxed) {
            self.fetch(app).await?;
        }
        let git_ref = app.spec.source.git_ref.clone();
        self.git_task(app, move |git, url| git.resolve(url, &git_ref)).await
    }

    /// Renders the app at `revision` (cached by commit, path and options: rendering is
    /// deterministic, so a cached result is the result). SOPS-encrypted files are decrypted
    /// in the private temporary checkout before rendering, with keys from the environment and
    /// `spec.decryption` (a `secretRef` is read from `cluster`); such renders hold secrets in
    /// clear and are never written to the on-disk render cache.
    pub async fn render(
        &self,
        app: &Application,
        revision: &Revision,
        cluster: Option<&ClusterClient>,
    ) -> Result<driftless_render::Rendered, EngineError> {
        // Monorepos: when the app's directory holds the same git tree as at an earlier commit,
        // the earlier render is this render (plain directories only: a kustomization may read
        // bases elsewhere, and symlinks may point anywhere — `content_id` is None then).
        let content = {
            let git = self.git.clone();
            let (url, commit, path) = (
                app.spec.source.repo_url.clone(),
                revision.commit.clone(),
                app.spec.source.path.clone(),
            );
            tokio::task::spawn_blocking(move || {
                let files = git.list_files(&url, &commit, &path).ok()?;
                if is_kustomize(&files) {
                    None
                } else {
                    git.content_id(&url, &commit, &path).ok().flatten()
                }
            })
            .await
            .ok()
            .flatten()
        };
        let cache_id = content
            .map(|id| format!("tree:{id}"))
            .unwrap_or_else(|| revision.commit.clone());
        let key = driftless_render::CacheKey::new(&cache_id, &app.spec.source.path, &self.render_options);
        if let Some(hit) = self.renders.get(&key) {
            return Ok(hit);
        }
        let git = self.git.clone();
        let url = app.spec.source.repo_url.clone();
        let commit = revision.commit.clone();
        let path = app.spec.source.path.clone();
        let app_name = app.metadata.name.clone();
        let io = |context: &str, source| EngineError::Io {
            context: context.into(),
            source,
        };
        // 1. Write the files out and look for SOPS files.
        let (dir, encrypted) = tokio::task::spawn_blocking(move || -> Result<_, EngineError> {
            let dir = tempfile::tempdir().map_err(|e| io("creating a temporary checkout", e))?;
            let serr = |source| EngineError::Source {
                app: app_name.clone(),
                url: driftless_source::redact_url(&url),
                source,
            };
            // Only the app's path is written out — unless it is a kustomization, which may
            // refer to bases elsewhere in the repository (the renderer confines those to it).
            let files = git.list_files(&url, &commit, &path).map_err(serr)?;
            if is_kustomize(&files) {
                git.materialize(&url, &commit, "", dir.path()).map_err(serr)?;
            } else {
                let dest = dir.path().join(&path);
                std::fs::create_dir_all(&dest).map_err(|e| io("creating a temporary checkout", e))?;
                git.materialize(&url, &commit, &path, &dest).map_err(serr)?;
            }
            let encrypted = driftless_sops::find_encrypted(dir.path()).map_err(|e| EngineError::Decrypt {
                app: app_name.clone(),
                commit: commit.clone(),
                file: e.file,
                source: e.source,
            })?;
            Ok((dir, !encrypted.is_empty()))
        })
        .await
        .map_err(|e| io("render task", std::io::Error::other(e.to_string())))??;
        // 2. Keys only when needed (a secretRef costs a cluster read).
        let keys = if encrypted {
            Some(self.sops_keys(app, cluster).await?)
        } else {
            None
        };
        // 3. Decrypt in place and render.
        let (commit, path, app_name) = (
            revision.commit.clone(),
            app.spec.source.path.clone(),
            app.metadata.name.clone(),
        );
        let options = self.render_options.clone();
        let rendered = tokio::task::spawn_blocking(move || -> Result<driftless_render::Rendered, EngineError> {
            if let Some(keys) = &keys {
                let files = driftless_sops::decrypt_dir(dir.path(), keys).map_err(|e| EngineError::Decrypt {
                    app: app_name.clone(),
                    commit: commit.clone(),
                    file: e.file,
                    source: e.source,
                })?;
                tracing::debug!(app = %app_name, files = files.len(), "decrypted SOPS files");
            }
            let out = driftless_render::render(dir.path(), &path, &options).map_err(|source| EngineError::Render {
                app: app_name.clone(),
                commit: commit.clone(),
                path: path.clone(),
                source,
            });
            drop(dir);
            out
        })
        .await
        .map_err(|e| io("render task", std::io::Error::other(e.to_string())))??;
        if !encrypted && let Err(e) = self.renders.put(&key, &rendered) {
            tracing::warn!(app = %app.metadata.name, error = %e, "could not cache the render");
        }
        Ok(rendered)
    }

    /// The desired state to sync: the pinned rollback manifests if the app is pinned and no
    /// newer commit arrived since, else the rendered head of its ref — after its trust gates:
    /// the revision's signatures are verified (when `spec.source.verify` is set) before
    /// anything is rendered, and the policies are evaluated on the objects.
    pub async fn desired(&self, app: &Application, cluster: Option<&ClusterClient>) -> Result<Desired, EngineError> {
        let head = self.resolve(app).await?;
        if let Some(pin) = self.store.pin_of(&app.metadata.name)? {
            if head.commit == pin.commit || head.time <= pin.pinned_at {
                let m = self.store.rollback_manifests(&app.metadata.name, pin.sync_id)?;
                self.verify_revision(app, &m.revision).await?;
                let objects: Vec<DesiredObject> = serde_json::from_value(m.manifests.clone()).unwrap_or_default();
                let policy = self.check_policy(app, &m.revision, &objects).await?;
                return Ok(Desired {
                    revision: m.revision,
                    objects,
                    warnings: vec![format!(
                        "pinned to sync #{} (commit {}) by a rollback; `driftless rollback --unpin` releases it",
                        pin.sync_id.0,
                        short(&pin.commit)
                    )],
                    policy,
                });
            }
            // A newer commit arrived: the pin ends.
            self.store.unpin(&app.metadata.name)?;
        }
        self.verify_revision(app, &head).await?;
        let rendered = self.render(app, &head, cluster).await?;
        let policy = self.check_policy(app, &head, &rendered.set.objects).await?;
        Ok(Desired {
            revision: head,
            objects: rendered.set.objects,
            warnings: rendered.warnings,
            policy,
        })
    }

    /// Computes the plan for `objects` against the cluster without changing anything.
    pub async fn plan(
        &self,
        app: &Application,
        cluster: &ClusterClient,
        revision: &Revision,
        objects: Vec<DesiredObject>,
        force: bool,
    ) -> Result<(Prepared, Plan), EngineError> {
        let name = &app.metadata.name;
        let cerr = |source| EngineError::Cluster {
            app: name.clone(),
            source,
        };
        let prepared = prepare::prepare(app, cluster, objects).await.map_err(cerr)?;
        let inventory = self.store.inventory(name)?;
        // Futures are built first and streamed after: a closure returning an async block
        // inside the stream trips rustc's higher-ranked lifetime inference once the caller is
        // spawned ("FnOnce is not general enough").
        let futs: Vec<_> = prepared.objects.iter().map(|p| plan_entry(cluster, p, force)).collect();
        let entries = futures::stream::iter(futs)
            .buffered(PARALLELISM)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(cerr)?;
        // Objects in the inventory that are no longer desired: read them (the prune annotation
        // lives on the live object); those already gone simply leave the inventory.
        let desired_refs: BTreeSet<ObjectRef> =
            prepared.objects.iter().filter_map(|p| p.desired.object_ref()).collect();
        let mut orphans = Vec::new();
        for r in inventory.iter().filter(|r| !desired_refs.contains(r)) {
            if let Some(resolved) = prepare::resolve_ref(cluster, r).await.map_err(cerr)?
                && let Some(live) = cluster
                    .get(&resolved, r.namespace.as_deref(), &r.name)
                    .await
                    .map_err(cerr)?
            {
                orphans.push(live);
            }
        }
        let input = plan::PlanInput {
            entries,
            inventory,
            orphans,
            prune_enabled: app.spec.sync_policy.prune,
            ignore: vec![],
        };
        let plan = plan::plan(&input).map_err(|source| EngineError::Plan {
            app: name.clone(),
            commit: revision.commit.clone(),
            source,
        })?;
        Ok((prepared, plan))
    }

    /// Plans against the head of the app's ref (or its pin) — for `diff` and `status`.
    pub async fn diff(
        &self,
        app: &Application,
        cluster: &ClusterClient,
    ) -> Result<(Revision, Plan, Vec<String>), EngineError> {
        let d = self.desired(app, Some(cluster)).await?;
        let mut warnings = d.warnings;
        warnings.extend(policy_notes(d.policy.as_ref()));
        let (_, plan) = self.plan(app, cluster, &d.revision, d.objects, true).await?;
        Ok((d.revision, plan, warnings))
    }

    /// Syncs the app to the head of its ref (or its rollback pin).
    pub async fn sync(
        &self,
        app: &Application,
        cluster: &ClusterClient,
        opts: &SyncOptions,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<SyncReport, EngineError> {
        let d = self.desired(app, Some(cluster)).await?;
        refuse_denied(app, &d.revision, d.policy)?;
        self.sync_objects(app, cluster, d.revision, d.objects, opts, progress)
            .await
    }

    /// Re-applies the manifests of history entry `id` and pins the app to them until a newer
    /// commit arrives or the user unpins.
    pub async fn rollback(
        &self,
        app: &Application,
        cluster: &ClusterClient,
        id: SyncId,
        opts: &SyncOptions,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<SyncReport, EngineError> {
        let m = self.store.rollback_manifests(&app.metadata.name, id)?;
        let objects: Vec<DesiredObject> =
            serde_json::from_value(m.manifests.clone()).map_err(|e| driftless_store::Error::Invalid {
                app: app.metadata.name.clone(),
                reason: format!("the manifests stored for sync #{} are unreadable: {e}", id.0),
            })?;
        self.verify_revision(app, &m.revision).await?;
        let policy = self.check_policy(app, &m.revision, &objects).await?;
        refuse_denied(app, &m.revision, policy)?;
        let report = self
            .sync_objects(app, cluster, m.revision.clone(), objects, opts, progress)
            .await?;
        if !opts.dry_run && report.outcome != SyncOutcome::Failed {
            self.store.pin(&app.metadata.name, id, &m.revision.commit)?;
        }
        Ok(report)
    }

    async fn sync_objects(
        &self,
        app: &Application,
        cluster: &ClusterClient,
        revision: Revision,
        objects: Vec<DesiredObject>,
        opts: &SyncOptions,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<SyncReport, EngineError> {
        progress(Progress::Revision(revision.clone()));
        let force = opts.force_conflicts || app.spec.sync_policy.force_conflicts;
        let mut app = app.clone();
        app.spec.sync_policy.prune |= opts.prune;
        let app = &app;
        let (prepared, plan) = self.plan(app, cluster, &revision, objects, force).await?;
        self.sync_planned(app, cluster, revision, prepared, plan, opts, progress)
            .await
    }

    /// Runs a sync from an existing plan (the daemon plans first to decide whether to sync).
    /// `app` must already carry any prune override the plan was made with.
    #[allow(clippy::too_many_arguments)]
    pub async fn sync_planned(
        &self,
        app: &Application,
        cluster: &ClusterClient,
        revision: Revision,
        prepared: Prepared,
        plan: Plan,
        opts: &SyncOptions,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<SyncReport, EngineError> {
        let name = app.metadata.name.clone();
        let cerr = |source| EngineError::Cluster {
            app: name.clone(),
            source,
        };
        let force = opts.force_conflicts || app.spec.sync_policy.force_conflicts;
        let inventory = self.store.inventory(&name)?;
        plan::check_prune(
            &plan,
            inventory.len(),
            PruneSafety {
                allow_empty: app.spec.sync_policy.allow_empty,
                threshold_percent: app.spec.sync_policy.prune_threshold,
                confirmed: opts.confirm_prune,
                desired_is_empty: prepared.objects.is_empty(),
            },
        )
        .map_err(|refusal| EngineError::PruneRefused {
            app: name.clone(),
            refusal,
        })?;
        progress(Progress::Planned(plan.clone()));
        if opts.dry_run {
            let summary = plan.summary();
            return Ok(SyncReport {
                id: None,
                revision,
                plan,
                results: vec![],
                health: vec![],
                app_health: HealthReport {
                    status: HealthStatus::Unknown,
                    message: "dry run".into(),
                },
                outcome: SyncOutcome::Succeeded,
                message: format!("dry run: {summary}"),
            });
        }

        // Record first, then the inventory, then effects.
        let manifests = serde_json::to_value(prepared.objects.iter().map(|p| &p.desired).collect::<Vec<_>>())
            .unwrap_or(Value::Null);
        let digest = driftless_render::digest(&driftless_core::DesiredSet {
            objects: prepared.objects.iter().map(|p| p.desired.clone()).collect(),
        });
        let id = self.store.begin_sync(&NewSync {
            app: name.clone(),
            revision: revision.clone(),
            trigger: if opts.trigger.is_empty() {
                "cli".into()
            } else {
                opts.trigger.clone()
            },
            manifests_digest: digest,
            rendered_manifests: manifests,
            started_at: now_secs(),
        })?;
        let mut union: Vec<ObjectRef> = inventory.clone();
        union.extend(prepared.objects.iter().filter_map(|p| p.desired.object_ref()));
        self.store.save_inventory(&name, &union, &revision)?;

        let result = self.execute(app, cluster, &prepared, &plan, force, progress).await;
        let (results, failed) = match result {
            Ok(r) => r,
            Err(e) => {
                let _ = self.store.finish_sync(
                    id,
                    Outcome {
                        outcome: SyncOutcome::Failed,
                        plan_summary: summary_json(&plan),
                        results: vec![],
                        message: e.to_string(),
                        finished_at: now_secs(),
                    },
                );
                return Err(e);
            }
        };
        // The inventory after the sync: what is desired, plus what was kept from pruning, plus
        // whatever failed to prune.
        let failed_prunes: BTreeSet<&ObjectRef> = results
            .iter()
            .filter(|r| r.action == "prune" && r.result == ApplyResult::Failed)
            .map(|r| &r.object)
            .collect();
        let mut after = plan.inventory_after();
        if failed {
            // Stopped part-way: keep every object we may have touched.
            after = union.clone();
        }
        after.extend(failed_prunes.into_iter().cloned());
        self.store.save_inventory(&name, &after, &revision)?;

        let (health, app_health) = if failed || !opts.wait_health {
            (
                vec![],
                HealthReport {
                    status: HealthStatus::Unknown,
                    message: if failed {
                        "not assessed: the sync failed".into()
                    } else {
                        "not waited for".into()
                    },
                },
            )
        } else {
            self.wait_healthy(app, cluster, &prepared, progress)
                .await
                .map_err(cerr)?
        };
        let summary = plan.summary();
        let (outcome, message) = if failed {
            let n = results.iter().filter(|r| r.result == ApplyResult::Failed).count();
            (
                SyncOutcome::Failed,
                format!("{n} object(s) failed; later waves and prunes were not run"),
            )
        } else if !opts.wait_health || app_health.status == HealthStatus::Healthy {
            (
                SyncOutcome::Succeeded,
                format!("synced {} ({summary})", short(&revision.commit)),
            )
        } else {
            (
                SyncOutcome::Degraded,
                format!(
                    "applied {} ({summary}) but not healthy after {}s: {}",
                    short(&revision.commit),
                    app.spec.health_timeout.as_secs(),
                    app_health.message
                ),
            )
        };
        self.store.finish_sync(
            id,
            Outcome {
                outcome,
                plan_summary: summary_json(&plan),
                results: results.clone(),
                message: message.clone(),
                finished_at: now_secs(),
            },
        )?;
        Ok(SyncReport {
            id: Some(id),
            revision,
            plan,
            results,
            health,
            app_health,
            outcome,
            message,
        })
    }

    /// Applies the plan step by step: waves in order, kinds ranked within a wave, objects of
    /// one (wave, rank) group in parallel; CRDs are waited for before what follows them. The
    /// first failing group stops the sync (no later groups, no prunes). Returns the results and
    /// whether something failed.
    async fn execute(
        &self,
        app: &Application,
        cluster: &ClusterClient,
        prepared: &Prepared,
        plan: &Plan,
        force: bool,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<(Vec<ObjectResult>, bool), EngineError> {
        let name = &app.metadata.name;
        if let Some(ns) = &prepared.create_namespace {
            prepare::ensure_namespace(cluster, ns, name)
                .await
                .map_err(|source| EngineError::Cluster {
                    app: name.clone(),
                    source,
                })?;
        }
        let mut results = Vec::new();
        let mut failed = false;
        let applies: Vec<&plan::Step> = plan.steps.iter().filter(|s| !s.action.is_prune()).collect();
        let mut i = 0;
        while i < applies.len() {
            let key = (
                applies[i].wave,
                plan::kind_rank(&applies[i].object.group, &applies[i].object.kind),
            );
            let group: Vec<&plan::Step> = applies[i..]
                .iter()
                .take_while(|s| (s.wave, plan::kind_rank(&s.object.group, &s.object.kind)) == key)
                .copied()
                .collect();
            i += group.len();
            let futs: Vec<_> = group
                .iter()
                .map(|step| self.apply_and_report(cluster, prepared, step, force, progress))
                .collect();
            let outcomes = futures::stream::iter(futs)
                .buffer_unordered(PARALLELISM)
                .collect::<Vec<_>>()
                .await;
            failed |= outcomes.iter().any(|r| r.result == ApplyResult::Failed);
            // CRDs must be Established before their custom resources are applied.
            for r in outcomes
                .iter()
                .filter(|r| r.object.kind == "CustomResourceDefinition" && r.result != ApplyResult::Failed)
            {
                if let Err(e) = cluster
                    .wait_crd_established(&r.object.name, Duration::from_secs(60))
                    .await
                {
                    failed = true;
                    results.push(ObjectResult {
                        object: r.object.clone(),
                        action: "wait".into(),
                        result: ApplyResult::Failed,
                        message: e.to_string(),
                    });
                }
            }
            results.extend(outcomes);
            if failed {
                return Ok((results, true));
            }
        }
        for step in plan.steps.iter().filter(|s| s.action.is_prune()) {
            let r = match &step.action {
                Action::PruneSkipped { reason } => ObjectResult {
                    object: step.object.clone(),
                    action: "prune".into(),
                    result: ApplyResult::Skipped,
                    message: reason.clone(),
                },
                _ => match prepare::resolve_ref(cluster, &step.object).await {
                    Ok(Some(resolved)) => match cluster
                        .delete(&resolved, step.object.namespace.as_deref(), &step.object.name)
                        .await
                    {
                        Ok(_) => ObjectResult {
                            object: step.object.clone(),
                            action: "prune".into(),
                            result: ApplyResult::Deleted,
                            message: String::new(),
                        },
                        Err(e) => ObjectResult {
                            object: step.object.clone(),
                            action: "prune".into(),
                            result: ApplyResult::Failed,
                            message: e.to_string(),
                        },
                    },
                    Ok(None) => ObjectResult {
                        object: step.object.clone(),
                        action: "prune".into(),
                        result: ApplyResult::Deleted,
                        message: "kind no longer served".into(),
                    },
                    Err(e) => ObjectResult {
                        object: step.object.clone(),
                        action: "prune".into(),
                        result: ApplyResult::Failed,
                        message: e.to_string(),
                    },
                },
            };
            progress(Progress::Applied(r.clone()));
            results.push(r);
        }
        Ok((results, false))
    }

    async fn apply_and_report(
        &self,
        cluster: &ClusterClient,
        prepared: &Prepared,
        step: &plan::Step,
        force: bool,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> ObjectResult {
        let r = self.apply_step(cluster, prepared, step, force).await;
        progress(Progress::Applied(r.clone()));
        r
    }

    async fn apply_step(
        &self,
        cluster: &ClusterClient,
        prepared: &Prepared,
        step: &plan::Step,
        force: bool,
    ) -> ObjectResult {
        let action = match step.action {
            Action::Create => "create",
            Action::Update => "update",
            _ => "unchanged",
        };
        let fail = |message: String| ObjectResult {
            object: step.object.clone(),
            action: action.into(),
            result: ApplyResult::Failed,
            message,
        };
        if matches!(step.action, Action::Unchanged) {
            return ObjectResult {
                object: step.object.clone(),
                action: action.into(),
                result: ApplyResult::Unchanged,
                message: String::new(),
            };
        }
        let Some(p) = prepared.find(&step.object) else {
            return fail("internal: planned object missing from the desired set".into());
        };
        let resolved = match &p.resolved {
            Some(r) => r.clone(),
            None => {
                // Resolve now: its CRD was applied in an earlier group.
                let av = p.desired.object.get("apiVersion").and_then(Value::as_str).unwrap_or("");
                match cluster.resolve(av, &step.object.kind).await {
                    Ok(r) => r,
                    Err(e) => return fail(e.to_string()),
                }
            }
        };
        match cluster.apply(&resolved, &p.desired.object, false, force).await {
            Ok(_) => ObjectResult {
                object: step.object.clone(),
                action: action.into(),
                result: if matches!(step.action, Action::Create) {
                    ApplyResult::Created
                } else {
                    ApplyResult::Configured
                },
                message: String::new(),
            },
            Err(e) => fail(e.to_string()),
        }
    }

    async fn wait_healthy(
        &self,
        app: &Application,
        cluster: &ClusterClient,
        prepared: &Prepared,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<(Vec<(ObjectRef, HealthReport)>, HealthReport), ClusterError> {
        let deadline = Instant::now() + app.spec.health_timeout;
        let mut last_report = Instant::now();
        // Most objects are ready within moments of being applied: look again soon, then back
        // off to 250 ms, so a quick rollout does not cost a whole 250 ms wait.
        let mut pause = Duration::from_millis(25);
        loop {
            let reports = status::assess_objects(cluster, prepared).await?;
            let worst = status::app_health(&reports);
            let done = worst.status == HealthStatus::Healthy || worst.status == HealthStatus::Suspended;
            if done || Instant::now() >= deadline {
                return Ok((reports, worst));
            }
            if last_report.elapsed() >= Duration::from_secs(2) {
                progress(Progress::Waiting(
                    reports
                        .iter()
                        .filter(|(_, h)| h.status != HealthStatus::Healthy)
                        .cloned()
                        .collect(),
                ));
                last_report = Instant::now();
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }
}

/// Live object and SSA dry-run prediction for one desired object.
async fn plan_entry(
    cluster: &ClusterClient,
    p: &prepare::PreparedObject,
    force: bool,
) -> Result<plan::PlanEntry, ClusterError> {
    let Some(resolved) = &p.resolved else {
        // Its CRD is in this same set and not served yet: it will be created.
        return Ok(plan::PlanEntry {
            desired: p.desired.clone(),
            live: None,
            predicted: None,
        });
    };
    let meta_ns = p.desired.object.pointer("/metadata/namespace").and_then(Value::as_str);
    let obj_name = p
        .desired
        .object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let live = cluster.get(resolved, meta_ns, obj_name).await?;
    let predicted = if live.is_some() {
        Some(cluster.apply(resolved, &p.desired.object, true, force).await?)
    } else {
        None
    };
    Ok(plan::PlanEntry {
        desired: p.desired.clone(),
        live,
        predicted,
    })
}

fn summary_json(plan: &Plan) -> Value {
    let s = plan.summary();
    json!({"create": s.create, "update": s.update, "unchanged": s.unchanged, "prune": s.prune, "pruneSkipped": s.prune_skipped})
}

/// First 7 characters of a commit id.
pub fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

impl Engine {
    /// Plans the app against the head of its ref (or its pin) and reads the health of every
    /// desired object. Nothing is written.
    pub async fn assess(&self, app: &Application, cluster: &ClusterClient) -> Result<Assessment, EngineError> {
        let d = self.desired(app, Some(cluster)).await?;
        let (revision, warnings, policy) = (d.revision, d.warnings, d.policy);
        let (prepared, plan) = self.plan(app, cluster, &revision, d.objects, true).await?;
        let healths = status::assess_objects(cluster, &prepared)
            .await
            .map_err(|source| EngineError::Cluster {
                app: app.metadata.name.clone(),
                source,
            })?;
        Ok(Assessment {
            revision,
            prepared,
            plan,
            healths,
            warnings,
            policy,
        })
    }

    /// The live status of an app: plan against its head (nothing is written) plus health.
    pub async fn status(&self, app: &Application, cluster: &ClusterClient) -> Result<AppStatus, EngineError> {
        Ok(self.assess(app, cluster).await?.status(&app.metadata.name))
    }

    /// Deletes every object in the app's inventory (for an app removed with
    /// `deleteOnRemoval: true`), records it, and clears the inventory.
    pub async fn delete_app(
        &self,
        app: &Application,
        cluster: &ClusterClient,
    ) -> Result<Vec<ObjectResult>, EngineError> {
        let name = app.metadata.name.clone();
        let inventory = self.store.inventory(&name)?;
        let mut results = Vec::new();
        for r in inventory.iter().rev() {
            let res = match prepare::resolve_ref(cluster, r).await {
                Ok(Some(k)) => match cluster.delete(&k, r.namespace.as_deref(), &r.name).await {
                    Ok(_) => ObjectResult {
                        object: r.clone(),
                        action: "prune".into(),
                        result: ApplyResult::Deleted,
                        message: "application removed".into(),
                    },
                    Err(e) => ObjectResult {
                        object: r.clone(),
                        action: "prune".into(),
                        result: ApplyResult::Failed,
                        message: e.to_string(),
                    },
                },
                Ok(None) => ObjectResult {
                    object: r.clone(),
                    action: "prune".into(),
                    result: ApplyResult::Deleted,
                    message: "kind no longer served".into(),
                },
                Err(e) => ObjectResult {
                    object: r.clone(),
                    action: "prune".into(),
                    result: ApplyResult::Failed,
                    message: e.to_string(),
                },
            };
            results.push(res);
        }
        let failed: Vec<ObjectRef> = results
            .iter()
            .filter(|r| r.result == ApplyResult::Failed)
            .map(|r| r.object.clone())
            .collect();
        let rev = self
            .store
            .inventory_record(&name)?
            .map(|i| i.revision)
            .unwrap_or_else(|| Revision {
                commit: String::new(),
                requested_ref: String::new(),
                resolved_ref: String::new(),
                author: String::new(),
                message: String::new(),
                time: 0,
            });
        self.store.save_inventory(&name, &failed, &rev)?;
        Ok(results)
    }
}

/// A plan against the cluster with live health, before any decision to sync.
#[derive(Debug, Clone)]
pub struct Assessment {
    /// Revision planned.
    pub revision: Revision,
    /// Desired objects, resolved.
    pub prepared: Prepared,
    /// The plan.
    pub plan: Plan,
    /// Health of each desired object.
    pub healths: Vec<(ObjectRef, HealthReport)>,
    /// Render warnings and notes (e.g. pinned by a rollback).
    pub warnings: Vec<String>,
    /// Policy report (None when the app has no policy).
    pub policy: Option<driftless_policy::Report>,
}

impl Assessment {
    /// The status view of this assessment.
    pub fn status(&self, name: &str) -> AppStatus {
        let mut s = status::from_plan(name, &self.revision.commit, &self.plan, self.healths.clone());
        let mut notes = self.warnings.clone();
        notes.extend(policy_notes(self.policy.as_ref()));
        s.message = notes.join("; ");
        s.violations = self.policy.as_ref().map(|r| r.violations.clone()).unwrap_or_default();
        s
    }

    /// Whether a deny rule fired: the app must not be synced.
    pub fn denied(&self) -> bool {
        self.policy.as_ref().is_some_and(driftless_policy::Report::denied)
    }
}

/// One note for people about a policy report with violations.
fn policy_notes(report: Option<&driftless_policy::Report>) -> Option<String> {
    let r = report?;
    if r.violations.is_empty() {
        return None;
    }
    let deny = r.count(driftless_policy::Severity::Deny);
    let warn = r.count(driftless_policy::Severity::Warn);
    Some(if deny > 0 {
        format!("denied by policy: {deny} violation(s), {warn} warning(s); sync refused")
    } else {
        format!("policy warnings: {warn}")
    })
}

/// Refuses a sync whose policy report has a deny violation.
fn refuse_denied(
    app: &Application,
    revision: &Revision,
    report: Option<driftless_policy::Report>,
) -> Result<(), EngineError> {
    match report {
        Some(report) if report.denied() => Err(EngineError::PolicyDenied {
            app: app.metadata.name.clone(),
            commit: revision.commit.clone(),
            report,
        }),
        _ => Ok(()),
    }
}

fn is_kustomize(files: &[String]) -> bool {
    files.iter().any(|f| {
        matches!(
            f.rsplit('/').next(),
            Some("kustomization.yaml" | "kustomization.yml" | "Kustomization")
        )
    })
}

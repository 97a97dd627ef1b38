//! `driftless serve`: keeps every application in sync, continuously.
//!
//! Design, in the order work flows:
//! - **Apps source.** Specs come from a directory or a Git repository (apps-of-apps) and are
//!   reloaded periodically; added apps start being managed, removed apps stop being managed
//!   (their objects stay unless the app said `deleteOnRemoval`).
//! - **Triggers.** A per-app timer (refreshInterval ± 10% jitter), webhook pushes, drift
//!   events from the cluster watchers, and API calls all become one kind of work item:
//!   "reconcile APP because TRIGGER". Items for an app that is already being reconciled
//!   coalesce into one follow-up run, so an app is never reconciled twice at once.
//! - **Fetch once per repository.** A repository is fetched at most once per interval however
//!   many apps use it (webhooks and manual refreshes force a fetch).
//! - **Reconcile.** Plan (SSA dry-run) and read health; then decide: a new revision is synced
//!   when the app is automated; a difference at the same revision is drift, reported, and
//!   reverted when `selfHeal` is on. Sync windows hold automated syncs back with a visible
//!   reason; failures back off exponentially per the app's retry policy.
//! - **Watch.** One watcher per kind and cluster (driftless-cluster's `DriftWatcher`) reports
//!   changes to any managed object; the owning app is reconciled at once.
//! - **Shutdown.** SIGTERM stops new work and waits (bounded) for running syncs, which record
//!   their outcome; anything cut off is marked interrupted by the store at the next start.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use driftless_cluster::watch::DriftWatcher;
use driftless_cluster::{ClusterClient, ClusterError};
use driftless_core::ObjectRef;
use driftless_core::health::HealthStatus;
use driftless_core::spec::{self, Application};
use driftless_core::window::{WindowVerdict, evaluate};
use driftless_notify::{Event as NotifyEvent, EventKind, Notifier};
use driftless_store::{SyncId, SyncOutcome};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};
use tracing::{Instrument, info, info_span, warn};

use crate::metrics::Metrics;
use crate::status::{AppStatus, SyncState};
use crate::{Engine, EngineError, SyncOptions, now_secs, short};

/// Where Application specs come from.
#[derive(Debug, Clone)]
pub enum AppsSource {
    /// A file or directory on disk.
    Path(PathBuf),
    /// A path in a Git repository (apps-of-apps).
    Git {
        /// Repository URL.
        url: String,
        /// Branch, tag or commit.
        git_ref: String,
        /// Directory (or file) of Application specs in the repository.
        path: String,
    },
}

/// How the daemon runs.
pub struct DaemonOptions {
    /// Application specs.
    pub apps: AppsSource,
    /// kubeconfig file (None: $KUBECONFIG / ~/.kube/config).
    pub kubeconfig: Option<PathBuf>,
    /// Context overriding every app's destination.context.
    pub context: Option<String>,
    /// Allow exec credential plugins.
    pub allow_exec: bool,
    /// Reconciles running at once.
    pub concurrency: usize,
    /// Notifications.
    pub notifier: Notifier,
    /// How often the apps source is re-read.
    pub apps_reload: Duration,
    /// How long shutdown waits for running syncs.
    pub shutdown_grace: Duration,
}

/// Why a reconcile runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The refresh timer.
    Poll,
    /// A verified webhook push.
    Webhook,
    /// A change to a managed object in the cluster.
    Drift,
    /// An API/CLI refresh.
    Manual,
    /// The app was added or its spec changed.
    Spec,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Poll => "poll",
            Trigger::Webhook => "webhook",
            Trigger::Drift => "drift",
            Trigger::Manual => "api",
            Trigger::Spec => "spec",
        }
    }
    fn forces_fetch(self) -> bool {
        matches!(self, Trigger::Webhook | Trigger::Manual | Trigger::Spec)
    }
}

/// What the daemon knows about one app (shown by the API).
#[derive(Debug, Clone, Default)]
struct AppState {
    spec: Option<Application>,
    status: Option<AppStatus>,
    last_error: Option<String>,
    /// Revision of the last successful sync.
    synced_revision: Option<String>,
    /// Failed automated attempts for `failing_revision`.
    failures: u32,
    failing_revision: Option<String>,
    next_attempt: Option<Instant>,
    hold_reason: Option<String>,
    /// The revision whose policy denial was last notified (told once per revision).
    denial_notified: Option<String>,
    next_refresh: Option<Instant>,
    busy: bool,
    pending: Option<Trigger>,
    drift_reported: bool,
    last_health: Option<HealthStatus>,
    last_sync: Option<Value>,
    /// Objects in the destination namespace that no app manages (reportUnmanaged).
    unmanaged: Vec<String>,
}

/// A cluster connection and its drift watcher, per kubeconfig context.
type Connection = (ClusterClient, Arc<DriftWatcher>);

struct Inner {
    engine: Engine,
    opts: DaemonOptions,
    apps: Mutex<BTreeMap<String, AppState>>,
    clusters: tokio::sync::Mutex<HashMap<Option<String>, Connection>>,
    /// When the last successful fetch of each repository started.
    fetched: Mutex<HashMap<String, Instant>>,
    /// One fetch at a time per repository (see `fetch_if_due`).
    fetch_gates: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    work: mpsc::UnboundedSender<(String, Trigger)>,
    permits: Semaphore,
    running: AtomicUsize,
    ready: AtomicBool,
    stopping: AtomicBool,
    metrics: Metrics,
    apps_revision: Mutex<Option<String>>,
}

/// The running daemon. Cheap to clone.
#[derive(Clone)]
pub struct Daemon {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A deterministic jitter of up to ±10% per app, so apps sharing an interval spread out.
fn jittered(interval: Duration, name: &str) -> Duration {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x1000_0000_01b3)
    });
    let permille = (h % 201) as i64 - 100; // -100..=100 → ±10%
    let ms = interval.as_millis() as i64;
    Duration::from_millis((ms + ms * permille / 1000).max(1) as u64)
}

/// Whether two repository URLs name the same repository (scheme, credentials, `.git` suffix,
/// trailing slash and host case ignored).
pub fn same_repo(a: &str, b: &str) -> bool {
    fn norm(u: &str) -> String {
        let u = u.trim().trim_end_matches('/');
        let u = u.strip_suffix(".git").unwrap_or(u);
        let rest = match u.split_once("://") {
            Some((_, r)) => r.to_owned(),
            // scp-like git@host:org/repo
            None => u.replacen(':', "/", 1),
        };
        let rest = match rest.split_once('@') {
            Some((user, r)) if !user.contains('/') => r.to_owned(),
            _ => rest,
        };
        // Drop an explicit port: forges send https URLs, users may write ssh://host:22/...
        let (host, path) = rest.split_once('/').unwrap_or((&rest, ""));
        let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
        format!("{host}/{path}")
    }
    norm(a) == norm(b)
}

impl Daemon {
    /// Starts the daemon: loads the apps, connects watchers lazily, and begins reconciling.
    pub async fn start(engine: Engine, opts: DaemonOptions) -> Result<Daemon, EngineError> {
        engine.set_auto_fetch(false);
        let (tx, rx) = mpsc::unbounded_channel();
        let concurrency = opts.concurrency.max(1);
        let inner = Arc::new(Inner {
            engine,
            opts,
            apps: Mutex::new(BTreeMap::new()),
            clusters: Default::default(),
            fetched: Default::default(),
            fetch_gates: Default::default(),
            work: tx,
            permits: Semaphore::new(concurrency),
            running: AtomicUsize::new(0),
            ready: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            metrics: Metrics::new(),
            apps_revision: Mutex::new(None),
        });
        let d = Daemon { inner };
        d.reload_apps(true).await;
        tokio::spawn(d.clone().dispatch(rx));
        tokio::spawn(d.clone().timers());
        d.inner.ready.store(true, Ordering::Relaxed);
        Ok(d)
    }

    /// Whether the daemon has loaded its apps.
    pub fn ready(&self) -> bool {
        self.inner.ready.load(Ordering::Relaxed) && !self.inner.stopping.load(Ordering::Relaxed)
    }

    /// The engine (history, store).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Prometheus text exposition.
    pub fn metrics_text(&self) -> String {
        self.inner.metrics.set_notifications(&self.inner.opts.notifier.stats());
        self.inner.metrics.set_renders(driftless_render::renders_total());
        if let Ok(clusters) = self.inner.clusters.try_lock() {
            let mut totals: BTreeMap<String, u64> = BTreeMap::new();
            for (c, _) in clusters.values() {
                for (verb, n) in c.request_counts() {
                    *totals.entry(verb).or_default() += n;
                }
            }
            self.inner
                .metrics
                .set_kube_requests(&totals.into_iter().collect::<Vec<_>>());
        }
        self.inner.metrics.encode()
    }

    /// Counts a webhook delivery.
    pub fn record_webhook(&self, forge: &str, result: &str) {
        self.inner.metrics.webhook(forge, result);
    }

    /// Queues a reconcile of `app`. Returns false for an unknown app.
    pub fn refresh(&self, app: &str, trigger: Trigger) -> bool {
        if !lock(&self.inner.apps).contains_key(app) {
            return false;
        }
        let _ = self.inner.work.send((app.to_owned(), trigger));
        true
    }

    /// A verified push: reconciles (with a fresh fetch) every app whose repository and branch
    /// match. Returns the app names.
    pub fn push(&self, repo_urls: &[String], git_ref: &str) -> Vec<String> {
        let branch = git_ref
            .strip_prefix("refs/heads/")
            .or_else(|| git_ref.strip_prefix("refs/tags/"))
            .unwrap_or(git_ref);
        let apps_repo =
            matches!(&self.inner.opts.apps, AppsSource::Git { url, .. } if repo_urls.iter().any(|u| same_repo(u, url)));
        if apps_repo {
            let d = self.clone();
            tokio::spawn(async move { d.reload_apps(true).await });
        }
        let names: Vec<String> = lock(&self.inner.apps)
            .iter()
            .filter_map(|(name, st)| {
                let spec = st.spec.as_ref()?;
                let repo_matches = repo_urls.iter().any(|u| same_repo(u, &spec.spec.source.repo_url));
                // A semver range or a commit pin may follow any tag or branch: refresh those on
                // every push to the repository; names must match.
                let ref_matches = match spec.spec.source.ref_kind() {
                    spec::RefKind::Name(n) => n == branch || n == git_ref,
                    _ => true,
                };
                (repo_matches && ref_matches).then(|| name.clone())
            })
            .collect();
        for n in &names {
            let _ = self.inner.work.send((n.clone(), Trigger::Webhook));
        }
        names
    }

    /// Summaries of every app for the API: name, sync, health, revision, message.
    pub fn summaries(&self) -> Vec<Value> {
        lock(&self.inner.apps)
            .iter()
            .map(|(name, st)| summary_json(name, st))
            .collect()
    }

    /// One app with per-object status.
    pub fn app(&self, name: &str) -> Option<Value> {
        let apps = lock(&self.inner.apps);
        let st = apps.get(name)?;
        let mut v = summary_json(name, st);
        if let Some(s) = &st.status {
            v["objects"] = serde_json::to_value(&s.objects).unwrap_or(Value::Null);
        }
        if let Some(spec) = &st.spec {
            v["source"] = json!({"repoURL": driftless_source::redact_url(&spec.spec.source.repo_url), "ref": spec.spec.source.git_ref, "path": spec.spec.source.path});
        }
        Some(v)
    }

    fn spec_of(&self, name: &str) -> Option<Application> {
        lock(&self.inner.apps).get(name).and_then(|s| s.spec.clone())
    }

    /// The diff of one app against its head, computed now.
    pub async fn diff(&self, name: &str) -> Result<Option<Value>, EngineError> {
        let Some(app) = self.spec_of(name) else { return Ok(None) };
        let cluster = self.cluster(&app).await.map_err(|source| EngineError::Cluster {
            app: name.into(),
            source,
        })?;
        self.fetch_if_due(&app, true, Instant::now()).await?;
        let a = self.inner.engine.assess(&app, &cluster).await?;
        let changes: Vec<Value> = a
            .plan
            .steps
            .iter()
            .filter(|s| !matches!(s.action, driftless_core::plan::Action::Unchanged))
            .map(|s| json!({"object": s.object.to_string(), "action": crate::status::action_name(&s.action), "diff": s.diff.as_ref().map(|d| d.unified.clone())}))
            .collect();
        Ok(Some(
            json!({"app": name, "revision": a.revision.commit, "inSync": !a.plan.has_changes(), "changes": changes}),
        ))
    }

    /// Syncs one app now (API/CLI), regardless of automation and windows.
    pub async fn sync_now(&self, name: &str, opts: SyncOptions) -> Result<Option<Value>, EngineError> {
        let Some(app) = self.spec_of(name) else { return Ok(None) };
        let cluster = self.cluster(&app).await.map_err(|source| EngineError::Cluster {
            app: name.into(),
            source,
        })?;
        self.fetch_if_due(&app, true, Instant::now()).await?;
        let started = Instant::now();
        let report = self.inner.engine.sync(&app, &cluster, &opts, &|_| {}).await;
        self.after_sync(&app, report.as_ref(), started);
        let report = report?;
        Ok(Some(report_json(name, &report)))
    }

    /// Rolls one app back to history entry `id` (and pins it).
    pub async fn rollback(&self, name: &str, id: i64) -> Result<Option<Value>, EngineError> {
        let Some(app) = self.spec_of(name) else { return Ok(None) };
        let cluster = self.cluster(&app).await.map_err(|source| EngineError::Cluster {
            app: name.into(),
            source,
        })?;
        let opts = SyncOptions {
            trigger: "rollback".into(),
            wait_health: true,
            ..Default::default()
        };
        let started = Instant::now();
        let report = self
            .inner
            .engine
            .rollback(&app, &cluster, SyncId(id), &opts, &|_| {})
            .await;
        self.after_sync(&app, report.as_ref(), started);
        Ok(Some(report_json(name, &report?)))
    }

    /// History of one app.
    pub fn history(&self, name: &str, limit: usize) -> Result<Option<Vec<driftless_store::SyncEntry>>, EngineError> {
        if !lock(&self.inner.apps).contains_key(name) {
            return Ok(None);
        }
        Ok(Some(self.inner.engine.store().history(name, limit)?))
    }

    /// Stops taking work and waits (up to the grace period) for running reconciles.
    pub async fn shutdown(&self) {
        self.inner.stopping.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + self.inner.opts.shutdown_grace;
        while self.inner.running.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let left = self.inner.running.load(Ordering::Relaxed);
        if left > 0 {
            warn!(
                running = left,
                "shutdown grace period over; unfinished syncs will show as interrupted"
            );
        }
        for (_, (_, w)) in self.inner.clusters.lock().await.iter() {
            w.shutdown();
        }
        self.inner.opts.notifier.flush(Duration::from_secs(5)).await;
    }

    async fn cluster(&self, app: &Application) -> Result<ClusterClient, ClusterError> {
        let context = self
            .inner
            .opts
            .context
            .clone()
            .or_else(|| app.spec.destination.context.clone());
        let mut clusters = self.inner.clusters.lock().await;
        if let Some((c, _)) = clusters.get(&context) {
            return Ok(c.clone());
        }
        let c = ClusterClient::connect(
            self.inner.opts.kubeconfig.as_deref(),
            context.as_deref(),
            self.inner.opts.allow_exec,
        )
        .await?;
        let (watcher, mut rx) = DriftWatcher::new(c.clone());
        let d = self.clone();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                d.inner.metrics.drift(&ev.app);
                if lock(&d.inner.apps).contains_key(&ev.app) {
                    let _ = d.inner.work.send((ev.app.clone(), Trigger::Drift));
                }
            }
        });
        clusters.insert(context, (c.clone(), Arc::new(watcher)));
        Ok(c)
    }

    async fn watcher_for(&self, app: &Application) -> Option<Arc<DriftWatcher>> {
        let context = self
            .inner
            .opts
            .context
            .clone()
            .or_else(|| app.spec.destination.context.clone());
        self.inner.clusters.lock().await.get(&context).map(|(_, w)| w.clone())
    }

    /// Fetches the app's repository unless it was fetched within its refresh interval — or,
    /// when `force`d (a webhook, a manual refresh, a new spec), unless a fetch that *started*
    /// after `since` (when the reason to fetch arose) already succeeded: that fetch saw
    /// everything this one would. Fetches of one repository run one at a time, so the apps of
    /// a repository that are triggered together (a push, the daemon's start) share one fetch
    /// instead of fetching the same repository once each.
    async fn fetch_if_due(&self, app: &Application, force: bool, since: Instant) -> Result<(), EngineError> {
        let url = app.spec.source.repo_url.clone();
        let gate = lock(&self.inner.fetch_gates).entry(url.clone()).or_default().clone();
        let _one_at_a_time = gate.lock().await;
        let due = match lock(&self.inner.fetched).get(&url) {
            None => true,
            Some(last) if force => *last < since,
            Some(last) => last.elapsed() >= app.spec.refresh_interval,
        };
        if !due {
            return Ok(());
        }
        let started = Instant::now();
        let r = self.inner.engine.fetch(app).await;
        self.inner
            .metrics
            .git_fetch(&driftless_source::redact_url(&url), started.elapsed(), r.is_ok());
        if r.is_ok() {
            lock(&self.inner.fetched).insert(url, started);
        }
        r
    }

    /// Takes work items and runs them with bounded concurrency; never two at once per app.
    async fn dispatch(self, mut rx: mpsc::UnboundedReceiver<(String, Trigger)>) {
        while let Some((name, trigger)) = rx.recv().await {
            if self.inner.stopping.load(Ordering::Relaxed) {
                continue;
            }
            {
                let mut apps = lock(&self.inner.apps);
                let Some(st) = apps.get_mut(&name) else { continue };
                if st.busy {
                    // Coalesce: the strongest pending trigger wins (a webhook forces a fetch).
                    st.pending = Some(match (st.pending, trigger) {
                        (Some(p), t) if p.forces_fetch() && !t.forces_fetch() => p,
                        (_, t) => t,
                    });
                    continue;
                }
                st.busy = true;
            }
            let d = self.clone();
            self.inner.running.fetch_add(1, Ordering::Relaxed);
            // When the reason for this run arose (a follow-up's reason arose at the latest
            // when it is taken up).
            let mut since = Instant::now();
            tokio::spawn(async move {
                let mut trigger = trigger;
                loop {
                    let permit = d.inner.permits.acquire().await;
                    d.reconcile(&name, trigger, since).await;
                    drop(permit);
                    let next = {
                        let mut apps = lock(&d.inner.apps);
                        match apps.get_mut(&name) {
                            Some(st) => match st.pending.take() {
                                Some(t) if !d.inner.stopping.load(Ordering::Relaxed) => Some(t),
                                _ => {
                                    st.busy = false;
                                    None
                                }
                            },
                            None => None,
                        }
                    };
                    match next {
                        Some(t) => {
                            trigger = t;
                            since = Instant::now();
                        }
                        None => break,
                    }
                }
                d.inner.running.fetch_sub(1, Ordering::Relaxed);
            });
        }
    }

    /// The refresh timers, retry timers and the apps-source reload.
    async fn timers(self) {
        let mut last_reload = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if self.inner.stopping.load(Ordering::Relaxed) {
                return;
            }
            if last_reload.elapsed() >= self.inner.opts.apps_reload {
                last_reload = Instant::now();
                self.reload_apps(false).await;
            }
            let now = Instant::now();
            let due: Vec<String> = lock(&self.inner.apps)
                .iter_mut()
                .filter_map(|(name, st)| {
                    let spec = st.spec.as_ref()?;
                    let refresh_due = st.next_refresh.is_none_or(|t| t <= now);
                    let retry_due = st.next_attempt.is_some_and(|t| t <= now);
                    if refresh_due || retry_due {
                        st.next_refresh = Some(now + jittered(spec.spec.refresh_interval, name));
                        if retry_due {
                            st.next_attempt = None;
                        }
                        Some(name.clone())
                    } else {
                        None
                    }
                })
                .collect();
            for name in due {
                let _ = self.inner.work.send((name, Trigger::Poll));
            }
        }
    }

    /// Re-reads the apps source; adds, updates and removes apps.
    async fn reload_apps(&self, force_fetch: bool) {
        let loaded = match self.load_specs(force_fetch).await {
            Ok(apps) => apps,
            Err(e) => {
                // Never act on a failed load: keep managing what we have.
                warn!(error = %e, "could not load application specs; keeping the current set");
                return;
            }
        };
        let mut removed = Vec::new();
        let mut changed = Vec::new();
        {
            let mut apps = lock(&self.inner.apps);
            let names: Vec<String> = apps.keys().cloned().collect();
            for name in names {
                if !loaded.iter().any(|a| a.metadata.name == name)
                    && let Some(st) = apps.remove(&name)
                {
                    removed.push(st.spec);
                }
            }
            for app in loaded {
                let name = app.metadata.name.clone();
                let st = apps.entry(name.clone()).or_default();
                if st.spec.as_ref() != Some(&app) {
                    // A changed spec resets retry state and is reconciled right away.
                    st.failures = 0;
                    st.failing_revision = None;
                    st.next_attempt = None;
                    st.spec = Some(app);
                    changed.push(name);
                }
            }
        }
        for name in changed {
            info!(app = %name, "application loaded");
            let _ = self.inner.work.send((name, Trigger::Spec));
        }
        for spec in removed.into_iter().flatten() {
            let name = spec.metadata.name.clone();
            self.inner.metrics.forget(&name);
            if spec.spec.sync_policy.delete_on_removal {
                info!(app = %name, "application removed with deleteOnRemoval: deleting its objects");
                match self.cluster(&spec).await {
                    Ok(c) => match self.inner.engine.delete_app(&spec, &c).await {
                        Ok(results) => {
                            info!(app = %name, deleted = results.len(), "objects of the removed application deleted")
                        }
                        Err(e) => warn!(app = %name, error = %e, "deleting the removed application's objects failed"),
                    },
                    Err(e) => {
                        warn!(app = %name, error = %e, "cannot reach the cluster to delete the removed application's objects")
                    }
                }
            } else {
                info!(app = %name, "application removed: no longer managed; its objects stay in place");
            }
        }
    }

    async fn load_specs(&self, force_fetch: bool) -> Result<Vec<Application>, String> {
        match &self.inner.opts.apps {
            AppsSource::Path(p) => {
                let p = p.clone();
                tokio::task::spawn_blocking(move || spec::load_path(&p).map_err(|e| e.to_string()))
                    .await
                    .map_err(|e| e.to_string())?
            }
            AppsSource::Git { url, git_ref, path } => {
                let pseudo = apps_source_app(url, git_ref, path);
                let last = lock(&self.inner.fetched).get(url).copied();
                if force_fetch || last.is_none_or(|t| t.elapsed() >= self.inner.opts.apps_reload) {
                    let started = Instant::now();
                    self.inner.engine.fetch(&pseudo).await.map_err(|e| e.to_string())?;
                    lock(&self.inner.fetched).insert(url.clone(), started);
                }
                let rev = self.inner.engine.resolve(&pseudo).await.map_err(|e| e.to_string())?;
                *lock(&self.inner.apps_revision) = Some(rev.commit.clone());
                let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
                let (git, url, path, dest) = (
                    self.inner.engine.git.clone(),
                    url.clone(),
                    path.clone(),
                    dir.path().to_owned(),
                );
                tokio::task::spawn_blocking(move || {
                    git.materialize(&url, &rev.commit, &path, &dest)
                        .map_err(|e| e.to_string())?;
                    spec::load_path(&dest).map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| e.to_string())?
            }
        }
    }

    fn after_sync(&self, app: &Application, report: Result<&crate::SyncReport, &EngineError>, started: Instant) {
        let name = &app.metadata.name;
        let notifier = &self.inner.opts.notifier;
        let result = match report {
            Ok(r) => r.outcome.as_str(),
            Err(_) => "error",
        };
        self.inner.metrics.sync(name, result, started.elapsed());
        let mut apps = lock(&self.inner.apps);
        let Some(st) = apps.get_mut(name) else { return };
        match report {
            Ok(r) => {
                st.last_sync = Some(
                    json!({"id": r.id.map(|i| i.0), "revision": r.revision.commit, "outcome": r.outcome.as_str(), "message": r.message}),
                );
                if r.outcome == SyncOutcome::Succeeded {
                    st.synced_revision = Some(r.revision.commit.clone());
                    st.failures = 0;
                    st.failing_revision = None;
                    st.last_error = None;
                    st.drift_reported = false;
                    notifier.notify(NotifyEvent::now(
                        EventKind::SyncSucceeded,
                        name,
                        &r.revision.commit,
                        r.message.clone(),
                    ));
                } else {
                    st.last_error = Some(r.message.clone());
                    notifier.notify(NotifyEvent::now(
                        EventKind::SyncFailed,
                        name,
                        &r.revision.commit,
                        r.message.clone(),
                    ));
                }
            }
            Err(e) => {
                st.last_error = Some(e.to_string());
                notifier.notify(NotifyEvent::now(EventKind::SyncFailed, name, "", e.to_string()));
            }
        }
    }

    /// One reconcile: assess, decide, maybe sync.
    async fn reconcile(&self, name: &str, trigger: Trigger, since: Instant) {
        let Some(app) = self.spec_of(name) else { return };
        self.inner.metrics.reconcile(trigger.as_str());
        let span = info_span!("reconcile", app = %name, trigger = trigger.as_str(), revision = tracing::field::Empty);
        async {
            if let Err(e) = self.reconcile_inner(&app, trigger, since).await {
                warn!(error = %e, "reconcile failed");
                let message = e.to_string();
                let news = {
                    let mut apps = lock(&self.inner.apps);
                    let st = apps.get_mut(name);
                    let news = st
                        .as_ref()
                        .is_some_and(|st| st.last_error.as_deref() != Some(message.as_str()));
                    if let Some(st) = st {
                        st.last_error = Some(message.clone());
                        if let Some(s) = st.status.as_mut() {
                            s.sync = SyncState::Unknown;
                        }
                    }
                    news
                };
                self.inner.metrics.app_state(name, "Unknown", None);
                // A trust gate refusing a revision (signature, SOPS, policy) is a failed sync
                // for the people watching: told once per distinct refusal, not every refresh.
                let gate = matches!(
                    e,
                    EngineError::Signature { .. }
                        | EngineError::Decrypt { .. }
                        | EngineError::Keys { .. }
                        | EngineError::Policy { .. }
                );
                if gate && news {
                    self.inner
                        .opts
                        .notifier
                        .notify(NotifyEvent::now(EventKind::SyncFailed, name, "", message));
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn reconcile_inner(&self, app: &Application, trigger: Trigger, since: Instant) -> Result<(), EngineError> {
        let name = app.metadata.name.clone();
        let cerr = |source| EngineError::Cluster {
            app: name.clone(),
            source,
        };
        let cluster = self.cluster(app).await.map_err(cerr)?;
        if trigger != Trigger::Drift {
            self.fetch_if_due(app, trigger.forces_fetch(), since).await?;
        }
        let assessment = self.inner.engine.assess(app, &cluster).await?;
        tracing::Span::current().record("revision", short(&assessment.revision.commit));
        if let Some(w) = self.watcher_for(app).await {
            for p in &assessment.prepared.objects {
                if let Some(r) = &p.resolved {
                    w.watch_kind(r);
                }
            }
        }
        let unmanaged = if app.spec.report_unmanaged {
            self.unmanaged(app, &cluster, &assessment.prepared).await
        } else {
            Vec::new()
        };
        let status = assessment.status(&name);
        let revision = assessment.revision.commit.clone();
        let out_of_sync = assessment.plan.has_changes();
        let policy = &app.spec.sync_policy;
        let health = status.health.status;
        let denied = assessment.denied();
        self.inner
            .metrics
            .app_state(&name, if out_of_sync { "OutOfSync" } else { "Synced" }, Some(health));

        // A sync cut off by a crash or kill -9 is redone once at the same revision, so its
        // history gets a real outcome even when the cluster already matches Git.
        let redo_interrupted = policy.automated
            && self
                .inner
                .engine
                .store()
                .history(&name, 1)
                .ok()
                .and_then(|h| h.into_iter().next())
                .is_some_and(|e| e.outcome == SyncOutcome::Interrupted && e.revision.commit == revision);
        // Decide under the lock, act outside it.
        let mut denial_news = false;
        let (do_sync, drift_news, health_news) = {
            let mut apps = lock(&self.inner.apps);
            let Some(st) = apps.get_mut(&name) else { return Ok(()) };
            st.last_error = None;
            st.unmanaged = unmanaged;
            let first_look = st.status.is_none();
            let previous_health = st.last_health.replace(health);
            st.status = Some(status.clone());
            // Status-only changes raise no drift event (see driftless-cluster's watch.rs): while
            // the app is Progressing, look again soon rather than at the next refresh interval.
            if health == HealthStatus::Progressing {
                st.next_refresh = st.next_refresh.min(Some(Instant::now() + Duration::from_secs(2)));
            }
            if st.synced_revision.is_none() && !out_of_sync {
                st.synced_revision = Some(revision.clone());
            }
            let is_drift = out_of_sync && st.synced_revision.as_deref() == Some(revision.as_str());
            let drift_news = is_drift && !st.drift_reported;
            if is_drift {
                st.drift_reported = true;
            } else if !out_of_sync {
                st.drift_reported = false;
            }
            let health_news =
                health == HealthStatus::Degraded && previous_health != Some(HealthStatus::Degraded) && !first_look;
            let wanted = (out_of_sync && policy.automated && (!is_drift || policy.self_heal)) || redo_interrupted;
            let mut do_sync = false;
            st.hold_reason = None;
            if wanted {
                if st.failing_revision.as_deref() != Some(revision.as_str()) {
                    st.failing_revision = None;
                    st.failures = 0;
                }
                let verdict = evaluate(&policy.windows, now_secs());
                if denied {
                    denial_news = st.denial_notified.as_deref() != Some(revision.as_str());
                    st.denial_notified = Some(revision.clone());
                    st.hold_reason = Some(format!(
                        "automated sync refused at {}: denied by policy ({} violation(s), see `violations`)",
                        short(&revision),
                        status
                            .violations
                            .iter()
                            .filter(|v| v.severity == driftless_policy::Severity::Deny)
                            .count()
                    ));
                } else if let WindowVerdict::Closed(reason) = verdict {
                    st.hold_reason = Some(format!("automated sync held back: {reason}"));
                } else if st.failures > 0 && st.failures > policy.retry.limit {
                    st.hold_reason = Some(format!(
                        "automated sync gave up after {} failed attempts at {}; push a new commit or sync manually",
                        st.failures,
                        short(&revision)
                    ));
                } else if st.next_attempt.is_some_and(|t| t > Instant::now()) {
                    st.hold_reason = Some("waiting to retry after a failed sync".to_owned());
                } else {
                    do_sync = true;
                }
            }
            (do_sync, drift_news, health_news)
        };
        if drift_news {
            let drifted: Vec<String> = assessment
                .plan
                .steps
                .iter()
                .filter(|s| {
                    matches!(
                        s.action,
                        driftless_core::plan::Action::Update | driftless_core::plan::Action::Create
                    )
                })
                .map(|s| s.object.to_string())
                .collect();
            info!(objects = ?drifted, "drift detected");
            self.inner.opts.notifier.notify(NotifyEvent::now(
                EventKind::DriftDetected,
                &name,
                &revision,
                format!(
                    "{name}: the cluster differs from Git at {}: {}",
                    short(&revision),
                    drifted.join(", ")
                ),
            ));
        }
        if health_news {
            self.inner.opts.notifier.notify(NotifyEvent::now(
                EventKind::HealthDegraded,
                &name,
                &revision,
                format!("{name} is Degraded: {}", status.health.message),
            ));
        }
        if denial_news {
            let report = driftless_policy::Report {
                violations: status.violations.clone(),
                ..Default::default()
            };
            self.inner.opts.notifier.notify(NotifyEvent::now(
                EventKind::SyncFailed,
                &name,
                &revision,
                format!(
                    "{name}: automated sync of {} refused, denied by policy:\n{}",
                    short(&revision),
                    report.human().trim_end()
                ),
            ));
        }
        if !do_sync {
            return Ok(());
        }
        // Self-heal takes back fields another manager changed (kubectl edit/scale take
        // ownership of what they touch); without it a revert would stop at an SSA conflict.
        let opts = SyncOptions {
            trigger: format!("auto:{}", trigger.as_str()),
            wait_health: true,
            force_conflicts: policy.self_heal,
            ..Default::default()
        };
        let started = Instant::now();
        let report = self
            .inner
            .engine
            .sync_planned(
                app,
                &cluster,
                assessment.revision.clone(),
                assessment.prepared,
                assessment.plan,
                &opts,
                &|_| {},
            )
            .await;
        self.after_sync(app, report.as_ref(), started);
        let failed = !matches!(&report, Ok(r) if r.outcome == SyncOutcome::Succeeded);
        if failed {
            let mut apps = lock(&self.inner.apps);
            if let Some(st) = apps.get_mut(&name) {
                st.failing_revision = Some(revision.clone());
                st.failures += 1;
                st.next_attempt = Some(Instant::now() + policy.retry.delay(st.failures));
            }
        }
        let report = report?;
        // Refresh the status after the sync.
        if let Ok(a) = self.inner.engine.assess(app, &cluster).await {
            let s = a.status(&name);
            self.inner.metrics.app_state(
                &name,
                if a.plan.has_changes() { "OutOfSync" } else { "Synced" },
                Some(s.health.status),
            );
            if let Some(st) = lock(&self.inner.apps).get_mut(&name) {
                st.last_health = Some(s.health.status);
                st.status = Some(s);
            }
        }
        info!(outcome = report.outcome.as_str(), "{}", report.message);
        Ok(())
    }
}

impl Daemon {
    /// Objects of the kinds the app uses, in its destination namespace, that carry no
    /// `driftless.dev/app` label: created outside Git.
    async fn unmanaged(&self, app: &Application, cluster: &ClusterClient, prepared: &crate::Prepared) -> Vec<String> {
        let ns = &app.spec.destination.namespace;
        let mut kinds: Vec<&driftless_cluster::Resolved> = Vec::new();
        for p in &prepared.objects {
            if let Some(r) = &p.resolved
                && r.namespaced
                && !kinds
                    .iter()
                    .any(|k| k.api_resource.kind == r.api_resource.kind && k.api_resource.group == r.api_resource.group)
            {
                kinds.push(r);
            }
        }
        let mut out = Vec::new();
        for k in kinds {
            match cluster.list(k, &format!("!{}", crate::APP_LABEL)).await {
                Ok(objs) => out.extend(
                    objs.iter()
                        .filter(|o| o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns.as_str()))
                        .filter_map(ObjectRef::from_object)
                        .map(|r| r.to_string()),
                ),
                Err(e) => warn!(app = %app.metadata.name, error = %e, "listing unmanaged objects failed"),
            }
        }
        out.sort();
        out
    }
}

fn apps_source_app(url: &str, git_ref: &str, path: &str) -> Application {
    Application {
        api_version: spec::API_VERSION.into(),
        kind: spec::KIND.into(),
        metadata: spec::Metadata {
            name: "apps-source".into(),
            ..Default::default()
        },
        spec: spec::ApplicationSpec {
            source: spec::SourceSpec {
                repo_url: url.into(),
                git_ref: git_ref.into(),
                path: path.into(),
                verify: None,
                helm: None,
                jsonnet: None,
                kustomize: None,
                directory: None,
            },
            destination: spec::Destination {
                context: None,
                namespace: "default".into(),
            },
            sync_policy: Default::default(),
            refresh_interval: Duration::from_secs(30),
            report_unmanaged: false,
            health_timeout: Duration::from_secs(60),
            decryption: None,
            policy: None,
        },
        origin: None,
    }
}

fn summary_json(name: &str, st: &AppState) -> Value {
    let (sync, health, health_message, revision) = match &st.status {
        Some(s) => (
            format!("{:?}", s.sync),
            format!("{:?}", s.health.status),
            s.health.message.clone(),
            s.revision.clone(),
        ),
        None => ("Unknown".into(), "Unknown".into(), String::new(), String::new()),
    };
    let message = st
        .last_error
        .clone()
        .or_else(|| st.hold_reason.clone())
        .unwrap_or(health_message);
    let drifted: Vec<String> = st
        .status
        .as_ref()
        .map(|s| {
            s.objects
                .iter()
                .filter(|o| o.action != "unchanged")
                .map(|o| format!("{} ({})", o.object, o.action))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "name": name,
        "sync": sync,
        "health": health,
        "revision": revision,
        "message": message,
        "automated": st.spec.as_ref().is_some_and(|s| s.spec.sync_policy.automated),
        "selfHeal": st.spec.as_ref().is_some_and(|s| s.spec.sync_policy.self_heal),
        "heldBack": st.hold_reason,
        "outOfSyncObjects": drifted,
        "lastSync": st.last_sync,
        "unmanaged": st.unmanaged,
        "violations": st.status.as_ref().map(|s| s.violations.clone()).unwrap_or_default(),
    })
}

/// A sync report as the API returns it.
pub fn report_json(name: &str, r: &crate::SyncReport) -> Value {
    let results: Vec<Value> = r.results.iter().map(|x| json!({"object": x.object.to_string(), "action": x.action, "result": x.result.as_str(), "message": x.message})).collect();
    json!({"app": name, "id": r.id.map(|i| i.0), "revision": r.revision.commit, "outcome": r.outcome.as_str(), "message": r.message, "results": results, "health": r.app_health.status})
}

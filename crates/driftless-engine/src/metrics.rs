//! Prometheus metrics of the daemon, with conventional names (`driftless_*`, `_total` for
//! counters, `_seconds` for durations).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use driftless_core::health::HealthStatus;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

#[derive(Clone)]
struct Buckets;

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        // 10 ms .. ~160 s
        Histogram::new(exponential_buckets(0.01, 2.0, 15))
    }
}

const HEALTH: [HealthStatus; 6] = [
    HealthStatus::Healthy,
    HealthStatus::Suspended,
    HealthStatus::Progressing,
    HealthStatus::Missing,
    HealthStatus::Degraded,
    HealthStatus::Unknown,
];
const SYNC: [&str; 3] = ["Synced", "OutOfSync", "Unknown"];

/// All daemon metrics.
pub struct Metrics {
    registry: Registry,
    syncs: Family<Labels, Counter>,
    sync_duration: Family<Labels, Histogram, Buckets>,
    app_health: Family<Labels, Gauge>,
    app_sync: Family<Labels, Gauge>,
    fetch_duration: Family<Labels, Histogram, Buckets>,
    fetch_errors: Family<Labels, Counter>,
    drift: Family<Labels, Counter>,
    webhooks: Family<Labels, Counter>,
    kube_requests: Family<Labels, Counter>,
    notifications: Family<Labels, Counter>,
    reconciles: Family<Labels, Counter>,
    renders: Counter,
    seen: Mutex<HashMap<String, u64>>,
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

impl Metrics {
    /// A registry with every family registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("driftless");
        let m = Metrics {
            syncs: Family::default(),
            sync_duration: Family::new_with_constructor(Buckets),
            app_health: Family::default(),
            app_sync: Family::default(),
            fetch_duration: Family::new_with_constructor(Buckets),
            fetch_errors: Family::default(),
            drift: Family::default(),
            webhooks: Family::default(),
            kube_requests: Family::default(),
            notifications: Family::default(),
            reconciles: Family::default(),
            renders: Counter::default(),
            seen: Mutex::new(HashMap::new()),
            registry: Registry::default(),
        };
        registry.register("syncs", "Syncs by application and result", m.syncs.clone());
        registry.register(
            "sync_duration_seconds",
            "Duration of syncs, including the health wait",
            m.sync_duration.clone(),
        );
        registry.register(
            "app_health_status",
            "1 for the application's current health status",
            m.app_health.clone(),
        );
        registry.register(
            "app_sync_status",
            "1 for the application's current sync status",
            m.app_sync.clone(),
        );
        registry.register(
            "git_fetch_duration_seconds",
            "Duration of git fetches by repository",
            m.fetch_duration.clone(),
        );
        registry.register(
            "git_fetch_errors",
            "Failed git fetches by repository",
            m.fetch_errors.clone(),
        );
        registry.register(
            "drift_events",
            "Changes to managed objects seen in the cluster, by application",
            m.drift.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries by forge and result",
            m.webhooks.clone(),
        );
        registry.register(
            "kube_api_requests",
            "Kubernetes API requests by verb",
            m.kube_requests.clone(),
        );
        registry.register(
            "notifications",
            "Notifications by receiver and result (sent, failed, dropped)",
            m.notifications.clone(),
        );
        registry.register(
            "reconciles",
            "Reconciles (assess, and sync when needed) by trigger",
            m.reconciles.clone(),
        );
        registry.register(
            "renders",
            "Manifest renders run by this process (render-cache hits are not counted)",
            m.renders.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// A finished sync.
    pub fn sync(&self, app: &str, result: &str, took: Duration) {
        self.syncs.get_or_create(&l(&[("app", app), ("result", result)])).inc();
        self.sync_duration
            .get_or_create(&l(&[("app", app)]))
            .observe(took.as_secs_f64());
    }

    /// The app's current state (health None: unknown).
    pub fn app_state(&self, app: &str, sync: &str, health: Option<HealthStatus>) {
        for s in SYNC {
            self.app_sync
                .get_or_create(&l(&[("app", app), ("status", s)]))
                .set(i64::from(s == sync));
        }
        let current = health.unwrap_or(HealthStatus::Unknown);
        for h in HEALTH {
            let name = format!("{h:?}");
            self.app_health
                .get_or_create(&l(&[("app", app), ("status", &name)]))
                .set(i64::from(h == current));
        }
    }

    /// Drops the gauges of a removed app.
    pub fn forget(&self, app: &str) {
        for s in SYNC {
            self.app_sync.remove(&l(&[("app", app), ("status", s)]));
        }
        for h in HEALTH {
            self.app_health
                .remove(&l(&[("app", app), ("status", &format!("{h:?}"))]));
        }
    }

    /// A git fetch.
    pub fn git_fetch(&self, repo: &str, took: Duration, ok: bool) {
        self.fetch_duration
            .get_or_create(&l(&[("repo", repo)]))
            .observe(took.as_secs_f64());
        if !ok {
            self.fetch_errors.get_or_create(&l(&[("repo", repo)])).inc();
        }
    }

    /// A drift event for `app`.
    pub fn drift(&self, app: &str) {
        self.drift.get_or_create(&l(&[("app", app)])).inc();
    }

    /// A webhook delivery.
    pub fn webhook(&self, forge: &str, result: &str) {
        self.webhooks
            .get_or_create(&l(&[("forge", forge), ("result", result)]))
            .inc();
    }

    /// Brings the Kubernetes request counters up to `counts` (totals by verb since start).
    pub fn set_kube_requests(&self, counts: &[(String, u64)]) {
        for (verb, total) in counts {
            self.advance(
                &format!("kube:{verb}"),
                *total,
                &self.kube_requests,
                &l(&[("verb", verb)]),
            );
        }
    }

    /// Brings the notification counters up to the notifier's totals.
    pub fn set_notifications(&self, stats: &driftless_notify::NotifyStats) {
        for (receiver, s) in &stats.receivers {
            for (result, total) in [("sent", s.sent), ("failed", s.failed), ("dropped", s.dropped)] {
                self.advance(
                    &format!("notify:{receiver}:{result}"),
                    total,
                    &self.notifications,
                    &l(&[("receiver", receiver), ("result", result)]),
                );
            }
        }
    }

    /// A reconcile started.
    pub fn reconcile(&self, trigger: &str) {
        self.reconciles.get_or_create(&l(&[("trigger", trigger)])).inc();
    }

    /// Brings the render counter up to `total` (renders since the process started).
    pub fn set_renders(&self, total: u64) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let last = seen.entry("renders".to_owned()).or_insert(0);
        if total > *last {
            self.renders.inc_by(total - *last);
            *last = total;
        }
    }

    /// Counters only go up: add the difference since the last look.
    fn advance(&self, key: &str, total: u64, family: &Family<Labels, Counter>, labels: &Labels) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let last = seen.entry(key.to_owned()).or_insert(0);
        if total > *last {
            family.get_or_create(labels).inc_by(total - *last);
            *last = total;
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

//! `driftless bench`: reproducible measurements on kubesim (see BENCHMARKS.md).
//!
//! Everything runs as separate processes, as in production: a `kubesim` process (found next
//! to this binary or on PATH — it is never linked into driftless), a local Git repository
//! the benchmark creates (the `workload` module), and `driftless serve` (this binary) as a
//! child process, so that driftless's CPU time and memory are measured apart from kubesim's.
//!
//! The driftless side is what a user runs for many applications: `driftless serve` with
//! automated sync, timed from the moment it is started until every application reports
//! Synced and Healthy through its API (so startup, fetch, render, plan, apply and the health
//! wait are all inside the figure). The peer (the `peer` module) is `kubectl apply
//! --server-side` of the same objects against a fresh kubesim of its own in the same run.
//!
//! Scenarios:
//! - `cold-apps`: N applications (default 1,000) of M objects (default 5, the podinfo set;
//!   `--objects 1` is one ConfigMap per app) synced from nothing.
//! - `big-app`: one application of M objects (default 1,000) synced from nothing.
//! - `noop-resync`: after a cold sync, every application is synced again through the API with
//!   no new commit; timed, and its API writes counted (must be 0). The peer re-applies.
//! - `idle-cpu`: after a cold sync, the daemon's CPU use and renders over a quiet window.
//! - `drift-repair`: a managed Deployment's replicas are changed behind driftless's back (an
//!   HTTP PATCH, as `kubectl scale` would); measured is the time until self-heal has put Git's
//!   value back.
//! - `webhook-latency`: a commit changes a ConfigMap; a signed webhook is sent; measured is the
//!   time from the webhook until the new value is live.

mod peer;
mod procs;
mod workload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use procs::{Serve, ServeConfig, Sim, git};
use workload::{Workload, app_name, file_name, object, object_name};

/// Flags of `driftless bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Scenario: cold-apps, big-app, noop-resync, idle-cpu, drift-repair or webhook-latency.
    #[arg(long)]
    pub scenario: String,
    /// Applications to create: the global `--apps N` (a number here; 0 = the scenario's
    /// default: 1,000 for cold-apps, noop-resync and idle-cpu, else 1).
    #[arg(skip)]
    pub apps: usize,
    /// Objects per application (default 5, the podinfo set; 1,000 for big-app).
    #[arg(long)]
    pub objects: Option<usize>,
    /// Measured repetitions (drift-repair, webhook-latency).
    #[arg(long, default_value_t = 20)]
    pub iterations: usize,
    /// Seconds of the idle-cpu window.
    #[arg(long, default_value_t = 30)]
    pub window: u64,
    /// `--concurrency` of `driftless serve` (reconciles at once).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// How long kubesim's simulated workloads take to become ready, in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub ready_delay_ms: u64,
    /// Give up on the cold sync after this many seconds.
    #[arg(long, default_value_t = 1800)]
    pub timeout: u64,
    /// Skip the kubectl peer.
    #[arg(long)]
    pub no_peer: bool,
    /// kubesim binary (default: next to this binary, then PATH).
    #[arg(long)]
    pub kubesim: Option<PathBuf>,
}

/// The scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    ColdApps,
    BigApp,
    NoopResync,
    IdleCpu,
    DriftRepair,
    WebhookLatency,
}

const SCENARIOS: &str = "cold-apps, big-app, noop-resync, idle-cpu, drift-repair, webhook-latency";

impl Scenario {
    fn parse(s: &str) -> Result<Scenario> {
        Ok(match s {
            "cold-apps" => Scenario::ColdApps,
            "big-app" => Scenario::BigApp,
            "noop-resync" => Scenario::NoopResync,
            "idle-cpu" => Scenario::IdleCpu,
            "drift-repair" => Scenario::DriftRepair,
            "webhook-latency" => Scenario::WebhookLatency,
            other => bail!("unknown scenario {other:?}: use one of {SCENARIOS}"),
        })
    }

    /// Default (applications, objects per application).
    fn defaults(self) -> (usize, usize) {
        match self {
            Scenario::ColdApps | Scenario::NoopResync | Scenario::IdleCpu => (1000, 5),
            Scenario::BigApp => (1, 1000),
            Scenario::DriftRepair | Scenario::WebhookLatency => (1, 5),
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The measurements of the driftless side.
#[derive(Default)]
struct Measured {
    driftless_seconds: f64,
    samples: Vec<f64>,
    writes: u64,
    extra: Map<String, Value>,
}

/// Runs one scenario; returns its JSON result.
pub async fn run(args: &BenchArgs) -> Result<Value> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let scenario = Scenario::parse(&args.scenario)?;
    let (default_apps, default_objects) = scenario.defaults();
    let apps = if args.apps == 0 { default_apps } else { args.apps };
    let objects = args.objects.unwrap_or(default_objects);
    if objects == 0 {
        bail!("--objects must be at least 1");
    }
    if scenario == Scenario::DriftRepair && objects < 2 {
        bail!("drift-repair needs --objects 2 or more (object 2 of the podinfo set is its Deployment)");
    }
    if matches!(scenario, Scenario::DriftRepair | Scenario::WebhookLatency) && args.iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    let kubesim = args
        .kubesim
        .clone()
        .or_else(|| procs::sibling("kubesim"))
        .unwrap_or_else(|| PathBuf::from("kubesim"));
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let root = dir.path();
    let wl = Workload::create(&root.join("inputs"), apps, objects)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .pool_max_idle_per_host(64)
        .build()?;

    // The driftless side.
    let sim = Sim::start(&kubesim, &root.join("sim"), args.ready_delay_ms)?;
    let secret = "bench-webhook-secret-0123456789";
    let writes_before = sim.writes(&http).await?;
    let started = Instant::now();
    let serve = Serve::start(&ServeConfig {
        dir: root,
        apps_dir: &wl.apps_dir,
        kubeconfig: &sim.kubeconfig,
        secret,
        concurrency: args.concurrency,
    })
    .await?;
    serve
        .wait_all_synced(&http, apps, Duration::from_secs(args.timeout))
        .await?;
    let cold_seconds = started.elapsed().as_secs_f64();
    let cold_writes = sim.writes(&http).await? - writes_before;
    let cold_cpu = serve.proc.cpu_seconds();
    let cold_rss = serve.proc.peak_rss();

    let measured = match scenario {
        Scenario::ColdApps | Scenario::BigApp => Measured {
            driftless_seconds: cold_seconds,
            writes: cold_writes,
            ..Default::default()
        },
        Scenario::NoopResync => noop_resync(&serve, &sim, &http, apps).await?,
        Scenario::IdleCpu => idle_cpu(&serve, &sim, &http, Duration::from_secs(args.window)).await?,
        Scenario::DriftRepair => drift_repair(&serve, &sim, &http, args.iterations).await?,
        Scenario::WebhookLatency => webhook_latency(&serve, &sim, &http, &wl, secret, args.iterations).await?,
    };
    let driftless_cpu = serve.proc.cpu_seconds();
    let peak_rss = serve.proc.peak_rss();
    let kubesim_cpu = sim.proc.cpu_seconds();
    let kubesim_rss = sim.proc.peak_rss();
    let requests = sim.stats(&http).await.ok().and_then(|s| s["requests"].as_u64());
    drop(serve);
    drop(sim);

    let mut out = Map::new();
    let mut put = |k: &str, v: Value| {
        out.insert(k.to_owned(), v);
    };
    put("scenario", json!(args.scenario));
    put("apps", json!(apps));
    put("objects", json!(objects));
    put(
        "cores",
        json!(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)),
    );
    put("build", json!(if cfg!(debug_assertions) { "debug" } else { "release" }));
    put("driftless_seconds", json!(round3(measured.driftless_seconds)));
    put("writes", json!(measured.writes));
    put("peak_rss_bytes", json!(peak_rss));
    put("driftless_cpu_seconds", json!(round3(driftless_cpu)));
    put("kubesim_cpu_seconds", json!(round3(kubesim_cpu)));
    put("kubesim_peak_rss_bytes", json!(kubesim_rss));
    put("kubesim_requests", json!(requests));
    put("cold_sync_seconds", json!(round3(cold_seconds)));
    put("cold_sync_writes", json!(cold_writes));
    put("cold_sync_cpu_seconds", json!(round3(cold_cpu)));
    put("cold_sync_peak_rss_bytes", json!(cold_rss));
    if !measured.samples.is_empty() {
        let mut s = measured.samples.clone();
        s.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        put("iterations", json!(s.len()));
        put("p50_seconds", json!(round3(percentile(&s, 50.0))));
        put("p95_seconds", json!(round3(percentile(&s, 95.0))));
        put("max_seconds", json!(round3(s.last().copied().unwrap_or(0.0))));
    }
    for (k, v) in measured.extra {
        put(&k, v);
    }

    // The peer, against kubesims of its own.
    let has_peer = matches!(scenario, Scenario::ColdApps | Scenario::BigApp | Scenario::NoopResync);
    let mut kubectl = Value::Null;
    let mut ratio = Value::Null;
    if has_peer && !args.no_peer {
        let ready = args.ready_delay_ms;
        let plain_sim = Sim::start(&kubesim, &root.join("peer-sim"), ready)?;
        let plain = peer::kubectl_apply(&plain_sim, &http, &wl.peer_dir, false).await?;
        let prune_sim = Sim::start(&kubesim, &root.join("peer-prune-sim"), ready)?;
        let pruning = peer::kubectl_apply(&prune_sim, &http, &wl.peer_dir, true).await?;
        let (timed, timed_prune) = if scenario == Scenario::NoopResync {
            // The same objects again: kubectl's no-op re-apply.
            put("kubectl_cold_seconds", json!(round3(plain.seconds)));
            (
                peer::kubectl_apply(&plain_sim, &http, &wl.peer_dir, false).await?,
                peer::kubectl_apply(&prune_sim, &http, &wl.peer_dir, true).await?,
            )
        } else {
            (plain, pruning)
        };
        kubectl = json!(round3(timed.seconds));
        put("kubectl_writes", json!(timed.writes));
        put("kubectl_kubesim_cpu_seconds", json!(round3(timed.kubesim_cpu_seconds)));
        put("kubectl_prune_seconds", json!(round3(timed_prune.seconds)));
        put("kubectl_prune_writes", json!(timed_prune.writes));
        // Ratios of the figures as printed (rounded to the millisecond), so they can be
        // checked against them.
        let d = round3(measured.driftless_seconds);
        if d > 0.0 {
            ratio = json!(round3(round3(timed.seconds) / d));
            put("ratio_prune", json!(round3(round3(timed_prune.seconds) / d)));
        }
    }
    put("kubectl_seconds", kubectl);
    put("ratio", ratio);
    Ok(Value::Object(out))
}

/// Every app synced again through the API (no new commit), 8 requests in flight.
async fn noop_resync(serve: &Serve, sim: &Sim, http: &reqwest::Client, apps: usize) -> Result<Measured> {
    let writes_before = sim.writes(http).await?;
    let cpu_before = serve.proc.cpu_seconds();
    let started = Instant::now();
    let limit = Arc::new(tokio::sync::Semaphore::new(8));
    let mut tasks = tokio::task::JoinSet::new();
    for a in 0..apps {
        let (http, url, token, limit) = (http.clone(), serve.url.clone(), serve.token.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire().await.map_err(|e| anyhow!("{e}"))?;
            let app = app_name(a);
            let resp = http
                .post(format!("{url}/api/v1/apps/{app}/sync"))
                .bearer_auth(token)
                .send()
                .await
                .with_context(|| format!("syncing {app}"))?;
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            if !status.is_success() || body["outcome"] != "succeeded" {
                bail!("sync of {app} did not succeed ({status}): {body}");
            }
            Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| anyhow!("sync task: {e}"))??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut extra = Map::new();
    extra.insert(
        "resync_cpu_seconds".into(),
        json!(round3(serve.proc.cpu_seconds() - cpu_before)),
    );
    Ok(Measured {
        driftless_seconds: seconds,
        writes: sim.writes(http).await? - writes_before,
        extra,
        ..Default::default()
    })
}

/// The daemon's CPU and renders over a quiet window after the cold sync.
async fn idle_cpu(serve: &Serve, sim: &Sim, http: &reqwest::Client, window: Duration) -> Result<Measured> {
    // Let the follow-up checks after the cold sync finish.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let renders_before = serve.metric(http, "driftless_renders_total").await?;
    let reconciles_before = serve.metric(http, "driftless_reconciles_total").await?;
    let writes_before = sim.writes(http).await?;
    let cpu_before = serve.proc.cpu_seconds();
    let sim_cpu_before = sim.proc.cpu_seconds();
    tokio::time::sleep(window).await;
    let cpu = serve.proc.cpu_seconds() - cpu_before;
    let sim_cpu = sim.proc.cpu_seconds() - sim_cpu_before;
    let renders = serve.metric(http, "driftless_renders_total").await? - renders_before;
    let reconciles = serve.metric(http, "driftless_reconciles_total").await? - reconciles_before;
    let mut extra = Map::new();
    let secs = window.as_secs_f64().max(0.001);
    extra.insert("window_seconds".into(), json!(window.as_secs()));
    extra.insert("idle_cpu_percent".into(), json!(round3(100.0 * cpu / secs)));
    extra.insert("idle_kubesim_cpu_percent".into(), json!(round3(100.0 * sim_cpu / secs)));
    extra.insert("renders".into(), json!(renders as u64));
    extra.insert("reconciles".into(), json!(reconciles as u64));
    Ok(Measured {
        driftless_seconds: cpu,
        writes: sim.writes(http).await? - writes_before,
        extra,
        ..Default::default()
    })
}

/// Time from a drift (replicas changed by PATCH) until self-heal has reverted it.
async fn drift_repair(serve: &Serve, sim: &Sim, http: &reqwest::Client, iterations: usize) -> Result<Measured> {
    let path = format!("/apis/apps/v1/namespaces/app0/deployments/{}", object_name(1));
    let writes_before = sim.writes(http).await?;
    let cpu_before = serve.proc.cpu_seconds();
    let mut samples = Vec::with_capacity(iterations);
    for i in 0..iterations {
        let drifted = 5 + (i % 3) as u64;
        let t0 = Instant::now();
        http.patch(format!("{}{path}", sim.url))
            .header("Content-Type", "application/merge-patch+json")
            .body(json!({"spec": {"replicas": drifted}}).to_string())
            .send()
            .await?
            .error_for_status()?;
        loop {
            let d = sim.get(http, &path).await?;
            if d["spec"]["replicas"] == 2 {
                break;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                bail!("drift was not repaired within 30 s (iteration {i})");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        samples.push(t0.elapsed().as_secs_f64());
        // Let the previous repair finish (its health wait) so each sample measures one
        // drift on an idle app, as a single `kubectl edit` would be.
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    latency_result(serve, sim, http, samples, writes_before, cpu_before).await
}

/// Time from a signed push webhook until the pushed ConfigMap value is live.
async fn webhook_latency(
    serve: &Serve,
    sim: &Sim,
    http: &reqwest::Client,
    wl: &Workload,
    secret: &str,
    iterations: usize,
) -> Result<Measured> {
    let path = format!("/api/v1/namespaces/app0/configmaps/{}", object_name(0));
    let file = wl.repo.join(app_name(0)).join(file_name(0));
    let writes_before = sim.writes(http).await?;
    let cpu_before = serve.proc.cpu_seconds();
    let mut samples = Vec::with_capacity(iterations);
    for i in 0..iterations {
        let value = format!("v{}", i + 1);
        std::fs::write(&file, object(0, &value))?;
        git(&wl.repo, &["commit", "-q", "-am", &format!("bench {value}")])?;
        let body = json!({"repoURL": wl.repo_url(), "ref": "refs/heads/main"}).to_string();
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|e| anyhow!("hmac: {e}"))?;
        mac.update(body.as_bytes());
        let sig = hex::encode(mac.finalize().into_bytes());
        let t0 = Instant::now();
        let resp = http
            .post(format!("{}/api/webhook", serve.url))
            .header("Content-Type", "application/json")
            .header("X-Driftless-Signature", format!("sha256={sig}"))
            .body(body)
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("webhook refused: {}", resp.status());
        }
        loop {
            let cm = sim.get(http, &path).await?;
            if cm["data"]["PODINFO_UI_MESSAGE"] == value.as_str() {
                break;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                bail!("the pushed change was not applied within 30 s (iteration {i})");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        samples.push(t0.elapsed().as_secs_f64());
    }
    latency_result(serve, sim, http, samples, writes_before, cpu_before).await
}

async fn latency_result(
    serve: &Serve,
    sim: &Sim,
    http: &reqwest::Client,
    mut samples: Vec<f64>,
    writes_before: u64,
    cpu_before: f64,
) -> Result<Measured> {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let mut extra = Map::new();
    extra.insert(
        "measured_cpu_seconds".into(),
        json!(round3(serve.proc.cpu_seconds() - cpu_before)),
    );
    Ok(Measured {
        driftless_seconds: percentile(&samples, 50.0),
        writes: sim.writes(http).await? - writes_before,
        samples,
        extra,
    })
}

fn cell(v: &Value, scale: f64, digits: usize) -> String {
    match v.as_f64() {
        Some(x) => format!("{:.*}", digits, x / scale),
        None => "–".into(),
    }
}

/// A result as a markdown table (header and one row), as BENCHMARKS.md records it.
pub fn table(r: &Value) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let header = "| scenario | apps × objects | driftless s | kubectl s | ratio | p50 s | p95 s | peak RSS MiB | driftless CPU s | kubesim CPU s | writes | cores |\n|---|---|---|---|---|---|---|---|---|---|---|---|";
    format!(
        "{header}\n| {} | {} × {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
        r["scenario"].as_str().unwrap_or("?"),
        r["apps"],
        r["objects"],
        cell(&r["driftless_seconds"], 1.0, 3),
        cell(&r["kubectl_seconds"], 1.0, 3),
        cell(&r["ratio"], 1.0, 2),
        cell(&r["p50_seconds"], 1.0, 3),
        cell(&r["p95_seconds"], 1.0, 3),
        cell(&r["peak_rss_bytes"], MIB, 1),
        cell(&r["driftless_cpu_seconds"], 1.0, 2),
        cell(&r["kubesim_cpu_seconds"], 1.0, 2),
        r["writes"],
        r["cores"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_parse_and_have_defaults() {
        assert_eq!(Scenario::parse("cold-apps").ok(), Some(Scenario::ColdApps));
        assert_eq!(Scenario::ColdApps.defaults(), (1000, 5));
        assert_eq!(Scenario::BigApp.defaults(), (1, 1000));
        assert!(Scenario::parse("nope").is_err());
    }

    #[test]
    fn table_has_one_row_and_dashes_for_missing_values() {
        let t = table(
            &json!({"scenario": "idle-cpu", "apps": 3, "objects": 5, "driftless_seconds": 0.5, "writes": 0, "cores": 2}),
        );
        assert_eq!(t.lines().count(), 3);
        assert!(t.contains("| idle-cpu | 3 × 5 | 0.500 | – |"), "{t}");
    }

    #[test]
    fn percentiles_of_sorted_samples() {
        let s = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&s, 50.0), 3.0);
        assert_eq!(percentile(&s, 95.0), 5.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}

//! `driftless bench`: reproducible measurements on kubesim.
//!
//! Everything runs as separate processes, as in production: a `kubesim` process (found next
//! to this binary or on PATH — it is never linked into driftless), a local Git repository
//! the benchmark creates, and `driftless serve` (this binary) as a child process, so that
//! driftless's CPU time and memory are measured apart from kubesim's.
//!
//! Scenarios:
//! - `drift-repair`: a managed Deployment's replicas are changed behind driftless's back
//!   (an HTTP PATCH to the API server, as `kubectl scale` would); measured is the time until
//!   self-heal has put Git's value back.
//! - `webhook-latency`: a commit changes a ConfigMap; a signed webhook is sent; measured is the
//!   time from the webhook until the new value is live.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// Flags of `driftless bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Scenario: drift-repair or webhook-latency.
    #[arg(long)]
    pub scenario: String,
    /// Applications to create: the global `--apps N` (a number here; default 1).
    #[arg(skip)]
    pub apps: usize,
    /// Objects per application (one Deployment, the rest ConfigMaps).
    #[arg(long, default_value_t = 3)]
    pub objects: usize,
    /// Measured repetitions.
    #[arg(long, default_value_t = 20)]
    pub iterations: usize,
    /// kubesim binary (default: next to this binary, then PATH).
    #[arg(long)]
    pub kubesim: Option<PathBuf>,
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sibling(name: &str) -> Option<PathBuf> {
    let me = std::env::current_exe().ok()?;
    let p = me.parent()?.join(name);
    p.exists().then_some(p)
}

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn wait_for_file(path: &Path, what: &str) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(s) = std::fs::read_to_string(path)
            && !s.is_empty()
        {
            return Ok(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("{what} did not start (see {})", path.display())
}

/// Peak resident set size of a process (VmHWM), bytes.
fn peak_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// User+system CPU seconds of a process so far.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses and may contain spaces).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of /proc/PID/stat; `rest` starts at field 3.
    let hz = 100.0; // USER_HZ is 100 on Linux
    (ticks(11) + ticks(12)) / hz
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

struct World {
    _dir: tempfile::TempDir,
    repo: PathBuf,
    sim: Proc,
    serve: Proc,
    sim_url: String,
    serve_url: String,
    secret: String,
    http: reqwest::Client,
}

fn deployment(name: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers:\n      - name: app\n        image: ghcr.io/stefanprodan/podinfo:6.7.0\n"
    )
}

fn configmap(name: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{value}\"\n")
}

impl World {
    async fn start(args: &BenchArgs) -> Result<World> {
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        let root = dir.path();
        let kubesim = args
            .kubesim
            .clone()
            .or_else(|| sibling("kubesim"))
            .unwrap_or_else(|| PathBuf::from("kubesim"));
        let kubeconfig = root.join("kubeconfig");
        let sim = Proc(
            Command::new(&kubesim)
                .args(["--addr", "127.0.0.1:0", "--kubeconfig-out"])
                .arg(&kubeconfig)
                .args(["--ready-delay-ms", "50"])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(root.join("kubesim.log"))?)
                .spawn()
                .with_context(|| {
                    format!(
                        "starting {} (build it with `cargo build --release --bin kubesim` or pass --kubesim)",
                        kubesim.display()
                    )
                })?,
        );
        let kc = wait_for_file(&kubeconfig, "kubesim")?;
        let sim_url = serde_json::from_str::<Value>(&kc)
            .ok()
            .and_then(|v| v["clusters"][0]["cluster"]["server"].as_str().map(str::to_owned))
            .ok_or_else(|| anyhow!("kubesim wrote an unexpected kubeconfig"))?;

        let repo = root.join("repo");
        std::fs::create_dir_all(&repo)?;
        git(&repo, &["init", "-q", "-b", "main"])?;
        let apps_dir = root.join("apps");
        std::fs::create_dir_all(&apps_dir)?;
        for a in 0..args.apps {
            let app = format!("app{a}");
            let d = repo.join(&app);
            std::fs::create_dir_all(&d)?;
            std::fs::write(d.join("deployment.yaml"), deployment("web", 2))?;
            for o in 1..args.objects.max(1) {
                std::fs::write(d.join(format!("cm{o}.yaml")), configmap(&format!("cm{o}"), "0"))?;
            }
            std::fs::write(
                apps_dir.join(format!("{app}.yaml")),
                format!(
                    "apiVersion: driftless.dev/v1alpha1\nkind: Application\nmetadata:\n  name: {app}\nspec:\n  source: {{repoURL: \"file://{}\", ref: main, path: {app}}}\n  destination: {{namespace: {app}}}\n  sync: {{automated: true, selfHeal: true, prune: true, createNamespace: true}}\n  refreshInterval: 1h\n  healthTimeout: 2m\n",
                    repo.display()
                ),
            )?;
        }
        git(&repo, &["add", "-A"])?;
        git(&repo, &["commit", "-q", "-m", "bench"])?;

        let secret = "bench-webhook-secret-0123456789".to_owned();
        std::fs::write(root.join("secret"), &secret)?;
        let me = std::env::current_exe().context("locating this binary")?;
        let serve_log = root.join("serve.log");
        let serve = Proc(
            Command::new(me)
                .args(["serve", "--listen", "127.0.0.1:0", "--webhook-secret-file"])
                .arg(root.join("secret"))
                .arg("--apps")
                .arg(&apps_dir)
                .arg("--data-dir")
                .arg(root.join("data"))
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(["--concurrency", "8", "--log", "warn"])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&serve_log)?)
                .spawn()
                .context("starting driftless serve")?,
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let serve_url = loop {
            let log = std::fs::read_to_string(&serve_log).unwrap_or_default();
            if let Some(i) = log.find("listening on http://") {
                let rest = &log[i + "listening on ".len()..];
                break rest.split_whitespace().next().unwrap_or_default().to_owned();
            }
            if Instant::now() > deadline {
                bail!("driftless serve did not start (see {})", serve_log.display());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        let w = World {
            _dir: dir,
            repo,
            sim,
            serve,
            sim_url,
            serve_url,
            secret,
            http,
        };
        w.wait_all_synced(args.apps, Duration::from_secs(300)).await?;
        Ok(w)
    }

    async fn wait_all_synced(&self, n: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let apps: Value = self
                .http
                .get(format!("{}/api/v1/apps", self.serve_url))
                .send()
                .await?
                .json()
                .await
                .unwrap_or(Value::Null);
            let synced = apps
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|x| x["sync"] == "Synced" && x["health"] == "Healthy")
                        .count()
                })
                .unwrap_or(0);
            if synced >= n {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("only {synced} of {n} applications became Synced and Healthy");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn kube_get(&self, path: &str) -> Result<Value> {
        Ok(self
            .http
            .get(format!("{}{path}", self.sim_url))
            .send()
            .await?
            .json()
            .await?)
    }

    async fn writes(&self) -> u64 {
        match self
            .http
            .get(format!("{}/debug/kubesim/stats", self.sim_url))
            .send()
            .await
        {
            Ok(r) => r
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| v["writes"].as_u64())
                .unwrap_or(0),
            Err(_) => 0,
        }
    }
}

/// Runs one scenario; returns its JSON result.
pub async fn run(args: &BenchArgs) -> Result<Value> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let started = Instant::now();
    let w = World::start(args).await?;
    let setup_seconds = started.elapsed().as_secs_f64();
    let serve_pid = w.serve.0.id();
    let sim_pid = w.sim.0.id();
    let cpu_before = cpu_seconds(serve_pid);
    let writes_before = w.writes().await;
    let mut samples = Vec::with_capacity(args.iterations);
    let measure_start = Instant::now();
    match args.scenario.as_str() {
        "drift-repair" => {
            let path = "/apis/apps/v1/namespaces/app0/deployments/web";
            for i in 0..args.iterations {
                let drifted = 5 + (i % 3) as u64;
                let t0 = Instant::now();
                w.http
                    .patch(format!("{}{path}", w.sim_url))
                    .header("Content-Type", "application/merge-patch+json")
                    .body(json!({"spec": {"replicas": drifted}}).to_string())
                    .send()
                    .await?
                    .error_for_status()?;
                loop {
                    let d = w.kube_get(path).await?;
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
        }
        "webhook-latency" => {
            let path = "/api/v1/namespaces/app0/configmaps/cm1";
            if args.objects < 2 {
                bail!("webhook-latency needs --objects 2 or more (it changes a ConfigMap)");
            }
            for i in 0..args.iterations {
                let value = format!("v{}", i + 1);
                std::fs::write(w.repo.join("app0/cm1.yaml"), configmap("cm1", &value))?;
                git(&w.repo, &["commit", "-q", "-am", &format!("bench {value}")])?;
                let body =
                    json!({"repoURL": format!("file://{}", w.repo.display()), "ref": "refs/heads/main"}).to_string();
                let mut mac = Hmac::<Sha256>::new_from_slice(w.secret.as_bytes()).map_err(|e| anyhow!("hmac: {e}"))?;
                mac.update(body.as_bytes());
                let sig = hex::encode(mac.finalize().into_bytes());
                let t0 = Instant::now();
                let resp = w
                    .http
                    .post(format!("{}/api/webhook", w.serve_url))
                    .header("Content-Type", "application/json")
                    .header("X-Driftless-Signature", format!("sha256={sig}"))
                    .body(body)
                    .send()
                    .await?;
                if !resp.status().is_success() {
                    bail!("webhook refused: {}", resp.status());
                }
                loop {
                    let cm = w.kube_get(path).await?;
                    if cm["data"]["value"] == value.as_str() {
                        break;
                    }
                    if t0.elapsed() > Duration::from_secs(30) {
                        bail!("the pushed change was not applied within 30 s (iteration {i})");
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                samples.push(t0.elapsed().as_secs_f64());
            }
        }
        other => bail!("unknown scenario {other:?}: use drift-repair or webhook-latency"),
    }
    let measured = measure_start.elapsed().as_secs_f64();
    let cpu = cpu_seconds(serve_pid) - cpu_before;
    let writes = w.writes().await - writes_before;
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    Ok(json!({
        "scenario": args.scenario,
        "apps": args.apps,
        "objects": args.objects,
        "iterations": samples.len(),
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "p50_seconds": percentile(&samples, 50.0),
        "p95_seconds": percentile(&samples, 95.0),
        "max_seconds": samples.last().copied().unwrap_or(0.0),
        "driftless_seconds": percentile(&samples, 50.0),
        "kubectl_seconds": null,
        "ratio": null,
        "setup_seconds": setup_seconds,
        "measured_seconds": measured,
        "driftless_cpu_seconds": cpu,
        "kubesim_cpu_seconds": cpu_seconds(sim_pid),
        "peak_rss_bytes": peak_rss(serve_pid),
        "writes": writes,
    }))
}

//! A real Prometheus server (Debian package `prometheus`, see tests/APT_PACKAGES) scrapes
//! `driftless serve`'s `/metrics` with a read token, and its query API shows the daemon's
//! metrics with their labels: proof that the exposition parses in Prometheus itself, not just
//! in our own tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kubesim::{Config, KubeSim};
use serde_json::{Value, json};
use testkit::{GitRepo, Serve, free_port, hmac_sha256_hex, http, poll_described};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const SECRET: &str = "webhook-secret-5d1e8b2c4a";
const ADMIN_TOKEN: &str = "adm1n-t0ken-7e3b9d1f5a2c8e4b6d0a";
const READ_TOKEN: &str = "prom-read-t0ken-3f8a2d6c1e9b5a7d";
const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n";

/// A Prometheus process with its own config and storage; killed on drop.
struct Prometheus {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Prometheus {
    fn start(dir: &Path, target_port: u16) -> Prometheus {
        assert!(
            Path::new(PROMETHEUS).exists(),
            "{PROMETHEUS} not found: install the Debian package `prometheus` \
             (listed in crates/driftless/tests/APT_PACKAGES; scripts/test.sh installs it as root)"
        );
        let token_file = dir.join("prometheus-token");
        std::fs::write(&token_file, READ_TOKEN).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: driftless\n    metrics_path: /metrics\n    authorization:\n      credentials_file: {}\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n",
                token_file.display()
            ),
        )
        .unwrap();
        let log = dir.join("prometheus.log");
        for attempt in 0.. {
            let port = free_port();
            let child = Command::new(PROMETHEUS)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join(format!("tsdb-{attempt}")).display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("prometheus starts");
            let mut p = Prometheus {
                child,
                url: format!("http://127.0.0.1:{port}"),
                log: log.clone(),
            };
            let start = Instant::now();
            loop {
                if http::get(&format!("{}/-/ready", p.url), &[]).is_ok_and(|r| r.status == 200) {
                    return p;
                }
                if let Ok(Some(status)) = p.child.try_wait() {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    if attempt < 3 && text.contains("address already in use") {
                        break;
                    }
                    panic!("prometheus exited with {status}:\n{text}");
                }
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "prometheus not ready after 30 s:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = p.child.wait();
        }
        unreachable!()
    }

    /// An instant query; returns `data.result`.
    fn query(&self, promql: &str) -> Vec<Value> {
        let r = http::get(&format!("{}/api/v1/query?query={}", self.url, urlencode(promql)), &[]).expect("query");
        assert_eq!(r.status, 200, "{promql}: {}", r.text());
        let v = r.json();
        assert_eq!(v["status"], "success", "{v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// Polls `promql` until a sample satisfies `ok`.
    fn wait_for(&self, promql: &str, ok: impl Fn(&Value) -> bool) -> Value {
        poll_described(
            &format!("Prometheus: {promql}"),
            Duration::from_secs(20),
            || self.query(promql).into_iter().find(|s| ok(s)),
            || {
                format!(
                    "last result: {:?}\ntargets: {}\nprometheus log:\n{}",
                    self.query(promql),
                    http::get(&format!("{}/api/v1/targets", self.url), &[])
                        .map(|r| r.text())
                        .unwrap_or_default(),
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                )
            },
        )
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn value(sample: &Value) -> f64 {
    sample["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[test]
fn prometheus_scrapes_serve_metrics() {
    let sim = KubeSim::spawn(Config {
        ready_delay: Duration::from_millis(150),
        ..Config::default()
    })
    .expect("kubesim starts");
    let dir = tempfile::Builder::new().prefix("prometheus-e2e").tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let repo = GitRepo::new();
    repo.write("apps/web/deployment.yaml", DEPLOY);
    let commit = repo.commit("web");
    let git_http = repo.serve_http();
    let url = git_http.url("repo.git");
    let apps = dir.path().join("apps.yaml");
    std::fs::write(
        &apps,
        format!(
            "apiVersion: driftless.dev/v1alpha1\nkind: Application\nmetadata:\n  name: web\nspec:\n  source:\n    repoURL: {url}\n    ref: main\n    path: apps/web\n  destination:\n    namespace: web\n  sync:\n    automated: true\n    selfHeal: true\n    prune: true\n    createNamespace: true\n  refreshInterval: 1h\n  healthTimeout: 30s\n"
        ),
    )
    .unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(
        &tokens,
        format!("{ADMIN_TOKEN} admin ci\n{READ_TOKEN} read prometheus\n"),
    )
    .unwrap();
    for f in [&secret_file, &tokens] {
        std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
    let serve = Serve::start(
        Path::new(env!("CARGO_BIN_EXE_driftless")),
        [
            "--apps".as_ref(),
            apps.as_os_str(),
            "--data-dir".as_ref(),
            dir.path().join("data").as_os_str(),
            "--kubeconfig".as_ref(),
            kubeconfig.as_os_str(),
            "--webhook-secret-file".as_ref(),
            secret_file.as_os_str(),
            "--api-token-file".as_ref(),
            tokens.as_os_str(),
        ],
        &dir.path().join("serve.log"),
    );
    // /metrics is locked like the API: Prometheus must send its token.
    let r = http::get(&format!("{}/metrics", serve.url()), &[]).unwrap();
    assert_eq!(r.status, 401, "{}", r.text());

    // The initial automated sync.
    poll_described(
        "web Synced/Healthy",
        Duration::from_secs(30),
        || {
            let r = http::get(
                &format!("{}/api/v1/apps", serve.url()),
                &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))],
            )
            .ok()?;
            let apps = r.json();
            apps.as_array()?
                .iter()
                .any(|a| {
                    a["name"] == "web"
                        && a["sync"] == "Synced"
                        && a["health"] == "Healthy"
                        && a["revision"] == commit.as_str()
                })
                .then_some(())
        },
        String::new,
    );

    // One signed GitHub push (same commit: accepted, nothing to apply).
    let body = json!({"ref": "refs/heads/main", "after": commit, "repository": {"clone_url": url, "html_url": url, "ssh_url": url}})
        .to_string();
    let sig = format!("sha256={}", hmac_sha256_hex(SECRET.as_bytes(), body.as_bytes()));
    let r = http::post(
        &format!("{}/api/webhook", serve.url()),
        &[
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", &sig),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());

    let prom = Prometheus::start(dir.path(), serve.port());

    // The target is up (the token was accepted and the exposition parsed).
    let up = prom.wait_for("up{job=\"driftless\"}", |s| value(s) == 1.0);
    assert_eq!(up["metric"]["instance"], format!("127.0.0.1:{}", serve.port()));

    let syncs = prom.wait_for("driftless_syncs_total", |s| {
        s["metric"]["app"] == "web" && s["metric"]["result"] == "succeeded"
    });
    assert!(value(&syncs) >= 1.0, "{syncs}");
    assert_eq!(syncs["metric"]["job"], "driftless");

    let healthy = prom.wait_for("driftless_app_health_status{app=\"web\",status=\"Healthy\"}", |_| true);
    assert_eq!(value(&healthy), 1.0, "{healthy}");
    let degraded = prom.wait_for("driftless_app_health_status{app=\"web\",status=\"Degraded\"}", |_| true);
    assert_eq!(value(&degraded), 0.0, "{degraded}");
    let synced = prom.wait_for("driftless_app_sync_status{app=\"web\",status=\"Synced\"}", |_| true);
    assert_eq!(value(&synced), 1.0, "{synced}");

    let count = prom.wait_for("driftless_sync_duration_seconds_count{app=\"web\"}", |_| true);
    assert!(value(&count) >= 1.0, "{count}");
    // The histogram's buckets are usable by histogram_quantile.
    let q = prom.wait_for(
        "histogram_quantile(0.5, sum by (le) (driftless_sync_duration_seconds_bucket{app=\"web\"}))",
        |s| value(s).is_finite(),
    );
    assert!(value(&q) > 0.0, "{q}");

    let hooks = prom.wait_for("driftless_webhook_deliveries_total", |s| {
        s["metric"]["forge"] == "github" && s["metric"]["result"] == "accepted"
    });
    assert_eq!(value(&hooks), 1.0, "{hooks}");
    drop(prom);
    let _ = (&sim, &git_http);
}

//! The processes a benchmark runs and how they are measured from the outside: kubesim and
//! `driftless serve` as children, CPU time and peak RSS read from `/proc`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::Value;

/// A child process, killed when dropped.
pub struct Proc(Child);

impl Proc {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// User+system CPU seconds so far (all threads).
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(self.pid())
    }

    /// Peak resident set size so far (VmHWM), bytes.
    pub fn peak_rss(&self) -> u64 {
        peak_rss(self.pid())
    }
}

impl Drop for Proc {
    /// SIGTERM first (so a profiler wrapping the process writes its output), SIGKILL if it
    /// has not exited after 10 s.
    fn drop(&mut self) {
        let term = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .stderr(Stdio::null())
            .status();
        if term.is_ok_and(|s| s.success()) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A binary next to this one (cargo puts `kubesim` and `driftless` in the same directory).
pub fn sibling(name: &str) -> Option<PathBuf> {
    let me = std::env::current_exe().ok()?;
    let p = me.parent()?.join(name);
    p.exists().then_some(p)
}

/// Runs git in `dir` with a fixed identity and no user configuration.
pub fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .output()
        .context("running git (is it installed?)")?;
    if !out.status.success() {
        bail!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Peak resident set size of a process (VmHWM), bytes; 0 when it cannot be read.
pub fn peak_rss(pid: u32) -> u64 {
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

/// User+system CPU seconds of a process so far; 0 when it cannot be read.
pub fn cpu_seconds(pid: u32) -> f64 {
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

/// A running kubesim.
pub struct Sim {
    /// The process.
    pub proc: Proc,
    /// Its API URL.
    pub url: String,
    /// The kubeconfig it wrote.
    pub kubeconfig: PathBuf,
}

impl Sim {
    /// Starts `kubesim` with its files in `dir`.
    pub fn start(kubesim: &Path, dir: &Path, ready_delay_ms: u64) -> Result<Sim> {
        std::fs::create_dir_all(dir)?;
        let kubeconfig = dir.join("kubeconfig");
        let proc = Proc(
            Command::new(kubesim)
                .args(["--addr", "127.0.0.1:0", "--kubeconfig-out"])
                .arg(&kubeconfig)
                .args(["--ready-delay-ms", &ready_delay_ms.to_string()])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("kubesim.log"))?)
                .spawn()
                .with_context(|| {
                    format!(
                        "starting {} (build it with `cargo build --release --bin kubesim` or pass --kubesim)",
                        kubesim.display()
                    )
                })?,
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = loop {
            // The kubeconfig may be caught half-written: parse until it is whole.
            let url = std::fs::read_to_string(&kubeconfig)
                .ok()
                .and_then(|s| serde_json::from_str::<Value>(&s).ok())
                .and_then(|v| v["clusters"][0]["cluster"]["server"].as_str().map(str::to_owned));
            if let Some(url) = url {
                break url;
            }
            if Instant::now() > deadline {
                bail!("kubesim did not start (see {})", dir.join("kubesim.log").display());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(Sim { proc, url, kubeconfig })
    }

    /// kubesim's request counters (`/debug/kubesim/stats`).
    pub async fn stats(&self, http: &reqwest::Client) -> Result<Value> {
        Ok(http
            .get(format!("{}/debug/kubesim/stats", self.url))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// API writes kubesim has served (not dry runs).
    pub async fn writes(&self, http: &reqwest::Client) -> Result<u64> {
        self.stats(http)
            .await?
            .get("writes")
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow!("kubesim stats carry no `writes`"))
    }

    /// GET of an API path, as JSON.
    pub async fn get(&self, http: &reqwest::Client, path: &str) -> Result<Value> {
        Ok(http.get(format!("{}{path}", self.url)).send().await?.json().await?)
    }
}

/// A running `driftless serve`.
pub struct Serve {
    /// The process.
    pub proc: Proc,
    /// Its HTTP URL.
    pub url: String,
    /// Its log (stderr).
    pub log: PathBuf,
    /// Admin bearer token of its API.
    pub token: String,
}

/// How `driftless serve` is started.
pub struct ServeConfig<'a> {
    /// Working directory for its data, log and secret.
    pub dir: &'a Path,
    /// Directory of Application specs.
    pub apps_dir: &'a Path,
    /// kubesim's kubeconfig.
    pub kubeconfig: &'a Path,
    /// Webhook secret.
    pub secret: &'a str,
    /// `--concurrency`.
    pub concurrency: usize,
}

impl Serve {
    /// Starts this binary as `driftless serve` and waits until it listens.
    pub async fn start(cfg: &ServeConfig<'_>) -> Result<Serve> {
        let me = std::env::current_exe().context("locating this binary")?;
        let secret_file = cfg.dir.join("webhook-secret");
        std::fs::write(&secret_file, cfg.secret)?;
        let token = "bench-admin-token-0123456789abcdef".to_owned();
        let token_file = cfg.dir.join("api-tokens");
        std::fs::write(&token_file, format!("{token} admin bench\n"))?;
        let log = cfg.dir.join("serve.log");
        // For profiling only (the figures are then the wrapper's): a command line that
        // `driftless serve` runs under, e.g. `valgrind --tool=massif`.
        let mut cmd = match std::env::var("DRIFTLESS_BENCH_SERVE_WRAPPER") {
            Ok(w) if !w.trim().is_empty() => {
                let mut words = w.split_whitespace();
                let mut c = Command::new(words.next().unwrap_or_default());
                c.args(words).arg(me);
                c
            }
            _ => Command::new(me),
        };
        let proc = Proc(
            cmd.args(["serve", "--listen", "127.0.0.1:0", "--webhook-secret-file"])
                .arg(&secret_file)
                .arg("--api-token-file")
                .arg(&token_file)
                .arg("--apps")
                .arg(cfg.apps_dir)
                .arg("--data-dir")
                .arg(cfg.dir.join("data"))
                .arg("--kubeconfig")
                .arg(cfg.kubeconfig)
                .args(["--concurrency", &cfg.concurrency.to_string(), "--log", "warn"])
                .env_remove("DRIFTLESS_SERVER")
                .env_remove("DRIFTLESS_TOKEN_FILE")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log)?)
                .spawn()
                .context("starting driftless serve")?,
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(i) = text.find("listening on http://") {
                let rest = &text[i + "listening on ".len()..];
                break rest.split_whitespace().next().unwrap_or_default().to_owned();
            }
            if Instant::now() > deadline {
                bail!("driftless serve did not start (see {})", log.display());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Ok(Serve { proc, url, log, token })
    }

    /// Waits until `n` applications are Synced and Healthy; polls less often for many apps
    /// so that the polling itself costs the daemon little.
    pub async fn wait_all_synced(&self, http: &reqwest::Client, n: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let every = Duration::from_millis(match n {
            0..=20 => 20,
            21..=1000 => 250,
            _ => 1000,
        });
        loop {
            let apps: Value = match http
                .get(format!("{}/api/v1/apps", self.url))
                .bearer_auth(&self.token)
                .send()
                .await
            {
                Ok(r) => r.json().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
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
                let sample = apps
                    .as_array()
                    .and_then(|a| {
                        a.iter()
                            .find(|x| !(x["sync"] == "Synced" && x["health"] == "Healthy"))
                            .cloned()
                    })
                    .unwrap_or(Value::Null);
                bail!(
                    "only {synced} of {n} applications became Synced and Healthy within {}s (one that did not: {sample}; log: {})",
                    timeout.as_secs(),
                    self.log.display()
                );
            }
            tokio::time::sleep(every).await;
        }
    }

    /// The value of a counter in `/metrics`, summed over its label sets (0 if absent).
    pub async fn metric(&self, http: &reqwest::Client, name: &str) -> Result<f64> {
        let text = http
            .get(format!("{}/metrics", self.url))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(sum_metric(&text, name))
    }
}

/// Sums the samples of metric `name` (any labels) in a Prometheus text exposition.
pub fn sum_metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let metric = series.split('{').next()?;
            (metric == name).then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_a_metric_over_labels() {
        let text = "# HELP x\ndriftless_renders_total 3\ndriftless_reconciles_total{trigger=\"poll\"} 2\ndriftless_reconciles_total{trigger=\"spec\"} 5\n";
        assert_eq!(sum_metric(text, "driftless_renders_total"), 3.0);
        assert_eq!(sum_metric(text, "driftless_reconciles_total"), 7.0);
        assert_eq!(sum_metric(text, "driftless_missing"), 0.0);
    }
}

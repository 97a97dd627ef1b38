//! End-to-end tests of `driftless serve` (continuous reconciliation): the built binary runs as
//! a daemon against kubesim (in-process), with the Git repository served over smart HTTP by
//! the real `git http-backend`, webhooks signed like GitHub's, and the real `kubectl` judging
//! the live state. Every wait is a poll with a deadline.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use kubesim::{Config, KubeSim};
use serde_json::{Value, json};
use testkit::{GitHttpServer, GitRepo, Serve, hmac_sha256_hex, http, poll_described};

const SECRET: &str = "webhook-secret-0f3a9c1e7b";
const ADMIN_TOKEN: &str = "adm1n-t0ken-4c8e2a6f0b9d3e7a1c5f";
const READ_TOKEN: &str = "read-t0ken-9b1d5f3a7c2e6a0d4b8f";
const BIN: &str = env!("CARGO_BIN_EXE_driftless");

fn deployment(replicas: u32, annotations: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n{annotations}spec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n"
    )
}

const CONFIGMAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: hello\n";

/// How an Application is written.
struct AppDef<'a> {
    name: &'a str,
    namespace: &'a str,
    self_heal: bool,
    health_timeout: &'a str,
}

impl AppDef<'_> {
    fn new(name: &str) -> AppDef<'_> {
        AppDef {
            name,
            namespace: name,
            self_heal: true,
            health_timeout: "30s",
        }
    }
}

/// kubesim, a repository served over HTTP, an apps directory, secrets and tokens.
struct World {
    sim: KubeSim,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    repo: GitRepo,
    git_http: GitHttpServer,
    /// The repository's http URL, used both in the app specs and in webhook payloads.
    url: String,
    apps: PathBuf,
    data: PathBuf,
    secret_file: PathBuf,
    tokens_file: PathBuf,
    /// Just the admin token, for `driftless --server --token-file`.
    client_token_file: PathBuf,
    log: PathBuf,
}

impl World {
    /// A repository whose first commit holds `apps/web/{deployment,config}.yaml`.
    fn new(deploy: &str) -> (World, String) {
        let sim = KubeSim::spawn(Config {
            ready_delay: Duration::from_millis(150),
            ..Config::default()
        })
        .expect("kubesim starts");
        let dir = tempfile::Builder::new().prefix("serve-e2e").tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig).unwrap();
        let repo = GitRepo::new();
        repo.write("apps/web/deployment.yaml", deploy)
            .write("apps/web/config.yaml", CONFIGMAP);
        let first = repo.commit("web v1");
        let git_http = repo.serve_http();
        let url = git_http.url("repo.git");
        let apps = dir.path().join("apps");
        std::fs::create_dir_all(&apps).unwrap();
        let secret_file = dir.path().join("webhook-secret");
        std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
        let tokens_file = dir.path().join("tokens");
        std::fs::write(
            &tokens_file,
            format!("# test tokens\n{ADMIN_TOKEN} admin ci\n{READ_TOKEN} read dashboard\n"),
        )
        .unwrap();
        let client_token_file = dir.path().join("client-token");
        std::fs::write(&client_token_file, format!("{ADMIN_TOKEN}\n")).unwrap();
        for f in [&secret_file, &tokens_file, &client_token_file] {
            std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        }
        let data = dir.path().join("data");
        let log = dir.path().join("serve.log");
        (
            World {
                sim,
                dir,
                kubeconfig,
                repo,
                git_http,
                url,
                apps,
                data,
                secret_file,
                tokens_file,
                client_token_file,
                log,
            },
            first,
        )
    }

    fn add_app(&self, app: AppDef<'_>) {
        let yaml = format!(
            "apiVersion: driftless.dev/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\nspec:\n  source:\n    repoURL: {url}\n    ref: main\n    path: apps/web\n  destination:\n    namespace: {ns}\n  sync:\n    automated: true\n    selfHeal: {heal}\n    prune: true\n    createNamespace: true\n  refreshInterval: 1h\n  healthTimeout: {timeout}\n",
            name = app.name,
            url = self.url,
            ns = app.namespace,
            heal = app.self_heal,
            timeout = app.health_timeout,
        );
        std::fs::write(self.apps.join(format!("{}.yaml", app.name)), yaml).unwrap();
    }

    fn serve(&self) -> Serve {
        Serve::start(
            Path::new(BIN),
            [
                "--apps".as_ref(),
                self.apps.as_os_str(),
                "--data-dir".as_ref(),
                self.data.as_os_str(),
                "--kubeconfig".as_ref(),
                self.kubeconfig.as_os_str(),
                "--webhook-secret-file".as_ref(),
                self.secret_file.as_os_str(),
                "--api-token-file".as_ref(),
                self.tokens_file.as_os_str(),
                "--apps-reload".as_ref(),
                "1h".as_ref(),
            ],
            &self.log,
        )
    }

    /// The local CLI (not --server), sharing serve's data dir and apps.
    fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--apps")
            .arg(&self.apps)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env_remove("DRIFTLESS_SERVER")
            .env_remove("DRIFTLESS_TOKEN")
            .env_remove("DRIFTLESS_TOKEN_FILE")
            .env("NO_COLOR", "1")
            .output()
            .expect("driftless runs")
    }

    fn history(&self, app: &str) -> Vec<Value> {
        let out = self.cli(&["history", app, "-o", "json"]);
        assert!(
            out.status.success(),
            "driftless history: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("kubectl runs (is it installed?)")
    }

    fn kubectl_ok(&self, args: &[&str]) {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn kubectl_json(&self, args: &[&str]) -> Option<Value> {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.kubectl(&all);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    }

    fn replicas(&self, ns: &str) -> Option<i64> {
        self.kubectl_json(&["get", "deploy", "web", "-n", ns])?["spec"]["replicas"].as_i64()
    }

    fn greeting(&self, ns: &str) -> Option<String> {
        self.kubectl_json(&["get", "cm", "settings", "-n", ns])?["data"]["greeting"]
            .as_str()
            .map(str::to_owned)
    }

    /// A GitHub push delivery for `main` at `after`, signed with `secret`.
    fn github_push(&self, serve: &Serve, after: &str, secret: &str) -> http::Response {
        let body = json!({
            "ref": "refs/heads/main",
            "before": "0000000000000000000000000000000000000000",
            "after": after,
            "repository": {
                "full_name": "example/repo",
                "clone_url": self.url,
                "html_url": self.url.trim_end_matches(".git"),
                "ssh_url": "git@127.0.0.1:example/repo.git",
            },
        })
        .to_string();
        let sig = format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), body.as_bytes()));
        http::post(
            &format!("{}/api/webhook", serve.url()),
            &[
                ("X-GitHub-Event", "push"),
                ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
                ("X-Hub-Signature-256", &sig),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
        .expect("webhook POST")
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// `GET /api/v1/apps` with the admin token.
fn apps_api(serve: &Serve) -> Vec<Value> {
    let r = http::get(
        &format!("{}/api/v1/apps", serve.url()),
        &[("Authorization", &bearer(ADMIN_TOKEN))],
    )
    .expect("GET /api/v1/apps");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json().as_array().expect("an array").clone()
}

fn app_summary(serve: &Serve, name: &str) -> Option<Value> {
    apps_api(serve).into_iter().find(|a| a["name"] == name)
}

/// Polls `/api/v1/apps` until app `name` satisfies `ok`; returns that summary.
fn wait_app(serve: &Serve, name: &str, what: &str, timeout: Duration, ok: impl Fn(&Value) -> bool) -> Value {
    poll_described(
        &format!("{name}: {what}"),
        timeout,
        || app_summary(serve, name).filter(|a| ok(a)),
        || format!("last seen: {:?}", app_summary(serve, name)),
    )
}

fn synced_healthy_at(rev: &str) -> impl Fn(&Value) -> bool + '_ {
    move |a| a["sync"] == "Synced" && a["health"] == "Healthy" && a["revision"] == rev
}

fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .reduce(|a, b| a + b)
}

fn metrics(serve: &Serve) -> String {
    let r = http::get(
        &format!("{}/metrics", serve.url()),
        &[("Authorization", &bearer(READ_TOKEN))],
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

/// 1. A signed GitHub push webhook makes serve fetch over smart HTTP and apply the new commit;
///    a badly signed one is refused with 401 and changes nothing.
#[test]
fn webhook_push_is_applied_and_bad_signatures_are_refused() {
    let (w, first) = World::new(&deployment(2, ""));
    w.add_app(AppDef::new("web"));
    let serve = w.serve();

    // The initial state is applied on start (trigger: spec).
    wait_app(
        &serve,
        "web",
        "Synced/Healthy at the first commit",
        Duration::from_secs(30),
        synced_healthy_at(&first),
    );
    assert_eq!(w.replicas("web"), Some(2));
    assert_eq!(w.greeting("web").as_deref(), Some("hello"));
    let fetches_before = w.git_http.requests();
    assert!(fetches_before > 0, "serve fetched over smart HTTP");

    // A new commit: nothing polls (refreshInterval 1h), only a webhook can bring it in.
    w.repo.write("apps/web/deployment.yaml", &deployment(3, ""));
    let second = w.repo.commit("scale web to 3");

    // A delivery signed with the wrong secret: 401, not fetched, not applied.
    let bad = w.github_push(&serve, &second, "not-the-secret");
    assert_eq!(bad.status, 401, "{}", bad.text());
    // An unsigned delivery too.
    let unsigned = http::post(
        &format!("{}/api/webhook", serve.url()),
        &[("X-GitHub-Event", "push"), ("Content-Type", "application/json")],
        b"{\"ref\":\"refs/heads/main\"}",
    )
    .unwrap();
    assert_eq!(unsigned.status, 401, "{}", unsigned.text());
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(w.replicas("web"), Some(2), "a refused webhook must not apply anything");
    assert_eq!(
        w.git_http.requests(),
        fetches_before,
        "a refused webhook must not fetch"
    );
    assert_eq!(app_summary(&serve, "web").unwrap()["revision"], first.as_str());
    let m = metrics(&serve);
    assert_eq!(
        metric_value(
            &m,
            "driftless_webhook_deliveries_total",
            &[("forge", "github"), ("result", "bad_signature")]
        ),
        Some(1.0),
        "{m}"
    );

    // The correctly signed delivery: accepted, names the app, and the commit is applied.
    let t0 = Instant::now();
    let good = w.github_push(&serve, &second, SECRET);
    assert_eq!(good.status, 200, "{}", good.text());
    let body = good.json();
    assert_eq!(body["status"], "accepted", "{body}");
    assert_eq!(body["refreshed"], json!(["web"]), "{body}");
    poll_described(
        "kubectl shows 3 replicas after the webhook",
        Duration::from_secs(15),
        || (w.replicas("web") == Some(3)).then_some(()),
        || format!("replicas: {:?}", w.replicas("web")),
    );
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(10), "webhook to applied took {took:?}");
    let a = wait_app(
        &serve,
        "web",
        "Synced/Healthy at the second commit",
        Duration::from_secs(15),
        synced_healthy_at(&second),
    );
    assert_eq!(a["automated"], true);
    assert!(
        w.git_http.requests() > fetches_before,
        "the webhook fetched over smart HTTP"
    );

    // History records both syncs with their triggers.
    let h = w.history("web");
    assert_eq!(h[0]["revision"], second.as_str(), "{h:?}");
    assert_eq!(h[0]["outcome"], "succeeded", "{h:?}");
    assert_eq!(h[0]["trigger"], "auto:webhook", "{h:?}");
    assert_eq!(h.last().unwrap()["revision"], first.as_str(), "{h:?}");
    let m = metrics(&serve);
    assert_eq!(
        metric_value(
            &m,
            "driftless_webhook_deliveries_total",
            &[("forge", "github"), ("result", "accepted")]
        ),
        Some(1.0),
        "{m}"
    );
    eprintln!("webhook → applied in {took:?}");
}

/// 2. Self-heal reverts `kubectl scale` and a ConfigMap edit; with `selfHeal: false` the drift
///    is reported (OutOfSync) and left alone.
#[test]
fn drift_is_reverted_by_self_heal_and_only_reported_without_it() {
    let (w, first) = World::new(&deployment(2, ""));
    w.add_app(AppDef::new("healed"));
    w.add_app(AppDef {
        self_heal: false,
        ..AppDef::new("watched")
    });
    let serve = w.serve();
    for app in ["healed", "watched"] {
        wait_app(
            &serve,
            app,
            "Synced/Healthy",
            Duration::from_secs(30),
            synced_healthy_at(&first),
        );
    }

    // kubectl scale: another field manager takes spec.replicas; self-heal takes it back.
    w.kubectl_ok(&["scale", "deploy", "web", "-n", "healed", "--replicas=5"]);
    let t0 = Instant::now();
    poll_described(
        "self-heal to revert kubectl scale",
        Duration::from_secs(10),
        || (w.replicas("healed") == Some(2)).then_some(()),
        || format!("replicas: {:?}", w.replicas("healed")),
    );
    eprintln!("kubectl scale reverted in {:?}", t0.elapsed());

    // A ConfigMap data edit.
    w.kubectl_ok(&[
        "patch",
        "cm",
        "settings",
        "-n",
        "healed",
        "--type=merge",
        "-p",
        r#"{"data":{"greeting":"hacked"}}"#,
    ]);
    // No check that "hacked" is visible here: self-heal may already have reverted it (it
    // takes tens of milliseconds), which made such a check flaky.
    let t0 = Instant::now();
    poll_described(
        "self-heal to revert the ConfigMap edit",
        Duration::from_secs(10),
        || (w.greeting("healed").as_deref() == Some("hello")).then_some(()),
        || format!("greeting: {:?}", w.greeting("healed")),
    );
    eprintln!("ConfigMap edit reverted in {:?}", t0.elapsed());
    wait_app(
        &serve,
        "healed",
        "Synced after the reverts",
        Duration::from_secs(10),
        synced_healthy_at(&first),
    );
    let healed = w.history("healed");
    assert!(
        healed
            .iter()
            .any(|e| e["trigger"] == "auto:drift" && e["outcome"] == "succeeded"),
        "{healed:?}"
    );

    // selfHeal: false — the same drift is reported, not reverted.
    let watched_syncs = w.history("watched").len();
    w.kubectl_ok(&[
        "patch",
        "deploy",
        "web",
        "-n",
        "watched",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":5}}"#,
    ]);
    let a = wait_app(&serve, "watched", "OutOfSync", Duration::from_secs(10), |a| {
        a["sync"] == "OutOfSync"
    });
    assert_eq!(a["revision"], first.as_str());
    let detail = http::get(
        &format!("{}/api/v1/apps/watched", serve.url()),
        &[("Authorization", &bearer(READ_TOKEN))],
    )
    .unwrap()
    .json();
    assert!(
        detail["outOfSyncObjects"].as_array().is_some_and(|o| o
            .iter()
            .any(|x| x.as_str().is_some_and(|s| s.contains("Deployment/watched/web")))),
        "{detail}"
    );
    // Give a wrongful revert time to happen (and a sync loop time to show), then check.
    let healed_syncs = w.history("healed").len();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(w.replicas("watched"), Some(5), "selfHeal: false must not revert");
    assert_eq!(
        w.history("watched").len(),
        watched_syncs,
        "selfHeal: false must not sync"
    );
    assert_eq!(app_summary(&serve, "watched").unwrap()["sync"], "OutOfSync");
    assert_eq!(
        w.history("healed").len(),
        healed_syncs,
        "an idle, in-sync app does not keep syncing"
    );
    let m = metrics(&serve);
    assert!(
        metric_value(&m, "driftless_drift_events_total", &[("app", "watched")]).is_some_and(|v| v >= 1.0),
        "{m}"
    );
}

/// 3. `kill -9` during a sync's health wait leaves a `running` entry that the next start marks
///    `interrupted`; the restarted daemon converges the app.
#[test]
fn sigkill_mid_sync_is_recorded_as_interrupted_and_the_restart_converges() {
    let (w, first) = World::new(&deployment(
        2,
        "  annotations: {kubesim.driftless.dev/ready-after: 8s}\n",
    ));
    w.add_app(AppDef {
        health_timeout: "60s",
        ..AppDef::new("slow")
    });
    let mut serve = w.serve();
    let running = poll_described(
        "a running history entry",
        Duration::from_secs(20),
        || w.history("slow").into_iter().find(|e| e["outcome"] == "running"),
        || format!("history: {:?}", w.history("slow")),
    );
    let id = running["id"].clone();
    assert_eq!(running["revision"], first.as_str());
    // Everything is applied: the sync is in its health wait (8 s) when killed.
    poll_described(
        "the objects applied by the running sync",
        Duration::from_secs(10),
        || (w.replicas("slow") == Some(2) && w.greeting("slow").is_some()).then_some(()),
        || format!("replicas {:?}, greeting {:?}", w.replicas("slow"), w.greeting("slow")),
    );
    assert_eq!(
        w.history("slow")[0]["outcome"],
        "running",
        "killed before the health wait ended"
    );
    serve.kill9();
    drop(serve);

    // Nothing finished it; the next start (and any reader) finds the process gone.
    let serve = w.serve();
    let h = w.history("slow");
    let entry = h
        .iter()
        .find(|e| e["id"] == id)
        .expect("the killed sync's entry is kept");
    assert_eq!(entry["outcome"], "interrupted", "{h:?}");
    assert!(
        serve.stderr().contains("interrupted"),
        "serve says it recovered an interrupted sync:\n{}",
        serve.stderr()
    );

    // The restarted daemon converges: Synced and Healthy (the Deployment turns ready 8 s after
    // it was applied: a status-only change the daemon must notice), objects present.
    poll_described(
        "slow: Synced/Healthy after the restart",
        Duration::from_secs(25),
        || app_summary(&serve, "slow").filter(synced_healthy_at(&first)),
        || {
            let live = w.kubectl_json(&["get", "deploy", "web", "-n", "slow"]);
            format!(
                "api: {:?}\nkubectl availableReplicas: {:?}",
                app_summary(&serve, "slow"),
                live.map(|d| d["status"]["availableReplicas"].clone())
            )
        },
    );
    assert_eq!(w.replicas("slow"), Some(2));
    assert_eq!(w.greeting("slow").as_deref(), Some("hello"));
    let h = w.history("slow");
    assert!(
        h.iter().all(|e| e["outcome"] != "running"),
        "no entry is left running: {h:?}"
    );
    // The cluster already matched Git, so the restart had nothing to apply and records no
    // new sync: the interrupted entry stays the last one until the next change.
}

/// 4. The API needs a token to mutate; the CLI in --server mode lists and diffs.
#[test]
fn api_requires_tokens_and_the_cli_talks_to_serve() {
    let (w, first) = World::new(&deployment(2, ""));
    w.add_app(AppDef::new("web"));
    let serve = w.serve();
    wait_app(
        &serve,
        "web",
        "Synced/Healthy",
        Duration::from_secs(30),
        synced_healthy_at(&first),
    );
    let sync_url = format!("{}/api/v1/apps/web/sync", serve.url());

    let r = http::post(&sync_url, &[], b"").unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
    let r = http::post(
        &sync_url,
        &[("Authorization", "Bearer wrong-token-wrong-token-wrong-tok")],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    let r = http::post(&sync_url, &[("Authorization", &bearer(READ_TOKEN))], b"").unwrap();
    assert_eq!(r.status, 403, "a read token cannot sync: {}", r.text());
    let r = http::get(&format!("{}/api/v1/apps", serve.url()), &[]).unwrap();
    assert_eq!(r.status, 401, "reads need a token once tokens are configured");

    let r = http::post(
        &sync_url,
        &[
            ("Authorization", &bearer(ADMIN_TOKEN)),
            ("Content-Type", "application/json"),
        ],
        b"{}",
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["outcome"], "succeeded", "{v}");
    assert_eq!(v["revision"], first.as_str(), "{v}");
    assert_eq!(w.history("web")[0]["trigger"], "api");

    let client = |args: &[&str]| {
        Command::new(BIN)
            .arg("--server")
            .arg(serve.url())
            .args(args)
            .env_remove("DRIFTLESS_SERVER")
            .env_remove("DRIFTLESS_TOKEN")
            .env_remove("DRIFTLESS_TOKEN_FILE")
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let token = w.client_token_file.to_str().unwrap();
    let out = client(&["--token-file", token, "apps"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.lines().any(|l| l.starts_with("web ") && l.contains("Synced")),
        "{stdout}"
    );
    let out = client(&["--token-file", token, "diff", "web"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "in sync: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = client(&["diff", "web"]);
    assert_ne!(out.status.code(), Some(0), "without a token the CLI is refused");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// 5. SIGTERM while idle: a clean, quick exit with status 0.
#[test]
fn sigterm_while_idle_exits_cleanly() {
    let (w, first) = World::new(&deployment(2, ""));
    w.add_app(AppDef::new("web"));
    let mut serve = w.serve();
    wait_app(
        &serve,
        "web",
        "Synced/Healthy",
        Duration::from_secs(30),
        synced_healthy_at(&first),
    );
    let t0 = Instant::now();
    let status = serve
        .terminate(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("serve still running 5 s after SIGTERM\n{}", serve.stderr()));
    assert!(status.success(), "exit status {status}\n{}", serve.stderr());
    eprintln!("SIGTERM → exit in {:?}", t0.elapsed());
    assert!(serve.stderr().contains("shutting down"), "{}", serve.stderr());
    let port = serve.port();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the listener is closed"
    );
    let _ = (&w.sim, &w.dir);
}

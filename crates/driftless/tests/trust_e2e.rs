//! End-to-end tests of the trust gates (signed commits, SOPS secrets, policy) and of
//! `driftless validate`: the built binary against kubesim and repositories made with the real
//! `git`, `ssh-keygen` and `age-keygen`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use kubesim::{Config, KubeSim};
use serde_json::Value;
use testkit::{GitRepo, Serve, git, git_with_env, http, poll, poll_described};

const BIN: &str = env!("CARGO_BIN_EXE_driftless");
const TOKEN: &str = "t0ken-for-trust-tests-0123456789";

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: hello\n";

fn deployment(image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {{owner: ada.team}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers:\n      - name: web\n        image: {image}\n        resources: {{requests: {{cpu: 10m, memory: 16Mi}}}}\n"
    )
}

/// A Conftest-style policy in the app's repository: no `:latest` images.
const NO_LATEST: &str = r#"package main

import rego.v1

deny contains msg if {
    input.kind == "Deployment"
    some c in input.spec.template.spec.containers
    endswith(c.image, ":latest")
    msg := sprintf("container %s uses the latest tag", [c.name])
}

warn contains msg if {
    input.kind == "ConfigMap"
    not input.metadata.labels.team
    msg := "ConfigMap has no team label"
}
"#;

struct World {
    sim: KubeSim,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    repo: GitRepo,
    apps: PathBuf,
    data: PathBuf,
}

impl World {
    fn new() -> World {
        let sim = KubeSim::spawn(Config {
            ready_delay: Duration::from_millis(50),
            ..Config::default()
        })
        .expect("kubesim");
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig).unwrap();
        let apps = dir.path().join("apps.yaml");
        let data = dir.path().join("data");
        World {
            sim,
            dir,
            kubeconfig,
            repo: GitRepo::new(),
            apps,
            data,
        }
    }

    /// Writes the app `web` (path `app`, namespace `web`, prune on) with `extra` appended to
    /// its spec (indented by two spaces) and `source_extra` to its source.
    fn app(&self, source_extra: &str, extra: &str) {
        std::fs::write(
            &self.apps,
            format!(
                "apiVersion: driftless.dev/v1alpha1\nkind: Application\nmetadata:\n  name: web\nspec:\n  source:\n    repoURL: {url}\n    ref: main\n    path: app\n{source_extra}  destination:\n    namespace: web\n  sync:\n    prune: true\n    createNamespace: true\n    automated: true\n  healthTimeout: 20s\n  refreshInterval: 1h\n{extra}",
                url = self.repo.file_url()
            ),
        )
        .unwrap();
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("DRIFTLESS_APPS", &self.apps)
            .env("DRIFTLESS_DATA_DIR", &self.data)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("NO_COLOR", "1")
            .env_remove("SOPS_AGE_KEY_FILE")
            .env_remove("SOPS_AGE_KEY")
            .envs(env.iter().copied())
            .output()
            .expect("driftless runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, &[]);
        assert!(out.status.success(), "driftless {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn object(&self, kind: &str, name: &str) -> Option<Value> {
        let plural = match kind {
            "ConfigMap" => "configmaps",
            "Secret" => "secrets",
            _ => "deployments",
        };
        let group = if kind == "Deployment" { "apps" } else { "" };
        self.sim.object(group, plural, "web", name)
    }

    /// `driftless serve` on this world's app (copied into an apps directory), with an admin
    /// API token; returns the process and the Authorization header value.
    fn serve(&self, extra: &[&str], log: &Path) -> Serve {
        let apps_dir = self.dir.path().join("apps.d");
        std::fs::create_dir_all(&apps_dir).unwrap();
        std::fs::copy(&self.apps, apps_dir.join("web.yaml")).unwrap();
        let tokens = self.dir.path().join("tokens");
        std::fs::write(&tokens, format!("{TOKEN} admin ci\n")).unwrap();
        std::fs::set_permissions(&tokens, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let mut args: Vec<std::ffi::OsString> = vec![
            "--apps".into(),
            apps_dir.into(),
            "--data-dir".into(),
            self.data.clone().into(),
            "--kubeconfig".into(),
            self.kubeconfig.clone().into(),
            "--api-token-file".into(),
            tokens.into(),
        ];
        args.extend(extra.iter().map(Into::into));
        Serve::start(Path::new(BIN), args, log)
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ssh_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen runs (openssh-client installed?)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_owned())
}

/// Commits everything signed with the SSH key and pushes.
fn signed_commit(repo: &GitRepo, key: &Path, message: &str) -> String {
    let work = repo.work_dir();
    git(work, &["add", "-A"]);
    git_with_env(
        work,
        &[
            "-c",
            "gpg.format=ssh",
            "-c",
            &format!("user.signingkey={}", key.display()),
            "commit",
            "-q",
            "-S",
            "--allow-empty",
            "-m",
            message,
        ],
        &[],
    );
    git(work, &["push", "-q", "origin", "main"]);
    git(work, &["rev-parse", "HEAD"])
}

#[test]
fn unsigned_or_untrusted_commits_are_refused_and_nothing_is_applied() {
    let w = World::new();
    let (trusted, trusted_pub) = ssh_key(w.dir.path(), "trusted");
    let (untrusted, _) = ssh_key(w.dir.path(), "mallory");
    w.repo.write("app/config.yaml", CM);
    w.repo.commit("unsigned");
    // The key inline, as the contract says; a path works as well (below).
    w.app(
        &format!("    verify:\n      mode: head\n      keys:\n      - \"{trusted_pub}\"\n"),
        "",
    );

    let writes = w.sim.stats().writes;
    let out = w.run(&["sync", "web"], &[]);
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("signature"), "{stderr}");
    assert!(stderr.contains("nothing was applied"), "{stderr}");
    assert_eq!(w.sim.stats().writes, writes, "no write reached the cluster");
    assert!(w.object("ConfigMap", "settings").is_none());

    // Status says why.
    let out = w.run(&["status", "web", "-o", "json"], &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("signature"),
        "{}",
        text(&out)
    );

    // Signed by the trusted key: synced.
    signed_commit(&w.repo, &trusted, "signed");
    w.ok(&["sync", "web"]);
    assert!(w.object("ConfigMap", "settings").is_some());

    // A later commit signed by a key not in the list (a forged authorship): refused, and
    // the prune it would do (the ConfigMap removed) does not happen.
    w.repo
        .remove("app/config.yaml")
        .write("app/other.yaml", &CM.replace("settings", "other"));
    signed_commit(&w.repo, &untrusted, "from mallory");
    let out = w.run(&["sync", "web"], &[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("signature"),
        "{}",
        text(&out)
    );
    assert!(w.object("ConfigMap", "settings").is_some(), "nothing was pruned");
    assert!(w.object("ConfigMap", "other").is_none(), "nothing was applied");

    // Keys from a file path (relative to the apps file), with an allowed_signers line.
    std::fs::write(
        w.dir.path().join("allowed_signers"),
        format!("ada@example.com namespaces=\"git\" {trusted_pub}\n"),
    )
    .unwrap();
    w.app("    verify:\n      mode: head\n      keys: [allowed_signers]\n", "");
    let out = w.run(&["sync", "web"], &[]);
    assert!(!out.status.success(), "still mallory's commit: {}", text(&out));
    signed_commit(&w.repo, &trusted, "re-signed by ada");
    w.ok(&["sync", "web", "--confirm-prune"]);
    assert!(w.object("ConfigMap", "other").is_some());
    assert!(w.object("ConfigMap", "settings").is_none(), "pruned once trusted");
}

fn age_keygen(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("age.key");
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .expect("age-keygen runs (age installed?)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&key).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key comment")
        .to_owned();
    (key, recipient)
}

fn encrypt_secret(recipient: &str, password: &str) -> Vec<u8> {
    let plain = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\nstringData:\n  password: {password}\n"
    );
    driftless_sops::encrypt(
        plain.as_bytes(),
        driftless_sops::Format::Yaml,
        &driftless_sops::EncryptOptions {
            age_recipients: vec![recipient.to_owned()],
            encrypted_regex: Some("^(data|stringData)$".into()),
            ..Default::default()
        },
    )
    .unwrap()
}

/// Every file under `dir`, searched for `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)) {
                hits.push(p);
            }
        }
    }
    hits
}

#[test]
fn sops_secrets_are_decrypted_at_sync_and_never_shown() {
    const PLAIN: &str = "Tr0ub4dor-and-3-horses";
    const PLAIN2: &str = "c0rrect-h0rse-battery";
    let w = World::new();
    let (key, recipient) = age_keygen(w.dir.path());
    w.repo.write("app/config.yaml", CM).write(
        "app/secret.yaml",
        std::str::from_utf8(&encrypt_secret(&recipient, PLAIN)).unwrap(),
    );
    w.repo.commit("encrypted secret");
    assert!(files_containing(w.repo.root(), PLAIN.as_bytes()).is_empty());

    // No key: the render fails, names the file, applies nothing.
    w.app("", "");
    let out = w.run(&["sync", "web"], &[]);
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("app/secret.yaml") && stderr.contains("SOPS"),
        "{stderr}"
    );
    assert!(w.object("ConfigMap", "settings").is_none());

    // keyFile relative to the apps file.
    std::fs::copy(&key, w.dir.path().join("keys.txt")).unwrap();
    w.app("", "  decryption:\n    keyFile: keys.txt\n");
    let mut outputs = vec![w.run(&["sync", "web"], &[])];
    assert!(outputs[0].status.success(), "{}", text(&outputs[0]));
    let secret = w.object("Secret", "db").expect("the Secret is live");
    let live = secret["data"]["password"].as_str().unwrap_or_default().to_owned();
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::STANDARD.decode(&live).unwrap(),
        PLAIN.as_bytes(),
        "the decrypted value reached the cluster"
    );

    // A changed secret: diff, sync, history, status, render in every format.
    w.repo.write(
        "app/secret.yaml",
        std::str::from_utf8(&encrypt_secret(&recipient, PLAIN2)).unwrap(),
    );
    w.repo.commit("rotate");
    for args in [
        &["diff", "web"][..],
        &["diff", "web", "-o", "json"],
        &["render", "web"],
        &["render", "web", "-o", "json"],
        &["sync", "web", "--log", "debug"],
        &["history", "web", "-o", "json"],
        &["get", "web", "-o", "json"],
        &["status", "web", "-o", "json"],
        &["status", "web"],
    ] {
        outputs.push(w.run(args, &[]));
    }
    for (i, out) in outputs.iter().enumerate() {
        let all = text(out);
        assert!(
            !all.contains(PLAIN) && !all.contains(PLAIN2),
            "output #{i} leaks: {all}"
        );
        for b64 in [PLAIN, PLAIN2].map(|p| base64::engine::general_purpose::STANDARD.encode(p)) {
            assert!(!all.contains(&b64), "output #{i} leaks base64: {all}");
        }
    }
    let secret = w.object("Secret", "db").unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(secret["data"]["password"].as_str().unwrap())
            .unwrap(),
        PLAIN2.as_bytes()
    );
    // The render cache holds no plaintext (the store keeps rollback manifests, see
    // driftless-store's docs, and only there).
    let leaks: Vec<PathBuf> = files_containing(&w.data, PLAIN2.as_bytes())
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains("driftless.db"))
        .collect();
    assert!(leaks.is_empty(), "plaintext in {leaks:?}");

    // Keys from a Secret in the cluster (Flux's layout), no key file.
    let key_b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&key).unwrap());
    let manifest = w.dir.path().join("sops-age.yaml");
    std::fs::write(
        &manifest,
        format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: sops-age\n  namespace: web\ndata:\n  identity.agekey: {key_b64}\n"),
    )
    .unwrap();
    w.app("", "  decryption:\n    secretRef:\n      name: sops-age\n");
    w.repo.write(
        "app/secret.yaml",
        std::str::from_utf8(&encrypt_secret(&recipient, PLAIN)).unwrap(),
    );
    w.repo.commit("rotate back");
    let out = w.run(&["sync", "web"], &[]);
    assert!(!out.status.success(), "no such Secret yet: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Secret/web/sops-age"),
        "{}",
        text(&out)
    );
    let out = Command::new("kubectl")
        .args(["apply", "--server-side", "-f"])
        .arg(&manifest)
        .env("KUBECONFIG", &w.kubeconfig)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = w.run(&["sync", "web"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(PLAIN));

    // A tampered file (a ciphertext changed): refused, named, no plaintext.
    let enc = String::from_utf8(encrypt_secret(&recipient, PLAIN2)).unwrap();
    let tampered = enc.replacen("ENC[AES256_GCM,data:", "ENC[AES256_GCM,data:AAAA", 1);
    w.repo.write("app/secret.yaml", &tampered);
    w.repo.commit("tampered");
    let out = w.run(&["sync", "web"], &[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("app/secret.yaml"), "{}", text(&out));
    assert!(!text(&out).contains(PLAIN2));
}

#[test]
fn serve_never_logs_or_serves_decrypted_values() {
    const PLAIN: &str = "s3rve-side-s3cret-value";
    let w = World::new();
    let (key, recipient) = age_keygen(w.dir.path());
    w.repo.write("app/config.yaml", CM).write(
        "app/secret.yaml",
        std::str::from_utf8(&encrypt_secret(&recipient, PLAIN)).unwrap(),
    );
    w.repo.commit("encrypted");
    w.app("", &format!("  decryption:\n    keyFile: {}\n", key.display()));
    let log = w.dir.path().join("serve.log");
    let serve = w.serve(&["--log", "debug"], &log);
    poll("the Secret is applied", Duration::from_secs(60), || {
        w.object("Secret", "db").map(|_| ())
    });
    let bearer = format!("Bearer {TOKEN}");
    let auth = [("Authorization", bearer.as_str())];
    let mut bodies = Vec::new();
    for path in [
        "/api/v1/apps",
        "/api/v1/apps/web",
        "/api/v1/apps/web/history",
        "/api/v1/apps/web/diff",
        "/metrics",
    ] {
        let r = http::get(&format!("{}{path}", serve.url()), &auth).expect(path);
        bodies.push((path, r.text()));
    }
    drop(serve);
    for (path, body) in &bodies {
        assert!(!body.contains(PLAIN), "{path} leaks: {body}");
    }
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(!log_text.contains(PLAIN), "the debug log leaks");
    use base64::Engine as _;
    assert!(!log_text.contains(&base64::engine::general_purpose::STANDARD.encode(PLAIN)));
}

#[test]
fn a_policy_denial_blocks_apply_and_prune_and_is_listed() {
    let w = World::new();
    w.repo
        .write("app/config.yaml", CM)
        .write("app/deployment.yaml", &deployment("nginx:1.27"))
        .write("policy/images.rego", NO_LATEST);
    w.repo.commit("v1");
    // A central policy repository with a Gatekeeper template + constraint, as published.
    let central = GitRepo::new();
    central.write(
        "gatekeeper/requiredlabels.yaml",
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../driftless-policy/tests/fixtures/gatekeeper/requiredlabels.yaml"
        ))
        .unwrap(),
    );
    central.commit("policies");
    w.app(
        "",
        &format!(
            "  policy:\n    paths: [policy]\n    baselines: [no-privileged]\n    repo:\n      repoURL: {}\n      ref: main\n      path: gatekeeper\n",
            central.file_url()
        ),
    );
    let out = w.run(&["sync", "web"], &[]);
    // The fixture's constraint may or may not apply to these objects; what matters here is
    // that a passing render syncs. Print what happened if not.
    assert!(out.status.success(), "{}", text(&out));
    assert!(w.object("ConfigMap", "settings").is_some());

    // A commit that removes the ConfigMap and uses :latest — denied: no apply, no prune.
    w.repo
        .remove("app/config.yaml")
        .write("app/deployment.yaml", &deployment("nginx:latest"));
    w.repo.commit("latest");
    let writes = w.sim.stats().writes;
    let out = w.run(&["sync", "web"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("denied by policy"), "{stderr}");
    assert!(
        stderr.contains("Deployment/web") && stderr.contains("latest tag"),
        "{stderr}"
    );
    assert_eq!(w.sim.stats().writes, writes, "nothing was written");
    assert!(w.object("ConfigMap", "settings").is_some(), "nothing was pruned");

    // status lists each violation, in JSON and for people.
    let out = w.run(&["status", "web", "-o", "json"], &[]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    let violations = v[0]["violations"].as_array().cloned().unwrap_or_default();
    assert!(
        violations
            .iter()
            .any(|x| x["severity"] == "deny" && x["object"]["kind"] == "Deployment"),
        "{v}"
    );
    let table = w.ok(&["status", "web"]);
    assert!(
        table.contains("policy violations") && table.contains("latest tag"),
        "{table}"
    );

    // The baseline: a privileged container is denied too.
    let privileged = deployment("nginx:1.28").replace(
        "        resources:",
        "        securityContext: {privileged: true}\n        resources:",
    );
    w.repo.write("app/deployment.yaml", &privileged);
    w.repo.commit("privileged");
    let out = w.run(&["sync", "web"], &[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-privileged"),
        "{}",
        text(&out)
    );

    // Fixed: synced, and the prune happens now.
    w.repo.write("app/deployment.yaml", &deployment("nginx:1.28"));
    w.repo.commit("fixed");
    w.ok(&["sync", "web"]);
    assert!(w.object("ConfigMap", "settings").is_none(), "pruned once allowed");
}

#[test]
fn serve_holds_a_denied_app_and_the_api_lists_violations() {
    let w = World::new();
    w.repo
        .write("app/deployment.yaml", &deployment("nginx:latest"))
        .write("policy/images.rego", NO_LATEST);
    w.repo.commit("latest from the start");
    w.app("", "  policy:\n    paths: [policy]\n");
    let (hook_url, received) = receiver();
    let notifications = w.dir.path().join("notifications.yaml");
    std::fs::write(
        &notifications,
        format!("receivers:\n- name: ops\n  kind: webhook\n  url: {hook_url}\nsubscriptions:\n- receiver: ops\n  events: [sync-failed]\n"),
    )
    .unwrap();
    let serve = w.serve(
        &["--notifications", notifications.to_str().unwrap()],
        &w.dir.path().join("serve.log"),
    );
    let bearer = format!("Bearer {TOKEN}");
    let auth = [("Authorization", bearer.as_str())];
    let summary = || {
        let r = http::get(&format!("{}/api/v1/apps", serve.url()), &auth).ok()?;
        r.json().as_array()?.iter().find(|a| a["name"] == "web").cloned()
    };
    let app = poll_described(
        "the app is assessed",
        Duration::from_secs(60),
        || summary().filter(|a| a["violations"].as_array().is_some_and(|v| !v.is_empty())),
        || format!("last seen: {:?}", summary()),
    );
    assert!(
        app["heldBack"]
            .as_str()
            .unwrap_or_default()
            .contains("denied by policy"),
        "{app}"
    );
    assert_eq!(app["violations"][0]["object"]["kind"], "Deployment", "{app}");
    // Told once: a sync-failed notification naming the object, not one per refresh.
    let first = poll("the sync-failed notification", Duration::from_secs(30), || {
        received.lock().unwrap().first().cloned()
    });
    assert!(
        first.contains("denied by policy") && first.contains("Deployment/web"),
        "{first}"
    );
    let r = http::post(&format!("{}/api/v1/apps/web/refresh", serve.url()), &auth, b"").unwrap();
    assert!(r.status < 300, "{}", r.text());
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        received.lock().unwrap().len(),
        1,
        "one notification per denied revision"
    );
    assert!(w.object("Deployment", "web").is_none(), "a denied app is not synced");
}

/// A loopback HTTP receiver recording request bodies; returns its URL.
fn receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut len = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).is_ok() {
                sink.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
            }
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, bodies)
}

/// `driftless validate`, as a CI job runs it on a pull request's checkout.
#[test]
fn validate_exit_codes_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    let policy = dir.path().join("policy");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::create_dir_all(&policy).unwrap();
    std::fs::write(policy.join("images.rego"), NO_LATEST).unwrap();
    std::fs::write(app.join("deployment.yaml"), deployment("nginx:1.27")).unwrap();
    std::fs::write(app.join("config.yaml"), CM).unwrap();
    let validate = |extra: &[&str]| {
        Command::new(BIN)
            .arg("validate")
            .arg(&app)
            .arg("--policy")
            .arg(&policy)
            .args(extra)
            .env_remove("SOPS_AGE_KEY_FILE")
            .output()
            .unwrap()
    };

    let out = validate(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("warn"),
        "warnings shown: {}",
        text(&out)
    );

    std::fs::write(app.join("deployment.yaml"), deployment("nginx:latest")).unwrap();
    let out = validate(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Deployment/web") && stdout.contains("latest tag"),
        "{stdout}"
    );

    let out = validate(&["--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["denied"], true, "{v}");
    assert!(
        v["violations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["objectName"] == "Deployment/web")
    );

    let junit = dir.path().join("report.xml");
    let out = validate(&["--format", "junit", "--junit", junit.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.starts_with("<?xml") && xml.contains("<failure"), "{xml}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), xml);

    // Baselines work without a policy directory; structural errors are findings.
    std::fs::write(
        app.join("deployment.yaml"),
        deployment("nginx:1.27").replace("replicas: 1", "replicas: -3"),
    )
    .unwrap();
    let out = validate(&["--baseline", "all"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("[structure]"),
        "{}",
        text(&out)
    );

    // Errors: a missing path, a broken policy, an unknown baseline.
    let out = Command::new(BIN)
        .args(["validate", "/nonexistent/path"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    std::fs::write(policy.join("broken.rego"), "package main\n\ndeny contains msg if {\n").unwrap();
    let out = validate(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("broken.rego"),
        "{}",
        text(&out)
    );
    std::fs::remove_file(policy.join("broken.rego")).unwrap();
    let out = validate(&["--baseline", "no-such-thing"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn validate_checks_the_signature_of_head_and_sops_files() {
    let dir = tempfile::tempdir().unwrap();
    let repo = GitRepo::new();
    repo.write("app/config.yaml", CM);
    repo.commit("unsigned");
    let (key, public) = ssh_key(dir.path(), "ci");
    let app = repo.work_dir().join("app");
    let run = |extra: &[&str], env: &[(&str, &str)]| {
        Command::new(BIN)
            .arg("validate")
            .arg(&app)
            .args(extra)
            .env_remove("SOPS_AGE_KEY_FILE")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let out = run(&["--verify-key", &public], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("signature"),
        "{}",
        text(&out)
    );
    signed_commit(&repo, &key, "signed");
    let out = run(&["--verify-key", &public], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // SOPS: checked when a key is available, a wrong key is a finding.
    let (age_key, recipient) = age_keygen(dir.path());
    std::fs::write(app.join("secret.yaml"), encrypt_secret(&recipient, "v4lidate-secret")).unwrap();
    let out = run(&[], &[("SOPS_AGE_KEY_FILE", age_key.to_str().unwrap())]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let (other_key, _) = age_keygen(&other);
    let out = run(&[], &[("SOPS_AGE_KEY_FILE", other_key.to_str().unwrap())]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("[sops]"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("v4lidate-secret"));
}

/// A kustomization's `secretGenerator` reading a SOPS-encrypted dotenv file: decrypted in
/// the private checkout before `kustomize build` runs.
#[test]
fn sops_dotenv_files_feed_kustomize_secret_generators() {
    const TOKEN_VALUE: &str = "k7s-generator-t0ken";
    let w = World::new();
    let (key, recipient) = age_keygen(w.dir.path());
    let env = driftless_sops::encrypt(
        format!("TOKEN={TOKEN_VALUE}\n").as_bytes(),
        driftless_sops::Format::Dotenv,
        &driftless_sops::EncryptOptions {
            age_recipients: vec![recipient],
            ..Default::default()
        },
    )
    .unwrap();
    w.repo
        .write(
            "app/kustomization.yaml",
            "resources: [config.yaml]\nsecretGenerator:\n- name: creds\n  envs: [creds.env]\ngeneratorOptions: {disableNameSuffixHash: true}\n",
        )
        .write("app/config.yaml", CM)
        .write("app/creds.env", std::str::from_utf8(&env).unwrap());
    w.repo.commit("generator");
    w.app("", &format!("  decryption:\n    keyFile: {}\n", key.display()));
    let out = w.run(&["sync", "web"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(TOKEN_VALUE));
    let secret = w.object("Secret", "creds").expect("generated Secret");
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["TOKEN"].as_str().unwrap())
        .unwrap();
    assert_eq!(token, TOKEN_VALUE.as_bytes());
}

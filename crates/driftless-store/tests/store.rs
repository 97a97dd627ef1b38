//! Integration tests of the store against real SQLite files in temporary directories.

use std::path::Path;
use std::sync::Arc;

use driftless_core::{ObjectRef, Revision};
use driftless_store::*;
use serde_json::{Value, json};

fn revision(commit: &str) -> Revision {
    Revision {
        commit: commit.to_owned(),
        requested_ref: "main".to_owned(),
        resolved_ref: "refs/heads/main".to_owned(),
        author: "Dev <dev@example.com>".to_owned(),
        message: "change".to_owned(),
        time: 1_700_000_000,
    }
}

fn obj(kind: &str, ns: Option<&str>, name: &str) -> ObjectRef {
    ObjectRef {
        group: if kind == "Deployment" { "apps" } else { "" }.to_owned(),
        kind: kind.to_owned(),
        namespace: ns.map(str::to_owned),
        name: name.to_owned(),
    }
}

fn new_sync(app: &str, commit: &str, manifests: Value) -> NewSync {
    NewSync {
        app: app.to_owned(),
        revision: revision(commit),
        trigger: "cli".to_owned(),
        manifests_digest: format!("sha256:{commit}"),
        rendered_manifests: manifests,
        started_at: 1_700_000_100,
    }
}

fn succeeded(results: Vec<ObjectResult>) -> Outcome {
    Outcome {
        outcome: SyncOutcome::Succeeded,
        plan_summary: json!({"create": results.len()}),
        results,
        message: "synced".to_owned(),
        finished_at: 1_700_000_200,
    }
}

fn open(dir: &Path) -> Store {
    Store::open(dir).expect("open store")
}

#[test]
fn store_is_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
}

#[test]
fn begin_then_finish_roundtrips() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = store.begin_sync(&new_sync("web", "aaaaaaa1", json!([]))).unwrap();

    let running = store.get_sync("web", id).unwrap();
    assert_eq!(running.outcome, SyncOutcome::Running);
    assert_eq!(running.finished_at, None);
    assert_eq!(running.revision, revision("aaaaaaa1"));
    assert_eq!(running.trigger, "cli");
    assert_eq!(running.pid, std::process::id());

    let results = vec![
        ObjectResult {
            object: obj("Deployment", Some("prod"), "web"),
            action: "create".to_owned(),
            result: ApplyResult::Created,
            message: String::new(),
        },
        ObjectResult {
            object: obj("Namespace", None, "prod"),
            action: "update".to_owned(),
            result: ApplyResult::Unchanged,
            message: "no change".to_owned(),
        },
    ];
    store.finish_sync(id, succeeded(results.clone())).unwrap();

    let done = store.get_sync("web", id).unwrap();
    assert_eq!(done.outcome, SyncOutcome::Succeeded);
    assert_eq!(done.results, results);
    assert_eq!(done.plan_summary, json!({"create": 2}));
    assert_eq!(done.message, "synced");
    assert_eq!(done.finished_at, Some(1_700_000_200));
    assert_eq!(done.manifests_digest, "sha256:aaaaaaa1");
}

#[test]
fn finish_refuses_unknown_running_and_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = store.begin_sync(&new_sync("web", "c1", json!([]))).unwrap();

    let mut running = succeeded(vec![]);
    running.outcome = SyncOutcome::Running;
    assert!(matches!(store.finish_sync(id, running), Err(Error::Invalid { .. })));
    store.finish_sync(id, succeeded(vec![])).unwrap();
    let again = store.finish_sync(id, succeeded(vec![])).unwrap_err();
    assert!(matches!(again, Error::AlreadyFinished { .. }), "{again}");
    assert!(again.to_string().contains("app web"), "{again}");
    assert!(matches!(
        store.finish_sync(SyncId(999), succeeded(vec![])),
        Err(Error::UnknownSync { id: SyncId(999) })
    ));
    let missing = store.get_sync("other-app", id).unwrap_err();
    assert!(matches!(missing, Error::SyncNotFound { .. }));
    assert_eq!(missing.to_string(), format!("app other-app: sync {id} not found"));
    assert!(matches!(
        store.begin_sync(&new_sync(" ", "c1", json!([]))),
        Err(Error::Invalid { .. })
    ));
}

#[test]
fn history_is_newest_first_limited_and_per_app() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut web_ids = Vec::new();
    for i in 0..5 {
        let id = store.begin_sync(&new_sync("web", &format!("c{i}"), json!([]))).unwrap();
        store.finish_sync(id, succeeded(vec![])).unwrap();
        web_ids.push(id);
        store.begin_sync(&new_sync("api", &format!("c{i}"), json!([]))).unwrap();
    }
    let history = store.history("web", 3).unwrap();
    let ids: Vec<SyncId> = history.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![web_ids[4], web_ids[3], web_ids[2]]);
    assert!(history.iter().all(|e| e.app == "web"));
    assert_eq!(store.history("web", 100).unwrap().len(), 5);
    assert_eq!(store.history("api", 100).unwrap().len(), 5);
    assert!(store.history("web", 0).unwrap().is_empty());
    assert!(store.history("nobody", 10).unwrap().is_empty());
    // Ids are store-wide and increasing.
    assert!(web_ids.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn sync_left_running_by_a_dropped_store_is_interrupted_at_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let store = open(dir.path());
        store.begin_sync(&new_sync("web", "c1", json!([]))).unwrap()
        // Dropped without finish_sync: the process "crashed" here.
    };
    let store = open(dir.path());
    assert_eq!(
        store.recovered_at_open(),
        &[InterruptedSync {
            app: "web".to_owned(),
            id,
            pid: std::process::id()
        }]
    );
    let entry = store.get_sync("web", id).unwrap();
    assert_eq!(entry.outcome, SyncOutcome::Interrupted);
    assert!(entry.finished_at.is_some());
    assert!(entry.message.contains("interrupted"), "{}", entry.message);
    // Still in history: no gap.
    assert_eq!(store.history("web", 10).unwrap()[0].id, id);
    // Nothing more to recover.
    assert!(store.mark_interrupted().unwrap().is_empty());
    // A late finish records the real outcome.
    store.finish_sync(id, succeeded(vec![])).unwrap();
    assert_eq!(store.get_sync("web", id).unwrap().outcome, SyncOutcome::Succeeded);
}

#[test]
fn a_live_handles_running_sync_is_not_interrupted_by_another_handle() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = open(dir.path());
    let id = daemon.begin_sync(&new_sync("web", "c1", json!([]))).unwrap();

    let cli = open(dir.path());
    assert!(cli.recovered_at_open().is_empty());
    assert!(cli.mark_interrupted().unwrap().is_empty());
    assert!(daemon.mark_interrupted().unwrap().is_empty());
    assert_eq!(cli.get_sync("web", id).unwrap().outcome, SyncOutcome::Running);

    drop(daemon);
    let found = cli.mark_interrupted().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, id);
    assert_eq!(cli.get_sync("web", id).unwrap().outcome, SyncOutcome::Interrupted);
}

/// Child half of [`killed_process_leaves_an_interrupted_entry`]: runs only when the parent
/// re-executes this test binary with `DRIFTLESS_STORE_CHILD_DIR` set.
#[test]
fn child_process_begins_a_sync_and_waits_to_be_killed() {
    let Ok(dir) = std::env::var("DRIFTLESS_STORE_CHILD_DIR") else {
        return;
    };
    let store = open(Path::new(&dir));
    let id = store.begin_sync(&new_sync("web", "c-killed", json!([]))).unwrap();
    println!("BEGUN {}", id.0);
    use std::io::Write;
    std::io::stdout().flush().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(120));
}

#[test]
fn killed_process_leaves_an_interrupted_entry() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    /// Kills the child if an assertion fails first, so it does not linger.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_begins_a_sync_and_waits_to_be_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DRIFTLESS_STORE_CHILD_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().unwrap();
    let mut id = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        // The harness may print "test <name> ... " on the same line first.
        if let Some((_, rest)) = line.split_once("BEGUN ") {
            id = Some(SyncId(rest.trim().parse().unwrap()));
            break;
        }
    }
    let id = id.expect("child began a sync");

    // While the child lives, its sync stays running.
    let store = open(dir.path());
    assert!(store.recovered_at_open().is_empty());
    assert_eq!(store.get_sync("web", id).unwrap().outcome, SyncOutcome::Running);

    child.0.kill().unwrap(); // SIGKILL: no destructor runs, the lock file stays behind
    child.0.wait().unwrap();

    let found = store.mark_interrupted().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].id, id);
    assert_ne!(found[0].pid, std::process::id());
    assert_eq!(store.get_sync("web", id).unwrap().outcome, SyncOutcome::Interrupted);
    // The dead owner's lock file was swept.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("owners"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(leftovers.len(), 1, "only our own lock file remains");
}

#[test]
fn inventory_replaces_sorts_and_dedups() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert!(store.inventory("web").unwrap().is_empty());
    assert!(store.inventory_record("web").unwrap().is_none());

    let first = vec![
        obj("Deployment", Some("prod"), "web"),
        obj("Namespace", None, "prod"),
        obj("Service", Some("prod"), "web"),
        obj("Service", Some("prod"), "web"),
    ];
    store.save_inventory("web", &first, &revision("c1")).unwrap();
    let mut expected = first[..3].to_vec();
    expected.sort();
    assert_eq!(store.inventory("web").unwrap(), expected);

    let second = vec![obj("ConfigMap", Some("prod"), "settings")];
    store.save_inventory("web", &second, &revision("c2")).unwrap();
    let record = store.inventory_record("web").unwrap().unwrap();
    assert_eq!(record.objects, second);
    assert_eq!(record.revision.commit, "c2");

    // Apps are independent.
    store.save_inventory("api", &first, &revision("c9")).unwrap();
    assert_eq!(store.inventory("web").unwrap(), second);

    // An empty inventory is a saved, empty inventory.
    store.save_inventory("web", &[], &revision("c3")).unwrap();
    assert!(store.inventory("web").unwrap().is_empty());
    assert!(store.inventory_record("web").unwrap().is_some());
}

#[test]
fn failed_inventory_save_leaves_the_old_inventory_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut old = vec![
        obj("Service", Some("prod"), "web"),
        obj("Deployment", Some("prod"), "web"),
    ];
    old.sort();
    store.save_inventory("web", &old, &revision("c1")).unwrap();

    // The bad entry comes after good ones: the delete and the first inserts already ran
    // inside the transaction when it is rejected.
    let bad = vec![obj("ConfigMap", Some("prod"), "a"), obj("ConfigMap", Some("prod"), "")];
    let err = store.save_inventory("web", &bad, &revision("c2")).unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("app web"), "{err}");

    let record = store.inventory_record("web").unwrap().unwrap();
    assert_eq!(record.objects, old);
    assert_eq!(record.revision.commit, "c1");
    // Also as seen by another process.
    assert_eq!(open(dir.path()).inventory("web").unwrap(), old);
}

#[test]
fn pins_set_replace_and_clear() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let id = store.begin_sync(&new_sync("web", commit, json!([]))).unwrap();
    store.finish_sync(id, succeeded(vec![])).unwrap();
    let other = store
        .begin_sync(&new_sync("web", "fedcba9876543210", json!([])))
        .unwrap();

    assert_eq!(store.pin_of("web").unwrap(), None);
    let pin = store.pin("web", id, "0123456").unwrap();
    assert_eq!(pin.commit, commit, "a prefix is expanded to the full id");
    assert_eq!(store.pin_of("web").unwrap(), Some(pin));

    let replaced = store.pin("web", other, "fedcba9876543210").unwrap();
    assert_eq!(store.pin_of("web").unwrap(), Some(replaced));

    assert!(matches!(store.pin("web", id, "badc0ffee"), Err(Error::Invalid { .. })));
    assert!(matches!(store.pin("api", id, commit), Err(Error::SyncNotFound { .. })));
    assert!(store.unpin("web").unwrap());
    assert!(!store.unpin("web").unwrap());
    assert_eq!(store.pin_of("web").unwrap(), None);
}

const PASSWORD: &str = "hunter2-very-secret";
const TOKEN: &str = "tok_live_ABCDEF123456";

fn manifests_with_secret() -> Value {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(PASSWORD);
    json!([
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": "db", "namespace": "prod"},
         "data": {"password": encoded},
         "stringData": {"token": TOKEN}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "settings", "namespace": "prod"},
         "data": {"mode": "fast"}}
    ])
}

fn assert_no_secret(text: &str) {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(PASSWORD);
    for secret in [PASSWORD, TOKEN, encoded.as_str()] {
        assert!(!text.contains(secret), "secret {secret:?} leaked in: {text}");
    }
}

#[test]
fn secret_values_never_appear_in_history_output() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let manifests = manifests_with_secret();
    let id = store.begin_sync(&new_sync("web", "c1", manifests.clone())).unwrap();
    // The engine's outcome echoes the secret everywhere it could: a diff of the Secret
    // object, a text diff line, an apply error, the sync message.
    store
        .finish_sync(
            id,
            Outcome {
                outcome: SyncOutcome::Failed,
                plan_summary: json!({
                    "diff": [{"before": null, "after": manifests[0].clone()}],
                    "text": format!("+  token: {TOKEN}\n+  password: {PASSWORD}"),
                }),
                results: vec![ObjectResult {
                    object: obj("Secret", Some("prod"), "db"),
                    action: "create".to_owned(),
                    result: ApplyResult::Failed,
                    message: format!("admission webhook rejected value {PASSWORD:?}"),
                }],
                message: format!("failed: token {TOKEN} invalid"),
                finished_at: 1_700_000_300,
            },
        )
        .unwrap();

    let entry = store.get_sync("web", id).unwrap();
    assert_no_secret(&serde_json::to_string(&entry).unwrap());
    assert_no_secret(&format!("{entry:?}"));
    assert_no_secret(&format!("{:?}", store.history("web", 10).unwrap()));
    assert!(entry.results[0].message.contains(REDACTED));
    // The masked Secret still shows which keys it has, and a fingerprint per value.
    let after = &entry.plan_summary["diff"][0]["after"];
    assert!(after["data"]["password"].as_str().unwrap().starts_with("<redacted:"));

    let shown = store.redacted_manifests("web", id).unwrap();
    assert_no_secret(&shown.to_string());
    assert_eq!(shown[1]["data"]["mode"], "fast", "ConfigMaps are not masked");

    let rollback = store.rollback_manifests("web", id).unwrap();
    assert_eq!(rollback.manifests, manifests, "rollback gets the real values");
    assert_eq!(rollback.revision.commit, "c1");
    assert_no_secret(&format!("{rollback:?}"));
}

#[test]
fn same_secret_value_gives_same_fingerprint_across_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = store
        .begin_sync(&new_sync("web", "c1", manifests_with_secret()))
        .unwrap();
    let b = store
        .begin_sync(&new_sync("web", "c2", manifests_with_secret()))
        .unwrap();
    let mut changed = manifests_with_secret();
    changed[0]["stringData"]["token"] = json!("another-token-value");
    let c = store.begin_sync(&new_sync("web", "c3", changed)).unwrap();
    let token = |id| store.redacted_manifests("web", id).unwrap()[0]["stringData"]["token"].clone();
    assert_eq!(token(a), token(b));
    assert_ne!(token(a), token(c));
}

#[test]
fn audit_is_append_only_and_masked() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for action in ["sync", "pin", "unpin"] {
        store
            .audit(&AuditEvent {
                actor: "alice".to_owned(),
                action: action.to_owned(),
                app: Some("web".to_owned()),
                detail: json!({"object": manifests_with_secret()[0].clone()}),
            })
            .unwrap();
    }
    let log = store.audit_log(2).unwrap();
    let actions: Vec<&str> = log.iter().map(|r| r.event.action.as_str()).collect();
    assert_eq!(actions, ["unpin", "pin"]);
    assert!(log[0].seq > log[1].seq);
    assert_no_secret(&format!("{log:?}"));

    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    let update = conn.execute("UPDATE audit SET actor = 'mallory'", []);
    assert!(update.is_err(), "audit rows cannot be changed");
    assert!(conn.execute("DELETE FROM audit", []).is_err());
    assert_eq!(store.audit_log(10).unwrap().len(), 3);
}

#[test]
fn two_handles_write_concurrently_from_many_threads() {
    let dir = tempfile::tempdir().unwrap();
    // Two handles on one file stand in for the CLI and the daemon: separate connections,
    // separate liveness locks, as in two processes.
    let stores = [Arc::new(open(dir.path())), Arc::new(open(dir.path()))];
    let mut threads = Vec::new();
    for (n, store) in stores.iter().cycle().take(6).enumerate() {
        let store = Arc::clone(store);
        threads.push(std::thread::spawn(move || {
            let app = format!("app{}", n % 3);
            let mut ids = Vec::new();
            for i in 0..20 {
                let id = store
                    .begin_sync(&new_sync(&app, &format!("c{n}-{i}"), json!([])))
                    .unwrap();
                store
                    .save_inventory(&app, &[obj("Namespace", None, &app)], &revision("c"))
                    .unwrap();
                store.finish_sync(id, succeeded(vec![])).unwrap();
                store.history(&app, 5).unwrap();
                ids.push(id);
            }
            ids
        }));
    }
    let mut all: Vec<SyncId> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 120, "every sync got its own id");
    for app in ["app0", "app1", "app2"] {
        let history = stores[1].history(app, 1000).unwrap();
        assert_eq!(history.len(), 40);
        assert!(history.iter().all(|e| e.outcome == SyncOutcome::Succeeded));
    }
}

#[test]
fn schema_version_is_set_and_newer_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    }
    // Reopening does not migrate again.
    assert_eq!(open(dir.path()).schema_version().unwrap(), SCHEMA_VERSION);

    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    let journal: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!(journal, "wal");
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
    drop(conn);
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::SchemaTooNew { .. }), "{err}");
    assert!(err.to_string().contains("driftless.db"), "{err}");
}

#[cfg(unix)]
#[test]
fn database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let _store = open(&data);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join(DB_FILE)), 0o600);
}

#[test]
fn open_reports_an_unusable_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = Store::open(&file).unwrap_err();
    assert!(matches!(err, Error::Directory { .. }), "{err}");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}

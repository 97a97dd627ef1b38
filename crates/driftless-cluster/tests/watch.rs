//! DriftWatcher against kubesim: changes by other clients are reported once, the starting
//! state and status-only changes are not, one watch per kind, reconnection after dropped
//! watches.

mod common;

use std::time::Duration;

use common::{Env, env, env_with};
use driftless_cluster::{APP_LABEL, ClusterClient, DriftEvent, DriftKind, DriftWatcher, Resolved};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kubesim::{Config, FaultConfig};
use serde_json::{Value, json};
use tokio::sync::mpsc::Receiver;

impl Env {
    /// A second, independent connection: "another client" changing things.
    async fn other(&self) -> ClusterClient {
        ClusterClient::connect(Some(&self.kubeconfig), None, false)
            .await
            .expect("connect")
    }

    fn watch_count(&self, resource: &str) -> u64 {
        self.sim
            .stats()
            .by_verb
            .get("watch")
            .and_then(|m| m.get(resource))
            .copied()
            .unwrap_or(0)
    }
}

fn configmap(name: &str, app: Option<&str>, data: Value) -> Value {
    let mut cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": data
    });
    if let Some(app) = app {
        cm["metadata"]["labels"] = json!({APP_LABEL: app});
    }
    cm
}

fn deployment(name: &str, app: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": {APP_LABEL: app}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}
        }
    })
}

async fn apply(cluster: &ClusterClient, r: &Resolved, obj: &Value) {
    cluster.apply(r, obj, false, true).await.expect("apply");
}

/// Starts watching `kinds` and waits until each has listed (so later changes are reported).
async fn watcher(e: &Env, kinds: &[&Resolved]) -> (DriftWatcher, Receiver<DriftEvent>) {
    let (w, rx) = DriftWatcher::new(e.cluster.clone());
    for k in kinds {
        w.watch_kind(k);
    }
    wait_ready(&w, kinds).await;
    (w, rx)
}

async fn wait_ready(w: &DriftWatcher, kinds: &[&Resolved]) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !kinds.iter().all(|k| w.is_ready(k)) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("watchers list within 10s");
}

async fn next(rx: &mut Receiver<DriftEvent>) -> DriftEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a drift event within 5s")
        .expect("channel open")
}

/// Asserts nothing more arrives within `wait`.
async fn quiet(rx: &mut Receiver<DriftEvent>, wait: Duration) {
    if let Ok(Some(ev)) = tokio::time::timeout(wait, rx.recv()).await {
        panic!("unexpected drift event {ev:?}");
    }
}

#[tokio::test]
async fn labelled_change_is_reported_once_and_unlabelled_not_at_all() {
    let e = env().await;
    let cm = e.cluster.resolve("v1", "ConfigMap").await.unwrap();
    apply(&e.cluster, &cm, &configmap("managed", Some("shop"), json!({"k": "1"}))).await;
    apply(&e.cluster, &cm, &configmap("stray", None, json!({"k": "1"}))).await;
    let (w, mut rx) = watcher(&e, &[&cm]).await;
    assert_eq!(w.kinds(), ["ConfigMap"]);

    let other = e.other().await;
    // Unlabelled first: had it been reported, it would arrive before the labelled change.
    apply(&other, &cm, &configmap("stray", None, json!({"k": "2"}))).await;
    apply(&other, &cm, &configmap("managed", Some("shop"), json!({"k": "2"}))).await;
    let ev = next(&mut rx).await;
    assert_eq!(ev.kind, DriftKind::Applied);
    assert_eq!(ev.app, "shop");
    assert_eq!(ev.object.kind, "ConfigMap");
    assert_eq!(ev.object.group, "");
    assert_eq!(ev.object.namespace.as_deref(), Some("default"));
    assert_eq!(ev.object.name, "managed");
    quiet(&mut rx, Duration::from_millis(800)).await;
}

#[tokio::test]
async fn objects_present_at_start_are_not_drift() {
    let e = env().await;
    let cm = e.cluster.resolve("v1", "ConfigMap").await.unwrap();
    for i in 0..5 {
        apply(
            &e.cluster,
            &cm,
            &configmap(&format!("pre-{i}"), Some("shop"), json!({})),
        )
        .await;
    }
    let (_w, mut rx) = watcher(&e, &[&cm]).await;
    // Reapplying identical content changes nothing worth reporting either.
    apply(&e.other().await, &cm, &configmap("pre-0", Some("shop"), json!({}))).await;
    apply(&e.other().await, &cm, &configmap("later", Some("shop"), json!({}))).await;
    let ev = next(&mut rx).await;
    assert_eq!((ev.object.name.as_str(), ev.kind), ("later", DriftKind::Applied));
    quiet(&mut rx, Duration::from_millis(800)).await;
}

#[tokio::test]
async fn delete_is_reported() {
    let e = env().await;
    let cm = e.cluster.resolve("v1", "ConfigMap").await.unwrap();
    apply(&e.cluster, &cm, &configmap("doomed", Some("shop"), json!({}))).await;
    let (_w, mut rx) = watcher(&e, &[&cm]).await;
    assert!(e.other().await.delete(&cm, Some("default"), "doomed").await.unwrap());
    let ev = next(&mut rx).await;
    assert_eq!((ev.object.name.as_str(), ev.kind), ("doomed", DriftKind::Deleted));
    assert_eq!(ev.app, "shop");
}

#[tokio::test]
async fn status_only_changes_are_suppressed() {
    let e = env().await;
    let deploy = e.cluster.resolve("apps/v1", "Deployment").await.unwrap();
    let (_w, mut rx) = watcher(&e, &[&deploy]).await;

    // Created after the watch started: reported once. kubesim's simulated controller then
    // writes its status (after ~300 ms), which is not drift.
    apply(&e.cluster, &deploy, &deployment("web", "shop")).await;
    let ev = next(&mut rx).await;
    assert_eq!((ev.object.name.as_str(), ev.kind), ("web", DriftKind::Applied));
    assert_eq!(ev.object.group, "apps");
    tokio::time::timeout(Duration::from_secs(5), async {
        while e
            .sim
            .object("apps", "deployments", "default", "web")
            .and_then(|d| d.pointer("/status/readyReplicas").cloned())
            .is_none()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("kubesim's controller reports the Deployment ready");

    // Another client patches /status directly.
    let api: Api<DynamicObject> =
        Api::namespaced_with(e.other().await.kube_client().clone(), "default", &deploy.api_resource);
    let before = e.sim.object("apps", "deployments", "default", "web").unwrap();
    api.patch_status(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"observedGeneration": 41, "conditions": []}})),
    )
    .await
    .expect("status patch");
    let after = e.sim.object("apps", "deployments", "default", "web").unwrap();
    assert_ne!(
        before.pointer("/metadata/resourceVersion"),
        after.pointer("/metadata/resourceVersion"),
        "the status patch bumped resourceVersion"
    );
    quiet(&mut rx, Duration::from_millis(1500)).await;

    // A spec change still is drift (and the controller's status update after it is not).
    let mut scaled = deployment("web", "shop");
    scaled["spec"]["replicas"] = json!(3);
    apply(&e.other().await, &deploy, &scaled).await;
    let ev = next(&mut rx).await;
    assert_eq!((ev.object.name.as_str(), ev.kind), ("web", DriftKind::Applied));
    quiet(&mut rx, Duration::from_millis(1500)).await;
}

#[tokio::test]
async fn one_watch_per_kind_however_often_asked() {
    let e = env().await;
    let cm = e.cluster.resolve("v1", "ConfigMap").await.unwrap();
    let deploy = e.cluster.resolve("apps/v1", "Deployment").await.unwrap();
    for i in 0..3 {
        apply(&e.cluster, &cm, &configmap(&format!("c{i}"), Some("shop"), json!({}))).await;
        apply(&e.cluster, &deploy, &deployment(&format!("d{i}"), "shop")).await;
    }
    let (w, mut rx) = watcher(&e, &[&cm, &deploy]).await;
    for _ in 0..10 {
        w.watch_kind(&cm);
        w.watch_kind(&deploy);
    }
    assert_eq!(w.kinds(), ["ConfigMap", "Deployment.apps"]);
    apply(&e.cluster, &cm, &configmap("c1", Some("shop"), json!({"k": "v"}))).await;
    let ev = next(&mut rx).await;
    assert_eq!((ev.object.kind.as_str(), ev.object.name.as_str()), ("ConfigMap", "c1"));
    assert_eq!(e.watch_count("configmaps"), 1, "{:?}", e.sim.stats().by_verb);
    assert_eq!(e.watch_count("deployments.apps"), 1, "{:?}", e.sim.stats().by_verb);

    w.shutdown();
    assert!(w.kinds().is_empty());
    w.watch_kind(&cm);
    assert!(w.kinds().is_empty(), "shutdown is final");
    // The receiver ends once the watchers are gone.
    let end = tokio::time::timeout(Duration::from_secs(5), async { while rx.recv().await.is_some() {} }).await;
    assert!(end.is_ok(), "the receiver closes after shutdown");
}

#[tokio::test]
async fn reconnects_after_watches_are_dropped() {
    let e = env().await;
    let cm = e.cluster.resolve("v1", "ConfigMap").await.unwrap();
    apply(&e.cluster, &cm, &configmap("a", Some("shop"), json!({"k": "1"}))).await;
    let (_w, mut rx) = watcher(&e, &[&cm]).await;
    assert_eq!(e.watch_count("configmaps"), 1);

    e.sim.drop_watches();
    tokio::time::timeout(Duration::from_secs(10), async {
        while e.watch_count("configmaps") < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the watcher watches again after its connection was dropped");
    apply(&e.other().await, &cm, &configmap("a", Some("shop"), json!({"k": "2"}))).await;
    let ev = next(&mut rx).await;
    assert_eq!((ev.object.name.as_str(), ev.kind), ("a", DriftKind::Applied));

    // A change made while the connection is down is not lost either.
    e.sim.drop_watches();
    e.cluster.delete(&cm, Some("default"), "a").await.unwrap();
    let ev = next(&mut rx).await;
    assert_eq!((ev.object.name.as_str(), ev.kind), ("a", DriftKind::Deleted));
    quiet(&mut rx, Duration::from_millis(500)).await;
}

#[tokio::test]
async fn a_relist_after_expiry_reports_only_what_changed_meanwhile() {
    // Little watch history: after a few changes, resuming from an old resourceVersion is
    // 410 Gone and the watcher has to list again.
    let e = env_with(Config {
        history_cap: 5,
        ..Config::default()
    })
    .await;
    let cm = e.cluster.resolve("v1", "ConfigMap").await.unwrap();
    for name in ["same", "changed", "gone"] {
        apply(&e.cluster, &cm, &configmap(name, Some("shop"), json!({"k": "1"}))).await;
    }
    let (_w, mut rx) = watcher(&e, &[&cm]).await;
    let lists_before = e.sim.stats().by_verb["list"]["configmaps"];

    // Watches fail (the watcher backs off) while things change and history runs out.
    e.sim.set_faults(FaultConfig {
        error_rate: 1.0,
        verbs: vec!["watch".into()],
        ..FaultConfig::default()
    });
    e.sim.drop_watches();
    apply(&e.cluster, &cm, &configmap("changed", Some("shop"), json!({"k": "2"}))).await;
    e.cluster.delete(&cm, Some("default"), "gone").await.unwrap();
    apply(&e.cluster, &cm, &configmap("added", Some("shop"), json!({}))).await;
    for i in 0..10 {
        apply(&e.cluster, &cm, &configmap(&format!("noise-{i}"), None, json!({}))).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    e.sim.set_faults(FaultConfig::default());

    let mut seen = Vec::new();
    for _ in 0..3 {
        let ev = tokio::time::timeout(Duration::from_secs(15), rx.recv())
            .await
            .expect("relist differences within 15s")
            .unwrap();
        seen.push((ev.object.name, ev.kind));
    }
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        [
            ("added".to_owned(), DriftKind::Applied),
            ("changed".to_owned(), DriftKind::Applied),
            ("gone".to_owned(), DriftKind::Deleted),
        ]
    );
    assert!(
        e.sim.stats().by_verb["list"]["configmaps"] > lists_before,
        "the watcher listed again"
    );
    quiet(&mut rx, Duration::from_millis(500)).await;
}

#[tokio::test]
async fn a_lagging_consumer_gets_coalesced_events() {
    let e = env().await;
    let cm = e.cluster.resolve("v1", "ConfigMap").await.unwrap();
    apply(&e.cluster, &cm, &configmap("a", Some("shop"), json!({"n": "0"}))).await;
    let (w, mut rx) = DriftWatcher::with_capacity(e.cluster.clone(), 1, 100);
    w.watch_kind(&cm);
    wait_ready(&w, &[&cm]).await;
    // Nobody reads while 30 changes happen to one object and one to another.
    for n in 1..=30 {
        apply(
            &e.cluster,
            &cm,
            &configmap("a", Some("shop"), json!({"n": n.to_string()})),
        )
        .await;
    }
    apply(&e.cluster, &cm, &configmap("b", Some("shop"), json!({}))).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut got = Vec::new();
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
        got.push(ev.object.name);
    }
    assert!(
        got.contains(&"a".to_owned()) && got.contains(&"b".to_owned()),
        "{got:?}"
    );
    assert!(
        got.len() <= 4,
        "changes to one object coalesce while the consumer lags: {got:?}"
    );
}

#[tokio::test]
async fn dropping_the_watcher_stops_its_watches() {
    let e = env().await;
    let cm = e.cluster.resolve("v1", "ConfigMap").await.unwrap();
    let (w, mut rx) = watcher(&e, &[&cm]).await;
    drop(w);
    let end = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
    assert!(matches!(end, Ok(None)), "{end:?}");
}

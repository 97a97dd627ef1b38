//! kube-rs against kubesim: discovery, dynamic objects, server-side apply, watchers — the
//! client driftless itself uses.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::{ApiResource, Discovery, Scope};
use kube::runtime::{WatchStreamExt, watcher};
use kubesim::{Config, KubeSim};
use serde_json::json;

async fn client_for(sim: &KubeSim) -> kube::Client {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&path).unwrap();
    let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

#[tokio::test]
async fn discovery_finds_builtin_and_custom_kinds() {
    let sim = KubeSim::start(Config::default()).await.unwrap();
    let client = client_for(&sim).await;
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let apps = discovery.get("apps").expect("apps group");
    let (deploy, caps) = apps.recommended_kind("Deployment").expect("Deployment");
    assert_eq!(deploy.plural, "deployments");
    assert_eq!(caps.scope, Scope::Namespaced);

    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::erase::<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        >(&()),
    );
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Cluster", "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                 "versions": [{"name": "v1alpha1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    });
    crds.create(&PostParams::default(), &serde_json::from_value(crd).unwrap())
        .await
        .unwrap();
    // Established shortly after creation; then the kind is discoverable.
    let mut found = None;
    for _ in 0..50 {
        let d = Discovery::new(client.clone()).run().await.unwrap();
        if let Some(g) = d.get("example.com") {
            found = g.recommended_kind("Gadget");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (ar, caps) = found.expect("Gadget discoverable after the CRD is established");
    assert_eq!(caps.scope, Scope::Cluster);
    let gadgets: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let g: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "example.com/v1alpha1", "kind": "Gadget", "metadata": {"name": "g1"}, "spec": {"x": 1}}),
    )
    .unwrap();
    gadgets
        .patch("g1", &PatchParams::apply("driftless"), &Patch::Apply(&g))
        .await
        .unwrap();
    let got = gadgets.get("g1").await.unwrap();
    assert_eq!(got.data["spec"]["x"], 1);
}

#[tokio::test]
async fn typed_and_dynamic_crud_with_server_side_apply() {
    let sim = KubeSim::start(Config::default()).await.unwrap();
    let client = client_for(&sim).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}})).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let err = cms.create(&PostParams::default(), &cm).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{err:?}"
    );
    let listed = cms.list(&ListParams::default().labels("x=1")).await.unwrap();
    assert_eq!(listed.items.len(), 1);

    // Another manager changing a field the creator owns conflicts, as on a real cluster.
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v2"}});
    let err = cms
        .patch("a", &PatchParams::apply("driftless"), &Patch::Apply(&applied))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 409 && s.message.contains(".data.k")),
        "{err:?}"
    );
    // SSA with dry-run writes nothing; the real apply does.
    sim.reset_stats();
    let dry = cms
        .patch(
            "a",
            &PatchParams::apply("driftless").dry_run().force(),
            &Patch::Apply(&applied),
        )
        .await
        .unwrap();
    assert_eq!(dry.data.unwrap()["k"], "v2");
    assert_eq!(sim.stats().writes, 0);
    assert_eq!(cms.get("a").await.unwrap().data.unwrap()["k"], "v");
    cms.patch("a", &PatchParams::apply("driftless").force(), &Patch::Apply(&applied))
        .await
        .unwrap();
    assert_eq!(cms.get("a").await.unwrap().data.unwrap()["k"], "v2");
    assert_eq!(sim.stats().writes, 1);

    // Optimistic concurrency: a stale resourceVersion is a 409 Conflict.
    let mut stale = cms.get("a").await.unwrap();
    stale.metadata.resource_version = Some("1".into());
    let err = cms.replace("a", &PostParams::default(), &stale).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 409), "{err:?}");

    cms.delete("a", &DeleteParams::default()).await.unwrap();
    let err = cms.get("a").await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 404), "{err:?}");
}

#[tokio::test]
async fn watcher_sees_changes_and_survives_dropped_connections() {
    let sim = KubeSim::start(Config {
        bookmark_interval: Duration::from_millis(100),
        ..Config::default()
    })
    .await
    .unwrap();
    let client = client_for(&sim).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let stream = watcher(cms.clone(), watcher::Config::default()).applied_objects();
    let mut stream = Box::pin(stream);
    let writer = cms.clone();
    let task = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "w1"}})).unwrap();
        writer.create(&PostParams::default(), &cm).await.unwrap();
    });
    let first = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .expect("event in time")
        .unwrap()
        .unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("w1"));
    task.await.unwrap();

    // After the server drops every watch, the watcher re-watches and keeps delivering.
    sim.drop_watches();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "w2"}})).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let mut names = Vec::new();
    while !names.contains(&"w2".to_owned()) {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("event after reconnect");
        if let Some(Ok(o)) = next {
            names.push(o.metadata.name.unwrap_or_default());
        }
    }
}

#[tokio::test]
async fn watch_from_compacted_resource_version_is_gone() {
    let sim = KubeSim::start(Config {
        history_cap: 5,
        ..Config::default()
    })
    .await
    .unwrap();
    let client = client_for(&sim).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..20 {
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("c{i}")}})).unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    let mut s = cms
        .watch(&kube::api::WatchParams::default(), "2")
        .await
        .unwrap()
        .boxed();
    let ev = tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .unwrap()
        .unwrap();
    match ev {
        Ok(kube::api::WatchEvent::Error(e)) => assert_eq!(e.code, 410),
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 410),
        other => panic!("expected 410 Gone, got {other:?}"),
    }
}

/// One raw HTTP/1.1 request (kube-rs retries 429 and 5xx on its own, which would hide the
/// injected answer); returns the status line and headers plus body.
async fn raw_get(sim: &KubeSim, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn injected_faults_surface_as_status_errors() {
    let sim = KubeSim::start(Config::default()).await.unwrap();
    sim.set_faults(kubesim::FaultConfig {
        throttle_rate: 1.0,
        retry_after_seconds: 2,
        verbs: vec!["list".into()],
        ..Default::default()
    });
    let r = raw_get(&sim, "/api/v1/namespaces/default/configmaps").await;
    assert!(r.starts_with("HTTP/1.1 429"), "{r}");
    assert!(r.to_ascii_lowercase().contains("retry-after: 2"), "{r}");
    assert!(r.contains("\"reason\":\"TooManyRequests\""), "{r}");
    // Only the configured verbs are affected.
    assert!(
        raw_get(&sim, "/api/v1/namespaces/default")
            .await
            .starts_with("HTTP/1.1 200")
    );
    sim.set_faults(kubesim::FaultConfig {
        error_rate: 1.0,
        latency_ms: 50,
        ..Default::default()
    });
    let started = std::time::Instant::now();
    let r = raw_get(&sim, "/api/v1/namespaces/default/configmaps/x").await;
    assert!(r.starts_with("HTTP/1.1 500") && r.contains("InternalError"), "{r}");
    assert!(started.elapsed() >= Duration::from_millis(50));
    sim.set_faults(kubesim::FaultConfig::default());
    assert!(
        raw_get(&sim, "/api/v1/namespaces/default/configmaps")
            .await
            .starts_with("HTTP/1.1 200")
    );
    // The debug endpoint reports counts by verb.
    let stats = raw_get(&sim, "/debug/kubesim/stats").await;
    assert!(stats.contains("\"list\""), "{stats}");
}

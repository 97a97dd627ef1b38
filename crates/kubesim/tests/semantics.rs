//! API semantics beyond what kubectl exercises: status subresource and generation, dry runs on
//! every mutating verb, generateName, deletecollection, size limits, label-selector watches.

use std::time::Duration;

use futures::StreamExt;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::discovery::ApiResource;
use kubesim::{Config, KubeSim};
use serde_json::json;

async fn setup() -> (KubeSim, kube::Client) {
    let sim = KubeSim::start(Config {
        ready_delay: Duration::from_millis(100),
        ..Config::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&path).unwrap();
    let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    (sim, kube::Client::try_from(cfg).unwrap())
}

fn deployments(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
    )
}

fn configmaps(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
    )
}

fn obj(v: serde_json::Value) -> DynamicObject {
    serde_json::from_value(v).unwrap()
}

fn deploy(name: &str, replicas: i64) -> DynamicObject {
    obj(
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}}),
    )
}

#[tokio::test]
async fn spec_changes_bump_generation_status_writes_do_not() {
    let (_sim, client) = setup().await;
    let api = deployments(&client);
    api.create(&PostParams::default(), &deploy("web", 1)).await.unwrap();
    let d = api.get("web").await.unwrap();
    assert_eq!(d.metadata.generation, Some(1));
    // The main endpoint ignores status.
    let mut with_status = d.clone();
    with_status.data["status"] = json!({"replicas": 99});
    let after = api.replace("web", &PostParams::default(), &with_status).await.unwrap();
    assert_ne!(after.data["status"]["replicas"], 99);
    assert_eq!(after.metadata.generation, Some(1), "no spec change, no new generation");
    // A status write does not bump generation.
    let st = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 7}})),
        )
        .await
        .unwrap();
    assert_eq!(st.data["status"]["replicas"], 7);
    assert_eq!(st.metadata.generation, Some(1));
    // A spec change does.
    let st = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(st.metadata.generation, Some(2));
    // And the simulated controller catches up.
    for _ in 0..50 {
        let d = api.get("web").await.unwrap();
        if d.data["status"]["observedGeneration"] == 2 && d.data["status"]["availableReplicas"] == 3 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("deployment never became available at generation 2");
}

#[tokio::test]
async fn dry_run_on_every_mutating_verb_changes_nothing() {
    let (sim, client) = setup().await;
    let api = configmaps(&client);
    let cm = obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}));
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    api.create(&dry, &cm).await.unwrap();
    assert!(api.get_opt("a").await.unwrap().is_none());
    api.create(&PostParams::default(), &cm).await.unwrap();
    let before = sim.object("", "configmaps", "default", "a").unwrap();
    let mut changed = api.get("a").await.unwrap();
    changed.data["data"]["k"] = json!("changed");
    api.replace("a", &dry, &changed).await.unwrap();
    api.patch(
        "a",
        &PatchParams {
            dry_run: true,
            ..Default::default()
        },
        &Patch::Merge(json!({"data": {"k": "x"}})),
    )
    .await
    .unwrap();
    api.delete(
        "a",
        &DeleteParams {
            dry_run: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    api.delete_collection(
        &DeleteParams {
            dry_run: true,
            ..Default::default()
        },
        &ListParams::default(),
    )
    .await
    .unwrap();
    assert_eq!(sim.object("", "configmaps", "default", "a").unwrap(), before);
}

#[tokio::test]
async fn generate_name_delete_collection_and_size_limit() {
    let (_sim, client) = setup().await;
    let api = configmaps(&client);
    for _ in 0..3 {
        let cm = obj(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "job-", "labels": {"batch": "1"}}}),
        );
        let created = api.create(&PostParams::default(), &cm).await.unwrap();
        let name = created.metadata.name.unwrap();
        assert!(name.starts_with("job-") && name.len() == 9, "{name}");
    }
    api.create(
        &PostParams::default(),
        &obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep"}})),
    )
    .await
    .unwrap();
    api.delete_collection(&DeleteParams::default(), &ListParams::default().labels("batch=1"))
        .await
        .unwrap();
    let left: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect();
    assert_eq!(left, vec!["keep".to_owned()]);

    let big = "x".repeat(1024 * 1024 + 600 * 1024);
    let err = api
        .create(
            &PostParams::default(),
            &obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"blob": big}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 413 || s.code == 422),
        "{err:?}"
    );
}

#[tokio::test]
async fn watch_with_label_selector_sees_objects_leave_the_selection() {
    let (_sim, client) = setup().await;
    let api = configmaps(&client);
    let cm = obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w", "labels": {"team": "a"}}}));
    let created = api.create(&PostParams::default(), &cm).await.unwrap();
    let rv = created.metadata.resource_version.unwrap();
    let mut stream = api
        .watch(&WatchParams::default().labels("team=a"), &rv)
        .await
        .unwrap()
        .boxed();
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"team": "b"}}})),
    )
    .await
    .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(ev, WatchEvent::Deleted(_)),
        "leaving the selector is a DELETED event: {ev:?}"
    );
}

#[tokio::test]
async fn unknown_kinds_and_namespaces_are_not_found() {
    let (_sim, client) = setup().await;
    let gadgets: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource {
            group: "example.com".into(),
            version: "v1".into(),
            api_version: "example.com/v1".into(),
            kind: "Gadget".into(),
            plural: "gadgets".into(),
        },
    );
    let err = gadgets.list(&ListParams::default()).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 404), "{err:?}");
    let missing_ns: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "nope",
        &ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
    );
    let err = missing_ns
        .create(
            &PostParams::default(),
            &obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 404 && s.message.contains("namespaces \"nope\" not found")),
        "{err:?}"
    );
}

#[tokio::test]
async fn jobs_complete_or_fail_and_pvcs_bind() {
    let (_sim, client) = setup().await;
    let jobs: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::erase::<k8s_openapi::api::batch::v1::Job>(&()),
    );
    let job = |name: &str, fault: Option<&str>| {
        let mut j = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1.36"}]}}}});
        if let Some(f) = fault {
            j["metadata"]["annotations"] = json!({"kubesim.driftless.dev/fault": f});
        }
        obj(j)
    };
    jobs.create(&PostParams::default(), &job("ok", None)).await.unwrap();
    jobs.create(&PostParams::default(), &job("bad", Some("fail")))
        .await
        .unwrap();
    let pvcs: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::erase::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(&()),
    );
    pvcs.create(&PostParams::default(), &obj(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let cond = |o: &DynamicObject, t: &str| {
        o.data["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == t && c["status"] == "True"))
    };
    assert!(cond(&jobs.get("ok").await.unwrap(), "Complete"));
    assert!(cond(&jobs.get("bad").await.unwrap(), "Failed"));
    assert_eq!(pvcs.get("data").await.unwrap().data["status"]["phase"], "Bound");
}

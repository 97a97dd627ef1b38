//! ClusterClient against kubesim over HTTP(S): kubeconfig loading, discovery, server-side
//! apply, conflicts, retries under injected faults, delete, list.

mod common;

use std::time::Duration;

use common::{env, env_with};
use driftless_cluster::{ClusterClient, ClusterError, FIELD_MANAGER, Resolved};
use kubesim::{Config, FaultConfig};
use serde_json::{Value, json};

fn configmap(name: &str, data: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "labels": {"app.driftless.dev/name": "demo"}},
        "data": data
    })
}

#[tokio::test]
async fn connects_through_a_kubeconfig_file_and_pings() {
    let e = env().await;
    assert_eq!(e.cluster.server(), e.sim.url());
    assert_eq!(e.cluster.context(), Some("kubesim"));
    e.cluster.ping().await.expect("ping");
}

#[tokio::test]
async fn selects_a_context_and_names_the_available_ones_when_it_is_missing() {
    let e = env().await;
    // Add a second context pointing at a dead port and make it current.
    let mut kc: Value = serde_json::from_str(&std::fs::read_to_string(&e.kubeconfig).unwrap()).unwrap();
    kc["clusters"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "dead", "cluster": {"server": "http://127.0.0.1:1"}}));
    kc["contexts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "dead", "context": {"cluster": "dead", "user": "kubesim"}}));
    kc["current-context"] = json!("dead");
    std::fs::write(&e.kubeconfig, serde_json::to_string(&kc).unwrap()).unwrap();

    let current = ClusterClient::connect(Some(&e.kubeconfig), None, false).await.unwrap();
    assert_eq!(current.server(), "http://127.0.0.1:1");
    let chosen = ClusterClient::connect(Some(&e.kubeconfig), Some("kubesim"), false)
        .await
        .unwrap();
    assert_eq!(chosen.server(), e.sim.url());
    chosen.ping().await.expect("the chosen context works");

    let err = ClusterClient::connect(Some(&e.kubeconfig), Some("nope"), false)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ClusterError::Kubeconfig(_)), "{err:?}");
    assert!(msg.contains("\"nope\"") && msg.contains("kubesim, dead"), "{msg}");

    // The dead context: Unreachable, naming the server, and retryable.
    let dead = current.with_retry(driftless_cluster::RetryPolicy::none());
    let err = dead.ping().await.unwrap_err();
    assert!(matches!(err, ClusterError::Unreachable { .. }), "{err:?}");
    assert!(err.is_retryable());
    let msg = err.to_string();
    assert!(
        msg.contains("cannot reach the cluster at http://127.0.0.1:1") && msg.contains("--context"),
        "{msg}"
    );
}

#[tokio::test]
async fn exec_credential_plugins_are_refused_unless_allowed() {
    let e = env().await;
    let marker = e.dir.path().join("plugin-ran");
    let mut kc: Value = serde_json::from_str(&std::fs::read_to_string(&e.kubeconfig).unwrap()).unwrap();
    kc["users"][0]["user"] = json!({"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "sh",
        "args": ["-c", format!("touch {} && echo '{{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"t\"}}}}'", marker.display())],
        "interactiveMode": "Never"
    }});
    std::fs::write(&e.kubeconfig, serde_json::to_string(&kc).unwrap()).unwrap();

    let err = ClusterClient::connect(Some(&e.kubeconfig), None, false)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ClusterError::Kubeconfig(_)), "{err:?}");
    assert!(msg.contains("exec credential plugin") && msg.contains("allow"), "{msg}");
    assert!(!marker.exists(), "the plugin must not have run");

    // Opted in, the plugin is used.
    let cluster = ClusterClient::connect(Some(&e.kubeconfig), None, true)
        .await
        .expect("allowed");
    cluster.ping().await.expect("ping through the exec plugin");
    assert!(marker.exists(), "the allowed plugin ran");
}

#[tokio::test]
async fn legacy_auth_provider_commands_are_refused() {
    let e = env().await;
    let mut kc: Value = serde_json::from_str(&std::fs::read_to_string(&e.kubeconfig).unwrap()).unwrap();
    kc["users"][0]["user"] =
        json!({"auth-provider": {"name": "gcp", "config": {"cmd-path": "/bin/sh", "cmd-args": "-c id"}}});
    std::fs::write(&e.kubeconfig, serde_json::to_string(&kc).unwrap()).unwrap();
    let err = ClusterClient::connect(Some(&e.kubeconfig), None, false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cmd-path"), "{err}");
}

#[tokio::test]
async fn tls_and_bearer_token() {
    let e = env_with(Config {
        tls: true,
        token: Some("s3cr3t-token".into()),
        ..Config::default()
    })
    .await;
    assert!(e.cluster.server().starts_with("https://"));
    let cm = e.cluster.resolve("v1", "ConfigMap").await.unwrap();
    e.cluster
        .apply(&cm, &configmap("tls", json!({"k": "v"})), false, false)
        .await
        .expect("apply over TLS with a token");
    assert!(e.cluster.get(&cm, Some("default"), "tls").await.unwrap().is_some());

    // A wrong token is Unauthorized, and the token is not in the message.
    let mut kc: Value = serde_json::from_str(&std::fs::read_to_string(&e.kubeconfig).unwrap()).unwrap();
    kc["users"][0]["user"]["token"] = json!("wrong-token");
    std::fs::write(&e.kubeconfig, serde_json::to_string(&kc).unwrap()).unwrap();
    let wrong = ClusterClient::connect(Some(&e.kubeconfig), None, false).await.unwrap();
    let err = wrong.get(&cm, Some("default"), "tls").await.unwrap_err();
    assert!(matches!(err, ClusterError::Unauthorized { .. }), "{err:?}");
    assert!(!err.to_string().contains("token\""), "{err}");
    assert!(!format!("{err:?}").contains("wrong-token"));
}

#[tokio::test]
async fn resolves_builtins_and_refuses_unknown_kinds() {
    let e = env().await;
    let deploy = e.cluster.resolve("apps/v1", "Deployment").await.unwrap();
    assert_eq!(deploy.kind(), "Deployment");
    assert_eq!(deploy.api_version(), "apps/v1");
    assert_eq!(deploy.api_resource.plural, "deployments");
    assert!(deploy.namespaced);
    let ns = e.cluster.resolve("v1", "Namespace").await.unwrap();
    assert!(!ns.namespaced);

    // Cached: a second resolve makes no request.
    e.sim.reset_stats();
    e.cluster.resolve("apps/v1", "Deployment").await.unwrap();
    assert_eq!(e.sim.stats().requests, 0);

    for (av, kind) in [
        ("example.com/v1", "Gadget"),
        ("apps/v1", "Gadget"),
        ("apps/v9", "Deployment"),
        ("../../v1", "Secret"),
    ] {
        let err = e.cluster.resolve(av, kind).await.unwrap_err();
        assert!(
            matches!(&err, ClusterError::KindNotServed { api_version, kind: k } if api_version == av && k == kind),
            "{err:?}"
        );
        assert!(err.to_string().contains("install its CRD first"), "{err}");
        assert!(!err.is_retryable());
    }

    let kinds = e.cluster.resolved_kinds().await.unwrap();
    for (av, kind) in [("v1", "ConfigMap"), ("apps/v1", "Deployment"), ("v1", "Namespace")] {
        assert!(
            kinds.iter().any(|r| r.api_version() == av && r.kind() == kind),
            "{kind} missing from {kinds:?}"
        );
    }
    assert!(kinds.iter().all(|r| !r.api_resource.plural.contains('/')));
}

#[tokio::test]
async fn crd_kinds_resolve_after_the_crd_is_established() {
    let e = env().await;
    let err = e.cluster.resolve("example.com/v1alpha1", "Gadget").await.unwrap_err();
    assert!(matches!(err, ClusterError::KindNotServed { .. }));
    let before = e.cluster.resolved_kinds().await.unwrap();
    assert!(!before.iter().any(|r| r.kind() == "Gadget"));

    let crd_kind = e
        .cluster
        .resolve("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        .await
        .unwrap();
    assert_eq!(crd_kind, Resolved::custom_resource_definition());
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                 "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    });
    e.cluster.apply(&crd_kind, &crd, false, false).await.unwrap();
    e.cluster
        .wait_crd_established("gadgets.example.com", Duration::from_secs(10))
        .await
        .expect("established");

    let gadget = e.cluster.resolve("example.com/v1alpha1", "Gadget").await.unwrap();
    assert!(gadget.namespaced);
    let applied = e
        .cluster
        .apply(
            &gadget,
            &json!({"apiVersion": "example.com/v1alpha1", "kind": "Gadget",
                    "metadata": {"name": "g1", "namespace": "default"}, "spec": {"size": 3}}),
            false,
            false,
        )
        .await
        .unwrap();
    assert_eq!(applied["spec"]["size"], 3);
    let after = e.cluster.resolved_kinds().await.unwrap();
    assert!(after.iter().any(|r| r.kind() == "Gadget"));

    // A CRD that never appears times out with a message saying what was seen.
    let err = e
        .cluster
        .wait_crd_established("widgets.example.com", Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::Timeout(_)), "{err:?}");
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[tokio::test]
async fn get_dry_run_apply_reapply_and_delete() {
    let e = env().await;
    let cm = e.cluster.resolve("v1", "ConfigMap").await.unwrap();
    assert_eq!(e.cluster.get(&cm, Some("default"), "a").await.unwrap(), None);
    assert_eq!(e.cluster.get(&cm, Some("nowhere"), "a").await.unwrap(), None);

    let obj = configmap("a", json!({"k": "v"}));
    e.sim.reset_stats();
    let preview = e.cluster.apply(&cm, &obj, true, false).await.unwrap();
    assert_eq!(preview["data"]["k"], "v");
    assert_eq!(e.sim.stats().writes, 0, "a dry run writes nothing");
    assert_eq!(e.cluster.get(&cm, Some("default"), "a").await.unwrap(), None);

    let created = e.cluster.apply(&cm, &obj, false, false).await.unwrap();
    assert_eq!(e.sim.stats().writes, 1);
    assert_eq!(created["data"]["k"], "v");
    let managers: Vec<&str> = created["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert_eq!(managers, [FIELD_MANAGER]);

    // Re-applying the same object changes nothing: same resourceVersion.
    let again = e.cluster.apply(&cm, &obj, false, false).await.unwrap();
    assert_eq!(
        again["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
    let live = e.cluster.get(&cm, Some("default"), "a").await.unwrap().expect("exists");
    assert_eq!(live["data"], json!({"k": "v"}));

    assert!(e.cluster.delete(&cm, Some("default"), "a").await.unwrap());
    assert!(!e.cluster.delete(&cm, Some("default"), "a").await.unwrap());
    assert_eq!(e.cluster.get(&cm, Some("default"), "a").await.unwrap(), None);
}

#[tokio::test]
async fn cluster_scoped_objects_and_missing_namespaces() {
    let e = env().await;
    let ns = e.cluster.resolve("v1", "Namespace").await.unwrap();
    let applied = e
        .cluster
        .apply(
            &ns,
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}),
            false,
            false,
        )
        .await
        .unwrap();
    assert_eq!(applied["metadata"]["name"], "team-a");
    assert!(e.cluster.get(&ns, None, "team-a").await.unwrap().is_some());

    // A namespaced object without a namespace is refused before any request.
    let cm = e.cluster.resolve("v1", "ConfigMap").await.unwrap();
    e.sim.reset_stats();
    let err = e
        .cluster
        .apply(
            &cm,
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
            false,
            false,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClusterError::Invalid { object, .. } if object == "ConfigMap/x"),
        "{err:?}"
    );
    // A name that would change the URL is refused too.
    let err = e.cluster.get(&cm, Some("default"), "../../secrets").await.unwrap_err();
    assert!(matches!(err, ClusterError::Invalid { .. }), "{err:?}");
    assert_eq!(e.sim.stats().requests, 0);
}

#[tokio::test]
async fn field_conflicts_need_force() {
    let e = env().await;
    let cm = e.cluster.resolve("v1", "ConfigMap").await.unwrap();
    // Someone else (kubectl, another controller) owns data.k.
    let other = kube::Api::<kube::api::DynamicObject>::namespaced_with(
        e.cluster.kube_client().clone(),
        "default",
        &cm.api_resource,
    );
    let theirs: kube::api::DynamicObject = serde_json::from_value(configmap("shared", json!({"k": "theirs"}))).unwrap();
    other
        .patch(
            "shared",
            &kube::api::PatchParams::apply("kubectl"),
            &kube::api::Patch::Apply(&theirs),
        )
        .await
        .unwrap();

    let ours = configmap("shared", json!({"k": "ours"}));
    e.sim.reset_stats();
    let err = e.cluster.apply(&cm, &ours, false, false).await.unwrap_err();
    assert!(
        matches!(&err, ClusterError::Conflict { object, message } if object == "ConfigMap/default/shared" && message.contains(".data.k")),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("--force-conflicts"), "{err}");
    assert_eq!(e.sim.stats().verb("patch"), 1, "a field conflict is not retried");
    // The dry run reports the same conflict.
    let err = e.cluster.apply(&cm, &ours, true, false).await.unwrap_err();
    assert!(matches!(err, ClusterError::Conflict { .. }), "{err:?}");

    let forced = e.cluster.apply(&cm, &ours, false, true).await.unwrap();
    assert_eq!(forced["data"]["k"], "ours");
}

#[tokio::test]
async fn retries_through_injected_throttling_and_server_errors() {
    let e = env().await;
    let cm = e.cluster.resolve("v1", "ConfigMap").await.unwrap();
    e.sim.set_faults(FaultConfig {
        throttle_rate: 0.25,
        error_rate: 0.25,
        retry_after_seconds: 1,
        verbs: vec!["patch".into()],
        latency_ms: 0,
    });
    e.sim.reset_stats();
    for i in 0..4 {
        let obj = configmap(&format!("r{i}"), json!({"i": i.to_string()}));
        let applied = e
            .cluster
            .apply(&cm, &obj, false, false)
            .await
            .expect("retried to success");
        assert_eq!(applied["data"]["i"], i.to_string());
    }
    let patches = e.sim.stats().verb("patch");
    assert!(patches > 4, "faults were injected and retried ({patches} patches)");
    e.sim.set_faults(FaultConfig::default());
    for i in 0..4 {
        assert!(
            e.cluster
                .get(&cm, Some("default"), &format!("r{i}"))
                .await
                .unwrap()
                .is_some()
        );
    }
}

#[tokio::test]
async fn persistent_server_errors_give_up_and_are_retryable() {
    let e = env().await;
    let cm = e.cluster.resolve("v1", "ConfigMap").await.unwrap();
    let cluster = e.cluster.clone().with_retry(driftless_cluster::RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        ..Default::default()
    });
    e.sim.set_faults(FaultConfig {
        error_rate: 1.0,
        verbs: vec!["get".into()],
        ..FaultConfig::default()
    });
    e.sim.reset_stats();
    let err = cluster.get(&cm, Some("default"), "x").await.unwrap_err();
    assert!(
        matches!(&err, ClusterError::Api { code: 500, object, .. } if object == "ConfigMap/default/x"),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(e.sim.stats().verb("get"), 3, "bounded attempts");
}

#[tokio::test]
async fn lists_by_label_across_namespaces() {
    let e = env().await;
    let ns = e.cluster.resolve("v1", "Namespace").await.unwrap();
    e.cluster
        .apply(
            &ns,
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}}),
            false,
            false,
        )
        .await
        .unwrap();
    let cm = e.cluster.resolve("v1", "ConfigMap").await.unwrap();
    e.cluster
        .apply(&cm, &configmap("one", json!({})), false, false)
        .await
        .unwrap();
    let mut two = configmap("two", json!({}));
    two["metadata"]["namespace"] = json!("other");
    e.cluster.apply(&cm, &two, false, false).await.unwrap();
    let mut unlabelled = configmap("three", json!({}));
    unlabelled["metadata"]["labels"] = json!({"app.driftless.dev/name": "another"});
    e.cluster.apply(&cm, &unlabelled, false, false).await.unwrap();

    let found = e.cluster.list(&cm, "app.driftless.dev/name=demo").await.unwrap();
    let mut names: Vec<(String, String)> = found
        .iter()
        .map(|o| {
            assert_eq!(o["kind"], "ConfigMap");
            assert_eq!(o["apiVersion"], "v1");
            (
                o["metadata"]["namespace"].as_str().unwrap().to_owned(),
                o["metadata"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("default".to_owned(), "one".to_owned()),
            ("other".to_owned(), "two".to_owned())
        ]
    );
}

#[tokio::test]
async fn invalid_objects_name_the_object_and_the_field() {
    let e = env().await;
    let deploy = e.cluster.resolve("apps/v1", "Deployment").await.unwrap();
    let obj = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web"}]}}}
    });
    let err = e.cluster.apply(&deploy, &obj, false, false).await.unwrap_err();
    match &err {
        ClusterError::Invalid { object, message } => {
            assert_eq!(object, "Deployment/default/web");
            assert!(message.contains("image"), "{message}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn secret_values_never_reach_error_messages() {
    let e = env().await;
    let secret = e.cluster.resolve("v1", "Secret").await.unwrap();
    // Invalid: a data key with a space, and a value that must not be echoed.
    let obj = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default"},
        "stringData": {"bad key": "hunter2-plaintext"},
        "type": "Opaque"
    });
    let err = e.cluster.apply(&secret, &obj, false, false).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, ClusterError::Invalid { .. }), "{text}");
    assert!(text.contains("data[bad key]"), "the field is still named: {text}");
    assert!(!text.contains("hunter2-plaintext"), "{text}");
    // A field conflict on a Secret does not echo values either.
    let other = kube::Api::<kube::api::DynamicObject>::namespaced_with(
        e.cluster.kube_client().clone(),
        "default",
        &secret.api_resource,
    );
    let theirs: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "t", "namespace": "default"},
        "stringData": {"password": "their-plaintext"}
    }))
    .unwrap();
    other
        .patch(
            "t",
            &kube::api::PatchParams::apply("kubectl"),
            &kube::api::Patch::Apply(&theirs),
        )
        .await
        .unwrap();
    let ours = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "t", "namespace": "default"},
        "stringData": {"password": "our-plaintext"}
    });
    let r = e.cluster.apply(&secret, &ours, false, false).await;
    eprintln!("SECRET2 {r:?}");
    if let Err(err) = r {
        let text = format!("{err} {err:?}");
        assert!(!text.contains("plaintext") && !text.contains("cGxhaW50"), "{text}");
    }
}

#[tokio::test]
async fn throttling_waits_for_retry_after() {
    let e = env().await;
    let cm = e.cluster.resolve("v1", "ConfigMap").await.unwrap();
    let cluster = e.cluster.clone().with_retry(driftless_cluster::RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(10),
        ..Default::default()
    });
    e.sim.set_faults(FaultConfig {
        throttle_rate: 1.0,
        retry_after_seconds: 1,
        verbs: vec!["patch".into()],
        ..FaultConfig::default()
    });
    e.sim.reset_stats();
    let started = std::time::Instant::now();
    let err = cluster
        .apply(&cm, &configmap("slow", json!({})), false, false)
        .await
        .unwrap_err();
    // A correctness bound, not a speed measurement: the retry waited for the server's hint
    // rather than the 10 ms backoff.
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
    assert!(matches!(err, ClusterError::Api { code: 429, .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(e.sim.stats().verb("patch"), 2);
}

#[tokio::test]
async fn foreground_deletion() {
    let e = env().await;
    let cm = e.cluster.resolve("v1", "ConfigMap").await.unwrap();
    e.cluster
        .apply(&cm, &configmap("fg", json!({})), false, false)
        .await
        .unwrap();
    assert!(
        e.cluster
            .delete_with(&cm, Some("default"), "fg", driftless_cluster::Propagation::Foreground)
            .await
            .unwrap()
    );
    // Foreground deletion may keep the object (with a finalizer) until dependents are gone;
    // a ConfigMap has none, so it disappears.
    let mut gone = false;
    for _ in 0..50 {
        if e.cluster.get(&cm, Some("default"), "fg").await.unwrap().is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone);
}

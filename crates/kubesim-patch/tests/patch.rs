//! Strategic merge patch, JSON merge patch and JSON patch fixtures.

use kubesim_patch::{
    AtomicListsSchema, BuiltinSchema, PatchError, json_merge_patch, json_patch, strategic_merge_patch,
};
use serde_json::{Value, json};

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "web", "tier": "front"},
                     "finalizers": ["a.example/x", "b.example/y"]},
        "spec": {
            "containers": [
                {"name": "web", "image": "nginx:1",
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                 "ports": [{"containerPort": 80, "protocol": "TCP"}],
                 "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                 "args": ["--a", "--b"]},
                {"name": "sidecar", "image": "envoy:1"}
            ],
            "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "c"}}]
        }
    })
}

fn smp(orig: &Value, patch: Value) -> Result<Value, PatchError> {
    strategic_merge_patch(orig, &patch, &BuiltinSchema::for_kind("Pod"))
}

#[test]
fn containers_merge_by_name() {
    let out = smp(
        &pod(),
        json!({"spec": {"containers": [
            {"name": "sidecar", "image": "envoy:2"},
            {"name": "new", "image": "busybox"}
        ]}}),
    )
    .unwrap();
    let cs = out["spec"]["containers"].as_array().unwrap();
    assert_eq!(cs.len(), 3);
    assert_eq!(cs[0]["image"], "nginx:1");
    assert_eq!(cs[1]["image"], "envoy:2");
    assert_eq!(cs[2], json!({"name": "new", "image": "busybox"}));
}

#[test]
fn env_ports_volume_mounts_merge_args_replace() {
    let out = smp(
        &pod(),
        json!({"spec": {"containers": [{
            "name": "web",
            "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}],
            "ports": [{"containerPort": 443}],
            "volumeMounts": [{"mountPath": "/data", "readOnly": true}, {"name": "cfg", "mountPath": "/cfg"}],
            "args": ["--c"]
        }]}}),
    )
    .unwrap();
    let web = &out["spec"]["containers"][0];
    assert_eq!(
        web["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "20"}, {"name": "C", "value": "3"}])
    );
    assert_eq!(
        web["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}])
    );
    assert_eq!(
        web["volumeMounts"],
        json!([{"name": "data", "mountPath": "/data", "readOnly": true}, {"name": "cfg", "mountPath": "/cfg"}])
    );
    assert_eq!(web["args"], json!(["--c"]));
}

#[test]
fn volumes_merge_and_service_ports_merge_by_port() {
    let out = smp(
        &pod(),
        json!({"spec": {"volumes": [{"name": "cfg", "configMap": {"name": "c2"}}]}}),
    )
    .unwrap();
    assert_eq!(out["spec"]["volumes"][0]["name"], "data");
    assert_eq!(out["spec"]["volumes"][1]["configMap"]["name"], "c2");

    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443, "targetPort": 8443}]}});
    let out = strategic_merge_patch(
        &svc,
        &json!({"spec": {"ports": [{"port": 443, "targetPort": 9443}]}}),
        &BuiltinSchema::for_kind("Service"),
    )
    .unwrap();
    assert_eq!(
        out["spec"]["ports"],
        json!([{"port": 80, "targetPort": 8080}, {"port": 443, "targetPort": 9443}])
    );
}

#[test]
fn patch_delete_on_list_item_and_null_deletes_key() {
    let out = smp(
        &pod(),
        json!({
            "metadata": {"labels": {"tier": null}},
            "spec": {"containers": [{"name": "sidecar", "$patch": "delete"}],
                     "volumes": [{"name": "data", "$patch": "delete"}]}
        }),
    )
    .unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
    let cs = out["spec"]["containers"].as_array().unwrap();
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0]["name"], "web");
    assert_eq!(
        out["spec"]["volumes"],
        json!([{"name": "cfg", "configMap": {"name": "c"}}])
    );
}

#[test]
fn delete_from_primitive_list_and_finalizer_union() {
    let out = smp(
        &pod(),
        json!({"metadata": {
            "$deleteFromPrimitiveList/finalizers": ["a.example/x"],
            "finalizers": ["c.example/z", "b.example/y"]
        }}),
    )
    .unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["b.example/y", "c.example/z"]));
}

#[test]
fn map_directives_replace_delete_retain_keys() {
    let out = smp(
        &pod(),
        json!({"metadata": {"labels": {"$patch": "replace", "only": "me"}}}),
    )
    .unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"only": "me"}));

    let out = smp(&pod(), json!({"metadata": {"labels": {"$patch": "delete"}}})).unwrap();
    assert!(out["metadata"].get("labels").is_none());

    let dep = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
    let out = strategic_merge_patch(
        &dep,
        &json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
        &BuiltinSchema::for_kind("Deployment"),
    )
    .unwrap();
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));

    // A list-level replace directive.
    let out = smp(
        &pod(),
        json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "solo", "image": "x"}]}}),
    )
    .unwrap();
    assert_eq!(out["spec"]["containers"], json!([{"name": "solo", "image": "x"}]));
}

#[test]
fn set_element_order_is_honoured_and_stripped() {
    let out = smp(
        &pod(),
        json!({"spec": {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}],
            "containers": [{"name": "web", "image": "nginx:2"}]
        }}),
    )
    .unwrap();
    let names: Vec<&str> = out["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["sidecar", "web"]);
    assert_eq!(out["spec"]["containers"][1]["image"], "nginx:2");
    assert!(!out.to_string().contains("$setElementOrder"));
}

#[test]
fn directives_in_new_subtrees_are_stripped() {
    let out = smp(
        &pod(),
        json!({"spec": {"containers": [
        {"name": "new", "env": [{"name": "X", "value": "1"}, {"name": "Y", "$patch": "delete"}]}
    ]}, "status": {"$patch": "merge", "phase": "Running"}}),
    )
    .unwrap();
    assert_eq!(
        out["spec"]["containers"][2],
        json!({"name": "new", "env": [{"name": "X", "value": "1"}]})
    );
    assert_eq!(out["status"], json!({"phase": "Running"}));
}

#[test]
fn crd_lists_are_atomic() {
    let cr = json!({"spec": {"items": [{"name": "a", "v": 1}, {"name": "b"}]}});
    let out = strategic_merge_patch(
        &cr,
        &json!({"spec": {"items": [{"name": "a", "v": 2}]}}),
        &AtomicListsSchema,
    )
    .unwrap();
    assert_eq!(out["spec"]["items"], json!([{"name": "a", "v": 2}]));
}

#[test]
fn malformed_strategic_patches_are_errors() {
    let cases = [
        json!([1, 2]),
        json!({"spec": {"containers": [{"image": "no-name"}]}}),
        json!({"spec": {"containers": ["not-an-object"]}}),
        json!({"metadata": {"$patch": "explode"}}),
        json!({"metadata": {"$retainKeys": "name"}}),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "x"}}),
        json!({"spec": {"$setElementOrder/containers": {}}}),
        json!({"spec": {"$unknown": 1}}),
        json!({"metadata": {"finalizers": [{"a": 1}]}}),
        json!({"spec": {"containers": [{"name": "web", "$patch": 3}]}}),
    ];
    for c in cases {
        let r = smp(&pod(), c.clone());
        assert!(r.is_err(), "expected error for {c}, got {r:?}");
    }
    let e = smp(&pod(), json!({"spec": {"containers": [{"image": "x"}]}})).unwrap_err();
    assert_eq!(
        e,
        PatchError::MissingMergeKey {
            path: "spec.containers".into(),
            key: "name".into()
        }
    );
    assert!(strategic_merge_patch(&json!(1), &json!({}), &AtomicListsSchema).is_err());
}

#[test]
fn json_merge_patch_rfc7386() {
    let out = json_merge_patch(
        &pod(),
        &json!({"metadata": {"labels": {"tier": null, "x": "y"}},
                                              "spec": {"containers": []}}),
    );
    assert_eq!(out["metadata"]["labels"], json!({"app": "web", "x": "y"}));
    assert_eq!(out["spec"]["containers"], json!([]));
    assert_eq!(json_merge_patch(&pod(), &json!("s")), json!("s"));
}

#[test]
fn json_patch_rfc6902() {
    let out = json_patch(
        &pod(),
        &json!([
            {"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:9"},
            {"op": "add", "path": "/metadata/labels/new", "value": "1"},
            {"op": "remove", "path": "/metadata/finalizers/0"},
            {"op": "test", "path": "/metadata/name", "value": "p"}
        ]),
    )
    .unwrap();
    assert_eq!(out["spec"]["containers"][0]["image"], "nginx:9");
    assert_eq!(out["metadata"]["labels"]["new"], "1");
    assert_eq!(out["metadata"]["finalizers"], json!(["b.example/y"]));

    assert!(matches!(
        json_patch(&pod(), &json!({"op": "add"})),
        Err(PatchError::InvalidJsonPatch(_))
    ));
    assert!(matches!(
        json_patch(&pod(), &json!([{"op": "frob", "path": "/a"}])),
        Err(PatchError::InvalidJsonPatch(_))
    ));
    assert!(matches!(
        json_patch(&pod(), &json!([{"op": "remove", "path": "/nope/x"}])),
        Err(PatchError::JsonPatchFailed(_))
    ));
    assert!(matches!(
        json_patch(&pod(), &json!([{"op": "test", "path": "/metadata/name", "value": "q"}])),
        Err(PatchError::JsonPatchFailed(_))
    ));
}

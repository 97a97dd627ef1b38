//! Regression: kubectl server-side apply over a client-side-applied custom resource lost
//! `spec` (found by kubesim's kubectl acceptance suite).

use kubesim_patch::{AtomicListsSchema, BuiltinSchema, ManagerOptions, Scope, apply};
use serde_json::json;

#[test]
fn kubectl_ssa_after_client_side_apply_keeps_spec() {
    let live = json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "default",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"example.com/v1\",\"kind\":\"Widget\",\"metadata\":{\"annotations\":{},\"name\":\"w1\",\"namespace\":\"default\"},\"spec\":{\"size\":3}}\n"},
            "managedFields": [{"apiVersion": "example.com/v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}}, "f:spec": {".": {}, "f:size": {}}}, "manager": "kubectl-client-side-apply", "operation": "Update", "time": "2026-11-22T04:10:56Z"}]},
        "spec": {"size": 3}
    });
    let config = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1", "namespace": "default"}, "spec": {"size": 4}});
    for scope in [Scope::MainResource, Scope::WholeObject] {
        let opts = ManagerOptions {
            time: "2026-11-22T04:11:00Z",
            scope,
            schema: &AtomicListsSchema,
        };
        let out = apply(Some(&live), &config, "kubectl", false, &opts).unwrap();
        assert_eq!(out["spec"]["size"], 4, "{scope:?}: {out:#}");
    }
}

#[test]
fn reapply_after_csa_migration_keeps_spec() {
    // The state kubectl leaves after migrating client-side-apply ownership to `kubectl`
    // (the migrated set owns `spec` itself with a `.` marker), followed by kubectl's next apply.
    let live = json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "default",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "cfg"},
            "managedFields": [
                {"manager": "kubectl", "operation": "Apply", "apiVersion": "example.com/v1", "time": "2026-11-22T04:11:31Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}}, "f:spec": {".": {}, "f:size": {}}}},
                {"manager": "kubectl-last-applied", "operation": "Apply", "apiVersion": "example.com/v1", "time": "2026-11-22T04:11:31Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {"f:kubectl.kubernetes.io/last-applied-configuration": {}}}}}]},
        "spec": {"size": 4}
    });
    let config = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1", "namespace": "default"}, "spec": {"size": 4}});
    let opts = ManagerOptions {
        time: "2026-11-22T04:11:40Z",
        scope: Scope::MainResource,
        schema: &AtomicListsSchema,
    };
    let out = apply(Some(&live), &config, "kubectl", false, &opts).unwrap();
    assert_eq!(out["spec"]["size"], 4, "{out:#}");
}

#[test]
fn second_apply_manager_with_only_annotations_keeps_others_fields() {
    let live = json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "default",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "old"},
            "managedFields": [
                {"manager": "kubectl", "operation": "Apply", "apiVersion": "example.com/v1", "time": "2026-11-22T04:11:17Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:size": {}}}},
                {"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "example.com/v1", "time": "2026-11-22T04:11:17Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}}, "f:spec": {}}}]},
        "spec": {"size": 4}
    });
    let config = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1", "namespace": "default", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "x"}}});
    let opts = ManagerOptions {
        time: "2026-11-22T04:11:18Z",
        scope: Scope::MainResource,
        schema: &AtomicListsSchema,
    };
    // The annotation differs from what the client-side-apply manager set: a real conflict.
    assert!(apply(Some(&live), &config, "kubectl-last-applied", false, &opts).is_err());
    let out = apply(Some(&live), &config, "kubectl-last-applied", true, &opts).unwrap();
    assert_eq!(out["spec"]["size"], 4, "{out:#}");
    assert!(
        out["metadata"]["managedFields"]
            .as_array()
            .is_some_and(|m| m.len() >= 2),
        "{out:#}"
    );
}

/// The `fieldsV1` of `manager`'s entry.
fn fields_of<'a>(obj: &'a serde_json::Value, manager: &str) -> &'a serde_json::Value {
    let mf = obj["metadata"]["managedFields"].as_array().expect("managedFields");
    &mf.iter().find(|e| e["manager"] == manager).expect("entry")["fieldsV1"]
}

#[test]
fn reapply_keeps_list_item_and_nested_maps_previously_owned_with_dot() {
    // The same class one level down: the applier owned the container item and its
    // `resources`/`limits` maps with `.`; the new applied set marks the item (a list item is
    // always a member) but not the struct maps. Only the field it dropped (`tty`) goes.
    let schema = BuiltinSchema::for_kind("Deployment");
    let item = r#"k:{"name":"web"}"#;
    let live = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "managedFields": [
            {"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": "2026-11-22T04:11:31Z", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {item: {
                 ".": {}, "f:image": {}, "f:name": {}, "f:tty": {},
                 "f:resources": {".": {}, "f:limits": {".": {}, "f:cpu": {}}}}}}}}}}]},
        "spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx", "tty": true, "resources": {"limits": {"cpu": "1"}}}]}}}
    });
    let config = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:2", "resources": {"limits": {"cpu": "2"}}}]}}}
    });
    let opts = ManagerOptions {
        time: "2026-11-22T04:11:40Z",
        scope: Scope::MainResource,
        schema: &schema,
    };
    let out = apply(Some(&live), &config, "kubectl", false, &opts).unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "web", "image": "nginx:2", "resources": {"limits": {"cpu": "2"}}}]),
        "{out:#}"
    );
    assert_eq!(
        fields_of(&out, "kubectl"),
        &json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {item: {
            ".": {}, "f:image": {}, "f:name": {}, "f:resources": {"f:limits": {"f:cpu": {}}}}}}}}})
    );
}

#[test]
fn dropping_a_map_owned_with_dot_keeps_children_owned_by_others() {
    // `a` owns `spec` itself (`.`) and `spec.size`; `b` owns `spec.color`. When `a` stops
    // applying `spec`, only `spec.size` goes: `spec` still holds `b`'s field. Without `b`, the
    // emptied `spec` goes too.
    let live = json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "default", "managedFields": [
            {"manager": "a", "operation": "Apply", "apiVersion": "example.com/v1", "time": "2026-11-22T04:11:31Z", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {".": {}, "f:size": {}}}},
            {"manager": "b", "operation": "Update", "apiVersion": "example.com/v1", "time": "2026-11-22T04:11:32Z", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:color": {}}}}]},
        "spec": {"size": 3, "color": "red"}
    });
    let config = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "default", "labels": {"app": "w"}}});
    let opts = ManagerOptions {
        time: "2026-11-22T04:11:40Z",
        scope: Scope::MainResource,
        schema: &AtomicListsSchema,
    };
    let out = apply(Some(&live), &config, "a", false, &opts).unwrap();
    assert_eq!(out["spec"], json!({"color": "red"}), "{out:#}");
    assert_eq!(
        fields_of(&out, "a"),
        &json!({"f:metadata": {"f:labels": {"f:app": {}}}})
    );
    assert_eq!(fields_of(&out, "b"), &json!({"f:spec": {"f:color": {}}}));

    let mut alone = live.clone();
    alone["metadata"]["managedFields"].as_array_mut().unwrap().truncate(1);
    alone["spec"] = json!({"size": 3});
    let out = apply(Some(&alone), &config, "a", false, &opts).unwrap();
    assert!(out.get("spec").is_none(), "{out:#}");
}

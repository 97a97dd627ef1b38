//! Server-side apply and managed-fields fixtures.

use kubesim_patch::{
    ApplyError, BuiltinSchema, FieldSet, ManagerOptions, Operation, Scope, apply, read_managed_fields, record_update,
};
use serde_json::{Value, json};

const T1: &str = "2024-05-01T10:00:00Z";
const T2: &str = "2024-05-01T11:00:00Z";

fn opts<'a>(schema: &'a BuiltinSchema, time: &'a str, scope: Scope) -> ManagerOptions<'a> {
    ManagerOptions { time, scope, schema }
}

fn deployment(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "web", "image": image, "ports": [{"containerPort": 80}]}
                ]}
            }
        }
    })
}

fn entry<'a>(obj: &'a Value, manager: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager)
}

fn owns(obj: &Value, manager: &str, path: &[&str]) -> bool {
    let Some(e) = entry(obj, manager) else {
        return false;
    };
    let set = FieldSet::from_fields_v1(&e["fieldsV1"]).unwrap();
    let p: Vec<kubesim_patch::PathElement> = path
        .iter()
        .map(|s| kubesim_patch::PathElement::Field(s.to_string()))
        .collect();
    set.contains(&p)
}

fn dep_schema() -> BuiltinSchema {
    BuiltinSchema::for_kind("Deployment")
}

#[test]
fn create_by_apply_records_exact_fields_v1() {
    let s = dep_schema();
    let out = apply(
        None,
        &deployment(2, "nginx:1"),
        "a",
        false,
        &opts(&s, T1, Scope::MainResource),
    )
    .unwrap();
    let mf = &out["metadata"]["managedFields"];
    assert_eq!(
        mf,
        &json!([{
            "manager": "a",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                            ".": {}, "f:image": {}, "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                                ".": {}, "f:containerPort": {}
                            }}
                        }}}
                    }
                }
            }
        }])
    );
    // managedFields is appended at the end of metadata.
    let keys: Vec<&String> = out["metadata"].as_object().unwrap().keys().collect();
    assert_eq!(keys.last().unwrap().as_str(), "managedFields");
    assert_eq!(out["spec"]["replicas"], 2);
}

#[test]
fn conflict_without_force_and_ownership_transfer_with_force() {
    let s = dep_schema();
    let o1 = opts(&s, T1, Scope::MainResource);
    let live = apply(None, &deployment(2, "nginx:1"), "a", false, &o1).unwrap();

    let cfg_b = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "web", "namespace": "default"},
                       "spec": {"replicas": 5}});
    let o2 = opts(&s, T2, Scope::MainResource);
    let err = apply(Some(&live), &cfg_b, "b", false, &o2).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "a": .spec.replicas"#
    );
    let causes = err.conflict_causes();
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].message, r#"conflict with "a""#);
    assert_eq!(causes[0].field, ".spec.replicas");

    let forced = apply(Some(&live), &cfg_b, "b", true, &o2).unwrap();
    assert_eq!(forced["spec"]["replicas"], 5);
    assert!(owns(&forced, "b", &["spec", "replicas"]));
    assert!(!owns(&forced, "a", &["spec", "replicas"]));
    // A keeps everything else.
    assert!(owns(&forced, "a", &["metadata", "labels", "app"]));
    // Apply entries sort by time: a (T1) before b (T2).
    let names: Vec<&str> = forced["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["a", "b"]);

    // A re-applying its old value now conflicts with B.
    let err = apply(Some(&forced), &deployment(2, "nginx:1"), "a", false, &o1).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "b": .spec.replicas"#
    );
}

#[test]
fn equal_values_are_shared_not_conflicting() {
    let s = dep_schema();
    let o = opts(&s, T1, Scope::MainResource);
    let live = apply(None, &deployment(2, "nginx:1"), "a", false, &o).unwrap();
    let cfg_b = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "web"}, "spec": {"replicas": 2}});
    let out = apply(Some(&live), &cfg_b, "b", false, &opts(&s, T2, Scope::MainResource)).unwrap();
    assert!(owns(&out, "a", &["spec", "replicas"]));
    assert!(owns(&out, "b", &["spec", "replicas"]));
    // Object itself unchanged apart from managed fields.
    let strip = |v: &Value| {
        let mut v = v.clone();
        v["metadata"].as_object_mut().unwrap().remove("managedFields");
        v
    };
    assert_eq!(strip(&out), strip(&live));
}

#[test]
fn plural_conflict_message_format() {
    let s = BuiltinSchema::for_kind("ConfigMap");
    let o = opts(&s, T1, Scope::WholeObject);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                    "data": {"a": "1", "b": "2", "c": "3"}});
    let mut live = cm.clone();
    record_update(None, &mut live, "m", &o).unwrap();
    let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                     "data": {"a": "x", "b": "y", "c": "3"}});
    let err = apply(Some(&live), &cfg, "applier", false, &o).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"m\" using v1:\n- .data.a\n- .data.b"
    );
    let ApplyError::Conflicts(cs) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(cs[0].manager, "m");
    assert_eq!(cs[0].operation, Operation::Update);
}

#[test]
fn conflicts_with_several_managers_are_grouped_and_sorted() {
    let s = BuiltinSchema::for_kind("ConfigMap");
    let o = opts(&s, T1, Scope::WholeObject);
    let mut live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                          "data": {"a": "1"}});
    record_update(None, &mut live, "zeta", &o).unwrap();
    let mut next = live.clone();
    next["data"]["b"] = json!("2");
    record_update(Some(&live), &mut next, "alpha", &o).unwrap();
    let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                     "data": {"a": "x", "b": "y"}});
    let err = apply(Some(&next), &cfg, "applier", false, &o).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"alpha\" using v1:\n- .data.b\nconflicts with \"zeta\" using v1:\n- .data.a"
    );
}

#[test]
fn removal_of_unapplied_field_and_container() {
    let s = dep_schema();
    let o = opts(&s, T1, Scope::MainResource);
    let mut cfg = deployment(2, "nginx:1");
    cfg["metadata"]["labels"]["tier"] = json!("front");
    cfg["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "sidecar", "image": "envoy"}));
    let live = apply(None, &cfg, "a", false, &o).unwrap();
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"].as_array().unwrap().len(),
        2
    );

    let out = apply(
        Some(&live),
        &deployment(2, "nginx:1"),
        "a",
        false,
        &opts(&s, T2, Scope::MainResource),
    )
    .unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
    let containers = out["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0]["name"], "web");
    let mf = &entry(&out, "a").unwrap()["fieldsV1"];
    assert!(mf.to_string().find("sidecar").is_none());
    assert_eq!(entry(&out, "a").unwrap()["time"], T2);
}

#[test]
fn fields_co_owned_by_another_manager_are_kept() {
    let s = dep_schema();
    let o = opts(&s, T1, Scope::MainResource);
    let mut cfg = deployment(2, "nginx:1");
    cfg["metadata"]["labels"]["shared"] = json!("yes");
    let live = apply(None, &cfg, "a", false, &o).unwrap();
    let cfg_b = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web",
                       "labels": {"shared": "yes"}}});
    let live = apply(Some(&live), &cfg_b, "b", false, &o).unwrap();
    // A stops applying the label; B still owns it, so it stays.
    let out = apply(Some(&live), &deployment(2, "nginx:1"), "a", false, &o).unwrap();
    assert_eq!(out["metadata"]["labels"]["shared"], "yes");
    assert!(owns(&out, "b", &["metadata", "labels", "shared"]));
    assert!(!owns(&out, "a", &["metadata", "labels", "shared"]));

    // An updater's ownership also protects a field from pruning.
    let mut cfg2 = deployment(2, "nginx:1");
    cfg2["metadata"]["annotations"] = json!({"note": "x"});
    let live = apply(None, &cfg2, "a", false, &o).unwrap();
    let mut edited = live.clone();
    edited["metadata"]["annotations"]["note"] = json!("y");
    record_update(Some(&live), &mut edited, "editor", &o).unwrap();
    let out = apply(Some(&edited), &deployment(2, "nginx:1"), "a", false, &o).unwrap();
    assert_eq!(out["metadata"]["annotations"]["note"], "y");
}

#[test]
fn client_side_apply_update_then_server_side_apply() {
    let s = dep_schema();
    let o = opts(&s, T1, Scope::MainResource);
    // kubectl create/apply (client-side) records an Update.
    let mut live = deployment(1, "nginx:1");
    record_update(None, &mut live, "kubectl-client-side-apply", &o).unwrap();
    let e = entry(&live, "kubectl-client-side-apply").unwrap();
    assert_eq!(e["operation"], "Update");
    assert_eq!(e["apiVersion"], "apps/v1");
    // Zero-value baseline: no "." on spec, "." on freshly added maps/lists.
    let f = &e["fieldsV1"];
    assert!(f["f:spec"].get(".").is_none());
    assert_eq!(f["f:metadata"]["f:labels"], json!({".": {}, "f:app": {}}));
    assert_eq!(f["f:spec"]["f:selector"], json!({}));
    assert_eq!(
        f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:ports"],
        json!({".": {}, "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}})
    );

    // Another tool applying a different replica count conflicts.
    let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                     "metadata": {"name": "web"}, "spec": {"replicas": 3}});
    let err = apply(Some(&live), &cfg, "driftless", false, &o).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas"#
    );
    // Same config with equal values: shared ownership.
    let out = apply(Some(&live), &deployment(1, "nginx:1"), "driftless", false, &o).unwrap();
    assert!(owns(&out, "driftless", &["spec", "replicas"]));
    assert!(owns(&out, "kubectl-client-side-apply", &["spec", "replicas"]));
    let mf = out["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(mf[0]["operation"], "Apply");
    assert_eq!(mf[1]["operation"], "Update");
}

#[test]
fn kubectl_server_side_upgrade_takes_over_last_applied_fields() {
    let s = dep_schema();
    let o = opts(&s, T1, Scope::MainResource);
    let mut live = deployment(1, "nginx:1");
    let last = serde_json::to_string(&deployment(1, "nginx:1")).unwrap();
    live["metadata"]["annotations"] = json!({"kubectl.kubernetes.io/last-applied-configuration": last});
    record_update(None, &mut live, "kubectl-client-side-apply", &o).unwrap();

    let cfg = deployment(4, "nginx:1");
    let out = apply(Some(&live), &cfg, "kubectl", false, &o).unwrap();
    assert_eq!(out["spec"]["replicas"], 4);
    assert!(owns(&out, "kubectl", &["spec", "replicas"]));
    assert!(!owns(&out, "kubectl-client-side-apply", &["spec", "replicas"]));
    let ann = out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .unwrap();
    let parsed: Value = serde_json::from_str(ann).unwrap();
    assert_eq!(parsed["spec"]["replicas"], 4);

    // Other managers get no such allowance.
    let err = apply(Some(&live), &cfg, "someone", false, &o).unwrap_err();
    assert!(matches!(err, ApplyError::Conflicts(_)));
}

#[test]
fn object_without_managed_fields_gets_before_first_apply() {
    let s = BuiltinSchema::for_kind("ConfigMap");
    let o = opts(&s, T1, Scope::WholeObject);
    let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "c", "uid": "u1", "resourceVersion": "7"},
                      "data": {"a": "1"}});
    let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                     "data": {"a": "2"}});
    let err = apply(Some(&live), &cfg, "m", false, &o).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "before-first-apply" using v1: .data.a"#
    );
    let ok = apply(
        Some(&live),
        &json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c"}, "data": {"b": "1"}}),
        "m",
        false,
        &o,
    )
    .unwrap();
    assert!(owns(&ok, "before-first-apply", &["data", "a"]));
    assert!(owns(&ok, "m", &["data", "b"]));
    assert_eq!(ok["metadata"]["uid"], "u1");
}

#[test]
fn update_takes_ownership_and_removed_fields_leave_all_sets() {
    let s = dep_schema();
    let o = opts(&s, T1, Scope::MainResource);
    let live = apply(None, &deployment(2, "nginx:1"), "a", false, &o).unwrap();
    let mut new = live.clone();
    new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    new["metadata"]["labels"].as_object_mut().unwrap().remove("app");
    record_update(
        Some(&live),
        &mut new,
        "kubectl-edit",
        &opts(&s, T2, Scope::MainResource),
    )
    .unwrap();

    let upd = entry(&new, "kubectl-edit").unwrap();
    assert_eq!(
        upd["fieldsV1"],
        json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"web\"}": {"f:image": {}}}}}}})
    );
    assert_eq!(upd["time"], T2);
    let a = FieldSet::from_fields_v1(&entry(&new, "a").unwrap()["fieldsV1"]).unwrap();
    let s_a = serde_json::to_string(&a.to_fields_v1()).unwrap();
    assert!(!s_a.contains("f:image"));
    assert!(!owns(&new, "a", &["metadata", "labels", "app"]));

    // The applier re-asserting its image now conflicts with the updater.
    let err = apply(Some(&new), &deployment(2, "nginx:1"), "a", false, &o).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.template.spec.containers[name=\"web\"].image"
    );

    // A no-op update leaves managed fields alone (including times).
    let mut same = new.clone();
    record_update(
        Some(&new),
        &mut same,
        "kubectl-edit",
        &opts(&s, "2030-01-01T00:00:00Z", Scope::MainResource),
    )
    .unwrap();
    assert_eq!(same, new);
}

#[test]
fn reset_managed_fields_with_empty_entry() {
    let s = dep_schema();
    let o = opts(&s, T1, Scope::MainResource);
    let live = apply(None, &deployment(2, "nginx:1"), "a", false, &o).unwrap();
    let mut new = live.clone();
    new["metadata"]["managedFields"] = json!([{}]);
    record_update(Some(&live), &mut new, "x", &o).unwrap();
    assert!(new["metadata"].get("managedFields").is_none());
}

#[test]
fn status_subresource_scoping() {
    let s = dep_schema();
    let main = opts(&s, T1, Scope::MainResource);
    let mut cfg = deployment(2, "nginx:1");
    cfg["status"] = json!({"replicas": 99});
    let live = apply(None, &cfg, "a", false, &main).unwrap();
    assert!(live.get("status").is_none(), "main apply ignores status");

    let status_cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"}, "spec": {"replicas": 100},
        "status": {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]}});
    let st = opts(&s, T2, Scope::StatusSubresource);
    let out = apply(Some(&live), &status_cfg, "controller", false, &st).unwrap();
    assert_eq!(out["spec"]["replicas"], 2, "status apply ignores spec");
    assert_eq!(out["status"]["replicas"], 2);
    let e = entry(&out, "controller").unwrap();
    assert_eq!(e["subresource"], "status");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:status": {"f:conditions": {"k:{\"type\":\"Available\"}": {
            ".": {}, "f:status": {}, "f:type": {}}}, "f:replicas": {}}})
    );

    // Status update through /status: only status is owned.
    let mut new = out.clone();
    new["status"]["replicas"] = json!(3);
    new["spec"]["replicas"] = json!(7);
    record_update(Some(&out), &mut new, "kcm", &st).unwrap();
    let e = entry(&new, "kcm").unwrap();
    assert_eq!(e["subresource"], "status");
    assert_eq!(e["fieldsV1"], json!({"f:status": {"f:replicas": {}}}));
    assert!(!owns(&new, "controller", &["status", "replicas"]));
}

#[test]
fn invalid_apply_configurations() {
    let s = dep_schema();
    let o = opts(&s, T1, Scope::MainResource);
    let mut with_mf = deployment(1, "x");
    with_mf["metadata"]["managedFields"] = json!([]);
    assert!(matches!(
        apply(None, &with_mf, "a", false, &o),
        Err(ApplyError::InvalidConfig(_))
    ));
    let no_av = json!({"kind": "Deployment", "metadata": {"name": "x"}});
    assert!(matches!(
        apply(None, &no_av, "a", false, &o),
        Err(ApplyError::InvalidConfig(_))
    ));
    let mut dup = deployment(1, "x");
    dup["spec"]["template"]["spec"]["containers"] = json!([{"name": "a"}, {"name": "a"}]);
    let err = apply(None, &dup, "a", false, &o).unwrap_err();
    assert!(err.to_string().contains("duplicate entries"), "{err}");
    let mut nokey = deployment(1, "x");
    nokey["spec"]["template"]["spec"]["containers"] = json!([{"image": "a"}]);
    assert!(matches!(
        apply(None, &nokey, "a", false, &o),
        Err(ApplyError::InvalidConfig(_))
    ));
    assert!(apply(None, &json!([1]), "a", false, &o).is_err());
    assert!(apply(None, &deployment(1, "x"), "", false, &o).is_err());
    let mut bad_live = deployment(1, "x");
    bad_live["metadata"]["managedFields"] = json!([{"manager": "m", "operation": "Bogus"}]);
    assert!(matches!(
        apply(Some(&bad_live), &deployment(1, "x"), "a", false, &o),
        Err(ApplyError::InvalidManagedFields(_))
    ));
}

#[test]
fn managers_with_empty_sets_are_dropped() {
    let s = BuiltinSchema::for_kind("ConfigMap");
    let o = opts(&s, T1, Scope::WholeObject);
    let cm = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": v}});
    let live = apply(None, &cm("1"), "a", false, &o).unwrap();
    let out = apply(Some(&live), &cm("2"), "b", true, &o).unwrap();
    let mf = read_managed_fields(&out).unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager, "b");
}

/// Deterministic pseudo-random configs: applying any of them twice (with a
/// different clock) is a no-op, and the result contains the config's values.
#[test]
fn property_apply_is_idempotent_and_contains_config() {
    let s = dep_schema();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut live: Option<Value> = None;
    for round in 0..40 {
        let n_containers = 1 + (next() % 3) as usize;
        let mut containers = Vec::new();
        for i in 0..n_containers {
            let mut c = json!({"name": format!("c{}", (next() % 4) * 10 + i as u64),
                               "image": format!("img:{}", next() % 3)});
            if next() % 2 == 0 {
                c["env"] = json!([{"name": "A", "value": format!("{}", next() % 2)}]);
            }
            if next() % 2 == 0 {
                c["ports"] = json!([{"containerPort": 8000 + (next() % 2)}]);
            }
            containers.push(c);
        }
        containers.dedup_by(|a, b| a["name"] == b["name"]);
        let mut names: Vec<Value> = containers.iter().map(|c| c["name"].clone()).collect();
        names.sort_by_key(|n| n.to_string());
        names.dedup();
        if names.len() != containers.len() {
            continue;
        }
        let mut labels = serde_json::Map::new();
        for l in 0..(next() % 3) {
            labels.insert(format!("l{l}"), json!(format!("{}", next() % 2)));
        }
        let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": labels},
            "spec": {"replicas": next() % 4, "template": {"spec": {"containers": containers}}}});
        let manager = if next() % 3 == 0 { "m2" } else { "m1" };
        let t = format!("2024-01-01T00:00:{:02}Z", round % 60);
        let o = opts(&s, &t, Scope::MainResource);
        let once = apply(live.as_ref(), &cfg, manager, true, &o).unwrap();
        let o2 = opts(&s, "2099-01-01T00:00:00Z", Scope::MainResource);
        let twice = apply(Some(&once), &cfg, manager, false, &o2).unwrap();
        assert_eq!(once, twice, "round {round}: second apply must be a no-op");
        assert_eq!(once["spec"]["replicas"], cfg["spec"]["replicas"]);
        for c in cfg["spec"]["template"]["spec"]["containers"].as_array().unwrap() {
            let found = once["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["name"] == c["name"])
                .unwrap();
            assert_eq!(found["image"], c["image"]);
        }
        // Every managed set round-trips through fieldsV1.
        for e in read_managed_fields(&once).unwrap() {
            assert_eq!(FieldSet::from_fields_v1(&e.fields.to_fields_v1()).unwrap(), e.fields);
        }
        live = Some(once);
    }
}

#[test]
fn custom_resource_create_and_atomic_lists() {
    let s = kubesim_patch::AtomicListsSchema;
    let o = ManagerOptions {
        time: T1,
        scope: Scope::MainResource,
        schema: &s,
    };
    let mut cr = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                        "spec": {"size": 1, "items": [{"name": "a"}, {"name": "b"}]}});
    record_update(None, &mut cr, "creator", &o).unwrap();
    assert_eq!(
        entry(&cr, "creator").unwrap()["fieldsV1"],
        json!({"f:spec": {".": {}, "f:items": {}, "f:size": {}}})
    );
    // Atomic list: applying a different list conflicts as one leaf.
    let cfg = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                     "spec": {"items": [{"name": "a"}]}});
    let err = apply(Some(&cr), &cfg, "applier", false, &o).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "creator" using example.com/v1: .spec.items"#
    );
    let out = apply(Some(&cr), &cfg, "applier", true, &o).unwrap();
    assert_eq!(out["spec"]["items"], json!([{"name": "a"}]));
    assert_eq!(out["spec"]["size"], 1);
}

#[test]
fn finalizers_and_owner_references_are_granular() {
    let s = dep_schema();
    let o = opts(&s, T1, Scope::MainResource);
    let mut cfg = deployment(1, "x");
    cfg["metadata"]["finalizers"] = json!(["a.example/f"]);
    cfg["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "X", "name": "o", "uid": "u-1"}]);
    let live = apply(None, &cfg, "a", false, &o).unwrap();
    let f = &entry(&live, "a").unwrap()["fieldsV1"]["f:metadata"];
    assert_eq!(f["f:finalizers"], json!({"v:\"a.example/f\"": {}}));
    assert_eq!(
        f["f:ownerReferences"],
        json!({"k:{\"uid\":\"u-1\"}": {".": {}, "f:apiVersion": {}, "f:kind": {}, "f:name": {}, "f:uid": {}}})
    );
    // A second manager adds its own finalizer without conflicts; both stay.
    let cfg_b = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "web", "finalizers": ["b.example/f"]}});
    let out = apply(Some(&live), &cfg_b, "b", false, &o).unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["a.example/f", "b.example/f"]));
    // A drops its finalizer: only A's is removed.
    let out = apply(Some(&out), &deployment(1, "x"), "a", false, &o).unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["b.example/f"]));
    // The emptied ownerReferences list disappears, as on a real cluster.
    assert!(out["metadata"].get("ownerReferences").is_none());
}

fn resolve<'a>(v: &'a Value, path: &[kubesim_patch::PathElement]) -> Option<&'a Value> {
    use kubesim_patch::PathElement as P;
    let Some((first, rest)) = path.split_first() else {
        return Some(v);
    };
    let next = match first {
        P::Field(f) => v.get(f)?,
        P::Key(pairs) => v.as_array()?.iter().find(|item| {
            pairs.iter().all(|(k, want)| match item.get(k) {
                Some(got) => got == want,
                None => k == "protocol" && want == "TCP",
            })
        })?,
        P::Value(want) => v.as_array()?.iter().find(|i| *i == want)?,
        P::Index(i) => v.as_array()?.get(*i)?,
    };
    resolve(next, rest)
}

/// Random sequences of applies (several managers, with and without force)
/// and updates: every owned path exists in the object, re-applying is a
/// no-op, and a failed apply reports only fields whose value would change.
#[test]
fn property_ownership_is_sound_across_random_histories() {
    let s = dep_schema();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for history in 0..30 {
        let mut live: Option<Value> = None;
        for step in 0..12 {
            let t = format!("2024-01-01T00:{:02}:{:02}Z", history % 60, step);
            let o = opts(&s, &t, Scope::MainResource);
            let mut containers = Vec::new();
            for name in ["a", "b", "c"] {
                if rnd(2) == 0 {
                    let mut c = json!({"name": name});
                    if rnd(2) == 0 {
                        c["image"] = json!(format!("img:{}", rnd(2)));
                    }
                    if rnd(3) == 0 {
                        c["ports"] = json!([{"containerPort": 80 + rnd(2)}]);
                    }
                    containers.push(c);
                }
            }
            let mut cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web"}, "spec": {}});
            if rnd(2) == 0 {
                cfg["spec"]["replicas"] = json!(rnd(3));
            }
            if rnd(2) == 0 {
                cfg["metadata"]["labels"] = json!({format!("l{}", rnd(2)): format!("{}", rnd(2))});
            }
            if !containers.is_empty() {
                cfg["spec"]["template"] = json!({"spec": {"containers": containers}});
            }
            let manager = ["m1", "m2", "m3"][rnd(3) as usize];
            let next = if rnd(4) == 0 && live.is_some() {
                // A plain update (e.g. kubectl edit) of replicas.
                let old = live.clone().unwrap();
                let mut new = old.clone();
                new["spec"]["replicas"] = json!(10 + rnd(3));
                record_update(Some(&old), &mut new, "editor", &o).unwrap();
                new
            } else {
                let force = rnd(2) == 0;
                match apply(live.as_ref(), &cfg, manager, force, &o) {
                    Ok(out) => {
                        let again = apply(
                            Some(&out),
                            &cfg,
                            manager,
                            false,
                            &opts(&s, "2099-01-01T00:00:00Z", Scope::MainResource),
                        )
                        .unwrap();
                        assert_eq!(again, out, "history {history} step {step}: re-apply not a no-op");
                        out
                    }
                    Err(ApplyError::Conflicts(cs)) => {
                        assert!(!force);
                        let cur = live.as_ref().unwrap();
                        for c in &cs {
                            for f in &c.fields {
                                // The conflicting field exists and the config sets it to another value.
                                let have = resolve(cur, &f.0);
                                let want = resolve(&cfg, &f.0);
                                assert!(have.is_some(), "conflict on missing field {f}");
                                assert_ne!(have, want, "conflict on equal value {f}");
                            }
                        }
                        continue;
                    }
                    Err(e) => panic!("unexpected error {e}"),
                }
            };
            for e in read_managed_fields(&next).unwrap() {
                assert!(!e.fields.is_empty());
                for p in e.fields.paths() {
                    assert!(
                        resolve(&next, &p.0).is_some(),
                        "history {history} step {step}: {} owns missing {p}",
                        e.manager
                    );
                }
            }
            live = Some(next);
        }
    }
}

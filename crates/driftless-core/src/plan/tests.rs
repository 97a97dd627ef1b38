use serde_json::json;

use super::*;
use crate::yaml::{YamlLimits, parse_documents};

const FILE: &str = "apps/shop/all.yaml";

fn desired() -> Vec<DesiredObject> {
    let path = format!("{}/tests/fixtures/plan/desired.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    parse_documents(&text, FILE, YamlLimits::MANIFESTS)
        .unwrap()
        .into_iter()
        .map(|(line, object)| DesiredObject {
            object,
            origin: Origin {
                file: FILE.into(),
                line,
            },
        })
        .collect()
}

fn creates(objects: Vec<DesiredObject>) -> PlanInput {
    PlanInput {
        entries: objects
            .into_iter()
            .map(|desired| PlanEntry {
                desired,
                live: None,
                predicted: None,
            })
            .collect(),
        prune_enabled: true,
        ..PlanInput::default()
    }
}

fn names(plan: &Plan) -> Vec<String> {
    plan.steps.iter().map(|s| s.object.to_string()).collect()
}

fn obj(api: &str, kind: &str, ns: Option<&str>, name: &str) -> Value {
    let mut o = json!({"apiVersion": api, "kind": kind, "metadata": {"name": name}});
    if let Some(ns) = ns {
        o["metadata"]["namespace"] = ns.into();
    }
    o
}

#[test]
fn steps_are_ordered_by_wave_then_kind_rank_then_name() {
    let plan = plan(&creates(desired())).unwrap();
    assert_eq!(
        names(&plan),
        [
            "Job/shop/migrate", // wave -1
            "CustomResourceDefinition/widgets.example.com",
            "Namespace/shop",
            "Role/shop/web",
            "RoleBinding/shop/web",
            "ServiceAccount/shop/web",
            "ConfigMap/shop/web-config",
            "Secret/shop/web",
            "Service/shop/web",
            "Deployment/shop/web",
            "Ingress/shop/web",
            "Widget/shop/w1",
        ]
    );
    assert_eq!(plan.steps[0].wave, -1);
    assert!(
        plan.steps
            .iter()
            .all(|s| s.action == Action::Create && s.diff.is_some())
    );
    assert_eq!(
        plan.steps[0].origin.as_ref().unwrap().to_string(),
        "apps/shop/all.yaml:20"
    );
}

#[test]
fn plan_is_deterministic_whatever_the_render_order() {
    let mut reversed = desired();
    reversed.reverse();
    assert_eq!(plan(&creates(desired())).unwrap(), plan(&creates(reversed)).unwrap());
}

#[test]
fn create_update_and_unchanged_follow_the_dry_run() {
    let objects = desired();
    let deploy = objects[0].clone();
    let service = objects[1].clone();
    let mut live_deploy = deploy.object.clone();
    live_deploy["metadata"]["resourceVersion"] = "5".into();
    live_deploy["status"] = json!({"readyReplicas": 2});
    let mut predicted_service = service.object.clone();
    predicted_service["spec"]["ports"][0]["port"] = 8080.into();
    let input = PlanInput {
        entries: vec![
            PlanEntry {
                desired: deploy.clone(),
                live: Some(live_deploy.clone()),
                predicted: Some(live_deploy),
            },
            PlanEntry {
                desired: service.clone(),
                live: Some(service.object.clone()),
                predicted: Some(predicted_service),
            },
            PlanEntry {
                desired: objects[2].clone(),
                live: None,
                predicted: None,
            },
        ],
        ..PlanInput::default()
    };
    let p = plan(&input).unwrap();
    let by_name: BTreeMap<String, &Step> = p.steps.iter().map(|s| (s.object.to_string(), s)).collect();
    assert_eq!(by_name["Deployment/shop/web"].action, Action::Unchanged);
    assert!(by_name["Deployment/shop/web"].diff.is_none());
    assert_eq!(by_name["Service/shop/web"].action, Action::Update);
    assert!(
        by_name["Service/shop/web"]
            .diff
            .as_ref()
            .unwrap()
            .unified
            .contains("port: 8080")
    );
    assert_eq!(by_name["ConfigMap/shop/web-config"].action, Action::Create);
    let s = p.summary();
    assert_eq!((s.create, s.update, s.unchanged, s.prune), (1, 1, 1, 0));
    assert_eq!(s.to_string(), "1 to create, 1 to update, 0 to prune, 1 unchanged");
    assert!(p.has_changes());
}

#[test]
fn resyncing_an_unchanged_revision_plans_no_writes() {
    let objects = desired();
    let input = PlanInput {
        entries: objects
            .iter()
            .map(|d| PlanEntry {
                desired: d.clone(),
                live: Some(d.object.clone()),
                predicted: Some(d.object.clone()),
            })
            .collect(),
        inventory: objects.iter().filter_map(DesiredObject::object_ref).collect(),
        prune_enabled: true,
        ..PlanInput::default()
    };
    let p = plan(&input).unwrap();
    assert!(!p.has_changes());
    assert_eq!(p.summary().unchanged, objects.len());
}

#[test]
fn duplicates_name_both_origins() {
    let mut objects = desired();
    let mut dup = objects[1].clone();
    dup.origin = Origin {
        file: "apps/shop/extra.yaml".into(),
        line: 3,
    };
    objects.push(dup);
    let err = plan(&creates(objects)).unwrap_err().to_string();
    assert_eq!(
        err,
        "Service/shop/web is declared twice: at apps/shop/all.yaml:6 and at apps/shop/extra.yaml:3; remove one of them"
    );
}

#[test]
fn malformed_wave_names_object_and_file() {
    let mut objects = desired();
    objects[0].object["metadata"]["annotations"] = json!({SYNC_WAVE_ANNOTATION: "first"});
    let err = plan(&creates(objects.clone())).unwrap_err().to_string();
    assert!(
        err.starts_with("apps/shop/all.yaml:1: Deployment/shop/web: annotation driftless.dev/sync-wave"),
        "{err}"
    );
    assert!(err.contains("\"first\""), "{err}");
    objects[0].object["metadata"]["annotations"] = json!({SYNC_WAVE_ANNOTATION: 3});
    assert!(plan(&creates(objects.clone())).is_err());
    objects[0].object["metadata"]["annotations"] = json!({SYNC_WAVE_ANNOTATION: " 3 "});
    assert_eq!(plan(&creates(objects)).unwrap().steps.last().unwrap().wave, 3);
}

#[test]
fn objects_without_identity_are_errors() {
    let bad = DesiredObject {
        object: json!({"kind": "ConfigMap"}),
        origin: Origin {
            file: "x.yaml".into(),
            line: 4,
        },
    };
    let err = plan(&creates(vec![bad])).unwrap_err().to_string();
    assert!(err.starts_with("x.yaml:4: not a Kubernetes object"), "{err}");
}

fn prune_input() -> PlanInput {
    let mut input = creates(vec![desired()[3].clone()]); // Namespace/shop stays
    let orphans = vec![
        obj("v1", "Service", Some("shop"), "old"),
        obj("apps/v1", "Deployment", Some("shop"), "old"),
        obj("v1", "Namespace", None, "old-ns"),
        {
            let mut o = obj("v1", "PersistentVolumeClaim", Some("shop"), "data");
            o["metadata"]["annotations"] = json!({PRUNE_ANNOTATION: PRUNE_DISABLED});
            o
        },
        // Not in the inventory: never pruned even if the caller passes it.
        obj("v1", "ConfigMap", Some("shop"), "someone-elses"),
        // Still desired: never pruned.
        obj("v1", "Namespace", None, "shop"),
    ];
    input.inventory = orphans
        .iter()
        .filter(|o| o["metadata"]["name"] != "someone-elses")
        .filter_map(ObjectRef::from_object)
        .chain([ObjectRef {
            group: String::new(),
            kind: "Secret".into(),
            namespace: Some("shop".into()),
            name: "gone".into(),
        }])
        .collect();
    input.orphans = orphans;
    input
}

#[test]
fn prunes_come_last_in_reverse_order_and_respect_ownership_and_annotation() {
    let p = plan(&prune_input()).unwrap();
    assert_eq!(
        names(&p),
        [
            "Namespace/shop",
            "PersistentVolumeClaim/shop/data",
            "Deployment/shop/old",
            "Service/shop/old",
            "Namespace/old-ns",
        ]
    );
    let actions: Vec<&Action> = p.steps.iter().map(|s| &s.action).collect();
    assert_eq!(actions[0], &Action::Create);
    assert!(matches!(actions[1], Action::PruneSkipped { reason } if reason.contains("driftless.dev/prune: disabled")));
    assert_eq!(&actions[2..], [&Action::Prune, &Action::Prune, &Action::Prune]);
    assert_eq!(p.summary().prune, 3);
    assert_eq!(p.summary().prune_skipped, 1);
    let inv: Vec<String> = p.inventory_after().iter().map(ToString::to_string).collect();
    assert_eq!(inv, ["Namespace/shop", "PersistentVolumeClaim/shop/data"]);
    assert_eq!(p.without_prunes().steps.len(), 1);
}

#[test]
fn prune_off_keeps_everything_with_a_reason() {
    let mut input = prune_input();
    input.prune_enabled = false;
    let p = plan(&input).unwrap();
    assert_eq!(p.prune_candidates().count(), 0);
    assert!(
        p.steps
            .iter()
            .skip(1)
            .all(|s| matches!(&s.action, Action::PruneSkipped { .. }))
    );
    assert!(!p.has_changes() || p.summary().create == 1);
}

fn safety(confirmed: bool, desired_is_empty: bool, allow_empty: bool) -> PruneSafety {
    PruneSafety {
        allow_empty,
        threshold_percent: 50,
        confirmed,
        desired_is_empty,
    }
}

#[test]
fn an_empty_render_never_prunes_unless_allow_empty() {
    let mut input = prune_input();
    input.entries.clear();
    let p = plan(&input).unwrap();
    let refusal = check_prune(&p, 10, safety(true, true, false)).unwrap_err();
    assert_eq!(
        refusal,
        PruneRefusal::EmptyDesiredSet {
            count: 4,
            inventory: 10
        }
    );
    assert!(refusal.to_string().contains("allowEmpty"));
    assert!(check_prune(&p, 10, safety(false, true, true)).is_ok());
}

#[test]
fn a_large_prune_needs_confirmation() {
    let p = plan(&prune_input()).unwrap(); // 3 prunes
    let refusal = check_prune(&p, 5, safety(false, false, false)).unwrap_err();
    assert_eq!(
        refusal,
        PruneRefusal::AboveThreshold {
            count: 3,
            inventory: 5,
            percent: 60,
            threshold: 50
        }
    );
    let msg = refusal.to_string();
    assert!(
        msg.contains("3 of 5") && msg.contains("60%") && msg.contains("--confirm-prune"),
        "{msg}"
    );
    assert!(check_prune(&p, 5, safety(true, false, false)).is_ok());
    assert!(
        check_prune(&p, 6, safety(false, false, false)).is_ok(),
        "exactly 50% is allowed"
    );
    assert!(
        check_prune(&p, 0, safety(false, false, false)).is_err(),
        "inconsistent inventory counts as all"
    );
    let none = Plan::default();
    assert!(check_prune(&none, 0, safety(false, true, false)).is_ok());
}

#[test]
fn kind_rank_checks_the_group() {
    assert_eq!(kind_rank("apps", "Deployment"), 5);
    assert_eq!(kind_rank("example.com", "Deployment"), 6);
    assert_eq!(kind_rank("", "Namespace"), 0);
    assert_eq!(kind_rank("apiextensions.k8s.io", "CustomResourceDefinition"), 0);
}

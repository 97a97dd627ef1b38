use super::*;
use crate::yaml::{YamlLimits, parse_documents};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/diff/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    parse_documents(&text, &path, YamlLimits::MANIFESTS)
        .unwrap()
        .remove(0)
        .1
}

#[test]
fn normalisation_strips_server_fields_status_and_last_applied() {
    let n = normalize_for_compare(&fixture("deployment-live.yaml"));
    let meta = n["metadata"].as_object().unwrap();
    for f in SERVER_METADATA {
        assert!(!meta.contains_key(*f), "{f}");
    }
    assert!(n.get("status").is_none());
    let annotations = meta["annotations"].as_object().unwrap();
    assert!(!annotations.contains_key(LAST_APPLIED_ANNOTATION));
    assert!(annotations.contains_key("deployment.kubernetes.io/revision"));
    assert_eq!(n["spec"]["replicas"], 5);
}

#[test]
fn deployment_diff_shows_only_real_changes_with_a_header() {
    let d = object_diff(
        Some(&fixture("deployment-live.yaml")),
        &fixture("deployment-predicted.yaml"),
    );
    assert!(d.changed);
    assert!(
        d.unified
            .starts_with("--- Deployment/prod/web (live)\n+++ Deployment/prod/web (predicted)\n"),
        "{}",
        d.unified
    );
    assert!(d.unified.contains("-  replicas: 5\n+  replicas: 3\n"), "{}", d.unified);
    assert!(
        d.unified
            .contains("-      - image: example/web:1.0\n+      - image: example/web:1.1\n"),
        "{}",
        d.unified
    );
    // Server bookkeeping and key order are not changes.
    for noise in [
        "resourceVersion",
        "generation",
        "last-applied",
        "managedFields",
        "status",
    ] {
        assert!(!d.unified.contains(noise), "{noise} in\n{}", d.unified);
    }
}

#[test]
fn identical_after_normalisation_is_unchanged() {
    let live = fixture("deployment-live.yaml");
    let mut predicted = live.clone();
    predicted["metadata"]["resourceVersion"] = "999".into();
    predicted["status"] = serde_json::json!({"availableReplicas": 1});
    let d = object_diff(Some(&live), &predicted);
    assert!(!d.changed);
    assert!(d.unified.is_empty());
}

#[test]
fn ignore_rules_remove_fields_before_comparing() {
    let live = fixture("deployment-live.yaml");
    let mut predicted = live.clone();
    predicted["spec"]["replicas"] = 2.into();
    let rules = [IgnoreRule::new("/spec/replicas").unwrap()];
    assert!(!object_diff_with(Some(&live), &predicted, &rules).changed);
    let other_kind = [IgnoreRule::new("/spec/replicas").unwrap().for_kind("StatefulSet")];
    assert!(object_diff_with(Some(&live), &predicted, &other_kind).changed);
    predicted["spec"]["template"]["spec"]["containers"][0]["image"] = "x".into();
    let wildcard = [
        IgnoreRule::new("/spec/replicas").unwrap(),
        IgnoreRule::new("/spec/template/spec/containers/*/image").unwrap(),
    ];
    assert!(!object_diff_with(Some(&live), &predicted, &wildcard).changed);
}

#[test]
fn ignore_rule_parsing_is_bounded() {
    assert!(IgnoreRule::new("spec/replicas").is_err());
    assert!(IgnoreRule::new(&"/a".repeat(40)).is_err());
    assert!(IgnoreRule::new(&format!("/{}", "a".repeat(600))).is_err());
    assert!(IgnoreRule::new("/metadata/name").is_err());
    let r = IgnoreRule::new("/metadata/labels/app.kubernetes.io~1name").unwrap();
    let mut obj = serde_json::json!({"metadata": {"labels": {"app.kubernetes.io/name": "x", "k": "v"}}});
    r.apply(&mut obj);
    assert_eq!(obj, serde_json::json!({"metadata": {"labels": {"k": "v"}}}));
}

#[test]
fn create_diff_is_all_additions() {
    let d = object_diff(None, &fixture("deployment-predicted.yaml"));
    assert!(d.changed);
    assert!(d.unified.starts_with("--- Deployment/prod/web (live: absent)\n"));
    assert!(d.unified.contains("+kind: Deployment\n"));
}

const SECRET_VALUES: &[&str] = &[
    "b2xkLXBhc3N3b3Jk",
    "bmV3LXBhc3N3b3Jk",
    "YWRtaW4=",
    "cmVtb3ZlZC12YWx1ZQ==",
    "YWRkZWQtdmFsdWU=",
    "old-password",
    "new-password",
    "admin",
    "removed-value",
    "added-value",
];

#[test]
fn secret_values_never_appear_but_changed_keys_do() {
    let live = fixture("secret-live.yaml");
    let predicted = fixture("secret-predicted.yaml");
    let d = object_diff(Some(&live), &predicted);
    assert!(d.changed);
    for v in SECRET_VALUES {
        assert!(!d.unified.contains(v), "secret value {v} leaked:\n{}", d.unified);
    }
    assert!(d.unified.contains("-  password: ++++++++\n"), "{}", d.unified);
    assert!(d.unified.contains("+  password: ++++++++ (changed)\n"), "{}", d.unified);
    assert!(d.unified.contains("   username: ++++++++\n"), "{}", d.unified);
    assert!(d.unified.contains("-  removed: ++++++++\n"), "{}", d.unified);
    assert!(d.unified.contains("+  added: ++++++++ (changed)\n"), "{}", d.unified);
    let debug = format!("{d:?}");
    for v in SECRET_VALUES {
        assert!(!debug.contains(v));
    }
}

#[test]
fn secret_creates_and_string_data_are_masked_too() {
    let mut predicted = fixture("secret-predicted.yaml");
    predicted["stringData"] = serde_json::json!({"token": "plain-text-token"});
    let d = object_diff(None, &predicted);
    assert!(
        !d.unified.contains("plain-text-token") && !d.unified.contains("bmV3LXBhc3N3b3Jk"),
        "{}",
        d.unified
    );
    predicted["data"] = "not-a-map-secret".into();
    let d = object_diff(Some(&fixture("secret-live.yaml")), &predicted);
    assert!(!d.unified.contains("not-a-map-secret"), "{}", d.unified);
}

#[test]
fn a_changed_secret_is_detected_even_though_values_are_masked() {
    let live = fixture("secret-live.yaml");
    let mut predicted = live.clone();
    predicted["data"]["password"] = "Y2hhbmdlZA==".into();
    let d = object_diff(Some(&live), &predicted);
    assert!(d.changed);
    assert!(d.unified.contains("(changed)"));
    assert!(!d.unified.contains("Y2hhbmdlZA=="));
}
